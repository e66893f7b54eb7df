"""medlab.teaching.check: right answers pass, wrong ones say why and never raise."""

from __future__ import annotations

import numpy as np
import pytest

from medlab import teaching


@pytest.fixture(autouse=True)
def _fresh():
    teaching.reset()
    yield
    teaching.reset()


def test_numbers_within_tolerance(capsys):
    assert teaching.check("hu", 57.5004, 57.5, atol=0.001) is True
    assert "✓ hu: right" in capsys.readouterr().out
    assert teaching.check("hu", 57.6, 57.5, atol=0.01, hint="window first") is False
    out = capsys.readouterr().out
    assert "expected 57.5, got 57.6 (off by +0.1" in out and "hint: window first" in out
    assert teaching.passed() == 0  # the re-run replaced the first result


def test_relative_tolerance():
    assert teaching.check("x", 1001.0, 1000.0, rtol=1e-3)
    assert not teaching.check("y", 1002.0, 1000.0, rtol=1e-3)
    assert teaching.passed() == 1


def test_arrays_shape_then_values(capsys):
    e = np.arange(6.0).reshape(2, 3)
    assert not teaching.check("a", e.T, e)
    assert "expected shape (2, 3), got shape (3, 2)" in capsys.readouterr().out
    wrong = e.copy()
    wrong[1, 2] = 9
    assert not teaching.check("a", wrong, e)
    assert "1 of 6 values differ; the worst at index (1, 2): expected 5, got 9" in capsys.readouterr().out
    assert teaching.check("a", e + 1e-12, e)


def test_shapes_types_strings_bools_and_none(capsys):
    assert teaching.check("shape", (2, 3), (2, 3))
    assert not teaching.check("shape", np.zeros(3), (2, 3))
    assert "expected a tuple like (2, 3), got a ndarray" in capsys.readouterr().out
    assert not teaching.check("name", 3, "otsu")
    assert "expected a str, got a int" in capsys.readouterr().out
    assert teaching.check("flag", np.bool_(True), True)
    assert not teaching.check("flag2", False, True)
    assert not teaching.check("todo", None, 1.0)
    assert "no answer yet" in capsys.readouterr().out
    assert not teaching.check("text", "abc", 1.0)
    assert "expected a number or an array, got a str" in capsys.readouterr().out
    assert not teaching.check("nan", float("nan"), 1.0)
    assert teaching.passed() == 1  # "shape" failed on its second check; only "flag" stands


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="name"):
        teaching.check("", 1, 1)
    with pytest.raises(ValueError, match="rtol"):
        teaching.check("x", 1, 1, rtol=-1)


def test_student_copy_drops_solution_cells(tmp_path):
    from notebook_support import NB_DIR

    src = NB_DIR / "tutorials" / "03_classic_segmentation.ipynb"
    dst = tmp_path / "student" / "03.ipynb"
    removed = teaching.student_copy(src, dst)
    import json

    teacher = json.loads(src.read_text())["cells"]
    student = json.loads(dst.read_text())["cells"]
    assert removed == 3 and len(student) == len(teacher) - 3
    assert not any("SOLUTIONS:" in "".join(c["source"]) for c in student)
    assert "SOLUTIONS = False" in "".join(student[1]["source"])
    with pytest.raises(ValueError, match="dst"):
        teaching.student_copy(src, src)


def test_teachers_copy_keeps_solutions_and_bad_source_is_named(tmp_path):
    from notebook_support import NB_DIR

    src = NB_DIR / "tutorials" / "03_classic_segmentation.ipynb"
    assert teaching.student_copy(src, tmp_path / "t.ipynb", solutions=True) == 0
    import json

    teacher = json.loads((tmp_path / "t.ipynb").read_text())["cells"]
    assert len(teacher) == len(json.loads(src.read_text())["cells"])
    assert all(not c.get("outputs") for c in teacher if c["cell_type"] == "code")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="src: .*bad.ipynb is not a readable notebook"):
        teaching.student_copy(bad, tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()
