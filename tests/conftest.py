"""Fixtures for the unit tests (the data store and cache are set up by the root conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ibsi_ct():
    """Root folder of the IBSI CT radiomics phantom (``nifti/`` and ``dicom/`` inside)."""
    import medlab.datasets

    return medlab.datasets.fetch("ibsi_ct_phantom", progress=False)
