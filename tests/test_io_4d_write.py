"""Writers for 3D and 4D images and label maps: round trip through medlab.io and against nibabel."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.io as mio
from medlab.io._volumes import attach, geometry_4d

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _rotation() -> np.ndarray:
    a, b = np.radians(15.0), np.radians(-8.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


SPACING, ORIGIN = (0.7, 0.8, 2.5), (-10.5, 20.25, -30.125)


def _image(kind: str) -> sitk.Image:
    rng = np.random.default_rng(1)
    if kind == "ct3d":
        img = sitk.GetImageFromArray(rng.integers(-1024, 3000, (5, 6, 7)).astype(np.int16))
    elif kind == "labels3d":
        img = sitk.GetImageFromArray(rng.integers(0, 4, (5, 6, 7)).astype(np.uint8))
    elif kind == "mr4d":
        img = geometry_4d(sitk.GetImageFromArray(rng.integers(0, 4000, (3, 5, 6, 7)).astype(np.int16), isVector=False), SPACING, ORIGIN, _rotation().ravel())
        return attach(img, {"echo_times_ms": [10.0, 20.0, 30.0], "slice_timing_s": [0.0, 0.4, 0.8, 0.2, 0.6]})
    elif kind == "float4d":
        img = geometry_4d(sitk.GetImageFromArray(rng.normal(size=(2, 5, 6, 7)).astype(np.float32), isVector=False), SPACING, ORIGIN, _rotation().ravel())
        return img
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(_rotation().ravel().tolist())
    return img


def _affine_lps(img: sitk.Image) -> np.ndarray:
    dim = img.GetDimension()
    a = np.eye(4)
    a[:3, :3] = np.asarray(img.GetDirection()).reshape(dim, dim)[:3, :3] * np.asarray(img.GetSpacing()[:3])
    a[:3, 3] = img.GetOrigin()[:3]
    return a


KINDS = ("ct3d", "labels3d", "mr4d", "float4d")
EXTS = (".nii", ".nii.gz", ".nrrd", ".mha")


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_values_type_and_geometry(kind, ext, tmp_path):
    img = _image(kind)
    back = mio.read(mio.write(img, tmp_path / f"x{ext}"))
    assert back.GetSize() == img.GetSize() and back.GetPixelID() == img.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(img))
    # NIfTI stores the affine in float32: about 1e-6 relative
    tol = 1e-4 if ext.startswith(".nii") else 1e-9
    np.testing.assert_allclose(_affine_lps(back), _affine_lps(img), atol=tol)
    if img.GetDimension() == 4:
        assert back.GetSpacing()[3] == 1.0 and back.GetOrigin()[3] == 0.0
        assert mio.volume_metadata(back)["volumes"] == img.GetSize()[3]
    if kind == "mr4d" and not ext.startswith(".nii"):  # NRRD and MetaImage keep the per-volume metadata
        assert mio.volume_metadata(back)["echo_times_ms"] == [10.0, 20.0, 30.0]


@pytest.mark.parametrize("kind", KINDS)
def test_nifti_qform_and_sform_are_the_lps_geometry_in_ras(kind, tmp_path):
    nib = pytest.importorskip("nibabel")
    img = _image(kind)
    nii = nib.load(str(mio.write(img, tmp_path / "x.nii.gz")))
    expected = LPS_TO_RAS @ _affine_lps(img)
    assert int(nii.header["sform_code"]) > 0 and int(nii.header["qform_code"]) > 0
    np.testing.assert_allclose(nii.get_sform(), expected, atol=1e-4)
    np.testing.assert_allclose(nii.get_qform(), expected, atol=1e-4)
    data = np.asanyarray(nii.dataobj)
    arr = sitk.GetArrayViewFromImage(img)  # (t, z, y, x) or (z, y, x)
    np.testing.assert_array_equal(data, arr.transpose(tuple(range(arr.ndim))[::-1]))


def test_nibabel_written_nifti_reads_with_the_same_world_positions(tmp_path):
    nib = pytest.importorskip("nibabel")
    img = _image("mr4d")
    arr = sitk.GetArrayFromImage(img)
    affine = LPS_TO_RAS @ _affine_lps(img)
    nib.save(nib.Nifti1Image(arr.transpose(3, 2, 1, 0), affine), str(tmp_path / "n.nii"))
    back = mio.read(tmp_path / "n.nii")
    np.testing.assert_allclose(_affine_lps(back), _affine_lps(img), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), arr)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mio.volume(back, 2)), arr[2])
