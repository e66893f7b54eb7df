"""Write a notebook from a list of cells (nbformat), committed without outputs.

A builder script ``tools/nbbuild/<stem>.py`` calls :func:`write` with its cells: ``("md", text)``,
``("params", code)`` (the cell tagged ``parameters``; must be the first code cell) or
``("code", code)``. Rerun a builder after editing it; the notebook is the builder's output.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]


def write(rel: str, cells: list[tuple[str, str]]) -> Path:
    """Write ``notebooks/<rel>`` from ``cells``; return its path."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    first_code = True
    for kind, text in cells:
        text = textwrap.dedent(text).strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
            continue
        if first_code != (kind == "params"):
            raise ValueError("the first code cell, and only it, must be ('params', ...)")
        first_code = False
        cell = nbformat.v4.new_code_cell(text)
        if kind == "params":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged notebook changes nothing
        cell["id"] = f"{Path(rel).stem[:40]}-{i:02d}"
    nbformat.validate(nb)
    path = ROOT / "notebooks" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
