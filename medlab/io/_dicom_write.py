"""``medlab.io.write_dicom_series``: a 3D CT (HU) or PET (SUV) image as a DICOM image series.

One single-frame instance per slice (CT Image Storage or PET Image Storage, explicit VR
little endian), with the geometry of the image (ImagePositionPatient per slice,
ImageOrientationPatient, PixelSpacing, SliceThickness) in DICOM's patient frame, which is
SimpleITK's LPS frame. Used to put images that exist only as NIfTI (e.g. the sarcoma CT/PET)
into a PACS.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medlab import _atomic
from medlab._image import as_sitk
from medlab.errors import ImageIOError
from medlab.io._common import fspath

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
MODALITIES = {"CT": "CT", "PT": "PT", "PET": "PT"}
_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"


@dataclass
class DicomSeries:
    """What :func:`write_dicom_series` wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The series folder.
    files : list of pathlib.Path
        One file per slice, in slice-index order (``IM00001.dcm``, ...).
    study_uid, series_uid, frame_of_reference_uid : str
        Give ``study_uid`` and ``frame_of_reference_uid`` to the next call to put another
        series (e.g. the PET of the same scan) in the same study and frame of reference.
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""


def _ds(value: float) -> str:
    """A decimal string (DS) of at most 16 characters, as close to ``value`` as they allow."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _encode_ct(values: np.ndarray):
    """(stored int array, dtype, pixel representation, slope, intercept) for HU values: integer
    HU in the int16 range are stored as they are; anything else as uint16 with a linear
    rescale over the series' range (error at most half a step, (max - min) / 65535 / 2)."""
    lo, hi = float(values.min()), float(values.max())
    if np.array_equal(values, np.round(values)) and lo >= -32768 and hi <= 32767:
        return values.astype(np.int16), 1, 1.0, 0.0
    intercept = float(_ds(lo))
    slope = float(_ds((hi - intercept) / 65535.0)) if hi > intercept else 1.0  # DS rounding: ~1e-15, clipped
    stored = np.clip(np.round((values - intercept) / slope), 0, 65535).astype(np.uint16)
    return stored, 0, slope, intercept


def _encode_pet_slice(values: np.ndarray, signed: bool):
    """(stored slice, slope) for SUV values: PET images have RescaleIntercept 0, so each
    slice gets its own slope over its largest magnitude (error at most half a step)."""
    top = 32767 if signed else 65535
    peak = float(np.abs(values).max())
    slope = float(_ds(peak / top)) if peak > 0 else 1.0
    stored = np.clip(np.round(values / slope), -top - 1 if signed else 0, top)
    return stored.astype(np.int16 if signed else np.uint16), slope


def _check_uid(name: str, uid) -> str | None:
    if uid is None:
        return None
    uid = str(uid)
    if len(uid) > 64 or not _UID.match(uid):
        raise ValueError(f"`{name}` must be a valid DICOM UID (digits and dots, at most 64 characters); got {uid!r}")
    return uid


def write_dicom_series(image, folder, *, modality: str, patient_id: str = "ANONYMOUS", patient_name: str = "",
                       study_uid: str | None = None, frame_of_reference_uid: str | None = None,
                       series_uid: str | None = None, study_description: str = "",
                       series_description: str = "", series_number: int = 1, attributes: dict | None = None,
                       overwrite: bool = False) -> DicomSeries:
    """Write a 3D CT or PET image as a DICOM image series (one file per slice).

    CT values are Hounsfield units: integer HU in the int16 range are stored exactly
    (RescaleSlope 1, RescaleIntercept 0); other values as uint16 with one linear rescale for
    the series (error at most half a step). PET values are SUV body weight: PET Units
    ``GML`` (so :func:`medlab.io.read` reads them back as SUV with a factor of 1), stored per
    slice with RescaleIntercept 0 and the slice's own RescaleSlope, as PET requires (error at
    most half a step, ``max |SUV| of the slice / 65535 / 2``; 32767 when values are negative).
    The corrections behind the values are not known here: CorrectedImage is empty and
    DecayCorrection ``NONE``; pass ``CorrectedImage``, ``DecayCorrection`` and ``DecayFactor``
    in ``attributes`` when you know them. The series passes dciodvfy (dicom3tools) without
    errors.

    Geometry: slice ``k`` (numpy index ``[k]``) is at ``origin + k * spacing_z * d_z`` in
    DICOM's patient frame (LPS, mm), where ``d_z`` is the third column of the image's
    direction; ImageOrientationPatient holds the first two columns, PixelSpacing the
    (row, column) spacing, SliceThickness and SpacingBetweenSlices the slice spacing.
    Readers sort slices along the normal ``d_x x d_y``, so an image whose direction is
    left-handed reads back with its slices reversed (the same physical image).

    The files are written into a temporary folder beside ``folder`` and renamed into place
    when all are complete: the folder never holds part of a series.

    Parameters
    ----------
    image : SimpleITK.Image
        A 3D scalar image (CT in HU, PET in SUV) with its geometry in mm, LPS.
    folder : str or os.PathLike
        The series folder to create; its parent must exist.
    modality : {'CT', 'PT'}
        ``'PET'`` is taken as ``'PT'``.
    patient_id, patient_name : str
        Patient module (de-identified values by default).
    study_uid, frame_of_reference_uid : str, optional
        Put the series into an existing study and frame of reference (e.g. the CT's, from the
        returned :class:`DicomSeries`); new UIDs by default.
    series_uid : str, optional
        New by default.
    study_description, series_description : str
        Descriptions shown by PACS viewers.
    series_number : int
        SeriesNumber.
    attributes : dict, optional
        More DICOM attributes for every instance, by keyword (e.g. ``{"PatientWeight": 70.0,
        "StudyDate": "20240101"}``); they override the defaults written here, except the
        pixel, geometry, UID and modality attributes.
    overwrite : bool
        Replace an existing, non-empty ``folder`` (the old one is removed after the new one
        is in place).

    Returns
    -------
    DicomSeries
        The folder, its files, and the study, series and frame-of-reference UIDs.

    Raises
    ------
    ValueError
        Naming the argument: not a 3D scalar image, values not finite, an unknown modality,
        an invalid UID or attribute keyword.
    ImageIOError
        ``folder`` exists and is not empty (and ``overwrite`` is False), or its parent folder
        does not exist.

    Examples
    --------
    >>> from medlab import datasets, io  # doctest: +SKIP
    >>> ct = datasets.load("sts", case="STS_001", modality="CT").image  # doctest: +SKIP
    >>> s = io.write_dicom_series(ct, "ct_dicom", modality="CT")  # doctest: +SKIP
    >>> pet = datasets.load("sts", case="STS_001", modality="PET").image  # doctest: +SKIP
    >>> io.write_dicom_series(pet, "pet_dicom", modality="PT", study_uid=s.study_uid,
    ...                       frame_of_reference_uid=s.frame_of_reference_uid)  # doctest: +SKIP
    """
    import pydicom
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    img, _ = as_sitk(image, name="image")
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"`image` must be a 3D scalar image; got dimension {img.GetDimension()} with "
                         f"{img.GetNumberOfComponentsPerPixel()} component(s)")
    mod = MODALITIES.get(str(modality).upper())
    if mod is None:
        raise ValueError(f"`modality` must be 'CT' or 'PT' (PET); got {modality!r}")
    values = sitk.GetArrayFromImage(img).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("`image` has NaN or infinite values, which DICOM cannot store")
    study_uid = _check_uid("study_uid", study_uid) or generate_uid()
    frame_uid = _check_uid("frame_of_reference_uid", frame_of_reference_uid) or generate_uid()
    series_uid = _check_uid("series_uid", series_uid) or generate_uid()
    protected = {"PixelData", "Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient",
                 "PixelSpacing", "SliceThickness", "SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID",
                 "StudyInstanceUID", "FrameOfReferenceUID", "Modality", "RescaleSlope", "RescaleIntercept",
                 "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
                 "PhotometricInterpretation", "Units"}
    attributes = dict(attributes or {})
    for key in attributes:
        if tag_for_keyword(key) is None:
            raise ValueError(f"`attributes`: {key!r} is not a DICOM keyword")
        if key in protected:
            raise ValueError(f"`attributes`: {key!r} is written from the image and its geometry; it cannot be set")
    target = Path(fspath(folder, "folder"))
    if not target.parent.is_dir():
        raise ImageIOError(target, f"the folder {str(target.parent)!r} does not exist")
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise ImageIOError(target, "exists and is not an empty folder; pass overwrite=True to replace it")

    spacing = np.array(img.GetSpacing(), float)
    origin = np.array(img.GetOrigin(), float)
    direction = np.array(img.GetDirection(), float).reshape(3, 3)
    nz, ny, nx = values.shape
    now = _dt.datetime.now()
    date, clock = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    if mod == "CT":
        stored, representation, slope, intercept = _encode_ct(values)
        slices = [(stored[k], slope) for k in range(nz)]
    else:
        representation = 1 if values.min() < 0 else 0
        slices = [_encode_pet_slice(values[k], bool(representation)) for k in range(nz)]
        intercept = 0.0

    base = pydicom.Dataset()
    base.SpecificCharacterSet = "ISO_IR 192"
    base.SOPClassUID = _CT_STORAGE if mod == "CT" else _PET_STORAGE
    base.StudyDate, base.StudyTime = date, clock
    base.SeriesDate, base.SeriesTime = date, clock
    base.ContentDate, base.ContentTime = date, clock
    base.AccessionNumber = ""
    base.Modality = mod
    base.Manufacturer = "medlab"
    base.ReferringPhysicianName = ""
    base.StudyDescription = str(study_description)
    base.SeriesDescription = str(series_description)
    base.PatientName = str(patient_name)
    base.PatientID = str(patient_id)
    base.PatientBirthDate = ""
    base.PatientSex = ""
    base.Laterality = ""  # type 2C (paired body parts): unknown
    base.StudyInstanceUID = study_uid
    base.SeriesInstanceUID = series_uid
    base.StudyID = "1"
    base.SeriesNumber = int(series_number)
    base.FrameOfReferenceUID = frame_uid
    base.PositionReferenceIndicator = ""
    base.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    base.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
    base.SliceThickness = _ds(spacing[2])
    base.SpacingBetweenSlices = _ds(spacing[2])
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = ny, nx
    base.BitsAllocated, base.BitsStored, base.HighBit = 16, 16, 15
    base.PixelRepresentation = representation
    base.RescaleIntercept = _ds(intercept)
    if mod == "CT":
        base.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        base.PatientPosition = ""
        base.KVP = ""
        base.AcquisitionNumber = 1
        base.RescaleType = "HU"
    else:
        base.ImageType = ["DERIVED", "PRIMARY"]  # PET: value 2 is PRIMARY only
        base.Units = "GML"
        base.CountsSource = "EMISSION"
        base.SeriesType = ["STATIC", "IMAGE"]
        base.NumberOfSlices = nz
        # what corrections made the values is not known here; DecayCorrection other than NONE
        # needs each image's DecayFactor (pass both in `attributes` when they are known)
        base.CorrectedImage = ""
        base.DecayCorrection = "NONE"
        base.CollimatorType = ""
        base.RadiopharmaceuticalInformationSequence = Sequence()
        base.PatientOrientationCodeSequence = Sequence()
        base.PatientGantryRelationshipCodeSequence = Sequence()
        base.FrameReferenceTime = "0"
        base.AcquisitionDate, base.AcquisitionTime = date, clock
        base.ActualFrameDuration = ""
    for key, value in attributes.items():
        setattr(base, key, value)

    parent = target.parent
    _atomic.clean_stale(parent)
    tmp = _atomic.temp_for(target)
    tmp.mkdir()
    files = []
    try:
        for k, (plane, slope) in enumerate(slices):
            ds = pydicom.Dataset()
            ds.update(base)
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [_ds(v) for v in origin + k * spacing[2] * direction[:, 2]]
            ds.RescaleSlope = _ds(slope)
            if mod == "PT":
                ds.ImageIndex = k + 1
            ds.PixelData = np.ascontiguousarray(plane).astype("<" + plane.dtype.str[1:]).tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            name = f"IM{k + 1:05d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            files.append(target / name)
        if target.exists():
            old = _atomic.temp_for(target)
            os.rename(target, old)  # an empty folder, or overwrite=True (checked above)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DicomSeries(target, files, study_uid, series_uid, frame_uid)
