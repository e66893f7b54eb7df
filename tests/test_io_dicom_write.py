"""medlab.io.write_dicom_series: CT (HU) and PET (SUV) series that dciodvfy (dicom3tools)
accepts and that medlab.io.read reads back with the same voxels (exact for integer HU, within
half a rescale step otherwise) and the same geometry (within 1e-3 mm)."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import medlab.io as mio
from medlab.errors import ImageIOError
from dicom_validator import dciodvfy_errors


def _geometry_close(a: sitk.Image, b: sitk.Image, tol_mm: float = 1e-3) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol_mm)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol_mm)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    far = [s - 1 for s in a.GetSize()]  # the far corner: direction and spacing errors add up there
    np.testing.assert_allclose(a.TransformIndexToPhysicalPoint(far), b.TransformIndexToPhysicalPoint(far), atol=tol_mm)


@pytest.fixture(scope="module")
def sts():
    from medlab import datasets

    return (datasets.load("sts", case="STS_001", modality="CT", progress=False).image,
            datasets.load("sts", case="STS_001", modality="PET", progress=False).image)


def test_sarcoma_ct_and_pet_round_trip_and_validate(sts, tmp_path):
    ct, pet = sts
    s = mio.write_dicom_series(ct, tmp_path / "ct", modality="CT", patient_id="STS_001", series_description="CT")
    p = mio.write_dicom_series(pet, tmp_path / "pet", modality="PET", patient_id="STS_001",
                               study_uid=s.study_uid, frame_of_reference_uid=s.frame_of_reference_uid)
    assert len(s.files) == ct.GetSize()[2] and len(p.files) == pet.GetSize()[2]
    for f in (s.files[0], s.files[-1], p.files[0], p.files[-1]):
        assert dciodvfy_errors(f) == [], f
    first = pydicom.dcmread(p.files[0])
    assert (first.Modality, first.Units, float(first.RescaleIntercept)) == ("PT", "GML", 0.0)
    assert first.StudyInstanceUID == s.study_uid and first.FrameOfReferenceUID == s.frame_of_reference_uid
    assert first.SeriesInstanceUID == p.series_uid != s.series_uid
    # CT: integer HU are stored as they are: exact
    got = mio.read(s.folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(ct))
    _geometry_close(got, ct)
    # PET: SUV within half of each slice's rescale step
    got = mio.read(p.folder)
    want = sitk.GetArrayFromImage(pet)
    diff = np.abs(sitk.GetArrayFromImage(got) - want).max(axis=(1, 2))
    step = np.abs(want).max(axis=(1, 2)) / 65535
    assert (diff <= step / 2 * 1.0001 + 1e-7).all(), (diff / step).max()
    _geometry_close(got, pet)


def _oblique(values: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(values)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((-120.25, 33.5, -600.125))
    rot = sitk.Euler3DTransform((0, 0, 0), 0.3, -0.2, 0.5)  # an oblique, right-handed frame
    img.SetDirection(rot.GetMatrix())
    return img


def test_oblique_float_ct_within_half_a_step(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(-1024.0, 3071.0, (7, 12, 10)).astype(np.float32)
    img = _oblique(values)
    s = mio.write_dicom_series(img, tmp_path / "ct", modality="CT")
    assert dciodvfy_errors(s.files[3]) == []
    got = mio.read(s.folder)
    _geometry_close(got, img)
    step = (values.max() - values.min()) / 65535
    assert np.abs(sitk.GetArrayFromImage(got) - values).max() <= step / 2 * 1.0001


def test_left_handed_direction_reads_back_as_the_same_physical_image(tmp_path):
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = sitk.GetImageFromArray(values)
    img.SetSpacing((1.0, 1.5, 3.0))
    img.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))  # slices run towards the feet
    got = mio.read(mio.write_dicom_series(img, tmp_path / "ct", modality="CT").folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), values[::-1])
    np.testing.assert_allclose(got.GetOrigin(), img.TransformIndexToPhysicalPoint((0, 0, 3)), atol=1e-3)
    np.testing.assert_allclose(got.GetDirection(), (1, 0, 0, 0, 1, 0, 0, 0, 1), atol=1e-9)


def test_bad_input_is_named_and_nothing_is_half_written(tmp_path, monkeypatch):
    img = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16))
    with pytest.raises(ValueError, match="`modality` must be 'CT' or 'PT'"):
        mio.write_dicom_series(img, tmp_path / "a", modality="MR")
    with pytest.raises(ValueError, match="`image` must be a 3D scalar image"):
        mio.write_dicom_series(sitk.GetImageFromArray(np.zeros((4, 5))), tmp_path / "a", modality="CT")
    bad = sitk.GetImageFromArray(np.full((2, 3, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        mio.write_dicom_series(bad, tmp_path / "a", modality="CT")
    with pytest.raises(ValueError, match="`study_uid` must be a valid DICOM UID"):
        mio.write_dicom_series(img, tmp_path / "a", modality="CT", study_uid="1.2.abc")
    with pytest.raises(ValueError, match="'PixelSpacing' is written from the image"):
        mio.write_dicom_series(img, tmp_path / "a", modality="CT", attributes={"PixelSpacing": [1, 1]})
    with pytest.raises(ValueError, match="'PatientWieght' is not a DICOM keyword"):
        mio.write_dicom_series(img, tmp_path / "a", modality="CT", attributes={"PatientWieght": 70})
    with pytest.raises(ImageIOError, match="does not exist"):
        mio.write_dicom_series(img, tmp_path / "no" / "a", modality="CT")
    first = mio.write_dicom_series(img, tmp_path / "a", modality="CT", attributes={"PatientWeight": 70.0})
    assert pydicom.dcmread(first.files[0]).PatientWeight == 70.0
    with pytest.raises(ImageIOError, match="not an empty folder; pass overwrite=True"):
        mio.write_dicom_series(img, tmp_path / "a", modality="CT")
    # a failure in the middle of a write: the old series stays whole, no temporary folder
    calls = {"n": 0}
    save = pydicom.Dataset.save_as

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.Dataset, "save_as", failing)
    with pytest.raises(OSError, match="disk full"):
        mio.write_dicom_series(img, tmp_path / "a", modality="CT", overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["a"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f.name for f in first.files]
    assert pydicom.dcmread(first.files[0]).SeriesInstanceUID == first.series_uid
    again = mio.write_dicom_series(img, tmp_path / "a", modality="CT", overwrite=True)
    assert pydicom.dcmread(again.files[0]).SeriesInstanceUID == again.series_uid != first.series_uid
    assert sorted(os.listdir(tmp_path)) == ["a"]
