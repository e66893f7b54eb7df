"""notebooks/usecases/neurological.ipynb: MNI152 brain extraction and tissue Dice (measured
floors), atrophy volume change against a known simulated loss, haemorrhage detection on the
synthetic head CT (exact), motion and signal stability of a real 4D fMRI run; papermill run
with the Gaussian mixture, a thicker atrophy and another head."""

import pytest
from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("usecases/neurological.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 3  # every exercise's hidden solution passes its check
    assert r["tissue_method"] == "kmeans"
    assert r["brain_dice"] > 0.98  # measured 0.993
    assert r["gm_dice"] > 0.68 and r["wm_dice"] > 0.75  # measured 0.702, 0.780
    assert r["dice_by_method"]["gmm"]["Dice GM"] > 0.73  # measured 0.762
    # whole brain: measured loss 145.2 mL for 141.8 mL true (PBVC -7.81 % vs -7.63 %)
    assert r["brain_loss_ml"] == pytest.approx(r["brain_loss_true_ml"], rel=0.06)
    assert abs(r["pbvc"] - r["pbvc_true"]) < 0.5
    # grey matter thinning: measured 46.9 mL for 57.7 mL true
    assert 0.7 < r["gm_loss_ml"] / r["gm_loss_true_ml"] < 1.3
    # synthetic head CT: every haemorrhage found, exact volume and centroid
    assert r["ct_synthetic"] is True
    assert r["n_detected"] == r["n_haemorrhages"] == 3 and r["false_positives"] == 0
    assert r["detection_distance_max_mm"] < 1e-6
    assert r["detection_volume_error_max_percent"] < 1e-6
    assert r["detection_hu_error_max"] < 1.0
    # Part C, the real GE fMRI run (4D): it moves (measured FD up to 28.9 mm, 9 of 10 volumes
    # above 0.5 mm, median tSNR 4.2, DVARS up to 67 %); medlab.apps.neuro.epi_stability is exact on
    # synthetic runs (tests/test_neuro.py)
    assert r["epi_size_xyzt"] == [64, 64, 15, 10]
    assert r["epi_fd_max_mm"] > 15.0 and len(r["epi_volumes_over_fd_limit"]) >= 5
    assert 2.0 < r["epi_tsnr_median"] < 8.0 and r["epi_dvars_max_percent"] > 20.0


@pytest.mark.notebook
def test_notebook_gmm_thicker_atrophy_other_head(tmp_path):
    r = run("usecases/neurological.ipynb", tmp_path, TISSUE_METHOD="gmm", ATROPHY_DEPTH_MM=4.0,
            N_HAEMORRHAGES=2, CT_SEED=7, CT_NOISE_HU=5.0)
    assert r["tissue_method"] == "gmm" and r["atrophy_depth_mm"] == 4.0
    assert r["gm_dice"] > 0.73 and r["wm_dice"] > 0.67  # measured 0.762, 0.700
    # a thicker layer: measured whole-brain loss 296.8 mL for 290.0 mL true
    assert r["brain_loss_true_ml"] > 250
    assert r["brain_loss_ml"] == pytest.approx(r["brain_loss_true_ml"], rel=0.06)
    assert r["n_detected"] == r["n_haemorrhages"] == 2 and r["false_positives"] == 0
    assert r["detection_distance_max_mm"] < 2.0
    assert r["detection_volume_error_max_percent"] < 10.0
