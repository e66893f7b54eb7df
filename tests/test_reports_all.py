"""`medlab report --all`: every notebook, an index page, records JSON, hide-code reports."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat

from medlab.reports import find_notebooks, run_all


def _nb(path, body, with_figure=False):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("N = 2")
    p.metadata["tags"] = ["parameters"]
    cells = [p]
    if with_figure:
        cells.append(nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, N])\nplt.show()"))
    cells.append(nbformat.v4.new_code_cell(body))
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_run_all_writes_index_thumbnails_records_and_survives_a_failure(tmp_path):
    root = tmp_path / "notebooks"
    (root / "tutorials").mkdir(parents=True)
    (root / "usecases").mkdir()
    _nb(root / "tutorials" / "01_a.ipynb", "from medlab.reports import record\nrecord(answer=N * 21)", with_figure=True)
    _nb(root / "usecases" / "bad.ipynb", "raise ValueError('broken on purpose')")
    notebooks = find_notebooks(root)
    assert [p.name for p in notebooks] == ["01_a.ipynb", "bad.ipynb"]
    out = tmp_path / "out"
    reports = run_all(out, notebooks, hide_code=True, progress=False)
    good, bad = reports
    assert good.error is None and good.records == {"answer": 42}
    assert json.loads(good.records_json.read_text()) == {"answer": 42}
    assert good.thumbnail.is_file() and good.thumbnail.read_bytes()[:4] == b"\x89PNG"
    html = good.html.read_text()
    assert "record(answer" not in html  # code hidden
    assert bad.error and "broken on purpose" in bad.error and not (out / "bad.html").exists()
    index = (out / "index.html").read_text()
    assert "01_a.html" in index and "01_a.png" in index and "answer" in index
    assert "failed" in index and "broken on purpose" in index and "1 of 2 notebooks ran" in index


def test_cli_report_all_exit_code_and_usage(tmp_path):
    root = tmp_path / "notebooks" / "tutorials"
    root.mkdir(parents=True)
    _nb(root / "ok.ipynb", "from medlab.reports import record\nrecord(n=N)")
    res = subprocess.run([sys.executable, "-m", "medlab.cli", "report", "--all", "--notebooks-dir",
                          str(tmp_path / "notebooks"), "--out", str(tmp_path / "out"), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "ok:" in res.stdout and (tmp_path / "out" / "index.html").is_file()
    res = subprocess.run([sys.executable, "-m", "medlab.cli", "report", "--all", "x.ipynb", "--out", "o"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "runs every notebook" in res.stderr


def test_cli_data_verify_rehashes(tmp_path):
    res = subprocess.run([sys.executable, "-m", "medlab.cli", "data", "verify", "ibsi_digital_phantom"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "every file matches its sha256" in res.stdout


def test_verify_ignores_the_memo(monkeypatch):
    import medlab.datasets
    from medlab.datasets import _fetch

    medlab.datasets.fetch("ibsi_digital_phantom", progress=False)  # remembered as verified
    calls = []
    real = _fetch._sha256
    monkeypatch.setattr(_fetch, "_sha256", lambda p: calls.append(p) or real(p))
    medlab.datasets.fetch("ibsi_digital_phantom", progress=False)
    assert calls == []  # fetch trusts the memo
    medlab.datasets.verify("ibsi_digital_phantom", progress=False)
    assert len(calls) == medlab.datasets.info("ibsi_digital_phantom")["n_files"] == 2
