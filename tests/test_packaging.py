"""What a package index and a fresh install see: licence files, classifiers, complete pins,
every data folder declared, an sdist without a test suite it cannot run."""

from __future__ import annotations

import glob
import re
import tomllib
from importlib.metadata import distribution, version

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_pins import ROOT, _installed_extras, _pins

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
META = PROJECT["project"]
SETUPTOOLS = PROJECT["tool"]["setuptools"]


def _closure(extras) -> dict[str, str]:
    """Every distribution medlab[extras] pulls in (recursively, with their extras) -> installed version."""
    seen: dict[str, set] = {}
    todo = [("medlab", set(extras))]
    while todo:
        name, wanted = todo.pop()
        dist = distribution(name)  # PackageNotFoundError: a requirement is not installed at all
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen and wanted <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | wanted
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}) or any(
                    req.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((req.name, set(req.extras)))
    seen.pop("medlab")
    return {name: version(name) for name in seen}


def test_constraints_pin_every_installed_distribution_at_its_installed_version():
    # constraints.txt is what a fresh machine installs: a distribution missing from it floats
    # (wrapt, pulled in by tensorflow-cpu and napari, was); one pinned at another version than the
    # tested environment's is a pin nobody tested
    pins = {name: str(v) for name, v in _pins().items()}
    installed = _closure(_installed_extras())
    assert len(installed) > 150  # the closure really was walked
    missing = sorted(f"{n}=={v}" for n, v in installed.items() if n not in pins)
    assert missing == [], f"add to constraints.txt: {missing}"
    differ = sorted(f"{n}: pinned {pins[n]}, installed {v}" for n, v in installed.items() if pins[n] != v)
    assert differ == []


def test_licence_files_exist_and_are_declared():
    assert META["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in text
    for pattern in META["license-files"]:
        assert glob.glob(str(ROOT / pattern)), f"license-files pattern {pattern!r} matches nothing"


def test_classifiers_name_python_version_and_development_status():
    classifiers = META["classifiers"]
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", META["requires-python"])
    assert f"Programming Language :: Python :: {minimum[1]}.{minimum[2]}" in classifiers


def test_test_tools_are_not_in_user_facing_extras():
    test_only = {"pytest", "pytest-qt", "pytest-xdist", "nbval", "hypothesis", "playwright"}
    for extra, reqs in META["optional-dependencies"].items():
        names = {canonicalize_name(Requirement(r).name) for r in reqs}
        if extra == "test":
            assert "pytest-qt" in names
        else:
            assert not names & test_only, f"extra {extra!r} installs test tools {names & test_only}"


def test_every_folder_of_package_data_is_a_declared_package():
    # setuptools warns ("Package 'medlab.models.weights' is absent from the `packages`
    # configuration") for a data folder with an importable name that is not declared and whose
    # files a package-data glob of its parent reaches (sample/extra and sample/noncommercial are
    # reached by none: they stay out of the wheel)
    packages = set(SETUPTOOLS["packages"])
    dirs = {pkg: ROOT / path for pkg, path in SETUPTOOLS["package-dir"].items()}
    undeclared = []
    for pkg in packages:
        base = next((dirs[p] / pkg[len(p) + 1:].replace(".", "/") if pkg != p else dirs[p])
                    for p in sorted(dirs, key=len, reverse=True) if pkg == p or pkg.startswith(p + "."))
        assert base.is_dir(), f"declared package {pkg} has no folder {base}"
        for sub in base.iterdir():
            name = f"{pkg}.{sub.name}"
            reached = any(g.startswith((f"{sub.name}/", "**")) for g in SETUPTOOLS["package-data"].get(pkg, []))
            if (reached and sub.is_dir() and sub.name.isidentifier() and sub.name != "__pycache__"
                    and any(f.is_file() and f.suffix != ".pyc" for f in sub.rglob("*"))
                    and name not in packages and name not in dirs):
                undeclared.append(name)
    assert undeclared == []


def test_package_data_globs_match_files():
    dirs = {pkg: ROOT / path for pkg, path in SETUPTOOLS["package-dir"].items()}
    for pkg, globs in SETUPTOOLS["package-data"].items():
        root = next(dirs[p] / pkg[len(p):].lstrip(".").replace(".", "/")
                    for p in sorted(dirs, key=len, reverse=True) if pkg == p or pkg.startswith(p + "."))
        for g in globs:
            assert glob.glob(str(root / g)), f"package-data {pkg}: {g!r} matches nothing in {root}"


def test_sdist_leaves_out_the_test_suite_it_could_not_run():
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    assert "prune tests" in manifest
    assert any(ln.startswith("include LICENSE") for ln in manifest)


def test_wheel_leaves_out_the_noncommercial_and_extra_sample():
    # the CC BY-NC CT phantom and BUSI (research use) are never redistributed in the wheel; the
    # extra cases are kept out for size (measured wheel: 16.4 MB, limit 20 MB)
    globs = SETUPTOOLS["package-data"]["medlab.datasets.sample"]
    assert all("/" not in g for g in globs), globs  # the top folder only
    sample = ROOT / "medlab" / "datasets" / "sample"
    top = {p.name for p in sample.glob("*.zip")}
    assert {"ibsi_ct_phantom.zip", "busi.zip"} & top == set()
    assert {"ibsi_ct_phantom.zip", "busi.zip"} <= {p.name for p in (sample / "noncommercial").glob("*.zip")}
    for archive in sample.rglob("*.zip"):  # each source's licence beside its data
        assert (archive.parent / f"{archive.stem}.LICENSE.md").is_file(), archive
    nc = (sample / "noncommercial" / "ibsi_ct_phantom.LICENSE.md").read_text()
    assert "CC BY-NC 3.0" in nc and "Non-commercial use only" in nc
    wheel_bytes = sum(p.stat().st_size for g in globs for p in sample.glob(g))
    assert wheel_bytes < 14e6  # 12.8 MB; + library, notebooks and weights (about 3.7 MB) < 20 MB



def test_docs_extra_is_pinned_within_its_ranges():
    # the docs extra is installed on demand by `bash tools/dev.sh docs`, not with tools/dev.sh's EXTRAS
    pins = _pins()
    for text in META["optional-dependencies"]["docs"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), text
    # what the extra pulls in is pinned too, where it is installed (CI installs it only for docs)
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        for text in META["optional-dependencies"]["docs"]:
            distribution(Requirement(text).name)
    except PackageNotFoundError:
        return
    installed = _closure(["docs"])
    assert {n for n in installed if n not in pins} == set()
