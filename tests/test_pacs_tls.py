"""medlab.pacs over TLS (see orthanc_fixture.py for what each server is):

- DIMSE over DICOM TLS against Orthanc's own TLS (DCMTK/OpenSSL), which also checks the
  client's certificate: C-ECHO, C-STORE, C-FIND, C-GET, and each way a handshake fails.
- DICOMweb over HTTPS through a TLS-terminating reverse proxy (Python ssl) in front of
  Orthanc's HTTP port: certificate verification on the client's side, with Orthanc answering
  the DICOMweb requests behind it.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

pytest.importorskip("pynetdicom")
pytest_plugins = ["orthanc_fixture"]

from medlab.pacs import DicomWebClient, DimseClient, PacsError  # noqa: E402
from medlab.pacs._orthanc import client_tls_context  # noqa: E402


def _dimse(server, **kw):
    return DimseClient(server.host, server.dicom_port, called_aet=server.aet, calling_aet=server.client_aet,
                       timeout_s=10, **kw)


def test_dicom_tls_store_find_get_against_orthanc(orthanc_tls, ibsi_ct_dicom, tmp_path):
    files = sorted(ibsi_ct_dicom.glob("*.dcm"))[:6]
    client = orthanc_tls.dimse()
    assert client.tls is not None and client.echo() is True
    stored = client.store(files, progress=False)
    ds = pydicom.dcmread(files[0])
    assert len(stored) == 6
    series = client.search_series(str(ds.StudyInstanceUID))
    assert list(series.NumberOfSeriesRelatedInstances) == [6]
    res = client.retrieve_series(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), tmp_path / "got",
                                 progress=False)
    assert res.retrieved == 6
    for f in files:
        src = pydicom.dcmread(f)
        got = pydicom.dcmread(tmp_path / "got" / f"{src.SOPInstanceUID}.dcm")
        np.testing.assert_array_equal(got.pixel_array, src.pixel_array)


def test_dicom_tls_failures_say_why(orthanc_tls, orthanc, certificates):
    right, wrong = orthanc_tls.certificates, certificates[1]
    cases = [
        # the server's certificate is signed by an authority the client does not trust
        (client_tls_context(wrong["ca"], right["client_cert"], right["client_key"]),
         orthanc_tls, "PACS's certificate is not trusted"),
        # the client presents no certificate, or one the server's authority did not sign
        (orthanc_tls.tls_context(client_certificate=False), orthanc_tls, "refused this client's certificate"),
        (client_tls_context(right["ca"], wrong["client_cert"], wrong["client_key"]), orthanc_tls,
         "refused this client's certificate"),
        # plain DICOM to the TLS port; TLS to a plain port
        (None, orthanc_tls, "speaks DICOM TLS on this port: pass `tls`"),
        (orthanc_tls.tls_context(), orthanc, "(closed the connection during the handshake|does not speak TLS)"),
    ]
    for ctx, server, message in cases:
        with pytest.raises(PacsError, match=message):
            _dimse(server, tls=ctx).echo()


def test_dicom_tls_options_are_checked(orthanc_tls):
    with pytest.raises(ValueError, match="`tls` must be an ssl.SSLContext"):
        _dimse(orthanc_tls, tls="ca.pem")
    with pytest.raises(ValueError, match="`tls` and `move_port`"):
        _dimse(orthanc_tls, tls=orthanc_tls.tls_context(), move_port=11112)


def test_dicomweb_over_https_verifies_the_certificate(https_proxy, orthanc_ct, certificates, tmp_path,
                                                      monkeypatch):
    url, ca = https_proxy
    server, study, series = orthanc_ct
    right, wrong = certificates
    # requests lets REQUESTS_CA_BUNDLE override a session's `verify`: the client's must win
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong["ca"]))
    auth = {"username": server.username, "password": server.password}
    web = DicomWebClient(url, **auth, verify=ca, cert=(right["client_cert"], right["client_key"]))
    assert web.echo() is True
    assert list(web.search_series(study, Modality="CT").SeriesInstanceUID) == [series]
    res = web.retrieve_series(study, series, tmp_path / "ct", progress=False)
    assert res.retrieved == 60 and len(res.files) == 60
    img = web.retrieve_image(study, series, progress=False)
    assert img.GetSize()[2] == 60
    # STOW-RS over HTTPS: a copy of one slice under new UIDs, in a study of its own (the CT
    # study is shared by the session's tests, which count its series)
    ds = pydicom.dcmread(res.files[0])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    assert web.store(ds, progress=False) == [str(ds.SOPInstanceUID)]
    # an authority that did not sign the proxy's certificate (given, or from the environment)
    for verify in (wrong["ca"], True):
        bad = DicomWebClient(url, **auth, verify=verify, cert=(right["client_cert"], right["client_key"]))
        with pytest.raises(PacsError, match="TLS failed \\(certificate verify failed: .*\\); check `verify`") as e:
            bad.echo()
        assert server.password not in str(e.value)
    # no client certificate, or one from another authority
    for cert in (None, (wrong["client_cert"], wrong["client_key"])):
        with pytest.raises(PacsError, match="TLS failed .*client certificate it trusts \\(`cert`\\)") as e:
            DicomWebClient(url, **auth, verify=ca, cert=cert).echo()
        assert server.password not in str(e.value)
    with pytest.raises(ValueError, match="`verify` must be True/False or the path of an existing PEM file"):
        DicomWebClient(url, verify=tmp_path / "missing.pem")
