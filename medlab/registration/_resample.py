"""Resampling of images and label images into any reference grid through a transform."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, check_scalar
from medlab._options import check_choice

from ._common import bounding_grid, check_transform

__all__ = ["resample", "resample_labels", "move_image", "IMAGE_INTERPOLATORS", "LABEL_INTERPOLATORS"]

IMAGE_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,  # cubic
    "nearest": sitk.sitkNearestNeighbor,
    "lanczos": sitk.sitkLanczosWindowedSinc,
}
LABEL_INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    # ITK's LabelImageGaussianInterpolateImageFunction: each label is blurred with a Gaussian
    # (sigma = the input spacing) and the label with the largest weight wins: smoother label
    # boundaries than nearest neighbour, and never a value that was not in the input.
    "label_gaussian": sitk.sitkLabelGaussian,
}


def _reference(reference, dim: int) -> sitk.Image:
    if isinstance(reference, sitk.Image):
        ref = reference
    else:
        ref, _ = as_sitk(reference, name="reference")
    if ref.GetDimension() != dim:
        raise ValueError(
            f"`reference` is {ref.GetDimension()}D (size {ref.GetSize()}); the image is {dim}D"
        )
    return ref


def _background(img: sitk.Image) -> float:
    arr = sitk.GetArrayViewFromImage(img)
    return float(arr.min()) if arr.size else 0.0


def resample(image, reference, transform=None, *, interpolator: str = "linear",
              default_value: float | None = None, spacing=None):
    """Resample ``image`` onto the grid of ``reference`` through ``transform``.

    The value at a reference voxel ``x`` (physical point) is ``image(transform(x))``:
    ``transform`` maps reference (fixed) points to image (moving) points, ITK's convention
    and the one of :func:`register` results.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image to resample (the moving image).
    reference : sitk.Image or ndarray
        Only its grid is used: size, spacing, origin, direction (a numpy array has spacing 1
        and origin 0).
    transform : sitk.Transform, optional
        Fixed -> moving. Default: identity (pure resampling between grids in one physical space).
    interpolator : {'linear', 'bspline', 'nearest', 'lanczos'}
        ``'bspline'`` is cubic and can overshoot (ringing at edges); for label images use
        :func:`resample_labels`.
    default_value : float, optional
        Value outside ``image``. Default: the minimum of ``image`` (its background: air in CT,
        0 in PET and MR), not 0, which is water in CT.
    spacing : sequence of float, optional
        Voxel size in mm, array axis order, for a numpy ``image``.

    Returns
    -------
    sitk.Image or ndarray
        On ``reference``'s grid; ``float32`` for 'linear', 'bspline' and 'lanczos', the input
        pixel type for 'nearest'. A numpy ``image`` gives a numpy array.
    """
    img, back = as_sitk(image, spacing=spacing, name="image")
    check_scalar(img, "image")
    ref = _reference(reference, img.GetDimension())
    tx = sitk.Transform(img.GetDimension(), sitk.sitkIdentity) if transform is None else \
        check_transform(transform, img.GetDimension())
    interp = IMAGE_INTERPOLATORS[check_choice("interpolator", interpolator, IMAGE_INTERPOLATORS)]
    if default_value is None:
        default_value = _background(img)
    pixel = img.GetPixelID() if interpolator == "nearest" else sitk.sitkFloat32
    src = img if interpolator == "nearest" else (
        img if img.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(img, sitk.sitkFloat32))
    out = sitk.Resample(src, ref, tx, interp, float(default_value), pixel)
    return back(out)


def _check_labels(img: sitk.Image):
    check_scalar(img, "labels")
    pid = img.GetPixelID()
    if pid in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(img)
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError("`labels` must hold integer label values; got non-integer values")


def resample_labels(labels, reference, transform=None, *, interpolator: str = "nearest",
                    spacing=None):
    """Resample a label image onto the grid of ``reference``; every output value is one of the
    input labels (0 outside).

    Parameters
    ----------
    labels : sitk.Image or (M, N[, P]) ndarray of int
        Label image (0 = background).
    reference : sitk.Image or ndarray
        The grid to resample onto.
    transform : sitk.Transform, optional
        Reference (fixed) -> labels (moving) points. Default identity.
    interpolator : {'nearest', 'label_gaussian'}
        Nearest neighbour, or ITK's label-Gaussian interpolation (smoother boundaries when the
        grids differ in resolution, e.g. a 5 mm PET mask onto a 1 mm CT grid).
    spacing : sequence of float, optional
        Voxel size in mm, array axis order, for a numpy ``labels``.

    Returns
    -------
    sitk.Image or ndarray
        Same pixel type as ``labels``, on ``reference``'s grid.
    """
    img, back = as_sitk(labels, spacing=spacing, name="labels")
    _check_labels(img)
    ref = _reference(reference, img.GetDimension())
    tx = sitk.Transform(img.GetDimension(), sitk.sitkIdentity) if transform is None else \
        check_transform(transform, img.GetDimension())
    interp = LABEL_INTERPOLATORS[check_choice("interpolator", interpolator, LABEL_INTERPOLATORS)]
    out = sitk.Resample(img, ref, tx, interp, 0.0, img.GetPixelID())
    return back(out)


def move_image(image, transform: sitk.Transform, *, is_label: bool = False,
               interpolator: str | None = None, default_value: float | None = None):
    """Move the content of ``image`` physically by ``transform``: a structure at point ``p``
    ends up at ``transform(p)``, on a grid enlarged to hold all of it (nothing is cropped).

    This is how known ground truth is made: registering ``image`` (fixed) to
    ``move_image(image, t)`` (moving) must give back ``t`` (ITK's fixed -> moving mapping).

    Parameters
    ----------
    image : sitk.Image
        Scalar image or label image.
    transform : sitk.Transform
        An invertible transform (linear, or any transform with an inverse).
    is_label : bool
        Nearest-neighbour interpolation, pixel type kept (default: linear, float32).
    interpolator : str, optional
        Override: one of :func:`resample`'s interpolators (or :func:`resample_labels`' for
        labels).
    default_value : float, optional
        Outside value for images (default: the image minimum).

    Returns
    -------
    sitk.Image
        Same spacing and direction as ``image``; origin and size cover the moved domain.
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"`image` must be a SimpleITK.Image; got {type(image).__name__}")
    check_transform(transform, image.GetDimension())
    inverse = _inverse(transform)
    grid = bounding_grid(image, transform)
    if is_label:
        return resample_labels(image, grid, inverse, interpolator=interpolator or "nearest")
    return resample(image, grid, inverse, interpolator=interpolator or "linear",
                    default_value=default_value)



def _inverse(transform: sitk.Transform) -> sitk.Transform:
    """The inverse of ``transform``; a displacement field is inverted numerically (ITK's
    fixed-point ``InvertDisplacementField``, accurate for smooth fold-free fields)."""
    if transform.GetName() == "DisplacementFieldTransform":
        field = sitk.DisplacementFieldTransform(transform).GetDisplacementField()
        inv = sitk.InvertDisplacementField(field, maximumNumberOfIterations=50,
                                           maxErrorToleranceThreshold=0.01,
                                           meanErrorToleranceThreshold=0.001,
                                           enforceBoundaryCondition=True)
        return sitk.DisplacementFieldTransform(inv)
    try:
        return transform.GetInverse()
    except RuntimeError as exc:
        raise ValueError(f"`transform` ({transform.GetName()}) has no inverse: {exc}") from exc
