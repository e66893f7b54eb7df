"""DICOM SEG and SR written by medlab.pacs: exact round trips on the IBSI CT phantom series
(its GTV-1 contour and a second coded segment), validated by dciodvfy (dicom3tools), readable
by pydicom, SimpleITK and medlab.io.seg_to_labels, stored in and read back from a real PACS."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

pytest.importorskip("highdicom")
pytest_plugins = ["orthanc_fixture"]

import medlab.io  # noqa: E402
from dicom_validator import dciodvfy_errors  # noqa: E402
from medlab.pacs import (  # noqa: E402
    DicomWebClient,
    Segment,
    read_seg,
    read_sr,
    segment_measurements,
    write_seg,
    write_sr,
)

# the phantom's PatientName "PAT1" has one component; highdicom says so (the data, not us)
pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")


@pytest.fixture(scope="module")
def ct_case(ibsi_ct_dicom):
    ct = medlab.io.read(ibsi_ct_dicom)
    rtstruct = ibsi_ct_dicom.parent / "mask" / "DCM_RS_00060.dcm"
    gtv = sitk.GetArrayFromImage(medlab.io.rtstruct_to_labels(rtstruct, ct, roi="GTV-1")) > 0
    hu = sitk.GetArrayFromImage(ct)
    labels = np.zeros(hu.shape, np.uint8)
    labels[gtv] = 1
    labels[(hu > 300) & ~gtv] = 2
    assert (labels == 1).sum() > 1000 and (labels == 2).sum() > 100
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(ct)
    return ct, image


SEGMENTS = [Segment("GTV-1", "Tissue", "Neoplasm", tracking_id="lesion 1"),
            Segment("dense", ("85756007", "SCT", "Tissue"), "Bone")]


@pytest.fixture(scope="module")
def seg_file(ct_case, ibsi_ct_dicom, tmp_path_factory):
    return write_seg(ct_case[1], ibsi_ct_dicom, tmp_path_factory.mktemp("seg") / "seg.dcm", segments=SEGMENTS)


def test_binary_seg_round_trip_is_exact_and_valid(ct_case, seg_file, ibsi_ct_dicom):
    ct, labels = ct_case
    back, segments = read_seg(seg_file, ct)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))
    assert back.GetOrigin() == ct.GetOrigin() and back.GetSpacing() == ct.GetSpacing()
    via_io = medlab.io.seg_to_labels(seg_file, ct)
    assert np.array_equal(sitk.GetArrayFromImage(via_io), sitk.GetArrayFromImage(labels))
    assert [(s["label"], s["category"], s["type"], s["tracking_id"]) for s in segments] == [
        ("GTV-1", ("85756007", "SCT", "Tissue"), ("108369006", "SCT", "Neoplasm"), "lesion 1"),
        ("dense", ("85756007", "SCT", "Tissue"), ("272673000", "SCT", "Bone"), None)]
    assert dciodvfy_errors(seg_file) == []
    ds = pydicom.dcmread(seg_file)
    source = pydicom.dcmread(next(ibsi_ct_dicom.glob("*.dcm")), stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert len(ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == 60
    assert sitk.ReadImage(str(seg_file)).GetSize() == (204, 201, int(ds.NumberOfFrames))  # 60 frames x 2 segments


def test_fractional_seg_round_trip_in_1_over_255_steps(ct_case, ibsi_ct_dicom, tmp_path):
    ct, _ = ct_case
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    p = np.clip((hu + 1000) / 2000, 0, 1)
    maps = [p, 1 - p]
    images = []
    for m in maps:
        im = sitk.GetImageFromArray(m)
        im.CopyInformation(ct)
        images.append(im)
    path = write_seg([images[0], maps[1]], ibsi_ct_dicom, tmp_path / "prob.dcm",
                     segments=["soft", "air"], fractional=True)
    fractions, segments = read_seg(path, ct, fractions=True)
    assert [s["label"] for s in segments] == ["soft", "air"]
    for got, want in zip(fractions, maps):
        assert np.array_equal(sitk.GetArrayFromImage(got), np.round(want * 255).astype(np.float32) / 255)
    assert dciodvfy_errors(path) == []
    assert pydicom.dcmread(path).SegmentationType == "FRACTIONAL"


def test_overlapping_binary_segments_round_trip(ct_case, ibsi_ct_dicom, tmp_path):
    ct, labels = ct_case
    gtv = sitk.Cast(labels == 1, sitk.sitkUInt8)
    core = sitk.BinaryErode(gtv, [3, 3, 1])  # inside the GTV: the two segments overlap
    path = write_seg([gtv, core], ibsi_ct_dicom, tmp_path / "overlap.dcm", segments=["GTV", "core"])
    masks, _ = read_seg(path, ct, fractions=True)
    for got, want in zip(masks, (gtv, core)):
        assert np.array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want).astype(np.float32))
    assert dciodvfy_errors(path) == []
    measured = segment_measurements([gtv, core], ct)
    assert measured[2]["volume_ml"] < measured[1]["volume_ml"] == segment_measurements(labels, ct)[1]["volume_ml"]


def test_sr_measurement_report_round_trip(ct_case, seg_file, ibsi_ct_dicom, tmp_path):
    ct, labels = ct_case
    measured = segment_measurements(labels, ct)
    assert set(measured) == {1, 2}
    gtv = sitk.GetArrayFromImage(labels) == 1
    spacing = np.prod(ct.GetSpacing())
    assert measured[1]["volume_ml"] == pytest.approx(gtv.sum() * spacing / 1000, rel=1e-12)
    assert measured[1]["mean_hu"] == pytest.approx(sitk.GetArrayFromImage(ct)[gtv].mean(), rel=1e-9)
    pet_like = {1: {"suv_max": 7.25, "suv_peak": 5.5, "suv_mean": 3.125, "mtv_ml": 12.0, "tlg_g": 37.5}}
    report = {1: {**measured[1], **pet_like[1]}, 2: measured[2]}
    path = write_sr(tmp_path / "sr.dcm", seg=seg_file, source=ibsi_ct_dicom, measurements=report)
    assert dciodvfy_errors(path) == []
    table = read_sr(path)
    seg = pydicom.dcmread(seg_file, stop_before_pixels=True)
    assert set(table.seg_sop_uid) == {seg.SOPInstanceUID}
    assert dict(zip(table.segment_number, table.tracking_id)) == {1: "GTV-1", 2: "dense"}
    units = {"volume_ml": "ml", "longest_diameter_mm": "mm", "mean_hu": "[hnsf'U]", "suv_max": "{SUVbw}g/ml",
             "suv_peak": "{SUVbw}g/ml", "suv_mean": "{SUVbw}g/ml", "mtv_ml": "ml", "tlg_g": "g"}
    assert len(table) == sum(len(v) for v in report.values())
    for row in table.itertuples():
        want = report[row.segment_number][row.name]
        assert row.unit == units[row.name]
        assert row.value == pytest.approx(want, rel=1e-12, abs=1e-12)  # DS: 16 characters
    exact = table[table.name.isin(["suv_max", "suv_peak", "suv_mean", "mtv_ml", "tlg_g"])]
    assert dict(zip(exact.name, exact.value)) == pet_like[1]
    derivations = dict(zip(table.name, table.derivation))
    assert derivations["suv_max"] == "Maximum" and derivations["suv_peak"] == "Peak Value Within ROI"
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SR" and ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.StudyInstanceUID == seg.StudyInstanceUID


def test_pet_measurements_agree_with_suv_metrics():
    from medlab import datasets, segmentation

    pet_case = datasets.load("sts", case="STS_001", modality="PET", progress=False)
    pet, gtv = pet_case.image, pet_case.label
    mask = sitk.Cast(gtv > 0, sitk.sitkUInt8)
    got = segment_measurements(mask, pet, modality="PT")[1]
    want = segmentation.suv_metrics(pet, mask)
    assert (got["suv_max"], got["suv_mean"], got["suv_peak"], got["mtv_ml"], got["tlg_g"]) == (
        want["suvmax"], want["suvmean"], want["suvpeak"], want["mtv_ml"], want["tlg"])
    assert got["volume_ml"] == pytest.approx(got["mtv_ml"], rel=1e-12)
    assert got["longest_diameter_mm"] == segmentation.longest_diameter(mask)
    with pytest.raises(ValueError, match="modality"):
        segment_measurements(mask, pet, modality="MR")


def test_bad_input_is_named(ct_case, ibsi_ct_dicom, seg_file, tmp_path):
    ct, labels = ct_case
    with pytest.raises(ValueError, match="labels run 0..2; `segments` describes 1..1"):
        write_seg(labels, ibsi_ct_dicom, tmp_path / "a.dcm", segments=["one"])
    shifted = sitk.Image(labels)
    shifted.SetOrigin(tuple(np.add(ct.GetOrigin(), (0, 0, 1.5))))
    with pytest.raises(ValueError, match="does not fall on a slice"):
        write_seg(shifted, ibsi_ct_dicom, tmp_path / "a.dcm", segments=["one", "two"])
    with pytest.raises(ValueError, match="shape"):
        write_seg(np.zeros((3, 4, 5), np.uint8), ibsi_ct_dicom, tmp_path / "a.dcm", segments=["one"])
    with pytest.raises(ValueError, match="did you mean 'Neoplasm'"):
        write_seg(labels, ibsi_ct_dicom, tmp_path / "a.dcm", segments=[Segment("x", type="Neoplasmm"), "y"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_seg([sitk.Cast(labels, sitk.sitkFloat32) * 2], ibsi_ct_dicom, tmp_path / "a.dcm",
                  segments=["p"], fractional=True)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_seg(labels, ibsi_ct_dicom, seg_file, segments=SEGMENTS)
    with pytest.raises(ValueError, match="did you mean 'volume_ml'"):
        write_sr(tmp_path / "sr.dcm", seg=seg_file, source=ibsi_ct_dicom, measurements={1: {"volume_mL": 1.0}})
    with pytest.raises(ValueError, match="segment 3 is not in the SEG"):
        write_sr(tmp_path / "sr.dcm", seg=seg_file, source=ibsi_ct_dicom, measurements={3: {"volume_ml": 1.0}})
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written


def test_seg_and_sr_stored_in_the_pacs_and_read_back(orthanc_ct, ct_case, seg_file, ibsi_ct_dicom, tmp_path):
    server, study, series = orthanc_ct
    pacs = DicomWebClient(server.dicomweb_url, username=server.username, password=server.password)
    ct, labels = ct_case
    sr = write_sr(tmp_path / "sr.dcm", seg=seg_file, source=ibsi_ct_dicom,
                  measurements={1: {"volume_ml": 2.5, "longest_diameter_mm": 31.0}})
    pacs.store([seg_file, sr], progress=False)
    seg_series, sr_series = (str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in (seg_file, sr))
    found = pacs.search_series(study)  # other tests of this session may have stored more SEG/SR series
    modality_of = dict(zip(found.SeriesInstanceUID, found.Modality))
    assert (modality_of[series], modality_of[seg_series], modality_of[sr_series]) == ("CT", "SEG", "SR")
    seg_back = pacs.retrieve_series(study, seg_series, tmp_path / "seg", progress=False).files[0]
    got, _ = read_seg(seg_back, ct)
    assert np.array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(labels))
    sr_back = pacs.retrieve_series(study, sr_series, tmp_path / "sr", progress=False).files[0]
    assert dict(zip(read_sr(sr_back).name, read_sr(sr_back).value)) == {"volume_ml": 2.5, "longest_diameter_mm": 31.0}
