"""Denoisers compared on one image: contrast, noise, similarity to the original, run time."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import SimpleITK as sitk

from medlab._image import mask_array
from medlab.metrics._quality import cnr, ssim


def compare_denoisers(
    image: sitk.Image,
    denoisers: Mapping[str, Callable[[sitk.Image], sitk.Image]],
    *,
    signal_mask,
    background_mask,
    noise_mask,
):
    """Run each denoiser once on ``image`` and score it, and the original, in one table.

    Parameters
    ----------
    image : sitk.Image
        The image to denoise (e.g. a CT slab in HU).
    denoisers : mapping of str to callable
        Name -> function taking ``image`` and returning the denoised ``sitk.Image`` on the
        same grid (e.g. ``lambda im: medlab.filters.gaussian(im, 1.0)``). The name
        ``'original'`` is taken by the unfiltered row.
    signal_mask, background_mask : (z, y, x) bool ndarray or sitk.Image
        The two regions whose contrast :func:`medlab.metrics.cnr` measures (e.g. tumour
        core and lung), fixed for every denoiser.
    noise_mask : (z, y, x) bool ndarray or sitk.Image
        A homogeneous region whose standard deviation is the noise.

    Returns
    -------
    table : pandas.DataFrame
        One row per image, ``'original'`` first, then the denoisers in order; columns
        ``cnr`` (:func:`~medlab.metrics.cnr` with ``noise_mask``), ``noise`` (standard deviation
        in ``noise_mask``, image units, e.g. HU), ``ssim`` (:func:`~medlab.metrics.ssim` against
        the original, 1 = unchanged) and ``seconds`` (wall time of the denoiser's call; 0 for
        the original).
    results : dict of str to ndarray
        Each denoiser's output as a ``(z, y, x)`` array, to show it.

    Raises
    ------
    ValueError
        If ``denoisers`` is empty or names a denoiser ``'original'``, or a mask does not
        match the image.
    TypeError
        If a denoiser is not callable or does not return a ``sitk.Image``.
    """
    import pandas as pd

    if not isinstance(image, sitk.Image):
        raise TypeError(f"`image` must be a SimpleITK.Image; got {type(image).__name__}")
    if not isinstance(denoisers, Mapping) or not denoisers:
        raise ValueError("`denoisers` must be a non-empty mapping of name -> function")
    if "original" in denoisers:
        raise ValueError("`denoisers` must not name a denoiser 'original': that row is the unfiltered image")
    for name, f in denoisers.items():
        if not callable(f):
            raise TypeError(f"`denoisers[{name!r}]` must be callable; got {type(f).__name__}")
    original = sitk.GetArrayFromImage(image)
    noise = mask_array(noise_mask, original, name="noise_mask")
    results, seconds = {}, {"original": 0.0}
    for name, f in denoisers.items():
        t0 = time.perf_counter()
        out = f(image)
        seconds[name] = time.perf_counter() - t0
        if not isinstance(out, sitk.Image):
            raise TypeError(f"`denoisers[{name!r}]` must return a SimpleITK.Image; got {type(out).__name__}")
        results[name] = sitk.GetArrayFromImage(out)
    rows = {
        name: {
            "cnr": cnr(arr, signal_mask, background_mask, noise_mask=noise),
            "noise": float(np.std(arr[noise].astype(np.float64))),
            "ssim": ssim(original, arr),
            "seconds": seconds[name],
        }
        for name, arr in {"original": original, **results}.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index"), results
