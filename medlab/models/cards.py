"""Model cards and input checks for trained models (no Keras needed).

A pretrained model's ``info`` (written by ``tools/train_pretrained.py``) says what it was
trained on, how it was split, what it is for, how well it does on held-out data by subgroup,
how it fails and what its quality flags mean. :func:`card` renders that as Markdown or HTML (a
notebook shows it by displaying the model; ``ModelRunner`` and the napari runner can show
``card(model, format='html')``).

:func:`check_input` compares an image with the images the model was trained on
(``info['input_domain']``: channels, size, aspect ratio, pixel spacing, intensity range) and
with the task it is asked for (``info['task_tag']``). :func:`medlab.models.segment` and
:func:`medlab.models.classify` call it and warn with :class:`ModelInputWarning`; asking for
another task raises ``ValueError``.
"""

from __future__ import annotations

import html
import math

import numpy as np
from medlab._image import count_nonfinite
from medlab._options import check_choice

__all__ = ["card", "check_input", "input_domain", "ModelInputWarning"]


class ModelInputWarning(UserWarning):
    """An image does not look like the images a model was trained on (another modality, task,
    size or pixel spacing); the model's output on it is not to be trusted."""


# --------------------------------------------------------------------------- input domain


def _stats(image):
    import SimpleITK as sitk

    if isinstance(image, sitk.Image):
        arr = sitk.GetArrayViewFromImage(image)
        comps = image.GetNumberOfComponentsPerPixel()
        spacing = tuple(image.GetSpacing()[::-1])
    else:
        arr = np.asarray(image)
        comps = arr.shape[-1] if arr.ndim == 3 and arr.shape[-1] in (3, 4) else 1
        spacing = None
    shape = arr.shape[:-1] if comps > 1 else arr.shape
    if comps > 1:
        rgb = np.asarray(arr[..., :3], np.float32)
        grey_rgb = bool(np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 0], rgb[..., 2]))
    else:
        grey_rgb = True
    nonfinite = count_nonfinite(arr, vector=comps > 1)
    values = arr if not nonfinite else arr[np.isfinite(arr)]
    return {"shape": tuple(int(s) for s in shape), "components": int(comps), "colour": not grey_rgb,
            "spacing": spacing, "nonfinite": nonfinite,
            "max": float(np.max(values)) if values.size else math.nan,
            "min": float(np.min(values)) if values.size else math.nan}


def _content(image) -> tuple[int, bool]:
    """``(non-finite pixels, constant)`` of an image: with either, it holds nothing to measure or
    classify (:func:`medlab.models.classify` gives NaN, :func:`medlab.models.measure_head` no HC)."""
    s = _stats(image)
    return s["nonfinite"], not s["max"] > s["min"]


def input_domain(images, *, spacing_known: bool = True) -> dict:
    """The range of the training images, for :func:`check_input`: sizes, aspect ratios (width
    / height), colour, pixel spacing (mm, when ``spacing_known``) and intensity range.

    Parameters
    ----------
    images : sequence of sitk.Image or ndarray
        The training images.
    spacing_known : bool
        Record the pixel spacing range (False: the images' spacing means nothing).
    """
    st = [_stats(im) for im in images]
    if not st:
        raise ValueError("`images` is empty")
    h = [s["shape"][-2] for s in st]
    w = [s["shape"][-1] for s in st]
    aspect = [b / a for a, b in zip(h, w, strict=True)]
    out = {"ndim": len(st[0]["shape"]), "height_px": [min(h), max(h)], "width_px": [min(w), max(w)],
           "aspect": [round(min(aspect), 3), round(max(aspect), 3)], "colour": any(s["colour"] for s in st),
           "intensity": [min(s["min"] for s in st), max(s["max"] for s in st)]}
    if spacing_known and all(s["spacing"] is not None for s in st):
        px = [math.sqrt(s["spacing"][-1] * s["spacing"][-2]) for s in st]
        out["pixel_mm"] = [round(min(px), 4), round(max(px), 4)]
    return out


def check_input(model, image, *, task: str | None = None) -> list:
    """Reasons why ``image`` is outside ``model``'s training domain (empty: none found).

    Checks against ``model.info['input_domain']`` (see :func:`input_domain`): the number of
    spatial dimensions, colour (a colour image for a model trained on grey ones), aspect ratio
    outside the training range widened by 15 %, size below half the smallest or above twice
    the largest training size, pixel spacing outside the training range widened by a factor
    1.5 (a spacing of exactly 1 mm usually means none was set), intensities all constant.

    Parameters
    ----------
    model : TrainedModel
    image : sitk.Image or ndarray
    task : str, optional
        What the caller wants (e.g. ``'fetal head segmentation'``); must equal
        ``model.info['task_tag']`` when the model has one.

    Raises
    ------
    ValueError
        ``task`` is not the model's task.
    """
    info = getattr(model, "info", None) or {}
    tag = info.get("task_tag")
    if task is not None and tag is not None and task != tag:
        raise ValueError(f"`model` {info.get('name', '')!r} is for {tag!r}, not {task!r}: refusing to run it")
    dom = info.get("input_domain")
    if not dom:
        return []
    s = _stats(image)
    reasons = []
    if len(s["shape"]) != dom["ndim"]:
        reasons.append(f"{len(s['shape'])}D image; trained on {dom['ndim']}D")
        return reasons
    if s["nonfinite"]:
        reasons.append(f"{s['nonfinite']} pixels are not finite (NaN or inf)")
    if s["max"] == s["min"]:
        reasons.append("constant image (all pixels equal)")
    if s["colour"] and not dom.get("colour", False):
        reasons.append("colour image; trained on grey images")
    h, w = s["shape"][-2], s["shape"][-1]
    lo, hi = dom["aspect"]
    if not lo / 1.15 <= w / h <= hi * 1.15:
        reasons.append(f"aspect ratio (width/height) {w / h:.2f} outside the training range {lo:.2f}-{hi:.2f}")
    if h < dom["height_px"][0] / 2 or w < dom["width_px"][0] / 2:
        reasons.append(f"{h} x {w} pixels, under half the smallest training image "
                       f"({dom['height_px'][0]} x {dom['width_px'][0]})")
    if h > 2 * dom["height_px"][1] or w > 2 * dom["width_px"][1]:
        reasons.append(f"{h} x {w} pixels, over twice the largest training image "
                       f"({dom['height_px'][1]} x {dom['width_px'][1]})")
    if "pixel_mm" in dom:
        if s["spacing"] is None:
            reasons.append("no pixel spacing (a numpy array); the model was trained on images with one")
        else:
            px = math.sqrt(s["spacing"][-1] * s["spacing"][-2])
            lo, hi = dom["pixel_mm"]
            if not lo / 1.5 <= px <= hi * 1.5:
                hint = " (1 mm: was the spacing set?)" if px == 1.0 else ""
                reasons.append(f"pixel size {px:.3g} mm outside the training range {lo:.3g}-{hi:.3g} mm{hint}")
    return reasons


# -------------------------------------------------------------------------------- card


def _fmt(v, nd=2):
    if v is None:  # a number that could not be measured (stored as null)
        return "n/a"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.{nd}f}"
    return str(v)


def _ci(block, key, ci_key, unit=""):
    v = block.get(key)
    ci = block.get(ci_key)
    if v is None:
        return "n/a"
    text = f"{_fmt(v)}{unit}"
    if ci and all(isinstance(c, int | float) and math.isfinite(c) for c in ci):
        text += f" ({_fmt(ci[0])}-{_fmt(ci[1])})"
    return text


def _performance_rows(info) -> tuple[list, list]:
    """Header and rows of the held-out performance table, per subgroup."""
    test = info.get("test") or {}
    if "overall" in test:  # segmentation + measurement (HC18)
        header = ["subgroup", "images", "subjects", "MAD mm (95 % CI)", "median mm", "bias mm", "% of HC",
                  "outline px", "within 2 mm", "Dice", "unflagged: images, MAD mm"]
        rows = []
        for name, b in [("all", test["overall"]), *[(f"HC {k} mm", v) for k, v in test.get("bands", {}).items()]]:
            rows.append([name, b.get("n_images"), b.get("n_subjects"), _ci(b, "mad_mm", "mad_ci95_mm"),
                         _fmt(b.get("median_abs_err_mm", math.nan)), _fmt(b.get("bias_mm", math.nan)),
                         _fmt(b.get("mape_pct", math.nan)), _fmt(b.get("mad_radius_px", math.nan)),
                         f"{b.get('within_2mm', math.nan):.0%}", _fmt(b.get("dice_mean", math.nan), 3),
                         f"{b['n_unflagged']}, {_fmt(b['mad_unflagged_mm'])}" if "n_unflagged" in b else "n/a"])
        return header, rows
    if "auc_malignant_vs_benign" in test:  # classification (BUSI)
        header = ["subgroup", "images", "ROC AUC (95 % CI)", "accuracy"]
        rows = [["malignant vs benign", test["n_per_class"].get("benign", 0) + test["n_per_class"].get("malignant", 0),
                 _ci(test, "auc_malignant_vs_benign", "auc_malignant_vs_benign_ci95"),
                 "n/a" if "auc_malignant_vs_rest" in test else _fmt(test.get("accuracy", math.nan), 3)]]
        if "auc_malignant_vs_rest" in test:  # a model with a 'normal' class (busi_resnet)
            rows.append(["malignant vs rest", test.get("n_images"),
                         _ci(test, "auc_malignant_vs_rest", "auc_malignant_vs_rest_ci95"),
                         _fmt(test.get("accuracy", math.nan), 3)])
        n_lesions = rows[0][1]
        op = test.get("operating_point") or {}
        where = (f" (threshold p_malignant >= {_fmt(op['threshold_p_malignant'], 3)}, chosen on {op.get('chosen_on', '?')} "
                 f"for {op.get('target_sensitivity', math.nan):.0%} sensitivity)") if op else ""
        for k, label in (("sensitivity_at_op", "sensitivity" + where), ("specificity_at_op", "specificity" + where)):
            if k in test:
                rows.append([label, n_lesions, _ci(test, k, f"{k}_ci95"), ""])
        if "ece" in test:
            rows.append(["expected calibration error (p_malignant, lesions)", n_lesions, _fmt(test["ece"], 3), ""])
        for name, b in (test.get("subgroups") or {}).items():  # subgroups of the test lesions, same threshold
            rows.append([f"{name}: ROC AUC", b.get("n_lesions"), _ci(b, "auc", "auc_ci95"), ""])
            rows.append([f"{name}: sensitivity / specificity", b.get("n_lesions"),
                         f"{_ci(b, 'sensitivity', 'sensitivity_ci95')} / {_ci(b, 'specificity', 'specificity_ci95')}", ""])
        return header, rows
    return [], []


def _sections(model) -> list:
    """``[(title, kind, content)]``; kind 'text', 'list' or 'table' ((header, rows))."""
    info = getattr(model, "info", None) or {}
    name = info.get("name", getattr(getattr(model, "model", None), "name", "model"))
    out = [("title", "text", f"Model card: {name}")]
    summary = [f"Task: {getattr(model, 'task', '?')} ({info.get('task_tag', 'no task tag')}); "
               f"classes: {', '.join(getattr(model, 'classes', ()))}.",
               f"Input: {'x'.join(str(s) for s in (model.input_size or ()))} grid, "
               f"{model.channels} channel(s), {model.normalization} normalisation."]
    bb = info.get("backbone") or {}
    if bb:  # busi_effnet: a pretrained backbone from a package, converted; where it came from
        summary.append(f"Backbone: {bb.get('network', '?')}; from the package {bb.get('package', '?')} "
                       f"{bb.get('version', '?')} ({bb.get('licence', '?')}).")
    refine = info.get("refine") or {}
    if refine:  # hc18_unet: a second network looks again at a crop around the head (measure_head)
        size = refine.get("builder", {}).get("kwargs", {}).get("input_size", "?")
        secs = (refine.get("training") or {}).get("seconds", "?")
        summary.append(f"Second pass: a crop {refine.get('margin', '?')} times the head's major axis on a "
                       f"{'x'.join(str(s) for s in size) if isinstance(size, list) else size} grid "
                       f"(trained {secs} s).")
    out.append(("Model", "list", summary))
    out.append(("Intended use", "text", info.get("intended_use", "not stated")))
    data = [info.get("data", "not stated")]
    split = info.get("split") or {}
    if split:
        parts = ", ".join(f"{k[2:]} {v}" for k, v in split.items() if k.startswith("n_") and not k.startswith("n_subjects")
                          and isinstance(v, int))
        data.append(f"Split: {split.get('function', '?')} (seed {split.get('seed', '?')}"
                    f"{', stratified by ' + split['stratified_by'] if split.get('stratified_by') else ''}): {parts}.")
    dev = info.get("dev_cv") or {}
    if dev:  # busi_effnet: fitted on train + val; its cross-validation there (chose the method)
        data.append(f"Cross-validation on the data that chose the method ({dev.get('n_lesions', '?')} lesions, "
                    f"out-of-fold): ROC AUC {_ci(dev, 'auc_malignant_vs_benign', 'auc_bootstrap_ci95')}, "
                    f"nested {_fmt(dev.get('nested_cv_auc', math.nan))}; optimistic, not a held-out estimate.")
    tr = info.get("training") or {}
    if tr:
        data.append(f"Training: {tr.get('seconds', '?')} s on {tr.get('machine', '?')} ({tr.get('backend', '?')}).")
    out.append(("Training data and split", "list", data))
    header, rows = _performance_rows(info)
    if rows:
        out.append(("Performance on held-out data (test part; never used for any choice)", "table", (header, rows)))
    qc = info.get("qc") or {}
    if qc:
        items = [f"{k} = {v}" for k, v in (qc.get("thresholds") or {}).items()]
        items.append(f"Chosen on: {qc.get('chosen_on', '?')}; rule: {qc.get('rule', '?')}.")
        tq = (info.get("test") or {}).get("qc") or {}
        if tq:
            items.append(f"On the test part: {tq['share_flagged']:.0%} flagged; MAD flagged {_fmt(tq['mad_flagged_mm'])} mm "
                         f"vs unflagged {_fmt(tq['mad_unflagged_mm'])} mm; {_fmt(tq['large_errors_flagged'] * 100, 0)} % "
                         f"of the errors above {tq['large_error_mm']:g} mm flagged.")
        out.append(("Quality flags (what a flag means)", "list",
                    ["A flagged result is not to be used without a look at its outline: "
                     + "; ".join(qc.get("meaning", [])) if qc.get("meaning") else "A flagged result needs review."] + items))
    modes = info.get("failure_modes") or []
    if modes:
        out.append(("Known failure modes", "list", modes))
    dom = info.get("input_domain")
    if dom:
        out.append(("Inputs it was trained on (checked on every call)", "list", [f"{k}: {v}" for k, v in dom.items()]))
    return out


def card(model, *, format: str = "markdown") -> str:
    """The model card of a trained model, from its ``info``.

    Parameters
    ----------
    model : TrainedModel
    format : {'markdown', 'html'}

    Returns
    -------
    str
    """

    check_choice("format", format, ("markdown", "html"))
    parts = []
    for title, kind, content in _sections(model):
        if title == "title":
            parts.append(f"### {content}" if format == "markdown" else f"<h3>{html.escape(content)}</h3>")
            continue
        parts.append(f"**{title}**" if format == "markdown" else f"<p><b>{html.escape(title)}</b></p>")
        if kind == "text":
            parts.append(content if format == "markdown" else f"<p>{html.escape(content)}</p>")
        elif kind == "list":
            if format == "markdown":
                parts.append("\n".join(f"- {c}" for c in content))
            else:
                parts.append("<ul>" + "".join(f"<li>{html.escape(str(c))}</li>" for c in content) + "</ul>")
        else:
            header, rows = content
            if format == "markdown":
                lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
                parts.append("\n".join(lines))
            else:
                head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n\n".join(parts) + "\n"
