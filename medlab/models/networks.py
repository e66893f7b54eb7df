"""Network builders: U-Net (2D/3D) and a small residual CNN classifier, in plain Keras 3.

Only ``keras.layers`` and ``keras.ops`` are used, so the same model builds, trains and saves on
the TensorFlow, torch and JAX backends. Arrays are channels-last: ``(batch, y, x, channels)`` in
2D and ``(batch, z, y, x, channels)`` in 3D, matching medlab's ``(z, y, x)`` index order.

Layer names that other parts of medlab rely on:

* ``"logits"``: the last layer before the output activation (Grad-CAM differentiates it);
* ``"probabilities"``: the output activation (kept in float32 under mixed precision);
* ``"bottleneck"`` (U-Net) and ``"features"`` (classifier): the default Grad-CAM layers;
* every dropout layer is a :class:`MCDropout`, which :func:`medlab.models.mc_dropout` switches on
  at inference time without putting batch normalisation into training mode.
"""

from __future__ import annotations

import contextlib

from medlab._options import check_choice, check_int

from ._backend import keras as _keras
from ._backend import policy_for

keras = _keras()
layers = keras.layers

__all__ = ["unet", "classifier", "MCDropout", "NORMALIZATIONS"]

NORMALIZATIONS = ("batch", "instance", "group", "none")


@keras.saving.register_keras_serializable(package="medlab")
class MCDropout(layers.Dropout):
    """Dropout that can stay active at inference (Monte Carlo dropout).

    Behaves as ``keras.layers.Dropout`` unless :attr:`monte_carlo` is True, in which case it
    drops units in every call. The flag is read at call time, so use it with eager calls
    (``model(x)``), as :func:`medlab.models.mc_dropout` does, not inside a compiled predict.
    """

    monte_carlo = False

    def call(self, inputs, training=None):
        return super().call(inputs, training=bool(training) or self.monte_carlo)


@contextlib.contextmanager
def _dtype_policy(name: str):
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def _check_common(spatial_dims, in_channels, normalization, dropout, final_activation):
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"`spatial_dims` must be 2 or 3; got {spatial_dims!r}")
    check_int("in_channels", in_channels, minimum=1)
    check_choice("normalization", normalization, NORMALIZATIONS)
    try:
        ok = 0.0 <= float(dropout) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"`dropout` must be a rate in [0, 1); got {dropout!r}")
    check_choice("final_activation", final_activation, ("softmax", "sigmoid", "linear"))


def _check_input_size(input_size, spatial_dims, factor):
    if input_size is None:
        return (None,) * spatial_dims
    size = tuple(input_size)
    if len(size) != spatial_dims:
        raise ValueError(
            f"`input_size` must have {spatial_dims} values (array axis order); got {input_size!r}"
        )
    for s in size:
        check_int("input_size", s, minimum=1)
        if s % factor:
            raise ValueError(
                f"`input_size` values must be multiples of {factor} (2 ** (depth - 1) for this "
                f"depth, so that every pooling step halves the size exactly); got {input_size!r}"
            )
    return size


def _norm(x, kind, name):
    if kind == "batch":
        return layers.BatchNormalization(name=name)(x)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, name=name)(x)  # one group per channel
    if kind == "group":
        channels = x.shape[-1]
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return layers.GroupNormalization(groups=groups, name=name)(x)
    return x


def _conv(spatial_dims):
    return layers.Conv2D if spatial_dims == 2 else layers.Conv3D


def _conv_block(x, filters, spatial_dims, normalization, name):
    conv = _conv(spatial_dims)
    for j in (1, 2):
        x = conv(filters, 3, padding="same", use_bias=normalization == "none", name=f"{name}_conv{j}")(x)
        x = _norm(x, normalization, f"{name}_norm{j}")
        x = layers.Activation("relu", name=f"{name}_relu{j}")(x)
    return x


def _head(x, out_channels, spatial_dims, final_activation, dense=False):
    if dense:
        x = layers.Dense(out_channels, name="logits")(x)
    else:
        x = _conv(spatial_dims)(out_channels, 1, name="logits")(x)
    # float32 output: losses and metrics stay accurate under mixed precision
    return layers.Activation(final_activation, dtype="float32", name="probabilities")(x)


def unet(
    *,
    spatial_dims: int = 2,
    in_channels: int = 1,
    out_channels: int = 2,
    depth: int = 4,
    base_filters: int = 16,
    normalization: str = "batch",
    dropout: float = 0.0,
    input_size=None,
    final_activation: str = "softmax",
    mixed_precision="auto",
    name: str | None = None,
):
    """U-Net (Ronneberger et al. 2015) for 2D images or 3D volumes.

    Each level has two 3x3(x3) convolutions, each followed by the normalisation and ReLU; the
    encoder halves the size with max pooling, the decoder doubles it with a transposed
    convolution and concatenates the encoder's features at the same level.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for images ``(y, x)``, 3 for volumes ``(z, y, x)``.
    in_channels : int
        Input channels (1 for grey images).
    out_channels : int
        Output channels: the number of classes, background included (2 for one structure).
    depth : int
        Number of resolution levels (>= 1); the bottleneck is at ``1 / 2 ** (depth - 1)`` of the
        input size, and every input size must be a multiple of ``2 ** (depth - 1)``.
    base_filters : int
        Filters at the first level, doubled at each level down.
    normalization : {'batch', 'instance', 'group', 'none'}
        After each convolution. Instance and group normalisation do not depend on the batch
        size (use them for 3D patches, where batches are small).
    dropout : float
        Dropout rate in [0, 1) after the bottleneck and each decoder level (0: no dropout
        layers). Needed for :func:`medlab.models.mc_dropout`.
    input_size : sequence of int, optional
        Fixed spatial size (array axis order). Default: any size that is a multiple of
        ``2 ** (depth - 1)``.
    final_activation : {'softmax', 'sigmoid', 'linear'}
        Softmax gives class probabilities that sum to 1 per pixel.
    mixed_precision : {'auto', True, False}
        Build with the ``mixed_float16`` dtype policy ('auto': only on a GPU). The output layer
        stays float32.
    name : str, optional
        Model name (default ``'unet2d'`` / ``'unet3d'``).

    Returns
    -------
    keras.Model
        Input ``(batch, *spatial, in_channels)``, output ``(batch, *spatial, out_channels)``.

    Examples
    --------
    >>> from medlab.models import unet
    >>> model = unet(depth=3, base_filters=4, input_size=(32, 32))
    >>> model.output_shape
    (None, 32, 32, 2)
    """
    _check_common(spatial_dims, in_channels, normalization, dropout, final_activation)
    check_int("out_channels", out_channels, minimum=1)
    check_int("depth", depth, minimum=1)
    check_int("base_filters", base_filters, minimum=1)
    size = _check_input_size(input_size, spatial_dims, 2 ** (depth - 1))
    pool = layers.MaxPooling2D if spatial_dims == 2 else layers.MaxPooling3D
    up = layers.Conv2DTranspose if spatial_dims == 2 else layers.Conv3DTranspose
    with _dtype_policy(policy_for(mixed_precision)):
        inputs = keras.Input((*size, in_channels), name="image")
        x, skips = inputs, []
        for level in range(depth - 1):
            x = _conv_block(x, base_filters * 2**level, spatial_dims, normalization, f"enc{level}")
            skips.append(x)
            x = pool(2, name=f"enc{level}_pool")(x)
        x = _conv_block(x, base_filters * 2 ** (depth - 1), spatial_dims, normalization, "bottleneck")
        x = layers.Identity(name="bottleneck")(x)
        if dropout:
            x = MCDropout(dropout, name="bottleneck_dropout")(x)
        for level in reversed(range(depth - 1)):
            filters = base_filters * 2**level
            x = up(filters, 2, strides=2, name=f"dec{level}_up")(x)
            x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
            x = _conv_block(x, filters, spatial_dims, normalization, f"dec{level}")
            if dropout:
                x = MCDropout(dropout, name=f"dec{level}_dropout")(x)
        outputs = _head(x, out_channels, spatial_dims, final_activation)
        return keras.Model(inputs, outputs, name=name or f"unet{spatial_dims}d")


def _residual_block(x, filters, stride, spatial_dims, normalization, name):
    conv = _conv(spatial_dims)
    shortcut = x
    y = conv(filters, 3, strides=stride, padding="same", use_bias=normalization == "none", name=f"{name}_conv1")(x)
    y = _norm(y, normalization, f"{name}_norm1")
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = conv(filters, 3, padding="same", use_bias=normalization == "none", name=f"{name}_conv2")(y)
    y = _norm(y, normalization, f"{name}_norm2")
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = conv(filters, 1, strides=stride, use_bias=normalization == "none", name=f"{name}_proj")(shortcut)
        shortcut = _norm(shortcut, normalization, f"{name}_proj_norm")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_relu2")(y)


def classifier(
    *,
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    filters=(16, 32, 64, 128),
    blocks_per_stage: int = 1,
    normalization: str = "batch",
    dropout: float = 0.0,
    input_size=None,
    final_activation: str = "softmax",
    mixed_precision="auto",
    name: str | None = None,
):
    """A small residual network (ResNet-style) that classifies whole images or volumes.

    A 3x3 stem convolution with stride 2, then one stage per entry of ``filters``, each of
    ``blocks_per_stage`` residual blocks (two 3x3 convolutions with normalisation and ReLU, and
    an identity or 1x1 projection shortcut); every stage after the first halves the size.
    Global average pooling, dropout and a dense layer give the class scores.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for images, 3 for volumes.
    in_channels : int
        Input channels.
    num_classes : int
        Output classes (>= 2 with softmax).
    filters : sequence of int
        Filters per stage (its length is the number of stages).
    blocks_per_stage : int
        Residual blocks per stage (>= 1).
    normalization : {'batch', 'instance', 'group', 'none'}
        After each convolution.
    dropout : float
        Dropout rate in [0, 1) before the dense layer.
    input_size : sequence of int, optional
        Fixed spatial size; any size by default (global pooling makes the head size-free).
    final_activation : {'softmax', 'sigmoid', 'linear'}
        Output activation.
    mixed_precision : {'auto', True, False}
        As for :func:`unet`.
    name : str, optional
        Model name (default ``'resnet2d'`` / ``'resnet3d'``).

    Returns
    -------
    keras.Model
        Input ``(batch, *spatial, in_channels)``, output ``(batch, num_classes)``.

    Examples
    --------
    >>> from medlab.models import classifier
    >>> classifier(num_classes=3, filters=(4, 8), input_size=(32, 32)).output_shape
    (None, 3)
    """
    _check_common(spatial_dims, in_channels, normalization, dropout, final_activation)
    check_int("num_classes", num_classes, minimum=1 if final_activation != "softmax" else 2)
    check_int("blocks_per_stage", blocks_per_stage, minimum=1)
    filters = tuple(filters) if not isinstance(filters, int) else (filters,)
    if not filters:
        raise ValueError("`filters` must name at least one stage; got ()")
    for f in filters:
        check_int("filters", f, minimum=1)
    size = _check_input_size(input_size, spatial_dims, 1)
    gap = layers.GlobalAveragePooling2D if spatial_dims == 2 else layers.GlobalAveragePooling3D
    with _dtype_policy(policy_for(mixed_precision)):
        inputs = keras.Input((*size, in_channels), name="image")
        x = _conv(spatial_dims)(filters[0], 3, strides=2, padding="same", use_bias=normalization == "none", name="stem_conv")(inputs)
        x = _norm(x, normalization, "stem_norm")
        x = layers.Activation("relu", name="stem_relu")(x)
        for s, f in enumerate(filters):
            for b in range(blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                x = _residual_block(x, f, stride, spatial_dims, normalization, f"stage{s}_block{b}")
        x = layers.Identity(name="features")(x)
        x = gap(name="pool")(x)
        if dropout:
            x = MCDropout(dropout, name="dropout")(x)
        outputs = _head(x, num_classes, spatial_dims, final_activation, dense=True)
        return keras.Model(inputs, outputs, name=name or f"resnet{spatial_dims}d")

