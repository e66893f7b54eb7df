"""A throw-away PACS on this machine: Orthanc (Debian packages ``orthanc`` and
``orthanc-dicomweb``) with its DICOMweb plugin, for teaching, notebooks and tests.

Orthanc 1.10 listens on every interface and has no bind-address option, so the sandbox is
locked down instead: HTTP refuses non-local clients (``RemoteAccessAllowed: false``) and needs a
random password; DICOM accepts only one registered calling AE title from 127.0.0.1
(``DicomCheckModalityHost``, every ``DicomAlwaysAllow*`` off). The storage is a folder of its
own; the password is never printed.

With ``tls=True`` its DICOM port speaks only DICOM TLS (Orthanc's own, DCMTK on OpenSSL) with
a throw-away certificate authority made for it (:func:`make_certificates`, ``openssl``): the
server's certificate is for 127.0.0.1, and it accepts only clients that present a certificate
from that authority. (Its HTTPS server is not used: Debian's Orthanc 1.10.1 crashes on its first
HTTPS request.)
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from medlab.pacs._common import PacsError

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
SERVER_AET = "ORTHANC"
CLIENT_AET = "MEDLAB"
INSTALL_HINT = "apt-get install -y orthanc orthanc-dicomweb (Debian/Ubuntu; .ci/run installs them)"


def orthanc_executable() -> str | None:
    """The Orthanc program when it and its DICOMweb plugin are installed, else None."""
    exe = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)
    return exe if exe and os.path.exists(DICOMWEB_PLUGIN) else None


def make_certificates(folder) -> dict[str, Path]:
    """A throw-away certificate authority and two certificates it signed, for TLS tests.

    Made with the ``openssl`` program (RSA 2048, valid for 2 days): ``ca`` (the authority's
    certificate, what a client or server trusts), ``server_cert``/``server_key`` (for
    ``127.0.0.1`` and ``localhost``, server authentication) and ``client_cert``/``client_key``
    (client authentication). Keys are written readable by their owner only. Never use them
    outside a sandbox.

    Parameters
    ----------
    folder : str or os.PathLike
        Where the PEM files go (created).

    Returns
    -------
    dict of str to pathlib.Path
        Keys ``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``.

    Raises
    ------
    FileNotFoundError
        The ``openssl`` program is not installed.
    """
    exe = shutil.which("openssl")
    if exe is None:
        raise FileNotFoundError("the `openssl` program is needed for test certificates: apt-get install -y openssl")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args):
        done = subprocess.run([exe, *args], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise PacsError("openssl", f"making test certificates failed: {done.stderr.strip()[-300:]}")

    old_mask = os.umask(0o077)  # the keys: owner only
    try:
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=medlab throw-away test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for who, usage in (("server", "serverAuth"), ("client", "clientAuth")):
            (folder / f"{who}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                               f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n")
            run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN=medlab test {who}")
            run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.crt", "-days", "2", "-extfile", f"{who}.ext")
    finally:
        os.umask(old_mask)
    return {"ca": folder / "ca.crt", "server_cert": folder / "server.crt", "server_key": folder / "server.key",
            "client_cert": folder / "client.crt", "client_key": folder / "client.key"}


def client_tls_context(ca, cert=None, key=None):
    """An ``ssl.SSLContext`` for a client that trusts ``ca`` (a PEM file) and, when given,
    presents ``cert``/``key`` (PEM files) as its own certificate. Host names are checked."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), None if key is None else str(key))
    return ctx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:  # a clean shutdown takes seconds; the storage is thrown away anyway
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class LocalOrthanc:
    """A running sandbox Orthanc: where it answers and its (random) credentials.

    Attributes
    ----------
    url, dicomweb_url : str
        Orthanc's REST API and its DICOMweb root (``http://127.0.0.1:PORT/dicom-web``).
    host, dicom_port, aet, client_aet : str, int, str, str
        DIMSE: the only calling AE title it accepts is ``client_aet``, from 127.0.0.1.
    client_port : int
        Where Orthanc sends C-MOVE results for ``client_aet`` (127.0.0.1).
    username, password : str
        HTTP basic authentication (``password`` is not shown in the repr).
    storage : pathlib.Path
        Its database and files.
    """

    http_port: int
    dicom_port: int
    username: str
    password: str = field(repr=False)
    storage: Path
    process: subprocess.Popen = field(repr=False)
    host: str = "127.0.0.1"
    aet: str = SERVER_AET
    client_aet: str = CLIENT_AET
    client_port: int = 0
    certificates: dict = field(default_factory=dict, repr=False)

    @property
    def tls(self) -> bool:
        """True when the DICOM port speaks only DICOM TLS (``local_orthanc(tls=True)``)."""
        return bool(self.certificates)

    def tls_context(self, *, client_certificate: bool = True):
        """The ``ssl.SSLContext`` a DIMSE client needs for this sandbox's DICOM TLS port: it
        trusts the sandbox's certificate authority and presents the client certificate
        (``client_certificate=False``: none, which the server refuses)."""
        if not self.tls:
            raise ValueError("this sandbox was started without `tls=True`")
        f = self.certificates
        return client_tls_context(f["ca"], f["client_cert"] if client_certificate else None,
                                  f["client_key"] if client_certificate else None)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def dicomweb(self, **options):
        """A :class:`DicomWebClient` for this sandbox, with its credentials."""
        from medlab.pacs._web import DicomWebClient

        return DicomWebClient(self.dicomweb_url, username=self.username, password=self.password, **options)

    def dimse(self, **options):
        """A :class:`DimseClient` for this sandbox (``move_port=True``: retrieve by C-MOVE;
        over DICOM TLS when the sandbox has it)."""
        from medlab.pacs._dimse import DimseClient

        if self.tls:
            options.setdefault("tls", self.tls_context())

        if options.get("move_port") is True:  # C-MOVE to the port Orthanc knows for client_aet
            options.update(move_port=self.client_port, move_bind=self.host)
        return DimseClient(self.host, self.dicom_port, called_aet=self.aet, calling_aet=self.client_aet, **options)

    def rest(self, method: str, path: str, **kwargs):
        """Orthanc's own REST API (set-up and checks)."""
        import requests

        r = requests.request(method, self.url + path, auth=(self.username, self.password), timeout=30, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def upload(self, paths) -> list[str]:
        """Store DICOM files through Orthanc's REST API; returns Orthanc's instance ids."""
        return [self.rest("POST", "/instances", data=Path(p).read_bytes())["ID"] for p in paths]

    def stop(self) -> None:
        """Stop the server (its storage folder stays; remove it yourself)."""
        _stop(self.process)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def local_orthanc(folder, *, tls: bool = False, timeout_s: float = 20.0) -> LocalOrthanc:
    """Start a sandbox Orthanc on free ports of 127.0.0.1 with its storage in ``folder``.

    It stops with :meth:`LocalOrthanc.stop`, at the end of a ``with`` block, or when the
    Python process exits.

    Parameters
    ----------
    folder : str or os.PathLike
        Its storage, configuration, log and (with ``tls``) certificates.
    tls : bool
        DICOM TLS only on the DICOM port, with throw-away certificates in ``folder/tls``
        (:func:`make_certificates`): clients must trust the sandbox's authority and present
        a certificate from it (:meth:`LocalOrthanc.tls_context`). HTTP stays plain.
    timeout_s : float
        Seconds to wait for it to answer.

    Raises
    ------
    FileNotFoundError
        Orthanc or its DICOMweb plugin is not installed (the message says how to install).
    PacsError
        It did not start (see ``orthanc.log`` in ``folder``).
    """
    import requests

    exe = orthanc_executable()
    if exe is None:
        raise FileNotFoundError(f"Orthanc and its DICOMweb plugin are not installed: {INSTALL_HINT}")
    folder = Path(folder)
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = _free_port(), _free_port()
    username, password = "medlab", secrets.token_urlsafe(16)
    client_port = _free_port()
    config = {
        "Name": "medlab-sandbox",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": SERVER_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalities": {
            "medlab": {
                "AET": CLIENT_AET, "Host": "127.0.0.1", "Port": client_port,
                "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True, "AllowStore": True,
            }
        },
        "StableAge": 1,
        "SaveJobs": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }
    certificates = make_certificates(folder / "tls") if tls else {}
    if tls:
        config.update(DicomTlsEnabled=True, DicomTlsCertificate=str(certificates["server_cert"]),
                      DicomTlsPrivateKey=str(certificates["server_key"]),
                      DicomTlsTrustedCertificates=str(certificates["ca"]), DicomTlsRemoteCertificateRequired=True)
        config["DicomModalities"]["medlab"]["UseDicomTls"] = True
    cfg = folder / "orthanc.json"
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the password
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    with open(folder / "orthanc.log", "wb") as log:
        # DCMTK (Orthanc's DICOM stack) leaves Nagle's algorithm on unless TCP_NODELAY is set:
        # each DIMSE round trip then waits for a delayed ACK (C-ECHO 44 ms -> 11 ms, C-STORE
        # 67 -> 27 ms per instance, measured here on 127.0.0.1)
        env = {**os.environ, "TCP_NODELAY": "1"}
        proc = subprocess.Popen([exe, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env)
    server = LocalOrthanc(http_port, dicom_port, username, password, storage, proc, client_port=client_port,
                          certificates=certificates)
    weakref.finalize(server, _stop, proc)
    atexit.register(_stop, proc)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise PacsError(server.url, f"Orthanc exited with code {proc.returncode}; see {folder / 'orthanc.log'}")
        try:
            if requests.get(server.url + "/system", auth=(username, password), timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise PacsError(server.url, f"Orthanc did not answer within {timeout_s} s; see {folder / 'orthanc.log'}")
        time.sleep(0.1)
