"""Walking folders of DICOM files: one small header record per image file, grouped by series.

A folder as users have it holds nested series folders, several modalities, a DICOMDIR, notes,
thumbnails and hidden files. Each file is first recognised by its first 132 bytes (no pydicom
parse for non-DICOM files), then its header is parsed with pydicom up to the pixel data, keeping
only the few values the series logic needs, so memory stays proportional to the number of
files, not to their size.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from medlab.io._common import DicomWarning
from medlab.io._header import is_dicom_file

DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
#: File name endings of DICOM files: such a file that is not DICOM is warned about when skipped.
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima", ".dc3")


def _size_text(path) -> str:
    try:
        return f"{os.path.getsize(path)} bytes"
    except OSError:
        return "unreadable"

# Header values read from every file (pydicom ``specific_tags``): identity, grouping, geometry.
_TAGS = (
    "SOPClassUID",
    "Modality",
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "ImageType",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "InstanceNumber",
    "AcquisitionNumber",
    "AcquisitionTime",
    "TemporalPositionIdentifier",
    "EchoNumbers",
    "TriggerTime",
    "SOPInstanceUID",
)

# Above this many files a progress bar is shown unless the caller passes ``progress``.
PROGRESS_FILES = 2000


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The header values of one DICOM image file that decide how a series is assembled."""

    path: str
    position: tuple | None  # ImagePositionPatient (x, y, z) mm, LPS
    orientation: tuple | None  # ImageOrientationPatient (row cosines, column cosines)
    rows: int
    columns: int
    frames: int
    instance: int | None
    mosaic: bool  # Siemens mosaic: several slices tiled into one 2D picture
    sop_instance_uid: str | None = None
    acquisition_time_s: float | None = None  # seconds since midnight
    trigger_time_ms: float | None = None
    temporal_position: int | None = None
    pixel_spacing: tuple | None = None  # PixelSpacing (row spacing, column spacing) mm


@dataclass
class SeriesInfo:
    """One DICOM image series found under a folder (possibly spread over subfolders)."""

    series_instance_uid: str
    modality: str | None = None
    patient_id: str | None = None
    study_instance_uid: str | None = None
    study_date: str | None = None
    study_description: str | None = None
    series_number: str | None = None
    series_description: str | None = None
    files: list = field(default_factory=list)
    # True when these files are every DICOM file directly in the scanned folder (and nothing
    # is in subfolders): a converter may then be given the folder itself.
    whole_folder: bool = False

    def folders(self) -> list[str]:
        return sorted({os.path.dirname(f.path) for f in self.files})


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _floats(value, n: int) -> tuple | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _seconds(value) -> float | None:
    """DICOM TM ('HHMMSS.ffffff', also 'HH:MM:SS') as seconds since midnight."""
    text = (_text(value) or "").replace(":", "")
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4] or 0)
        seconds = float(text[4:] or 0)
    except ValueError:
        return None
    return hours * 3600.0 + minutes * 60.0 + seconds


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _value(ds, keyword: str, cache: dict | None = None):
    """The value of ``keyword`` in ``ds`` (None if absent).

    pydicom converts an element's raw bytes on first access, which costs as much as parsing
    the file. Most values repeat across a series (UIDs, orientation, sizes), so with ``cache``
    each distinct raw value is converted once.
    """
    elem = ds.get_item(keyword)
    if elem is None:
        return None
    raw = elem.value
    if cache is None or not isinstance(raw, bytes):
        return ds[keyword].value
    key = (keyword, raw, ds.original_encoding)  # binary values differ by byte order
    if key not in cache:
        cache[key] = ds[keyword].value
    return cache[key]


_LAST_TAG = 0x00280030  # PixelSpacing: the last of _TAGS in file order
_TAG_LIST: list = []


def _stop(tag, vr, length) -> bool:
    return tag > _LAST_TAG


def _read_header(path: str):
    """The header up to PixelSpacing (0028,0030), keeping only ``_TAGS``.

    Parsing stops there, before the private groups that follow (GE 0043, Siemens' CSA 0029)
    and the pixel data; every value the scan needs lies before it.
    """
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    if not _TAG_LIST:
        _TAG_LIST.extend(Tag(k) for k in _TAGS)
    with open(path, "rb") as fh:
        return read_partial(fh, stop_when=_stop, specific_tags=_TAG_LIST, force=True)


def _walk(folder: str):
    """Every regular file under ``folder`` (recursively, hidden entries skipped), sorted."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def _progress_bar(total: int, progress):
    """A callable(done) reporting progress, and a closer; ``progress`` as in ``list_series``."""
    if progress is False or (progress is None and total < PROGRESS_FILES):
        return (lambda done: True), (lambda: None)
    if callable(progress):
        return (lambda done: progress(done / max(total, 1), f"DICOM headers {done}/{total}")), (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="file", desc="DICOM headers", leave=False)

    def update(done):
        bar.update(done - bar.n)
        return True

    return update, bar.close


def scan(folder: str, *, recursive: bool = True, progress=None) -> tuple[list[SeriesInfo], int]:
    """Group the DICOM image files under ``folder`` by SeriesInstanceUID.

    Returns the series (in order of first appearance) and the number of files looked at.
    Non-DICOM files, DICOMDIR and DICOM objects without an image (RTSTRUCT, SR, RTPLAN, ...)
    are skipped; a DICOM file whose header cannot be parsed is skipped with a
    :class:`~medlab.io.DicomWarning` naming it.
    """
    import pydicom

    if recursive:
        paths = list(_walk(folder))
    else:
        with os.scandir(folder) as entries:
            paths = sorted(e.path for e in entries if e.is_file() and not e.name.startswith("."))
    update, close = _progress_bar(len(paths), progress)
    series: dict[str, SeriesInfo] = {}
    cache: dict = {}
    dicom_files = 0
    try:
        for done, path in enumerate(paths, 1):
            if done % 100 == 0 and update(done) is False:
                raise InterruptedError(f"listing {folder} stopped after {done} files")
            if not is_dicom_file(path):
                if os.path.splitext(path)[1].lower() in DICOM_SUFFIXES:
                    # named like a slice of the series: an empty or truncated file here is a
                    # slice missing from the volume, never ignored silently
                    warnings.warn(
                        f"{path}: skipped, named like a DICOM file but not one "
                        f"({_size_text(path)}: empty, truncated or corrupt)",
                        DicomWarning,
                        stacklevel=3,
                    )
                continue
            dicom_files += 1
            try:
                ds = _read_header(path)
                media = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
                if str(media or _value(ds, "SOPClassUID", cache) or "") == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
                    continue
                uid = _text(_value(ds, "SeriesInstanceUID", cache))
                rows, columns = _int(_value(ds, "Rows", cache)), _int(_value(ds, "Columns", cache))
                image_type = _value(ds, "ImageType", cache)
                image_type = [] if image_type is None else [image_type] if isinstance(image_type, str) else list(image_type)
                image_type = [str(v).strip().upper() for v in image_type]
                record = dict(
                    path=path,
                    position=_floats(_value(ds, "ImagePositionPatient"), 3),
                    orientation=_floats(_value(ds, "ImageOrientationPatient", cache), 6),
                    rows=rows,
                    columns=columns,
                    frames=_int(_value(ds, "NumberOfFrames", cache)) or 1,
                    instance=_int(_value(ds, "InstanceNumber")),
                    mosaic="MOSAIC" in image_type,
                    sop_instance_uid=_text(_value(ds, "SOPInstanceUID")),
                    acquisition_time_s=_seconds(_value(ds, "AcquisitionTime", cache)),
                    trigger_time_ms=_float(_value(ds, "TriggerTime", cache)),
                    temporal_position=_int(_value(ds, "TemporalPositionIdentifier", cache)),
                    pixel_spacing=_floats(_value(ds, "PixelSpacing", cache), 2),
                )
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken headers
                warnings.warn(
                    f"{path}: skipped, unreadable DICOM header ({type(exc).__name__}: {exc})",
                    DicomWarning,
                    stacklevel=3,
                )
                continue
            if "SOPClassUID" not in ds:
                warnings.warn(
                    f"{path}: skipped, a DICOM file without SOPClassUID (truncated, or not a DICOM object)",
                    DicomWarning,
                    stacklevel=3,
                )
                continue
            if not rows or not columns:
                if "Image Storage" in pydicom.uid.UID(str(ds.get("SOPClassUID"))).name:
                    # an image object without its image attributes: cut off inside its header
                    warnings.warn(
                        f"{path}: skipped, an image ({pydicom.uid.UID(str(ds.SOPClassUID)).name}) without "
                        f"Rows/Columns ({_size_text(path)}: truncated or corrupt)",
                        DicomWarning,
                        stacklevel=3,
                    )
                continue  # not an image (RTSTRUCT, SR, RTPLAN, presentation state, ...)
            uid = uid or "(no SeriesInstanceUID)"
            info = series.get(uid)
            if info is None:
                info = series[uid] = SeriesInfo(
                    series_instance_uid=uid,
                    modality=_text(ds.get("Modality")),
                    patient_id=_text(ds.get("PatientID")),
                    study_instance_uid=_text(ds.get("StudyInstanceUID")),
                    study_date=_text(ds.get("StudyDate")),
                    study_description=_text(ds.get("StudyDescription")),
                    series_number=_text(ds.get("SeriesNumber")),
                    series_description=_text(ds.get("SeriesDescription")),
                )
            info.files.append(FileInfo(**record))
        update(len(paths))
    finally:
        close()
    found = list(series.values())
    if len(found) == 1 and len(found[0].files) == dicom_files:
        found[0].whole_folder = all(os.path.dirname(f.path) == folder.rstrip(os.sep) for f in found[0].files)
    return found, len(paths)
