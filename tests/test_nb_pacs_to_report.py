"""notebooks/usecases/pacs_to_report.ipynb against a PACS the test starts (Orthanc on 127.0.0.1,
the IBSI CT phantom series and its RTSTRUCT stored in it, and the sarcoma PET/CT written as DICOM
by medlab.pacs.store_sample_studies), its URL passed as PACS_URL (https://, through a TLS proxy,
with PACS_CA) and the credentials only through the environment."""

from pathlib import Path

import pytest
from notebook_support import run

from medlab.pacs import store_sample_studies

pytest_plugins = ["orthanc_fixture"]


@pytest.mark.notebook
def test_notebook_against_the_test_pacs(orthanc_ct, ibsi_ct_dicom, https_proxy_server_only, tmp_path, monkeypatch):
    server, study, _ = orthanc_ct
    server.upload(sorted((ibsi_ct_dicom.parent / "mask").glob("*.dcm")))
    sts = store_sample_studies(server.dicomweb(), tmp_path / "samples", studies=["sts"])["sts"]
    monkeypatch.setenv("MEDLAB_PACS_USERNAME", server.username)
    monkeypatch.setenv("MEDLAB_PACS_PASSWORD", server.password)
    # over HTTPS (a TLS-terminating proxy in front of Orthanc, see orthanc_fixture), checked with PACS_CA
    url, ca = https_proxy_server_only
    r = run("usecases/pacs_to_report.ipynb", tmp_path / "report", PACS_URL=url, PACS_CA=str(ca), STUDY_UID=study,
            SOLUTIONS=True)
    assert r["exercises_passed"] == 2  # every exercise's hidden solution passes its check
    assert r["n_ct_instances"] == 60 and r["skipped_on_rerun"] == 60
    assert r["seg_roundtrip_equal"] is True and r["sr_roundtrip_equal"] is True and r["stored_back"] is True
    assert r["n_sr_measurements"] == 6  # 2 segments x volume, long axis, mean HU
    # the IBSI phantom's GTV-1: measured 358.68 mL (125 256 voxels of 0.977 x 0.977 x 3 mm)
    assert r["reader_volume_ml"] == pytest.approx(358.6, abs=0.5)
    # the soft-tissue part (-29..150 HU) of GTV-1: measured 0.778 of its volume
    assert 0.6 < r["tissue_fraction"] < 0.9 and r["tissue_volume_ml"] < r["reader_volume_ml"]
    # the sarcoma PET/CT: stored as DICOM, retrieved in SUV, the reader's GTV from its SEG
    from medlab import datasets, segmentation

    assert r["n_pet_instances"] == 59 and r["pet_seg_roundtrip_equal"] is True and r["pet_sr_roundtrip_equal"] is True
    case = datasets.load("sts", case="STS_001", modality="PET", progress=False)
    want = segmentation.suv_metrics(case.image, case.labels["gtv"])
    step = want["suvmax"] / 65535  # write_dicom_series' rescale step of the hottest slice
    assert r["pet_reader_suvmax"] == pytest.approx(want["suvmax"], abs=step)
    assert r["pet_reader_mtv_ml"] == pytest.approx(want["mtv_ml"], rel=1e-6)
    # one click on the hottest voxel of the reader's GTV (otsu_box): measured Dice 0.668 with it
    assert r["pet_dice"] > 0.6
    assert r["pet_one_click_mtv_ml"] > 0 and r["pet_one_click_tlg_g"] > 0
    leaked = [p for p in Path(tmp_path).rglob("*") if p.is_file() and server.password.encode() in p.read_bytes()]
    assert leaked == []
