"""Build the README's notebook gallery and table from the notebooks' own executed reports.

One command runs every notebook and rebuilds the gallery (what ``bash tools/dev.sh gallery``
does)::

    .venv/bin/python tools/make_gallery.py --run            # medlab report --all -> reports/, then the gallery

or, from a report folder that ``medlab report --all --out reports`` (``bash tools/dev.sh
report``) already wrote::

    .venv/bin/python tools/make_gallery.py [--reports reports]

For every notebook under ``notebooks/tutorials`` and ``notebooks/usecases`` it writes

- ``docs/gallery/<stem>.png``: the first figure of the executed notebook (its own output,
  :func:`medlab.reports.thumbnail`; another one where ``FIGURE`` says so), shrunk to a few
  tens of KB;
- a row of the table between the ``<!-- gallery -->`` markers of README.md: picture, notebook,
  what it teaches (title and first sentence of its introduction), headline numbers (from its
  ``medlab.reports.record`` call) and run time (papermill's wall time of the whole notebook,
  kernel start included).

A notebook that failed (``<stem>.failed.ipynb`` newer than any executed copy) is listed as
failed with its error; one that has no report yet as not run; neither stops the others.
Pictures of notebooks that no longer exist or did not run are removed, so rerunning the command
gives the same files for the same reports (idempotent). With ``--run``, the machine's load
average is sampled during the run and stated in the table's caption (``gallery-run.json`` in the
report folder keeps it for later rebuilds).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- gallery -->", "<!-- /gallery -->"
GROUPS = ("tutorials", "usecases")
RUN_INFO = "gallery-run.json"

#: picture width (px) and palette size: a thumbnail is a few tens of KB
WIDTH, COLOURS = 320, 96
#: headline numbers per notebook: keys of its record() call, ``key.sub`` for an entry of a
#: recorded dict, in this order; a notebook not listed gets its first numeric records (timings
#: and echoed parameters left out)
HEADLINES = {
    "00_interactive_tour": ["tre_start_mm", "tre_mm", "model_dice", "pet_dice"],
    "01_images_and_modalities": ["ct_soft_tissue_hu", "pet_suvmax_tumour", "us_pixel_size_mm", "us_cine_frames"],
    "02_enhancement_and_filtering": ["ct_cnr_original", "ct_cnr_bilateral", "ct_ssim_nl_means", "mr_cv_before_n4",
                                     "mr_cv_after_n4"],
    "03_classic_segmentation": ["ct_dice", "ct_gac_dice", "ct_hd95_mm", "pet_dice_mean.Otsu in box"],
    "04_registration": ["tre_start_mm", "tre_mean_mm", "dice_after", "drift_mm", "deformable_error_mm"],
    "05_unet_segmentation": ["dice_mean", "within_2mm", "mad_mm.opencv"],
    "06_cnn_classification_and_explanations": ["auc_malignant_vs_benign", "accuracy", "random_split_leak_fraction",
                                               "n_duplicates"],
    "07_radiomics_features": ["digital_within", "a_within", "b_within", "suvpeak_over_suvmax_max"],
    "08_classical_classification": ["test_auc.random_forest", "test_auc.svm", "test_auc.logistic", "cnn_test_auc",
                                    "n_features"],
    "09_lesion_detection": ["phantom_sensitivity_at_0fp", "blob_sensitivity.1.0", "blobs_per_scan", "ms_per_scan"],
    "breast_ultrasound": ["test_auc.random_forest", "test_auc.svm", "test_auc.cnn", "n_wrong_all"],
    "cardiovascular": ["echo_fac", "echo_heart_rate_bpm", "stenosis_percent", "stenosis_true_percent", "lumen_dice"],
    "chest_radiograph": ["total_lung_area_cm2", "left_right_ratio", "n_lungs"],
    "fetal_biometry": ["bias_mm", "loa_lower_mm", "loa_upper_mm", "mad_mm", "dice_mean"],
    "lung_ct": ["dice", "hd95_mm", "longest_diameter_mm", "volume_ml"],
    "neurological": ["brain_dice", "gm_dice", "wm_dice", "pbvc", "pbvc_true"],
    "pacs_to_report": ["reader_volume_ml", "tissue_fraction", "seg_roundtrip_equal", "sr_roundtrip_equal"],
    "privacy": ["n_files", "audit_rows", "old_values_found", "pixels_identical"],
    "sarcoma_pet_ct_mr": ["suvmax", "suvpeak", "mtv_ml", "tlg", "dice"],
}
#: which figure of a notebook the gallery shows (0: the first, the default): one that says what
#: the notebook is about where its first figure is a detail
FIGURE = {
    "01_images_and_modalities": 5,  # the chest radiograph, not the CT histogram
    "03_classic_segmentation": 3,   # Dice of the PET methods on the ten sarcoma patients
    "07_radiomics_features": 1,     # sarcoma PET with SUVmax/SUVpeak, not the 5x4x4 digital phantom
}
#: records that are parameters echoed back or timings, not results
_NOT_HEADLINE = re.compile(r"(seconds|_s|_ms|seed|case|patient|method|config|rule)$")
MAX_HEADLINES = 5


@dataclass
class Entry:
    """One notebook's row."""

    stem: str
    rel: str  # path under notebooks/, e.g. 'usecases/lung_ct.ipynb'
    title: str
    sentence: str
    status: str = "not run"  # 'ok', 'failed' or 'not run'
    seconds: float | None = None
    records: dict = field(default_factory=dict)
    error: str = ""
    executed: Path | None = None
    picture: str | None = None  # path relative to the repository root


# --------------------------------------------------------------------------- reading


def notebooks(nb_root: Path) -> list[Path]:
    """Every notebook of ``nb_root/tutorials`` and ``nb_root/usecases``, in that order."""
    return [p for g in GROUPS for p in sorted((nb_root / g).glob("*.ipynb"))]


def _plain(text: str) -> str:
    """Markdown emphasis, code marks and links reduced to their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"\*\*|\*|`|__", "", text)


_ABBREVIATIONS = ("al.", "e.g.", "i.e.", "vs.", "cf.", "Fig.", "approx.")


def _first_sentence(text: str) -> str:
    """Up to the first '.', '?' or '!' that is followed by a capital and ends no abbreviation."""
    for m in re.finditer(r"[.?!](?=\s+[A-Z0-9(])", text):
        if not text[: m.end()].endswith(_ABBREVIATIONS):
            return text[: m.end()]
    return text


def summary(nb_path: Path) -> tuple[str, str]:
    """Title (first heading, without 'Tutorial NN ·', 'NN ·' or 'Use case ·') and the first
    sentence of the first prose paragraph of the notebook's first markdown cell."""
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"]).strip()
        if not text:
            continue
        lines = text.splitlines()
        title = _plain(re.sub(r"^#+\s*", "", lines[0]).strip())
        title = re.sub(r"^(Tutorial\s*\d*|Use case|\d+)\s*[·:\-]\s*", "", title).strip()
        sentence = ""
        for para in re.split(r"\n\s*\n", "\n".join(lines[1:])):
            first = para.lstrip()
            if not first or re.match(r"(#|[-*+] |\d+\. |\||```|<|>)", first):
                continue  # headings, lists, tables, code, html, quotes
            joined = " ".join(line.strip() for line in para.splitlines()).strip()
            joined = re.sub(r"^\*\*[^*]{1,40}[.:]\*\*\s*", "", joined)  # a bold run-in label: "**Clinical question.**"
            sentence = _first_sentence(_plain(joined)).rstrip(":;")
            break
        if len(sentence) > 220:
            sentence = sentence[:217].rsplit(" ", 1)[0] + "..."
        return title, sentence
    return nb_path.stem, ""


def _error_of(failed_nb: Path) -> str:
    """``ename: evalue`` of the first error output of a failed executed notebook."""
    try:
        nb = json.loads(failed_nb.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable failed notebook ({exc})"
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename, evalue = out.get("ename") or "", out.get("evalue") or ""
                text = f"{ename}: {evalue}" if ename else evalue
                return text if len(text) <= 160 else text[:157] + "..."
    return "failed (no error output)"


def collect(nb_root: Path, report_dir: Path) -> list[Entry]:
    """One :class:`Entry` per notebook, with its status in ``report_dir``."""
    entries = []
    for nb in notebooks(nb_root):
        title, sentence = summary(nb)
        e = Entry(stem=nb.stem, rel=f"{nb.parent.name}/{nb.name}", title=title, sentence=sentence)
        done, failed = report_dir / nb.name, report_dir / f"{nb.stem}.failed.ipynb"
        if failed.is_file() and (not done.is_file() or failed.stat().st_mtime >= done.stat().st_mtime):
            e.status, e.error = "failed", _error_of(failed)
        elif done.is_file():
            try:
                executed = json.loads(done.read_text())
            except (OSError, ValueError) as exc:
                e.status, e.error = "failed", f"unreadable executed notebook ({exc})"
            else:
                e.status, e.executed = "ok", done
                e.seconds = executed.get("metadata", {}).get("papermill", {}).get("duration")
                rec = report_dir / f"{nb.stem}.records.json"
                e.records = json.loads(rec.read_text()) if rec.is_file() else {}
        entries.append(e)
    return entries


# --------------------------------------------------------------------------- writing


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _lookup(records: dict, key: str):
    """``records[key]``, or ``records[a][b]`` for ``key = 'a.b'``; None when absent or not a scalar."""
    value = records.get(key)
    if value is None and "." in key:
        head, sub = key.split(".", 1)
        value = records[head].get(sub) if isinstance(records.get(head), dict) else None
    return value if isinstance(value, int | float | str) else None


def headlines(stem: str, records: dict) -> list[str]:
    """``name = value`` strings of a notebook's headline numbers."""
    pairs = [(k, v) for k in HEADLINES.get(stem, []) if (v := _lookup(records, k)) is not None]
    if not pairs:
        pairs = [(k, v) for k, v in records.items()
                 if isinstance(v, int | float) and not isinstance(v, bool) and not _NOT_HEADLINE.search(k)]
    return [f"`{k}` = {_fmt(v)}" for k, v in pairs[:MAX_HEADLINES]]


def picture(executed: Path, out_png: Path, index: int = 0) -> Path | None:
    """The ``index``-th figure (the first if it has fewer) of an executed notebook as a small
    palette PNG (None: no figure)."""
    from PIL import Image

    from medlab.reports import thumbnail

    tmp = out_png.with_name(f".{out_png.stem}.full.png")
    try:
        if thumbnail(executed, tmp, width=WIDTH, index=index) is None and (
                index == 0 or thumbnail(executed, tmp, width=WIDTH) is None):
            return None
        with Image.open(tmp) as full:
            img = full.convert("RGB")
    finally:
        tmp.unlink(missing_ok=True)
    small = img.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    if not out_png.is_file() or out_png.read_bytes() != buf.getvalue():
        out_png.write_bytes(buf.getvalue())
    return out_png


def write_pictures(entries: list[Entry], gallery: Path, root: Path = ROOT) -> None:
    """``gallery/<stem>.png`` for every notebook that ran and drew a figure; other PNGs there go."""
    gallery.mkdir(parents=True, exist_ok=True)
    keep = set()
    for e in entries:
        if e.status != "ok" or e.executed is None:
            continue
        png = picture(e.executed, gallery / f"{e.stem}.png", FIGURE.get(e.stem, 0))
        if png is not None:
            keep.add(png.name)
            e.picture = png.relative_to(root).as_posix()
    for old in gallery.glob("*.png"):
        if old.name not in keep:
            old.unlink()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(entries: list[Entry], run_info: dict | None) -> str:
    """The markdown between the gallery markers: caption and table."""
    ran = [e for e in entries if e.status == "ok"]
    total = sum(e.seconds or 0 for e in ran)
    lines = [f"{len(ran)} of {len(entries)} notebooks ran"
             + (f" ({', '.join(e.stem for e in entries if e.status == 'failed')} failed)"
                if any(e.status == "failed" for e in entries) else "")
             + f"; {total:.0f} s in all. Run time: papermill's wall time of the whole notebook with its "
             "default parameters (kernel start included)."]
    if run_info:
        lines[0] += (f" Measured {run_info['date']} on the development machine, {run_info['cores']} cores "
                     f"shared with other work: load average {run_info['load_mean']:.1f} on average, "
                     f"{run_info['load_max']:.1f} at most during the run, so times are inflated "
                     f"(roughly by load / cores) compared with an idle machine.")
    lines += ["", "| figure | notebook | what it teaches | headline numbers | run time |", "|---|---|---|---|---|"]
    for e in entries:
        pic = f"<img src=\"{e.picture}\" width=\"240\">" if e.picture else ""
        what = f"**{_cell(e.title)}**" + (f". {_cell(e.sentence)}" if e.sentence else "")
        if e.status == "ok":
            numbers = "<br>".join(_cell(h) for h in headlines(e.stem, e.records))
            secs = f"{e.seconds:.0f} s" if e.seconds is not None else "ran"
        elif e.status == "failed":
            numbers, secs = f"**failed**: {_cell(e.error)}", "failed"
        else:
            numbers, secs = "", "not run"
        lines.append(f"| {pic} | [`{e.rel}`](notebooks/{e.rel}) | {what} | {numbers} | {secs} |")
    return "\n".join(lines)


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the gallery markers (which must exist) with ``block``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} markers for the gallery")
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{block}\n{END}", text,
                 count=1, flags=re.DOTALL)
    if new != text:
        readme.write_text(new)


# --------------------------------------------------------------------------- running


def _failure_marker(path: Path, error: str) -> None:
    """A ``<stem>.failed.ipynb`` holding only ``error``, for a notebook that failed outside a
    cell (a dead kernel, a broken export), so a rebuild lists it as failed, not as its older
    successful copy."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("error", ename="", evalue=error, traceback=[])]
    nb.cells = [cell]
    nbformat.write(nb, path)


def run_reports(report_dir: Path, nb_root: Path, *, interval_s: float = 5.0) -> dict:
    """``medlab report --all`` into ``report_dir`` while sampling the load average; returns
    (and saves as ``gallery-run.json``) the date, cores and load."""
    from medlab.reports import find_notebooks, run_all

    samples: list[float] = []
    stop = threading.Event()

    def sample():
        while True:
            samples.append(os.getloadavg()[0])
            if stop.wait(interval_s):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    try:
        reports = run_all(report_dir, find_notebooks(nb_root))
    finally:
        stop.set()
        sampler.join()
    for rep in reports:
        if rep.error and not rep.notebook.is_file():
            _failure_marker(rep.notebook, rep.error)
    info = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "load_mean": sum(samples) / len(samples),
        "load_max": max(samples),
        "load_samples": len(samples),
        "total_seconds": time.perf_counter() - t0,
    }
    (report_dir / RUN_INFO).write_text(json.dumps(info, indent=1))
    return info


def update_course(course: Path, entries: list[Entry]) -> None:
    """Set the last cell (run time) of each notebook's row in the course page to the gallery's.

    A row is a table line that names the notebook as ```tutorials/x.ipynb```; rows of notebooks
    that did not run keep their time. No course page: nothing to do.
    """
    if not course.is_file():
        return
    times = {e.rel: f"{e.seconds:.0f} s" for e in entries if e.status == "ok" and e.seconds is not None}
    lines = course.read_text().split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        rel = next((r for r in times if f"`{r}`" in line), None)
        if rel is not None:
            cells = line.rstrip().rstrip("|").split("|")
            cells[-1] = f" {times[rel]} "
            lines[i] = "|".join(cells) + "|"
    text = "\n".join(lines)
    if text != course.read_text():
        course.write_text(text)


def build(report_dir: Path, *, nb_root: Path = ROOT / "notebooks", gallery: Path = ROOT / "docs" / "gallery",
          readme: Path = ROOT / "README.md", root: Path = ROOT,
          course: Path = ROOT / "docs" / "site" / "course.md") -> list[Entry]:
    """Pictures, README table and the course page's run times from ``report_dir``; returns the rows."""
    entries = collect(nb_root, report_dir)
    write_pictures(entries, gallery, root)
    info_file = report_dir / RUN_INFO
    run_info = json.loads(info_file.read_text()) if info_file.is_file() else None
    update_readme(readme, table(entries, run_info))
    update_course(course, entries)
    return entries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", default=os.environ.get("MEDLAB_REPORTS", str(ROOT / "reports")),
                        help="report folder (default: reports/)")
    parser.add_argument("--run", action="store_true", help="first run every notebook into it (minutes)")
    args = parser.parse_args(argv)
    report_dir = Path(args.reports)
    if args.run:
        run_reports(report_dir, ROOT / "notebooks")
    elif not report_dir.is_dir():
        parser.error(f"no report folder {report_dir}; run `medlab report --all --out {report_dir}` or pass --run")
    entries = build(report_dir)
    counts = {s: sum(e.status == s for e in entries) for s in ("ok", "failed", "not run")}
    print(f"gallery: {len(entries)} notebooks ({counts['ok']} ran, {counts['failed']} failed, "
          f"{counts['not run']} not run) -> README.md, docs/gallery/, docs/site/course.md")
    for e in entries:
        if e.status != "ok":
            print(f"  {e.rel}: {e.status} {e.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
