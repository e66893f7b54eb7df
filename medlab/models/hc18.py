"""Fetal head circumference from a segmentation (HC18 challenge, van den Heuvel et al. 2018).

The sonographer's head circumference (HC) in HC18 is the perimeter of an ellipse fitted to the
skull. Here an ellipse is fitted to the sub-pixel boundary (the 0.5 level contour) of the head
mask or of the predicted head probability, in millimetres, and its perimeter is computed with
Ramanujan's second approximation: the generic geometry is :func:`medlab.segmentation.fit_ellipse`,
:func:`~medlab.segmentation.ellipse_circumference` and :func:`~medlab.segmentation.ellipse_residual`,
with two fits (``method``): ``'opencv'`` (default; algebraic least squares, Fitzgibbon & Fisher
1995) and ``'skimage'`` (total least squares, Halir & Flusser 1998).

``evaluate_hc18`` reports both, on the reference masks (how well a fit reproduces the
sonographer's value from a perfect mask) and on the network's predictions. OpenCV's algebraic fit
is pulled less by the uneven boundaries of poor segmentations, which dominate the mean error, so
it is the default; the shipped model's numbers for both are in ``pretrained('hc18_unet').info``.

Partial skulls. A head cut by the image border has a boundary that runs along the border; those
points are the image edge, not the skull, and are left out of the fit (``exclude_border`` of
:func:`~medlab.segmentation.fit_ellipse`), so the ellipse is fitted to the visible arc and
continues beyond the image.

Second pass. The whole 540 x 800 frame on the network's coarse grid shows a small head with
few grid pixels. A model with ``info['refine']`` (the pretrained ``hc18_unet``) looks again at
a square crop around the first ellipse (:func:`head_crop`, a fixed multiple of its major axis),
with a network trained on such crops, so every head fills its crop alike; its outline sits a
fraction of a crop pixel outside the mask's, an offset chosen on the validation part
(``info['refine']['offset_crop_px']``, ``tools/train_pretrained.py``). Its HC is then corrected
by a small relative amount that depends on the pixel size, the head size and how blurred its
outline is (:func:`outline_correction`, fitted on the training part's measurements,
``info['refine']['correction']``).

Quality control. :func:`measure_head` returns every head circumference with a verdict
(:class:`HeadQC`): the residual of the ellipse fit, the share of the outline on the image
border, the spread of the HC over four flipped passes of the network (test-time augmentation),
the change of the HC between the first and the second pass, the plausibility of the size
for the pixel spacing, and the expected error (:func:`expected_error`): a gamma regression of the
absolute error on the pixel size, the HC and those stability measures plus the level spread of
the second pass (how far its 0.25 and 0.75 outlines lie apart), fitted on measurements of the
training part (:func:`fit_error_model`). The thresholds of a pretrained model
were chosen on the validation part of :func:`hc18_split` (:func:`choose_qc_thresholds`) and are
stored in its ``info['qc']`` (with its ``error_model``); :func:`hc18_summary` reports how the
flags separate the errors.

Boundary offset. The HC18 head masks include the drawn ellipse line, so their boundary lies
outside the sonographer's ellipse, by a nearly constant number of pixels (independent of the
pixel size). The perimeter of a convex curve moved inwards by ``d`` shrinks by exactly
``2 pi d``, so :func:`head_circumference` subtracts ``2 pi * boundary_offset_px * pixel size``;
:data:`HC18_BOUNDARY_OFFSET_PX` is that calibration, measured on the training masks of
:func:`hc18_split` (``tools/train_pretrained.py`` stores the value it measured in the model's
``info``). A network trained on these masks learns the same boundary, so the same correction
applies to its predictions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, grey_image, spacing_zyx
from medlab._options import check_choice
from medlab.segmentation import ELLIPSE_METHODS, Ellipse, ellipse_residual, fit_ellipse

from .cards import _content

__all__ = [
    "HC18_BOUNDARY_OFFSET_PX",
    "head_circumference",
    "subject_of",
    "hc18_split",
    "hc_band",
    "HC_BANDS_MM",
    "evaluate_hc18",
    "measure_head",
    "head_crop",
    "head_qc",
    "hc18_summary",
    "choose_qc_thresholds",
    "HeadQC",
    "HeadMeasurement",
    "HC18_QC",
    "QC_REASONS",
    "ERROR_MODEL_FEATURES",
    "expected_error",
    "fit_error_model",
    "CORRECTION_FEATURES",
    "outline_correction",
    "fit_outline_correction",
]

# measured on the 604 training masks of hc18_split(seed=0): median 1.39 px (mean 1.40, sd 0.06)
HC18_BOUNDARY_OFFSET_PX = 1.39


def head_circumference(mask, *, method: str = "opencv", spacing=None, boundary_offset_px: float = 0.0) -> float:
    """Head circumference in mm: the perimeter of :func:`medlab.segmentation.fit_ellipse` on ``mask``, less
    ``2 pi * boundary_offset_px * pixel size`` (the mask boundary lies that far outside the
    skull's ellipse; :data:`HC18_BOUNDARY_OFFSET_PX` for HC18 masks and models trained on them).

    Parameters
    ----------
    mask : sitk.Image or (M, N) ndarray
        A head mask or probability map.
    method : str
        The ellipse fit (:data:`medlab.segmentation.ELLIPSE_METHODS`).
    spacing : sequence of float, optional
        Pixel size in mm of numpy input (array axis order).
    boundary_offset_px : float
        How far (pixels) the mask boundary lies outside the skull's ellipse.
    """
    sp = spacing_zyx(mask, spacing)
    pixel_mm = math.sqrt(sp[0] * sp[1])
    return fit_ellipse(mask, method=method, spacing=spacing).circumference_mm - 2 * math.pi * boundary_offset_px * pixel_mm


# ------------------------------------------------------------------------- HC18 evaluation


def subject_of(case: str) -> str:
    """Subject of an HC18 case id: its first three digits (``'010_2HC'`` -> ``'010'``)."""
    return case[:3]


# head-circumference strata of hc18_split: equal-width 25 mm bands from 25 to 375 mm (HC18: 44-346)
_HC_STRATA_MM = np.arange(50.0, 375.0, 25.0)
# the bands reported separately (van den Heuvel 2018 report by trimester; these are the issue's)
HC_BANDS_MM = (150.0, 250.0)


def hc_band(hc_mm) -> np.ndarray:
    """Band of each head circumference: ``'<150'``, ``'150-250'`` or ``'>250'`` (mm).

    Parameters
    ----------
    hc_mm : float or array_like of float
        Head circumferences in mm.

    Returns
    -------
    numpy.ndarray of str
        One band name per value (1-D, also for a scalar); a value of exactly 150 or 250 mm is in
        the middle band.

    Examples
    --------
    >>> from medlab.models import hc_band
    >>> hc_band([120.0, 150.0, 250.0, 300.0]).tolist()
    ['<150', '150-250', '150-250', '>250']
    """
    hc = np.atleast_1d(np.asarray(hc_mm, float))
    lo, hi = HC_BANDS_MM
    return np.where(hc < lo, f"<{lo:g}", np.where(hc <= hi, f"{lo:g}-{hi:g}", f">{hi:g}"))


def hc18_split(*, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0) -> dict:
    """Seeded train/validation/test split of the HC18 cases by subject, stratified by head size.

    HC18 is ordered by gestational age (head circumference rises with the subject number), so a
    split by subject range would be a split by age. Here every subject (first three digits of
    the case id) is in one part only, and the parts hold the same share of each 25 mm band of the
    sonographer's head circumference (:func:`medlab.models.grouped_split` with the band as the
    label), so validation and test cover every trimester.

    Parameters
    ----------
    val_fraction, test_fraction : float
        Shares of the validation part (choices: calibration, QC thresholds) and of the test part
        (reported only); ``test_fraction=0`` gives no test part.
    seed : int

    Returns
    -------
    dict
        ``{'train': [...], 'val': [...], 'test': [...]}``, sorted case ids. The split is made
        over all cases of the data set; on a machine that holds only the embedded sample
        (:func:`medlab.datasets.data_source`), each part lists only the sample's cases.
    """
    from medlab import datasets

    from .data import grouped_split

    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1 or (name == "val_fraction" and value == 0):
            raise ValueError(f"`{name}` must be in {'(0, 1)' if name == 'val_fraction' else '[0, 1)'}; got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"`val_fraction` + `test_fraction` must be < 1; got {val_fraction + test_fraction!r}")
    # the split is one of the whole data set, whatever this machine holds: on the embedded sample
    # each part keeps only the sample's cases, so a sample case is never called held out when the
    # full split (the one the pretrained model was trained on) put it in training
    cases = list(datasets.cases("hc18", source="full"))
    available = set(datasets.cases("hc18"))
    hc = _hc_of(cases)
    strata = np.digitize(hc, _HC_STRATA_MM)
    fractions = [1 - val_fraction - test_fraction, val_fraction] + ([test_fraction] if test_fraction > 0 else [])
    parts = grouped_split([subject_of(c) for c in cases], strata, fractions=fractions, seed=seed)
    names = ("train", "val", "test")
    out = {names[k]: sorted(cases[i] for i in idx if cases[i] in available) for k, idx in enumerate(parts)}
    out.setdefault("test", [])
    return out


def _hc_of(cases) -> np.ndarray:
    """Sonographer's head circumference (mm) of HC18 cases, from the data set's table only."""
    return _hc18_table(cases)[0]


def _hc18_table(cases) -> tuple[np.ndarray, np.ndarray]:
    """Sonographer's HC (mm) and pixel size (mm) of HC18 cases, from the data set's table only."""
    import csv

    from medlab import datasets

    root = datasets.fetch("hc18", ["training_set_pixel_size_and_HC.csv"], progress=False)
    with open(root / "training_set_pixel_size_and_HC.csv", newline="", encoding="utf-8") as fh:
        rows = {r[0]: r for r in csv.reader(fh)}
    return (np.array([float(rows[f"{c}.png"][2]) for c in cases]),
            np.array([float(rows[f"{c}.png"][1]) for c in cases]))


def hc18_reference_repeatability(cases=None):
    """How far apart the sonographer's HC lies on two images of one fetus from one examination.

    HC18 holds several images of some subjects (``010_HC``, ``010_2HC``: captured in the same
    examination). Their reference HCs differ by the plane chosen, the moment and where the
    ellipse was drawn: a scale for what agreement with a single annotation can mean. The
    difference is given in mm, in % of the pair's mean HC and as an outline shift in pixels
    (``|difference| / (2 pi pixel size)``), by band of the pair's mean HC.

    Parameters
    ----------
    cases : sequence of str, optional
        HC18 case ids (default: every case this machine holds).

    Returns
    -------
    pandas.DataFrame
        One row per pair of images of one subject: ``subject``, ``case_a``, ``case_b``,
        ``hc_a_mm``, ``hc_b_mm``, ``abs_diff_mm``, ``abs_diff_pct``, ``abs_diff_radius_px``, ``band``.
    """
    import itertools

    import pandas as pd

    from medlab import datasets

    cases = sorted(datasets.cases("hc18") if cases is None else cases)
    hc, px = _hc18_table(cases)
    by_subject: dict = {}
    for i, c in enumerate(cases):
        by_subject.setdefault(subject_of(c), []).append(i)
    rows = []
    for subject, idx in by_subject.items():
        for i, j in itertools.combinations(idx, 2):
            d, mean_hc = abs(hc[i] - hc[j]), (hc[i] + hc[j]) / 2
            rows.append({"subject": subject, "case_a": cases[i], "case_b": cases[j], "hc_a_mm": hc[i], "hc_b_mm": hc[j],
                         "abs_diff_mm": d, "abs_diff_pct": 100 * d / mean_hc,
                         "abs_diff_radius_px": d / (2 * math.pi * (px[i] + px[j]) / 2),
                         "band": str(hc_band(mean_hc)[0])})
    return pd.DataFrame(rows, columns=["subject", "case_a", "case_b", "hc_a_mm", "hc_b_mm", "abs_diff_mm",
                                       "abs_diff_pct", "abs_diff_radius_px", "band"])


# --------------------------------------------------------------------- measurement with QC

# Quality-control thresholds of measure_head. The defaults are placeholders for a model without
# its own; a pretrained model carries the values chosen on its validation split in info["qc"].
HC18_QC = {
    "max_fit_residual": 0.02,     # RMS radial distance of the outline from its ellipse / mean radius
    "max_border_share": 0.0,      # share of the outline on the image border (a head cut by it)
    "max_tta_spread": 0.02,       # (max - min) / mean HC over the flipped passes
    "max_pass_change": 0.02,      # |second pass - first pass| / first pass HC (a model with a second pass)
    "max_expected_error_mm": math.inf,  # the error model's expected |HC error| (a model with info['qc']['error_model'])
    "hc_range_mm": (40.0, 400.0),  # fetal heads from 11 weeks to term (HC18: 44-346 mm)
    "min_hc_px": 150.0,           # an outline shorter than this many pixels is too coarse to measure
}
QC_REASONS = {
    "no_head": "no head found",
    "blank": "blank image (constant intensity)",
    "nonfinite": "{nonfinite_px} pixels are not finite (NaN or inf): a damaged image or a wrong conversion",
    "fit_residual": "outline is not elliptic (fit residual {fit_residual:.3f} > {max_fit_residual:g})",
    "border": "head cut by the image border ({border_share:.0%} of its outline)",
    "tta_spread": "unstable under flips: HC varies by {tta_spread:.1%} (> {max_tta_spread:.1%})",
    "pass_change": "the two passes disagree: HC changes by {pass_change:.1%} (> {max_pass_change:.1%})",
    "expected_error": "large expected error: {expected_error_mm:.1f} mm (> {max_expected_error_mm:g} mm, from the pixel "
                      "size, the head size and the outline's stability)",
    "size_mm": "implausible size for the pixel spacing: {hc_mm:.0f} mm outside {hc_lo:g}-{hc_hi:g} mm",
    "size_px": "head too small in pixels to measure ({hc_px:.0f} px outline)",
}


class HeadQC(NamedTuple):
    """Quality verdict of one head circumference.

    ``flagged`` is True when any check failed; ``reasons`` say which, in words; the other
    fields are the measured quantities the checks use (see :data:`HC18_QC`)."""

    flagged: bool
    reasons: tuple
    fit_residual: float
    border_share: float
    tta_spread: float
    hc_px: float
    pass_change: float = 0.0
    level_spread: float = math.nan
    expected_error_mm: float = math.nan


class HeadMeasurement(NamedTuple):
    """A head circumference with its ellipse, its quality verdict and the head probability map
    (on the input grid)."""

    hc_mm: float
    ellipse: Ellipse
    qc: HeadQC
    probability: object


def _qc_thresholds(model, qc):
    out = dict(HC18_QC)
    info = getattr(model, "info", None) or {}
    out.update(info.get("qc", {}).get("thresholds", {}))
    out.update(qc or {})
    unknown = set(out) - set(HC18_QC)
    if unknown:
        raise ValueError(f"`qc` has unknown keys {sorted(unknown)}; expected some of {sorted(HC18_QC)}")
    return out


def head_qc(*, hc_mm, pixel_mm, fit_residual, border_share, tta_spread, thresholds=None, blank=False,
            pass_change=0.0, level_spread=math.nan, expected_error_mm=math.nan, nonfinite_px: int = 0) -> HeadQC:
    """The quality verdict of one head circumference from its measured quantities.

    Parameters
    ----------
    hc_mm : float
        The head circumference (NaN: no head found).
    pixel_mm : float
        Pixel size (mm).
    fit_residual, border_share, tta_spread : float
        See :class:`HeadQC`.
    thresholds : dict, optional
        Overrides of :data:`HC18_QC`.
    blank : bool
        The image has constant intensity.
    nonfinite_px : int
        How many pixels of the image are NaN or infinite (any: flagged).
    pass_change : float
        Relative change of the HC from the first to the second pass (0 without a second pass).
    level_spread : float
        ``(HC at level 0.25 - HC at level 0.75) / HC`` of the second pass's probability (how blurred
        its outline is; NaN when not measured). Not a check by itself: an input of the error model.
    expected_error_mm : float
        The expected absolute HC error (mm) from :func:`expected_error` (NaN: no error model; the
        check is then skipped).
    """
    t = {**HC18_QC, **(thresholds or {})}
    hc_px = hc_mm / pixel_mm if pixel_mm > 0 else math.nan
    values = {"fit_residual": fit_residual, "border_share": border_share, "tta_spread": tta_spread,
              "pass_change": pass_change, "hc_mm": hc_mm, "expected_error_mm": expected_error_mm,
              "hc_px": hc_px, "hc_lo": t["hc_range_mm"][0], "hc_hi": t["hc_range_mm"][1],
              "nonfinite_px": nonfinite_px, **t}
    failed = []
    if nonfinite_px:
        failed.append("nonfinite")
    if blank:
        failed.append("blank")
    if not np.isfinite(hc_mm):
        failed.append("no_head")
    else:
        if fit_residual > t["max_fit_residual"]:
            failed.append("fit_residual")
        if border_share > t["max_border_share"]:
            failed.append("border")
        if tta_spread > t["max_tta_spread"]:
            failed.append("tta_spread")
        if pass_change > t["max_pass_change"]:
            failed.append("pass_change")
        if expected_error_mm > t["max_expected_error_mm"]:
            failed.append("expected_error")
        if not t["hc_range_mm"][0] <= hc_mm <= t["hc_range_mm"][1]:
            failed.append("size_mm")
        if hc_px < t["min_hc_px"]:
            failed.append("size_px")
    reasons = tuple(QC_REASONS[k].format(**values) for k in failed)
    return HeadQC(bool(failed), reasons, float(fit_residual), float(border_share), float(tta_spread), float(hc_px),
                  float(pass_change), float(level_spread), float(expected_error_mm))


def head_crop(image: sitk.Image, ellipse: Ellipse, *, size=(192, 192), margin: float = 1.3,
              shift=(0.0, 0.0), interpolator: str = "linear") -> sitk.Image:
    """A square crop of ``image`` centred on a head ellipse, resampled to ``size`` pixels.

    The crop's side is ``margin`` times the major axis ``2a`` of ``ellipse``, so every head fills
    the crop alike whatever its size and pixel spacing (the second, finer pass of
    :func:`measure_head`). Parts of the crop outside the image are 0 (black, as the frame of
    an ultrasound image). When the crop's pixels are coarser than the image's, the image is
    smoothed first (Gaussian, sigma 0.5 crop pixel) so speckle does not alias.

    Parameters
    ----------
    image : sitk.Image
        2D scalar image (or label mask with ``interpolator='nearest'`` or 'linear' for a smooth
        mask).
    ellipse : Ellipse
        From :func:`medlab.segmentation.fit_ellipse` on this image (``centre_mm`` in the pixel grid
        times the spacing).
    size : (int, int)
        Crop size in pixels, ``(y, x)``.
    margin : float
        Crop side over the ellipse's major axis (> 1 keeps the whole head inside).
    shift : (float, float)
        Offset of the crop's centre from the ellipse's, ``(x, y)``, as a fraction of the side.
    interpolator : {'linear', 'nearest'}

    Returns
    -------
    sitk.Image
        The crop, in the physical frame of ``image`` (it resamples back onto ``image``).
    """
    check_choice("interpolator", interpolator, ("linear", "nearest"))
    if not margin > 0:
        raise ValueError(f"`margin` must be > 0; got {margin!r}")
    if not np.all(np.isfinite(ellipse.semi_axes_mm)) or not np.all(np.isfinite(ellipse.centre_mm)):
        raise ValueError("`ellipse` is not finite (no head found)")
    ny, nx = (int(s) for s in size)
    side = float(margin) * 2 * float(ellipse.semi_axes_mm[0])
    step = np.array([side / nx, side / ny])
    sp = np.array(image.GetSpacing(), float)
    centre_idx = np.asarray(ellipse.centre_mm, float) / sp + np.asarray(shift, float) * side / sp
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint(centre_idx.tolist()))
    direction = np.array(image.GetDirection()).reshape(2, 2)
    origin = centre - direction @ (step * (np.array([nx, ny]) - 1) / 2)
    src = image
    if interpolator == "linear" and step.min() > 1.5 * sp.min():
        src = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), float(0.5 * step.min()))
    interp = sitk.sitkLinear if interpolator == "linear" else sitk.sitkNearestNeighbor
    return sitk.Resample(src, [nx, ny], sitk.Transform(), interp, origin.tolist(), step.tolist(),
                         image.GetDirection(), 0.0, sitk.sitkFloat32)


def _scalar_grid(img: sitk.Image) -> sitk.Image:
    """An empty float image with the geometry of ``img`` (a target grid for resampling)."""
    ref = sitk.Image(img.GetSize(), sitk.sitkFloat32)
    ref.CopyInformation(img)
    return ref


def measure_head(model, image, *, spacing=None, method: str = "opencv", tta: bool = True,
                 boundary_offset_px: float | None = None, qc=None, batch_size: int = 8, refine: bool = True):
    """Head circumference of a fetal-head ultrasound image, with a quality-control verdict.

    The model segments the head in each of the four flips of the image (:func:`medlab.models.
    segment_flips`); the mean probability is the segmentation, its 0.5 contour (leaving out
    any part along the image border) is fitted by an ellipse in mm and corrected for the
    annotation line (:func:`head_circumference`). A model with a second pass
    (``info['refine']``, as the pretrained ``hc18_unet``) then looks again, on a square crop
    around that first ellipse (:func:`head_crop`), with a network trained on such crops: every
    head fills the crop alike, so small heads are seen on a finer grid; the same flips are
    averaged, mapped back onto the image and fitted the same way. The verdict (:func:`head_qc`) flags an outline
    that is not elliptic, a head cut by the border, an HC that changes between the flipped
    passes, and a size that is implausible for the pixel spacing (e.g. a spacing that was
    never set) or too few pixels. A blank frame, or one with NaN or infinite pixels, is
    flagged with that reason and gets no HC (NaN).

    Parameters
    ----------
    model : TrainedModel
        A fetal-head segmentation model (``pretrained('hc18_unet')``; classes background, head).
    image : sitk.Image or ndarray, or a list of them
        2D grey (or RGB) ultrasound. A numpy array needs ``spacing``.
    spacing : sequence of float, optional
        Pixel size of numpy input in mm, ``(y, x)``. Required for arrays: there is no default.
    method : {'opencv', 'skimage'}
        Ellipse fit.
    tta : bool
        Four flipped passes (False: one pass; the spread check is then skipped).
    boundary_offset_px : float, optional
        Default: the model's ``info['boundary_offset_px']``, else :data:`HC18_BOUNDARY_OFFSET_PX`.
    qc : dict, optional
        Threshold overrides (keys of :data:`HC18_QC`); default: the model's ``info['qc']``.
    batch_size : int
    refine : bool
        Run the model's second pass when it has one (False: the first pass only).

    Returns
    -------
    HeadMeasurement or list of HeadMeasurement
        ``probability`` is the head probability on the input grid (same kind as ``image``; of the
        second pass when there is one: zero outside its crop).

    Raises
    ------
    ValueError
        A numpy image without ``spacing``, an image that is not 2D, or a model that does not
        segment a head.
    """
    from .data import resample_onto
    from .inference import FLIPS, segment_flips

    check_choice("method", method, ELLIPSE_METHODS)
    if "head" not in getattr(model, "classes", ()):
        raise ValueError(f"`model` must segment a 'head' class; its classes are {getattr(model, 'classes', None)!r}")
    single = isinstance(image, sitk.Image | np.ndarray)
    items = [image] if single else list(image)
    if spacing is None and any(not isinstance(it, sitk.Image) for it in items):
        raise ValueError("`spacing` (pixel size in mm, (y, x)) is required for a numpy `image`: a head "
                         "circumference in mm needs it, and there is no safe default")
    thresholds = _qc_thresholds(model, qc)
    info = getattr(model, "info", None) or {}
    offset = info.get("boundary_offset_px", HC18_BOUNDARY_OFFSET_PX) if boundary_offset_px is None else boundary_offset_px
    head = list(model.classes).index("head")
    flips = FLIPS if tta else ((),)
    passes = segment_flips(model, items, spacing=spacing, batch_size=batch_size, flips=flips, grid="model")
    # first pass: the whole image on the model's grid
    firsts = []
    for item, probs in zip(items, passes, strict=True):
        img = as_sitk(item, spacing=spacing, vector=not isinstance(item, sitk.Image) and np.ndim(item) == 3)[0]
        heads = [sitk.VectorIndexSelectionCast(p, head) for p in probs]
        mean_grid = heads[0] if len(heads) == 1 else sitk.NaryAdd(heads) / float(len(heads))
        # the measurement on the input grid; the flipped passes are compared on the model grid
        mean = sitk.GetArrayFromImage(resample_onto(mean_grid, _scalar_grid(img)))
        fit = fit_ellipse(mean, method=method, spacing=spacing_zyx(img), return_info=True)
        firsts.append((img, heads, mean, fit))
    # second pass (a model with info['refine']): a finer look at a crop around each head found
    second = _second_pass(model, [(f[0], f[3].ellipse) for f in firsts], flips=flips, batch_size=batch_size,
                          method=method) if refine else [None] * len(items)
    out = []
    for item, (img, heads, mean, fit), sec in zip(items, firsts, second, strict=True):
        pixel_mm = math.sqrt(img.GetSpacing()[0] * img.GetSpacing()[1])
        change, level, expected = 0.0, math.nan, math.nan
        if sec is None:
            e, xy, border = fit
            hc = e.circumference_mm - 2 * math.pi * offset * pixel_mm
            spread = 0.0
            if len(heads) > 1 and np.isfinite(hc):
                each = np.array([fit_ellipse(h, method=method).circumference_mm for h in heads])
                spread = float((each.max() - each.min()) / np.mean(each)) if np.isfinite(each).all() else math.inf
        else:
            mean, (e, xy, border), spread, bias_mm, level = sec
            hc = e.circumference_mm - 2 * math.pi * offset * pixel_mm - bias_mm
            hc1 = fit.ellipse.circumference_mm - 2 * math.pi * offset * pixel_mm
            change = abs(hc - hc1) / hc1 if np.isfinite(hc) and hc1 > 0 else math.inf
            correction = (info.get("refine") or {}).get("correction")
            if correction and np.isfinite(hc):  # the second pass's size- and blur-dependent outline correction
                hc = hc * (1 - outline_correction(correction, pixel_mm=pixel_mm, hc_mm=hc, level_spread=level))
        residual = ellipse_residual(e, xy)
        if sec is not None and "error_model" in info.get("qc", {}):
            expected = expected_error(info["qc"]["error_model"], pixel_mm=pixel_mm, hc_mm=hc, tta_spread=spread,
                                      fit_residual=residual, pass_change=change, level_spread=level)
        nonfinite, constant = _content(img)
        blank = constant and not nonfinite
        verdict = head_qc(hc_mm=hc, pixel_mm=pixel_mm, fit_residual=residual, border_share=border,
                          tta_spread=spread, thresholds=thresholds, blank=blank, pass_change=change,
                          level_spread=level, expected_error_mm=expected, nonfinite_px=nonfinite)
        if isinstance(item, sitk.Image):
            prob = sitk.GetImageFromArray(mean.astype(np.float32))
            prob.CopyInformation(item)
        else:
            prob = mean.astype(np.float32)
        # nothing is measured on a blank frame, nor on one with NaN or infinite pixels
        out.append(HeadMeasurement(math.nan if blank or nonfinite else float(hc), e, verdict, prob))
    return out[0] if single else out


# second-pass networks already loaded, by weights file and its modification time
_REFINERS: dict = {}


def _refiner(model):
    """``(TrainedModel, spec)`` of the second pass named in ``model.info['refine']``, or None."""
    from pathlib import Path

    from .io import WEIGHTS_DIR, TrainedModel

    spec = (getattr(model, "info", None) or {}).get("refine")
    if not spec:
        return None
    path = Path(spec.get("folder") or WEIGHTS_DIR) / spec["weights"]
    if not path.is_file():
        raise FileNotFoundError(f"the second-pass weights {str(path)!r} named in the model's info['refine'] are missing")
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _REFINERS:
        from .io import build_network

        net = build_network(spec["builder"])
        net.load_weights(path)
        _REFINERS[key] = TrainedModel(net, task="segmentation", classes=("background", "head"),
                                      input_size=tuple(spec["builder"]["kwargs"]["input_size"]),
                                      normalization=spec.get("normalization", "zscore"), channels=1)
    return _REFINERS[key], spec


def _second_pass(model, found, *, flips, batch_size, method):
    """The second pass of :func:`measure_head`: for each ``(image, first ellipse)`` the head
    probability of the refining network on :func:`head_crop` (mean over ``flips``) on the
    input grid, its ellipse fit (``EllipseFit``), the spread of the HC over the flips, the
    perimeter (mm) of the network's own outline offset (``spec['offset_crop_px']`` crop pixels)
    and the level spread of the mean probability on the crop (:func:`_level_spread`);
    None where there is no refining network or no first ellipse."""
    from .data import resample_onto, to_array
    from .inference import _flip_passes

    ref = _refiner(model)
    out = [None] * len(found)
    if ref is None:
        return out
    tm, spec = ref
    todo = [k for k, (_, e) in enumerate(found) if np.isfinite(e.circumference_mm) and e.semi_axes_mm[1] > 0]
    if not todo:
        return out
    crops = [head_crop(grey_image(found[k][0]), found[k][1], size=tm.input_size, margin=spec["margin"]) for k in todo]
    passes = _flip_passes(tm, to_array(crops, normalization=tm.normalization), batch_size, flips)[..., 1]
    for j, k in enumerate(todo):
        img = found[k][0]
        mean = sitk.GetImageFromArray(passes[:, j].mean(axis=0).astype(np.float32))
        mean.CopyInformation(crops[j])
        on_input = sitk.GetArrayFromImage(resample_onto(mean, _scalar_grid(img)))
        fit = fit_ellipse(on_input, method=method, spacing=spacing_zyx(img), return_info=True)
        spread = 0.0
        if len(flips) > 1 and np.isfinite(fit.ellipse.circumference_mm):
            each = np.array([fit_ellipse(p, method=method, spacing=crops[j].GetSpacing()[::-1]).circumference_mm
                             for p in passes[:, j]])
            spread = float((each.max() - each.min()) / np.mean(each)) if np.isfinite(each).all() else math.inf
        # the second pass's own outline offset, in crop pixels (chosen on the validation part)
        bias_mm = 2 * math.pi * float(spec.get("offset_crop_px", 0.0)) * crops[j].GetSpacing()[0]
        level = _level_spread(passes[:, j].mean(axis=0), method=method, spacing=crops[j].GetSpacing()[::-1])
        out[k] = (on_input, fit, spread, bias_mm, level)
    return out


def _level_spread(prob, *, method, spacing) -> float:
    """``(HC at level 0.25 - HC at level 0.75) / HC at level 0.5`` of a head probability map: how
    far apart the network's unsure and sure outlines lie (0 for a sharp boundary)."""
    hc = [fit_ellipse(prob, method=method, spacing=spacing, level=v).circumference_mm for v in (0.25, 0.5, 0.75)]
    return float((hc[0] - hc[2]) / hc[1]) if np.all(np.isfinite(hc)) and hc[1] > 0 else math.inf


# the inputs of the error model (expected_error), in its order; log of the sizes
ERROR_MODEL_FEATURES = ("log_pixel_mm", "log_hc_mm", "tta_spread", "fit_residual", "pass_change", "level_spread")


def _error_features(*, pixel_mm, hc_mm, tta_spread, fit_residual, pass_change, level_spread) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack(np.broadcast_arrays(
            np.log(np.asarray(pixel_mm, float)), np.log(np.asarray(hc_mm, float)), np.asarray(tta_spread, float),
            np.asarray(fit_residual, float), np.asarray(pass_change, float), np.asarray(level_spread, float)))


def _fit_standardised(regressor, x, y, *, what: str, features, clip: bool = False) -> dict:
    """Fit a linear ``regressor`` (scikit-learn) of ``y`` on the standardised columns of ``x``
    over the rows where both are finite: its ``features``, ``mean``, ``scale``, ``coef``,
    ``intercept`` (rounded to 6 decimals) and ``n_images``, for :func:`_standardised_linear`.
    With ``clip``, also ``low`` and ``high``: each feature's range over those rows, to which
    :func:`_standardised_linear` clips its inputs (no extrapolation beyond the fitted data)."""
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < 20:
        raise ValueError(f"`table` has {ok.sum()} usable rows ({what}); need 20")
    mean, scale = x[ok].mean(axis=0), x[ok].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    regressor.fit((x[ok] - mean) / scale, y[ok])
    out = {"features": list(features), "mean": [round(float(v), 6) for v in mean],
           "scale": [round(float(v), 6) for v in scale], "coef": [round(float(v), 6) for v in regressor.coef_],
           "intercept": round(float(regressor.intercept_), 6), "n_images": int(ok.sum())}
    if clip:  # rounded outwards, so that every fitted row stays inside
        out["low"] = [math.floor(float(v) * 1e6) / 1e6 for v in x[ok].min(axis=0)]
        out["high"] = [math.ceil(float(v) * 1e6) / 1e6 for v in x[ok].max(axis=0)]
    return out


def _standardised_linear(params: dict, x: np.ndarray) -> np.ndarray:
    """``intercept + coef . (x - mean) / scale`` per row of ``x`` (from :func:`_fit_standardised`),
    NaN where a value of the row is not finite; ``x`` clipped to ``low``-``high`` where the
    parameters carry that range."""
    if "low" in params:
        x = np.clip(x, np.asarray(params["low"], float), np.asarray(params["high"], float))
    z = (x - np.asarray(params["mean"], float)) / np.asarray(params["scale"], float)
    out = params["intercept"] + z @ np.asarray(params["coef"], float)
    return np.where(np.isfinite(x).all(axis=1), out, math.nan)


def expected_error(error_model: dict, *, pixel_mm, hc_mm, tta_spread, fit_residual, pass_change, level_spread):
    """The expected absolute HC error (mm) of a measurement, from a fitted error model.

    A gamma regression with a log link (:func:`fit_error_model`) of the absolute error on the
    log pixel size, the log HC, the spread under flips, the fit residual, the change between the
    passes and the level spread (:data:`ERROR_MODEL_FEATURES`): coarse pixels and big heads give
    larger errors in mm, an unstable or blurred outline too.

    Parameters
    ----------
    error_model : dict
        From :func:`fit_error_model` (a pretrained model's ``info['qc']['error_model']``).
    pixel_mm, hc_mm, tta_spread, fit_residual, pass_change, level_spread : float or array_like
        As in :class:`HeadQC` (pixel size and HC in mm).

    Returns
    -------
    float or numpy.ndarray
        Expected |HC - sonographer's HC| in mm (NaN where an input is not finite).
    """
    x = _error_features(pixel_mm=pixel_mm, hc_mm=hc_mm, tta_spread=tta_spread, fit_residual=fit_residual,
                        pass_change=pass_change, level_spread=level_spread)
    out = np.exp(_standardised_linear(error_model, x)) - error_model["floor_mm"]
    return float(out[0]) if np.ndim(pixel_mm) == 0 else out


def fit_error_model(table, *, method: str = "opencv", alpha: float = 0.01, floor_mm: float = 0.2) -> dict:
    """Fit the error model of :func:`expected_error` on an :func:`evaluate_hc18` table.

    A gamma GLM with a log link (``sklearn.linear_model.GammaRegressor``) of ``|error| +
    floor_mm`` on the standardised :data:`ERROR_MODEL_FEATURES`. Fit it on measurements of images
    that choose nothing else (the pretrained model: its training part) and judge it on others.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`evaluate_hc18` with a second pass (columns ``pixel_size_mm``, ``hc_<method>_mm``,
        ``abs_err_<method>_mm``, ``tta_spread``, ``fit_residual``, ``pass_change``, ``level_spread``).
    method : str
        The ellipse fit whose errors are modelled.
    alpha : float
        L2 penalty of the GLM (on standardised features).
    floor_mm : float
        Added to the absolute errors (a gamma model needs positive values), subtracted again by
        :func:`expected_error`.

    Returns
    -------
    dict
        ``features``, ``mean``, ``scale``, ``coef``, ``intercept``, ``floor_mm``, ``n_images``.
    """
    from sklearn.linear_model import GammaRegressor

    x = _error_features(pixel_mm=table["pixel_size_mm"], hc_mm=table[f"hc_{method}_mm"],
                        tta_spread=table["tta_spread"], fit_residual=table["fit_residual"],
                        pass_change=table["pass_change"], level_spread=table["level_spread"])
    err = table[f"abs_err_{method}_mm"].to_numpy(float)
    fitted = _fit_standardised(GammaRegressor(alpha=alpha, max_iter=1000), x, err + floor_mm,
                               what="a second pass's QC columns and finite errors", features=ERROR_MODEL_FEATURES)
    return {**fitted, "floor_mm": floor_mm, "family": f"gamma, log link (sklearn GammaRegressor, alpha {alpha:g})"}


# the inputs of the second pass's outline correction (outline_correction), in its order
CORRECTION_FEATURES = ("log_pixel_mm", "log_hc_mm", "level_spread")


def outline_correction(correction: dict, *, pixel_mm, hc_mm, level_spread):
    """The relative HC correction of the second pass: ``HC * (1 - c)`` is reported, with ``c``
    linear in the standardised log pixel size, log HC and level spread (:func:`_level_spread`),
    fitted on the training part's measurements (:func:`fit_outline_correction`): the network's
    0.5 outline lies a little outside the sonographer's where it is blurred, and by an amount
    that depends on the head's size in pixels. Each input is clipped to the range it had in the
    fit (where the correction records one): a linear correction is not extrapolated beyond
    the data it was fitted on.

    Parameters
    ----------
    correction : dict
        From :func:`fit_outline_correction` (a pretrained model's ``info['refine']['correction']``).
    pixel_mm, hc_mm, level_spread : float or array_like
        Pixel size (mm), the uncorrected HC (mm) and the level spread.

    Returns
    -------
    float or numpy.ndarray
        ``c`` (dimensionless; NaN where an input is not finite).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.column_stack(np.broadcast_arrays(np.log(np.asarray(pixel_mm, float)), np.log(np.asarray(hc_mm, float)),
                                                np.asarray(level_spread, float)))
    out = _standardised_linear(correction, x)
    return float(out[0]) if np.ndim(pixel_mm) == 0 else out


def fit_outline_correction(table, *, method: str = "opencv", alpha: float = 1.0) -> dict:
    """Fit :func:`outline_correction` on an :func:`evaluate_hc18` table measured without it.

    A robust linear regression (``sklearn.linear_model.HuberRegressor``) of the relative error
    ``(HC - sonographer's HC) / HC`` on the standardised :data:`CORRECTION_FEATURES`. Fit it on
    images that choose nothing else (the pretrained model: its training part).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`evaluate_hc18` with a second pass and no correction (columns
        ``pixel_size_mm``, ``hc_<method>_mm``, ``hc_ref_mm``, ``level_spread``).
    method : str
        The ellipse fit whose HC is corrected.
    alpha : float
        L2 penalty of the Huber regression.

    Returns
    -------
    dict
        ``features``, ``mean``, ``scale``, ``coef``, ``intercept``, ``n_images`` and the
        features' fitted range ``low``, ``high``.
    """
    from sklearn.linear_model import HuberRegressor

    hc = table[f"hc_{method}_mm"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.column_stack([np.log(table["pixel_size_mm"].to_numpy(float)), np.log(hc),
                             table["level_spread"].to_numpy(float)])
    rel = (hc - table["hc_ref_mm"].to_numpy(float)) / hc
    fitted = _fit_standardised(HuberRegressor(alpha=alpha, max_iter=1000), x, rel, clip=True,
                               what="a second pass's level spread and finite HCs", features=CORRECTION_FEATURES)
    return {**fitted, "model": f"relative HC error, Huber regression (sklearn HuberRegressor, alpha {alpha:g})"}


def evaluate_hc18(model, cases, *, methods=ELLIPSE_METHODS, boundary_offset_px: float | None = None,
                  tta: bool = True, refine: bool = True, batch_size: int = 8, progress=None):
    """Measure HC18 cases with :func:`measure_head` against the sonographer's head circumference.

    Parameters
    ----------
    model : TrainedModel
        A fetal-head segmentation model (e.g. ``pretrained('hc18_unet')``).
    cases : sequence of str
        HC18 case ids (e.g. ``hc18_split()['test']``).
    methods : sequence of str
        Ellipse fits to run (:data:`medlab.segmentation.ELLIPSE_METHODS`); the first one gives the QC verdict.
    boundary_offset_px : float, optional
        Passed to :func:`measure_head` (default: the model's).
    tta : bool
        Flipped passes (:func:`measure_head`).
    refine : bool
        The model's second pass, if it has one (:func:`measure_head`).
    batch_size : int
    progress : callable, optional
        ``progress(fraction, message)`` after each batch; returning False stops
        (InterruptedError).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``subject``, ``pixel_size_mm``, ``hc_ref_mm`` (sonographer),
        ``band`` (:func:`hc_band` of the reference), ``dice`` (:func:`medlab.metrics.dice` of the
        predicted head, mean probability > 0.5, against the reference mask), per method
        ``hc_<method>_mm``, ``abs_err_<method>_mm`` and ``hc_mask_<method>_mm`` (the same fit on
        the reference mask), and the QC verdict: ``qc_flag``, ``qc_reasons`` ('; '-joined),
        ``fit_residual``, ``border_share``, ``tta_spread``, ``pass_change``, ``level_spread``,
        ``expected_error_mm``.
    """
    import pandas as pd

    from medlab import datasets
    from medlab.metrics import dice

    methods = list(methods)
    if not methods:
        raise ValueError("`methods` is empty")
    for m in methods:
        check_choice("methods", m, ELLIPSE_METHODS)
    offset = (getattr(model, "info", None) or {}).get("boundary_offset_px", HC18_BOUNDARY_OFFSET_PX) \
        if boundary_offset_px is None else boundary_offset_px
    cases = list(cases)
    rows = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start:start + batch_size]
        data = [datasets.load("hc18", case=c, progress=False) for c in chunk]
        images = [d.image for d in data]
        first = measure_head(model, images, method=methods[0], tta=tta, boundary_offset_px=offset, refine=refine,
                             batch_size=batch_size)
        for case, d, r in zip(chunk, data, first, strict=True):
            prob = r.probability
            row = {"case": case, "subject": subject_of(case), "pixel_size_mm": d.meta["pixel_size_mm"],
                   "hc_ref_mm": d.meta["hc_mm"], "band": str(hc_band(d.meta["hc_mm"])[0]),
                   "dice": dice(sitk.Cast(prob > 0.5, sitk.sitkUInt8), d.label)}
            for m in methods:
                hc = r.hc_mm if m == methods[0] else head_circumference(prob, method=m, boundary_offset_px=offset)
                row[f"hc_{m}_mm"] = hc
                row[f"abs_err_{m}_mm"] = abs(hc - d.meta["hc_mm"])
                row[f"hc_mask_{m}_mm"] = head_circumference(d.label, method=m, boundary_offset_px=offset)
            row.update(qc_flag=r.qc.flagged, qc_reasons="; ".join(r.qc.reasons), fit_residual=r.qc.fit_residual,
                       border_share=r.qc.border_share, tta_spread=r.qc.tta_spread, pass_change=r.qc.pass_change,
                       level_spread=r.qc.level_spread, expected_error_mm=r.qc.expected_error_mm)
            rows.append(row)
        if progress is not None:
            done = start + len(chunk)
            if progress(done / len(cases), f"HC18: {done}/{len(cases)} cases") is False:
                raise InterruptedError(f"HC18 evaluation stopped by the `progress` callback after {done} cases")
    return pd.DataFrame(rows)


def _cluster_bootstrap_ci(values, groups, *, n_boot=2000, seed=0, level=0.95):
    """Percentile CI of the mean of ``values`` resampling whole groups (subjects) with replacement."""
    values = np.asarray(values, float)
    groups = np.asarray(groups)
    if len(values) == 0:
        return (math.nan, math.nan)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    alpha = (1 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def hc18_summary(table, *, method: str = "opencv", large_error_mm: float = 4.0, n_boot: int = 2000,
                 seed: int = 0) -> dict:
    """Headline numbers of an :func:`evaluate_hc18` table, overall and per head-size band.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`evaluate_hc18`.
    method : str
        Which ellipse fit's columns to summarise.
    large_error_mm : float
        An absolute difference above this is a "large error" (for the QC separation).
    n_boot : int
        Bootstrap resamples of subjects (whole subjects, as images of one fetus are related).
    seed : int

    Returns
    -------
    dict
        ``overall`` and ``bands`` (``'<150'``, ``'150-250'``, ``'>250'``): ``n_images``,
        ``n_subjects``, ``mad_mm``, ``mad_ci95_mm`` (subject bootstrap), ``median_abs_err_mm``,
        ``bias_mm``, ``mape_pct`` (mean absolute error in % of the sonographer's HC),
        ``mad_radius_px`` (the mean error as an outline shift in pixels, ``|error| / (2 pi
        pixel size)``: a fixed target in mm asks for a sub-pixel outline on the coarse pixels of
        big heads), ``within_2mm``, ``dice_mean``, ``n_unflagged`` and ``mad_unflagged_mm``
        (the images without a QC flag); ``qc``: ``share_flagged``,
        ``mad_flagged_mm``, ``mad_unflagged_mm`` (and its CI), ``n_large_errors``,
        ``large_errors_flagged`` (share of the errors above ``large_error_mm`` that are flagged)
        and ``reasons`` (how often each check fired).
    """
    err = table[f"abs_err_{method}_mm"].to_numpy(float)
    signed = (table[f"hc_{method}_mm"] - table["hc_ref_mm"]).to_numpy(float)
    rel = 100.0 * err / table["hc_ref_mm"].to_numpy(float)
    # the error as a shift of the outline (an ellipse's perimeter grows by 2 pi d when it is offset by d)
    radius_px = err / (2 * math.pi * table["pixel_size_mm"].to_numpy(float))
    flag = table["qc_flag"].to_numpy(bool)

    def block(sel):
        sub = table[sel]
        e = err[sel]
        return {
            "n_images": int(sel.sum()),
            "n_subjects": int(sub["subject"].nunique()),
            "mad_mm": float(np.nanmean(e)) if len(e) else math.nan,
            "mad_ci95_mm": list(_cluster_bootstrap_ci(e, sub["subject"], n_boot=n_boot, seed=seed)),
            "median_abs_err_mm": float(np.nanmedian(e)) if len(e) else math.nan,
            "bias_mm": float(np.nanmean(signed[sel])) if len(e) else math.nan,
            "mape_pct": float(np.nanmean(rel[sel])) if len(e) else math.nan,
            "mad_radius_px": float(np.nanmean(radius_px[sel])) if len(e) else math.nan,
            "within_2mm": float(np.mean(e <= 2)) if len(e) else math.nan,
            "dice_mean": float(sub["dice"].mean()) if len(e) else math.nan,
            "n_unflagged": int((~flag[sel]).sum()),
            "mad_unflagged_mm": float(np.nanmean(e[~flag[sel]])) if (~flag[sel]).any() else math.nan,
        }

    all_rows = np.ones(len(table), bool)
    out = {"method": method, "overall": block(all_rows),
           "bands": {b: block((table["band"] == b).to_numpy()) for b in hc_band([100.0, 200.0, 300.0])}}
    large = err > large_error_mm
    reasons = {}
    for text in table["qc_reasons"]:
        for r in filter(None, str(text).split("; ")):
            key = r.split(" (")[0].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    out["qc"] = {
        "share_flagged": float(flag.mean()),
        "n_flagged": int(flag.sum()),
        "mad_flagged_mm": float(np.nanmean(err[flag])) if flag.any() else math.nan,
        "mad_unflagged_mm": out["overall"]["mad_unflagged_mm"],
        "mad_unflagged_ci95_mm": list(_cluster_bootstrap_ci(err[~flag], table["subject"][~flag], n_boot=n_boot,
                                                            seed=seed)),
        "large_error_mm": large_error_mm,
        "n_large_errors": int(large.sum()),
        "large_errors_flagged": float(flag[large].mean()) if large.any() else math.nan,
        "reasons": reasons,
    }
    return out


def choose_qc_thresholds(table, *, good_error_mm: float = 2.0, quantile: float = 0.95, method: str = "opencv",
                         expected_error_share: float = 0.2) -> dict:
    """QC thresholds from a validation table (:func:`evaluate_hc18`): for the fit residual, the
    spread under flips and (a model with a second pass) the change between the two passes, the
    ``quantile`` of the images measured within ``good_error_mm`` of
    the sonographer (``method``'s fit), so about ``1 - quantile`` of good measurements are
    flagged by each. A table with expected errors (a model with an error model,
    :func:`fit_error_model`) also gives ``max_expected_error_mm``: the ``1 - expected_error_share``
    quantile of all its expected errors, so that check flags about that share of the images.

    Parameters
    ----------
    table : pandas.DataFrame
        A validation table from :func:`evaluate_hc18`.
    good_error_mm : float
        Largest absolute HC error (mm) of a measurement counted as good.
    quantile : float in (0, 1)
        The quantile of the good measurements taken as each threshold.
    method : str
        The ellipse fit whose errors decide what is good (a column ``abs_err_<method>_mm``).
    expected_error_share : float in (0, 1)
        The share of images the expected-error check is to flag.
    """
    if not 0 < expected_error_share < 1:
        raise ValueError(f"`expected_error_share` must be in (0, 1); got {expected_error_share!r}")
    good = table[table[f"abs_err_{method}_mm"] <= good_error_mm]
    if len(good) < 10:
        raise ValueError(f"`table` has {len(good)} images within {good_error_mm} mm; need at least 10")
    out = {"max_fit_residual": round(float(np.quantile(good["fit_residual"], quantile)), 4),
           "max_tta_spread": round(float(np.quantile(good["tta_spread"], quantile)), 4)}
    if "pass_change" in good and (good["pass_change"] > 0).any():  # a model with a second pass
        out["max_pass_change"] = round(float(np.quantile(good["pass_change"], quantile)), 4)
    if "expected_error_mm" in table and np.isfinite(table["expected_error_mm"]).any():  # a model with an error model
        expected = table["expected_error_mm"].to_numpy(float)
        out["max_expected_error_mm"] = round(float(np.quantile(expected[np.isfinite(expected)],
                                                               1 - expected_error_share)), 2)
    return out
