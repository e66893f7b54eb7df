"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin, on 127.0.0.1.

Use it as a pytest plugin from a test module (``pytest_plugins = ["orthanc_fixture"]``) and
ask for the ``orthanc`` fixture (one server per test session and xdist worker) or
``orthanc_ct`` (the same server, with the IBSI CT phantom series stored once).

Orthanc 1.10 listens on every interface and has no bind-address option, so the server is
locked down instead: HTTP refuses non-local clients (``RemoteAccessAllowed: false``) and
needs a random password; DICOM accepts only the registered calling AE title from 127.0.0.1
(``DicomCheckModalityHost``, every ``DicomAlwaysAllow*`` off). The storage is a throw-away
folder. The password is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
SERVER_AET = "ORTHANC"
CLIENT_AET = "MEDLAB"
MISSING = (
    "Orthanc and its DICOMweb plugin are not installed "
    "(apt-get install -y orthanc orthanc-dicomweb; .ci/run installs them)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OrthancServer:
    """A running Orthanc: where it answers and the credentials the tests use."""

    http_port: int
    dicom_port: int
    username: str
    password: str = field(repr=False)
    storage: Path
    process: subprocess.Popen = field(repr=False)
    host: str = "127.0.0.1"
    aet: str = SERVER_AET
    client_aet: str = CLIENT_AET

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, method: str, path: str, **kwargs):
        """Orthanc's own REST API (for test set-up and checks only)."""
        import requests

        r = requests.request(method, self.url + path, auth=(self.username, self.password), timeout=30, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def upload(self, paths) -> list[str]:
        """Store DICOM files through Orthanc's REST API; returns the Orthanc instance ids."""
        return [self.rest("POST", "/instances", data=Path(p).read_bytes())["ID"] for p in paths]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:  # a clean shutdown takes seconds; the storage is thrown away anyway
                self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_orthanc(folder: Path, *, client_port: int = 0, timeout_s: float = 20.0) -> OrthancServer:
    """Start Orthanc on free local ports with its storage in ``folder``; wait until it answers."""
    import requests

    if ORTHANC is None or not os.path.exists(DICOMWEB_PLUGIN):
        raise FileNotFoundError(MISSING)
    folder = Path(folder)
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    username, password = "medlab", secrets.token_urlsafe(16)
    config = {
        "Name": "medlab-test-pacs",
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
                "AET": CLIENT_AET, "Host": "127.0.0.1", "Port": client_port or free_port(),
                "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True,
                "AllowStore": True,
            }
        },
        "HttpTimeout": 60,
        "StableAge": 1,
        "SaveJobs": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config))
    os.chmod(cfg, 0o600)
    log = open(folder / "orthanc.log", "wb")
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    log.close()
    server = OrthancServer(http_port, dicom_port, username, password, storage, proc)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {proc.returncode}; see {folder / 'orthanc.log'}")
        try:
            r = requests.get(server.url + "/system", auth=(username, password), timeout=2)
            if r.status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"Orthanc did not answer within {timeout_s} s; see {folder / 'orthanc.log'}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A running Orthanc for this test session (per xdist worker); stopped at the end."""
    if ORTHANC is None or not os.path.exists(DICOMWEB_PLUGIN):
        pytest.skip(MISSING)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
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
