"""Background work for widgets: one job on a daemon thread, a stop flag, a status, a join.

A long ``medlab`` call (a registration, a training run) runs on a thread so the kernel stays
free: cells run, sliders respond, and a Stop button can set the flag the job's ``progress``
callback (or ``stop`` event) checks. The job records how it ended; nothing is raised on the
thread itself (an unhandled exception there would be lost in a notebook).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["BackgroundJob", "STATUSES"]

STATUSES = ("idle", "running", "done", "stopped", "failed")


class BackgroundJob:
    """Run ``work(job)`` on a daemon thread.

    ``work`` gets the job (``job.stop_requested``, ``job.stop_event``) and returns the result;
    an ``InterruptedError`` (medlab's stop protocol) ends it as ``'stopped'``, any other
    exception as ``'failed'`` (kept in :attr:`error`). ``on_end(job)`` runs on the thread after
    the status is set (the widget updates its view there).

    Attributes
    ----------
    status : {'idle', 'running', 'done', 'stopped', 'failed'}
    result : object
        What ``work`` returned (None unless done or stopped with a result).
    error : BaseException or None
    stop_reason : str
        Why it ended, in words (the stop message, the error, or what ``work`` set).
    seconds : float
        Wall time of the work.
    """

    def __init__(self, name: str, work: Callable[[BackgroundJob], object],
                 on_end: Callable[[BackgroundJob], None] | None = None):
        self.name = name
        self._work = work
        self._on_end = on_end
        self.stop_event = threading.Event()
        self.status = "idle"
        self.result = None
        self.error: BaseException | None = None
        self.stop_reason = ""
        self.seconds = 0.0
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()

    def start(self) -> BackgroundJob:
        if self._thread is not None:
            raise RuntimeError(f"job {self.name!r} was already started")
        self.status = "running"
        self._thread = threading.Thread(target=self._run, name=f"medlab-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        t0 = time.perf_counter()
        try:
            self.result = self._work(self)
            if self.status == "running":
                self.status = "stopped" if self.stop_event.is_set() else "done"
        except InterruptedError as exc:
            self.status, self.stop_reason = "stopped", str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported through status/error, never lost
            self.status, self.error = "failed", exc
            self.stop_reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.perf_counter() - t0
            try:
                if self._on_end is not None:
                    self._on_end(self)
            except BaseException as exc:  # noqa: BLE001
                if self.error is None:
                    self.status, self.error = "failed", exc
                    self.stop_reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._finished.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._finished.is_set()

    @property
    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Ask the work to stop at its next progress report."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the end (including ``on_end``); True if it has ended."""
        if self._thread is None:
            return True
        self._finished.wait(timeout)
        if self._finished.is_set():
            self._thread.join()
            return True
        return False

    def wait(self, timeout: float | None = None):
        """Join, then return the result; re-raise the error of a failed job."""
        if not self.join(timeout):
            raise TimeoutError(f"job {self.name!r} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


class JobOwner:
    """Mixin for a component that runs one :class:`BackgroundJob` at a time in ``self.job``:
    the Stop button's :meth:`stop` and the notebook's :meth:`wait`."""

    job: BackgroundJob | None = None

    def stop(self) -> None:
        """Stop the running job at its next progress report (the Stop button)."""
        if self.job is not None:
            self.job.stop()

    def wait(self, timeout: float | None = None):
        """Join the running job; returns its result (None when there is none)."""
        if self.job is None:
            return None
        return self.job.wait(timeout)
