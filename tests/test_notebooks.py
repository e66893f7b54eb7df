"""House rules for every notebook: committed without outputs, a `parameters` cell first, and a
test module of its own (``tests/test_nb_<stem>.py``) that runs it and checks its numbers."""

from __future__ import annotations

import json

import pytest

from notebook_support import NB_DIR, ROOT

NOTEBOOKS = sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), "first code cell must be tagged `parameters`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_its_own_test(path):
    test = ROOT / "tests" / f"test_nb_{path.stem}.py"
    assert test.is_file(), f"{path.relative_to(ROOT)} needs {test.relative_to(ROOT)} checking its recorded numbers"
    assert path.relative_to(NB_DIR).as_posix() in test.read_text()
