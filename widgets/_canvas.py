"""ImageCanvas: the one browser view of every medlab widget (an anywidget).

The kernel sends a picture (PNG, made by :func:`medlab.display.encode`) and view settings, or
(``rendering='page'``) the slice's intensities once per slice, and the page applies the window,
the colour map and threshold overlays itself (a window drag on the picture or a threshold
slider then redraws with no kernel round trip; the kernel's state follows). The browser decodes
a picture off the main thread (``createImageBitmap``), draws it on a ``<canvas>``,
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
import ipywidgets as widgets
import traitlets as t

__all__ = ["ImageCanvas", "EVENTS", "ACK_TIMEOUT_S", "RENDERINGS", "MAX_THRESHOLDS"]

EVENTS = ("click", "drag", "wheel", "move", "leave")
RENDERINGS = ("page", "kernel")
RAW_DTYPES = ("int8", "uint8", "int16", "uint16", "float32")
ACK_TIMEOUT_S = 1.0
MAX_THRESHOLDS = 8  # threshold overlays the page draws (a kernel layer's code 1 + k < 255)
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
  img.dataset.rendering = model.get("rendering");
  box.appendChild(img);
  const edges = {};
  for (const side of ["top", "bottom", "left", "right"]) {
    const d = document.createElement("div");
    d.className = "medlab-orient medlab-orient-" + side;
    box.appendChild(d);
    edges[side] = d;
  }
  function orient() {
    const o = model.get("orientation") || [];
    ["top", "bottom", "left", "right"].forEach((side, i) => { edges[side].textContent = o[i] || ""; });
  }
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
  // Page rendering (rendering "page"): the kernel sends the slice's intensities once per slice
  // (``raw``) and its other layers as an RGBA picture (``layers``, deflated; alpha 0 = none,
  // 255 = opaque, 1 + k = a fill blended with ``fill_alpha`` that lies above the first k
  // threshold overlays); window/level, the colour map and the threshold overlays are applied
  // here, so a window drag or a threshold slider needs no kernel round trip. An integer slice
  // is drawn through a table of the colour of every intensity in the slice's range (window,
  // colour map and thresholds folded in), rebuilt when one of them changes: a drag costs one
  // table lookup per pixel.
  const INT_TYPES = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array };
  const LITTLE = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 4;
  const pack = LITTLE ? (r, g, b) => (r | (g << 8) | (b << 16) | 0xff000000) >>> 0
                      : (r, g, b) => ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
  let rawArr = null;    // the slice's intensities (a typed array, row-major)
  let rawMin = 0, rawMax = -1;  // their range (integer slices)
  let layerArr = null;  // the layers, RGBA bytes, or null
  let layerIdx = null;  // the pixels the layers cover (code != 0)
  let table = null, tableKey = null;  // packed RGBA of every intensity in [rawMin, rawMax]
  let lutVersion = 0;
  let frameSeq = 0, paintedKey = null;  // the frames scanned; the state of the picture shown
  let pixels = null, pixels32 = null;  // ImageData of the picture, and its pixels as uint32
  let wlLocal = null;   // {w, l} of a window drag on the page, until it ends
  let painting = false;
  const sliders = [];   // the range sliders' models, one per threshold overlay (or null)
  let slidersKey = null;
  function bytesOf(d) {
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
  }
  function typedRaw() {
    const d = model.get("raw");
    if (!d || d.byteLength === 0) return null;
    const dtype = model.get("raw_dtype");
    const T = INT_TYPES[dtype] || Float32Array;
    return new T(bytesOf(d).buffer);
  }
  async function inflate(d) {
    const stream = new Blob([bytesOf(d)]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  function scan() {  // once per frame: the slice's integer range and the layers' pixels
    rawMin = 0; rawMax = -1;
    if (rawArr && INT_TYPES[model.get("raw_dtype")]) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < rawArr.length; i++) { const v = rawArr[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      rawMin = lo; rawMax = hi;
    }
    layerIdx = null;
    if (layerArr && rawArr && layerArr.length === 4 * rawArr.length) {
      let k = 0;
      for (let j = 3; j < layerArr.length; j += 4) if (layerArr[j] !== 0) k++;
      layerIdx = new Uint32Array(k);
      k = 0;
      for (let j = 3, i = 0; j < layerArr.length; j += 4, i++) if (layerArr[j] !== 0) layerIdx[k++] = i;
    }
    tableKey = null;
    frameSeq++;
  }
  async function linkSliders() {  // the models of the sliders that set the threshold ranges
    const refs = model.get("threshold_sliders") || [];
    const key = JSON.stringify(refs);
    if (key === slidersKey) return;
    slidersKey = key;
    for (const s of sliders) if (s) s.off("change:value", paintSoon);
    sliders.length = 0;
    const got = await Promise.all(refs.map(async (r) => {
      if (typeof r !== "string" || !r.startsWith("IPY_MODEL_")) return null;
      try { return await model.widget_manager.get_model(r.slice("IPY_MODEL_".length)); }
      catch (err) { console.error("medlab canvas: no slider model", r, err); return null; }
    }));
    if (key !== slidersKey || !alive) return;
    for (const m of got) { sliders.push(m); if (m) m.on("change:value", paintSoon); }
    paintSoon();
  }
  function ranges() {
    // the kernel's exact ranges; where a slider has moved away from its range (more than half
    // a step: not the slider's snapped echo of it), the page draws the slider's ends at once
    const ks = model.get("thresholds") || [];
    return ks.map((k, j) => {
      const s = sliders[j];
      const v = s ? s.get("value") : null;
      if (!v || v.length !== 2) return k;
      const tol = 0.5 * (s.get("step") || 0) * (1 + 1e-9);
      const lo = Math.abs(v[0] - k[0]) <= tol ? k[0] : v[0];
      const hi = Math.abs(v[1] - k[1]) <= tol ? k[1] : v[1];
      return [lo, hi];
    });
  }
  function currentWL() {
    return wlLocal || { w: model.get("window"), l: model.get("level") };
  }
  function paint() {
    if (!rawArr) return;
    const [rows, cols] = shape();
    const n = rows * cols;
    if (rawArr.length !== n) return;
    const { w, l } = currentWL();
    const low = l - w / 2, high = l + w / 2, span = high - low;
    const grey = (v) => {  // medlab.display.to_uint8: floor(255 * clip((v - low) / span, 0, 1) + 0.5)
      if (v !== v) return 0;  // NaN shows black
      let u = (v - low) / span;
      u = u < 0 ? 0 : (u > 1 ? 1 : u);
      return Math.floor(u * 255 + 0.5);
    };
    const lutView = model.get("lut");
    const cm = lutView && lutView.byteLength === 768 ? bytesOf(lutView) : null;
    const rs = ranges();
    const tcs = model.get("threshold_colors") || [];
    const a = model.get("fill_alpha"), b = 1 - a;
    const blend = (x, c) => Math.floor(x * b + c * a + 0.5);
    const top = (v) => {  // the last threshold overlay holding v (it is drawn over the others)
      let j = -1;
      for (let q = 0; q < rs.length; q++) if (v >= rs[q][0] && v <= rs[q][1]) j = q;
      return j;
    };
    const colour = (v, withThresholds) => {  // packed RGBA of intensity v
      const g = grey(v);
      let r = g, gg = g, bb = g;
      if (cm) { r = cm[3 * g]; gg = cm[3 * g + 1]; bb = cm[3 * g + 2]; }
      const j = withThresholds ? top(v) : -1;
      if (j >= 0) {
        const c = tcs[j] || [255, 64, 64];
        r = blend(r, c[0]); gg = blend(gg, c[1]); bb = blend(bb, c[2]);
      }
      return pack(r, gg, bb);
    };
    const key = [low, high, lutVersion, a, rawMin, rawMax, JSON.stringify(rs), JSON.stringify(tcs)].join("|");
    if (img.width !== cols || img.height !== rows || !pixels) {
      img.width = cols;
      img.height = rows;
      pixels = ctx.createImageData(cols, rows);
      pixels32 = new Uint32Array(pixels.data.buffer);
      paintedKey = null;
    } else if (paintedKey === frameSeq + "|" + key) {
      return;  // the same picture (e.g. the kernel's echo of a window the page drew already)
    }
    const out = pixels32;
    if (rawMax >= rawMin) {  // an integer slice: one table lookup per pixel
      if (tableKey !== key) {
        table = new Uint32Array(rawMax - rawMin + 1);
        for (let v = rawMin; v <= rawMax; v++) table[v - rawMin] = colour(v, true);
        tableKey = key;
      }
      const tab = table, off = rawMin, raw = rawArr;
      for (let i = 0; i < n; i++) out[i] = tab[raw[i] - off];
    } else {
      for (let i = 0; i < n; i++) out[i] = colour(rawArr[i], true);
    }
    if (layerIdx) {  // the kernel's layers, over the thresholds that lie below them
      const lay = layerArr;
      for (let q = 0; q < layerIdx.length; q++) {
        const i = layerIdx[q], j = 4 * i, code = lay[j + 3];
        if (code === 255) { out[i] = pack(lay[j], lay[j + 1], lay[j + 2]); continue; }
        const v = rawArr[i];
        if (top(v) >= code - 1) continue;  // a threshold overlay above this layer
        const c = colour(v, false);
        const r = LITTLE ? c & 255 : c >>> 24, gg = LITTLE ? (c >>> 8) & 255 : (c >>> 16) & 255;
        const bb = LITTLE ? (c >>> 16) & 255 : (c >>> 8) & 255;
        out[i] = pack(blend(r, lay[j]), blend(gg, lay[j + 1]), blend(bb, lay[j + 2]));
      }
    }
    ctx.putImageData(pixels, 0, 0);
    paintedKey = frameSeq + "|" + key;
    img.dataset.painted = String((Number(img.dataset.painted) || 0) + 1);
    img.dataset.drawn = String((Number(img.dataset.drawn) || 0) + 1);
  }
  function paintSoon() {  // at most one picture per animation frame
    if (painting || model.get("rendering") !== "page") return;
    painting = true;
    requestAnimationFrame(() => { painting = false; if (alive) paint(); });
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
        const frame = model.get("frame");
        if (model.get("rendering") === "page") {
          const raw = typedRaw();
          const lay = model.get("layers");
          let layers = null;
          if (lay && lay.byteLength > 0) {
            try { layers = await inflate(lay); }
            catch (err) { console.error("medlab canvas: cannot inflate layers", frame, err); }
          }
          if (!alive) return;
          rawArr = raw;
          layerArr = layers;
          scan();
          if (rawArr) {
            paint();
            img.dataset.frame = String(frame);
          }
          model.send({ event: "ack", frame });
          continue;
        }
        const data = model.get("png");
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

  // A window drag drawn by the page itself (rendering "page", drag_action "window"): the same
  // map as WindowLevel's kernel handler (right widens, down raises the level); the new window
  // goes to the kernel at most every 0.1 s and at the end, so Python's state follows.
  function pageWindowDrag() {
    return model.get("rendering") === "page" && model.get("drag_action") === "window" && rawArr !== null;
  }
  let wlSaved = 0;
  function windowDrag(wl0, dx, dy, end) {
    const s = model.get("drag_sensitivity");
    wlLocal = { w: Math.max(wl0.w + dx * s, model.get("drag_window_min")), l: wl0.l + dy * s };
    paintSoon();
    const now = performance.now();
    if (end || now - wlSaved >= 100) {
      wlSaved = now;
      model.set("window", wlLocal.w);
      model.set("level", wlLocal.l);
      model.save_changes();
    }
    if (end) { wlLocal = null; paintSoon(); }
  }

  let press = null;
  let lastHover = null;
  box.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    box.focus({ preventScroll: true });
    try { box.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic pointer */ }
    const pan = ev.button !== 0 || ev.shiftKey || model.get("drag_mode") !== "events";
    press = { x: ev.clientX, y: ev.clientY, button: ev.button, pan, dragging: false,
              view: view(), px: pixel(ev), mods: mods(ev),
              wl: !pan && pageWindowDrag() ? currentWL() : null };
  });
  box.addEventListener("pointermove", (ev) => {
    if (press) {
      const dx = ev.clientX - press.x, dy = ev.clientY - press.y;
      if (!press.dragging && Math.abs(dx) + Math.abs(dy) > 4) {
        press.dragging = true;
        if (!press.pan && !press.wl) sendNow({ event: "drag", phase: "start", dx: 0, dy: 0,
                                               row: press.px[0], col: press.px[1], ...press.mods });
      }
      if (press.dragging) {
        if (press.wl) {
          windowDrag(press.wl, dx, dy, false);
        } else if (press.pan) {
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
      if (p.wl) windowDrag(p.wl, ev.clientX - p.x, ev.clientY - p.y, true);
      else if (p.pan) { if (local) { const v = local; local = null; saveView(v); } }
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
  model.on("change:orientation", orient);
  orient();
  model.on("change:lut", () => { lutVersion++; });
  for (const name of ["window", "level", "thresholds", "threshold_colors", "fill_alpha", "lut"]) {
    model.on("change:" + name, paintSoon);
  }
  model.on("change:threshold_sliders", linkSliders);
  linkSliders();
  for (const name of ["shape", "aspect", "display_width", "zoom", "center"]) {
    model.on("change:" + name, layout);
  }
  layout();
  drawFrame();
  return () => {
    alive = false;
    for (const s of sliders) if (s) s.off("change:value", paintSoon);
  };
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
.medlab-orient {
  position: absolute;
  z-index: 1;
  color: #ffd700;
  font: bold 13px sans-serif;
  text-shadow: 0 0 2px #000, 0 0 2px #000;
  pointer-events: none;
}
.medlab-orient-top { top: 2px; left: 50%; transform: translateX(-50%); }
.medlab-orient-bottom { bottom: 2px; left: 50%; transform: translateX(-50%); }
.medlab-orient-left { left: 4px; top: 50%; transform: translateY(-50%); }
.medlab-orient-right { right: 4px; top: 50%; transform: translateY(-50%); }
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
    rendering : {'kernel', 'page'}
        Who turns intensities into a picture. ``'kernel'``: the kernel sends finished pictures
        (``png``). ``'page'``: the kernel sends the slice's intensities (``raw``, once per
        slice) and its other layers (``layers``); the page applies ``window``/``level``,
        ``lut`` and the ``thresholds`` overlays itself, so changing them needs no kernel round
        trip (:class:`~medlab.widgets.SliceViewer` chooses; see its ``rendering``).
    png : bytes
        The picture (``mime``), one picture pixel per slice pixel; set it with :meth:`show`.
    raw : bytes
        Page rendering: the slice's intensities, row-major, little-endian ``raw_dtype``.
    layers : bytes
        Page rendering: the overlays drawn by the kernel as RGBA bytes, zlib-deflated (empty:
        none); alpha 0 is no layer, ``1 + k`` a filled label blended with ``fill_alpha`` that
        lies above the first ``k`` threshold overlays (``thresholds``), 255 opaque (outlines,
        markers).
    window, level : float
        Page rendering: the display window, intensity units (the page sets them during a
        window drag, at most every 0.1 s and at its end; the viewer follows).
    lut : bytes
        Page rendering: a colour map, 256 RGB triplets indexed by grey value (empty: grey).
    fill_alpha : float
        Opacity of filled labels and of the threshold overlays.
    thresholds : list of [float, float]
        Page rendering: threshold overlays, each ``lower <= intensity <= upper`` in its colour
        (``threshold_colors``, RGB); where several hold a pixel, the last one is drawn. A
        kernel layer (``layers``) with code ``1 + k`` lies above the first ``k`` of them.
    threshold_sliders : list of (range slider or None)
        Page rendering: one per threshold overlay, the slider that sets its range; while a
        slider's value is away from its range by more than half its ``step`` (a drag in
        progress, not the slider's snapped echo of the kernel's range), the page draws the
        slider's ends at once, before the kernel's range follows.
    orientation : [str, str, str, str] or []
        Patient directions shown at the picture's top, bottom, left and right edges (e.g.
        ``['A', 'P', 'R', 'L']``); empty: none.
    drag_action : {'events', 'window'}
        Page rendering: what a left drag on the picture does when ``drag_mode`` is
        ``'events'``: ``drag`` events for kernel handlers, or a window/level drag drawn by the
        page (``drag_sensitivity`` intensity units per screen pixel; the window stays
        ``>= drag_window_min``).
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

    rendering = t.Enum(RENDERINGS, default_value="kernel").tag(sync=True)
    png = t.Bytes(b"").tag(sync=True)
    mime = t.Unicode("image/png").tag(sync=True)
    raw = t.Bytes(b"").tag(sync=True)
    raw_dtype = t.Enum(RAW_DTYPES, default_value="float32").tag(sync=True)
    layers = t.Bytes(b"").tag(sync=True)
    window = t.Float(1.0).tag(sync=True)
    level = t.Float(0.0).tag(sync=True)
    lut = t.Bytes(b"").tag(sync=True)
    fill_alpha = t.Float(0.4).tag(sync=True)
    thresholds = t.List(t.List(t.Float(), minlen=2, maxlen=2), maxlen=MAX_THRESHOLDS).tag(sync=True)
    threshold_colors = t.List(t.List(t.Int(), minlen=3, maxlen=3), maxlen=MAX_THRESHOLDS).tag(sync=True)
    threshold_sliders = t.List(t.Instance(widgets.Widget, allow_none=True), maxlen=MAX_THRESHOLDS).tag(
        sync=True, **widgets.widget_serialization)
    drag_action = t.Enum(("events", "window"), default_value="events").tag(sync=True)
    drag_sensitivity = t.Float(1.0).tag(sync=True)
    drag_window_min = t.Float(1e-6).tag(sync=True)
    orientation = t.List(t.Unicode(), default_value=[], maxlen=4).tag(sync=True)
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
            picture (``png`` and optionally ``mime``, ``shape``, ``aspect``; with page rendering
            ``raw``, ``raw_dtype`` and ``layers`` instead of ``png``), called only when the
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
            for name in ("aspect", "mime", "raw_dtype"):
                if name in traits and getattr(self, name) != traits[name]:
                    setattr(self, name, traits[name])
            for name in ("png", "raw", "layers"):  # equal bytes are not sent again
                if name in traits:
                    setattr(self, name, traits[name])
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
