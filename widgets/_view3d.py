"""View3D: a volume in 3D and three linked planes, offline, linked to a SliceViewer.

The browser view is NiiVue (a WebGL2 viewer) through the PyPI package ``ipyniivue``, an
anywidget whose JavaScript ships inside its wheel (about 6 MB installed): it renders without any
request leaving the machine, in JupyterLab and in headless Chromium (WebGL2 on SwiftShader).

Why NiiVue and not a view of our own (vtk.js or three.js shipped in medlab): NiiVue reads the
NIfTI header's sform itself, so millimetre geometry and orientation come from the same matrix
SimpleITK writes (no second implementation of LPS/RAS to get wrong), it resamples an overlay on
another grid (PET at 4 mm on CT at 1 mm) on the GPU, and does volume rendering, multiplanar
views and label colour tables already; a view of our own would add a JavaScript build and the
same size in vendored libraries. itkwidgets stays an optional, online-only extra (``view3d``).

Linking: the viewer's window (``window``/``level``) is the background volume's display range;
the viewer's slice (``axis``, ``index``) and, when the pointer is on the picture, its position,
set NiiVue's crosshair; a click in NiiVue (its crosshair moved) sets the viewer's slice to that
voxel's; the viewer's label layers (``set_overlay``) are label volumes in NiiVue.
The planes are oriented as SliceViewer shows them (radiological: patient right on the left;
sagittal: anterior on the left), checked on a phantom's marker in ``tests/test_e2e_jupyterlab.py``.
Orientation letters: NiiVue names the patient sides of each plane's top-left corner ("RA" on the
axial plane: patient right and anterior; "RS" coronal; "AS" sagittal). Its letters on the edges
land inside the picture when a single plane is shown (they are offset twice), so View3D uses the
corner text, which sits on the picture's corner in every layout (checked in the e2e test).

Smooth rotation without a GPU: NiiVue draws the whole scene synchronously, four times per pointer
event while a left drag rotates the 3D tile (and WebGL runs on the CPU, SwiftShader, where no GPU
is usable). View3D ships ipyniivue's own JavaScript with a small wrapper (:func:`_niivue_class`):
while a pointer is down on the canvas NiiVue draws at most once per animation frame (the newest
state), and while a left drag rotates the 3D tile it draws at ``rotate_resolution`` of its
resolution; the full-resolution picture is drawn again on release
(``benchmarks/bench_browser.py``, ``rotate_3d``). On software WebGL it also keeps multisampling
off (NiiVue turns it on where the CPU has more than 6 cores). Values beyond about 1e30 in
magnitude go to NiiVue divided by a power of ten (it computes in float32).

An exported notebook shows a static picture instead: the three planes through the crosshair,
drawn by :mod:`medlab.display` (:meth:`View3D.planes_png`).
"""

from __future__ import annotations

import base64
import functools
import html
import os
import re
import tempfile
import warnings

import ipywidgets as widgets
import numpy as np
import SimpleITK as sitk

import medlab.display
import medlab.enhance
from medlab._image import check_scalar

from ._viewer import SliceViewer

__all__ = ["View3D", "nifti_bytes"]

_LABEL_COLORMAPS = ("red", "green", "blue", "warm", "cool")


def _check_window(value) -> tuple[float, float]:
    """``overlay_window``: (window, level), checked by :func:`medlab.enhance.window_bounds` (a
    finite window > 0, a finite level), the error naming the argument."""
    try:
        window, level = value
        medlab.enhance.window_bounds(window, level)
    except (TypeError, ValueError):
        raise ValueError(f"`overlay_window` must be (window, level) with a finite window > 0 and a finite level; "
                         f"got {value!r}") from None
    return float(window), float(level)


# NiiVue computes intensities in float32 on the GPU: a display range wider than about 3e38 (a
# float32 image near its limits, a float64 one beyond them) overflowed and the view was black
_NIIVUE_MAX_ABS = 1e30


def _fit_niivue(image: sitk.Image, max_abs: float) -> tuple[sitk.Image, float]:
    """``(image for NiiVue, divisor)``: an image whose finite values reach beyond
    ``_NIIVUE_MAX_ABS`` in magnitude divided by a power of ten (float32; NaN stays NaN), else the
    image and 1. Display ranges sent with it are divided by the same divisor: the same picture."""
    if not max_abs > _NIIVUE_MAX_ABS:
        return image, 1.0
    divisor = 10.0 ** (int(np.ceil(np.log10(max_abs))) - 6)
    arr = sitk.GetArrayViewFromImage(image).astype(np.float64) / divisor
    out = sitk.GetImageFromArray(arr.astype(np.float32))
    out.CopyInformation(image)
    return out, divisor


def nifti_bytes(image: sitk.Image) -> bytes:
    """The image as gzipped NIfTI bytes (SimpleITK's writer: the sform holds its geometry)."""
    fd, path = tempfile.mkstemp(suffix=".nii.gz", prefix="medlab-view3d-")
    os.close(fd)
    try:
        sitk.WriteImage(image, path, useCompression=True)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)


def _import_niivue():
    try:
        import ipyniivue
    except ImportError:  # pragma: no cover - the jupyter extra installs it
        raise ImportError("View3D needs the 'ipyniivue' package: pip install 'medlab[jupyter]'") from None
    return ipyniivue


# Appended to ipyniivue's JavaScript module (same module scope: it reaches the module's NiiVue
# instance, INSTANCE, and wraps its default export, EXPORT). Public NiiVue API only: drawScene,
# resizeListener, inRenderTile, opts.forceDevicePixelRatio, opts.isAntiAlias, uiData.dpr.
_SMOOTH_JS = """
;function __medlabSmooth(nv, model) {
  if (!nv || !nv.canvas) return () => {};
  const canvas = nv.canvas;
  let st = nv.__medlabSmooth;
  if (!st) {
    // while a pointer is down on the canvas: at most one draw per animation frame (the newest state)
    st = nv.__medlabSmooth = { down: false, frame: 0, ratio: null, draw: nv.drawScene.bind(nv) };
    Object.defineProperty(canvas, "medlabNiivue", { value: nv });  // for tests and debugging
    nv.drawScene = function () {
      if (!st.down) return st.draw();
      if (!st.frame) st.frame = requestAnimationFrame(() => { st.frame = 0; st.draw(); });
    };
    canvas.addEventListener("pointerdown", (e) => {
      st.down = true;
      // a left drag on the 3D tile rotates: draw it at a lower resolution until release
      const scale = Number(model.get("_rotate_resolution"));
      if (e.button !== 0 || !(scale > 0 && scale < 1) || st.ratio !== null) return;
      const r = canvas.getBoundingClientRect(), dpr = nv.uiData.dpr;
      if (nv.inRenderTile((e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr) < 0) return;
      st.ratio = nv.opts.forceDevicePixelRatio;
      nv.opts.forceDevicePixelRatio = dpr * scale;
      nv.resizeListener();
      // drawn now: NiiVue's mousedown handler (next) finds the tiles at the new resolution
      if (st.frame) { cancelAnimationFrame(st.frame); st.frame = 0; }
      st.draw();
    }, true);
    canvas.addEventListener("pointermove", (e) => { if (st.down && e.buttons === 0) st.end(); }, true);
    st.end = () => setTimeout(() => {  // after NiiVue's own mouseup handler
      if (!st.down) return;
      st.down = false;
      if (st.frame) { cancelAnimationFrame(st.frame); st.frame = 0; }
      if (st.ratio !== null) { nv.opts.forceDevicePixelRatio = st.ratio; st.ratio = null; nv.resizeListener(); }
      else st.draw();
    }, 0);
  }
  const end = () => st.end();
  window.addEventListener("pointerup", end, true);
  window.addEventListener("pointercancel", end, true);
  return () => {
    window.removeEventListener("pointerup", end, true);
    window.removeEventListener("pointercancel", end, true);
  };
}
function __medlabSoftwareWebGL() {
  // the WebGL renderer the page gets: SwiftShader (or llvmpipe) where no GPU is usable
  const probe = document.createElement("canvas").getContext("webgl2");
  if (!probe) return false;
  const info = probe.getExtension("WEBGL_debug_renderer_info");
  const name = info ? String(probe.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
  const lose = probe.getExtension("WEBGL_lose_context");
  if (lose) lose.loseContext();
  return /swiftshader|llvmpipe|softpipe|software/i.test(name);
}
const __medlabView = {
  ...EXPORT,
  async render(ctx) {
    // NiiVue turns multisampling on where the CPU has more than 6 cores: on software WebGL it
    // only slows every frame down; off there unless the Python side chose
    const nv = INSTANCE;
    if (nv && !nv.canvas && (nv.opts.isAntiAlias === null || nv.opts.isAntiAlias === undefined)
        && __medlabSoftwareWebGL()) nv.opts.isAntiAlias = false;
    const cleanup = await EXPORT.render(ctx);
    const off = __medlabSmooth(INSTANCE, ctx.model);
    return () => { off(); if (typeof cleanup === "function") cleanup(); };
  },
};
export { __medlabView as default };
"""


def _smooth_esm(source: str) -> str | None:
    """ipyniivue's JavaScript module with :data:`_SMOOTH_JS` appended, or None where its bundle
    is not the one this wrapper knows (the module's NiiVue instance or default export not found)."""
    instance = re.search(r'if\(!([\w$]+)\)\{console\.log\("Creating new Niivue instance"\)', source)
    export = re.search(r"export\s*\{\s*([\w$]+)\s+as\s+default\s*\};?\s*$", source)
    if instance is None or export is None:
        return None
    js = _SMOOTH_JS.replace("INSTANCE", instance.group(1)).replace("EXPORT", export.group(1))
    return source[:export.start()] + js


@functools.cache
def _niivue_class():
    """``ipyniivue.NiiVue`` with smooth drags (:data:`_SMOOTH_JS`): the JavaScript module is
    ipyniivue's own with a wrapper appended; the Python side is ipyniivue's unchanged."""
    import pathlib

    import traitlets

    niivue = _import_niivue()
    path = pathlib.Path(niivue.__file__).parent / "static" / "widget.js"
    esm = _smooth_esm(path.read_text(encoding="utf-8")) if path.is_file() else None
    if esm is None:
        warnings.warn(f"View3D: the JavaScript of ipyniivue {getattr(niivue, '__version__', '?')} is not the one "
                      "medlab wraps; NiiVue draws on every pointer event (slower 3D rotation without a GPU)",
                      RuntimeWarning, stacklevel=3)
        return niivue.NiiVue

    class SmoothNiiVue(niivue.NiiVue):
        _esm = esm
        _rotate_resolution = traitlets.Float(0.5).tag(sync=True)

    SmoothNiiVue.__qualname__ = SmoothNiiVue.__name__ = "SmoothNiiVue"
    return SmoothNiiVue


class View3D(widgets.VBox):
    """The viewer's volume in 3D (volume rendering) and three planes, linked to the viewer.

    Parameters
    ----------
    viewer : SliceViewer
        A 3D viewer; its image, window, slice and label layers are shown and followed.
    overlay : sitk.Image, optional
        A second scalar image in the same physical space on any grid (e.g. PET in SUV on a CT),
        drawn over the planes with ``overlay_colormap``.
    overlay_window : (float, float), optional
        ``(window, level)`` of the overlay (default: its ``'auto'`` window).
    overlay_colormap : str
        A NiiVue colour map name (``'hot'``, ``'warm'``, ...).
    overlay_opacity : float
        In [0, 1].
    height : int
        Height on screen, CSS pixels.
    pixel_ratio : float, optional
        Canvas pixels per CSS pixel (NiiVue's ``force_device_pixel_ratio``; default: the
        screen's). With software WebGL (SwiftShader, no GPU) a frame's cost grows with the
        canvas pixels, not with the volume's size: 0.5 draws a quarter of the pixels, for a
        coarser picture (``benchmarks/bench_browser.py``, ``rotate_3d``).
    rotate_resolution : float
        In [0.1, 1]: the fraction of the picture's resolution (per side) NiiVue draws at while a
        left drag rotates the 3D tile; the full picture is drawn again on release. 1 keeps the
        full resolution while rotating (smooth without a GPU only on small canvases).

    Attributes
    ----------
    nv : ipyniivue.NiiVue
        The browser view.
    crosshair_index : tuple of int
        The voxel (numpy ``(z, y, x)`` of ``viewer.image``) the crosshair is on.
    """

    def __init__(self, viewer: SliceViewer, *, overlay=None, overlay_window=None, overlay_colormap: str = "hot",
                 overlay_opacity: float = 0.6, height: int = 480, pixel_ratio: float | None = None,
                 rotate_resolution: float = 0.5):
        if not isinstance(viewer, SliceViewer):
            raise TypeError(f"`viewer` must be a SliceViewer; got {type(viewer).__name__}")
        if viewer.ndim != 3:
            raise ValueError("`viewer` must show a 3D image (a 2D image has no 3D view)")
        opacity = float(overlay_opacity)
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"`overlay_opacity` must be in [0, 1]; got {overlay_opacity!r}")
        if isinstance(height, bool) or not isinstance(height, int) or not 100 <= height <= 4000:
            raise ValueError(f"`height` must be an int in [100, 4000] (CSS pixels); got {height!r}")
        if pixel_ratio is not None:
            ratio = float(pixel_ratio)
            if not (np.isfinite(ratio) and 0.1 <= ratio <= 4.0):
                raise ValueError(f"`pixel_ratio` must be in [0.1, 4] (canvas pixels per CSS pixel); got {pixel_ratio!r}")
        try:
            rotate = float(rotate_resolution)
        except (TypeError, ValueError):
            rotate = float("nan")
        if isinstance(rotate_resolution, bool) or not 0.1 <= rotate <= 1.0:
            raise ValueError(f"`rotate_resolution` must be in [0.1, 1] (a fraction of the resolution per side); "
                             f"got {rotate_resolution!r}")
        niivue = _import_niivue()
        super().__init__()
        self.viewer = viewer
        self.overlay = None
        self.overlay_colormap, self.overlay_opacity = str(overlay_colormap), opacity
        if overlay is not None:
            if not isinstance(overlay, sitk.Image):
                raise TypeError(f"`overlay` must be a SimpleITK.Image (it carries its geometry); got "
                                f"{type(overlay).__name__}")
            check_scalar(overlay, "overlay")
            if overlay.GetDimension() != 3:
                raise ValueError(f"`overlay` must be 3D; got {overlay.GetDimension()}D")
            self.overlay = overlay
            self.overlay_window = (medlab.enhance.resolve_window(overlay, preset="auto") if overlay_window is None
                                   else _check_window(overlay_window))
        elif overlay_window is not None:
            raise ValueError("`overlay_window` is the window of an `overlay`; none was given")
        self.nv = _niivue_class()(
            height=int(height), slice_type=niivue.SliceType.MULTIPLANAR,
            multiplanar_show_render=niivue.ShowRender.ALWAYS, is_colorbar=False,
            show_3d_crosshair=True, back_color=(0.0, 0.0, 0.0, 1.0),
            is_radiological_convention=True,  # as SliceViewer: patient right on the left
            sagittal_nose_left=True,  # as SliceViewer: anterior on the left
            is_corner_orientation_text=True,  # "RA": the sides of the picture's top-left corner
            **({} if pixel_ratio is None else {"force_device_pixel_ratio": float(pixel_ratio)}))
        if self.nv.has_trait("_rotate_resolution"):
            self.nv._rotate_resolution = rotate
        if self.overlay is not None and self.overlay_colormap.lower() not in self.nv.colormaps():
            self.nv.close()
            raise ValueError(f"`overlay_colormap` must be a NiiVue colour map such as 'hot' or 'warm' (all: "
                             f"ipyniivue.NiiVue().colormaps()); got {overlay_colormap!r}")
        self._niivue = niivue
        self._labels: list[str] = []
        self.crosshair_index = tuple(int(n) // 2 for n in viewer.array.shape)
        self._load()
        viewer.observe(self._on_window, names=["window", "level"])
        viewer.observe(self._on_slice, names=["axis", "index"])
        viewer.observe(self._on_cursor, names=["cursor"])
        self.nv.on_location_change(self._on_niivue_location)
        self._on_slice()
        self._notice = widgets.HTML()
        self._show_notice()

    def _show_notice(self) -> None:
        """The viewer's notice (no finite values, a constant image, a conversion) above NiiVue, so a
        black 3D view is explained."""
        notice = self.viewer.notice
        self._notice.value = f"<span style='color:#b35900'>{html.escape(notice)}</span>" if notice else ""
        self.children = [self._notice, self.nv] if notice else [self.nv]

    # ------------------------------------------------------------------ volumes
    def _load(self) -> None:
        v = self.viewer
        image, self._divisor = _fit_niivue(v.image, max(abs(float(b)) for b in v.intensity_range))
        low, high = medlab.enhance.window_bounds(v.window, v.level)
        volumes = [{"data": nifti_bytes(image), "name": "image.nii.gz", "colormap": "gray",
                    "cal_min": low / self._divisor, "cal_max": high / self._divisor}]
        if self.overlay is not None:
            finite = sitk.GetArrayViewFromImage(self.overlay)
            finite = np.abs(finite[np.isfinite(finite)]) if finite.dtype.kind == "f" else np.abs(finite)
            overlay, divisor = _fit_niivue(self.overlay, float(finite.max()) if finite.size else 0.0)
            lo, hi = medlab.enhance.window_bounds(*self.overlay_window)
            volumes.append({"data": nifti_bytes(overlay), "name": "overlay.nii.gz",
                            "colormap": self.overlay_colormap, "cal_min": lo / divisor, "cal_max": hi / divisor,
                            "opacity": self.overlay_opacity})
        self._labels = []
        for k, (name, layer) in enumerate(
                (n, lay) for n, lay in v._layers.items() if lay.kind == "overlay" and lay.labels is not None):
            lab = sitk.GetImageFromArray((np.asarray(layer.labels) > 0).astype(np.uint8))
            lab.CopyInformation(v.image)
            volumes.append({"data": nifti_bytes(lab), "name": f"labels-{name}.nii.gz",  # apart from the overlay's name
                            "colormap": _LABEL_COLORMAPS[k % len(_LABEL_COLORMAPS)],
                            "cal_min": 0.5, "cal_max": 1.0, "opacity": 0.5})
            self._labels.append(name)
        self.nv.load_volumes(volumes)

    @property
    def labels(self) -> tuple[str, ...]:
        """The viewer's label layers shown (reload with :meth:`refresh` after changing them)."""
        return tuple(self._labels)

    def refresh(self) -> None:
        """Reload the volumes (after the viewer's image or label layers changed)."""
        self._show_notice()
        self._load()
        self._on_window()
        self._on_slice()

    def close(self) -> None:
        """Close the view: NiiVue's widget (its WebGL context in the page) too, and stop following
        the viewer."""
        v, nv = getattr(self, "viewer", None), getattr(self, "nv", None)  # None: __init__ raised
        for handler, names in ((self._on_window, ["window", "level"]), (self._on_slice, ["axis", "index"]),
                               (self._on_cursor, ["cursor"])):
            try:
                if v is not None:
                    v.unobserve(handler, names=names)
            except ValueError:  # closed before
                pass
        if nv is not None:
            nv.close()
        super().close()

    # ------------------------------------------------------------------ linking
    def _on_window(self, _change=None) -> None:
        low, high = medlab.enhance.window_bounds(self.viewer.window, self.viewer.level)
        if self.nv.volumes:
            vol = self.nv.volumes[0]
            vol.cal_min, vol.cal_max = float(low) / self._divisor, float(high) / self._divisor

    def _on_slice(self, _change=None) -> None:
        v = self.viewer
        z, y, x = self.crosshair_index
        axis_pos = {"axial": 0, "coronal": 1, "sagittal": 2}[v.axis]
        idx = [z, y, x]
        idx[axis_pos] = v.index
        self.set_crosshair_index(tuple(idx))

    def _on_cursor(self, change) -> None:
        c = change["new"]
        if c and "index" in c:
            self.set_crosshair_index(tuple(c["index"]))

    def _on_niivue_location(self, location) -> None:
        """A click or arrow key in NiiVue moved its crosshair: the viewer shows that voxel's slice.

        NiiVue reports the position in its world millimetres (RAS, the NIfTI sform's frame);
        SimpleITK's points are LPS: ``x`` and ``y`` change sign.
        """
        mm = location.get("mm") if isinstance(location, dict) else None
        if mm is None or len(mm) < 3:
            return
        try:
            idx = self.viewer.index_of_point((-float(mm[0]), -float(mm[1]), float(mm[2])))
        except ValueError:  # outside the volume (NiiVue clamps; a rounding at the edge)
            return
        self.crosshair_index = idx
        v = self.viewer
        pos = idx[{"axial": 0, "coronal": 1, "sagittal": 2}[v.axis]]
        if v.index != pos:
            v.set_slice(pos)

    def crosshair_fraction(self, index) -> list[float]:
        """NiiVue's crosshair position (fractions of its RAS-ordered volume) of a numpy index.

        The image is in LPS orientation (:class:`SliceViewer`): NiiVue's R axis runs against
        numpy ``x``, its A axis against ``y``, its S axis with ``z``; positions are voxel
        centres.
        """
        nz, ny, nx = self.viewer.array.shape
        z, y, x = self.viewer.check_index(index, "index")
        return [1.0 - (x + 0.5) / nx, 1.0 - (y + 0.5) / ny, (z + 0.5) / nz]

    def set_crosshair_index(self, index) -> None:
        """Put the crosshair (all three planes) on a numpy index of ``viewer.image``."""
        idx = self.viewer.check_index(index, "index")
        self.crosshair_index = idx
        self.nv.scene.crosshair_pos = self.crosshair_fraction(idx)

    # ------------------------------------------------------------------ static picture
    def planes(self) -> np.ndarray:
        """Axial, coronal and sagittal planes through the crosshair side by side (RGB, uint8),
        drawn by :func:`medlab.display.render` with the viewer's window and label contours."""
        v = self.viewer
        z, y, x = self.crosshair_index
        panels = []
        for axis, i in (("axial", z), ("coronal", y), ("sagittal", x)):
            sl = medlab.display.slice_of(v.array, i, axis)
            labels = None
            for k, name in enumerate(self._labels):  # one colour per label layer, as in NiiVue
                if name in v._layers:
                    lab = (medlab.display.slice_of(np.asarray(v._layers[name].labels), i, axis) > 0) * np.uint8(k + 1)
                    labels = lab if labels is None else np.maximum(labels, lab)
            rgb = medlab.display.render(sl, v.window, v.level, overlay=labels, overlay_mode="contour")
            if rgb.ndim == 2:
                rgb = np.repeat(rgb[:, :, None], 3, axis=2)
            panels.append(self._true_aspect(rgb, axis))
        height = max(p.shape[0] for p in panels)
        padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0))) for p in panels]
        return np.concatenate(padded, axis=1)

    def _true_aspect(self, rgb: np.ndarray, axis: str) -> np.ndarray:
        sx, sy, sz = self.viewer.image.GetSpacing()
        row_mm = {"axial": sy, "coronal": sz, "sagittal": sz}[axis]
        col_mm = {"axial": sx, "coronal": sx, "sagittal": sy}[axis]
        rows = max(1, round(rgb.shape[0] * row_mm / col_mm))
        if rows == rgb.shape[0]:
            return rgb
        pick = np.minimum((np.arange(rows) * rgb.shape[0] / rows).astype(int), rgb.shape[0] - 1)
        return rgb[pick]

    def planes_png(self) -> bytes:
        return medlab.display.encode(self.planes())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        bundle["image/png"] = base64.b64encode(self.planes_png()).decode("ascii")
        return bundle
