"""Structure of the package, read from the source (every import, also those inside functions):
no import cycle between medlab's modules, and no module reaching into another module's private
names or private submodules. Known violations outside this test's owners are listed with the
issue that owns their fix, so that a new one fails here."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Shared private helper modules at the top of the package (CONTRIBUTING's table): importing
#: their names is the intended use.
SHARED = {"medlab._image", "medlab._options", "medlab._progress", "medlab._histogram", "medlab._atomic", "medlab._lazy",
          "medlab.errors"}

#: (importer unit, imported module, name) allowed for now, each with the owner of its fix (issue 21
#: asks for none): a new private import fails the test, a fixed one must leave this list.
KNOWN_PRIVATE = {
    # models re-exports roc_auc_ci from metrics' private module (models owner: import medlab.metrics)
    ("medlab.models", "medlab.metrics._classification", "AUC"),
    ("medlab.models", "medlab.metrics._classification", "roc_auc_ci"),
    # privacy reads DICOM headers through io's private helpers (io/privacy owners)
    ("medlab.privacy", "medlab.io._common", "fspath"),
    ("medlab.privacy", "medlab.io._header", "open_dicom"),
    # PET uptake uses the IBSI sphere of features (PET/features owners)
    ("medlab.segmentation", "medlab.features._intensity", "_sphere"),
}


def _module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "widgets"):
        parts = ("medlab", "widgets", *path.relative_to(ROOT / "widgets").with_suffix("").parts)
    else:
        parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _files():
    yield from (ROOT / "medlab").rglob("*.py")
    yield from (ROOT / "widgets").rglob("*.py")


@functools.lru_cache(maxsize=1)
def _imports() -> tuple:
    return tuple(_scan())


def _scan():
    """(importer module, imported module, imported name or None) for every import statement."""
    for path in _files():
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("medlab"):
                        yield name, a.name, None
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.startswith("medlab"):
                    for a in node.names:
                        yield name, mod, a.name


def _unit(module: str) -> str:
    """The unit a module belongs to: ``medlab.x`` (``medlab.apps.x`` for an app; all of
    ``medlab.widgets`` is one unit; a top-level private helper is its own unit)."""
    parts = module.split(".")
    depth = 3 if len(parts) > 2 and parts[1] == "apps" else 2
    return ".".join(parts[:depth])


def _resolve(mod: str, name: str | None, known: set) -> str:
    """``from mod import name``: the submodule ``mod.name`` when it is one, else ``mod``."""
    if name and f"{mod}.{name}" in known:
        return f"{mod}.{name}"
    return mod


def _graph() -> dict:
    known = {_module_name(p) for p in _files()}
    graph: dict[str, set] = {}
    for src, mod, name in _imports():
        a, b = _unit(src), _unit(_resolve(mod, name, known))
        if a != b and b != "medlab":  # `from medlab import x` resolves to the unit of x above
            graph.setdefault(a, set()).add(b)
    return graph


def _cycles(graph: dict) -> list:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_between_units():
    graph = _graph()
    assert len(graph) > 20 and "medlab.filters" in graph["medlab.segmentation"]
    assert _cycles(graph) == [], "import cycles between modules"


def _private(module: str, importer_unit: str) -> bool:
    if module in SHARED or _unit(module) == importer_unit:
        return False
    return any(p.startswith("_") and not p.startswith("__") for p in module.split(".")[1:])


def test_no_private_cross_module_imports():
    known = {_module_name(p) for p in _files()}
    found = set()
    for src, mod, name in _imports():
        unit = _unit(src)
        target = _resolve(mod, name, known)
        if _unit(target) == unit or target in SHARED:
            continue
        private_name = name is not None and name.startswith("_") and not name.startswith("__") and target == mod
        if private_name or _private(target, unit):
            found.add((unit, target, name))
    new = sorted(found - KNOWN_PRIVATE)
    assert new == [], f"private names or modules imported across modules: {new}"
    stale = sorted(KNOWN_PRIVATE - found)
    assert stale == [], f"fixed: remove from KNOWN_PRIVATE: {stale}"


def test_the_checks_see_a_violation():
    """The unit and privacy rules on made-up imports (the checks above cannot pass vacuously)."""
    assert _unit("medlab.segmentation._lesion") == "medlab.segmentation"
    assert _unit("medlab.apps.cardiac") == "medlab.apps.cardiac"
    assert _unit("medlab.widgets.napari._layers") == "medlab.widgets"
    assert _private("medlab.features._intensity", "medlab.segmentation")
    assert not _private("medlab.segmentation._common", "medlab.segmentation")
    assert not _private("medlab._image", "medlab.registration")
    assert sum(1 for _ in _imports()) > 300
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_use_cases_live_in_apps_only():
    """One place per use case: each app is a module of medlab.apps, with no alias at the top of
    the package and no recipe of its own left in segmentation (issue 21)."""
    import medlab
    import medlab.apps
    import medlab.segmentation

    apps = set(medlab.apps.__all__)
    assert {"cardiac", "neuro", "vessels", "breast", "chest"} <= apps
    assert all((ROOT / "medlab" / "apps" / f"{a}.py").is_file() for a in apps)
    top = {p.stem for p in (ROOT / "medlab").glob("*.py")} | set(medlab._SUBMODULES)
    assert top & apps == set(), "a use case at the top of the package (use medlab.apps.<name>)"
    assert {"segment_us_lesion", "lung_fields"} & set(medlab.segmentation.__all__) == set()
    assert medlab.apps.breast.segment_us_lesion.__module__ == "medlab.apps.breast"
    assert medlab.apps.chest.lung_fields.__module__ == "medlab.apps.chest"



#: Public functions (exported by a medlab package's ``__all__``) allowed without a numpydoc
#: Parameters section: none (issue 21, item 5). A new one fails the test below.
PENDING_PARAMETERS: set[str] = set()


def _public_functions():
    import importlib
    import inspect

    import medlab
    import medlab.apps

    modules = [*medlab._SUBMODULES, *(f"apps.{a}" for a in medlab.apps.__all__)]
    for m in modules:
        mod = importlib.import_module(f"medlab.{m}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            home = getattr(obj, "__module__", "") or ""
            # a re-export is checked where it is defined (once)
            if inspect.isfunction(obj) and (home == f"medlab.{m}" or home.startswith(f"medlab.{m}.")):
                yield f"medlab.{m}.{name}", obj


def test_every_public_function_has_a_parameters_section():
    import inspect

    missing = set()
    n = 0
    for qualname, func in _public_functions():
        n += 1
        params = [p for p in inspect.signature(func).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if params and "Parameters\n----------" not in (inspect.getdoc(func) or ""):
            missing.add(qualname)
    assert n > 200  # the scan sees the package
    assert sorted(missing - PENDING_PARAMETERS) == [], "public functions without a Parameters section"
    assert sorted(PENDING_PARAMETERS - missing) == [], "fixed: remove from PENDING_PARAMETERS"


def test_lazy_attach_loads_names_and_submodules():
    """medlab._lazy.attach, the one lazy loader of medlab, apps and models, on a stdlib package."""
    import json.decoder

    import pytest

    import medlab.apps
    from medlab._lazy import attach

    getattr_, dir_ = attach("json", submodules=("decoder",), names={"JSONDecodeError": "decoder"},
                            listing=["b", "a", "b"])
    assert getattr_("decoder") is json.decoder
    assert getattr_("JSONDecodeError") is json.decoder.JSONDecodeError
    assert dir_() == ["a", "b"]
    with pytest.raises(AttributeError, match="module 'json' has no attribute 'nope'"):
        getattr_("nope")
    with pytest.raises(AttributeError, match="module 'medlab.apps' has no attribute 'nope'"):
        medlab.apps.nope  # noqa: B018
