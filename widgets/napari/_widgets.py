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
    rgb_to_grey,
    threshold_layer,
)

if TYPE_CHECKING:  # napari resolves these annotations at run time (magicgui imports them)
    import napari

__all__ = [
    "ModelRunnerWidget",
    "RegistrationBlendWidget",
    "SeriesPickerWidget",
    "notify_error",
    "pet_tumour_widget",
    "region_growing_widget",
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


#: Delay (ms) between the last change of the threshold range and the preview being redrawn.
PREVIEW_DELAY_MS = 150


class _ThresholdPreview:
    """The live part of the Threshold dock: a range slider kept in step with lower/upper, an Otsu
    button (:func:`medlab.segmentation.auto_threshold`) and, while 'live preview' is ticked, one
    '<image> threshold preview' labels layer redrawn :data:`PREVIEW_DELAY_MS` after the last
    change, with its volume (mL) and mean value (HU, SUV) in the dock. With ``kind='region'``
    (the Region growing dock) the preview is the region grown from the seeds layer's points
    (redrawn when points are added or moved too) and there is no Otsu button."""

    def __init__(self, widget, kind: str = "threshold"):
        from magicgui.widgets import FloatRangeSlider
        from qtpy.QtCore import QTimer

        self.widget = widget
        self.kind = kind
        self._seeds = None  # the seeds layer whose point changes redraw the region preview
        self.range = FloatRangeSlider(min=-1e4, max=1e4, value=(widget.lower.value, widget.upper.value),
                                      step=1.0, label="range", tracking=True)
        self.live = CheckBox(value=True, text="live preview")
        self.otsu = PushButton(text="Otsu")
        self.stats = Label(value="")
        self._syncing = False
        self._cache = None  # (layer, data id, sitk image)
        self._closed = False
        self._timer = QTimer(widget.native)  # goes with the dock
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.update)
        at = list(widget).index(widget.upper) + 1
        extra = (self.range, self.otsu, self.live, self.stats) if kind == "threshold" else \
            (self.range, self.live, self.stats)
        for k, w in enumerate(extra):
            widget.insert(at + k, w)
        if kind == "region":
            widget.seeds.changed.connect(self._seeds_changed)
            widget.connectivity.changed.connect(self.schedule)
            self._seeds_changed()
        widget.image.changed.connect(self._image_changed)
        widget.lower.changed.connect(self._bounds_changed)
        widget.upper.changed.connect(self._bounds_changed)
        self.range.changed.connect(self._slider_changed)
        self.live.changed.connect(self.schedule)
        self.otsu.changed.connect(self.apply_otsu)
        widget.called.connect(lambda _value=None: self.drop())
        widget.native.destroyed.connect(self._close)
        self._image_changed()

    def _close(self, _obj=None) -> None:
        """The dock was deleted: no more redraws (the seeds layer may outlive it)."""
        self._closed = True
        if self._seeds is not None:
            self._seeds.events.data.disconnect(self.schedule)
            self._seeds = None

    def _seeds_changed(self, _value=None) -> None:
        if self._seeds is not None:
            self._seeds.events.data.disconnect(self.schedule)
        self._seeds = self.widget.seeds.value
        if self._seeds is not None:
            self._seeds.events.data.connect(self.schedule)
        self.schedule()

    def _viewer(self):
        from ._view import current_viewer

        try:
            viewer = self.widget.viewer.value  # napari binds the viewer the dock is in
        except Exception:  # noqa: BLE001 - not docked yet
            viewer = None
        return viewer or current_viewer()

    def image(self):
        """The chosen layer as a ``sitk.Image`` (converted once per layer data)."""
        layer = self.widget.image.value
        if self._cache is None or self._cache[0] is not layer or self._cache[1] != id(layer.data):
            self._cache = (layer, id(layer.data), _image(layer))
        return self._cache[2]

    def _image_changed(self, _value=None) -> None:
        layer = self.widget.image.value
        if layer is not None and np.asarray(layer.data).size and not getattr(layer, "rgb", False):
            data = np.asarray(layer.data)
            lo, hi = float(data.min()), float(data.max())
            if hi > lo:
                self._syncing = True
                try:
                    self.range.min, self.range.max = -1e9, 1e9  # never between old and new bounds
                    self.range.min, self.range.max = lo, hi
                    self.range.value = self._clip(self.widget.lower.value, self.widget.upper.value)
                finally:
                    self._syncing = False
        self.schedule()

    def _clip(self, lower: float, upper: float) -> tuple[float, float]:
        lo, hi = self.range.min, self.range.max
        a, b = min(max(lower, lo), hi), min(max(upper, lo), hi)
        return (a, b) if a <= b else (b, a)

    def _bounds_changed(self, _value=None) -> None:
        if not self._syncing:
            self._syncing = True
            try:
                self.range.value = self._clip(self.widget.lower.value, self.widget.upper.value)
            finally:
                self._syncing = False
        self.schedule()

    def _slider_changed(self, value) -> None:
        if not self._syncing:
            self._syncing = True
            try:
                self.widget.lower.value, self.widget.upper.value = float(value[0]), float(value[1])
            finally:
                self._syncing = False
        self.schedule()

    def schedule(self, _value=None) -> None:
        """Redraw the preview :data:`PREVIEW_DELAY_MS` after the last change (debounced)."""
        if self._closed:
            return
        if self.live.value:
            self._timer.start()
        else:
            self._timer.stop()
            self.drop()

    def apply_otsu(self, _value=None) -> float | None:
        """Set lower to the image's Otsu threshold (foreground above it) and upper to its maximum."""
        import medlab.segmentation

        try:
            img = self.image()
            t = medlab.segmentation.auto_threshold(img, "otsu")
            hi = float(np.asarray(self.widget.image.value.data).max())
            self.widget.lower.value, self.widget.upper.value = float(t), hi
            return float(t)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            notify_error("Otsu", exc, "Choose a grey image that is not constant")
            return None

    def _layer(self):
        viewer = self._viewer()
        if viewer is None:
            return None, None
        name = f"{self.widget.image.value.name} {self.kind} preview"
        return viewer, (viewer.layers[name] if name in viewer.layers else None)

    def update(self) -> dict | None:
        """Draw the preview now; returns the mask summary (None when nothing could be drawn)."""
        if self._closed:
            return None
        layer = self.widget.image.value
        if layer is None or not self.live.value:
            return None
        try:
            _check_range(self.widget.lower.value, self.widget.upper.value)
            img = self.image()
            lower, upper, name = self.widget.lower.value, self.widget.upper.value, f"{layer.name} {self.kind} preview"
            if self.kind == "region":
                seeds = _seed_indexes(self.widget.seeds.value, layer)
                data, kwargs, _ = region_growing_layer(img, seeds, lower, upper, self.widget.connectivity.value,
                                                       name=name)
            else:
                data, kwargs, _ = threshold_layer(img, lower, upper, name=name)
        except Exception as exc:  # noqa: BLE001 - a preview says why in the dock, no pop-up per keystroke
            self.stats.value = f"no preview: {exc}"[:90]
            return None
        summary = mask_summary(data, img, layer.metadata.get("modality"))
        self.stats.value = f"preview: {summary['text']}"
        viewer, preview = self._layer()
        if viewer is not None:
            if preview is None:
                kwargs["metadata"].update(preview=True, surface_in_3d=False)  # redrawn often: stays a volume
                active = viewer.layers.selection.active
                viewer.add_labels(data, **kwargs)
                viewer.layers.selection.active = active
            else:
                preview.data = data
        return summary

    def drop(self) -> None:
        """Remove the preview layer (after the threshold was run, or with the preview off)."""
        viewer = self._viewer()
        if viewer is None:
            return
        for lay in [lay for lay in viewer.layers if lay.metadata.get("preview") and lay._type_string == "labels"
                    and lay.name.endswith(f" {self.kind} preview")]:
            viewer.layers.remove(lay)


def _threshold_init(widget) -> None:
    widget.preview = _ThresholdPreview(widget)


def _region_init(widget) -> None:
    widget.preview = _ThresholdPreview(widget, kind="region")


@magic_factory(call_button="threshold", lower=_NUMBER, upper=_NUMBER, widget_init=_threshold_init)
def threshold_widget(viewer: napari.Viewer, image: napari.layers.Image, lower: float = 300.0,
                     upper: float = 3000.0) -> napari.types.LayerDataTuple:
    """Voxels with ``lower <= value <= upper`` (medlab.segmentation.threshold) as a new labels
    layer (a re-run adds another: painted edits are never replaced); its volume and mean value are
    shown. A failure is shown as a notification saying what to do. The dock also has a range
    slider, an Otsu button and a live preview with volume and mean (:class:`_ThresholdPreview`)."""
    try:
        _check_range(lower, upper)
        img = _image(image)
        return _result(viewer, image, threshold_layer(img, lower, upper, name=f"{image.name} threshold"), img)
    except Exception as exc:  # noqa: BLE001 - shown to the user, nothing is added
        notify_error("Threshold", exc, "Nothing was added")
        return None


@magic_factory(call_button="grow region", lower=_NUMBER, upper=_NUMBER,
               connectivity={"choices": ["face", "full"]}, widget_init=_region_init)
def region_growing_widget(viewer: napari.Viewer, image: napari.layers.Image, seeds: napari.layers.Points,
                          lower: float = -100.0, upper: float = 100.0,
                          connectivity: str = "face") -> napari.types.LayerDataTuple:
    """The region connected to the points of ``seeds`` within [lower, upper]
    (medlab.segmentation.connected_threshold) as a new labels layer, with its volume (mL) and mean
    value shown: a region that leaked into its surroundings shows at once as a large volume. The
    dock previews the region live (range slider, seeds moved) with its volume and mean."""
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
    contrast, a handful of voxels, at the border, too large, a hotter structure nearby, values
    no SUV reaches) is shown
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


#: Layer options :func:`_show` sets on an existing layer of the same kind instead of replacing it.
_UPDATABLE = frozenset({"name", "scale", "translate", "axis_labels", "units", "metadata", "colormap",
                        "blending", "opacity", "contrast_limits"})


def _show(viewer, layers) -> None:
    """Add LayerDataTuples to the viewer; a layer of that name, kind and dimension is updated in
    place (its data and options), any other layer of that name is replaced. In place because
    napari's removal of a layer runs a full garbage collection and its addition builds the
    canvas's visuals anew: 0.25 and 0.29 s under software OpenGL, most of a model run's wait
    (``benchmarks/bench_napari.py``, ``napari_model_runner``)."""
    for data, kwargs, kind in layers:
        name = kwargs["name"]
        old = viewer.layers[name] if name in viewer.layers else None
        if (old is not None and old.__class__.__name__.lower() == kind and old.ndim == np.ndim(data)
                and set(kwargs) <= _UPDATABLE and not _rotated(old)):
            for key in ("scale", "translate", "axis_labels", "units"):
                if key in kwargs:
                    setattr(old, key, kwargs[key])
            old.data = data
            for key in ("metadata", "colormap", "blending", "opacity", "contrast_limits"):
                if key in kwargs:
                    setattr(old, key, kwargs[key])
            continue
        if old is not None:
            viewer.layers.remove(name)
        getattr(viewer, f"add_{kind}")(data, **kwargs)


def _rotated(layer) -> bool:
    """Whether a layer has a rotation or a non-trivial affine (then it is replaced, not updated)."""
    nd = layer.ndim
    return not (np.allclose(layer.rotate, np.eye(nd)) and np.allclose(layer.affine.affine_matrix, np.eye(nd + 1)))


#: Interval (ms) between two updates of the Registration blend dock's progress bar and status line.
#: Not shorter: while a window holds napari's OpenGL canvas, Qt composes the whole window with
#: OpenGL on every repaint of any widget in it, which under software OpenGL (Mesa llvmpipe) takes
#: CPU from the registration running at the same time (``benchmarks/bench_napari.py``,
#: ``napari_registration``).
PROGRESS_POLL_MS = 1000


class RegistrationBlendWidget(Container):
    """The moving image on the fixed grid (registered first when ``register`` is on:
    medlab.registration.register), blended with medlab.fusion, as a job: a progress bar with the
    registration's own messages (level, iteration, metric), a stop button, the run button disabled
    while it runs. The result is cached: changing mode, alpha or tiles re-blends it at once into
    the one ``blend`` layer (no new registration); the transform can be saved to an ITK file
    (:meth:`medlab.registration.RegistrationResult.save`)."""

    def __init__(self, napari_viewer):
        from magicgui.widgets import FloatSlider, ProgressBar, SpinBox

        super().__init__()
        self._viewer = napari_viewer
        self.fixed = create_widget(annotation="napari.layers.Image", label="fixed")
        self.moving = create_widget(annotation="napari.layers.Image", label="moving")
        self.mode = ComboBox(choices=list(BLEND_MODES), value="checkerboard", label="mode")
        self.alpha = FloatSlider(min=0.0, max=1.0, step=0.05, value=0.5, label="alpha")
        self.tiles = SpinBox(min=1, max=32, value=6, label="tiles")
        self.register = CheckBox(value=False, text="register")
        self.transform = ComboBox(choices=["rigid", "similarity", "affine"], value="rigid", label="transform")
        self.metric = ComboBox(choices=["mattes", "correlation", "mean_squares"], value="mattes", label="metric")
        self.iterations = SpinBox(min=1, max=1000, value=100, label="iterations")
        self._run = PushButton(text="blend")
        self._stop = PushButton(text="stop", enabled=False)
        self._progress = ProgressBar(min=0, max=100, value=0, label="progress")
        self._status = Label(value="")
        self._save = PushButton(text="save transform…", enabled=False)
        self.other = create_widget(annotation="napari.layers.Layer", label="apply to")
        self._apply = PushButton(text="apply transform", enabled=False)
        self.result = None  # the last RegistrationResult (None without registration)
        self._cache = None  # (key, fixed image, moving on fixed)
        self._latest = None  # (fraction, message) from the registration thread
        self._stopping = False
        self._timer = None
        self._run.changed.connect(self.run)
        self._stop.changed.connect(self.stop)
        self._save.changed.connect(self._ask_save)
        self._apply.changed.connect(lambda: self.apply_to(self.other.value))
        for w in (self.mode, self.alpha, self.tiles):
            w.changed.connect(self._reblend)
        self.extend([self.fixed, self.moving, self.mode, self.alpha, self.tiles, self.register, self.transform,
                     self.metric, self.iterations, self._run, self._stop, self._progress, self._status, self._save,
                     self.other, self._apply])

    def _key(self) -> tuple:
        f, m = self.fixed.value, self.moving.value
        return (id(f), id(f.data) if f is not None else None, id(m), id(m.data) if m is not None else None,
                self.register.value, self.transform.value, self.metric.value, self.iterations.value)

    def run(self):
        """Resample (and register) on a thread worker; returns the worker, or None when the cached
        result was only re-blended or the layers were not usable (a notification says why)."""
        from napari.qt.threading import create_worker
        from qtpy.QtCore import QTimer

        import medlab.registration

        key = self._key()
        if self._cache is not None and self._cache[0] == key:
            self._reblend()
            return None
        try:
            fimg, mimg = _image(self.fixed.value), _image(self.moving.value)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            notify_error("Registration blend", exc, "Choose two grey image layers")
            return None
        register, options = self.register.value, {"transform": self.transform.value, "metric": self.metric.value,
                                                  "iterations": self.iterations.value}
        self._stopping, self._latest = False, (0.0, "starting…")

        def progress(fraction, message):
            self._latest = (float(fraction), str(message))
            return not self._stopping

        def work():
            if register:
                result = medlab.registration.register(fimg, mimg, progress=progress, **options)
                return result, result.resampled
            return None, medlab.registration.resample(mimg, fimg)

        worker = create_worker(work, _ignore_errors=True)  # errors go to _failed
        worker.returned.connect(lambda out: self._done(key, fimg, *out))
        worker.errored.connect(self._failed)
        worker.finished.connect(self._finished)
        self._run.enabled, self._stop.enabled = False, True
        self._progress.value = 0
        self._status.value = "registering…" if register else "resampling…"
        self._timer = QTimer()
        self._timer.timeout.connect(self._poll)
        self._timer.start(PROGRESS_POLL_MS)
        worker.start()
        return worker

    def stop(self) -> None:
        """Ask the running registration to stop (at its next iteration)."""
        self._stopping = True
        self._status.value = "stopping…"

    def _poll(self) -> None:
        """Show the registration's latest progress (every :data:`PROGRESS_POLL_MS`); a widget is
        only touched when what it shows changed (each repaint composes the window again)."""
        if self._timer is not None and self._latest is not None and not self._stopping:
            fraction, message = self._latest
            percent, text = int(round(100 * fraction)), message[:60]
            if self._progress.value != percent:
                self._progress.value = percent
            if self._status.value != text:
                self._status.value = text

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _finished(self) -> None:
        self._stop_timer()
        self._run.enabled, self._stop.enabled = True, False

    def _failed(self, exc: BaseException) -> None:
        self._stop_timer()  # its last tick must not overwrite the final status
        if isinstance(exc, InterruptedError) or self._stopping:
            self._status.value = "stopped: nothing changed"
            _notify_info("Registration blend: stopped; the layers are unchanged")
            return
        self._status.value = f"failed: {exc}"[:80]
        notify_error("Registration blend", exc)

    def _done(self, key, fimg, result, on_fixed) -> None:
        self._stop_timer()  # its last tick must not overwrite the final status
        self._cache = (key, fimg, on_fixed)
        self.result = result
        self._progress.value = 100
        if result is not None:
            self._status.value = (f"metric {result.initial_metric:.4g} → {result.final_metric:.4g} "
                                  f"({result.transform_kind})")
        else:
            self._status.value = "resampled (not registered)"
        self._save.enabled = self._apply.enabled = result is not None
        from ._layers import image_to_layer

        _show(self._viewer, [image_to_layer(on_fixed, "moving on fixed", visible=False)])
        self._reblend()

    def _reblend(self, *_args) -> None:
        """Blend the cached result again with the current mode, alpha and tiles into the one
        ``blend`` layer (nothing to do before a first run)."""
        from ._layers import blend_layer

        if self._cache is None:
            return
        _, fimg, on_fixed = self._cache
        try:
            data, kwargs, _ = blend_layer(fimg, on_fixed, mode=self.mode.value, alpha=self.alpha.value,
                                          tiles=self.tiles.value, name="blend")
        except Exception as exc:  # noqa: BLE001
            notify_error("Registration blend", exc)
            return
        if "blend" in self._viewer.layers:
            layer = self._viewer.layers["blend"]
            layer.data = data
            layer.contrast_limits = kwargs["contrast_limits"]
            layer.metadata["mode"] = kwargs["metadata"]["mode"]
        else:
            self._viewer.add_image(data, **kwargs)

    def apply_to(self, layer):
        """Put another layer of the moving frame (its labels, the PET of a PET/CT) on the fixed grid
        through the last registration: a new layer ``'<name> on fixed'`` (labels stay labels,
        nearest neighbour). Returns the new layer, or None (a notification says why)."""
        from ._layers import image_to_layer

        try:
            if self.result is None:
                raise ValueError("no registration yet: tick 'register' and run first")
            if layer is None or layer._type_string not in ("image", "labels"):
                raise ValueError("choose an Image or Labels layer in the moving image's frame")
            is_label = layer._type_string == "labels"
            img = layer_meta_to_image(layer.data, layer.as_layer_data_tuple()[1]) if is_label else _image(layer)
            out = self.result.apply(img, is_label=is_label)
            data, kwargs, kind = image_to_layer(out, _free_name(self._viewer, f"{layer.name} on fixed"),
                                                "labels" if is_label else "image")
            return getattr(self._viewer, f"add_{kind}")(data, **kwargs)
        except Exception as exc:  # noqa: BLE001
            notify_error("Apply transform", exc)
            return None

    def save_transform(self, path) -> str:
        """Write the last registration's transform (ITK format by extension, e.g. ``.tfm``, ``.h5``);
        :func:`medlab.registration.read_transform` reads it, ``RegistrationResult.apply`` uses it."""
        if self.result is None:
            raise ValueError("no registration yet: tick 'register' and run first")
        return str(self.result.save(path, overwrite=True))

    def _ask_save(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(None, "Save the transform", "transform.tfm",
                                              "ITK transform (*.tfm *.txt *.h5 *.mat)")
        if path:
            try:
                _notify_info(f"transform saved: {self.save_transform(path)}")
            except Exception as exc:  # noqa: BLE001
                notify_error("Save transform", exc)


class SeriesPickerWidget(Container):
    """The DICOM series of a folder (:func:`medlab.io.list_series`), one line each (folder,
    modality, description, size, files), and an 'open' button that reads the chosen one into the
    viewer with the plugin's reader (a dock opened by the reader on a folder holding several)."""

    def __init__(self, napari_viewer, folder, series: list[dict]):
        from pathlib import Path

        from ._reader import series_choices

        super().__init__()
        self._viewer = napari_viewer
        self.folder = Path(folder)
        self.series = list(series)
        choices = series_choices(self.folder, self.series)
        self.choice = ComboBox(choices=[(text, k) for k, (text, _) in enumerate(choices)], value=0, label="series")
        self._open = PushButton(text="open")
        self._status = Label(value=f"{len(self.series)} series in {self.folder.name}: choose one")
        self._open.changed.connect(lambda _v=None: self.open())
        self.extend([self.choice, self._open, self._status])

    def open(self, index: int | None = None):
        """Read the chosen series (or ``series[index]``) and add it; returns the layer, or None
        (a notification says why)."""
        from ._reader import _image_layer, series_source

        k = self.choice.value if index is None else int(index)
        try:
            data, kwargs, kind = _image_layer(*series_source(self.folder, self.series[k]))
            layer = getattr(self._viewer, f"add_{kind}")(data, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            notify_error("Open series", exc)
            return None
        from ._view import radiological

        radiological(self._viewer)
        self._status.value = f"opened: {layer.name}"
        return layer


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
        if "probabilities" in info and not all(p == p for p in info["probabilities"].values()):
            self._result.value = "no prediction (a blank frame or NaN pixels: nothing to classify)"
        elif "probabilities" in info:
            self._result.value = ", ".join(f"{c} {p:.3f}" for c, p in info["probabilities"].items())
        else:
            self._result.value = f"{self._model.value}: labels added"
