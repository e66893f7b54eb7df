"""Exercise checks for the tutorials: tell a student whether an answer is right, and why not.

``check`` compares an answer with the expected value (numbers within a tolerance, arrays by
shape then values, strings and booleans exactly), prints one clear line and returns ``True`` or
``False``. A wrong answer never raises: a student's notebook keeps running. ``passed()`` counts
the checks that passed in this kernel, so a notebook can record ``exercises_passed`` for its test.
"""

from __future__ import annotations

import numbers

import numpy as np
from medlab._atomic import write_text

__all__ = ["check", "passed", "reset", "student_copy"]

_RESULTS: dict[str, bool] = {}


def _verdict(answer, expected, rtol: float, atol: float) -> str | None:
    """``None`` when ``answer`` matches ``expected``; otherwise the reason it does not."""
    if answer is None:
        return "no answer yet (the value is None): replace the ... with your code"
    if isinstance(expected, (str, bool, np.bool_)):
        if isinstance(expected, (bool, np.bool_)) and isinstance(answer, (bool, np.bool_)):
            return None if bool(answer) == bool(expected) else f"expected {bool(expected)}, got {bool(answer)}"
        if type(answer) is not type(expected):
            return f"expected a {type(expected).__name__}, got a {type(answer).__name__} ({answer!r})"
        return None if answer == expected else f"expected {expected!r}, got {answer!r}"
    if isinstance(expected, (tuple, list)) and all(isinstance(e, numbers.Integral) for e in expected) and expected:
        if not isinstance(answer, (tuple, list)):
            return f"expected a {type(expected).__name__} like {tuple(expected)}, got a {type(answer).__name__}"
        if tuple(answer) != tuple(expected):
            return f"expected {tuple(expected)}, got {tuple(answer)}"
        return None
    try:
        a = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return f"expected a number or an array, got a {type(answer).__name__} ({answer!r:.60})"
    e = np.asarray(expected, dtype=float)
    if a.shape != e.shape:
        return f"expected shape {e.shape}, got shape {a.shape}"
    if np.isnan(a).any() and not np.isnan(e).any():
        return "the answer contains NaN"
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    tol = f"tolerance {atol:g} + {rtol:g} x |expected|"
    if e.ndim == 0:
        return f"expected {float(e):.6g}, got {float(a):.6g} (off by {float(a - e):+.3g}; {tol})"
    worst = np.unravel_index(np.argmax(np.abs(a - e) - atol - rtol * np.abs(e)), e.shape)
    return (f"{int((~close).sum())} of {close.size} values differ; the worst at index {tuple(int(i) for i in worst)}: "
            f"expected {e[worst]:.6g}, got {a[worst]:.6g} ({tol})")


def check(name: str, answer, expected, *, rtol: float = 1e-6, atol: float = 1e-9, hint: str = "") -> bool:
    """Compare a student's ``answer`` with ``expected``; print the verdict; return it.

    Parameters
    ----------
    name : str
        The exercise's name, printed and counted by :func:`passed` (a re-run replaces its result).
    answer : object
        The student's value: a number, an array, a tuple of ints (a shape), a string or a bool.
        ``None`` (the exercise's placeholder) counts as not answered.
    expected : object
        The right value, of the same kind.
    rtol, atol : float, keyword-only
        Relative and absolute tolerance for numbers and arrays, in the answer's units
        (``|answer - expected| <= atol + rtol * |expected|``).
    hint : str, keyword-only
        Printed after a wrong answer.

    Returns
    -------
    bool
        ``True`` when the answer is right. A wrong answer prints why and returns ``False``; it
        never raises.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("name: give the exercise a non-empty name")
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol, atol: tolerances must be >= 0, got rtol={rtol}, atol={atol}")
    reason = _verdict(answer, expected, rtol, atol)
    ok = reason is None
    _RESULTS[name] = ok
    if ok:
        print(f"✓ {name}: right")
    else:
        print(f"✗ {name}: {reason}" + (f"\n  hint: {hint}" if hint else ""))
    return ok


def passed() -> int:
    """The number of exercises whose latest :func:`check` passed in this kernel."""
    return sum(_RESULTS.values())


def reset() -> None:
    """Forget the results of earlier checks (a notebook calls it once, before its exercises)."""
    _RESULTS.clear()


def student_copy(src, dst, *, solutions: bool = False):
    """Write notebook ``src`` to ``dst`` without its solution cells (tagged ``solution``).

    The parameter ``SOLUTIONS`` keeps its default ``False``; outputs are cleared. The copy is
    written atomically (complete or not at all).

    Parameters
    ----------
    src, dst : str or Path
        The teacher's notebook (``.ipynb``) and the copy to write (not ``src``).
    solutions : bool, keyword-only
        ``True`` keeps the solution cells (the teacher's copy; outputs are still cleared).

    Returns
    -------
    int
        The number of solution cells removed (0 with ``solutions=True``).
    """
    import json
    from pathlib import Path


    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"dst: the student's copy must not overwrite the source notebook {src}")
    try:
        nb = json.loads(src.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"src: {src} is not a readable notebook ({type(err).__name__}: {err})") from None
    keep = [c for c in cells if solutions or "solution" not in c.get("metadata", {}).get("tags", [])]
    for c in keep:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    nb["cells"] = keep
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_text(dst, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return len(cells) - len(keep)
