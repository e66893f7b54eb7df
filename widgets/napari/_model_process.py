"""medlab.models for the napari plugin, in a worker process of its own.

TensorFlow and napari's OpenGL canvas do not live in one process here: importing TensorFlow
after a napari viewer has drawn (Mesa llvmpipe or softpipe under Xvfb), or drawing a viewer
after TensorFlow was imported with llvmpipe, ends in a segmentation fault (seen with
tensorflow-cpu 2.21, PyQt6 6.11, napari 0.9.2). So the dock widget sends the image to one
long-lived worker process (``spawn``: it starts clean, without Qt or OpenGL), which imports
Keras once, keeps the pretrained models loaded, and returns numpy layers.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import SimpleITK as sitk

__all__ = ["POOL_HELP", "device_report", "run_model", "shutdown", "shutdown_broken"]

_POOL: ProcessPoolExecutor | None = None
_LOCK = threading.Lock()
_MODELS: dict = {}  # in the worker: name -> TrainedModel


def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _POOL


def shutdown() -> None:
    """Stop the worker process (it starts again on the next call)."""
    global _POOL
    with _LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True)


atexit.register(shutdown)


# --------------------------------------------------------------------------- in the worker
def _device() -> dict:
    import medlab.models

    return medlab.models.device_report()


def _run(name: str, array: np.ndarray, spacing, origin, direction, grad_cam: bool):
    import medlab.models

    from ._layers import model_layers

    if name not in _MODELS:
        _MODELS[name] = medlab.models.pretrained(name)
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    with warnings.catch_warnings(record=True) as caught:  # sent back: the dock shows them as notifications
        warnings.simplefilter("always")
        layers, info = model_layers(_MODELS[name], img, grad_cam=grad_cam)
    info["warnings"] = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
    return layers, info


# --------------------------------------------------------------------------- callers
def device_report() -> dict:
    """:func:`medlab.models.device_report` of the worker process (where the models run)."""
    return _submit(_device)


POOL_HELP = ("the model process stopped before answering. napari's model runner starts it with "
             "'spawn', which re-imports the script that started napari: in a script, put the napari code "
             "under `if __name__ == \"__main__\":` (a notebook or the napari command need nothing). "
             "It restarts on the next run")


def _submit(fn, *args):
    from concurrent.futures.process import BrokenProcessPool

    try:
        return _pool().submit(fn, *args).result()
    except BrokenProcessPool as exc:
        shutdown_broken()
        raise RuntimeError(POOL_HELP) from exc


def shutdown_broken() -> None:
    """Forget a broken pool (a new one starts on the next call)."""
    global _POOL
    with _LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def run_model(name: str, image: sitk.Image, *, grad_cam: bool = True):
    """:func:`._layers.model_layers` of pretrained model ``name`` on ``image``, in the worker.
    A worker that died (e.g. a script without the ``__main__`` guard) raises RuntimeError saying so."""
    return _submit(_run, name, sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                   image.GetDirection(), bool(grad_cam))
