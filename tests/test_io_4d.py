"""4D DICOM, geometry checks and folders as users have them (synthetic series with exact truth)."""

from __future__ import annotations

import copy
import os
import tempfile
import tracemalloc
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

import medlab.io as mio
from medlab.errors import ImageIOError
from medlab.io import _dcm2niix

MR_SMALL = get_testdata_file("MR_small.dcm")
ROW, COL = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


def _write_series(folder, positions, *, volumes=1, orientation=ROW + COL, uid=None, description="s", times=None):
    """MR_small slices at ``positions`` (x, y, z mm), ``volumes`` times each; pixel = base + 1000 * volume + slice."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(MR_SMALL)
    base = template.pixel_array.astype(np.int16) // 4
    uid = uid or generate_uid()
    paths = []
    ds = template  # one dataset, changed and saved per file (a deep copy per file is slow)
    for v in range(volumes):
        for k, pos in enumerate(positions):
            ds.SeriesInstanceUID = uid
            ds.SeriesDescription = description
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.ImagePositionPatient = [float(p) for p in pos]
            ds.ImageOrientationPatient = [float(c) for c in orientation]
            ds.InstanceNumber = v * len(positions) + k + 1
            ds.AcquisitionTime = f"1200{(times or [0] * volumes)[v]:02d}.000000"
            ds.TemporalPositionIdentifier = v + 1
            ds.NumberOfTemporalPositions = volumes
            ds.PixelData = (base + 1000 * v + k).astype(np.int16).tobytes()
            path = folder / f"{description}_{v:02d}_{k:02d}.dcm"
            ds.save_as(path)
            paths.append(path)
    return uid, base


def _positions(n, step=2.0, normal=(0.0, 0.0, 1.0), start=(-83.9063, -91.2, 6.6406)):
    return [np.asarray(start) + k * step * np.asarray(normal) for k in range(n)]


def _world(image, index):
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index]))


def test_classic_multi_volume_series_is_4d_with_exact_geometry_and_times(tmp_path, capfd, monkeypatch):
    uid, base = _write_series(tmp_path / "s", _positions(4)[::-1], volumes=3, times=[0, 4, 8])
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # where the dcm2niix run works
    monkeypatch.setattr(_dcm2niix, "SHM", str(private_tmp))  # (its memory file system, when there is room)
    image = mio.read(tmp_path / "s")
    assert image.GetDimension() == 4 and image.GetSize() == (64, 64, 4, 3)
    # each voxel at its DICOM position: slice k's first pixel at the k-th position along z
    for k, pos in enumerate(_positions(4)):
        np.testing.assert_allclose(_world(image, (0, 0, k, 0))[:3], pos, atol=1e-4)
    np.testing.assert_allclose(_world(image, (63, 0, 0, 0))[0], -83.9063 + 63 * 0.3125, atol=1e-4)
    arr = sitk.GetArrayFromImage(image)  # (t, z, y, x)
    for v in range(3):
        for k in range(4):
            np.testing.assert_array_equal(arr[v, k], base + 1000 * v + (3 - k))  # files were written top-down
    meta = mio.volume_metadata(image)
    assert meta["volumes"] == 3 and meta["acquisition_times_s"] == [43200.0, 43204.0, 43208.0]
    assert meta["source"].startswith("dcm2niix")
    # nothing left behind, nothing printed
    assert os.listdir(private_tmp) == []
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    one = mio.volume(image, 1)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(one), arr[1])
    assert mio.volume_metadata(one)["acquisition_times_s"] == [43204.0]


def test_unequal_repeats_missing_file_raise_naming_positions(tmp_path):
    _write_series(tmp_path, _positions(3), volumes=2)
    os.remove(tmp_path / "s_01_02.dcm")
    with pytest.raises(ImageIOError, match="different number of times") as info:
        mio.read(tmp_path)
    assert info.value.path == str(tmp_path) and "(1 files)" in info.value.reason


def test_duplicate_copy_of_a_file_is_named_and_ignored(tmp_path):
    _write_series(tmp_path / "a", _positions(3))
    (tmp_path / "a" / "sub").mkdir()
    data = (tmp_path / "a" / "s_00_01.dcm").read_bytes()
    (tmp_path / "a" / "sub" / "copy.dcm").write_bytes(data)
    with pytest.warns(mio.DicomWarning, match="second copy of SOPInstanceUID"):
        image = mio.read(tmp_path / "a")
    assert image.GetSize() == (64, 64, 3)


def test_mixed_orientations_raise(tmp_path):
    uid = generate_uid()
    _write_series(tmp_path, _positions(2), uid=uid, description="ax")
    _write_series(tmp_path, _positions(2), uid=uid, description="cor", orientation=(1, 0, 0, 0, 0, -1))
    with pytest.raises(ImageIOError, match="different orientations"):
        mio.read(tmp_path)


def test_oblique_series_keeps_every_voxel_at_its_dicom_position(tmp_path):
    a = np.radians(15.0)
    row, col = (np.cos(a), np.sin(a), 0.0), (-np.sin(a), np.cos(a), 0.0)
    normal = np.cross(row, col)
    positions = _positions(5, step=3.0, normal=normal)
    _write_series(tmp_path, positions, orientation=(*row, *col))
    image = mio.read(tmp_path)
    for k in (0, 4):
        np.testing.assert_allclose(_world(image, (0, 0, k)), positions[k], atol=1e-6)
        corner = positions[k] + 63 * 0.3125 * np.asarray(row) + 10 * 0.3125 * np.asarray(col)
        np.testing.assert_allclose(_world(image, (63, 10, k)), corner, atol=1e-6)


def test_gantry_tilt_is_named_and_positions_exact(tmp_path):
    tilt = np.radians(12.0)
    path = np.array([0.0, np.sin(tilt), np.cos(tilt)])  # slices slide along y as z advances
    positions = [np.array([-83.9063, -91.2, 6.6406]) + k * 2.5 * path for k in range(4)]
    _write_series(tmp_path, positions)
    with pytest.warns(mio.DicomWarning, match=r"tilted by 12\.00 degrees"):
        image = mio.read(tmp_path)
    for k in range(4):
        np.testing.assert_allclose(_world(image, (5, 7, k)), positions[k] + 0.3125 * np.array([5, 7, 0]), atol=1e-6)


def test_non_uniform_spacing_warns_with_the_steps(tmp_path):
    _write_series(tmp_path, [np.array([0, 0, z]) for z in (0.0, 2.0, 4.0, 8.0)])
    with pytest.warns(mio.DicomWarning, match="not uniformly spaced"):
        image = mio.read(tmp_path)
    assert image.GetSize() == (64, 64, 4)


# --------------------------------------------------------------------------- Siemens mosaic


@pytest.fixture(scope="module")
def mosaic_series():
    import medlab.datasets

    try:
        return medlab.datasets.load("dcm_qa_nih", case="20180918Si/mr_0003").paths["series"]
    except Exception:  # noqa: BLE001
        pytest.skip("dcm_qa_nih is not in the data store")


def test_single_mosaic_file_is_the_first_volume(mosaic_series):
    first = sorted(mosaic_series.glob("*.dcm"))[0]
    one = mio.read(first)
    both = mio.read(mosaic_series)
    assert one.GetSize() == (72, 72, 5) == both.GetSize()[:3]
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(one), sitk.GetArrayViewFromImage(both)[0])
    np.testing.assert_allclose(one.GetOrigin(), both.GetOrigin()[:3])
    assert len(mio.volume_metadata(one)["slice_timing_s"]) == 5


def test_mosaic_without_csa_header_names_the_file(mosaic_series, tmp_path):
    ds = pydicom.dcmread(sorted(mosaic_series.glob("*.dcm"))[0])
    for tag in [t for t in ds.keys() if t.group == 0x0029]:
        del ds[tag]
    path = tmp_path / "mosaic_no_csa.dcm"
    ds.save_as(path)
    with pytest.raises(ImageIOError, match="Siemens mosaic .* no Siemens CSA image header") as info:
        mio.read(path)
    assert info.value.path == str(path)
    with pytest.raises(ImageIOError, match="no Siemens CSA image header") as info:
        mio.read(tmp_path)
    assert info.value.path == str(path)


# --------------------------------------------------------------------------- enhanced multi-frame


def _enhanced_4d(path, volumes=3):
    """eCT_Supplemental (2 frames at 2 positions) repeated ``volumes`` times along a temporal index."""
    ds = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    arr = ds.pixel_array
    items = []
    for t in range(volumes):
        for item in ds.PerFrameFunctionalGroupsSequence:
            item = copy.deepcopy(item)
            content = item.FrameContentSequence[0]
            content.TemporalPositionIndex = t + 1
            content.DimensionIndexValues = [t + 1, 1, int(content.InStackPositionNumber)]
            items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    dim = Dataset()
    dim.DimensionOrganizationUID = ds.DimensionIndexSequence[0].DimensionOrganizationUID
    dim.DimensionIndexPointer = 0x00209128  # TemporalPositionIndex
    dim.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    ds.DimensionIndexSequence = Sequence([dim, *ds.DimensionIndexSequence])
    ds.PixelData = np.concatenate([arr + 100 * t for t in range(volumes)]).astype(arr.dtype).tobytes()
    ds.NumberOfFrames = 2 * volumes
    ds.save_as(path)
    return arr


def test_enhanced_multiframe_with_repeated_positions_is_4d(tmp_path):
    stored = _enhanced_4d(tmp_path / "e.dcm")
    three_d = mio.read(get_testdata_file("eCT_Supplemental.dcm"))
    with pytest.warns(mio.DicomWarning, match="dcm2niix: Warning: Unable to determine manufacturer"):
        image = mio.read(tmp_path / "e.dcm")
    assert image.GetSize() == (512, 512, 2, 3)
    arr = sitk.GetArrayViewFromImage(image)
    for t in range(3):  # HU = stored - 1024; each volume + 100
        np.testing.assert_array_equal(arr[t], sitk.GetArrayViewFromImage(three_d) + 100 * t)
    assert image.GetOrigin()[:3] == three_d.GetOrigin()  # exact DICOM position, not its float32 NIfTI copy
    np.testing.assert_allclose(image.GetSpacing()[:3], three_d.GetSpacing(), atol=1e-5)
    assert stored.shape == (2, 512, 512)


# --------------------------------------------------------------------------- folders


def test_study_folder_lists_nested_series_and_skips_dicomdir_and_notes(tmp_path):
    uid_a, _ = _write_series(tmp_path / "study" / "series1", _positions(3), description="t1")
    uid_b, _ = _write_series(tmp_path / "study" / "series2" / "deeper", _positions(2), volumes=2, description="epi")
    (tmp_path / "study" / "README.txt").write_text("notes")
    (tmp_path / "study" / ".DS_Store").write_bytes(b"\0" * 200)
    dicomdir = Dataset()
    dicomdir.file_meta = pydicom.dataset.FileMetaDataset()
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dicomdir.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dicomdir.Rows = dicomdir.Columns = 1  # even a DICOMDIR with image-like tags is not a series
    dicomdir.save_as(tmp_path / "study" / "DICOMDIR", enforce_file_format=True)
    listed = {s["series_instance_uid"]: s for s in mio.list_series(tmp_path / "study")}
    assert set(listed) == {uid_a, uid_b}
    assert listed[uid_a]["size"] == (64, 64, 3) and listed[uid_a]["volumes"] == 1
    assert listed[uid_b]["size"] == (64, 64, 2) and listed[uid_b]["volumes"] == 2
    assert listed[uid_b]["folders"] == (str(tmp_path / "study" / "series2" / "deeper"),)
    with pytest.raises(ImageIOError, match="2 DICOM series") as info:
        mio.read(tmp_path / "study")
    assert "64x64x2 voxels x 2 volume(s)" in info.value.reason and "'epi'" in info.value.reason
    assert mio.read(tmp_path / "study", series_uid=uid_b).GetSize() == (64, 64, 2, 2)
    assert mio.read(tmp_path / "study" / "series1").GetSize() == (64, 64, 3)


def test_many_files_report_progress_stop_and_keep_memory_small(tmp_path):
    _write_series(tmp_path, _positions(24), volumes=5)  # 120 files
    seen = []
    listed = mio.list_series(tmp_path, progress=lambda f, msg: seen.append(f))
    assert listed[0]["volumes"] == 5 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(InterruptedError):
        mio.list_series(tmp_path, progress=lambda f, msg: False)
    tracemalloc.start()
    mio.list_series(tmp_path, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a few kB per file (the small header record), not the 8 kB of pixels each file holds
    assert peak < 120 * 4000, peak


def test_unreadable_file_in_a_folder_is_named_and_skipped(tmp_path):
    _write_series(tmp_path, _positions(3))
    data = (tmp_path / "s_00_00.dcm").read_bytes()
    (tmp_path / "broken.dcm").write_bytes(data[:200])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        image = mio.read(tmp_path)
    assert image.GetSize() == (64, 64, 3)
    assert any("broken.dcm" in str(w.message) for w in record)


def test_conversion_disagreeing_with_dicom_positions_is_refused(tmp_path, monkeypatch):
    from medlab.io import _dcm2niix

    _write_series(tmp_path, _positions(3), volumes=2)
    load = _dcm2niix._load_part

    def shifted(nii, where):
        part = load(nii, where)
        part["origin"] = part["origin"] + np.array([0.0, 0.0, 0.5])
        return part

    monkeypatch.setattr(_dcm2niix, "_load_part", shifted)
    with pytest.raises(ImageIOError, match=r"up to 0\.5 mm from their DICOM positions"):
        mio.read(tmp_path)


@pytest.mark.parametrize("degrees", [0.0, 20.0])
def test_diffusion_b_values_and_gradients_in_image_and_patient_frames(tmp_path, degrees):
    a = np.radians(degrees)
    row, col = (np.cos(a), np.sin(a), 0.0), (-np.sin(a), np.cos(a), 0.0)
    bvals, vectors = [0, 1000, 1000, 1000], [(0, 0, 0), (1, 0, 0), (0, 0.6, 0.8), (0, 1, 0)]
    _write_series(tmp_path, _positions(3, normal=np.cross(row, col)), volumes=4, orientation=(*row, *col), times=[0, 4, 8, 12])
    for path in sorted(tmp_path.glob("*.dcm")):  # standard diffusion tags, patient frame (LPS)
        ds = pydicom.dcmread(path)
        v = int(ds.TemporalPositionIdentifier) - 1
        ds.DiffusionBValue = bvals[v]
        ds.DiffusionGradientOrientation = list(vectors[v])
        ds.save_as(path)
    image = mio.read(tmp_path)
    meta = mio.volume_metadata(image)
    assert meta["b_values_s_per_mm2"] == bvals
    np.testing.assert_allclose(meta["gradient_directions_lps"], vectors, atol=1e-4)
    direction = np.asarray(image.GetDirection()).reshape(4, 4)[:3, :3]
    np.testing.assert_allclose(meta["gradient_directions"], np.asarray(vectors) @ direction, atol=1e-4)  # D^T g
    one = mio.volume(image, 2)
    assert mio.volume_metadata(one)["b_values_s_per_mm2"] == [1000]


def test_multi_echo_series_is_one_volume_per_echo(tmp_path):
    _write_series(tmp_path, _positions(3), volumes=2)
    for path in sorted(tmp_path.glob("*.dcm")):  # the two "volumes" become two echoes of one time point
        ds = pydicom.dcmread(path)
        echo = int(ds.TemporalPositionIdentifier)
        del ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions
        ds.EchoNumbers, ds.EchoTime, ds.AcquisitionTime = echo, [10.0, 25.0][echo - 1], "120000.000000"
        ds.save_as(path)
    image = mio.read(tmp_path)  # dcm2niix writes one image per echo; medlab stacks them
    assert image.GetSize() == (64, 64, 3, 2)
    assert mio.volume_metadata(image)["echo_times_ms"] == [10.0, 25.0]
    arr = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(arr[1] - arr[0], 1000)  # echo 2 was written as volume 1 (+1000)


def test_3d_mr_series_equals_simpleitk_with_exact_dicom_geometry(tmp_path):
    _write_series(tmp_path, _positions(5, step=2.5)[::-1])
    image = mio.read(tmp_path)  # 3D MR goes through dcm2niix (vendor rules, acquisition metadata)
    assert mio.volume_metadata(image)["source"].startswith("dcm2niix")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    reference = reader.Execute()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    assert image.GetOrigin() == (-83.9063, -91.2, 6.6406)  # the DICOM value itself
    assert image.GetSpacing()[:2] == (0.3125, 0.3125) and image.GetSpacing()[2] == pytest.approx(2.5, abs=1e-12)
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_files_placed_elsewhere_than_their_headers_say_are_refused(tmp_path, monkeypatch):
    from medlab.io import _dcm2niix

    _write_series(tmp_path, _positions(3), volumes=2, times=[0, 4])
    rng = np.random.default_rng(5)
    for path in sorted(tmp_path.glob("*.dcm")):  # every slice its own content
        ds = pydicom.dcmread(path)
        ds.PixelData = rng.integers(0, 1000, (64, 64)).astype(np.int16).tobytes()
        ds.save_as(path)
    assert mio.read(tmp_path).GetSize() == (64, 64, 3, 2)
    load = _dcm2niix._load_part

    def slices_reversed(nii, where):  # a converter that stacks the slices the wrong way round
        part = load(nii, where)
        part["array"] = np.ascontiguousarray(part["array"][:, ::-1])
        return part

    monkeypatch.setattr(_dcm2niix, "_load_part", slices_reversed)
    with pytest.raises(ImageIOError, match=r"did not put .*s_00_00\.dcm at volume 0, slice 0"):
        mio.read(tmp_path)


def test_dynamic_pet_is_4d_in_bqml_and_suv_with_each_slice_slope(tmp_path):
    from test_io_meta import SUV_60MIN, _pet_file

    uid, slopes, stored = generate_uid(), (0.5, 0.25, 2.0, 1.0), []
    for v in range(2):
        for k in range(2):
            path = tmp_path / f"p{v}{k}.dcm"
            stored.append(_pet_file(path, slope=slopes[2 * v + k], z=3.0 * k, uid=uid, acq=f"11{v}000"))
            ds = pydicom.dcmread(path)  # a dynamic PET's ordering tags
            ds.InstanceNumber = ds.ImageIndex = 2 * v + k + 1
            ds.NumberOfTimeSlices, ds.NumberOfSlices = 2, 2
            ds.FrameReferenceTime, ds.ActualFrameDuration = 60000.0 * v, 60000
            ds.save_as(path)
    expected = np.stack([a * s for a, s in zip(stored, slopes)]).reshape(2, 2, 128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mio.DicomWarning)  # CT_small is GE: dcm2niix misses GE slice timing
        bqml = mio.read(tmp_path, pet_units="bqml")
        suv = mio.read(tmp_path)
    assert bqml.GetSize() == (128, 128, 2, 2) and suv.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(bqml), expected, rtol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(suv), expected * SUV_60MIN, rtol=1e-5)
    for path in tmp_path.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.DecayCorrection = "NONE"
        ds.save_as(path)
    with pytest.raises(ImageIOError, match="DecayCorrection NONE.*pet_units='bqml'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mio.DicomWarning)
            mio.read(tmp_path)


def test_warnings_point_at_the_callers_line(tmp_path):
    _write_series(tmp_path / "a", [np.array([0, 0, z]) for z in (0.0, 2.0, 4.0, 8.0)], volumes=2, times=[0, 4])
    # 4D with a missing slice: dcm2niix assumes even spacing; medlab names the gap, then refuses
    with pytest.warns(mio.DicomWarning, match="not uniformly spaced") as record:
        with pytest.raises(ImageIOError, match="up to 2 mm from their DICOM positions"):
            mio.read(tmp_path / "a")
    assert {w.filename for w in record if "uniformly" in str(w.message)} == {__file__}
    path = tmp_path / "e.dcm"
    _enhanced_4d(path)
    with pytest.warns(mio.DicomWarning, match="dcm2niix") as record:
        mio.read(path)  # one file through dcm2niix
    assert {w.filename for w in record} == {__file__}


def test_dcm2niix_started_beside_the_scan_is_used_or_stopped(tmp_path, monkeypatch):
    """A flat MR folder: dcm2niix starts before the header scan (medlab.io._dcm2niix.Started).
    Its result is the one read when the scan decides that very conversion; when the scan refuses
    the folder, the process is stopped and its temporary folder removed."""
    from medlab.io import _dcm2niix

    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.setattr(_dcm2niix, "SHM", str(private_tmp))
    started = []
    real = _dcm2niix.Started

    class Spy(real):
        def __init__(self, folder):
            super().__init__(folder)
            started.append(self)

    monkeypatch.setattr(_dcm2niix, "Started", Spy)

    def no_second_run(*args, **kwargs):
        raise AssertionError("dcm2niix run a second time")

    monkeypatch.setattr(_dcm2niix, "_run", no_second_run)
    _write_series(tmp_path / "one", _positions(3), volumes=2)
    image = mio.read(tmp_path / "one")
    assert image.GetSize() == (64, 64, 3, 2) and len(started) == 1
    assert started[0]._proc.returncode == 0 and os.listdir(private_tmp) == []
    # two series in one flat folder: refused with the listing; dcm2niix ended, nothing left
    _write_series(tmp_path / "two", _positions(3), volumes=2, description="a")
    _write_series(tmp_path / "two", _positions(2), description="b")
    with pytest.raises(ImageIOError, match="2 DICOM series in this folder"):
        mio.read(tmp_path / "two")
    assert len(started) == 2 and started[1]._proc.poll() is not None and os.listdir(private_tmp) == []
