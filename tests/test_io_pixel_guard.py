"""The pixel-data guard (medlab.io._scan.check_pixel_data): a series file whose pixel data cannot
hold its image is named, before any converter reads it (dcm2niix reads some such files without a
word), on every multi-file route: dcm2niix (4D, 3D MR) and GDCM (3D CT)."""

from __future__ import annotations

import os
import struct
import warnings

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

import medlab.io as mio
from medlab.errors import ImageIOError
from medlab.io import _scan, _series, _tags

from test_io_native import _write

pytestmark = pytest.mark.filterwarnings("ignore:.*Missing GE protocol data block")


def _read(folder):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return mio.read(folder)


def _cut(path, n=100):
    path.write_bytes(path.read_bytes()[:-n])


def _cut_declared_too(path, n=100):
    """Cut ``n`` bytes of pixels and lower the declared Pixel Data length to match: a file
    consistent in itself, one slice short of its image."""
    data = bytearray(path.read_bytes())
    at = data.rindex(b"\xe0\x7f\x10\x00OW\0\0")
    (length,) = struct.unpack_from("<I", data, at + 8)
    struct.pack_into("<I", data, at + 8, length - n)
    path.write_bytes(bytes(data[:-n]))


def _philips(ds, v, k):
    ds.Manufacturer = "Philips Medical Systems"


def _ge_diffusion(ds, v, k):
    ds.add_new(0x00431039, "IS", ["1000", "0", "0", "0"])  # GE's b-value: the native route declines


SERIES = {
    "Philips 4D (dcm2niix)": dict(change=_philips),
    "GE 4D with b-values (dcm2niix)": dict(change=_ge_diffusion),
    "3D MR (dcm2niix)": dict(volumes=1, slices=5),
    "3D CT (GDCM)": dict(volumes=1, slices=5, change=lambda ds, v, k: setattr(ds, "Modality", "CT")),
}


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("how", ["cut", "declared length cut too"])
def test_a_short_file_is_named(tmp_path, series, how):
    folder = _write(tmp_path / "s", **SERIES[series])
    victim = sorted(folder.glob("*.dcm"))[3]
    (_cut if how == "cut" else _cut_declared_too)(victim)
    want = "declares 8192 bytes but the file holds 8092" if how == "cut" else "holds 8092 bytes.* = 8192 expected"
    with pytest.raises(ImageIOError, match=f"{victim.name}: .*{want}.*truncated or corrupt") as err:
        _read(folder)
    assert err.value.path == str(victim)


def test_without_the_guard_gdcm_reads_a_consistently_cut_file_silently(tmp_path, monkeypatch):
    """Why the guard exists: GDCM reads a CT slice cut with its declared length without a word."""
    folder = _write(tmp_path / "s", **SERIES["3D CT (GDCM)"])
    _cut_declared_too(sorted(folder.glob("*.dcm"))[3])
    monkeypatch.setattr(_scan, "check_pixel_data", lambda files: None)
    monkeypatch.setattr(_series, "_pixel_data_plain", lambda files, first: True)
    assert _read(folder).GetSize() == (64, 64, 5)  # read, one slice's pixels wrong


def test_undefined_length_of_uncompressed_pixels_is_named(tmp_path):
    folder = _write(tmp_path / "s", change=_philips)
    victim = sorted(folder.glob("*.dcm"))[2]
    data = bytearray(victim.read_bytes())
    at = data.rindex(b"\xe0\x7f\x10\x00OW\0\0")
    struct.pack_into("<I", data, at + 8, 0xFFFFFFFF)
    victim.write_bytes(bytes(data))
    with pytest.raises(ImageIOError, match=f"{victim.name}: ") as err:
        _read(folder)
    assert err.value.path == str(victim)


def test_an_encapsulated_fragment_past_the_end_is_named(tmp_path):
    def rle(ds, v, k):
        _philips(ds, v, k)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(RLELossless)

    folder = _write(tmp_path / "s", change=rle)
    files = sorted(folder.glob("*.dcm"))
    info = _scan.scan(str(folder))[0][0].files
    assert all(f.pixel_data[1] == -1 and f.pixel_data[3] is None for f in info)  # encapsulated, whole
    _cut(files[4], 30)
    with pytest.raises(ImageIOError, match=f"{files[4].name}: the encapsulated fragment of .* runs past the end"):
        _read(folder)


PYDICOM_FILES = ["MR_small.dcm", "CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "rtdose.dcm", "SC_rgb.dcm",
                 "OBXXXX1A.dcm", "MR_small_implicit.dcm", "emri_small.dcm", "liver.dcm"]


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pixel_data_offset_and_length_equal_pydicoms(name):
    path = get_testdata_file(name)
    try:
        values = _tags.read(path, _scan._WANTED, _scan._FAST_LAST_TAG, _scan._WANTED_VR, pixel_data=True)
    except _tags.Fallback:
        pytest.skip("a file medlab's reader leaves to pydicom")
    with open(path, "rb") as fh:  # pydicom's own element walk: where the pixel data's value starts
        pydicom.filereader.read_preamble(fh, False)
        meta = pydicom.filereader._read_file_meta_info(fh)
        implicit = meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
        raw = next(e for e in pydicom.filereader.data_element_generator(fh, implicit, True, defer_size=16)
                   if e.tag == 0x7FE00010)
    start, length, size, problem = values["PixelData"]
    assert size == os.path.getsize(path) and problem is None
    assert start == raw.value_tell
    assert length == (-1 if raw.length == 0xFFFFFFFF else raw.length)


def test_real_series_pass_without_pydicom(monkeypatch):
    """Every file of the real dcm_qa_nih series (GE classic, Siemens mosaic) has its pixel data
    located by the scan and passes, with no pydicom parse."""
    root = os.path.join(os.environ.get("MEDLAB_DATA_STORE", ""), "dcm_qa_nih", "In")
    if not os.path.isdir(root):
        pytest.skip("dcm_qa_nih not in the data store")

    def no_pydicom(f):
        raise AssertionError(f"{f.path}: parsed by pydicom")

    monkeypatch.setattr(_scan, "_pixel_data_problem_pydicom", no_pydicom)
    series = _scan.scan(root)[0]
    files = [f for s in series for f in s.files]
    assert len(files) >= 600
    _scan.check_pixel_data(files)
    assert all(f.pixel_data[3] is None and f.pixel_data[1] >= 2 * f.rows * f.columns for f in files)
