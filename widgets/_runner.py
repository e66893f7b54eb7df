"""ModelRunner: pick a model, see where it runs, train it in the background, infer and explain.

Every computation is a :mod:`medlab.models` call: :func:`~medlab.models.pretrained`,
:func:`~medlab.models.train` (on a background thread, with its ``progress`` callback feeding the
live loss curve and its ``stop`` event set by the Stop button), :func:`~medlab.models.segment` /
:func:`~medlab.models.classify` and :func:`~medlab.models.grad_cam`;
:func:`~medlab.models.device_report` says where it runs. The Grad-CAM picture is
:func:`medlab.fusion.color_overlay` of the map on the shown slice.

"Runs on a GPU kernel": Keras places work on the first GPU its backend sees; when the kernel
has one, the device line says ``runs on GPU: <name>``, else ``runs on CPU: <name>``.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import re
import sys
import tempfile
import threading

import ipywidgets as widgets
import numpy as np
import SimpleITK as sitk
import traitlets as t

import medlab.display
import medlab.fusion
import medlab.models
import medlab.segmentation

from ._jobs import BackgroundJob, JobOwner
from ._plot import LinePlot
from ._viewer import SliceViewer, StaticPNG

__all__ = ["ModelRunner", "device_text"]

# medlab.models.train's progress messages: "epoch 2/5, batch 3/8, loss 0.4321"
_PROGRESS = re.compile(r"epoch (\d+)/(\d+), batch (\d+)/(\d+), loss (\S+)")


def device_text(report: dict) -> str:
    """One line from :func:`medlab.models.device_report`: where models run, and on what."""
    if report.get("device") == "GPU" and report.get("gpus"):
        names = ", ".join(str(g.get("name", "GPU")) for g in report["gpus"])
        where = f"runs on GPU: {names}"
    else:
        cores = report.get("cpu_count")
        where = f"runs on CPU: {report.get('cpu', 'unknown')}" + (f" ({cores} cores)" if cores else "")
    version = report.get("backend_version")
    backend = f"{report.get('backend', '?')}" + (f" {version}" if version else "")
    return f"{where} · backend {backend} · Keras {report.get('keras_version', '?')}"


class _Captured:
    text = ""


@contextlib.contextmanager
def _native_stderr():
    """Capture what native code (and child processes) write to file descriptor 2 meanwhile."""
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode("utf-8", "replace")
    if captured.text:
        logging.getLogger("medlab.widgets").debug("native stderr: %s", captured.text)


class ModelRunner(JobOwner, StaticPNG, widgets.VBox):
    """Pick a model, see the device, train with a live loss curve, infer and show Grad-CAM.

    Parameters
    ----------
    image : sitk.Image, ndarray or SliceViewer
        The image to infer on (2D for the pretrained models); a viewer is shared.
    model : str
        The model selected first: a :func:`medlab.models.list_pretrained` name or a key of
        ``models``.
    models : dict {name: TrainedModel or keras.Model}, optional
        Models of the session to offer beside the pretrained ones.
    class_index : int, optional
        Class that Grad-CAM explains (default: segmentation 1, classification the predicted one).
    cam_alpha : float
        Opacity of the Grad-CAM colours over the image.
    overlay_mode : {'contour', 'fill'}
        How the segmentation is drawn.
    **viewer_kwargs
        :class:`SliceViewer` options when ``image`` is not a viewer.

    Attributes
    ----------
    model_name : str (traitlet)
        The selected model.
    device : dict
        :func:`medlab.models.device_report` at construction; :attr:`device_text` in words.
    prediction : ndarray or None
        Segmentation labels on the image grid (numpy order), from the last :meth:`infer`.
    probabilities : dict or None
        Classification: class name -> probability, from the last :meth:`infer`.
    cam : ndarray or None
        Grad-CAM map in [0, 1] on the image grid; :attr:`cam_pixels` its RGB picture on the
        shown slice.
    losses : list of dict
        Live training losses (``epoch`` as a fraction, ``loss`` as reported, 4 decimals).
    training : TrainingResult or None
        The last finished training run (``history``, ``epochs``, ``stop_reason``).
    job : BackgroundJob or None
        The last training job.
    """

    model_name = t.Unicode("")

    def __init__(self, image, *, model: str = "hc18_unet", models: dict | None = None, class_index=None,
                 cam_alpha: float = 0.5, overlay_mode: str = "contour", **viewer_kwargs):
        super().__init__()
        if isinstance(image, SliceViewer):
            if viewer_kwargs:
                raise TypeError(f"viewer options {sorted(viewer_kwargs)} only apply when an image is given")
            self.viewer, owned = image, False
        else:
            self.viewer, owned = SliceViewer(image, **viewer_kwargs), True
        self._base_title = self.viewer.title
        self.class_index = class_index
        self.cam_alpha = float(cam_alpha)
        if not 0.0 <= self.cam_alpha <= 1.0:
            raise ValueError(f"`cam_alpha` must be in [0, 1]; got {cam_alpha!r}")
        self.overlay_mode = overlay_mode
        self._pretrained = list(medlab.models.list_pretrained())
        self._models: dict = {}  # session models
        self._loaded: dict = {}  # pretrained models, loaded on first use
        self._lock = threading.RLock()
        self.prediction = None
        self.probabilities = None
        self.cam = None
        self.cam_pixels = None
        self.losses: list[dict] = []
        self.training = None
        self.job: BackgroundJob | None = None
        self._training_model = None
        # TensorFlow's native start-up lines (absl, oneDNN) go to the process's stderr, which the
        # kernel shows in red under the cell: captured here, kept in `native_log`
        with _native_stderr() as native:
            self.device = medlab.models.device_report()
        self.native_log = native.text
        self.device_text = device_text(self.device)

        self._device = widgets.HTML(f"<code>{html.escape(self.device_text)}</code>")
        self._pick = widgets.Dropdown(description="model", options=list(self._pretrained))
        self._infer = widgets.Button(description="infer", icon="play",
                                     tooltip="segment / classify the image and explain it")
        self._stop = widgets.Button(description="stop", icon="stop", disabled=True,
                                    tooltip="stop training after this batch")
        self._progress = widgets.FloatProgress(min=0.0, max=1.0, value=0.0, description="training")
        self._status = widgets.HTML("")
        self._result = widgets.HTML("")
        # the selected model's card (training data, intended use, measured performance, QC):
        # filled when the model is loaded (pretrained models load on first use)
        self._card = widgets.HTML("")
        self._card_box = widgets.Accordion(children=[self._card], titles=("model card",), selected_index=None)
        cam_width = f"{self.viewer.canvas.display_width // 2}px"
        self._cam_view = widgets.Image(format="png", layout=widgets.Layout(width=cam_width))
        self.plot = LinePlot(xlabel="epoch", ylabel="loss", title="training loss")
        for name, m in (models or {}).items():
            self.add_model(name, m, select=False)
        self.select(model)
        self._pick.observe(lambda c: self.select(c["new"]), names="value")
        self._infer.on_click(lambda _b: self.infer())
        self._stop.on_click(lambda _b: self.stop())
        self.viewer.observe(lambda _c: self._show_cam(), names=["axis", "index", "window", "level"])
        controls = [
            self._device,
            widgets.HBox([self._pick, self._infer]),
            widgets.HBox([widgets.VBox([widgets.HTML("<b>Grad-CAM</b>"), self._cam_view]),
                          widgets.VBox([self.plot, widgets.HBox([self._progress, self._stop]), self._status])]),
            self._result,
            self._card_box,
        ]
        self.children = [self.viewer, *controls] if owned else controls

    # ------------------------------------------------------------------ models
    @property
    def model_names(self) -> list[str]:
        return [*self._pretrained, *self._models]

    def add_model(self, name: str, model, *, select: bool = True) -> None:
        """Offer a model of the session (a :class:`~medlab.models.TrainedModel` or keras.Model)."""
        name = str(name)
        if name in self._pretrained:
            raise ValueError(f"`name` {name!r} is a pretrained model's name; choose another")
        self._models[name] = medlab.models.as_trained(model)
        self._pick.options = self.model_names
        if select:
            self.select(name)

    def select(self, name: str) -> None:
        """Select a model by name; the title above the picture names it."""
        if name not in self.model_names:
            raise ValueError(f"`model` must be one of {self.model_names}; got {name!r}")
        self.model_name = name
        self._pick.value = name
        base = self._base_title
        self.viewer.title = f"{base} · model: {name}" if base else f"model: {name}"
        self._show_card()

    def _show_card(self) -> None:
        name = self.model_name
        with self._lock:
            tm = self._models.get(name) or self._loaded.get(name)
        if tm is None:
            self._card.value = f"<i>The card of {html.escape(name)} is shown once the model is loaded (infer).</i>"
        else:
            self._card.value = medlab.models.card(tm, format="html")

    @property
    def model(self):
        """The selected :class:`~medlab.models.TrainedModel` (a pretrained one loads on first use)."""
        name = self.model_name
        with self._lock:
            if name in self._models:
                return self._models[name]
            if name not in self._loaded:
                self._loaded[name] = medlab.models.pretrained(name)
            return self._loaded[name]

    # ------------------------------------------------------------------ inference
    def infer(self) -> dict:
        """Segment (or classify) the viewer's image with the selected model and explain it.

        Returns a dict: ``labels`` (segmentation, numpy) or ``probabilities`` (classification),
        and ``cam`` (Grad-CAM, numpy, on the image grid).
        """
        tm = self.model
        self._show_card()
        if self._training_model is tm and self.job is not None and self.job.running:
            raise RuntimeError(f"{self.model_name!r} is being trained; stop or join the training first")
        v = self.viewer
        img = v.image
        out: dict = {}
        if tm.task == "segmentation":
            labels = sitk.GetArrayFromImage(medlab.models.segment(tm, img))
            self.prediction, self.probabilities = labels, None
            color = (0, 255, 0) if len(tm.classes) == 2 else None
            v.set_overlay("model", labels, mode=self.overlay_mode, color=color)
            stats = medlab.segmentation.label_statistics(labels > 0, spacing=img.GetSpacing()[::-1])
            key = "volume_ml" if v.ndim == 3 else "area_mm2"
            size = float(stats.iloc[0][key]) if len(stats) else 0.0
            unit = "mL" if key == "volume_ml" else "mm²"
            self._result.value = (f"<b>{html.escape(self.model_name)}</b>: "
                                  f"{html.escape(', '.join(tm.classes[1:]))} {size:.1f} {unit}")
            out.update(labels=labels, size=size)
        else:
            probs = medlab.models.classify(tm, img)[0]
            self.prediction = None
            self.probabilities = {c: float(p) for c, p in zip(tm.classes, probs, strict=True)}
            v.remove_layer("model")
            out.update(probabilities=self.probabilities)
            if not np.isfinite(probs).all():  # classify's NaN row: nothing to classify, and no Grad-CAM
                self._result.value = (f"<b>{html.escape(self.model_name)}</b>: no prediction (a blank frame or "
                                      "NaN pixels: nothing to classify)")
                self.cam = self.cam_pixels = None
                self._cam_view.value = b""
                return out
            best = max(self.probabilities, key=self.probabilities.get)
            cells = " &nbsp; ".join(f"{html.escape(c)} {p:.3f}" for c, p in self.probabilities.items())
            self._result.value = f"<b>{html.escape(self.model_name)}</b>: <b>{html.escape(best)}</b> &nbsp; ({cells})"
        cam = medlab.models.grad_cam(tm, img, class_index=self.class_index)
        self.cam = sitk.GetArrayFromImage(cam)
        self._show_cam()
        out["cam"] = self.cam
        return out

    def _show_cam(self):
        if self.cam is None:
            return
        v = self.viewer
        cam = self.cam if v.ndim == 2 else medlab.display.slice_of(self.cam, v.index, v.axis)
        self.cam_pixels = medlab.fusion.color_overlay(v.current_slice(), cam, window=v.window, level=v.level,
                                                       colormap="jet", overlay_range=(0.0, 1.0), alpha=self.cam_alpha)
        self._cam_view.value = medlab.display.encode(self.cam_pixels)

    # ------------------------------------------------------------------ training
    def train(self, x, y, *, model=None, name: str | None = None, validation=None, epochs: int = 5,
              batch_size: int = 8, wait: bool = False, **train_kwargs) -> BackgroundJob:
        """Train a model on a background thread with :func:`medlab.models.train`.

        Parameters
        ----------
        x, y : ndarray
            Training images ``(n, *spatial, channels)`` and labels (see
            :func:`medlab.models.to_array`, :func:`~medlab.models.labels_to_array`).
        model : TrainedModel, keras.Model or str, optional
            What to train: a new network (e.g. :func:`medlab.models.unet`), a pretrained name
            (a fresh copy is fine-tuned), or None: a fresh copy of the selected pretrained model.
        name : str, optional
            Name of the trained model in the list (default ``'<model> (session)'``); it is
            selected when training ends (completed or stopped: it keeps its weights).
        validation, epochs, batch_size, **train_kwargs
            :func:`medlab.models.train` arguments (``progress`` and ``stop`` are the widget's).

        Returns the job; the kernel stays free (``wait=True`` joins). The loss curve and the
        progress bar follow every batch; :meth:`stop` (the Stop button) ends training after
        the current batch (``training.stop_reason == 'stopped'``).
        """
        for k in ("progress", "stop"):
            if k in train_kwargs:
                raise TypeError(f"`{k}` is the widget's own")
        if self.job is not None and self.job.running:
            raise RuntimeError("a training run is going on; stop it (or join it) first")
        if model is None:
            if self.model_name not in self._pretrained:
                raise ValueError("give `model` (a network to train): only pretrained models are copied for fine-tuning")
            model = self.model_name
        tm = medlab.models.pretrained(model) if isinstance(model, str) else medlab.models.as_trained(model)
        label = model if isinstance(model, str) else (getattr(tm.model, "name", None) or "model")
        name = name or f"{label} (session)"
        self.losses = []
        self.plot.clear()
        self._progress.value = 0.0
        self._training_model = tm

        def progress(fraction, message):
            m = _PROGRESS.search(message)
            if m:
                e, b, nb = int(m.group(1)), int(m.group(3)), int(m.group(4))
                self.losses.append({"epoch": e - 1 + b / nb, "loss": float(m.group(5))})
                self.plot.set_series("loss (batch)", [r["epoch"] for r in self.losses],
                                     [r["loss"] for r in self.losses])
            self._progress.value = float(fraction)
            self._status.value = f"<code>{html.escape(message)}</code>"
            return not job.stop_requested

        def work(job):
            return medlab.models.train(tm.model, x, y, validation=validation, epochs=epochs, batch_size=batch_size,
                                       progress=progress, stop=job.stop_event, **train_kwargs)

        def ended(job):
            self._stop.disabled = True
            res = job.result
            if res is None:
                self._status.value = f"<b style='color:#c00'>failed</b>: {html.escape(job.stop_reason)}"
                return
            self.training = res
            job.stop_reason = res.stop_reason
            hist = res.history
            xs = list(range(1, len(hist.get("loss", [])) + 1))
            for key in ("loss", "val_loss"):
                if key in hist:
                    self.plot.series[f"{key} (epoch)"] = (xs, hist[key])
            self.plot.update(force=True)
            if res.epochs > 0:
                tm.info = {**tm.info, "trained_in_session": {"epochs": res.epochs, "stop_reason": res.stop_reason}}
                with self._lock:
                    self._models[name] = tm
                self._pick.options = self.model_names
                self.select(name)
            self._status.value = (f"<b>{res.stop_reason}</b> after {res.epochs} epoch(s), {res.seconds:.1f} s"
                                  f" ({res.images_per_second:.0f} images/s) &nbsp; → <b>{html.escape(name)}</b>")

        job = BackgroundJob("training", work, on_end=ended)
        self.job = job
        self._stop.disabled = False
        self._status.value = f"<i>training {html.escape(name)}…</i>"
        job.start()
        if wait:
            job.join()
        return job
