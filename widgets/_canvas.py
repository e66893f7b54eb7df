"""ImageCanvas: the one browser view of every medlab widget (an anywidget).

The kernel sends a picture (PNG, made by :func:`medlab.display.encode`) and view settings; the
browser decodes it off the main thread (``createImageBitmap``), draws it on a ``<canvas>``,
applies zoom and pan itself (a CSS transform, no kernel round trip), and sends mouse events
back as image pixel positions ``(row, col)`` of the shown slice.

Flow control: the page acknowledges each drawn frame (an ``ack`` message with its ``frame``
number) and the kernel sends the next frame only then; state changes in between are coalesced,
so the next frame is always the newest state and no frame is sent that the page would drop.
Until a page has acknowledged a frame (none open: a script, a test, an unattended run) every
frame goes out at once; a frame not acknowledged within ``ACK_TIMEOUT_S`` (a closed tab) does
not block the next one.

Why anywidget: its JupyterLab extension ships inside its PyPI wheel and the front-end code
below is a Python string, so the widget renders offline with no CDN and no build step. ipympl
would redraw a whole matplotlib figure per interaction (the baseline we measure against);
ipyevents would need a second widget for the picture; ipycanvas ships more than we need.

Mouse and keyboard (in the browser)
-----------------------------------
- click (press and release within 4 screen pixels): ``click`` event
- left drag: ``drag`` events (``phase`` start/move/end, ``dx``/``dy`` screen pixels since the
  start) when a kernel handler asked for drags (``drag_mode='events'``), else pan
- shift + drag, middle or right drag: pan (browser only; ``center`` is synced back)
- wheel: ``wheel`` event (``delta`` +1/-1, e.g. the next slice) when ``wheel_events`` is on,
  else the notebook scrolls; ctrl/cmd + wheel: zoom around the pointer (browser only; ``zoom``
  and ``center`` synced back)
- double click: reset zoom and pan
- pointer motion: ``move`` events (one per changed pixel, at most one per animation frame),
  ``leave`` when the pointer leaves the picture
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anywidget
import traitlets as t

__all__ = ["ImageCanvas", "EVENTS", "ACK_TIMEOUT_S"]

EVENTS = ("click", "drag", "wheel", "move", "leave")
ACK_TIMEOUT_S = 1.0
STREAM_S = 0.25  # a frame sent within this time of the previous one is part of a stream

_ESM = r"""
function render({ model, el }) {
  el.classList.add("medlab-canvas");
  const box = document.createElement("div");
  box.className = "medlab-canvas-box";
  box.tabIndex = 0;
  const img = document.createElement("canvas");
  img.className = "medlab-canvas-img";
  img.draggable = false;
  img.setAttribute("role", "img");
  img.setAttribute("aria-label", "medlab image");
  box.appendChild(img);
  el.appendChild(box);
  const ctx = img.getContext("2d");

  let local = null;  // zoom/center while the browser is panning or zooming
  let alive = true;

  function shape() { const s = model.get("shape"); return [s[0], s[1]]; }
  function view() {
    if (local) return local;
    const c = model.get("center");
    return { zoom: model.get("zoom"), center: [c[0], c[1]] };
  }
  function size() {
    const [rows, cols] = shape();
    const w = model.get("display_width");
    const h = Math.max(1, Math.round(w * rows * model.get("aspect") / Math.max(cols, 1)));
    return [w, h];
  }
  function clampCenter(v) {
    const [rows, cols] = shape();
    const hr = rows / (2 * v.zoom), hc = cols / (2 * v.zoom);
    v.center[0] = Math.min(Math.max(v.center[0], hr), rows - hr);
    v.center[1] = Math.min(Math.max(v.center[1], hc), cols - hc);
    return v;
  }
  function layout() {
    const [w, h] = size();
    box.style.width = w + "px";
    box.style.height = h + "px";
    img.style.width = w + "px";
    img.style.height = h + "px";
    const [rows, cols] = shape();
    const v = clampCenter(view());
    const tx = w / 2 - (v.center[1] / cols) * w * v.zoom;
    const ty = h / 2 - (v.center[0] / rows) * h * v.zoom;
    img.style.transform = `translate(${tx}px, ${ty}px) scale(${v.zoom})`;
  }
  // Flow control: a frame is decoded off the main thread (createImageBitmap), drawn, then
  // acknowledged; the kernel sends the next (always the newest) frame only after the ack.
  // A frame that arrives while one decodes waits; only the newest waiting one is drawn.
  let decoding = false;
  let waiting = false;
  async function drawFrame() {
    if (decoding) { waiting = true; return; }
    decoding = true;
    try {
      do {
        waiting = false;
        const data = model.get("png");
        const frame = model.get("frame");
        if (!data || data.byteLength === 0) break;
        const type = model.get("mime") || "image/png";
        let bitmap = null;
        try {
          bitmap = await createImageBitmap(new Blob([data], { type }));
        } catch (err) {
          console.error("medlab canvas: cannot decode frame", frame, err);
        }
        if (!alive) { if (bitmap) bitmap.close(); return; }
        if (bitmap) {
          if (img.width !== bitmap.width || img.height !== bitmap.height) {
            img.width = bitmap.width;
            img.height = bitmap.height;
          }
          ctx.drawImage(bitmap, 0, 0);
          bitmap.close();
          img.dataset.frame = String(frame);
          img.dataset.drawn = String((Number(img.dataset.drawn) || 0) + 1);
        }
        model.send({ event: "ack", frame });
      } while (waiting);
    } finally {
      decoding = false;
    }
  }
  function pixel(ev) {
    const r = img.getBoundingClientRect();
    const [rows, cols] = shape();
    const col = Math.floor(((ev.clientX - r.left) / r.width) * cols);
    const row = Math.floor(((ev.clientY - r.top) / r.height) * rows);
    return [row, col, row >= 0 && row < rows && col >= 0 && col < cols];
  }
  function mods(ev) {
    return { shift: ev.shiftKey, ctrl: ev.ctrlKey || ev.metaKey, alt: ev.altKey };
  }
  function saveView(v) {
    model.set("zoom", v.zoom);
    model.set("center", [v.center[0], v.center[1]]);
    model.save_changes();
  }

  // one message per animation frame at most for motion and drags
  let pending = null;
  function sendSoon(msg) {
    if (pending === null) {
      requestAnimationFrame(() => { const m = pending; pending = null; if (m) model.send(m); });
    }
    pending = msg;
  }
  function sendNow(msg) {
    if (pending !== null) { model.send(pending); pending = null; }
    model.send(msg);
  }

  let press = null;
  let lastHover = null;
  box.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    box.focus({ preventScroll: true });
    try { box.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic pointer */ }
    const pan = ev.button !== 0 || ev.shiftKey || model.get("drag_mode") !== "events";
    press = { x: ev.clientX, y: ev.clientY, button: ev.button, pan, dragging: false,
              view: view(), px: pixel(ev), mods: mods(ev) };
  });
  box.addEventListener("pointermove", (ev) => {
    if (press) {
      const dx = ev.clientX - press.x, dy = ev.clientY - press.y;
      if (!press.dragging && Math.abs(dx) + Math.abs(dy) > 4) {
        press.dragging = true;
        if (!press.pan) sendNow({ event: "drag", phase: "start", dx: 0, dy: 0,
                                  row: press.px[0], col: press.px[1], ...press.mods });
      }
      if (press.dragging) {
        if (press.pan) {
          const [w, h] = size();
          const [rows, cols] = shape();
          const v0 = press.view;
          local = clampCenter({ zoom: v0.zoom, center: [
            v0.center[0] - (dy / h) * rows / v0.zoom, v0.center[1] - (dx / w) * cols / v0.zoom] });
          layout();
        } else {
          sendSoon({ event: "drag", phase: "move", dx, dy, ...press.mods });
        }
      }
      return;
    }
    const [row, col, inside] = pixel(ev);
    if (!inside) return;
    const key = row + "," + col;
    if (key !== lastHover) { lastHover = key; sendSoon({ event: "move", row, col }); }
  });
  function release(ev) {
    if (!press) return;
    const p = press;
    press = null;
    if (p.dragging) {
      if (p.pan) { if (local) { const v = local; local = null; saveView(v); } }
      else sendNow({ event: "drag", phase: "end", dx: ev.clientX - p.x, dy: ev.clientY - p.y, ...p.mods });
      return;
    }
    const [row, col, inside] = p.px;
    if (inside && ev.type === "pointerup") {
      sendNow({ event: "click", row, col, button: p.button, ...p.mods });
    }
  }
  box.addEventListener("pointerup", release);
  box.addEventListener("pointercancel", release);
  box.addEventListener("pointerleave", () => {
    if (!press && lastHover !== null) { lastHover = null; sendSoon({ event: "leave" }); }
  });
  box.addEventListener("contextmenu", (ev) => ev.preventDefault());
  box.addEventListener("dblclick", (ev) => {
    ev.preventDefault();
    const [rows, cols] = shape();
    saveView({ zoom: 1.0, center: [rows / 2, cols / 2] });
  });
  box.addEventListener("wheel", (ev) => {
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      const v0 = view();
      const zoom = Math.min(Math.max(v0.zoom * Math.exp(-ev.deltaY * 0.002), 1.0), model.get("max_zoom"));
      const [row, col] = pixel(ev);
      // keep the pixel under the pointer where it is
      const f = v0.zoom / zoom;
      const center = [row + (v0.center[0] - row) * f, col + (v0.center[1] - col) * f];
      saveView(clampCenter({ zoom, center }));
    } else if (model.get("wheel_events") && ev.deltaY !== 0) {
      ev.preventDefault();  // the wheel pages through slices instead of scrolling the notebook
      sendNow({ event: "wheel", delta: ev.deltaY > 0 ? 1 : -1, ...mods(ev) });
    }
  }, { passive: false });

  model.on("change:frame", drawFrame);
  for (const name of ["shape", "aspect", "display_width", "zoom", "center"]) {
    model.on("change:" + name, layout);
  }
  layout();
  drawFrame();
  return () => { alive = false; };
}
export default { render };
"""

_CSS = r"""
.medlab-canvas-box {
  position: relative;
  overflow: hidden;
  background: #000;
  cursor: crosshair;
  touch-action: none;
  user-select: none;
  outline: none;
}
.medlab-canvas-img {
  position: absolute;
  left: 0;
  top: 0;
  transform-origin: 0 0;
  image-rendering: pixelated;
  pointer-events: none;
}
"""


class ImageCanvas(anywidget.AnyWidget):
    """A picture with zoom, pan and mouse events, shown in the browser.

    It holds no image data beyond the encoded picture: a :class:`~medlab.widgets.SliceViewer`
    composes the slice with :mod:`medlab.display` and hands it to :meth:`show` (which sends it
    when the page has drawn the previous frame); components register event handlers with
    :meth:`on`.

    Attributes (synced traitlets)
    -----------------------------
    png : bytes
        The picture (``mime``), one picture pixel per slice pixel; set it with :meth:`show`.
    frame : int
        Number of the picture sent last; the page acknowledges it once drawn.
    in_flight : int
        How many frames may wait for an acknowledgement at once (default 1: the next frame
        goes out only when the page has drawn the previous one).
    stream_format : {'jpeg', 'png'}
        While the picture changes quickly (frames less than ``STREAM_S`` apart, a page
        acknowledging them), a source may send large colour frames in this format; once the
        page has drawn the last frame of a stream, a lossy one is replaced by its PNG. Default
        PNG: JPEG was not faster end to end in ``benchmarks/bench_browser.py`` (threshold drags
        on a 512x512 CT slice, same pictures per second within noise).
    shape : (int, int)
        ``(rows, cols)`` of the picture.
    aspect : float
        Height of a pixel over its width (row spacing / column spacing, mm), so coronal and
        sagittal views of thick slices have their true proportions.
    display_width : int
        Width on screen in CSS pixels.
    zoom : float
        Magnification, >= 1 (1 shows the whole picture).
    center : [float, float]
        Picture position ``(row, col)`` shown at the middle of the view, in pixels.
    drag_mode : {'pan', 'events'}
        What a plain left drag does: pan, or ``drag`` events for a kernel handler.
    wheel_events : bool
        Whether the wheel (without ctrl) sends ``wheel`` events or scrolls the page.
    """

    _esm = _ESM
    _css = _CSS

    png = t.Bytes(b"").tag(sync=True)
    mime = t.Unicode("image/png").tag(sync=True)
    frame = t.Int(0).tag(sync=True)
    in_flight = t.Int(1, help="frames sent ahead of the page's acknowledgements (1: strict)")
    stream_format = t.Enum(("png", "jpeg"), default_value="png",
                           help="format of large colour frames while the picture streams")
    shape = t.Tuple(t.Int(), t.Int(), default_value=(1, 1)).tag(sync=True)
    aspect = t.Float(1.0).tag(sync=True)
    display_width = t.Int(512).tag(sync=True)
    zoom = t.Float(1.0).tag(sync=True)
    max_zoom = t.Float(16.0).tag(sync=True)
    center = t.List(t.Float(), default_value=[0.5, 0.5], minlen=2, maxlen=2).tag(sync=True)
    drag_mode = t.Enum(("pan", "events"), default_value="pan").tag(sync=True)
    wheel_events = t.Bool(True).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._handlers: dict[str, list[Callable[[dict], None]]] = {e: [] for e in EVENTS}
        self._source: Callable[[], dict] | None = None
        self._unacked: dict[int, float] = {}  # frame number: when it went out
        self._last: Callable[[bool], dict] | None = None  # the source of the last frame sent
        self._last_sent = 0.0
        self._lossy_frame = -1  # number of the last frame sent lossy
        self.frames_sent = 0
        self.frames_acked = 0
        self.on_msg(self._on_frontend_msg)

    # ------------------------------------------------------------------ flow control
    def show(self, source: Callable[[], dict] | bytes) -> None:
        """Send a picture now, or as soon as the page has drawn the previous one.

        Parameters
        ----------
        source : bytes or callable
            PNG bytes, or a function ``source(stream)`` returning the traits of the newest
            picture (``png`` and optionally ``mime``, ``shape``, ``aspect``), called only when the
            frame goes out, so states superseded while the page was busy are never rendered or
            encoded. ``stream`` is True when the frame is part of a quick succession and may be
            lossy (``stream_format``).
        """
        self._source = source if callable(source) else (lambda _stream: {"png": bytes(source)})
        # no page has acknowledged a frame yet (none open: a script, a test, an unattended run):
        # every frame goes out at once, as there is no one to wait for
        if self.frames_acked == 0 or self._in_flight() < self.in_flight:
            self._send_frame()

    def _in_flight(self) -> int:
        """Frames sent and not acknowledged, not counting overdue ones (a page that went away)."""
        now = time.monotonic()
        return sum(1 for t0 in self._unacked.values() if now - t0 < ACK_TIMEOUT_S)

    @property
    def busy(self) -> bool:
        """Whether a frame is waiting for the page's acknowledgement (and a newer one is held)."""
        return self._source is not None

    def flush(self) -> None:
        """Send the held frame now, acknowledged or not (scripts and tests without a page)."""
        if self._source is not None:
            self._send_frame()

    def _send_frame(self, *, stream: bool | None = None) -> None:
        source, self._source = self._source, None
        now = time.monotonic()
        if stream is None:
            stream = (self.stream_format != "png" and self.frames_acked > 0
                      and now - self._last_sent < STREAM_S)
        traits = source(stream)
        self._last, self._last_sent = source, now
        with self.hold_sync():
            if "shape" in traits and tuple(self.shape) != tuple(traits["shape"]):
                self.shape = tuple(traits["shape"])
                self.center = [self.shape[0] / 2.0, self.shape[1] / 2.0]
            for name in ("aspect", "mime"):
                if name in traits and getattr(self, name) != traits[name]:
                    setattr(self, name, traits[name])
            self.png = traits["png"]
            self.frame += 1
        self.frames_sent += 1
        self._unacked[self.frame] = now
        if traits.get("mime", "image/png") != "image/png":
            self._lossy_frame = self.frame

    def _on_ack(self, frame) -> None:
        if not isinstance(frame, int) or frame not in self._unacked:
            return  # unknown, or already acknowledged (another view)
        self.frames_acked += 1
        for n in [n for n in self._unacked if n <= frame]:  # the page draws frames in order
            del self._unacked[n]
        if self._source is not None and self._in_flight() < self.in_flight:
            self._send_frame()
        elif self._source is None and frame == self.frame == self._lossy_frame and self._last is not None:
            # the stream has stopped on a lossy frame: show the same state losslessly
            self._source = self._last
            self._send_frame(stream=False)

    @t.validate("in_flight")
    def _check_in_flight(self, proposal):
        n = proposal["value"]
        if not 1 <= n <= 8:
            raise ValueError(f"`in_flight` must be in [1, 8]; got {n}")
        return n

    @t.validate("zoom")
    def _check_zoom(self, proposal):
        z = float(proposal["value"])
        if not 1.0 <= z <= self.max_zoom:
            raise ValueError(f"`zoom` must be in [1, {self.max_zoom}]; got {z}")
        return z

    def on(self, event: str, handler: Callable[[dict], None], *, remove: bool = False) -> None:
        """Call ``handler(message)`` for each browser event of a kind (see ``EVENTS``).

        The message is a dict: ``event``; for ``click``/``move`` the pixel ``row`` and
        ``col`` (ints, inside the picture); for ``drag`` ``phase`` and ``dx``/``dy``; for
        ``wheel`` ``delta`` (+1 or -1); modifier keys ``shift``, ``ctrl``, ``alt``.
        """
        if event not in self._handlers:
            raise ValueError(f"`event` must be one of {EVENTS}; got {event!r}")
        handlers = self._handlers[event]
        if remove:
            handlers.remove(handler)
        elif handler not in handlers:
            handlers.append(handler)
        if event == "drag":
            self.drag_mode = "events" if handlers else "pan"

    def dispatch(self, message: dict) -> None:
        """Handle one event as if the browser had sent it (tests and scripted sessions use it)."""
        event = message.get("event")
        if event not in self._handlers:
            raise ValueError(f"unknown canvas event {event!r}; expected one of {EVENTS}")
        if event in ("click", "move"):
            rows, cols = self.shape
            row, col = int(message["row"]), int(message["col"])
            if not (0 <= row < rows and 0 <= col < cols):
                return  # a pointer at the very edge can round outside the picture
            message = {**message, "row": row, "col": col}
        for handler in list(self._handlers[event]):
            handler(message)

    def _on_frontend_msg(self, _widget, content, _buffers):
        if not isinstance(content, dict):
            return
        if content.get("event") == "ack":
            self._on_ack(content.get("frame"))
        elif content.get("event") in self._handlers:
            self.dispatch(content)

    def reset_view(self) -> None:
        """Zoom 1, centred."""
        rows, cols = self.shape
        with self.hold_sync():
            self.zoom = 1.0
            self.center = [rows / 2.0, cols / 2.0]
