"""The viewer set up the way a radiologist reads: superior up in coronal and sagittal views,
orientation letters on the canvas, the scale bar on (in mm, from the layers' units), and the
window presets of :mod:`medlab.enhance`.

napari draws the first displayed axis downwards; a layer from :func:`._layers.image_to_layer` has
its ``I→S`` axis first, so a coronal or sagittal view (that axis vertical) would show the feet at
the top. :func:`radiological` flips the 2D camera's vertical axis (``camera.orientation2d``) while
that axis is displayed vertically, and writes the view's name and the four edge letters in the
text overlay. World coordinates are left alone (no negative scale: writers and tools keep mm).
"""

from __future__ import annotations

import weakref

import medlab.enhance

from ._layers import AXIS_LABELS_3D

__all__ = ["current_viewer", "install_current", "orientation_text", "radiological", "window_limits"]

_VIEWS = {frozenset({"A→P", "R→L"}): "axial", frozenset({"I→S", "R→L"}): "coronal",
          frozenset({"I→S", "A→P"}): "sagittal"}
_INSTALLED: weakref.WeakSet = weakref.WeakSet()  # viewers set up (weak: a new viewer may reuse an id)


def orientation_text(vertical: str, horizontal: str, vertical_up: bool) -> str:
    """The view name and edge letters for displayed axes named like ``'I→S'`` (vertical, drawn
    upwards when ``vertical_up``) and ``'R→L'`` (horizontal, drawn to the right)."""
    v0, v1 = vertical.split("→")
    h0, h1 = horizontal.split("→")
    top, bottom = (v1, v0) if vertical_up else (v0, v1)
    view = _VIEWS.get(frozenset({vertical, horizontal}), "")
    return f"{view}   top {top} · bottom {bottom} · left {h0} · right {h1}".strip()


def _update(viewer) -> None:
    dims = viewer.dims
    labels = tuple(dims.axis_labels)
    anatomical = set(AXIS_LABELS_3D) <= set(labels[-3:]) if len(labels) >= 3 else False
    if dims.ndisplay != 2 or not anatomical:
        viewer.scene.camera.orientation2d = ("down", "right")
        viewer.canvas.overlays["text"].visible = False
        return
    vertical, horizontal = (labels[i] for i in dims.order[-2:])
    up = vertical == "I→S"
    viewer.scene.camera.orientation2d = ("up" if up else "down", "right")
    if "→" in vertical and "→" in horizontal:
        viewer.canvas.overlays["text"].text = orientation_text(vertical, horizontal, up)
        viewer.canvas.overlays["text"].position = "top_left"
        viewer.canvas.overlays["text"].visible = True


def _harmonise(viewer) -> None:
    """Give layers the user made (a Points layer for seeds, a new Labels layer to paint) the mm
    units and axis names of the medlab layers of the same dimensionality: napari drops the units
    of every layer ("Inconsistent units across layers") when one layer is in pixels."""
    ours = [lay for lay in viewer.layers if tuple(lay.axis_labels)[-3:] == AXIS_LABELS_3D]
    if not ours:
        return
    ndim = ours[0].ndim
    for lay in viewer.layers:
        if lay.ndim == ndim and all(str(u) == "pixel" for u in lay.units) \
                and tuple(lay.axis_labels)[-3:] != AXIS_LABELS_3D:
            lay.units = tuple(ours[0].units)
            lay.axis_labels = tuple(ours[0].axis_labels)


def radiological(viewer) -> None:
    """Keep ``viewer`` in the radiological display (once per viewer; safe to call again): superior
    up when the ``I→S`` axis is vertical, orientation letters in the text overlay, the scale bar
    on. Updated whenever the displayed axes or the layers change."""
    if viewer is None:
        return
    if viewer not in _INSTALLED:
        _INSTALLED.add(viewer)
        viewer.dims.events.order.connect(lambda _e=None: _update(viewer))
        viewer.dims.events.ndisplay.connect(lambda _e=None: _update(viewer))
        viewer.dims.events.axis_labels.connect(lambda _e=None: _update(viewer))
        viewer.layers.events.inserted.connect(lambda _e=None: _harmonise(viewer))
        viewer.canvas.overlays["scale_bar"].visible = True
    _harmonise(viewer)
    _update(viewer)


def current_viewer():
    """napari's current viewer, or None (no viewer, no Qt application)."""
    try:
        import napari

        return napari.current_viewer()
    except Exception:  # noqa: BLE001 - no Qt application or no viewer
        return None


def install_current() -> None:
    """:func:`radiological` on napari's current viewer, if there is one (called by the reader and
    the sample data, which napari gives no viewer)."""
    radiological(current_viewer())


def window_limits(preset: str, data=None) -> tuple[float, float]:
    """Contrast limits of a :func:`medlab.enhance.presets` window ('auto': the 1-99th percentile
    window of ``data``)."""
    window, level = medlab.enhance.resolve_window(data, preset=preset) if preset == "auto" else \
        (medlab.enhance.presets()[preset].window, medlab.enhance.presets()[preset].level)
    return medlab.enhance.window_bounds(window, level)
