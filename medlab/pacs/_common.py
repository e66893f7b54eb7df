"""What the DICOMweb and DIMSE clients share: the error type, query keys and filters, the
layout of a retrieved series folder (one ``<SOPInstanceUID>.dcm`` per instance, written
through a temporary file and renamed), and the retrieval summary."""

from __future__ import annotations

import difflib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from medlab._atomic import clean_stale, write_bytes
from medlab.errors import MedlabError
from medlab._options import check_choice

LEVELS = ("patient", "study", "series", "instance")

# The attributes every search returns (the same columns over DICOMweb and DIMSE).
RETURN_KEYS = {
    "patient": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "study": (
        "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
        "StudyID", "PatientID", "PatientName", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "series": (
        "SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    "instance": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "SeriesInstanceUID", "StudyInstanceUID"),
}
INTEGER_KEYS = {
    "NumberOfPatientRelatedStudies",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
    "SeriesNumber", "InstanceNumber",
}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class PacsError(MedlabError):
    """A PACS request failed: the server could not be reached, refused the credentials, or
    did not deliver what was asked.

    Attributes
    ----------
    server : str
        The server (URL without credentials, or ``AET@host:port``).
    reason : str
        What failed, in words. Never contains a password or token.
    retrieved : list of pathlib.Path
        Files already retrieved into the output folder when a retrieval failed (complete
        files only; rerunning the retrieval skips them).
    missing : list of str
        SOPInstanceUIDs that were listed but not delivered.
    """

    def __init__(self, server: str, reason: str, *, retrieved=(), missing=()):
        self.server = server
        self.reason = reason
        self.retrieved = [Path(p) for p in retrieved]
        self.missing = list(missing)
        extra = ""
        if self.retrieved or self.missing:
            extra = f" ({len(self.retrieved)} instance(s) retrieved so far, {len(self.missing)} missing)"
        super().__init__(f"{server}: {reason}{extra}")


def dataset_bytes(ds) -> bytes:
    """A pydicom Dataset as the bytes of a DICOM file (preamble and file meta included)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def save_dataset(ds, path) -> Path:
    """Write a pydicom Dataset (a SEG, an SR) to ``path`` atomically; its folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, dataset_bytes(ds))
    return path


class SearchLevels:
    """``search_patients`` ... ``search_instances``: the query levels as methods, shared by the
    DICOMweb and DIMSE clients (each implements ``search(level, ...)``)."""

    def search_patients(self, **filters):
        """Patients with matching studies (see ``search``)."""
        return self.search("patient", **filters)

    def search_studies(self, **filters):
        """Studies (see ``search``)."""
        return self.search("study", **filters)

    def search_series(self, study_uid: str | None = None, **filters):
        """Series, in one study or in all (see ``search``)."""
        return self.search("series", study_uid=study_uid, **filters)

    def search_instances(self, study_uid: str, series_uid: str, **filters):
        """Instances of one series (see ``search``)."""
        return self.search("instance", study_uid=study_uid, series_uid=series_uid, **filters)


@dataclass
class Retrieval:
    """What a series retrieval did.

    Attributes
    ----------
    folder : pathlib.Path
        The output folder.
    files : list of pathlib.Path
        Every instance file of the series in the folder (retrieved now or before), sorted.
    retrieved : int
        Instances transferred by this call.
    skipped : int
        Instances already present (not transferred again).
    bytes : int
        Bytes written by this call.
    seconds : float
        Wall time of the transfer.
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    retrieved: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0


def check_level(level: str) -> str:

    return check_choice("level", level, LEVELS)


def check_filters(filters: dict) -> dict[str, str]:
    """Filters are DICOM keywords with string values (DICOM matching: ``*``/``?`` wildcards,
    ``YYYYMMDD-YYYYMMDD`` date ranges, ``\\``-separated UID lists)."""
    from pydicom.datadict import keyword_dict, tag_for_keyword

    out = {}
    for key, value in filters.items():
        if value is None:
            continue
        if tag_for_keyword(key) is None:
            close = difflib.get_close_matches(key, list(keyword_dict), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"filter {key!r} is not a DICOM keyword (e.g. PatientID, StudyDate, Modality){hint}")
        if isinstance(value, list | tuple):
            value = "\\".join(str(v) for v in value)
        out[key] = str(value)
    return out


def is_uid(uid: str) -> bool:
    return bool(_UID.match(uid)) and len(uid) <= 64


def check_uid(name: str, uid) -> str:
    uid = str(uid).strip()
    if not _UID.match(uid) or len(uid) > 64:
        raise ValueError(f"`{name}` must be a DICOM UID (digits and dots, at most 64 characters); got {uid!r}")
    return uid


def instance_path(folder: Path, sop_uid: str) -> Path:
    return folder / f"{sop_uid}.dcm"


def prepare_folder(folder) -> Path:
    """Create the output folder and remove the temporary files of killed retrievals."""

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`folder` {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale(folder)
    return folder


def check_sop_uid(data: bytes, expected: str, where: str) -> None:
    """The bytes are a DICOM file of the expected instance."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    except Exception as exc:
        raise PacsError(where, f"instance {expected}: the server sent data that is not DICOM ({exc})") from None
    if str(ds.get("SOPInstanceUID", "")) != expected:
        raise PacsError(where, f"asked for instance {expected}, received {ds.get('SOPInstanceUID')}")


def progress_bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="inst", disable=not progress, leave=False)


def rows_to_frame(rows: list[dict], level: str):
    import pandas as pd

    columns = list(RETURN_KEYS[level])
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    return pd.DataFrame(rows, columns=columns)


def element_value(elem):
    """A DICOM element's value as a plain Python value (str, int, list of str, or None)."""
    if elem is None or elem.value is None or elem.value == "":
        return None
    value = elem.value
    if elem.keyword in INTEGER_KEYS:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    if elem.VM > 1 or isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def dataset_row(ds, keys) -> dict:
    row = {}
    for k in keys:
        value = element_value(ds.data_element(k)) if k in ds else None
        if k == "ModalitiesInStudy" and isinstance(value, str):
            value = [value]
        row[k] = value
    return row


def json_row(item: dict, keys) -> dict:
    """The same row as :func:`dataset_row`, straight from a DICOM JSON object (QIDO-RS):
    pydicom's ``Dataset.from_json`` costs milliseconds per instance listed."""
    from pydicom.datadict import tag_for_keyword

    row = {}
    for k in keys:
        el = item.get(f"{tag_for_keyword(k):08X}") or {}
        values = el.get("Value") or []
        if el.get("vr") == "PN":
            values = [v.get("Alphabetic", "") if isinstance(v, dict) else str(v) for v in values]
        if not values or values == [""]:
            row[k] = None
        elif k in INTEGER_KEYS:
            try:
                row[k] = int(values[0])
            except (TypeError, ValueError):
                row[k] = None
        elif len(values) > 1 or k == "ModalitiesInStudy":
            row[k] = [str(v) for v in values]
        else:
            row[k] = str(values[0])
    return row


def group_patients(study_rows: list[dict]) -> list[dict]:
    """Patients from study rows (QIDO-RS has no patient level); one row per PatientID."""
    seen: dict[str, dict] = {}
    for r in study_rows:
        pid = r.get("PatientID") or ""
        if pid not in seen:
            seen[pid] = {k: r.get(k) for k in RETURN_KEYS["patient"]}
            seen[pid]["NumberOfPatientRelatedStudies"] = 0
        seen[pid]["NumberOfPatientRelatedStudies"] += 1
    return list(seen.values())
