"""medlab.models data pipeline, training, inference and explanations on tiny models and images."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import models as mm

# ------------------------------------------------------------------------------ resampling


def _image(shape_yx=(30, 40), spacing_yx=(0.5, 0.25), origin_xy=(10.0, -5.0)):
    arr = np.arange(np.prod(shape_yx), dtype=np.float32).reshape(shape_yx)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing_yx[::-1])
    img.SetOrigin(origin_xy)
    return img


def test_resample_to_keeps_the_field_of_view():
    img = _image()
    out = mm.resample_to(img, size=(15, 8))
    assert out.GetSize() == (8, 15)
    np.testing.assert_allclose(np.array(out.GetSize()) * out.GetSpacing(), np.array(img.GetSize()) * img.GetSpacing())
    # the field-of-view corner (origin minus half a pixel) is unchanged
    corner = np.array(img.GetOrigin()) - np.array(img.GetSpacing()) / 2
    np.testing.assert_allclose(np.array(out.GetOrigin()) - np.array(out.GetSpacing()) / 2, corner)
    by_spacing = mm.resample_to(img, spacing_mm=(1.0, 1.0))
    assert by_spacing.GetSize() == (10, 15) and by_spacing.GetSpacing() == (1.0, 1.0)
    # a linear ramp along x is reproduced exactly at the new pixel centres
    ramp = sitk.GetImageFromArray(np.tile(np.arange(40, dtype=np.float32), (30, 1)))
    small = sitk.GetArrayFromImage(mm.resample_to(ramp, size=(30, 20)))
    np.testing.assert_allclose(small[0], np.arange(20) * 2 + 0.5, atol=1e-5)
    back = mm.resample_onto(mm.resample_to(ramp, size=(30, 20)), ramp)
    assert back.GetSize() == ramp.GetSize()
    np.testing.assert_allclose(sitk.GetArrayFromImage(back)[0, 1:-1], np.arange(1, 39), atol=1e-5)
    # numpy in -> numpy out; masks with nearest neighbour stay labels
    arr = mm.resample_to(np.eye(8, dtype=np.uint8) * 3, size=(4, 4), interpolator="nearest")
    assert isinstance(arr, np.ndarray) and set(np.unique(arr)) <= {0, 3}
    with pytest.raises(ValueError, match="exactly one of `size` and `spacing_mm`"):
        mm.resample_to(img)
    with pytest.raises(ValueError, match="`size` must have 2 values"):
        mm.resample_to(img, size=(4, 4, 4))


def test_to_array_and_labels():
    rgb = sitk.Compose([_image((6, 8))] * 3)
    x = mm.to_array([rgb, _image((6, 8))], normalization="zscore")
    assert x.shape == (2, 6, 8, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], x[1], atol=1e-6)  # RGB of equal channels = the grey image
    np.testing.assert_allclose([x[0].mean(), x[0].std()], [0, 1], atol=1e-5)
    x3 = mm.to_array(_image((6, 8)), channels=3, normalization="minmax", size=(3, 4))
    assert x3.shape == (1, 3, 4, 3) and x3.min() == 0 and x3.max() == 1
    assert mm.labels_to_array([np.eye(6, dtype=np.uint8)], size=(3, 3)).dtype == np.int32
    with pytest.raises(ValueError, match="different sizes"):
        mm.to_array([_image((6, 8)), _image((6, 9))])
    assert mm.normalize(np.full((3, 3), 7.0)).max() == 0  # constant image -> zeros, no division by 0


# ---------------------------------------------------------------------------- augmentation


def _blob(shape=(24, 32)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = ((yy - 8) ** 2 + (xx - 20) ** 2 < 25).astype(np.int32)
    image = (labels * 2.0 + np.linspace(0, 1, shape[1])[None, :])[..., None].astype(np.float32)
    return image, labels


def test_augment_is_seeded_and_keeps_labels_aligned():
    image, labels = _blob()
    aug = mm.Augment(flip_axes=(0, 1), rotate_deg=25, scale=0.1, elastic_alpha=3, gamma=0.2, contrast=0.2,
                     brightness=0.1, noise_std=0.05)
    a1 = aug(image, labels, rng=np.random.default_rng(11))
    a2 = aug(image, labels, rng=np.random.default_rng(11))
    a3 = aug(image, labels, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(a1[0], a2[0])
    np.testing.assert_array_equal(a1[1], a2[1])
    assert not np.array_equal(a1[0], a3[0])
    assert a1[0].shape == image.shape and a1[1].shape == labels.shape
    assert set(np.unique(a1[1])) <= {0, 1}  # nearest neighbour: no new label values
    assert abs(int(a1[1].sum()) - int(labels.sum())) < 0.6 * labels.sum()  # the blob survives (zoom, elastic)
    # geometry alone: the label map and the bright image region still coincide
    geo = mm.Augment(rotate_deg=30, elastic_alpha=2)
    gi, gl = geo(image, labels, rng=np.random.default_rng(5))
    assert gi[..., 0][gl == 1].mean() > gi[..., 0][gl == 0].mean() + 1.5


def test_augment_flips_exactly_and_works_in_3d():
    image, labels = _blob()
    flip = mm.Augment(flip_axes=(1,))
    outs = {bool(np.array_equal(flip(image, labels, rng=np.random.default_rng(s))[1], labels[:, ::-1])) for s in range(8)}
    assert outs == {True, False}  # each flip with probability 1/2, and exact when it happens
    vol = np.random.default_rng(0).random((6, 10, 12, 2)).astype(np.float32)
    lab = (vol[..., 0] > 0.5).astype(np.int32)
    v, lv = mm.Augment(flip_axes=(0,), rotate_deg=10, elastic_alpha=1, elastic_sigma=2)(vol, lab, rng=np.random.default_rng(1))
    assert v.shape == vol.shape and lv.shape == lab.shape
    with pytest.raises(ValueError, match="`gamma` must stay above 0"):
        mm.Augment(gamma=(0, 1))
    with pytest.raises(TypeError, match="numpy Generator"):
        flip(image, labels, rng=3)
    with pytest.raises(ValueError, match="`labels` \\(shape"):
        flip(image, labels[:-1], rng=np.random.default_rng(0))


def test_sample_patches_is_class_balanced():
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 30, 40), np.int32)
    labels[10:12, 15:17, 20:22] = 1  # 8 voxels of 24000
    vol = rng.random((20, 30, 40, 1)).astype(np.float32)
    x, y, centres = mm.sample_patches(vol, labels, (8, 8, 8), 200, rng=np.random.default_rng(1))
    assert x.shape == (200, 8, 8, 8, 1) and y.shape == (200, 8, 8, 8)
    on_lesion = labels[tuple(centres.T)] == 1
    assert 0.4 < on_lesion.mean() < 0.6  # half the patches centred on the tiny lesion
    assert (y[on_lesion].reshape(on_lesion.sum(), -1).max(axis=1) == 1).all()
    # the patch content is the volume at that place
    c = centres[np.argmax(on_lesion)]
    start = np.clip(c - 4, 0, np.array(labels.shape) - 8)
    np.testing.assert_array_equal(x[np.argmax(on_lesion)], vol[start[0]:start[0] + 8, start[1]:start[1] + 8, start[2]:start[2] + 8])
    # explicit probabilities, and a volume smaller than the patch is padded
    _, _, c2 = mm.sample_patches(vol, labels, (8, 8, 8), 50, class_probabilities={0: 1.0}, rng=np.random.default_rng(2))
    assert (labels[tuple(c2.T)] == 0).all()
    xs, _, _ = mm.sample_patches(vol[:4], labels[:4], (8, 8, 8), 3, rng=np.random.default_rng(3))
    assert xs.shape == (3, 8, 8, 8, 1)
    with pytest.raises(ValueError, match="names none of the labels"):
        mm.sample_patches(vol, labels, (8, 8, 8), 2, class_probabilities={5: 1.0}, rng=rng)


def test_grouped_split_keeps_groups_together_and_balances_labels():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 120, 400)
    labels = (groups % 3 == 0).astype(int)  # label constant within a group
    train, val, test = mm.grouped_split(groups, labels, fractions=(0.6, 0.2, 0.2), seed=4)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(400))
    for a, b in ((train, val), (train, test), (val, test)):
        assert not set(groups[a]) & set(groups[b])
    for part, frac in ((train, 0.6), (val, 0.2), (test, 0.2)):
        assert abs(len(part) / 400 - frac) < 0.04
        assert abs(labels[part].mean() - labels.mean()) < 0.06
    again = mm.grouped_split(groups, labels, fractions=(0.6, 0.2, 0.2), seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test), strict=True))
    with pytest.raises(ValueError, match="`fractions`"):
        mm.grouped_split(groups, fractions=(1.0,))


# -------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    y = np.zeros((12, 16, 16), np.int32)
    for k in range(12):
        cy, cx = rng.integers(4, 12, 2)
        y[k, cy - 3:cy + 3, cx - 3:cx + 3] = 1
    x = (y[..., None] + rng.normal(0, 0.3, (12, 16, 16, 1))).astype(np.float32)
    return x, y


def test_array_dataset_is_seeded_and_one_hot(tiny_data):
    x, y = tiny_data
    aug = mm.Augment(flip_axes=(0, 1), rotate_deg=10)
    d1 = mm.ArrayDataset(x, y, num_classes=2, batch_size=5, augment=aug, seed=3)
    d2 = mm.ArrayDataset(x, y, num_classes=2, batch_size=5, augment=aug, seed=3)
    assert len(d1) == 3
    b1, b2 = d1[1], d2[1]
    np.testing.assert_array_equal(b1[0], b2[0])
    assert b1[1].shape == (5, 16, 16, 2) and np.array_equal(b1[1].sum(-1), np.ones((5, 16, 16)))
    d1.on_epoch_end()
    assert not np.array_equal(d1[1][0], b2[0])  # another epoch, another shuffle
    assert len(d1[2][0]) == 2  # last, partial batch
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        mm.ArrayDataset(x, y * 2, num_classes=2)
    weighted = mm.ArrayDataset(x[:, :, :, :], np.arange(12) % 2, num_classes=2, shuffle=False, class_weight={1: 3.0})
    np.testing.assert_array_equal(weighted[0][2], [1, 3, 1, 3, 1, 3, 1, 3])


def test_train_learns_checkpoints_and_reports(tiny_data, tmp_path):
    x, y = tiny_data
    mm.set_seed(0)
    net = mm.unet(depth=2, base_filters=4, input_size=(16, 16), mixed_precision=False)
    calls = []
    res = mm.train(net, x, y, validation=(x[:4], y[:4]), epochs=6, batch_size=4, learning_rate=1e-2,
                   progress=lambda f, m: calls.append((f, m)), checkpoint=tmp_path / "best.keras")
    assert res.stop_reason == "completed" and res.epochs == 6
    assert set(res.history) == {"loss", "dice", "val_loss", "val_dice"} and len(res.history["loss"]) == 6
    assert res.history["loss"][-1] < res.history["loss"][0]
    assert calls[-1] == (1.0, "training done after 6 epochs") and calls[0][0] == pytest.approx(1 / 18)
    assert res.best_epoch == 1 + int(np.argmin(res.history["val_loss"]))
    assert res.checkpoint == tmp_path / "best.keras" and mm.load(res.checkpoint).model.output_shape == (None, 16, 16, 2)
    assert res.images_per_second > 0


def test_train_stops_cleanly(tiny_data):
    x, y = tiny_data
    net = mm.unet(depth=1, base_filters=2, mixed_precision=False)
    res = mm.train(net, x, y, epochs=5, batch_size=4, progress=lambda f, m: f < 0.1)
    assert res.stop_reason == "stopped" and res.epochs <= 1
    event = threading.Event()
    event.set()
    res2 = mm.train(net, x, y, epochs=5, batch_size=4, progress=False, stop=event)
    assert res2.stop_reason == "stopped" and res2.epochs <= 1

    def interrupt(fraction, message):
        raise KeyboardInterrupt

    res3 = mm.train(net, x, y, epochs=3, batch_size=4, progress=interrupt)
    assert res3.stop_reason == "interrupted"


def test_early_stopping_and_classification(tiny_data):
    x, _ = tiny_data
    labels = np.arange(12) % 2
    net = mm.classifier(num_classes=2, filters=(2,), mixed_precision=False)
    # a learning rate of ~0 cannot improve the loss: patience 1 stops after epoch 2
    res = mm.train(net, x, labels, epochs=10, batch_size=6, learning_rate=1e-12, early_stopping=1, monitor="loss",
                   progress=False, loss="cross_entropy")
    assert res.stop_reason == "early_stopping" and res.epochs < 10
    assert "accuracy" in res.history
    with pytest.raises(ValueError, match="'.keras' file"):
        mm.train(net, x, labels, epochs=1, checkpoint="model.h5", progress=False)


# ------------------------------------------------------------------------------- inference


def test_gaussian_importance():
    w = mm.gaussian_importance((9, 16, 5))
    assert w.shape == (9, 16, 5) and w.max() == pytest.approx(1.0) and w.min() > 0
    np.testing.assert_allclose(w, w[::-1, ::-1, ::-1], rtol=1e-6)  # symmetric about the centre
    assert np.unravel_index(np.argmax(w), w.shape) == (4, 7, 2) or w[4, 7, 2] == pytest.approx(1.0, rel=1e-6)
    # sigma = patch / 8: one sigma from the centre along one axis
    w1 = mm.gaussian_importance((17,))
    assert w1[8 + 2] / w1[8] == pytest.approx(np.exp(-((2 / (17 / 8)) ** 2) / 2), rel=1e-6)


@pytest.mark.parametrize("shape", [(20, 23, 17), (5, 40, 9)])
def test_sliding_window_reconstructs_an_identity_model(shape):
    vol = np.random.default_rng(1).random((*shape, 2)).astype(np.float32)
    calls = []
    out = mm.sliding_window(lambda x: x, vol, (8, 12, 8), overlap=0.5, progress=lambda f, m: calls.append(f))
    np.testing.assert_allclose(out, vol, rtol=1e-5, atol=1e-6)
    assert calls[-1] == 1.0
    # the weighted average of a constant field is that constant everywhere (weights sum right)
    const = mm.sliding_window(lambda x: np.ones_like(x[..., :1]) * 3, vol, (8, 12, 8), overlap=0.25)
    np.testing.assert_allclose(const, 3.0, rtol=1e-6)
    with pytest.raises(InterruptedError, match="stopped by the `progress` callback"):
        mm.sliding_window(lambda x: x, vol, (8, 12, 8), progress=lambda f, m: False)


def test_sliding_window_blends_with_gaussian_weights():
    # a model that outputs the patch's own corner index shows which patch wins where: the blend
    # at a voxel is sum_k w_k(v) c_k / sum_k w_k(v)
    vol = np.zeros((1, 12, 1), np.float32)
    vol[0, :, 0] = np.arange(12)

    def corner(x):
        return np.broadcast_to(x[:, :1, :1, :1], x.shape).copy()

    out = mm.sliding_window(corner, vol, (1, 8), overlap=0.5)[0, :, 0]
    w = mm.gaussian_importance((8,))
    starts = [0, 4]  # positions for size 12, patch 8, step 4
    num = np.zeros(12)
    den = np.zeros(12)
    for s in starts:
        num[s:s + 8] += w * s
        den[s:s + 8] += w
    np.testing.assert_allclose(out, num / den, rtol=1e-5)


def test_segment_returns_the_input_grid_in_2d_and_3d():
    mm.set_seed(0)
    net2 = mm.unet(depth=2, base_filters=2, input_size=(16, 24), mixed_precision=False)
    img = _image((30, 41))
    labels = mm.segment(net2, img)
    assert labels.GetSize() == img.GetSize() and labels.GetSpacing() == img.GetSpacing()
    assert labels.GetOrigin() == img.GetOrigin() and labels.GetPixelID() == sitk.sitkUInt8
    lab, prob = mm.segment(net2, img, output="both")
    assert prob.GetNumberOfComponentsPerPixel() == 2 and prob.GetSize() == img.GetSize()
    p = sitk.GetArrayFromImage(prob)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(lab), p.argmax(-1))
    many = mm.segment(net2, [img, sitk.GetArrayFromImage(img)])
    assert isinstance(many[1], np.ndarray) and many[1].shape == (30, 41)  # numpy in -> numpy out
    np.testing.assert_array_equal(sitk.GetArrayFromImage(many[0]), many[1])
    # 3D: any size, sliding window at the training spacing
    net3 = mm.unet(spatial_dims=3, depth=2, base_filters=2, normalization="instance", mixed_precision=False)
    vol = sitk.GetImageFromArray(np.random.default_rng(0).random((11, 19, 14)).astype(np.float32))
    vol.SetSpacing((0.8, 0.8, 2.0))
    seg3 = mm.segment(net3, vol, patch_size=(8, 8, 8), spacing_mm=(2.0, 1.0, 1.0))
    assert seg3.GetSize() == vol.GetSize() and seg3.GetSpacing() == vol.GetSpacing()
    with pytest.raises(ValueError, match="needs `patch_size`"):
        mm.segment(net3, vol)
    with pytest.raises(ValueError, match="is 3D but the model takes 2D"):
        mm.segment(net2, vol)


def test_classify_and_task_checks():
    net = mm.classifier(num_classes=3, filters=(2,), input_size=(16, 16), mixed_precision=False)
    p = mm.classify(net, [_image((20, 30)), sitk.Compose([_image((20, 30))] * 3)])
    assert p.shape == (2, 3)
    np.testing.assert_allclose(p[0], p[1], atol=1e-5)  # RGB of equal channels = grey
    with pytest.raises(ValueError, match="use segment"):
        mm.classify(mm.unet(depth=1, base_filters=2, input_size=(16, 16)), _image())
    with pytest.raises(ValueError, match="use classify"):
        mm.segment(net, _image())


# ---------------------------------------------------------------------------- explanations


def _spot_classifier():
    """features = relu(input - 0.5); logits = [mean of features, -mean]: class 0 is 'bright'."""
    keras = mm.networks.keras
    inp = keras.Input((32, 32, 1))
    conv = keras.layers.Conv2D(1, 1, name="shift")
    feats = keras.layers.Activation("relu", name="features")(conv(inp))
    pooled = keras.layers.GlobalAveragePooling2D()(feats)
    dense = keras.layers.Dense(2, name="logits")
    out = keras.layers.Activation("softmax", name="probabilities")(dense(pooled))
    model = keras.Model(inp, out)
    conv.set_weights([np.ones((1, 1, 1, 1)), np.array([-0.5])])
    dense.set_weights([np.array([[1.0, -1.0]]), np.zeros(2)])
    return mm.TrainedModel(model, task="classification", normalization="none")


def _spot_image():
    img = np.zeros((64, 64), np.float32)
    img[40:48, 10:18] = 1.0  # bright spot at rows 40-47, cols 10-17
    return img


def test_grad_cam_peaks_at_the_evidence():
    tm = _spot_classifier()
    cam = mm.grad_cam(tm, _spot_image(), class_index=0)
    assert cam.shape == (64, 64) and cam.max() == pytest.approx(1.0, abs=1e-6) and cam.min() >= 0
    r, c = np.unravel_index(np.argmax(cam), cam.shape)
    assert 39 <= r <= 48 and 9 <= c <= 18
    assert cam[:20, 40:].max() < 0.05  # nothing far away
    # the other class has only negative evidence: relu leaves nothing
    assert mm.grad_cam(tm, _spot_image(), class_index=1).max() == 0
    with pytest.raises(ValueError, match="is not a layer"):
        mm.grad_cam(tm, _spot_image(), layer="nope")


def test_saliency_and_occlusion_find_the_spot():
    tm = _spot_classifier()
    sal = mm.saliency(tm, _spot_image(), class_index=0)
    assert sal.shape == (64, 64) and sal.max() == pytest.approx(1.0, abs=1e-6)
    r, c = np.unravel_index(np.argmax(sal), sal.shape)
    assert 39 <= r <= 48 and 9 <= c <= 18
    assert sal[:16, 40:].max() == 0  # relu is off there: no gradient
    smooth = mm.saliency(tm, _spot_image(), class_index=0, samples=3)
    assert smooth.shape == (64, 64)
    occ = mm.occlusion(tm, _spot_image(), class_index=0, patch=8, stride=4)
    r, c = np.unravel_index(np.argmax(occ), occ.shape)
    assert 36 <= r <= 52 and 6 <= c <= 22
    assert occ[:16, 40:].max() == pytest.approx(0.0, abs=1e-6)  # occluding empty background changes nothing


def test_explanations_of_a_unet_on_the_input_grid():
    mm.set_seed(0)
    net = mm.unet(depth=2, base_filters=4, input_size=(16, 16), dropout=0.3, mixed_precision=False)
    img = _image((20, 28))
    for fn in (mm.grad_cam, mm.saliency):
        out = fn(net, img)
        assert out.GetSize() == img.GetSize() and out.GetSpacing() == img.GetSpacing()
    unc = mm.mc_dropout(net, img, samples=4, seed=2)
    assert unc["mean"].GetNumberOfComponentsPerPixel() == 2 and unc["labels"].GetSize() == img.GetSize()
    std = sitk.GetArrayFromImage(unc["std"])
    assert std.max() > 0  # dropout active at inference
    again = mm.mc_dropout(net, img, samples=4, seed=2)
    np.testing.assert_allclose(sitk.GetArrayFromImage(again["std"]), std, rtol=1e-5, atol=1e-7)
    # after MC sampling the model is deterministic again
    x = np.zeros((1, 16, 16, 1), np.float32)
    np.testing.assert_array_equal(np.asarray(net(x)), np.asarray(net(x)))
    with pytest.raises(ValueError, match="no dropout layers"):
        mm.mc_dropout(mm.unet(depth=1, base_filters=2, input_size=(16, 16)), img)


def test_mc_dropout_of_a_classifier():
    net = mm.classifier(num_classes=3, filters=(4,), dropout=0.5, input_size=(16, 16), mixed_precision=False)
    out = mm.mc_dropout(net, _image((16, 16)), samples=5)
    assert out["samples"].shape == (5, 3) and out["mean"].shape == (3,)
    assert out["mean"].sum() == pytest.approx(1.0, abs=1e-5) and out["entropy"] >= 0
    many = mm.mc_dropout(net, [_image((16, 16)), _image((20, 20))], samples=5)
    assert many["samples"].shape == (5, 2, 3) and many["entropy"].shape == (2,)
    np.testing.assert_allclose(many["mean"][0], out["mean"], rtol=1e-5)  # same seed, same masks
    with pytest.raises(TypeError, match="classification"):
        mm.mc_dropout(mm.unet(depth=1, base_filters=2, dropout=0.1, input_size=(16, 16)), [_image((16, 16))])
