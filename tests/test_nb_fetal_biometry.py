"""notebooks/usecases/fetal_biometry.ipynb: HC18 head circumference by the pretrained U-Net with a
QC verdict on the held-out test part of hc18_split (all trimesters), per head-size band,
Bland-Altman against the sonographer; papermill run with the scikit-image fit on 20 images.

Floors are the values measured with the notebook's defaults minus a margin (measured values in
the comments); the test part chose nothing (QC thresholds: validation part)."""

import pytest
from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("usecases/fetal_biometry.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 3  # every exercise's hidden solution passes its check
    assert r["n_images"] == 133 and r["n_subjects"] == 107
    assert r["shared_subjects_with_training"] == 0
    # measured: MAD 2.50 mm (CI 2.01-3.22), bias -0.88 mm, LoA -9.57 to +7.80 mm, 59 % within 2 mm,
    # Dice 0.968 (the model's recorded test numbers; goal MAD 1.8 mm not reached)
    assert r["mad_mm"] < 2.8
    assert r["mad_ci_mm"][0] < r["mad_mm"] < r["mad_ci_mm"][1]
    assert r["bias_ci_mm"][0] < r["bias_mm"] < r["bias_ci_mm"][1]
    assert r["loa_lower_mm"] == pytest.approx(r["bias_mm"] - 1.96 * r["sd_mm"])
    assert r["within_2mm"] > 0.53
    assert r["dice_mean"] > 0.958
    # per band (HC < 150, 150-250, > 250 mm): measured 2.16, 2.02, 5.31 mm (38, 77, 18 images)
    assert sum(r["band_n"].values()) == 133 and min(r["band_n"].values()) >= 15
    for band, ceiling in {"<150": 2.6, "150-250": 2.4, ">250": 6.5}.items():
        assert r["band_mad_mm"][band] < ceiling, band
    # the QC flags hold the large errors: measured 23 % flagged, MAD 4.51 (flagged) vs 1.89 mm,
    # 10 of the 18 errors above 4 mm flagged
    assert r["qc_mad_flagged_mm"] > 2 * r["qc_mad_unflagged_mm"]
    assert r["qc_share_flagged"] < 0.28 and r["qc_large_errors_flagged"] >= 0.45
    assert r["bad_input_flagged"] is True


@pytest.mark.notebook
def test_notebook_skimage_fit_20_images(tmp_path):
    r = run("usecases/fetal_biometry.ipynb", tmp_path, FIT="skimage", N_IMAGES=20)
    assert r["fit"] == "skimage" and r["n_images"] == 20
    # measured: MAD 3.87 mm, bias -2.95 mm, LoA -20.4 to +14.5 mm on these 20 (spread over all
    # trimesters: the scikit-image fit is pulled by the few poor outlines)
    assert r["mad_mm"] < 4.5
    assert r["loa_lower_mm"] < r["bias_mm"] < r["loa_upper_mm"]
