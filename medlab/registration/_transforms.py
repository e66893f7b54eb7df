"""Transforms: composition, conversion of linear transforms, ITK transform files (atomic)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medlab._atomic import atomic_path
from medlab.errors import ImageIOError

__all__ = ["compose", "as_affine", "save_transform", "read_transform", "TRANSFORM_EXTENSIONS"]

#: ITK transform file formats: text (``.tfm``, ``.txt``), HDF5 (``.h5``, ``.hdf5``) and
#: MATLAB (``.mat``). All of them hold every transform medlab makes, displacement fields
#: included; HDF5 is compact for displacement fields.
TRANSFORM_EXTENSIONS = (".tfm", ".txt", ".h5", ".hdf5", ".mat")


def _check(t, name):
    if not isinstance(t, sitk.Transform):
        raise TypeError(f"`{name}` must be a SimpleITK.Transform; got {type(t).__name__}")


def as_affine(transform: sitk.Transform) -> sitk.AffineTransform:
    """A linear transform (rigid, similarity, affine, translation, or a composite of them) as
    one ``sitk.AffineTransform`` mapping every point exactly as ``transform`` does.

    The matrix and offset are read off the images of the origin and the unit vectors, so any
    linear ITK transform converts, whatever its parameterisation.

    Parameters
    ----------
    transform : sitk.Transform
        A linear transform (``IsLinear()``), 2D or 3D.

    Returns
    -------
    sitk.AffineTransform
        Centre at the origin; the same mapping of physical points (x, y[, z], mm).

    Raises
    ------
    ValueError
        If ``transform`` is not linear.
    """
    _check(transform, "transform")
    if not transform.IsLinear():
        raise ValueError(f"`transform` ({transform.GetName()}) is not linear")
    dim = transform.GetDimension()
    zero = np.asarray(transform.TransformPoint((0.0,) * dim))
    matrix = np.empty((dim, dim))
    for k in range(dim):
        e = [0.0] * dim
        e[k] = 1.0
        matrix[:, k] = np.asarray(transform.TransformPoint(e)) - zero
    out = sitk.AffineTransform(dim)
    out.SetMatrix(tuple(float(v) for v in matrix.ravel()))
    out.SetTranslation(tuple(float(v) for v in zero))
    return out


def compose(*transforms: sitk.Transform) -> sitk.Transform:
    """The transform ``x -> t1(t2(...tn(x)))`` of ``compose(t1, t2, ..., tn)``.

    In ITK's convention a registration transform maps *fixed* points to *moving* points. After
    a first registration ``t1`` (fixed -> moving), a second one found on top of it (``t2``,
    fixed -> fixed resampled through ``t1``) composes as ``compose(t1, t2)``.

    Linear transforms are flattened into one ``sitk.AffineTransform``; otherwise the result is
    a ``sitk.CompositeTransform`` (applied last-to-first, as ITK does). Inputs are not modified.

    Parameters
    ----------
    *transforms : sitk.Transform
        One or more transforms of one dimension, outermost first.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> shift = sitk.TranslationTransform(3, (1.0, 0.0, 0.0))
    >>> scale = sitk.ScaleTransform(3, (2.0, 2.0, 2.0))
    >>> compose(shift, scale).TransformPoint((1.0, 1.0, 1.0))
    (3.0, 2.0, 2.0)
    """
    if not transforms:
        raise ValueError("`compose` needs at least one transform")
    for i, t in enumerate(transforms):
        _check(t, f"transforms[{i}]")
    dims = {t.GetDimension() for t in transforms}
    if len(dims) != 1:
        raise ValueError(f"all transforms must have the same dimension; got {sorted(dims)}")
    if len(transforms) == 1:
        return _copy(transforms[0])
    if all(t.IsLinear() for t in transforms):
        composite = sitk.CompositeTransform([_copy(t) for t in transforms])
        return as_affine(composite)
    return sitk.CompositeTransform([_copy(t) for t in transforms])


def _copy(t: sitk.Transform) -> sitk.Transform:
    """A deep copy that keeps the concrete class (rigid stays rigid)."""
    try:
        out = t.__class__(t)
    except (TypeError, RuntimeError):  # pragma: no cover - classes without a copy constructor
        out = sitk.Transform(t)
    if isinstance(out, sitk.Transform):
        out.MakeUnique()
    return out


def save_transform(transform: sitk.Transform, path, *, overwrite: bool = False) -> Path:
    """Write ``transform`` as an ITK transform file, atomically.

    Parameters
    ----------
    transform : sitk.Transform
        Any SimpleITK transform (composites and displacement fields included).
    path : str or os.PathLike
        Destination; the extension picks the format (see ``TRANSFORM_EXTENSIONS``). Its
        folder must exist. ITK-SNAP, 3D Slicer, ANTs and SimpleITK read these files.
    overwrite : bool
        Replace an existing file (default: an existing file is an error).

    Returns
    -------
    pathlib.Path
        ``path``. The file is written under a temporary name beside it (same ending) and
        renamed into place, so a failure never leaves a partial file.

    Raises
    ------
    ImageIOError
        The file exists (and ``overwrite`` is False), the folder does not exist, or ITK
        cannot write it.
    ValueError
        An extension ITK cannot write transforms to.
    """
    _check(transform, "transform")
    target = Path(os.fspath(path))
    ext = target.suffix.lower()
    if ext not in TRANSFORM_EXTENSIONS:
        raise ValueError(
            f"`path` must end with one of {', '.join(TRANSFORM_EXTENSIONS)}; got {target.name!r}"
        )
    if not target.parent.is_dir():
        raise ImageIOError(target, f"the folder {str(target.parent)!r} does not exist")
    if target.exists() and not overwrite:
        raise ImageIOError(target, "file exists; pass overwrite=True to replace it")
    # ITK picks the format from the ending: the temporary file beside the target keeps it
    with atomic_path(target, suffix=ext) as tmp:
        try:
            sitk.WriteTransform(transform, str(tmp))
        except RuntimeError as exc:
            raise ImageIOError(target, f"ITK cannot write the transform: {exc}") from exc
    return target


def read_transform(path) -> sitk.Transform:
    """Read an ITK transform file (any format of ``TRANSFORM_EXTENSIONS``).

    A file holding a single transform comes back as that transform's class (a rigid
    transform as ``sitk.Euler3DTransform``); several as a ``sitk.CompositeTransform``.

    Parameters
    ----------
    path : str or Path
        The file (``.tfm``, ``.txt``, ``.h5``, ``.mat``).

    Returns
    -------
    sitk.Transform

    Raises
    ------
    ImageIOError
        The file is missing or not a readable ITK transform file.
    """
    p = Path(os.fspath(path))
    if not p.is_file():
        raise ImageIOError(p, "no such file")
    try:
        t = sitk.ReadTransform(str(p))
    except RuntimeError as exc:
        raise ImageIOError(p, f"not a readable ITK transform file: {str(exc).strip().splitlines()[-1]}") from exc
    return _downcast(t)


def _downcast(t: sitk.Transform) -> sitk.Transform:
    """``sitk.ReadTransform`` returns the base class; give back the concrete one."""
    if t.GetName() == "CompositeTransform":
        c = sitk.CompositeTransform(t)
        if c.GetNumberOfTransforms() == 1:
            return _downcast(c.GetNthTransform(0))
        return c
    cls = getattr(sitk, t.GetName(), None)
    if isinstance(cls, type) and issubclass(cls, sitk.Transform):
        try:
            return cls(t)
        except (TypeError, RuntimeError):  # pragma: no cover
            return t
    return t  # pragma: no cover
