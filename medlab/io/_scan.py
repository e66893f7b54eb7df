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
from typing import NamedTuple

from medlab.errors import ImageIOError
from medlab.io._common import DicomWarning
from medlab.io import _tags
from medlab.io._header import is_dicom_file, open_dicom

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
    "FrameIncrementPointer",
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
    cine: bool = False  # multi-frame whose frames are instants (FrameIncrementPointer: FrameTime(Vector))
    echo_time_ms: float | None = None
    # how the pixels are stored (for medlab.io._native); None when the header was parsed by pydicom
    pixel_format: PixelFormat | None = None
    # (value offset, declared length or -1 when undefined, file size, problem or None) of Pixel
    # Data from medlab's reader (see medlab.io._tags.read); () when the file has none; None when
    # not located by it (a header parsed by pydicom, or a walk it hands over): see check_pixel_data
    pixel_data: tuple | None = None


class PixelFormat(NamedTuple):
    """How a file's pixels are stored and scaled, and what could make a converter change them.

    Read only by medlab's own header reader (:mod:`medlab.io._tags`); a file that it hands to
    pydicom has no ``PixelFormat`` and is never read by :mod:`medlab.io._native`.
    """

    transfer_syntax: str | None
    samples_per_pixel: int | None
    photometric: str | None
    bits_allocated: int | None
    bits_stored: int | None
    high_bit: int | None
    pixel_representation: int | None
    padding: bool  # PixelPaddingValue present
    rescale_slope: float | None
    rescale_intercept: float | None
    manufacturer: str | None
    diffusion: bool  # a b-value tag (standard, Siemens or GE) that is present and not plainly 0
    image_type: tuple


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


def _is_cine(pointer) -> bool:
    """Whether FrameIncrementPointer names FrameTime (0018,1063) or FrameTimeVector (0018,1065)."""
    if pointer is None:
        return False
    try:
        tags = [int(pointer)] if isinstance(pointer, int) else [int(t) for t in pointer]
    except (TypeError, ValueError):
        return False
    return any(t in (0x00181063, 0x00181065) for t in tags)


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


# (tag, keyword, VR) of _TAGS, for the pydicom-free reader (tests compare them with pydicom's dictionary)
_TAG_TABLE = (
    (0x00080016, "SOPClassUID", b"UI"),
    (0x00080018, "SOPInstanceUID", b"UI"),
    (0x00080008, "ImageType", b"CS"),
    (0x00080020, "StudyDate", b"DA"),
    (0x00080032, "AcquisitionTime", b"TM"),
    (0x00080060, "Modality", b"CS"),
    (0x00081030, "StudyDescription", b"LO"),
    (0x0008103E, "SeriesDescription", b"LO"),
    (0x00100020, "PatientID", b"LO"),
    (0x00181060, "TriggerTime", b"DS"),
    (0x0020000D, "StudyInstanceUID", b"UI"),
    (0x0020000E, "SeriesInstanceUID", b"UI"),
    (0x00200011, "SeriesNumber", b"IS"),
    (0x00200012, "AcquisitionNumber", b"IS"),
    (0x00200013, "InstanceNumber", b"IS"),
    (0x00200032, "ImagePositionPatient", b"DS"),
    (0x00200037, "ImageOrientationPatient", b"DS"),
    (0x00200100, "TemporalPositionIdentifier", b"IS"),
    (0x00180086, "EchoNumbers", b"IS"),
    (0x00280008, "NumberOfFrames", b"IS"),
    (0x00280009, "FrameIncrementPointer", b"AT"),
    (0x00280010, "Rows", b"US"),
    (0x00280011, "Columns", b"US"),
    (0x00280030, "PixelSpacing", b"DS"),
)
# Read by medlab's own reader only (not by the pydicom fallback): how the pixels are stored, for
# the native route (medlab.io._native). VR None: any VR (private tags, or a VR that varies).
_PIXEL_TABLE = (
    (0x00080070, "Manufacturer", b"LO"),
    (0x00180081, "EchoTime", b"DS"),
    (0x00189087, "DiffusionBValue", None),  # FD; its presence is what counts
    (0x0019100C, "SiemensBValue", None),  # Siemens' private B_value (IS)
    (0x00280002, "SamplesPerPixel", b"US"),
    (0x00280004, "PhotometricInterpretation", b"CS"),
    (0x00280100, "BitsAllocated", b"US"),
    (0x00280101, "BitsStored", b"US"),
    (0x00280102, "HighBit", b"US"),
    (0x00280103, "PixelRepresentation", b"US"),
    (0x00280120, "PixelPaddingValue", None),  # US or SS
    (0x00281052, "RescaleIntercept", b"DS"),
    (0x00281053, "RescaleSlope", b"DS"),
    (0x00431039, "GEBValue", None),  # GE's private slop_int_6..9: b-value first (IS)
)
_WANTED = {tag: keyword for tag, keyword, _ in _TAG_TABLE + _PIXEL_TABLE}
_WANTED_VR = {tag: vr for tag, _, vr in _TAG_TABLE + _PIXEL_TABLE}
# medlab's reader stops after GE's b-value, before the pixel data
_FAST_LAST_TAG = max(tag for tag, _, _ in _PIXEL_TABLE)
# values that differ in every file: not worth caching (and the cache would grow with the files)
_PER_FILE = frozenset(("ImagePositionPatient", "InstanceNumber", "SOPInstanceUID"))


def _pydicom_values(path: str, cache: dict) -> dict:
    """Keyword -> value of ``_TAGS`` in ``path`` (present elements only), plus
    'MediaStorageSOPClassUID' and 'DirectoryRecordSequence', parsed by pydicom: the files that
    :mod:`medlab.io._tags` leaves to it (it reads the plain cases several times faster), in the
    same form as that reader's.
    """
    ds = _read_header(path)
    out = {k: _value(ds, k, None if k in _PER_FILE else cache) for k in _TAGS if k in ds}
    if hasattr(ds, "file_meta") and "MediaStorageSOPClassUID" in ds.file_meta:
        out["MediaStorageSOPClassUID"] = ds.file_meta.MediaStorageSOPClassUID
    if "DirectoryRecordSequence" in ds:
        out["DirectoryRecordSequence"] = True
    return out


def _decoded(values: dict, keyword: str) -> str | None:
    """A text value (LO, SH, ...) decoded with the file's SpecificCharacterSet, as pydicom does."""
    raw = values.get("raw:" + keyword)
    if raw is None:
        return _text(values.get(keyword))
    from pydicom.charset import convert_encodings
    from pydicom.values import convert_text

    charset = values.get("SpecificCharacterSet")
    encodings = None
    if charset:
        names = [c.strip(" \x00") for c in charset.decode("latin-1").split("\\")]
        encodings = convert_encodings([c for c in names if c] or ["ISO_IR 6"])
    return _text(convert_text(raw, encodings))


def _image_type(value) -> list[str]:
    """ImageType's values, upper case."""
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    return [str(t).strip().upper() for t in values]


def _zero(value) -> bool:
    """Whether a b-value tag's (first) value reads as 0."""
    first = value[0] if isinstance(value, list) else value
    try:
        return float(first) == 0.0
    except (TypeError, ValueError):
        return False


def _pixel_format(v: dict, image_type: list) -> PixelFormat:
    return PixelFormat(
        transfer_syntax=v.get("TransferSyntaxUID"),
        samples_per_pixel=v.get("SamplesPerPixel"),
        photometric=_text(v.get("PhotometricInterpretation")),
        bits_allocated=v.get("BitsAllocated"),
        bits_stored=v.get("BitsStored"),
        high_bit=v.get("HighBit"),
        pixel_representation=v.get("PixelRepresentation"),
        padding="PixelPaddingValue" in v,
        rescale_slope=_float(v.get("RescaleSlope")) if "RescaleSlope" in v else None,
        rescale_intercept=_float(v.get("RescaleIntercept")) if "RescaleIntercept" in v else None,
        manufacturer=_text(v.get("Manufacturer")),
        # DiffusionBValue is binary (FD): present at all counts; the private ones are text
        diffusion="DiffusionBValue" in v or any(k in v and not _zero(v[k]) for k in ("SiemensBValue", "GEBValue")),
        image_type=tuple(image_type),
    )


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
            try:  # the plain cases without pydicom (and without a second open of the file)
                fast = _tags.read(path, _WANTED, _FAST_LAST_TAG, _WANTED_VR, pixel_data=True)
            except Exception:  # noqa: BLE001 - any doubt: is_dicom_file and pydicom decide, as before
                fast = None
            if fast is None and not is_dicom_file(path):
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
                v = fast if fast is not None else _pydicom_values(path, cache)
                if str(v.get("MediaStorageSOPClassUID") or v.get("SOPClassUID") or "") == DICOMDIR_CLASS or v.get(
                    "DirectoryRecordSequence"
                ):
                    continue
                uid = _text(v.get("SeriesInstanceUID"))
                rows, columns = _int(v.get("Rows")), _int(v.get("Columns"))
                image_type = _image_type(v.get("ImageType"))
                record = dict(
                    path=path,
                    position=_floats(v.get("ImagePositionPatient"), 3),
                    orientation=_floats(v.get("ImageOrientationPatient"), 6),
                    rows=rows,
                    columns=columns,
                    frames=_int(v.get("NumberOfFrames")) or 1,
                    instance=_int(v.get("InstanceNumber")),
                    mosaic="MOSAIC" in image_type,
                    sop_instance_uid=_text(v.get("SOPInstanceUID")),
                    acquisition_time_s=_seconds(v.get("AcquisitionTime")),
                    trigger_time_ms=_float(v.get("TriggerTime")),
                    temporal_position=_int(v.get("TemporalPositionIdentifier")),
                    pixel_spacing=_floats(v.get("PixelSpacing"), 2),
                    cine=_is_cine(v.get("FrameIncrementPointer")),
                    echo_time_ms=_float(v.get("EchoTime")),
                    pixel_format=None if fast is None else _pixel_format(v, image_type),
                    pixel_data=None if fast is None else v.get("PixelData", ()),
                )
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken headers
                warnings.warn(
                    f"{path}: skipped, unreadable DICOM header ({type(exc).__name__}: {exc})",
                    DicomWarning,
                    stacklevel=3,
                )
                continue
            if "SOPClassUID" not in v:
                warnings.warn(
                    f"{path}: skipped, a DICOM file without SOPClassUID (truncated, or not a DICOM object)",
                    DicomWarning,
                    stacklevel=3,
                )
                continue
            if not rows or not columns:
                sop_class = pydicom.uid.UID(str(v.get("SOPClassUID")))
                if "Image Storage" in sop_class.name:
                    # an image object without its image attributes: cut off inside its header
                    warnings.warn(
                        f"{path}: skipped, an image ({sop_class.name}) without "
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
                    modality=_text(v.get("Modality")),
                    patient_id=_decoded(v, "PatientID"),
                    study_instance_uid=_text(v.get("StudyInstanceUID")),
                    study_date=_text(v.get("StudyDate")),
                    study_description=_decoded(v, "StudyDescription"),
                    series_number=_text(v.get("SeriesNumber")),
                    series_description=_decoded(v, "SeriesDescription"),
                )
            info.files.append(FileInfo(**record))
        update(len(paths))
    finally:
        close()
    found = list(series.values())
    if len(found) == 1 and len(found[0].files) == dicom_files:
        found[0].whole_folder = all(os.path.dirname(f.path) == folder.rstrip(os.sep) for f in found[0].files)
    return found, len(paths)


#: Transfer syntaxes whose Pixel Data is stored as plain values with a defined length (native).
NATIVE_SYNTAXES = frozenset(
    ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")
)


def pixel_data_problem(f: FileInfo) -> str | None:
    """Why the Pixel Data of ``f`` cannot hold its image, from what the scan read, or None.

    Native (uncompressed) data must declare a defined length of at least Rows x Columns x
    NumberOfFrames x SamplesPerPixel x BitsAllocated / 8 bytes, within the file; encapsulated
    data must have item headers and fragments that fit in the file. A converter may read a file
    cut short without a word (GDCM does when the declared length was cut too; dcm2niix did for
    some truncated mosaics), so this is checked before any converter runs. Only the files whose
    pixel data the scan did not locate (headers parsed by pydicom) are parsed again, by pydicom.
    """
    if f.pixel_data is None or f.pixel_format is None:
        return _pixel_data_problem_pydicom(f)
    fmt = f.pixel_format
    return located_pixel_data_problem(
        f.pixel_data, fmt.transfer_syntax, f.rows, f.columns, f.frames, fmt.samples_per_pixel, fmt.bits_allocated
    )


def located_pixel_data_problem(pixel_data: tuple, syntax, rows, columns, frames, samples, bits) -> str | None:
    """:func:`pixel_data_problem` for the 'PixelData' of :func:`medlab.io._tags.read` (``()``:
    none) of a file of transfer syntax ``syntax`` and the given image attributes."""
    if not pixel_data:
        return "no Pixel Data (7FE0,0010) element: truncated or corrupt"
    start, length, size, problem = pixel_data
    if problem is not None:
        return f"{problem}: truncated or corrupt"
    native = syntax in NATIVE_SYNTAXES
    if length < 0:
        if native:
            return f"an undefined Pixel Data length in transfer syntax {syntax} (uncompressed): corrupt"
        return None
    available = size - start
    if length > available:
        return (
            f"Pixel Data declares {length} bytes but the file holds {available} after its start "
            f"(byte {start} of {size}): truncated or corrupt"
        )
    if native:
        return _short(length, rows, columns, frames, samples, bits)
    return None


def _short(length: int, rows, columns, frames, samples, bits) -> str | None:
    if not bits or not rows or not columns:
        return None  # no BitsAllocated: the converter refuses the file itself
    want = (int(rows) * int(columns) * max(int(frames or 1), 1) * int(samples or 1) * int(bits) + 7) // 8
    if length < want:
        return (
            f"Pixel Data holds {length} bytes, Rows x Columns x NumberOfFrames x SamplesPerPixel x "
            f"BitsAllocated / 8 = {want} expected: truncated or corrupt"
        )
    return None


def _pixel_data_problem_pydicom(f: FileInfo) -> str | None:
    try:
        ds = open_dicom(f.path)
        syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
        if "PixelData" not in ds:
            return "no Pixel Data (7FE0,0010) element: truncated or corrupt"
        got = len(ds.PixelData)
        samples, bits = ds.get("SamplesPerPixel"), ds.get("BitsAllocated")
    except ImageIOError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - pydicom's errors on a cut-off element
        return f"the pixel data cannot be read ({type(exc).__name__}): truncated or corrupt"
    if syntax and syntax not in NATIVE_SYNTAXES:
        return None  # pydicom read its fragments to the end
    return _short(got, f.rows, f.columns, f.frames, samples, bits)


def check_pixel_data(files: list) -> None:
    """Raise :class:`medlab.errors.ImageIOError` naming the first of ``files`` (FileInfo) whose
    pixel data cannot hold its image (see :func:`pixel_data_problem`)."""
    for f in files:
        problem = pixel_data_problem(f)
        if problem is not None:
            raise ImageIOError(f.path, problem)
