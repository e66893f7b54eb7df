"""medlab.reports and the `medlab report` command: parameters, records, atomic outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from medlab.errors import MedlabError
from medlab.reports import RECORDS_MIME, notebook_parameters, parse_value, read_records, record, run_notebook


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("N = 3\nSCALE = 0.5")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


GOOD = "import numpy as np\nfrom medlab.reports import record\nrecord(total=np.float64(N * SCALE), n=N, names=['a', 'b'])"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    nb = _notebook(src / "demo.ipynb", GOOD)
    out = tmp_path_factory.mktemp("out")
    return run_notebook(nb, out, {"N": 7}, progress=False)


def test_run_notebook_injects_parameters_and_reads_records(executed):
    assert executed.records == {"total": 3.5, "n": 7, "names": ["a", "b"]}
    assert executed.notebook.is_file() and executed.html.is_file()
    html = executed.html.read_text()
    assert "medlab-records" in html and "3.5" in html
    assert read_records(executed.notebook) == executed.records
    # nothing else (no temp files) left in the output folder
    assert sorted(p.name for p in executed.notebook.parent.iterdir()) == ["demo.html", "demo.ipynb", "demo.records.json"]


def test_notebook_parameters_lists_defaults(tmp_path):
    nb = _notebook(tmp_path / "p.ipynb", "pass")
    assert notebook_parameters(nb) == {"N": "3", "SCALE": "0.5"}


def test_unknown_parameter_suggests_the_right_name(tmp_path):
    nb = _notebook(tmp_path / "p.ipynb", "pass")
    with pytest.raises(ValueError, match=r"no parameter 'SCAL'.*did you mean 'SCALE'"):
        run_notebook(nb, tmp_path / "out", {"SCAL": 1}, progress=False)
    assert not (tmp_path / "out").exists()


def test_failing_notebook_leaves_no_report(tmp_path):
    nb = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom at N=' + str(N))")
    out = tmp_path / "out"
    with pytest.raises(MedlabError, match="RuntimeError: boom at N=3"):
        run_notebook(nb, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["bad.failed.ipynb"]


def test_out_dir_must_not_be_the_source_folder(tmp_path):
    nb = _notebook(tmp_path / "p.ipynb", "pass")
    with pytest.raises(ValueError, match="must differ"):
        run_notebook(nb, tmp_path, progress=False)


def test_record_outside_ipython_returns_plain_values():
    np = pytest.importorskip("numpy")
    assert record(a=np.int64(2), b=np.array([1.5, 2.0]), c=float("nan")) == {"a": 2, "b": [1.5, 2.0], "c": None}
    with pytest.raises(TypeError, match="record `x`"):
        record(x=object())
    with pytest.raises(ValueError):
        record()


def test_read_records_merges_in_order():
    nb = nbformat.v4.new_notebook()
    c1, c2 = nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")
    c1.outputs = [nbformat.v4.new_output("display_data", data={RECORDS_MIME: {"x": 1, "y": 2}})]
    c2.outputs = [nbformat.v4.new_output("display_data", data={RECORDS_MIME: json.dumps({"y": 3})})]
    nb.cells = [c1, c2]
    assert read_records(nb) == {"x": 1, "y": 3}


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("'STS_001'", "STS_001"), ("STS_001", "STS_001"), ("[1, 2]", [1, 2]), ("True", True)])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_cli_report(tmp_path):
    nb = _notebook(tmp_path / "cli.ipynb", GOOD)
    out = tmp_path / "reports"
    res = subprocess.run(
        [sys.executable, "-m", "medlab.cli", "report", str(nb), "--out", str(out), "-p", "N", "2", "-q"],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "total = 1.0" in res.stdout and (out / "cli.html").is_file()
