"""medlab.io.metadata and PET SUV (suv_factor, read(..., pet_units=...))."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

import medlab.io as mio
from medlab.errors import ImageIOError

CT_SMALL = get_testdata_file("CT_small.dcm")

# Hand computation for the reference case used below:
#   weight 70 kg = 70000 g, dose 370 MBq = 370e6 Bq, F-18 half-life 6586.2 s, 60 min delay
#   decay = 2 ** (-3600 / 6586.2) = 0.684632920
#   factor = 70000 / (370e6 * 0.684632920) = 70000 / 253314180.2 = 2.76336682e-4 g/Bq
SUV_60MIN = 2.76336682e-4
# ADMIN (no decay): 70000 / 370e6 = 1.89189189e-4
SUV_ADMIN = 1.89189189e-4
# 90 min: decay = 2 ** (-5400 / 6586.2) = 0.566482720 -> 70000 / (370e6 * 0.566482720)
SUV_90MIN = 3.33971686e-4


# --------------------------------------------------------------------------- metadata


def test_metadata_of_ct_small():
    meta = mio.metadata(CT_SMALL, identifying=True)
    assert set(meta) == set(mio.METADATA_KEYS)
    assert meta["modality"] == "CT"
    assert meta["patient_name"] == "CompressedSamples^CT1" and meta["patient_id"] == "1CT1"
    assert meta["kvp"] == 120.0 and meta["xray_tube_current_ma"] == 170.0
    assert meta["pixel_spacing_mm"] == (0.661468, 0.661468)
    assert meta["slice_thickness_mm"] == 5.0
    assert meta["rescale_slope"] == 1.0 and meta["rescale_intercept"] == -1024.0
    assert meta["image_position_patient_mm"] == (-158.135803, -179.035797, -75.699997)
    assert meta["study_date"] == "2004-01-19" and meta["series_time"] == "11:27:49"
    assert meta["image_type"] == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert meta["manufacturer"] == "GE MEDICAL SYSTEMS"
    assert meta["transfer_syntax"] == "Explicit VR Little Endian"
    assert meta["repetition_time_ms"] is None  # absent tags are None


def test_metadata_without_identifying_fields():
    assert mio.metadata(CT_SMALL) == mio.metadata(CT_SMALL, identifying=False)  # private by default
    meta = mio.metadata(CT_SMALL, identifying=False)
    assert not set(meta) & mio.IDENTIFYING_KEYS
    for key in ("patient_name", "patient_id", "patient_birth_date", "institution_name", "station_name",
                "study_instance_uid", "study_date", "accession_number", "patient_address"):
        assert key in mio.IDENTIFYING_KEYS and key not in meta
    assert meta["modality"] == "CT" and meta["patient_sex"] == "O" and meta["series_time"] == "11:27:49"
    assert "1CT1" not in repr(meta) and "JFK" not in repr(meta)


def test_metadata_of_mr_dataset_folder_and_enhanced():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    meta = mio.metadata(ds)
    assert meta["modality"] == "MR"
    assert meta["repetition_time_ms"] == 4000.0 and meta["echo_time_ms"] == 240.0
    assert meta["flip_angle_deg"] == 90.0 and meta["scanning_sequence"] == "SE"
    assert meta["magnetic_field_strength_t"] is None  # not in this file
    # enhanced CT: pixel spacing and orientation live in the shared functional groups
    enhanced = mio.metadata(get_testdata_file("eCT_Supplemental.dcm"))
    assert enhanced["pixel_spacing_mm"] == (0.388672, 0.388672)
    assert enhanced["image_orientation_patient"] == (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert enhanced["number_of_frames"] == 2


def test_metadata_of_a_series_folder(ibsi_ct):
    meta = mio.metadata(ibsi_ct / "dicom" / "image")
    assert meta["modality"] == "CT"
    # the first slice along the normal: the lowest z of the series (origin of the volume)
    assert meta["image_position_patient_mm"][2] == pytest.approx(-100.4, abs=1e-3)


def test_age_parsing():
    from medlab.io._fields import _age_years

    assert _age_years("045Y") == 45.0
    assert _age_years("006M") == 0.5
    assert _age_years("014D") == pytest.approx(14 / 365.25)
    assert _age_years("45") is None


# --------------------------------------------------------------------------- SUV factor


def _pet_meta(**changes):
    meta = {
        "units": "BQML",
        "decay_correction": "START",
        "patient_weight_kg": 70.0,
        "radionuclide_total_dose_bq": 370e6,
        "radionuclide_half_life_s": 6586.2,
        "radiopharmaceutical_start_time": "10:00:00",
        "series_time": "11:00:00",
    }
    meta.update(changes)
    return meta


def _pet_header(ds: Dataset | None = None, *, start="100000", series_time="110000", decay="START") -> Dataset:
    ds = ds if ds is not None else Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = decay
    ds.PatientWeight = "70"
    ds.SeriesDate = "20240105"
    ds.SeriesTime = series_time
    ds.AcquisitionDate = "20240105"
    ds.AcquisitionTime = series_time
    radio = Dataset()
    radio.RadionuclideTotalDose = "370000000"
    radio.RadionuclideHalfLife = "6586.2"
    radio.RadiopharmaceuticalStartTime = start
    ds.RadiopharmaceuticalInformationSequence = [radio]
    return ds


def test_suv_factor_from_a_pydicom_header_matches_hand_computation():
    assert mio.suv_factor(_pet_header()) == pytest.approx(SUV_60MIN, rel=1e-8)
    assert mio.suv_factor(_pet_meta()) == pytest.approx(SUV_60MIN, rel=1e-8)


def test_suv_factor_decay_modes():
    assert mio.suv_factor(_pet_meta(decay_correction="ADMIN")) == pytest.approx(SUV_ADMIN, rel=1e-8)
    assert mio.suv_factor(_pet_meta(units="GML")) == 1.0
    # START uses the earlier of series and acquisition time (re-processed series)
    meta = _pet_meta(series_time="12:00:00", acquisition_time="11:30:00")
    assert mio.suv_factor(meta) == pytest.approx(SUV_90MIN, rel=1e-8)
    # NONE uses this image's own acquisition time
    meta = _pet_meta(decay_correction="NONE", acquisition_time="11:30:00")
    assert mio.suv_factor(meta) == pytest.approx(SUV_90MIN, rel=1e-8)


def test_suv_factor_across_midnight():
    # with full date-times: injection 23:30 on the 5th, series 00:30 on the 6th -> 60 min
    ds = _pet_header(start="233000", series_time="003000")
    ds.SeriesDate = ds.AcquisitionDate = "20240106"
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "20240105233000"
    assert mio.suv_factor(ds) == pytest.approx(SUV_60MIN, rel=1e-8)
    # times of day only: a scan time before the injection time is on the next day
    meta = _pet_meta(radiopharmaceutical_start_time="23:30:00", series_time="00:30:00")
    assert mio.suv_factor(meta) == pytest.approx(SUV_60MIN, rel=1e-8)
    # date-times that put the scan before the injection are an error, not a guess
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "20240106233000"
    with pytest.raises(ValueError, match="before the radiopharmaceutical start"):
        mio.suv_factor(ds)


def test_suv_factor_names_missing_tags():
    meta = _pet_meta(patient_weight_kg=None, radionuclide_total_dose_bq=0.0)
    with pytest.raises(ValueError, match=r"PatientWeight \(0010,1030\), RadionuclideTotalDose .*pet_units='bqml'"):
        mio.suv_factor(meta)
    with pytest.raises(ValueError, match="RadiopharmaceuticalStartTime"):
        mio.suv_factor(_pet_meta(radiopharmaceutical_start_time=None))
    with pytest.raises(ValueError, match="Units 'CNTS'.*pet_units='stored'"):
        mio.suv_factor(_pet_meta(units="CNTS"))
    with pytest.raises(TypeError, match="meta_or_dataset"):
        mio.suv_factor([1, 2])


# --------------------------------------------------------------------------- PET read


def _pet_file(path, *, slope: float, z: float = 0.0, uid: str | None = None, acq="110000", decay="START"):
    """CT_small turned into a PET slice: stored values * slope are Bq/mL."""
    ds = pydicom.dcmread(CT_SMALL)
    _pet_header(ds, series_time="110000", decay=decay)
    ds.AcquisitionTime = acq
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = uid or generate_uid()
    ds.RescaleSlope = slope
    ds.RescaleIntercept = 0
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.save_as(path)
    return ds.pixel_array.astype(np.float64)


def test_pet_file_in_suv_bqml_and_stored(tmp_path):
    stored = _pet_file(tmp_path / "pet.dcm", slope=0.5)
    bqml = sitk.GetArrayFromImage(mio.read(tmp_path / "pet.dcm", pet_units="bqml"))
    np.testing.assert_allclose(bqml, stored * 0.5, rtol=1e-6)
    suv = mio.read(tmp_path / "pet.dcm")
    assert suv.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(suv), stored * 0.5 * SUV_60MIN, rtol=1e-5)


def test_pet_without_dose_asks_for_bqml(tmp_path):
    _pet_file(tmp_path / "pet.dcm", slope=0.5)
    ds = pydicom.dcmread(tmp_path / "pet.dcm")
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    del ds.PatientWeight
    ds.save_as(tmp_path / "pet.dcm")
    with pytest.raises(ImageIOError, match=r"PatientWeight.*RadionuclideTotalDose.*pet_units='bqml'") as info:
        mio.read(tmp_path / "pet.dcm")
    assert info.value.path == str(tmp_path / "pet.dcm")
    assert mio.read(tmp_path / "pet.dcm", pet_units="bqml").GetSize() == (128, 128)


def test_pet_bqml_requires_bqml_units(tmp_path):
    _pet_file(tmp_path / "pet.dcm", slope=0.5)
    ds = pydicom.dcmread(tmp_path / "pet.dcm")
    ds.Units = "CNTS"
    ds.save_as(tmp_path / "pet.dcm")
    with pytest.raises(ImageIOError, match="not 'BQML'.*pet_units='stored'"):
        mio.read(tmp_path / "pet.dcm", pet_units="bqml")
    stored = sitk.GetArrayFromImage(mio.read(tmp_path / "pet.dcm", pet_units="stored"))
    np.testing.assert_allclose(stored, ds.pixel_array * 0.5)


@pytest.mark.parametrize("slopes", [(0.5, 0.25, 2.0), (1.0, 0.25, 3.0)])
def test_pet_series_keeps_each_slice_slope(tmp_path, slopes):
    # (1.0, ...) has an integer first slope, so GDCM would pick an integer type from it.
    uid = generate_uid()
    stored = [_pet_file(tmp_path / f"p{i}.dcm", slope=s, z=3.0 * i, uid=uid) for i, s in enumerate(slopes)]
    expected = np.stack([a * s for a, s in zip(stored, slopes)])
    bqml = mio.read(tmp_path, pet_units="bqml")
    assert bqml.GetSize() == (128, 128, 3)
    np.testing.assert_allclose(sitk.GetArrayFromImage(bqml), expected, rtol=1e-6)
    suv = mio.read(tmp_path)
    assert suv.GetPixelID() == bqml.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(suv), expected * SUV_60MIN, rtol=1e-5)


def test_pet_series_not_decay_corrected_uses_each_slice_time(tmp_path):
    uid = generate_uid()
    times = ("110000", "113000")
    stored = [
        _pet_file(tmp_path / f"p{i}.dcm", slope=0.5, z=3.0 * i, uid=uid, acq=t, decay="NONE")
        for i, t in enumerate(times)
    ]
    suv = sitk.GetArrayFromImage(mio.read(tmp_path))
    np.testing.assert_allclose(suv[0], stored[0] * 0.5 * SUV_60MIN, rtol=1e-5)
    np.testing.assert_allclose(suv[1], stored[1] * 0.5 * SUV_90MIN, rtol=1e-5)
