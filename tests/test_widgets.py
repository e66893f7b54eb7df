"""medlab.widgets without a browser: set values through the public setters and events, assert on
state, on the medlab result and on the rendered pixels (and the PNG the browser receives)."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from medlab.widgets import (
    EVENTS,
    ImageCanvas,
    Panel,
    SeedPicker,
    SliceViewer,
    ThresholdSlider,
    WindowLevel,
    view3d,
)

import medlab.datasets
import medlab.display
import medlab.enhance
import medlab.segmentation


@pytest.fixture(scope="module")
def phantom():
    return medlab.datasets.ct_phantom(shape=(24, 48, 64), seed=3)


@pytest.fixture(scope="module")
def ct(phantom):
    return sitk.Cast(sitk.Round(phantom.image), sitk.sitkInt16)


def _decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _nodule(phantom):
    lesion = max(phantom.truth["lesions"], key=lambda le: le["n_voxels"])
    return lesion, tuple(int(i) for i in lesion["centre_index"])


# --------------------------------------------------------------------------- SliceViewer
def test_viewer_draws_the_slice_through_medlab_display(ct):
    v = SliceViewer(ct, window=400, level=40, rendering="kernel")
    arr = sitk.GetArrayFromImage(ct)
    assert v.index == 12 and v.axis == "axial" and v.n_slices == 24
    expected = medlab.display.render(arr[12], 400, 40)
    np.testing.assert_array_equal(v.pixels, expected)
    np.testing.assert_array_equal(_decode(v.canvas.png), expected)  # what the browser receives
    assert tuple(v.canvas.shape) == (48, 64)
    v.set_slice(5, "coronal")
    np.testing.assert_array_equal(v.pixels, medlab.display.render(arr[::-1, 5, :], 400, 40))
    assert v.canvas.aspect == pytest.approx(2.5 / 2.0)  # z spacing / x spacing: true proportions
    assert v._slider.max == 47 and v._slider.value == 5 and v._axis_buttons.value == "coronal"


def test_viewer_default_window_is_medlab_auto(ct):
    v = SliceViewer(ct)
    assert (v.window, v.level) == pytest.approx(medlab.enhance.resolve_window(ct, preset="auto"))


def test_viewer_numpy_input_with_spacing_and_2d():
    arr = np.arange(12 * 10, dtype=np.int16).reshape(12, 10)
    v = SliceViewer(arr, spacing=(0.5, 0.25), window=120, level=60, unit="a.u.")
    assert v.ndim == 2 and v.n_slices == 1 and v.pixel_spacing_mm == (0.5, 0.25)
    assert v.point_mm((2, 3)) == pytest.approx((0.75, 1.0))
    assert v.index_of_point((0.75, 1.0)) == (2, 3)
    np.testing.assert_array_equal(v.pixels, medlab.display.render(arr, 120, 60))
    assert len(v.children) == 4  # title, canvas, status, readout: no slice controls in 2D
    assert v.canvas.wheel_events is False  # the wheel scrolls the notebook
    with pytest.raises(ValueError, match="2D image has only one view"):
        v.set_slice(0, "sagittal")


def test_viewer_index_mapping_round_trip(ct):
    v = SliceViewer(ct)
    for axis, index in (("axial", 7), ("coronal", 20), ("sagittal", 33)):
        v.set_slice(index, axis)
        for row, col in ((0, 0), (10, 3), (v.canvas.shape[0] - 1, v.canvas.shape[1] - 1)):
            idx = v.index_of_pixel(row, col)
            assert v.pixel_of_index(idx) == (row, col)
            assert v.array[idx] == v.current_slice()[row, col]
    assert v.pixel_of_index((0, 0, 0)) is None  # not on sagittal slice 33


def test_viewer_setters_check_bounds(ct):
    v = SliceViewer(ct)
    with pytest.raises(ValueError, match=r"`index` must be in \[0, 23\] for the axial axis; got 24"):
        v.set_slice(24)
    with pytest.raises(TypeError, match="`index` must be an int"):
        v.set_slice(2.5)
    with pytest.raises(ValueError, match="By 'axil', did you mean 'axial'"):
        v.set_slice(1, "axil")
    with pytest.raises(ValueError, match=r"outside the image \(numpy shape \(24, 48, 64\)\)"):
        v.check_index((0, 48, 0))
    with pytest.raises(ValueError, match="window"):
        v.set_window_level(0, 40)
    with pytest.raises(ValueError, match="zoom"):
        v.set_view(zoom=0.5)
    v.set_view(zoom=4, center_index=(12, 10, 20))
    assert v.canvas.zoom == 4 and v.canvas.center == [10.5, 20.5]
    with pytest.raises(ValueError, match="not on the shown slice"):
        v.set_view(zoom=2, center_index=(3, 10, 20))


def test_viewer_wheel_move_and_leave_events(ct):
    v = SliceViewer(ct, unit="HU", index=22)
    v.canvas.dispatch({"event": "wheel", "delta": 1})
    assert v.index == 23
    v.canvas.dispatch({"event": "wheel", "delta": 1})
    assert v.index == 23  # clamped at the last slice
    v.canvas.dispatch({"event": "wheel", "delta": -1})
    assert v.index == 22
    v.canvas.dispatch({"event": "move", "row": 20, "col": 30})
    idx = (22, 20, 30)
    assert v.cursor["index"] == idx
    assert v.cursor["value"] == sitk.GetArrayViewFromImage(ct)[idx]
    assert v.cursor["point_mm"] == pytest.approx(ct.TransformIndexToPhysicalPoint(idx[::-1]))
    assert "HU" in v._readout.value and str(v.cursor["value"]) in v._readout.value
    v.canvas.dispatch({"event": "leave"})
    assert v.cursor == {}
    v.canvas.dispatch({"event": "move", "row": 48, "col": 0})  # off the picture: ignored
    assert v.cursor == {}
    with pytest.raises(ValueError, match="unknown canvas event"):
        v.canvas.dispatch({"event": "tap"})


def test_overlays_fill_and_contour_match_medlab_display(ct, phantom):
    labels = sitk.GetArrayFromImage(phantom.labels)
    v = SliceViewer(ct, window=1500, level=-600, overlay=phantom.labels, overlay_mode="fill")
    sl = sitk.GetArrayViewFromImage(ct)[12]
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sl, 1500, -600, overlay=labels[12]))
    v.set_overlay("overlay", labels, mode="contour")
    np.testing.assert_array_equal(
        v.pixels, medlab.display.render(sl, 1500, -600, overlay=labels[12], overlay_mode="contour"))
    # fill and contour layers together: the fill, then the outline on top in its colour
    lung = (labels == 2).astype(np.uint8)
    v.set_overlay("lung", lung, mode="fill", color=(0, 255, 0))
    filled = medlab.display.render(sl, 1500, -600, overlay=lung[12], overlay_colors={1: (0, 255, 0)})
    edge = medlab.display.boundary(labels[12])
    np.testing.assert_array_equal(v.pixels[~edge], filled[~edge])
    contour = medlab.display.render(sl, 1500, -600, overlay=labels[12], overlay_mode="contour")
    np.testing.assert_array_equal(v.pixels[edge], contour[edge])
    assert v.layers == ("overlay", "lung")
    v.remove_layer("lung")
    v.remove_layer("overlay")
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sl, 1500, -600))
    with pytest.raises(ValueError, match=r"must have the same shape as `image`"):
        v.set_overlay("bad", np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="integer labels"):
        v.set_overlay("bad", np.zeros(labels.shape, np.float32))


def test_colormap_with_fill_overlay_matches_render():
    pet = medlab.datasets.pet_phantom(shape=(16, 40, 40), seed=2)
    lab = sitk.GetArrayFromImage(pet.labels)
    v = SliceViewer(pet.image, colormap="hot", window=10, level=5, overlay=pet.labels, overlay_mode="fill",
                    overlay_alpha=0.5, unit="SUV")
    expected = medlab.display.render(sitk.GetArrayViewFromImage(pet.image)[8], 10, 5, colormap="hot",
                                     overlay=lab[8], overlay_alpha=0.5)
    np.testing.assert_array_equal(v.pixels, expected)


def test_set_image_keeps_the_view_and_feeds_the_components(ct):
    v = SliceViewer(ct, window=400, level=40, index=7)
    sp = SeedPicker(v, lower=0, upper=10, seeds_index=[(7, 24, 32)])
    flat = np.full(v.array.shape, 5, np.int16)
    v.set_image(flat, unit="a.u.")
    assert v.index == 7 and (v.window, v.level) == (400, 40) and v.unit == "a.u."
    np.testing.assert_array_equal(v.current_slice(), flat[7])
    assert v.image.GetSpacing() == ct.GetSpacing()
    sp.set_range(0, 10)  # the next update grows on the new image: everything is in range
    sp.set_range(0, 9)
    assert sp.statistics["voxels"] == flat.size
    with pytest.raises(ValueError, match="must have the shape of the shown image"):
        v.set_image(flat[:3])


def test_markers_only_on_their_slice(ct):
    v = SliceViewer(ct, window=400, level=40)
    plain = v.pixels.copy()
    v.set_markers("m", [(12, 24, 32)], color=(255, 0, 255))
    assert v.pixels.ndim == 3 and tuple(v.pixels[24, 32]) == (255, 0, 255)
    v.set_slice(11)
    assert v.pixels.ndim == 2  # the marker is on slice 12 only
    v.set_slice(12)
    v.remove_layer("m")
    np.testing.assert_array_equal(v.pixels, plain)


def test_static_png_fallback_is_the_current_picture(ct):
    v = SliceViewer(ct, window=400, level=40)
    wl = WindowLevel(v)
    for w in (v, wl, Panel(v, wl)):
        bundle, metadata = w._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        np.testing.assert_array_equal(_decode(base64.b64decode(bundle["image/png"])), v.pixels)
        assert metadata["image/png"] == {"width": 512, "height": 384}  # 48x64 pixels shown 512 wide
    v.set_slice(3, "coronal")  # 24 slices of 2.5 mm over 64 columns of 2 mm
    assert v._repr_mimebundle_()[1]["image/png"] == {"width": 512, "height": round(512 * 24 * 2.5 / (64 * 2))}
    with pytest.raises(TypeError, match="`viewer` must be a SliceViewer"):
        Panel(wl)


def test_canvas_events_and_drag_mode():
    c = ImageCanvas(shape=(4, 5))
    got = []
    assert c.drag_mode == "pan"
    c.on("drag", got.append)
    assert c.drag_mode == "events"
    c.on("click", got.append)
    c._on_frontend_msg(c, {"event": "click", "row": 1, "col": 2}, [])  # as from the browser
    c._on_frontend_msg(c, {"something": "else"}, [])
    c.dispatch({"event": "drag", "phase": "move", "dx": 3, "dy": 4})
    assert [m["event"] for m in got] == ["click", "drag"] and got[0]["row"] == 1
    c.on("drag", got.append, remove=True)
    assert c.drag_mode == "pan"
    with pytest.raises(ValueError, match="`event` must be one of"):
        c.on("tap", print)
    assert set(EVENTS) == {"click", "drag", "wheel", "move", "leave"}


# --------------------------------------------------------------------------- WindowLevel
def test_window_level_presets_sliders_and_drag(ct):
    wl = WindowLevel(ct, unit="HU", preset="lung", sensitivity=2.0)
    v = wl.viewer
    assert wl.children[0] is v  # made its own viewer
    assert (wl.window, wl.level) == (1500.0, -600.0) == medlab.enhance.presets()["lung"][:2]
    assert wl._preset.value == "lung"
    sl = sitk.GetArrayViewFromImage(ct)[12]
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sl, 1500, -600))
    # drag: right widens the window, down raises the level (2 HU per screen pixel)
    wl.drag(50, -20)
    assert (wl.window, wl.level) == (1600.0, -640.0)
    assert wl._preset.value == "custom"
    assert (wl._window.value, wl._level.value) == (1600.0, -640.0)
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sl, 1600, -640))
    # the sliders drive the state
    wl._window.value = 400.0
    wl._level.value = 40.0
    assert (v.window, v.level) == (400.0, 40.0)
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sl, 400, 40))
    # the dropdown too
    wl._preset.value = "bone"
    assert (v.window, v.level) == (1800.0, 400.0)
    wl.set_window(350, 50)
    assert wl._preset.value == "custom"
    with pytest.raises(ValueError, match="window"):
        wl.set_window(-1, 50)
    with pytest.raises(ValueError, match="By 'lungs', did you mean 'lung'"):
        wl.set_preset("lungs")
    # a drag never makes the window non-positive
    wl.drag(-10_000, 0)
    assert wl.window == wl._window.min > 0


def test_window_level_auto_preset_and_viewer_kwargs(ct):
    wl = WindowLevel(ct, preset="auto", axis="sagittal", index=3)
    assert (wl.window, wl.level) == pytest.approx(medlab.enhance.resolve_window(ct, preset="auto"))
    assert wl.viewer.axis == "sagittal" and wl.viewer.index == 3
    with pytest.raises(TypeError, match="only apply when an image is given"):
        WindowLevel(wl.viewer, axis="coronal")


# --------------------------------------------------------------------------- ThresholdSlider
def test_threshold_slider_mask_volume_and_overlay(ct, phantom):
    th = ThresholdSlider(ct, lower=-50, upper=300, window=400, level=40)
    mask = sitk.GetArrayFromImage(medlab.segmentation.threshold(ct, lower=-50, upper=300))
    np.testing.assert_array_equal(th.mask, mask)
    voxel_ml = np.prod(ct.GetSpacing()) / 1000.0
    assert th.statistics["voxels"] == int(mask.sum())
    assert th.statistics["volume_ml"] == pytest.approx(mask.sum() * voxel_ml)
    assert f"{th.statistics['volume_ml']:.2f} mL" in th._info.value
    v = th.viewer
    sl = sitk.GetArrayViewFromImage(ct)[12]
    expected = medlab.display.render(sl, 400, 40, overlay=mask[12], overlay_colors={1: (255, 64, 64)})
    np.testing.assert_array_equal(v.pixels, expected)
    # the slider drives the state and the picture follows
    top = th._slider.max
    assert top >= v.intensity_range[1]
    th._slider.value = (500.0, top)
    assert th.range == (500.0, top)
    bone = sitk.GetArrayFromImage(medlab.segmentation.threshold(ct, lower=500, upper=top))
    np.testing.assert_array_equal(th.mask, bone)
    assert th.statistics["voxels"] == int(bone.sum()) < int(mask.sum())
    with pytest.raises(ValueError, match=r"`lower` \(5.0\) must be <= `upper` \(1.0\)"):
        th.set_range(5, 1)


def test_threshold_slider_otsu_and_multi_otsu(ct):
    th = ThresholdSlider(ct)
    t = th.apply_otsu()
    assert t == medlab.segmentation.auto_threshold(ct, "otsu")
    assert th.range == (t, th.viewer.intensity_range[1])
    thresholds = th.apply_multi_otsu(classes=3)
    _, expected = medlab.segmentation.multi_otsu(ct, 3, return_thresholds=True)
    assert thresholds == expected and th.range == (expected[1], th.viewer.intensity_range[1])
    th.apply_multi_otsu(classes=3, otsu_class=2)
    assert th.range == tuple(expected)
    with pytest.raises(ValueError, match="otsu_class"):
        th.apply_multi_otsu(classes=3, otsu_class=4)


def test_threshold_slider_2d_reports_area():
    us = medlab.datasets.us_phantom(shape=(64, 80), seed=1)
    th = ThresholdSlider(us.image, lower=0.0, upper=0.2)
    mask = sitk.GetArrayFromImage(medlab.segmentation.threshold(us.image, lower=0.0, upper=0.2))
    assert th.statistics["area_mm2"] == pytest.approx(mask.sum() * np.prod(us.image.GetSpacing()))
    assert "mm²" in th._info.value


# --------------------------------------------------------------------------- SeedPicker
def test_seed_picker_setter_grows_the_medlab_region(ct, phantom):
    lesion, seed = _nodule(phantom)
    sp = SeedPicker(ct, lower=0, upper=200, seeds_index=[seed])
    region = sitk.GetArrayFromImage(
        medlab.segmentation.connected_threshold(ct, seeds_index=[seed], lower=0, upper=200))
    np.testing.assert_array_equal(sp.region, region)
    stats = medlab.segmentation.label_statistics(region, ct).iloc[0]
    for key in ("voxels", "volume_ml", "mean", "std", "min", "max"):
        assert sp.statistics[key] == pytest.approx(stats[key]), key
    # the nodule (60 HU in lung) is what grows: its exact voxel count, up to boundary noise
    assert abs(sp.statistics["voxels"] - lesion["n_voxels"]) <= 0.2 * lesion["n_voxels"]
    assert sp.seeds_mm == [pytest.approx(ct.TransformIndexToPhysicalPoint(seed[::-1]))]
    assert "1 seed(s)" in sp._info.value and "mL" in sp._info.value


def test_seed_picker_clicks_add_and_remove(ct, phantom):
    _, seed = _nodule(phantom)
    v = SliceViewer(ct, window=1500, level=-600, index=seed[0])
    sp = SeedPicker(v, lower=0, upper=200)
    assert sp.children[0] is not v and sp.region.sum() == 0 and sp.statistics == {}
    v.click_index(seed)
    assert sp.seeds_index == [seed] and sp.statistics["voxels"] > 0
    assert v.pixels.ndim == 3 and tuple(v.pixels[seed[1], seed[2]]) == (255, 220, 0)  # the marker
    region_px = (sp.region[seed[0]] > 0) & ~np.isin(np.arange(v.pixels.shape[1]), [seed[2]])[None, :]
    assert np.any(v.pixels[region_px][:, 2] > v.pixels[region_px][:, 0])  # blue-ish fill drawn
    # a second seed elsewhere (in the body, outside the range: grows nothing more)
    other = (seed[0], 2, 2)
    v.click_index(other)
    assert sp.seeds_index == [seed, other]
    # a click within pick_radius of a seed removes it
    v.click_index((seed[0], seed[1] + 2, seed[2] - 1))
    assert sp.seeds_index == [other]
    assert sp.statistics["voxels"] == 0
    sp.clear_seeds()
    assert sp.seeds_index == [] and sp.region.sum() == 0 and "region" not in v.layers


def test_seed_picker_setters_check_bounds(ct):
    sp = SeedPicker(ct, lower=-100, upper=100)
    with pytest.raises(ValueError, match=r"`seeds_index\[1\]` \(0, 0, 64\) is outside the image"):
        sp.set_seeds_index([(0, 0, 0), (0, 0, 64)])
    with pytest.raises(ValueError, match=r"`seeds_index\[0\]` must be 3 ints"):
        sp.set_seeds_index([(1, 2)])
    with pytest.raises(ValueError, match="outside the image"):
        sp.set_seeds_mm([(1e4, 0, 0)])
    with pytest.raises(ValueError, match="no seed at"):
        sp.remove_seed_index((1, 1, 1))
    with pytest.raises(ValueError, match="not both"):
        SeedPicker(ct, seeds_index=[(0, 0, 0)], seeds_mm=[(0, 0, 0)])
    p = sp.viewer.point_mm((3, 4, 5))
    sp.set_seeds_mm([p])
    assert sp.seeds_index == [(3, 4, 5)]
    sp.set_range(-1000, 1000)
    assert sp._range.value == (-1000.0, 1000.0) and sp.statistics["voxels"] > 0


def test_components_compose_on_one_viewer(ct, phantom):
    _, seed = _nodule(phantom)
    v = SliceViewer(ct, index=seed[0], overlay=phantom.labels, overlay_mode="contour")
    wl = WindowLevel(v, preset="lung", modality="CT")
    th = ThresholdSlider(v, lower=300, upper=3000)
    sp = SeedPicker(v, lower=0, upper=200, seeds_index=[seed])
    panel = Panel(v, wl, th, sp)
    assert panel.children == (v, wl, th, sp)
    assert set(v.layers) >= {"overlay", "threshold", "region", "region-seeds"}
    before = v.pixels.copy()
    wl.drag(40, 0)
    assert v.window == 1500 + 40 * wl.sensitivity
    assert np.any(v.pixels != before)
    # every layer is still drawn after the window change: the seed marker, the region fill
    assert tuple(v.pixels[seed[1], seed[2]]) == (255, 220, 0)
    assert sp.statistics["voxels"] > 0 and th.statistics["voxels"] > 0
    # a click goes to the seed picker, a drag to the window/level: one canvas, both handlers
    v.click_index((seed[0], 1, 1))
    assert len(sp.seeds_index) == 2
    assert v.canvas.drag_mode == "events"


def test_view3d_is_optional_and_says_what_to_install(ct):
    pytest.importorskip("pytest")
    try:
        import itkwidgets  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install 'medlab\[itk\]'"):
            view3d(ct)
    else:  # pragma: no cover - itkwidgets is kept out of the test environment
        pytest.skip("itkwidgets is installed; view3d needs a browser online")


def test_medlab_never_imports_the_widgets():
    import subprocess
    import sys

    code = ("import sys, medlab, medlab.display, medlab.enhance, medlab.segmentation;"
            "print([m for m in ('medlab.widgets', 'ipywidgets', 'anywidget') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- flow control
def _ack(canvas, frame=None):
    canvas._on_frontend_msg(canvas, {"event": "ack", "frame": canvas.frame if frame is None else frame}, [])


def test_canvas_sends_the_next_frame_only_after_the_ack_and_always_the_newest(ct):
    v = SliceViewer(ct, window=400, level=40, rendering="kernel")
    c = v.canvas
    composed = []
    real = v.compose
    v.compose = lambda: composed.append((v.window, v.level)) or real()
    _ack(c)  # a page has drawn the first frame: from now on frames wait for acks
    sent = c.frames_sent
    for w in (500.0, 600.0, 700.0):  # a drag: three states while the page draws frame 2
        v.set_window_level(w, 40)
    assert c.frames_sent == sent + 1 and c.busy  # one frame out, the newest state held
    assert composed == [(500.0, 40.0)]  # states superseded while waiting are never composed
    _ack(c, frame=c.frame - 1)  # a stale ack (another view) releases nothing
    assert c.frames_sent == sent + 1
    _ack(c)
    assert c.frames_sent == sent + 2 and not c.busy
    assert composed == [(500.0, 40.0), (700.0, 40.0)]
    np.testing.assert_array_equal(_decode(c.png), medlab.display.render(sitk.GetArrayFromImage(ct)[12], 700, 40))
    _ack(c)
    v.set_window_level(800, 40)  # the page is idle: the frame goes out at once
    assert c.frames_sent == sent + 3 and c.frame == c.frames_sent
    np.testing.assert_array_equal(v.pixels, medlab.display.render(sitk.GetArrayFromImage(ct)[12], 800, 40))


def test_canvas_does_not_wait_for_a_page_that_went_away(ct, monkeypatch):
    import medlab.widgets._canvas as canvas_module

    v = SliceViewer(ct, window=400, level=40, rendering="kernel")
    _ack(v.canvas)
    v.set_window_level(500, 40)
    v.set_window_level(600, 40)
    assert v.canvas.busy
    monkeypatch.setattr(canvas_module, "ACK_TIMEOUT_S", 0.0)  # the ack is overdue
    v.set_window_level(700, 40)
    assert not v.canvas.busy
    np.testing.assert_array_equal(_decode(v.canvas.png), v.pixels)


# --------------------------------------------------------------------------- live sliders, layout, wording
def test_presets_follow_the_modality(ct):
    ct_presets = [n for n, p in medlab.enhance.presets().items() if p.modality == "CT"]
    assert WindowLevel(ct, unit="HU").preset_names == tuple(ct_presets) + ("auto",)
    pet = WindowLevel(sitk.Cast(ct, sitk.sitkFloat32) / 100.0, unit="SUV", colormap="hot")
    assert pet.preset_names == ("auto",)
    assert pet._preset.options == ("custom", "auto")
    with pytest.raises(ValueError, match="preset 'lung' is for CT"):
        pet.set_preset("lung")
    us = WindowLevel(np.arange(400, dtype=np.uint8).reshape(20, 20))
    assert us.preset_names == ("auto",)
    assert WindowLevel(ct, modality="CT").preset_names[0] == "lung"  # a CT without a unit


def test_live_sliders_apply_moves_and_ignore_their_snapped_echo(ct):
    v = SliceViewer(ct, unit="HU", window=400, level=40)
    wl = WindowLevel(v)
    th = ThresholdSlider(v, lower=300, upper=1000)
    sp = SeedPicker(v, lower=-100, upper=200)
    for slider in (wl._window, wl._level, th._slider, sp._range):
        assert slider.continuous_update is True
    # a value off the step grid (an Otsu threshold, an 'auto' window) stays exact when the browser
    # writes the snapped value back
    th.set_range(300.4, 1000)
    th._slider.value = (300.0, 1000.0)
    assert th.range == (300.4, 1000.0)
    v.set_window_level(400.3, 40)
    wl._window.value = 400.0
    assert (v.window, v.level) == (400.3, 40.0)
    # a real move of one handle changes that end only
    th._slider.value = (300.0, 800.0)
    assert th.range == (300.4, 800.0)
    wl._level.value = 60.0
    assert (v.window, v.level) == (400.3, 60.0)
    sp._range.value = (-100.0, 150.0)
    assert sp.range == (-100.0, 150.0)
    # the two range sliders have different names; the window slider spans the image's range
    assert (th._slider.description, sp._range.description) == ("threshold", "region")
    lo, hi = v.intensity_range
    assert wl._window.max - wl._window.min <= hi - lo + 2 * wl._window.step
    width = int(wl._window.layout.width.removesuffix("px"))
    assert (wl._window.max - wl._window.min) / width <= (hi - lo) / 400  # ~ intensity span / 420 px


def test_throttle_coalesces_in_an_event_loop():
    import asyncio

    from medlab.widgets._live import Throttle

    seen = []
    thr = Throttle(seen.append, min_interval_s=0.05)

    async def drive():
        for k in range(20):  # 20 values within about 20 ms
            thr(k)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)

    asyncio.run(drive())
    assert seen[0] == 0 and seen[-1] == 19  # the first at once, the newest last
    assert len(seen) <= 3
    thr(42)  # no running loop: at once
    assert seen[-1] == 42


def test_slice_status_counts_like_the_slider(ct):
    v = SliceViewer(ct, index=7)
    assert v._slider.value == 7 and "slice 7 of 0..23" in v._status.value
    assert "(7," in str(v.index_of_pixel(0, 0))


def test_seed_colours_stand_out_on_a_colour_map(ct):
    import matplotlib

    pet = sitk.Cast(ct, sitk.sitkFloat32)
    hot = (matplotlib.colormaps["hot"](np.linspace(0, 1, 256))[:, :3] * 255).round()
    for colormap, expect_mode in (("hot", "contour"), (None, "fill")):
        v = SliceViewer(pet, colormap=colormap)
        sp = SeedPicker(v, lower=-100, upper=200, seeds_index=[(12, 24, 32)])
        assert v._layers["region"].mode == expect_mode
        if colormap == "hot":
            for colour in (sp.seed_color, sp.color):  # far from every colour of the map
                assert np.min(np.linalg.norm(hot - np.array(colour), axis=1)) > 100


def test_region_size_is_in_pixels_and_mm2_on_2d():
    arr = np.zeros((40, 40), np.int16)
    arr[10:20, 10:20] = 100
    sp = SeedPicker(arr, spacing=(0.5, 0.5), lower=50, upper=150, seeds_index=[(15, 15)])
    assert sp.statistics["voxels"] == 100 and sp.statistics["area_mm2"] == pytest.approx(25.0)
    assert "100 pixels" in sp._info.value and "25.0 mm²" in sp._info.value and "voxels" not in sp._info.value
    th = ThresholdSlider(arr, spacing=(0.5, 0.5), lower=50, upper=150)
    assert "100 pixels" in th._info.value
    # the read-out is not on the slider's row (it overlapped the button there)
    assert sp.children[-2] is sp._range and sp._clear in sp.children[-1].children


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [SliceViewer, WindowLevel, ThresholdSlider, SeedPicker])
def test_bad_images_give_a_clear_message(cls):
    with pytest.raises(ValueError, match=r"`image` must be a 2D or 3D array; got shape \(2, 3, 4, 5\)"):
        cls(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="`image` values span .* float64 cannot hold"):
        cls(np.array([[-1e308, 1e308], [0, 1]]))
    nan = cls(np.full((4, 8, 8), np.nan, np.float32)).viewer
    assert "no finite values" in nan._notice.value and nan.pixels.max() == 0  # black, not an error
    const = cls(np.full((4, 8, 8), 5.0, np.float32)).viewer
    assert (const.window, const.level) == (1.0, 5.0) and "constant" in const._notice.value
    one = cls(np.zeros((1, 1, 1), np.float32)).viewer
    assert one.n_slices == 1 and one.pixels.shape[:2] == (1, 1)
    huge = cls(np.array([[-3e38, 3e38], [0, 1]], np.float32)).viewer
    assert np.isfinite(huge.window) and huge.pixels.shape[:2] == (2, 2)


def test_rgb_arrays_are_detected_and_can_be_overridden():
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[..., 0] = 200  # red
    v = SliceViewer(rgb)
    assert v.ndim == 2 and v.array.shape == (40, 50)
    assert v.array[0, 0] == pytest.approx(0.299 * 200, abs=1e-3) and "luminance" in v._notice.value
    vol = SliceViewer(rgb, rgb=False)  # an (M, N, 3) volume after all
    assert vol.ndim == 3 and vol.array.shape == (40, 50, 3) and not vol.notice
    img = sitk.GetImageFromArray(rgb, isVector=True)
    assert SliceViewer(img).array.shape == (40, 50)
    with pytest.raises(ValueError, match=r"`rgb=True` needs an \(M, N, 3\)"):
        SliceViewer(np.zeros((4, 5, 6)), rgb=True)
    with pytest.raises(TypeError, match="`rgb` must be None"):
        SliceViewer(rgb, rgb="yes")


def test_setters_reject_bad_values_naming_the_argument(ct):
    v = SliceViewer(ct, unit="HU")
    wl, th = WindowLevel(v), ThresholdSlider(v)
    sp = SeedPicker(v, lower=0, upper=100)
    bad = [
        (lambda: v.set_window_level(float("nan"), 0), ValueError, "window"),
        (lambda: v.set_window_level(100, float("inf")), ValueError, "level"),
        (lambda: wl.set_window("wide", 0), TypeError, "`window` must be a number"),
        (lambda: wl.set_preset(3), TypeError, "`preset`"),
        (lambda: th.set_range(float("nan"), 1), ValueError, "`lower` must be finite"),
        (lambda: th.set_range(5, 1), ValueError, "`lower`"),
        (lambda: th.apply_multi_otsu(classes=10), ValueError, r"`classes` must be in \[2, 5\]"),
        (lambda: th.apply_multi_otsu(classes=2.5), TypeError, "`classes` must be an int"),
        (lambda: th.apply_multi_otsu(classes=3, otsu_class=4), ValueError, "`otsu_class`"),
        (lambda: setattr(sp, "pick_radius", -1), ValueError, "`pick_radius` must be >= 0"),
        (lambda: setattr(sp, "pick_radius", 1.5), TypeError, "`pick_radius` must be an int"),
        (lambda: setattr(sp, "connectivity", "foo"), ValueError, "connectivity"),
        (lambda: SeedPicker(v, pick_radius=-1), ValueError, "`pick_radius`"),
        (lambda: SeedPicker(v, connectivity="foo"), ValueError, "connectivity"),
        (lambda: sp.set_seeds_index([(99, 0, 0)]), ValueError, r"seeds_index\[0\]"),
        (lambda: v.set_slice(-1), ValueError, "`index`"),
        (lambda: v.set_view(zoom=100), ValueError, "zoom"),
    ]
    for call, exc, message in bad:
        with pytest.raises(exc, match=message):
            call()
    sp.connectivity = "full"  # a good value applies
    assert sp.connectivity == "full"


def test_multi_otsu_with_the_most_classes_is_quick(ct):
    import time

    th = ThresholdSlider(sitk.Cast(ct, sitk.sitkFloat32))
    t0 = time.perf_counter()
    thresholds = th.apply_multi_otsu(classes=5)
    assert len(thresholds) == 4 and thresholds == sorted(thresholds)
    assert time.perf_counter() - t0 < 10  # 64 bins: well under a second (256 bins took minutes)


# --------------------------------------------------------------------------- region statistics
def test_region_stats_follow_the_threshold_with_values_in_the_image_unit(ct):
    from medlab.widgets import RegionStats

    v = SliceViewer(ct, unit="HU")
    th = ThresholdSlider(v, lower=0, upper=200)
    rs = RegionStats(th, bins=64)
    arr = sitk.GetArrayFromImage(ct)
    spacing_ml = np.prod(ct.GetSpacing()) / 1000.0
    for lower, upper in ((0, 200), (-1100, -900)):
        th.set_range(lower, upper)
        inside = arr[(arr >= lower) & (arr <= upper)]
        s = rs.statistics
        assert s["voxels"] == inside.size == th.statistics["voxels"] == rs.region_counts.sum()
        assert s["volume_ml"] == pytest.approx(inside.size * spacing_ml)
        assert (s["mean"], s["min"], s["max"]) == pytest.approx((inside.mean(), inside.min(), inside.max()))
        assert f"min {inside.min():.4g}" in rs._text.value and "HU" in rs._text.value
    assert rs.counts.sum() == arr.size and rs.edges[0] == arr.min() and rs.edges[-1] == arr.max()
    assert rs.draws == 2 and rs._plot.value[:4] == b"\x89PNG"  # at start and on the one real change
    th.set_range(5000, 6000)  # nothing in range
    assert rs.statistics == {"voxels": 0, "volume_ml": 0.0} and "empty region" in rs._text.value


def test_region_stats_follow_the_seeds_in_2d_in_mm2():
    from medlab.widgets import RegionStats

    arr = np.zeros((40, 40), np.int16)
    arr[10:20, 10:20] = 100
    arr[10, 10] = 140
    sp = SeedPicker(arr, spacing=(0.5, 0.5), lower=50, upper=150)
    rs = RegionStats(sp)
    assert rs.statistics == {"voxels": 0, "area_mm2": 0.0}
    sp.add_seed_index((15, 15))
    s = rs.statistics
    assert s["area_mm2"] == pytest.approx(25.0) and (s["min"], s["max"]) == (100.0, 140.0)
    assert "25.0 mm²" in rs._text.value and "100 pixels" in rs._text.value
    with pytest.raises(TypeError, match="`component` must be a ThresholdSlider or a SeedPicker"):
        RegionStats(sp.viewer)
    with pytest.raises(ValueError, match="`bins`"):
        RegionStats(sp, bins=1)


def test_a_jpeg_stream_ends_on_the_lossless_picture(ct, monkeypatch):
    import medlab.widgets._canvas as canvas_module
    import medlab.widgets._viewer as viewer_module

    monkeypatch.setattr(viewer_module, "STREAM_JPEG_MIN_PIXELS", 1)  # the test slice is small
    monkeypatch.setattr(canvas_module, "STREAM_S", 60.0)  # every frame is part of the stream
    v = SliceViewer(ct, window=400, level=40, rendering="kernel")
    th = ThresholdSlider(v, lower=0, upper=200)  # a colour picture (filled overlay)
    c = v.canvas
    c.stream_format = "jpeg"
    _ack(c)
    th.set_range(10, 200)
    assert c.mime == "image/jpeg" and c.png[:3] == b"\xff\xd8\xff"
    jpeg = _decode(c.png)
    assert jpeg.shape == v.pixels.shape and np.abs(jpeg.astype(int) - v.pixels).mean() < 12
    sent = c.frames_sent
    _ack(c)  # the page drew the last frame of the stream: the same state again, lossless
    assert c.frames_sent == sent + 1 and c.mime == "image/png"
    np.testing.assert_array_equal(_decode(c.png), v.pixels)
    _ack(c)
    assert c.frames_sent == sent + 1  # nothing more to send


def test_seed_picker_on_pet_shows_the_plausibility_verdict():
    # synthetic PET in SUV: background 1.0, a 20 mm sphere of SUV 8 (plausible lesion); a seed
    # in the background grows a handful of low-uptake voxels (implausible, with the reasons)
    zz, yy, xx = np.mgrid[:24, :40, :40]
    suv = np.where((zz - 12) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 5 ** 2, 8.0, 1.0).astype(np.float32)
    suv[3, 3, 3:5] = 1.5  # two voxels of slightly raised uptake in the background
    pet = sitk.GetImageFromArray(suv)
    pet.SetSpacing((2.0, 2.0, 2.0))
    sp = SeedPicker(pet, unit="SUV", lower=4.0, upper=100.0, seeds_index=[(12, 20, 20)])
    assert sp.verdict is not None and sp.verdict.plausible, sp.verdict.reasons
    assert sp.verdict == medlab.segmentation.pet_plausibility(pet, sp.region)
    assert "implausible" not in sp._info.value
    sp.range = (1.4, 1.6)
    sp.seeds_index = [(3, 3, 3)]
    assert sp.region.sum() == 2 and not sp.verdict.plausible
    assert any("handful of voxels" in r for r in sp.verdict.reasons)
    assert "implausible PET lesion" in sp._info.value and "handful of voxels" in sp._info.value
    sp.seeds_index = []
    assert sp.verdict is None
    # not PET: no verdict
    assert SeedPicker(pet, unit="HU", lower=4.0, upper=100.0, seeds_index=[(12, 20, 20)]).verdict is None
