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

import numpy as np

import medlab.enhance

from ._layers import AXIS_LABELS_3D

__all__ = ["SURFACE_SUFFIX", "current_viewer", "install_current", "label_surfaces", "orientation_text", "radiological",
           "surfaces_in_3d", "window_limits"]

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
    # 3D: the axes overlay, its arrows labelled with the anatomical axis names (I→S, A→P, R→L)
    viewer.canvas.overlays["axes"].visible = dims.ndisplay == 3 and anatomical
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


def _with_units(layer) -> None:
    """Make the layer's status-bar text name each axis with its position in mm and the value with
    its unit (HU for CT, SUV for PET): ``I→S 30.0 mm, A→P 40.0 mm, R→L 50.0 mm: -853 HU``."""
    if getattr(layer, "_medlab_status", False) or tuple(layer.axis_labels)[-3:] != AXIS_LABELS_3D:
        return
    from ._layers import UNITS

    original = layer.get_status

    def get_status(position=None, *args, **kwargs):
        status = original(position, *args, **kwargs)
        if position is None or not status.get("coords"):
            return status
        units = [str(u) for u in layer.units]
        pos = np.asarray(position, float)[-layer.ndim:]
        parts = [f"{name} {v:.1f} mm" if unit == "millimeter" else f"{name} {v:.0f}"
                 for name, unit, v in zip(layer.axis_labels, units, pos, strict=True)]
        value = status.get("value", "")
        unit = UNITS.get(layer.metadata.get("modality") or "", "") if layer._type_string == "image" else ""
        if unit and value not in ("", "None"):
            value = f"{value} {unit}"
        status = {**status, "coords": ", ".join(parts), "value": value}
        status["coordinates"] = f"{status['coords']}: {value}" if value != "" else status["coords"]
        return status

    layer.get_status = get_status
    layer._medlab_status = True


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
    for lay in viewer.layers:
        _with_units(lay)


#: Name suffix of the Surface layer that stands for a Labels layer in the 3D view.
SURFACE_SUFFIX = " (3D surface)"
#: A Labels layer with more label values than this stays a volume in 3D (one mesh per value).
MAX_SURFACE_LABELS = 255
_SURFACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewer -> {labels layer: surface layer}
_WATCHED: weakref.WeakSet = weakref.WeakSet()  # labels layers whose data changes rebuild their surface


def label_surfaces(data, colors=None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The boundary of every label value of a 3D label array as one triangle mesh.

    Parameters
    ----------
    data : array of int, shape (z, y, x)
        Label values (0 is background; negative values are refused).
    colors : callable, optional
        ``colors(value) -> RGBA`` (e.g. ``labels_layer.get_color``); default: white.

    Returns
    -------
    tuple or None
        ``(vertices, faces, vertex_colors)``: vertices in voxel index coordinates ``(z, y, x)``
        (marching cubes at 0.5 of each value's binary mask, padded so that a mask touching the
        border is closed), faces as vertex indexes, RGBA per vertex. None when no voxel is labelled.
    """
    from scipy import ndimage
    from skimage.measure import marching_cubes

    arr = np.asarray(data)
    if arr.ndim != 3 or arr.dtype.kind not in "iub":
        raise ValueError(f"data must be a 3D integer label array; got {arr.dtype} of shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if arr.size and arr.min() < 0:
        raise ValueError("data has negative label values; surfaces need labels >= 0")
    verts, faces, cols, n = [], [], [], 0
    for value, box in enumerate(ndimage.find_objects(arr), start=1):
        if box is None:
            continue
        mask = np.pad(arr[box] == value, 1).astype(np.uint8)
        v, f, _, _ = marching_cubes(mask, 0.5)
        v += np.asarray([s.start for s in box], float) - 1.0
        rgba = np.asarray(colors(value) if colors is not None else (1.0, 1.0, 1.0, 1.0), float).reshape(4)
        verts.append(v)
        faces.append(f + n)
        cols.append(np.broadcast_to(rgba, (len(v), 4)))
        n += len(v)
    if not verts:
        return None
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(cols)


def _surface_kwargs(layer) -> dict:
    return {"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate, "shear": layer.shear,
            "affine": layer.affine.affine_matrix, "units": layer.units, "axis_labels": layer.axis_labels,
            "opacity": layer.opacity, "shading": "smooth", "name": layer.name + SURFACE_SUFFIX,
            "metadata": {"surface_of": layer.name}}


def _wants_surface(layer) -> bool:
    return (layer._type_string == "labels" and layer.ndim == 3 and layer.visible and not layer.multiscale
            and layer.metadata.get("surface_in_3d", True) is not False
            and int(np.asarray(layer.data).max(initial=0)) <= MAX_SURFACE_LABELS)


def _add_surface(viewer, layer) -> None:
    mesh = label_surfaces(layer.data, layer.get_color)
    if mesh is None:
        return
    vertices, faces, colors = mesh
    surfaces = _SURFACES.setdefault(viewer, {})
    surfaces[layer] = None  # taken: the layer-inserted event of the surface must not add another
    active = viewer.layers.selection.active
    try:
        surfaces[layer] = viewer.add_surface((vertices, faces), vertex_colors=colors, **_surface_kwargs(layer))
    except Exception:
        surfaces.pop(layer, None)
        raise
    viewer.layers.selection.active = active
    layer.visible = False
    if layer not in _WATCHED:
        _WATCHED.add(layer)
        ref = weakref.ref(viewer)
        layer.events.data.connect(lambda _e=None, lay=layer: _rebuild(ref(), lay))
        layer.events.labels_update.connect(lambda _e=None, lay=layer: _rebuild(ref(), lay))
        layer.events.visible.connect(lambda _e=None, lay=layer: _shown(ref(), lay))


def _drop_surface(viewer, layer) -> None:
    surface = _SURFACES.get(viewer, {}).pop(layer, None)
    if surface is None:
        return
    if surface in viewer.layers:
        viewer.layers.remove(surface)
    if layer in viewer.layers:
        layer.visible = True


def _rebuild(viewer, layer) -> None:
    """The labels changed while their surface stands in for them: a new surface."""
    if viewer is not None and _SURFACES.get(viewer, {}).get(layer) is not None and not layer.visible:
        _drop_surface(viewer, layer)
        if viewer.dims.ndisplay == 3 and layer in viewer.layers and _wants_surface(layer):
            _add_surface(viewer, layer)


def _shown(viewer, layer) -> None:
    """The user made a Labels layer visible in 3D (to paint on it): its volume replaces its surface."""
    if viewer is not None and layer.visible and _SURFACES.get(viewer, {}).get(layer) is not None:
        _drop_surface(viewer, layer)


def surfaces_in_3d(viewer) -> None:
    """In the 3D view, draw each visible 3D Labels layer as a Surface layer
    ('<name> (3D surface)': marching cubes of every label value, :func:`label_surfaces`, in the
    label colours) and hide the Labels layer; back in 2D the surfaces go and the Labels layers
    show again. Software OpenGL draws a mesh far faster than it ray-casts a label volume
    (``benchmarks/bench_napari.py``). To paint in 3D, make the Labels layer visible: its volume
    replaces its surface. A layer with ``metadata['surface_in_3d'] = False``, a multiscale one or
    one with more than :data:`MAX_SURFACE_LABELS` label values stays a volume."""
    surfaces = _SURFACES.setdefault(viewer, {})
    if viewer.dims.ndisplay != 3 or len(viewer.dims.displayed) != 3:
        for layer in list(surfaces):
            _drop_surface(viewer, layer)
        return
    for layer in list(viewer.layers):
        if layer not in surfaces and _wants_surface(layer) and not layer.name.endswith(SURFACE_SUFFIX):
            _add_surface(viewer, layer)


def _on_removed(viewer, event) -> None:
    layer = getattr(event, "value", None)
    surfaces = _SURFACES.get(viewer, {})
    if layer in surfaces:
        _drop_surface(viewer, layer)
    for lab, surf in list(surfaces.items()):  # the user deleted a surface: its labels show again
        if surf is layer:
            surfaces.pop(lab)
            if lab in viewer.layers:
                lab.visible = True


def radiological(viewer) -> None:
    """Keep ``viewer`` in the radiological display (once per viewer; safe to call again): superior
    up when the ``I→S`` axis is vertical, orientation letters in the text overlay (2D) and axes
    labelled I→S, A→P, R→L (3D), the scale bar on, status-bar positions in mm with the value's
    unit (HU, SUV), Labels layers drawn as surfaces in 3D (:func:`surfaces_in_3d`). Updated whenever the
    displayed axes or the layers change."""
    if viewer is None:
        return
    if viewer not in _INSTALLED:
        _INSTALLED.add(viewer)
        viewer.dims.events.order.connect(lambda _e=None: _update(viewer))
        viewer.dims.events.ndisplay.connect(lambda _e=None: _update(viewer))
        viewer.dims.events.axis_labels.connect(lambda _e=None: _update(viewer))
        viewer.layers.events.inserted.connect(lambda _e=None: _harmonise(viewer))
        viewer.dims.events.ndisplay.connect(lambda _e=None: surfaces_in_3d(viewer))
        viewer.layers.events.inserted.connect(lambda _e=None: surfaces_in_3d(viewer))
        viewer.layers.events.removed.connect(lambda e: _on_removed(viewer, e))
        viewer.canvas.overlays["scale_bar"].visible = True
    _harmonise(viewer)
    _update(viewer)
    surfaces_in_3d(viewer)


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
