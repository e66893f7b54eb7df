"""Validation helpers shared by every module (one place for argument checks)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError with a suggestion.

    >>> check_choice("method", "otsu", ["otsu", "li"])
    'otsu'
    >>> check_choice("method", "otsu_", ["otsu", "li"])
    Traceback (most recent call last):
    ...
    ValueError: `method` must be one of 'otsu', 'li'; got 'otsu_'. By 'otsu_', did you mean 'otsu'?
    """
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    msg = f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}."
    if isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1)
        if close:
            msg += f" By {value!r}, did you mean {close[0]!r}?"
    raise ValueError(msg)


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is > 0 (or >= 0), else raise ValueError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number; got {value!r}") from None
    ok = v >= 0 if allow_zero else v > 0
    if not ok or v != v:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}; got {value!r}")
    return v


def check_range(name: str, value) -> tuple[float, float]:
    """Return ``value`` as ``(low, high)`` floats with ``low < high``.

    Raises TypeError naming it when it is not two numbers, ValueError when ``low < high`` fails
    (NaN included).
    """
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be (low, high); got {value!r}") from None
    if not hi > lo:
        raise ValueError(f"`{name}` must have low < high; got {value!r}")
    return lo, hi


def require(module: str, *, extra: str, purpose: str):
    """Import an optional dependency, or fail with a message that says what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{purpose} needs the optional package '{module}'. "
            f"Install it with: pip install 'medlab[{extra}]'"
        ) from exc


def is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def check_int(name: str, value, *, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    return int(value)
