"""RTSTRUCT and DICOM SEG to label images."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import medlab.io as mio
from medlab.errors import ImageIOError


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_ibsi_rtstruct_matches_nifti_mask(ibsi_ct):
    image = mio.read(ibsi_ct / "dicom" / "image")
    rtstruct = ibsi_ct / "dicom" / "mask" / "DCM_RS_00060.dcm"
    assert mio.rtstruct_rois(rtstruct) == ["GTV-1"]
    labels = mio.rtstruct_to_labels(rtstruct, image)
    reference = mio.read(ibsi_ct / "nifti" / "mask.nii.gz")
    assert labels.GetSize() == image.GetSize() and labels.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_allclose(labels.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    got, want = sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(reference)
    assert set(np.unique(got)) == {0, 1}
    dice = _dice(got, want)
    assert dice >= 0.98, dice  # measured: 1.0 (all 125256 voxels identical)
    assert got.sum() == pytest.approx(want.sum(), rel=0.02)


def test_rtstruct_rois_of_pydicom_file():
    assert mio.rtstruct_rois(get_testdata_file("rtstruct.dcm")) == ["patient", "Isocenter 1", "Isocenter 2"]


def _reference() -> sitk.Image:
    img = sitk.Image(20, 16, 4, sitk.sitkInt16)
    img.SetSpacing((1.0, 2.0, 3.0))
    img.SetOrigin((-10.0, 5.0, 30.0))
    return img


def _square(x0, y0, x1, y1, z):
    return [x0, y0, z, x1, y0, z, x1, y1, z, x0, y1, z]


def _rtstruct(path, rois: dict[str, list[list[float]]]):
    """A minimal RTSTRUCT: ROI name -> list of closed planar contours (x, y, z mm triplets)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.StructureSetROISequence = []
    ds.ROIContourSequence = []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ROIName = name
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ContourSequence = []
        for points in contours:
            kind, points = points if isinstance(points, tuple) else ("CLOSED_PLANAR", points)
            contour = Dataset()
            contour.ContourGeometricType = kind
            contour.NumberOfContourPoints = len(points) // 3
            contour.ContourData = [f"{v:g}" for v in points]
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_contours_fill_voxel_centres_with_holes_by_even_odd(tmp_path):
    ref = _reference()
    # Slice k=1 is at z = 33 mm. Voxel (i, j) has its centre at x = -10 + i, y = 5 + 2 j.
    # Outer square x in [-8.5, 0.5], y in [8, 20]: centres x = -8..0 -> i = 2..10 (9 columns),
    # centres y = 9, 11, ..., 19 -> j = 2..7 (6 rows): 54 voxels
    outer = _square(-8.5, 8.0, 0.5, 20.0, 33.0)
    # Hole x in [-6.5, -2.5], y in [10.5, 15.5]: i = 4..7, j = 3..5 -> 4 x 3 = 12 voxels
    hole = _square(-6.5, 10.5, -2.5, 15.5, 33.0)
    # A second ROI on slice k=3 (z = 39): x in [0.5, 3.5], y in [6, 10]: i = 11..13, j = 1..2
    other = _square(0.5, 6.0, 3.5, 10.0, 39.0)
    # A POINT ROI (an isocentre) has no area: it is ignored, its label stays empty.
    iso = ("POINT", [-5.0, 11.0, 33.0])
    path = _rtstruct(tmp_path / "rs.dcm", {"body": [outer, hole], "spot": [other], "iso": [iso]})
    assert mio.rtstruct_rois(path) == ["body", "spot", "iso"]
    labels = sitk.GetArrayFromImage(mio.rtstruct_to_labels(path, ref))
    body = np.zeros((4, 16, 20), bool)
    body[1, 2:8, 2:11] = True
    body[1, 3:6, 4:8] = False  # the hole: 54 - 12 = 42 voxels
    spot = np.zeros_like(body)
    spot[3, 1:3, 11:14] = True
    assert (labels == 1).sum() == 42
    np.testing.assert_array_equal(labels == 1, body)
    np.testing.assert_array_equal(labels == 2, spot)
    # one ROI by name gives label 1 for it
    only = sitk.GetArrayFromImage(mio.rtstruct_to_labels(path, ref, roi="spot"))
    np.testing.assert_array_equal(only == 1, spot)
    assert only.max() == 1


def test_rtstruct_errors(tmp_path):
    ref = _reference()
    path = _rtstruct(tmp_path / "rs.dcm", {"GTV": [_square(-8, 8, 0, 20, 33.0)]})
    with pytest.raises(ValueError, match="did you mean 'GTV'"):
        mio.rtstruct_to_labels(path, ref, roi="GTV_")
    far = _reference()
    far.SetOrigin((500.0, 500.0, 500.0))
    with pytest.raises(ValueError, match="no contour of ROI 'GTV'.*lies within `reference_image`"):
        mio.rtstruct_to_labels(path, far)
    with pytest.raises(TypeError, match="`reference_image` must be a SimpleITK.Image"):
        mio.rtstruct_to_labels(path, np.zeros((4, 16, 20)))
    tilted = _rtstruct(tmp_path / "tilted.dcm", {"GTV": [[-8, 8, 30, 0, 8, 36, 0, 20, 36]]})
    with pytest.raises(ValueError, match="not in a slice plane"):
        mio.rtstruct_to_labels(tilted, ref)
    with pytest.raises(ImageIOError, match="not a DICOM RTSTRUCT"):
        mio.rtstruct_rois(get_testdata_file("CT_small.dcm"))


def test_seg_frames_land_on_their_slices():
    path = get_testdata_file("liver.dcm")
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array  # (3, 512, 512), one segment "Liver"
    # Reference: the SEG's grid with two extra slices below, so frame f lands on slice f + 2.
    ref = sitk.Image(512, 512, 5, sitk.sitkInt16)
    ref.SetSpacing((0.810547, 0.810547, 1.0))
    ref.SetOrigin((-235.2, -226.8, -130.69))
    labels = sitk.GetArrayFromImage(mio.seg_to_labels(path, ref))
    assert labels.shape == (5, 512, 512)
    assert labels[:2].max() == 0
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        k = round((z - -130.69) / 1.0)
        np.testing.assert_array_equal(labels[k], frames[f])
    assert labels.sum() > 1000
    wrong = sitk.Image(512, 512, 5, sitk.sitkInt16)
    wrong.SetSpacing((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="pixel spacing"):
        mio.seg_to_labels(path, wrong)
