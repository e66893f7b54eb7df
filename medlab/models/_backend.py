"""Keras import, backend choice, device report and mixed precision: the only place that imports
Keras for the rest of ``medlab.models`` and the only place that knows backend names.

Keras 3 reads ``KERAS_BACKEND`` once, when it is first imported, so :func:`use_backend` must run
before anything imports Keras; it refuses to switch afterwards instead of silently doing nothing.
"""

from __future__ import annotations

import os
import platform
import sys

from medlab._options import check_choice, require

__all__ = ["keras", "use_backend", "backend", "device_report", "gpu_available", "policy_for"]

BACKENDS = ("tensorflow", "torch", "jax")
_BACKEND_PACKAGE = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}


def _quiet_tensorflow():
    # TensorFlow prints oneDNN and CPU-feature banners to stderr at import; they are noise in a
    # notebook. An explicit setting by the user wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def keras():
    """The ``keras`` module (imported on first use, with the backend from ``KERAS_BACKEND``)."""
    if "keras" not in sys.modules:
        _quiet_tensorflow()
        name = os.environ.get("KERAS_BACKEND", "tensorflow")
        check_choice("KERAS_BACKEND", name, BACKENDS)
        require(_BACKEND_PACKAGE[name], extra="dl", purpose=f"medlab.models on the {name} backend")
    return require("keras", extra="dl", purpose="medlab.models")


def backend() -> str:
    """Name of the Keras backend in use (``'tensorflow'``, ``'torch'`` or ``'jax'``)."""
    return keras().backend.backend()


def use_backend(name: str) -> str:
    """Choose the Keras backend; call before the first model is built.

    Parameters
    ----------
    name : {'tensorflow', 'torch', 'jax'}
        The backend. TensorFlow is the default and the one tested in CI; torch and JAX need
        their own package installed.

    Returns
    -------
    str
        The backend that is now in use.

    Raises
    ------
    RuntimeError
        If Keras is already imported with another backend (Keras fixes its backend at import;
        restart the kernel to switch).
    """
    check_choice("name", name, BACKENDS)
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise RuntimeError(
                f"Keras is already running on the {current!r} backend; it cannot switch to "
                f"{name!r} in this process. Restart the kernel and call use_backend({name!r}) first."
            )
        return current
    os.environ["KERAS_BACKEND"] = name
    return backend()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def _gpus(name: str) -> list[dict]:
    """``[{name, memory_total_bytes, memory_in_use_bytes}]`` for the backend's visible GPUs."""
    out = []
    if name == "tensorflow":
        import tensorflow as tf

        for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
            details = tf.config.experimental.get_device_details(dev)
            try:
                used = tf.config.experimental.get_memory_info(f"GPU:{i}")["current"]
            except (ValueError, RuntimeError):  # pragma: no cover - needs a GPU
                used = None
            out.append({"name": details.get("device_name", dev.name), "memory_total_bytes": _nvidia_total(i),
                        "memory_in_use_bytes": used})
    elif name == "torch":
        import torch

        for i in range(torch.cuda.device_count()):  # pragma: no cover - needs a GPU
            props = torch.cuda.get_device_properties(i)
            out.append({"name": props.name, "memory_total_bytes": int(props.total_memory),
                        "memory_in_use_bytes": int(torch.cuda.memory_allocated(i))})
    elif name == "jax":  # pragma: no cover - JAX is not installed in CI
        import jax

        for dev in jax.devices():
            if dev.platform == "gpu":
                stats = dev.memory_stats() or {}
                out.append({"name": dev.device_kind, "memory_total_bytes": stats.get("bytes_limit"),
                            "memory_in_use_bytes": stats.get("bytes_in_use")})
    return out


def _nvidia_total(index: int) -> int | None:  # pragma: no cover - needs a GPU
    """Total memory of GPU ``index`` from nvidia-smi (TensorFlow does not report it)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        res = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return int(float(res.stdout.strip().splitlines()[0]) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def device_report() -> dict:
    """Where models run: backend, versions, CPU and GPU names, memory.

    Returns
    -------
    dict
        ``backend``, ``keras_version``, ``backend_version``, ``cpu`` (name), ``cpu_count``,
        ``memory_total_bytes`` (RAM), ``gpus`` (list of dicts with ``name``,
        ``memory_total_bytes``, ``memory_in_use_bytes``; empty without a GPU), ``device``
        (``'GPU'`` or ``'CPU'``: where training runs), ``mixed_precision`` (the dtype policy
        that :func:`medlab.models.unet` and :func:`~medlab.models.classifier` pick by default:
        ``'mixed_float16'`` on a GPU, ``'float32'`` on CPU).

    Examples
    --------
    >>> from medlab.models import device_report
    >>> report = device_report()
    >>> report["backend"], report["device"] in ("CPU", "GPU")
    ('tensorflow', True)
    """
    k = keras()
    name = k.backend.backend()
    backend_version = sys.modules[_BACKEND_PACKAGE[name]].__version__ if _BACKEND_PACKAGE[name] in sys.modules else None
    gpus = _gpus(name)
    return {
        "backend": name,
        "keras_version": k.__version__,
        "backend_version": backend_version,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_total_bytes": _memory_bytes(),
        "gpus": gpus,
        "device": "GPU" if gpus else "CPU",
        "mixed_precision": policy_for("auto"),
    }


def gpu_available() -> bool:
    """True when the Keras backend sees at least one GPU."""
    return bool(_gpus(backend()))


def policy_for(mixed_precision) -> str:
    """Keras dtype policy name for ``mixed_precision`` in {'auto', True, False}.

    ``'auto'`` means mixed float16 on a GPU (tensor cores; about half the memory) and float32 on
    CPU, where float16 is slower, not faster.
    """
    if mixed_precision == "auto":
        return "mixed_float16" if gpu_available() else "float32"
    if mixed_precision is True:
        return "mixed_float16"
    if mixed_precision is False:
        return "float32"
    raise ValueError(f"`mixed_precision` must be 'auto', True or False; got {mixed_precision!r}")
