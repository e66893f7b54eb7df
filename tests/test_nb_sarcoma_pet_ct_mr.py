"""notebooks/usecases/sarcoma_pet_ct_mr.ipynb: CT/MR/PET fusion on the CT grid, one-click PET
tumour, SUV metrics and TLG, comparison with the GTV; papermill run with another patient and
the 40 % SUVmax method."""

import pytest
from notebook_support import run


def _consistent(r):
    assert r["suvpeak"] <= r["suvmax"]
    assert r["suvmean"] >= r["threshold_suv"]  # every PET-tumour voxel is above the threshold
    assert r["tlg"] == pytest.approx(r["suvmean"] * r["mtv_ml"])
    assert r["gtv_tlg"] == pytest.approx(r["gtv_suvmean"] * r["gtv_volume_pet_ml"])
    # the same GTV on the three grids: MR resampled onto CT gives it back exactly, PET (4.7 mm
    # voxels) nearly (measured 0.911-0.967 over the ten patients)
    assert r["gtv_dice_mr_vs_ct"] == pytest.approx(1.0)
    assert r["gtv_dice_pet_vs_ct"] > 0.9
    assert r["gtv_volume_pet_ml"] == pytest.approx(r["gtv_volume_ct_ml"], rel=0.05)


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("usecases/sarcoma_pet_ct_mr.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 3  # every exercise's hidden solution passes its check
    assert r["patient"] == "STS_001" and r["method"] == "otsu_box"
    assert r["verdict_plausible"] is True and r["verdict_reasons"] == []  # contrast 13.0 x, inside the FOV
    _consistent(r)
    # STS_001's GTV on the PET grid: 5095 voxels of 4.6875 x 4.6875 x 3.27 mm = 366.08 mL,
    # SUVmax 7.911, SUVpeak 5.313 (= IBSI loc_peak_local), SUVmean 2.555
    assert r["gtv_volume_pet_ml"] == pytest.approx(366.079, abs=1e-3)
    assert r["suvmax"] == pytest.approx(7.9107, abs=1e-3)
    assert r["suvpeak"] == pytest.approx(5.3130, abs=1e-3)
    assert r["gtv_suvmean"] == pytest.approx(2.5551, abs=1e-3)
    # measured: Otsu threshold SUV 1.82, MTV 369.7 mL, SUVmean 3.06, TLG 1131, Dice 0.668, HD95 15.2 mm
    assert 1.6 < r["threshold_suv"] < 2.0
    assert 330 < r["mtv_ml"] < 410
    assert 2.8 < r["suvmean"] < 3.3
    assert 1000 < r["tlg"] < 1260
    assert r["dice"] > 0.63
    assert r["hd95_mm"] < 18


@pytest.mark.notebook
def test_notebook_other_patient_percent_suvmax(tmp_path):
    r = run("usecases/sarcoma_pet_ct_mr.ipynb", tmp_path, PATIENT="STS_003", METHOD="percent_suvmax",
            PERCENT=40.0)
    assert r["patient"] == "STS_003" and r["method"] == "percent_suvmax"
    _consistent(r)
    # the click is at the GTV's hottest voxel, which is also the local SUVmax: threshold = 40 %
    assert r["suvmax"] == pytest.approx(10.2653, abs=1e-3)
    assert r["threshold_suv"] == pytest.approx(0.4 * r["suvmax"])
    # measured: MTV 66.4 mL, TLG 443, Dice 0.866, HD95 6.5 mm
    assert 60 < r["mtv_ml"] < 73
    assert 400 < r["tlg"] < 490
    assert r["dice"] > 0.83
    assert r["hd95_mm"] < 8
