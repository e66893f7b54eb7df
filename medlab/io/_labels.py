"""RTSTRUCT contours and DICOM SEG segments as label images on a reference grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from medlab._image import copy_geometry
from medlab._options import check_choice
from medlab.errors import ImageIOError
from medlab.io._common import fspath, require_exists
from medlab.io._header import find, frame_items, open_dicom


def _open(path, what: str, modality: str, sequence: str):
    path = fspath(path, what)
    require_exists(path)
    ds = open_dicom(path)
    if sequence not in ds:
        raise ImageIOError(path, f"not a DICOM {modality} (Modality {ds.get('Modality', '?')}, no {sequence})")
    return path, ds


def _check_reference(reference_image) -> sitk.Image:
    if not isinstance(reference_image, sitk.Image):
        raise TypeError(
            "`reference_image` must be a SimpleITK.Image (its spacing, origin and direction "
            f"place the contours); got {type(reference_image).__name__}"
        )
    if reference_image.GetDimension() != 3:
        raise ValueError(f"`reference_image` must be 3D; got size {reference_image.GetSize()}")
    return reference_image


def _physical_to_index(reference: sitk.Image):
    """Affine map of physical points (N, 3) in mm (x, y, z) to continuous indices (i, j, k).

    The same mapping as ``TransformPhysicalPointToContinuousIndex``, vectorised: index i is
    at the centre of voxel i.
    """
    matrix = np.asarray(reference.GetDirection(), float).reshape(3, 3) @ np.diag(reference.GetSpacing())
    inverse = np.linalg.inv(matrix)
    origin = np.asarray(reference.GetOrigin(), float)
    return lambda points: (np.asarray(points, float) - origin) @ inverse.T


def _select(name: str, wanted, available: list[str]) -> list[str]:
    if wanted is None:
        return list(dict.fromkeys(available))
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, Sequence) or not wanted:
        raise TypeError(f"`{name}` must be a name, a non-empty list of names, or None; got {wanted!r}")
    return [check_choice(name, w, available) for w in wanted]


def _labels_image(labels: np.ndarray, reference: sitk.Image) -> sitk.Image:
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
    return copy_geometry(labels.astype(dtype), reference)


# --------------------------------------------------------------------------- RTSTRUCT


def rtstruct_rois(path) -> list[str]:
    """Names of the ROIs in an RTSTRUCT file, in the order of its StructureSetROISequence.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list of str

    Raises
    ------
    ImageIOError
        If the file is not a readable RTSTRUCT.
    """
    _, ds = _open(path, "path", "RTSTRUCT", "StructureSetROISequence")
    return [str(item.get("ROIName", "")).strip() for item in ds.StructureSetROISequence]


def rtstruct_to_labels(rtstruct_path, reference_image: sitk.Image, *, roi=None) -> sitk.Image:
    """Rasterise RTSTRUCT contours into a label image on the grid of ``reference_image``.

    Every CLOSED_PLANAR contour is mapped from physical points (x, y, z in mm, patient
    frame) to continuous voxel indices of the reference; it must lie in one slice of the
    reference (to within half a slice) and is filled there: a voxel belongs to the contour
    when its **centre** is inside the polygon. Several contours of one ROI on the same slice
    combine by even-odd (XOR), so a contour inside another is a hole. POINT and OPEN_PLANAR
    contours are ignored, and so are slices outside the reference.

    Parameters
    ----------
    rtstruct_path : str or os.PathLike
        The RTSTRUCT file.
    reference_image : SimpleITK.Image
        3D image whose grid (size, spacing, origin, direction) the labels use, usually the
        series the structure set was drawn on (``medlab.io.read(folder)``).
    roi : str or list of str, optional
        ROI name(s) to rasterise (see :func:`rtstruct_rois`). Default: all ROIs.

    Returns
    -------
    SimpleITK.Image
        uint8 (uint16 for more than 255 ROIs) on the reference grid. Label ``k`` (1-based) is
        the k-th selected ROI (``roi`` order, else file order); 0 is background. Where ROIs
        overlap, the later one wins.

    Raises
    ------
    ImageIOError
        If the file is not a readable RTSTRUCT.
    ValueError
        If a name in ``roi`` is not in the file, a contour is not in a slice plane of the
        reference, or no contour of a selected ROI falls inside the reference (wrong
        reference image).
    """
    path, ds = _open(rtstruct_path, "rtstruct_path", "RTSTRUCT", "StructureSetROISequence")
    reference = _check_reference(reference_image)
    numbers = {}
    for item in ds.StructureSetROISequence:
        numbers.setdefault(str(item.get("ROIName", "")).strip(), []).append(int(item.ROINumber))
    selected = _select("roi", roi, list(numbers))
    contours_of = {}
    for item in ds.get("ROIContourSequence") or []:
        contours_of.setdefault(int(item.ReferencedROINumber), []).extend(item.get("ContourSequence") or [])

    to_index = _physical_to_index(reference)
    nx, ny, nz = reference.GetSize()
    labels = np.zeros((nz, ny, nx), np.uint16)
    for label, name in enumerate(selected, start=1):
        mask = np.zeros((nz, ny, nx), bool)
        inside = 0
        contours = [
            c
            for n in numbers[name]
            for c in contours_of.get(n, [])
            if str(c.get("ContourGeometricType", "")).upper() == "CLOSED_PLANAR"
        ]
        for contour in contours:
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            if len(points) < 3:
                continue
            index = to_index(points)
            if np.ptp(index[:, 2]) > 0.5:
                raise ValueError(
                    f"a contour of ROI {name!r} in {path} spans {np.ptp(index[:, 2]):.2f} slices of "
                    "`reference_image`; it is not in a slice plane of that grid"
                )
            k = int(np.round(index[:, 2].mean()))
            if not 0 <= k < nz:
                continue
            inside += 1
            mask[k] ^= _fill(index[:, 1], index[:, 0], (ny, nx))
        if contours and not inside:
            raise ValueError(
                f"no contour of ROI {name!r} in {path} lies within `reference_image` "
                f"(size {reference.GetSize()}, origin {reference.GetOrigin()}); is it the image "
                "the structure set was drawn on?"
            )
        labels[mask] = label
    return _labels_image(labels, reference)


def _fill(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre is inside the polygon (continuous row/column indices)."""
    from skimage.draw import polygon

    out = np.zeros(shape, bool)
    rr, cc = polygon(rows, cols, shape)
    out[rr, cc] = True
    return out


# --------------------------------------------------------------------------- DICOM SEG


def seg_to_labels(seg_path, reference_image: sitk.Image, *, segment=None) -> sitk.Image:
    """Place the frames of a DICOM SEG on the grid of ``reference_image`` as a label image.

    Each frame is put at the voxel position of its ImagePositionPatient in the reference; the
    SEG must share the reference's in-plane spacing and orientation (a SEG made on that
    series does). FRACTIONAL segments are thresholded at half their maximum value.

    Parameters
    ----------
    seg_path : str or os.PathLike
        The DICOM SEG file.
    reference_image : SimpleITK.Image
        3D image whose grid the labels use.
    segment : str or list of str, optional
        SegmentLabel(s) to keep. Default: all segments, in SegmentSequence order.

    Returns
    -------
    SimpleITK.Image
        uint8 (uint16 above 255 segments) on the reference grid; label ``k`` is the k-th
        selected segment, 0 background; where segments overlap, the later one wins.

    Raises
    ------
    ImageIOError
        If the file is not a readable DICOM SEG.
    ValueError
        If ``segment`` names are unknown, or the SEG frames do not fall on the reference grid.
    """
    path, ds = _open(seg_path, "seg_path", "SEG", "SegmentSequence")
    reference = _check_reference(reference_image)
    names = [str(s.get("SegmentLabel", s.SegmentNumber)).strip() for s in ds.SegmentSequence]
    numbers = [int(s.SegmentNumber) for s in ds.SegmentSequence]
    selected = _select("segment", segment, names)
    label_of = {}
    for label, name in enumerate(selected, start=1):
        for number, n in zip(numbers, names):
            if n == name:
                label_of[number] = label
    try:
        frames = ds.pixel_array
    except Exception as exc:
        raise ImageIOError(path, f"cannot decode the SEG frames: {exc}") from exc
    count = int(ds.get("NumberOfFrames") or 1)
    frames = frames.reshape(count, int(ds.Rows), int(ds.Columns))
    if str(ds.get("SegmentationType", "")).upper() == "FRACTIONAL":
        frames = frames >= float(ds.get("MaximumFractionalValue", 255)) / 2.0
    positions = frame_items(ds, "PlanePositionSequence")
    idents = frame_items(ds, "SegmentIdentificationSequence")
    if positions is None or len(positions) != count or idents is None or len(idents) != count:
        raise ImageIOError(path, "the SEG frames lack per-frame positions or segment numbers")

    _check_seg_plane(ds, reference)
    to_index = _physical_to_index(reference)
    nx, ny, nz = reference.GetSize()
    labels = np.zeros((nz, ny, nx), np.uint16)
    order = sorted(range(count), key=lambda f: label_of.get(int(idents[f].ReferencedSegmentNumber), 0))
    for f in order:
        label = label_of.get(int(idents[f].ReferencedSegmentNumber))
        if label is None:
            continue
        i, j, k = to_index([[float(v) for v in positions[f].ImagePositionPatient]])[0]
        ii, jj, kk = (int(round(v)) for v in (i, j, k))
        if max(abs(i - ii), abs(j - jj), abs(k - kk)) > 0.1 or not (
            0 <= kk < nz and 0 <= ii and ii + frames.shape[2] <= nx and 0 <= jj and jj + frames.shape[1] <= ny
        ):
            raise ValueError(
                f"SEG frame {f + 1} of {path} (position {tuple(positions[f].ImagePositionPatient)}) "
                "does not fall on the grid of `reference_image`"
            )
        region = labels[kk, jj : jj + frames.shape[1], ii : ii + frames.shape[2]]
        region[frames[f] > 0] = label
    return _labels_image(labels, reference)


def _check_seg_plane(ds, reference: sitk.Image) -> None:
    """The SEG's in-plane spacing and orientation must be those of the reference grid."""
    spacing = find(ds, "PixelSpacing")
    if spacing is not None:
        spacing = (float(spacing[1]), float(spacing[0]))  # DICOM (row, column) -> (x, y)
        if not np.allclose(spacing, reference.GetSpacing()[:2], rtol=1e-3):
            raise ValueError(
                f"the SEG pixel spacing {spacing} mm (x, y) differs from `reference_image` spacing "
                f"{reference.GetSpacing()[:2]} mm; resample the reference first"
            )
    iop = find(ds, "ImageOrientationPatient")
    if iop is not None:
        direction = np.asarray(reference.GetDirection(), float).reshape(3, 3)
        if not np.allclose([float(v) for v in iop], np.r_[direction[:, 0], direction[:, 1]], atol=1e-3):
            raise ValueError(
                f"the SEG orientation {tuple(float(v) for v in iop)} differs from the row and column "
                "directions of `reference_image`"
            )
