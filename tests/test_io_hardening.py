"""Corrupt input is refused, named: header checks before ITK, geometry checks after, pair writes.

Each case is a real file (written here by SimpleITK, or pydicom's CT_small) with one field
corrupted the way the reader fuzz run (benchmarks/fuzz_readers.py) found silently wrong images,
crashes or hangs: the read must raise ImageIOError naming the path and the field.
"""

from __future__ import annotations

import gzip
import os
import signal
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.io as mio
from medlab._atomic import is_temporary
from medlab.errors import ImageIOError


def _image(value=0.0) -> sitk.Image:
    arr = np.arange(4 * 5 * 6, dtype=np.float64).reshape(4, 5, 6) + value
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.75, 2.0))
    img.SetOrigin((1.0, -2.0, 3.5))
    return img


def _refused(path, match, **kwargs) -> ImageIOError:
    with pytest.raises(ImageIOError, match=match) as info:
        mio.read(path, **kwargs)
    assert str(path) in str(info.value)
    return info.value


def _edit_text_header(path: Path, old: str, new: str) -> None:
    data = path.read_bytes()
    assert old.encode() in data, (old, data[:400])
    path.write_bytes(data.replace(old.encode(), new.encode(), 1))


# ---------------------------------------------------------------- NIfTI


def _nifti(tmp_path, name="x.nii") -> Path:
    path = tmp_path / name
    sitk.WriteImage(_image(), str(path))
    return path


def _patch_nifti(path: Path, offset: int, fmt: str, value) -> None:
    gz = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if gz else path.read_bytes())
    struct.pack_into("<" + fmt, data, offset, value)
    path.write_bytes(gzip.compress(bytes(data)) if gz else bytes(data))


@pytest.mark.parametrize("name", ["x.nii", "x.nii.gz"])
def test_nifti_shorter_than_declared_is_refused(tmp_path, name):
    path = _nifti(tmp_path, name)
    assert mio.read(path).GetSize() == (6, 5, 4)
    data = path.read_bytes()
    if name.endswith(".gz"):  # truncated gzip stream: SimpleITK alone zero-fills the rest
        path.write_bytes(data[: len(data) // 2])
        _refused(path, "compressed data end before the NIfTI header is complete")
        path.write_bytes(data[:-9])  # the last block and the gzip trailer (CRC, length)
        _refused(path, "compressed data end before the 1312 bytes")
    else:
        path.write_bytes(data[:-8])  # 352 + 120 doubles = 1312 bytes declared
        _refused(path, "holds 1304 bytes; the header declares 1312")


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "match"),
    [
        (80, "f", 0.0, r"pixdim\[1\.\.3\] \(voxel size\) must be finite and positive"),  # pixdim[1]
        (84, "f", float("nan"), r"pixdim\[1\.\.3\]"),
        (42, "h", 7, r"holds 1312 bytes; the header declares 1472"),  # dim[1] 6 -> 7 (enlarged)
        (40, "h", -1, r"dim\[0\] \(number of dimensions\) must be 1 to 7; got -1"),
        (70, "h", 99, r"datatype 99 is not a NIfTI data type"),
        (268, "f", float("inf"), r"quatern_b/c/d, qoffset_x/y/z must be finite"),
    ],
)
def test_nifti_header_fields_are_checked(tmp_path, offset, fmt, value, match):
    path = _nifti(tmp_path)
    _patch_nifti(path, offset, fmt, value)
    _refused(path, match)


# ---------------------------------------------------------------- MetaImage


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("NDims = 3", "NDims = -1", "NDims must be 1 to 5; got -1"),  # ITK hangs at 100 % CPU
        ("NDims = 3", "NDims = 99", "NDims must be 1 to 5; got 99"),  # ITK crashes (SIGSEGV)
        ("DimSize = 6 5 4", "DimSize = 6 5 9", "the data hold 960 bytes; the header declares 2160"),
        ("DimSize = 6 5 4", "DimSize = 6 0 4", "DimSize must hold 3 positive integers"),
        ("ElementSpacing = 0.5", "ElementSpacing = nan", "ElementSpacing must be finite and positive; got 'nan'"),
        ("ElementSpacing = 0.5", "ElementSpacing = 0", "ElementSpacing must be finite and positive"),
        ("Offset = 1", "Offset = inf", "offset must be finite"),
        ("ElementType = MET_DOUBLE", "ElementType = MET_FOO", "ElementType 'MET_FOO' is not one of"),
        ("DimSize = 6 5 4", "DimSize = 100000 100000 100000", r"above the limit .*max_bytes="),
    ],
)
def test_metaimage_header_checked_before_itk(tmp_path, old, new, match):
    path = tmp_path / "x.mha"
    sitk.WriteImage(_image(), str(path))
    _edit_text_header(path, old, new)
    _refused(path, match)


def test_compressed_metaimage_with_corrupt_data_is_refused(tmp_path):
    """A flipped byte inside the zlib stream: ITK returned wrong values (up to 9e8 for 25)."""
    path = tmp_path / "x.mha"
    sitk.WriteImage(_image(), str(path), useCompression=True)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x55
    path.write_bytes(bytes(data))
    _refused(path, "compressed data are corrupt|compressed data end|compressed data hold")


def test_mhd_without_its_data_file_says_so(tmp_path):
    path = tmp_path / "x.mhd"
    sitk.WriteImage(_image(), str(path), useCompression=False)
    (tmp_path / "x.raw").unlink()
    _refused(path, r"the data file named by ElementDataFile \('x.raw'\) does not exist")


def test_max_bytes_keyword_and_module_setting(tmp_path, monkeypatch):
    path = tmp_path / "x.mha"
    sitk.WriteImage(_image(), str(path))
    assert mio.read(path).GetSize() == (6, 5, 4)  # 960 bytes, default limit
    _refused(path, r"declares .* MiB of voxel data, above the limit", max_bytes=959)
    assert mio.read(path, max_bytes=960).GetSize() == (6, 5, 4)
    monkeypatch.setattr(mio, "MAX_BYTES", 100)
    _refused(path, "above the limit")
    with pytest.raises(ValueError, match="`max_bytes` must be a positive int"):
        mio.read(path, max_bytes=-1)


# ---------------------------------------------------------------- NRRD


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("dimension: 3", "dimension: 99", "'dimension' must be 1 to 5; got 99"),
        ("sizes: 6 5 4", "sizes: 6 5 8", "the data hold 960 bytes; the header declares 1920"),
        ("space origin: (1,", "space origin: (nan,", "space origin must be finite"),
        ("space directions: (0.5,", "space directions: (inf,", "space directions must be finite"),
        ("type: double", "type: quaternion", "'type' 'quaternion' is not a NRRD scalar type"),
        ("space directions: (0.5,0,0) (0,0.75,0) (0,0,2)\n", "spacings: nan 0.75 2\n",
         "spacings must be finite and positive; got 'nan'"),
    ],
)
def test_nrrd_header_checked_before_itk(tmp_path, old, new, match):
    path = tmp_path / "x.nrrd"
    sitk.WriteImage(_image(), str(path), useCompression=False)
    _edit_text_header(path, old, new)
    _refused(path, match)


def test_truncated_gzip_nrrd_is_refused(tmp_path):
    path = tmp_path / "x.nrrd"
    sitk.WriteImage(_image(), str(path), useCompression=True)
    data = path.read_bytes()
    path.write_bytes(data[:-12])
    _refused(path, "compressed data end early")


def test_geometry_outside_the_physical_range_is_refused(tmp_path):
    path = tmp_path / "x.nrrd"
    img = _image()
    img.SetSpacing((1e-8, 1.0, 1.0))
    sitk.WriteImage(img, str(path))
    _refused(path, r"spacing must lie in \[1e-06, 100000\] mm")
    path = tmp_path / "x.mha"
    sitk.WriteImage(_image(), str(path))
    _edit_text_header(path, "TransformMatrix = 1 0 0 0 1 0", "TransformMatrix = 1 0 0 0 2 0")
    _refused(path, r"TransformMatrix must be a direction matrix \(unit columns, far from singular\); got 1 0 0 0 2 0 0 0 1")
    # ITK's reader loops forever on this one (its SVD does not converge): refused before it.
    sitk.WriteImage(_image(), str(path))
    _edit_text_header(path, "TransformMatrix = 1 0 0 0 1 0 0 0 1", "TransformMatrix = 1 0 0 0 1 0 1e308 0 1")
    _refused(path, "TransformMatrix must be a direction matrix")
    # The same check after every read (the backstop for what no header check saw).
    from medlab.io._guard import check_geometry

    img = _image()
    img.SetDirection((1, 0, 0, 0, 1, 0, 0, 0.2, 0.02))  # last column of norm 0.2
    with pytest.raises(ImageIOError, match="direction must have unit columns"):
        check_geometry(img, "mem")


# ---------------------------------------------------------------- DICOM


def _ct(tmp_path, **changes) -> Path:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom: 'NaN' is not a valid DS
        for key, value in changes.items():
            setattr(ds, key, value)
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    return path


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"RescaleSlope": "1e300"}, "map the stored values outside the float32 range"),
        ({"RescaleSlope": "NaN"}, "RescaleSlope must be finite"),
        ({"RescaleIntercept": "inf"}, "RescaleIntercept must be finite"),
        ({"PixelSpacing": ["0", "0.66"]}, r"PixelSpacing must be finite and in \[1e-06, 100000\] mm"),
        ({"PixelSpacing": ["1e-9", "1e-9"]}, "PixelSpacing must be finite and in"),
        ({"PixelSpacing": ["2e5", "1"]}, "PixelSpacing must be finite and in"),
        ({"SamplesPerPixel": 5}, "SamplesPerPixel must be 1 or 3; got 5"),
        ({"Rows": 129}, "PixelData holds 32768 bytes.*declare 33024"),
    ],
)
def test_dicom_fields_are_checked(tmp_path, changes, match):
    path = _ct(tmp_path, **changes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns about NaN/inf DS values
        _refused(path, match)


def test_dicom_rescale_beyond_int64_is_computed_in_floating_point(tmp_path):
    """An integral slope of 2**50: int64 arithmetic overflowed silently for stored values > 8191."""
    plain = sitk.GetArrayFromImage(mio.read(_ct(tmp_path))).astype(np.float64)  # HU, slope 1
    img = mio.read(_ct(tmp_path, RescaleSlope=str(2**50), RescaleIntercept="0"))
    got = sitk.GetArrayFromImage(img)
    assert got.dtype == np.float32
    stored = plain + 1024  # CT_small: intercept -1024
    np.testing.assert_allclose(got, stored * 2.0**50, rtol=1e-6)


def test_dicom_excess_pixel_data_is_ignored_with_a_warning(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = ds.PixelData + bytes(2 * 128 * 128 * 4)
    path = tmp_path / "excess.dcm"
    ds.save_as(path)
    with pytest.warns(mio.DicomWarning, match="131072 more than"):
        img = mio.read(path)
    assert img.GetSize() == (128, 128) and img.GetNumberOfComponentsPerPixel() == 1


def test_itk_reason_drops_build_paths_and_false_missing_file(tmp_path):
    from medlab.io._common import itk_reason

    path = tmp_path / "x.mha"
    path.write_bytes(b"x")
    exc = RuntimeError(
        "Exception thrown in SimpleITK ImageFileReader_Execute: /work/sitk-build/ITK/Modules/IO/Meta/src/"
        "itkMetaImageIO.cxx:341:\nITK ERROR: MetaImageIO(0x55d0c0): File cannot be read: x.mha for reading.\n"
        "Reason: No such file or directory"
    )
    reason = itk_reason(exc, str(path))
    assert "/work/sitk-build" not in reason and ".cxx" not in reason and "0x55" not in reason
    assert "No such file" not in reason
    assert reason.startswith("the file exists but its header or data cannot be parsed")


# ---------------------------------------------------------------- writes as one unit

_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, SimpleITK as sitk
    import medlab.io as mio
    target, when = sys.argv[1], sys.argv[2]
    img = sitk.GetImageFromArray(np.full((4, 5, 6), 7.0))
    real_replace, real_remove = os.replace, os.remove
    def replace(src, dst, *a, **k):
        if when == "before_header" and str(dst).endswith((".mhd", ".nhdr")):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **k)
    def remove(p, *a, **k):
        if when == "before_old_data_removed":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_remove(p, *a, **k)
    os.replace, os.remove = replace, remove
    mio.write(img, target, overwrite=True, compress=False)
    """
)


@pytest.mark.parametrize("ext", [".mhd", ".nhdr"])
@pytest.mark.parametrize("when", ["before_header", "before_old_data_removed"])
def test_pair_overwrite_killed_leaves_one_consistent_pair(tmp_path, ext, when):
    target = tmp_path / f"x{ext}"
    mio.write(_image(), target, compress=False)
    old = sitk.GetArrayFromImage(mio.read(target))
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(target), when], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    got = sitk.GetArrayFromImage(mio.read(target))
    if when == "before_header":  # old header, old data
        np.testing.assert_array_equal(got, old)
    else:  # new header, new data
        np.testing.assert_array_equal(got, np.full((4, 5, 6), 7.0))
    left = sorted(os.listdir(tmp_path))
    assert any(is_temporary(n) for n in left)  # the killed writer's scratch folder ...
    mio.write(_image(3.0), target, overwrite=True, compress=False)  # ... and orphans go at the next write
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mio.read(target)), old + 3.0)
    left = sorted(os.listdir(tmp_path))
    assert not any(is_temporary(n) for n in left), left
    assert len(left) == 2, left  # one header, one data file


def test_pair_overwrite_replaces_the_data_file(tmp_path):
    target = tmp_path / "x.mhd"
    mio.write(_image(), target, compress=False)
    assert sorted(os.listdir(tmp_path)) == ["x.mhd", "x.raw"]  # a fresh pair keeps ITK's names
    for value in (1.0, 2.0):
        mio.write(_image(value), target, overwrite=True, compress=True)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mio.read(target)), sitk.GetArrayFromImage(_image(value)))
        names = sorted(os.listdir(tmp_path), key=lambda n: n != "x.mhd")
        assert len(names) == 2 and names[0] == "x.mhd" and names[1].endswith(".zraw"), names
    with pytest.raises(ImageIOError, match="file exists"):
        mio.write(_image(), target)


def test_dicom_folder_memory_bound(tmp_path):
    """The series' declared voxels (x 8 bytes) are bounded before any slice is decoded."""
    import medlab.datasets

    files = sorted(medlab.datasets.load("dcm_qa_nih", case="20180918GE/mr_0004").paths["series"].glob("*.dcm"))[:3]
    folder = tmp_path / "series"
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    err = _refused(folder, r"declare \d+ voxels .* above the limit", max_bytes=1000)
    assert "max_bytes=" in err.reason


def test_all_zero_pixel_spacing_means_unknown_not_invalid(tmp_path):
    # scanners write 0\0 for an unknown spacing (pydicom-data's chest CR RG1_UNCI.dcm does): it
    # counts as not given (no calibration: 1.0, as for an absent attribute); one zero is refused
    import medlab.io

    with pytest.warns(medlab.io.DicomWarning, match=r"PixelSpacing is 0\\0 \(unknown\).*not mm"):
        img = medlab.io.read(_ct(tmp_path, PixelSpacing=["0", "0"]))
    assert img.GetSpacing() == (1.0, 1.0)
    meta = medlab.io.metadata(_ct(tmp_path, PixelSpacing=["0", "0"]), identifying=False)
    assert not meta.get("pixel_spacing_mm") or min(meta["pixel_spacing_mm"]) == 0


def test_memory_bound_covers_a_plain_ct_folder(tmp_path, monkeypatch):
    # a flat folder of one non-MR series takes GDCM's fast path: the bound holds there too
    import pydicom

    import medlab.io

    folder = tmp_path / "ct"
    folder.mkdir()
    for i in range(3):
        ds = pydicom.dcmread(_ct(tmp_path))
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{i}"
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"{i}.dcm")
    from medlab.io import _series

    def no_full_scan(*args, **kwargs):
        raise AssertionError("the fast path should have read this folder")

    monkeypatch.setattr(_series, "select_series", no_full_scan)
    assert medlab.io.read(folder).GetSize()[2] == 3
    with pytest.raises(ImageIOError, match=r"declare \d+ voxels .* above the limit"):
        medlab.io.read(folder, max_bytes=1000)
