"""Region growing from seeds: connected threshold, confidence connected, neighbourhood connected,
and PET percent-of-local-SUVmax growing.

Seeds are given either as numpy indexes ``seeds_index=[(z, y, x), ...]`` or as physical
points ``seeds_mm=[(x, y, z), ...]`` in mm (exactly one of the two); both become SimpleITK
indexes ``(x, y, z)`` internally. A ``sitk.Image`` is passed to SimpleITK as it is (no copy), so
the cost over the raw SimpleITK filter is a few microseconds of argument checks.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from medlab._options import check_int, check_positive, is_int

from ._common import (
    bounds,
    check_connectivity,
    empty_like,
    scalar_image,
    seeds_to_sitk,
    view,
)
from ._threshold import check_percent, percent_threshold

_FACE = sitk.ConnectedThresholdImageFilter.FaceConnectivity
_FULL = sitk.ConnectedThresholdImageFilter.FullConnectivity


def connected_threshold(image, *, seeds_index=None, seeds_mm=None, lower=None, upper=None,
                        connectivity="face", spacing=None):
    """Voxels connected to the seeds through voxels with ``lower <= image <= upper``.

    ``sitk.ConnectedThreshold`` (flood fill). A seed whose own value is outside the range
    grows nothing; if every seed is outside, the result is empty.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D, numpy index order ``(z, y, x)``.
    seeds_index : sequence of (z, y, x) or (y, x) int tuples, optional
        Seeds as numpy indexes. One seed may be given as a single tuple.
    seeds_mm : sequence of (x, y, z) or (x, y) float tuples, optional
        Seeds as physical points in mm (SimpleITK order); each selects the voxel containing
        it. Give exactly one of ``seeds_index`` and ``seeds_mm``.
    lower, upper : float, optional
        Inclusive intensity range (image units); at least one. A missing bound is open.
    connectivity : {'face', 'full'}
        Neighbours: 'face' (4 in 2D, 6 in 3D) or 'full' (8 / 26).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input (used to place ``seeds_mm``).

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 in the grown region, 0 elsewhere; same kind as ``image``.

    Raises
    ------
    ValueError
        If both or neither seed arguments are given, or a seed is outside the image (the
        message names the seed and the image extent).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0, 9, 9, 0, 9]])
    >>> connected_threshold(img, seeds_index=[(0, 1)], lower=5)
    array([[0, 1, 1, 0, 0]], dtype=uint8)
    """
    img, back = scalar_image(image, spacing)
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    lo, hi, empty = bounds(img, lower, upper)
    conn = _FULL if check_connectivity(connectivity) else _FACE
    if empty:
        return back(empty_like(img))
    return back(sitk.ConnectedThreshold(img, seeds, lo, hi, 1, conn))


def confidence_connected(image, *, seeds_index=None, seeds_mm=None, multiplier=2.5, iterations=4,
                         initial_radius_voxels=1, spacing=None):
    """Region growing with a range learnt from the region: ``mean +- multiplier * std``.

    ``sitk.ConfidenceConnected``: the mean and standard deviation are first measured in a box
    of ``initial_radius_voxels`` around the seeds; the region connected to the seeds (face
    connectivity) within ``mean +- multiplier * std`` is grown; then the statistics are
    re-measured over the region and it is grown again, ``iterations`` times.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D.
    seeds_index, seeds_mm : optional
        Seeds, exactly one of the two (see :func:`connected_threshold`).
    multiplier : float
        Width of the accepted range in standard deviations, > 0.
    iterations : int
        Re-estimation rounds, >= 0 (0: grow once with the initial statistics).
    initial_radius_voxels : int
        Half-size in voxels (all axes) of the box around each seed for the first statistics,
        >= 1.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    multiplier = check_positive("multiplier", multiplier)
    iterations = check_int("iterations", iterations, minimum=0)
    radius = check_int("initial_radius_voxels", initial_radius_voxels, minimum=1)
    img, back = scalar_image(image, spacing, finite=True)
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    return back(sitk.ConfidenceConnected(img, seeds, iterations, multiplier, radius, 1))


def neighborhood_connected(image, *, seeds_index=None, seeds_mm=None, lower=None, upper=None,
                           radius_voxels=1, spacing=None):
    """Region growing that accepts a voxel only if its whole neighbourhood is in range.

    ``sitk.NeighborhoodConnected``: like :func:`connected_threshold`, but a voxel joins only
    when every voxel of the box of ``radius_voxels`` around it has
    ``lower <= image <= upper``, which stops leaks through thin bridges and noisy voxels.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D.
    seeds_index, seeds_mm : optional
        Seeds, exactly one of the two (see :func:`connected_threshold`).
    lower, upper : float, optional
        Inclusive intensity range; at least one.
    radius_voxels : int or sequence of int
        Box half-size in voxels, one value or one per axis (array axis order), >= 0.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    img, back = scalar_image(image, spacing)
    nd = img.GetDimension()
    radius = (radius_voxels,) * nd if is_int(radius_voxels) else tuple(radius_voxels)
    if len(radius) != nd or not all(is_int(r) and r >= 0 for r in radius):
        raise ValueError(
            f"`radius_voxels` must be an int >= 0 or {nd} of them (array axis order); got {radius_voxels!r}"
        )
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    lo, hi, empty = bounds(img, lower, upper)
    if empty:
        return back(empty_like(img))
    return back(sitk.NeighborhoodConnected(img, seeds, lo, hi, [int(r) for r in radius[::-1]], 1))


def local_max(img: sitk.Image, seeds, radius_mm: float):
    """``(value, sitk index)`` of the maximum within ``radius_mm`` of any seed (sitk indexes)."""
    arr = view(img)
    sp = np.array(img.GetSpacing()[::-1])
    best, best_idx = -math.inf, None
    for seed in seeds:
        c = np.array(seed[::-1])
        half = np.floor(radius_mm / sp).astype(int)
        lo = np.maximum(c - half, 0)
        hi = np.minimum(c + half + 1, arr.shape)
        box = arr[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        d2 = sum(
            ((np.arange(a, b) - ci) * s).reshape([-1 if k == i else 1 for k in range(arr.ndim)]) ** 2
            for i, (a, b, ci, s) in enumerate(zip(lo, hi, c, sp, strict=True))
        )
        vals = np.where(d2 <= radius_mm**2 * (1 + 1e-12), box, -np.inf)
        k = int(np.argmax(vals))
        if vals.flat[k] > best:
            best = float(vals.flat[k])
            best_idx = tuple(int(v) for v in (np.unravel_index(k, box.shape) + lo)[::-1])
    return best, best_idx


def region_grow_percent_suvmax(pet, *, seeds_index=None, seeds_mm=None, percent=40.0,
                               search_radius_mm=10.0, background_suv=None, connectivity="face",
                               return_info=False, spacing=None):
    """PET lesion from a seed: the region connected to the local SUVmax above a percent of it.

    The classic fixed-fraction PET tumour delineation, made local: SUVmax is the maximum
    within ``search_radius_mm`` of the seed(s) (a reader clicks on the lesion, not exactly on
    its hottest voxel); the threshold is ``percent`` % of it (or, with ``background_suv``,
    ``background + percent% * (SUVmax - background)``); the result is the region connected to
    the SUVmax voxel (and to the seeds) with uptake ``>= threshold``. Unlike a global
    percent-of-SUVmax threshold, a hotter organ elsewhere neither sets the threshold nor
    joins the lesion unless it touches it above the threshold.

    All seeds are taken to mark one lesion; call once per lesion for several.

    Parameters
    ----------
    pet : sitk.Image or (M, N[, P]) ndarray
        PET in SUV, 2D or 3D.
    seeds_index, seeds_mm : optional
        Seeds, exactly one of the two (see :func:`connected_threshold`).
    percent : float
        Fraction of the local SUVmax in percent, in (0, 100]; 40-50 is usual.
    search_radius_mm : float
        Radius (mm) around each seed where SUVmax is looked for, >= 0 (0: the seed voxel).
    background_suv : float, optional
        Background uptake for the background-corrected threshold.
    connectivity : {'face', 'full'}
        Neighbours of the flood fill.
    return_info : bool
        Also return a dict with ``suvmax``, ``suvmax_index`` (numpy order ``(z, y, x)``),
        ``suvmax_mm`` (physical ``(x, y, z)``) and ``threshold`` (SUV).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    mask : sitk.Image or ndarray of uint8
    info : dict
        Only with ``return_info=True``.
    """
    percent = check_percent(percent)
    radius = check_positive("search_radius_mm", search_radius_mm, allow_zero=True)
    if background_suv is not None:
        background_suv = float(background_suv)
    img, back = scalar_image(pet, spacing, "pet", finite=True)
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    conn = _FULL if check_connectivity(connectivity) else _FACE
    suvmax, idx = local_max(img, seeds, radius)
    t = percent_threshold(suvmax, percent, background_suv)
    lo, hi, _ = bounds(img, min(t, suvmax), None)
    out = sitk.ConnectedThreshold(img, [idx, *seeds], lo, hi, 1, conn)
    out = back(out)
    if not return_info:
        return out
    info = {
        "suvmax": suvmax,
        "suvmax_index": idx[::-1],
        "suvmax_mm": tuple(img.TransformIndexToPhysicalPoint(idx)),
        "threshold": t,
    }
    return out, info
