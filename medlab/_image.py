"""The one place where numpy arrays and ``SimpleITK.Image`` are converted.

Conventions (see docs in ARCHITECTURE.md):

* numpy arrays are indexed ``(z, y, x)`` (2D: ``(y, x)``); a ``spacing`` given together with
  an array is in the same **array axis order**, in mm, as in scikit-image.
* ``SimpleITK.Image`` geometry (spacing, origin, direction) is in SimpleITK's ``(x, y, z)`` order.

Every public function that takes an image calls :func:`as_sitk` once and hands its result back
through the returned ``back`` callable, so a caller gets the same kind of object it gave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import SimpleITK as sitk

__all__ = [
    "as_sitk",
    "to_array",
    "spacing_zyx",
    "is_image",
    "copy_geometry",
    "check_same_grid",
    "check_spacing",
    "array_shape",
    "check_scalar",
    "count_nonfinite",
    "grey_image",
    "mask_array",
    "seeds_to_sitk",
]


def is_image(obj) -> bool:
    return isinstance(obj, sitk.Image)


def check_spacing(spacing, ndim: int, name: str = "the image", *, arg: str = "spacing") -> tuple[float, ...]:
    """``spacing`` (scalar or ``ndim`` values, mm, array axis order) as a tuple of positive floats."""
    if np.isscalar(spacing):
        spacing = (float(spacing),) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise ValueError(
            f"`{arg}` must have {ndim} values (array axis order, mm) for {name}; got {spacing}"
        )
    if not all(s > 0 and np.isfinite(s) for s in spacing):
        raise ValueError(f"`{arg}` values must be positive and finite; got {spacing}")
    return spacing


def as_sitk(
    image,
    *,
    spacing: float | Sequence[float] | None = None,
    name: str = "image",
    vector: bool = False,
    allow_4d: bool = False,
) -> tuple[sitk.Image, Callable]:
    """Return ``(sitk_image, back)`` for a ``SimpleITK.Image`` or a numpy array.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        The input. A numpy array is indexed ``(z, y, x)``.
    spacing : float or sequence of float, optional
        Voxel size in mm, only for numpy input, in array axis order ``(z, y, x)``.
        Passing it with a ``SimpleITK.Image`` (which carries its own spacing) is an error.
    name : str
        Argument name used in error messages.
    vector : bool
        If True, the last axis of a numpy array is taken as components (e.g. RGB).
    allow_4d : bool
        If False (default), a 4D ``SimpleITK.Image`` (several volumes: time, diffusion, echo)
        is refused with a message that says how to take one volume: a function that treats
        the fourth axis as space would silently mix volumes. Only functions that work voxel by
        voxel pass True.

    Returns
    -------
    img : sitk.Image
    back : callable
        ``back(result)`` turns a ``sitk.Image`` result into the kind the caller gave: the image
        itself for SimpleITK input, an array for numpy input. Non-image results pass through.
    """
    if isinstance(image, sitk.Image):
        if spacing is not None:
            raise ValueError(
                f"`spacing` is only for numpy input; `{name}` is a SimpleITK.Image "
                f"with its own spacing {image.GetSpacing()} (x, y, z)"
            )
        if not allow_4d:
            check_not_4d(image, name)
        return image, _identity
    if isinstance(image, np.ndarray) or hasattr(image, "__array__"):
        arr = np.asarray(image)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        nd = arr.ndim - (1 if vector else 0)
        if nd not in (2, 3):
            raise ValueError(
                f"`{name}` must be a 2D or 3D array{' with a component axis' if vector else ''}; "
                f"got shape {arr.shape}"
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` must have a numeric dtype; got {arr.dtype}")
        img = sitk.GetImageFromArray(arr, isVector=vector)
        if spacing is not None:
            img.SetSpacing(check_spacing(spacing, nd, f"`{name}`")[::-1])
        return img, _to_array
    raise TypeError(f"`{name}` must be a SimpleITK.Image or a numpy array; got {type(image).__name__}")


def check_not_4d(image, name: str = "image") -> None:
    """Refuse a 4D ``SimpleITK.Image`` (several volumes) where one 2D/3D image is needed.

    The message says how to take one volume (:func:`medlab.io.volume`): code that treats the
    volume axis as a fourth spatial axis, or flattens it, would silently mix volumes.
    """
    if isinstance(image, sitk.Image) and image.GetDimension() == 4:
        raise ValueError(
            f"`{name}` is a 4D image of {image.GetSize()[3]} volumes (size {image.GetSize()}, "
            "x, y, z, volume); this function works on one 2D or 3D image: take one volume "
            "with medlab.io.volume(image, index), or reduce the volumes first (e.g. their mean)"
        )


def _identity(result):
    return result


def _to_array(result):
    return sitk.GetArrayFromImage(result) if isinstance(result, sitk.Image) else result


def to_array(image) -> np.ndarray:
    """A numpy copy of ``image`` indexed ``(z, y, x)``; arrays pass through unchanged."""
    if isinstance(image, sitk.Image):
        return sitk.GetArrayFromImage(image)
    return np.asarray(image)


def spacing_zyx(image, spacing=None) -> tuple[float, ...]:
    """Voxel size in mm in array axis order, for either kind of image."""
    if isinstance(image, sitk.Image):
        return tuple(image.GetSpacing()[::-1])
    arr = np.asarray(image)
    if spacing is None:
        return (1.0,) * arr.ndim
    return check_spacing(spacing, arr.ndim)


def copy_geometry(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A ``sitk.Image`` from ``array`` on the grid of ``reference`` (spacing, origin, direction)."""
    img = sitk.GetImageFromArray(array, isVector=array.ndim == reference.GetDimension() + 1)
    img.CopyInformation(reference)
    return img


def check_same_grid(a: sitk.Image, b: sitk.Image, names=("image", "mask"), tol: float = 1e-3):
    """Raise ValueError unless ``a`` and ``b`` share size, spacing, origin and direction."""
    if a.GetSize() != b.GetSize():
        raise ValueError(
            f"`{names[1]}` (size {b.GetSize()}) must have the same size as `{names[0]}` (size {a.GetSize()})"
        )
    for what in ("Spacing", "Origin", "Direction"):
        va, vb = np.array(getattr(a, "Get" + what)()), np.array(getattr(b, "Get" + what)())
        if not np.allclose(va, vb, atol=tol):
            raise ValueError(
                f"`{names[1]}` {what.lower()} {tuple(vb)} differs from `{names[0]}` {what.lower()} {tuple(va)}"
            )


def array_shape(image) -> tuple[int, ...]:
    """Array-order shape of an array, a ``sitk.Image`` or a shape tuple, without copying."""
    if isinstance(image, sitk.Image):
        return tuple(image.GetSize()[::-1])
    if isinstance(image, tuple):
        return image
    return tuple(np.shape(image))


def check_same_shape(a_shape, b_shape, names=("image", "mask"), *, hint: str = "") -> None:
    """Raise ValueError naming both when two array-order shapes differ; ``hint`` ends the message."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if a_shape != b_shape:
        raise ValueError(
            f"`{names[1]}` (shape {b_shape}) must have the same shape as `{names[0]}` "
            f"(shape {a_shape}){hint}"
        )


def check_scalar(img: sitk.Image, name: str) -> sitk.Image:
    """Return ``img`` if it has one component per pixel, else raise ValueError naming it."""
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"`{name}` must be a scalar image; got {img.GetNumberOfComponentsPerPixel()} "
            "components per pixel"
        )
    return img


def count_nonfinite(arr, *, vector: bool = False) -> int:
    """How many pixels of ``arr`` are NaN or infinite (0 for an integer array); with ``vector``
    the last axis holds a pixel's components, and a pixel counts once if any of them is."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fc":
        return 0
    bad = ~np.isfinite(arr)
    return int(np.count_nonzero(bad.any(axis=-1) if vector else bad))


def grey_image(image: sitk.Image) -> sitk.Image:
    """A colour ``sitk.Image`` as grey: the mean of its first three components (float64), on
    the same grid; a scalar image is returned as it is."""
    n = image.GetNumberOfComponentsPerPixel()
    if n == 1:
        return image
    channels = [sitk.VectorIndexSelectionCast(image, k, sitk.sitkFloat32) for k in range(min(3, n))]
    return sum(channels[1:], channels[0]) / len(channels)


def mask_array(mask, image, *, name: str = "mask", image_name: str = "image", nonempty=True):
    """``mask`` (numpy array or sitk label image, nonzero = inside) as a bool array.

    ``image`` is the caller's image (array or ``sitk.Image``) the mask must match: same shape,
    and the same grid when both are ``sitk.Image``. Returns None for ``mask=None``.
    """
    if mask is None:
        return None
    if isinstance(mask, sitk.Image) and isinstance(image, sitk.Image):
        check_same_grid(image, mask, names=(image_name, name))
    elif not isinstance(mask, sitk.Image | np.ndarray) and not hasattr(mask, "__array__"):
        raise TypeError(
            f"`{name}` must be a numpy array or a SimpleITK.Image; got {type(mask).__name__}"
        )
    m = to_array(mask)
    check_same_shape(array_shape(image), m.shape, names=(image_name, name))
    m = m != 0
    if nonempty and not m.any():
        raise ValueError(f"`{name}` selects no voxels")
    return m


# --------------------------------------------------------------------------- seeds


def _extent_text(img: sitk.Image) -> str:
    """The image extent in both frames, for error messages."""
    size = img.GetSize()
    nd = img.GetDimension()
    axes = "xyz"[:nd]
    idx = ", ".join(f"{a} 0..{n - 1}" for a, n in zip(axes[::-1], size[::-1], strict=True))
    corners = np.array([
        img.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
        for corner in np.ndindex(*(2,) * nd)
        for corner in [[(n if b else 0) for b, n in zip(corner, size, strict=True)]]
    ])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    mm = ", ".join(f"{a} [{a0:.4g}, {a1:.4g}]" for a, a0, a1 in zip(axes, lo, hi, strict=True))
    return f"index ({', '.join(axes[::-1])}) {idx}; physical (x, y, z) mm {mm}"


def _as_points(name: str, seeds, nd: int, order: str) -> np.ndarray:
    try:
        arr = np.asarray(seeds, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a sequence of {order} tuples; got {seeds!r}") from None
    if arr.ndim == 1 and arr.size == nd:
        arr = arr.reshape(1, nd)  # one seed given as a flat tuple
    if arr.ndim != 2 or arr.shape[1] != nd or arr.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be one or more {order} tuples with {nd} values each for this "
            f"{nd}D image; got {seeds!r}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` must be finite; got {seeds!r}")
    return arr


def seeds_to_sitk(img: sitk.Image, seeds_index=None, seeds_mm=None, *, names=("seeds_index", "seeds_mm")):
    """Seeds as a list of SimpleITK indexes ``(x, y[, z])`` inside ``img``.

    Exactly one of ``seeds_index`` (numpy order ``(z, y, x)`` integer indexes) and
    ``seeds_mm`` (physical ``(x, y, z)`` points in mm, mapped to the voxel that contains them)
    must be given. A seed outside the image raises ValueError naming it and the image extent.
    """
    n_index, n_mm = names
    if (seeds_index is None) == (seeds_mm is None):
        got = "both" if seeds_index is not None else "neither"
        raise ValueError(
            f"give exactly one of `{n_index}` (numpy indexes (z, y, x)) and `{n_mm}` "
            f"(physical points (x, y, z) in mm); got {got}"
        )
    nd = img.GetDimension()
    size = img.GetSize()
    out = []
    if seeds_index is not None:
        order = "(z, y, x)" if nd == 3 else "(y, x)"
        arr = _as_points(n_index, seeds_index, nd, order + " index")
        if not (arr == np.round(arr)).all():
            raise ValueError(f"`{n_index}` must be integer voxel indexes {order}; got {seeds_index!r}")
        for row in arr.astype(np.int64):
            xyz = tuple(int(v) for v in row[::-1])
            if any(v < 0 or v >= n for v, n in zip(xyz, size, strict=True)):
                raise ValueError(
                    f"seed {tuple(int(v) for v in row)} in `{n_index}` {order} is outside the "
                    f"image: {_extent_text(img)}"
                )
            out.append(xyz)
    else:
        arr = _as_points(n_mm, seeds_mm, nd, "(x, y, z) mm" if nd == 3 else "(x, y) mm")
        for row in arr:
            cont = img.TransformPhysicalPointToContinuousIndex([float(v) for v in row])
            xyz = tuple(math.floor(c + 0.5) for c in cont)
            if any(v < 0 or v >= n for v, n in zip(xyz, size, strict=True)):
                raise ValueError(
                    f"seed {tuple(float(v) for v in row)} mm in `{n_mm}` (x, y, z) is outside "
                    f"the image: {_extent_text(img)}"
                )
            out.append(xyz)
    return out
