"""Figures with units and captions, in every notebook (issue 20: "figures with units and captions").

A static check of each code cell's source (parsed with ``ast``, nothing is executed, so it costs
milliseconds). A *figure cell* is a cell that draws with matplotlib (``plt.subplots``,
``ax.plot``, ``ax.imshow``, ``medlab.display.imshow``, a pandas ``.plot``...), directly or
through a function defined in the same notebook. Each figure cell must:

* **have a caption**: prose right before it (a markdown cell saying what the figure shows);
* **say what is shown**: a title (``set_title``, ``suptitle``, ``plt.title`` or a ``title=``
  keyword);
* **label the axes of a data plot** (``plot``, ``scatter``, ``hist``, ``bar``, ``errorbar``,
  ``boxplot``, ...): both an x and a y label;
* **give units**: every axis or colour-bar label written as a string either carries its unit in
  brackets, ``"diameter (mm)"``, ``"SUV [g/mL]"``, or names a dimensionless quantity
  (``DIMENSIONLESS``: Dice, sensitivity, a count, ...);
* **not show pixel indices as if they were positions**: an image drawn with
  ``medlab.display.imshow`` has axes in mm and one drawn with ``ax.imshow`` has pixel indices,
  so such a cell either turns the axes off (``axis("off")``, ``set_axis_off``, empty ticks) or
  labels them (``x (mm)``, ``column (pixel)``);
* **label a colour bar** (``label=`` or ``.set_label``).

The rules are per cell, not per axes: a cell with two panels and one title passes. That is the
price of a check that needs no execution; the notebooks' own tests run the figures.
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from notebook_support import NB_DIR

NOTEBOOKS = sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

#: drawing calls whose axes carry data values (they need an x and a y label)
DATA_PLOTS = {"plot", "scatter", "hist", "bar", "barh", "errorbar", "boxplot", "step", "fill_between",
              "semilogy", "semilogx", "loglog", "violinplot", "stem", "hexbin"}
#: drawing calls that show an image
IMAGE_PLOTS = {"imshow", "matshow", "pcolormesh"}
#: calls that create a figure
FIGURES = {"subplots", "figure", "subplot_mosaic"}
#: words that make a label dimensionless (no unit to give), or name the categories of a categorical axis
DIMENSIONLESS = ("dice", "sensitivity", "specificity", "rate", "fraction", "probability", "auc", "count",
                 "number", "case", "patient", "image", "iteration", "rank", "ratio", "score", "accuracy",
                 "precision", "recall", "cnr", "ssim", "correlation", "frame", "class", "index", "slice",
                 "fold", "epoch", "importance", "weight", "logit", "density", "percentile", "model",
                 "jacobian", "frequency", "z-score", "feature", "label", "method", "per scan", "share", "voxels",
                 "region", "tissue", "family", "group",
                 "suv")
UNIT = re.compile(r"\(.+\)|\[.+\]")
AXES_OFF = {"set_axis_off", "set_xticks", "set_yticks"}


def _name(func) -> tuple[str, str]:
    """(attribute or function name, the name of what it is called on)."""
    if isinstance(func, ast.Attribute):
        owner = func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        return func.attr, owner_name
    return getattr(func, "id", ""), ""


def _text(node) -> str | None:
    """A string literal, or the literal parts of an f-string; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _walk(tree):
    """Every node of ``tree`` except the bodies of the functions it defines (those count where
    they are called)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.FunctionDef))


def _facts(tree) -> dict:
    """What one cell (or function body) does: draws, titles, labels, axes off, colour bars."""
    f = {"figure": False, "data": False, "image": False, "title": False, "xlabel": False, "ylabel": False,
         "axes_off": False, "colorbar": False, "colorbar_label": False, "labels": [], "calls": set()}
    root = ast.Module(body=tree.body, type_ignores=[]) if isinstance(tree, ast.FunctionDef) else tree
    for node in _walk(root):
        if not isinstance(node, ast.Call):
            continue
        name, owner = _name(node.func)
        f["calls"].add(name)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in FIGURES and owner == "plt":
            f["figure"] = True
        if name in DATA_PLOTS or (owner == "plot" and name in DATA_PLOTS | {"line", "area", "kde", "density"}):
            f["data"] = f["figure"] = True
        if name == "plot" and owner not in ("plt", "ax", "axes") and not isinstance(node.func, ast.Name):
            f["data"] = f["figure"] = True  # pandas DataFrame.plot(...)
        if name in IMAGE_PLOTS:
            f["figure"] = f["image"] = True
        if name in ("set_title", "suptitle", "title") or "title" in kw:
            f["title"] = True
        for axis in ("x", "y"):
            if name in (f"set_{axis}label", f"{axis}label") and node.args:
                f[f"{axis}label"] = True
                f["labels"].append(_text(node.args[0]))
            if f"{axis}label" in kw:
                f[f"{axis}label"] = True
                f["labels"].append(_text(kw[f"{axis}label"]))
        if name == "axis" and node.args and _text(node.args[0]) == "off" or name in AXES_OFF:
            f["axes_off"] = True
        if name == "colorbar":
            f["colorbar"] = True
            if "label" in kw:
                f["colorbar_label"] = True
                f["labels"].append(_text(kw["label"]))
        if name == "set_label" and node.args:
            f["colorbar_label"] = True
            f["labels"].append(_text(node.args[0]))
    return f


def _merge(f: dict, g: dict) -> None:
    for k, v in g.items():
        if isinstance(v, bool):
            f[k] = f[k] or v
        elif k == "labels":
            f[k] = f[k] + v


def problems(cells: list[str | None]) -> list[str]:
    """Every rule broken by the cells of one notebook (code cells' sources, None for the others),
    as messages naming the cell by its position in the notebook."""
    trees = {}
    for i, src in enumerate(cells):
        if src is not None:
            lines = [line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))]
            trees[i] = ast.parse("\n".join(lines))
    functions = {n.name: _facts(n) for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.FunctionDef)}
    out = []
    for i, tree in trees.items():
        f = _facts(tree)
        for name in sorted(f["calls"] & functions.keys()):
            _merge(f, functions[name])
        if not f["figure"]:
            continue
        where = f"cell {i}"
        if i == 0 or cells[i - 1] is not None:
            out.append(f"{where}: a figure without a caption: prose (a markdown cell) right before it")
        if not f["title"]:
            out.append(f"{where}: a figure without a title saying what is shown")
        if f["data"] and not (f["xlabel"] and f["ylabel"]):
            out.append(f"{where}: a data plot needs an x and a y label (with units)")
        if f["image"] and not (f["axes_off"] or (f["xlabel"] and f["ylabel"])):
            out.append(f"{where}: an image with axes neither turned off nor labelled (x (mm), y (mm))")
        if f["colorbar"] and not f["colorbar_label"]:
            out.append(f"{where}: a colour bar without a label")
        for label in f["labels"]:
            if label and not UNIT.search(label) and not any(w in label.lower() for w in DIMENSIONLESS):
                out.append(f"{where}: label {label!r} has no unit in brackets and is not a dimensionless quantity")
    return out


def _code_cells(path) -> list[str | None]:
    return ["".join(c["source"]) if c["cell_type"] == "code" else None for c in json.loads(path.read_text())["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_have_titles_labels_and_units(path):
    assert problems(_code_cells(path)) == []


def test_the_figure_check_can_fail():
    """Each rule, broken once, is found; the same cells written properly pass (None: a markdown
    cell, the caption)."""
    bad = [
        None,
        "fig, ax = plt.subplots()\nax.plot(t, d)\nax.set_xlabel('time (s)')",  # no title, no y label
        None,
        "fig, ax = plt.subplots()\nax.imshow(img)\nax.set_title('CT')",  # pixel axes shown
        None,
        "fig, ax = plt.subplots()\nax.hist(x)\nax.set_xlabel('diameter')\nax.set_ylabel('count')\n"
        "ax.set_title('sizes')",  # no unit
        None,
        "fig, ax = plt.subplots()\nim = ax.imshow(img)\nfig.colorbar(im)\nax.axis('off')\n"
        "ax.set_title('SUV')",  # colour bar without a label
        "def show(ax, im):\n    display.imshow(ax, im)\n\nprint('defined')",
        None,
        "fig, ax = plt.subplots()\nshow(ax, ct)\nax.set_title('CT')",  # axes in mm, unlabelled, via a function
        "fig, ax = plt.subplots()\nax.axis('off')\nax.imshow(img)\nax.set_title('CT')",  # no caption before
    ]
    found = problems(bad)
    assert [m.split(":")[0] for m in found] == ["cell 1"] * 2 + ["cell 3", "cell 5", "cell 7", "cell 10", "cell 11"]
    assert "caption" in found[-1] and "unit" in found[3]
    good = [
        None,
        "fig, ax = plt.subplots()\nax.plot(t, d)\nax.set(xlabel='time (s)', ylabel='diameter (mm)')\n"
        "ax.set_title('diameter over time')",
        None,
        "fig, ax = plt.subplots()\nim = display.imshow(ax, img)\nfig.colorbar(im, label='SUV (g/mL)')\n"
        "ax.set_xlabel('x (mm)'); ax.set_ylabel('y (mm)'); ax.set_title('PET')",
        None,
        "df.plot.bar(ax=ax, ylabel='Dice', xlabel='patient', title='Dice per patient')",
        "print('no figure here')",
    ]
    assert problems(good) == []
