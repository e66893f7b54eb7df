"""Numbers generated, never typed: a notebook's Markdown cells carry no measured-looking number
(it would drift from what the code measures); prose that quotes a result is a code cell
``medlab.reports.say("... {tre_mm:.1f} mm ...", tre_mm=...)``. Also the rules of ``say``/``prose``
and of the scanner ``medlab.reports.typed_numbers``.

The scanner flags decimals (``2.3 mm``, ``0.76``) and durations (``90 s``); round numbers (counts,
parameter values, sizes) pass. A number that is typed on purpose goes into ``ALLOW`` below, with
its reason: a standard's version, a physical or formula constant, a fact of the data (a header
value), an input of the method (a threshold the code is given, not one it finds). Each entry must
still occur in its notebook, so the list cannot outlive the text it excuses.
"""

from __future__ import annotations

import json

import pytest

from medlab.reports import prose, say, typed_numbers
from notebook_support import NB_DIR

NOTEBOOKS = sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

#: in every notebook: text -> why the number in it is not a measurement
ALLOW_ALL = {
    "RECIST 1.1": "the name of a standard (its version)",
    "SUV >= 2.5": "the classic fixed PET threshold, an input of the method",
    "SUV 2.5": "the classic fixed PET threshold, an input of the method",
    "0.5 contour": "the probability at which a segmentation map is cut, an input",
}

#: per notebook (path under notebooks/): text -> why the number in it is not a measurement
ALLOW = {
    "tutorials/07_radiomics_features.ipynb": {
        "0.98 × 0.98 × 3 mm": "the voxel size of the IBSI CT (a fact of the data, from its header)",
        "partial volume ≥ 0.5": "the IBSI configuration's mask threshold, an input",
    },
    "tutorials/08_classical_classification.ipynb": {
        "does 0.8 mean 80 %?": "an example of what calibration means, not a result",
        "threshold is 0.5": "the default decision threshold, an input",
    },
}

#: notebooks whose prose is still being moved to ``say`` (issue 20); each one listed here must
#: still fail (strict xfail), so an entry is removed as soon as its notebook is clean
PENDING: set[str] = set()


def _rel(path) -> str:
    return path.relative_to(NB_DIR).as_posix()


def _markdown(path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


def _params():
    for path in NOTEBOOKS:
        marks = [pytest.mark.xfail(strict=True, reason="prose not yet quoting records")] if _rel(path) in PENDING else []
        yield pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_markdown_types_no_measured_number(path):
    allow = {**ALLOW_ALL, **ALLOW.get(_rel(path), {})}
    found = []
    for i, text in _markdown(path):
        for number in typed_numbers(text, allow=allow):
            line = next((ln.strip() for ln in text.splitlines() if number.split()[0] in ln), "")
            found.append(f"cell {i}: {number!r} in: {line[:120]}")
    assert not found, (f"{_rel(path)}: numbers typed into Markdown; quote the measured value from a code cell "
                       "with medlab.reports.say(...), or, if it is no measurement, add it to ALLOW with its reason:\n"
                       + "\n".join(found))


def test_every_allow_entry_is_still_used():
    text = {_rel(p): "\n".join(t for _, t in _markdown(p)) for p in NOTEBOOKS}
    stale = [(rel, piece) for rel, pieces in ALLOW.items() for piece in pieces if piece not in text.get(rel, "")]
    assert stale == []
    assert PENDING <= set(text)


def test_scanner_flags_decimals_and_durations_only():
    assert typed_numbers("rigid 2.3 mm, similarity 3.8 mm (0.48-0.72); AUC 0.76. It ran 20-40 s, then 90 s.") == [
        "2.3 mm", "3.8 mm", "0.48", "0.72", "0.76", "20-40 s", "90 s"]
    # round numbers, names with digits, code, LaTeX, links and lesson numbers are not measurements
    assert typed_numbers("## 2 · 60 slices of 3 voxels, 40 % of SUVmax, -1000 HU; T1, MNI152, BT.601, 3D, "
                         "1955x1841, `tre = 2.62`, $\\sigma = 0.5$, [v](https://x.org/a1.2), 2018, 1.2.3") == []
    assert typed_numbers("### Exercise 3 · in 2 minutes") == ["2 minutes"]
    assert typed_numbers("RECIST 1.1 and 2.5 mm", allow=["RECIST 1.1"]) == ["2.5 mm"]


def test_prose_fills_fields_and_refuses_typed_numbers():
    assert prose("TRE {tre_mm:.1f} mm over {n} patients.", tre_mm=2.3456, n=10) == "TRE 2.3 mm over 10 patients."
    import numpy as np

    assert prose("Dice {d:.3f}", d=np.float32(0.93412)) == "Dice 0.934"
    with pytest.raises(ValueError, match=r"template: the numbers \['2.3 mm'\]"):
        prose("TRE 2.3 mm, p95 {p95:.1f} mm", p95=3.1)
    with pytest.raises(ValueError, match=r"the field \{p95\} has no value"):
        prose("p95 {p95:.1f} mm")
    with pytest.raises(ValueError, match=r"values: \['dice'\] are not used"):
        prose("TRE {tre:.1f} mm", tre=2.0, dice=0.9)
    with pytest.raises(ValueError, match="name every field"):
        prose("TRE {:.1f} mm")
    with pytest.raises(ValueError, match="does not fit its field's format"):
        prose("TRE {tre:.1f} mm", tre=None)
    with pytest.raises(ValueError, match="template: give"):
        prose("  ")


def test_say_prints_outside_a_notebook(capsys):
    assert say("TRE {tre:.2f} mm", tre=1.0) is None
    assert capsys.readouterr().out == "TRE 1.00 mm\n"


def test_reports_doctests():
    import doctest

    import medlab.reports

    result = doctest.testmod(medlab.reports)
    assert result.failed == 0 and result.attempted >= 2
