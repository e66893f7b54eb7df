"""``medlab.privacy.deidentify``: DICOM files and folders -> de-identified copies + audit CSV."""

from __future__ import annotations

import csv
import os
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from medlab._atomic import atomic_path, clean_stale
from medlab._options import check_choice, check_int
from medlab.errors import ImageIOError
from medlab.privacy import _keys
from medlab.privacy._clean import (
    Context,
    clean_dataset,
    collect_identifiers,
    map_uid,
    tag_text,
    value_bytes,
)
from medlab.privacy._pixels import (
    ULTRASOUND_MODALITIES,
    blank_header,
    burned_in_reason,
    has_pixels,
    header_rows,
)
from medlab.privacy._profile import TABLE_VERSION

AUDIT_COLUMNS = ("file", "tag", "keyword", "action", "old_value_sha256")
DEFAULT_AUDIT_NAME = "deid_audit.csv"
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"

# File meta elements that name the sending and receiving systems, or carry private data.
_FILE_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020100, 0x00020102)

# CID 7050 (De-identification Method) codes, scheme DCM.
_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
}


@dataclass
class DeidSummary:
    """What :func:`deidentify` did. Its repr shows counts only (paths may name patients).

    Attributes
    ----------
    output : pathlib.Path
        The output folder.
    audit_csv : pathlib.Path
        The audit file.
    files : list of (pathlib.Path, pathlib.Path)
        (input file, output file) for every file written; input files are under ``src`` as
        given (not resolved), output files under the resolved output folder.
    skipped : list of (pathlib.Path, str)
        (input file, reason) for every file not written: not DICOM, unreadable, DICOMDIR.
    burned_in : list of (pathlib.Path, str)
        (output file, reason) for every image that may show identifying text in its pixels;
        review these before sharing.
    blanked : list of (pathlib.Path, int)
        (output file, rows) for every ultrasound image whose top band was set to black.
    audit_rows : int
        Rows written to the audit file.
    """

    output: Path
    audit_csv: Path
    files: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    burned_in: list = field(default_factory=list)
    blanked: list = field(default_factory=list)
    audit_rows: int = 0

    def __repr__(self) -> str:
        return (
            f"DeidSummary(written={len(self.files)}, skipped={len(self.skipped)}, "
            f"burned_in_flagged={len(self.burned_in)}, blanked={len(self.blanked)}, "
            f"audit_rows={self.audit_rows}, output={str(self.output)!r})"
        )


def _inputs(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        files.extend(Path(root) / n for n in sorted(names))
    return files


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_paths(src, dst, audit_csv) -> tuple[Path, Path, Path | None]:
    from medlab.io._common import fspath

    src_p = Path(fspath(src, "src"))
    dst_p = Path(fspath(dst, "dst"))
    if not src_p.exists():
        raise ImageIOError(src_p, "no such file or folder")
    src_r, dst_r = src_p.resolve(), dst_p.resolve()
    in_folder = src_r if src_r.is_dir() else src_r.parent
    if src_r.is_dir() and _inside(dst_r, src_r):
        raise ValueError(
            f"`dst` ({str(dst_p)!r}) is inside the input folder `src` ({str(src_p)!r}); "
            "de-identified output never goes into the input folder: choose a folder outside it"
        )
    if not src_r.is_dir() and dst_r == in_folder:
        raise ValueError(f"`dst` ({str(dst_p)!r}) is the folder of the input file; choose another folder")
    if dst_r.exists() and (not dst_r.is_dir() or any(dst_r.iterdir())):
        raise ValueError(
            f"`dst` ({str(dst_p)!r}) exists and is not an empty folder; give a new folder "
            "(nothing is ever overwritten)"
        )
    if not dst_r.parent.is_dir():
        raise ValueError(f"the folder that should hold `dst` does not exist: {str(dst_p.parent)!r}")
    audit = None
    if audit_csv is not None:
        audit = Path(fspath(audit_csv, "audit_csv")).resolve()
        if src_r.is_dir() and _inside(audit, src_r):
            raise ValueError(f"`audit_csv` ({str(audit_csv)!r}) is inside the input folder `src`; put it elsewhere")
        if audit.exists():
            raise ValueError(f"`audit_csv` ({str(audit_csv)!r}) exists; nothing is ever overwritten")
        if not audit.parent.is_dir():
            raise ValueError(f"the folder of `audit_csv` does not exist: {str(audit.parent)!r}")
    return src_r, dst_r, audit


def _progress_callback(progress, total: int):
    """(update(i, message), close()) for ``progress`` = bool or callback(fraction, message)."""
    if callable(progress):

        def update(done, message):
            if progress(done / max(total, 1), message) is False:
                raise InterruptedError(f"deidentify stopped by the `progress` callback ({message})")

        return update, lambda: None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="de-identify", unit="file", leave=False)
        return (lambda done, message: bar.update(1)), bar.close
    return (lambda done, message: None), lambda: None


def _patient_key(ds) -> str:
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID"):
        value = str(ds.get(keyword, "") or "").strip(" \x00")
        if value:
            return value
    return ""


def _method_items(options: dict):
    from pydicom.dataset import Dataset

    items = []
    for name, (code, meaning) in _CODES.items():
        if name == "basic" or options.get(name):
            item = Dataset()
            item.CodeValue = code
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
    return items


def _relative_name(ds, ctx: Context, index: int) -> Path:
    def part(keyword, fallback):
        value = str(ds.get(keyword, "") or "").strip(" \x00")
        return value or fallback

    sop = part("SOPInstanceUID", f"instance-{index:06d}")
    return Path(ctx.pseudonym) / part("StudyInstanceUID", "study") / part("SeriesInstanceUID", "series") / f"{sop}.dcm"


def _deidentify_file(path: Path, key: bytes, options: dict, index: int):
    """Parse and de-identify one file: (dataset, relative output name, audit rows, flag, rows blanked)."""
    from medlab.io._header import open_dicom

    ds = open_dicom(path)
    sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", "")).strip(" \x00")
    if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise _Skip("DICOMDIR (media directory): it names the original files, so it is not copied")
    patient = _patient_key(ds)
    ctx = Context(
        key=key,
        pseudonym=_keys.pseudonym(key, patient),
        shift_days=_keys.shift_days(key, patient) if options["retain_dates"] else None,
        retain_patient_characteristics=options["retain_patient_characteristics"],
        clean_descriptors=options["clean_descriptors"],
    )
    if ctx.clean_descriptors or ctx.retain_patient_characteristics:
        ctx.identifiers = collect_identifiers(ds)
    flag = burned_in_reason(ds)
    rows_blanked = 0
    if options["blank_us_header"] and has_pixels(ds) and str(ds.get("Modality", "")).strip().upper() in ULTRASOUND_MODALITIES:
        rows_blanked = header_rows(ds, options["us_header_rows"])
        if rows_blanked:
            old = value_bytes(ds["PixelData"])
            blank_header(ds, rows_blanked)
            ctx.log(tag_text(0x7FE00010), "PixelData", "B", old)

    clean_dataset(ctx, ds)

    meta = ds.file_meta
    for tag in _FILE_META_REMOVE:
        if tag in meta:
            ctx.log(tag_text(tag), meta[tag].keyword, "X", value_bytes(meta[tag]))
            del meta[tag]
    if "MediaStorageSOPInstanceUID" in meta:
        old = value_bytes(meta["MediaStorageSOPInstanceUID"])
        meta.MediaStorageSOPInstanceUID = map_uid(key, meta.MediaStorageSOPInstanceUID)
        if value_bytes(meta["MediaStorageSOPInstanceUID"]) != old:
            ctx.log(tag_text(0x00020003), "MediaStorageSOPInstanceUID", "U", old)
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds and "MediaStorageSOPClassUID" not in meta:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID

    ds.PatientIdentityRemoved = "YES"
    method = [f"medlab PS3.15 Basic Profile, Table E.1-1 {TABLE_VERSION}"]
    method += [_CODES[name][1] for name in _CODES if name != "basic" and options.get(name)]
    if rows_blanked:
        method.append(f"Ultrasound header band blanked ({rows_blanked} rows)")
    ds.DeidentificationMethod = method if len(method) > 1 else method[0]
    ds.DeidentificationMethodCodeSequence = _method_items(options)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options["retain_dates"] else "REMOVED"
    return ds, _relative_name(ds, ctx, index), ctx.rows, flag, rows_blanked


class _Skip(Exception):
    """A file that is not de-identified (the message says why)."""


def _write(ds, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = ds.file_meta
    complete = all(meta.get(k) for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"))
    ds.save_as(path, enforce_file_format=complete)


def deidentify(
    src,
    dst,
    *,
    key,
    retain_dates=False,
    retain_patient_characteristics: bool = False,
    clean_descriptors: bool = False,
    blank_us_header: bool = False,
    us_header_rows: int | None = None,
    audit_csv=None,
    progress=True,
) -> DeidSummary:
    """De-identify a DICOM file or a folder of DICOM files (DICOM PS3.15 Basic Profile).

    Every attribute of DICOM PS3.15 Table E.1-1 is removed (X), emptied (Z), given a dummy
    value (D) or a keyed UID (U) as the table says, in nested sequences too; all private
    attributes are removed. A combined action (X/Z, X/D, Z/D, X/Z/D) takes the one that keeps
    the object valid whatever its IOD (Z, else D); reference sequences (X/Z/U*) are kept with
    their UIDs remapped. ``PatientIdentityRemoved`` is set to YES and the method is recorded
    in ``DeidentificationMethod`` and its code sequence.

    Replacements are deterministic under ``key`` (HMAC-SHA256), so one key gives the same
    result in every run, study and file, and another key unrelated ones:

    - UIDs: ``2.25.<integer>`` of a UUID made from HMAC(key, UID). Every instance UID is
      remapped wherever it appears (references in RTSTRUCT, SEG and SR included), so a series
      still reads as one volume and references still resolve; well-known UIDs (SOP classes,
      transfer syntaxes) are kept.
    - PatientID and PatientName: the pseudonym, the first 16 hex digits (64 bits, upper case)
      of HMAC(key, PatientID) (PatientName, then StudyInstanceUID, when PatientID is empty).
      :func:`patient_pseudonym` computes it for a given ID.
    - dates, with ``retain_dates="shift"``: moved back by a whole number of days, from 365 to
      3652, drawn from HMAC(key, PatientID): one patient's dates move together, so
      intervals between studies are kept.

    Parameters
    ----------
    src : str or os.PathLike
        A DICOM file, or a folder searched recursively. Never modified. Files that are not
        DICOM, cannot be parsed, or are DICOMDIRs are skipped (listed with a reason).
    dst : str or os.PathLike
        Output folder: must not exist or be empty, must not be inside ``src``. Files are
        written as ``dst/<pseudonym>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
        (the new UIDs; original file names can hold identifiers). The whole output is built
        in a hidden temporary folder beside ``dst`` and renamed to ``dst`` at the end, so an
        interrupted run leaves no partial output.
    key : bytes or str
        The secret (at least 8 bytes; use a long random one, e.g. ``secrets.token_hex(16)``).
        Keep it apart from the data: with it, pseudonyms can be recomputed from real IDs.
    retain_dates : {False, 'shift'}
        'shift': Retain Longitudinal Temporal Information with Modified Dates option; every
        date and date-time is shifted (times of day are kept), except the birth date and time,
        which the profile still removes. False (default): the profile's actions.
    retain_patient_characteristics : bool
        Retain Patient Characteristics option: keep sex, age, size, weight, ethnic group,
        smoking and pregnancy status; clean allergies, patient state, pre-medication and
        special needs.
    clean_descriptors : bool
        Clean Descriptors option: keep descriptions, comments, labels and protocol names,
        with every identifying value of the same object (names, IDs, institution, ... as
        found in it), dates and runs of 5+ digits removed from their text. Best effort: free
        text can still hold identifiers that appear nowhere else in the file.
    blank_us_header : bool
        For ultrasound images (Modality US, IVUS): set the top band of every frame to black,
        where scanners burn in patient name, ID and date. Compressed pixel data are decoded
        and stored uncompressed. Other text in the image is not touched: such files stay in
        ``burned_in``.
    us_header_rows : int, optional
        Height of that band in rows. Default: down to the top of the first region of
        ``SequenceOfUltrasoundRegions`` (the imaged area), else 10% of the rows.
    audit_csv : str or os.PathLike, optional
        Where the audit goes; default ``dst/deid_audit.csv``. One row per changed attribute:
        ``file`` (output path relative to ``dst``), ``tag`` (nested as
        ``(0008,1140)[0].(0008,1155)``), ``keyword``, ``action`` (X removed, Z emptied, D
        dummy, U UID remapped, P pseudonym, S date shifted, C text cleaned, B pixel band
        blanked) and ``old_value_sha256``: HMAC-SHA256 of the old value under ``key`` (never
        the value itself; with the key, one can check whether it was a given value).
    progress : bool or callable
        True: a progress bar; or ``progress(fraction, message)``, returning False to stop
        (InterruptedError, nothing written).

    Returns
    -------
    DeidSummary
        Files written, skipped (with reasons), flagged for burned-in annotation, blanked.

    Raises
    ------
    ValueError
        If ``dst`` is inside ``src``, exists and is not empty, or ``key`` is too short.
    ImageIOError
        If ``src`` does not exist.
    InterruptedError
        If ``progress`` asked to stop; the output is then not created.

    Examples
    --------
    >>> import tempfile, pydicom.data, medlab.privacy
    >>> out = tempfile.mkdtemp() + "/deid"
    >>> s = medlab.privacy.deidentify(pydicom.data.get_testdata_file("CT_small.dcm"), out,
    ...                               key="a long secret key", progress=False)
    >>> len(s.files), s.files[0][1].name.startswith("2.25.")
    (1, True)
    """
    if retain_dates is not False and retain_dates is not None:
        if not isinstance(retain_dates, str):
            raise ValueError(f"`retain_dates` must be False or 'shift'; got {retain_dates!r}")
        check_choice("retain_dates", retain_dates, ["shift"])
    if us_header_rows is not None:
        us_header_rows = check_int("us_header_rows", us_header_rows, minimum=1)
    raw_key = _keys.key_bytes(key)
    src_r, dst_r, audit_path = _check_paths(src, dst, audit_csv)
    options = {
        "retain_dates": bool(retain_dates),
        "retain_patient_characteristics": bool(retain_patient_characteristics),
        "clean_descriptors": bool(clean_descriptors),
        "blank_us_header": bool(blank_us_header),
        "us_header_rows": us_header_rows,
    }
    files = _inputs(src_r)
    given = Path(os.fspath(src))

    def as_given(path: Path) -> Path:  # report inputs under `src` as the caller wrote it
        return given / path.relative_to(src_r) if src_r.is_dir() else given

    summary = DeidSummary(output=dst_r, audit_csv=audit_path or dst_r / DEFAULT_AUDIT_NAME)

    # the output folder and the audit file appear whole or not at all; temporary entries of an
    # earlier run that was killed are removed first
    clean_stale(dst_r.parent)
    if audit_path is not None:
        clean_stale(audit_path.parent)
    update, close = _progress_callback(progress, len(files))
    try:
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(dst_r))
            tmp.mkdir()
            audit_file = (tmp / DEFAULT_AUDIT_NAME if audit_path is None
                          else stack.enter_context(atomic_path(audit_path)))
            # the folder's context was entered first, so it is renamed last: a run killed
            # between the two renames leaves the audit, never an output without its audit
            with open(audit_file, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(AUDIT_COLUMNS)
                used = set()
                for i, path in enumerate(files):
                    result = _one_file(path, tmp, raw_key, options, i, used)
                    if isinstance(result, str):
                        summary.skipped.append((as_given(path), result))
                    else:
                        rel, rows, flag, blanked = result
                        out = dst_r / rel
                        summary.files.append((as_given(path), out))
                        if flag:
                            summary.burned_in.append((out, flag))
                        if blanked:
                            summary.blanked.append((out, blanked))
                        writer.writerows((rel.as_posix(), *row) for row in rows)
                        summary.audit_rows += len(rows)
                    update(i + 1, path.name)
    finally:
        close()
    return summary


def _one_file(path: Path, tmp: Path, key: bytes, options: dict, index: int, used: set):
    """De-identify and write one file: (relative name, audit rows, flag, rows blanked) or the
    reason it was skipped. An OSError while writing (disk full) stops the whole run."""
    import pydicom.config

    # Messy real headers (over-long values, odd VRs, implicit VR where explicit was announced)
    # must not stop de-identification: pydicom's value checks are off and its warnings about
    # the input are dropped while a file is processed.
    with pydicom.config.disable_value_validation(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds, rel, rows, flag, blanked = _deidentify_file(path, key, options, index)
        except _Skip as exc:
            return str(exc)
        except ImageIOError as exc:
            return exc.reason
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop a cohort
            return f"cannot de-identify ({type(exc).__name__}: {exc})"
        rel = _unique(rel, used)
        try:
            _write(ds, tmp / rel)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - pydicom refuses to encode this dataset
            (tmp / rel).unlink(missing_ok=True)
            return f"cannot write ({type(exc).__name__}: {exc})"
    return rel, rows, flag, blanked


def _unique(rel: Path, used: set) -> Path:
    """``rel``, or ``<stem>_2.dcm``, ... when two inputs are the same instance (same SOP UID)."""
    candidate, n = rel, 1
    while candidate in used:
        n += 1
        candidate = rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
    used.add(candidate)
    return candidate
