"""medlab.pacs.write_rtstruct: an RT Structure Set whose contours run along the voxel edges, so
that medlab.io.rtstruct_to_labels (voxel centres inside, even-odd) gives the masks back voxel
for voxel; validated by dciodvfy (dicom3tools); stored in and found on a real PACS."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from skimage.draw import polygon

pytest.importorskip("pynetdicom")
pytest_plugins = ["orthanc_fixture"]

import medlab.io  # noqa: E402
from medlab.pacs import write_rtstruct  # noqa: E402
from medlab.pacs._rtstruct import _pixel_edge_loops  # noqa: E402
from dicom_validator import dciodvfy_errors  # noqa: E402


def test_pixel_edge_loops_fill_back_to_the_mask():
    rng = np.random.default_rng(1)
    for trial in range(100):  # noise: holes, islands, pixels touching at corners only
        mask = rng.random((9, 11)) > 0.5
        back = np.zeros_like(mask)
        for loop in _pixel_edge_loops(mask):
            rr, cc = polygon(loop[:, 0] - 0.5, loop[:, 1] - 0.5, mask.shape)
            filled = np.zeros_like(mask)
            filled[rr, cc] = True
            back ^= filled
        assert np.array_equal(back, mask), trial
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True
    (loop,) = _pixel_edge_loops(square)
    assert sorted(map(tuple, loop)) == [(1, 1), (1, 4), (4, 1), (4, 4)]  # corners only


@pytest.fixture(scope="module")
def ct_and_masks(ibsi_ct_dicom):
    ct = medlab.io.read(ibsi_ct_dicom)
    gtv = medlab.io.rtstruct_to_labels(ibsi_ct_dicom.parent / "mask" / "DCM_RS_00060.dcm", ct, roi="GTV-1")
    ring = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)  # a ring: a hole in every slice
    zz, yy, xx = np.ogrid[: ring.shape[0], : ring.shape[1], : ring.shape[2]]
    r2 = (yy - 60) ** 2 + (xx - 50) ** 2
    ring[(r2 < 15**2) & (r2 >= 6**2) & (zz >= 10) & (zz < 20)] = 1
    ring_image = sitk.GetImageFromArray(ring)
    ring_image.CopyInformation(ct)
    return ct, sitk.Cast(gtv > 0, sitk.sitkUInt8), ring_image


def test_rtstruct_round_trip_is_exact_and_valid(ct_and_masks, ibsi_ct_dicom, tmp_path):
    ct, gtv, ring = ct_and_masks
    path = write_rtstruct([gtv, ring], ibsi_ct_dicom, tmp_path / "rt.dcm", names=["GTV-1 (medlab)", "ring"],
                          interpreted_types=["GTV", "ORGAN"], colors=[(255, 0, 0), (0, 128, 255)])
    assert dciodvfy_errors(path) == []
    rois = pydicom.dcmread(path).ROIContourSequence
    assert [list(r.ROIDisplayColor) for r in rois] == [[255, 0, 0], [0, 128, 255]]
    assert medlab.io.rtstruct_rois(path) == ["GTV-1 (medlab)", "ring"]
    for name, mask in (("GTV-1 (medlab)", gtv), ("ring", ring)):
        back = medlab.io.rtstruct_to_labels(path, ct, roi=name)
        assert np.array_equal(sitk.GetArrayFromImage(back) > 0, sitk.GetArrayFromImage(mask) > 0), name
    ds = pydicom.dcmread(path)
    source = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in ibsi_ct_dicom.glob("*.dcm")}
    first = ds.ROIContourSequence[0].ContourSequence[0]
    assert first.ContourGeometricType == "CLOSED_PLANAR"
    assert first.ContourImageSequence[0].ReferencedSOPInstanceUID in source
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence] == ["GTV", "ORGAN"]
    # the ring's slices have two contours each (outside and hole): 10 slices -> 20
    assert len(ds.ROIContourSequence[1].ContourSequence) == 20
    # the published GTV-1 contour, rasterised and written again: the same voxels as the original
    original = medlab.io.rtstruct_to_labels(ibsi_ct_dicom.parent / "mask" / "DCM_RS_00060.dcm", ct, roi="GTV-1")
    assert np.array_equal(sitk.GetArrayFromImage(medlab.io.rtstruct_to_labels(path, ct, roi="GTV-1 (medlab)")) > 0,
                          sitk.GetArrayFromImage(original) > 0)


def test_label_image_and_bad_input(ct_and_masks, ibsi_ct_dicom, tmp_path):
    ct, gtv, ring = ct_and_masks
    labels = sitk.Cast(gtv, sitk.sitkUInt8) + sitk.Cast(ring, sitk.sitkUInt8) * 2 * (1 - sitk.Cast(gtv, sitk.sitkUInt8))
    path = write_rtstruct(labels, ibsi_ct_dicom, tmp_path / "rt.dcm", names=["gtv", "ring"])
    back = sitk.GetArrayFromImage(medlab.io.rtstruct_to_labels(path, ct))
    assert np.array_equal(back, sitk.GetArrayFromImage(labels))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_rtstruct(labels, ibsi_ct_dicom, path, names=["gtv", "ring"])
    with pytest.raises(ValueError, match="`names` has 1 name"):
        write_rtstruct(labels, ibsi_ct_dicom, tmp_path / "b.dcm", names=["gtv"])
    with pytest.raises(ValueError, match="`interpreted_types`"):
        write_rtstruct(labels, ibsi_ct_dicom, tmp_path / "b.dcm", names=["gtv", "ring"], interpreted_types=["TUMOUR", ""])
    with pytest.raises(ValueError, match="ROI 'empty' has no voxel"):
        write_rtstruct([gtv, gtv * 0], ibsi_ct_dicom, tmp_path / "b.dcm", names=["gtv", "empty"])
    with pytest.raises(ValueError, match="source series is"):
        write_rtstruct(np.zeros((3, 4, 5), np.uint8), ibsi_ct_dicom, tmp_path / "b.dcm", names=["x"])
    assert not (tmp_path / "b.dcm").exists()


def test_rtstruct_stored_in_the_pacs(orthanc_ct, ct_and_masks, ibsi_ct_dicom, tmp_path):
    server, study, _ = orthanc_ct
    ct, gtv, ring = ct_and_masks
    path = write_rtstruct([ring], ibsi_ct_dicom, tmp_path / "rt.dcm", names=["ring"])
    web = server.dicomweb()
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
    web.store(path, progress=False)
    try:
        found = web.search_series(study, Modality="RTSTRUCT")
        assert uid in set(found.SeriesInstanceUID)
        got = web.retrieve_series(study, uid, tmp_path / "back", progress=False).files[0]
        back = medlab.io.rtstruct_to_labels(got, ct)
        assert np.array_equal(sitk.GetArrayFromImage(back) > 0, sitk.GetArrayFromImage(ring) > 0)
    finally:
        # the Orthanc is shared by the session's tests: a second RTSTRUCT left in the phantom's study
        # made test_nb_pacs_to_report's notebook contour the ring (16.8 mL) instead of GTV-1
        for hit in server.rest("POST", "/tools/lookup", data=uid):
            server.rest("DELETE", hit["Path"])
