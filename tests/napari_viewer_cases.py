"""napari viewer cases of medlab's plugin, run by tests/test_napari_plugin.py in a fresh pytest process
(a Qt window with OpenGL under Xvfb; no TensorFlow in this process: see
widgets/napari/_model_process.py). Not collected by the suite itself (the name has no ``test_``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.datasets
import medlab.fusion
import medlab.io
import medlab.registration
import medlab.segmentation
from medlab.widgets.napari import _layers, _model_process

assert "tensorflow" not in __import__("sys").modules


@pytest.fixture(scope="module")
def phantom():
    ph = medlab.datasets.ct_phantom(shape=(24, 48, 64), seed=3)
    img = sitk.Cast(sitk.Round(ph.image), sitk.sitkInt16)
    img.SetOrigin((-40.0, 12.5, 100.0))
    return img, ph


@pytest.fixture(scope="module", autouse=True)
def model_process():
    yield
    _model_process.shutdown()


def _add(viewer, layer_tuple):
    data, kwargs, kind = layer_tuple
    return getattr(viewer, f"add_{kind}")(data, **kwargs)


def test_open_sample_and_screenshot(make_napari_viewer, phantom, tmp_path):
    viewer = make_napari_viewer(show=True)
    path = medlab.io.write(phantom[0], tmp_path / "ct.nrrd")
    [layer] = viewer.open(str(path), plugin="medlab")
    assert layer.scale == pytest.approx((2.5, 2.0, 2.0)) and layer.translate == pytest.approx((100.0, 12.5, -40.0))
    layers = viewer.open_sample("medlab", "ct_phantom")
    assert [lay.name for lay in layers] == ["CT phantom (HU)", "phantom labels"]
    assert viewer.layers["phantom labels"].data.max() >= 1
    viewer.layers.remove("ct")
    viewer.dims.ndisplay = 2
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # a picture, not a black window


def test_threshold_and_region_growing_dock_widgets(make_napari_viewer, phantom):
    img, ph = phantom
    viewer = make_napari_viewer()
    ct = _add(viewer, _layers.image_to_layer(img, "ct"))
    _, th = viewer.window.add_plugin_dock_widget("medlab", "Threshold")
    th.image.value = ct
    th.lower.value, th.upper.value = 100.0, 3000.0
    th()  # the call button; napari adds the returned labels layer
    np.testing.assert_array_equal(viewer.layers["ct threshold"].data,
                                  sitk.GetArrayFromImage(medlab.segmentation.threshold(img, lower=100, upper=3000)))
    assert viewer.layers["ct threshold"].scale == pytest.approx(ct.scale)

    lesion = max(ph.truth["lesions"], key=lambda le: le["n_voxels"])
    seed = np.asarray(lesion["centre_index"], float)
    points = viewer.add_points([seed * ct.scale + ct.translate], name="seeds")  # world coordinates (mm)
    _, rg = viewer.window.add_plugin_dock_widget("medlab", "Region growing")
    rg.image.value, rg.seeds.value = ct, points
    rg.lower.value, rg.upper.value = lesion["hu"] - 100, lesion["hu"] + 100
    rg()
    want = medlab.segmentation.connected_threshold(img, seeds_index=[tuple(int(i) for i in seed)],
                                                    lower=lesion["hu"] - 100, upper=lesion["hu"] + 100)
    np.testing.assert_array_equal(viewer.layers["ct region"].data, sitk.GetArrayFromImage(want))
    assert viewer.layers["ct region"].data.sum() > 10


def test_registration_blend_dock_widget_registers_and_blends(make_napari_viewer, phantom, qtbot):
    img = phantom[0]
    shift = (4.0, -2.0, 0.0)
    moved = medlab.registration.move_image(img, sitk.TranslationTransform(3, shift))
    viewer = make_napari_viewer()
    fixed_layer = _add(viewer, _layers.image_to_layer(img, "fixed"))
    moving_layer = _add(viewer, _layers.image_to_layer(moved, "moving"))
    assert moving_layer.translate[2] != fixed_layer.translate[2]  # another grid: resampled by the widget
    _, w = viewer.window.add_plugin_dock_widget("medlab", "Registration blend")
    w.fixed.value, w.moving.value = fixed_layer, moving_layer
    w.mode.value, w.register.value, w.metric.value, w.iterations.value = "difference", True, "mean_squares", 60
    worker = w()  # registers on a thread worker: the viewer stays responsive
    qtbot.waitUntil(lambda: "blend (difference)" in viewer.layers, timeout=120_000)
    assert worker.abort_requested is False
    blend = viewer.layers["blend (difference)"].data
    on_fixed = viewer.layers["moving on fixed"].data
    assert blend.shape == on_fixed.shape == fixed_layer.data.shape
    before = sitk.GetArrayFromImage(medlab.fusion.difference(img, medlab.registration.resample(moved, img),
                                                             window1="auto", window2="auto"))
    assert np.abs(blend).mean() < 0.5 * np.abs(before).mean()  # registered: the difference shrank


def test_model_runner_dock_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("medlab", "hc18")
    _, w = viewer.window.add_plugin_dock_widget("medlab", "Model runner")
    assert w._device.value.startswith("runs on ") and "backend" in w._device.value
    w._image.value = layers[0]
    w._model.value = "hc18_unet"
    w.run()
    qtbot.waitUntil(lambda: "model labels" in viewer.layers, timeout=180_000)
    want = np.load(Path(os.environ["MEDLAB_TEST_EXPECTED"]) / "hc18_unet_000_HC.npy")  # medlab.models.segment
    np.testing.assert_array_equal(viewer.layers["model labels"].data, want)
    cam = viewer.layers["Grad-CAM"]
    assert cam.data.shape == want.shape and cam.data.max() == pytest.approx(1.0)
    w._model.value = "busi_resnet"
    w.run()
    qtbot.waitUntil(lambda: "probabilities" in w.info, timeout=180_000)
    info = w.info
    assert set(info["probabilities"]) == {"benign", "malignant", "normal"} and "benign" in w._result.value
    assert "tensorflow" not in __import__("sys").modules  # it ran in the worker process
