"""binder/ (repo2docker) builds the environment of the README: Python 3.11, medlab with the extras of
``tools/dev.sh`` less the test tools, every version from ``constraints.txt`` (within the ranges of
``pyproject.toml``). The pin parsing is ``tests/test_pins.py``'s."""

from __future__ import annotations

import re
import subprocess
import tomllib

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from test_pins import ROOT, _installed_extras

BINDER = ROOT / "binder"
POST_BUILD = BINDER / "postBuild"


def _binder_extras() -> list[str]:
    """The extras postBuild installs, computed by postBuild's own shell line (run here)."""
    line = next(ln for ln in POST_BUILD.read_text().splitlines() if ln.startswith("extras="))
    out = subprocess.run(["bash", "-c", f"set -euo pipefail; {line}; printf %s \"$extras\""], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.split(",")


def test_postbuild_installs_the_dev_extras_less_test_and_napari():
    # so every requirement binder installs is one that tests/test_pins.py checks is pinned in range
    extras = _binder_extras()
    assert extras == [e for e in _installed_extras() if e not in ("test", "napari")]
    assert "jupyter" in extras  # JupyterLab 4 + ipywidgets 8: the notebooks' front end
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(extras) <= set(project["optional-dependencies"])


def test_binder_installs_no_qt_and_no_test_tools():
    # PyQt6 needs libGL/libEGL that Binder's image lacks (no apt.txt); test tools are not for users
    from test_packaging import _closure

    installed = _closure(_binder_extras())
    unwanted = {"pyqt6", "pyqt6-qt6", "napari", "vispy", "pytest", "pytest-qt", "playwright"}
    assert not unwanted & set(installed), unwanted & set(installed)
    assert {"jupyterlab", "ipywidgets", "keras"} <= set(installed)
    assert not (BINDER / "apt.txt").exists()  # needed only with a Qt stack


def test_readmes_say_what_postbuild_installs():
    # binder/README.md and the project README describe the extras as postBuild computes them
    binder_readme = (BINDER / "README.md").read_text()
    assert "less `test` and `napari`" in binder_readme
    readme = " ".join((ROOT / "README.md").read_text().split())  # the phrase may wrap
    assert "binder/" in readme and "less `test` and `napari`" in readme
    for stale in ("data,jupyter,batch,dl`", "data,jupyter,batch,dl,napari"):
        assert stale not in binder_readme and stale not in readme
    assert "MEDLAB_DATA_SOURCE=full" in binder_readme  # the data Binder uses: the embedded sample


def test_postbuild_installs_through_the_constraints():
    post = POST_BUILD.read_text()
    install = [ln for ln in post.splitlines() if "pip install" in ln and not ln.lstrip().startswith("#")]
    assert install, "postBuild installs nothing"
    for ln in install:
        assert "-c constraints.txt" in ln and '-e ".[${extras}]"' in ln, ln


def test_no_other_environment_file_overrides_postbuild():
    # repo2docker prefers these to runtime.txt + postBuild; one of them would install unpinned versions
    for name in ("requirements.txt", "environment.yml", "Pipfile", "Pipfile.lock", "setup.py", "Project.toml"):
        assert not (BINDER / name).exists(), f"binder/{name} would bypass constraints.txt"


def test_runtime_is_the_python_of_the_pins():
    m = re.fullmatch(r"python-(\d+)\.(\d+)", (BINDER / "runtime.txt").read_text().strip())
    assert m, "runtime.txt must read python-X.Y"
    version = Version(f"{m[1]}.{m[2]}")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version in SpecifierSet(requires)
    # constraints.txt was frozen on Python 3.11 (tools/dev.sh, CI): binder must use the same
    assert version == Version("3.11")


def test_constraints_pin_exact_versions():
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=<>~!,\s]+", line), f"not an exact pin: {line!r}"
