"""napari dock widgets (magicgui). Each one reads its layers into ``sitk.Image`` s, calls the pure
functions of :mod:`._layers` (i.e. medlab), and returns or adds layers. napari itself is only
named in annotations (resolved by magicgui inside napari)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui import magic_factory
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    PushButton,
    create_widget,
)

from ._layers import (
    BLEND_MODES,
    layer_meta_to_image,
    mask_summary,
    pet_tumour_layer,
    points_to_index,
    region_growing_layer,
    registration_blend_layers,
    rgb_to_grey,
    threshold_layer,
)

if TYPE_CHECKING:  # napari resolves these annotations at run time (magicgui imports them)
    import napari

__all__ = [
    "ModelRunnerWidget",
    "notify_error",
    "pet_tumour_widget",
    "region_growing_widget",
    "registration_blend_widget",
    "threshold_widget",
    "window_widget",
]

_NUMBER = {"widget_type": "FloatSpinBox", "min": -1e9, "max": 1e9, "step": 1.0}
_KEPT = ("dicom_source", "series_uid", "modality")  # metadata a result layer inherits from its image


def _image(layer):
    if layer is None:
        raise ValueError("choose an image layer (open an image first: File > Open)")
    if getattr(layer, "rgb", False):
        raise ValueError(f"'{layer.name}' is an RGB (colour) layer; this tool needs a grey image")
    if layer.data.ndim not in (2, 3):
        raise ValueError(f"'{layer.name}' has {layer.data.ndim} dimensions; this tool needs one 2D or 3D image "
                         "(for a 4D series, save or pick one volume)")
    return layer_meta_to_image(layer.data, layer.as_layer_data_tuple()[1])


def notify_error(tool: str, exc: BaseException, hint: str = "") -> str:
    """Show napari's error notification: the tool, what went wrong and what to do. Returns the text."""
    from napari.utils.notifications import show_error

    text = f"{tool}: {exc}" + (f". {hint}" if hint else "")
    show_error(text)
    return text


def _notify_info(text: str) -> None:
    from napari.utils.notifications import show_info

    show_info(text)


def _free_name(viewer, base: str) -> str:
    """``base``, or ``base [2]``, ``base [3]``...: a re-run never replaces a layer (nor its edits)."""
    if viewer is None or base not in viewer.layers:
        return base
    k = 2
    while f"{base} [{k}]" in viewer.layers:
        k += 1
    return f"{base} [{k}]"


def _result(viewer, image_layer, layer: tuple, image) -> tuple:
    """A result labels layer named freely, with the source's DICOM metadata and a summary
    (voxels, mL or mm², mean in the image's unit) shown as a notification and kept in metadata."""
    from ._view import radiological

    radiological(viewer)
    data, kwargs, kind = layer
    kwargs["name"] = _free_name(viewer, kwargs["name"])
    meta = image_layer.metadata
    kwargs["metadata"].update({k: meta[k] for k in _KEPT if meta.get(k)})
    summary = mask_summary(data, image, meta.get("modality"))
    kwargs["metadata"]["summary"] = summary
    _notify_info(f"{kwargs['name']}: {summary['text']}")
    return data, kwargs, kind


def _check_range(lower: float, upper: float) -> None:
    if lower > upper:
        raise ValueError(f"lower ({lower:g}) is above upper ({upper:g}); set lower <= upper")


@magic_factory(call_button="threshold", lower=_NUMBER, upper=_NUMBER)
def threshold_widget(viewer: napari.Viewer, image: napari.layers.Image, lower: float = 300.0,
                     upper: float = 3000.0) -> napari.types.LayerDataTuple:
    """Voxels with ``lower <= value <= upper`` (medlab.segmentation.threshold) as a new labels
    layer (a re-run adds another: painted edits are never replaced); its volume and mean value are
    shown. A failure is shown as a notification saying what to do."""
    try:
        _check_range(lower, upper)
        img = _image(image)
        return _result(viewer, image, threshold_layer(img, lower, upper, name=f"{image.name} threshold"), img)
    except Exception as exc:  # noqa: BLE001 - shown to the user, nothing is added
        notify_error("Threshold", exc, "Nothing was added")
        return None


@magic_factory(call_button="grow region", lower=_NUMBER, upper=_NUMBER,
               connectivity={"choices": ["face", "full"]})
def region_growing_widget(viewer: napari.Viewer, image: napari.layers.Image, seeds: napari.layers.Points,
                          lower: float = -100.0, upper: float = 100.0,
                          connectivity: str = "face") -> napari.types.LayerDataTuple:
    """The region connected to the points of ``seeds`` within [lower, upper]
    (medlab.segmentation.connected_threshold) as a new labels layer, with its volume (mL) and mean
    value shown: a region that leaked into its surroundings shows at once as a large volume."""
    try:
        _check_range(lower, upper)
        img = _image(image)
        seeds_index = _seed_indexes(seeds, image)
        layer = region_growing_layer(img, seeds_index, lower, upper, connectivity, name=f"{image.name} region")
        return _result(viewer, image, layer, img)
    except Exception as exc:  # noqa: BLE001 - shown to the user, nothing is added
        notify_error("Region growing", exc, "Nothing was added")
        return None


def _seed_indexes(seeds, image) -> list[tuple[int, ...]]:
    if seeds is None or len(seeds.data) == 0:
        raise ValueError("choose a Points layer with a seed (Layers > New Points layer, then click inside "
                         "the structure)")
    world = np.asarray([seeds.data_to_world(p) for p in seeds.data]).reshape(-1, seeds.ndim)  # mm, (z, y, x)
    try:
        return points_to_index(world, image.scale, image.translate, image.data.shape)
    except ValueError as exc:
        raise ValueError(f"{exc}; move the point into '{image.name}' (or pick the image it was "
                         "clicked on)") from None


@magic_factory(call_button="segment lesion", method={"choices": ["otsu_box", "percent_suvmax", "suv"]})
def pet_tumour_widget(viewer: napari.Viewer, pet: napari.layers.Image, seed: napari.layers.Points,
                      method: str = "otsu_box") -> napari.types.LayerDataTuple:
    """One-click PET lesion (medlab.segmentation.segment_pet_tumour) from the last point of
    ``seed``, as a new labels layer with its volume and mean SUV; an implausible result (low
    contrast, a handful of voxels, at the border, too large, a hotter structure nearby) is shown
    as a warning notification with the reasons."""
    from napari.utils.notifications import show_warning

    try:
        img = _image(pet)
        seed_index = _seed_indexes(seed, pet)[-1]
        layer, info = pet_tumour_layer(img, seed_index, method, name=f"{pet.name} lesion")
        data, kwargs, kind = _result(viewer, pet, layer, img)
        verdict = info["verdict"]
        kwargs["metadata"].update(suvmax=float(info["suvmax"]), plausible=bool(verdict.plausible),
                                  reasons=list(verdict.reasons))
        if not verdict.plausible:
            show_warning(f"{kwargs['name']}: implausible result: {'; '.join(verdict.reasons)}. Check the seed "
                         "(on the lesion?), try another method, or correct the labels by hand")
        return data, kwargs, kind
    except Exception as exc:  # noqa: BLE001 - shown to the user, nothing is added
        notify_error("PET lesion", exc, "Nothing was added")
        return None


@magic_factory(auto_call=True, preset={"choices": ["abdomen", "mediastinum", "lung", "bone", "brain", "subdural",
                                                   "stroke", "liver", "auto"]})
def window_widget(image: napari.layers.Image, preset: str = "abdomen") -> None:
    """Set an image layer's contrast to a :func:`medlab.enhance.presets` window (CT, in HU;
    'auto': the 1-99th percentile window of the data)."""
    from ._view import window_limits

    if image is None:
        return
    try:
        low, high = window_limits(preset, np.asarray(image.data) if preset == "auto" else None)
        lo_range, hi_range = image.contrast_limits_range
        image.contrast_limits_range = (min(lo_range, low), max(hi_range, high))
        image.contrast_limits = (low, high)
    except Exception as exc:  # noqa: BLE001
        notify_error("Window", exc)


def _show(viewer, layers) -> None:
    """Add (or replace, by name) LayerDataTuples in the viewer."""
    for data, kwargs, kind in layers:
        if kwargs["name"] in viewer.layers:
            viewer.layers.remove(kwargs["name"])
        getattr(viewer, f"add_{kind}")(data, **kwargs)


@magic_factory(call_button="blend", mode={"choices": list(BLEND_MODES)},
               alpha={"widget_type": "FloatSlider", "min": 0.0, "max": 1.0, "step": 0.05},
               tiles={"min": 1, "max": 32}, transform={"choices": ["rigid", "similarity", "affine"]},
               metric={"choices": ["mattes", "correlation", "mean_squares"]}, iterations={"min": 1, "max": 1000})
def registration_blend_widget(viewer: napari.Viewer, fixed: napari.layers.Image, moving: napari.layers.Image,
                              mode: str = "checkerboard", alpha: float = 0.5, tiles: int = 6,
                              register: bool = False, transform: str = "rigid", metric: str = "mattes",
                              iterations: int = 100):
    """The moving image resampled on the fixed grid (registered first when ``register`` is on:
    medlab.registration.register), blended with medlab.fusion.

    The work runs on a napari thread worker (the viewer stays responsive during a registration);
    the layers are added when it returns. Returns the worker (started).
    """
    from napari.qt.threading import create_worker

    try:
        fimg, mimg = _image(fixed), _image(moving)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        notify_error("Registration blend", exc, "Choose two grey image layers")
        return None

    def work():
        layers, _ = registration_blend_layers(fimg, mimg, mode=mode, alpha=alpha, tiles=tiles, register=register,
                                              transform=transform, metric=metric, iterations=iterations)
        return layers

    worker = create_worker(work, _ignore_errors=True)  # errors go to the notification below
    worker.returned.connect(lambda layers: _show(viewer, layers))
    worker.errored.connect(lambda exc: notify_error("Registration blend", exc))
    worker.start()
    return worker


class ModelRunnerWidget(Container):
    """Pick a pretrained model (medlab.models), see where it runs, run it on an image layer:
    labels (U-Net) or class probabilities (CNN), and Grad-CAM as an image layer.

    The models run in a worker process (:mod:`._model_process`: TensorFlow and napari's OpenGL
    canvas cannot share one process here); the device line is that process's
    :func:`medlab.models.device_report`.
    """

    def __init__(self, napari_viewer):
        import medlab.models

        super().__init__()
        self._viewer = napari_viewer
        self.info: dict = {}  # the last run's extra results (a classifier's probabilities)
        self.device: dict | None = None  # filled by a background check: opening the dock never waits
        self._image = create_widget(annotation="napari.layers.Image", label="image")
        self._model = ComboBox(choices=medlab.models.list_pretrained(), value="hc18_unet", label="model")
        self._cam = CheckBox(value=True, text="Grad-CAM")
        self._device = Label(value="checking where models run…")
        self._run = PushButton(text="run")
        self._result = Label(value="")
        self._run.changed.connect(self.run)
        self.extend([self._device, self._image, self._model, self._cam, self._run, self._result])
        self._device_worker = self._check_device()

    def _check_device(self):
        """Ask the model process where it runs, on a thread worker (starting that process and
        importing Keras takes seconds)."""
        from napari.qt.threading import create_worker

        from . import _model_process

        worker = create_worker(_model_process.device_report, _ignore_errors=True)
        worker.returned.connect(self._device_shown)
        worker.errored.connect(lambda exc: setattr(self._device, "value", "device unknown (see the notification)"))
        worker.errored.connect(lambda exc: notify_error("Model runner", exc))
        worker.start()
        return worker

    def _device_shown(self, report: dict) -> None:
        from .._runner import device_text

        self.device = report
        text = device_text(report)
        short = text.split(" · ")[0]
        self._device.value = short if len(short) <= 48 else short[:47] + "…"
        self._device.tooltip = text  # the whole line (CPU model, backend and Keras versions) on hover

    def run(self):
        """Run the selected model on the image layer, on a thread worker (which waits for the
        model process); the layers are added when it returns. An RGB layer is converted to grey
        (the pretrained models take grey images). A failure is shown as a notification and in the
        status line. Returns the worker (started), or None when nothing could start."""
        from napari.qt.threading import create_worker

        from . import _model_process

        layer = self._image.value
        try:
            if layer is None:
                raise ValueError("choose an image layer (open an image first: File > Open)")
            attrs = layer.as_layer_data_tuple()[1]
            data = layer.data
            if getattr(layer, "rgb", False):
                data = rgb_to_grey(data)
                attrs = {**attrs, "scale": tuple(attrs["scale"])[-data.ndim:],
                         "translate": tuple(attrs["translate"])[-data.ndim:]}
            image = layer_meta_to_image(data, attrs)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self._result.value = f"not run: {exc}"
            notify_error("Model runner", exc)
            return None
        name, cam = self._model.value, self._cam.value
        worker = create_worker(_model_process.run_model, name, image, grad_cam=cam, _ignore_errors=True)
        worker.returned.connect(self._shown)
        worker.errored.connect(self._failed)
        self._run.enabled = False
        self._result.value = f"running {name}…"
        worker.finished.connect(lambda: setattr(self._run, "enabled", True))
        worker.start()
        return worker

    def _failed(self, exc: BaseException) -> None:
        self._result.value = f"{self._model.value} failed: {exc}"
        notify_error("Model runner", exc)

    def _shown(self, result) -> None:
        from napari.utils.notifications import show_warning

        layers, info = result
        _show(self._viewer, layers)
        self.info = info
        for text in info.get("warnings", ()):  # e.g. medlab.models' ModelInputWarning: said, not hidden
            show_warning(f"{self._model.value}: {text}")
        if "probabilities" in info:
            self._result.value = ", ".join(f"{c} {p:.3f}" for c, p in info["probabilities"].items())
        else:
            self._result.value = f"{self._model.value}: labels added"
