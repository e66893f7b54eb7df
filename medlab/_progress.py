"""Progress reporting and stopping for long-running SimpleITK filters (one helper for all).

Protocol used across medlab: a ``progress`` callback is called as ``progress(fraction, message)``
(fraction in [0, 1]); returning ``False`` stops the work, which then raises InterruptedError.
A Jupyter kernel interrupt (KeyboardInterrupt) also stops at the next iteration.
"""

from __future__ import annotations

import sys

import SimpleITK as sitk

__all__ = ["run_filter"]


def _quiet_excepthook(*args):
    pass


def run_filter(filt, inputs, progress, describe, name: str):
    """Run a SimpleITK filter object, reporting each iteration and honouring a stop request.

    A Python exception inside a SimpleITK command callback aborts ``Execute`` with a
    RuntimeError (and SimpleITK prints the traceback through ``sys.excepthook``, which is
    silenced for that one case); the original exception is re-raised here instead.
    """
    state = {}
    old_hook = sys.excepthook

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
            sys.excepthook = _quiet_excepthook
            raise

    filt.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        out = filt.Execute(*inputs)
    except RuntimeError:
        if "exc" in state:
            raise state["exc"] from None
        raise
    finally:
        sys.excepthook = old_hook
        filt.RemoveAllCommands()
    if progress is not None:
        progress(1.0, f"{name} done")
    return out
