"""Page rendering (SliceViewer(rendering='page')): the kernel sends the slice's intensities once
and the page applies window/level, the colour map and the threshold overlay itself.

``page_picture`` below is the page's compositing (the JavaScript in ``widgets/_canvas.py``)
written again in numpy, from the synced traits only: these tests check that what the kernel
sends lets the page draw exactly :meth:`SliceViewer.compose`'s pixels, and that window and
threshold changes send no picture. The JavaScript itself is checked against the kernel's pixels
in the browser (``tests/test_e2e_jupyterlab.py``).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import SimpleITK as sitk
from medlab.widgets import SeedPicker, SliceViewer, ThresholdSlider, WindowLevel

import medlab.datasets
import medlab.display


@pytest.fixture(scope="module")
def ct():
    ph = medlab.datasets.ct_phantom(shape=(16, 40, 48), seed=5)
    return sitk.Cast(sitk.Round(ph.image), sitk.sitkInt16)


def page_ranges(c) -> list:
    """The threshold ranges the page draws: the kernel's, or a linked slider's ends where it
    moved more than half a step away from them (a drag the kernel has not followed yet)."""
    out = []
    for j, (lo, hi) in enumerate(c.thresholds):
        s = c.threshold_sliders[j] if j < len(c.threshold_sliders) else None
        if s is not None:
            tol = 0.5 * s.step * (1 + 1e-9)
            lo = lo if abs(s.value[0] - lo) <= tol else s.value[0]
            hi = hi if abs(s.value[1] - hi) <= tol else s.value[1]
        out.append((lo, hi))
    return out


def page_picture(c) -> np.ndarray:
    """What the page draws from the canvas traits (RGB uint8)."""
    rows, cols = c.shape
    raw = np.frombuffer(c.raw, dtype=np.dtype(c.raw_dtype).newbyteorder("<")).reshape(rows, cols)
    v = raw.astype(np.float64)
    low, high = c.level - c.window / 2, c.level + c.window / 2
    with np.errstate(invalid="ignore"):
        u = np.clip((v - low) / (high - low), 0.0, 1.0)
    grey = np.floor(np.nan_to_num(u, nan=0.0) * 255 + 0.5).astype(np.uint8)
    lut = np.frombuffer(c.lut, np.uint8).reshape(256, 3) if c.lut else np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)
    out = lut[grey].astype(np.float64)
    lay = (np.frombuffer(zlib.decompress(c.layers), np.uint8).reshape(rows, cols, 4) if c.layers
           else np.zeros((rows, cols, 4), np.uint8))
    a, code = c.fill_alpha, lay[..., 3].astype(int)
    blend = lambda sel, rgb: np.floor(base[sel] * (1 - a) + np.asarray(rgb, float) * a + 0.5)  # noqa: E731
    base = out.copy()
    top = np.full(v.shape, -1)  # the last threshold overlay holding each pixel
    with np.errstate(invalid="ignore"):
        for j, (lo, hi) in enumerate(page_ranges(c)):
            top[(v >= lo) & (v <= hi)] = j
    for j, color in enumerate(c.threshold_colors):
        sel = top == j
        out[sel] = blend(sel, color)
    fill = (code != 0) & (code != 255) & (top < code - 1)  # a filled layer above the thresholds there
    out[fill] = blend(fill, lay[fill, :3])
    out[code == 255] = lay[code == 255, :3]
    return out.astype(np.uint8)


def _rgb(pixels):
    return pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)


def _ack(canvas):
    canvas._on_frontend_msg(canvas, {"event": "ack", "frame": canvas.frame}, [])


def test_page_gets_the_intensities_and_draws_the_kernels_picture(ct):
    v = SliceViewer(ct, window=400, level=40)
    assert v.rendering == "page" and v.canvas.rendering == "page"
    c = v.canvas
    assert c.png == b"" and c.raw_dtype == "int16"
    np.testing.assert_array_equal(np.frombuffer(c.raw, "<i2").reshape(c.shape), sitk.GetArrayFromImage(ct)[8])
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))
    # a window change: new numbers for the page, no new picture, and the same pixels
    _ack(c)
    sent = c.frames_sent
    v.set_window_level(150, -20)
    assert (c.window, c.level) == (150.0, -20.0) and c.frames_sent == sent
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))
    assert "W 150" in v._status.value
    # a slice change sends the new slice's intensities
    v.set_slice(3, "coronal")
    assert c.frames_sent == sent + 1 and tuple(c.shape) == (16, 48)
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))


def test_page_draws_layers_threshold_and_colour_map_as_the_kernel(ct):
    pet = sitk.Cast(ct, sitk.sitkFloat32) / 97.0  # float intensities, a colour map
    for image, kwargs in ((ct, {"window": 400, "level": 40}), (pet, {"colormap": "hot"})):
        v = SliceViewer(image, **kwargs)
        lo, hi = v.intensity_range
        th = ThresholdSlider(v, lower=lo + 0.6 * (hi - lo), upper=hi)
        sp = SeedPicker(v, lower=lo, upper=lo + 0.5 * (hi - lo), seeds_index=[(8, 20, 24), (8, 5, 5)])
        v.set_overlay("outline", (sp.region > 0).astype(np.uint8), mode="contour", color=(0, 255, 0))
        assert v.page_layers() == ("threshold",) and len(v.canvas.thresholds) == 1
        assert v.canvas.layers  # the region, the outline and the seed markers
        np.testing.assert_array_equal(page_picture(v.canvas), _rgb(v.pixels))
        th.set_range(lo + 0.3 * (hi - lo), hi)
        np.testing.assert_array_equal(page_picture(v.canvas), _rgb(v.pixels))


def test_threshold_changes_send_no_picture_and_the_slider_is_linked_in_the_page(ct):
    v = SliceViewer(ct, window=400, level=40)
    th = ThresholdSlider(v, lower=100, upper=300)
    c = v.canvas
    assert c.threshold_sliders == [th._slider]  # the page reads the slider's value itself
    _ack(c)
    sent = c.frames_sent
    th.set_range(50, 250)  # from the kernel (code, Otsu): the page's overlay follows
    assert c.frames_sent == sent and c.thresholds == [[50.0, 250.0]]
    assert th.statistics["voxels"] == int(((sitk.GetArrayFromImage(ct) >= 50) & (sitk.GetArrayFromImage(ct) <= 250)).sum())
    assert page_ranges(c) == [(50.0, 250.0)]
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))
    # a step-snapped echo of an exact kernel range: the page draws the exact range
    th.set_range(80.4, 250.0)
    th._slider.set_state({"value": [80.0, 250.0]})  # the page's slider snaps it to its step
    assert th.range == (80.4, 250.0) and page_ranges(c) == [(80.4, 250.0)]
    # a slider drag the kernel has not followed yet: the page draws the slider's moved end
    th._slider.unobserve(th._on_slider, names="value")  # the kernel has not seen it yet
    th._slider.value = (120.0, 250.0)  # the page's slider model, mid-drag
    assert c.thresholds == [[80.4, 250.0]] and page_ranges(c) == [(120.0, 250.0)]
    th._slider.observe(th._on_slider, names="value")
    # removing the threshold layer clears the page's overlay
    v.remove_layer("threshold")
    assert v.page_layers() == () and c.thresholds == [] and c.threshold_sliders == []


def test_two_threshold_sliders_are_drawn_by_the_page_as_the_kernel_draws_them(ct):
    """Several threshold overlays, each in its colour, and filled layers before and after them:
    the page's picture is the kernel's ``compose`` (``medlab.display.render``'s last-layer-on-top
    blend) pixel for pixel, after every change."""
    arr = sitk.GetArrayFromImage(ct)
    v = SliceViewer(ct, window=400, level=40)
    early = np.zeros(arr.shape, np.uint8)
    early[:, 8:20, 5:25] = 1  # a filled layer added before the thresholds (lung and tissue)
    v.set_overlay("early", early, color=(0, 200, 0))
    bone = ThresholdSlider(v, lower=0, upper=800, color=(255, 64, 64), layer="bone")
    soft = ThresholdSlider(v, lower=-950, upper=60, color=(40, 120, 255), layer="soft")
    late = np.zeros(arr.shape, np.uint8)
    late[:, 26:34, 18:30] = 1  # and one after them (bone and tissue)
    v.set_overlay("late", late, color=(255, 220, 0))
    c = v.canvas
    assert v.page_layers() == ("bone", "soft")
    assert c.threshold_colors == [[255, 64, 64], [40, 120, 255]]
    assert c.threshold_sliders == [bone._slider, soft._slider]
    pic = page_picture(c)
    np.testing.assert_array_equal(pic, _rgb(v.pixels))
    # the slice has pixels of each case: bone only, both ranges (the later, soft, on top), and
    # each range under and over a filled layer
    sl, free = arr[8], (early[8] == 0) & (late[8] == 0)
    in_bone, in_soft = (sl >= bone.lower) & (sl <= bone.upper), (sl >= soft.lower) & (sl <= soft.upper)
    cases = (in_bone & ~in_soft & free, in_bone & in_soft & free, in_soft & (early[8] > 0), in_bone & (late[8] > 0))
    for case in cases:
        assert case.any()
    both = in_bone & in_soft & free
    want = np.floor(0.6 * medlab.display.to_uint8(sl, 400, 40)[both][:, None] + 0.4 * np.array([40, 120, 255]) + 0.5)
    np.testing.assert_array_equal(pic[both], want.astype(np.uint8))
    _ack(c)
    sent = c.frames_sent
    soft.set_range(-1000, 40)
    bone.set_range(20, 800)
    assert c.frames_sent == sent  # ranges only: no new picture from the kernel
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))
    for idx, axis in ((0, "axial"), (15, "axial"), (20, "coronal")):
        v.set_slice(idx, axis)
        _ack(c)  # the page drew the new slice
        np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))
    v.remove_layer("bone")
    assert v.page_layers() == ("soft",) and len(c.thresholds) == 1
    np.testing.assert_array_equal(page_picture(c), _rgb(v.pixels))


def test_a_window_drag_drawn_by_the_page_reaches_the_state(ct):
    v = SliceViewer(ct, window=400, level=40)
    wl = WindowLevel(v, sensitivity=2.0)
    c = v.canvas
    assert (c.drag_action, c.drag_sensitivity, c.drag_window_min) == ("window", 2.0, wl._window.min)
    _ack(c)
    sent = c.frames_sent
    c.set_state({"window": 520.0, "level": 10.0})  # the page, during a drag (every 0.1 s)
    assert (v.window, v.level) == (520.0, 10.0) and c.frames_sent == sent
    assert wl._window.value == 520.0 and wl._level.value == 10.0
    # the kernel's drag handler (scripts, tests) uses the same map the page uses
    wl.drag(30, -10)
    assert (v.window, v.level) == (520.0 + 30 * 2.0, 10.0 - 10 * 2.0)
    assert (c.window, c.level) == (v.window, v.level)


def test_kernel_rendering_and_images_beyond_float32(ct):
    v = SliceViewer(ct, window=400, level=40, rendering="kernel")
    assert v.canvas.rendering == "kernel" and v.canvas.raw == b"" and v.canvas.png
    ThresholdSlider(v, lower=100, upper=300)
    assert v.page_layers() == () and v.canvas.thresholds == [] and v.canvas.drag_action == "events"
    huge = np.zeros((4, 8, 8))
    huge[0, 0, 0] = 1e300
    assert SliceViewer(huge).rendering == "kernel"  # the page holds float32 intensities
    with pytest.raises(ValueError, match="`rendering` must be one of"):
        SliceViewer(ct, rendering="gpu")
