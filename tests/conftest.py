"""Fixtures for the unit tests (the data store and cache are set up by the root conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ibsi_ct():
    """Root folder of the IBSI CT radiomics phantom (``nifti/`` and ``dicom/`` inside)."""
    import medlab.datasets

    return medlab.datasets.fetch("ibsi_ct_phantom", progress=False)


@pytest.fixture
def no_leaked_threads():
    """Fails a test that leaves a widget's background job (a ``medlab-`` thread) running."""
    import threading

    before = set(threading.enumerate())
    yield
    left = [th for th in threading.enumerate() if th not in before and th.name.startswith("medlab-")]
    assert left == [], f"background jobs left running: {left}"


@pytest.fixture
def no_store(tmp_path, monkeypatch):
    """A fresh machine: no data store, no data-source setting, an empty cache (returned) and
    downloads switched off (the root conftest also blocks the network in this process)."""
    monkeypatch.delenv("MEDLAB_DATA_STORE", raising=False)
    monkeypatch.delenv("MEDLAB_DATA_SOURCE", raising=False)
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDLAB_OFFLINE", "1")
    return tmp_path / "cache"
