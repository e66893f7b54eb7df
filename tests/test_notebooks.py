"""House rules for every notebook: committed without outputs, a `parameters` cell first, and a
test module of its own (``tests/test_nb_<stem>.py``) that runs it and checks its numbers."""

from __future__ import annotations

import json
import re

import pytest

from notebook_support import NB_DIR, ROOT

NOTEBOOKS = sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_notebooks_follow_the_layout():
    """``tutorials/NN_topic.ipynb`` numbered 00, 01, ... without gaps or duplicates, and
    ``usecases/topic.ipynb``; no notebook anywhere else."""
    rel = [p.relative_to(NB_DIR).as_posix() for p in NOTEBOOKS]
    tutorials = [r for r in rel if r.startswith("tutorials/")]
    usecases = [r for r in rel if r.startswith("usecases/")]
    assert tutorials and usecases and sorted(tutorials + usecases) == rel
    numbers = []
    for t in tutorials:
        m = re.fullmatch(r"tutorials/(\d\d)_[a-z0-9_]+\.ipynb", t)
        assert m, f"{t}: tutorials are named NN_topic.ipynb"
        numbers.append(int(m.group(1)))
    assert numbers == list(range(len(numbers))), f"tutorial numbers {numbers}"
    bad = [u for u in usecases if not re.fullmatch(r"usecases/[a-z0-9_]+\.ipynb", u)]
    assert bad == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_records_its_numbers_last(path):
    """The last code cell records the headline numbers (``medlab.reports.record``) that the
    notebook's test and the README gallery read."""
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "record(" in "".join(code[-1]["source"]), "the last code cell must call medlab.reports.record(...)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), "first code cell must be tagged `parameters`"


#: the longest code line a notebook may hold: one idea per line, readable beside the prose
MAX_LINE = 120


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_lines_are_short(path):
    cells = json.loads(path.read_text())["cells"]
    long = [(i, len(line)) for i, c in enumerate(cells) if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if len(line) > MAX_LINE]
    assert long == [], f"code lines over {MAX_LINE} characters (cell, length): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_its_own_test(path):
    test = ROOT / "tests" / f"test_nb_{path.stem}.py"
    assert test.is_file(), f"{path.relative_to(ROOT)} needs {test.relative_to(ROOT)} checking its recorded numbers"
    assert path.relative_to(NB_DIR).as_posix() in test.read_text()


def test_each_notebook_runs_once_in_the_suite():
    """The default run of a notebook is its papermill run in ``tests/test_nb_<stem>.py`` with the
    solutions on; nbval runs only the student's default (``SOLUTIONS=False``) of the notebooks
    named in testpaths, so no notebook runs twice with the same parameters."""
    import tomllib

    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--nbval-lax" in opts["addopts"]
    nbval_runs = [p for p in opts["testpaths"] if p.endswith(".ipynb")]
    assert "notebooks" not in opts["testpaths"] and 1 <= len(nbval_runs) <= 3
    for rel in nbval_runs:
        path = ROOT / rel
        assert path.is_file(), rel
        test = (ROOT / "tests" / f"test_nb_{path.stem}.py").read_text()
        assert test.count("run(") >= 1 and "SOLUTIONS=True" in test, f"{rel}: papermill must run the solutions"
        assert "SOLUTIONS = False" in _parameters(path), f"{rel}: the student's default is SOLUTIONS = False"


def _parameters(path) -> str:
    nb = json.loads(path.read_text())
    return next("".join(c["source"]) for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))


def test_course_page_lists_every_notebook_with_the_gallery_run_time():
    """docs/site/course.md (syllabus) names every notebook once, with the run time of the
    README's generated gallery table, so the two cannot drift apart; its exercise counts are
    the notebooks' check cells."""
    course = (ROOT / "docs" / "site" / "course.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        rel = path.relative_to(NB_DIR).as_posix()
        rows = [line for line in course.splitlines() if line.startswith("|") and f"`{rel}`" in line]
        assert len(rows) == 1, f"{rel}: one row in the syllabus"
        gallery = [line for line in readme.splitlines() if f"[`{rel}`]" in line]
        assert gallery, f"{rel} missing from the README gallery"
        assert rows[0].rstrip(" |").split("|")[-1].strip() == gallery[0].rstrip(" |").split("|")[-1].strip(), rel
        checks = sum("check(" in "".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "code" and "check(" in "".join(c["source"]) and "SOLUTIONS" not in "".join(c["source"]))
        cell = rows[0].split("|")[4 if rel.startswith("tutorials/") else 3].strip()  # the exercises column
        assert cell == (str(checks) if checks else "—"), f"{rel}: {checks} exercises"


def test_notebooks_are_the_source():
    """The .ipynb is what a teacher edits: no builder generates notebooks from strings."""
    assert not (ROOT / "tools" / "nbbuild").exists()
    assert "nbbuild" not in (ROOT / "CONTRIBUTING.md").read_text().replace("former `tools/nbbuild/`", "")
