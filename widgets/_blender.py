"""RegistrationBlender: two images on one grid, fused four ways, and a registration run live.

The fused picture is always a :mod:`medlab.fusion` result (alpha blend, checkerboard,
difference; flicker = the alpha blends of :func:`medlab.fusion.flicker_frames`), shown through a
:class:`~medlab.widgets.SliceViewer` with :meth:`~medlab.widgets.SliceViewer.set_image`. A
registration is a :func:`medlab.registration.register` call on a background thread: the
kernel stays free, the metric curve and the progress bar follow each iteration, the Stop
button makes the ``progress`` callback return False, and the view switches to the registered
image when it ends.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np
import SimpleITK as sitk
import traitlets as t

import medlab.enhance
import medlab.fusion
import medlab.registration
from medlab._image import as_sitk, check_scalar
from medlab._options import check_choice

from ._jobs import BackgroundJob, JobOwner
from ._live import Throttle
from ._plot import LinePlot
from ._viewer import SliceViewer, StaticPNG

__all__ = ["RegistrationBlender", "BLEND_MODES"]

BLEND_MODES = ("alpha", "checkerboard", "difference", "flicker")

# register()'s progress messages: "level 1/3, iteration 12, metric -0.5123" (demons: "mean squares")
_PROGRESS = re.compile(r"level (\d+)/(\d+), iteration (\d+), (?:metric|mean squares) (\S+)")
_CLASS_PREFIX = re.compile(r"\b[A-Z]\w*(?:Optimizer|Template|Method)\w*:\s*")
_PLAIN = (
    (re.compile(r"Maximum number of iterations \((\d+)\) exceeded\.?", re.I),
     r"reached the iteration limit (\1)"),
    (re.compile(r"Step too small after (\d+) iterations\..*?(?=;|$)", re.I),
     r"converged after \1 iterations (the step became smaller than the minimum)"),
    (re.compile(r"Convergence checker passed at iteration (\d+)\.?", re.I), r"converged at iteration \1"),
    (re.compile(r".*stopped by the `progress` callback.*", re.I), "stopped on request"),
)


def plain_stop_reason(reason: str) -> str:
    """An optimiser's stop condition in words: no class names, no internal callback names.

    >>> plain_stop_reason("RegularStepGradientDescentOptimizerv4: Maximum number of iterations (50) exceeded.")
    'reached the iteration limit (50)'
    """
    text = _CLASS_PREFIX.sub("", str(reason)).strip()
    for pattern, words in _PLAIN:
        text = pattern.sub(words, text)
    return text


def _lps(img: sitk.Image) -> sitk.Image:
    if img.GetDimension() == 3 and not np.allclose(img.GetDirection(), np.eye(3).ravel(), atol=1e-6):
        return sitk.DICOMOrient(img, "LPS")
    return img


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6))


class RegistrationBlender(JobOwner, StaticPNG, widgets.VBox):
    """A fixed and a moving image on the fixed grid: alpha blend, checkerboard, difference, flicker.

    Parameters
    ----------
    fixed : sitk.Image or (M, N[, P]) ndarray
        The reference image (its grid is the grid shown).
    moving : sitk.Image or ndarray
        The other image: on the fixed grid already (e.g. ``RegistrationResult.resampled``), or
        a ``sitk.Image`` on any grid, then resampled onto the fixed grid through the identity
        (:func:`medlab.registration.resample`: physical coordinates are trusted). A registration
        run from the widget starts from this image.
    mode : {'alpha', 'checkerboard', 'difference', 'flicker'}
    alpha : float
        Weight of the moving image in the blend, in [0, 1].
    tiles : int
        Checkerboard tiles per axis, in-plane (3D volumes: ``(1, tiles, tiles)``, the same
        pattern on every axial slice).
    n_frames : int
        Flicker frames (2: flick between the two; more: cross-fade).
    window1, window2 : None, str or (float, float)
        Display window mapping each image onto [0, 1] before fusing (as in
        :func:`medlab.fusion.alpha_blend`): a ``(window, level)`` pair, a
        :func:`medlab.enhance.presets` name, or ``'auto'`` (default); None keeps raw values
        (same modality). Resolved once on the whole image.
    spacing : sequence of float, optional
        Voxel size (mm, array axis order) for numpy input.
    flicker_interval_ms : int
        Time per flicker frame of the Play button (runs in the browser).
    **viewer_kwargs
        :class:`SliceViewer` options (``axis``, ``index``, ``display_width``, ``title``, ``overlay``).

    Attributes
    ----------
    mode, alpha, tiles, frame : traitlets
        The view state (``frame``: the flicker frame shown).
    fused : ndarray of float32
        The fused image shown (numpy order, fixed grid).
    windows : ((float, float), (float, float)) or None
        The resolved ``(window, level)`` of the fixed and the moving image.
    result : RegistrationResult or None
        The last registration run here that ended normally.
    trace : list of dict
        Live metric values of the running (or last) registration: ``level`` (0-based),
        ``iteration``, ``metric``, as reported to ``progress`` (5 significant digits).
    job : BackgroundJob or None
        The last registration job (``status``, ``stop_reason``, ``join()``).
    """

    mode = t.Enum(BLEND_MODES, default_value="alpha")
    alpha = t.Float(0.5)
    tiles = t.Int(4)
    frame = t.Int(0)

    def __init__(self, fixed, moving, *, mode: str = "alpha", alpha: float = 0.5, tiles: int = 4,
                 n_frames: int = 2, window1="auto", window2="auto", spacing=None,
                 flicker_interval_ms: int = 500, **viewer_kwargs):
        super().__init__()
        fimg, _ = as_sitk(fixed, spacing=spacing, name="fixed")
        check_scalar(fimg, "fixed")
        self.fixed = _lps(fimg)
        self._window_specs = (window1, window2)
        self.n_frames = int(n_frames)
        if self.n_frames < 2:
            raise ValueError(f"`n_frames` must be >= 2; got {n_frames!r}")
        self._u1 = self._unit(self.fixed, window1, "window1")
        self.windows = None
        self._lock = threading.RLock()
        self._cache: OrderedDict = OrderedDict()
        self.result = None
        self.trace: list[dict] = []
        self.job: BackgroundJob | None = None
        self.fused = None

        viewer_kwargs.setdefault("title", "registration blend")
        self.viewer = SliceViewer(self.fixed, window=1.0, level=0.5, **viewer_kwargs)
        self._mode = widgets.ToggleButtons(options=list(BLEND_MODES), value=check_choice("mode", mode, BLEND_MODES),
                                           style={"button_width": "auto"})
        self._alpha = widgets.FloatSlider(description="alpha", min=0.0, max=1.0, step=0.01, value=0.5,
                                          continuous_update=True, readout_format=".2f")
        self._live_alpha = Throttle(self._apply_alpha_slider)
        self._tiles = widgets.IntSlider(description="tiles", min=1, max=32, value=4, continuous_update=False)
        self._play = widgets.Play(min=0, max=self.n_frames - 1, step=1, interval=int(flicker_interval_ms),
                                  description="flicker", repeat=True)
        self._frame = widgets.IntSlider(description="frame", min=0, max=self.n_frames - 1, value=0)
        widgets.jslink((self._play, "value"), (self._frame, "value"))
        self._run = widgets.Button(description="register", icon="play", tooltip="run medlab.registration.register")
        self._stop = widgets.Button(description="stop", icon="stop", disabled=True,
                                    tooltip="stop the registration at its next iteration")
        self._progress = widgets.FloatProgress(min=0.0, max=1.0, value=0.0, description="progress")
        self._status = widgets.HTML("", layout=widgets.Layout(width="100%"))
        self.plot = LinePlot(xlabel="iteration (all levels)", ylabel="metric (lower is better)",
                             title="registration metric", integer_x=True)
        self._register_kwargs: dict = {}

        with self.viewer.hold_redraw():
            self.set_moving(moving, _draw=False)
            self.set_alpha(alpha)
            self.set_tiles(tiles)
            self.mode = self._mode.value
            self._update()
        self.observe(self._on_state, names=["mode", "alpha", "tiles", "frame"])
        self._mode.observe(lambda c: self.set_mode(c["new"]), names="value")
        self._alpha.observe(lambda _c: self._live_alpha(), names="value")
        self._tiles.observe(lambda c: self.set_tiles(c["new"]), names="value")
        self._frame.observe(lambda c: self.set_frame(c["new"]), names="value")
        self._run.on_click(lambda _b: self.run_registration(**self._register_kwargs))
        self._stop.on_click(lambda _b: self.stop())
        self._show_controls()
        # the picture never shrinks (flex 0 0 auto); the side panel has a fixed width and wraps
        # its text, and moves under the picture when the cell is narrower than both
        self.viewer.layout.flex = "0 0 auto"
        # the progress bar's default width (description + 300 px) and a 100 % wide status line
        # plus its margins are wider than the panel: a scrollbar (seen in JupyterLab: 384 px in
        # a 380 px panel); both are as wide as the plot
        self._progress.layout.width = self._status.layout.width = f"{self.plot.size[0]}px"
        side = widgets.VBox([self.plot, self._progress, widgets.HBox([self._run, self._stop]), self._status],
                            layout=widgets.Layout(width=f"{self.plot.size[0] + 20}px", flex="0 0 auto"))
        self.children = [
            self._mode,
            widgets.HBox([self.viewer, side], layout=widgets.Layout(flex_flow="row wrap", overflow="visible")),
            widgets.HBox([self._alpha, self._tiles, self._play, self._frame]),
        ]

    # ------------------------------------------------------------------ inputs
    def _unit(self, img: sitk.Image, spec, name: str) -> np.ndarray:
        """The image on [0, 1] through its display window (raw for None), numpy order."""
        if spec is None:
            return sitk.GetArrayFromImage(img)
        if isinstance(spec, str):
            w, lev = medlab.enhance.resolve_window(img, preset=spec)
        else:
            try:
                w, lev = (float(v) for v in spec)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be None, a preset name or a (window, level) pair; "
                                f"got {spec!r}") from None
        self._resolved = getattr(self, "_resolved", {})
        self._resolved[name] = (float(w), float(lev))
        return sitk.GetArrayFromImage(medlab.enhance.window_level(img, window=w, level=lev))

    def set_moving(self, moving, *, _draw: bool = True, _registered: bool = False) -> None:
        """Replace the moving image (on the fixed grid, or a sitk.Image on any grid); a
        registration started afterwards starts from it."""
        if isinstance(moving, sitk.Image):
            check_scalar(moving, "moving")
            mimg = _lps(moving)
            if mimg.GetDimension() != self.fixed.GetDimension():
                raise ValueError(f"`moving` is {mimg.GetDimension()}D but `fixed` is {self.fixed.GetDimension()}D")
            on_grid = mimg if _same_grid(mimg, self.fixed) else medlab.registration.resample(mimg, self.fixed)
        else:
            arr = np.asarray(moving)
            if arr.shape != sitk.GetArrayViewFromImage(self.fixed).shape:
                raise ValueError(f"`moving` (shape {arr.shape}) must be on the fixed grid (shape "
                                 f"{sitk.GetArrayViewFromImage(self.fixed).shape}, numpy order); give a "
                                 "sitk.Image to resample it")
            on_grid = sitk.GetImageFromArray(arr)
            on_grid.CopyInformation(self.fixed)
            mimg = on_grid
        with self._lock:
            self.moving = on_grid
            if not _registered:
                self.moving_input = mimg
            self._u2 = self._unit(on_grid, self._window_specs[1], "window2")
            r = getattr(self, "_resolved", {})
            self.windows = (r["window1"], r["window2"]) if {"window1", "window2"} <= set(r) else None
            self._cache.clear()
            if _draw:
                self._update()

    # ------------------------------------------------------------------ setters
    def set_mode(self, mode: str) -> None:
        self.mode = check_choice("mode", mode, BLEND_MODES)

    def set_alpha(self, alpha: float) -> None:
        try:
            a = float(alpha)
        except (TypeError, ValueError):
            raise TypeError(f"`alpha` must be a number in [0, 1]; got {alpha!r}") from None
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]; got {alpha!r}")
        self.alpha = a

    def set_tiles(self, tiles: int) -> None:
        if isinstance(tiles, bool) or not isinstance(tiles, int | np.integer | float) or tiles != tiles:
            raise ValueError(f"`tiles` must be an int >= 1; got {tiles!r}")
        n = int(tiles)
        if n != tiles or n < 1:
            raise ValueError(f"`tiles` must be an int >= 1; got {tiles!r}")
        self.tiles = n

    def _apply_alpha_slider(self):
        if abs(self._alpha.value - self.alpha) > 0.5 * self._alpha.step:
            self.set_alpha(self._alpha.value)

    def set_frame(self, frame: int) -> None:
        k = int(frame)
        if not 0 <= k < self.n_frames:
            raise ValueError(f"`frame` must be in [0, {self.n_frames - 1}]; got {frame!r}")
        self.frame = k

    def _on_state(self, _change):
        self._show_controls()
        self._update()

    def _show_controls(self):
        self._mode.value = self.mode
        self._alpha.value = self.alpha
        self._tiles.value = self.tiles
        self._frame.value = self.frame
        self._alpha.layout.display = "" if self.mode == "alpha" else "none"
        self._tiles.layout.display = "" if self.mode == "checkerboard" else "none"
        for w in (self._play, self._frame):
            w.layout.display = "" if self.mode == "flicker" else "none"

    # ------------------------------------------------------------------ fusion (medlab.fusion)
    def _key(self):
        return {"alpha": ("alpha", self.alpha), "checkerboard": ("checkerboard", self.tiles),
                "difference": ("difference",), "flicker": ("flicker", self.frame)}[self.mode]

    def _fuse(self) -> np.ndarray:
        u1, u2 = self._u1, self._u2
        if self.mode == "alpha":
            return medlab.fusion.alpha_blend(u1, u2, self.alpha)
        if self.mode == "flicker":  # frame k of medlab.fusion.flicker_frames, on the whole image
            return medlab.fusion.alpha_blend(u1, u2, self.frame / (self.n_frames - 1))
        if self.mode == "checkerboard":
            shape = u1.shape
            tiles = [min(self.tiles, n) for n in shape]
            if len(shape) == 3:
                tiles[0] = 1
            return medlab.fusion.checkerboard(u1, u2, tiles=tuple(tiles))
        return medlab.fusion.difference(u1, u2)

    def _view_window(self) -> tuple[float, float]:
        if self.windows is None:  # raw values: the fused image's own 'auto' window
            return medlab.enhance.resolve_window(self.fused, preset="auto")
        return (2.0, 0.0) if self.mode == "difference" else (1.0, 0.5)

    def _update(self):
        with self._lock:
            key = self._key()
            fused = self._cache.get(key)
            if fused is None:
                fused = self._fuse()
                self._cache[key] = fused
                while len(self._cache) > self.n_frames + 2:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            self.fused = fused
            v = self.viewer
            with v.hold_redraw():
                v.set_image(fused)
                v.set_window_level(*self._view_window())

    # ------------------------------------------------------------------ registration
    def run_registration(self, *, wait: bool = False, **register_kwargs) -> BackgroundJob:
        """Register the moving image to the fixed one on a background thread.

        ``register_kwargs`` go to :func:`medlab.registration.register` (``transform``,
        ``metric``, ``levels``, ``iterations``, ...; the register button reuses the last
        ones). The kernel stays free; the metric plot and the progress bar follow each
        iteration; :meth:`stop` (the Stop button) ends it at the next iteration (status
        ``'stopped'``). When it ends normally, :attr:`result` is the
        :class:`~medlab.registration.RegistrationResult` and the view shows its resampled
        moving image. Returns the job (``job.join()`` / ``job.wait()``); ``wait=True`` joins.
        """
        if "progress" in register_kwargs:
            raise TypeError("`progress` is the widget's own; the blender reports progress itself")
        if self.job is not None and self.job.running:
            raise RuntimeError("a registration is running; stop it (or join it) first")
        self._register_kwargs = dict(register_kwargs)
        self.trace = []
        self.plot.clear()
        self._progress.value = 0.0
        moving = self.moving_input

        def progress(fraction, message):
            m = _PROGRESS.search(message)
            if m:
                self.trace.append({"level": int(m.group(1)) - 1, "iteration": int(m.group(3)),
                                   "metric": float(m.group(4))})
                self.plot.set_series("metric", range(len(self.trace)), [r["metric"] for r in self.trace])
            self._progress.value = float(fraction)
            self._status.value = f"<small>{html.escape(message)}</small>"
            return not job.stop_requested

        def work(job):
            return medlab.registration.register(self.fixed, moving, progress=progress, **register_kwargs)

        job = BackgroundJob("registration", work, on_end=self._registration_ended)
        self.job = job
        self._run.disabled, self._stop.disabled = True, False
        self._status.value = "<i>registering…</i>"
        job.start()
        if wait:
            job.join()
        return job

    def _registration_ended(self, job: BackgroundJob):
        self.plot.set_series("metric", range(len(self.trace)), [r["metric"] for r in self.trace], force=True)
        self._run.disabled, self._stop.disabled = False, True
        if job.status == "done":
            res = job.result
            self.result = res
            self.set_moving(res.resampled, _registered=True)
            job.stop_reason = res.stop_reason
            self._progress.value = 1.0
            # the metric as plotted (first and last point), so the status and the plot agree
            first, last = ((self.trace[0]["metric"], self.trace[-1]["metric"]) if self.trace
                           else (res.initial_metric, res.final_metric))
            metric = res.metric.replace("_", " ")
            self._status.value = (f"<b>done</b> in {res.seconds:.1f} s, {res.iterations} iterations; "
                                  f"{html.escape(metric)} {first:.5g} → {last:.5g}<br>"
                                  f"<small>{html.escape(plain_stop_reason(res.stop_reason))}</small>")
        elif job.status == "stopped":
            self._status.value = (f"<b>stopped</b> after {len(self.trace)} iterations "
                                  f"<small>({html.escape(plain_stop_reason(job.stop_reason))})</small>")
        else:
            self._status.value = f"<b style='color:#c00'>failed</b>: {html.escape(job.stop_reason)}"
