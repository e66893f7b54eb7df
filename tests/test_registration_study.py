"""medlab.registration.known_truth_study: the same rows as the known-truth recipe written out."""

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets
from medlab import registration as reg
from medlab.datasets import Case


def _pair(seed):
    ph = datasets.mr_phantom(shape=(16, 32, 32), spacing_mm=(3.0, 3.0, 3.0), seed=seed)
    label = sitk.Cast(ph.labels > 1, sitk.sitkUInt8)
    case = Case(dataset="phantom", id=f"P{seed}", image=ph.image, labels={"brain": label})
    return case, case  # a scan aligned with itself


def test_known_truth_study_gives_the_recipe_rows():
    options = dict(transform="rigid", metric="mean_squares", levels=(2, 1))
    pairs = [_pair(0), _pair(1)]
    table = reg.known_truth_study(iter(pairs), truth="rigid", seed=3, **options)
    assert list(table.index) == ["P0", "P1"] and table.index.name == "case"
    for (fixed, moving), (case, row) in zip(pairs, table.iterrows()):
        centre = tuple(np.mean(reg._common.physical_points(fixed.label), axis=0))
        truth = reg.random_rigid(seed=3, centre_mm=centre)
        moved = reg.move_image(moving.image, truth)
        result = reg.register(fixed.image, moved, **options)
        s = reg.registration_scores(result.transform, truth, target_mask=fixed.label, fixed_mask=fixed.label,
                                    moving_mask=reg.move_image(moving.label, truth, is_label=True))
        assert row["tre_start_mean_mm"] == pytest.approx(s["tre_start_mean_mm"], abs=1e-6)
        assert row["tre_mean_mm"] == pytest.approx(s["tre_mean_mm"], abs=1e-3)
        assert row["dice"] == pytest.approx(s["dice"], abs=1e-3)
        assert row["tre_start_mean_mm"] > 5 and row["tre_mean_mm"] < 1.0  # the motion is found again
        assert row["seconds"] > 0


def test_known_truth_study_refuses_bad_input():
    with pytest.raises(ValueError, match="truth"):
        reg.known_truth_study([_pair(0)], truth="bspline")
    with pytest.raises(ValueError, match="`pairs` is empty"):
        reg.known_truth_study([], truth="rigid")
