"""tools/make_gallery.py and the README gallery it writes: every notebook is in the table, every
picture exists and is small; the tool on a hand-made report folder (ok, failed, not run,
stale picture, rerun) without executing any notebook."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import sys

import nbformat
import pytest
from notebook_support import NB_DIR, ROOT
from PIL import Image

_spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "tools" / "make_gallery.py")
gallery = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("make_gallery", gallery)  # dataclasses look their module up there
_spec.loader.exec_module(gallery)

README = ROOT / "README.md"
RERUN = "rerun the gallery: `bash tools/dev.sh gallery` (see CONTRIBUTING.md)"


def _block() -> str:
    text = README.read_text()
    assert text.count(gallery.START) == 1 and text.count(gallery.END) == 1, "README needs one gallery block"
    return text.split(gallery.START, 1)[1].split(gallery.END, 1)[0]


def _rows() -> dict[str, str]:
    """README table rows by notebook path under notebooks/."""
    rows = {}
    for line in _block().splitlines():
        m = re.search(r"\]\(notebooks/([^)]+\.ipynb)\)", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_readme_table_lists_every_notebook():
    on_disk = {p.relative_to(NB_DIR).as_posix() for p in gallery.notebooks(NB_DIR)}
    listed = set(_rows())
    assert on_disk - listed == set(), f"notebooks missing from the README table; {RERUN}"
    assert listed - on_disk == set(), f"README lists notebooks that no longer exist; {RERUN}"


def test_readme_pictures_exist_and_are_small():
    pics = re.findall(r"<img src=\"([^\"]+)\"", _block())
    assert pics, "the gallery shows no picture"
    for rel in pics:
        path = ROOT / rel
        assert path.is_file(), f"{rel} is referenced by README.md but missing; {RERUN}"
        assert path.stat().st_size < 60_000, f"{rel} is {path.stat().st_size} bytes; the gallery keeps them small"
        assert path.read_bytes()[:4] == b"\x89PNG"
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "gallery").glob("*.png")}
    assert on_disk == set(pics), "docs/gallery/ holds exactly the pictures the README shows"


def test_readme_rows_have_a_status_each():
    for rel, line in _rows().items():
        last = line.rstrip(" |").rsplit("|", 1)[1].strip()
        assert re.fullmatch(r"\d+ s|failed|not run|ran", last), f"{rel}: run time column {last!r}"


# --------------------------------------------------------------------------- the tool itself


def _png(w=800, h=400, colour=(200, 30, 30)) -> str:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    img.paste(Image.new("RGB", (w // 2, h // 2), colour), (w // 4, h // 4))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _source(path, title, intro):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n{intro}\n\n1. a step\n- a point"),
                nbformat.v4.new_code_cell("N = 1")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _executed(path, *, figure=True, duration=12.3, error=None, colours=((200, 30, 30),)):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    if figure:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(colour=c), "text/plain": "fig"})
                        for c in colours]
    if error:
        cell.outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue=error, traceback=[]))
    nb.cells = [cell]
    nb.metadata["papermill"] = {"duration": duration}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path):
    nb_root, reports = tmp_path / "notebooks", tmp_path / "reports"
    _source(nb_root / "tutorials" / "01_a.ipynb", "Tutorial 01 · Images", "Load **CT** and `MR` images. More text.")
    _source(nb_root / "usecases" / "bad.ipynb", "Use case · Broken", "It breaks: on purpose")
    _source(nb_root / "usecases" / "new.ipynb", "Use case · New", "Not run yet.")
    reports.mkdir()
    _executed(reports / "01_a.ipynb")
    (reports / "01_a.records.json").write_text(json.dumps(
        {"dice": 0.87654, "seconds": 3.0, "method": "otsu", "n_cases": 10, "ok": True}))
    _executed(reports / "bad.failed.ipynb", error="broken on purpose")
    (reports / gallery.RUN_INFO).write_text(json.dumps(
        {"date": "2026-01-01 00:00 UTC", "cores": 2, "load_mean": 4.5, "load_max": 6.25}))
    gal = tmp_path / "docs" / "gallery"
    gal.mkdir(parents=True)
    (gal / "gone.png").write_bytes(b"\x89PNG stale")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{gallery.START}\nold table\n{gallery.END}\n\nafter\n")
    return {"nb_root": nb_root, "reports": reports, "gallery": gal, "readme": readme, "root": tmp_path}


def _build(p):
    return gallery.build(p["reports"], nb_root=p["nb_root"], gallery=p["gallery"], readme=p["readme"], root=p["root"],
                         course=p["root"] / "course.md")


def test_course_page_run_times_follow_the_gallery(project):
    course = project["root"] / "course.md"
    course.write_text("# c\n\n| lesson | notebook | run time |\n|---|---|---|\n"
                      "| 1 | `tutorials/01_a.ipynb` | 99 s |\n| 2 | `usecases/bad.ipynb` | 7 s |\nend\n")
    _build(project)
    text = course.read_text()
    assert "| 1 | `tutorials/01_a.ipynb` | 12 s |" in text  # ran: the gallery's time
    assert "| 2 | `usecases/bad.ipynb` | 7 s |" in text  # failed: its time stays
    assert text.startswith("# c\n") and text.endswith("end\n")


def test_build_lists_ok_failed_and_not_run(project):
    entries = _build(project)
    assert [(e.rel, e.status) for e in entries] == [
        ("tutorials/01_a.ipynb", "ok"), ("usecases/bad.ipynb", "failed"), ("usecases/new.ipynb", "not run")]
    text = project["readme"].read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old table" not in text
    rows = [line for line in text.splitlines() if "](notebooks/" in line]
    assert len(rows) == 3
    ok, bad, new = rows
    assert '<img src="docs/gallery/01_a.png"' in ok and "| 12 s |" in ok
    assert "**Images**. Load CT and MR images." in ok  # title without 'Tutorial 01 ·', first sentence
    assert "`dice` = 0.877" in ok and "`n_cases` = 10" in ok
    assert "seconds" not in ok and "otsu" not in ok  # timings and echoed parameters are no headline
    assert "**failed**: ValueError: broken on purpose" in bad and bad.endswith("| failed |") and "<img" not in bad
    assert new.endswith("| not run |") and "**New**. Not run yet." in new
    assert "1 of 3 notebooks ran (bad failed)" in text and "load average 4.5 on average, 6.2 at most" in text


def test_pictures_are_small_and_stale_ones_removed(project):
    _build(project)
    assert sorted(p.name for p in project["gallery"].iterdir()) == ["01_a.png"]
    png = project["gallery"] / "01_a.png"
    with Image.open(png) as img:
        assert img.size == (gallery.WIDTH, gallery.WIDTH // 2) and img.mode == "P"
    assert png.stat().st_size < 10_000


def test_rerun_is_idempotent_and_a_later_failure_wins(project):
    _build(project)
    readme, png = project["readme"].read_text(), (project["gallery"] / "01_a.png").read_bytes()
    _build(project)
    assert project["readme"].read_text() == readme
    assert (project["gallery"] / "01_a.png").read_bytes() == png
    # the notebook fails in a later run: its old executed copy stays, the newer failure counts
    failed = project["reports"] / "01_a.failed.ipynb"
    _executed(failed, figure=False, error="later failure")
    old = (project["reports"] / "01_a.ipynb").stat().st_mtime
    os.utime(failed, (old + 10, old + 10))
    entries = _build(project)
    assert entries[0].status == "failed" and "later failure" in entries[0].error
    assert not (project["gallery"] / "01_a.png").exists()


def test_readme_without_markers_is_an_error(project):
    project["readme"].write_text("# no gallery here\n")
    with pytest.raises(SystemExit, match="markers"):
        _build(project)


def test_headlines_follow_the_curated_list():
    recs = {"suvmax": 7.91, "dice": 0.668, "tlg": 1131.03, "mtv_ml": 369.7, "suvpeak": 5.31, "zzz": 1.0}
    assert gallery.headlines("sarcoma_pet_ct_mr", recs) == [
        "`suvmax` = 7.91", "`suvpeak` = 5.31", "`mtv_ml` = 370", "`tlg` = 1131", "`dice` = 0.668"]
    assert gallery.MAX_HEADLINES == 5
    recs = {"test_auc": {"random_forest": 0.85, "svm": 0.7575}, "n_wrong_all": 6, "models": ["svm"]}
    assert gallery.headlines("breast_ultrasound", recs) == [
        "`test_auc.random_forest` = 0.85", "`test_auc.svm` = 0.757", "`n_wrong_all` = 6"]
    # not listed: first numeric records, no timings, flags or echoed parameters
    recs = {"case": 3, "ok": True, "dice": 0.5, "seconds": 2.0, "n": 4, "name": "x"}
    assert gallery.headlines("unlisted", recs) == ["`dice` = 0.5", "`n` = 4"]


def test_curated_headlines_are_recorded_by_their_notebook():
    """A key in HEADLINES must be named in its notebook's source, literally or by an f-string
    template such as ``f"ct_cnr_{name}"``, else a rename would silently drop it from the table."""
    sources = {p.stem: p for p in gallery.notebooks(NB_DIR)}
    for stem, keys in gallery.HEADLINES.items():
        if stem not in sources:
            continue
        text = sources[stem].read_text()
        templates = [re.compile("".join(r"\w+" if part.startswith("{") else re.escape(part)
                                        for part in re.split(r"(\{\w*\})", t)) + r"\Z")
                     for t in set(re.findall(r"\w*\{\w+\}\w*", text))]
        for key in keys:
            name = key.split(".", 1)[0]  # 'test_auc.svm': an entry of the recorded dict test_auc
            assert name in text or any(t.match(name) for t in templates), \
                f"{stem}: headline {key!r} is not recorded by the notebook; update HEADLINES in tools/make_gallery.py"


def test_run_survives_an_error_outside_a_cell(project, monkeypatch):
    """run_all lists a notebook whose run raised anything (here a dead kernel) as failed, and
    the gallery shows it as failed rather than its older successful report."""
    import medlab.reports

    def dead_kernel(path, *args, **kwargs):
        raise RuntimeError(f"kernel died in {path.name}")

    monkeypatch.setattr(medlab.reports, "run_notebook", dead_kernel)
    info = gallery.run_reports(project["reports"], project["nb_root"], interval_s=0.05)
    assert info["cores"] >= 1 and info["load_max"] >= info["load_mean"] >= 0
    assert json.loads((project["reports"] / gallery.RUN_INFO).read_text())["load_samples"] >= 1
    assert "0 of 3 notebooks ran" in (project["reports"] / "index.html").read_text()
    entries = _build(project)
    assert [e.status for e in entries] == ["failed"] * 3
    assert entries[0].error == "01_a.ipynb: RuntimeError: kernel died in 01_a.ipynb"
    assert "(01_a, bad, new failed)" in project["readme"].read_text()


@pytest.mark.parametrize(("index", "expected"), [(None, (200, 30, 30)), (1, (30, 30, 200)), (5, (200, 30, 30))])
def test_figure_choice(project, monkeypatch, index, expected):
    """FIGURE picks another figure of the notebook; one it does not have falls back to the first."""
    _executed(project["reports"] / "01_a.ipynb", colours=((200, 30, 30), (30, 30, 200)))
    if index is not None:
        monkeypatch.setitem(gallery.FIGURE, "01_a", index)
    _build(project)
    with Image.open(project["gallery"] / "01_a.png") as img:
        centre = img.convert("RGB").getpixel((gallery.WIDTH // 2, gallery.WIDTH // 4))
    assert centre == expected


def test_summary_skips_a_bold_run_in_label(tmp_path):
    path = tmp_path / "usecases" / "x.ipynb"
    _source(path, "Use case · X", "**Clinical question.** Has the tumour grown since the last visit? More.")
    assert gallery.summary(path) == ("X", "Has the tumour grown since the last visit?")
