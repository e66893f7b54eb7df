"""The index page of `medlab report --all` groups reports by folder: tutorials, then use cases."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from notebook_support import NB_DIR

from medlab.reports import Report, find_notebooks, run_all, write_index


def test_the_project_use_cases_are_found():
    found = find_notebooks(NB_DIR)
    usecases = sorted(p.name for p in found if p.parent.name == "usecases")
    assert {"lung_ct.ipynb", "chest_radiograph.ipynb", "fetal_biometry.ipynb", "privacy.ipynb"} <= set(usecases)
    assert sorted(p.name for p in (NB_DIR / "usecases").glob("*.ipynb")) == usecases
    # tutorials come first, as on the index page
    groups = [p.parent.name for p in found]
    assert groups == sorted(groups, key=["tutorials", "usecases"].index)


def _sections(index: str) -> dict[str, str]:
    parts = re.split(r"<h2 id='[^']*'>([^<]+)</h2>", index)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_write_index_groups_by_folder(tmp_path):
    def rep(name, group, error=None):
        return Report(notebook=tmp_path / f"{name}.ipynb", html=None if error else tmp_path / f"{name}.html",
                      records={"x": 1}, seconds=1.0, error=error, group=group)

    reports = [rep("lung_ct", "usecases"), rep("01_intro", "tutorials"), rep("privacy", "usecases", error="boom"),
               rep("misc", None)]
    index = write_index(reports, tmp_path).read_text()
    sections = _sections(index)
    assert list(sections) == ["Tutorials", "Use cases", "Other notebooks"]
    assert "01_intro.html" in sections["Tutorials"] and "lung_ct" not in sections["Tutorials"]
    assert "lung_ct.html" in sections["Use cases"] and "boom" in sections["Use cases"]
    assert "1 of 2 ran" in sections["Use cases"]
    assert "3 of 4 notebooks ran" in index


def _nb(path: Path, body: str):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("N = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_run_all_records_the_group(tmp_path):
    root = tmp_path / "notebooks"
    for sub, name in (("tutorials", "01_t"), ("usecases", "u")):
        (root / sub).mkdir(parents=True)
        _nb(root / sub / f"{name}.ipynb", "from medlab.reports import record\nrecord(n=N)")
    reports = run_all(tmp_path / "out", find_notebooks(root), progress=False)
    assert [(r.notebook.name, r.group) for r in reports] == [("01_t.ipynb", "tutorials"), ("u.ipynb", "usecases")]
    sections = _sections((tmp_path / "out" / "index.html").read_text())
    assert "01_t.html" in sections["Tutorials"] and "u.html" in sections["Use cases"]


def test_run_all_refuses_colliding_names(tmp_path):
    for sub in ("tutorials", "usecases"):
        (tmp_path / sub).mkdir()
        _nb(tmp_path / sub / "same.ipynb", "pass")
    with pytest.raises(ValueError, match="share a name.*same"):
        run_all(tmp_path / "out", find_notebooks(tmp_path), progress=False)
