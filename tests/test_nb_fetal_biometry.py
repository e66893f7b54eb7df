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
    # measured: MAD 2.07 mm (CI 1.74-2.44), bias -0.18 mm, 64 % within 2 mm, Dice 0.976 (the
    # model's recorded test numbers, both passes; goal MAD 1.8 mm not reached)
    assert r["mad_mm"] < 2.3
    assert r["mad_ci_mm"][0] < r["mad_mm"] < r["mad_ci_mm"][1]
    assert r["bias_ci_mm"][0] < r["bias_mm"] < r["bias_ci_mm"][1]
    assert r["loa_lower_mm"] == pytest.approx(r["bias_mm"] - 1.96 * r["sd_mm"])
    assert r["within_2mm"] > 0.55
    assert r["dice_mean"] > 0.965
    # per band (HC < 150, 150-250, > 250 mm): measured 1.54, 1.84, 4.14 mm (38, 77, 18 images)
    assert sum(r["band_n"].values()) == 133 and min(r["band_n"].values()) >= 15
    for band, ceiling in {"<150": 1.9, "150-250": 2.2, ">250": 4.7}.items():
        assert r["band_mad_mm"][band] < ceiling, band
    # the QC flags (with the expected-error check, issue 15): measured 29 % flagged, MAD 3.54
    # (flagged) vs 1.46 mm, 15 of the 17 errors above 4 mm flagged
    assert r["qc_mad_flagged_mm"] > 1.8 * r["qc_mad_unflagged_mm"]
    assert r["qc_share_flagged"] < 0.38 and r["qc_large_errors_flagged"] >= 0.7
    assert r["bad_input_flagged"] is True
    # the reference's own repeatability (pairs of images of one fetus from one examination, all 873
    # images): median |difference| 2.99 / 4.01 / 6.21 mm by band, 3.85 / 2.32 / 2.18 % of the HC
    assert r["reference_pairs"] == {"<150": 60, "150-250": 104, ">250": 36}
    assert r["reference_pair_median_mm"][">250"] == pytest.approx(6.21, abs=0.01)
    assert r["reference_pair_median_pct"]["<150"] == pytest.approx(3.85, abs=0.01)
    # in % of the HC the largest heads are not the worst band: measured 1.74 / 1.01 / 1.39 %;
    # as an outline shift 2.48 / 2.12 / 2.86 pixels
    assert r["band_mape_pct"][">250"] < 2.0 and r["band_mape_pct"]["<150"] > r["band_mape_pct"][">250"]
    assert max(r["band_mad_radius_px"].values()) < 3.6


@pytest.mark.notebook
def test_notebook_skimage_fit_20_images(tmp_path):
    r = run("usecases/fetal_biometry.ipynb", tmp_path, FIT="skimage", N_IMAGES=20)
    assert r["fit"] == "skimage" and r["n_images"] == 20
    # measured: MAD 2.22 mm, bias -0.45 mm, LoA -7.1 to +6.2 mm on these 20 (spread over all
    # trimesters; both passes)
    assert r["mad_mm"] < 2.6
    assert r["loa_lower_mm"] < r["bias_mm"] < r["loa_upper_mm"]
