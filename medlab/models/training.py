"""Training: a seeded batch generator with augmentation, and :func:`train` with a live progress
bar (or a ``progress(fraction, message)`` callback), early stopping, atomic checkpoints and a
clean stop (callback returns False, a stop event, or a kernel interrupt).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medlab._options import check_int, check_positive

from ._backend import keras as _keras
from .losses import DiceScore, get_loss

keras = _keras()

__all__ = ["ArrayDataset", "train", "TrainingResult", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed Python, numpy and the Keras backend (call before building a model for
    reproducible initial weights).

    Parameters
    ----------
    seed : int
        The seed.
    """
    check_int("seed", seed, minimum=0)
    keras.utils.set_random_seed(int(seed))


class ArrayDataset(keras.utils.PyDataset):
    """Batches of ``(images, one-hot labels)`` from arrays, shuffled and augmented, seeded.

    The shuffle of epoch ``e`` and the augmentation of batch ``b`` in it depend only on
    ``(seed, e, b)``, so a run is reproducible whatever order Keras asks for batches in.

    Parameters
    ----------
    x : ndarray, ``(n, *spatial, channels)``
        Images (float32, normalised; see :func:`medlab.models.to_array`).
    y : ndarray of int, ``(n, *spatial)`` or ``(n,)``
        Label maps (segmentation) or class indices (classification).
    num_classes : int
        Length of the one-hot axis.
    batch_size : int
    augment : Augment, optional
        Applied to every image (and label map) of a batch.
    shuffle : bool
    seed : int
    class_weight : dict {class index: weight}, optional
        Classification only: batches also carry per-sample weights.
    """

    def __init__(self, x, y, *, num_classes, batch_size=8, augment=None, shuffle=True, seed=0, class_weight=None):
        super().__init__()
        self.x = np.asarray(x, np.float32)
        self.y = np.asarray(y)
        if len(self.x) != len(self.y):
            raise ValueError(f"`x` has {len(self.x)} images but `y` has {len(self.y)} labels")
        if len(self.x) == 0:
            raise ValueError("`x` is empty")
        self.segmentation = self.y.ndim > 1
        if self.segmentation and self.y.shape != self.x.shape[:-1]:
            raise ValueError(f"`y` (shape {self.y.shape}) must match `x` without its channel axis {self.x.shape[:-1]}")
        if self.y.min() < 0 or self.y.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes - 1}]; got [{self.y.min()}, {self.y.max()}]")
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.augment = augment
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.class_weight = None
        if class_weight is not None:
            if self.segmentation:
                raise ValueError("`class_weight` is for classification; use a weighted loss for segmentation")
            self.class_weight = np.ones(num_classes, np.float32)
            for k, w in dict(class_weight).items():
                self.class_weight[int(k)] = check_positive("class_weight", w)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def _order(self):
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __getitem__(self, index):
        idx = self._order()[index * self.batch_size:(index + 1) * self.batch_size]
        xs, ys = self.x[idx], self.y[idx]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            out_x, out_y = [], []
            for xi, yi in zip(xs, ys, strict=True):
                ax, ay = self.augment(xi, yi if self.segmentation else None, rng=rng)
                out_x.append(ax)
                out_y.append(ay if self.segmentation else yi)
            xs, ys = np.stack(out_x), np.stack(out_y)
        onehot = np.eye(self.num_classes, dtype=np.float32)[ys.astype(int)]
        if self.class_weight is not None:
            return xs.astype(np.float32), onehot, self.class_weight[ys.astype(int)]
        return xs.astype(np.float32), onehot

    def on_epoch_end(self):
        self.epoch += 1


@dataclass
class TrainingResult:
    """What :func:`train` did.

    Attributes
    ----------
    history : dict of list of float
        Per epoch: ``loss``, the metrics, and ``val_...`` with validation data.
    epochs : int
        Epochs completed.
    stop_reason : {'completed', 'early_stopping', 'stopped', 'interrupted'}
        'stopped': the progress callback returned False or the stop event was set;
        'interrupted': KeyboardInterrupt (a kernel interrupt). The model keeps the weights it had
        when it stopped (or the best ones, with early stopping).
    best_epoch : int or None
        1-based epoch with the best monitored value (None without monitoring).
    best_value : float or None
    seconds : float
        Wall time of the training loop.
    images_per_second : float
        Training images per second, after the first epoch when there was more than one (the first
        one includes graph tracing).
    checkpoint : pathlib.Path or None
        The checkpoint file, if one was written.
    """

    history: dict = field(default_factory=dict)
    epochs: int = 0
    stop_reason: str = "completed"
    best_epoch: int | None = None
    best_value: float | None = None
    seconds: float = 0.0
    images_per_second: float = 0.0
    checkpoint: Path | None = None


class _Monitor(keras.callbacks.Callback):
    """Progress bar or callback, stop requests, timing, best-epoch tracking, checkpoints."""

    def __init__(self, *, epochs, steps, batch_size, n_images, progress, stop, monitor, mode, checkpoint, result):
        super().__init__()
        self.epochs, self.steps, self.batch_size, self.n_images = epochs, steps, batch_size, n_images
        self.progress, self.stop, self.monitor, self.mode = progress, stop, monitor, mode
        self.checkpoint, self.result = checkpoint, result
        self.bar = None
        self.epoch = 0
        self.epoch_times = []

    def on_train_begin(self, logs=None):
        if self.progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs * self.steps, desc="training", unit="batch", leave=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.t_epoch = time.perf_counter()

    def _request_stop(self, reason):
        self.result.stop_reason = reason
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", float("nan")))
        msg = f"epoch {self.epoch + 1}/{self.epochs}, batch {batch + 1}/{self.steps}, loss {loss:.4f}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=f"{self.epoch + 1}/{self.epochs}", loss=f"{loss:.4f}", refresh=False)
        elif callable(self.progress):
            done = (self.epoch * self.steps + batch + 1) / (self.epochs * self.steps)
            if self.progress(min(done, 1.0), msg) is False:
                self._request_stop("stopped")
        if self.stop is not None and self.stop.is_set():
            self._request_stop("stopped")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch_times.append(time.perf_counter() - self.t_epoch)
        self.result.epochs = epoch + 1
        for k, v in logs.items():
            self.result.history.setdefault(k, []).append(float(v))
        if self.bar is not None:
            shown = {k: f"{float(v):.4f}" for k, v in logs.items() if k in ("loss", "val_loss", "dice", "val_dice", "accuracy", "val_accuracy")}
            self.bar.set_postfix(epoch=f"{epoch + 1}/{self.epochs}", **shown)
        if self.monitor and self.monitor in logs:
            value = float(logs[self.monitor])
            best = self.result.best_value
            better = best is None or (value < best if self.mode == "min" else value > best)
            if better:
                self.result.best_value, self.result.best_epoch = value, epoch + 1
                if self.checkpoint is not None:
                    self._save()
        elif self.checkpoint is not None:
            self._save()

    def _save(self):
        from .io import save

        save(self.model, self.checkpoint)
        self.result.checkpoint = self.checkpoint

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
        elif callable(self.progress) and self.result.stop_reason in ("completed", "early_stopping"):
            self.progress(1.0, f"training done after {self.result.epochs} epochs")
        times = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        if times and sum(times) > 0:
            self.result.images_per_second = self.n_images * len(times) / sum(times)


class _EarlyStopping(keras.callbacks.EarlyStopping):
    def __init__(self, result, **kw):
        super().__init__(**kw)
        self._result = result

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.model.stop_training and self._result.stop_reason == "completed":
            self._result.stop_reason = "early_stopping"


def train(
    model,
    x,
    y,
    *,
    validation=None,
    epochs: int = 10,
    batch_size: int = 8,
    loss=None,
    learning_rate: float = 1e-3,
    metrics=None,
    augment=None,
    seed: int = 0,
    class_weight=None,
    early_stopping: int | None = None,
    monitor: str | None = None,
    checkpoint=None,
    progress=True,
    stop=None,
    compile: bool = True,
) -> TrainingResult:
    """Train a Keras model on image arrays, with a progress bar and a clean stop.

    Parameters
    ----------
    model : keras.Model
        E.g. from :func:`medlab.models.unet` or :func:`~medlab.models.classifier`.
    x : ndarray, ``(n, *spatial, channels)``
        Training images (see :func:`medlab.models.to_array`).
    y : ndarray of int, ``(n, *spatial)`` or ``(n,)``
        Label maps or class indices; one-hot encoded to the model's output channels.
    validation : tuple (x_val, y_val), optional
        Evaluated after every epoch (no augmentation).
    epochs, batch_size : int
    loss : str or keras loss, optional
        {'dice_ce', 'soft_dice', 'cross_entropy', 'focal'} (see :mod:`medlab.models.losses`) or
        any Keras loss. Default: 'dice_ce' for segmentation, 'cross_entropy' for classification.
    learning_rate : float or keras LearningRateSchedule
        Adam learning rate (a schedule, e.g. ``keras.optimizers.schedules.CosineDecay``, too).
    metrics : list, optional
        Default: :class:`~medlab.models.losses.DiceScore` for segmentation, categorical accuracy
        for classification.
    augment : Augment, optional
        Training-time augmentation.
    seed : int
        Seeds shuffling, augmentation and dropout (and the backend; see :func:`set_seed`).
    class_weight : dict {class index: weight}, optional
        Classification: weight of each class in the loss (e.g. inverse frequency).
    early_stopping : int, optional
        Stop after this many epochs without improvement of ``monitor`` and restore the best
        weights.
    monitor : str, optional
        Value that decides the best epoch: default ``'val_loss'`` with validation data, else
        ``'loss'``. Names ending in ``dice``, ``accuracy`` or ``auc`` are maximised.
    checkpoint : str or Path, optional
        A ``.keras`` file, rewritten atomically whenever the monitored value improves.
    progress : bool or callable
        True: a progress bar (tqdm; a widget in Jupyter) with the live loss. A callable gets
        ``progress(fraction, message)`` after every batch and stops training by returning False.
    stop : threading.Event-like, optional
        Training stops after the current batch once ``stop.is_set()`` (e.g. a Stop button).
    compile : bool
        Compile the model with Adam, ``loss`` and ``metrics`` (False: use the model's own
        compilation).

    Returns
    -------
    TrainingResult
        History, epochs done, why it stopped, best epoch, timing. A KeyboardInterrupt (kernel
        interrupt) ends training cleanly with ``stop_reason='interrupted'``.
    """
    check_int("epochs", epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    if isinstance(learning_rate, int | float):
        check_positive("learning_rate", learning_rate)
    if not (progress is True or progress is False or progress is None or callable(progress)):
        raise TypeError(f"`progress` must be True, False or a callable; got {progress!r}")
    if stop is not None and not hasattr(stop, "is_set"):
        raise TypeError(f"`stop` must have an is_set() method (threading.Event); got {type(stop).__name__}")
    set_seed(seed)
    num_classes = int(model.output_shape[-1])
    data = ArrayDataset(x, y, num_classes=num_classes, batch_size=batch_size, augment=augment, seed=seed,
                        class_weight=class_weight)
    val = None
    if validation is not None:
        vx, vy = validation
        val = ArrayDataset(vx, vy, num_classes=num_classes, batch_size=batch_size, shuffle=False, seed=seed)
    if checkpoint is not None and not str(checkpoint).endswith(".keras"):
        raise ValueError(f"`checkpoint` must be a '.keras' file; got {str(checkpoint)!r}")
    if compile:
        if metrics is None:
            metrics = [DiceScore(name="dice")] if data.segmentation else [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if loss is None:
            loss = "dice_ce" if data.segmentation else "cross_entropy"
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=get_loss(loss), metrics=metrics)
    monitor = monitor or ("val_loss" if val is not None else "loss")
    mode = "max" if monitor.endswith(("dice", "accuracy", "auc")) else "min"
    result = TrainingResult()
    callbacks = [
        _Monitor(epochs=epochs, steps=len(data), batch_size=batch_size, n_images=len(data.x), progress=progress,
                 stop=stop, monitor=monitor, mode=mode, result=result,
                 checkpoint=None if checkpoint is None else Path(checkpoint)),
    ]
    if early_stopping is not None:
        check_int("early_stopping", early_stopping, minimum=1)
        callbacks.append(_EarlyStopping(result, monitor=monitor, mode=mode, patience=int(early_stopping),
                                        restore_best_weights=True))
    t0 = time.perf_counter()
    try:
        model.fit(data, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=0)
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
        for cb in callbacks[:1]:
            cb.on_train_end()
    result.seconds = time.perf_counter() - t0
    return result
