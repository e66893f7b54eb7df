"""Label images and probability maps as DICOM SEG (highdicom), referencing their source series;
and the reader for what is written."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medlab.errors import ImageIOError
from medlab._options import check_choice
from medlab.pacs._common import save_dataset

ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")


@dataclass(frozen=True)
class Segment:
    """What one segment of a DICOM SEG is.

    Attributes
    ----------
    label : str
        The SegmentLabel shown by viewers (e.g. ``"tumour"``).
    category : str or tuple
        Segmented property category: a SNOMED CT concept name known to pydicom's code
        dictionary (``"Tissue"``, ``"AnatomicalStructure"``, ``"MorphologicallyAbnormalStructure"``)
        or a ``(value, scheme, meaning)`` tuple.
    type : str or tuple
        Segmented property type, the same way (``"Neoplasm"``, ``"Liver"``, ``"Bone"``...).
    tracking_id : str, optional
        A human-readable tracking identifier (kept with a new tracking UID).
    """

    label: str
    category: object = "Tissue"
    type: object = "Neoplasm"
    tracking_id: str | None = None


def coded(name: str, value) -> object:
    """A pydicom ``Code`` from a SNOMED CT concept name or a ``(value, scheme, meaning)`` tuple."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    if isinstance(value, Code):
        return value
    if isinstance(value, tuple | list) and len(value) == 3:
        return Code(str(value[0]), str(value[1]), str(value[2]))
    if isinstance(value, str):
        try:
            return getattr(codes.SCT, value)
        except AttributeError:
            close = difflib.get_close_matches(value, codes.SCT.dir(""), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"`{name}` {value!r} is not a SNOMED CT concept name in pydicom's code "
                             f"dictionary (give a (value, scheme, meaning) tuple){hint}") from None
    raise TypeError(f"`{name}` must be a concept name or a (value, scheme, meaning) tuple; got {value!r}")


def source_datasets(source, *, series_uid: str | None = None) -> list:
    """The headers of a source series (a folder, file paths or datasets), one series only."""
    import pydicom

    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        files = sorted(p for p in Path(source).iterdir() if p.is_file())
    elif isinstance(source, str | os.PathLike | pydicom.Dataset):
        files = [source]
    else:
        files = list(source)
    out = []
    for f in files:
        if isinstance(f, pydicom.Dataset):
            out.append(f)
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue  # not DICOM (e.g. a notes file next to the series)
        if "ImagePositionPatient" in ds and "PixelSpacing" in ds:
            out.append(ds)
    if series_uid is not None:
        out = [ds for ds in out if str(ds.SeriesInstanceUID) == series_uid]
    uids = sorted({str(ds.SeriesInstanceUID) for ds in out})
    if not out:
        raise ImageIOError(str(source), "no DICOM image with a position (the source series) was found")
    if len(uids) > 1:
        raise ValueError(f"`source` holds {len(uids)} series; choose one with `series_uid` ({uids[:3]})")
    return out


def _frames_of(image: sitk.Image, datasets: list, what: str) -> list[int]:
    """The slice index of each source dataset on the image grid (their positions must fall on it)."""
    rows = {int(ds.Rows) for ds in datasets}
    cols = {int(ds.Columns) for ds in datasets}
    nx, ny, nz = image.GetSize()
    if rows != {ny} or cols != {nx}:
        raise ValueError(f"`{what}` is {nx} x {ny} (x, y) in plane; the source images are "
                         f"{sorted(cols)} x {sorted(rows)}")
    ks = []
    for ds in datasets:
        i, j, k = image.TransformPhysicalPointToContinuousIndex([float(v) for v in ds.ImagePositionPatient])
        kk = int(round(k))
        if max(abs(i), abs(j), abs(k - kk)) > 0.05 or not 0 <= kk < nz:
            raise ValueError(f"source image {ds.SOPInstanceUID} (position {list(ds.ImagePositionPatient)}) does "
                             f"not fall on a slice of `{what}`; it must be on the source series' grid")
        ks.append(kk)
    if len(set(ks)) != len(ks) or len(ks) != nz:
        raise ValueError(f"`{what}` has {nz} slices; the source series has {len(ks)} distinct positions")
    return ks


def _as_image(value, reference: sitk.Image | None, name: str) -> sitk.Image:
    if isinstance(value, sitk.Image):
        return value
    arr = np.asarray(value)
    if arr.ndim != 3:
        raise ValueError(f"`{name}` must be a 3D image or (z, y, x) array; got shape {arr.shape}")
    img = sitk.GetImageFromArray(arr)
    if reference is not None:
        want = tuple(reversed(reference.GetSize()))
        if arr.shape != want:
            raise ValueError(f"`{name}` has shape {arr.shape}; the source series is {want} (z, y, x)")
        img.CopyInformation(reference)
    return img


def _source_grid(datasets: list) -> sitk.Image:
    """An empty image on the grid of the source series (slices sorted along their normal)."""
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    order = sorted(datasets, key=lambda ds: float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient])))
    first = np.array([float(v) for v in order[0].ImagePositionPatient])
    last = np.array([float(v) for v in order[-1].ImagePositionPatient])
    dz = float(np.dot(normal, last - first)) / max(len(order) - 1, 1) or 1.0
    row, col = (float(v) for v in order[0].PixelSpacing)
    img = sitk.Image(int(order[0].Columns), int(order[0].Rows), len(order), sitk.sitkUInt8)
    img.SetSpacing((col, row, dz))
    img.SetOrigin(tuple(first))
    img.SetDirection(tuple(np.column_stack([iop[:3], iop[3:], normal]).ravel()))
    return img


def write_seg(segmentation, source, path, *, segments, fractional: bool = False,
              series_uid: str | None = None, algorithm_type: str = "AUTOMATIC",
              algorithm_name: str = "medlab", series_description: str = "medlab segmentation",
              series_number: int = 900, overwrite: bool = False) -> Path:
    """Write a segmentation of a DICOM series as a DICOM SEG file (highdicom).

    Parameters
    ----------
    segmentation : SimpleITK.Image, (z, y, x) ndarray, or list of them
        Binary SEG (``fractional=False``): an integer label image, label ``k`` is segment
        ``segments[k - 1]``, 0 background; or a list of binary masks, one per segment (they
        may overlap). Fractional SEG: one float image per segment with values in [0, 1]
        (probability), stored in 1/255 steps. Images must be on the source
        series' grid (as :func:`medlab.io.read` of the series folder gives it); a numpy array
        is taken in that order.
    source : str, os.PathLike, or list of paths / pydicom datasets
        The source series (e.g. the folder a retrieval wrote).
    path : str or os.PathLike
        Output ``.dcm`` file.
    segments : list of Segment or str
        One description per segment (a str is a label with the default Tissue / Neoplasm
        codes).
    fractional : bool
        Write a FRACTIONAL (probability) SEG.
    series_uid : str, optional
        The source series, when ``source`` holds several.
    algorithm_type : {'AUTOMATIC', 'SEMIAUTOMATIC', 'MANUAL'}
        How the segments were made; the first two name ``algorithm_name`` (version: medlab's).
    series_description, series_number
        Of the new SEG series.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written (atomically: a temporary file, then a rename).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import medlab

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"`path` {path} exists; pass overwrite=True to replace it")
    algorithm_type = check_choice("algorithm_type", algorithm_type.upper(), ALGORITHM_TYPES)
    segs = [Segment(s) if isinstance(s, str) else s for s in segments]
    if not segs:
        raise ValueError("`segments` must describe at least one segment")
    datasets = source_datasets(source, series_uid=series_uid)
    grid = _source_grid(datasets)
    if fractional:
        maps = segmentation if isinstance(segmentation, list | tuple) else [segmentation]
        if len(maps) != len(segs):
            raise ValueError(f"`segmentation` has {len(maps)} probability map(s) for {len(segs)} `segments`")
        images = [_as_image(m, grid, "segmentation") for m in maps]
        ks = _frames_of(images[0], datasets, "segmentation")
        stack = np.stack([sitk.GetArrayFromImage(im).astype(np.float32) for im in images], axis=-1)
        if not np.isfinite(stack).all() or stack.min() < 0 or stack.max() > 1:
            raise ValueError("`segmentation` probabilities must lie in [0, 1]")
        for im in images[1:]:
            if _frames_of(im, datasets, "segmentation") != ks:
                raise ValueError("the probability maps in `segmentation` are not on one grid")
        pixels = stack[ks]
        seg_type = hd.seg.SegmentationTypeValues.FRACTIONAL
    elif isinstance(segmentation, list | tuple):  # one binary mask per segment; they may overlap
        if len(segmentation) != len(segs):
            raise ValueError(f"`segmentation` has {len(segmentation)} mask(s) for {len(segs)} `segments`")
        images = [_as_image(m, grid, "segmentation") for m in segmentation]
        ks = _frames_of(images[0], datasets, "segmentation")
        for im in images[1:]:
            if _frames_of(im, datasets, "segmentation") != ks:
                raise ValueError("the masks in `segmentation` are not on one grid")
        pixels = np.stack([sitk.GetArrayFromImage(im) > 0 for im in images], axis=-1)[ks]
        seg_type = hd.seg.SegmentationTypeValues.BINARY
    else:
        image = _as_image(segmentation, grid, "segmentation")
        arr = sitk.GetArrayFromImage(image)
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"`segmentation` must be an integer label image for a binary SEG; got {arr.dtype}")
        if arr.min() < 0 or arr.max() > len(segs):
            raise ValueError(f"`segmentation` labels run {arr.min()}..{arr.max()}; `segments` describes 1..{len(segs)}")
        ks = _frames_of(image, datasets, "segmentation")
        pixels = arr[ks].astype(np.uint8 if len(segs) < 256 else np.uint16)
        seg_type = hd.seg.SegmentationTypeValues.BINARY
    algorithm = None
    if algorithm_type != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name=algorithm_name, version=medlab.__version__, family=codes.cid7162.ArtificialIntelligence)
    descriptions = []
    for number, s in enumerate(segs, start=1):
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=str(s.label),
            segmented_property_category=coded("category", s.category),
            segmented_property_type=coded("type", s.type),
            algorithm_type=algorithm_type, algorithm_identification=algorithm,
            tracking_uid=hd.UID() if s.tracking_id else None, tracking_id=s.tracking_id))
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels, segmentation_type=seg_type,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medlab",
        manufacturer_model_name="medlab", software_versions=medlab.__version__,
        device_serial_number="0", series_description=series_description,
        omit_empty_frames=False)
    return save_dataset(seg, path)


def read_seg(path, reference_image: sitk.Image, *, fractions: bool = False):
    """Read a DICOM SEG onto a reference grid, with its segment descriptions.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file.
    reference_image : SimpleITK.Image
        The source series image (e.g. :func:`medlab.io.read` of the series folder).
    fractions : bool
        Return the stored fractions (FRACTIONAL SEG: probability in [0, 1], 1/255 steps;
        BINARY: 0/1), one float32 image per segment, instead of a label image.

    Returns
    -------
    image : SimpleITK.Image or list of SimpleITK.Image
        Labels (uint8/uint16, label ``k`` = segment number ``k``; through
        :func:`medlab.io.seg_to_labels`, so a fractional segment is thresholded at 0.5),
        or the fractions (a list of float32 images, in segment order) when ``fractions=True``.
    segments : list of dict
        Per segment: ``number``, ``label``, ``category`` and ``type`` (``(value, scheme,
        meaning)``), ``algorithm_type``, ``tracking_id``.
    """
    import highdicom as hd

    import medlab.io

    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise ImageIOError(path, f"not a readable DICOM SEG: {exc}") from None
    segments = []
    for d in seg.SegmentSequence:
        cat, typ = d.SegmentedPropertyCategoryCodeSequence[0], d.SegmentedPropertyTypeCodeSequence[0]
        segments.append({
            "number": int(d.SegmentNumber), "label": str(d.SegmentLabel),
            "category": (str(cat.CodeValue), str(cat.CodingSchemeDesignator), str(cat.CodeMeaning)),
            "type": (str(typ.CodeValue), str(typ.CodingSchemeDesignator), str(typ.CodeMeaning)),
            "algorithm_type": str(d.SegmentAlgorithmType),
            "tracking_id": str(d.TrackingID) if "TrackingID" in d else None,
        })
    if not fractions:
        return medlab.io.seg_to_labels(path, reference_image), segments
    nx, ny, nz = reference_image.GetSize()
    out = np.zeros((nz, ny, nx, len(segments)), np.float32)
    uid_at = {}
    for item in seg.PerFrameFunctionalGroupsSequence:
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        uid = str(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        i, j, k = reference_image.TransformPhysicalPointToContinuousIndex(position)
        kk = int(round(k))
        if max(abs(i), abs(j), abs(k - kk)) > 0.05 or not 0 <= kk < nz:
            raise ValueError(f"SEG frame at {position} does not fall on a slice of `reference_image`")
        uid_at[uid] = kk
    uids = list(uid_at)
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[s["number"] for s in segments],
                                               rescale_fractional=True, dtype=np.float32)
    for uid, frame in zip(uids, pixels):
        out[uid_at[uid]] = frame
    images = []
    for n in range(len(segments)):
        image = sitk.GetImageFromArray(out[..., n])
        image.CopyInformation(reference_image)
        images.append(image)
    return images, segments
