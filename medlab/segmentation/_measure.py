"""RECIST-style size of a segmented lesion: the longest in-plane (axial) diameter.

RECIST 1.1 (Eisenhauer et al. 2009) measures a target lesion by its longest diameter in the
axial plane, on the slice where it is longest. Here the diameter of one slice is the largest
distance in mm between the centres of two lesion voxels of that slice (a voxel-centre Feret
diameter); it is found among the vertices of the convex hull of the slice's boundary voxels,
which hold the farthest pair. Voxel centres, not voxel edges: a caliper across a digitised
disc of radius ``r`` reads ``2 r``, not ``2 r`` plus a voxel.

The axial plane is the plane of the first numpy axis, ``(z, y, x)`` -> each ``z`` slice; for an
axially acquired CT that is the patient's axial plane. Direction cosines rotate both in-plane
axes together, so they change no in-plane distance.

Ellipse fit of a 2D outline (:func:`fit_ellipse`): an ellipse fitted to the sub-pixel boundary
(the ``level`` contour) of a mask or probability map, in millimetres, with its perimeter by
Ramanujan's second approximation (:func:`ellipse_circumference`; relative error below 1e-9 for
axis ratios up to 3) and the misfit of the outline (:func:`ellipse_residual`). Two fits
(``method``, :data:`ELLIPSE_METHODS`):

``'opencv'`` (default)
    OpenCV's ``fitEllipse``: algebraic least squares (Fitzgibbon & Fisher 1995).
``'skimage'``
    scikit-image's ``EllipseModel``: total least squares (Halir & Flusser 1998).

An object cut by the image border has a boundary that runs along the border; those points are
the image edge, not the object, and are left out of the fit (``exclude_border``), so the ellipse
is fitted to the visible arc and continues beyond the image. The fetal head circumference
(:func:`medlab.models.head_circumference`) is built on these.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from medlab._image import mask_array, spacing_zyx, to_array
from medlab._options import check_choice

__all__ = ["Diameter", "longest_diameter", "Ellipse", "EllipseFit", "ELLIPSE_METHODS", "fit_ellipse", "ellipse_circumference",
           "ellipse_residual"]


class Diameter(NamedTuple):
    """The longest in-plane diameter of a lesion.

    ``diameter_mm``: its length; ``slice_index``: the ``z`` index of its slice (None for a 2D
    mask); ``endpoints_index``: its two end voxels as numpy indexes ``(z, y, x)`` (2D:
    ``(y, x)``); ``endpoints_mm``: the same as physical points ``(x, y[, z])`` in mm (SimpleITK
    order; from the image geometry, or from ``spacing`` with origin 0 for numpy input).
    """

    diameter_mm: float
    slice_index: int | None
    endpoints_index: tuple
    endpoints_mm: tuple


def _boundary_2d(m: np.ndarray) -> np.ndarray:
    """Voxels of ``m`` with a face neighbour outside it (outside the slice counts as outside)."""
    p = np.pad(m, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def _farthest_pair(points_mm: np.ndarray) -> tuple[float, int, int]:
    """Largest distance among ``points_mm`` (n, 2) and the indexes of that pair."""
    from scipy.spatial import ConvexHull, QhullError  # lazy: scipy.spatial is slow to import

    candidates = np.arange(len(points_mm))
    if len(points_mm) > 3:
        try:
            candidates = ConvexHull(points_mm).vertices
        except QhullError:  # all points on one line: its two extreme points are the pair
            centred = points_mm - points_mm.mean(axis=0)
            direction = np.linalg.svd(centred, full_matrices=False)[2][0]
            t = centred @ direction
            candidates = np.array([int(np.argmin(t)), int(np.argmax(t))])
    c = points_mm[candidates]
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    return float(np.sqrt(d2[i, j])), int(candidates[i]), int(candidates[j])


def longest_diameter(mask, *, spacing=None, return_info: bool = False):
    """Longest in-plane (axial) diameter of a lesion in mm, RECIST style.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Lesion mask (nonzero = lesion), 2D ``(y, x)`` or 3D ``(z, y, x)``; not empty. Every
        voxel counts, also those of separate pieces (segment one lesion per mask).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input (default 1 mm); a
        ``sitk.Image`` carries its own.
    return_info : bool
        Return a :class:`Diameter` (length, slice, end voxels, end points in mm) instead of
        the length alone.

    Returns
    -------
    float or Diameter
        The largest voxel-centre distance within one ``z`` slice, over all slices, in mm (a
        one-voxel lesion has diameter 0). Ties go to the first slice.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[-30:31, -30:31]
    >>> disc = (x**2 + y**2 <= 20**2)[None]          # radius 20 voxels, one slice
    >>> longest_diameter(disc, spacing=(3.0, 0.5, 0.5))
    20.0
    """
    if isinstance(mask, sitk.Image):
        if mask.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"`mask` must be a scalar image; got {mask.GetNumberOfComponentsPerPixel()} components")
        if spacing is not None:
            raise ValueError("`spacing` is taken from the SimpleITK `mask`; do not pass it too")
    m = mask_array(mask, mask, name="mask", image_name="mask")
    if m.ndim not in (2, 3):
        raise ValueError(f"`mask` must be 2D (y, x) or 3D (z, y, x); got {m.ndim} dimensions")
    sp = spacing_zyx(mask, spacing)
    slices = m[None] if m.ndim == 2 else m
    best = (-1.0, 0, None, None)
    for z in np.flatnonzero(slices.any(axis=(1, 2))):
        yx = np.argwhere(_boundary_2d(slices[z]))
        length, i, j = _farthest_pair(yx * np.asarray(sp[-2:], dtype=np.float64))
        if length > best[0]:
            best = (length, int(z), tuple(int(v) for v in yx[i]), tuple(int(v) for v in yx[j]))
    length, z, a, b = best
    if not return_info:
        return length
    ends = (a, b) if m.ndim == 2 else ((z, *a), (z, *b))
    if isinstance(mask, sitk.Image):
        ends_mm = tuple(tuple(mask.TransformIndexToPhysicalPoint([int(v) for v in e[::-1]])) for e in ends)
    else:
        ends_mm = tuple(tuple(float(v * s) for v, s in zip(e[::-1], sp[::-1], strict=True)) for e in ends)
    return Diameter(length, None if m.ndim == 2 else z, ends, ends_mm)


# ----------------------------------------------------------------------------- ellipse fit

ELLIPSE_METHODS = ("opencv", "skimage")


class Ellipse(NamedTuple):
    """An ellipse in mm.

    ``centre_mm``: ``(x, y)`` from the first pixel's centre (numpy input) or in the image's
    physical frame without its origin and direction (the pixel grid times the spacing);
    ``semi_axes_mm``: ``(a, b)`` with ``a >= b``; ``angle_deg``: the angle of the ``a`` axis to the
    x axis (degrees in [0, 180), y pointing down the rows); ``circumference_mm``: the perimeter
    (:func:`ellipse_circumference`).
    """

    centre_mm: tuple
    semi_axes_mm: tuple
    angle_deg: float
    circumference_mm: float


_NAN_ELLIPSE = Ellipse((math.nan, math.nan), (math.nan, math.nan), math.nan, math.nan)


class EllipseFit(NamedTuple):
    """An ellipse fit with what it was fitted to (:func:`fit_ellipse` with ``return_info=True``).

    ``ellipse``: the :class:`Ellipse`; ``points_mm``: the ``(n, 2)`` outline points ``(x, y)`` in
    mm that were fitted (without those on the image border when ``exclude_border``), in the frame
    of ``ellipse.centre_mm``; ``border_share``: the share of the whole outline that runs along the
    image border (0: the object is inside the image; NaN without an outline).
    """

    ellipse: Ellipse
    points_mm: np.ndarray
    border_share: float


def ellipse_circumference(a: float, b: float) -> float:
    """Perimeter of an ellipse by Ramanujan's second approximation.

    ``pi (a + b) (1 + 3h / (10 + sqrt(4 - 3h)))`` with ``h = ((a - b) / (a + b)) ** 2``.

    Parameters
    ----------
    a, b : float
        Semi-axes (any length unit, >= 0); the perimeter has the same unit.

    Returns
    -------
    float
        Exact for a circle; relative error below 1e-9 for axis ratios up to 3, 4a (relative
        error about 4e-4) for a segment (``b = 0``).

    Raises
    ------
    ValueError
        A negative semi-axis.

    Examples
    --------
    >>> round(ellipse_circumference(2.0, 1.0), 6)
    9.688448
    """
    if a < 0 or b < 0:
        raise ValueError(f"semi-axes `a`, `b` must be >= 0; got {a!r}, {b!r}")
    if a + b == 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def _boundary_points(arr: np.ndarray, level: float) -> np.ndarray:
    """``(row, col)`` points of the longest ``level`` contour (the object, not a stray blob)."""
    from skimage.measure import find_contours  # lazy: skimage.measure is slow to import

    contours = find_contours(np.pad(arr.astype(np.float64), 1), level)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=len) - 1.0  # undo the padding (closes contours at the border)


def _on_border(pts: np.ndarray, shape) -> np.ndarray:
    """Contour points (row, col) that lie on the image border (the padding closed them there)."""
    return (pts[:, 0] < -0.25) | (pts[:, 1] < -0.25) | (pts[:, 0] > shape[0] - 0.75) | (pts[:, 1] > shape[1] - 0.75)


def fit_ellipse(mask, *, method: str = "opencv", spacing=None, level: float = 0.5,
                exclude_border: bool = True, return_info: bool = False):
    """Fit an ellipse to the boundary of a 2D mask or probability map, in millimetres.

    Parameters
    ----------
    mask : sitk.Image or ndarray
        2D mask (nonzero inside) or a probability map in [0, 1] (then the ``level`` contour is
        the boundary, at sub-pixel precision). Only the longest contour counts (the object,
        not a stray blob).
    method : {'opencv', 'skimage'}
        The fitting algorithm (module docstring).
    spacing : sequence of float, optional
        Pixel size of numpy input in mm, ``(y, x)`` (default 1); a ``sitk.Image`` carries its
        own.
    level : float
        Contour level.
    exclude_border : bool
        Leave out the parts of the boundary that run along the image border: an object cut by
        the border is then fitted to its visible arc only (the ellipse continues beyond the
        image) instead of to the straight image edge.
    return_info : bool
        Return an :class:`EllipseFit` (the ellipse, the outline points it was fitted to and the
        share of the outline on the image border, e.g. for :func:`ellipse_residual` or a quality
        check) instead of the ellipse alone.

    Returns
    -------
    Ellipse or EllipseFit
        All NaN when there is no boundary (fewer than 6 points) or the fit fails.

    Raises
    ------
    ValueError
        An unknown ``method`` or a mask that is not 2D.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:200, :300]
    >>> disk = ((xx - 150) / 100.0) ** 2 + ((yy - 100) / 60.0) ** 2 <= 1
    >>> e = fit_ellipse(disk, spacing=(0.1, 0.1))
    >>> [round(v, 1) for v in e.semi_axes_mm]
    [10.0, 6.0]
    """
    fit = _fit_ellipse(mask, method=method, spacing=spacing, level=level, exclude_border=exclude_border)
    return fit if return_info else fit.ellipse


def _fit_ellipse(mask, *, method, spacing, level, exclude_border) -> EllipseFit:
    check_choice("method", method, ELLIPSE_METHODS)
    sp = spacing_zyx(mask, spacing)
    arr = to_array(mask)
    if arr.ndim != 2:
        raise ValueError(f"`mask` must be 2D; got shape {arr.shape}")
    if arr.dtype == bool or arr.dtype.kind in "iu":
        arr = (arr != 0).astype(np.float64)
    pts = _boundary_points(arr, level)
    border = _on_border(pts, arr.shape) if len(pts) else np.zeros(0, bool)
    border_share = float(border.mean()) if len(pts) else math.nan
    if exclude_border:
        pts = pts[~border]
    xy = np.column_stack([pts[:, 1] * sp[1], pts[:, 0] * sp[0]])
    if len(pts) < 6:
        return EllipseFit(_NAN_ELLIPSE, xy, border_share)
    if method == "opencv":
        import cv2  # lazy: OpenCV is slow to import

        (cx, cy), (w, h), angle = cv2.fitEllipse(xy.astype(np.float32))
        a, b = w / 2.0, h / 2.0
    else:
        from skimage.measure import EllipseModel

        model = EllipseModel.from_estimate(xy)
        if not model:
            return EllipseFit(_NAN_ELLIPSE, xy, border_share)
        (cx, cy), (a, b), angle = model.center, model.axis_lengths, math.degrees(model.theta)
    if b > a:
        a, b, angle = b, a, angle + 90.0
    if not (np.isfinite([a, b]).all() and a > 0 and b > 0):
        return EllipseFit(_NAN_ELLIPSE, xy, border_share)
    e = Ellipse((float(cx), float(cy)), (float(a), float(b)), float(angle % 180.0), ellipse_circumference(a, b))
    return EllipseFit(e, xy, border_share)


def ellipse_residual(ellipse: Ellipse, points_mm) -> float:
    """How far an outline is from an ellipse: the RMS radial distance, relative to the radius.

    Parameters
    ----------
    ellipse : Ellipse
        E.g. :func:`fit_ellipse` of the outline.
    points_mm : (n, 2) array_like
        Outline points ``(x, y)`` in mm, in the frame of ``ellipse.centre_mm``.

    Returns
    -------
    float
        Root-mean-square of the radial distance (along the ray from the centre) of each point
        from the ellipse, divided by the ellipse's mean radius ``sqrt(a b)``: 0 for points on
        the ellipse; NaN without points or for a NaN ellipse.

    Examples
    --------
    >>> e = Ellipse((0.0, 0.0), (2.0, 2.0), 0.0, ellipse_circumference(2.0, 2.0))
    >>> round(ellipse_residual(e, [[2.2, 0.0], [0.0, 2.2]]), 6)
    0.1
    """
    pts = np.asarray(points_mm, float).reshape(-1, 2)
    if not len(pts) or not np.isfinite(ellipse.circumference_mm):
        return math.nan
    (cx, cy), (a, b) = ellipse.centre_mm, ellipse.semi_axes_mm
    t = math.radians(ellipse.angle_deg)
    dx, dy = pts[:, 0] - cx, pts[:, 1] - cy
    u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
    r = np.hypot(u, v)
    phi = np.arctan2(v, u)
    r_ellipse = a * b / np.hypot(b * np.cos(phi), a * np.sin(phi))
    return float(np.sqrt(np.mean((r - r_ellipse) ** 2)) / math.sqrt(a * b))
