"""End to end: medlab.widgets in a real JupyterLab 4 in headless Chromium (Playwright).

Starts JupyterLab on 127.0.0.1 (a free port, a token, fresh config/runtime/settings/workspace
folders, the settings of PITFALLS.md), opens ``tests/e2e/widgets_e2e.ipynb``, runs its first
cell (a viewer with window/level and a seed picker), drags the window slider, drags on the
picture, clicks two seeds, turns the wheel (next slice; with ctrl: zoom), and after each step
runs the second cell and asserts from the kernel side that the window, the seeds and the grown
region, the slice and the zoom changed; the registration blender's layout (picture fully visible, no scrollbars, no cut
button text), the page checks the picture flow (live slider frames,
the newest frame shown, the page's picture equal to the kernel's pixels, a window drag drawn by
the page while the kernel is busy in another cell), the layout (read-out vs button, slider labels), and that View3D's NiiVue
draws the volume with WebGL2 on SwiftShader with no request beyond 127.0.0.1, and shows a
phantom's marker (patient left, anterior, superior) on the side SliceViewer shows it in each of
its axial, coronal and sagittal planes. Screenshots go to ``tests/artifacts/e2e/``.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` Python package
(its bundled driver only; ``playwright install`` is never run). Without them the test skips,
except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from labdriver import CHROMIUM, chromium, jupyterlab, open_notebook, run_cell  # noqa: E402

NOTEBOOK = ROOT / "tests" / "e2e" / "widgets_e2e.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts" / "e2e"

pytestmark = [pytest.mark.slow]


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the end-to-end test: .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the e2e notebook; stopped afterwards."""
    with jupyterlab(tmp_path_factory.mktemp("lab"), NOTEBOOK) as server:
        yield server


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (Debian package 'chromium')")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the 'playwright' Python package is missing (pip install -e '.[test]')")
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as pg:
        # a CPU with more cores than this machine's: NiiVue would turn multisampling on, which
        # View3D turns off on software WebGL (checked in _check_view3d_rotation)
        pg.add_init_script("Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 })")
        pg.outside = []
        pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
              else pg.outside.append(r.url))
        yield pg


_run_cell = run_cell


def _state(page, until=None, timeout_s: float = 30.0, *, cell: int = 1, tag: str = "STATE") -> dict:
    """Run cell ``cell`` (the second: the viewer's state; 9: the two-threshold viewer's, tag
    STATE2) and parse the state it prints; with ``until``, run it again until ``until(state)``
    holds (bounded). The kernel handles widget messages concurrently with cell execution, so one
    run can read the state before the last mouse event was handled."""
    deadline = time.monotonic() + timeout_s
    while True:
        _run_cell(page, cell)
        text = page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".jp-OutputArea-output").inner_text()
        state = json.loads(re.search(tag + r" (\{.*\})", text).group(1))
        if until is None or until(state) or time.monotonic() > deadline:
            return state
        page.wait_for_timeout(250)


_PROMPT_JS = "document.querySelectorAll('.jp-Notebook .jp-Cell')[{n}].querySelector('.jp-InputArea-prompt').innerText"
_CANVAS_STATE = """(() => { const c = document.querySelector('.medlab-canvas-img');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0; for (let i = 0; i < d.length; i += 4) sum += d[i];
  return { frame: Number(c.dataset.frame), painted: Number(c.dataset.painted || 0), sum }; })()"""


def _page_shows_newest_frame(page, state: dict, timeout_s: float = 60.0) -> dict:
    """Read the kernel's state until the page shows its newest frame; return that state."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = page.evaluate("Number(document.querySelector('.medlab-canvas-img').dataset.frame)")
        if shown == state["frame"]:
            return state
        assert time.monotonic() < deadline, (
            f"the page shows frame {shown}; the kernel's newest is {state['frame']} "
            f"(sent {state['frames_sent']}, acknowledged {state['frames_acked']})")
        page.wait_for_timeout(500)
        state = _state(page)


def _prompt(page, n: int) -> str:
    return page.evaluate(_PROMPT_JS.format(n=n)).strip()


def _start_cell(page, n: int) -> None:
    """Start cell ``n`` and return while it runs (its prompt shows '*')."""
    for _ in range(5):
        page.locator(".jp-Notebook .jp-Cell").nth(n).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(f"{_PROMPT_JS.format(n=n)}.includes('*')", timeout=5_000)
            return
        except Exception:  # JupyterLab dropped the keypress (see labdriver.run_cell)
            continue
    raise AssertionError(f"cell {n} did not start")


def _same_picture(page, png_base64: str, timeout_s: float = 10.0, cell=None) -> None:
    """The medlab canvas (the first one, or the one in ``cell``) shows the kernel's picture (at
    most 1 grey level apart per channel)."""
    want = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_base64))).convert("RGB")).astype(int)
    scope = page.locator(".jp-Notebook") if cell is None else cell
    deadline = time.monotonic() + timeout_s
    while True:
        url = scope.locator(".medlab-canvas-img").first.evaluate("(c) => c.toDataURL('image/png')")
        got = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)
        diff = np.abs(got - want).max() if got.shape == want.shape else None
        if diff is not None and diff <= 1 or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    assert got.shape == want.shape and diff <= 1, (got.shape, want.shape, diff)


_LAYOUT_JS = """(cell) => {
  const out = cell.querySelector('.jp-OutputArea-output');
  const box = out.querySelector('.medlab-canvas-box');
  const b = box.getBoundingClientRect();
  const clipped = [];  // ancestors (up to the output) that cut the picture off
  for (let e = box.parentElement; e && e !== out.parentElement; e = e.parentElement) {
    const r = e.getBoundingClientRect(), o = getComputedStyle(e);
    if (o.overflowX !== 'visible' && (b.left < r.left - 0.5 || b.right > r.right + 0.5)) clipped.push(e.className);
    if (o.overflowY !== 'visible' && (b.top < r.top - 0.5 || b.bottom > r.bottom + 0.5)) clipped.push(e.className);
  }
  const scrollbars = [...out.querySelectorAll('*')].filter((e) => {
    const o = getComputedStyle(e);
    return ((o.overflowX === 'auto' || o.overflowX === 'scroll') && e.scrollWidth > e.clientWidth + 1)
        || ((o.overflowY === 'auto' || o.overflowY === 'scroll') && e.scrollHeight > e.clientHeight + 1);
  }).map((e) => [e.className, e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight,
                   [...e.children].map((c) => c.className.split(' ').slice(-1)[0]).join(',')]);
  const cut = [...out.querySelectorAll('button')].filter((e) => e.scrollWidth > e.clientWidth + 1)
    .map((e) => e.textContent);
  return { width: b.width, height: b.height, clipped, scrollbars, cut };
}"""


def _check_blender_layout(page) -> None:
    """The RegistrationBlender's picture is fully visible (not clipped, no scrollbars), with a long
    status line beside it, and no button text is cut (e.g. 'checkerboard')."""
    _run_cell(page, 4)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(4)
    cell.locator(".medlab-canvas-img").wait_for()
    page.wait_for_function("(c) => c.querySelector('.medlab-canvas-img').dataset.frame", arg=cell.element_handle())
    cell.locator(".medlab-canvas-box").scroll_into_view_if_needed()
    cell.screenshot(path=ARTIFACTS / "6_blender.png")
    layout = page.evaluate(_LAYOUT_JS, cell.element_handle())
    assert layout["width"] == 512 and layout["height"] > 0, layout
    assert not layout["clipped"] and not layout["scrollbars"] and not layout["cut"], layout


# View3D's planes on the orientation phantom (cell 5): the body box's width over its height
# (mm: axial x by y 30 x 20, coronal x by z 30 x 8, sagittal y by z 20 x 8), and the side of
# the box the marker (patient left, anterior, superior) must be on, as SliceViewer shows the
# planes (its edge labels: axial A up, R on the left; coronal S up, R left; sagittal S up, A left)
_PLANES = {5: ("axial", 1.5, "right", "up"), 6: ("coronal", 3.75, "right", "up"),
           7: ("sagittal", 2.5, "left", "up")}


def _box_and_marker(rgb: np.ndarray):
    """The phantom's body (grey, the largest such region) and marker (white) in a screenshot:
    ``(aspect, (dx, dy))``, the marker's offset from the body's centre in body sizes, or None."""
    from scipy import ndimage

    rgb = rgb.astype(int)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    grey = (spread < 20) & (rgb.min(axis=2) > 70) & (rgb.max(axis=2) < 140)  # 0 HU: grey 102
    lab, n = ndimage.label(grey)
    if n == 0:
        return None
    body = lab == 1 + int(np.argmax(ndimage.sum(grey, lab, range(1, n + 1))))
    rows, cols = np.nonzero(body)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    if body.sum() < 200:
        return None
    inner = np.zeros_like(body)
    inner[r0:r1, c0:c1] = True
    marker = inner & (rgb.min(axis=2) > 200)  # 1000 HU: white (the crosshair lines are coloured)
    if marker.sum() < 4:
        return None
    mr, mc = np.nonzero(marker)
    dx = (mc.mean() - (c0 + c1 - 1) / 2) / (c1 - c0)
    dy = (mr.mean() - (r0 + r1 - 1) / 2) / (r1 - r0)
    return (c1 - c0) / (r1 - r0), (dx, dy)


def _check_view3d_orientation(page) -> None:
    """NiiVue's axial, coronal and sagittal planes of a phantom with a marker on the patient's
    left, anterior and superior side: each plane (told apart by the body's proportions) shows the
    marker on the side SliceViewer shows it (radiological: patient left on the right)."""
    _run_cell(page, 5)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(5)
    gl = cell.locator("canvas").first
    gl.wait_for()
    for n in (5, 6, 7):
        plane, aspect, side_x, side_y = _PLANES[n]
        if n > 5:
            _run_cell(page, n)
        gl.scroll_into_view_if_needed()
        found = None
        deadline = time.monotonic() + 120  # NiiVue draws in seconds; much longer under CI load
        while time.monotonic() < deadline:
            found = _box_and_marker(np.asarray(Image.open(io.BytesIO(gl.screenshot())).convert("RGB")))
            if found is not None and abs(found[0] / aspect - 1) < 0.2:
                break
            page.wait_for_timeout(500)
        gl.screenshot(path=ARTIFACTS / f"7_view3d_{plane}.png")
        assert found is not None and abs(found[0] / aspect - 1) < 0.2, (plane, found)
        dx, dy = found[1]
        assert (dx > 0.1 if side_x == "right" else dx < -0.1), (plane, "marker's side", side_x, found)
        assert (dy < -0.1 if side_y == "up" else dy > 0.1), (plane, "marker's side", side_y, found)
        # the letters NiiVue writes on this plane's corner name the sides the marker check found
        _check_corner_letters(gl, planes=({"axial": 0, "coronal": 1, "sagittal": 2}[plane],))


# NiiVue's own orientation text (View3D: corner text, the patient sides of each plane's top-left
# corner), read from what NiiVue draws: its drawText calls during one drawScene, with the planes'
# rectangles (canvas pixels). SliceViewer shows: axial R left, A up; coronal R left, S up;
# sagittal A left, S up.
_CORNER_LETTERS = {0: "RA", 1: "RS", 2: "AS"}
_NIIVUE_TEXT_JS = """(canvas) => {
  const nv = canvas.medlabNiivue;  // View3D's wrapper exposes its NiiVue instance on the canvas
  if (!nv) return null;
  const texts = [];
  nv.drawText = function (xy, str, ...rest) {
    texts.push([String(str), xy[0], xy[1]]);
    return Object.getPrototypeOf(nv).drawText.call(this, xy, str, ...rest);
  };
  try { nv.drawScene(); } finally { delete nv.drawText; }
  return { texts, planes: nv.screenSlices.map((s) => [s.axCorSag, ...s.leftTopWidthHeight]) };
}"""


def _check_corner_letters(gl, planes=(0, 1, 2)) -> None:
    """NiiVue writes each shown plane's corner letters (as SliceViewer orients it) on that plane's
    top-left corner, and no other letters (its edge letters, which land inside a single plane's
    picture, are off)."""
    drawn = gl.evaluate(_NIIVUE_TEXT_JS)
    assert drawn is not None, "View3D's NiiVue instance is not on its canvas (medlabNiivue)"
    shown = {p[0]: p[1:] for p in drawn["planes"] if p[0] <= 2}
    assert sorted(shown) == sorted(planes), drawn
    letters = [t for t in drawn["texts"] if re.fullmatch(r"[RLAPSI]{1,2}", t[0])]
    for plane, (left, top, _w, _h) in shown.items():
        at = [t for t in letters if abs(t[1] - left) <= 1 and abs(t[2] - top) <= 1]
        assert [t[0] for t in at] == [_CORNER_LETTERS[plane]], (plane, (left, top), letters)
    assert len(letters) == len(shown), letters


_ROTATION_JS = """(canvas) => { const nv = canvas.medlabNiivue;
  const r = nv.screenSlices.find((s) => s.axCorSag === 4).leftTopWidthHeight, box = canvas.getBoundingClientRect();
  return { width: canvas.width, dpr: nv.uiData.dpr, azimuth: nv.scene.renderAzimuth, cores: navigator.hardwareConcurrency,
           msaa: nv.gl.getContextAttributes().antialias,
           x: box.left + (r[0] + r[2] / 2) / nv.uiData.dpr, y: box.top + (r[1] + r[3] / 2) / nv.uiData.dpr }; }"""


def _check_view3d_rotation(page, gl) -> None:
    """A left drag on View3D's 3D tile rotates the volume at half the canvas resolution
    (``rotate_resolution=0.5``, NiiVue drawing at most once per animation frame) and the full
    resolution comes back on release. No timing: the canvas size is read while the button is down
    and waited for after. On SwiftShader NiiVue's WebGL context has no multisampling, although
    the page reports 8 cores (NiiVue's own rule would turn it on)."""
    before = gl.evaluate(_ROTATION_JS)
    assert before["cores"] == 8 and before["msaa"] is False, before  # software WebGL: no multisampling
    page.mouse.move(before["x"], before["y"])
    page.mouse.down()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    half = before["width"] // 2
    try:  # bounded wait, no timing assumed
        page.wait_for_function(f"(c) => Math.abs(c.width - {half}) <= 1", arg=gl.element_handle(), timeout=60_000)
    except PlaywrightTimeout:
        pass  # the assertion below says what the canvas is
    during = gl.evaluate(_ROTATION_JS)
    page.mouse.move(before["x"] + 60, before["y"], steps=6)
    page.mouse.up()
    page.wait_for_function(f"(c) => c.width === {before['width']}", arg=gl.element_handle(), timeout=60_000)
    after = gl.evaluate(_ROTATION_JS)
    assert abs(during["width"] - before["width"] / 2) <= 1 and during["dpr"] == before["dpr"] / 2, (before, during)
    assert after["dpr"] == before["dpr"] and after["azimuth"] - before["azimuth"] > 10, (before, after)  # +60 seen


def _check_two_thresholds(page) -> None:
    """Two ThresholdSliders on one viewer: the page draws both overlays, each in its colour, as
    the kernel composes them; a drag of the second slider redraws the page, and once the kernel
    has followed, the pictures agree again."""
    _run_cell(page, 8)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(8)
    cell.locator(".medlab-canvas-img").wait_for()
    page.wait_for_function("(c) => c.querySelector('.medlab-canvas-img').dataset.frame", arg=cell.element_handle())
    cell.locator(".medlab-canvas-box").scroll_into_view_if_needed()
    first = _state(page, cell=9, tag="STATE2")
    assert len(first["thresholds"]) == 2, first["thresholds"]
    _same_picture(page, first["pixels_png"], cell=cell)
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(first["pixels_png"]))).convert("RGB")).astype(int)
    assert ((rgb[..., 2] - rgb[..., 0]) > 40).any() and ((rgb[..., 0] - rgb[..., 2]) > 40).any()  # both colours
    painted = int(cell.locator(".medlab-canvas-img").evaluate("(c) => Number(c.dataset.painted || 0)"))
    slider = cell.locator(".widget-slider", has=page.locator("label", has_text=re.compile(r"^threshold$"))).nth(1)
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    hb = handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + hb["width"] / 2 + 30, hb["y"] + hb["height"] / 2, steps=5)
    page.mouse.up()
    cell.locator(".medlab-canvas-img").evaluate(f"(c) => new Promise((ok) => {{ const t = setInterval(() => {{"
                                                f" if (Number(c.dataset.painted || 0) > {painted}) {{ clearInterval(t); ok(); }}"
                                                f" }}, 50); setTimeout(() => {{ clearInterval(t); ok(); }}, 20000); }})")
    after = _state(page, until=lambda s: s["dense"][0] != first["dense"][0], cell=9, tag="STATE2")
    assert after["dense"][0] > first["dense"][0] and after["soft"] == first["soft"], (first, after)
    cell.screenshot(path=ARTIFACTS / "8_two_thresholds.png")
    # the kernel applies the slider's values throttled: the state read above can be one that the
    # page has passed already; read it again until it is the page's (bounded)
    deadline = time.monotonic() + 60
    while True:
        try:
            _same_picture(page, after["pixels_png"], timeout_s=2.0, cell=cell)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            after = _state(page, cell=9, tag="STATE2")


def _pixel_center(box: dict, shape, row: int, col: int) -> tuple[float, float]:
    rows, cols = shape
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def test_widgets_in_jupyterlab(page, lab):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        _drive(page, lab)
    except Exception:
        page.screenshot(path=ARTIFACTS / "failure.png")
        print(f"server log: {lab['log'].read_text()[-3000:]}")
        raise


def _drive(page, lab):
    t0 = time.monotonic()
    open_notebook(page, lab["url"])
    _run_cell(page, 0)
    page.wait_for_function(
        "(() => { const i = document.querySelector('.medlab-canvas-img');"
        " return i && i.dataset.frame && i.width === 128; })()")
    canvas = page.locator(".medlab-canvas-box")
    canvas.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "1_rendered.png")
    # patient directions at the picture's edges (axial: anterior up, patient's right on the left)
    edges = page.evaluate("[...document.querySelectorAll('.medlab-canvas-box .medlab-orient')]"
                          ".map(d => [d.className, d.textContent, d.getBoundingClientRect().x, d.getBoundingClientRect().y])")
    where = {cls.split("medlab-orient-")[1]: (text, x, y) for cls, text, x, y in edges}
    assert {k: v[0] for k, v in where.items()} == {"top": "A", "bottom": "P", "left": "R", "right": "L"}, edges
    assert where["left"][1] < where["right"][1] and where["top"][2] < where["bottom"][2], edges
    # layout: the seed picker's range read-out and the "clear seeds" button do not overlap, and
    # the two range sliders have different labels
    readout = page.locator(".widget-slider", has=page.locator("label", has_text=re.compile(r"^region$")))
    rb = readout.locator(".widget-readout").bounding_box()
    cb = page.locator("button", has_text="clear seeds").bounding_box()
    assert rb["x"] + rb["width"] <= cb["x"] or cb["x"] + cb["width"] <= rb["x"] \
        or rb["y"] + rb["height"] <= cb["y"] or cb["y"] + cb["height"] <= rb["y"], (rb, cb)
    assert page.locator("label", has_text=re.compile(r"^range$")).count() == 0
    first = _state(page)
    assert (first["window"], first["level"]) == (1500.0, -600.0) and first["seeds_index"] == [], first

    # drag the window slider's handle to the right
    canvas.scroll_into_view_if_needed()
    slider = page.locator(".widget-slider", has=page.locator("label", has_text=re.compile(r"^window$")))
    handle = slider.locator(".noUi-handle")
    hb = handle.bounding_box()
    drawn = int(page.evaluate("document.querySelector('.medlab-canvas-img').dataset.drawn"))
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + hb["width"] / 2 + 60, hb["y"] + hb["height"] / 2, steps=6)
    # live slider: new pictures arrive while the handle is still held
    page.wait_for_function(f"Number(document.querySelector('.medlab-canvas-img').dataset.drawn) > {drawn}")
    page.mouse.up()
    after_slider = _state(page, until=lambda s: s["window"] != first["window"])
    assert after_slider["window"] > first["window"]
    assert after_slider["level"] == first["level"]

    # drag on the picture: down raises the level (window/level by mouse, as radiology viewers do)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 40, box["y"] + 140, steps=8)
    page.mouse.up()
    after_drag = _state(page, until=lambda s: s["level"] != after_slider["level"])
    assert after_drag["level"] > after_slider["level"]
    assert after_drag["seeds_index"] == []  # a drag is not a click

    # page rendering: a window drag redraws the picture while the kernel is busy (a cell sleeps),
    # so no picture comes from the kernel; the kernel's state follows once it is free
    _start_cell(page, 3)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    before = page.evaluate(_CANVAS_STATE)
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 60, steps=10)
    page.mouse.up()
    page.wait_for_function(f"Number(document.querySelector('.medlab-canvas-img').dataset.painted) > {before['painted']}")
    during = page.evaluate(_CANVAS_STATE)
    assert _prompt(page, 3) == "[*]:", "the kernel finished before the drag was drawn: no proof"
    assert during["frame"] == before["frame"] and during["sum"] != before["sum"], (before, during)
    page.wait_for_function(f"!{_PROMPT_JS.format(n=3)}.includes('*')", timeout=60_000)
    after_busy = _state(page, until=lambda s: s["window"] != after_drag["window"])
    assert after_busy["window"] > after_drag["window"] and after_busy["level"] == after_drag["level"]

    # two clicks: the nodule, then lung parenchyma (outside the range: it grows nothing)
    z, y, x = first["nodule_index"]
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(*_pixel_center(box, (128, 128), y, x))
    page.mouse.click(*_pixel_center(box, (128, 128), 64, 32))
    state = _state(page, until=lambda s: len(s["seeds_index"]) == 2 and s["voxels"] > 0)
    page.screenshot(path=ARTIFACTS / "2_after_interaction.png")
    canvas.screenshot(path=ARTIFACTS / "3_canvas.png")
    assert state["seeds_index"] == [[z, y, x], [z, 64, 32]]
    # flow control: the page comes to show the newest frame the kernel sent, and acknowledged each
    # frame sent since it opened (the frames of the constructors went out before there was a page).
    # A frame held for the page's acknowledgement goes out after the state above was read, so the
    # kernel's frame number can still grow: read both until they meet (bounded)
    state = _page_shows_newest_frame(page, state)
    assert state["frames_acked"] >= state["frames_sent"] - 3, state
    # the page draws what the kernel composes (medlab.display's pixels), window, threshold-free
    # grey, seed region fill and markers included
    _same_picture(page, state["pixels_png"])
    # the grown region is the nodule (60 HU in lung, range 0..200 HU): its size, up to noise
    assert abs(state["voxels"] - state["nodule_voxels"]) <= 0.3 * state["nodule_voxels"]
    # the wheel pages to the next slice; ctrl + wheel zooms (in the browser, synced back)
    page.mouse.move(box["x"] + 256, box["y"] + 256)
    page.mouse.wheel(0, 120)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    wheeled = _state(page, until=lambda s: s["index"] == z + 1 and s["zoom"] > 1)
    assert wheeled["index"] == z + 1 and wheeled["zoom"] > 1, wheeled
    page.screenshot(path=ARTIFACTS / "4_next_slice_zoomed.png")

    # View3D: NiiVue draws the volume (WebGL2 on SwiftShader), offline
    _run_cell(page, 2)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    gl = cell.locator("canvas").first
    gl.wait_for()
    gl.scroll_into_view_if_needed()
    lit = 0.0
    deadline = time.monotonic() + 150  # NiiVue loads in seconds, but took over 60 s at load 15
    while time.monotonic() < deadline:
        shot = np.asarray(Image.open(io.BytesIO(gl.screenshot())).convert("L"))
        lit = float((shot > 40).mean())
        if lit > 0.05:
            break
        page.wait_for_timeout(500)
    gl.screenshot(path=ARTIFACTS / "5_view3d.png")
    assert lit > 0.05, f"NiiVue drew nothing ({lit:.3f} of the canvas lit)"
    _check_corner_letters(gl)
    _check_view3d_rotation(page, gl)
    _check_blender_layout(page)
    _check_view3d_orientation(page)
    _check_two_thresholds(page)
    assert not page.outside, page.outside  # nothing requested beyond 127.0.0.1
    assert not page.errors, page.errors
    print(f"e2e: {time.monotonic() - t0:.1f} s in the browser; screenshots in {ARTIFACTS}")
