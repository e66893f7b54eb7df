"""A model with the preprocessing it expects (:class:`TrainedModel`), saving and loading, and the
pretrained models shipped in ``medlab/models/weights/``.

File formats
------------
``save`` writes one ``.keras`` file (Keras' own zip: architecture, weights) with an extra
``medlab.json`` entry holding the preprocessing (training grid, normalisation, class names).
It is written without the optimizer state, so a file saved under one backend loads under the
others. Writing is atomic (:mod:`medlab._atomic`): a temporary file in the same folder is renamed into place.

Pretrained models are stored as ``NAME.weights.h5`` (weights only) plus ``NAME.json`` (the
builder call that recreates the architecture, the preprocessing, the data split and the
numbers the model reached). Rebuilding the architecture from code keeps them loadable across
Keras versions and backends; ``tools/train_pretrained.py`` writes them.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from medlab._atomic import atomic_path, write_text
from medlab._options import check_choice

from ._backend import keras as _keras
from .cards import card

__all__ = ["TrainedModel", "save", "load", "pretrained", "list_pretrained", "save_pretrained", "save_weights",
           "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_META = "medlab.json"
TASKS = ("segmentation", "classification")


@dataclass
class TrainedModel:
    """A Keras model together with the preprocessing its inputs need.

    Attributes
    ----------
    model : keras.Model
        Channels-last network.
    task : {'segmentation', 'classification'}
    classes : tuple of str
        Name of each output channel (segmentation: label 0, 1, ...).
    input_size : tuple of int or None
        Training grid size (array axis order) that whole images are resampled to; None: the
        image's own grid (or ``spacing_mm``).
    spacing_mm : tuple of float or None
        Training spacing (array axis order) for volumes (sliding-window inference).
    patch_size : tuple of int or None
        Sliding-window patch size for volumes.
    normalization : {'zscore', 'minmax', 'none'}
        Per-image intensity normalisation (:func:`medlab.models.normalize`).
    channels : int
        Input channels (1: RGB averaged to grey).
    info : dict
        Anything else: builder call, data split, measured numbers.
    """

    model: object
    task: str = "segmentation"
    classes: tuple = ()
    input_size: tuple | None = None
    spacing_mm: tuple | None = None
    patch_size: tuple | None = None
    normalization: str = "zscore"
    channels: int = 1
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("task", self.task, TASKS)
        n_out = int(self.model.output_shape[-1])
        if not self.classes:
            self.classes = tuple(str(i) for i in range(n_out))
        self.classes = tuple(self.classes)
        if len(self.classes) != n_out:
            raise ValueError(f"`classes` has {len(self.classes)} names but the model has {n_out} outputs")
        for name in ("input_size", "spacing_mm", "patch_size"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(value))
        if self.input_size is None:
            shape = tuple(self.model.input_shape[1:-1])
            if all(s is not None for s in shape):
                self.input_size = tuple(int(s) for s in shape)

    def _repr_markdown_(self):
        # a notebook shows the model card when a TrainedModel is displayed

        return card(self)

    def preprocessing(self) -> dict:
        """The JSON-able preprocessing fields."""
        return {
            "task": self.task,
            "classes": list(self.classes),
            "input_size": None if self.input_size is None else list(self.input_size),
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "patch_size": None if self.patch_size is None else list(self.patch_size),
            "normalization": self.normalization,
            "channels": self.channels,
        }


@contextlib.contextmanager
def _quiet_numpy_copy_warning():
    # Keras converts TensorFlow variables with np.array(..., copy=False) when writing weights;
    # numpy 2 warns that TensorFlow's __array__ lacks the copy keyword. Harmless here (a copy is
    # made either way) and not ours to fix, so it is silenced for the save call only.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        yield


def _uncompiled(net):
    """``net`` itself, or an uncompiled copy when it has an optimizer: files then hold no optimizer
    state (smaller, and a torch optimizer would not load under TensorFlow)."""
    if getattr(net, "optimizer", None) is None:
        return net
    # (keras.models.clone_model would carry the compilation over)
    copy = _keras().Model.from_config(net.get_config())
    copy.set_weights(net.get_weights())
    return copy


def save(model, path) -> Path:
    """Save a model (``keras.Model`` or :class:`TrainedModel`) to one ``.keras`` file, atomically.

    Parameters
    ----------
    model : keras.Model or TrainedModel
    path : str or Path
        Must end in ``.keras``.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"`path` must end in '.keras'; got {str(path)!r}")
    trained = model if isinstance(model, TrainedModel) else None
    net = trained.model if trained else model
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras picks the format from the name: the temporary file ends in .keras too
    with atomic_path(path, suffix=".keras") as tmp:
        with _quiet_numpy_copy_warning():
            _uncompiled(net).save(tmp)
        if trained is not None:
            with zipfile.ZipFile(tmp, "a") as zf:
                zf.writestr(_META, json.dumps(_json_safe({**trained.preprocessing(), "info": trained.info}), indent=1,
                                              allow_nan=False))
    return path


def load(path) -> TrainedModel:
    """Load a ``.keras`` file written by :func:`save` (or by Keras itself).

    The model is loaded without compiling (train it again with :func:`medlab.models.train`).
    Files without medlab's preprocessing entry get defaults: the task from the output shape,
    z-score normalisation, one channel.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.keras`` file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    keras = _keras()
    from . import losses, networks  # noqa: F401  (registers medlab's custom layers and losses)

    net = keras.saving.load_model(path, compile=False)
    meta = {}
    with zipfile.ZipFile(path) as zf:
        if _META in zf.namelist():
            meta = json.loads(zf.read(_META))
    if not meta:
        meta = {"task": "segmentation" if len(net.output_shape) > 2 else "classification"}
    info = meta.pop("info", {})
    return TrainedModel(net, **meta, info=info)


# ------------------------------------------------------------------------------ pretrained


def list_pretrained() -> list[str]:
    """Names of the pretrained models shipped with medlab."""
    return sorted(p.name[: -len(".json")] for p in WEIGHTS_DIR.glob("*.json"))


def pretrained(name: str, *, folder=None) -> TrainedModel:
    """Load a pretrained model shipped inside the package (offline).

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained`: ``'hc18_unet'`` (fetal head segmentation in HC18
        ultrasound), ``'busi_resnet'`` (breast ultrasound: benign / malignant / normal, trained
        from scratch) or ``'busi_effnet'`` (breast ultrasound lesion: benign / malignant, frozen
        ImageNet EfficientNet-Lite0 features and a linear head).
    folder : str or Path, optional
        Where ``NAME.json`` and ``NAME.weights.h5`` are (default: the shipped ones); for a model
        just written by ``tools/train_pretrained.py --out``.

    Returns
    -------
    TrainedModel
        ``info`` holds the training recipe, the data split and the numbers measured on it.

    Examples
    --------
    >>> from medlab.models import pretrained
    >>> net = pretrained("hc18_unet")
    >>> net.task, net.classes
    ('segmentation', ('background', 'head'))
    """
    folder = WEIGHTS_DIR if folder is None else Path(folder)
    if folder == WEIGHTS_DIR:
        check_choice("name", name, list_pretrained())
    elif not (folder / f"{name}.json").is_file():
        raise FileNotFoundError(f"no {name}.json in {str(folder)!r}")
    meta = json.loads((folder / f"{name}.json").read_text())
    builder = meta.pop("builder")
    net = build_network(builder)
    net.load_weights(folder / f"{name}.weights.h5")
    info = meta.pop("info", {})
    return TrainedModel(net, **meta, info={**info, "builder": builder, "name": name})


def build_network(builder: dict):
    """The Keras network a pretrained model's ``builder`` (``{"function": name, "kwargs": {...}}``)
    describes, in float32: ``unet``, ``classifier``, ``busi_effnet`` or ``effnet_unet``."""
    from . import busi, networks

    funcs = {"unet": networks.unet, "classifier": networks.classifier, "busi_effnet": busi.busi_effnet,
             "effnet_unet": busi.efficientnet_lite0_unet}
    check_choice("builder function", builder["function"], list(funcs))
    return funcs[builder["function"]](**builder["kwargs"], mixed_precision=False)


def _json_safe(value):
    """``value`` with every non-finite float (NaN, inf) replaced by None: strict JSON, which a
    browser or another language can read (Python's ``json`` would write ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def save_weights(model, path, *, storage: str = "float32") -> Path:
    """Write ``model``'s weights to the Keras weights file ``path`` (``*.weights.h5``), atomically.

    ``storage='float16'`` stores its float32 arrays as float16: half the size; Keras loads them
    back into float32 (the pretrained EfficientNet-Lite0 networks are shipped so).
    """
    import h5py
    import numpy as np

    check_choice("storage", storage, ["float32", "float16"])
    path = Path(path)
    with atomic_path(path, suffix=".weights.h5") as tmp:  # Keras wants that ending
        with _quiet_numpy_copy_warning():
            _uncompiled(model).save_weights(tmp)
        if storage == "float16":
            def copy(s_grp, d_grp):
                d_grp.attrs.update(dict(s_grp.attrs))
                for key, item in s_grp.items():
                    if isinstance(item, h5py.Group):
                        copy(item, d_grp.create_group(key))
                    else:
                        data = item[()]
                        data = data.astype(np.float16) if data.dtype == np.float32 else data
                        d_grp.create_dataset(key, data=data).attrs.update(dict(item.attrs))

            with atomic_path(tmp, suffix=".weights.h5") as half:  # both files closed before the rename
                with h5py.File(tmp, "r") as src, h5py.File(half, "w") as dst:
                    copy(src, dst)
    return path


def save_pretrained(trained: TrainedModel, name: str, builder: dict, folder=None, *,
                    storage: str = "float32") -> tuple[Path, Path]:
    """Write ``NAME.weights.h5`` (:func:`save_weights`, in ``storage``) and ``NAME.json`` (used by
    ``tools/train_pretrained.py``).

    ``builder`` is ``{"function": NAME, "kwargs": {...}}``, the call that rebuilds the architecture
    (:func:`build_network`).
    """
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    meta = folder / f"{name}.json"
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_weights(trained.model, folder / f"{name}.weights.h5", storage=storage)
    info = {k: v for k, v in trained.info.items() if k not in ("builder", "name")}
    text = json.dumps(_json_safe({"builder": builder, **trained.preprocessing(), "info": info}), indent=1,
                      allow_nan=False)
    write_text(meta, text + "\n")
    return weights, meta
