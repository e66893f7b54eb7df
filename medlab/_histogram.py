"""The one histogram threshold computation (scikit-image's), shared by
:func:`medlab.segmentation.auto_threshold` and the few lower-layer functions that need a default
foreground (N4's fitting mask in :mod:`medlab.filters`, which ``medlab.segmentation`` imports, so
it cannot import ``segmentation`` back)."""

from __future__ import annotations

import numpy as np
from skimage import filters as _ski_filters

__all__ = ["AUTO_METHODS", "histogram_threshold"]

AUTO_METHODS = ("otsu", "li", "triangle", "yen", "isodata")


def histogram_threshold(values: np.ndarray, method: str = "otsu", nbins: int = 256) -> float:
    """``skimage.filters.threshold_<method>`` of ``values`` (finite, not constant: the caller
    checks), as a float; foreground is ``values > threshold``.

    Parameters
    ----------
    values : ndarray
        Intensities (any shape; flattened by scikit-image).
    method : {'otsu', 'li', 'triangle', 'yen', 'isodata'}
        See :func:`medlab.segmentation.auto_threshold`.
    nbins : int
        Histogram bins (not used by 'li').
    """
    func = getattr(_ski_filters, f"threshold_{method}")
    if method == "li":
        return float(func(values))
    return float(func(values, nbins=nbins))
