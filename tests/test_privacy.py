"""medlab.privacy: keyed replacements, the PS3.15 options, the audit, safety of inputs and
outputs, the CLI, and burned-in annotation on a real ultrasound (deid-data)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

import medlab.datasets
import medlab.io
import medlab.privacy
from medlab.cli import main
from medlab.privacy import _deid

KEY = "unit-test-key-0123456789"
CT_SMALL = pydicom.data.get_testdata_file("CT_small.dcm")

# Two studies of patient A (78 days apart) and one of patient B.
_STUDIES = (
    ("PAT-A-12345", "Doe^Jane", "1.2.3.4.100", "20200115"),
    ("PAT-A-12345", "Doe^Jane", "1.2.3.4.200", "20200402"),
    ("PAT-B-98765", "Roe^Richard", "1.2.3.4.300", "20210610"),
)


def _make_inputs(folder: Path) -> Path:
    """Three CT files built from CT_small with known identifying values."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (pid, name, study, date) in enumerate(_STUDIES):
        ds = pydicom.dcmread(CT_SMALL)
        ds.PatientID, ds.PatientName = pid, name
        ds.PatientBirthDate, ds.PatientAge, ds.PatientSex, ds.PatientWeight = "19750304", "045Y", "F", 70
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, study + ".1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = study + ".1.1"
        ds.FrameOfReferenceUID = study + ".9"
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
        ds.StudyTime = "101500"
        ds.StudyDescription = f"CT chest {name.split('^')[0]} follow-up {date[:4]}-{date[4:6]}-{date[6:]} MRN 7654321"
        ds.SeriesDescription = "Axial 5mm"
        ds.InstitutionName = "Springfield General Hospital"
        ds.ReferringPhysicianName = "House^Gregory"
        ds.OtherPatientIDs = "OLD-" + pid
        ds.private_block(0x0011, "ACME 1.0", create=True).add_new(0x01, "LO", name)
        ds.save_as(folder / f"{name.split('^')[0]}_{i}.dcm")
    return folder


@pytest.fixture
def inputs(tmp_path):
    return _make_inputs(tmp_path / "in")


def _by_input(summary) -> dict:
    return {src.name: pydicom.dcmread(out) for src, out in summary.files}


def _audit(summary) -> list[dict]:
    with open(summary.audit_csv, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- table and keys


def test_profile_table_is_table_e11():
    table = medlab.privacy.profile_table()
    assert len(table) > 600
    act = medlab.privacy.profile_action
    # Entries of DICOM PS3.15 Table E.1-1.
    assert act(0x00100010) == "Z"  # Patient's Name
    assert act(0x00100030) == "Z"  # Patient's Birth Date
    assert act(0x00080020) == "Z"  # Study Date
    assert act(0x0020000D) == "U"  # Study Instance UID
    assert act(0x00080018) == "U"  # SOP Instance UID
    assert act(0x00081155) == "U"  # Referenced SOP Instance UID
    assert act(0x00080080) == "X/Z/D"  # Institution Name
    assert act(0x0008103E) == "X"  # Series Description
    assert act(0x00081140) == "X/Z/U*"  # Referenced Image Sequence
    assert act(0x60003000) == act(0x601E3000) == "X"  # Overlay Data, repeating group 60xx
    assert act(0x50000010) == "X"  # Curve Data, group 50xx
    assert act(0x00080060) is None and act(0x00280010) is None  # Modality, Rows: kept
    assert medlab.privacy.TABLE_VERSION == "2026c"


def test_keyed_uids_and_pseudonyms():
    uid = medlab.privacy.remap_uid("1.2.840.113619.2.1.1.322987881.621.736170080.681", key=KEY)
    assert uid == medlab.privacy.remap_uid("1.2.840.113619.2.1.1.322987881.621.736170080.681", key=KEY)
    assert uid != medlab.privacy.remap_uid("1.2.840.113619.2.1.1.322987881.621.736170080.681", key=KEY + "x")
    assert uid.startswith("2.25.") and len(uid) <= 44 and pydicom.uid.UID(uid).is_valid
    assert medlab.privacy.remap_uid(pydicom.uid.CTImageStorage, key=KEY) == pydicom.uid.CTImageStorage
    p = medlab.privacy.patient_pseudonym("PAT-A-12345", key=KEY)
    assert len(p) == 16 and all(c in "0123456789ABCDEF" for c in p)
    expected = hmac.new(KEY.encode(), b"patient\x00PAT-A-12345", hashlib.sha256).hexdigest()[:16].upper()
    assert p == expected == medlab.privacy.patient_pseudonym("PAT-A-12345", key=KEY.encode())
    assert p != medlab.privacy.patient_pseudonym("PAT-A-12345", key="another-key-0123456")
    with pytest.raises(ValueError, match="at least 8 bytes"):
        medlab.privacy.patient_pseudonym("x", key="short")
    with pytest.raises(TypeError, match="`key` must be bytes or str"):
        medlab.privacy.remap_uid("1.2.3", key=12345678)


# --------------------------------------------------------------------------- basic profile


def test_basic_profile_on_known_values(inputs, tmp_path):
    before = _digest(inputs)
    s = medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, progress=False)
    assert _digest(inputs) == before
    assert len(s.files) == 3 and not s.skipped and s.audit_csv == tmp_path / "out" / "deid_audit.csv"
    out = _by_input(s)
    a0, a1, b = out["Doe_0.dcm"], out["Doe_1.dcm"], out["Roe_2.dcm"]
    pa = medlab.privacy.patient_pseudonym("PAT-A-12345", key=KEY)
    assert a0.PatientID == a1.PatientID == str(a0.PatientName) == pa != b.PatientID
    assert a0.PatientBirthDate == "" and a0.StudyDate == "" and "OtherPatientIDs" not in a0
    assert "StudyDescription" not in a0 and "SeriesDescription" not in a0
    assert "PatientAge" not in a0 and "PatientWeight" not in a0 and a0.PatientSex == ""
    assert a0.InstitutionName == "ANONYMIZED" and a0.ReferringPhysicianName == ""
    assert a0.StudyInstanceUID == medlab.privacy.remap_uid("1.2.3.4.100", key=KEY)
    assert a0.file_meta.MediaStorageSOPInstanceUID == a0.SOPInstanceUID == medlab.privacy.remap_uid("1.2.3.4.100.1.1", key=KEY)
    assert a0.StudyInstanceUID != a1.StudyInstanceUID
    assert not any(e.tag.is_private for e in a0.iterall())
    assert a0.PatientIdentityRemoved == "YES" and a0.LongitudinalTemporalInformationModified == "REMOVED"
    assert [c.CodeValue for c in a0.DeidentificationMethodCodeSequence] == ["113100"]
    np.testing.assert_array_equal(a0.pixel_array, pydicom.dcmread(inputs / "Doe_0.dcm").pixel_array)
    # Files are named by pseudonym and new UIDs, never by the input names.
    rel = s.files[0][1].relative_to(s.output)
    assert rel.parts[0] == pa and rel.name == a0.SOPInstanceUID + ".dcm"
    # The output reads in medlab; the metadata view leaves identifying keys out.
    meta = medlab.io.metadata(s.files[0][1], identifying=False)
    assert meta["modality"] == "CT" and "patient_id" not in meta


def test_audit_holds_keyed_hashes_only(inputs, tmp_path):
    s = medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, progress=False)
    rows = _audit(s)
    assert tuple(rows[0]) == medlab.privacy.AUDIT_COLUMNS == ("file", "tag", "keyword", "action", "old_value_sha256")
    assert len(rows) == s.audit_rows
    name_row = next(r for r in rows if r["keyword"] == "PatientName" and r["file"].endswith(s.files[0][1].name))
    assert name_row["tag"] == "(0010,0010)" and name_row["action"] == "P"
    expected = hmac.new(KEY.encode(), b"audit\x00Doe^Jane", hashlib.sha256).hexdigest()
    assert name_row["old_value_sha256"] == expected
    assert any(r["keyword"].endswith("<private>") and r["action"] == "X" for r in rows)
    assert {r["action"] for r in rows} >= {"X", "Z", "D", "U", "P"}
    text = s.audit_csv.read_text()
    for secret in ("Doe", "Jane", "PAT-A-12345", "Springfield", "House", "19750304", "20200115", "1.2.3.4.100"):
        assert secret not in text
        for _, out in s.files:
            assert secret.encode() not in out.read_bytes()


def test_same_key_same_output_other_key_unrelated(inputs, tmp_path):
    s1 = medlab.privacy.deidentify(inputs, tmp_path / "run1", key=KEY, progress=False)
    s2 = medlab.privacy.deidentify(inputs, tmp_path / "run2", key=KEY, progress=False)
    s3 = medlab.privacy.deidentify(inputs, tmp_path / "run3", key="a-different-key-42", progress=False)
    rel = [[o.relative_to(s.output) for _, o in s.files] for s in (s1, s2, s3)]
    assert rel[0] == rel[1]
    for (_, o1), (_, o2) in zip(s1.files, s2.files):
        assert o1.read_bytes() == o2.read_bytes()
    assert (s1.output / "deid_audit.csv").read_bytes() == (s2.output / "deid_audit.csv").read_bytes()

    def uids(summary):
        return {
            str(e.value)
            for _, o in summary.files
            for e in pydicom.dcmread(o).iterall()
            if e.VR == "UI" and not e.keyword.endswith("ClassUID")
        }

    u1, u3 = uids(s1), uids(s3)
    assert len(u1) > 6 and not (u1 & u3)
    assert {p.parts[0] for p in rel[0]}.isdisjoint({p.parts[0] for p in rel[2]})


# --------------------------------------------------------------------------- options


def _date(value: str) -> dt.date:
    return dt.datetime.strptime(value, "%Y%m%d").date()


def test_retain_dates_shift_keeps_intervals_per_patient(inputs, tmp_path):
    s = medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, retain_dates="shift", progress=False)
    out = _by_input(s)
    shifts = {}
    for (pid, _, _, date), name in zip(_STUDIES, ("Doe_0.dcm", "Doe_1.dcm", "Roe_2.dcm")):
        ds = out[name]
        assert ds.StudyDate == ds.SeriesDate == ds.AcquisitionDate == ds.ContentDate
        days = (_date(ds.StudyDate) - _date(date)).days
        assert -3652 <= days <= -365
        shifts.setdefault(pid, set()).add(days)
        assert ds.StudyTime == "101500"  # whole-day shift: time of day kept
        assert ds.PatientBirthDate == ""  # the birth date is not longitudinal information
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert "113107" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    assert len(shifts["PAT-A-12345"]) == 1  # one shift per patient ...
    a0, a1 = out["Doe_0.dcm"], out["Doe_1.dcm"]
    assert (_date(a1.StudyDate) - _date(a0.StudyDate)).days == 78  # ... so intervals are kept
    assert shifts["PAT-A-12345"] != shifts["PAT-B-98765"]
    assert any(r["action"] == "S" for r in _audit(s))


def test_retain_patient_characteristics_and_clean_descriptors(inputs, tmp_path):
    s = medlab.privacy.deidentify(
        inputs, tmp_path / "out", key=KEY, retain_patient_characteristics=True, clean_descriptors=True, progress=False
    )
    ds = _by_input(s)["Doe_0.dcm"]
    assert (ds.PatientAge, ds.PatientSex, float(ds.PatientWeight)) == ("045Y", "F", 70.0)
    # "CT chest Doe follow-up 2020-01-15 MRN 7654321": the name, the date and the record
    # number are cleaned out, the clinical words kept.
    assert ds.StudyDescription == "CT chest follow-up MRN"
    assert ds.SeriesDescription == "Axial 5mm"
    assert ds.PatientName == medlab.privacy.patient_pseudonym("PAT-A-12345", key=KEY)
    codes = [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113108"]
    assert ds.PatientBirthDate == "" and ds.StudyDate == ""


def test_option_arguments_are_checked(inputs, tmp_path):
    with pytest.raises(ValueError, match="did you mean 'shift'"):
        medlab.privacy.deidentify(inputs, tmp_path / "o", key=KEY, retain_dates="shfit", progress=False)
    with pytest.raises(ValueError, match="must be False or 'shift'"):
        medlab.privacy.deidentify(inputs, tmp_path / "o", key=KEY, retain_dates=True, progress=False)
    with pytest.raises(ValueError, match="us_header_rows"):
        medlab.privacy.deidentify(inputs, tmp_path / "o", key=KEY, us_header_rows=0, progress=False)
    with pytest.raises(ValueError, match="at least 8 bytes"):
        medlab.privacy.deidentify(inputs, tmp_path / "o", key="short", progress=False)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- safety


def test_refuses_output_in_input_or_nonempty(inputs, tmp_path):
    with pytest.raises(ValueError, match="inside the input folder"):
        medlab.privacy.deidentify(inputs, inputs / "deid", key=KEY, progress=False)
    with pytest.raises(ValueError, match="inside the input folder"):
        medlab.privacy.deidentify(inputs, inputs, key=KEY, progress=False)
    with pytest.raises(ValueError, match="folder of the input file"):
        medlab.privacy.deidentify(inputs / "Doe_0.dcm", inputs, key=KEY, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not an empty folder"):
        medlab.privacy.deidentify(inputs, tmp_path / "full", key=KEY, progress=False)
    with pytest.raises(ValueError, match="`audit_csv`.*inside the input folder"):
        medlab.privacy.deidentify(inputs, tmp_path / "o", key=KEY, audit_csv=inputs / "a.csv", progress=False)
    with pytest.raises(medlab.ImageIOError, match="no such file"):
        medlab.privacy.deidentify(tmp_path / "missing", tmp_path / "o", key=KEY, progress=False)
    assert sorted(p.name for p in inputs.iterdir()) == ["Doe_0.dcm", "Doe_1.dcm", "Roe_2.dcm"]
    # An empty existing folder is fine, and so is a single file.
    (tmp_path / "empty").mkdir()
    s = medlab.privacy.deidentify(inputs / "Doe_0.dcm", tmp_path / "empty", key=KEY, progress=False)
    assert len(s.files) == 1 and s.files[0][1].is_file()


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_run_leaves_no_output(inputs, tmp_path, monkeypatch, error):
    real_write = _deid._write
    calls = []

    def failing_write(ds, path):
        calls.append(path)
        if len(calls) == 2:
            raise error
        real_write(ds, path)

    monkeypatch.setattr(_deid, "_write", failing_write)
    before = _digest(inputs)
    audit = tmp_path / "audit" / "deid.csv"
    audit.parent.mkdir()
    with pytest.raises(type(error)):
        medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, audit_csv=audit, progress=False)
    assert len(calls) == 2  # it failed mid-run, after one file was written
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit", "in"]  # no temporary folder left
    assert list(audit.parent.iterdir()) == []
    assert _digest(inputs) == before


def test_progress_callback_reports_and_stops(inputs, tmp_path):
    seen = []
    s = medlab.privacy.deidentify(inputs, tmp_path / "a", key=KEY, progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == pytest.approx([1 / 3, 2 / 3, 1.0]) and len(s.files) == 3
    with pytest.raises(InterruptedError, match="stopped by the `progress` callback"):
        medlab.privacy.deidentify(inputs, tmp_path / "b", key=KEY, progress=lambda f, m: f < 0.5)
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "in"]


def test_summary_repr_names_no_file(inputs, tmp_path):
    s = medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, progress=False)
    text = repr(s)
    assert "written=3" in text and "skipped=0" in text
    assert str(inputs) not in text and not any(src.name in text for src, _ in s.files)


def test_summary_names_inputs_as_given_through_a_link(inputs, tmp_path):
    """A caller that lists its input files itself finds each of them in ``summary.files``,
    also when ``src`` is reached through a symbolic link (data stores often are)."""
    link = tmp_path / "linked"
    link.symlink_to(inputs, target_is_directory=True)
    s = medlab.privacy.deidentify(link, tmp_path / "out", key=KEY, progress=False)
    pairs = dict(s.files)
    assert sorted(pairs) == sorted(link.rglob("*.dcm"))


# --------------------------------------------------------------------------- CLI


def test_cli_deid(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MEDLAB_DEID_KEY", raising=False)
    out = tmp_path / "out"
    rc = main(["deid", str(inputs), str(out), "--key", KEY, "--profile-options", "retain-dates", "clean-descriptors", "-q"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "3 file(s) de-identified" in printed and "Doe" not in printed
    ds = pydicom.dcmread(next(out.rglob("*.dcm")))
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED" and "StudyDescription" in ds
    assert (out / "deid_audit.csv").is_file()

    assert main(["deid", str(inputs), str(tmp_path / "o2"), "-q"]) == 2  # no key
    assert "--key" in capsys.readouterr().err
    monkeypatch.setenv("MEDLAB_DEID_KEY", KEY)
    assert main(["deid", str(inputs), str(inputs / "sub"), "-q"]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    assert main(["deid", str(inputs), str(tmp_path / "o3"), "--key-file", str(key_file), "-q"]) == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*.dcm"))
    assert [p.parts[0] for p in first] == [p.parts[0] for p in sorted(x.relative_to(tmp_path / "o3") for x in (tmp_path / "o3").rglob("*.dcm"))]
    with pytest.raises(SystemExit):
        main(["deid", str(inputs), str(tmp_path / "o4"), "--profile-options", "retain-everything"])


# --------------------------------------------------------------------------- burned-in annotation


@pytest.fixture(scope="module")
def echo():
    """The deid-data colour-Doppler echocardiogram: 30 RGB frames, BurnedInAnnotation YES,
    one ultrasound region starting at row 30, text burned in down the left side."""
    path = medlab.datasets.fetch("deid_echo", progress=False) / "ultrasounds" / "ultrasound-multiframe.dcm"
    return path, pydicom.dcmread(path).pixel_array


def test_echo_flagged_and_pixels_kept(echo, tmp_path):
    path, _ = echo
    s = medlab.privacy.deidentify(path, tmp_path / "out", key=KEY, progress=False)
    (out, reason), = s.burned_in
    assert "BurnedInAnnotation (0028,0301) is YES" in reason and out == s.files[0][1]
    assert not s.blanked
    ds = pydicom.dcmread(out)
    assert ds.PixelData == pydicom.dcmread(path).PixelData
    assert ds.BurnedInAnnotation == "YES"
    assert medlab.privacy.burned_in_reason(ds) is not None
    img = medlab.io.read(out)
    assert img.GetSize()[:2] == (800, 600)


def test_echo_header_band_blanked(echo, tmp_path):
    path, original = echo
    s = medlab.privacy.deidentify(path, tmp_path / "auto", key=KEY, blank_us_header=True, progress=False)
    assert s.blanked == [(s.files[0][1], 30)]  # RegionLocationMinY0 of the imaged region
    auto = pydicom.dcmread(s.files[0][1]).pixel_array
    assert not auto[:, :30].any()
    np.testing.assert_array_equal(auto[:, 30:], original[:, 30:])
    assert any(r["action"] == "B" and r["keyword"] == "PixelData" for r in _audit(s))

    # The burned-in text (frame rate, depth, ...) reaches row ~60 at the left edge.
    assert original[:, 30:60, :120].any()
    s = medlab.privacy.deidentify(path, tmp_path / "rows", key=KEY, blank_us_header=True, us_header_rows=60, progress=False)
    assert s.blanked == [(s.files[0][1], 60)] and len(s.burned_in) == 1  # other text remains
    ds = pydicom.dcmread(s.files[0][1])
    blanked = ds.pixel_array
    assert not blanked[:, :60].any()
    np.testing.assert_array_equal(blanked[:, 60:], original[:, 60:])
    assert "Ultrasound header band blanked (60 rows)" in list(ds.DeidentificationMethod)


def test_burned_in_reasons():
    ds = pydicom.Dataset()
    assert medlab.privacy.burned_in_reason(ds) is None  # no pixels
    ds.PixelData = b"\x00\x00"
    ds.Modality = "CT"
    assert medlab.privacy.burned_in_reason(ds) is None
    ds.Modality = "US"
    assert "Modality US" in medlab.privacy.burned_in_reason(ds)
    ds.BurnedInAnnotation = "NO"
    assert medlab.privacy.burned_in_reason(ds) is None
    ds.Modality, ds.BurnedInAnnotation = "CT", "YES"
    assert "is YES" in medlab.privacy.burned_in_reason(ds)
    del ds.BurnedInAnnotation
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    assert "secondary capture" in medlab.privacy.burned_in_reason(ds)


def test_compressed_ultrasound_blanked_and_stored_uncompressed(tmp_path):
    """US1_J2KR: lossless JPEG 2000 (YBR_RCT), no ultrasound regions: the default band is 10%
    of the rows; the pixels are decoded to RGB, blanked there, and stored uncompressed."""
    path = pydicom.data.get_testdata_file("US1_J2KR.dcm")
    original = pydicom.dcmread(path).pixel_array  # (480, 640, 3) RGB
    s = medlab.privacy.deidentify(path, tmp_path / "out", key=KEY, blank_us_header=True, progress=False)
    assert s.blanked == [(s.files[0][1], 48)]
    ds = pydicom.dcmread(s.files[0][1])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.PhotometricInterpretation == "RGB"
    arr = ds.pixel_array
    assert original[:48].any() and not arr[:48].any()
    np.testing.assert_array_equal(arr[48:], original[48:])


def test_killed_run_leaves_nothing_a_rerun_does_not_remove(inputs, tmp_path):
    # a de-identification killed mid-run (SIGKILL: no clean-up code runs) leaves only medlab's
    # temporary entries beside the output; the next run into the same parent removes them
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import medlab.privacy
        def progress(fraction, message):
            if fraction > 0.3:
                print("mid-run", flush=True)
                import time; time.sleep(60)
        medlab.privacy.deidentify({str(inputs)!r}, {str(tmp_path / 'out')!r}, key={KEY!r},
                                  audit_csv={str(tmp_path / 'audit.csv')!r}, progress=progress)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "mid-run"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "in")
    assert len(left) == 2 and all(".medlab-tmp-" in n for n in left), left  # no `out`, no audit
    medlab.privacy.deidentify(inputs, tmp_path / "out", key=KEY, audit_csv=tmp_path / "audit.csv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.csv", "in", "out"]
