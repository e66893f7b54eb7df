"""medlab.io.write: round trips per format, atomicity, overwrite protection."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.io as mio
from medlab.errors import ImageIOError


def _volume(dtype=np.float32) -> sitk.Image:
    rng = np.random.default_rng(1)
    arr = (rng.normal(size=(5, 6, 7)) * 100).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.75, 2.5))
    img.SetOrigin((-10.0, 20.5, 3.25))
    c, s = np.cos(0.3), np.sin(0.3)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def _state(img: sitk.Image):
    return (sitk.GetArrayFromImage(img).tobytes(), img.GetSpacing(), img.GetOrigin(), img.GetDirection())


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_keeps_geometry_and_values(tmp_path, ext, compress):
    img = _volume()
    before = _state(img)
    out = mio.write(img, tmp_path / f"vol{ext}", compress=compress)
    assert out == tmp_path / f"vol{ext}"
    back = mio.read(out)
    assert _state(img) == before  # the input is never modified
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    tol = 1e-5 if ext.startswith(".nii") else 1e-12  # NIfTI stores geometry as float32
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=tol)
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=tol)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=tol)
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".medlab-write-") or ".medlab-tmp-" in n]
    assert leftovers == []


def test_round_trip_int16_label_and_numpy_input(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 5
    mio.write(arr, tmp_path / "a.nii.gz")
    back = mio.read(tmp_path / "a.nii.gz")
    assert back.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), arr)


@pytest.mark.parametrize(
    ("ext", "dtype", "components", "max_diff"),
    [
        (".png", np.uint8, 1, 0),
        (".png", np.uint16, 1, 0),
        (".png", np.uint8, 3, 0),
        (".tif", np.uint16, 1, 0),
        (".tiff", np.float32, 1, 0),
        (".jpg", np.uint8, 1, 40),  # lossy
    ],
)
def test_round_trip_2d_formats(tmp_path, ext, dtype, components, max_diff):
    yy, xx = np.mgrid[0:32, 0:48]
    ramp = (xx * 5 + yy * 2).astype(dtype)  # smooth, so JPEG error stays small
    arr = np.stack([ramp, ramp[::-1], ramp[:, ::-1]], axis=-1) if components == 3 else ramp
    img = sitk.GetImageFromArray(arr, isVector=components == 3)
    img.SetSpacing((0.3, 0.7))
    mio.write(img, tmp_path / f"x{ext}")
    back = mio.read(tmp_path / f"x{ext}")
    assert back.GetSize() == (48, 32)
    np.testing.assert_allclose(back.GetSpacing(), (0.3, 0.7), rtol=0.02)  # kept as a resolution
    assert back.GetNumberOfComponentsPerPixel() == components
    got = sitk.GetArrayFromImage(back).astype(np.float64)
    diff = np.abs(got - arr)
    assert diff.max() <= max_diff
    if max_diff:
        assert diff.mean() < 3


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "a.mha"
    mio.write(_volume(), path)
    first = path.read_bytes()
    with pytest.raises(ImageIOError, match="file exists; pass overwrite=True") as info:
        mio.write(_volume(np.int16), path)
    assert info.value.path == str(path)
    assert path.read_bytes() == first
    mio.write(_volume(np.int16), path, overwrite=True)
    assert mio.read(path).GetPixelID() == sitk.sitkInt16


def test_mhd_data_file_is_not_clobbered(tmp_path):
    (tmp_path / "a.zraw").write_bytes(b"someone else's data")
    with pytest.raises(ImageIOError, match="data file of a.mhd"):
        mio.write(_volume(), tmp_path / "a.mhd")
    assert (tmp_path / "a.zraw").read_bytes() == b"someone else's data"
    assert sorted(os.listdir(tmp_path)) == ["a.zraw"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def broken_writer(image, filename, useCompression=False):
        with open(filename, "wb") as fh:  # a partial file, then the writer dies
            fh.write(b"\x00" * 100)
        raise RuntimeError("sitk::ERROR: disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken_writer)
    with pytest.raises(ImageIOError, match="disk full") as info:
        mio.write(_volume(), tmp_path / "a.nii.gz")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert os.listdir(tmp_path) == []


def test_atomic_overwrite_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "a.nrrd"
    mio.write(_volume(), path)
    old = path.read_bytes()

    def interrupted(image, filename, useCompression=False):
        open(filename, "wb").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(sitk, "WriteImage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mio.write(_volume(), path, overwrite=True)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["a.nrrd"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="medlab.io.write_dicom_series writes a series folder"):
        mio.write(_volume(), tmp_path / "a.dcm")
    with pytest.raises(ValueError, match="must end with one of"):
        mio.write(_volume(), tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="must end with one of"):
        mio.write(sitk.Image(4, 4, sitk.sitkUInt8), tmp_path / "a.bmp")
    with pytest.raises(ValueError, match="cannot be written as PNG"):
        mio.write(sitk.Image(4, 4, sitk.sitkFloat32), tmp_path / "a.png")
    with pytest.raises(ValueError, match="must be 2D to be written as JPG"):
        mio.write(sitk.Image(4, 4, 2, sitk.sitkUInt8), tmp_path / "a.jpg")
    with pytest.raises(ImageIOError, match="does not exist"):
        mio.write(_volume(), tmp_path / "missing" / "a.nii")
    assert os.listdir(tmp_path) == []
