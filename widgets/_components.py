"""WindowLevel, ThresholdSlider and SeedPicker: controls that attach to a SliceViewer.

Each takes an image (and then shows a viewer of its own) or an existing
:class:`~medlab.widgets.SliceViewer` (and then adds only its controls, so several components
work on one picture). State lives in traitlets; handlers update state and ask the viewer for
one redraw. Every computation is a ``medlab`` call: :mod:`medlab.enhance` for windows,
:mod:`medlab.segmentation` for thresholds, region growing and statistics.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import pandas  # noqa: F401 - label_statistics' table; loaded here so the first click does not wait for it
import SimpleITK as sitk
import traitlets as t

import medlab.enhance
import medlab.segmentation
from medlab._options import check_choice

from ._live import Throttle, same_on_grid
from ._viewer import SliceViewer, StaticPNG

__all__ = ["WindowLevel", "ThresholdSlider", "SeedPicker", "MAX_OTSU_CLASSES", "OTSU_BINS"]

MAX_OTSU_CLASSES = 5
# Histogram bins of multi-Otsu per class count: its search grows as bins ** (classes - 1)
# (measured on 6x32x32 floats: 5 classes with 256 bins 9 s, with 64 bins 15 ms; 4 classes with
# 256 bins 0.3 s), so 5 classes use 64 bins and every count stays well under a second.
OTSU_BINS = {2: 256, 3: 256, 4: 256, 5: 64}
CONNECTIVITY = ("face", "full")
SLIDER_WIDTH_PX = 420


def _attach(image_or_viewer, viewer_kwargs) -> tuple[SliceViewer, bool]:
    """The viewer to draw on, and whether the component shows it itself."""
    if isinstance(image_or_viewer, SliceViewer):
        if viewer_kwargs:
            raise TypeError(
                f"viewer options {sorted(viewer_kwargs)} only apply when an image is given; "
                "set them on the SliceViewer"
            )
        return image_or_viewer, False
    return SliceViewer(image_or_viewer, **viewer_kwargs), True


def _number(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number; got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite; got {value!r}")
    return v


def _range(lower, upper) -> tuple[float, float]:
    lower, upper = _number("lower", lower), _number("upper", upper)
    if lower > upper:
        raise ValueError(f"`lower` ({lower}) must be <= `upper` ({upper})")
    return lower, upper


def _step(viewer: SliceViewer) -> float:
    lo, hi = viewer.intensity_range
    if viewer.array.dtype.kind in "iub":
        return 1.0
    return float(10 ** np.floor(np.log10(max(hi - lo, 1e-12) / 500)))


def _slider(cls, description: str, lo: float, hi: float, step: float, width_px: int = SLIDER_WIDTH_PX):
    """A live float (range) slider whose bounds lie on its step grid.

    ``continuous_update=True``: values arrive while the handle moves; the components apply them
    through a :class:`~medlab.widgets._live.Throttle` and ignore the step-snapped echo of a value
    the kernel set (:func:`~medlab.widgets._live.same_on_grid`), so an Otsu threshold or an
    'auto' window keeps its exact value.
    """
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    value = (lo, hi) if cls is widgets.FloatRangeSlider else lo
    return cls(description=description, min=lo, max=hi, step=step, value=value, readout_format=".4g",
               continuous_update=True, layout=widgets.Layout(width=f"{int(width_px)}px"),
               style={"description_width": "70px"})


def _moved(slider_values, state_values, step) -> bool:
    """Whether the slider moved away from the state (not just its snapped echo)."""
    return any(not same_on_grid(a, b, step) for a, b in zip(slider_values, state_values, strict=True))


def _snap_merge(slider_values, state_values, step) -> tuple[float, ...]:
    """The state with only the ends the slider really moved replaced by the slider's values."""
    return tuple(b if same_on_grid(a, b, step) else float(a)
                 for a, b in zip(slider_values, state_values, strict=True))


def _count_word(viewer: SliceViewer) -> str:
    return "voxels" if viewer.ndim == 3 else "pixels"


def _classes(classes) -> int:
    if isinstance(classes, bool) or not isinstance(classes, int | np.integer):
        raise TypeError(f"`classes` must be an int; got {classes!r}")
    if not 2 <= classes <= MAX_OTSU_CLASSES:
        raise ValueError(f"`classes` must be in [2, {MAX_OTSU_CLASSES}] (multi-Otsu's search grows as "
                         f"bins ** (classes - 1)); got {classes}")
    return int(classes)


def region_statistics(viewer: SliceViewer, region: np.ndarray) -> dict:
    """:func:`medlab.segmentation.label_statistics` of a region with the viewer's image.

    Measured in the region's bounding box (the same voxels, so the same numbers; the intensity
    filter's cost grows with the size of the image it scans). Returns ``voxels``, ``volume_ml``
    (3D) or ``area_mm2`` (2D), and for a non-empty region ``mean``, ``std``, ``min``, ``max``
    in the image's intensity unit.
    """
    key = "volume_ml" if viewer.ndim == 3 else "area_mm2"
    axes = range(region.ndim)
    hits = [np.flatnonzero(region.any(axis=tuple(j for j in axes if j != i))) for i in axes]
    if not hits[0].size:
        return {"voxels": 0, key: 0.0}
    box = tuple(slice(h[0], h[-1] + 1) for h in hits)
    spacing = viewer.image.GetSpacing()[::-1]
    row = medlab.segmentation.label_statistics(region[box], viewer.array[box], spacing=spacing).iloc[0]
    return {"voxels": int(row["voxels"]), key: float(row[key]),
            **{k: float(row[k]) for k in ("mean", "std", "min", "max")}}


def _size_text(row) -> str:
    if "volume_ml" in row:
        return f"{row['volume_ml']:.2f} mL"
    return f"{row['area_mm2']:.1f} mm²"


class _Component(StaticPNG, widgets.VBox):
    def _layout(self, owned: bool, controls: list) -> None:
        self.children = [self.viewer, *controls] if owned else controls


class WindowLevel(_Component):
    """Window and level sliders, modality presets, and mouse drag on the image.

    Dragging on the picture with the left button changes the window (horizontal: right widens)
    and the level (vertical: down raises it, so the picture darkens), as radiology viewers do;
    with the viewer's page rendering the browser draws the drag itself and the state follows.
    The sliders are live (throttled while they move). The state is the viewer's ``window`` and
    ``level``; the mapping is :func:`medlab.enhance.window_bounds`, the presets
    :func:`medlab.enhance.presets` of the image's modality (CT presets only for CT).

    Parameters
    ----------
    image : sitk.Image, ndarray or SliceViewer
        What to show; a viewer is shared (only the controls are added here).
    window, level : float, optional
        Initial window; or ``preset`` (a :func:`medlab.enhance.presets` name).
    modality : str, optional
        Which presets apply (``'CT'``: the Hounsfield-unit presets; anything else: ``'auto'``
        only). Default: ``'CT'`` when the viewer's unit is ``'HU'``.
    sensitivity : float, optional
        Intensity units per screen pixel of drag (default: the intensity range / 1024).
    **viewer_kwargs
        :class:`SliceViewer` options when ``image`` is not a viewer.
    """

    def __init__(self, image, *, window=None, level=None, preset=None, modality=None, sensitivity=None,
                 **viewer_kwargs):
        super().__init__()
        self.viewer, owned = _attach(image, viewer_kwargs)
        v = self.viewer
        lo, hi = v.intensity_range
        span = max(hi - lo, 1e-6)
        self.sensitivity = span / 1024 if sensitivity is None else _number("sensitivity", sensitivity)
        if self.sensitivity <= 0:
            raise ValueError(f"`sensitivity` must be > 0; got {sensitivity!r}")
        if modality is None:
            modality = "CT" if v.unit.strip().upper() == "HU" else ""
        elif not isinstance(modality, str):
            raise TypeError(f"`modality` must be a str such as 'CT' or 'PET'; got {modality!r}")
        self.modality = modality.upper()
        self._presets = {name: p for name, p in medlab.enhance.presets().items()
                         if p.window is None or p.modality.upper() == self.modality}
        self._preset_values: dict[str, tuple[float, float]] = {}
        self._drag_start: tuple[float, float] | None = None
        self._step = step = _step(v)
        # one slider length spans the image's intensity range (a CT: about 10 HU per screen pixel)
        self._window = _slider(widgets.FloatSlider, "window", step, span, step)
        self._level = _slider(widgets.FloatSlider, "level", lo, hi, step)
        self._preset = widgets.Dropdown(description="preset", options=["custom", *self._presets],
                                        value="custom", style={"description_width": "70px"},
                                        layout=widgets.Layout(width="260px"))
        self._live = Throttle(self._apply_sliders)
        # during a drag on the picture the state changes with every pointer event; the sliders
        # follow at most every 0.15 s (each update is a message and a slider redraw in the page)
        self._follow = Throttle(self._show_state, min_interval_s=0.15)
        with v.hold_redraw():
            if preset is not None:
                self.set_preset(preset)
            elif window is not None or level is not None:
                self.set_window(v.window if window is None else window, v.level if level is None else level)
            self._show_state()
        v.observe(self._on_state, names=["window", "level"])
        self._window.observe(self._on_slider, names="value")
        self._level.observe(self._on_slider, names="value")
        self._preset.observe(self._on_preset, names="value")
        v.canvas.on("drag", self._on_drag)
        if v.rendering == "page":
            # the page draws a drag on the picture itself, with the map of _on_drag
            with v.canvas.hold_sync():
                v.canvas.drag_sensitivity = self.sensitivity
                v.canvas.drag_window_min = self._window.min
                v.canvas.drag_action = "window"
        self._layout(owned, [widgets.HBox([self._window, self._level]), self._preset])

    @property
    def window(self) -> float:
        return self.viewer.window

    @property
    def level(self) -> float:
        return self.viewer.level

    @property
    def preset_names(self) -> tuple[str, ...]:
        """The presets offered for this image's modality."""
        return tuple(self._presets)

    def set_window(self, window: float, level: float) -> None:
        """Window width (> 0) and centre, intensity units."""
        self.viewer.set_window_level(_number("window", window), _number("level", level))

    def set_preset(self, name: str) -> None:
        """Apply a named window (:func:`medlab.enhance.presets`; ``'auto'`` is computed once)."""
        if not isinstance(name, str):
            raise TypeError(f"`preset` must be a preset name; got {name!r}")
        if name not in self._presets:
            other = medlab.enhance.presets().get(name)
            if other is not None:
                raise ValueError(f"preset {name!r} is for {other.modality}; this image "
                                 f"({self.modality or 'not CT'}) offers {list(self._presets)}")
            check_choice("preset", name, tuple(self._presets))
        if name not in self._preset_values:
            self._preset_values[name] = medlab.enhance.resolve_window(self.viewer.image, preset=name)
        self.set_window(*self._preset_values[name])
        self._preset.value = name

    def _show_state(self):
        v = self.viewer
        for slider, value in ((self._window, v.window), (self._level, v.level)):
            if same_on_grid(slider.value, value, slider.step):
                continue  # the slider shows it already (snapped to its grid)
            slider.max = max(slider.max, value)
            slider.min = min(slider.min, value)
            slider.value = value
        if v.canvas.drag_window_min != self._window.min:
            v.canvas.drag_window_min = self._window.min
        name = self._preset.value
        if name != "custom" and self._preset_values.get(name) != (v.window, v.level):
            self._preset.value = "custom"

    def _on_state(self, _change):
        self._follow()

    def _on_slider(self, _change):
        self._live()

    def _apply_sliders(self):
        state = (self.viewer.window, self.viewer.level)
        values = (self._window.value, self._level.value)
        if _moved(values, state, self._step):
            self.set_window(*_snap_merge(values, state, self._step))

    def _on_preset(self, change):
        if change["new"] != "custom":
            self.set_preset(change["new"])

    def _on_drag(self, msg):
        v = self.viewer
        if msg.get("phase") == "start" or self._drag_start is None:
            self._drag_start = (v.window, v.level)
        w0, l0 = self._drag_start
        w = max(w0 + float(msg.get("dx", 0)) * self.sensitivity, self._window.min)
        lev = l0 + float(msg.get("dy", 0)) * self.sensitivity
        self.set_window(w, lev)
        if msg.get("phase") == "end":
            self._drag_start = None

    def drag(self, dx: float, dy: float) -> None:
        """A whole drag of (dx, dy) screen pixels, as the mouse would do it."""
        c = self.viewer.canvas
        c.dispatch({"event": "drag", "phase": "start", "dx": 0, "dy": 0})
        c.dispatch({"event": "drag", "phase": "move", "dx": dx / 2, "dy": dy / 2})
        c.dispatch({"event": "drag", "phase": "end", "dx": dx, "dy": dy})


class ThresholdSlider(_Component):
    """A live overlay of the intensity range ``lower <= image <= upper`` and its volume.

    The mask is :func:`medlab.segmentation.threshold` of the whole image, its size
    :func:`medlab.segmentation.label_statistics` (mL in 3D, mm² in 2D); the Otsu and
    multi-Otsu buttons set the range from :func:`medlab.segmentation.auto_threshold` and
    :func:`medlab.segmentation.multi_otsu` (the brightest class, or ``otsu_class``).

    Parameters
    ----------
    image : sitk.Image, ndarray or SliceViewer
    lower, upper : float, optional
        Initial range, intensity units (default: the upper half of the intensity range).
    classes : int
        Classes for multi-Otsu (2..``MAX_OTSU_CLASSES``).
    color : (r, g, b)
        Overlay colour.
    layer : str
        Name of its overlay on the viewer (two thresholds on one viewer need two names).
    **viewer_kwargs
        :class:`SliceViewer` options when ``image`` is not a viewer.

    Attributes
    ----------
    range : (float, float) (traitlet)
        ``(lower, upper)``; also the ``lower`` and ``upper`` properties.
    mask : ndarray of uint8
        The thresholded image (numpy order, viewer grid).
    statistics : dict
        ``voxels`` and ``volume_ml`` (3D) or ``area_mm2`` (2D).
    thresholds : list of float
        The last Otsu / multi-Otsu thresholds.
    """

    range = t.Tuple(t.Float(), t.Float(), default_value=(0.0, 1.0))

    def __init__(self, image, *, lower=None, upper=None, classes: int = 3, color=(255, 64, 64),
                 layer: str = "threshold", **viewer_kwargs):
        super().__init__()
        self.viewer, owned = _attach(image, viewer_kwargs)
        v = self.viewer
        lo, hi = v.intensity_range
        self._layer = layer
        self._color = color
        self.mask = np.zeros(v.array.shape, np.uint8)
        self.statistics: dict = {}
        self.thresholds: list[float] = []
        self._step = _step(v)
        self._slider = _slider(widgets.FloatRangeSlider, "threshold", lo, hi, self._step)
        self._classes = widgets.BoundedIntText(value=_classes(classes), min=2, max=MAX_OTSU_CLASSES,
                                               description="classes", layout=widgets.Layout(width="150px"))
        self._live = Throttle(self._apply_slider)
        self._otsu = widgets.Button(description="Otsu", tooltip="lower = Otsu threshold, upper = max")
        self._multi = widgets.Button(description="multi-Otsu", tooltip="the brightest multi-Otsu class")
        self._info = widgets.HTML()
        mid = lo + (hi - lo) / 2
        self.set_range(mid if lower is None else lower, hi if upper is None else upper)
        self._update()
        self.observe(self._on_state, names="range")
        self._slider.observe(self._on_slider, names="value")
        # page rendering: the page redraws the overlay from the slider's value with no kernel
        # round trip while the handle moves
        v.link_range_slider(self._layer, self._slider)
        self._otsu.on_click(lambda _b: self.apply_otsu())
        self._multi.on_click(lambda _b: self.apply_multi_otsu())
        self._layout(owned, [self._slider, widgets.HBox([self._otsu, self._multi, self._classes]), self._info])

    def set_range(self, lower: float, upper: float) -> None:
        """Threshold range (inclusive), intensity units; ``lower <= upper``."""
        self.range = _range(lower, upper)

    @property
    def lower(self) -> float:
        return self.range[0]

    @property
    def upper(self) -> float:
        return self.range[1]

    def apply_otsu(self) -> float:
        """Range = (Otsu threshold, maximum); returns the threshold."""
        th = medlab.segmentation.auto_threshold(self.viewer.image, "otsu")
        self.thresholds = [th]
        self.set_range(th, max(th, self.viewer.intensity_range[1]))
        return th

    def apply_multi_otsu(self, classes: int | None = None, otsu_class: int | None = None) -> list[float]:
        """Range = one multi-Otsu class (default the brightest); returns the thresholds.

        ``classes`` is 2..``MAX_OTSU_CLASSES``; the histogram has ``OTSU_BINS[classes]`` bins
        (fewer for more classes, so that the search stays under a second).
        """
        classes = self._classes.value if classes is None else _classes(classes)
        k = classes if otsu_class is None else otsu_class
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= classes:
            raise ValueError(f"`otsu_class` must be an int in [1, {classes}]; got {otsu_class!r}")
        _, th = medlab.segmentation.multi_otsu(self.viewer.image, classes, nbins=OTSU_BINS[classes],
                                               return_thresholds=True)
        lo, hi = self.viewer.intensity_range
        bounds = [lo, *th, hi]
        self.thresholds = list(th)
        self._classes.value = classes
        self.set_range(bounds[k - 1], bounds[k])
        return list(th)

    def _on_slider(self, _change):
        self._live()

    def _apply_slider(self):
        if _moved(self._slider.value, self.range, self._step):
            self.set_range(*_snap_merge(self._slider.value, self.range, self._step))

    def _on_state(self, _change):
        self._update()

    def _update(self):
        v = self.viewer
        mask = medlab.segmentation.threshold(v.image, lower=self.lower, upper=self.upper)
        self.mask = sitk.GetArrayFromImage(mask)
        stats = medlab.segmentation.label_statistics(mask)
        key = "volume_ml" if v.ndim == 3 else "area_mm2"
        row = stats.iloc[0] if len(stats) else {"voxels": 0, key: 0.0}
        self.statistics = {"voxels": int(row["voxels"]), key: float(row[key])}
        if _moved(self._slider.value, self.range, self._step):
            lo, hi = self._slider.min, self._slider.max
            self._slider.min, self._slider.max = min(lo, self.lower), max(hi, self.upper)
            self._slider.value = (self.lower, self.upper)
        self._info.value = (f"<b>{_size_text(self.statistics)}</b> &nbsp; "
                            f"({self.statistics['voxels']} {_count_word(v)} in "
                            f"[{self.lower:.4g}, {self.upper:.4g}] {html.escape(v.unit)})")
        v.set_overlay(self._layer, self.mask, mode="fill", color=self._color, page_range=self.range)


class SeedPicker(_Component):
    """Seeds by clicking (click a seed again to remove it) and live region growing.

    The region is :func:`medlab.segmentation.connected_threshold` from the seeds within
    ``lower <= image <= upper`` (3D for a volume, 2D for an image); its statistics are
    :func:`medlab.segmentation.label_statistics` with the image (size in mL or mm², mean,
    std, min, max).

    Parameters
    ----------
    image : sitk.Image, ndarray or SliceViewer
    lower, upper : float
        Intensity range of the region, intensity units.
    seeds_index : sequence of (z, y, x) or (y, x), optional
        Initial seeds, numpy indexes of ``viewer.image`` (or ``seeds_mm``, physical points).
    connectivity : {'face', 'full'}
    pick_radius : int
        A click within this many shown pixels of a seed on the slice removes it.
    color, seed_color : (r, g, b), optional
        Region and seed marker colours. Default on grey: a cyan fill and yellow markers; on a
        colour map (PET): a blue outline and cyan markers, which the map does not contain.
    layer : str
        Name of its overlay on the viewer (markers: ``layer + '-seeds'``).
    **viewer_kwargs
        :class:`SliceViewer` options when ``image`` is not a viewer.

    Attributes
    ----------
    seeds_index : list of tuple (traitlet)
        Numpy indexes; :attr:`seeds_mm` gives the physical points ``(x, y[, z])``.
    range : (float, float) (traitlet)
        ``(lower, upper)``; also the ``lower`` and ``upper`` properties.
    region : ndarray of uint8
        The grown region (numpy order, viewer grid).
    statistics : dict
        ``voxels``, ``volume_ml`` or ``area_mm2``, ``mean``, ``std``, ``min``, ``max``
        (empty when there is no seed).
    verdict : medlab.segmentation.PetVerdict or None
        On a PET in SUV (viewer unit ``'SUV'``): whether the region is a plausible lesion
        (:func:`medlab.segmentation.pet_plausibility`: low uptake or contrast, a handful of
        voxels, touching the field of view, too large, a far hotter structure nearby, values no
        SUV reaches); the
        reasons are shown under the statistics. None for other images or no region.
    """

    seeds_index = t.List()
    range = t.Tuple(t.Float(), t.Float(), default_value=(0.0, 1.0))

    def __init__(self, image, *, lower=None, upper=None, seeds_index=None, seeds_mm=None,
                 connectivity: str = "face", pick_radius: int = 3, color=None,
                 seed_color=None, layer: str = "region", **viewer_kwargs):
        super().__init__()
        self.viewer, owned = _attach(image, viewer_kwargs)
        v = self.viewer
        lo, hi = v.intensity_range
        self.connectivity = connectivity
        self.pick_radius = pick_radius
        # on a colour map (PET 'hot': black-red-yellow-white) a yellow marker and a filled region
        # disappear into the picture: cyan seeds and a blue outline there; on grey, a yellow
        # marker and a cyan fill
        coloured = v.colormap not in (None, "gray", "grey")
        self._mode = "contour" if coloured else "fill"
        if color is None:
            color = (30, 144, 255) if coloured else (0, 200, 255)
        if seed_color is None:
            seed_color = (0, 255, 255) if coloured else (255, 220, 0)
        self._layer, self.color, self.seed_color = layer, tuple(color), tuple(seed_color)
        self.region = np.zeros(v.array.shape, np.uint8)
        self.statistics: dict = {}
        self.verdict = None
        self._step = _step(v)
        self._range = _slider(widgets.FloatRangeSlider, "region", lo, hi, self._step)
        self._range.tooltip = "intensity range the region grows in"
        self._clear = widgets.Button(description="clear seeds", layout=widgets.Layout(width="110px"))
        self._info = widgets.HTML()
        self._live = Throttle(self._apply_range)
        with v.hold_redraw():
            self.set_range(lo if lower is None else lower, hi if upper is None else upper)
            if seeds_index is not None and seeds_mm is not None:
                raise ValueError("give `seeds_index` or `seeds_mm`, not both")
            if seeds_mm is not None:
                self.set_seeds_mm(seeds_mm)
            else:
                self.set_seeds_index(seeds_index or [])
            self._update()
        self.observe(self._on_state, names=["seeds_index", "range"])
        self._range.observe(self._on_range, names="value")
        self._clear.on_click(lambda _b: self.clear_seeds())
        v.on_click(self._on_click)
        self._layout(owned, [self._range, widgets.HBox([self._clear, self._info])])

    @property
    def connectivity(self) -> str:
        """``'face'`` (6 neighbours in 3D, 4 in 2D) or ``'full'`` (26 / 8)."""
        return self._connectivity

    @connectivity.setter
    def connectivity(self, value: str) -> None:
        self._connectivity = check_choice("connectivity", value, CONNECTIVITY)
        if getattr(self, "seeds_index", None):
            self._update()

    @property
    def pick_radius(self) -> int:
        """A click within this many shown pixels of a seed removes it (>= 0)."""
        return self._pick_radius

    @pick_radius.setter
    def pick_radius(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"`pick_radius` must be an int (shown pixels); got {value!r}")
        if value < 0:
            raise ValueError(f"`pick_radius` must be >= 0; got {value}")
        self._pick_radius = int(value)

    # ------------------------------------------------------------------ setters
    def set_seeds_index(self, seeds_index: Sequence[Sequence[int]]) -> None:
        """Replace the seeds by numpy indexes (each checked against the image bounds)."""
        seeds = [self.viewer.check_index(s, f"seeds_index[{i}]") for i, s in enumerate(seeds_index)]
        self.seeds_index = list(dict.fromkeys(seeds))

    def set_seeds_mm(self, seeds_mm: Sequence[Sequence[float]]) -> None:
        """Replace the seeds by physical points ``(x, y[, z])`` mm."""
        self.set_seeds_index([self.viewer.index_of_point(p, f"seeds_mm[{i}]") for i, p in enumerate(seeds_mm)])

    @property
    def seeds_mm(self) -> list[tuple[float, ...]]:
        """The seeds as physical points ``(x, y[, z])`` in mm."""
        return [self.viewer.point_mm(s) for s in self.seeds_index]

    def add_seed_index(self, index: Sequence[int]) -> None:
        idx = self.viewer.check_index(index, "index")
        if idx not in self.seeds_index:
            self.seeds_index = [*self.seeds_index, idx]

    def remove_seed_index(self, index: Sequence[int]) -> None:
        idx = self.viewer.check_index(index, "index")
        if idx not in self.seeds_index:
            raise ValueError(f"no seed at {idx}; seeds are {self.seeds_index}")
        self.seeds_index = [s for s in self.seeds_index if s != idx]

    def clear_seeds(self) -> None:
        self.seeds_index = []

    def set_range(self, lower: float, upper: float) -> None:
        """Intensity range of the region (inclusive), intensity units."""
        self.range = _range(lower, upper)

    @property
    def lower(self) -> float:
        return self.range[0]

    @property
    def upper(self) -> float:
        return self.range[1]

    # ------------------------------------------------------------------ events
    def _on_click(self, index, _msg):
        """Remove the seed near the click on this slice, or add one."""
        v = self.viewer
        px = v.pixel_of_index(index)
        for seed in self.seeds_index:
            spx = v.pixel_of_index(seed)
            if spx is not None and max(abs(spx[0] - px[0]), abs(spx[1] - px[1])) <= self.pick_radius:
                self.remove_seed_index(seed)
                return
        self.add_seed_index(index)

    def _on_range(self, _change):
        self._live()

    def _apply_range(self):
        if _moved(self._range.value, self.range, self._step):
            self.set_range(*_snap_merge(self._range.value, self.range, self._step))

    def _on_state(self, _change):
        self._update()

    def _update(self):
        v = self.viewer
        with v.hold_redraw():
            if _moved(self._range.value, self.range, self._step):
                self._range.min = min(self._range.min, self.lower)
                self._range.max = max(self._range.max, self.upper)
                self._range.value = (self.lower, self.upper)
            v.set_markers(f"{self._layer}-seeds", self.seeds_index, color=self.seed_color)
            if not self.seeds_index:
                self.region = np.zeros(v.array.shape, np.uint8)
                self.statistics = {}
                self.verdict = None
                self._info.value = "<i>click on the image to add a seed</i>"
                v.remove_layer(self._layer)
                return
            region = medlab.segmentation.connected_threshold(
                v.image, seeds_index=self.seeds_index, lower=self.lower, upper=self.upper,
                connectivity=self.connectivity)
            self.region = sitk.GetArrayFromImage(region)
            self.statistics = self._statistics()
            self.verdict = self._pet_verdict()
            self._info.value = self._table()
            v.set_overlay(self._layer, self.region, mode=self._mode, color=self.color)

    def _statistics(self) -> dict:
        return region_statistics(self.viewer, self.region)

    def _pet_verdict(self):
        """On a PET in SUV: is the grown region a plausible lesion (medlab.segmentation.pet_plausibility)?"""
        if self.viewer.unit.strip().upper() != "SUV" or not self.region.any():
            return None
        return medlab.segmentation.pet_plausibility(self.viewer.image, self.region)

    def _table(self) -> str:
        s, unit = self.statistics, html.escape(self.viewer.unit)
        cells = [f"{len(self.seeds_index)} seed(s)", _size_text(s), f"{s['voxels']} {_count_word(self.viewer)}"]
        if "mean" in s:
            cells.append(f"mean {s['mean']:.4g} ± {s['std']:.3g} {unit} [{s['min']:.4g}, {s['max']:.4g}]")
        table = "<code>" + " &nbsp;|&nbsp; ".join(cells) + "</code>"
        if self.verdict is not None and not self.verdict.plausible:
            items = "".join(f"<li>{html.escape(r)}</li>" for r in self.verdict.reasons)
            table += f"<div style='color:#b00'><b>implausible PET lesion:</b><ul>{items}</ul></div>"
        return table
