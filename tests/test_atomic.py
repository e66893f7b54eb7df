"""medlab._atomic: whole files and folders or nothing; leftovers of killed writers are removed."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from medlab import _atomic


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_text_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    _atomic.write_text(target, "new")
    assert target.read_text() == "new" and _listing(tmp_path) == ["a.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), _atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and _listing(tmp_path) == ["a.json"]


def test_overwrite_false_refuses_before_work(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(FileExistsError, match="a.json exists"):
        _atomic.write_text(target, "new", overwrite=False)
    assert target.read_text() == "old"


def test_folder_replaces_only_missing_or_empty_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with _atomic.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "x.txt").write_text("x")
    assert _listing(target) == ["x.txt"]
    with pytest.raises(FileExistsError, match="not an empty folder"), _atomic.atomic_path(target) as tmp:
        tmp.mkdir()
    assert _listing(target) == ["x.txt"] and _listing(tmp_path) == ["out"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"), _atomic.atomic_path(tmp_path / "a"):
        pass


def test_clean_stale_removes_entries_of_killed_writers_only(tmp_path):
    # a child process starts an atomic write of a file and of a folder and is killed mid-write
    code = textwrap.dedent(f"""
        import sys, time
        from medlab import _atomic
        with _atomic.atomic_path({str(tmp_path / 'big.nii')!r}) as f, \\
             _atomic.atomic_path({str(tmp_path / 'outdir')!r}) as d:
            f.write_bytes(b"x" * 1000)
            d.mkdir(); (d / "part.dcm").write_bytes(b"y")
            print("ready", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        left = _listing(tmp_path)
        assert len(left) == 2 and all(_atomic.is_temporary(n) for n in left)
        assert _atomic.clean_stale(tmp_path) == []  # the writer is still running: kept
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    mine = tmp_path / "keep"
    with _atomic.atomic_path(mine) as tmp:  # a live writer's (this process) entry is kept
        tmp.write_text("live")
        removed = _atomic.clean_stale(tmp_path)
        assert sorted(p.name for p in removed) == left
        assert _listing(tmp_path) == [tmp.name]
    assert _listing(tmp_path) == ["keep"]


def test_other_names_are_not_temporary():
    assert not _atomic.is_temporary(".hidden")
    assert not _atomic.is_temporary("a.medlab-tmp-host-12-ab")  # not hidden
    assert _atomic.is_temporary(".a.nii.gz.medlab-tmp-myhost-123-0a1b2c3d")


def test_suffix_keeps_the_ending_a_writer_needs_and_stays_recognised(tmp_path):
    target = tmp_path / "model.weights.h5"
    with _atomic.atomic_path(target, suffix=".weights.h5") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".weights.h5") and tmp.name.startswith(".model.weights.h5")
        assert _atomic.is_temporary(tmp.name)
        tmp.write_bytes(b"w")
    assert _listing(tmp_path) == ["model.weights.h5"]
    with pytest.raises(ValueError, match="`suffix` must be '' or a file ending"):
        _atomic.temp_for(target, suffix="h5")
    with pytest.raises(ValueError, match="`suffix` must be '' or a file ending"):
        _atomic.temp_for(target, suffix="./x")
