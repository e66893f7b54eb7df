"""Progress reporting and stopping for long-running SimpleITK filters (one helper for all).

Protocol used across medlab: a ``progress`` callback is called as ``progress(fraction, message)``
(fraction in [0, 1]); returning ``False`` stops the work, which then raises InterruptedError.
A Jupyter kernel interrupt (KeyboardInterrupt) also stops at the next iteration.
"""

from __future__ import annotations

import sys
import threading

import SimpleITK as sitk

__all__ = ["run_filter"]

# SimpleITK prints an exception raised inside a command callback through ``sys.excepthook``
# before it aborts ``Execute``. run_filter re-raises that exception itself, so the print is
# noise. ``sys.excepthook`` is process-wide and run_filter runs on worker threads (widgets), so
# it is never swapped per call and never restored: ``_hook`` wraps whatever hook is in place
# (again if someone replaced it since) and skips only the very exception object that a callback
# of the *calling thread* re-raised; everything else goes on to the wrapped hook.
_local = threading.local()
_install_lock = threading.Lock()
_previous_hook = None


def _hook(exc_type, exc, tb):
    if exc is not None and exc is getattr(_local, "raised", None):
        return
    if getattr(_local, "in_hook", False):  # a wrapped hook that calls back into this one
        sys.__excepthook__(exc_type, exc, tb)
        return
    _local.in_hook = True
    try:
        (_previous_hook or sys.__excepthook__)(exc_type, exc, tb)
    finally:
        _local.in_hook = False


def _install_hook() -> None:
    global _previous_hook
    with _install_lock:
        if sys.excepthook is not _hook:
            _previous_hook = sys.excepthook
            sys.excepthook = _hook


def run_filter(filt, inputs, progress, describe, name: str):
    """Run a SimpleITK filter object, reporting each iteration and honouring a stop request.

    A Python exception inside a SimpleITK command callback aborts ``Execute`` with a
    RuntimeError (and SimpleITK prints the traceback through ``sys.excepthook``; that one
    exception of this thread is not printed, see ``_hook``); the original exception is
    re-raised here instead. Safe to call from several threads at once.

    Parameters
    ----------
    filt : SimpleITK.ImageFilter
        The configured filter object.
    inputs : sequence of SimpleITK.Image
        Arguments of ``filt.Execute``.
    progress : callable or None
        ``progress(fraction, message)``, fraction in [0, 1]; returning False stops the filter
        (:class:`InterruptedError`).
    describe : callable
        ``describe() -> (fraction, message)`` at each iteration event.
    name : str
        The filter's name in messages.
    """
    _install_hook()
    state = {}

    def on_iteration():
        try:
            if progress is not None:
                fraction, message = describe()
                if progress(min(max(fraction, 0.0), 1.0), message) is False:
                    state["exc"] = InterruptedError(
                        f"{name} stopped by the `progress` callback ({message})"
                    )
                    filt.Abort()  # enough for filters that check the abort flag
                    raise state["exc"]
        except BaseException as exc:  # KeyboardInterrupt (kernel interrupt) included
            state.setdefault("exc", exc)
            _local.raised = exc
            raise

    filt.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        out = filt.Execute(*inputs)
    except RuntimeError:
        if "exc" in state:
            raise state["exc"] from None
        raise
    finally:
        _local.raised = None
        filt.RemoveAllCommands()
    if progress is not None:
        progress(1.0, f"{name} done")
    return out
