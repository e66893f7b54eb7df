"""Shared test set-up.

Real data come only through medlab's dataset registry. On developer machines and in CI the
registry's local store is ``../shared/data`` (set here when ``MEDLAB_DATA_STORE`` is unset);
the download cache is a fresh temporary folder so tests never write into a home directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_STORE = ROOT.parent / "shared" / "data"

if "MEDLAB_DATA_STORE" not in os.environ and _STORE.is_dir():
    os.environ["MEDLAB_DATA_STORE"] = str(_STORE)


@pytest.fixture(scope="session", autouse=True)
def _medlab_cache(tmp_path_factory):
    """Point medlab's download cache at a per-session temporary folder."""
    old = os.environ.get("MEDLAB_CACHE_DIR")
    os.environ["MEDLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("medlab-cache"))
    yield
    if old is None:
        os.environ.pop("MEDLAB_CACHE_DIR", None)
    else:
        os.environ["MEDLAB_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def ibsi_ct():
    """Root folder of the IBSI CT radiomics phantom (``nifti/`` and ``dicom/`` inside)."""
    import medlab.datasets

    return medlab.datasets.fetch("ibsi_ct_phantom")
