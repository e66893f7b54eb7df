"""medlab.privacy on real DICOM: every file of pydicom's and pydicom-data's test sets, and the
IBSI CT series with its RTSTRUCT, checked attribute by attribute against DICOM PS3.15
Table E.1-1 (the table medlab applies), for unchanged pixels, consistent UIDs, and output that
still reads in medlab."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import medlab.io
import medlab.privacy
from medlab.io._header import open_dicom
from medlab.privacy._clean import DUMMY, is_well_known_uid

KEY = "corpus-test-key-0123456789"
PATIENT_ID, PATIENT_NAME = 0x00100020, 0x00100010


# --------------------------------------------------------------------------- helpers


def _walk(ds, prefix=()):
    """(path, element) for every element, nested ones too; path = (tag, item, tag, ...)."""
    for elem in ds:
        path = prefix + (int(elem.tag),)
        yield path, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from _walk(item, path + (i,))


def _lookup(ds, path):
    cur = ds
    for depth, step in enumerate(path):
        if depth % 2 == 0:
            if step not in cur:
                return None
            elem = cur[step]
            if depth == len(path) - 1:
                return elem
            cur = elem.value
        else:
            if step >= len(cur):
                return None
            cur = cur[step]
    return None


def _empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return not value.strip(" \x00" if isinstance(value, str) else b" \x00")
    try:
        return len(value) == 0
    except TypeError:
        return False


def _values(value) -> list:
    return [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else list(value)


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's test files are deliberately odd
        ds = open_dicom(path)
        list(_walk(ds))  # parse every value while warnings are off
    return ds


def profile_violations(src, out, counts: collections.Counter, exempt=None) -> list:
    """Attributes of ``src`` that the profile removes or replaces but ``out`` keeps.

    For every non-empty attribute of the input (nested ones too) with a Table E.1-1 action:
    X must be absent; Z absent or empty; actions with D or U: absent (inside a removed
    sequence), empty where Z is allowed, or a value different from the input (unless the
    input already held the dummy value, or a well-known UID that U keeps). PatientID and
    PatientName must hold the pseudonym. No private attribute may remain anywhere.
    ``exempt(tag, vr)``: attributes an option keeps, left out of the check.
    """
    a, b = _open(src), _open(out)
    bad = []
    for path, elem in _walk(a):
        tag = path[-1]
        if pydicom.tag.Tag(tag).is_private:
            continue
        action = "P" if tag in (PATIENT_ID, PATIENT_NAME) else medlab.privacy.profile_action(tag)
        if action is None or _empty(elem.value):
            continue
        if exempt is not None and exempt(tag, elem.VR):
            counts["kept by an option"] += 1
            continue
        counts[action] += 1
        o = _lookup(b, path)
        if o is None:
            # Absent is right for X, and for anything inside a removed or emptied sequence.
            if not (action.startswith("X") or len(path) > 1):
                bad.append((path, action, "absent"))
            continue
        if action == "X":
            bad.append((path, action, f"{elem.keyword} still present"))
            continue
        if _empty(o.value):
            if "Z" not in action:
                bad.append((path, action, f"{elem.keyword} emptied"))
            continue
        if o.value == elem.value:
            if elem.VR == "UI" and all(is_well_known_uid(str(v)) for v in _values(elem.value)):
                counts["well-known UID kept"] += 1
                continue
            if elem.VR in DUMMY and o.value == DUMMY[elem.VR]:
                counts["input already the dummy"] += 1
                continue
            bad.append((path, action, f"{elem.keyword} unchanged"))
    for path, _ in _walk(b):
        if pydicom.tag.Tag(path[-1]).is_private:
            bad.append((path, "X", "private attribute present"))
    return bad


def _by_option(tag: int, vr: str) -> bool:
    """Kept (K) or cleaned (C) by one of the three options, per Table E.1-1's option columns."""
    from medlab.privacy import _profile as t

    longitudinal = vr in ("DA", "DT", "TM") and tag not in t.NOT_LONGITUDINAL
    return longitudinal or tag in t.CLEAN_DESCRIPTORS or tag in t.PATIENT_CHARACTERISTICS_KEEP or (
        tag in t.PATIENT_CHARACTERISTICS_CLEAN
    )


def _tree_digest(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _skip_kind(reason: str) -> str:
    for kind in ("not a DICOM file", "DICOMDIR", "unreadable DICOM", "cannot de-identify", "cannot write"):
        if reason.startswith(kind):
            return kind
    return reason


# --------------------------------------------------------------------------- pydicom data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every pydicom / pydicom-data test file (linked into one folder), de-identified once."""
    # get_testdata_files also lists folders (dicomdirtests/...); their files are listed too
    files = sorted(f for f in set(pydicom.data.get_testdata_files()) if os.path.isfile(f))
    folders = {Path(f).parent for f in files}
    assert Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent in folders
    assert len(folders) > 2, "pydicom-data is not installed (only pydicom's own test files found)"
    src = tmp_path_factory.mktemp("corpus") / "in"
    src.mkdir()
    for i, f in enumerate(files):
        os.symlink(f, src / f"{i:03d}_{Path(f).name}")
    before = _tree_digest(src)
    out = src.parent / "out"
    summary = medlab.privacy.deidentify(src, out, key=KEY, progress=False)
    return {"src": src, "out": out, "summary": summary, "before": before, "n": len(files)}


def test_corpus_every_file_accounted_for(corpus, capsys):
    s = corpus["summary"]
    kinds = collections.Counter(_skip_kind(r) for _, r in s.skipped)
    with capsys.disabled():
        print(
            f"\n[privacy] pydicom test files tried: {corpus['n']}, de-identified: {len(s.files)}, "
            f"skipped: {len(s.skipped)} {dict(kinds)}, flagged for burned-in text: {len(s.burned_in)}"
        )
    assert len(s.files) + len(s.skipped) == corpus["n"]
    # Measured: 226 written, 18 skipped (11 not DICOM: READMEs, JSON, dumps, an ICC profile,
    # a gzip, a meta-less file; 7 DICOMDIRs).
    assert len(s.files) >= 220
    assert set(kinds) <= {"not a DICOM file", "DICOMDIR", "unreadable DICOM"}, kinds
    assert kinds["DICOMDIR"] >= 5
    outputs = sorted(p for p in corpus["out"].rglob("*.dcm"))
    assert len(outputs) == len(s.files) == len({o for _, o in s.files})
    # Files of one series (original SeriesInstanceUID) land together in one series folder,
    # and different series in different folders.
    folders = collections.defaultdict(set)
    for src, out in s.files:
        folders[str(_open(src).get("SeriesInstanceUID", ""))].add(out.parent)
    assert all(len(f) == 1 for f in folders.values())
    assert len({f for fs in folders.values() for f in fs}) == len(folders)
    assert max(len([1 for _, o in s.files if o.parent == next(iter(f))]) for f in folders.values()) >= 10


def test_corpus_inputs_unchanged(corpus):
    assert _tree_digest(corpus["src"]) == corpus["before"]


def test_corpus_profile_applied_to_every_attribute(corpus):
    counts = collections.Counter()
    bad = []
    for src, out in corpus["summary"].files:
        bad += [(src.name, *v) for v in profile_violations(src, out, counts)]
    assert not bad, bad[:20]
    # Enough of each action was exercised (measured: U 921, Z 905, X 630, P 397, X/Z/D 265,
    # X/D 264, Z/D 149, X/Z 76, X/Z/U* 56, D 35).
    for action, floor in {"U": 800, "Z": 800, "X": 500, "P": 300, "X/D": 200, "Z/D": 100, "D": 20}.items():
        assert counts[action] >= floor, (action, counts)


def test_corpus_with_all_options(corpus, tmp_path):
    """With the three options, everything outside their columns is still removed or replaced,
    and every shiftable date moved by the same whole number of days per patient."""
    s = medlab.privacy.deidentify(
        corpus["src"], tmp_path / "out", key=KEY, retain_dates="shift",
        retain_patient_characteristics=True, clean_descriptors=True, progress=False,
    )
    assert len(s.files) == len(corpus["summary"].files)
    counts = collections.Counter()
    shifts = collections.defaultdict(set)
    bad = []
    for src, out in s.files:
        bad += [(src.name, *v) for v in profile_violations(src, out, counts, exempt=_by_option)]
        a, b = _open(src), _open(out)
        for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            old, new = str(a.get(kw, "") or ""), str(b.get(kw, "") or "")
            if len(old) == 8 and old.isdigit() and new:
                try:
                    delta = (dt.datetime.strptime(new, "%Y%m%d") - dt.datetime.strptime(old, "%Y%m%d")).days
                except ValueError:
                    continue
                shifts[str(a.get("PatientID", "") or a.get("PatientName", "") or a.get("StudyInstanceUID", ""))].add(delta)
                counts["dates shifted"] += 1
        for kw in ("PatientSex", "PatientAge", "PatientWeight", "StudyTime", "SeriesTime"):
            if kw in a and not _empty(a[kw].value):
                assert b[kw].value == a[kw].value, (src.name, kw)
    assert not bad, bad[:20]
    assert all(len(d) == 1 and -3652 <= next(iter(d)) <= -365 for d in shifts.values()), shifts
    # measured: 1621 kept by an option, 366 dates shifted over 33 patients
    assert counts["kept by an option"] > 1400 and counts["dates shifted"] > 300 and len(shifts) > 25, (len(shifts), counts)


def test_profile_check_can_fail(corpus):
    """The checker above flags an unprocessed copy (it is not vacuous)."""
    src, _ = next((s, o) for s, o in corpus["summary"].files if s.name.endswith("CT_small.dcm"))
    bad = profile_violations(src, src, collections.Counter())
    kinds = {v[1] for v in bad}
    assert {"P", "U", "X"} <= kinds, kinds


def test_corpus_pixels_unchanged_and_readable(corpus):
    """Raw PixelData bytes and transfer syntax identical for every file; decoded pixels
    identical: through medlab.io.read (all frames, same geometry) for every output whose input
    medlab reads (images up to 2e7 samples), else through pydicom (first frame)."""
    counts = collections.Counter()
    for src, out in corpus["summary"].files:
        a, b = _open(src), _open(out)
        if "PixelData" not in a:
            counts["no pixel data"] += 1
            continue
        assert a.PixelData == b.PixelData, src.name
        assert a.file_meta.get("TransferSyntaxUID") == b.file_meta.get("TransferSyntaxUID"), src.name
        try:
            samples = int(a.Rows) * int(a.Columns) * int(a.get("NumberOfFrames") or 1) * int(a.SamplesPerPixel)
        except (ValueError, TypeError, AttributeError):  # e.g. NumberOfFrames '1A'
            samples = float("inf")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img_a = None
            if samples <= 2e7:
                try:
                    img_a = medlab.io.read(src)
                except (medlab.ImageIOError, ValueError):
                    pass
            if img_a is not None:
                img_b = medlab.io.read(out)
                np.testing.assert_array_equal(sitk.GetArrayViewFromImage(img_b), sitk.GetArrayViewFromImage(img_a))
                assert img_b.GetSpacing() == img_a.GetSpacing() and img_b.GetOrigin() == img_a.GetOrigin()
                counts["read by medlab"] += 1
                continue
            try:
                first = pydicom.pixels.pixel_array(a, index=0)
            except Exception:  # noqa: BLE001 - deliberately broken pixel data in the test set
                counts["pixels not decodable"] += 1
                continue
            np.testing.assert_array_equal(pydicom.pixels.pixel_array(b, index=0), first, err_msg=src.name)
            counts["decoded by pydicom"] += 1
    # Measured: 155 read by medlab, 1 more (120 frames) decoded by pydicom, 6 not decodable
    # (deliberately broken), 64 without pixel data.
    assert counts["read by medlab"] >= 150 and counts["decoded by pydicom"] >= 1, counts


def _identifying_values(ds) -> set[str]:
    keywords = (
        "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "InstitutionName",
        "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
        "AccessionNumber", "StationName", "DeviceSerialNumber", "StudyInstanceUID",
        "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
    )
    # A value that the input also holds in an attribute the profile keeps (e.g. a station
    # name that is part of the Manufacturer) may stay there.
    kept = {
        str(v).strip(" \x00")
        for path, e in _walk(ds)
        if e.VR not in ("SQ", "OB", "OW", "UN") and not pydicom.tag.Tag(path[-1]).is_private
        and medlab.privacy.profile_action(path[-1]) is None and path[-1] not in (PATIENT_ID, PATIENT_NAME)
        for v in _values(e.value)
    }
    found = set()
    for kw in keywords:
        for v in _values(ds.get(kw, "") or ""):
            text = str(v).strip(" \x00")
            # Short values (e.g. PatientID '1') match by chance; dummies are not identifying.
            if len(text) >= 6 and text not in DUMMY.values() and not any(text in k for k in kept):
                found.add(text)
    return found


def _distinctive(text: str) -> bool:
    """A value that cannot turn up by chance in pixel bytes, hashes or new UIDs."""
    return any(c.isalpha() for c in text) or text.count(".") >= 3


def test_corpus_no_identifying_value_in_output_or_audit(corpus):
    """Names, IDs, birth dates, institutions and original UIDs of the inputs appear nowhere in
    the output files (as bytes, or inside any text value) nor in the audit file."""
    s = corpus["summary"]
    audit = s.audit_csv.read_bytes()
    with open(s.audit_csv, newline="", encoding="utf-8") as fh:
        cells = {c for row in csv.reader(fh) for cell in row for c in [cell, *cell.replace(".dcm", "").split("/")]}
    checked = 0
    for src, out in s.files:
        values = _identifying_values(_open(src))
        data = out.read_bytes()
        texts = [str(e.value) for _, e in _walk(_open(out)) if e.VR not in ("SQ", "OB", "OW", "UN")]
        for v in values:
            if _distinctive(v):
                assert v.encode() not in data, (src.name, v)
                assert v.encode() not in audit, (src.name, v)
            assert not any(v in t for t in texts), (src.name, v)
            assert v not in cells, (src.name, v)
            checked += 1
    assert checked > 900  # measured: 971


def test_corpus_audit(corpus):
    s = corpus["summary"]
    with open(s.audit_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == medlab.privacy.AUDIT_COLUMNS
    assert len(rows) == s.audit_rows > 5000  # measured: 6396
    written = {o.relative_to(s.output).as_posix() for _, o in s.files}
    assert {r["file"] for r in rows} <= written
    assert {r["action"] for r in rows} <= set("XZDUPSCB")
    assert all(len(r["old_value_sha256"]) == 64 for r in rows)
    assert any(r["keyword"].endswith("<private>") for r in rows)


# --------------------------------------------------------------------------- IBSI CT + RTSTRUCT


@pytest.fixture(scope="module")
def ibsi(ibsi_ct, tmp_path_factory):
    out = tmp_path_factory.mktemp("ibsi") / "deid"
    before = _tree_digest(ibsi_ct / "dicom")
    summary = medlab.privacy.deidentify(ibsi_ct / "dicom", out, key=KEY, progress=False)
    assert _tree_digest(ibsi_ct / "dicom") == before
    return summary


def test_ibsi_series_and_rtstruct_consistent(ibsi_ct, ibsi):
    assert len(ibsi.files) == 61 and not ibsi.skipped
    by_input = {src.name: out for src, out in ibsi.files}
    rtstruct = by_input["DCM_RS_00060.dcm"]
    slices = [out for src, out in ibsi.files if src.parent.name == "image"]
    assert len({p.parent for p in slices}) == 1  # the 60 slices are still one series
    series_dir = slices[0].parent
    assert rtstruct.parent != series_dir

    original = medlab.io.read(ibsi_ct / "dicom" / "image")
    volume = medlab.io.read(series_dir)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume), sitk.GetArrayViewFromImage(original))
    assert volume.GetSpacing() == original.GetSpacing() and volume.GetOrigin() == original.GetOrigin()
    assert volume.GetDirection() == original.GetDirection()

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in slices]
    sop_uids = {str(h.SOPInstanceUID) for h in headers}
    series_uid = {str(h.SeriesInstanceUID) for h in headers}
    frame_uid = {str(h.FrameOfReferenceUID) for h in headers}
    study_uid = {str(h.StudyInstanceUID) for h in headers}
    assert len(sop_uids) == 60 and len(series_uid) == len(frame_uid) == len(study_uid) == 1
    assert all(u.startswith("2.25.") for u in sop_uids | series_uid | frame_uid | study_uid)

    rs = pydicom.dcmread(rtstruct)
    assert str(rs.StudyInstanceUID) in study_uid
    ref_frame = rs.ReferencedFrameOfReferenceSequence[0]
    assert str(ref_frame.FrameOfReferenceUID) in frame_uid
    assert {str(r.ReferencedFrameOfReferenceUID) for r in rs.StructureSetROISequence} == frame_uid
    rt_series = ref_frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert str(rt_series.SeriesInstanceUID) in series_uid
    referenced = {str(i.ReferencedSOPInstanceUID) for i in rt_series.ContourImageSequence}
    referenced |= {
        str(ci.ReferencedSOPInstanceUID)
        for roi in rs.ROIContourSequence
        for c in roi.ContourSequence
        for ci in c.get("ContourImageSequence", [])
    }
    assert referenced and referenced <= sop_uids

    labels = medlab.io.rtstruct_to_labels(rtstruct, volume)
    expected = medlab.io.rtstruct_to_labels(ibsi_ct / "dicom" / "mask" / "DCM_RS_00060.dcm", original)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(labels), sitk.GetArrayViewFromImage(expected))
    assert sitk.GetArrayViewFromImage(labels).sum() > 100_000  # the GTV (measured 125256 voxels)


def test_ibsi_profile_applied(ibsi):
    counts = collections.Counter()
    bad = []
    for src, out in ibsi.files:
        bad += [(src.name, *v) for v in profile_violations(src, out, counts)]
    assert not bad, bad[:20]
    assert counts["U"] >= 60 * 4 + 60  # 4 instance UIDs per slice + the RTSTRUCT references
