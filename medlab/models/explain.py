"""Explanations and uncertainty: Grad-CAM, gradient saliency, occlusion maps and Monte Carlo
dropout, each returned on the input grid (the same kind of object as the input image).

Which score is explained: for a classifier, the pre-softmax score (the ``logits`` layer) of
``class_index`` (default: the predicted class); for a segmentation model, the mean pre-softmax
score of ``class_index`` (default 1) over the pixels predicted as that class (Seg-Grad-CAM,
Vinogradova et al. 2020), or over the whole image when none is.

Gradients need the backend's automatic differentiation (Keras 3 has no backend-independent
gradient call): TensorFlow's ``GradientTape`` and torch's ``autograd`` are supported; under JAX,
Grad-CAM and saliency raise NotImplementedError (occlusion and MC dropout work everywhere).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medlab._options import check_int, check_positive

from ._backend import backend
from ._backend import keras as _keras
from .data import _check_size, resample_onto
from .inference import _input_image, _network_input, _predict, _training_grid, _vector_on, as_trained
from .networks import MCDropout

keras = _keras()
ops = keras.ops

__all__ = ["grad_cam", "saliency", "occlusion", "mc_dropout"]

_CAM_LAYERS = ("features", "bottleneck")


# ------------------------------------------------------------------------------- helpers


def _prepare(model, image, spacing, preprocessing):
    tm = as_trained(model, **preprocessing)
    img, back = _input_image(tm, image, spacing)
    grid = _training_grid(tm, img)
    x = _network_input(tm, [grid])
    return tm, img, back, grid, x


def _on_input(arr: np.ndarray, grid: sitk.Image, img: sitk.Image, back, *, unit_max=False):
    """A map covering the field of view of ``grid`` (any size) resampled onto ``img``'s grid;
    with ``unit_max``, scaled so that its maximum on that grid is 1 (unless all zero)."""
    arr = np.asarray(arr, np.float32)
    nd = grid.GetDimension()
    small = sitk.GetImageFromArray(arr)
    size = np.array(small.GetSize(), float)
    spacing = np.array(grid.GetSize()) * np.array(grid.GetSpacing()) / size
    direction = np.array(grid.GetDirection()).reshape(nd, nd)
    origin = np.array(grid.GetOrigin()) + direction @ ((spacing - np.array(grid.GetSpacing())) / 2)
    small.SetSpacing(spacing.tolist())
    small.SetOrigin(origin.tolist())
    small.SetDirection(grid.GetDirection())
    out = resample_onto(small, img)
    if unit_max:
        peak = float(np.max(sitk.GetArrayViewFromImage(out)))
        if peak > 0:
            out = out / peak
    return back(out)


def _score_layer(model):
    names = {layer.name for layer in model.layers}
    return model.get_layer("logits").output if "logits" in names else model.output


def _target(tm, x, class_index):
    """``(class_index, region)``: the class explained and, for segmentation, its pixel mask."""
    probs = _predict(tm.model, x, batch_size=len(x))[0]
    n = probs.shape[-1]
    if tm.task == "classification":
        c = int(np.argmax(probs)) if class_index is None else int(class_index)
        region = None
    else:
        c = (1 if n > 1 else 0) if class_index is None else int(class_index)
        region = (np.argmax(probs, axis=-1) == c).astype(np.float32)
        if not region.any():
            region = np.ones_like(region)
    if not 0 <= c < n:
        raise ValueError(f"`class_index` must be in [0, {n - 1}]; got {class_index!r}")
    return c, region


def _score(outputs, c, region):
    if region is None:
        return ops.sum(outputs[:, c])
    mask = ops.convert_to_tensor(region[None], dtype=outputs.dtype)
    return ops.sum(outputs[..., c] * mask) / float(region.sum())


def _gradient(submodel, x, score_fn, *, wrt_features):
    """Run ``submodel`` on ``x`` and differentiate ``score_fn(score_output)``.

    ``submodel`` returns ``[features, score_output]`` if ``wrt_features`` else ``score_output``;
    returns ``(features or x, gradient)`` as numpy arrays.
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            if not wrt_features:
                tape.watch(xt)
            out = submodel(xt, training=False)
            feats, scores = out if wrt_features else (xt, out)
            score = score_fn(scores)
        grad = tape.gradient(score, feats)
        return feats.numpy(), grad.numpy()
    if name == "torch":
        import torch

        xt = ops.convert_to_tensor(x).detach()
        if not wrt_features:
            xt.requires_grad_(True)
        out = submodel(xt, training=False)
        feats, scores = out if wrt_features else (xt, out)
        (grad,) = torch.autograd.grad(score_fn(scores), feats)
        return feats.detach().cpu().numpy(), grad.detach().cpu().numpy()
    raise NotImplementedError(
        f"gradients of a Keras model are implemented for the TensorFlow and torch backends, not {name!r}; "
        "use occlusion() instead"
    )


# ------------------------------------------------------------------------------ Grad-CAM


def grad_cam(model, image, *, class_index=None, layer=None, spacing=None, **preprocessing):
    """Grad-CAM (Selvaraju et al. 2017): where the network looked for ``class_index``.

    ``relu(sum_k alpha_k A_k)`` with ``A_k`` the feature maps of ``layer`` and ``alpha_k`` the
    spatial mean of the gradient of the explained score (module docstring) with respect to
    ``A_k``, resampled from the feature grid onto the input grid (linear) and scaled to a maximum
    of 1 there (all zeros if nothing supports the class).

    Parameters
    ----------
    model : TrainedModel or keras.Model
    image : sitk.Image or ndarray
        One 2D image (or 3D volume for a 3D classifier).
    class_index : int, optional
        Class to explain (default: predicted class; segmentation: 1).
    layer : str, optional
        A layer with a spatial output; default ``'features'`` (classifier) or ``'bottleneck'``
        (U-Net).
    spacing : sequence of float, optional
        Spacing of numpy input.

    Returns
    -------
    sitk.Image or ndarray
        float32 map in [0, 1] on the grid of ``image``.
    """
    tm, img, back, grid, x = _prepare(model, image, spacing, preprocessing)
    names = [lyr.name for lyr in tm.model.layers]
    if layer is None:
        layer = next((n for n in _CAM_LAYERS if n in names), None)
        if layer is None:
            raise ValueError(f"give `layer`: the model has none of the default Grad-CAM layers {_CAM_LAYERS}")
    elif layer not in names:
        raise ValueError(f"`layer` {layer!r} is not a layer of the model; layers: {names}")
    feats_out = tm.model.get_layer(layer).output
    if len(feats_out.shape) != len(tm.model.input_shape):
        raise ValueError(f"`layer` {layer!r} has no spatial output (shape {feats_out.shape})")
    c, region = _target(tm, x, class_index)
    sub = keras.Model(tm.model.inputs, [feats_out, _score_layer(tm.model)])
    feats, grads = _gradient(sub, x, lambda s: _score(s, c, region), wrt_features=True)
    axes = tuple(range(1, feats.ndim - 1))
    alpha = grads.mean(axis=axes, keepdims=True)
    cam = np.maximum((alpha * feats).sum(axis=-1), 0.0)[0]
    return _on_input(cam, grid, img, back, unit_max=True)


def saliency(model, image, *, class_index=None, samples: int = 0, noise: float = 0.1, seed: int = 0,
             spacing=None, **preprocessing):
    """Gradient saliency (Simonyan et al. 2014): ``|d score / d input|``, maximum over channels.

    With ``samples > 0``, SmoothGrad (Smilkov et al. 2017): the mean gradient over ``samples``
    copies of the input with Gaussian noise of ``noise`` times its intensity range (seeded).
    The map is scaled to a maximum of 1 and resampled onto the input grid.

    Parameters
    ----------
    model : keras.Model or TrainedModel
        The network.
    image : sitk.Image or ndarray
        The input image.
    class_index : int, optional
        Class to explain (default: predicted class; segmentation: 1).
    samples : int
        SmoothGrad samples (0: plain gradient).
    noise : float
        SmoothGrad noise as a fraction of the input's intensity range.
    seed : int
        Seed of the noise.
    spacing : sequence of float, optional
        Spacing of numpy input.
    **preprocessing
        Overrides of the model's preprocessing (as for :func:`as_trained`).
    """
    check_int("samples", samples, minimum=0)
    check_positive("noise", noise, allow_zero=True)
    tm, img, back, grid, x = _prepare(model, image, spacing, preprocessing)
    c, region = _target(tm, x, class_index)
    sub = keras.Model(tm.model.inputs, _score_layer(tm.model))
    if samples:
        rng = np.random.default_rng(seed)
        span = float(x.max() - x.min()) or 1.0
        xs = x + rng.normal(0.0, noise * span, (samples, *x.shape[1:])).astype(np.float32)
        grads = np.mean([_gradient(sub, xi[None], lambda s: _score(s, c, region), wrt_features=False)[1] for xi in xs], axis=0)
    else:
        grads = _gradient(sub, x, lambda s: _score(s, c, region), wrt_features=False)[1]
    sal = np.abs(grads[0]).max(axis=-1)
    return _on_input(sal, grid, img, back, unit_max=True)


def occlusion(model, image, *, class_index=None, patch=16, stride=None, baseline: float = 0.0,
              batch_size: int = 16, spacing=None, **preprocessing):
    """Occlusion map (Zeiler & Fergus 2014): how much the class probability drops when a patch
    of the input is replaced by ``baseline``.

    Patches of ``patch`` pixels of the training grid slide with ``stride`` (default half a
    patch); each pixel gets the mean drop of the patches covering it (positive: the region
    supports the class). For segmentation, the probability is the mean over the pixels predicted
    as the class in the unoccluded image. ``baseline`` 0 is the mean intensity after z-score
    normalisation. Works on every backend (forward passes only).

    Parameters
    ----------
    model, image, class_index
        As for :func:`saliency`.
    patch : int or sequence of int
        Patch size in pixels of the training grid.
    stride : int or sequence of int, optional
        Step between patches (default: half a patch).
    baseline : float
        Value the occluded patch is set to (after normalisation).
    batch_size : int
        Occluded images per forward pass.
    spacing, **preprocessing
        As for :func:`saliency`.

    Returns
    -------
    sitk.Image or ndarray
        float32 probability drop on the grid of ``image``.
    """
    tm, img, back, grid, x = _prepare(model, image, spacing, preprocessing)
    nd = x.ndim - 2
    size = x.shape[1:-1]
    patch = _check_size(patch, nd, "patch")
    stride = tuple(max(1, p // 2) for p in patch) if stride is None else _check_size(stride, nd, "stride")
    c, region = _target(tm, x, class_index)

    def prob(batch):
        p = _predict(tm.model, batch, batch_size)
        return p[:, c] if region is None else (p[..., c] * region).sum(axis=tuple(range(1, nd + 1))) / region.sum()

    ref = float(prob(x)[0])
    starts = [sorted(set(list(range(0, max(s - p, 0) + 1, st)) + [max(s - p, 0)])) for s, p, st in zip(size, patch, stride, strict=True)]
    corners = list(np.array(np.meshgrid(*starts, indexing="ij")).reshape(nd, -1).T)
    total = np.zeros(size, np.float64)
    count = np.zeros(size, np.float64)
    for b in range(0, len(corners), batch_size):
        chunk = corners[b:b + batch_size]
        batch = np.repeat(x, len(chunk), axis=0)
        slices = [tuple(slice(int(s), int(s) + p) for s, p in zip(corner, patch, strict=True)) for corner in chunk]
        for k, sl in enumerate(slices):
            batch[(k, *sl)] = baseline
        drops = ref - prob(batch)
        for sl, d in zip(slices, drops, strict=True):
            total[sl] += d
            count[sl] += 1
    heat = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return _on_input(heat, grid, img, back)


# --------------------------------------------------------------------------- MC dropout


def mc_dropout(model, image, *, samples: int = 20, seed: int = 0, spacing=None, **preprocessing):
    """Monte Carlo dropout uncertainty (Gal & Ghahramani 2016).

    Runs the model ``samples`` times with its dropout layers active (batch normalisation stays
    in inference mode) and summarises the spread of the predicted probabilities.

    Parameters
    ----------
    model : TrainedModel or keras.Model
        Must contain dropout layers (build with ``dropout > 0``).
    image : sitk.Image, ndarray, or a list of them (classification only: one batch)
    samples : int
        Number of stochastic forward passes (>= 2).
    seed : int
        Seeds the dropout masks.

    Returns
    -------
    dict
        Segmentation: ``mean`` (probabilities, vector image), ``std`` (per-class standard
        deviation, vector image), ``entropy`` (predictive entropy of the mean, nats) and
        ``labels`` (argmax of the mean), all on the input grid.
        Classification: ``mean`` and ``std`` arrays ``(classes,)``, ``entropy`` (float) and
        ``samples`` ``(samples, classes)``; for a list of ``n`` images the same with a leading
        image axis (``entropy`` of shape ``(n,)``, ``samples`` of ``(samples, n, classes)``).
    """
    check_int("samples", samples, minimum=2)
    if not isinstance(image, sitk.Image | np.ndarray):  # a list: classification in one batch
        tm = as_trained(model, **preprocessing)
        if tm.task != "classification":
            raise TypeError("a list of images is supported for classification models; segment one image at a time")
        items = list(image)
        grids = [_training_grid(tm, _input_image(tm, it, spacing)[0]) for it in items]
        x = _network_input(tm, grids)
        preds = _mc_samples(tm, x, samples, seed)
        mean, std = preds.mean(axis=0), preds.std(axis=0)
        entropy = -(mean * np.log(np.clip(mean, 1e-12, 1.0))).sum(axis=-1)
        return {"mean": mean, "std": std, "entropy": entropy, "samples": preds}
    tm, img, back, grid, x = _prepare(model, image, spacing, preprocessing)
    preds = _mc_samples(tm, x, samples, seed)[:, 0]
    mean, std = preds.mean(axis=0), preds.std(axis=0)
    entropy = -(mean * np.log(np.clip(mean, 1e-12, 1.0))).sum(axis=-1)
    if tm.task == "classification":
        return {"mean": mean, "std": std, "entropy": float(entropy), "samples": preds}
    mean_img = resample_onto(_vector_on(mean, grid), img)
    labels = sitk.GetImageFromArray(np.argmax(sitk.GetArrayViewFromImage(mean_img), axis=-1).astype(np.uint8))
    labels.CopyInformation(img)
    return {
        "mean": back(mean_img),
        "std": back(resample_onto(_vector_on(std, grid), img)),
        "entropy": back(_scalar_on(entropy, grid, img)),
        "labels": back(labels),
    }


def _mc_samples(tm, x, samples, seed):
    """``(samples, n, ...)`` predictions with the dropout layers active, seeded."""
    drops = [layer for layer in tm.model.layers if isinstance(layer, MCDropout)]
    if not drops:
        raise ValueError("`model` has no dropout layers; build it with `dropout` > 0 for MC dropout")
    check_int("seed", seed, minimum=0)
    # each dropout layer draws from its own seed generator: start them from `seed` (so the masks
    # are reproducible) and give the old states back afterwards (training is not disturbed)
    states = [layer.seed_generator.state for layer in drops]
    saved = [ops.copy(state.value) for state in states]
    for k, state in enumerate(states):
        state.assign(ops.convert_to_tensor(np.array([seed, 1000 * k]), dtype=state.dtype))
        drops[k].monte_carlo = True
    try:
        return np.stack([ops.convert_to_numpy(tm.model(x, training=False)) for _ in range(samples)])
    finally:
        for layer, state, old in zip(drops, states, saved, strict=True):
            layer.monte_carlo = False
            state.assign(old)


def _scalar_on(arr, grid, img):
    small = sitk.GetImageFromArray(np.asarray(arr, np.float32))
    small.CopyInformation(grid)
    return resample_onto(small, img)
