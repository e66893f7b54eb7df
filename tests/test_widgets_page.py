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
    a, code = c.fill_alpha, lay[..., 3]
    blend = lambda sel, rgb: np.floor(out[sel] * (1 - a) + np.asarray(rgb, float) * a + 0.5)  # noqa: E731
    if len(c.threshold) == 2:
        with np.errstate(invalid="ignore"):
            sel = (code == 0) & (v >= c.threshold[0]) & (v <= c.threshold[1])
        out[sel] = blend(sel, c.threshold_color)
    fill = (code != 0) & (code != 255)
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
        assert v.page_layer() == "threshold" and len(v.canvas.threshold) == 2
        assert v.canvas.layers  # the region, the outline and the seed markers
        np.testing.assert_array_equal(page_picture(v.canvas), _rgb(v.pixels))
        th.set_range(lo + 0.3 * (hi - lo), hi)
        np.testing.assert_array_equal(page_picture(v.canvas), _rgb(v.pixels))


def test_threshold_changes_send_no_picture_and_the_slider_is_linked_in_the_page(ct):
    v = SliceViewer(ct, window=400, level=40)
    th = ThresholdSlider(v, lower=100, upper=300)
    link = th._link  # a link in the page: the slider's value sets the page's overlay directly
    assert type(link).__name__ == "DirectionalLink"
    assert link.source == (th._slider, "value") and link.target == (v.canvas, "threshold")
    _ack(v.canvas)
    sent = v.canvas.frames_sent
    th.set_range(50, 250)  # from the kernel (code, Otsu): the page's overlay follows
    assert v.canvas.frames_sent == sent and v.canvas.threshold == [50.0, 250.0]
    assert th.statistics["voxels"] == int(((sitk.GetArrayFromImage(ct) >= 50) & (sitk.GetArrayFromImage(ct) <= 250)).sum())
    # a slider drag: the page shows the slider's newest value (the link) and the kernel's
    # throttled, older range must not be sent back over it
    v.canvas.set_state({"threshold": [70.0, 250.0]})  # the link, in the page
    th._slider.value = (60.0, 250.0)  # an older slider value reaches the kernel
    assert th.range == (60.0, 250.0) and v.canvas.threshold == [70.0, 250.0]
    # a step-snapped echo of a range the kernel set is replaced by the exact range
    th.set_range(80.4, 250.0)
    v.canvas.set_state({"threshold": [80.0, 250.0]})
    assert v.canvas.threshold == [80.4, 250.0]
    # a filled layer over it (a seed region) still needs pictures; removing the threshold
    # layer clears the page's overlay
    v.remove_layer("threshold")
    assert v.page_layer() is None and v.canvas.threshold == []


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
    assert v.page_layer() is None and v.canvas.threshold == [] and v.canvas.drag_action == "events"
    huge = np.zeros((4, 8, 8))
    huge[0, 0, 0] = 1e300
    assert SliceViewer(huge).rendering == "kernel"  # the page holds float32 intensities
    with pytest.raises(ValueError, match="`rendering` must be one of"):
        SliceViewer(ct, rendering="gpu")
