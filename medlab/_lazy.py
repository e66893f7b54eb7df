"""Lazy attributes of a package (PEP 562): submodules and names load on first use.

One helper for every package that defers its imports, so ``import medlab`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping


def attach(package: str, *, submodules: Iterable[str] = (), names: Mapping[str, str] | None = None,
           listing: Iterable[str] = ()):
    """``(__getattr__, __dir__)`` for the package ``package`` to assign at its module level.

    Parameters
    ----------
    package : str
        The package's dotted name (its ``__name__``).
    submodules : iterable of str
        Submodules loaded and returned on first access to their name.
    names : mapping of str to str, optional
        Attribute name -> the submodule that defines it (loaded on first access).
    listing : iterable of str
        What ``dir(package)`` lists (sorted).

    Returns
    -------
    (callable, callable)
        The module-level ``__getattr__`` and ``__dir__``. A loaded value is stored on the
        package, so each name loads once; an unknown name raises AttributeError.
    """
    subs = frozenset(submodules)
    where = dict(names or {})
    shown = sorted(set(listing))

    def __getattr__(name):
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        elif name in subs:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return list(shown)

    return __getattr__, __dir__
