"""medlab.pacs against a real PACS (Orthanc + DICOMweb plugin on 127.0.0.1, see
orthanc_fixture.py): search, retrieve (resume, workers, atomic files), store, errors, over
DICOMweb and DIMSE, with the IBSI CT phantom series (60 slices) and pydicom's test files."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

pytest.importorskip("pynetdicom")
pytest_plugins = ["orthanc_fixture"]

from medlab.pacs import DicomWebClient, DimseClient, PacsError  # noqa: E402


def _web(server, **kw):
    kw.setdefault("username", server.username)
    kw.setdefault("password", server.password)
    return DicomWebClient(server.dicomweb_url, **kw)


def _dimse(server, **kw):
    return DimseClient(server.host, server.dicom_port, called_aet=server.aet, calling_aet=server.client_aet, **kw)


@pytest.fixture(params=["dicomweb", "dimse", "dimse-move"])
def client(request, orthanc_ct):
    server = orthanc_ct[0]
    if request.param == "dimse-move":
        return server.dimse(move_port=True)
    return _web(server) if request.param == "dicomweb" else _dimse(server)


def _source_pixels(folder):
    out = {}
    for p in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(p)
        out[str(ds.SOPInstanceUID)] = ds.pixel_array
    return out


def test_echo(client):
    assert client.echo() is True


def test_search_levels_same_answers_over_dicomweb_and_dimse(orthanc_ct):
    server, study, series = orthanc_ct
    web, dimse = _web(server), _dimse(server)
    for level, kw in [("patient", {}), ("study", {}), ("series", {"study_uid": study}),
                      ("instance", {"study_uid": study, "series_uid": series})]:
        a = web.search(level, **kw, PatientID="1") if level != "instance" else web.search(level, **kw)
        b = dimse.search(level, **kw, PatientID="1") if level != "instance" else dimse.search(level, **kw)
        assert list(a.columns) == list(b.columns), level
        key = a.columns[0]
        a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
        assert a.astype(str).equals(b.astype(str)), (level, a, b)
    studies = web.search_studies(PatientID="1")
    assert list(studies.StudyInstanceUID) == [study]
    in_series = web.search_series(study)  # other modules of the session add RTSTRUCT/SEG/SR series
    assert studies.NumberOfStudyRelatedInstances[0] == in_series.NumberOfSeriesRelatedInstances.sum()
    assert in_series.set_index("SeriesInstanceUID").NumberOfSeriesRelatedInstances[series] == 60
    assert "CT" in studies.ModalitiesInStudy[0]
    assert web.search_patients(PatientID="1").NumberOfPatientRelatedStudies[0] == 1
    inst = dimse.search_instances(study, series)
    assert len(inst) == 60 and set(inst.SOPClassUID) == {pydicom.uid.CTImageStorage}


def test_search_filters(client, orthanc_ct):
    _, study, series = orthanc_ct
    assert list(client.search_series(study, Modality="CT").SeriesInstanceUID) == [series]
    assert client.search_series(study, Modality="MR").empty
    assert study in set(client.search_studies(PatientName="PA*").StudyInstanceUID)
    assert client.search_studies(PatientID="no-such-patient").empty
    with pytest.raises(ValueError, match="did you mean 'Modality'"):
        client.search_series(study, Modalty="CT")
    with pytest.raises(ValueError, match="level"):
        client.search("studies")


def test_retrieve_series_gives_the_source_pixels_and_image(client, orthanc_ct, ibsi_ct_dicom, tmp_path):
    import medlab.io

    _, study, series = orthanc_ct
    res = client.retrieve_series(study, series, tmp_path / "ct", progress=False)
    assert res.retrieved == 60 and res.skipped == 0 and len(res.files) == 60 and res.bytes > 60 * 60_000
    source = _source_pixels(ibsi_ct_dicom)
    got = _source_pixels(tmp_path / "ct")
    assert got.keys() == source.keys()
    assert all(np.array_equal(got[k], source[k]) for k in source)
    image = client.retrieve_image(study, series, progress=False)
    ref = medlab.io.read(ibsi_ct_dicom)
    assert image.GetSize() == ref.GetSize() == (204, 201, 60)
    np.testing.assert_allclose(image.GetSpacing(), ref.GetSpacing())
    np.testing.assert_allclose(image.GetOrigin(), ref.GetOrigin())
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(ref))


def _killed_writer_leaves_a_temporary_file(folder):
    """A process killed mid-write leaves its temporary file (as a killed retrieval would)."""
    import subprocess
    import sys

    code = ("import os, sys; from medlab._atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half an instance'); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(folder / "1.2.3.dcm")], check=False)
    assert len([p for p in folder.iterdir() if p.name.startswith(".")]) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_retrieval_resumes_skips_present_and_cleans_stale_parts(client, orthanc_ct, tmp_path, workers):
    _, study, series = orthanc_ct
    folder = tmp_path / "ct"
    first = client.retrieve_series(study, series, folder, progress=False)
    removed = first.files[::3]
    for p in removed:
        p.unlink()
    _killed_writer_leaves_a_temporary_file(folder)
    again = client.retrieve_series(study, series, folder, workers=workers, progress=False)
    assert (again.retrieved, again.skipped) == (len(removed), 60 - len(removed))
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in first.files)
    assert all(pydicom.dcmread(p).SOPInstanceUID == p.stem for p in removed)
    done = client.retrieve_series(study, series, folder, progress=False)
    assert (done.retrieved, done.skipped) == (0, 60)


def test_instance_listed_but_not_delivered_is_named_and_nothing_half_written(orthanc_ct, tmp_path, monkeypatch):
    server, study, series = orthanc_ct
    web = _web(server)
    real = web._list_instances
    ghost = "1.2.826.0.1.3680043.8.498.1"
    monkeypatch.setattr(web, "_list_instances", lambda s, r: [*real(s, r), ghost])  # Orthanc answers 404 for it
    with pytest.raises(PacsError, match="1 listed instance") as info:
        web.retrieve_series(study, series, tmp_path / "ct", progress=False)
    assert info.value.missing == [ghost] and len(info.value.retrieved) == 60
    assert sorted(p.suffix for p in (tmp_path / "ct").iterdir()) == [".dcm"] * 60


def test_unknown_series_is_a_clear_error(client, orthanc_ct, tmp_path):
    _, study, _ = orthanc_ct
    with pytest.raises(PacsError, match="no instances"):
        client.retrieve_series(study, "1.2.3.4.5", tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="series_uid"):
        client.retrieve_series(study, "not a uid", tmp_path / "x", progress=False)


def test_store_then_find_and_retrieve(orthanc, tmp_path):
    from pydicom.data import get_testdata_file

    web, dimse = _web(orthanc), _dimse(orthanc)
    for cl, name in ((web, "CT_small.dcm"), (dimse, "MR_small.dcm")):
        path = get_testdata_file(name)
        ds = pydicom.dcmread(path)
        assert cl.store(path, progress=False) == [ds.SOPInstanceUID]
        for other in (web, dimse):
            found = other.search_series(str(ds.StudyInstanceUID))
            assert list(found.SeriesInstanceUID) == [ds.SeriesInstanceUID] and found.Modality[0] == ds.Modality
        res = cl.retrieve_series(ds.StudyInstanceUID, ds.SeriesInstanceUID, tmp_path / name, progress=False)
        assert np.array_equal(pydicom.dcmread(res.files[0]).pixel_array, ds.pixel_array)
    with pytest.raises(ValueError, match="not a DICOM file"):
        web.store(__file__, progress=False)


def test_pacs_down_is_a_clear_error():
    from orthanc_fixture import free_port

    port = free_port()
    with pytest.raises(PacsError, match="cannot connect"):
        DicomWebClient(f"http://127.0.0.1:{port}/dicom-web", retries=1, backoff_s=0).echo()
    with pytest.raises(PacsError, match="cannot connect"):
        DimseClient("127.0.0.1", port, timeout_s=2).echo()


def test_wrong_credentials_never_leak(orthanc_ct, caplog, tmp_path):
    server, study, series = orthanc_ct
    secret = "wrong-" + server.password[:6] + "-secret"
    caplog.set_level(logging.DEBUG)
    for web in (_web(server, password=secret),
                DicomWebClient(f"http://{server.username}:{secret}@127.0.0.1:{server.http_port}/dicom-web")):
        assert secret not in repr(web)
        with pytest.raises(PacsError, match=r"refused access \(HTTP 401\)") as info:
            web.retrieve_series(study, series, tmp_path, progress=False)
        assert secret not in str(info.value) and server.password not in str(info.value)
    with pytest.raises(PacsError, match="no credentials"):
        DicomWebClient(server.dicomweb_url).echo()
    assert secret not in caplog.text and server.password not in caplog.text
    with pytest.raises(PacsError, match="calling AE title 'INTRUDER'"):
        DimseClient("127.0.0.1", server.dicom_port, called_aet=server.aet, calling_aet="INTRUDER").echo()


def test_series_that_gains_instances_during_retrieval(orthanc_ct, tmp_path, monkeypatch):
    server, study, series = orthanc_ct
    web, dimse = _web(server), _dimse(server)
    calls = []

    def growing(real, cut):  # the first listing sees half the series, as if the rest arrived later
        def listing(*args, **kwargs):
            calls.append(1)
            rows = sorted(real(*args, **kwargs), key=cut)
            return rows[:30] if len(calls) == 1 else rows
        return listing

    monkeypatch.setattr(web, "_list_instances", growing(web._list_instances, str))
    res = web.retrieve_series(study, series, tmp_path / "web", workers=2, progress=False)
    assert len(res.files) == 60 and res.retrieved == 60 and len(calls) == 3  # 30, 60, 60 (no change)
    calls.clear()
    monkeypatch.setattr(dimse, "_find", growing(dimse._find, lambda r: r["SOPInstanceUID"]))
    res = dimse.retrieve_series(study, series, tmp_path / "dimse", workers=2, progress=False)
    assert len(res.files) == 60 and res.retrieved == 60 and len(calls) == 3


def test_server_that_does_not_answer_is_a_timeout(tmp_path):
    import socket

    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with pytest.raises(PacsError, match=r"no answer within 0.5 s"):
            DicomWebClient(f"http://127.0.0.1:{port}/dicom-web", timeout_s=0.5, retries=0).echo()
        with pytest.raises(PacsError, match="did not answer within 0.5 s"):
            DimseClient("127.0.0.1", port, timeout_s=0.5).echo()


def test_retrieve_deidentified_keeps_pixels_drops_identity(client, orthanc_ct, ibsi_ct_dicom, tmp_path):
    from medlab.pacs import retrieve_deidentified

    _, study, series = orthanc_ct
    summary = retrieve_deidentified(client, study, series, tmp_path / "deid", key="a fixed test key", progress=False)
    files = sorted((tmp_path / "deid").rglob("*.dcm"))
    assert len(files) == 60 and not summary.skipped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deid"]  # the identifying copy is gone
    source = {float(pydicom.dcmread(p).ImagePositionPatient[2]): pydicom.dcmread(p) for p in ibsi_ct_dicom.glob("*.dcm")}
    for p in files[:5]:
        ds = pydicom.dcmread(p)
        original = source[float(ds.ImagePositionPatient[2])]
        assert ds.PatientName != original.PatientName and ds.StudyInstanceUID != original.StudyInstanceUID
        assert np.array_equal(ds.pixel_array, original.pixel_array)
