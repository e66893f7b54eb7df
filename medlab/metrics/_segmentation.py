"""Segmentation metrics: overlap (Dice, Jaccard), boundary distances (Hausdorff, HD95, ASSD,
surface Dice) and volume difference.

Every function takes ``(prediction, truth)``: bool or integer numpy arrays indexed ``(z, y, x)``
(2D: ``(y, x)``) or SimpleITK label images, nonzero = inside. Distances are in mm: with numpy
input from the keyword ``spacing`` (mm, array axis order, default 1 mm), with SimpleITK input
from the image spacing (then ``spacing`` must not be given, and two images must share one grid).
The direction matrix is a rotation, so it changes no distance and is not needed here.

Definitions
-----------
Boundary
    The boundary of a mask is its set of voxels that have at least one face neighbour
    (4-connectivity in 2D, 6-connectivity in 3D) outside the mask; outside the image counts as
    outside, so a mask touching the image border has a boundary there.
Boundary distances
    For every boundary voxel of one mask, the Euclidean distance in mm (voxel centre to voxel
    centre) to the nearest boundary voxel of the other mask, computed exactly with
    ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``. The two directed sets,
    prediction -> truth and truth -> prediction, are what Hausdorff, HD95, ASSD and surface Dice
    summarise. Both masks are cropped to their joint bounding box (plus one voxel) first; every
    boundary voxel lies inside that box, so the crop changes no value.
HD95
    The 95th percentile of the *pooled* distances (both directed sets together, numpy's linear
    interpolation), as MedPy's ``hd95``; not the larger of the two directed 95th percentiles
    (MONAI, DeepMind). See :func:`hd95`.
Empty masks
    Both empty: the segmentations agree perfectly, so Dice = Jaccard = surface Dice = 1 and every
    distance is 0. Exactly one empty: Dice = Jaccard = surface Dice = 0 and every distance is
    ``inf``, because there is no surface to measure a distance to. MONAI likewise returns
    ``inf`` (or ``nan``, also when both are empty) with a warning. Filter or report such cases
    before averaging over a cohort.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medlab._image import check_same_grid, check_same_shape, check_scalar, check_spacing, spacing_zyx
from medlab._options import check_positive

__all__ = [
    "dice",
    "jaccard",
    "hausdorff",
    "hd95",
    "assd",
    "surface_dice",
    "volume_difference",
    "segmentation_scores",
]

# A distance within a nanometre of the tolerance counts as within it, so that a tolerance of a
# whole number of voxels is not lost to rounding (3 * 0.1 mm is 0.30000000000000004 in floats).
_TOLERANCE_SLACK_MM = 1e-6


class _Pair(NamedTuple):
    """Both masks as bool arrays cropped to their joint bounding box (plus one voxel)."""

    prediction: np.ndarray
    truth: np.ndarray
    spacing: tuple[float, ...]
    ndim: int


class _Distances(NamedTuple):
    """Directed boundary distances in mm (None when a mask is empty)."""

    prediction_to_truth: np.ndarray | None
    truth_to_prediction: np.ndarray | None


# ----------------------------------------------------------------------------- input handling


def _label_array(obj, name: str) -> np.ndarray:
    """``obj`` (array or sitk label image) as a bool array, nonzero = inside."""
    if isinstance(obj, sitk.Image):
        check_scalar(obj, name)
        arr = sitk.GetArrayViewFromImage(obj)
    elif isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
        arr = np.asarray(obj)
    else:
        raise TypeError(
            f"`{name}` must be a numpy array or a SimpleITK label image; got {type(obj).__name__}"
        )
    if arr.ndim not in (2, 3):
        raise ValueError(f"`{name}` must be a 2D or 3D mask; got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "f":
        # Labels stored as floats (e.g. read from NIfTI) are fine; a probability map is not.
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.trunc(arr))):
            raise ValueError(
                f"`{name}` must be a label mask (bool or integer values); got {arr.dtype} with "
                "non-integer values. Threshold it first, e.g. `probabilities > 0.5`"
            )
    elif kind not in "biu":
        raise TypeError(f"`{name}` must be a bool or integer mask; got dtype {arr.dtype}")
    return arr != 0


def _spacing(prediction, truth, spacing, ndim: int) -> tuple[float, ...]:
    for name, obj in (("prediction", prediction), ("truth", truth)):
        if isinstance(obj, sitk.Image):
            if spacing is not None:
                raise ValueError(
                    f"`spacing` is only for numpy input; `{name}` is a SimpleITK.Image with its "
                    f"own spacing {obj.GetSpacing()} (x, y, z)"
                )
            return spacing_zyx(obj)
    if spacing is None:
        return (1.0,) * ndim
    return check_spacing(spacing, ndim, "`prediction` and `truth`")


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels (clipped)."""
    out = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=others))
        out.append(slice(max(int(idx[0]) - margin, 0), int(idx[-1]) + 1 + margin))
    return tuple(out)


def _prepare(prediction, truth, spacing) -> _Pair:
    t = _label_array(truth, "truth")
    p = _label_array(prediction, "prediction")
    check_same_shape(t.shape, p.shape, names=("truth", "prediction"))
    if isinstance(prediction, sitk.Image) and isinstance(truth, sitk.Image):
        check_same_grid(truth, prediction, names=("truth", "prediction"))
    sp = _spacing(prediction, truth, spacing, p.ndim)
    union = p | t
    if not union.any():
        empty = tuple(slice(0, 0) for _ in range(p.ndim))
        return _Pair(p[empty], t[empty], sp, p.ndim)
    # The margin keeps one layer of background around both masks; with scipy's erosion
    # treating outside-the-array as outside, the boundaries are those of the full image.
    box = _bbox(union, 1)
    return _Pair(np.ascontiguousarray(p[box]), np.ascontiguousarray(t[box]), sp, p.ndim)


def _check_percentile(percentile) -> float:
    q = float(percentile)
    if not 0 <= q <= 100:
        raise ValueError(f"`percentile` must be in [0, 100]; got {percentile!r}")
    return q


# ----------------------------------------------------------------------------- computation


def _boundary(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=0)


def _distances(pair: _Pair) -> _Distances:
    """Directed boundary-to-boundary distances in mm; the only distance transforms done."""
    if not pair.prediction.any() or not pair.truth.any():
        return _Distances(None, None)
    edge_p = _boundary(pair.prediction)
    edge_t = _boundary(pair.truth)
    to_truth = ndimage.distance_transform_edt(~edge_t, sampling=pair.spacing)
    to_prediction = ndimage.distance_transform_edt(~edge_p, sampling=pair.spacing)
    return _Distances(to_truth[edge_p], to_prediction[edge_t])


def _empty_case(pair: _Pair) -> str | None:
    has_p, has_t = bool(pair.prediction.any()), bool(pair.truth.any())
    if has_p and has_t:
        return None
    return "both" if not (has_p or has_t) else "one"


def _hausdorff(d: _Distances, empty: str | None) -> float:
    if empty:
        return 0.0 if empty == "both" else math.inf
    return float(max(d.prediction_to_truth.max(), d.truth_to_prediction.max()))


def _hd(d: _Distances, empty: str | None, q: float) -> float:
    if empty:
        return 0.0 if empty == "both" else math.inf
    pooled = np.concatenate([d.prediction_to_truth, d.truth_to_prediction])
    return float(np.percentile(pooled, q))


def _assd(d: _Distances, empty: str | None) -> float:
    if empty:
        return 0.0 if empty == "both" else math.inf
    total = float(d.prediction_to_truth.sum()) + float(d.truth_to_prediction.sum())
    return total / (d.prediction_to_truth.size + d.truth_to_prediction.size)


def _surface_dice(d: _Distances, empty: str | None, tolerance_mm: float) -> float:
    if empty:
        return 1.0 if empty == "both" else 0.0
    limit = tolerance_mm + _TOLERANCE_SLACK_MM
    within = np.count_nonzero(d.prediction_to_truth <= limit) + np.count_nonzero(
        d.truth_to_prediction <= limit
    )
    return int(within) / (d.prediction_to_truth.size + d.truth_to_prediction.size)


def _overlap(pair: _Pair) -> tuple[float, float]:
    n_p = int(np.count_nonzero(pair.prediction))
    n_t = int(np.count_nonzero(pair.truth))
    if n_p + n_t == 0:
        return 1.0, 1.0
    inter = int(np.count_nonzero(pair.prediction & pair.truth))
    return 2 * inter / (n_p + n_t), inter / (n_p + n_t - inter)


def _volumes(pair: _Pair) -> dict:
    voxel = math.prod(pair.spacing)  # mm^3 (3D) or mm^2 (2D)
    per_unit, unit = (1000.0, "ml") if pair.ndim == 3 else (1.0, "mm2")
    vp = int(np.count_nonzero(pair.prediction)) * voxel / per_unit
    vt = int(np.count_nonzero(pair.truth)) * voxel / per_unit
    if vt > 0:
        relative = (vp - vt) / vt
    else:
        relative = math.inf if vp > 0 else 0.0
    return {
        f"prediction_{unit}": vp,
        f"truth_{unit}": vt,
        f"difference_{unit}": vp - vt,
        "relative": relative,
    }


# ----------------------------------------------------------------------------- public API

def dice(prediction, truth) -> float:
    """Dice similarity coefficient ``2 |P & T| / (|P| + |T|)``.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((6, 6), bool); truth[1:5, 1:5] = True
    >>> prediction = np.roll(truth, 1, axis=1)
    >>> dice(prediction, truth)
    0.75
    """
    return _overlap(_prepare(prediction, truth, None))[0]


def jaccard(prediction, truth) -> float:
    """Jaccard index (intersection over union) ``|P & T| / |P | T|``.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is. Related to Dice by
        ``J = D / (2 - D)``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((6, 6), bool); truth[1:5, 1:5] = True
    >>> jaccard(np.roll(truth, 1, axis=1), truth)
    0.6
    """
    return _overlap(_prepare(prediction, truth, None))[1]


def hausdorff(prediction, truth, *, spacing=None) -> float:
    """Symmetric Hausdorff distance between the two boundaries, in mm.

    The largest boundary distance in either direction:
    ``max(max_p d(p, dT), max_t d(t, dP))`` over boundary voxels (see the module docstring).
    For masks without holes this equals ``sitk.HausdorffDistanceImageFilter``, which measures
    from all object voxels; for a mask with a hole or an enclosed other mask it can be larger.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.

    Returns
    -------
    float
        mm; 0.0 when both masks are empty, ``inf`` when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((8, 8), bool); truth[2:5, 2:5] = True
    >>> hausdorff(np.roll(truth, 2, axis=0), truth, spacing=(1.5, 1.0))
    3.0
    """
    pair = _prepare(prediction, truth, spacing)
    return _hausdorff(_distances(pair), _empty_case(pair))


def hd95(prediction, truth, *, spacing=None, percentile: float = 95) -> float:
    """Robust Hausdorff distance: a percentile of the pooled boundary distances, in mm.

    Definition (pooled, as in MedPy's ``hd95``): the ``percentile``-th percentile (numpy's
    default linear interpolation) of the union of both directed sets of boundary distances,
    prediction -> truth and truth -> prediction, each boundary voxel counted once. This is
    **not** MONAI's ``compute_hausdorff_distance(percentile=95)`` nor DeepMind's
    ``compute_robust_hausdorff``, which take the larger of the two directed percentiles (the
    latter weighting by surface area); those are >= this value when one direction has more
    outliers.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.
    percentile : float
        In [0, 100]; 100 gives the Hausdorff distance.

    Returns
    -------
    float
        mm; 0.0 when both masks are empty, ``inf`` when exactly one is.
    """
    q = _check_percentile(percentile)
    pair = _prepare(prediction, truth, spacing)
    return _hd(_distances(pair), _empty_case(pair), q)


def assd(prediction, truth, *, spacing=None) -> float:
    """Average symmetric surface distance, in mm.

    The mean of the pooled boundary distances of both directions,
    ``(sum_p d(p, dT) + sum_t d(t, dP)) / (|dP| + |dT|)`` (Heimann et al. 2009; MONAI's
    ``compute_average_surface_distance(symmetric=True)``). MedPy's ``assd`` instead averages the
    two directed means, which differs when the boundaries have different voxel counts.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.

    Returns
    -------
    float
        mm; 0.0 when both masks are empty, ``inf`` when exactly one is.
    """
    pair = _prepare(prediction, truth, spacing)
    return _assd(_distances(pair), _empty_case(pair))


def surface_dice(prediction, truth, tolerance_mm: float, *, spacing=None) -> float:
    """Normalised surface Dice at a tolerance (Nikolov et al. 2021), in [0, 1].

    The fraction of both boundaries lying within ``tolerance_mm`` of the other:
    ``(#{p : d(p, dT) <= tol} + #{t : d(t, dP) <= tol}) / (|dP| + |dT|)``, counting boundary
    voxels (as MONAI's ``compute_surface_dice``; DeepMind's ``surface-distance`` weights surface
    elements by area, which can differ by a few percent on coarse grids).

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    tolerance_mm : float
        Acceptable boundary deviation in mm, >= 0. Distances within 1e-6 mm of it count as
        within, so a whole number of voxels is not lost to rounding.
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.

    Returns
    -------
    float
        1.0 when both masks are empty, 0.0 when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((9, 9), bool); truth[2:6, 2:6] = True
    >>> prediction = np.roll(truth, 1, axis=0)
    >>> surface_dice(prediction, truth, 1.0), surface_dice(prediction, truth, 0.5)
    (1.0, 0.5)
    """
    tol = check_positive("tolerance_mm", tolerance_mm, allow_zero=True)
    pair = _prepare(prediction, truth, spacing)
    return _surface_dice(_distances(pair), _empty_case(pair), tol)


def volume_difference(prediction, truth, *, spacing=None) -> dict:
    """Volumes of both masks and their difference.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.

    Returns
    -------
    dict
        3D: ``prediction_ml``, ``truth_ml``, ``difference_ml`` (prediction - truth) in mL
        (voxel count x voxel volume / 1000). 2D: the same as areas in mm², under the keys
        ``prediction_mm2``, ``truth_mm2``, ``difference_mm2``. Both: ``relative``
        ``(prediction - truth) / truth`` (dimensionless; 0.0 when both are empty, ``inf``
        when only the truth is).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((4, 10, 10), bool); truth[:, :5, :5] = True      # 100 voxels
    >>> prediction = np.zeros_like(truth); prediction[:, :5, :] = True     # 200 voxels
    >>> volume_difference(prediction, truth, spacing=(2.5, 2.0, 2.0))      # 10 mm^3 voxels
    {'prediction_ml': 2.0, 'truth_ml': 1.0, 'difference_ml': 1.0, 'relative': 1.0}
    """
    return _volumes(_prepare(prediction, truth, spacing))


def segmentation_scores(prediction, truth, *, spacing=None, tolerance_mm: float = 2.0) -> dict:
    """Every segmentation metric of this module in one call, distances computed once.

    Parameters
    ----------
    prediction, truth : (M, N[, P]) ndarray or sitk.Image
        Binary masks (bool or integer; nonzero = inside), 2D or 3D, of the same shape (and the
        same grid when both are SimpleITK images).
    spacing : float or sequence of float, optional
        Voxel size in mm in array axis order ``(z, y, x)``, numpy input only (default 1 mm).
        SimpleITK input carries its own spacing.
    tolerance_mm : float
        Tolerance of the surface Dice in mm, >= 0.

    Returns
    -------
    dict
        ``dice``, ``jaccard`` (as :func:`dice`, :func:`jaccard`); ``hausdorff_mm``,
        ``hd95_mm`` (pooled 95th percentile), ``assd_mm`` (as :func:`hausdorff`, :func:`hd95`,
        :func:`assd`); ``surface_dice`` at ``tolerance_mm`` (also recorded under that key);
        and the keys of :func:`volume_difference` (``*_ml`` in 3D, ``*_mm2`` in 2D,
        ``relative``). Values are Python floats, one row of a results table.
    """
    tol = check_positive("tolerance_mm", tolerance_mm, allow_zero=True)
    pair = _prepare(prediction, truth, spacing)
    d = _distances(pair)
    empty = _empty_case(pair)
    dsc, jac = _overlap(pair)
    return {
        "dice": dsc,
        "jaccard": jac,
        "hausdorff_mm": _hausdorff(d, empty),
        "hd95_mm": _hd(d, empty, 95.0),
        "assd_mm": _assd(d, empty),
        "surface_dice": _surface_dice(d, empty, tol),
        "tolerance_mm": tol,
        **_volumes(pair),
    }
