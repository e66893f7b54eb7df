"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin on 127.0.0.1
(:func:`medlab.pacs.local_orthanc`: random password, throw-away storage, only local clients).

Use it as a pytest plugin from a test module (``pytest_plugins = ["orthanc_fixture"]``) and
ask for ``orthanc`` (one server per test session and xdist worker) or ``orthanc_ct`` (the same
server, with the IBSI CT phantom series stored once).
"""

from __future__ import annotations

import socket

import pytest

from medlab.pacs._orthanc import INSTALL_HINT, local_orthanc, orthanc_executable

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
