"""Package-level promises: fast, light import; layering; widgets installed as medlab.widgets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "torch", "jax", "dask", "napari", "ipywidgets", "SimpleITK", "skimage", "pydicom")


def _loaded_after(stmt):
    code = f"import sys; {stmt}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_import_medlab_loads_no_heavy_dependency():
    assert _loaded_after("import medlab") == []


def test_processing_modules_do_not_load_ml_or_ui_stacks():
    loaded = _loaded_after("import medlab, medlab.io, medlab.enhance, medlab.filters, medlab.datasets, medlab.metrics, medlab.segmentation, medlab.display, medlab.reports")
    assert not set(loaded) & {"tensorflow", "keras", "torch", "jax", "dask", "napari", "ipywidgets"}


def test_submodules_load_lazily_by_attribute():
    import medlab

    assert medlab.io.__name__ == "medlab.io"
    try:
        medlab.nonexistent  # noqa: B018
    except AttributeError as exc:
        assert "nonexistent" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("medlab.nonexistent should raise AttributeError")


def test_widgets_package_is_medlab_widgets():
    import medlab.widgets

    assert Path(medlab.widgets.__file__).resolve().parent == ROOT / "widgets"


def test_medlab_never_imports_the_ui_layer():
    pat = re.compile(r"^\s*(from|import)\s+(medlab\.widgets|ipywidgets|napari|qtpy|PyQt\d|PySide\d|anywidget|ipyevents|ipympl)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "medlab").rglob("*.py") if pat.search(p.read_text())]
    assert offenders == []
