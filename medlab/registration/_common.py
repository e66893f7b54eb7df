"""Helpers shared by the registration modules: image and transform checks, physical grids."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, check_scalar
from medlab.errors import MedlabError

__all__ = [
    "RegistrationError",
    "RegistrationWarning",
    "scalar_image",
    "check_dimensions",
    "check_transform",
    "physical_points",
    "index_points",
    "image_centre",
    "bounding_grid",
    "inside_fraction",
    "float_image",
]


class RegistrationError(MedlabError, RuntimeError):
    """Registration could not produce a transform (e.g. the optimiser moved the moving image
    out of the fixed image's field of view). The message says what happened and what to try."""


class RegistrationWarning(UserWarning):
    """A registration finished but its result is suspect (e.g. the metric got worse)."""


def scalar_image(image, spacing, name: str):
    """``(sitk image, back)`` for a scalar 2D/3D image of either kind."""
    img, back = as_sitk(image, spacing=spacing, name=name)
    check_scalar(img, name)
    return img, back


def float_image(img: sitk.Image) -> sitk.Image:
    return img if img.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(img, sitk.sitkFloat32)


def check_dimensions(fixed: sitk.Image, moving: sitk.Image, names=("fixed", "moving")) -> int:
    df, dm = fixed.GetDimension(), moving.GetDimension()
    if df != dm:
        raise ValueError(
            f"`{names[1]}` is a {dm}D image (size {moving.GetSize()}) but `{names[0]}` is "
            f"{df}D (size {fixed.GetSize()}); both must have the same dimension. Take a slice "
            "of the 3D image (medlab.display.slice_of) or register the two volumes."
        )
    return df


def check_transform(transform, dim: int, name: str = "transform") -> sitk.Transform:
    if not isinstance(transform, sitk.Transform):
        raise TypeError(f"`{name}` must be a SimpleITK.Transform; got {type(transform).__name__}")
    if transform.GetDimension() != dim:
        raise ValueError(
            f"`{name}` is a {transform.GetDimension()}D transform; the images are {dim}D"
        )
    return transform


def index_points(img: sitk.Image, index_xyz: np.ndarray) -> np.ndarray:
    """Physical points ``(N, dim)`` (x, y[, z], mm) of continuous indexes ``(N, dim)`` in
    SimpleITK order (x, y[, z])."""
    spacing = np.asarray(img.GetSpacing())
    origin = np.asarray(img.GetOrigin())
    dim = img.GetDimension()
    direction = np.asarray(img.GetDirection()).reshape(dim, dim)
    return origin + (np.asarray(index_xyz, dtype=float) * spacing) @ direction.T


def physical_points(mask: sitk.Image) -> np.ndarray:
    """Physical points ``(N, dim)`` (x, y[, z], mm) of the nonzero voxels of ``mask``."""
    idx = np.argwhere(sitk.GetArrayViewFromImage(mask) != 0)[:, ::-1]
    return index_points(mask, idx)


def image_centre(img: sitk.Image) -> tuple[float, ...]:
    """Physical centre (x, y[, z], mm) of the image's voxel grid."""
    return img.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in img.GetSize()])


def _corners(img: sitk.Image) -> np.ndarray:
    """Physical points of the outer faces of the corner voxels (half a voxel outside centres)."""
    size = np.asarray(img.GetSize(), dtype=float)
    dim = img.GetDimension()
    corners = []
    for i in range(2**dim):
        corners.append([(size[k] - 0.5) if (i >> k) & 1 else -0.5 for k in range(dim)])
    return index_points(img, np.asarray(corners))


def bounding_grid(img: sitk.Image, transform: sitk.Transform | None = None) -> sitk.Image:
    """An empty image with ``img``'s spacing and direction whose grid covers ``transform``
    applied to ``img``'s domain (or the domain itself); used to move an image without
    cropping it."""
    corners = _corners(img)
    if transform is not None:
        corners = np.array([transform.TransformPoint([float(v) for v in p]) for p in corners])
    dim = img.GetDimension()
    direction = np.asarray(img.GetDirection()).reshape(dim, dim)
    spacing = np.asarray(img.GetSpacing())
    # corners in the image's axis frame (rotated by the direction), in mm
    local = corners @ direction
    lo, hi = local.min(axis=0), local.max(axis=0)
    size = np.maximum(np.ceil((hi - lo) / spacing - 1e-6).astype(int), 1)
    first_centre = lo + 0.5 * spacing  # the outer face is half a voxel outside the first centre
    out = sitk.Image([int(n) for n in size], img.GetPixelID(), img.GetNumberOfComponentsPerPixel())
    out.SetSpacing(img.GetSpacing())
    out.SetDirection(img.GetDirection())
    out.SetOrigin(tuple(float(v) for v in direction @ first_centre))
    return out


def inside_fraction(points: np.ndarray, transform: sitk.Transform, img: sitk.Image,
                    mask: np.ndarray | None = None) -> float:
    """Fraction of ``points`` (physical, mm) that ``transform`` maps inside ``img``'s voxel
    grid (and inside ``mask``, a bool array of ``img``'s shape, when given)."""
    if len(points) == 0:
        return 0.0
    mapped = np.array([transform.TransformPoint([float(v) for v in p]) for p in points])
    dim = img.GetDimension()
    direction = np.asarray(img.GetDirection()).reshape(dim, dim)
    cidx = ((mapped - np.asarray(img.GetOrigin())) @ direction) / np.asarray(img.GetSpacing())
    size = np.asarray(img.GetSize())
    ok = np.all((cidx >= -0.5) & (cidx <= size - 0.5), axis=1)
    if mask is not None and ok.any():
        nearest = np.clip(np.rint(cidx[ok]).astype(int), 0, size - 1)
        inside = mask[tuple(nearest[:, ::-1].T)]
        ok[np.flatnonzero(ok)[~inside]] = False
    return float(ok.mean())
