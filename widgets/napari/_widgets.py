"""napari dock widgets (magicgui). Each one reads its layers into ``sitk.Image`` s, calls the pure
functions of :mod:`._layers` (i.e. medlab), and returns or adds layers. napari itself is only
named in annotations (resolved by magicgui inside napari)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    layer_to_image,
    points_to_index,
    region_growing_layer,
    registration_blend_layers,
    threshold_layer,
)

if TYPE_CHECKING:  # napari resolves these annotations at run time (magicgui imports them)
    import napari

__all__ = [
    "ModelRunnerWidget",
    "region_growing_widget",
    "registration_blend_widget",
    "threshold_widget",
]

_NUMBER = {"widget_type": "FloatSpinBox", "min": -1e9, "max": 1e9, "step": 1.0}


def _image(layer):
    return layer_to_image(layer.data, layer.scale, layer.translate)


@magic_factory(call_button="threshold", lower=_NUMBER, upper=_NUMBER)
def threshold_widget(image: napari.layers.Image, lower: float = 300.0,
                     upper: float = 3000.0) -> napari.types.LayerDataTuple:
    """Voxels with ``lower <= value <= upper`` (medlab.segmentation.threshold) as a labels layer."""
    return threshold_layer(_image(image), lower, upper, name=f"{image.name} threshold")


@magic_factory(call_button="grow region", lower=_NUMBER, upper=_NUMBER,
               connectivity={"choices": ["face", "full"]})
def region_growing_widget(image: napari.layers.Image, seeds: napari.layers.Points,
                          lower: float = -100.0, upper: float = 100.0,
                          connectivity: str = "face") -> napari.types.LayerDataTuple:
    """The region connected to the points of ``seeds`` within [lower, upper]
    (medlab.segmentation.connected_threshold)."""
    world = seeds.data * seeds.scale + seeds.translate  # the points in mm, (z, y, x)
    seeds_index = points_to_index(world, image.scale, image.translate, image.data.shape)
    return region_growing_layer(_image(image), seeds_index, lower, upper, connectivity,
                                name=f"{image.name} region")


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

    fimg, mimg = _image(fixed), _image(moving)

    def work():
        layers, _ = registration_blend_layers(fimg, mimg, mode=mode, alpha=alpha, tiles=tiles, register=register,
                                              transform=transform, metric=metric, iterations=iterations)
        return layers

    worker = create_worker(work)
    worker.returned.connect(lambda layers: _show(viewer, layers))
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

        from .._runner import device_text
        from . import _model_process

        super().__init__()
        self._viewer = napari_viewer
        self.info: dict = {}  # the last run's extra results (a classifier's probabilities)
        self.device = _model_process.device_report()
        self._image = create_widget(annotation="napari.layers.Image", label="image")
        self._model = ComboBox(choices=medlab.models.list_pretrained(), value="hc18_unet", label="model")
        self._cam = CheckBox(value=True, text="Grad-CAM")
        self._device = Label(value=device_text(self.device))
        self._run = PushButton(text="run")
        self._result = Label(value="")
        self._run.changed.connect(self.run)
        self.extend([self._device, self._image, self._model, self._cam, self._run, self._result])

    def run(self):
        """Run the selected model on the image layer, on a thread worker (which waits for the
        model process); the layers are added when it returns. Returns the worker (started)."""
        from . import _model_process

        layer = self._image.value
        if layer is None:
            raise ValueError("choose an image layer")
        from napari.qt.threading import create_worker

        name, image, cam = self._model.value, _image(layer), self._cam.value
        worker = create_worker(_model_process.run_model, name, image, grad_cam=cam)
        worker.returned.connect(self._shown)
        self._run.enabled = False
        self._result.value = f"running {name}…"
        worker.finished.connect(lambda: setattr(self._run, "enabled", True))
        worker.start()
        return worker

    def _shown(self, result) -> None:
        layers, info = result
        _show(self._viewer, layers)
        self.info = info
        if "probabilities" in info:
            self._result.value = ", ".join(f"{c} {p:.3f}" for c, p in info["probabilities"].items())
        else:
            self._result.value = f"{self._model.value}: labels added"
