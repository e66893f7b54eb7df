"""Run notebooks as reports, and record their headline numbers.

Inside a notebook, :func:`record` stores named results (a Dice, a CNR, a timing) as a
dedicated output of type ``application/vnd.medlab.records+json``; it also shows them as a small
table so the HTML report carries them. After a run, :func:`read_records` collects them from the
executed notebook, so tests and the command line can check a notebook's numbers.

:func:`run_notebook` executes a notebook through papermill with parameters (checked against the
notebook's ``parameters`` cell) and exports HTML. Outputs are written atomically: a run that
fails leaves no half-written report, only ``NAME.failed.ipynb`` showing the failing cell.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from medlab._atomic import clean_stale, temp_for, write_bytes, write_text
from medlab.errors import MedlabError

__all__ = [
    "record",
    "read_records",
    "run_notebook",
    "run_all",
    "write_index",
    "find_notebooks",
    "packaged_notebooks",
    "notebook_parameters",
    "thumbnail",
    "Report",
    "RECORDS_MIME",
    "describe_data",
    "say",
    "prose",
    "typed_numbers",
]

RECORDS_MIME = "application/vnd.medlab.records+json"


def _jsonable(value, name):
    """Convert numpy scalars/arrays and paths to plain JSON values; reject what cannot be."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"record `{name}` must be a number, string, list or dict; got {type(value).__name__}")


def record(**values) -> dict:
    """Record named results of a notebook (its headline numbers).

    Parameters
    ----------
    **values
        Numbers, strings, lists or dicts (numpy scalars and arrays are converted).

    Returns
    -------
    dict
        The recorded values, as stored.

    Examples
    --------
    >>> record(dice_mean=0.873, n_cases=10)
    {'dice_mean': 0.873, 'n_cases': 10}
    """
    if not values:
        raise ValueError("record() needs at least one name=value pair")
    data = {k: _jsonable(v, k) for k, v in values.items()}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every Jupyter install
        return data
    if get_ipython() is not None:
        rows = "".join(
            f"<tr><td><code>{k}</code></td><td>{_fmt(v)}</td></tr>" for k, v in data.items()
        )
        display(
            {
                RECORDS_MIME: data,
                "text/html": f"<table class='medlab-records'><tr><th>result</th><th>value</th></tr>{rows}</table>",
                "text/plain": "recorded: " + ", ".join(f"{k}={_fmt(v)}" for k, v in data.items()),
            },
            raw=True,
        )
    return data


#: What :func:`typed_numbers` skips before it looks for numbers: fenced and inline code, LaTeX,
#: HTML tags and comments, link targets and URLs, a heading's lesson or exercise number.
_NOT_PROSE = re.compile(
    r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$\n]*\$|<!--.*?-->|<[^>\n]*>|\]\([^)]*\)|https?://\S+"
    r"|^\s*#+\s*(?:Exercise\s+)?\d+\s*·",
    re.S | re.M,
)
#: A decimal number (a result is rarely round), or any number of seconds, minutes or hours (a run
#: time is always measured), standing alone: not part of a name (T1, MNI152, BT.601, 3D, v1.2.3).
_TYPED = re.compile(
    r"(?<![\w.])[-−]?\d+\.\d+(?!\w|\.\d)"
    r"(?:\s*(?:mm|cm|m|µm|mL|ml|L|mm²|cm²|mm³|cm³|HU|SUV|%|s|ms|min|px|pixels|voxels|°|bpm|kB|MB|GB|Hz)(?!\w))?"
    r"|(?<![\w.])\d+(?:\.\d+)?(?:\s*[-–]\s*\d+(?:\.\d+)?)?\s*(?:ms|s|min|minutes?|seconds?|h|hours?)(?![\w])"
)


def typed_numbers(text: str, *, allow=()) -> list[str]:
    """The measured-looking numbers typed into a piece of Markdown.

    A notebook's prose must not type a measured number (it drifts from what the code measures):
    it quotes recorded values through :func:`say`. This finds what drifts: **decimal numbers**
    (``2.3 mm``, ``0.76``) and **durations** (``90 s``, ``20-40 s``). Round numbers (counts,
    parameter values, sizes such as ``3 voxels`` or ``60 %``) are not flagged, nor anything in
    code spans, fenced code, LaTeX (``$...$``), HTML tags, link targets, a heading's lesson or
    exercise number, or inside a name (``T1``, ``MNI152``, ``3D``, ``BT.601``).

    Parameters
    ----------
    text : str
        Markdown (a notebook cell's source, or a :func:`say` template without its fields).
    allow : iterable of str, keyword-only
        Exact pieces of text that hold a number on purpose (a standard's version such as
        ``RECIST 1.1``, a physical constant, a fact of the data); removed before the search.

    Returns
    -------
    list of str
        Each number found, with its unit where one follows (``['2.3 mm', '90 s']``).
    """
    for piece in allow:
        text = text.replace(piece, " ")
    text = _NOT_PROSE.sub(" ", text)
    return [m.group(0).strip() for m in _TYPED.finditer(text)]


class _Field(dict):
    def __missing__(self, key):
        raise ValueError(f"template: the field {{{key}}} has no value; pass {key}=...")


def prose(template: str, /, **values) -> str:
    """Fill a Markdown ``template`` with measured ``values``; refuse numbers typed into it.

    Parameters
    ----------
    template : str
        Markdown with :meth:`str.format` fields, e.g.
        ``"The rigid TRE is {tre_mm:.1f} mm (p95 {p95_mm:.1f} mm)."``. It may not itself type a
        measured-looking number (see :func:`typed_numbers`): pass it as a value.
    **values
        The numbers (or strings) for the fields: the same variables the notebook's last cell
        records with :func:`record`, or a ``read_records(...)`` dict unpacked with ``**``. Every
        value must be used by a field.

    Returns
    -------
    str
        The filled Markdown.

    Examples
    --------
    >>> prose("TRE {tre:.1f} mm after {n} iterations.", tre=2.345, n=40)
    'TRE 2.3 mm after 40 iterations.'
    """
    import string

    if not isinstance(template, str) or not template.strip():
        raise ValueError("template: give a non-empty Markdown string")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"template: {err} (write a literal brace as {{{{ or }}}})") from None
    names = {f.split(".")[0].split("[")[0] for _, f, _, _ in parsed if f is not None}
    if "" in names or any(n.isdigit() for n in names):
        raise ValueError("template: name every field ({tre_mm:.1f}, not {} or {0})")
    literal = "".join(text for text, *_ in parsed)
    typed = typed_numbers(literal)
    if typed:
        raise ValueError(f"template: the numbers {typed} are typed into the text; pass each as a value")
    unused = sorted(set(values) - names)
    if unused:
        raise ValueError(f"values: {unused} are not used by any field of the template")
    try:
        return template.format_map(_Field(values))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        if str(err).startswith("template:"):
            raise
        raise ValueError(f"template: a value does not fit its field's format ({err})") from None


def say(template: str, /, **values) -> None:
    """Show a sentence of Markdown in the notebook whose numbers come from measured ``values``.

    The notebook's prose quotes what the code measured: a code cell such as
    ``say("The rigid TRE is {tre_mm:.1f} mm.", tre_mm=tre_mm)`` renders as text in JupyterLab and in
    the HTML report, and changes when the measurement does. See :func:`prose` for the rules
    (fields named, every value used, no number typed into the template). Outside a notebook the
    text is printed.

    Parameters
    ----------
    template : str
        Markdown with named :meth:`str.format` fields.
    **values
        The measured values for the fields.
    """
    text = prose(template, **values)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with every Jupyter install
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 80 else text[:77] + "..."


def read_records(notebook) -> dict:
    """All values recorded by :func:`record` in an executed notebook (later ones win).

    Parameters
    ----------
    notebook : str, Path or nbformat.NotebookNode
    """
    import nbformat

    nb = notebook if not isinstance(notebook, (str, os.PathLike)) else nbformat.read(os.fspath(notebook), as_version=4)
    out: dict = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if RECORDS_MIME in data:
                rec = data[RECORDS_MIME]
                out.update(json.loads(rec) if isinstance(rec, str) else rec)
    return out


def notebook_parameters(path) -> dict:
    """Names and default values of a notebook's ``parameters`` cell (as papermill sees them).

    Parameters
    ----------
    path : str or pathlib.Path
        A notebook (``.ipynb``) with a cell tagged ``parameters``.
    """
    import papermill

    params = papermill.inspect_notebook(os.fspath(path))
    return {name: p.get("default") for name, p in params.items()}


@dataclass
class Report:
    """What :func:`run_notebook` produced (``error`` is set only by :func:`run_all`)."""

    notebook: Path
    html: Path | None
    records: dict = field(default_factory=dict)
    seconds: float = 0.0
    records_json: Path | None = None
    thumbnail: Path | None = None
    error: str | None = None
    group: str | None = None  # the source folder ('tutorials', 'usecases'); the index groups by it
    #: the registered data the notebook fetched: ``{name: {'source': ..., 'files': n}}``; source is
    #: 'sample' (embedded in the package), 'store' ($MEDLAB_DATA_STORE), 'cache' or 'package'
    data: dict = field(default_factory=dict)


#: how a report names where its data came from
DATA_SOURCES = {
    "sample": "embedded sample (medlab/datasets/sample)",
    "store": "full data set, local store ($MEDLAB_DATA_STORE)",
    "cache": "full data set, in the cache ($MEDLAB_CACHE_DIR)",
    "package": "data inside an installed PyPI package",
}


def _data_used(log: Path) -> dict:
    """Summarise the fetch log of a run: per data set, its source(s) and distinct files."""
    used: dict[str, dict] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                rec = json.loads(line)
                ent = used.setdefault(rec["name"], {"sources": set(), "files": set()})
                ent["sources"].add(rec["source"])
                ent["files"].update(rec["files"])
    return {name: {"source": "+".join(sorted(e["sources"])), "files": len(e["files"])}
            for name, e in sorted(used.items())}


def _pass_on(log: Path, outer: str | None) -> None:
    """A run inside a run that logs its data (a test, a batch) passes its log lines outward."""
    if outer:
        with contextlib.suppress(OSError), open(outer, "a", encoding="utf-8") as fh:
            fh.write(log.read_text(encoding="utf-8"))


def describe_data(data: dict) -> str:
    """One line naming each data set a report used and where it came from.

    Parameters
    ----------
    data : dict
        ``Report.data``: per data set, its ``source`` and number of ``files``.
    """
    if not data:
        return "no registered data set (phantoms or package data only)"
    parts = []
    for name, d in data.items():
        where = " + ".join(DATA_SOURCES.get(s, s) for s in d["source"].split("+"))
        n = f", {d['files']} file(s)" if d["files"] else ""
        parts.append(f"{name}: {where}{n}")
    return "; ".join(parts)


def _note_data(notebook: Path, data: dict) -> None:
    """Append a 'Data used' cell and ``metadata.medlab.data`` to an executed notebook."""
    import nbformat

    nb = nbformat.read(os.fspath(notebook), as_version=4)
    nb.metadata.setdefault("medlab", {})["data"] = data
    lines = [f"- `{name}`: {DATA_SOURCES.get(d['source'], d['source'])} ({d['files']} file(s))"
             if d["files"] else f"- `{name}`: {DATA_SOURCES.get(d['source'], d['source'])}"
             for name, d in data.items()]
    text = "**Data used by this report** (recorded by medlab.reports while it ran):\n\n" + (
        "\n".join(lines) if lines else "no registered data set (phantoms only).")
    if any(d["source"] == "sample" for d in data.values()):
        text += ("\n\nThe embedded sample holds a few cases of each data set, so numbers differ from a "
                 "run on the full data (set `MEDLAB_DATA_STORE`, or `MEDLAB_DATA_SOURCE=full` to download).")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = "medlab-data-used"
    nb.cells.append(cell)
    write_text(notebook, nbformat.writes(nb))


def _check_parameters(path: Path, parameters: dict) -> None:
    known = notebook_parameters(path)
    if not known and parameters:
        raise ValueError(f"{path.name} has no cell tagged `parameters`; cannot set {sorted(parameters)}")
    for name in parameters:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" By {name!r}, did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{path.name} has no parameter {name!r}; its parameters are {', '.join(known)}.{hint}"
            )


def export_html(notebook_path, html_path, *, hide_code: bool = False) -> Path:
    """Export an executed notebook to a standalone HTML file (atomically).

    ``hide_code=True`` leaves out code cells' inputs: a clinical-style report of text,
    figures and tables.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(os.fspath(notebook_path), as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=hide_code, exclude_input_prompt=hide_code,
                            exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nb)
    html_path = Path(html_path)
    write_text(html_path, body)
    return html_path


@contextlib.contextmanager
def _env(**values):
    """Set environment variables (inherited by a kernel started inside) and restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _inline_figures():
    """Let the kernel use its inline backend even if ``MPLBACKEND`` (e.g. Agg) is set here.

    The kernel inherits this process's environment; with a non-interactive backend its
    ``plt.show()`` draws nothing and the report would have no figures.
    """
    old = os.environ.get("MPLBACKEND")
    if old is None:
        yield
        return
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        os.environ["MPLBACKEND"] = old


def run_notebook(
    path,
    out_dir,
    parameters: dict | None = None,
    *,
    html: bool = True,
    hide_code: bool = False,
    kernel_name: str | None = None,
    progress: bool = True,
    timeout_s: float | None = None,
) -> Report:
    """Execute a notebook with papermill and write ``OUT/NAME.ipynb``, ``OUT/NAME.html`` and
    ``OUT/NAME.records.json`` (the recorded numbers).

    Parameters
    ----------
    path : str or Path
        The notebook. It runs with its own folder as working directory.
    out_dir : str or Path
        Where the executed notebook and HTML go (created if missing). Must not be the
        notebook's own folder, so a source notebook is never overwritten.
    parameters : dict, optional
        Values for names in the notebook's ``parameters`` cell; an unknown name is an error.
    html : bool
        Also export HTML.
    hide_code : bool
        Leave code out of the HTML (a report for readers who do not program).
    kernel_name : str, optional
        Jupyter kernel; default: the notebook's own kernelspec.
    progress : bool
        Show papermill's cell progress bar.
    timeout_s : float, optional
        Per-cell execution timeout in seconds.

    Returns
    -------
    Report
        Paths of what was written, the recorded values and the run time.

    Raises
    ------
    MedlabError
        When a cell fails; the executed notebook up to the failure is kept as
        ``OUT/NAME.failed.ipynb`` and no report is written.
    """
    import papermill

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    out_dir = Path(out_dir).resolve()
    if out_dir == path.parent:
        raise ValueError(f"`out_dir` must differ from the notebook's folder ({path.parent})")
    parameters = dict(parameters or {})
    _check_parameters(path, parameters)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)  # what killed runs left
    final_nb = out_dir / path.name
    final_html = final_nb.with_suffix(".html")
    failed = out_dir / f"{path.stem}.failed.ipynb"
    # papermill writes the executed notebook to a temporary name of medlab._atomic beside the
    # report (clean_stale removes it after a killed run; a new file gets the umask's mode), which
    # becomes the report or, when a cell fails, NAME.failed.ipynb
    tmp = temp_for(final_nb, suffix=".ipynb")
    fd, data_log = tempfile.mkstemp(prefix=f"medlab-data-{path.stem}.", suffix=".jsonl")
    os.close(fd)
    t0 = time.perf_counter()
    try:
        with _inline_figures(), _env(MEDLAB_DATA_LOG=data_log):
            papermill.execute_notebook(
                os.fspath(path),
                os.fspath(tmp),
                parameters=parameters,
                kernel_name=kernel_name,
                progress_bar=progress,
                cwd=os.fspath(path.parent),
                execution_timeout=timeout_s,
                # Without saved widget state the HTML export shows each widget's static PNG
                # (offline); with it, nbconvert embeds live widgets that need a CDN.
                store_widget_state=False,
            )
    except papermill.PapermillExecutionError as exc:
        os.replace(tmp, failed)
        raise MedlabError(
            f"{path.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the executed notebook is in {failed}"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        data = _data_used(Path(data_log))
        _pass_on(Path(data_log), os.environ.get("MEDLAB_DATA_LOG"))
        Path(data_log).unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    _note_data(tmp, data)
    os.replace(tmp, final_nb)
    failed.unlink(missing_ok=True)
    html_path = export_html(final_nb, final_html, hide_code=hide_code) if html else None
    records = read_records(final_nb)
    records_json = out_dir / f"{path.stem}.records.json"
    write_text(records_json, json.dumps(records, indent=1))
    return Report(notebook=final_nb, html=html_path, records=records, seconds=seconds, records_json=records_json,
                  data=data)


def thumbnail(notebook, out_png, *, width: int = 360, index: int = 0) -> Path | None:
    """Save the first figure (or the ``index``-th, from 0) of an executed notebook, ``width``
    pixels wide, as a PNG.

    Returns None when the notebook shows no such figure. The picture is the notebook's own
    output, so a gallery built from thumbnails shows what the notebooks really produce.

    Parameters
    ----------
    notebook : str or pathlib.Path
        An executed notebook.
    out_png : str or pathlib.Path
        The PNG file to write.
    width : int
        Width of the picture in pixels.
    index : int
        Which figure (0: the first).
    """
    import base64
    import io

    import nbformat
    from PIL import Image

    nb = nbformat.read(os.fspath(notebook), as_version=4)
    figures = (o["data"]["image/png"] for cell in nb.cells for o in cell.get("outputs", [])
               if o.get("data", {}).get("image/png"))
    for k, data in enumerate(figures):
        if k != index:
            continue
        img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        img.thumbnail((width, width * 4))
        out_png = Path(out_png)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        return write_bytes(out_png, buf.getvalue())
    return None


def packaged_notebooks() -> Path:
    """The folder of the tutorial and use-case notebooks that ship with medlab.

    In a source checkout (editable install) it is the project's ``notebooks/``; an installed
    wheel carries the same files as package data in ``medlab/notebooks``.
    """
    here = Path(__file__).resolve().parent
    for root in (here.parent / "notebooks", here / "notebooks"):
        if (root / "tutorials").is_dir():
            return root
    raise FileNotFoundError(
        f"this medlab installation has no notebooks (looked in {here.parent / 'notebooks'} and "
        f"{here / 'notebooks'}); reinstall medlab, or pass a notebooks folder explicitly")


def find_notebooks(root=None) -> list[Path]:
    """Every notebook under ``root/tutorials`` and ``root/usecases`` (default: the notebooks
    that ship with medlab, :func:`packaged_notebooks`), in name order.

    Parameters
    ----------
    root : str or pathlib.Path, optional
        A folder holding ``tutorials/`` and ``usecases/``.
    """
    if root is None:
        root = packaged_notebooks()
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {root}; copy the notebooks there with `medlab notebooks {root}`, "
            f"or pass the folder that holds tutorials/ and usecases/")
    return sorted(p for sub in ("tutorials", "usecases") for p in (root / sub).glob("*.ipynb"))


def run_all(out_dir, notebooks=None, *, hide_code: bool = False, progress: bool = True,
            timeout_s: float | None = None) -> list[Report]:
    """Run notebooks one after the other (default: all of :func:`find_notebooks`) with their
    default parameters, then write ``OUT/index.html`` linking every report.

    A failing notebook (a failing cell, or any other error while running it) does not stop the
    others: its :class:`Report` has ``error`` set, and the index shows it as failed.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Where the executed notebooks, HTML reports and ``index.html`` go.
    notebooks : sequence of path, optional
        The notebooks to run (default: :func:`find_notebooks`).
    hide_code : bool
        Leave the code cells out of the HTML reports.
    progress : bool
        Show a progress bar over the notebooks.
    timeout_s : float, optional
        Per-cell execution timeout in seconds (as for :func:`run_notebook`).
    """
    from tqdm.auto import tqdm

    notebooks = [Path(p) for p in (notebooks if notebooks is not None else find_notebooks())]
    stems = [p.stem for p in notebooks]
    if len(set(stems)) < len(stems):  # reports are written flat into out_dir, named by stem
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"notebooks in different folders share a name, their reports would collide: {twice}")
    out_dir = Path(out_dir)
    reports = []
    bar = tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress)
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        try:
            rep = run_notebook(nb, out_dir, hide_code=hide_code, progress=False, timeout_s=timeout_s)
            rep.thumbnail = thumbnail(rep.notebook, out_dir / f"{nb.stem}.png")
        except MedlabError as exc:
            rep = Report(notebook=out_dir / f"{nb.stem}.failed.ipynb", html=None, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a dead kernel, a timeout, a broken export: this one fails, not the run
            rep = Report(notebook=out_dir / f"{nb.stem}.failed.ipynb", html=None,
                         error=f"{nb.name}: {type(exc).__name__}: {exc}")
        rep.group = nb.parent.name
        reports.append(rep)
    write_index(reports, out_dir)
    return reports


#: headings of the index page per notebook folder, in this order; other folders follow by name
GROUP_TITLES = {"tutorials": "Tutorials", "usecases": "Use cases"}


def write_index(reports, out_dir) -> Path:
    """``OUT/index.html``: the reports grouped by their folder (tutorials, then use cases), one
    row per report with its picture, run time, status and headline numbers, linking the HTML
    report and the recorded values.

    Parameters
    ----------
    reports : sequence of Report
        As :func:`run_notebook` returns them.
    out_dir : str or pathlib.Path
        The folder of the reports; ``index.html`` is written there.
    """
    import html as _html

    out_dir = Path(out_dir)
    groups: dict[str, list[str]] = {}
    for rep in reports:
        name = rep.notebook.name.replace(".failed.ipynb", "").replace(".ipynb", "")
        if rep.error:
            status = f"<span style='color:#b00'>failed</span><br><small>{_html.escape(rep.error)}</small>"
            link, pic, numbers = _html.escape(name), "", ""
        else:
            status = "ok"
            link = f"<a href='{_html.escape(rep.html.name)}'>{_html.escape(name)}</a>" if rep.html else _html.escape(name)
            pic = f"<img src='{_html.escape(rep.thumbnail.name)}' width='240'>" if rep.thumbnail else ""
            items = list(rep.records.items())[:8]
            numbers = "<br>".join(f"<code>{_html.escape(k)}</code> = {_html.escape(_fmt(v))}" for k, v in items)
            if rep.records_json:
                numbers += f"<br><a href='{_html.escape(rep.records_json.name)}'>all recorded values</a>"
            numbers += f"<br><small>data: {_html.escape(describe_data(rep.data))}</small>"
        groups.setdefault(rep.group or "", []).append(
            f"<tr><td>{link}</td><td>{pic}</td><td>{rep.seconds:.1f} s</td><td>{status}</td><td>{numbers}</td></tr>")
    order = [g for g in GROUP_TITLES if g in groups] + sorted(g for g in groups if g not in GROUP_TITLES)
    header = "<tr><th>notebook</th><th>figure</th><th>time</th><th>status</th><th>headline numbers</th></tr>"
    sections = []
    for g in order:
        title = GROUP_TITLES.get(g, g or "Other notebooks")
        ran = sum(1 for rep in reports if (rep.group or "") == g and not rep.error)
        sections.append(f"<h2 id='{_html.escape(g or 'other')}'>{_html.escape(title)}</h2>"
                        f"<p>{ran} of {len(groups[g])} ran.</p><table>{header}{''.join(groups[g])}</table>")
    page = (
        "<!doctype html><meta charset='utf-8'><title>medlab reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:6px;border-bottom:1px solid #ddd}"
        "small{color:#666}</style><h1>medlab reports</h1>"
        f"<p>{sum(not r.error for r in reports)} of {len(reports)} notebooks ran; "
        f"{sum(r.seconds for r in reports):.0f} s in all.</p>"
        + "".join(sections)
    )
    index = out_dir / "index.html"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(index, page)
    return index


def parse_value(text: str):
    """Parse a command-line parameter value: a Python literal if it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
