"""``medlab.io.metadata``: the DICOM header of a file, dataset or series folder as a plain dict."""

from __future__ import annotations

import os

from medlab.io._common import fspath, require_exists
from medlab.io._fields import IDENTIFYING_KEYS, METADATA_KEYS, dataset_metadata, is_dataset
from medlab.io._header import open_dicom
from medlab.io._series import series_files

__all__ = ["metadata", "IDENTIFYING_KEYS", "METADATA_KEYS"]


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
    return dataset_metadata(ds, identifying=identifying)


def _dataset(source, *, series_uid):
    if not isinstance(source, (str, os.PathLike)) and is_dataset(source):
        return source
    path = fspath(source, "source")
    require_exists(path)
    if os.path.isdir(path):
        path = series_files(path, series_uid=series_uid)[0]
    elif series_uid is not None:
        raise ValueError(f"`series_uid` selects a series in a folder; `source` is a file: {path}")
    return open_dicom(path, header_only=True)
