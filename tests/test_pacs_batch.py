"""A medlab.batch cohort from a real PACS (Orthanc on 127.0.0.1): a series query becomes the
cohort, the Dask worker retrieves its own case with credentials from its environment, measures
the segments and stores DICOM SEG + SR back; nothing secret reaches the output folder."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

pytest.importorskip("distributed")
pytest.importorskip("highdicom")
pytest_plugins = ["orthanc_fixture"]

import medlab.io  # noqa: E402
from medlab import batch, segmentation  # noqa: E402
from medlab.pacs import DicomWebClient, cohort_from_pacs, connect, write_seg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")


def test_connect_picks_the_transport(monkeypatch):
    monkeypatch.setenv("MEDLAB_PACS_USERNAME", "someone")
    monkeypatch.setenv("MEDLAB_PACS_PASSWORD", "not-shown")
    web = connect("http://127.0.0.1:8042/dicom-web")
    assert type(web).__name__ == "DicomWebClient" and "not-shown" not in repr(web)
    dimse = connect("dicom://ORTHANC@127.0.0.1:4242?calling_aet=ME&move_port=11112")
    assert (dimse.called_aet, dimse.calling_aet, dimse.port, dimse.move_port) == ("ORTHANC", "ME", 4242, 11112)
    with pytest.raises(ValueError, match="dicom://"):
        connect("ftp://127.0.0.1")


@pytest.mark.slow
def test_cohort_from_pacs_measured_and_stored_back(orthanc_ct, ibsi_ct_dicom, tmp_path, monkeypatch):
    server, study, series = orthanc_ct
    monkeypatch.setenv("MEDLAB_PACS_USERNAME", server.username)
    monkeypatch.setenv("MEDLAB_PACS_PASSWORD", server.password)
    pacs = DicomWebClient(server.dicomweb_url, username=server.username, password=server.password)
    ct = medlab.io.read(ibsi_ct_dicom)
    labels = medlab.io.rtstruct_to_labels(ibsi_ct_dicom.parent / "mask" / "DCM_RS_00060.dcm", ct, roi="GTV-1")
    seg = write_seg(labels, ibsi_ct_dicom, tmp_path / "gtv.dcm", segments=["GTV-1"])
    pacs.store(seg, progress=False)
    seg_series = str(pydicom.dcmread(seg, stop_before_pixels=True).SeriesInstanceUID)
    mask_file = medlab.io.write(labels, tmp_path / "gtv.nii.gz")

    cohort = cohort_from_pacs(server.dicomweb_url, store_back=True, StudyInstanceUID=study, Modality="CT")
    assert list(cohort.case_id) == [series] and server.password not in cohort.to_csv()
    by_seg = cohort.assign(seg_series_uid=seg_series)
    by_mask = cohort.assign(case_id="ct-with-mask-file", mask=str(mask_file))
    table = tmp_path / "cohort.csv"
    __import__("pandas").concat([by_seg, by_mask]).to_csv(table, index=False)

    out = tmp_path / "out"
    res = batch.run_cohort(table, "pacs_measure", out, n_workers=1, progress=False)
    assert res.failed == [] and sorted(res.computed) == sorted([series, "ct-with-mask-file"])
    results = res.table.set_index("case_id")
    want = segmentation.label_statistics(labels, ct).volume_ml[0]
    for case in (series, "ct-with-mask-file"):
        assert results.loc[case, "seg1_volume_ml"] == pytest.approx(want, rel=1e-12)
    assert results.loc[series, "stored"] == 1 and results.loc["ct-with-mask-file", "stored"] == 2
    assert results.loc[series, "seg_sop_uid"] == pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID
    retrieved = sorted((out / "images" / series).glob("*.dcm"))
    assert len(retrieved) == 60
    for sr_uid in results.sr_sop_uid:  # every SR is on the PACS now
        srs = pacs.search_series(study, Modality="SR")
        found = [u for s in srs.SeriesInstanceUID for u in pacs.search_instances(study, s).SOPInstanceUID]
        assert sr_uid in found
    leaked = [p for p in out.rglob("*") if p.is_file() and server.password.encode() in p.read_bytes()]
    assert leaked == []

    again = batch.run_cohort(table, "pacs_measure", out, n_workers=1, progress=False)
    assert sorted(again.skipped) == sorted(res.computed) and again.computed == []
    back = medlab.io.seg_to_labels(out / "dicom" / "ct-with-mask-file" / "seg.dcm", ct)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))
