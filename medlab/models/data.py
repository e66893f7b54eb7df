"""Data pipeline from medlab images to network arrays (numpy, SciPy and SimpleITK only: no Keras).

* :func:`resample_to`: an image on a training grid (a fixed size or a spacing in mm) that keeps
  its physical extent, so a prediction on that grid maps back onto the input grid exactly.
* :func:`to_array` / :func:`labels_to_array`: images and label masks as channels-last float32
  and integer arrays on the training grid, intensity-normalised.
* :class:`Augment`: seeded flips, rotations, scaling, elastic deformation and intensity changes
  for 2D images and 3D volumes (labels follow the geometry, nearest-neighbour).
* :func:`sample_patches`: class-balanced patch sampling from volumes.
* :func:`grouped_split`: a seeded train/validation/test split that keeps each group (subject,
  near-duplicate group) in one part and balances labels.

Array conventions: spatial axes in numpy order ``(y, x)`` or ``(z, y, x)``, channels last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medlab import enhance
from medlab._image import as_sitk
from medlab._options import check_choice, check_int, check_positive, is_int

__all__ = [
    "resample_to",
    "resample_onto",
    "to_array",
    "labels_to_array",
    "normalize",
    "Augment",
    "sample_patches",
    "grouped_split",
    "NORMALIZATIONS",
]

NORMALIZATIONS = ("zscore", "minmax", "none")
_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor, "bspline": sitk.sitkBSpline}


# ------------------------------------------------------------------------------- resampling


def _check_size(size, ndim, name="size"):
    size = (size,) * ndim if is_int(size) else tuple(size)
    if len(size) != ndim:
        raise ValueError(f"`{name}` must have {ndim} values (array axis order); got {size!r}")
    for s in size:
        check_int(name, s, minimum=1)
    return size


def resample_to(image, *, size=None, spacing_mm=None, interpolator="linear", spacing=None):
    """Resample ``image`` onto a training grid that covers the same physical extent.

    The new grid has the same origin corner, direction and field of view (``size * spacing``
    along each axis); pixel centres move accordingly. Give exactly one of ``size`` and
    ``spacing_mm``.

    Parameters
    ----------
    image : sitk.Image or ndarray
        2D or 3D; a ``sitk.Image`` may have vector (RGB) pixels, an array is scalar.
    size : int or sequence of int, optional
        Output size in array axis order ``(y, x)`` / ``(z, y, x)``.
    spacing_mm : float or sequence of float, optional
        Output spacing in mm, array axis order; the size is the extent divided by it, rounded.
    interpolator : {'linear', 'nearest', 'bspline'}
        'nearest' for label masks.
    spacing : sequence of float, optional
        Spacing of a numpy ``image`` (mm, array axis order).

    Returns
    -------
    sitk.Image or ndarray
        The same kind as ``image``.
    """
    img, back = as_sitk(image, spacing=spacing)
    check_choice("interpolator", interpolator, list(_INTERPOLATORS))
    nd = img.GetDimension()
    old_size = np.array(img.GetSize(), float)  # (x, y, z)
    old_spacing = np.array(img.GetSpacing())
    extent = old_size * old_spacing
    if (size is None) == (spacing_mm is None):
        raise ValueError("give exactly one of `size` and `spacing_mm`")
    if size is not None:
        new_size = np.array(_check_size(size, nd)[::-1], float)
        new_spacing = extent / new_size
    else:
        sp = (spacing_mm,) * nd if np.isscalar(spacing_mm) else tuple(spacing_mm)
        if len(sp) != nd:
            raise ValueError(f"`spacing_mm` must have {nd} values (array axis order); got {spacing_mm!r}")
        new_spacing = np.array([check_positive("spacing_mm", s) for s in sp][::-1])
        new_size = np.maximum(np.round(extent / new_spacing), 1)
    direction = np.array(img.GetDirection()).reshape(nd, nd)
    # the corner of the field of view stays put: origin moves by half the change of spacing
    origin = np.array(img.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2)
    out = sitk.Resample(
        img, [int(s) for s in new_size], sitk.Transform(), _INTERPOLATORS[interpolator],
        origin.tolist(), new_spacing.tolist(), img.GetDirection(), 0.0, img.GetPixelID(),
    )
    return back(out)


def resample_onto(image: sitk.Image, reference: sitk.Image, *, interpolator="linear") -> sitk.Image:
    """``image`` resampled onto the grid of ``reference`` (physical space, identity transform).

    ITK interpolates up to half a pixel beyond the outer pixel centres, so a prediction made on
    the coarser grid of :func:`resample_to` covers the whole input grid, borders included.

    Parameters
    ----------
    image : sitk.Image
        The image to resample.
    reference : sitk.Image
        The grid to resample onto.
    interpolator : {'linear', 'nearest', 'bspline'}
        The interpolation (nearest for labels).
    """
    check_choice("interpolator", interpolator, list(_INTERPOLATORS))
    return sitk.Resample(image, reference, sitk.Transform(), _INTERPOLATORS[interpolator], 0.0, image.GetPixelID())


# ----------------------------------------------------------------------- arrays for a network


def normalize(array: np.ndarray, method: str = "zscore", *, mask=None) -> np.ndarray:
    """Intensity normalisation of one network input (all channels together), as float32.

    The statistics are :func:`medlab.enhance.normalize`'s (the one normalisation of medlab),
    with a constant image mapped to zeros (a blank frame must not stop a batch).

    Parameters
    ----------
    array : ndarray
        The image, ``(rows, columns[, channels])``.
    method : {'zscore', 'minmax', 'none'}
        'zscore': ``(x - mean) / std``; 'minmax': ``(x - min) / (max - min)`` into [0, 1];
        'none': unchanged (cast to float32).
    mask : ndarray of bool, optional
        Statistics from these pixels only (e.g. the body).

    Returns
    -------
    ndarray of float32
        Same shape as ``array``.
    """
    check_choice("method", method, NORMALIZATIONS)
    x = np.asarray(array, dtype=np.float32)
    if method == "none":
        return x.copy()
    # the statistics are over all values (and channels) together, so any shape (a 3D patch with a
    # channel axis is 4D) goes to enhance.normalize as one row of values
    flat = x.reshape(1, -1)
    m = None
    if mask is not None:  # a spatial mask covers every channel of its pixels
        m = np.asarray(mask, bool)
        m = m.reshape(m.shape + (1,) * (x.ndim - m.ndim))
        m = np.broadcast_to(m, x.shape).reshape(1, -1)
    out = enhance.normalize(flat, method, mask=m, constant="zeros")
    return np.asarray(out, dtype=np.float32).reshape(x.shape)


def _as_image(image, spacing=None) -> sitk.Image:
    if isinstance(image, sitk.Image):
        return image
    arr = np.asarray(image)
    vector = arr.ndim == 3 and arr.shape[-1] in (3, 4)
    return as_sitk(arr, spacing=spacing, vector=vector)[0]


def to_array(images, *, size=None, normalization="zscore", channels=1) -> np.ndarray:
    """Images as one float32 array ``(n, *size, channels)`` for a network.

    Parameters
    ----------
    images : sitk.Image, ndarray or sequence of them
        2D or 3D images; RGB (vector) pixels allowed. A single image gives ``n = 1``.
    size : sequence of int, optional
        Training grid size in array axis order (:func:`resample_to`, linear); default: as is
        (then all images must share one size).
    normalization : {'zscore', 'minmax', 'none'}
        Per image, see :func:`normalize`.
    channels : {1, 3}
        1: RGB is averaged to grey; 3: grey is repeated into three channels.
    """
    single = isinstance(images, sitk.Image | np.ndarray)
    items = [images] if single else list(images)
    if not items:
        raise ValueError("`images` is empty")
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3; got {channels!r}")
    out = []
    for item in items:
        img = _as_image(item)
        if size is not None:
            img = resample_to(img, size=size)
        arr = sitk.GetArrayFromImage(img).astype(np.float32)
        if img.GetNumberOfComponentsPerPixel() == 1:
            arr = arr[..., None]
        arr = arr[..., :3].mean(axis=-1, keepdims=True) if channels == 1 else (
            np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr[..., :3]
        )
        out.append(normalize(arr, normalization))
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; give `size` to resample them")
    return np.stack(out)


def labels_to_array(masks, *, size=None) -> np.ndarray:
    """Label masks as one integer array ``(n, *size)`` (nearest-neighbour resampling).

    Parameters
    ----------
    masks : sitk.Image or ndarray, or a list of them
        Label masks (integer labels).
    size : sequence of int, optional
        Grid size in array axis order (nearest-neighbour resampling); default: as is.
    """
    single = isinstance(masks, sitk.Image | np.ndarray)
    items = [masks] if single else list(masks)
    out = []
    for item in items:
        img = _as_image(item)
        if size is not None:
            img = resample_to(img, size=size, interpolator="nearest")
        out.append(sitk.GetArrayFromImage(img).astype(np.int32))
    return np.stack(out)


# ------------------------------------------------------------------------------ augmentation


def _range(name, value, centre):
    """``value`` as a (low, high) range: a number r gives (centre - r, centre + r)."""
    if value is None:
        return None
    if np.isscalar(value):
        r = check_positive(name, value, allow_zero=True)
        return (centre - r, centre + r) if r else None
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"`{name}` range must be (low, high) with low <= high; got {value!r}")
    return (lo, hi)


class Augment:
    """Seeded random augmentation of an image (and its labels) for training.

    Configure here, apply with ``augment(image, labels, rng=...)``: the same ``rng`` state gives
    the same result, so a training run is reproducible from its seed.

    Parameters
    ----------
    flip_axes : sequence of int
        Spatial axes (array order) each flipped with probability 1/2.
    rotate_deg : float
        Rotation angle drawn uniformly in ``[-rotate_deg, rotate_deg]``, in the plane of the last
        two spatial axes (the ``(y, x)`` plane of a 3D volume).
    scale : float or (low, high)
        Isotropic zoom factor range; a number ``s`` means ``(1 - s, 1 + s)``.
    elastic_alpha : float
        Elastic deformation: maximum displacement in pixels (0: none). The displacement field is
        white noise smoothed with a Gaussian of ``elastic_sigma`` pixels and scaled so that its
        largest value is ``elastic_alpha``.
    elastic_sigma : float
        Smoothness of the elastic field, pixels.
    gamma : float or (low, high)
        Gamma applied to the min-max scaled intensities (``1 +- gamma`` for a number).
    contrast : float or (low, high)
        Multiplies deviations from the mean (``1 +- contrast`` for a number).
    brightness : float or (low, high)
        Adds this many standard deviations (``+- brightness`` for a number).
    noise_std : float
        Gaussian noise, as a fraction of the image's standard deviation.
    p : float
        Probability that the geometric and the intensity parts are each applied.

    Examples
    --------
    >>> import numpy as np
    >>> from medlab.models import Augment
    >>> aug = Augment(flip_axes=(1,), rotate_deg=10, contrast=0.1)
    >>> image, labels = np.random.default_rng(0).random((32, 32, 1)), np.zeros((32, 32), int)
    >>> a1, _ = aug(image, labels, rng=np.random.default_rng(7))
    >>> a2, _ = aug(image, labels, rng=np.random.default_rng(7))
    >>> bool(np.array_equal(a1, a2))
    True
    """

    def __init__(
        self,
        *,
        flip_axes: Sequence[int] = (),
        rotate_deg: float = 0.0,
        scale=None,
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 8.0,
        gamma=None,
        contrast=None,
        brightness=None,
        noise_std: float = 0.0,
        p: float = 1.0,
    ):
        self.flip_axes = tuple(int(a) for a in flip_axes)
        self.rotate_deg = check_positive("rotate_deg", rotate_deg, allow_zero=True)
        self.scale = _range("scale", scale, 1.0)
        if self.scale and self.scale[0] <= 0:
            raise ValueError(f"`scale` must stay above 0; got {scale!r}")
        self.elastic_alpha = check_positive("elastic_alpha", elastic_alpha, allow_zero=True)
        self.elastic_sigma = check_positive("elastic_sigma", elastic_sigma)
        self.gamma = _range("gamma", gamma, 1.0)
        if self.gamma and self.gamma[0] <= 0:
            raise ValueError(f"`gamma` must stay above 0; got {gamma!r}")
        self.contrast = _range("contrast", contrast, 1.0)
        self.brightness = _range("brightness", brightness, 0.0)
        self.noise_std = check_positive("noise_std", noise_std, allow_zero=True)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"`p` must be a probability in [0, 1]; got {p!r}")
        self.p = float(p)

    def __repr__(self):
        opts = {k: v for k, v in vars(self).items() if v not in (None, (), 0.0)}
        return f"Augment({', '.join(f'{k}={v!r}' for k, v in opts.items())})"

    def __call__(self, image, labels=None, *, rng):
        """Augment ``image`` (``(*spatial, channels)``) and ``labels`` (``(*spatial)``).

        Returns ``(image, labels)`` as new arrays (``labels`` None if not given).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"`rng` must be a numpy Generator (np.random.default_rng(seed)); got {type(rng).__name__}")
        image = np.asarray(image, np.float32)
        spatial = image.shape[:-1]
        nd = len(spatial)
        if nd not in (2, 3):
            raise ValueError(f"`image` must be (*spatial, channels) with 2 or 3 spatial axes; got shape {image.shape}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != spatial:
                raise ValueError(f"`labels` (shape {labels.shape}) must match the spatial shape of `image` {spatial}")
        for a in self.flip_axes:
            if not -nd <= a < nd:
                raise ValueError(f"`flip_axes` entry {a} is not a spatial axis of a {nd}D image")
        # every random number is drawn in a fixed order, whether or not a part applies,
        # so changing one option does not reshuffle the others
        flips = rng.random(len(self.flip_axes)) < 0.5
        do_geom, do_int = rng.random(2) < self.p
        angle = np.deg2rad(rng.uniform(-self.rotate_deg, self.rotate_deg))
        zoom = rng.uniform(*self.scale) if self.scale else 1.0
        field_seed = rng.integers(2**32)
        g = rng.uniform(*self.gamma) if self.gamma else 1.0
        c = rng.uniform(*self.contrast) if self.contrast else 1.0
        b = rng.uniform(*self.brightness) if self.brightness else 0.0
        noise_seed = rng.integers(2**32)

        for a, f in zip(self.flip_axes, flips, strict=True):
            if f:
                image = np.flip(image, axis=a)
                labels = None if labels is None else np.flip(labels, axis=a)
        geometric = do_geom and (angle != 0 or zoom != 1.0 or self.elastic_alpha > 0)
        if geometric:
            coords = self._coordinates(spatial, angle, zoom, field_seed)
            fill = image.reshape(-1, image.shape[-1]).min(axis=0)
            image = np.stack(
                [ndimage.map_coordinates(image[..., k], coords, order=1, mode="constant", cval=float(fill[k]))
                 for k in range(image.shape[-1])], axis=-1,
            ).astype(np.float32)
            if labels is not None:
                labels = ndimage.map_coordinates(labels, coords, order=0, mode="constant", cval=0).astype(labels.dtype)
        else:
            image = np.ascontiguousarray(image)
            labels = None if labels is None else np.ascontiguousarray(labels)
        if do_int:
            image = self._intensity(image, g, c, b, noise_seed)
        return image, labels

    def _coordinates(self, spatial, angle, zoom, field_seed):
        nd = len(spatial)
        centre = (np.array(spatial, float) - 1) / 2
        grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in spatial], indexing="ij"))
        rel = grid - centre.reshape((nd,) + (1,) * nd)
        # rotation in the plane of the last two axes, zoom about the centre (output -> input)
        cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
        out = rel / zoom
        out[-2] = cos * rel[-2] - sin * rel[-1]
        out[-1] = sin * rel[-2] + cos * rel[-1]
        coords = out + centre.reshape((nd,) + (1,) * nd)
        if self.elastic_alpha > 0:
            frng = np.random.default_rng(field_seed)
            for k in range(nd):
                d = ndimage.gaussian_filter(frng.uniform(-1, 1, spatial), self.elastic_sigma, mode="constant")
                peak = np.abs(d).max()
                if peak > 0:
                    coords[k] += (self.elastic_alpha / peak) * d
        return coords

    def _intensity(self, image, g, c, b, noise_seed):
        if g != 1.0:
            lo, hi = float(image.min()), float(image.max())
            if hi > lo:
                image = ((image - lo) / (hi - lo)) ** g * (hi - lo) + lo
        std = float(image.std())
        if c != 1.0:
            mean = float(image.mean())
            image = (image - mean) * c + mean
        if b:
            image = image + b * std
        if self.noise_std > 0:
            image = image + np.random.default_rng(noise_seed).normal(0.0, self.noise_std * std, image.shape)
        return image.astype(np.float32)


# ---------------------------------------------------------------------------- patch sampling


def sample_patches(image, labels, patch_size, n, *, class_probabilities=None, rng):
    """Class-balanced random patches from a volume (or image) and its label map.

    Each patch is centred on a voxel of a class drawn with ``class_probabilities`` (default:
    every class present in ``labels`` equally often, so a small lesion is seen as often as the
    background); the centre voxel is drawn uniformly among that class's voxels. Patches are
    shifted to lie inside the volume; a volume smaller than ``patch_size`` is zero-padded first.

    Parameters
    ----------
    image : ndarray, ``(*spatial, channels)``
        The volume, channels last.
    labels : ndarray of int, ``(*spatial)``
        Label map.
    patch_size : sequence of int
        Patch size in array axis order.
    n : int
        Number of patches.
    class_probabilities : dict {label: probability}, optional
        Sampling probability per label (normalised; labels absent from ``labels`` are skipped).
    rng : numpy.random.Generator
        Source of randomness (seeded by the caller).

    Returns
    -------
    patches : ndarray, ``(n, *patch_size, channels)``
    label_patches : ndarray, ``(n, *patch_size)``
    centres : ndarray of int, (n, ndim)
        The drawn centre voxels (array index, in the padded volume).
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    nd = labels.ndim
    if image.shape[:-1] != labels.shape:
        raise ValueError(f"`labels` (shape {labels.shape}) must match the spatial shape of `image` {image.shape[:-1]}")
    patch = _check_size(patch_size, nd, "patch_size")
    check_int("n", n, minimum=1)
    pad = [(0, max(0, p - s)) for p, s in zip(patch, labels.shape, strict=True)]
    if any(p[1] for p in pad):
        image = np.pad(image, pad + [(0, 0)])
        labels = np.pad(labels, pad)
    present = np.unique(labels)
    if class_probabilities is None:
        classes, probs = present, np.full(len(present), 1.0 / len(present))
    else:
        chosen = {int(k): float(v) for k, v in class_probabilities.items() if int(k) in set(present.tolist()) and v > 0}
        if not chosen:
            raise ValueError(f"`class_probabilities` names none of the labels present {present.tolist()}")
        classes = np.array(list(chosen))
        probs = np.array(list(chosen.values()))
        probs = probs / probs.sum()
    where = {int(c): np.flatnonzero(labels == c) for c in classes}
    picks = rng.choice(len(classes), size=n, p=probs)
    half = np.array(patch) // 2
    limit = np.array(labels.shape) - np.array(patch)
    out_x = np.empty((n, *patch, image.shape[-1]), image.dtype)
    out_y = np.empty((n, *patch), labels.dtype)
    centres = np.empty((n, nd), int)
    for k, ci in enumerate(picks):
        flat = where[int(classes[ci])]
        centre = np.array(np.unravel_index(flat[rng.integers(len(flat))], labels.shape))
        start = np.clip(centre - half, 0, limit)
        sl = tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))
        out_x[k], out_y[k], centres[k] = image[sl], labels[sl], centre
    return out_x, out_y, centres


# ----------------------------------------------------------------------------------- splits


def grouped_split(groups, labels=None, *, fractions=(0.8, 0.2), seed=0):
    """Split items into parts such that no group is in two parts, with balanced labels.

    Groups (a subject, a set of near-duplicate images) are visited in a seeded random order,
    largest first, and each goes to the part that lacks most of that group's labels relative to
    its target (``fraction * count`` per label).

    Parameters
    ----------
    groups : sequence
        Group of each item (any hashable values).
    labels : sequence, optional
        Label of each item to balance across parts (e.g. the class).
    fractions : sequence of float
        Target share of each part (normalised to sum 1).
    seed : int
        Seed of the visiting order.

    Returns
    -------
    list of ndarray of int
        Item indices of each part, sorted.

    Examples
    --------
    >>> from medlab.models import grouped_split
    >>> train, val = grouped_split(["a", "a", "b", "c", "c", "d"], fractions=(0.5, 0.5), seed=0)
    >>> sorted(set(train.tolist()) | set(val.tolist())) == list(range(6))
    True
    """
    groups = np.asarray(groups)
    n = len(groups)
    labels = np.zeros(n, int) if labels is None else np.asarray(labels)
    if len(labels) != n:
        raise ValueError(f"`labels` has {len(labels)} entries but `groups` has {n}")
    frac = np.asarray(fractions, float)
    if frac.ndim != 1 or len(frac) < 2 or (frac <= 0).any():
        raise ValueError(f"`fractions` must be two or more positive numbers; got {fractions!r}")
    frac = frac / frac.sum()
    label_values, label_idx = np.unique(labels, return_inverse=True)
    group_values, group_idx = np.unique(groups, return_inverse=True)
    hist = np.zeros((len(group_values), len(label_values)))
    np.add.at(hist, (group_idx, label_idx), 1)
    target = frac[:, None] * np.bincount(label_idx, minlength=len(label_values))[None, :]
    have = np.zeros_like(target)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(group_values))
    order = order[np.argsort(-hist[order].sum(axis=1), kind="stable")]
    part_of_group = np.empty(len(group_values), int)
    for g in order:
        need = ((target - have) / np.maximum(target, 1e-12)) @ hist[g]
        part = int(np.argmax(need))
        part_of_group[g] = part
        have[part] += hist[g]
    part_of_item = part_of_group[group_idx]
    return [np.flatnonzero(part_of_item == k) for k in range(len(frac))]
