"""Inference on medlab images: whole-image segmentation in 2D, sliding-window segmentation with
overlap and Gaussian blending for 3D volumes of any size, and image classification.

Every segmentation is returned on the **input grid**: the image is resampled to the model's
training grid (:func:`medlab.models.resample_to`, same physical extent), the probabilities are
resampled back with linear interpolation (:func:`medlab.models.resample_onto`) and only then
turned into labels by argmax, so boundaries are placed at sub-pixel precision of the coarse grid.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk
from medlab._options import check_choice, check_int, check_positive

from ._backend import keras as _keras
from .data import _check_size, resample_onto, resample_to, to_array
from .io import TrainedModel
from .cards import ModelInputWarning, check_input

__all__ = ["segment", "segment_flips", "classify", "sliding_window", "gaussian_importance", "as_trained", "FLIPS"]

# test-time augmentation of 2D segmentation: the spatial axes (array order) flipped in each pass
FLIPS = ((), (1,), (0,), (0, 1))


def as_trained(model, **preprocessing) -> TrainedModel:
    """``model`` as a :class:`TrainedModel`; ``preprocessing`` fields that are not None
    override (for a TrainedModel) or complete (for a bare ``keras.Model``) its settings.

    Parameters
    ----------
    model : keras.Model or TrainedModel
        The network, bare or with its preprocessing.
    **preprocessing
        :class:`TrainedModel` fields (``normalization``, ``input_size``, ...); None leaves a field as
        it is.
    """
    given = {k: v for k, v in preprocessing.items() if v is not None}
    if isinstance(model, TrainedModel):
        return dataclasses.replace(model, **given) if given else model
    if not hasattr(model, "output_shape"):
        raise TypeError(f"`model` must be a keras.Model or a TrainedModel; got {type(model).__name__}")
    given.setdefault("task", "segmentation" if len(model.output_shape) > 2 else "classification")
    return TrainedModel(model, **given)


def _spatial_dims(tm: TrainedModel) -> int:
    return len(tm.model.input_shape) - 2


def _input_image(tm: TrainedModel, image, spacing, name="image"):
    """``(sitk image, back)``; a numpy array with one axis more than the model is vector (RGB)."""
    nd = _spatial_dims(tm)
    vector = not isinstance(image, sitk.Image) and np.ndim(image) == nd + 1
    img, back = as_sitk(image, spacing=spacing, name=name, vector=vector)
    if img.GetDimension() != nd:
        raise ValueError(
            f"`{name}` is {img.GetDimension()}D but the model takes {nd}D inputs "
            f"(input shape {tm.model.input_shape})"
        )
    return img, back


def _training_grid(tm: TrainedModel, img: sitk.Image) -> sitk.Image:
    """2D images and classification inputs: the whole image on the training size; 3D volumes
    for segmentation: the volume at the training spacing (then sliding windows)."""
    whole = img.GetDimension() == 2 or tm.task == "classification"
    if whole and tm.input_size is not None:
        return resample_to(img, size=tm.input_size)
    if tm.spacing_mm is not None:
        return resample_to(img, spacing_mm=tm.spacing_mm)
    return img


def _network_input(tm: TrainedModel, grids) -> np.ndarray:
    return to_array(grids, normalization=tm.normalization, channels=tm.channels)


def _vector_on(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    """A ``(*spatial, k)`` array as a vector image with the geometry of ``grid``."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32), isVector=True)
    out.CopyInformation(grid)
    return out


def _labels_from(prob: sitk.Image, reference: sitk.Image) -> sitk.Image:
    arr = sitk.GetArrayViewFromImage(prob)
    labels = sitk.GetImageFromArray(np.argmax(arr, axis=-1).astype(np.uint8))
    labels.CopyInformation(reference)
    return labels


def _check_domain(tm: TrainedModel, items, task=None) -> None:
    """Warn (:class:`~medlab.models.cards.ModelInputWarning`) for each image outside the model's
    training domain; refuse another task (:func:`~medlab.models.cards.check_input`)."""
    import warnings


    for k, item in enumerate(items):
        reasons = check_input(tm, item, task=task)
        if reasons:
            name = tm.info.get("name", "the model")
            which = f"image {k}" if len(items) > 1 else "the image"
            warnings.warn(f"{which} does not look like what {name} was trained on: " + "; ".join(reasons)
                          + " (its output is not to be trusted)", ModelInputWarning, stacklevel=3)


def _predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    keras = _keras()
    if len(x) <= batch_size:  # one eager call: no graph tracing for a single batch
        return keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float32)


def segment(
    model,
    image,
    *,
    output: str = "labels",
    spacing=None,
    batch_size: int = 8,
    overlap: float = 0.5,
    progress=None,
    tta: bool = False,
    task: str | None = None,
    **preprocessing,
):
    """Segment a 2D image or a 3D volume; the result lies on the input grid.

    2D images are segmented whole on the training grid; 3D volumes with a sliding window
    (:func:`sliding_window`: ``patch_size`` patches, ``overlap``, Gaussian blending) on the
    training spacing, so volumes of any size work.

    Parameters
    ----------
    model : TrainedModel or keras.Model
        A bare Keras model needs its preprocessing as keywords (``input_size``,
        ``normalization``, ``channels``, ``patch_size``, ``spacing_mm``).
    image : sitk.Image, ndarray or list of them
        Images to segment (a list of 2D images is predicted in batches).
    output : {'labels', 'probabilities', 'both'}
        Labels (uint8, argmax of the probabilities), per-class probabilities (a float32 vector
        image with one component per class), or the tuple ``(labels, probabilities)``.
    spacing : sequence of float, optional
        Spacing of numpy input (mm, array axis order).
    batch_size : int
    overlap : float
        Sliding-window overlap in [0, 1) (3D).
    progress : callable, optional
        ``progress(fraction, message)`` during 3D inference; returning False stops it
        (InterruptedError).
    tta : bool
        2D only: average the probabilities of the four flips :data:`FLIPS` (test-time
        augmentation; four network passes). :func:`segment_flips` gives each pass.
    task : str, optional
        The task the caller wants; a model tagged for another one refuses (ValueError). Images
        unlike the model's training images get a :class:`~medlab.models.ModelInputWarning`
        (:func:`~medlab.models.check_input`).

    Returns
    -------
    sitk.Image or ndarray (or a list, for a list input)
        On the grid of ``image``, of the same kind as ``image``.

    Examples
    --------
    >>> from medlab import datasets
    >>> from medlab.models import pretrained, segment
    >>> case = datasets.load("hc18", case="000_HC", progress=False)
    >>> labels = segment(pretrained("hc18_unet"), case.image)
    >>> labels.GetSize() == case.image.GetSize()
    True
    """
    check_choice("output", output, ("labels", "probabilities", "both"))
    check_int("batch_size", batch_size, minimum=1)
    tm = as_trained(model, **preprocessing)
    if tm.task != "segmentation":
        raise ValueError(f"`model` is a {tm.task} model; use classify()")
    single = isinstance(image, sitk.Image | np.ndarray)
    items = [image] if single else list(image)
    inputs = [_input_image(tm, it, spacing) for it in items]
    _check_domain(tm, [img for img, _ in inputs], task)
    if tta and _spatial_dims(tm) != 2:
        raise ValueError("`tta` is for 2D models only")
    if _spatial_dims(tm) == 2:
        grids = [_training_grid(tm, img) for img, _ in inputs]
        probs = _flip_passes(tm, _network_input(tm, grids), batch_size, FLIPS if tta else ((),)).mean(axis=0)
        prob_grid = [_vector_on(p, g) for p, g in zip(probs, grids, strict=True)]
    else:
        prob_grid = []
        for img, _ in inputs:
            grid = _training_grid(tm, img)
            patch = tm.patch_size or tm.input_size
            if patch is None:
                raise ValueError("3D segmentation needs `patch_size` (or a model with a fixed input size)")
            arr = _network_input(tm, [grid])[0]
            p = sliding_window(tm.model, arr, patch, overlap=overlap, batch_size=batch_size, progress=progress)
            prob_grid.append(_vector_on(p, grid))
    results = []
    for (img, back), pg in zip(inputs, prob_grid, strict=True):
        prob = resample_onto(pg, img)
        labels = _labels_from(prob, img)
        res = {"labels": labels, "probabilities": prob, "both": None}[output]
        results.append(back(res) if output != "both" else (back(labels), back(prob)))
    return results[0] if single else results


def _flip_passes(tm: TrainedModel, x: np.ndarray, batch_size: int, flips) -> np.ndarray:
    """``(len(flips), n, *spatial, classes)`` probabilities, each pass flipped back."""
    out = []
    for axes in flips:
        ax = tuple(a + 1 for a in axes)  # skip the batch axis
        xf = np.ascontiguousarray(np.flip(x, ax)) if ax else x
        p = _predict(tm.model, xf, batch_size)
        out.append(np.flip(p, ax) if ax else p)
    return np.stack(out)


def segment_flips(model, image, *, spacing=None, batch_size: int = 8, flips=FLIPS, grid: str = "input",
                  **preprocessing):
    """Test-time augmentation of a 2D segmentation: the probabilities of each flipped pass.

    Parameters
    ----------
    model : TrainedModel or keras.Model
        A 2D segmentation model.
    image : sitk.Image or ndarray, or a list of them
    spacing : sequence of float, optional
        Spacing of numpy input (mm, array axis order).
    batch_size : int
    flips : sequence of tuple of int
        Spatial axes (array order) flipped in each pass; default :data:`FLIPS` (none, x, y,
        both).
    grid : {'input', 'model'}
        'input': each pass resampled onto the grid of ``image`` (their mean is ``segment(...,
        tta=True, output='probabilities')``); 'model': left on the model's grid (same physical
        extent, ``input_size`` pixels; always ``sitk.Image``), which is much cheaper.

    Returns
    -------
    list of sitk.Image or ndarray (a list of such lists for a list input)
        One probability image per pass (vector pixels, one component per class), flipped back.
    """
    check_choice("grid", grid, ("input", "model"))
    check_int("batch_size", batch_size, minimum=1)
    tm = as_trained(model, **preprocessing)
    if tm.task != "segmentation" or _spatial_dims(tm) != 2:
        raise ValueError(f"`model` must be a 2D segmentation model; got a {_spatial_dims(tm)}D {tm.task} model")
    flips = [tuple(int(a) for a in f) for f in flips]
    for f in flips:
        if any(a not in (0, 1) for a in f):
            raise ValueError(f"`flips` entries name spatial axes 0 (y) and 1 (x); got {f!r}")
    single = isinstance(image, sitk.Image | np.ndarray)
    items = [image] if single else list(image)
    inputs = [_input_image(tm, it, spacing) for it in items]
    _check_domain(tm, [img for img, _ in inputs])
    grids = [_training_grid(tm, img) for img, _ in inputs]
    passes = _flip_passes(tm, _network_input(tm, grids), batch_size, flips)
    if grid == "model":
        results = [[_vector_on(passes[k, i], grids[i]) for k in range(len(flips))] for i in range(len(inputs))]
    else:
        results = [[back(resample_onto(_vector_on(passes[k, i], grids[i]), img)) for k in range(len(flips))]
                   for i, (img, back) in enumerate(inputs)]
    return results[0] if single else results


def classify(model, images, *, spacing=None, batch_size: int = 32, task: str | None = None,
             **preprocessing) -> np.ndarray:
    """Class probabilities of one image or a list of images.

    ``task``: the task the caller wants; a model tagged for another one refuses (ValueError).
    Images unlike the model's training images get a
    :class:`~medlab.models.ModelInputWarning` (:func:`~medlab.models.check_input`).

    Parameters
    ----------
    model : keras.Model or TrainedModel
        A classification model.
    images : sitk.Image or ndarray, or a list of them
        One image or several.
    spacing : sequence of float, optional
        Spacing of numpy input (array axis order).
    batch_size : int
        Images per forward pass.
    task : str, optional
        The task the caller wants; a model tagged for another one refuses (ValueError).
    **preprocessing
        Overrides of the model's preprocessing (as for :func:`as_trained`).

    Returns
    -------
    ndarray, (n, classes)
        Softmax outputs, one row per image (``n = 1`` for a single image). A row is NaN for an
        image with nothing to classify: constant (a blank frame) or with NaN or infinite pixels
        (it also gets the input warning).
    """
    from .cards import _content

    check_int("batch_size", batch_size, minimum=1)
    tm = as_trained(model, **preprocessing)
    if tm.task != "classification":
        raise ValueError(f"`model` is a {tm.task} model; use segment()")
    items = [images] if isinstance(images, sitk.Image | np.ndarray) else list(images)
    imgs = [_input_image(tm, it, spacing)[0] for it in items]
    _check_domain(tm, imgs, task)
    grids = [_training_grid(tm, img) for img in imgs]
    out = _predict(tm.model, _network_input(tm, grids), batch_size)
    for k, img in enumerate(imgs):  # no content: no probability (a network still outputs one)
        if any(_content(img)):
            out[k] = np.nan
    return out


# ------------------------------------------------------------------------------ sliding window


def gaussian_importance(patch_size, *, sigma_scale: float = 0.125) -> np.ndarray:
    """Gaussian weights for blending overlapping patch predictions (as in nnU-Net).

    ``exp(-d_k**2 / (2 sigma_k**2))`` summed over axes ``k`` in the exponent, centred on the
    patch, ``sigma_k = sigma_scale * patch_size_k``; the maximum is 1 and every weight is > 0,
    so every voxel covered by a patch gets a defined blend.

    Parameters
    ----------
    patch_size : int or sequence of int
        Patch size in array axis order.
    sigma_scale : float
        Gaussian sigma per axis as a fraction of the patch size.
    """
    size = _check_size(patch_size, len(patch_size) if not np.isscalar(patch_size) else 1, "patch_size")
    check_positive("sigma_scale", sigma_scale)
    axes = [np.exp(-((np.arange(s) - (s - 1) / 2) ** 2) / (2 * (sigma_scale * s) ** 2)) for s in size]
    w = axes[0]
    for a in axes[1:]:
        w = np.multiply.outer(w, a)
    w = w / w.max()
    return np.maximum(w, w[w > 0].min()).astype(np.float32)


def _positions(size: int, patch: int, overlap: float) -> list[int]:
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1 - overlap)))
    n = math.ceil((size - patch) / step) + 1
    return sorted({int(round(p)) for p in np.linspace(0, size - patch, n)})


def sliding_window(model, array, patch_size, *, overlap=0.5, sigma_scale=0.125, batch_size=4, progress=None):
    """Predict an array of any size patch by patch, blending overlaps with Gaussian weights.

    Parameters
    ----------
    model : keras.Model or callable
        Maps ``(batch, *patch_size, channels)`` to ``(batch, *patch_size, classes)``.
    array : ndarray, ``(*spatial, channels)``
        The (normalised) volume or image; smaller than a patch along an axis is zero-padded.
    patch_size : sequence of int
        Patch size in array axis order.
    overlap : float
        Fraction of a patch shared with its neighbour, in [0, 1).
    sigma_scale : float
        Gaussian sigma as a fraction of the patch size (:func:`gaussian_importance`).
    batch_size : int
    progress : callable, optional
        ``progress(fraction, message)``; returning False raises InterruptedError.

    Returns
    -------
    ndarray, ``(*spatial, classes)``, float32
        ``sum_patches w * prediction / sum_patches w`` at every voxel.
    """
    array = np.asarray(array, np.float32)
    nd = array.ndim - 1
    patch = _check_size(patch_size, nd, "patch_size")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"`overlap` must be in [0, 1); got {overlap!r}")
    check_int("batch_size", batch_size, minimum=1)
    shape = array.shape[:-1]
    pad = [(0, max(0, p - s)) for p, s in zip(patch, shape, strict=True)]
    padded = np.pad(array, pad + [(0, 0)]) if any(p[1] for p in pad) else array
    weights = gaussian_importance(patch, sigma_scale=sigma_scale)
    starts = list(np.ndindex(*[len(_positions(s, p, overlap)) for s, p in zip(padded.shape[:-1], patch, strict=True)]))
    grid = [_positions(s, p, overlap) for s, p in zip(padded.shape[:-1], patch, strict=True)]
    corners = [tuple(grid[k][i] for k, i in enumerate(idx)) for idx in starts]
    keras = _keras() if hasattr(model, "predict") else None
    acc = None
    wsum = np.zeros(padded.shape[:-1], np.float32)
    for b in range(0, len(corners), batch_size):
        chunk = corners[b:b + batch_size]
        slices = [tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True)) for corner in chunk]
        x = np.stack([padded[s] for s in slices])
        y = model(x, training=False) if keras is not None else model(x)
        y = np.asarray(keras.ops.convert_to_numpy(y) if keras is not None else y, np.float32)
        if acc is None:
            acc = np.zeros((*padded.shape[:-1], y.shape[-1]), np.float32)
        for s, yi in zip(slices, y, strict=True):
            acc[s] += yi * weights[..., None]
            wsum[s] += weights
        if progress is not None:
            done = min(b + batch_size, len(corners))
            if progress(done / len(corners), f"sliding window: {done}/{len(corners)} patches") is False:
                raise InterruptedError(f"sliding-window inference stopped by the `progress` callback after {done} patches")
    out = acc / wsum[..., None]
    return out[tuple(slice(0, s) for s in shape)]
