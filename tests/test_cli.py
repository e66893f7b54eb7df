"""The command line fails the way a user can act on: one line on stderr, a non-zero exit code,
no traceback (unless --debug), and nothing written when the output cannot be."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from medlab import cli


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "medlab", *args], capture_output=True, text=True, timeout=timeout)


def _one_line_error(res, code, *needles):
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    # a progress bar (tqdm, on stderr) may come first; the error itself is one line
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "%|" not in ln]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_python_dash_m_medlab_is_the_command_line():
    res = _run("--help")
    assert res.returncode == 0 and "notebooks" in res.stdout and "report" in res.stdout


@pytest.mark.parametrize("action", ["info", "fetch", "verify"])
def test_unknown_data_set_is_one_line_with_a_suggestion(action):
    _one_line_error(_run("data", action, "stss"), 1, "medlab data:", "did you mean 'sts'")


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError, match="did you mean 'sts'"):
        cli.main(["--debug", "data", "info", "stss"])
    with pytest.raises(ValueError, match="did you mean 'sts'"):
        cli.main(["data", "info", "stss", "--debug"])
    assert cli.main(["data", "info", "stss"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_report_out_that_is_a_file(tmp_path):
    out = tmp_path / "out.html"
    out.write_text("x")
    line = _one_line_error(_run("report", "--all", "--out", str(out)), 2, "--out", "is a file")
    assert str(out) in line and out.read_text() == "x"


def test_report_all_without_notebooks_says_how_to_get_them(tmp_path):
    _one_line_error(_run("report", "--all", "--notebooks-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")),
                    2, "medlab notebooks")
    assert not (tmp_path / "o").exists()


def test_deid_into_an_unwritable_folder_fails_before_reading_anything(tmp_path, monkeypatch):
    import pydicom.data

    src = pydicom.data.get_testdata_file("CT_small.dcm")
    read = []
    monkeypatch.setattr("medlab.privacy.deidentify", lambda *a, **k: read.append(a))
    # /proc takes no new files, even for root (who ignores permission bits)
    assert cli.main(["deid", src, "/proc/medlab-deid-out", "--key", "k"]) == 2
    assert read == []
    if os.geteuid() != 0:  # pragma: no cover - CI runs as root
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert cli.main(["deid", src, str(ro / "out"), "--key", "k"]) == 2
    res = _run("deid", src, "/proc/medlab-deid-out", "--key", "k")
    _one_line_error(res, 2, "not writable", "/proc")


def test_data_error_says_how_to_get_a_store_and_leaves_no_empty_folder(tmp_path, monkeypatch):
    import medlab.datasets
    from medlab.errors import DatasetError

    cache = tmp_path / "cache"
    monkeypatch.delenv("MEDLAB_DATA_STORE", raising=False)
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")
    with pytest.raises(DatasetError) as err:
        medlab.datasets.fetch("sts", ["STS_002/*"], progress=False)
    msg = str(err.value)
    assert "medlab data fetch sts" in msg and "MEDLAB_DATA_STORE" in msg and "'sts/<file>'" in msg
    assert not cache.exists()  # today: ~/.cache/medlab/sts/STS_002 was left behind, empty
    cache.mkdir()
    with pytest.raises(DatasetError):
        medlab.datasets.fetch("sts", ["STS_002/*"], progress=False)
    assert list(cache.iterdir()) == []  # a folder that existed stays; nothing created in it


def test_cli_fetch_failure_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MEDLAB_DATA_STORE"}
    env.update(MEDLAB_CACHE_DIR=str(tmp_path / "c"), MEDLAB_OFFLINE="1", MEDLAB_DATA_SOURCE="full")
    res = subprocess.run([sys.executable, "-m", "medlab", "data", "fetch", "hc18"], capture_output=True,
                         text=True, timeout=120, env=env)
    _one_line_error(res, 1, "medlab data fetch hc18")


def test_notebooks_command_copies_every_shipped_notebook(tmp_path):
    from medlab.reports import find_notebooks, packaged_notebooks

    res = _run("notebooks", str(tmp_path / "nb"))
    assert res.returncode == 0, res.stderr
    shipped = find_notebooks(packaged_notebooks())
    copied = find_notebooks(tmp_path / "nb")
    assert len(copied) == len(shipped) >= 18
    assert {p.relative_to(tmp_path / "nb") for p in copied} == {p.relative_to(packaged_notebooks()) for p in shipped}
    assert json.loads(copied[0].read_text())["cells"]
    _one_line_error(_run("notebooks", str(tmp_path / "nb")), 2, "--force")
    assert _run("notebooks", str(tmp_path / "nb"), "--force").returncode == 0


def _solution_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]


def test_notebooks_command_writes_students_copies_or_the_teachers(tmp_path):
    """By default the solutions are left out (what a class gets); --teacher keeps them."""
    from medlab.reports import find_notebooks, packaged_notebooks

    src = packaged_notebooks()
    shipped = {p.relative_to(src): len(_solution_cells(p)) for p in find_notebooks(src)}
    total = sum(shipped.values())
    assert total >= 20  # every tutorial has 2-4 exercises
    res = _run("notebooks", str(tmp_path / "student"))
    assert res.returncode == 0, res.stderr
    assert f"{total} solution cells left out" in res.stdout
    for rel, n in shipped.items():
        student = tmp_path / "student" / rel
        teacher_cells = json.loads((src / rel).read_text())["cells"]
        student_cells = json.loads(student.read_text())["cells"]
        assert _solution_cells(student) == [] and len(student_cells) == len(teacher_cells) - n, rel
    res = _run("notebooks", str(tmp_path / "teacher"), "--teacher")
    assert res.returncode == 0 and "teacher's copies" in res.stdout
    assert {rel: len(_solution_cells(tmp_path / "teacher" / rel)) for rel in shipped} == shipped


def test_report_files_are_readable_by_others(tmp_path):
    import nbformat

    from medlab.reports import run_notebook

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("N = 2")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("from medlab.reports import record\nrecord(n=N)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "src").mkdir()
    nbformat.write(nb, tmp_path / "src" / "a.ipynb")
    old = os.umask(0o022)
    try:
        rep = run_notebook(tmp_path / "src" / "a.ipynb", tmp_path / "out", progress=False)
    finally:
        os.umask(old)
    for path in (rep.notebook, rep.html, rep.records_json):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert rep.data == {}  # no registered data set fetched
    assert "no registered data set" in nbformat.read(rep.notebook, as_version=4).cells[-1].source


def test_report_data_source_option_reaches_the_kernel(tmp_path, monkeypatch):
    import nbformat

    monkeypatch.delenv("MEDLAB_DATA_SOURCE", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nfrom medlab.reports import record\nrecord(source=os.environ.get('MEDLAB_DATA_SOURCE'))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "a.ipynb")
    res = _run("report", str(tmp_path / "a.ipynb"), "--out", str(tmp_path / "out"), "--no-html", "-q",
               "--data-source", "full")
    assert res.returncode == 0, res.stderr
    assert 'source = "full"' in res.stdout



def test_data_list_says_what_each_data_set_uses(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MEDLAB_DATA_STORE", "MEDLAB_DATA_SOURCE")}
    env["MEDLAB_CACHE_DIR"] = str(tmp_path / "c")
    res = subprocess.run([sys.executable, "-m", "medlab", "data", "list"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.strip()}
    assert "sample (30 of 60 files in the sample)" in rows["sts"]
    assert "sample (153 of 635 files in the sample)" in rows["dcm_qa_nih"]
    assert " full " in rows["mni152"]  # package data: always whole
