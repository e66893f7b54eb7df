"""medlab.metrics.local_contrast against the windowed standard deviation written out."""

import doctest

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import metrics
from medlab.metrics import _quality


def test_local_contrast_is_the_mean_windowed_std():
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 20.0, (12, 17))
    size = 5
    padded = np.pad(x, size // 2, mode="symmetric")  # scipy's 'reflect' border
    stds = [padded[i:i + size, j:j + size].std() for i in range(x.shape[0]) for j in range(x.shape[1])]
    assert metrics.local_contrast(x, size=size) == pytest.approx(np.mean(stds), rel=1e-9)
    assert metrics.local_contrast(sitk.GetImageFromArray(x), size=size) == pytest.approx(np.mean(stds), rel=1e-9)
    assert metrics.local_contrast(x, size=1) == pytest.approx(0.0, abs=1e-9)


def test_local_contrast_refuses_bad_input_and_its_examples_run():
    with pytest.raises(ValueError, match="`size`"):
        metrics.local_contrast(np.zeros((4, 4)), size=0)
    with pytest.raises(TypeError, match="`image`"):
        metrics.local_contrast("not an image")
    result = doctest.testmod(_quality, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
