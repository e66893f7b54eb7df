"""Registration accuracy: target registration error, Jacobian determinant, folding."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, mask_array

from ._common import check_transform
from ._landmarks import check_points

__all__ = ["TRE", "target_registration_error", "displacement_field", "jacobian_determinant",
           "folding_count"]


@dataclass(frozen=True)
class TRE:
    """Target registration error statistics, in mm.

    Attributes
    ----------
    distances_mm : (N,) ndarray
        Error at each target point.
    mean, median, p95, max : float
        Statistics of ``distances_mm`` (``p95``: 95th percentile, linear interpolation).
    n : int
        Number of target points.
    """

    distances_mm: np.ndarray = field(repr=False)
    mean: float
    median: float
    p95: float
    max: float
    n: int

    @classmethod
    def from_distances(cls, d) -> TRE:
        d = np.asarray(d, dtype=float).ravel()
        if d.size == 0:
            raise ValueError("no target points")
        return cls(d, float(d.mean()), float(np.median(d)), float(np.percentile(d, 95)),
                   float(d.max()), int(d.size))


def _map(transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    return np.array([transform.TransformPoint([float(v) for v in p]) for p in points])


def displacement_field(transform: sitk.Transform, reference) -> np.ndarray:
    """``transform(x) - x`` at every voxel ``x`` of ``reference``'s grid.

    Parameters
    ----------
    transform : sitk.Transform
        Any transform of the reference's dimension (fixed -> moving for a registration).
    reference : sitk.Image or ndarray
        The grid (origin, spacing, direction, size); a numpy array gives a unit grid.

    Returns
    -------
    ndarray of float64, shape ``reference``'s array shape + (dim,)
        Indexed (z, y, x) like arrays; the last axis holds the displacement in mm in
        SimpleITK's (x, y[, z]) order.
    """
    ref = reference if isinstance(reference, sitk.Image) else as_sitk(reference, name="reference")[0]
    check_transform(transform, ref.GetDimension())
    f = sitk.TransformToDisplacementField(
        transform, sitk.sitkVectorFloat64, ref.GetSize(), ref.GetOrigin(), ref.GetSpacing(),
        ref.GetDirection())
    return sitk.GetArrayFromImage(f)


def target_registration_error(transform: sitk.Transform, truth: sitk.Transform | None = None, *,
                              points_mm=None, mask=None, moving_points_mm=None) -> TRE:
    """Target registration error (TRE) of ``transform``, in mm.

    Two ways of knowing the truth:

    * ``truth`` (a transform, fixed -> moving): the error at each target point ``p`` is
      ``|transform(p) - truth(p)|``. Targets are ``points_mm`` or the voxels of ``mask`` (a
      label image in the fixed frame, e.g. a tumour mask: every nonzero voxel centre).
    * ``moving_points_mm`` (landmark pairs): the error at fixed landmark ``p_i`` is
      ``|transform(p_i) - q_i|`` with ``q_i`` its partner in the moving image.

    Parameters
    ----------
    transform : sitk.Transform
        The registration result (fixed -> moving, as from :func:`register`).
    truth : sitk.Transform, optional
        The ground-truth fixed -> moving transform.
    points_mm : (N, dim) array_like, optional
        Target points in the fixed frame (x, y[, z], mm).
    mask : sitk.Image, optional
        Targets = centres of its nonzero voxels (physical points, so the mask's grid matters).
    moving_points_mm : (N, dim) array_like, optional
        Partners of ``points_mm`` in the moving frame.

    Returns
    -------
    TRE
        ``mean``, ``median``, ``p95``, ``max``, ``n`` and the per-point ``distances_mm``.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> t = sitk.TranslationTransform(3, (3.0, 4.0, 0.0))
    >>> target_registration_error(t, sitk.TranslationTransform(3), points_mm=[(0, 0, 0)]).mean
    5.0
    """
    dim = transform.GetDimension()
    check_transform(transform, dim)
    if (truth is None) == (moving_points_mm is None):
        raise ValueError("give either `truth` (a transform) or `moving_points_mm` (landmark pairs)")
    if moving_points_mm is not None:
        if points_mm is None or mask is not None:
            raise ValueError("`moving_points_mm` pairs with `points_mm` (fixed landmarks), not `mask`")
        f = check_points(points_mm, "points_mm", dim)
        m = check_points(moving_points_mm, "moving_points_mm", dim)
        if len(f) != len(m):
            raise ValueError(f"`points_mm` ({len(f)}) and `moving_points_mm` ({len(m)}) must pair up")
        return TRE.from_distances(np.linalg.norm(_map(transform, f) - m, axis=1))
    check_transform(truth, dim, "truth")
    if (points_mm is None) == (mask is None):
        raise ValueError("give the target points as either `points_mm` or `mask`")
    if points_mm is not None:
        p = check_points(points_mm, "points_mm", dim)
        return TRE.from_distances(np.linalg.norm(_map(transform, p) - _map(truth, p), axis=1))
    if not isinstance(mask, sitk.Image):
        raise TypeError("`mask` must be a SimpleITK.Image (its grid places the targets in mm)")
    if mask.GetDimension() != dim:
        raise ValueError(f"`mask` is {mask.GetDimension()}D; the transform is {dim}D")
    inside = sitk.GetArrayViewFromImage(mask) != 0
    if not inside.any():
        raise ValueError("`mask` selects no voxels")
    # both fields on the mask grid, vectorised in ITK (a Python loop over 10^5 points is slow)
    diff = displacement_field(transform, mask)[inside] - displacement_field(truth, mask)[inside]
    return TRE.from_distances(np.linalg.norm(diff, axis=1))


def _jacobian_array(disp: np.ndarray, ref: sitk.Image) -> np.ndarray:
    """det(I + grad u) with derivatives in physical space (spacing and direction)."""
    dim = ref.GetDimension()
    spacing = np.asarray(ref.GetSpacing())
    direction = np.asarray(ref.GetDirection()).reshape(dim, dim)
    # g[..., c, a]: d u_c / d index_a (index axes in x, y, z order) divided by spacing_a
    g = np.empty(disp.shape[:-1] + (dim, dim))
    for a in range(dim):
        axis = dim - 1 - a  # numpy axis of index axis a
        if disp.shape[axis] < 2:
            g[..., :, a] = 0.0
            continue
        g[..., :, a] = np.gradient(disp, axis=axis) / spacing[a]
    # physical point p = o + D S i, so du/dp = (du/di S^-1) D^T
    jac = np.eye(dim) + g @ direction.T
    return np.linalg.det(jac)


def jacobian_determinant(transform: sitk.Transform, reference):
    """Determinant of the Jacobian of ``transform`` at every voxel of ``reference``.

    1 where the transform preserves volume, > 1 where it expands, < 1 where it compresses,
    <= 0 where it folds (not invertible there). Derivatives are central differences of the
    displacement field on ``reference``'s grid (one-sided at its border), in physical units
    (spacing and direction are taken into account), so a linear transform gives the exact
    ``det(A)`` everywhere.

    Parameters
    ----------
    transform : sitk.Transform
        Any transform (linear, B-spline, displacement field, composite), fixed -> moving.
    reference : sitk.Image or ndarray
        The fixed grid to evaluate on.

    Returns
    -------
    sitk.Image or ndarray of float32
        On ``reference``'s grid, the same kind as ``reference``.
    """
    ref, back = as_sitk(reference, name="reference")
    disp = displacement_field(transform, ref)
    out = sitk.GetImageFromArray(_jacobian_array(disp, ref).astype(np.float32))
    out.CopyInformation(ref)
    return back(out)


def folding_count(transform_or_jacobian, reference=None, *, mask=None) -> int:
    """Number of voxels where the transform folds (Jacobian determinant <= 0).

    Parameters
    ----------
    transform_or_jacobian : sitk.Transform, or sitk.Image / ndarray
        A transform (then ``reference`` gives the grid) or a map from
        :func:`jacobian_determinant`.
    reference : sitk.Image or ndarray, optional
        Grid for a transform.
    mask : sitk.Image or ndarray, optional
        Count only inside this mask (same grid).

    Returns
    -------
    int
        0 for a diffeomorphic (smooth, invertible) result.
    """
    if isinstance(transform_or_jacobian, sitk.Transform):
        if reference is None:
            raise ValueError("`reference` (the fixed grid) is needed with a transform")
        jac = jacobian_determinant(transform_or_jacobian, reference)
    else:
        if reference is not None:
            raise ValueError("`reference` is only for a transform; a Jacobian map has its grid")
        jac = transform_or_jacobian
    arr = np.asarray(sitk.GetArrayViewFromImage(jac) if isinstance(jac, sitk.Image) else jac)
    folded = arr <= 0
    m = mask_array(mask, jac, name="mask", image_name="jacobian", nonempty=False)
    if m is not None:
        folded &= m
    return int(folded.sum())

