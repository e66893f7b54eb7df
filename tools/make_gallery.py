"""Build the README's notebook gallery from an executed report folder.

    bash tools/dev.sh report                 # runs every notebook -> reports/
    .venv/bin/python tools/make_gallery.py reports

Copies each notebook's first figure (the thumbnail `medlab report --all` saved, i.e. a picture
the notebook itself drew) to ``docs/gallery/<notebook>.png`` and rewrites the table between the
``<!-- gallery -->`` markers of README.md: picture, notebook, what it teaches (its title and
first sentence) and how long it took to run here.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- gallery -->", "<!-- /gallery -->"


def _summary(nb_path: Path) -> tuple[str, str]:
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]).strip()
            lines = text.splitlines()
            title = re.sub(r"^#+\s*", "", lines[0]).strip()
            body = " ".join(line.strip() for line in lines[1:] if line.strip() and not line.startswith(("*", "-", "#")))
            sentence = re.split(r"(?<=[.:])\s", body, maxsplit=1)[0] if body else ""
            return title, sentence.rstrip(":")
    return nb_path.stem, ""


def _seconds(report_dir: Path, stem: str) -> float | None:
    executed = report_dir / f"{stem}.ipynb"
    if not executed.is_file():
        return None
    meta = json.loads(executed.read_text()).get("metadata", {}).get("papermill", {})
    return meta.get("duration")


def main(report_dir: str) -> int:
    report_dir = Path(report_dir)
    gallery = ROOT / "docs" / "gallery"
    gallery.mkdir(parents=True, exist_ok=True)
    rows = ["| figure | notebook | what it shows | run time |", "|---|---|---|---|"]
    for sub in ("tutorials", "usecases"):
        for nb in sorted((ROOT / "notebooks" / sub).glob("*.ipynb")):
            thumb = report_dir / f"{nb.stem}.png"
            pic = ""
            if thumb.is_file():
                shutil.copyfile(thumb, gallery / thumb.name)
                pic = f"<img src='docs/gallery/{thumb.name}' width='220'>"
            title, sentence = _summary(nb)
            secs = _seconds(report_dir, nb.stem)
            rows.append(f"| {pic} | [`{sub}/{nb.name}`](notebooks/{sub}/{nb.name}) | **{title}**. {sentence} | "
                        f"{f'{secs:.0f} s' if secs is not None else 'not run'} |")
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{START}\n" + "\n".join(rows) + f"\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += f"\n## Notebooks\n\nPictures drawn by the notebooks themselves (`tools/make_gallery.py`).\n\n{block}\n"
    readme.write_text(text)
    print(f"gallery: {len(rows) - 2} notebooks -> README.md, docs/gallery/")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
