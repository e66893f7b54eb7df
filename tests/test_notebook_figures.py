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

The axis rules (x and y labels, image axes labelled or off) hold **per panel**: every axes that
draws (``ax.plot``, ``axes[1].imshow``, ``display.imshow(axes[0, k], ...)``, ``df.plot(ax=ax)``)
must have them, set on that axes itself or on all of them: a loop variable over the axes array
(``for ax in axes.flat: ax.axis("off")``) stands for every panel, ``axes[0]`` and ``row[1]``
(``for row in axes``) for one. A function defined in the notebook is checked where it is called,
its parameters replaced by the call's arguments. The title rule holds per figure (a panel title or
a ``suptitle``). Nothing is executed: what the source does not name (an axes returned by a
function, ``plt.gca()``) is not checked; the notebooks' own tests run the figures.
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


def _root(node) -> str:
    """The name of the axes (array) an expression takes its axes from: ``axes`` for ``axes[0, k]``,
    ``axes.flat``, ``axes.ravel()``, ``np.atleast_1d(axes)``, ``axes[1:]``; '' if none."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Subscript | ast.Starred):
            node = node.value
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("ravel", "flatten"):
                node = node.func.value
            elif node.args:
                node = node.args[0]
            else:
                return ""
        else:
            return ""


def _loop_aliases(node: ast.For) -> dict[str, str]:
    """Loop variables that run over an axes array: ``{'ax': 'axes'}`` for ``for ax, x in zip(axes, xs)``,
    ``for i, ax in enumerate(axes.flat)``, ``for row in axes``."""
    target, it = node.target, node.iter
    pairs = [(target, it)]
    if isinstance(it, ast.Call) and getattr(it.func, "id", "") == "zip" and isinstance(target, ast.Tuple):
        pairs = list(zip(target.elts, it.args))
    elif isinstance(it, ast.Call) and getattr(it.func, "id", "") == "enumerate" and isinstance(target, ast.Tuple) \
            and len(target.elts) == 2 and it.args:
        pairs = [(target.elts[1], it.args[0])]
    return {t.id: _root(i) for t, i in pairs if isinstance(t, ast.Name) and _root(i)}


def _facts(tree) -> dict:
    """What one cell (or function body) does: draws (on which axes), titles, labels (on which axes),
    axes off, colour bars."""
    f = {"figure": False, "title": False, "colorbar": False, "colorbar_label": False, "labels": [],
         "calls": {}, "panels": {}, "props": {}, "aliases": {}}
    root = ast.Module(body=tree.body, type_ignores=[]) if isinstance(tree, ast.FunctionDef) else tree

    def draws(key, kind):
        f["figure"] = True
        f["panels"].setdefault(key, set()).add(kind)

    def has(key, prop):
        f["props"].setdefault(key, set()).add(prop)

    for node in _walk(root):
        if isinstance(node, ast.For):
            f["aliases"].update(_loop_aliases(node))
        if not isinstance(node, ast.Call):
            continue
        name, owner = _name(node.func)
        f["calls"].setdefault(name, []).append(node)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        method = isinstance(node.func, ast.Attribute)
        on = ast.unparse(node.func.value) if method else ""  # the axes a method is called on
        if name in FIGURES and owner == "plt":
            f["figure"] = True
        if owner == "plot" and name in DATA_PLOTS | {"line", "area", "kde", "density"} or (
                name == "plot" and owner not in ("plt", "ax", "axes") and method and not on.startswith("ax")):
            # pandas DataFrame.plot(...) / .plot.bar(...): drawn on ax=..., labelled by its keywords
            on = ast.unparse(kw["ax"]) if "ax" in kw else "plt"
            draws(on, "data")
        elif name in DATA_PLOTS and method:
            draws(on, "data")
        if name in IMAGE_PLOTS:
            if owner == "display" and node.args:  # medlab.display.imshow(ax, image): axes in mm
                on = ast.unparse(node.args[0])
            draws(on, "image")
        if name in ("set_title", "suptitle", "title") or "title" in kw:
            f["title"] = True
        for axis in ("x", "y"):
            if name in (f"set_{axis}label", f"{axis}label") and node.args:
                has(on or "plt", f"{axis}label")
                f["labels"].append(_text(node.args[0]))
            if f"{axis}label" in kw:
                has(on or "plt", f"{axis}label")
                f["labels"].append(_text(kw[f"{axis}label"]))
        if name == "axis" and node.args and _text(node.args[0]) == "off" or name in AXES_OFF:
            has(on or "plt", "off")
        if name == "colorbar":
            f["colorbar"] = True
            if "label" in kw:
                f["colorbar_label"] = True
                f["labels"].append(_text(kw["label"]))
        if name == "set_label" and node.args:
            f["colorbar_label"] = True
            f["labels"].append(_text(node.args[0]))
    return f


def _called(g: dict, fn: ast.FunctionDef, call: ast.Call) -> dict:
    """A function's facts where it is called: its parameters named by the call's arguments."""
    params = [a.arg for a in fn.args.args]
    rename = {p: ast.unparse(a) for p, a in zip(params, call.args) if not isinstance(a, ast.Starred)}
    rename.update({k.arg: ast.unparse(k.value) for k in call.keywords if k.arg in params})

    def key(k):
        head, sep, rest = k.partition("[")
        return rename.get(head, head) + sep + rest

    return {**g, "panels": {key(k): v for k, v in g["panels"].items()},
            "props": {key(k): v for k, v in g["props"].items()},
            "aliases": {key(k): rename.get(v, v) for k, v in g["aliases"].items()}}


def _merge(f: dict, g: dict) -> None:
    for k in ("figure", "title", "colorbar", "colorbar_label"):
        f[k] = f[k] or g[k]
    f["labels"] = f["labels"] + g["labels"]
    f["aliases"].update(g["aliases"])
    for k in ("panels", "props"):
        for key, v in g[k].items():
            f[k].setdefault(key, set()).update(v)


def _panel_props(f: dict, key: str) -> set:
    """What is set on one drawn axes: on itself, on the axes arrays it comes from (``axes`` for
    ``axes[0]``, ``axes`` for ``row[1]`` in ``for row in axes``), and on loop variables over them."""
    chain = [key]
    while len(chain) < 10:
        k = chain[-1]
        parent = f["aliases"].get(k) or (k.partition("[")[0] if "[" in k else "")
        if not parent or parent in chain:
            break
        chain.append(parent)
    owners = set(chain) | {a for a, target in f["aliases"].items() if target in chain}
    return set().union(*(f["props"].get(k, set()) for k in owners))


def problems(cells: list[str | None]) -> list[str]:
    """Every rule broken by the cells of one notebook (code cells' sources, None for the others),
    as messages naming the cell by its position in the notebook (and the panel: the axes drawn on)."""
    trees = {}
    for i, src in enumerate(cells):
        if src is not None:
            lines = [line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))]
            trees[i] = ast.parse("\n".join(lines))
    functions = {n.name: n for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.FunctionDef)}
    facts = {name: _facts(fn) for name, fn in functions.items()}
    out = []
    for i, tree in trees.items():
        f = _facts(tree)
        for name in sorted(f["calls"].keys() & functions.keys()):
            for call in f["calls"][name]:
                _merge(f, _called(facts[name], functions[name], call))
        if not f["figure"]:
            continue
        where = f"cell {i}"
        if i == 0 or cells[i - 1] is not None:
            out.append(f"{where}: a figure without a caption: prose (a markdown cell) right before it")
        if not f["title"]:
            out.append(f"{where}: a figure without a title saying what is shown")
        for key, kinds in sorted(f["panels"].items()):
            props = _panel_props(f, key)
            labelled = {"xlabel", "ylabel"} <= props
            if "data" in kinds and not labelled:
                out.append(f"{where}, panel {key}: a data plot needs an x and a y label (with units)")
            if "image" in kinds and not (labelled or "off" in props):
                out.append(f"{where}, panel {key}: an image with axes neither turned off nor labelled "
                           "(x (mm), y (mm))")
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
    assert [m.split(":")[0] for m in found] == ["cell 1", "cell 1, panel ax", "cell 3, panel ax", "cell 5", "cell 7",
                                                "cell 10, panel ax", "cell 11"]
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


def test_the_figure_check_is_per_panel():
    """A cell whose first panel is labelled but whose second is not fails, naming the panel; the
    labels set through a loop over all panels, or in a function called on each, count for each."""
    two_panels = ("fig, axes = plt.subplots(1, 2)\ndisplay.imshow(axes[0], ct)\naxes[0].set(xlabel='x (mm)', "
                  "ylabel='y (mm)')\naxes[1].plot(t, d)\naxes[1].set_xlabel('time (s)')\nfig.suptitle('CT')")
    assert problems([None, two_panels]) == ["cell 1, panel axes[1]: a data plot needs an x and a y label (with units)"]
    grid = ("fig, axes = plt.subplots(2, 2)\nfor row in axes:\n    display.imshow(row[0], ct)\n"
            "    row[1].imshow(pet)\naxes[0, 0].axis('off')\nfig.suptitle('CT and PET')")
    assert [m.split(":")[0] for m in problems([None, grid])] == ["cell 1, panel row[0]", "cell 1, panel row[1]"]
    good = [
        None,
        two_panels + "\naxes[1].set_ylabel('diameter (mm)')",
        None,
        grid + "\nfor ax in axes.flat:\n    ax.axis('off')",
        "def show(target, image):\n    display.imshow(target, image)\n    target.set_axis_off()",
        None,
        "fig, (a, b) = plt.subplots(1, 2)\nshow(a, ct)\nshow(target=b, image=pet)\na.set_title('CT, PET')",
    ]
    assert problems(good) == []
    assert problems(good[:4] + [good[4].replace("target.set_axis_off()", "target.set_title('x')")] + good[5:]) == [
        "cell 6, panel a: an image with axes neither turned off nor labelled (x (mm), y (mm))",
        "cell 6, panel b: an image with axes neither turned off nor labelled (x (mm), y (mm))"]
