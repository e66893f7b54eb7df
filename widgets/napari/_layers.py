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

import medlab.enhance
import medlab.fusion
import medlab.io
import medlab.registration
import medlab.segmentation
from medlab._options import check_choice

__all__ = [
    "AXIS_LABELS_3D",
    "blend_layer",
    "default_contrast",
    "guess_modality",
    "image_to_layer",
    "layer_meta_to_image",
    "layer_to_image",
    "mask_summary",
    "model_layers",
    "rgb_to_grey",
    "pet_tumour_layer",
    "points_to_index",
    "region_growing_layer",
    "registration_blend_layers",
    "threshold_layer",
]

BLEND_MODES = ("alpha", "checkerboard", "difference")

#: Anatomical names of a 3D layer's axes after the reorientation to LPS, napari (z, y, x) order:
#: each axis runs from the first to the second letter (inferior to superior, anterior to
#: posterior, patient right to patient left).
AXIS_LABELS_3D = ("I→S", "A→P", "R→L")
#: The default window of a CT layer: medlab.enhance's soft-tissue preset (HU), not the data range.
CT_DEFAULT_PRESET = "abdomen"
#: The default display range of a PET layer in SUV (the usual clinical 0-5 SUV grey scale; the
#: 1-99th percentiles of a mostly empty PET would saturate every lesion).
PET_DEFAULT_SUV = (0.0, 5.0)


def _axes(ndim: int) -> tuple[tuple, tuple]:
    """``(axis_labels, units)`` of a layer with ``ndim`` dimensions (2D, 3D, or 4D with a
    volume axis first): mm on every spatial axis."""
    if ndim == 2:
        return ("y", "x"), ("mm", "mm")
    if ndim == 3:
        return AXIS_LABELS_3D, ("mm",) * 3
    return ("volume", *AXIS_LABELS_3D), ("pixel", "mm", "mm", "mm")


def guess_modality(name: str | None = None, data: np.ndarray | None = None) -> str | None:
    """'CT', 'PT' or 'MR' from a file or series name (a ``CT``/``PET``/``PT``/``MR`` word), else
    'CT' when the intensities look like Hounsfield units (air at -1000, integer-valued, up to at
    least bone), else None."""
    import re

    if name:
        words = {w.upper() for w in re.split(r"[^A-Za-z0-9]+", str(name)) if w}
        for key, modality in (("CT", "CT"), ("PET", "PT"), ("PT", "PT"), ("MR", "MR"), ("MRI", "MR")):
            if key in words:
                return modality
    if data is not None and np.asarray(data).ndim >= 2:
        arr = np.asarray(data)
        sample = arr[tuple(slice(None, None, max(1, n // 64)) for n in arr.shape)]
        if sample.size and -1100 <= float(sample.min()) <= -900 and float(sample.max()) >= 300 \
                and np.all(sample == np.round(sample)):
            return "CT"
    return None


def default_contrast(data: np.ndarray, modality: str | None = None) -> tuple[float, float] | None:
    """The contrast limits a layer opens with: the soft-tissue window for CT (HU), SUV 0-5 for PET
    ('PT'), the 1-99th percentile window (:func:`medlab.enhance.resolve_window` 'auto') for
    anything else, None for a constant image (napari's own)."""
    arr = np.asarray(data)
    if modality == "CT":
        p = medlab.enhance.presets()[CT_DEFAULT_PRESET]
        return medlab.enhance.window_bounds(p.window, p.level)
    if modality == "PT":
        return PET_DEFAULT_SUV
    if arr.ndim not in (2, 3) or arr.dtype.kind not in "iuf":
        return None
    sample = arr[tuple(slice(None, None, max(1, n // 96)) for n in arr.shape)]
    window, level = medlab.enhance.resolve_window(np.ascontiguousarray(sample))
    if not window > 0:
        return None
    return medlab.enhance.window_bounds(window, level)


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


def image_to_layer(img: sitk.Image, name: str, layer_type: str = "image", *, modality: str | None = None,
                   **kwargs) -> tuple:
    """A ``sitk.Image`` as a napari LayerDataTuple (reoriented to LPS, geometry as scale/translate,
    units mm, anatomical axis labels). An image layer without ``contrast_limits`` gets
    :func:`default_contrast` for ``modality`` (guessed from the intensities when None)."""
    img = _lps(img)
    data = sitk.GetArrayFromImage(img)
    if layer_type == "labels" and data.dtype.kind not in "iu":
        data = data.astype(np.int32)
    meta = {"spacing_mm": img.GetSpacing(), "origin_mm": img.GetOrigin(), "direction": img.GetDirection()}
    labels, units = _axes(img.GetDimension())
    opts = {"name": name, **geometry(img), "axis_labels": labels, "units": units}
    if img.GetNumberOfComponentsPerPixel() in (3, 4) and layer_type == "image":
        opts["rgb"] = True
    elif layer_type == "image" and "contrast_limits" not in kwargs:
        modality = modality or guess_modality(None, data)
        limits = default_contrast(data, modality)
        if limits is not None:
            opts["contrast_limits"] = limits
        if modality:
            meta["modality"] = modality
    opts.update(metadata={**meta, **kwargs.pop("metadata", {})}, **kwargs)
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


def layer_meta_to_image(data, meta: dict) -> sitk.Image:
    """A layer's array and its attributes (napari's writer ``meta``, or ``layer.as_layer_data_tuple()[1]``:
    ``scale``, ``translate``, ``rotate``, ``shear``, ``affine``) as a ``sitk.Image`` whose spacing,
    origin and direction give every voxel napari's world position (mm). A 4D layer is refused
    (write its volumes one by one)."""
    arr = np.asarray(data)
    nd = arr.ndim
    if nd not in (2, 3):
        raise ValueError(f"the layer must be 2D or 3D; got data of shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    from napari.utils.transforms import Affine

    t = Affine(scale=meta.get("scale"), translate=meta.get("translate"), rotate=meta.get("rotate"),
               shear=meta.get("shear"), ndim=nd)
    extra = meta.get("affine")
    if extra is not None:
        extra = extra.affine_matrix if hasattr(extra, "affine_matrix") else np.asarray(extra, float)
        full = extra[-nd - 1:, -nd - 1:] @ t.affine_matrix
    else:
        full = t.affine_matrix
    lin = full[:nd, :nd]  # (z, y, x) order: world = lin @ index + offset
    spacing = np.linalg.norm(lin, axis=0)
    if np.any(spacing <= 0):
        raise ValueError("the layer's transform is degenerate (a zero scale)")
    direction = (lin / spacing)[::-1, ::-1]  # to SimpleITK (x, y, z)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([float(v) for v in spacing[::-1]])
    img.SetOrigin([float(v) for v in full[:nd, nd][::-1]])
    img.SetDirection(direction.ravel().tolist())
    return img


#: The intensity unit shown after a segmentation, by modality.
UNITS = {"CT": "HU", "PT": "SUV"}

def rgb_to_grey(data) -> np.ndarray:
    """An RGB(A) layer's array ``(..., 3 or 4)`` as grey float32 (:func:`medlab.io.to_gray`, the
    BT.601 luma ``medlab.io.read(as_gray=True)`` uses); a grey array is returned unchanged."""
    return np.asarray(medlab.io.to_gray(np.asarray(data)))


def mask_summary(mask, image: sitk.Image, modality: str | None = None) -> dict:
    """Size and mean intensity of a mask (numpy, the image's grid): ``voxels``, ``volume_ml`` (3D)
    or ``area_mm2`` (2D), ``mean`` (in the image's unit: HU for CT, SUV for PET), ``unit``, and a
    one-line ``text``."""
    m = np.asarray(mask) > 0
    voxels = int(m.sum())
    cell = float(np.prod(image.GetSpacing()))  # mm³ (mm² in 2D)
    unit = UNITS.get(modality or "", "")
    out = {"voxels": voxels, "unit": unit}
    size = voxels * cell
    if m.ndim == 3:
        out["volume_ml"] = size / 1000.0
        size_text = f"{size / 1000.0:.1f} mL"
    else:
        out["area_mm2"] = size
        size_text = f"{size:.1f} mm²"
    if voxels:
        out["mean"] = float(sitk.GetArrayViewFromImage(image)[m].mean())
        size_text += f", mean {out['mean']:.1f}" + (f" {unit}" if unit else "")
    out["text"] = f"{size_text} ({voxels} voxels)" if voxels else "empty: no voxel in range (check lower/upper)"
    return out


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


def pet_tumour_layer(pet: sitk.Image, seed_index, method: str = "otsu_box", name: str = "PET tumour") -> tuple:
    """:func:`medlab.segmentation.segment_pet_tumour` from one seed (numpy index) as a labels layer.

    Returns ``(layer, info)``: ``info`` is the method's (``suvmax``, ``threshold`` in SUV and the
    plausibility ``verdict``); no warning is issued here, the caller shows the verdict."""
    mask, info = medlab.segmentation.segment_pet_tumour(pet, seed_index=tuple(seed_index), method=method,
                                                        return_info=True, warn=False)
    return image_to_layer(mask, name, "labels"), info


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
    layers = [image_to_layer(on_fixed, "moving on fixed", visible=False),
              blend_layer(fixed, on_fixed, mode=mode, alpha=alpha, tiles=tiles, name=f"blend ({mode})")]
    return layers, result


def blend_layer(fixed: sitk.Image, on_fixed: sitk.Image, *, mode: str = "checkerboard", alpha: float = 0.5,
                tiles: int = 4, name: str = "blend") -> tuple:
    """The fused view of ``fixed`` and ``on_fixed`` (already on the fixed grid) as an image layer:
    :mod:`medlab.fusion` alpha / checkerboard (``tiles`` per in-plane axis) / difference on 'auto'
    windows. Cheap: the registration blend widget re-blends its cached result with it."""
    mode = check_choice("mode", mode, BLEND_MODES)
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
    return image_to_layer(fused, name, contrast_limits=limits, metadata={"mode": mode})


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
        grad_cam = grad_cam and bool(np.isfinite(probs).all())  # a NaN row: nothing was classified
    if grad_cam:
        cam = medlab.models.grad_cam(trained, image)
        layers.append(image_to_layer(cam, "Grad-CAM", colormap="inferno", blending="additive", opacity=0.5,
                                     contrast_limits=(0.0, 1.0)))
    return layers, info
