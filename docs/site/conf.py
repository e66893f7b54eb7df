"""Sphinx configuration of medlab's documentation site (``bash tools/dev.sh docs``).

The site is built offline from this folder plus three generated parts, written into
``_generated/`` at the start of every build:

- ``api/``: one page per public medlab module (autodoc + numpydoc, from the docstrings);
- ``notebooks/``: the executed notebooks of ``$MEDLAB_REPORTS`` (default ``reports/``, written
  by ``bash tools/dev.sh report``) as pages with their outputs, never executed here;
- ``benchmarks.md``: the benchmark table of the README.

Every warning is an error (``sphinx-build -W``), and nitpicky mode turns an unresolved
reference into a warning, so a broken link between pages fails the build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("MEDLAB_DOCS_ROOT", HERE.parents[1]))
GEN = HERE / "_generated"
REPORTS = Path(os.environ.get("MEDLAB_REPORTS", ROOT / "reports"))
sys.path.insert(0, str(ROOT))

project = "medlab"
author = "the medlab developers"
copyright = "2026, the medlab developers (code: BSD-3-Clause; data: their own licences)"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_title = "medlab"
html_static_path: list[str] = []
# The build needs no network. Formulas render in the browser with MathJax, which the pages load
# from Sphinx's default CDN address (without a network they show as TeX source).

# notebooks are shown as papermill executed them: never run here
nb_execution_mode = "off"
nb_output_stderr = "remove"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = [
    "myst.header",  # notebook markdown may start below level 1 (a cell's own heading levels)
    "mystnb.unknown_mime_type",  # the records MIME type (application/vnd.medlab.records+json)
]

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_mock_imports = ["tensorflow", "keras", "napari", "torch", "jax"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
nitpicky = False  # types in numpydoc lines are prose (``(M, N) ndarray``), not references

#: public modules documented on the API pages, in the order of the architecture's module map
API_MODULES = [
    "io", "datasets", "enhance", "filters", "segmentation", "registration", "fusion", "features",
    "classification", "detection", "metrics", "models", "privacy", "reports", "batch", "pacs",
    "display", "apps", "apps.cardiac", "apps.vessels", "apps.neuro", "apps.breast", "apps.chest", "dedup",
    "errors",
]


def _reexported(mod: str) -> list[str]:
    """Names a module re-exports from another documented module (documented there, once).

    ``$MEDLAB_DOCS_NO_IMPORT`` skips this (it imports every module, TensorFlow included): the
    configuration checks of the test suite use it.
    """
    import importlib

    if os.environ.get("MEDLAB_DOCS_NO_IMPORT"):
        return []

    module = importlib.import_module(f"medlab.{mod}")
    out = []
    for name in getattr(module, "__all__", []):
        home = getattr(getattr(module, name, None), "__module__", None) or ""
        # the documented module a name lives in: the longest of API_MODULES that holds its home
        # (medlab.apps.cardiac's functions belong to 'apps.cardiac', not to 'apps')
        owners = [m for m in API_MODULES if home == f"medlab.{m}" or home.startswith(f"medlab.{m}.")]
        if owners and max(owners, key=len) != mod:
            out.append(name)
    return out


def _api_pages() -> None:
    out = GEN / "api"
    out.mkdir(parents=True)
    for mod in API_MODULES:
        title = f"medlab.{mod}"
        exclude = _reexported(mod)
        option = f"   :exclude-members: {', '.join(exclude)}\n" if exclude else ""
        (out / f"{mod}.rst").write_text(
            f"{title}\n{'=' * len(title)}\n\n.. automodule:: medlab.{mod}\n{option}", encoding="utf-8")
    toc = "\n".join(f"   {mod}" for mod in API_MODULES)
    (out / "index.rst").write_text(
        "API reference\n=============\n\nGenerated from the docstrings (numpydoc). Array index "
        "order is numpy's ``(z, y, x)``; physical points are SimpleITK's ``(x, y, z)`` in mm.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toc}\n", encoding="utf-8")


def _notebook_pages() -> None:
    from medlab.reports import find_notebooks

    out = GEN / "notebooks"
    out.mkdir(parents=True)
    sections, missing = {"tutorials": [], "usecases": []}, []
    for src in find_notebooks(ROOT / "notebooks"):
        group = src.parent.name
        executed = REPORTS / src.name
        if not executed.is_file():
            missing.append(f"{group}/{src.name}")
            continue
        (out / group).mkdir(exist_ok=True)
        nb = json.loads(executed.read_text(encoding="utf-8"))
        nb.get("metadata", {}).pop("widgets", None)
        (out / group / src.name).write_text(json.dumps(nb), encoding="utf-8")
        sections[group].append(f"{group}/{src.stem}")
    lines = ["# Notebooks", "",
             "The tutorials and use cases as `bash tools/dev.sh report` executed them (from "
             f"`{REPORTS.name}/`): text, code, figures and the recorded numbers, and at the end "
             "the data each one used (embedded sample or full data set). `medlab notebooks DIR` "
             "copies the notebooks themselves out of an installed medlab.", ""]
    for group, title in (("tutorials", "Tutorials"), ("usecases", "Use cases")):
        if sections[group]:
            lines += [f"## {title}", "", "```{toctree}", ":maxdepth: 1", "", *sections[group], "```", ""]
    if missing:
        lines += ["## Not executed yet", "",
                  f"No executed copy in `{REPORTS}` of: " + ", ".join(f"`{m}`" for m in missing)
                  + ". Run `bash tools/dev.sh report`, then build the site again.", ""]
    (out / "index.md").write_text("\n".join(lines), encoding="utf-8")


def _benchmarks_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Benchmarks\n(.*?)(?=^## )", readme, re.M | re.S)
    body = m.group(1).strip() if m else "The README has no benchmark section."
    (GEN / "benchmarks.md").write_text(
        "# Benchmarks\n\nFrom the README (measured on a 2-core development machine; "
        "`bash tools/dev.sh bench` measures again).\n\n" + body + "\n", encoding="utf-8")


def _generate() -> None:
    shutil.rmtree(GEN, ignore_errors=True)
    GEN.mkdir()
    _api_pages()
    _notebook_pages()
    _benchmarks_page()


_generate()
