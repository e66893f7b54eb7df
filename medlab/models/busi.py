"""Breast ultrasound classification on BUSI (Al-Dhabyani et al. 2020) without leakage.

BUSI holds near-duplicate images (the same lesion saved twice, with and without calipers, or
cropped differently: about 19 % of the images) and a few lesions filed under two classes. The
split is therefore made on near-duplicate groups (:func:`medlab.dedup.near_duplicate_groups`,
64-bit pHash, Hamming distance <= 10), and groups whose images carry different labels are left
out (their label is unreliable). Measured on the 625 images of the teaching copy: 503 groups,
99 of them with more than one image (122 images are copies of another one, 20 %), 8 with
conflicting labels (17 images). A random split of single images would put a near-duplicate of a
training image into the test set for about 23 % of the test images.
"""

from __future__ import annotations

import re

import numpy as np

from medlab._options import check_choice, check_int

__all__ = ["CLASSES", "load_busi", "busi_split", "evaluate_busi", "threshold_at_sensitivity", "busi_performance",
           "efficientnet_lite0_features", "efficientnet_lite0_unet", "load_effnet_weights", "busi_effnet"]

CLASSES = ("benign", "malignant", "normal")
MAX_DISTANCE = 10

# EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: no squeeze-excitation, ReLU6, fixed stem
# and head): (repeats, kernel, stride, expansion, in, out) per stage.
EFFNET_LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                       (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
N_EFFNET_BLOCKS = sum(s[0] for s in EFFNET_LITE0_STAGES)


def load_busi(cases=None, *, progress=False) -> dict:
    """BUSI images and labels through the dataset registry.

    Parameters
    ----------
    cases : sequence of str, optional
        BUSI case ids (default: :func:`medlab.datasets.cases`).
    progress : bool
        Show a progress bar while the files are fetched and verified.

    Returns
    -------
    dict
        ``cases`` (list of str), ``images`` (list of 2D RGB ``sitk.Image``), ``labels`` (list of
        class names), ``y`` (ndarray of class indices into :data:`CLASSES`).
    """
    from medlab import datasets

    cases = list(datasets.cases("busi") if cases is None else cases)
    data = [datasets.load("busi", case=c, progress=progress) for c in cases]
    labels = [d.meta["class"] for d in data]
    return {"cases": cases, "images": [d.image for d in data], "labels": labels,
            "y": np.array([CLASSES.index(lbl) for lbl in labels])}


def busi_split(images=None, cases=None, labels=None, *, fractions=(0.6, 0.2, 0.2), seed: int = 0,
               max_distance: int = MAX_DISTANCE, drop_conflicts: bool = True) -> dict:
    """Leakage-free train/validation/test split of BUSI by near-duplicate groups.

    Parameters
    ----------
    images, cases, labels : lists, optional
        As returned by :func:`load_busi` (loaded when not given).
    fractions : (train, val, test)
        Target shares; class proportions are balanced across parts
        (:func:`medlab.models.grouped_split`).
    seed : int
    max_distance : int
        pHash Hamming distance for near-duplicates.
    drop_conflicts : bool
        Leave out groups whose images have different labels.

    Returns
    -------
    dict
        ``train``, ``val``, ``test``: lists of case ids; ``groups``: ``{case: group id}``;
        ``labels``: ``{case: label}``;
        ``max_distance``;
        ``n_groups``, ``n_duplicate_groups`` (groups of 2 or more images), ``n_duplicates``
        (images beyond the first of their group), ``conflicts`` (list of lists of case ids
        left out).
    """
    from medlab.dedup import near_duplicate_groups

    from .data import grouped_split

    if images is None:
        data = load_busi(cases)
        images, cases, labels = data["images"], data["cases"], data["labels"]
    if not (len(images) == len(cases) == len(labels)):
        raise ValueError("`images`, `cases` and `labels` must have the same length")
    if len(fractions) != 3:
        raise ValueError(f"`fractions` must be (train, val, test); got {fractions!r}")
    groups = near_duplicate_groups(images, max_distance=max_distance)
    labels = np.asarray(labels)
    cases = np.asarray(cases)
    sizes = np.bincount(groups)
    conflicts = [k for k in range(len(sizes)) if len(set(labels[groups == k])) > 1]
    keep = ~np.isin(groups, conflicts) if drop_conflicts else np.ones(len(cases), bool)
    parts = grouped_split(groups[keep], labels[keep], fractions=fractions, seed=seed)
    kept = cases[keep]
    out = {name: sorted(kept[idx].tolist()) for name, idx in zip(("train", "val", "test"), parts, strict=True)}
    out.update(
        groups={str(c): int(g) for c, g in zip(cases, groups, strict=True)},
        labels={str(c): str(lbl) for c, lbl in zip(cases, labels, strict=True)},
        max_distance=int(max_distance),
        n_groups=int(len(sizes)),
        n_duplicate_groups=int((sizes > 1).sum()),
        n_duplicates=int(len(cases) - len(sizes)),
        conflicts=[sorted(cases[groups == k].tolist()) for k in conflicts],
    )
    return out


def busi_subset(split: dict, part: str, n_per_class: int = 0, *,
                classes=("benign", "malignant")) -> list:
    """Case ids of one part of a :func:`busi_split`, class by class.

    Parameters
    ----------
    split : dict
        From :func:`busi_split`.
    part : {'train', 'val', 'test'}
    n_per_class : int
        0: every case of each class; otherwise at most this many per class, spread evenly over
        the part's (sorted) cases, so a smaller run keeps the same mix.
    classes : sequence of str
        Which classes, in this order (default the lesions: benign, then malignant).

    Examples
    --------
    >>> split = {"train": ["benign (1)", "benign (2)", "benign (3)", "malignant (1)", "normal (1)"],
    ...          "labels": {"benign (1)": "benign", "benign (2)": "benign", "benign (3)": "benign",
    ...                     "malignant (1)": "malignant", "normal (1)": "normal"}}
    >>> busi_subset(split, "train", 2)
    ['benign (1)', 'benign (3)', 'malignant (1)']
    """
    check_choice("part", part, ("train", "val", "test"))
    n = check_int("n_per_class", n_per_class, minimum=0)
    chosen = []
    for cls in classes:
        cases = [c for c in split[part] if split["labels"][c] == cls]
        if n and cases:
            cases = [cases[i] for i in np.linspace(0, len(cases) - 1, min(n, len(cases))).astype(int)]
        chosen += cases
    return chosen


def evaluate_busi(model, cases, *, images=None, batch_size: int = 32):
    """Classify BUSI cases.

    Parameters
    ----------
    model : keras.Model or TrainedModel
        A BUSI classifier.
    cases : sequence of str
        BUSI case ids (:func:`medlab.datasets.cases`).
    images : sequence of sitk.Image, optional
        The cases' images, in the same order (loaded when not given).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``label``, ``p_<class>`` for each class of the model, and
        ``predicted`` (the class of highest probability), ``correct`` (bool).
    """
    import pandas as pd

    from .inference import as_trained, classify

    check_int("batch_size", batch_size, minimum=1)
    tm = as_trained(model)
    if images is None:
        data = load_busi(cases)
        images, labels = data["images"], data["labels"]
    else:
        labels = [c.split(" (")[0] for c in cases]
    probs = classify(tm, images, batch_size=batch_size)
    df = pd.DataFrame({"case": list(cases), "label": labels})
    for k, name in enumerate(tm.classes):
        df[f"p_{name}"] = probs[:, k]
    df["predicted"] = [tm.classes[k] for k in probs.argmax(axis=1)]
    df["correct"] = df["predicted"] == df["label"]
    return df


def _wilson(k: int, n: int, confidence: float = 0.95) -> list:
    """Wilson score interval of the proportion ``k / n`` ([nan, nan] when ``n`` is 0)."""
    from scipy import stats

    if n == 0:
        return [float("nan"), float("nan")]
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def threshold_at_sensitivity(y_true, scores, sensitivity: float = 0.9) -> float:
    """The highest threshold ``t`` whose decision ``scores >= t`` reaches ``sensitivity``.

    Parameters
    ----------
    y_true : (n,) 0/1 or bool
        1 for positives (malignant).
    scores : (n,) float
        Higher means more likely positive.
    sensitivity : float in (0, 1]
        Target share of positives called positive.

    Returns
    -------
    float
        A score of one of the positives (the ``ceil(sensitivity * n_positive)``-th highest).

    Examples
    --------
    >>> threshold_at_sensitivity([1, 1, 1, 1, 0], [0.9, 0.8, 0.4, 0.2, 0.5], 0.75)
    0.4
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"`y_true` (shape {y.shape}) and `scores` (shape {s.shape}) must be 1D and equally long")
    if not 0 < sensitivity <= 1:
        raise ValueError(f"`sensitivity` must be in (0, 1]; got {sensitivity!r}")
    pos = np.sort(s[y])[::-1]
    if len(pos) == 0:
        raise ValueError("`y_true` holds no positives: no threshold reaches a sensitivity")
    k = int(np.ceil(sensitivity * len(pos) - 1e-9))
    return float(pos[max(k, 1) - 1])


def busi_performance(table, *, threshold: float | None = None, sensitivity: float = 0.9, n_bins: int = 10,
                     n_bootstrap: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Malignant vs benign performance of a BUSI table: ROC AUC, calibration, operating point.

    Only the lesion images (benign or malignant) count; the score is ``p_malignant``, the model's
    stated probability of malignancy.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`evaluate_busi` (columns ``label`` and ``p_malignant``).
    threshold : float, optional
        Decision threshold on ``p_malignant``, chosen elsewhere (e.g. on the validation part with
        :func:`threshold_at_sensitivity`) and measured here. None: chosen on this table for
        ``sensitivity`` (then the sensitivity measured is the target, not an estimate).
    sensitivity : float
        Target sensitivity when ``threshold`` is None.
    n_bins : int
        Equal-width bins of the reliability curve and the expected calibration error.
    n_bootstrap, seed, confidence
        Stratified bootstrap interval of the AUC (:func:`medlab.metrics.roc_auc_ci`).

    Returns
    -------
    dict
        ``n_benign``, ``n_malignant``; ``auc``, ``auc_ci`` (bootstrap); ``brier``; ``ece``
        (expected calibration error, ``medlab.metrics.Calibration.ece``: mean over images of
        ``|observed share - mean probability|`` of their bin); ``reliability`` (``prob_pred``,
        ``prob_true``, ``count`` per non-empty bin); ``threshold``, ``threshold_chosen_here``
        (bool); ``sensitivity``, ``sensitivity_ci``, ``specificity``, ``specificity_ci`` (Wilson
        intervals) and ``confusion`` (``[[tn, fp], [fn, tp]]``) at the threshold.
    """
    from medlab.metrics import calibration, confusion, roc_auc_ci

    missing = {"label", "p_malignant"} - set(table.columns)
    if missing:
        raise ValueError(f"`table` lacks the column(s) {sorted(missing)} (a table of evaluate_busi)")
    lesions = table[table["label"].isin(["benign", "malignant"])]
    y = (lesions["label"] == "malignant").to_numpy()
    p = lesions["p_malignant"].to_numpy(float)
    if y.all() or not y.any():
        raise ValueError(f"`table` needs benign and malignant rows; got {int(y.sum())} malignant, {int((~y).sum())} benign")
    auc = roc_auc_ci(y, p, method="bootstrap", n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    cal = calibration(y, p, n_bins=n_bins)
    chosen_here = threshold is None
    t = threshold_at_sensitivity(y, p, sensitivity) if chosen_here else float(threshold)
    c = confusion(y, p >= t)
    (tn, fp), (fn, tp) = c.matrix.tolist()
    return {
        "n_benign": int((~y).sum()), "n_malignant": int(y.sum()),
        "auc": auc.auc, "auc_ci": [auc.low, auc.high], "brier": cal.brier, "ece": cal.ece,
        "reliability": {"prob_pred": cal.prob_pred.tolist(), "prob_true": cal.prob_true.tolist(),
                        "count": cal.count.tolist()},
        "threshold": t, "threshold_chosen_here": chosen_here,
        "sensitivity": c.sensitivity, "sensitivity_ci": _wilson(tp, tp + fn, confidence),
        "specificity": c.specificity, "specificity_ci": _wilson(tn, tn + fp, confidence),
        "confusion": c.matrix.tolist(),
    }


# ----------------------------------------------------------------------------- EfficientNet-Lite0


def _effnet_trunk(inp, last: int, stages=EFFNET_LITE0_STAGES):
    """EfficientNet-Lite0's stem and blocks 0 to ``last`` on the Keras tensor ``inp`` (RGB scaled to
    [-1, 1]): ``{block: output}``, with the layer names the converted ImageNet weights carry.
    ``stages`` (rows as :data:`EFFNET_LITE0_STAGES`) builds a wider or deeper EfficientNet-Lite."""
    from ._backend import keras as _keras

    layers = _keras().layers
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.ReLU(6.0)(layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(x))
    outputs, k = {}, 0
    for repeats, kernel, stride, expand, c_in, c_out in stages:
        for r in range(repeats):
            if k > last:
                return outputs
            s_, ci = (stride, c_in) if r == 0 else (1, c_out)
            h = x
            if expand != 1:
                h = layers.Conv2D(ci * expand, 1, use_bias=False, name=f"b{k}_expand")(h)
                h = layers.ReLU(6.0)(layers.BatchNormalization(epsilon=1e-3, name=f"b{k}_bn0")(h))
            h = layers.DepthwiseConv2D(kernel, strides=s_, padding="same", use_bias=False, name=f"b{k}_dw")(h)
            h = layers.ReLU(6.0)(layers.BatchNormalization(epsilon=1e-3, name=f"b{k}_bn1")(h))
            h = layers.Conv2D(c_out, 1, use_bias=False, name=f"b{k}_project")(h)
            h = layers.BatchNormalization(epsilon=1e-3, name=f"b{k}_bn2")(h)
            x = layers.Add(name=f"b{k}_add")([h, x]) if s_ == 1 and ci == c_out else h
            outputs[k] = x
            k += 1
    return outputs


def efficientnet_lite0_unet(*, input_size=(224, 224), in_channels: int = 1, out_channels: int = 2, last_block: int = 10,
                            decoder_filters=(64, 48, 32, 16), dropout: float = 0.1, name: str = "effnet_unet",
                            mixed_precision=False):
    """A U-Net whose encoder is EfficientNet-Lite0 (stem and blocks 0 to ``last_block``).

    Grey input is repeated to the three channels the backbone expects. The decoder doubles the
    size four times with bilinear upsampling, each followed by the encoder's features of that
    size (blocks 4, 2, 0; the input at full size) and two 3 x 3 convolutions with batch
    normalisation and ReLU; a 1 x 1 convolution and softmax give the classes. The encoder's
    layers carry the names of :func:`efficientnet_lite0_features`, so the ImageNet weights of
    ``busi_effnet`` load into them by name (:func:`load_effnet_weights`). As in
    :func:`medlab.models.unet`, the encoder's output is the layer ``'bottleneck'`` (the default
    of :func:`medlab.models.grad_cam`) and the dropout layers are :class:`medlab.models.MCDropout`
    (for :func:`medlab.models.mc_dropout`).

    Parameters
    ----------
    input_size : (height, width)
        Multiples of 16.
    in_channels : {1, 3}
        Grey (z-scored) or RGB input.
    out_channels : int
        Classes, background included.
    last_block : int
        The encoder's last block (7 or 10 end the stride-16 stages with 80 or 112 channels).
    decoder_filters : four ints
        Filters of the decoder levels, coarsest first.
    dropout : float
        Dropout after the encoder and each decoder level (for :func:`medlab.models.mc_dropout`).
    mixed_precision : bool
        Must be False (``'auto'`` is taken as False): the network is built in float32.
    """
    from ._backend import keras as _keras
    from .networks import MCDropout

    keras = _keras()
    layers = keras.layers
    size = tuple(int(check_int("input_size", v, minimum=16)) for v in input_size)
    if len(size) != 2 or any(v % 16 for v in size):
        raise ValueError(f"`input_size` must be (height, width), multiples of 16; got {input_size!r}")
    if in_channels not in (1, 3):
        raise ValueError(f"`in_channels` must be 1 (grey) or 3 (RGB); got {in_channels!r}")
    check_int("last_block", last_block, minimum=4)
    if mixed_precision is True:
        raise ValueError("`mixed_precision` must be False for efficientnet_lite0_unet (built in float32)")
    if last_block > 10:
        raise ValueError(f"`last_block` must be 4-10 (the encoder stops at stride 16); got {last_block!r}")
    if len(decoder_filters) != 4:
        raise ValueError(f"`decoder_filters` must be four filter counts; got {decoder_filters!r}")
    inp = keras.Input((*size, in_channels))
    rgb = layers.Concatenate(name="grey_to_rgb")([inp, inp, inp]) if in_channels == 1 else inp
    blocks = _effnet_trunk(rgb, last_block)
    x = layers.Identity(name="bottleneck")(blocks[last_block])  # the default Grad-CAM layer
    if dropout:
        x = MCDropout(dropout, name="bottleneck_dropout")(x)
    for level, (skip, filters) in enumerate(zip((blocks[4], blocks[2], blocks[0], inp), decoder_filters)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skip])
        for j in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"dec{level}_conv{j}")(x)
            x = layers.ReLU()(layers.BatchNormalization(name=f"dec{level}_bn{j}")(x))
        if dropout:
            x = MCDropout(dropout, name=f"dec{level}_dropout")(x)
    out = layers.Conv2D(out_channels, 1, name="logits")(x)
    out = layers.Activation("softmax", dtype="float32", name="probabilities")(out)
    return keras.Model(inp, out, name=name)


def load_effnet_weights(model, source) -> int:
    """Copy the EfficientNet-Lite0 layers' weights of ``source`` (e.g. ``pretrained('busi_effnet')``'s
    network) into the layers of ``model`` with the same names; returns how many layers got them."""
    def walk(m):
        for layer in m.layers:
            yield layer
            if hasattr(layer, "layers"):
                yield from walk(layer)

    theirs = {layer.name: layer for layer in walk(source)}
    n = 0
    for layer in model.layers:
        if re.fullmatch(r"stem_(conv|bn)|b\d+_(expand|dw|project|bn\d)", layer.name) and layer.name in theirs:
            layer.set_weights([np.asarray(w, dtype=np.float32) for w in theirs[layer.name].get_weights()])
            n += 1
    return n


def efficientnet_lite0_features(*, input_size=(224, 224), blocks=(7, 10, 14), name: str = "efficientnet_lite0"):
    """The EfficientNet-Lite0 backbone up to the last block asked for, as globally pooled features.

    The layer names are those ``tools/busi_experiments.py`` converts the ImageNet weights into
    (stem, then ``b{k}_expand``, ``b{k}_dw``, ``b{k}_project`` and their batch normalisations,
    blocks ``k = 0..15``). Convolutions use TensorFlow's "same" padding, as the original network.

    Parameters
    ----------
    input_size : (height, width)
        Pixels; the network's input is RGB scaled to [-1, 1] (``(value - 127) / 128`` of 8-bit
        pixels).
    blocks : sequence of int
        Blocks (0-15) whose outputs are pooled (global average and global maximum over the
        image, concatenated in this order).
    name : str
        The Keras model's name.

    Returns
    -------
    keras.Model
        ``(batch, height, width, 3)`` -> ``(batch, 2 * sum of the blocks' channels)``.
    """
    from ._backend import keras as _keras

    keras = _keras()
    layers = keras.layers
    size = tuple(int(check_int("input_size", v, minimum=32)) for v in input_size)
    if len(size) != 2:
        raise ValueError(f"`input_size` must be (height, width); got {input_size!r}")
    blocks = [check_int("blocks", b, minimum=0) for b in blocks]
    if not blocks or max(blocks) >= N_EFFNET_BLOCKS:
        raise ValueError(f"`blocks` must be block indices 0-{N_EFFNET_BLOCKS - 1}; got {blocks!r}")
    inp = keras.Input((*size, 3))
    outputs = _effnet_trunk(inp, max(blocks))
    pooled = [p(outputs[b]) for b in blocks
              for p in (layers.GlobalAveragePooling2D(name=f"avg{b}"), layers.GlobalMaxPooling2D(name=f"max{b}"))]
    return keras.Model(inp, layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0], name=name)


_FLIP = {}


def _flip_layer():
    """A Keras layer that mirrors images left-right (registered once, so saved models reload)."""
    if "cls" not in _FLIP:
        from ._backend import keras as _keras

        keras = _keras()

        @keras.saving.register_keras_serializable(package="medlab")
        class FlipLeftRight(keras.layers.Layer):
            def call(self, x):
                return keras.ops.flip(x, axis=2)

        _FLIP["cls"] = FlipLeftRight
    return _FLIP["cls"]


def busi_effnet(*, input_size=(224, 224), blocks=(7, 10, 14), num_classes: int = 2, flip_average: bool = True,
                mixed_precision=False, name: str = "busi_effnet"):
    """Breast-ultrasound classifier: frozen EfficientNet-Lite0 features and a linear head.

    8-bit RGB (or grey repeated) pixels are scaled to [-1, 1], the backbone's pooled features
    (:func:`efficientnet_lite0_features`) are averaged over the image and its mirror image when
    ``flip_average``, and one dense softmax layer gives the class probabilities.
    ``tools/busi_experiments.py`` fits that layer as a logistic regression (the feature
    standardisation folded into its weights).

    Parameters
    ----------
    input_size : (height, width)
        Pixels the images are resampled to.
    blocks : sequence of int
        Backbone blocks whose pooled outputs are the features.
    num_classes : int
        Outputs (2: benign, malignant).
    flip_average : bool
        Average the features of the image and of its left-right mirror image.
    mixed_precision : bool
        Accepted for the pretrained-model loader; must be False (float32).
    name : str
        The Keras model's name.

    Returns
    -------
    keras.Model
        ``(batch, height, width, 3)`` of raw 0-255 pixels -> ``(batch, num_classes)`` probabilities.
    """
    from ._backend import keras as _keras

    keras = _keras()
    layers = keras.layers
    if mixed_precision:
        raise ValueError("`mixed_precision` must be False for busi_effnet (its linear head is fitted in float32)")
    check_int("num_classes", num_classes, minimum=2)
    backbone = efficientnet_lite0_features(input_size=input_size, blocks=blocks)
    inp = keras.Input((*backbone.input_shape[1:3], 3))
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="to_unit_range")(inp)
    f = backbone(x)
    if flip_average:
        f = layers.Average(name="flip_average")([f, backbone(_flip_layer()(name="flip")(x))])
    out = layers.Dense(num_classes, activation="softmax", name="head")(f)
    return keras.Model(inp, out, name=name)
