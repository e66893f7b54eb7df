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
    # measured: MAD 2.26 mm (CI 1.86-2.69), bias -0.07 mm, 62 % within 2 mm, Dice 0.969 (the
    # model's recorded test numbers, both passes; goal MAD 1.8 mm not reached)
    assert r["mad_mm"] < 2.5
    assert r["mad_ci_mm"][0] < r["mad_mm"] < r["mad_ci_mm"][1]
    assert r["bias_ci_mm"][0] < r["bias_mm"] < r["bias_ci_mm"][1]
    assert r["loa_lower_mm"] == pytest.approx(r["bias_mm"] - 1.96 * r["sd_mm"])
    assert r["within_2mm"] > 0.55
    assert r["dice_mean"] > 0.958
    # per band (HC < 150, 150-250, > 250 mm): measured 1.96, 1.91, 4.37 mm (38, 77, 18 images)
    assert sum(r["band_n"].values()) == 133 and min(r["band_n"].values()) >= 15
    for band, ceiling in {"<150": 2.4, "150-250": 2.3, ">250": 5.0}.items():
        assert r["band_mad_mm"][band] < ceiling, band
    # the QC flags (with the expected-error check, issue 15): measured 33 % flagged, MAD 3.66
    # (flagged) vs 1.56 mm, 15 of the 20 errors above 4 mm flagged
    assert r["qc_mad_flagged_mm"] > 1.8 * r["qc_mad_unflagged_mm"]
    assert r["qc_share_flagged"] < 0.38 and r["qc_large_errors_flagged"] >= 0.55
    assert r["bad_input_flagged"] is True


@pytest.mark.notebook
def test_notebook_skimage_fit_20_images(tmp_path):
    r = run("usecases/fetal_biometry.ipynb", tmp_path, FIT="skimage", N_IMAGES=20)
    assert r["fit"] == "skimage" and r["n_images"] == 20
    # measured: MAD 1.98 mm, bias -0.70 mm, LoA -6.4 to +5.0 mm on these 20 (spread over all
    # trimesters; both passes)
    assert r["mad_mm"] < 2.6
    assert r["loa_lower_mm"] < r["bias_mm"] < r["loa_upper_mm"]
