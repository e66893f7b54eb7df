"""Edge-based segmentation: Canny regions, marker watershed, level sets, fast marching.

Level sets follow ITK's convention: the contour is the zero level of a function that is
negative inside. An initial mask is turned into its signed distance map in mm; the result is
the mask where the evolved function is negative. The long-running level sets take a
``progress(fraction, message)`` callable (return False to stop; :class:`InterruptedError` is
then raised), exactly like :mod:`medlab.filters`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._image import copy_geometry
from medlab._options import check_int, check_positive
from medlab._progress import run_filter
from medlab.filters import canny

from ._common import (
    binary_image,
    bounds,
    check_connectivity,
    check_number,
    companion,
    float_image,
    integer_labels,
    scalar_image,
    seeds_to_sitk,
    view,
)
from ._morphology import closing, fill_holes

__all__ = [
    "canny",
    "canny_regions",
    "edge_speed",
    "fast_marching",
    "geodesic_active_contour",
    "threshold_level_set",
    "watershed",
]


def _check_min_size(img: sitk.Image, minimum: int, what: str):
    size = img.GetSize()[::-1]
    if min(size) < minimum:
        raise ValueError(f"`image` (shape {size}) must have at least {minimum} voxels along every axis for {what}")


def _gradient(f: sitk.Image, sigma_mm) -> sitk.Image:
    if sigma_mm is None:
        return sitk.GradientMagnitude(f, True)
    sigma = check_positive("sigma_mm", sigma_mm)
    _check_min_size(f, 4, "recursive Gaussian derivatives")
    return sitk.GradientMagnitudeRecursiveGaussian(f, sigma, False)


def _speed(f: sitk.Image, sigma_mm, edge_scale) -> sitk.Image:
    """``1 / (1 + (|grad| / K) ** 2)`` as float32."""
    grad = _gradient(f, sigma_mm)  # keep the image alive while its array view is used
    g = view(grad).astype(np.float64)
    if edge_scale is None:
        # Perona & Malik (1990): K at 90 % of the cumulative histogram of |gradient|
        k = float(np.percentile(g, 90))
        a = view(f)
        scale = float(max(abs(a.max()), abs(a.min()))) or 1.0
        # float32 Gaussian derivatives of a constant image are rounding noise of about
        # 1e-7 * scale per voxel; anything that small is no edge
        if not k > 1e-5 * scale / min(f.GetSpacing()):
            k = scale  # no edges above rounding noise (a constant image): speed 1 everywhere
    else:
        k = check_positive("edge_scale", edge_scale)
    speed = (1.0 / (1.0 + (g / k) ** 2)).astype(np.float32)
    return copy_geometry(speed, f)


def edge_speed(image, *, sigma_mm=1.0, edge_scale=None, spacing=None):
    """Edge-stopping speed ``g = 1 / (1 + (|grad I| / K) ** 2)``, near 1 in flat regions and
    near 0 on strong edges (the feature image of level sets and fast marching).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    sigma_mm : float or None
        Standard deviation (mm) of the Gaussian derivative; None: central differences.
    edge_scale : float, optional
        ``K`` in intensity units per mm: gradients much stronger than it stop a front.
        Default: the 90th percentile of ``|grad I|`` over the image (Perona & Malik 1990).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        Values in ``(0, 1]``.
    """
    img, back = scalar_image(image, spacing)
    return back(_speed(float_image(img), sigma_mm, edge_scale))


def canny_regions(image, *, sigma_mm=1.0, low=None, high=None, closing_mm=None, slice_wise=False,
                  spacing=None):
    """Regions enclosed by Canny edges: edges of :func:`medlab.filters.canny`, optionally
    closed, then holes filled.

    Works for objects whose whole boundary is an edge (a contour without gaps, after the
    optional closing); the result contains the edge voxels and everything they enclose.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, at least 4 voxels along every axis.
    sigma_mm : float
        Gaussian standard deviation (mm) of the edge detector.
    low, high : float, optional
        Hysteresis thresholds on the gradient magnitude (intensity/mm); see
        :func:`medlab.filters.canny`.
    closing_mm : float, optional
        Radius (mm) of a morphological closing of the edges, to bridge small gaps.
    slice_wise : bool
        Fill holes per axial slice (z) instead of in 3D.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    img, back = scalar_image(image, spacing)
    edges = canny(img, sigma_mm=sigma_mm, low=low, high=high)
    if closing_mm is not None:
        edges = closing(edges, closing_mm)
    return back(fill_holes(edges, slice_wise=slice_wise))


def watershed(image, markers, *, sigma_mm=1.0, line=False, connectivity="face", spacing=None):
    """Marker-controlled watershed of the gradient magnitude.

    Each marker label floods the gradient-magnitude image from its voxels
    (``sitk.MorphologicalWatershedFromMarkers``); every voxel ends up with the label of the
    marker whose flood reaches it first, so regions meet on the ridges of the gradient,
    i.e. on the edges of the image.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    markers : sitk.Image or ndarray
        Label image on the same grid: 0 unlabeled, 1..n markers (e.g. one inside the object
        and one in the background).
    sigma_mm : float or None
        Gaussian derivative scale (mm) of the gradient; None: central differences.
    line : bool
        Keep a one-voxel watershed line (label 0) between regions.
    connectivity : {'face', 'full'}
        Flooding neighbours.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray
        Label image with the markers' labels (and pixel type, if integer).
    """
    full = check_connectivity(connectivity)
    img, back = scalar_image(image, spacing)
    mk = companion(img, markers, names=("image", "markers"), given_sitk=isinstance(image, sitk.Image))
    mk = integer_labels(scalar_image(mk, None, "markers")[0], "markers")
    if not view(mk).any():
        raise ValueError("`markers` has no labelled voxel (all 0)")
    grad = _gradient(float_image(img), sigma_mm)
    return back(sitk.MorphologicalWatershedFromMarkers(grad, mk, bool(line), full))


def _initial_level_set(img: sitk.Image, initial, given_sitk: bool) -> sitk.Image:
    init = companion(img, initial, names=("image", "initial"), given_sitk=given_sitk)
    m, _ = binary_image(init, None, "initial")
    if not view(m).any():
        raise ValueError("`initial` selects no voxels: a level set needs a starting region")
    # Signed distance (mm) whose zero level lies on the voxel faces between the region and the
    # rest: -(distance to the nearest outside voxel) inside, +(distance to the nearest inside
    # voxel) outside. (SimpleITK's signed Maurer map is 0 on the region's boundary voxels, so a
    # thin or ragged region, all boundary, would start with nothing inside and vanish.)
    def dist(x):
        d = sitk.SignedMaurerDistanceMap(x, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
        return sitk.GetArrayFromImage(d)  # a copy: a view would not outlive ``d``

    inside = view(m) != 0
    ls = np.where(inside, -dist(sitk.Equal(m, 0)), dist(m)).astype(np.float32)
    return copy_geometry(ls, m)


def _run_level_set(filt, inputs, iterations, progress, name, img):
    count = [0]

    def describe():
        count[0] += 1
        # (SimpleITK updates the RMS change only when Execute returns, so it is not reported)
        return count[0] / iterations, f"iteration {count[0]}/{iterations}"

    ls = run_filter(filt, inputs, progress, describe, name)
    out = sitk.Less(ls, 0.0)
    out.CopyInformation(img)
    return out


def _level_set_options(iterations, max_rms_error, propagation, curvature):
    return (
        check_int("iterations", iterations, minimum=1),
        check_positive("max_rms_error", max_rms_error, allow_zero=True),
        check_number("propagation", propagation),
        check_positive("curvature", curvature, allow_zero=True),
    )


def geodesic_active_contour(image, initial, *, propagation=1.0, curvature=1.0, advection=1.0,
                            iterations=200, max_rms_error=0.01, sigma_mm=1.0, edge_scale=None,
                            progress=None, spacing=None):
    """Geodesic active contour (Caselles, Kimmel & Sapiro 1997) from an initial region.

    The contour moves with speed ``g * (propagation + curvature * kappa) + advection * (grad g
    . n)``, where ``g`` is :func:`edge_speed`: it expands (``propagation > 0``) or shrinks
    (``< 0``) through flat regions, slows down on edges, is pulled onto edges by the advection
    term and kept smooth by the curvature term. ``sitk.GeodesicActiveContourLevelSetImageFilter``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D.
    initial : sitk.Image or ndarray
        Initial region (nonzero = inside), same grid: e.g. a region-growing result or a
        small sphere around a seed.
    propagation : float
        Balloon force; positive expands, negative shrinks.
    curvature : float
        Smoothness weight, >= 0.
    advection : float
        Weight of the attraction to edges, >= 0.
    iterations : int
        Maximum number of iterations, >= 1.
    max_rms_error : float
        Stop when the RMS change of the level set in one iteration falls below this.
    sigma_mm : float or None
        Gaussian derivative scale (mm) of the edge map.
    edge_scale : float, optional
        ``K`` of :func:`edge_speed` (intensity/mm); default its 90th-percentile rule.
    progress : callable, optional
        ``progress(fraction, message)`` after each iteration; return False to stop.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        The final region (level set < 0).

    Raises
    ------
    InterruptedError
        If ``progress`` returned False.
    """
    iterations, rms, propagation, curvature = _level_set_options(iterations, max_rms_error, propagation, curvature)
    advection = check_positive("advection", advection, allow_zero=True)
    img, back = scalar_image(image, spacing)
    ls = _initial_level_set(img, initial, isinstance(image, sitk.Image))
    feature = _speed(float_image(img), sigma_mm, edge_scale)
    filt = sitk.GeodesicActiveContourLevelSetImageFilter()
    filt.SetPropagationScaling(propagation)
    filt.SetCurvatureScaling(curvature)
    filt.SetAdvectionScaling(advection)
    filt.SetNumberOfIterations(iterations)
    filt.SetMaximumRMSError(rms)
    return back(_run_level_set(filt, [ls, feature], iterations, progress, "geodesic_active_contour", img))


def threshold_level_set(image, initial, *, lower, upper, propagation=1.0, curvature=1.0,
                        iterations=500, max_rms_error=0.01, progress=None, spacing=None):
    """Level set that grows inside an intensity range and shrinks outside it.

    ``sitk.ThresholdSegmentationLevelSetImageFilter``: the speed is positive where
    ``lower <= image <= upper`` and negative outside, so the front expands over the range and
    stops at its limits, while the curvature term keeps it smooth (unlike a flood fill, it
    does not leak through one-voxel bridges and fills small dark holes).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D.
    initial : sitk.Image or ndarray
        Initial region (nonzero = inside), same grid.
    lower, upper : float
        Intensity range (image units), ``lower <= upper``.
    propagation : float
        Weight of the threshold speed.
    curvature : float
        Smoothness weight, >= 0.
    iterations : int
        Maximum number of iterations, >= 1.
    max_rms_error : float
        Stop when the RMS change of the level set in one iteration falls below this.
    progress : callable, optional
        ``progress(fraction, message)`` after each iteration; return False to stop.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8

    Raises
    ------
    InterruptedError
        If ``progress`` returned False.
    """
    iterations, rms, propagation, curvature = _level_set_options(iterations, max_rms_error, propagation, curvature)
    img, back = scalar_image(image, spacing)
    lo, hi, _ = bounds(img, check_number("lower", lower), check_number("upper", upper))
    ls = _initial_level_set(img, initial, isinstance(image, sitk.Image))
    filt = sitk.ThresholdSegmentationLevelSetImageFilter()
    filt.SetLowerThreshold(lo)
    filt.SetUpperThreshold(hi)
    filt.SetPropagationScaling(propagation)
    filt.SetCurvatureScaling(curvature)
    filt.SetNumberOfIterations(iterations)
    filt.SetMaximumRMSError(rms)
    return back(_run_level_set(filt, [ls, float_image(img)], iterations, progress, "threshold_level_set", img))


def fast_marching(image, *, seeds_index=None, seeds_mm=None, stopping_value, sigma_mm=1.0,
                  edge_scale=None, return_time=False, spacing=None):
    """Front propagation from seeds with the edge speed; the region reached by a given time.

    Solves the eikonal equation ``|grad T| * g = 1`` from the seeds (``T = 0`` there) with
    ``sitk.FastMarchingImageFilter``, where ``g`` is :func:`edge_speed`. ``T`` is in mm of
    travel at unit speed: in a flat region it is the distance to the seed, and it grows
    quickly across edges. The result is ``T <= stopping_value``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, 2D or 3D.
    seeds_index, seeds_mm : optional
        Seeds, exactly one of the two (see :func:`connected_threshold`).
    stopping_value : float
        Arrival time (mm at unit speed) where the front stops, > 0. About the radius of the
        object in mm for a seed near its centre.
    sigma_mm : float or None
        Gaussian derivative scale (mm) of the edge map.
    edge_scale : float, optional
        ``K`` of :func:`edge_speed` (intensity/mm).
    return_time : bool
        Also return the arrival time image (float32, mm; voxels not reached hold a very large
        value).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    mask : sitk.Image or ndarray of uint8
    time : sitk.Image or ndarray of float32
        Only with ``return_time=True``.
    """
    stop = check_positive("stopping_value", stopping_value)
    img, back = scalar_image(image, spacing)
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    speed = _speed(float_image(img), sigma_mm, edge_scale)
    filt = sitk.FastMarchingImageFilter()
    filt.SetTrialPoints([list(s) for s in seeds])
    # ITK stops once the front passes the stopping value; margin so every voxel <= it is final
    filt.SetStoppingValue(stop * 1.01 + float(max(img.GetSpacing())))
    t = filt.Execute(speed)
    mask = sitk.LessEqual(t, stop)
    if return_time:
        tf = sitk.Cast(sitk.Clamp(t, sitk.sitkFloat64, 0.0, float(np.finfo(np.float32).max)), sitk.sitkFloat32)
        return back(mask), back(tf)
    return back(mask)

