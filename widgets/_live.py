"""Live sliders: throttled continuous updates that never write a value back to the slider.

A slider with ``continuous_update=True`` sends a value for every step the handle passes. Two
problems follow, and this module solves both for every component:

- **Work piling up.** A threshold or a blend recomputes the whole volume per value; when values
  come faster than that, the kernel falls behind the hand. :class:`Throttle` runs the update
  at once when the last run is older than its own duration (or ``min_interval_s``), else
  schedules one run, later, with the newest value only (the kernel's asyncio loop; outside a
  kernel, e.g. in tests, every call runs at once).
- **Values bouncing back.** The browser's float slider snaps a value the kernel sets (an Otsu
  threshold, an 'auto' window) to its step grid and writes the snapped value back.
  :func:`same_on_grid` tells such an echo from a real move, so the state keeps its exact value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Throttle", "same_on_grid"]


def same_on_grid(slider_value: float, state_value: float, step: float) -> bool:
    """Whether a slider value is the state value snapped to the slider's step grid."""
    return abs(float(slider_value) - float(state_value)) <= 0.5 * float(step) * (1 + 1e-9)


class Throttle:
    """Call ``fn`` with the newest arguments, at most once per its own run time.

    Parameters
    ----------
    fn : callable
        The update; its exceptions propagate (in the kernel: to the log, as any widget handler).
    min_interval_s : float
        Shortest time between two runs, seconds.
    """

    def __init__(self, fn: Callable, *, min_interval_s: float = 0.03):
        self.fn = fn
        self.min_interval_s = float(min_interval_s)
        self._args: tuple | None = None
        self._handle = None
        self._next_ok = 0.0  # monotonic time from which a run may start at once
        self.runs = 0

    def __call__(self, *args) -> None:
        self._args = args
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script, a test): run now
            self._run()
            return
        if self._handle is not None:
            return  # a run is scheduled: it takes the newest arguments
        wait = self._next_ok - time.monotonic()
        if wait <= 0:
            self._run()
        else:
            self._handle = loop.call_later(wait, self._run)

    def _run(self) -> None:
        self._handle = None
        args, self._args = self._args, None
        if args is None:
            return
        t0 = time.monotonic()
        try:
            self.fn(*args)
        finally:
            took = time.monotonic() - t0
            self.runs += 1
            self._next_ok = time.monotonic() + max(self.min_interval_s, took)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._args = None
