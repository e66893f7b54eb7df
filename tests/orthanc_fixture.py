"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin on 127.0.0.1
(:func:`medlab.pacs.local_orthanc`: random password, throw-away storage, only local clients).

Use it as a pytest plugin from a test module (``pytest_plugins = ["orthanc_fixture"]``) and
ask for ``orthanc`` (one server per test session and xdist worker) or ``orthanc_ct`` (the same
server, with the IBSI CT phantom series stored once).

TLS, two ways, because Debian's Orthanc 1.10.1 crashes on its first HTTPS request:

- ``orthanc_tls``: a second Orthanc whose DICOM port speaks only DICOM TLS (Orthanc's own
  TLS: DCMTK on OpenSSL), with a throw-away certificate authority; it checks the client's
  certificate too. This is the server's real TLS behaviour.
- ``https_proxy``: a TLS-terminating reverse proxy on 127.0.0.1 (Python's ``ssl`` and
  ``http.server``) in front of ``orthanc``'s HTTP port, so the DICOMweb client runs over HTTPS
  with certificate verification. Here the TLS server is the proxy, not Orthanc: it tests the
  client's side of HTTPS (trust, refusal, messages); DICOMweb behind it is Orthanc's.
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import ssl
import threading

import pytest

from medlab.pacs._orthanc import INSTALL_HINT, local_orthanc, make_certificates, orthanc_executable

MISSING = f"Orthanc and its DICOMweb plugin are not installed ({INSTALL_HINT})"


def free_port() -> int:
    """A local port nothing listens on (for 'PACS down' tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_orthanc(folder):
    return local_orthanc(folder)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A running Orthanc for this test session (per xdist worker); stopped at the end."""
    if orthanc_executable() is None:
        pytest.skip(MISSING)
    server = local_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ibsi_ct_dicom():
    """The IBSI CT phantom's DICOM series folder (60 slices)."""
    import medlab.datasets

    return medlab.datasets.fetch("ibsi_ct_phantom", ["dicom/*"], progress=False) / "dicom" / "image"


@pytest.fixture(scope="session")
def orthanc_ct(orthanc, ibsi_ct_dicom):
    """``orthanc`` holding the IBSI CT phantom series; returns ``(server, study_uid, series_uid)``."""
    import pydicom

    files = sorted(ibsi_ct_dicom.glob("*.dcm"))
    orthanc.upload(files)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return orthanc, str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    """Two unrelated throw-away certificate authorities with their server and client
    certificates: ``(right, wrong)``, each a dict of PEM paths (see ``make_certificates``)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl program is not installed (apt-get install -y openssl)")
    root = tmp_path_factory.mktemp("tls")
    return make_certificates(root / "right"), make_certificates(root / "wrong")


@pytest.fixture(scope="session")
def orthanc_tls(tmp_path_factory):
    """An Orthanc whose DICOM port speaks only DICOM TLS (client certificate required)."""
    if orthanc_executable() is None:
        pytest.skip(MISSING)
    if shutil.which("openssl") is None:
        pytest.skip("the openssl program is not installed (apt-get install -y openssl)")
    server = local_orthanc(tmp_path_factory.mktemp("orthanc-tls"), tls=True)
    yield server
    server.stop()


class _Forward(http.server.BaseHTTPRequestHandler):
    """Forward one request to the upstream HTTP server; the answer is sent whole (with its
    length), headers passed on except the hop-by-hop ones."""

    protocol_version = "HTTP/1.1"
    _HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in self._HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            r = upstream.getresponse()
            data = r.read()
        finally:
            upstream.close()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in self._HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args):  # quiet
        pass


class _TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port, context):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream_port = upstream_port
        self.context = context

    def finish_request(self, request, client_address):  # the handshake in the request's thread
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate (or hung up): nothing to serve
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def _https_proxy(orthanc, right, *, client_certificate: bool):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(right["server_cert"], right["server_key"])
    if client_certificate:
        ctx.load_verify_locations(right["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    server = _TlsServer(orthanc.http_port, ctx)
    threading.Thread(target=server.serve_forever, name="https-proxy", daemon=True).start()
    return server


@pytest.fixture(scope="session")
def https_proxy(orthanc, certificates):
    """``orthanc``'s DICOMweb over HTTPS: ``(url, ca)`` of a TLS-terminating reverse proxy on
    127.0.0.1 whose certificate (for 127.0.0.1) the ``right`` authority signed; it asks for
    a client certificate from that authority too (mutual TLS)."""
    server = _https_proxy(orthanc, certificates[0], client_certificate=True)
    yield f"https://127.0.0.1:{server.server_address[1]}/dicom-web", certificates[0]["ca"]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def https_proxy_server_only(orthanc, certificates):
    """The same as ``https_proxy`` without asking for a client certificate."""
    server = _https_proxy(orthanc, certificates[0], client_certificate=False)
    yield f"https://127.0.0.1:{server.server_address[1]}/dicom-web", certificates[0]["ca"]
    server.shutdown()
    server.server_close()
