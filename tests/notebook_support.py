"""Shared by the per-notebook tests ``tests/test_nb_*.py``: run a notebook as `medlab report`
does and return its recorded numbers."""

from __future__ import annotations

from pathlib import Path

from medlab.reports import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"


def run(rel: str, tmp_path, **parameters) -> dict:
    """Execute ``notebooks/<rel>`` with ``parameters``; check the HTML report; return records."""
    report = run_notebook(NB_DIR / rel, tmp_path, parameters, progress=False, timeout_s=900)
    assert report.html.stat().st_size > 10_000
    return report.records
