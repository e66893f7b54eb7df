"""Losses and metrics in ``keras.ops`` (backend-independent).

Conventions: ``y_pred`` holds probabilities (the output of a softmax), channels last, shape
``(batch, [*spatial,] classes)``; ``y_true`` has the same shape (one-hot) or lacks the class
axis (integer labels, one-hot encoded here). Each loss function returns one value per sample;
the Keras ``Loss`` classes reduce over the batch.

Definitions (``i`` runs over pixels, ``c`` over classes, ``y`` is one-hot, ``p`` the predicted
probability, clipped to ``[EPSILON, 1]`` before a logarithm):

cross-entropy (the seed's)
    ``L = -sum_i sum_c y_ic log p_ic``: a **sum**, not a mean, over every pixel (and, in
    :class:`CrossEntropy`, every image of the batch: its default reduction is ``'sum'``).
soft Dice
    per image and class ``D_c = (2 sum_i y_ic p_ic + s) / (sum_i y_ic + sum_i p_ic + s)`` with
    smoothing ``s``; loss ``1 - mean_c D_c`` (background included unless told otherwise).
Dice + cross-entropy
    ``dice_weight * soft Dice + ce_weight * (cross-entropy / number of pixels)``: the mean
    cross-entropy per pixel, so both terms are of order 1 whatever the image size.
focal (Lin et al. 2017)
    ``-mean_i sum_c alpha_c (1 - p_ic) ** gamma y_ic log p_ic``; ``gamma = 0`` and no ``alpha``
    give the mean cross-entropy.

:class:`DiceScore` is :func:`medlab.metrics.dice` (same definition: two empty masks score 1)
computed on the argmax labels inside the training loop.
"""

from __future__ import annotations

from medlab._options import check_choice, check_positive

from ._backend import keras as _keras

keras = _keras()
ops = keras.ops

__all__ = [
    "EPSILON",
    "cross_entropy",
    "soft_dice_loss",
    "dice_ce_loss",
    "focal_loss",
    "CrossEntropy",
    "SoftDiceLoss",
    "DiceCELoss",
    "FocalLoss",
    "DiceScore",
    "get_loss",
]

EPSILON = 1e-7


def _prepare(y_true, y_pred):
    y_pred = ops.cast(y_pred, "float32")
    n_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.one_hot(ops.cast(y_true, "int32"), n_classes)
    return ops.cast(y_true, "float32"), y_pred


def _spatial_axes(x):
    return tuple(range(1, len(x.shape) - 1))


def _pixelwise_ce(y_true, y_pred):
    """``-sum_c y_ic log p_ic`` per pixel: shape ``(batch, *spatial)``."""
    return -ops.sum(y_true * ops.log(ops.clip(y_pred, EPSILON, 1.0)), axis=-1)


def cross_entropy(y_true, y_pred):
    """Per image ``-sum_i sum_c y_ic log p_ic`` (a sum over pixels and classes), shape ``(batch,)``.

    Parameters
    ----------
    y_true : tensor
        One-hot truth, ``(batch, *spatial, classes)``.
    y_pred : tensor
        Class probabilities, same shape.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    ce = _pixelwise_ce(y_true, y_pred)
    axes = _spatial_axes(y_pred)
    return ops.sum(ce, axis=axes) if axes else ce


def soft_dice_loss(y_true, y_pred, *, smooth=1e-5, include_background=True):
    """Per image ``1 - mean_c D_c`` (module docstring), shape ``(batch,)``.

    Parameters
    ----------
    y_true, y_pred : tensor
        As for :func:`cross_entropy`.
    smooth : float
        Added to the numerator and the denominator of each Dice.
    include_background : bool
        Average the Dice over every class (False: class 0 left out).
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    axes = _spatial_axes(y_pred)
    if not axes:
        raise ValueError("soft Dice needs spatial axes: y_pred must be (batch, *spatial, classes)")
    inter = ops.sum(y_true * y_pred, axis=axes)
    denom = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    dice = (2.0 * inter + smooth) / (denom + smooth)
    if not include_background:
        dice = dice[:, 1:]
    return 1.0 - ops.mean(dice, axis=-1)


def dice_ce_loss(y_true, y_pred, *, dice_weight=1.0, ce_weight=1.0, smooth=1e-5, include_background=True):
    """Per image ``dice_weight * soft Dice + ce_weight * mean cross-entropy per pixel``.

    Parameters
    ----------
    y_true, y_pred, smooth, include_background
        As for :func:`soft_dice_loss`.
    dice_weight, ce_weight : float
        Weights of the soft Dice and of the cross-entropy terms.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    ce = ops.mean(_pixelwise_ce(y_true, y_pred), axis=_spatial_axes(y_pred))
    dice = soft_dice_loss(y_true, y_pred, smooth=smooth, include_background=include_background)
    return dice_weight * dice + ce_weight * ce


def focal_loss(y_true, y_pred, *, gamma=2.0, alpha=None):
    """Per image (or per sample) mean focal loss (module docstring).

    Parameters
    ----------
    y_true, y_pred : tensor
        One-hot truth and class probabilities, ``(batch, [*spatial,] classes)``.
    gamma : float
        Focusing exponent: the weight of each term is ``(1 - p) ** gamma``.
    alpha : sequence of float, optional
        A weight per class.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    p = ops.clip(y_pred, EPSILON, 1.0)
    weight = ops.power(1.0 - p, gamma)
    if alpha is not None:
        weight = weight * ops.convert_to_tensor(alpha, dtype="float32")
    fl = -ops.sum(weight * y_true * ops.log(p), axis=-1)
    axes = _spatial_axes(y_pred)
    return ops.mean(fl, axis=axes) if axes else fl


# ------------------------------------------------------------------------- Keras Loss classes


@keras.saving.register_keras_serializable(package="medlab")
class CrossEntropy(keras.losses.Loss):
    """The seed's cross-entropy ``-sum_i sum_c y_ic log p_ic``; with the default
    ``reduction='sum'`` the value is summed over the whole batch too, with no averaging."""

    def __init__(self, reduction="sum", name="cross_entropy", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return cross_entropy(y_true, y_pred)


@keras.saving.register_keras_serializable(package="medlab")
class SoftDiceLoss(keras.losses.Loss):
    """Soft Dice loss, mean over the batch."""

    def __init__(self, smooth=1e-5, include_background=True, name="soft_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)
        self.include_background = bool(include_background)

    def call(self, y_true, y_pred):
        return soft_dice_loss(y_true, y_pred, smooth=self.smooth, include_background=self.include_background)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "include_background": self.include_background}


@keras.saving.register_keras_serializable(package="medlab")
class DiceCELoss(keras.losses.Loss):
    """Soft Dice plus mean cross-entropy per pixel, mean over the batch."""

    def __init__(self, dice_weight=1.0, ce_weight=1.0, smooth=1e-5, include_background=True, name="dice_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = check_positive("dice_weight", dice_weight, allow_zero=True)
        self.ce_weight = check_positive("ce_weight", ce_weight, allow_zero=True)
        self.smooth = float(smooth)
        self.include_background = bool(include_background)

    def call(self, y_true, y_pred):
        return dice_ce_loss(y_true, y_pred, dice_weight=self.dice_weight, ce_weight=self.ce_weight,
                            smooth=self.smooth, include_background=self.include_background)

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight, "ce_weight": self.ce_weight,
                "smooth": self.smooth, "include_background": self.include_background}


@keras.saving.register_keras_serializable(package="medlab")
class FocalLoss(keras.losses.Loss):
    """Focal loss, mean over pixels and the batch."""

    def __init__(self, gamma=2.0, alpha=None, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = check_positive("gamma", gamma, allow_zero=True)
        self.alpha = None if alpha is None else [float(a) for a in alpha]

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, gamma=self.gamma, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


_LOSSES = {"cross_entropy": CrossEntropy, "soft_dice": SoftDiceLoss, "dice_ce": DiceCELoss, "focal": FocalLoss}


def get_loss(loss, **options):
    """A Keras loss from a name in {'cross_entropy', 'soft_dice', 'dice_ce', 'focal'} (with
    ``options`` for its class) or a loss object / callable, returned unchanged.

    Parameters
    ----------
    loss : str or keras loss or callable
        A name in {'cross_entropy', 'soft_dice', 'dice_ce', 'focal'}, or a loss returned unchanged.
    **options
        Options of the named loss's class (e.g. ``gamma`` for 'focal').
    """
    if isinstance(loss, str):
        return _LOSSES[check_choice("loss", loss, list(_LOSSES))](**options)
    if options:
        raise ValueError("loss options are only for a loss given by name")
    return loss


# ----------------------------------------------------------------------------------- metrics


@keras.saving.register_keras_serializable(package="medlab")
class DiceScore(keras.metrics.Metric):
    """Mean per-image Dice of the argmax labels for one class, as :func:`medlab.metrics.dice`:
    ``2 |P & T| / (|P| + |T|)``, and 1 when both masks are empty.

    Parameters
    ----------
    class_index : int
        The class whose mask is scored (1: the first structure after the background).
    """

    def __init__(self, class_index=1, name="dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_index = int(class_index)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _prepare(y_true, y_pred)
        axes = _spatial_axes(y_pred)
        p = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), self.class_index), "float32")
        t = ops.cast(ops.equal(ops.argmax(y_true, axis=-1), self.class_index), "float32")
        inter = ops.sum(p * t, axis=axes)
        size = ops.sum(p, axis=axes) + ops.sum(t, axis=axes)
        dice = ops.where(size > 0, 2.0 * inter / ops.maximum(size, 1.0), 1.0)
        self.total.assign_add(ops.sum(dice))
        self.count.assign_add(ops.cast(ops.shape(dice)[0], "float32"))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "class_index": self.class_index}
