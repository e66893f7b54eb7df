"""DICOM header fields as a plain dict with documented keys and units (from a parsed dataset)."""

from __future__ import annotations

from medlab.io._header import find

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



def dataset_metadata(ds, *, identifying: bool = False) -> dict:
    """:func:`medlab.io.metadata` of a parsed pydicom dataset (see there for the keys)."""
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


def is_dataset(obj) -> bool:
    import pydicom

    return isinstance(obj, pydicom.Dataset)
