"""DICOM metadata as a plain dict, and the PET SUV body-weight factor."""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping

from medlab.errors import ImageIOError
from medlab.io._common import fspath, require_exists
from medlab.io._header import find, open_dicom

# (key, DICOM keyword, kind, identifying). ``kind`` says how the value is converted:
#   str: stripped text (a tuple of texts when multi-valued)    int, float: first value
#   floats: tuple of float    date: "YYYY-MM-DD"    time: "HH:MM:SS[.ffffff]"
#   datetime: "YYYY-MM-DDTHH:MM:SS[.ffffff]"    age: years as float ("045Y" -> 45.0)
# Keys ending in a unit (_mm, _ms, _kg, _m, _bq, _s, _t, _deg, _ma, _mas, _mgy) hold that unit.
_FIELDS = (
    # identity of the patient and of the data (PS3.15 Basic Profile removes or replaces these)
    ("patient_name", "PatientName", "str", True),
    ("patient_id", "PatientID", "str", True),
    ("other_patient_ids", "OtherPatientIDs", "str", True),
    ("patient_birth_date", "PatientBirthDate", "date", True),
    ("patient_birth_time", "PatientBirthTime", "time", True),
    ("patient_address", "PatientAddress", "str", True),
    ("patient_telephone_numbers", "PatientTelephoneNumbers", "str", True),
    ("patient_mother_birth_name", "PatientMotherBirthName", "str", True),
    ("accession_number", "AccessionNumber", "str", True),
    ("study_id", "StudyID", "str", True),
    ("institution_name", "InstitutionName", "str", True),
    ("institution_address", "InstitutionAddress", "str", True),
    ("referring_physician_name", "ReferringPhysicianName", "str", True),
    ("performing_physician_name", "PerformingPhysicianName", "str", True),
    ("operators_name", "OperatorsName", "str", True),
    ("station_name", "StationName", "str", True),
    ("device_serial_number", "DeviceSerialNumber", "str", True),
    ("study_instance_uid", "StudyInstanceUID", "str", True),
    ("series_instance_uid", "SeriesInstanceUID", "str", True),
    ("sop_instance_uid", "SOPInstanceUID", "str", True),
    ("frame_of_reference_uid", "FrameOfReferenceUID", "str", True),
    ("study_date", "StudyDate", "date", True),
    ("series_date", "SeriesDate", "date", True),
    ("acquisition_date", "AcquisitionDate", "date", True),
    ("content_date", "ContentDate", "date", True),
    ("acquisition_datetime", "AcquisitionDateTime", "datetime", True),
    # patient attributes kept in de-identified reports
    ("patient_sex", "PatientSex", "str", False),
    ("patient_age_years", "PatientAge", "age", False),
    ("patient_weight_kg", "PatientWeight", "float", False),
    ("patient_size_m", "PatientSize", "float", False),
    # study / series
    ("modality", "Modality", "str", False),
    ("sop_class_uid", "SOPClassUID", "str", False),
    ("study_description", "StudyDescription", "str", True),  # free text: may hold names (PS3.15: X)
    ("series_description", "SeriesDescription", "str", True),  # free text (PS3.15: X)
    ("protocol_name", "ProtocolName", "str", True),  # free text (PS3.15: X)
    ("body_part_examined", "BodyPartExamined", "str", False),
    ("series_number", "SeriesNumber", "int", False),
    ("instance_number", "InstanceNumber", "int", False),
    ("study_time", "StudyTime", "time", False),
    ("series_time", "SeriesTime", "time", False),
    ("acquisition_time", "AcquisitionTime", "time", False),
    ("content_time", "ContentTime", "time", False),
    ("image_type", "ImageType", "str", False),
    # equipment
    ("manufacturer", "Manufacturer", "str", False),
    ("manufacturer_model_name", "ManufacturerModelName", "str", False),
    ("software_versions", "SoftwareVersions", "str", False),
    # image pixel and plane
    ("rows", "Rows", "int", False),
    ("columns", "Columns", "int", False),
    ("number_of_frames", "NumberOfFrames", "int", False),
    ("samples_per_pixel", "SamplesPerPixel", "int", False),
    ("photometric_interpretation", "PhotometricInterpretation", "str", False),
    ("bits_allocated", "BitsAllocated", "int", False),
    ("bits_stored", "BitsStored", "int", False),
    ("pixel_representation", "PixelRepresentation", "int", False),
    ("pixel_spacing_mm", "PixelSpacing", "floats", False),
    ("imager_pixel_spacing_mm", "ImagerPixelSpacing", "floats", False),
    ("slice_thickness_mm", "SliceThickness", "float", False),
    ("spacing_between_slices_mm", "SpacingBetweenSlices", "float", False),
    ("image_position_patient_mm", "ImagePositionPatient", "floats", False),
    ("image_orientation_patient", "ImageOrientationPatient", "floats", False),
    ("patient_position", "PatientPosition", "str", False),
    ("rescale_slope", "RescaleSlope", "float", False),
    ("rescale_intercept", "RescaleIntercept", "float", False),
    ("rescale_type", "RescaleType", "str", False),
    ("window_center", "WindowCenter", "float", False),
    ("window_width", "WindowWidth", "float", False),
    ("lossy_image_compression", "LossyImageCompression", "str", False),
    # CT and X-ray
    ("kvp", "KVP", "float", False),
    ("xray_tube_current_ma", "XRayTubeCurrent", "float", False),
    ("exposure_time_ms", "ExposureTime", "float", False),
    ("exposure_mas", "Exposure", "float", False),
    ("convolution_kernel", "ConvolutionKernel", "str", False),
    ("ctdi_vol_mgy", "CTDIvol", "float", False),
    # MR
    ("magnetic_field_strength_t", "MagneticFieldStrength", "float", False),
    ("repetition_time_ms", "RepetitionTime", "float", False),
    ("echo_time_ms", "EchoTime", "float", False),
    ("inversion_time_ms", "InversionTime", "float", False),
    ("flip_angle_deg", "FlipAngle", "float", False),
    ("echo_train_length", "EchoTrainLength", "int", False),
    ("scanning_sequence", "ScanningSequence", "str", False),
    ("sequence_variant", "SequenceVariant", "str", False),
    ("sequence_name", "SequenceName", "str", False),
    ("mr_acquisition_type", "MRAcquisitionType", "str", False),
    # PET / NM
    ("units", "Units", "str", False),
    ("decay_correction", "DecayCorrection", "str", False),
    ("corrected_image", "CorrectedImage", "str", False),
    ("frame_reference_time_ms", "FrameReferenceTime", "float", False),
    ("actual_frame_duration_ms", "ActualFrameDuration", "float", False),
    # ultrasound and other cine
    ("frame_time_ms", "FrameTime", "float", False),
)

# Taken from the first item of RadiopharmaceuticalInformationSequence.
_RADIO_FIELDS = (
    ("radiopharmaceutical", "Radiopharmaceutical", "str", False),
    ("radionuclide_total_dose_bq", "RadionuclideTotalDose", "float", False),
    ("radionuclide_half_life_s", "RadionuclideHalfLife", "float", False),
    ("radiopharmaceutical_start_time", "RadiopharmaceuticalStartTime", "time", False),
    ("radiopharmaceutical_start_datetime", "RadiopharmaceuticalStartDateTime", "datetime", True),
)

IDENTIFYING_KEYS = frozenset(k for k, _, _, ident in _FIELDS + _RADIO_FIELDS if ident)
"""Keys that :func:`metadata` leaves out when ``identifying=False``."""

METADATA_KEYS = tuple(k for k, *_ in _FIELDS + _RADIO_FIELDS) + (
    "radionuclide",
    "transfer_syntax_uid",
    "transfer_syntax",
)
"""Every key of the dict returned by :func:`metadata` (with ``identifying=True``)."""


def _text(value) -> str | None:
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _multi(value) -> list:
    from pydicom.multival import MultiValue

    return list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]


def _convert(value, kind: str):
    if value is None or value == "" or (isinstance(value, bytes) and not value.strip()):
        return None
    values = _multi(value)
    if not values:
        return None
    if kind == "str":
        texts = [t for t in (_text(v) for v in values) if t is not None]
        if not texts:
            return None
        return texts[0] if len(texts) == 1 else tuple(texts)
    if kind == "int":
        return int(float(values[0]))
    if kind == "float":
        return float(values[0])
    if kind == "floats":
        return tuple(float(v) for v in values)
    if kind == "age":
        return _age_years(str(values[0]))
    from pydicom.valuerep import DA, DT, TM

    text = _text(values[0])
    if text is None:
        return None
    if kind == "date":
        return DA(text).isoformat()
    if kind == "time":
        return TM(text).isoformat()
    if kind == "datetime":
        return DT(text).replace(tzinfo=None).isoformat()
    raise AssertionError(kind)


def _age_years(text: str) -> float | None:
    text = text.strip().upper()
    per_year = {"Y": 1.0, "M": 12.0, "W": 365.25 / 7.0, "D": 365.25}
    if len(text) < 2 or text[-1] not in per_year or not text[:-1].isdigit():
        return None
    return int(text[:-1]) / per_year[text[-1]]


def _field(ds, keyword: str, kind: str):
    try:
        return _convert(find(ds, keyword), kind)
    except (ValueError, TypeError, OverflowError):
        # A malformed value in one tag must not make the whole header unusable; it reads as
        # absent (None) like a missing tag.
        return None


def metadata(source, *, identifying: bool = False, series_uid: str | None = None) -> dict:
    """DICOM header fields as a plain dict with documented keys and units.

    Parameters
    ----------
    source : str, os.PathLike or pydicom.Dataset
        A DICOM file, a folder holding a DICOM series (its first slice along the slice normal
        is read), or a dataset already parsed with pydicom.
    identifying : bool
        Default False: leave out every key in ``medlab.io.IDENTIFYING_KEYS``: names, IDs, birth
        date, addresses, telephone numbers, institution, physicians, operators, station,
        device serial number, accession number, all UIDs, all dates and the free-text study and
        series descriptions and protocol name (times of day are kept). So a notebook, report or widget that shows metadata never shows who the patient
        is unless asked: pass True to get those keys too.
    series_uid : str, optional
        For a folder holding several series: the SeriesInstanceUID to describe.

    Returns
    -------
    dict
        Every key of ``medlab.io.METADATA_KEYS`` (a missing or unparsable tag gives ``None``):

        - text: ``modality``, ``patient_sex`` ('M', 'F', 'O'), descriptions, ``manufacturer``,
          ``photometric_interpretation``, ``units`` (PET: 'BQML', 'GML', 'CNTS', ...),
          ``decay_correction`` ('START', 'ADMIN', 'NONE'), ... A multi-valued tag (e.g.
          ``image_type``) gives a tuple of str.
        - numbers with units in the name: ``patient_age_years``, ``patient_weight_kg``,
          ``patient_size_m``, ``slice_thickness_mm``, ``spacing_between_slices_mm``,
          ``kvp``, ``xray_tube_current_ma``, ``exposure_time_ms``, ``exposure_mas``,
          ``ctdi_vol_mgy``, ``magnetic_field_strength_t``, ``repetition_time_ms``,
          ``echo_time_ms``, ``inversion_time_ms``, ``flip_angle_deg``, ``frame_time_ms``,
          ``radionuclide_total_dose_bq``, ``radionuclide_half_life_s``,
          ``rescale_slope``, ``rescale_intercept``, ``window_center``, ``window_width``.
        - tuples: ``pixel_spacing_mm`` as DICOM gives it, **(row spacing, column spacing)**,
          i.e. (y, x); ``image_position_patient_mm`` (x, y, z) of the first pixel in the
          patient frame (LPS); ``image_orientation_patient`` (row cosines, column cosines).
        - dates ``'YYYY-MM-DD'``, times ``'HH:MM:SS[.ffffff]'``, date-times
          ``'YYYY-MM-DDTHH:MM:SS[.ffffff]'`` (time zone offsets dropped).
        - ``transfer_syntax_uid`` and its name ``transfer_syntax``; ``radionuclide`` (code
          meaning, e.g. '^18^Fluorine').

        Enhanced multi-frame objects are looked up in their shared (else first per-frame)
        functional groups when a tag is not at the top level.

    Raises
    ------
    ImageIOError
        If ``source`` is not a readable DICOM file or series folder.

    Examples
    --------
    >>> import pydicom.data, medlab.io
    >>> meta = medlab.io.metadata(pydicom.data.get_testdata_file("CT_small.dcm"), identifying=False)
    >>> meta["modality"], meta["kvp"], meta["pixel_spacing_mm"]
    ('CT', 120.0, (0.661468, 0.661468))
    >>> "patient_name" in meta
    False
    """
    ds = _dataset(source, series_uid=series_uid)
    meta = {key: _field(ds, kw, kind) for key, kw, kind, _ in _FIELDS}
    radio_seq = ds.get("RadiopharmaceuticalInformationSequence")
    radio = radio_seq[0] if radio_seq else None
    for key, kw, kind, _ in _RADIO_FIELDS:
        meta[key] = _field(radio, kw, kind) if radio is not None else None
    nuclide = None
    if radio is not None and radio.get("RadionuclideCodeSequence"):
        nuclide = _text(radio.RadionuclideCodeSequence[0].get("CodeMeaning", ""))
    meta["radionuclide"] = nuclide
    file_meta = getattr(ds, "file_meta", None)
    ts = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    meta["transfer_syntax_uid"] = str(ts) if ts else None
    meta["transfer_syntax"] = ts.name if ts else None
    if not identifying:
        for key in IDENTIFYING_KEYS:
            meta.pop(key, None)
    return meta


def _is_dataset(obj) -> bool:
    import pydicom

    return isinstance(obj, pydicom.Dataset)


def _dataset(source, *, series_uid):
    if not isinstance(source, (str, os.PathLike)) and _is_dataset(source):
        return source
    path = fspath(source, "source")
    require_exists(path)
    if os.path.isdir(path):
        from medlab.io._series import series_files

        path = series_files(path, series_uid=series_uid)[0]
    elif series_uid is not None:
        raise ValueError(f"`series_uid` selects a series in a folder; `source` is a file: {path}")
    return open_dicom(path, header_only=True)


# --------------------------------------------------------------------------- PET SUV

_TAGS = {
    "patient_weight_kg": "PatientWeight (0010,1030)",
    "radionuclide_total_dose_bq": "RadionuclideTotalDose (0018,1074)",
    "radionuclide_half_life_s": "RadionuclideHalfLife (0018,1075)",
    "radiopharmaceutical_start_time": "RadiopharmaceuticalStartTime (0018,1072) "
    "or RadiopharmaceuticalStartDateTime (0018,1078)",
    "series_time": "SeriesTime (0008,0031) or AcquisitionTime (0008,0032)",
    "acquisition_time": "AcquisitionTime (0008,0032) or SeriesTime (0008,0031)",
    "units": "Units (0054,1001)",
    "decay_correction": "DecayCorrection (0054,1102)",
}


def _seconds(iso_time: str) -> float:
    t = _dt.time.fromisoformat(iso_time)
    return t.hour * 3600.0 + t.minute * 60.0 + t.second + t.microsecond * 1e-6


def _when(meta: Mapping, date_key: str | None, time_key: str, datetime_key: str | None):
    """(datetime or None, seconds-of-day or None) for one instant described in ``meta``."""
    full = meta.get(datetime_key) if datetime_key else None
    if full:
        stamp = _dt.datetime.fromisoformat(full)
        return stamp, _seconds(stamp.time().isoformat())
    clock = meta.get(time_key)
    if not clock:
        return None, None
    day = meta.get(date_key) if date_key else None
    stamp = _dt.datetime.combine(_dt.date.fromisoformat(day), _dt.time.fromisoformat(clock)) if day else None
    return stamp, _seconds(clock)


def suv_factor(meta_or_dataset) -> float:
    """Factor that turns PET activity concentration (Bq/mL) into SUV body weight (g/mL).

    ``SUVbw = C * factor`` with ``factor = weight_g / (dose_Bq * 2 ** (-dt / half_life_s))``,
    where ``dt`` (s) runs from the radiopharmaceutical start to the time the image is
    decay-corrected to:

    - ``DecayCorrection == 'START'``: the series start, i.e. the earlier of SeriesDate/Time and
      AcquisitionDate/Time (as in the QIBA SUV recommendations: a series time later than the
      acquisition means the series was re-processed);
    - ``'ADMIN'``: the administration itself, so ``dt = 0``;
    - ``'NONE'``: this image's own AcquisitionDate/Time (each slice has its own factor).

    Dates: when RadiopharmaceuticalStartDateTime and a series/acquisition date are present
    the interval is exact, across any number of midnights. With times of day only, a scan
    time earlier than the injection time is taken to be on the next day (one midnight).
    Units 'GML' are already SUV body weight: the factor is 1.

    Parameters
    ----------
    meta_or_dataset : dict or pydicom.Dataset
        A dict from :func:`metadata` (``identifying=False`` is enough) or a PET dataset.

    Returns
    -------
    float
        The factor, in g/Bq (numerically mL/Bq * g/mL).

    Raises
    ------
    ValueError
        Naming the missing or unusable DICOM tags (then read the image with
        ``pet_units='bqml'``).

    Examples
    --------
    70 kg, 370 MBq of F-18 (half-life 6586.2 s) injected one hour before the scan:

    >>> meta = {"units": "BQML", "decay_correction": "START", "patient_weight_kg": 70.0,
    ...         "radionuclide_total_dose_bq": 370e6, "radionuclide_half_life_s": 6586.2,
    ...         "radiopharmaceutical_start_time": "10:00:00", "series_time": "11:00:00"}
    >>> round(suv_factor(meta) * 1e4, 4)
    2.7634
    """
    if isinstance(meta_or_dataset, Mapping):
        meta = meta_or_dataset
    elif _is_dataset(meta_or_dataset):
        meta = metadata(meta_or_dataset, identifying=True)  # dates matter across midnight
    else:
        raise TypeError(
            "`meta_or_dataset` must be a dict from medlab.io.metadata or a pydicom Dataset; "
            f"got {type(meta_or_dataset).__name__}"
        )
    advice = "; read the image with pet_units='bqml' to get activity concentration in Bq/mL"
    units = meta.get("units")
    if units is None:
        raise ValueError(f"cannot compute SUV: missing DICOM tag {_TAGS['units']}; "
                         "read the image with pet_units='stored' to get the stored values")
    units = str(units).upper()
    if units == "GML":
        return 1.0
    if units != "BQML":
        raise ValueError(
            f"cannot compute SUV from PET Units {units!r} (only 'BQML' or 'GML'); "
            "read the image with pet_units='stored' to get the stored values"
        )
    decay = meta.get("decay_correction")
    decay = str(decay).upper() if decay else None
    needed = ["patient_weight_kg", "radionuclide_total_dose_bq", "decay_correction"]
    if decay in ("START", "NONE"):
        needed.append("radionuclide_half_life_s")
    missing = [k for k in needed if not meta.get(k)]
    inj_dt, inj_s = _when(meta, None, "radiopharmaceutical_start_time", "radiopharmaceutical_start_datetime")
    series = _when(meta, "series_date", "series_time", None)
    acq = _when(meta, "acquisition_date", "acquisition_time", "acquisition_datetime")
    if decay == "START":
        candidates = [w for w in (series, acq) if w[1] is not None]
        if candidates and all(w[0] is not None for w in candidates):
            ref = min(candidates, key=lambda w: w[0])
        elif candidates:
            ref = min(candidates, key=lambda w: w[1])
        else:
            ref = (None, None)
            missing.append("series_time")
    elif decay == "NONE":
        ref = acq if acq[1] is not None else series
        if ref[1] is None:
            missing.append("acquisition_time")
    else:
        ref = (None, None)
    if decay in ("START", "NONE") and inj_s is None:
        missing.append("radiopharmaceutical_start_time")
    if missing:
        raise ValueError(
            "cannot compute SUV: missing (or zero) DICOM tag(s) " + ", ".join(_TAGS.get(k, k) for k in missing) + advice
        )
    if decay not in ("START", "ADMIN", "NONE"):
        raise ValueError(f"cannot compute SUV: DecayCorrection {decay!r} is not START, ADMIN or NONE" + advice)
    weight_g = float(meta["patient_weight_kg"]) * 1000.0
    dose = float(meta["radionuclide_total_dose_bq"])
    if decay == "ADMIN":
        return weight_g / dose
    if inj_dt is not None and ref[0] is not None:
        dt = (ref[0] - inj_dt).total_seconds()
        if dt < 0:
            raise ValueError(
                f"cannot compute SUV: the scan ({ref[0].isoformat()}) is before the "
                f"radiopharmaceutical start ({inj_dt.isoformat()})" + advice
            )
    else:
        dt = ref[1] - inj_s
        if dt < 0:  # times of day only: the scan is on the day after the injection
            dt += 86400.0
    half_life = float(meta["radionuclide_half_life_s"])
    return weight_g / (dose * math.pow(2.0, -dt / half_life))


PET_UNITS = ("suv", "bqml", "stored")


def pet_scale(meta: Mapping, pet_units: str, path) -> float | None:
    """The factor to apply to rescaled PET values for ``pet_units``, or None for no change.

    Raises ImageIOError (naming ``path``) when the header does not allow the requested units.
    """
    if pet_units == "stored":
        return None
    if pet_units == "bqml":
        units = meta.get("units")
        if units is None or str(units).upper() != "BQML":
            raise ImageIOError(
                path,
                f"PET Units (0054,1001) is {units!r}, not 'BQML', so the values are not Bq/mL; "
                "pass pet_units='stored' for the stored values"
                + (" or pet_units='suv'" if units and str(units).upper() == "GML" else ""),
            )
        return None
    try:
        return suv_factor(meta)
    except ValueError as exc:
        raise ImageIOError(path, str(exc)) from exc
