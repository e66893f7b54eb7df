"""The pydicom-free header reader of the folder scan (medlab.io._tags) gives pydicom's values.

The scan reads about twenty values from every file of a folder; medlab.io._tags walks the
element headers with struct instead of pydicom (several times faster on a 4D series) and hands
every file that is not a plain case back to pydicom. Here both readers are compared value by
value on real files (every dcm_qa_nih file, pydicom's test files) and on written files with
implicit VR, nested undefined-length sequences, non-ASCII text and cut-off headers.
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from medlab.io import _scan, _tags
from medlab.io._header import is_dicom_file


_PIXEL_KEYS = {k for _, k, _ in _scan._PIXEL_TABLE} | {"TransferSyntaxUID"}


def _fast(path):
    """The scan's values from medlab's reader, less those that only it reads (see _pixel_format)."""
    out = _tags.read(str(path), _scan._WANTED, _scan._FAST_LAST_TAG, _scan._WANTED_VR)
    return {k: v for k, v in out.items() if k not in _PIXEL_KEYS}


def _slow(path):
    ds = _scan._read_header(str(path))
    out = {k: _scan._value(ds, k) for k in _scan._TAGS if k in ds}
    if "MediaStorageSOPClassUID" in getattr(ds, "file_meta", {}):
        out["MediaStorageSOPClassUID"] = ds.file_meta.MediaStorageSOPClassUID
    return out


def _record(values: dict) -> dict:
    """The values as the scan uses them (same converters for both readers)."""
    out = {}
    for key, x in values.items():
        if key.startswith("raw:") or key in ("SpecificCharacterSet", "DirectoryRecordSequence"):
            continue
        if key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            x = _scan._floats(x, {"PixelSpacing": 2, "ImagePositionPatient": 3}.get(key, 6))
        elif key in ("Rows", "Columns", "NumberOfFrames", "InstanceNumber", "AcquisitionNumber",
                     "TemporalPositionIdentifier", "EchoNumbers", "SeriesNumber"):
            x = _scan._int(x)
        elif key == "AcquisitionTime":
            x = _scan._seconds(x)
        elif key == "TriggerTime":
            x = _scan._float(x)
        elif key == "FrameIncrementPointer":  # AT: pydicom's BaseTag(s), the reader's ints
            x = None if x is None else [int(x)] if isinstance(x, int) else [int(t) for t in x]
        elif key == "ImageType":
            x = [str(t).strip().upper() for t in ([x] if isinstance(x, str) else list(x or []))]
        elif key in ("PatientID", "StudyDescription", "SeriesDescription"):
            x = _scan._decoded(values, key)
        else:
            x = _scan._text(x)
        out[key] = x
    return out


def test_tag_table_matches_pydicom_dictionary():
    assert {k for _, k, _ in _scan._TAG_TABLE} == set(_scan._TAGS)
    for tag, keyword, vr in _scan._TAG_TABLE:
        assert keyword_for_tag(tag) == keyword and dictionary_VR(tag) == vr.decode()
    assert max(t for t, _, _ in _scan._TAG_TABLE) == _scan._LAST_TAG
    for tag, keyword, vr in _scan._PIXEL_TABLE:  # VR None: any (private, or US/SS, or binary FD)
        assert tag >> 16 & 1 or (keyword_for_tag(tag) == keyword and (vr is None or dictionary_VR(tag) == vr.decode()))
    assert _scan._FAST_LAST_TAG == 0x00431039 > _scan._LAST_TAG


def test_pixel_format_equals_pydicom_on_real_files():
    """What the native route (medlab.io._native) decides on is what pydicom reads."""
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _real_files():
            try:
                values = _tags.read(str(path), _scan._WANTED, _scan._FAST_LAST_TAG, _scan._WANTED_VR)
            except _tags.Fallback:
                continue
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            fmt = _scan._pixel_format(values, [])
            slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
            assert fmt[:9] == (
                ds.file_meta.TransferSyntaxUID, ds.get("SamplesPerPixel"), ds.get("PhotometricInterpretation"),
                ds.get("BitsAllocated"), ds.get("BitsStored"), ds.get("HighBit"), ds.get("PixelRepresentation"),
                "PixelPaddingValue" in ds, None if slope is None else float(slope),
            ), path
            assert fmt.rescale_intercept == (None if intercept is None else float(intercept)), path
            assert fmt.manufacturer == (str(ds.get("Manufacturer") or "").strip() or None), path
            b_values = [ds.get(t) for t in (0x0019100C, 0x00431039)]
            assert fmt.diffusion == ("DiffusionBValue" in ds or any(
                e is not None and float(e.value[0] if e.VM > 1 else e.value) != 0 for e in b_values)), path
            checked += 1
    assert checked >= 280  # as test_same_values_as_pydicom_on_real_files


def test_cine_is_known_from_the_scan(tmp_path):
    """A cine file is listed as one plane over time: size (x, y, 1), volumes = frames."""
    import shutil

    shutil.copy(pydicom.data.get_testdata_file("examples_ybr_color.dcm"), tmp_path / "cine.dcm")
    (listed,) = __import__("medlab.io").io.list_series(tmp_path)
    assert listed["size"] == (320, 240, 1) and listed["volumes"] == 30
    assert _fast(tmp_path / "cine.dcm")["FrameIncrementPointer"] == [0x00181063]


def _real_files():
    import medlab.datasets

    folders = [medlab.datasets.load("dcm_qa_nih", case=c).paths["series"] for c in medlab.datasets.cases("dcm_qa_nih")]
    files = [Path(p) for f in folders for p in sorted(glob.glob(os.path.join(f, "*")))[::4]]  # a quarter: time
    base = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
    files += sorted(p for p in base.rglob("*") if p.is_file())
    return [p for p in files if is_dicom_file(p)]


def test_same_values_as_pydicom_on_real_files():
    fast = fallback = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes on its odd test files
        for path in _real_files():
            try:
                mine = _fast(path)
            except _tags.Fallback:
                fallback += 1
                continue
            assert _record(mine) == _record(_slow(path)), path
            fast += 1
    # measured on every file: 758 read without pydicom (all of dcm_qa_nih), 16 handed to pydicom
    # (big endian, deflate, no preamble, UN-encoded values); here a quarter of dcm_qa_nih: 305
    assert fast >= 280 and fallback >= 10


def _write(path, *, implicit=False, nested=True, charset=None, patient="P1"):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.Modality = "MR"
    ds.AcquisitionTime = "101112.5"
    ds.SeriesDescription = "séquence" if charset else "series"
    ds.PatientID = patient
    if nested:  # an undefined-length sequence with an undefined-length item holding another one
        inner = Dataset()
        inner.CodeValue = "X"
        item = Dataset()
        item.ReferencedSOPInstanceUID = "1.2"
        item.ReferencedImageSequence = Sequence([inner])
        ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds.SeriesInstanceUID = "1.2.3"
    ds.InstanceNumber = "7"
    ds.ImagePositionPatient = [1.5, -2.25, 30]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.Rows, ds.Columns = 4, 3
    ds.PixelSpacing = [0.5, 0.75]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.zeros((4, 3), np.uint16).tobytes()
    for elem in ds.iterall():  # undefined lengths, as many scanners write them
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for it in elem.value:
                it.is_undefined_length_sequence_item = True
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


@pytest.mark.parametrize("implicit", [False, True])
def test_written_files_nested_sequences(tmp_path, implicit):
    path = _write(tmp_path / "a.dcm", implicit=implicit)
    mine = _fast(path)
    assert _record(mine) == _record(_slow(path))
    assert _scan._floats(mine["ImagePositionPatient"], 3) == (1.5, -2.25, 30.0) and mine["Rows"] == 4


def test_character_set_is_honoured(tmp_path):
    path = _write(tmp_path / "u.dcm", charset="ISO_IR 192", patient="Ünal")
    mine = _fast(path)
    assert _scan._decoded(mine, "PatientID") == "Ünal" and _scan._decoded(mine, "SeriesDescription") == "séquence"
    assert _record(mine) == _record(_slow(path))


def test_cut_off_header_goes_to_pydicom(tmp_path):
    path = _write(tmp_path / "a.dcm")
    data = path.read_bytes()
    cut = data.index(b"\x20\x00\x32\x00")  # inside the header, before ImagePositionPatient's value
    for n in (cut + 5, cut + 9, 140):
        (tmp_path / "cut.dcm").write_bytes(data[:n])
        with pytest.raises(_tags.Fallback):
            _fast(tmp_path / "cut.dcm")


def test_scan_reads_a_folder_without_pydicom(tmp_path, monkeypatch):
    for i in range(3):
        _write(tmp_path / f"{i}.dcm")

    def refuse(path):
        raise AssertionError(f"pydicom parse of {path}")

    monkeypatch.setattr(_scan, "_read_header", refuse)
    series, count = _scan.scan(str(tmp_path))
    assert count == 3 and len(series) == 1 and len(series[0].files) == 3
    assert series[0].files[0].position == (1.5, -2.25, 30.0) and series[0].series_description == "series"


def _with_group_lengths(path, out, *, wrong=()):
    """``path`` rewritten with a group length element in every group (as GE writes them);
    groups in ``wrong`` get a stale length (4 bytes too many), as an editing tool leaves it."""
    import struct

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = pydicom.dcmread(path)
    ds.add_new(0x00090010, "LO", "VENDOR_X")  # a private group that the scan skips
    ds.add_new(0x00091001, "LO", "private value")
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta)
    data = b"\0" * 128 + b"DICM" + meta.getvalue()
    for group in sorted({e.tag.group for e in ds}):  # pydicom writes no group lengths: by hand
        part = Dataset()
        for elem in ds.group_dataset(group):
            part.add(elem)
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, part)
        body = buf.getvalue()
        length = len(body) + (4 if group in wrong else 0)
        data += struct.pack("<HH2sHI", group, 0, b"UL", 4, length) + body
    Path(out).write_bytes(data)
    return out


@pytest.mark.parametrize("wrong", [(), (0x0008,), (0x0009, 0x0020)])
def test_group_lengths_skip_groups_and_stale_ones_are_walked(tmp_path, monkeypatch, wrong):
    plain = _write(tmp_path / "plain.dcm")
    grouped = _with_group_lengths(plain, tmp_path / "grouped.dcm", wrong=wrong)
    jumps = []
    lands = _tags._lands
    monkeypatch.setattr(_tags, "_lands", lambda f, pos, group: jumps.append(lands(f, pos, group)) or jumps[-1])
    mine = _fast(grouped)
    assert _record(mine) == _record(_slow(grouped)) == _record(_fast(plain))
    assert mine["ImagePositionPatient"] == ["1.5", "-2.25", "30.0"] and mine["PixelSpacing"] == ["0.5", "0.75"]
    if not wrong:
        assert True in jumps  # the private group 0009 (no wanted value) is jumped over
    else:
        assert False in jumps  # a stale length is not followed
