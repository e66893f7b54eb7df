"""Layer data <-> SimpleITK images, and the plugin's computations as pure functions (no napari).

napari layers hold a numpy array in ``(z, y, x)`` (2D: ``(y, x)``) order with ``scale`` and
``translate`` in the same order; a ``sitk.Image`` holds spacing and origin in ``(x, y, z)``.
A 3D image is reoriented to LPS first (:func:`sitk.DICOMOrient`: a permutation/flip of its axes
only); what remains of its direction (an oblique acquisition, a 4D image's 3D direction) is passed
as the layer's ``rotate`` matrix, or as ``affine`` when it is not a rotation (a gantry tilt kept
as a sheared grid), so napari's data-to-world transform puts every voxel at its SimpleITK
position. Each function returns napari ``LayerDataTuple`` s: ``(data, kwargs, layer_type)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

import medlab.fusion
import medlab.registration
import medlab.segmentation
from medlab._options import check_choice

__all__ = [
    "image_to_layer",
    "layer_to_image",
    "model_layers",
    "points_to_index",
    "region_growing_layer",
    "registration_blend_layers",
    "threshold_layer",
]

BLEND_MODES = ("alpha", "checkerboard", "difference")


def _lps(img: sitk.Image) -> sitk.Image:
    if img.GetDimension() == 3 and not np.allclose(img.GetDirection(), np.eye(3).ravel(), atol=1e-6):
        return sitk.DICOMOrient(img, "LPS")
    return img


def geometry(img: sitk.Image) -> dict:
    """``scale``, ``translate`` (napari order, mm) and, unless the direction is the identity,
    ``rotate`` (a rotation) or ``affine`` (any other direction), in napari's (z, y, x) order."""
    out = {"scale": tuple(float(v) for v in img.GetSpacing()[::-1]),
           "translate": tuple(float(v) for v in img.GetOrigin()[::-1])}
    nd = img.GetDimension()
    direction = np.asarray(img.GetDirection(), float).reshape(nd, nd)[::-1, ::-1]  # (z, y, x) order
    if np.allclose(direction, np.eye(nd), atol=1e-9):
        return out
    if np.allclose(direction @ direction.T, np.eye(nd), atol=1e-6) and np.linalg.det(direction) > 0:
        out["rotate"] = direction
        return out
    # reflections and non-orthogonal directions: world = direction @ (scale * index) + translate
    affine = np.eye(nd + 1)
    affine[:nd, :nd] = direction * np.asarray(out["scale"])
    affine[:nd, nd] = out["translate"]
    return {"affine": affine}


def image_to_layer(img: sitk.Image, name: str, layer_type: str = "image", **kwargs) -> tuple:
    """A ``sitk.Image`` as a napari LayerDataTuple (reoriented to LPS, geometry as scale/translate)."""
    img = _lps(img)
    data = sitk.GetArrayFromImage(img)
    if layer_type == "labels" and data.dtype.kind not in "iu":
        data = data.astype(np.int32)
    meta = {"spacing_mm": img.GetSpacing(), "origin_mm": img.GetOrigin(), "direction": img.GetDirection()}
    opts = {"name": name, **geometry(img), "metadata": {**meta, **kwargs.pop("metadata", {})}, **kwargs}
    return data, opts, layer_type


def layer_to_image(data, scale: Sequence[float] | None = None, translate: Sequence[float] | None = None,
                   rotate=None) -> sitk.Image:
    """A layer's array (``(z, y, x)`` or ``(y, x)``) with its scale/translate (and ``rotate``
    matrix, napari order) as a ``sitk.Image``."""
    arr = np.asarray(data)
    if arr.ndim not in (2, 3):
        raise ValueError(f"the layer must be 2D or 3D; got data of shape {arr.shape}")
    img = sitk.GetImageFromArray(arr)
    nd = arr.ndim
    if scale is not None:
        img.SetSpacing([float(v) for v in list(scale)[-nd:][::-1]])
    if translate is not None:
        img.SetOrigin([float(v) for v in list(translate)[-nd:][::-1]])
    if rotate is not None:
        r = np.asarray(rotate, float)[-nd:, -nd:][::-1, ::-1]  # napari (z, y, x) -> SimpleITK (x, y, z)
        img.SetDirection(r.ravel().tolist())
    return img


def points_to_index(points, scale, translate, shape) -> list[tuple[int, ...]]:
    """Napari world points ``(z, y, x)`` (mm) -> numpy indexes of a layer (rounded, in bounds)."""
    pts = np.atleast_2d(np.asarray(points, float))
    nd = len(shape)
    if pts.size == 0:
        return []
    idx = np.rint((pts[:, -nd:] - np.asarray(translate)[-nd:]) / np.asarray(scale)[-nd:]).astype(int)
    out = []
    for p in idx:
        if not all(0 <= i < n for i, n in zip(p, shape, strict=True)):
            raise ValueError(f"seed point {tuple(int(i) for i in p)} (index) is outside the image "
                             f"(shape {tuple(shape)})")
        out.append(tuple(int(i) for i in p))
    return out


def threshold_layer(image: sitk.Image, lower: float, upper: float, name: str = "threshold") -> tuple:
    """:func:`medlab.segmentation.threshold` as a labels layer."""
    mask = medlab.segmentation.threshold(image, lower=lower, upper=upper)
    return image_to_layer(mask, name, "labels")


def region_growing_layer(image: sitk.Image, seeds_index, lower: float, upper: float,
                         connectivity: str = "face", name: str = "region") -> tuple:
    """:func:`medlab.segmentation.connected_threshold` from seeds (numpy indexes) as a labels layer."""
    if not seeds_index:
        raise ValueError("add at least one point to the seeds layer")
    region = medlab.segmentation.connected_threshold(image, seeds_index=list(seeds_index), lower=lower,
                                                      upper=upper, connectivity=connectivity)
    return image_to_layer(region, name, "labels")


def registration_blend_layers(fixed: sitk.Image, moving: sitk.Image, *, mode: str = "checkerboard",
                              alpha: float = 0.5, tiles: int = 4, register: bool = False,
                              transform: str = "rigid", metric: str | None = None, levels=(4, 2, 1),
                              iterations: int = 100, progress=None) -> tuple[list[tuple], object]:
    """The moving image on the fixed grid (registered first if asked) and the fused view.

    Returns ``(layers, result)``: a ``'<moving> on fixed'`` image layer and a ``'blend'`` image
    layer (:mod:`medlab.fusion` on 'auto' windows), and the RegistrationResult (or None).
    """
    mode = check_choice("mode", mode, BLEND_MODES)
    result = None
    if register:
        result = medlab.registration.register(fixed, moving, transform=transform, metric=metric, levels=levels,
                                              iterations=iterations, progress=progress)
        on_fixed = result.resampled
    else:
        on_fixed = medlab.registration.resample(moving, fixed)
    win = {"window1": "auto", "window2": "auto"}
    if mode == "alpha":
        fused = medlab.fusion.alpha_blend(fixed, on_fixed, alpha, **win)
    elif mode == "checkerboard":
        t = [min(int(tiles), n) for n in fixed.GetSize()[::-1]]
        if len(t) == 3:
            t[0] = 1
        fused = medlab.fusion.checkerboard(fixed, on_fixed, tiles=tuple(t), **win)
    else:
        fused = medlab.fusion.difference(fixed, on_fixed, **win)
    limits = (-1.0, 1.0) if mode == "difference" else (0.0, 1.0)
    layers = [image_to_layer(on_fixed, "moving on fixed", visible=False),
              image_to_layer(fused, f"blend ({mode})", contrast_limits=limits)]
    return layers, result


def model_layers(trained, image: sitk.Image, *, grad_cam: bool = True) -> tuple[list[tuple], dict]:
    """Run a :class:`medlab.models.TrainedModel` on an image: labels (segmentation) or class
    probabilities (classification), and its Grad-CAM as an image layer.

    Returns ``(layers, info)`` with ``info['probabilities']`` for a classifier.
    """
    import medlab.models

    layers, info = [], {}
    if trained.task == "segmentation":
        labels = medlab.models.segment(trained, image)
        layers.append(image_to_layer(labels, "model labels", "labels"))
    else:
        probs = medlab.models.classify(trained, image)[0]
        info["probabilities"] = {c: float(p) for c, p in zip(trained.classes, probs, strict=True)}
    if grad_cam:
        cam = medlab.models.grad_cam(trained, image)
        layers.append(image_to_layer(cam, "Grad-CAM", colormap="inferno", blending="additive", opacity=0.5,
                                     contrast_limits=(0.0, 1.0)))
    return layers, info
