"""Landmark-based registration (paired points, least squares)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._options import check_choice

__all__ = ["landmark_registration", "check_points", "LANDMARK_TRANSFORMS"]

LANDMARK_TRANSFORMS = ("rigid", "similarity", "affine")


def check_points(points, name: str, dim: int | None = None) -> np.ndarray:
    """``points`` as a float ``(N, dim)`` array of physical points (x, y[, z], mm)."""
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a sequence of (x, y[, z]) points in mm; got {points!r}") from None
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ValueError(f"`{name}` must have shape (N, 2) or (N, 3) (x, y[, z] in mm); got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"`{name}` has {arr.shape[1]}D points; the images are {dim}D")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` must be finite")
    return arr


def _rigid(dim):
    return sitk.VersorRigid3DTransform() if dim == 3 else sitk.Euler2DTransform()


def landmark_registration(fixed_points_mm, moving_points_mm, *, transform: str = "rigid") -> sitk.Transform:
    """The transform that maps each fixed landmark onto its moving partner, least squares.

    Parameters
    ----------
    fixed_points_mm, moving_points_mm : (N, 2) or (N, 3) array_like
        Paired physical points (x, y[, z], mm, SimpleITK order), row ``i`` of one paired with
        row ``i`` of the other.
    transform : {'rigid', 'similarity', 'affine'}
        Rigid and similarity use Horn's closed-form absolute orientation (ITK's
        ``LandmarkBasedTransformInitializer``); affine is the linear least-squares fit. Needs
        at least 3 non-collinear points in 3D (2 in 2D), affine ``dim + 1`` points not in a
        plane (on a line in 2D).

    Returns
    -------
    sitk.Transform
        Fixed -> moving (ITK's registration convention): ``t.TransformPoint(fixed[i])`` is
        close to ``moving[i]``; exact for noise-free points of the right kind. Rigid comes
        back as ``sitk.Euler3DTransform`` / ``sitk.Euler2DTransform``, centred on the fixed
        landmarks' centroid.

    Examples
    --------
    >>> import numpy as np
    >>> fixed = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    >>> t = landmark_registration(fixed, fixed + [1, 2, 3])
    >>> np.round(t.TransformPoint((5.0, 5.0, 5.0)), 6).tolist()
    [6.0, 7.0, 8.0]
    """
    kind = check_choice("transform", transform, LANDMARK_TRANSFORMS)
    f = check_points(fixed_points_mm, "fixed_points_mm")
    m = check_points(moving_points_mm, "moving_points_mm", f.shape[1])
    if len(f) != len(m):
        raise ValueError(
            f"`fixed_points_mm` ({len(f)} points) and `moving_points_mm` ({len(m)} points) "
            "must pair up one to one"
        )
    dim = f.shape[1]
    centred = f - f.mean(axis=0)
    rank = np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, np.abs(centred).max()))
    need = dim if kind == "affine" else dim - 1
    if rank < need:
        shape = {1: "on a line", 0: "all the same point", 2: "in a plane"}.get(int(rank), "degenerate")
        raise ValueError(
            f"the {len(f)} fixed landmarks are {shape}; a {kind} fit needs "
            f"{'points spanning all ' + str(dim) + ' axes' if kind == 'affine' else 'non-collinear points'}"
        )
    if kind == "affine":
        # least squares: m = A f + b  (ITK's affine initializer does the same fit)
        design = np.hstack([f, np.ones((len(f), 1))])
        sol, *_ = np.linalg.lstsq(design, m, rcond=None)
        out = sitk.AffineTransform(dim)
        out.SetMatrix(tuple(float(v) for v in sol[:dim].T.ravel()))
        out.SetTranslation(tuple(float(v) for v in sol[dim]))
        return out
    base = _rigid(dim) if kind == "rigid" else (
        sitk.Similarity3DTransform() if dim == 3 else sitk.Similarity2DTransform())
    flat_f = [float(v) for v in f.ravel()]
    flat_m = [float(v) for v in m.ravel()]
    fitted = sitk.LandmarkBasedTransformInitializer(base, flat_f, flat_m)
    if kind == "rigid" and dim == 3:
        v = sitk.VersorRigid3DTransform(fitted)
        out = sitk.Euler3DTransform()
        out.SetCenter(v.GetCenter())
        out.SetMatrix(v.GetMatrix())
        out.SetTranslation(v.GetTranslation())
        return out
    return type(base)(fitted)
