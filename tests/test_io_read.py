"""medlab.io.read: DICOM series/file/multi-frame, compressed transfer syntaxes, other formats."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

import medlab.io as mio


def _file(name: str) -> str:
    return get_testdata_file(name)


def _arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _deid_file(relative: str) -> str:
    import deid_data

    return os.path.join(os.path.dirname(deid_data.__file__), "data", relative)


# --------------------------------------------------------------------------- DICOM series


def _assert_same_grid_and_values(img: sitk.Image, ref: sitk.Image) -> None:
    assert img.GetSize() == ref.GetSize()
    np.testing.assert_allclose(img.GetSpacing(), ref.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(img.GetOrigin(), ref.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(img.GetDirection(), ref.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(_arr(img), _arr(ref))


def test_dicom_series_matches_nifti_exactly(ibsi_ct):
    series = mio.read(Path(ibsi_ct) / "dicom" / "image")
    nifti = mio.read(Path(ibsi_ct) / "nifti" / "image.nii.gz")
    assert series.GetSize() == (204, 201, 60)
    np.testing.assert_allclose(series.GetSpacing(), (0.977, 0.977, 3.0), atol=1e-3)
    _assert_same_grid_and_values(series, nifti)
    # Hounsfield units: air near -1000 in the corners, a real range overall.
    arr = _arr(series)
    assert arr.min() >= -1100 and arr.max() > 200


def test_series_is_sorted_by_position_not_by_file_name(ibsi_ct, tmp_path):
    files = sorted((Path(ibsi_ct) / "dicom" / "image").glob("*.dcm"))
    names = [f"slice{i:03d}.dcm" for i in range(len(files))]
    random.Random(7).shuffle(names)
    for src, name in zip(files, names):
        shutil.copy(src, tmp_path / name)
    nifti = mio.read(Path(ibsi_ct) / "nifti" / "image.nii.gz")
    _assert_same_grid_and_values(mio.read(tmp_path), nifti)


def test_single_slice_file_is_2d_and_equals_its_series_slice(ibsi_ct):
    folder = Path(ibsi_ct) / "dicom" / "image"
    series = mio.read(folder)
    path = sorted(folder.glob("*.dcm"))[17]
    one = mio.read(path)
    assert one.GetDimension() == 2
    np.testing.assert_allclose(one.GetSpacing(), series.GetSpacing()[:2], atol=1e-6)
    z = mio.metadata(path)["image_position_patient_mm"][2]
    k = round((z - series.GetOrigin()[2]) / series.GetSpacing()[2])
    np.testing.assert_array_equal(_arr(one), _arr(series)[k])


# --------------------------------------------------------------------------- single files


def test_ct_small_is_in_hounsfield_units():
    img = mio.read(_file("CT_small.dcm"))
    arr = _arr(img)
    assert img.GetSize() == (128, 128)
    np.testing.assert_allclose(img.GetSpacing(), (0.661468, 0.661468))
    assert arr.dtype.kind == "i"
    # RescaleIntercept -1024, slope 1, computed here independently of medlab
    ds = pydicom.dcmread(_file("CT_small.dcm"))
    np.testing.assert_array_equal(arr, ds.pixel_array.astype(np.int32) * 1 - 1024)
    assert -1024 <= arr.min() < -800  # air
    assert -100 < np.median(arr) < 100  # soft tissue / water
    assert 500 < arr.max() < 3072  # bone, not raw stored values


# (compressed or unusual file, reference, max abs difference, max mean abs difference).
# A reference ending in ".dcm" is the uncompressed counterpart in pydicom-data read by medlab;
# "gdcm" means SimpleITK/GDCM's independent decoding of the same file.
SYNTAXES = [
    # RLE Lossless
    ("MR_small_RLE.dcm", "MR_small.dcm", 0, 0),
    ("SC_rgb_rle.dcm", "SC_rgb.dcm", 0, 0),
    ("SC_rgb_rle_16bit.dcm", "SC_rgb_16bit.dcm", 0, 0),
    ("emri_small_RLE.dcm", "emri_small.dcm", 0, 0),
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm", 0, 0),
    # JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 SV1)
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm", 0, 0),
    ("JPEG-LL.dcm", "gdcm", 0, 0),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", "gdcm", 0, 0),
    # JPEG Baseline (Process 1): RGB, YBR_FULL, YBR_FULL_422 (lossy)
    ("SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb.dcm", 2, 0.5),
    ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb.dcm", 8, 1.0),
    ("SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb.dcm", 8, 1.0),
    # JPEG Extended (Process 2 and 4), 12-bit (lossy): decoder rounding only
    ("JPGExtended.dcm", "gdcm", 1, 0.1),
    # JPEG-LS Lossless and Near-Lossless
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0, 0),
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm", 0, 0),
    ("SC_rgb_jls_lossy_line.dcm", "SC_rgb.dcm", 2, 1.0),
    ("JPEGLSNearLossless_16.dcm", "gdcm", 0, 0),
    # JPEG 2000 (Lossless Only) and JPEG 2000 (lossy: *_UNCI holds the decoded lossy pixels)
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", 0, 0),
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm", 0, 0),
    ("693_J2KR.dcm", "693_UNCR.dcm", 0, 0),
    ("US1_J2KR.dcm", "US1_UNCR.dcm", 0, 0),  # YBR_RCT -> RGB
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb.dcm", 0, 0),
    ("693_J2KI.dcm", "693_UNCI.dcm", 0, 0),
    ("MR2_J2KI.dcm", "MR2_UNCI.dcm", 0, 0),
    ("US1_J2KI.dcm", "US1_UNCI.dcm", 0, 0),  # YBR_ICT -> RGB
    ("JPEG2000.dcm", "JPEG2000_UNC.dcm", 0, 0),
    # Deflated Explicit VR Little Endian
    ("image_dfl.dcm", "gdcm", 0, 0),
    # Explicit VR Big Endian and Implicit VR Little Endian
    ("MR_small_bigendian.dcm", "MR_small.dcm", 0, 0),
    ("emri_small_big_endian.dcm", "emri_small.dcm", 0, 0),
    ("SC_rgb_expb_16bit.dcm", "SC_rgb_16bit.dcm", 0, 0),
    ("MR_small_implicit.dcm", "MR_small.dcm", 0, 0),
    # YBR_FULL uncompressed -> RGB
    ("SC_ybr_full_uncompressed.dcm", "SC_rgb.dcm", 8, 1.0),
]


@pytest.mark.parametrize(("name", "reference", "max_diff", "mean_diff"), SYNTAXES, ids=[s[0] for s in SYNTAXES])
def test_transfer_syntax_decodes_to_reference_pixels(name, reference, max_diff, mean_diff):
    img = mio.read(_file(name))
    if reference == "gdcm":
        ref = sitk.ReadImage(_file(name))  # 3D with one slice for a single frame
        expected = _arr(ref).reshape(_arr(img).shape)
    else:
        ref = mio.read(_file(reference))
        expected = _arr(ref)
        assert img.GetSize() == ref.GetSize()
        np.testing.assert_allclose(img.GetSpacing(), ref.GetSpacing())
    got = _arr(img)
    assert got.shape == expected.shape
    assert img.GetNumberOfComponentsPerPixel() == (3 if got.ndim == img.GetDimension() + 1 else 1)
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    assert diff.max() <= max_diff
    assert diff.mean() <= mean_diff
    assert got.std() > 0  # a blank decode would match a blank reference


def test_monochrome1_is_inverted_like_gdcm():
    img = mio.read(_file("RG3_UNCR.dcm"))
    ds = pydicom.dcmread(_file("RG3_UNCR.dcm"))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(_arr(img), (2**ds.BitsStored - 1) - ds.pixel_array)
    np.testing.assert_array_equal(_arr(img), _arr(sitk.ReadImage(_file("RG3_UNCR.dcm")))[0])


def test_file_without_preamble_is_read():
    img = mio.read(_file("OT-PAL-8-face.dcm"))  # no 128-byte preamble, no file meta
    assert img.GetSize() == (640, 480) and img.GetNumberOfComponentsPerPixel() == 3


# --------------------------------------------------------------------------- multi-frame


def test_ultrasound_cine_ybr_jpeg_is_rgb_frames_on_the_time_axis():
    img = mio.read(_file("examples_ybr_color.dcm"))  # JPEG baseline, YBR_FULL_422, 30 frames
    # a cine (FrameIncrementPointer -> FrameTime): frames are instants of one plane, so they are
    # the fourth (time) axis of a 4D image, one slice thick, as any series of several volumes
    assert img.GetSize() == (320, 240, 1, 30)
    assert img.GetNumberOfComponentsPerPixel() == 3
    assert img.GetPixelID() == sitk.sitkVectorUInt8
    arr = _arr(img)[:, 0]
    # YBR -> RGB by pydicom agrees with GDCM's independent conversion (GDCM stacks frames on z)
    assert np.abs(arr.astype(int) - _arr(sitk.ReadImage(_file("examples_ybr_color.dcm")))).max() <= 4
    assert not np.array_equal(arr[0], arr[15])  # the frames move
    # calibrated ultrasound region: PhysicalDeltaX 0.0510497 cm -> 0.510497 mm
    np.testing.assert_allclose(img.GetSpacing(), (0.510497, 0.510497, 1.0, 1.0), rtol=1e-5)
    # FrameTime 33.333 ms: the time of each frame in the per-volume metadata
    times = mio.volume_metadata(img)["frame_times_ms"]
    np.testing.assert_allclose(times, np.arange(30) * 33.333)
    frame = mio.volume(img, 15)  # one frame: 3D, one slice thick, with its time
    assert frame.GetSize() == (320, 240, 1) and frame.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(_arr(frame)[0], arr[15])
    assert mio.volume_metadata(frame)["frame_times_ms"] == pytest.approx([15 * 33.333])


def test_frame_time_vector_and_non_cine_frames(tmp_path):
    ds = pydicom.dcmread(_file("examples_ybr_color.dcm"))
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")
    ds.FrameTimeVector = [0.0] + [10.0, 30.0] * 14 + [10.0]  # increments; the first is 0
    ds.save_as(tmp_path / "v.dcm")
    times = mio.volume_metadata(mio.read(tmp_path / "v.dcm"))["frame_times_ms"]
    np.testing.assert_allclose(times, np.cumsum([0.0] + [10.0, 30.0] * 14 + [10.0]))
    # frames that are not instants (no FrameIncrementPointer, e.g. a 2-frame secondary capture)
    # stay along z, as before
    assert mio.read(_file("SC_rgb_rle_2frame.dcm")).GetSize() == (100, 100, 2)


def test_deid_echocardiogram_cine():
    path = _deid_file("ultrasounds/ultrasound-multiframe.dcm")
    img = mio.read(path)
    assert img.GetSize() == (800, 600, 1, 30)
    assert img.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_allclose(img.GetSpacing()[:2], (0.3075974, 0.3075974), rtol=1e-5)
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(_arr(img)[:, 0], ds.pixel_array)
    assert mio.volume_metadata(img)["frame_times_ms"][1] == pytest.approx(54.241)  # FrameTime
    gray = mio.read(path, as_gray=True)
    assert gray.GetNumberOfComponentsPerPixel() == 1 and gray.GetSize() == img.GetSize()


# deid-data's RGB_CINE.zip (FrameIncrementPointer -> FrameTimeVector and a private tag) reads the
# same way (1016 x 672 x 1 x 51, times = cumulative FrameTimeVector) but takes 18 s here (104 MB):
# checked by hand, left out of the suite; test_frame_time_vector_and_non_cine_frames covers the vector.
@pytest.mark.parametrize("name, size, components", [
    ("GREYSCALE_CINE", (800, 600, 1, 27), 1),  # FrameIncrementPointer -> FrameTime (33.333 ms)
])
def test_real_ultrasound_cines_have_frames_on_the_time_axis(tmp_path, name, size, components):
    import zipfile

    with zipfile.ZipFile(_deid_file(f"ultrasounds/{name}.zip")) as archive:
        archive.extractall(tmp_path)
    path = tmp_path / f"{name}.dcm"
    img = mio.read(path)
    ds = pydicom.dcmread(path)
    assert img.GetSize() == size and img.GetNumberOfComponentsPerPixel() == components
    np.testing.assert_array_equal(_arr(img)[:, 0], ds.pixel_array)
    times = mio.volume_metadata(img)["frame_times_ms"]
    if "FrameTimeVector" in ds:  # increments between frames, the first 0
        expected = np.cumsum([0.0] + [float(v) for v in ds.FrameTimeVector][1:])
    else:
        expected = np.arange(size[3]) * float(ds.FrameTime)
    np.testing.assert_allclose(times, expected)
    assert times[1] > 30.0  # ms: 33.333 (FrameTime), 57.967 (FrameTimeVector)
    k = size[3] // 2
    np.testing.assert_array_equal(_arr(mio.volume(img, k))[0], ds.pixel_array[k])


def test_enhanced_ct_frames_are_placed_at_their_positions():
    path = _file("eCT_Supplemental.dcm")
    img = mio.read(path)
    assert img.GetSize() == (512, 512, 2)
    np.testing.assert_allclose(img.GetSpacing(), (0.388672, 0.388672, 10.0))
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.int32) - 1024  # shared RescaleIntercept -1024
    arr = _arr(img)
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        k = img.TransformPhysicalPointToIndex(position)[2]
        np.testing.assert_allclose(img.TransformIndexToPhysicalPoint((0, 0, k)), position, atol=1e-4)
        np.testing.assert_array_equal(arr[k], raw[f])


def test_rtdose_is_in_gray_on_its_grid():
    path = _file("rtdose.dcm")
    img = mio.read(path)
    ds = pydicom.dcmread(path)
    assert img.GetSize() == (10, 10, 15)
    np.testing.assert_allclose(img.GetSpacing(), (10.0, 10.0, 5.0))
    np.testing.assert_allclose(img.GetOrigin(), [float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(_arr(img), ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)


# --------------------------------------------------------------------------- other formats


def test_png_rgb_is_vector_and_as_gray_gives_bt601_luma(tmp_path):
    from PIL import Image

    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 2] = (0, 255, 0)
    rgb[3, 4] = (10, 20, 200)
    Image.fromarray(rgb).save(tmp_path / "x.png")  # written by PIL, not by medlab
    img = mio.read(tmp_path / "x.png")
    assert img.GetSize() == (5, 4) and img.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(_arr(img), rgb)
    gray = _arr(mio.read(tmp_path / "x.png", as_gray=True))
    assert gray.dtype == np.float32 and gray.shape == (4, 5)
    np.testing.assert_allclose(gray[0, 0], 0.299 * 255, rtol=1e-6)
    np.testing.assert_allclose(gray[1, 2], 0.587 * 255, rtol=1e-6)
    np.testing.assert_allclose(gray[3, 4], 0.299 * 10 + 0.587 * 20 + 0.114 * 200, rtol=1e-6)
    assert gray[2, 2] == 0


def test_as_gray_leaves_grey_images_unchanged():
    img = mio.read(_file("MR_small.dcm"), as_gray=True)
    assert img.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(_arr(img), pydicom.dcmread(_file("MR_small.dcm")).pixel_array)


def test_import_does_not_load_pydicom():
    import subprocess
    import sys

    code = "import sys, medlab.io; print('pydicom' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
