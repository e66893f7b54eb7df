"""The documentation site (docs/site, `bash tools/dev.sh docs`) covers the package, and the texts a
package index shows have no links it cannot resolve.

The full build (Sphinx with -W; about 25 s of CPU without notebooks) is not run here: it is
`bash tools/dev.sh docs`. These checks read its configuration and generate its pages."""

from __future__ import annotations

import re
import runpy
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "site"


def _run_conf(site: Path, monkeypatch, reports: Path | None = None) -> dict:
    """docs/site/conf.py run on a copy of the site (generated pages land in ``site``), without
    importing medlab's modules (that would import TensorFlow: the real build does)."""
    site.mkdir(exist_ok=True)
    for p in SITE.glob("*.*"):
        shutil.copy(p, site / p.name)
    monkeypatch.setenv("MEDLAB_DOCS_ROOT", str(ROOT))
    monkeypatch.setenv("MEDLAB_DOCS_NO_IMPORT", "1")
    monkeypatch.setenv("MEDLAB_REPORTS", str(reports or site / "no-reports"))
    return runpy.run_path(str(site / "conf.py"))


@pytest.fixture
def conf(tmp_path, monkeypatch):
    return _run_conf(tmp_path / "site", monkeypatch), tmp_path / "site"


def test_api_pages_cover_every_public_module(conf):
    import medlab

    ns, site = conf
    modules = set(ns["API_MODULES"])
    assert set(medlab._SUBMODULES) <= modules, set(medlab._SUBMODULES) - modules
    for mod in modules:
        text = (site / "_generated" / "api" / f"{mod}.rst").read_text()
        assert f".. automodule:: medlab.{mod}" in text


def test_notebook_pages_come_from_the_reports(tmp_path, monkeypatch):
    import json

    import nbformat

    reports = tmp_path / "reports"
    reports.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("1")]
    nbformat.write(nb, reports / "lung_ct.ipynb")
    site = tmp_path / "site"
    _run_conf(site, monkeypatch, reports)
    index = (site / "_generated" / "notebooks" / "index.md").read_text()
    assert "usecases/lung_ct" in index and "Not executed yet" in index and "tutorials/04_registration.ipynb" in index
    assert json.loads((site / "_generated" / "notebooks" / "usecases" / "lung_ct.ipynb").read_text())["cells"]
    bench = (site / "_generated" / "benchmarks.md").read_text()
    assert "| benchmark | medlab | baseline | target |" in bench


def test_site_pages_link_only_pages_that_exist():
    index = (SITE / "index.md").read_text()
    for target in re.findall(r"^(?!:)(\S+)$", index.split("```{toctree}")[1].split("```")[0], re.M):
        generated = target.startswith("_generated/")
        assert generated or (SITE / f"{target}.md").is_file(), target


def test_package_index_description_has_no_relative_links():
    import tomllib

    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    text = (ROOT / readme["file"]).read_text()
    links = re.findall(r"\]\(([^)]+)\)|src=\"([^\"]+)\"", text)
    assert [lnk for pair in links for lnk in pair if lnk and not lnk.startswith(("http://", "https://", "#"))] == []


def test_readme_and_dev_sh_name_the_docs_command():
    assert "bash tools/dev.sh docs" in (ROOT / "README.md").read_text()
    dev = (ROOT / "tools" / "dev.sh").read_text()
    assert re.search(r"^  docs\)$", dev, re.M) and "-W" in dev
