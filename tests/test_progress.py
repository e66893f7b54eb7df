"""medlab._progress.run_filter: stop requests, and the one process-wide excepthook that hides only
the exception a callback of the calling thread re-raised (safe with several threads at once)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import _progress


def _filter():
    f = sitk.CurvatureAnisotropicDiffusionImageFilter()
    f.SetNumberOfIterations(200)
    f.SetTimeStep(0.01)
    return f


def _image():
    return sitk.GetImageFromArray(np.random.default_rng(0).random((24, 24, 24)).astype(np.float32))


def _stop_at(k):
    def progress(fraction, message):
        progress.calls += 1
        return progress.calls < k
    progress.calls = 0
    return progress


def test_stop_raises_interrupted_error_and_prints_nothing(capfd):
    f = _filter()
    with pytest.raises(InterruptedError, match="demo stopped by the `progress` callback"):
        _progress.run_filter(f, [_image()], _stop_at(3), lambda: (0.5, "it"), "demo")
    assert "Traceback" not in capfd.readouterr().err
    assert sys.excepthook is _progress._hook  # installed once, left in place


def test_threads_stop_while_the_main_thread_reports_its_own_errors(monkeypatch):
    """Four filters stopped on worker threads; meanwhile every exception the main thread hands
    to sys.excepthook reaches the hook that was there before (the old per-call swap lost some)."""
    _progress._install_hook()
    seen = []
    monkeypatch.setattr(_progress, "_previous_hook", lambda t, e, tb: seen.append(e))
    errors, done = [], threading.Event()

    def work():
        f = _filter()
        try:
            _progress.run_filter(f, [_image()], _stop_at(5), lambda: (0.5, "it"), "demo")
        except InterruptedError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    sent = []
    while any(t.is_alive() for t in threads):
        exc = ValueError(f"main {len(sent)}")
        sent.append(exc)
        sys.excepthook(ValueError, exc, None)
    for t in threads:
        t.join()
    done.set()
    assert len(errors) == 4 and sent
    assert [e for e in seen if isinstance(e, ValueError)] == sent  # none swallowed
    assert not [e for e in seen if isinstance(e, InterruptedError)]  # the workers' stay hidden
