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

__all__ = ["SURFACE_DELAY_MS", "SURFACE_SUFFIX", "current_viewer", "install_current", "label_surfaces",
           "orientation_text", "radiological", "surfaces_in_3d", "update_surfaces", "window_limits"]

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
#: Delay (ms) between the last change of a Labels layer's data (a script's edit, a refresh, an
#: undo) and the update of its 3D surface: a burst of edits is remeshed once.
SURFACE_DELAY_MS = 250
_SURFACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewer -> {labels layer: surface layer}
_MESHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # labels layer -> _LabelMeshes of its surface
_TIMERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # labels layer -> QTimer of its surface's update
_RECOLOUR: weakref.WeakSet = weakref.WeakSet()  # labels layers whose colours changed since their last update
_WATCHED: weakref.WeakSet = weakref.WeakSet()  # labels layers whose data changes update their surface


def _label_array(data) -> np.ndarray:
    arr = np.asarray(data)
    if arr.ndim != 3 or arr.dtype.kind not in "iub":
        raise ValueError(f"data must be a 3D integer label array; got {arr.dtype} of shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if arr.size and arr.min() < 0:
        raise ValueError("data has negative label values; surfaces need labels >= 0")
    return arr


class _LabelMeshes:
    """The mesh of each label value of one label array, kept with a copy of the array it was made
    from: :meth:`update` remeshes only the values whose voxels changed since (an edit of one
    organ of many remeshes that organ)."""

    def __init__(self):
        self.data: np.ndarray | None = None  # the labels last meshed (a copy)
        self.meshes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # value -> (vertices (z, y, x), faces)
        self.meshed = 0  # label values meshed so far (marching cubes runs)

    def update(self, data) -> set[int]:
        """Remesh the values whose voxels changed (all of them the first time or after a change
        of shape); returns those values (empty: nothing changed)."""
        from scipy import ndimage
        from skimage.measure import marching_cubes

        arr = _label_array(data)
        if self.data is None or self.data.shape != arr.shape:
            self.meshes = {}
            values = None
        else:
            changed = self.data != arr
            if not changed.any():
                return set()
            values = {int(v) for v in np.unique(self.data[changed])} | {int(v) for v in np.unique(arr[changed])}
            values.discard(0)
        boxes = ndimage.find_objects(arr)
        todo = range(1, len(boxes) + 1) if values is None else sorted(values)
        for value in todo:
            box = boxes[value - 1] if value <= len(boxes) else None
            if box is None:  # no voxel has this value (any more)
                self.meshes.pop(value, None)
                continue
            mask = np.pad(arr[box] == value, 1).astype(np.uint8)  # padded: a mask at the border is closed
            v, f, _, _ = marching_cubes(mask, 0.5)
            v += np.asarray([s.start for s in box], float) - 1.0
            self.meshes[value] = (v, f)
            self.meshed += 1
        self.data = arr.copy()
        return set(todo)

    def mesh(self, colors=None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """All values' meshes as one ``(vertices, faces, vertex_colors)``, or None without labels."""
        verts, faces, cols, n = [], [], [], 0
        for value in sorted(self.meshes):
            v, f = self.meshes[value]
            rgba = np.asarray(colors(value) if colors is not None else (1.0, 1.0, 1.0, 1.0), float).reshape(4)
            verts.append(v)
            faces.append(f + n)
            cols.append(np.broadcast_to(rgba, (len(v), 4)))
            n += len(v)
        if not verts:
            return None
        return np.concatenate(verts), np.concatenate(faces), np.concatenate(cols)


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
    meshes = _LabelMeshes()
    meshes.update(data)
    return meshes.mesh(colors)


def _surface_kwargs(layer) -> dict:
    return {"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate, "shear": layer.shear,
            "affine": layer.affine.affine_matrix, "units": layer.units, "axis_labels": layer.axis_labels,
            "opacity": layer.opacity, "shading": "smooth", "name": layer.name + SURFACE_SUFFIX,
            "metadata": {"surface_of": layer.name}}


def _wants_surface(layer) -> bool:
    return (layer._type_string == "labels" and layer.ndim == 3 and layer.visible
            and layer.metadata.get("surface_in_3d", True) is not False and _wants_surface_data(layer))


def _add_surface(viewer, layer) -> None:
    meshes = _LabelMeshes()
    meshes.update(layer.data)
    mesh = meshes.mesh(layer.get_color)
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
    _MESHES[layer] = meshes
    viewer.layers.selection.active = active
    layer.visible = False
    if layer not in _WATCHED:
        _WATCHED.add(layer)
        ref = weakref.ref(viewer)
        for event in (layer.events.data, layer.events.labels_update, layer.events.set_data):  # assigned, painted
            event.connect(lambda _e=None, lay=layer: _schedule(ref(), lay))
        layer.events.colormap.connect(lambda _e=None, lay=layer: _schedule(ref(), lay, recolour=True))
        layer.events.visible.connect(lambda _e=None, lay=layer: _shown(ref(), lay))
        # an in-place edit then ``refresh()``: napari skips a hidden layer's refresh (no event at all)
        original, layer_ref = layer.refresh, weakref.ref(layer)

        def refresh(*args, **kwargs):
            original(*args, **kwargs)
            _schedule(ref(), layer_ref())

        layer.refresh = refresh


def _drop_surface(viewer, layer) -> None:
    surface = _SURFACES.get(viewer, {}).pop(layer, None)
    _MESHES.pop(layer, None)
    _RECOLOUR.discard(layer)
    if layer in _TIMERS:
        _TIMERS[layer].stop()
    if surface is None:
        return
    if surface in viewer.layers:
        viewer.layers.remove(surface)
    if layer in viewer.layers:
        layer.visible = True


def _schedule(viewer, layer, recolour: bool = False) -> None:
    """The labels' data (or colours) changed while their surface stands in for them: update the
    surface :data:`SURFACE_DELAY_MS` after the last change (one update for a burst of edits)."""
    if viewer is None or _SURFACES.get(viewer, {}).get(layer) is None or layer.visible:
        return
    from qtpy.QtCore import QTimer

    timer = _TIMERS.get(layer)
    if timer is None:  # one per layer, kept (weak references: the timer keeps neither alive)
        timer = QTimer()
        timer.setSingleShot(True)
        timer.setInterval(SURFACE_DELAY_MS)
        view_ref, layer_ref = weakref.ref(viewer), weakref.ref(layer)
        timer.timeout.connect(lambda: _update_surface(view_ref(), layer_ref()))
        _TIMERS[layer] = timer
    if recolour:
        _RECOLOUR.add(layer)
    timer.start()


def _update_surface(viewer, layer) -> bool:
    """Bring the surface of ``layer`` up to date now: remesh only the label values whose voxels
    changed (:class:`_LabelMeshes`) and replace the Surface layer's data in place. Returns True
    when the surface changed."""
    if layer is None:
        return False
    if layer in _TIMERS:
        _TIMERS[layer].stop()
    recolour = layer in _RECOLOUR
    _RECOLOUR.discard(layer)
    surface = _SURFACES.get(viewer, {}).get(layer) if viewer is not None else None
    meshes = _MESHES.get(layer)
    if surface is None or meshes is None or layer.visible:
        return False
    if layer not in viewer.layers or viewer.dims.ndisplay != 3 or not _wants_surface_data(layer):
        _drop_surface(viewer, layer)
        return True
    if not meshes.update(layer.data) and not recolour:
        return False
    mesh = meshes.mesh(layer.get_color)
    if mesh is None:  # every label erased: the (empty) labels show again
        _drop_surface(viewer, layer)
        return True
    vertices, faces, colors = mesh
    with surface.events.set_data.blocker(), surface.events.data.blocker():  # no redraw in between
        surface.vertex_colors = None  # napari checks the old colours against the new vertices
        surface.data = (vertices, faces)
    surface.vertex_colors = colors  # one redraw: vispy computes the mesh's normals once
    return True


def _wants_surface_data(layer) -> bool:
    """What :func:`_wants_surface` asks of a layer's data (checked alone while the layer is hidden
    behind its surface): one resolution level, at most :data:`MAX_SURFACE_LABELS` label values."""
    return not layer.multiscale and int(np.asarray(layer.data).max(initial=0)) <= MAX_SURFACE_LABELS


def update_surfaces(viewer) -> int:
    """Update now the 3D surfaces whose labels changed (otherwise done :data:`SURFACE_DELAY_MS`
    after the last change): for a script that edits labels and takes a screenshot at once.
    Returns how many surfaces changed."""
    return sum(_update_surface(viewer, layer) for layer in list(_SURFACES.get(viewer, {})))


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
    one with more than :data:`MAX_SURFACE_LABELS` label values stays a volume.

    A change of the labels (assigned, edited in place and refreshed, undone, recoloured) updates
    their surface in place :data:`SURFACE_DELAY_MS` after the last change, remeshing only the
    label values whose voxels changed; :func:`update_surfaces` does it at once."""
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
