"""dciodvfy (Debian dicom3tools), the independent validator of the DICOM files the tests write."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def dciodvfy_errors(path) -> list[str]:
    """The ``Error`` lines dciodvfy reports for a DICOM file (its IOD's modules and attributes);
    skips the test when dciodvfy is not installed."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools; .ci/run installs it)")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
