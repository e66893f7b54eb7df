"""Label images as a DICOM RT Structure Set (RTSTRUCT), for radiotherapy systems.

Written with pydicom: the maintained RTSTRUCT writer on PyPI (``rt-utils`` 1.2.7) depends on
the GUI build of OpenCV (``opencv-python``), which clashes with the headless build medlab uses,
and highdicom has no RT Structure Set. Read back with :func:`medlab.io.rtstruct_to_labels`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from medlab.pacs._common import save_dataset

_RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
_COLOURS = [(0, 200, 0), (220, 0, 220), (0, 180, 255), (255, 200, 0), (255, 60, 60), (120, 120, 255)]
INTERPRETED_TYPES = ("ORGAN", "GTV", "CTV", "PTV", "AVOIDANCE", "EXTERNAL", "CONTROL", "")


def _pixel_edge_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Closed loops along the pixel edges between inside and outside, as (row, col) corner
    coordinates (pixel (i, j) spans corners (i, j)-(i+1, j+1)); only the corners where the
    loop turns are kept. A loop around a hole is a loop of its own: filled by the even-odd
    rule with pixel centres, the loops give back ``mask`` exactly."""
    m = np.pad(mask.astype(bool), 1)
    inside = m[1:-1, 1:-1]
    i, j = np.nonzero(inside & ~m[:-2, 1:-1])  # top side: neighbour above is outside
    edges = [np.column_stack([i, j, i, j + 1])]
    i, j = np.nonzero(inside & ~m[1:-1, 2:])  # right side
    edges.append(np.column_stack([i, j + 1, i + 1, j + 1]))
    i, j = np.nonzero(inside & ~m[2:, 1:-1])  # bottom side
    edges.append(np.column_stack([i + 1, j + 1, i + 1, j]))
    i, j = np.nonzero(inside & ~m[1:-1, :-2])  # left side
    edges.append(np.column_stack([i + 1, j, i, j]))
    out_of: dict[tuple, list[tuple]] = {}
    for a0, a1, b0, b1 in np.concatenate(edges).tolist():
        out_of.setdefault((a0, a1), []).append((b0, b1))
    loops = []
    while out_of:
        start = next(iter(out_of))
        loop, here = [start], start
        while True:
            nxt = out_of[here].pop()
            if not out_of[here]:
                del out_of[here]
            if nxt == start:
                break
            loop.append(nxt)
            here = nxt
        pts = np.array(loop, float)
        before, after = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        d1, d2 = pts - before, after - pts
        turns = d1[:, 0] * d2[:, 1] != d1[:, 1] * d2[:, 0]  # the direction changes here
        loops.append(pts[turns])
    return loops


def write_rtstruct(labels, source, path, *, names, interpreted_types=None, colors=None,
                   series_uid: str | None = None, structure_set_label: str = "medlab",
                   series_description: str = "medlab structures", series_number: int = 901,
                   overwrite: bool = False) -> Path:
    """Write label images of a DICOM series as an RT Structure Set (RTSTRUCT) with one ROI each.

    Each ROI's contours run along the voxel edges of its mask, slice by slice (one closed
    planar contour per outline; a hole is a contour of its own), in the patient frame (mm).
    :func:`medlab.io.rtstruct_to_labels`, which fills a contour with the voxels whose centre
    is inside it (even-odd), gives back the mask voxel for voxel. Each contour references the
    source image of its slice.

    Parameters
    ----------
    labels : SimpleITK.Image, (z, y, x) ndarray, or list of them
        An integer label image (label ``k`` is ROI ``names[k - 1]``) or one binary mask per
        ROI (they may overlap), on the source series' grid (as :func:`medlab.io.read` of the
        series folder gives it).
    source : str, os.PathLike, or list of paths / pydicom datasets
        The source series (e.g. the folder a retrieval wrote).
    path : str or os.PathLike
        Output ``.dcm`` file.
    names : list of str
        One ROIName per ROI.
    interpreted_types : list of str, optional
        RTROIInterpretedType per ROI (``'GTV'``, ``'CTV'``, ``'PTV'``, ``'ORGAN'``, ...;
        default empty, i.e. not stated).
    colors : list of (r, g, b), optional
        ROIDisplayColor per ROI (0-255).
    series_uid : str, optional
        The source series, when ``source`` holds several.
    structure_set_label, series_description, series_number
        Of the new RTSTRUCT series.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written (atomically: a temporary file, then a rename).

    Raises
    ------
    ValueError
        Naming the argument: masks not on the source grid, a ROI with no voxel, names that
        do not match the number of ROIs, an unknown interpreted type.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    import medlab
    from medlab.pacs._seg import _as_image, _frames_of, _source_grid, source_datasets

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"`path` {path} exists; pass overwrite=True to replace it")
    datasets = source_datasets(source, series_uid=series_uid)
    grid = _source_grid(datasets)
    if isinstance(labels, list | tuple):
        masks = [sitk.GetArrayFromImage(_as_image(m, grid, "labels")) > 0 for m in labels]
        image = _as_image(labels[0], grid, "labels")
    else:
        image = _as_image(labels, grid, "labels")
        arr = sitk.GetArrayFromImage(image)
        masks = [arr == k for k in range(1, int(arr.max()) + 1)] if arr.size else []
    names = [str(n) for n in names]
    if len(names) != len(masks) or not masks:
        raise ValueError(f"`names` has {len(names)} name(s) for {len(masks)} ROI(s) in `labels`")
    for name, m in zip(names, masks):
        if not m.any():
            raise ValueError(f"`labels`: ROI {name!r} has no voxel")
    types = list(interpreted_types) if interpreted_types is not None else [""] * len(masks)
    if len(types) != len(masks) or any(t not in INTERPRETED_TYPES for t in types):
        raise ValueError(f"`interpreted_types` must give one of {INTERPRETED_TYPES} per ROI; got {types}")
    colors = list(colors) if colors is not None else [_COLOURS[k % len(_COLOURS)] for k in range(len(masks))]
    if len(colors) != len(masks):
        raise ValueError(f"`colors` has {len(colors)} colour(s) for {len(masks)} ROI(s)")
    ks = _frames_of(image, datasets, "labels")
    by_slice = {k: ds for k, ds in zip(ks, datasets)}
    origin = np.array(image.GetOrigin())
    axes = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())  # index -> mm

    first = datasets[0]
    frame_uid = str(first.FrameOfReferenceUID)
    now = _dt.datetime.now()
    ds = pydicom.Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = _RTSTRUCT_STORAGE
    ds.SOPInstanceUID = generate_uid()
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription"):
        setattr(ds, key, first.get(key, ""))
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = str(series_description)
    ds.SeriesDate = ds.InstanceCreationDate = ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.InstanceCreationTime = ds.StructureSetTime = now.strftime("%H%M%S")
    ds.OperatorsName = ""
    ds.Manufacturer = "medlab"
    ds.ManufacturerModelName = "medlab.pacs.write_rtstruct"
    ds.SoftwareVersions = medlab.__version__
    ds.InstanceNumber = 1
    ds.StructureSetLabel = str(structure_set_label)[:16]
    ds.FrameOfReferenceUID = frame_uid  # the Frame of Reference module (RT Structure Set IOD since 2020)
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")

    contour_images = Sequence()
    for k in sorted(by_slice):
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID = by_slice[k].SOPClassUID
        item.ReferencedSOPInstanceUID = by_slice[k].SOPInstanceUID
        contour_images.append(item)
    series_item = pydicom.Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    series_item.ContourImageSequence = contour_images
    study_item = pydicom.Dataset()
    study_item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired; as usual)
    study_item.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_item.RTReferencedSeriesSequence = Sequence([series_item])
    frame_item = pydicom.Dataset()
    frame_item.FrameOfReferenceUID = frame_uid
    frame_item.RTReferencedStudySequence = Sequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame_item])

    rois, contours_seq, observations = Sequence(), Sequence(), Sequence()
    for number, (name, mask, kind, colour) in enumerate(zip(names, masks, types, colors), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "SEMIAUTOMATIC"
        rois.append(roi)
        contours = Sequence()
        for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
            for loop in _pixel_edge_loops(mask[k]):
                # corner (row, col) -> continuous index (x = col - 0.5, y = row - 0.5, z = k) -> mm
                index = np.column_stack([loop[:, 1] - 0.5, loop[:, 0] - 0.5, np.full(len(loop), float(k))])
                points = origin + index @ axes.T
                c = pydicom.Dataset()
                ref = pydicom.Dataset()
                ref.ReferencedSOPClassUID = by_slice[int(k)].SOPClassUID
                ref.ReferencedSOPInstanceUID = by_slice[int(k)].SOPInstanceUID
                c.ContourImageSequence = Sequence([ref])
                c.ContourGeometricType = "CLOSED_PLANAR"
                c.NumberOfContourPoints = len(points)
                c.ContourData = [f"{v:.10g}" for v in points.ravel()]  # DS: at most 16 characters
                contours.append(c)
        roi_contour = pydicom.Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = [int(v) for v in colour]
        roi_contour.ContourSequence = contours
        contours_seq.append(roi_contour)
        obs = pydicom.Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = kind
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours_seq
    ds.RTROIObservationsSequence = observations

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return save_dataset(ds, path)
