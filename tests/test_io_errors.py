"""Bad input to medlab.io: a clear ImageIOError naming the path and the reason, never a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

import medlab.io as mio
from medlab.errors import ImageIOError

CT_SMALL = get_testdata_file("CT_small.dcm")


def _raises_naming(path, match: str, func=mio.read, **kwargs):
    with pytest.raises(ImageIOError, match=match) as info:
        func(path, **kwargs)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_truncated_dicom(tmp_path):
    data = Path(CT_SMALL).read_bytes()
    path = tmp_path / "truncated.dcm"
    path.write_bytes(data[: len(data) // 2])
    # Refused before decoding: the PixelData length (13303 bytes) is checked against the header.
    err = _raises_naming(path, "PixelData holds 13303 bytes.* declare 32768")
    assert err.__cause__ is None


def test_random_bytes_with_dcm_extension(tmp_path):
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _raises_naming(path, "not a DICOM file")


def test_text_file_named_nifti(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_text("this is not an image\n")
    _raises_naming(path, r"cannot decompress the NIfTI header: Not a gzipped file")
    plain = tmp_path / "notes.nii"
    plain.write_text("this is not an image\n")
    _raises_naming(plain, r"shorter \(21 bytes\) than a NIfTI header")


def test_empty_files(tmp_path):
    for name in ("empty.dcm", "empty.nii", "empty.png"):
        (tmp_path / name).write_bytes(b"")
        _raises_naming(tmp_path / name, "empty file")


def test_empty_folder(tmp_path):
    _raises_naming(tmp_path, "no DICOM image series")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    _raises_naming(tmp_path, r"no DICOM image series in this folder \(1 files\)")


def test_missing_path(tmp_path):
    _raises_naming(tmp_path / "nope.dcm", "no such file or folder")
    _raises_naming(tmp_path / "nope", "no such file or folder", func=mio.metadata)


def test_dicom_without_pixels():
    path = get_testdata_file("rtplan.dcm")
    _raises_naming(path, "no pixel data")


def test_unknown_extension_that_is_not_dicom(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    _raises_naming(path, r"not a DICOM file.*\.nii")


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'suv'"):
        mio.read(CT_SMALL, pet_units="suvbw")
    with pytest.raises(ValueError, match="`series_uid` selects a series in a folder"):
        mio.read(CT_SMALL, series_uid="1.2.3")
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike"):
        mio.read(42)


# --------------------------------------------------------------------------- several series


def _make_series(folder, uid: str, description: str, n: int) -> None:
    """``n`` slices of CT_small 5 mm apart, in a new series."""
    for i in range(n):
        ds = pydicom.dcmread(CT_SMALL)
        ds.SeriesInstanceUID = uid
        ds.SeriesDescription = description
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImagePositionPatient = [-158.135803, -179.035797, -75.699997 + 5.0 * i]
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"{description}_{i}.dcm")


@pytest.fixture
def two_series(tmp_path):
    uid_a, uid_b = generate_uid(), generate_uid()
    _make_series(tmp_path, uid_a, "first", 3)
    _make_series(tmp_path, uid_b, "second", 2)
    return tmp_path, uid_a, uid_b


def test_two_series_are_listed_then_chosen(two_series):
    folder, uid_a, uid_b = two_series
    err = _raises_naming(folder, "2 DICOM series")
    for uid, description, n in ((uid_a, "first", 3), (uid_b, "second", 2)):
        assert f"series_uid={uid!r}: CT, {description!r}, {n} files" in err.reason
    a = mio.read(folder, series_uid=uid_a)
    b = mio.read(folder, series_uid=uid_b)
    assert a.GetSize() == (128, 128, 3) and b.GetSize() == (128, 128, 2)
    np.testing.assert_allclose(a.GetSpacing()[2], 5.0, atol=1e-4)
    listed = {s["series_instance_uid"]: s for s in mio.list_series(folder)}
    assert listed[uid_a]["number_of_files"] == 3 and listed[uid_b]["series_description"] == "second"
    assert mio.metadata(folder, series_uid=uid_b, identifying=True)["series_description"] == "second"
    assert "series_description" not in mio.metadata(folder, series_uid=uid_b)  # free text: private by default


def test_unknown_series_uid_lists_what_is_there(two_series):
    folder, uid_a, uid_b = two_series
    err = _raises_naming(folder, "no series with SeriesInstanceUID '9.9'", series_uid="9.9")
    assert uid_a in err.reason and uid_b in err.reason


def test_non_image_files_beside_a_series_are_ignored(two_series, tmp_path_factory):
    folder, uid_a, _ = two_series
    only = tmp_path_factory.mktemp("one")
    for f in folder.glob("first_*.dcm"):
        shutil.copy(f, only)
    shutil.copy(get_testdata_file("rtplan.dcm"), only)  # DICOM without pixels
    (only / "README.txt").write_text("notes")
    assert mio.read(only).GetSize() == (128, 128, 3)


def test_missing_slice_warns(tmp_path):
    _make_series(tmp_path, generate_uid(), "s", 4)
    (tmp_path / "s_1.dcm").unlink()
    with pytest.warns(UserWarning, match="not uniformly spaced") as record:
        img = mio.read(tmp_path)
    assert img.GetSize()[2] == 3
    assert record[0].filename == __file__  # points at the caller


def test_slices_of_different_sizes(tmp_path):
    uid = generate_uid()
    _make_series(tmp_path, uid, "s", 2)
    ds = pydicom.dcmread(tmp_path / "s_1.dcm")
    ds.PixelData = ds.pixel_array[:64, :64].tobytes()
    ds.Rows = ds.Columns = 64
    ds.save_as(tmp_path / "s_1.dcm")
    err = _raises_naming(tmp_path, "different image sizes")
    assert "size 64x64: 1 file(s)" in err.reason and str(tmp_path / "s_1.dcm") in err.reason


def test_itk_reason_is_short():
    from medlab.io._common import itk_reason

    try:
        sitk.ReadImage("/definitely/not/here.nii")
    except RuntimeError as exc:
        assert itk_reason(exc) == 'The file "/definitely/not/here.nii" does not exist.'
