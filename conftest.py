"""Test-run set-up shared by tests/ and the notebooks run under nbval.

Real data come only through medlab's dataset registry. On developer machines and in CI the
registry's local store is ``../shared/data`` (used when ``MEDLAB_DATA_STORE`` is unset), and the
cache is a fresh temporary folder per test process, so a test run never writes into a home
directory. Notebook kernels inherit both settings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_STORE = Path(__file__).resolve().parent.parent / "shared" / "data"
_saved: dict = {}


def pytest_configure(config):
    if "MEDLAB_DATA_STORE" not in os.environ and _STORE.is_dir():
        os.environ["MEDLAB_DATA_STORE"] = str(_STORE)
    _saved["cache"] = os.environ.get("MEDLAB_CACHE_DIR")
    _saved["tmp"] = tempfile.mkdtemp(prefix="medlab-test-cache-")
    os.environ["MEDLAB_CACHE_DIR"] = _saved["tmp"]


def pytest_unconfigure(config):
    if _saved.get("cache") is None:
        os.environ.pop("MEDLAB_CACHE_DIR", None)
    else:
        os.environ["MEDLAB_CACHE_DIR"] = _saved["cache"]
    if _saved.get("tmp"):
        shutil.rmtree(_saved["tmp"], ignore_errors=True)
