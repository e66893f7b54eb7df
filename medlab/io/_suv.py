"""PET: the SUV body-weight factor from the header, and the factor for a chosen ``pet_units``."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping

from medlab.errors import ImageIOError
from medlab.io._fields import dataset_metadata, is_dataset

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
    elif is_dataset(meta_or_dataset):
        meta = dataset_metadata(meta_or_dataset, identifying=True)  # dates matter across midnight
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
