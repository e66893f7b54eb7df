"""A numpy view of a temporary SimpleITK image reads freed memory once the image is collected
(it made N4's default mask come out empty under memory pressure in CI). This check forbids
``sitk.GetArrayViewFromImage(<a call>)`` anywhere in the project: keep the image in a name."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERN = re.compile(r"GetArrayViewFromImage\(\s*[\w.]+\(")


def test_no_array_view_of_a_temporary_image():
    offenders = []
    for folder in ("medlab", "widgets", "notebooks", "benchmarks", "tools"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb") and ".ipynb_checkpoints" not in path.parts:
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if PATTERN.search(line):
                        offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
