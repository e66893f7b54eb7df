"""notebooks/tutorials/06_cnn_classification_and_explanations.ipynb: BUSI near-duplicate groups,
a leakage-free split, the pretrained CNN fine-tuned for one epoch, test AUC with its confidence
interval, Grad-CAM/occlusion, and MC-dropout entropy of correct vs wrong decisions.

Floors are the values measured with the notebook's defaults minus a margin (measured values in
the comments); tests/test_models_pretrained.py checks the shipped model itself.
"""

import pytest

from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("tutorials/06_cnn_classification_and_explanations.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 2  # every exercise's hidden solution passes its check
    assert r["backend"] == "tensorflow"
    assert r["n_images"] == 625
    assert (r["n_groups"], r["n_duplicate_groups"], r["n_duplicates"], r["n_conflicting_groups"]) == (503, 99, 122, 8)
    assert r["split_sizes"] == {"train": 364, "val": 123, "test": 121}
    assert r["groups_shared_between_parts"] == 0
    assert 0.15 <= r["random_split_leak_fraction"] <= 0.3  # 0.232: what a random split would leak
    lo, hi = r["auc_ci95"]
    assert r["auc_malignant_vs_benign"] >= 0.74  # 0.784
    assert lo < r["auc_malignant_vs_benign"] < hi and hi - lo < 0.25
    blo, bhi = r["auc_bootstrap_ci95"]
    assert abs(blo - lo) < 0.05 and abs(bhi - hi) < 0.05  # DeLong and bootstrap agree
    assert r["accuracy"] >= 0.52  # 0.579 (three classes)
    assert r["entropy_wrong"] > r["entropy_correct"]  # less sure when wrong
