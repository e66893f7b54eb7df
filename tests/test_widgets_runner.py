"""ModelRunner without a browser: the device line (CPU here; a mocked GPU report for the GPU
wording), inference = the medlab.models result drawn on the viewer, Grad-CAM through
medlab.fusion, training on a background thread with a live loss curve, and the Stop button."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from medlab.widgets import ModelRunner, SliceViewer, device_text

import medlab.datasets
import medlab.fusion
import medlab.metrics
import medlab.models

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


@pytest.fixture(scope="module")
def us():
    return medlab.datasets.load("hc18", case="000_HC", progress=False)


@pytest.fixture(scope="module")
def disks():
    """Bright disks in noise (32x32) and their masks: a segmentation task a tiny U-Net learns."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    images, masks = [], []
    for _ in range(24):
        cy, cx, r = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(4, 8)
        m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
        images.append((m * 2.0 + rng.normal(0, 0.5, m.shape)).astype(np.float32))
        masks.append(m)
    return np.stack(images)[..., None], np.stack(masks)


def _tiny_unet():
    return medlab.models.unet(depth=2, base_filters=4, input_size=(32, 32), name="tiny_unet")


def test_device_line_says_cpu_here_and_gpu_when_the_kernel_has_one(us, monkeypatch):
    r = ModelRunner(us.image)
    report = medlab.models.device_report()
    assert r.device == report and report["device"] == "CPU"  # no GPU on the test machine
    assert r.device_text.startswith("runs on CPU: ") and "backend tensorflow" in r.device_text
    assert r.device_text in r._device.value
    gpu = {**report, "device": "GPU", "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85e9,
                                                "memory_in_use_bytes": 0}]}
    monkeypatch.setattr(medlab.models, "device_report", lambda: gpu)
    r2 = ModelRunner(us.image)
    assert r2.device_text.startswith("runs on GPU: NVIDIA H100 80GB HBM3 · backend tensorflow")
    assert device_text({**gpu, "gpus": []}).startswith("runs on CPU")  # no GPU listed: not claimed


def test_pretrained_unet_inference_and_grad_cam_on_hc18(us):
    r = ModelRunner(us.image, model="hc18_unet", overlay_mode="fill")
    assert r.model_names[:3] == ["busi_effnet", "busi_resnet", "hc18_unet"] and r.model_name == "hc18_unet"
    r._infer.click()  # the button
    want = sitk.GetArrayFromImage(medlab.models.segment(r.model, us.image))
    np.testing.assert_array_equal(r.prediction, want)  # exactly the medlab result
    # 000_HC is HC18's smallest head (44 mm): 0.947 with the EfficientNet-encoder first pass (0.824 with the U-Net)
    assert medlab.metrics.dice(r.prediction, sitk.GetArrayFromImage(us.label)) >= 0.92
    assert "model" in r.viewer.layers
    drawn = np.any(r.viewer.pixels != medlab.display.render(r.viewer.current_slice(), r.viewer.window,
                                                            r.viewer.level)[..., None], axis=-1)
    assert np.array_equal(drawn, r.prediction > 0)  # the fill covers exactly the predicted head
    cam = sitk.GetArrayFromImage(medlab.models.grad_cam(r.model, us.image))
    np.testing.assert_allclose(r.cam, cam, atol=1e-5)
    assert r.cam.shape == r.prediction.shape and r.cam.max() == pytest.approx(1.0)
    v = r.viewer
    np.testing.assert_array_equal(r.cam_pixels, medlab.fusion.color_overlay(
        v.current_slice(), r.cam, window=v.window, level=v.level, colormap="jet", overlay_range=(0, 1), alpha=0.5))
    png = cv2.imdecode(np.frombuffer(r._cam_view.value, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), r.cam_pixels)
    v.set_window_level(100, 50)  # the Grad-CAM picture follows the viewer's window
    np.testing.assert_array_equal(r.cam_pixels, medlab.fusion.color_overlay(
        v.current_slice(), r.cam, window=100, level=50, colormap="jet", overlay_range=(0, 1), alpha=0.5))
    assert "mm²" in r._result.value
    assert r.model_names == ["busi_effnet", "busi_resnet", "hc18_unet"]  # a loaded pretrained model is listed once
    bundle, meta = r._repr_mimebundle_()  # static PNG fallback: the viewer's picture
    png = cv2.imdecode(np.frombuffer(base64.b64decode(bundle["image/png"]), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), v.pixels)
    assert meta["image/png"]["width"] == 512


def test_classifier_gives_probabilities(us):
    v = SliceViewer(us.image)
    r = ModelRunner(v, model="busi_resnet")
    # a breast-ultrasound classifier on a fetal head: it runs, with a warning that says so
    with pytest.warns(medlab.models.ModelInputWarning, match="busi_resnet was trained on"):
        r.infer()
    with pytest.warns(medlab.models.ModelInputWarning):
        want = medlab.models.classify(r.model, us.image)[0]
    assert list(r.probabilities) == ["benign", "malignant", "normal"]
    np.testing.assert_allclose(list(r.probabilities.values()), want, rtol=1e-5)
    assert r.prediction is None and "model" not in v.layers and r.cam.shape == v.array.shape
    assert r.children[0] is r._device  # attached to a viewer: only its controls
    # a blank frame: no class is named and no Grad-CAM drawn (classify gives a NaN row)
    blank = sitk.Image(us.image.GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(us.image)
    r2 = ModelRunner(SliceViewer(blank), model="busi_resnet")
    with pytest.warns(medlab.models.ModelInputWarning, match="constant image"):
        out = r2.infer()
    assert "no prediction (a blank frame or NaN pixels" in r2._result.value and "benign" not in r2._result.value
    assert r2.cam is None and np.isnan(list(out["probabilities"].values())).all()


def test_training_in_the_background_with_a_live_loss_curve(disks):
    x, y = disks
    r = ModelRunner(x[0, ..., 0], model="hc18_unet")
    job = r.train(x[:16], y[:16], model=_tiny_unet(), name="disks", epochs=3, batch_size=8,
                  validation=(x[16:], y[16:]), learning_rate=3e-3)
    assert job.running or job.status == "done"  # train() returned without waiting
    res = r.wait(timeout=300)
    assert job.status == "done" and res is r.training and res.stop_reason == "completed" and res.epochs == 3
    # the live curve: one point per batch; each epoch's last point is medlab's epoch loss
    assert len(r.losses) == 3 * 2 and r.losses[-1]["epoch"] == 3.0
    np.testing.assert_allclose([p["loss"] for p in r.losses[1::2]], res.history["loss"], atol=6e-5)
    assert set(r.plot.series) == {"loss (batch)", "loss (epoch)", "val_loss (epoch)"}
    assert r._progress.value == 1.0 and "completed" in r._status.value
    # the trained model is offered and selected; inference runs it
    assert r.model_names[-1] == "disks" and r.model_name == "disks" and r._pick.value == "disks"
    out = r.infer()
    want = sitk.GetArrayFromImage(medlab.models.segment(r.model, r.viewer.image))
    np.testing.assert_array_equal(out["labels"], want)
    assert r.model.info["trained_in_session"] == {"epochs": 3, "stop_reason": "completed"}


def test_stop_button_ends_training_early(disks):
    x, y = disks
    r = ModelRunner(x[0, ..., 0], model="hc18_unet")

    def press_stop_at_second_batch(_change):
        if len(r.losses) == 2:
            r._stop.click()

    r._progress.observe(press_stop_at_second_batch, names="value")
    job = r.train(x, y, model=_tiny_unet(), epochs=200, batch_size=4)
    res = r.wait(timeout=300)
    assert job.status == "stopped" and res.stop_reason == "stopped" and job.stop_reason == "stopped"
    assert res.epochs == 1 and len(r.losses) == 2  # stopped after the batch it was asked at
    assert r.model_name == "tiny_unet (session)"  # kept with the weights it reached
    assert "stopped" in r._status.value and r._stop.disabled


def test_runner_checks_its_arguments(us, disks):
    r = ModelRunner(us.image, model="busi_resnet")
    with pytest.raises(ValueError, match="`model` must be one of"):
        r.select("nope")
    with pytest.raises(ValueError, match="pretrained model's name"):
        r.add_model("hc18_unet", _tiny_unet())
    with pytest.raises(TypeError, match="`stop` is the widget's own"):
        r.train(*disks, stop=None)
    with pytest.raises(ValueError, match="`cam_alpha` must be in"):
        ModelRunner(us.image, cam_alpha=2)
    r.add_model("mine", _tiny_unet())
    assert r.model_name == "mine"
    with pytest.raises(ValueError, match="give `model`"):
        r.train(*disks)


def test_title_names_the_selected_model_and_native_logs_are_captured(us, disks):
    r = ModelRunner(us.image, model="hc18_unet", title="HC18 000_HC")
    assert r.viewer.title == "HC18 000_HC · model: hc18_unet"
    r.add_model("tiny", _tiny_unet(), select=True)
    assert r.viewer.title == "HC18 000_HC · model: tiny"  # not the first model's title
    assert isinstance(r.native_log, str)


def test_model_card_follows_the_selected_model(us):
    r = ModelRunner(us.image, model="hc18_unet")
    assert "shown once the model is loaded" in r._card.value
    r.infer()
    assert r._card.value == medlab.models.card(r.model, format="html")
    assert "hc18" in r._card.value.lower() and "<h3>" in r._card.value
    r.select("busi_resnet")  # not loaded yet: no stale card of the other model
    assert "busi_resnet" in r._card.value and "shown once the model is loaded" in r._card.value


def test_native_stderr_is_captured_not_shown(capfd):
    import os

    from medlab.widgets._runner import _native_stderr

    with _native_stderr() as native:
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\n")  # as TensorFlow's C++ does
    assert "oneDNN" in native.text
    assert "oneDNN" not in capfd.readouterr().err  # nothing reached the cell's stderr
