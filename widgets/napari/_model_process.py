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
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import SimpleITK as sitk

__all__ = ["device_report", "run_model", "shutdown"]

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


def _run(name: str, array: np.ndarray, spacing, origin, grad_cam: bool):
    import medlab.models

    from ._layers import model_layers

    if name not in _MODELS:
        _MODELS[name] = medlab.models.pretrained(name)
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return model_layers(_MODELS[name], img, grad_cam=grad_cam)


# --------------------------------------------------------------------------- callers
def device_report() -> dict:
    """:func:`medlab.models.device_report` of the worker process (where the models run)."""
    return _pool().submit(_device).result()


def run_model(name: str, image: sitk.Image, *, grad_cam: bool = True):
    """:func:`._layers.model_layers` of pretrained model ``name`` on ``image``, in the worker."""
    fut = _pool().submit(_run, name, sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                         bool(grad_cam))
    return fut.result()
