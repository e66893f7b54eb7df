"""Binary morphology with physical radii, hole filling, connected components, label statistics.

Masks are nonzero = inside, of either kind (``sitk.Image`` or numpy array); results are uint8
0/1 masks (or label images) of the same kind, on the same grid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from medlab._image import copy_geometry
from medlab._options import check_choice, check_int, check_positive

from ._common import (
    binary_image,
    check_connectivity,
    companion,
    integer_labels,
    radius_voxels_from_mm,
    scalar_image,
    seeds_to_sitk,
)
from ._region import _FACE, _FULL

_KERNELS = {"ball": sitk.sitkBall, "box": sitk.sitkBox, "cross": sitk.sitkCross}


def _kernel_radius(img: sitk.Image, radius_mm) -> list[int]:
    """SimpleITK (x, y, z) kernel radius in voxels of a physical radius."""
    return list(radius_voxels_from_mm("radius_mm", radius_mm, img.GetSpacing()[::-1])[::-1])


def erosion(mask, radius_mm, *, kernel="ball", spacing=None):
    """Morphological erosion with a physical radius: the mask shrunk by ``radius_mm``.

    A voxel stays inside when the whole structuring element around it is inside: a margin of
    about ``radius_mm`` is peeled off every boundary (e.g. a measuring region kept away from an
    organ's edge). The image border counts as inside (ITK's default), so a mask touching it is
    not eroded from there. Radius per axis as in :func:`opening`; ``radius_mm=(0, 3, 3)`` on a
    (z, y, x) grid erodes in-plane only.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    radius_mm : float or sequence of float
        Radius in mm, one value or one per axis (array axis order); each axis gets
        ``round(radius_mm / spacing)`` voxels.
    kernel : {'ball', 'box', 'cross'}
        Structuring element shape.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    shape = _KERNELS[check_choice("kernel", kernel, list(_KERNELS))]
    img, back = binary_image(mask, spacing)
    return back(sitk.BinaryErode(img, _kernel_radius(img, radius_mm), shape, 0, 1, True))


def dilation(mask, radius_mm, *, kernel="ball", spacing=None):
    """Morphological dilation with a physical radius: the mask grown by ``radius_mm``.

    A voxel is inside when the structuring element around it touches the mask (e.g. a margin
    around a tumour).

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    radius_mm : float or sequence of float
        Radius in mm, one value or one per axis (array axis order); each axis gets
        ``round(radius_mm / spacing)`` voxels.
    kernel : {'ball', 'box', 'cross'}
        Structuring element shape.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    shape = _KERNELS[check_choice("kernel", kernel, list(_KERNELS))]
    img, back = binary_image(mask, spacing)
    return back(sitk.BinaryDilate(img, _kernel_radius(img, radius_mm), shape, 0, 1, False))


def opening(mask, radius_mm, *, kernel="ball", spacing=None):
    """Morphological opening (erosion then dilation) with a physical radius.

    Removes parts thinner than about ``2 * radius_mm`` (spurs, thin bridges between objects)
    and keeps the rest. The structuring element has ``round(radius_mm / spacing)`` voxels of
    radius along each axis, so on an anisotropic grid it is the same physical size in every
    direction (an ellipsoid of voxels for 'ball').

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    radius_mm : float or sequence of float
        Radius in mm, one value or one per axis (array axis order). Axes where it is below
        half a voxel get radius 0; if that happens on every axis a ValueError is raised.
    kernel : {'ball', 'box', 'cross'}
        Structuring element shape.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    shape = _KERNELS[check_choice("kernel", kernel, list(_KERNELS))]
    img, back = binary_image(mask, spacing)
    return back(sitk.BinaryMorphologicalOpening(img, _kernel_radius(img, radius_mm), shape, 0, 1))


def closing(mask, radius_mm, *, kernel="ball", spacing=None):
    """Morphological closing (dilation then erosion) with a physical radius.

    Fills gaps and concavities narrower than about ``2 * radius_mm``. The image border is
    handled as if the mask continued outside (ITK's safe border), so objects touching it do
    not shrink. Radius per axis as in :func:`opening`.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    radius_mm : float or sequence of float
        Radius in mm, one value or one per axis (array axis order).
    kernel : {'ball', 'box', 'cross'}
        Structuring element shape.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    shape = _KERNELS[check_choice("kernel", kernel, list(_KERNELS))]
    img, back = binary_image(mask, spacing)
    return back(sitk.BinaryMorphologicalClosing(img, _kernel_radius(img, radius_mm), shape, 1, True))


def fill_holes(mask, *, slice_wise=False, axis=0, spacing=None):
    """Fill holes: background regions not connected to the image border.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    slice_wise : bool
        For a 3D mask, fill each 2D slice along ``axis`` on its own (a ring in every axial
        slice of a tube is filled, which 3D filling would not do since the tube is open at
        its ends).
    axis : int
        Slice axis in array order, 0 (z, axial), 1 (y) or 2 (x); only with ``slice_wise``.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8

    Notes
    -----
    Background is taken as face-connected (4 / 6 neighbours), so a diagonal gap in a
    contour does not let a hole leak out.
    """
    img, back = binary_image(mask, spacing)
    if not slice_wise:
        return back(sitk.BinaryFillhole(img, False, 1))
    if img.GetDimension() != 3:
        raise ValueError(f"`slice_wise=True` needs a 3D mask; got a {img.GetDimension()}D one")
    axis = check_int("axis", axis, minimum=0)
    if axis > 2:
        raise ValueError(f"`axis` must be 0 (z), 1 (y) or 2 (x); got {axis!r}")
    arr = sitk.GetArrayFromImage(img).astype(bool)
    moved = np.moveaxis(arr, axis, 0)
    for k in range(moved.shape[0]):
        if moved[k].any():
            moved[k] = ndi.binary_fill_holes(moved[k])
    return back(copy_geometry(arr.astype(np.uint8), img))


def connected_components(mask, *, connectivity="face", sort=True, spacing=None):
    """Label the connected components of a mask.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    connectivity : {'face', 'full'}
        'face' (4 / 6 neighbours) or 'full' (8 / 26).
    sort : bool
        Number components by decreasing size (1 = largest; ties keep raster order).
        Otherwise they are numbered in raster order of their first voxel.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint32
        0 background, 1..n components.
    """
    full = check_connectivity(connectivity)
    img, back = binary_image(mask, spacing)
    lab = sitk.ConnectedComponent(img, full)
    if sort:
        lab = sitk.RelabelComponent(lab, 0, True)
    return back(lab)


def largest_component(mask, *, connectivity="face", spacing=None):
    """The largest connected component of a mask (empty if the mask is empty).

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    connectivity : {'face', 'full'}
        'face' (4 / 6 neighbours) or 'full' (8 / 26).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    full = check_connectivity(connectivity)
    img, back = binary_image(mask, spacing)
    lab = sitk.RelabelComponent(sitk.ConnectedComponent(img, full), 0, True)
    return back(sitk.Equal(lab, 1))


def component_at(mask, *, seeds_index=None, seeds_mm=None, connectivity="face", spacing=None):
    """The connected component(s) of a mask that contain the seeds.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    seeds_index, seeds_mm : optional
        Seeds, exactly one of the two: numpy indexes ``(z, y, x)`` or physical points
        ``(x, y, z)`` in mm. Seeds outside the mask select nothing.
    connectivity : {'face', 'full'}
        'face' (4 / 6 neighbours) or 'full' (8 / 26).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    conn = _FULL if check_connectivity(connectivity) else _FACE
    img, back = binary_image(mask, spacing)
    seeds = seeds_to_sitk(img, seeds_index, seeds_mm)
    return back(sitk.ConnectedThreshold(img, seeds, 1, 1, 1, conn))


def remove_small_objects(mask, *, min_voxels=None, min_volume_ml=None, min_area_mm2=None,
                         connectivity="face", spacing=None):
    """Remove connected components smaller than a size; keep the others.

    Give exactly one size: in voxels, in mL (3D) or in mm^2 (2D). A component is kept when
    its size is ``>=`` the minimum.

    Parameters
    ----------
    mask : sitk.Image or (M, N[, P]) ndarray
        Binary mask (nonzero = inside).
    min_voxels : int, optional
        Minimum component size in voxels (pixels in 2D).
    min_volume_ml : float, optional
        Minimum volume in mL (1 mL = 1000 mm^3), 3D only.
    min_area_mm2 : float, optional
        Minimum area in mm^2, 2D only.
    connectivity : {'face', 'full'}
        'face' (4 / 6 neighbours) or 'full' (8 / 26).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
    """
    given = {k: v for k, v in (("min_voxels", min_voxels), ("min_volume_ml", min_volume_ml),
                               ("min_area_mm2", min_area_mm2)) if v is not None}
    if len(given) != 1:
        raise ValueError(
            "give exactly one of `min_voxels`, `min_volume_ml` (3D) and `min_area_mm2` (2D); "
            f"got {sorted(given) or 'none'}"
        )
    full = check_connectivity(connectivity)
    img, back = binary_image(mask, spacing)
    nd = img.GetDimension()
    voxel = float(np.prod(img.GetSpacing()))
    if min_voxels is not None:
        n = check_int("min_voxels", min_voxels, minimum=0)
    elif min_volume_ml is not None:
        if nd != 3:
            raise ValueError(f"`min_volume_ml` is for 3D masks; this one is {nd}D (use `min_area_mm2`)")
        n = int(np.ceil(check_positive("min_volume_ml", min_volume_ml, allow_zero=True) * 1000.0 / voxel - 1e-9))
    else:
        if nd != 2:
            raise ValueError(f"`min_area_mm2` is for 2D masks; this one is {nd}D (use `min_volume_ml`)")
        n = int(np.ceil(check_positive("min_area_mm2", min_area_mm2, allow_zero=True) / voxel - 1e-9))
    lab = sitk.RelabelComponent(sitk.ConnectedComponent(img, full), n, False)
    return back(sitk.NotEqual(lab, 0))


def label_statistics(labels, image=None, *, spacing=None):
    """Size, position and (with an image) intensity of every label, in physical units.

    Uses ``sitk.LabelShapeStatisticsImageFilter`` and
    ``sitk.LabelIntensityStatisticsImageFilter``.

    Parameters
    ----------
    labels : sitk.Image or (M, N[, P]) ndarray
        Label image (non-negative integers, 0 = background) or a binary mask (label 1).
    image : sitk.Image or ndarray, optional
        Intensity image on the same grid (same shape; same geometry when both are
        ``sitk.Image``). A numpy ``labels`` takes the geometry of a ``sitk.Image`` ``image``
        and vice versa.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, when both inputs are numpy arrays.

    Returns
    -------
    pandas.DataFrame
        One row per label present, sorted by label, with columns

        - ``label`` (int), ``voxels`` (int)
        - ``volume_ml`` (3D) or ``area_mm2`` (2D)
        - ``centroid_mm``: physical centroid ``(x, y[, z])`` in mm (SimpleITK order)
        - ``bbox_index``: first voxel of the bounding box, numpy order ``(z, y, x)``
        - ``bbox_size``: bounding-box size in voxels, numpy order ``(z, y, x)``
        - with ``image``: ``mean``, ``std`` (sample standard deviation, n - 1), ``min``,
          ``max``, in image intensity units.
    """
    import pandas as pd  # lazy: pandas would about double the import time of medlab.segmentation

    if isinstance(labels, sitk.Image) or image is None or not isinstance(image, sitk.Image):
        lab, _ = scalar_image(labels, spacing, "labels")
        img = None if image is None else companion(lab, image, names=("labels", "image"),
                                                     given_sitk=isinstance(labels, sitk.Image))
    else:  # numpy labels, sitk image: labels take the image's geometry
        img, _ = scalar_image(image, spacing, "image")
        lab = companion(img, labels, names=("image", "labels"), given_sitk=False)
    if img is not None:
        img = scalar_image(img, None, "image")[0]
        if img.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
            img = sitk.Cast(img, sitk.sitkFloat64)
    lab = integer_labels(lab, "labels")
    nd = lab.GetDimension()
    size_key = "volume_ml" if nd == 3 else "area_mm2"
    columns = ["label", "voxels", size_key, "centroid_mm", "bbox_index", "bbox_size"]
    if img is not None:
        columns += ["mean", "std", "min", "max"]
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputePerimeterOff()
    shape.Execute(lab)
    if img is not None:
        inten = sitk.LabelIntensityStatisticsImageFilter()
        inten.Execute(lab, img)
    voxel = float(np.prod(lab.GetSpacing()))
    rows = []
    for k in sorted(shape.GetLabels()):
        n = int(shape.GetNumberOfPixels(k))
        bb = shape.GetBoundingBox(k)
        row = {
            "label": int(k),
            "voxels": n,
            size_key: n * voxel / (1000.0 if nd == 3 else 1.0),
            "centroid_mm": tuple(float(c) for c in shape.GetCentroid(k)),
            "bbox_index": tuple(int(v) for v in bb[:nd][::-1]),
            "bbox_size": tuple(int(v) for v in bb[nd:][::-1]),
        }
        if img is not None:
            row.update(mean=float(inten.GetMean(k)), std=float(inten.GetStandardDeviation(k)),
                       min=float(inten.GetMinimum(k)), max=float(inten.GetMaximum(k)))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)

