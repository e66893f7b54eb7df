"""constraints.txt (the pinned working set used by tools/dev.sh, CI and binder) agrees with the
requirement ranges in pyproject.toml, and binder builds the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _installed_extras() -> list[str]:
    m = re.search(r'^EXTRAS="([^"]+)"', (ROOT / "tools" / "dev.sh").read_text(), re.M)
    return m.group(1).split(",")


def _requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [("core", r) for r in project["dependencies"]]
    for extra in _installed_extras():
        reqs += [(extra, r) for r in project["optional-dependencies"].get(extra, [])]
    return reqs


@pytest.mark.parametrize("where, text", _requirements(), ids=lambda v: str(v))
def test_every_installed_requirement_is_pinned_within_its_range(where, text):
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        pytest.skip(f"{req} does not apply to this platform")
    pins = _pins()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} ({where}) has no pin in constraints.txt"
    assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req.specifier}"


def test_dev_extras_exist_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(_installed_extras()) <= set(project["optional-dependencies"])


def test_binder_installs_the_same_pinned_environment():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "-c constraints.txt" in post and "tools/dev.sh" in post and "EXTRAS" in post
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_widget_stack_is_jupyterlab4_ipywidgets8_without_itkwidgets():
    pins = _pins()
    assert pins["jupyterlab"].major == 4 and pins["ipywidgets"].major == 8
    assert "itkwidgets" not in pins
