"""Helpers shared by the segmentation modules: seeds, connectivity, masks, pixel ranges."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from medlab._image import (  # noqa: F401 - seeds_to_sitk: the segmentation modules import it from here
    array_shape,
    as_sitk,
    check_same_grid,
    check_same_shape,
    check_scalar,
    copy_geometry,
    count_nonfinite,
    seeds_to_sitk,
    to_array,
)
from medlab._options import check_choice, check_positive

CONNECTIVITY = ("face", "full")

# Value range of each integer pixel type, used to clip an open threshold bound (None) to
# something SimpleITK can cast to the pixel type without overflow.
_INT_RANGE = {
    sitk.sitkUInt8: (0, 2**8 - 1),
    sitk.sitkInt8: (-(2**7), 2**7 - 1),
    sitk.sitkUInt16: (0, 2**16 - 1),
    sitk.sitkInt16: (-(2**15), 2**15 - 1),
    sitk.sitkUInt32: (0, 2**32 - 1),
    sitk.sitkInt32: (-(2**31), 2**31 - 1),
    # the largest doubles that still fit (2**63 - 1 itself rounds up to 2**63 and overflows)
    sitk.sitkUInt64: (0, 2**64 - 2048),
    sitk.sitkInt64: (-(2**63), 2**63 - 1024),
}
_INTEGER_IDS = frozenset(_INT_RANGE)


def scalar_image(image, spacing, name="image", *, finite=False):
    """``(sitk image, back)`` for a scalar image of either kind. With ``finite``, a float image
    with NaN or infinite voxels is refused with an error that counts them (methods that take
    statistics or a maximum around a seed would otherwise crash or return nonsense)."""
    img, back = as_sitk(image, spacing=spacing, name=name)
    check_scalar(img, name)
    if finite:
        values = sitk.GetArrayViewFromImage(img)
        bad = count_nonfinite(values)
        if bad:
            raise ValueError(f"`{name}` has {bad} voxels that are NaN or infinite (of {values.size}); set them to "
                             "a value first (e.g. 0 outside the field of view) rather than have them guessed here")
    return img, back


def float_image(img: sitk.Image) -> sitk.Image:
    return img if img.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(img, sitk.sitkFloat32)


def check_connectivity(connectivity) -> bool:
    """True for full (8/26-neighbour) connectivity, False for face (4/6-neighbour)."""
    return check_choice("connectivity", connectivity, CONNECTIVITY) == "full"


def check_number(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number; got {value!r}") from None
    if math.isnan(v):
        raise ValueError(f"`{name}` must not be NaN")
    return v


def bounds(img: sitk.Image, lower, upper, *, require_one=True) -> tuple[float, float, bool]:
    """``(lower, upper, empty)``: an inclusive threshold pair in image units that SimpleITK can
    cast to the pixel type without changing its meaning, and whether no pixel value can fall
    in it (so the result is empty whatever the image holds)."""
    if require_one and lower is None and upper is None:
        raise ValueError("give `lower`, `upper` or both (image intensity units); got neither")
    lo = -math.inf if lower is None else check_number("lower", lower)
    hi = math.inf if upper is None else check_number("upper", upper)
    if lo > hi:
        raise ValueError(f"`lower` ({lower!r}) must be <= `upper` ({upper!r})")
    rng = _INT_RANGE.get(img.GetPixelID())
    if rng is not None:
        # ITK casts thresholds to the pixel type (truncating): round inward, clip to the type
        lo, hi = math.ceil(lo) if math.isfinite(lo) else lo, math.floor(hi) if math.isfinite(hi) else hi
        tmin, tmax = rng
    else:
        big = float(np.finfo(np.float32 if img.GetPixelID() == sitk.sitkFloat32 else np.float64).max)
        tmin, tmax = -big, big
    empty = lo > tmax or hi < tmin or lo > hi
    return float(min(max(lo, tmin), tmax)), float(max(min(hi, tmax), tmin)), empty


def empty_like(img: sitk.Image) -> sitk.Image:
    """A uint8 image of zeros on ``img``'s grid."""
    out = sitk.Image(img.GetSize(), sitk.sitkUInt8)
    out.CopyInformation(img)
    return out


# --------------------------------------------------------------------------- seeds


# --------------------------------------------------------------------------- masks


def binary_image(mask, spacing, name="mask"):
    """``(uint8 0/1 sitk image, back)`` from a mask of either kind (nonzero = inside)."""
    img, back = as_sitk(mask, spacing=spacing, name=name)
    check_scalar(img, name)
    if img.GetPixelID() == sitk.sitkUInt8 and not isinstance(mask, sitk.Image):
        arr = np.asarray(mask)
        if arr.dtype == bool:
            return img, back  # as_sitk made it 0/1 already
    return sitk.NotEqual(img, 0), back


def companion(image_img: sitk.Image, other, *, names, given_sitk: bool) -> sitk.Image:
    """``other`` (array or sitk) as a sitk image on ``image_img``'s grid, shape/grid checked."""
    if isinstance(other, sitk.Image):
        if given_sitk:
            check_same_grid(image_img, other, names=names)
            return other
        check_same_shape(array_shape(image_img), array_shape(other), names=names)
        out = sitk.Image(other)
        out.CopyInformation(image_img)
        return out
    if not isinstance(other, np.ndarray) and not hasattr(other, "__array__"):
        raise TypeError(f"`{names[1]}` must be a numpy array or a SimpleITK.Image; got {type(other).__name__}")
    arr = np.asarray(other)
    check_same_shape(array_shape(image_img), arr.shape, names=names)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return copy_geometry(arr, image_img)


def integer_labels(img: sitk.Image, name: str) -> sitk.Image:
    """``img`` if it has an integer pixel type; integral floats are cast, others rejected."""
    if img.GetPixelID() in _INTEGER_IDS:
        return img
    arr = sitk.GetArrayViewFromImage(img)
    if not np.array_equal(arr, np.round(arr)) or (arr.size and arr.min() < 0):
        raise ValueError(f"`{name}` must hold non-negative integer labels; got dtype {arr.dtype} with non-integer or negative values")
    top = float(arr.max()) if arr.size else 0.0
    return sitk.Cast(img, sitk.sitkUInt8 if top < 256 else sitk.sitkUInt16 if top < 65536 else sitk.sitkUInt32)


def radius_voxels_from_mm(name: str, radius_mm, spacing_zyx) -> tuple[int, ...]:
    """Per-axis voxel radius (array axis order) of a physical radius: round(radius / spacing)."""
    nd = len(spacing_zyx)
    vals = (radius_mm,) * nd if np.isscalar(radius_mm) else tuple(radius_mm)
    if len(vals) != nd:
        raise ValueError(f"`{name}` must be a number or {nd} numbers (array axis order, mm); got {radius_mm!r}")
    r = tuple(check_positive(name, v, allow_zero=True) for v in vals)
    vox = tuple(math.floor(v / s + 0.5) for v, s in zip(r, spacing_zyx, strict=True))
    if not any(vox):
        raise ValueError(
            f"`{name}` = {radius_mm!r} mm is less than half a voxel along every axis "
            f"(spacing {tuple(round(s, 4) for s in spacing_zyx)} mm, array axis order), so it "
            "would do nothing; use a larger radius"
        )
    return vox


def view(img: sitk.Image) -> np.ndarray:
    """A read-only numpy view (z, y, x) of a sitk image; no copy.

    The view does not keep ``img`` alive: call it only on an image the caller holds in a
    variable, never on a temporary (``view(sitk.Foo(x))``), whose memory is freed at once.
    """
    return sitk.GetArrayViewFromImage(img)


__all__ = [
    "CONNECTIVITY",
    "binary_image",
    "bounds",
    "check_connectivity",
    "check_number",
    "companion",
    "empty_like",
    "float_image",
    "integer_labels",
    "radius_voxels_from_mm",
    "scalar_image",
    "seeds_to_sitk",
    "to_array",
    "view",
]
