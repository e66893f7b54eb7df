"""medlab.models on tiny models and tiny images: builders and their checks, losses against
hand-computed values, metrics against medlab.metrics, save/load, device report, lazy import.

Data pipeline, training, inference and explanations: test_models_pipeline.py; ROC and the
HC18 ellipse: test_models_measure.py; real data with the shipped weights:
test_models_pretrained.py.
"""

from __future__ import annotations

import doctest
import importlib
import math
import subprocess
import sys

import numpy as np
import pytest

from medlab import metrics
from medlab import models as mm


def _loaded_after(stmt):
    code = f"import sys; {stmt}; print(' '.join(m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_import_medlab_models_loads_no_deep_learning_stack():
    assert _loaded_after("import medlab.models") == []
    # the data, measurement and split helpers need no Keras either
    assert _loaded_after(
        "import medlab.models as m; m.Augment; m.grouped_split; m.head_circumference; m.roc_auc_ci; m.hc18_split; "
        "m.busi_split; m.TrainedModel; m.list_pretrained; import medlab.dedup"
    ) == []


# ------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("spatial_dims, size", [(2, (32, 48)), (3, (16, 16, 8))])
def test_unet_shapes(spatial_dims, size):
    model = mm.unet(spatial_dims=spatial_dims, depth=3, base_filters=4, out_channels=3, input_size=size, mixed_precision=False)
    assert model.input_shape == (None, *size, 1)
    assert model.output_shape == (None, *size, 3)
    x = np.random.default_rng(0).random((2, *size, 1)).astype("float32")
    p = np.asarray(model(x))
    assert p.shape == (2, *size, 3)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)  # softmax per pixel


def test_unet_any_size_and_options():
    model = mm.unet(depth=2, base_filters=2, normalization="instance", dropout=0.2, mixed_precision=False)
    assert model.input_shape == (None, None, None, 1)
    assert np.asarray(model(np.zeros((1, 12, 20, 1), "float32"))).shape == (1, 12, 20, 2)
    names = [layer.name for layer in model.layers]
    assert "bottleneck" in names and "logits" in names and "probabilities" in names
    assert sum(isinstance(layer, mm.MCDropout) for layer in model.layers) == 2  # bottleneck + one decoder level
    for norm in ("batch", "group", "none"):
        assert mm.unet(depth=2, base_filters=4, normalization=norm, mixed_precision=False).count_params() > 0
    # filters double per level: depth 2, base 4 -> bottleneck convolutions have 8 filters
    assert mm.unet(depth=2, base_filters=4, mixed_precision=False).get_layer("bottleneck_conv1").filters == 8


def test_unet_parameter_count_exact():
    # depth 1, no normalisation: conv(1->2) 3x3 + bias, conv(2->2) 3x3 + bias, 1x1 conv(2->2) + bias
    model = mm.unet(depth=1, base_filters=2, normalization="none", mixed_precision=False)
    assert model.count_params() == (9 * 1 * 2 + 2) + (9 * 2 * 2 + 2) + (2 * 2 + 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spatial_dims": 4}, "`spatial_dims` must be 2 or 3"),
        ({"depth": 0}, "`depth` must be an integer >= 1"),
        ({"base_filters": 2.5}, "`base_filters` must be an integer"),
        ({"normalization": "batchnorm"}, "did you mean 'batch'"),
        ({"dropout": 1.0}, r"`dropout` must be a rate in \[0, 1\)"),
        ({"depth": 3, "input_size": (30, 32)}, "multiples of 4"),
        ({"input_size": (32, 32, 32)}, "`input_size` must have 2 values"),
        ({"final_activation": "softmx"}, "did you mean 'softmax'"),
    ],
)
def test_unet_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mm.unet(**kwargs)


def test_classifier_shapes_and_checks():
    model = mm.classifier(num_classes=3, filters=(4, 8, 16), input_size=(32, 32), dropout=0.1, mixed_precision=False)
    assert model.output_shape == (None, 3)
    assert model.get_layer("features").output.shape[1:3] == (4, 4)  # 32: stem /2, then /2 per later stage
    p = np.asarray(model(np.zeros((2, 32, 32, 1), "float32")))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    model3d = mm.classifier(spatial_dims=3, num_classes=2, filters=(4,), mixed_precision=False)
    assert np.asarray(model3d(np.zeros((1, 8, 8, 8, 1), "float32"))).shape == (1, 2)
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 2"):
        mm.classifier(num_classes=1)
    with pytest.raises(ValueError, match="`filters` must name at least one stage"):
        mm.classifier(filters=())
    with pytest.raises(ValueError, match="`blocks_per_stage`"):
        mm.classifier(blocks_per_stage=0)


def test_mixed_precision_policy_keeps_float32_output():
    model = mm.unet(depth=2, base_filters=2, mixed_precision=True)
    assert model.get_layer("enc0_conv1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("probabilities").dtype_policy.name == "float32"
    assert mm.unet(depth=2, base_filters=2).get_layer("enc0_conv1").dtype_policy.name == "float32"  # auto on CPU
    with pytest.raises(ValueError, match="`mixed_precision`"):
        mm.unet(mixed_precision="yes")


# --------------------------------------------------------------------------------- losses


def _np(x):
    return np.asarray(mm.networks.keras.ops.convert_to_numpy(x), float)


Y2 = np.array([[[1, 0], [0, 1]], [[0, 1], [0, 1]]], "float32")[:, None]  # (2 images, 1, 2 pixels, 2 classes)
P2 = np.array([[[0.8, 0.2], [0.3, 0.7]], [[0.4, 0.6], [0.1, 0.9]]], "float32")[:, None]


def test_cross_entropy_is_the_seeds_sum():
    per_image = _np(mm.cross_entropy(Y2, P2))
    expected = [-(math.log(0.8) + math.log(0.7)), -(math.log(0.6) + math.log(0.9))]
    np.testing.assert_allclose(per_image, expected, rtol=1e-6)
    # the Loss class sums over the batch too: L = -sum_i sum_c y_ic log p_ic over every pixel
    total = float(_np(mm.CrossEntropy()(Y2, P2)))
    assert total == pytest.approx(sum(expected), rel=1e-6)
    # integer labels are one-hot encoded
    labels = np.array([[[0, 1]], [[1, 1]]])
    np.testing.assert_allclose(_np(mm.cross_entropy(labels, P2)), expected, rtol=1e-6)
    # classification: one row per sample
    np.testing.assert_allclose(_np(mm.cross_entropy(np.eye(2, dtype="float32"), np.array([[0.9, 0.1], [0.25, 0.75]], "float32"))),
                               [-math.log(0.9), -math.log(0.75)], rtol=1e-6)
    # p = 0 is clipped to EPSILON, not -inf
    assert _np(mm.cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))) == pytest.approx(-math.log(mm.losses.EPSILON), rel=1e-4)


def test_soft_dice_exact():
    # image 1: class 0 inter 0.8, sums 1 + 1.1; class 1 inter 0.7, sums 1 + 0.9
    d1 = [(2 * 0.8) / (1 + 1.1), (2 * 0.7) / (1 + 0.9)]
    # image 2: class 0 absent: inter 0, sums 0 + 0.5; class 1 inter 1.5, sums 2 + 1.5
    d2 = [0.0, (2 * 1.5) / (2 + 1.5)]
    got = _np(mm.soft_dice_loss(Y2, P2, smooth=0.0))
    np.testing.assert_allclose(got, [1 - np.mean(d1), 1 - np.mean(d2)], rtol=1e-6)
    got_fg = _np(mm.soft_dice_loss(Y2, P2, smooth=0.0, include_background=False))
    np.testing.assert_allclose(got_fg, [1 - d1[1], 1 - d2[1]], rtol=1e-6)
    # perfect prediction -> 0; smoothing makes an absent class that is not predicted count as 1
    onehot = np.array([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert float(_np(mm.soft_dice_loss(onehot, onehot))[0]) == pytest.approx(0.0, abs=1e-6)
    loss = float(_np(mm.SoftDiceLoss(smooth=0.0)(Y2, P2)))
    assert loss == pytest.approx(np.mean([1 - np.mean(d1), 1 - np.mean(d2)]), rel=1e-6)
    with pytest.raises(ValueError, match="spatial axes"):
        mm.soft_dice_loss(np.eye(2), np.eye(2))


def test_dice_ce_and_focal():
    ce_mean = _np(mm.cross_entropy(Y2, P2)) / 2  # two pixels per image
    dice = _np(mm.soft_dice_loss(Y2, P2))
    np.testing.assert_allclose(_np(mm.dice_ce_loss(Y2, P2)), dice + ce_mean, rtol=1e-6)
    np.testing.assert_allclose(_np(mm.dice_ce_loss(Y2, P2, dice_weight=0.5, ce_weight=2)), 0.5 * dice + 2 * ce_mean, rtol=1e-6)
    # gamma 0, no alpha: mean cross-entropy
    np.testing.assert_allclose(_np(mm.focal_loss(Y2, P2, gamma=0.0)), ce_mean, rtol=1e-6)
    # gamma 2: -(1 - p)^2 log p for the true class, mean over pixels
    fl1 = -(0.2**2 * math.log(0.8) + 0.3**2 * math.log(0.7)) / 2
    assert float(_np(mm.focal_loss(Y2, P2, gamma=2.0))[0]) == pytest.approx(fl1, rel=1e-6)
    fl_alpha = -(0.25 * 0.2**2 * math.log(0.8) + 0.75 * 0.3**2 * math.log(0.7)) / 2
    assert float(_np(mm.focal_loss(Y2, P2, gamma=2.0, alpha=[0.25, 0.75]))[0]) == pytest.approx(fl_alpha, rel=1e-6)
    assert isinstance(mm.get_loss("focal", gamma=1.0), mm.FocalLoss)
    with pytest.raises(ValueError, match="did you mean 'dice_ce'"):
        mm.get_loss("dice-ce")


def test_dice_score_metric_is_medlab_metrics_dice():
    rng = np.random.default_rng(3)
    truth = rng.random((4, 9, 7)) > 0.6
    pred = rng.random((4, 9, 7)) > 0.5
    truth[3] = pred[3] = False  # both empty: 1 by medlab's definition
    probs = np.stack([1 - pred, pred], axis=-1).astype("float32")
    metric = mm.DiceScore()
    metric.update_state(truth.astype(int), probs)
    expected = np.mean([metrics.dice(p, t) for p, t in zip(pred, truth, strict=True)])
    assert float(_np(metric.result())) == pytest.approx(expected, rel=1e-6)
    assert metrics.dice(pred[3], truth[3]) == 1.0


# ------------------------------------------------------------------------------ save / load


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    mm.set_seed(1)
    net = mm.classifier(num_classes=3, filters=(4, 8), dropout=0.2, input_size=(16, 16), mixed_precision=False)
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    tm = mm.TrainedModel(net, task="classification", classes=("a", "b", "c"), normalization="minmax", info={"note": "x"})
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    path = mm.save(tm, tmp_path / "clf.keras")
    back = mm.load(path)
    assert back.classes == ("a", "b", "c") and back.normalization == "minmax" and back.input_size == (16, 16)
    assert back.info == {"note": "x"}
    np.testing.assert_array_equal(np.asarray(back.model(x)), np.asarray(net(x)))
    assert any(isinstance(layer, mm.MCDropout) for layer in back.model.layers)
    # a bare Keras model round-trips too (defaults for the preprocessing)
    mm.save(net, tmp_path / "bare.keras")
    bare = mm.load(tmp_path / "bare.keras")
    assert bare.task == "classification" and bare.classes == ("0", "1", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.keras", "clf.keras"]  # no temporary files left


def test_save_pretrained_round_trip_through_the_atomic_writer(tmp_path):
    mm.set_seed(2)
    kwargs = {"num_classes": 2, "filters": (4,), "dropout": 0.0, "input_size": (16, 16)}
    net = mm.classifier(**kwargs, mixed_precision=False)
    # a number that could not be measured (NaN: no unflagged image in a band) is written as null,
    # not as NaN, which strict JSON readers refuse
    info = {"note": "y", "test": {"mad_mm": 1.5, "mad_unflagged_mm": float("nan"), "ci": [float("-inf"), 2.0]}}
    tm = mm.TrainedModel(net, task="classification", classes=("a", "b"), normalization="minmax", info=info)
    weights, meta = mm.io.save_pretrained(tm, "tiny", {"function": "classifier", "kwargs": kwargs}, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.weights.h5"]  # no temporary left
    text = meta.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = mm.pretrained("tiny", folder=tmp_path)
    x = np.random.default_rng(1).random((2, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(back.model(x)), np.asarray(net(x)))
    assert back.classes == ("a", "b") and back.info["note"] == "y"
    assert back.info["test"] == {"mad_mm": 1.5, "mad_unflagged_mm": None, "ci": [None, 2.0]}


def test_save_weights_in_float16_halves_the_file_and_loads_back_rounded(tmp_path):
    mm.set_seed(3)
    net = mm.unet(depth=3, base_filters=16, mixed_precision=False)
    full = mm.io.save_weights(net, tmp_path / "full.weights.h5")
    half = mm.io.save_weights(net, tmp_path / "half.weights.h5", storage="float16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.weights.h5", "half.weights.h5"]  # no temporary left
    assert half.stat().st_size < 0.75 * full.stat().st_size
    back = mm.unet(depth=3, base_filters=16, mixed_precision=False)
    back.load_weights(half)
    for mine, theirs in zip(back.get_weights(), net.get_weights(), strict=True):
        assert mine.dtype == np.float32  # loaded back into float32 ...
        np.testing.assert_array_equal(mine, theirs.astype(np.float16).astype(np.float32))  # ... rounded once
    with pytest.raises(ValueError, match="storage"):
        mm.io.save_weights(net, tmp_path / "x.weights.h5", storage="bfloat16")


def test_save_and_load_errors(tmp_path):
    net = mm.unet(depth=1, base_filters=2, mixed_precision=False)
    with pytest.raises(ValueError, match=r"must end in '\.keras'"):
        mm.save(net, tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="no model file"):
        mm.load(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="`classes` has 3 names but the model has 2 outputs"):
        mm.TrainedModel(net, classes=("a", "b", "c"))
    with pytest.raises(ValueError, match="did you mean 'segmentation'"):
        mm.TrainedModel(net, task="segment")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- device


def test_device_report():
    report = mm.device_report()
    assert report["backend"] == mm.backend() == "tensorflow"
    assert report["keras_version"].startswith("3.")
    assert report["cpu_count"] >= 1 and report["memory_total_bytes"] > 2**28
    assert report["device"] == ("GPU" if report["gpus"] else "CPU")
    assert report["mixed_precision"] == ("mixed_float16" if report["gpus"] else "float32")
    assert isinstance(report["cpu"], str) and report["cpu"]


def test_use_backend_refuses_to_switch_after_import():
    assert mm.use_backend("tensorflow") == "tensorflow"
    with pytest.raises(RuntimeError, match="cannot switch to 'torch'"):
        mm.use_backend("torch")
    with pytest.raises(ValueError, match="did you mean 'torch'"):
        mm.use_backend("pytorch")


@pytest.mark.parametrize("module", ["medlab.dedup", "medlab.models.data", "medlab.models.hc18", "medlab.metrics._classification",
                                    "medlab.models.networks", "medlab.models._backend", "medlab.models.busi"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------- test-time augmentation


def test_segment_tta_is_the_mean_of_the_flipped_passes():
    import SimpleITK as sitk

    mm.set_seed(2)
    tm = mm.TrainedModel(mm.unet(depth=2, base_filters=4, input_size=(16, 24), mixed_precision=False),
                         task="segmentation", classes=("background", "head"))
    img = sitk.GetImageFromArray(np.random.default_rng(0).random((30, 45)).astype(np.float32))
    img.SetSpacing((0.2, 0.2))
    passes = mm.segment_flips(tm, img)
    assert len(passes) == 4 and passes[0].GetSize() == img.GetSize()
    mean = np.mean([sitk.GetArrayFromImage(p) for p in passes], axis=0)
    tta = sitk.GetArrayFromImage(mm.segment(tm, img, output="probabilities", tta=True))
    np.testing.assert_allclose(tta, mean, atol=1e-6)
    one = sitk.GetArrayFromImage(mm.segment(tm, img, output="probabilities"))
    np.testing.assert_allclose(sitk.GetArrayFromImage(passes[0]), one, atol=1e-6)  # first pass: no flip
    # a flipped pass is the network on the flipped grid, flipped back
    x = mm.to_array(img, size=(16, 24))
    direct = np.asarray(tm.model(np.ascontiguousarray(x[:, :, ::-1]), training=False))[:, :, ::-1]
    grid = mm.segment_flips(tm, img, flips=[(1,)], grid="model")[0]
    assert grid.GetSize() == (24, 16)
    np.testing.assert_allclose(sitk.GetArrayFromImage(grid), direct[0], atol=1e-5)
    with pytest.raises(ValueError, match="spatial axes 0 \\(y\\) and 1 \\(x\\)"):
        mm.segment_flips(tm, img, flips=[(2,)])
