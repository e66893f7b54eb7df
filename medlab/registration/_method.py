"""What every registration stage shares: the prepared image pair, the pyramid, the metric set-up,
starting transforms, running a SimpleITK method with progress, and the overlap check.

A stage (:mod:`._linear`, :mod:`._bspline`, :mod:`._demons`) never warns: it returns its
findings as ``notes`` in a :class:`StageRun`, and :func:`medlab.registration.register` decides,
on the caller's thread, which of them to issue (``warnings.catch_warnings`` swaps
process-global state, so it is never used here: registrations run on widget threads).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from medlab._image import mask_array
from medlab._options import check_choice, check_int, check_positive
from medlab._progress import run_filter

from ._common import RegistrationError, image_centre, index_points, inside_fraction
from ._landmarks import landmark_registration
from ._transforms import as_affine

__all__ = [
    "METRICS",
    "Progress",
    "Pair",
    "StageRun",
    "check_common",
    "pyramid_levels",
    "progress_callable",
    "sub_progress",
    "mask_image",
    "linear_transform",
    "as_kind",
    "rotation_centre",
    "initial_linear",
    "check_winsorize",
    "clip",
    "new_method",
    "set_metric",
    "evaluate",
    "run_method",
    "mask_hint",
    "trace_frame",
    "check_overlap",
    "worse_note",
    "check_finite",
    "inside_moving",
    "inside_fixed",
    "run_demons_filter",
    "DEFAULTS",
]

METRICS = ("mean_squares", "correlation", "mattes")

Progress = Callable[[float, str], "bool | None"]

#: Default parameters per transform (options left at None take these).
#: ``levels`` are shrink factors, coarse to fine; the Gaussian smoothing before shrinking is
#: ``shrink / 2`` voxels of the finest fixed spacing (0 at shrink 1) unless ``smoothing_mm``
#: is given. ``iterations`` is per level. Chosen on the sarcoma CT/MR/PET and MNI152 cases
#: (see ``benchmarks/bench_registration.py``): seconds per registration on 2 cores.
DEFAULTS = {
    "rigid": dict(levels=(4, 2, 1), iterations=200, sampling_fraction=0.25, learning_rate=1.0),
    "similarity": dict(levels=(4, 2, 1), iterations=200, sampling_fraction=0.25, learning_rate=1.0),
    "affine": dict(levels=(4, 2, 1), iterations=200, sampling_fraction=0.25, learning_rate=1.0),
    "bspline": dict(levels=(2, 1), iterations=30, sampling_fraction=0.05, learning_rate=None,
                    mesh_spacing_mm=20.0),
    "demons": dict(levels=(4, 2, 1), iterations=100, sampling_fraction=None, learning_rate=None,
                   field_sigma_mm=None),
    "diffeomorphic_demons": dict(levels=(4, 2, 1), iterations=100, sampling_fraction=None,
                                 learning_rate=None, field_sigma_mm=None),
}


@dataclass
class Pair:
    """The two images of one :func:`register` call, checked and converted once for all stages."""

    fixed: sitk.Image  # as given (pixel type kept), for the resampled output and initialisers
    moving: sitk.Image
    fixed32: sitk.Image  # float32 copies the metrics see
    moving32: sitk.Image
    fixed_mask: sitk.Image | None
    moving_mask: sitk.Image | None
    back: Callable
    dim: int
    centre: tuple  # centre of rotation: the fixed mask's centroid or the fixed grid's centre


@dataclass
class StageRun:
    """What one stage returns to :func:`register` (never a warning: ``notes``)."""

    kind: str
    metric: str
    transform: sitk.Transform  # fixed -> moving, the start transform included
    optimised: sitk.Transform  # the stage's own model (without a non-linear start)
    rows: list
    stop_reason: str
    initial_metric: float
    final_metric: float
    levels: tuple
    sampled_on: str = "fixed"
    collapse: str | None = None  # similarity/affine: why the result counts as collapsed
    notes: list = field(default_factory=list)


def check_common(options, default_levels) -> None:
    """Check the options every stage kind shares (``levels``, ``smoothing_mm``, ``iterations``,
    and ``metric``, ``sampling_fraction``, ``histogram_bins``, ``seed`` where the kind has them)."""
    pyramid_levels(default_levels if options.levels is None else options.levels, options.smoothing_mm, 1.0)
    if options.iterations is not None:
        check_int("iterations", options.iterations, minimum=1)
    if getattr(options, "metric", None) is not None:
        check_choice("metric", options.metric, METRICS)
    fraction = getattr(options, "sampling_fraction", None)
    if fraction is not None:
        check_positive("sampling_fraction", fraction)
        if fraction > 1:
            raise ValueError(f"`sampling_fraction` must be in (0, 1]; got {fraction!r}")
    if hasattr(options, "histogram_bins"):
        check_int("histogram_bins", options.histogram_bins, minimum=4)
    if hasattr(options, "seed"):
        check_int("seed", options.seed, minimum=0)


def pyramid_levels(levels, smoothing_mm, spacing_min: float):
    """``(shrink factors, smoothing sigmas in mm)`` per level, checked."""
    if isinstance(levels, int | np.integer):
        levels = (levels,)
    try:
        lv = tuple(int(v) for v in levels)
    except TypeError:
        raise TypeError(f"`levels` must be a sequence of shrink factors like (4, 2, 1); got {levels!r}") from None
    if not lv or any(v < 1 for v in lv) or any(int(v) != v for v in levels):
        raise ValueError(f"`levels` must be integer shrink factors >= 1, coarse to fine; got {levels!r}")
    if smoothing_mm is None:
        sm = tuple(0.5 * v * spacing_min if v > 1 else 0.0 for v in lv)
    else:
        sm = (smoothing_mm,) * len(lv) if np.isscalar(smoothing_mm) else tuple(smoothing_mm)
        if len(sm) != len(lv):
            raise ValueError(
                f"`smoothing_mm` must have one sigma per level ({len(lv)}); got {smoothing_mm!r}"
            )
        sm = tuple(check_positive("smoothing_mm", s, allow_zero=True) for s in sm)
    return lv, sm


def progress_callable(progress):
    """``(callback or None, close)`` for ``progress`` = None/False, True (tqdm bar) or a callable."""
    if progress is None or progress is False:
        return None, lambda: None
    if progress is True:
        from tqdm.auto import tqdm  # lazy: only for a progress bar

        bar = tqdm(total=1000, desc="register", leave=False, bar_format="{l_bar}{bar}| {postfix}")

        def cb(fraction, message):
            bar.n = int(round(1000 * fraction))
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        return cb, bar.close
    if callable(progress):
        return progress, lambda: None
    raise TypeError(f"`progress` must be None, True (progress bar) or a callable(fraction, message); got {progress!r}")


def sub_progress(callback, lo: float, hi: float):
    """``callback`` for one part ``[lo, hi]`` of the whole run (None stays None)."""
    if callback is None:
        return None
    if lo == 0.0 and hi == 1.0:
        return callback
    return lambda fraction, message: callback(lo + (hi - lo) * fraction, message)


def mask_image(mask, image: sitk.Image, name: str, image_name: str) -> sitk.Image | None:
    m = mask_array(mask, image, name=name, image_name=image_name)
    if m is None:
        return None
    out = sitk.GetImageFromArray(m.astype(np.uint8))
    out.CopyInformation(image)
    return out


def linear_transform(kind: str, dim: int) -> sitk.Transform:
    if kind == "rigid":
        return sitk.Euler3DTransform() if dim == 3 else sitk.Euler2DTransform()
    if kind == "similarity":
        return sitk.Similarity3DTransform() if dim == 3 else sitk.Similarity2DTransform()
    return sitk.AffineTransform(dim)


def as_kind(initial: sitk.Transform, kind: str, centre) -> sitk.Transform | None:
    """``initial`` (linear) in the parameterisation of ``kind`` around ``centre``, or None if
    it cannot be represented (e.g. an affine with shear as a rigid transform)."""
    aff = as_affine(initial)
    a = np.asarray(aff.GetMatrix()).reshape(aff.GetDimension(), -1)
    b = np.asarray(aff.GetTranslation())
    c = np.asarray(centre, dtype=float)
    out = linear_transform(kind, aff.GetDimension())
    out.SetCenter(tuple(float(v) for v in c))
    try:
        out.SetMatrix(tuple(float(v) for v in a.ravel()))
    except RuntimeError:
        return None  # not orthogonal (rigid) or not a scaled rotation (similarity)
    out.SetTranslation(tuple(float(v) for v in a @ c + b - c))
    if not np.allclose(np.asarray(out.GetMatrix()).reshape(a.shape), a, atol=1e-6):
        return None
    return out


def rotation_centre(img: sitk.Image, mask: sitk.Image | None):
    """Centre of rotation: the mask's centroid, or the image grid's centre."""
    if mask is None:
        return image_centre(img)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    return stats.GetCentroid(1)


def _moments_image(img: sitk.Image) -> sitk.Image:
    # Intensity moments need non-negative weights: CT air is -1000 HU. Shift so the minimum
    # (the background) weighs 0.
    low = float(sitk.GetArrayViewFromImage(img).min())
    return img - low if low != 0 else img


def initial_linear(kind, fixed, moving, init, fixed_landmarks, moving_landmarks, centre):
    """The starting linear transform of ``kind`` (fixed -> moving)."""
    dim = fixed.GetDimension()
    tx = linear_transform(kind, dim)
    if init is None:
        tx.SetCenter(tuple(float(v) for v in centre))
        return tx
    if init == "landmarks":
        fitted = landmark_registration(fixed_landmarks, moving_landmarks, transform=kind)
        out = as_kind(fitted, kind, centre)
        return out if out is not None else fitted  # pragma: no cover - same kind always fits
    mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if init == "geometry"
            else sitk.CenteredTransformInitializerFilter.MOMENTS)
    f, m = (fixed, moving) if init == "geometry" else (_moments_image(fixed), _moments_image(moving))
    return sitk.CenteredTransformInitializer(f, m, tx, mode)


def check_winsorize(winsorize):
    if winsorize is None:
        return None
    try:
        lo, hi = (float(v) for v in winsorize)
    except (TypeError, ValueError):
        raise TypeError(f"`winsorize` must be (low, high) percentiles or None; got {winsorize!r}") from None
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"`winsorize` percentiles must satisfy 0 <= low < high <= 100; got {winsorize!r}")
    return lo, hi


def clip(img: sitk.Image, percentiles) -> sitk.Image:
    """``img`` (float32) clipped to its own intensity ``percentiles``; unchanged if flat or None."""
    if percentiles is None:
        return img
    lo, hi = np.percentile(sitk.GetArrayViewFromImage(img), percentiles)
    if not hi > lo:
        return img
    return sitk.Clamp(img, sitk.sitkFloat32, float(lo), float(hi))


# --------------------------------------------------------------------------- metric and method


def set_metric(R, metric, bins, fraction, seed, fixed_mask, moving_mask):
    if metric == "mattes":
        R.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    elif metric == "correlation":
        R.SetMetricAsCorrelation()
    else:
        R.SetMetricAsMeanSquares()
    if fraction is None or fraction >= 1.0:
        R.SetMetricSamplingStrategy(R.NONE)
    else:
        # seed + 1: SimpleITK reads seed 0 as "use the wall clock"
        R.SetMetricSamplingStrategy(R.RANDOM)
        R.SetMetricSamplingPercentage(float(fraction), int(seed) + 1)
    if fixed_mask is not None:
        R.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        R.SetMetricMovingMask(moving_mask)
    R.SetInterpolator(sitk.sitkLinear)


def new_method(metric, bins, fraction, seed, fixed_mask, moving_mask, shrinks, sigmas_mm,
               moving_initial=None) -> sitk.ImageRegistrationMethod:
    """An ``ImageRegistrationMethod`` with the metric, pyramid and moving start set."""
    R = sitk.ImageRegistrationMethod()
    set_metric(R, metric, bins, fraction, seed, fixed_mask, moving_mask)
    R.SetShrinkFactorsPerLevel(list(shrinks))
    R.SetSmoothingSigmasPerLevel(list(sigmas_mm))
    R.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    if moving_initial is not None:
        R.SetMovingInitialTransform(moving_initial)
    return R


def evaluate(fixed, moving, transform, metric, bins, fixed_mask, moving_mask) -> float:
    """The metric at full resolution over every fixed voxel (``MetricEvaluate`` does not
    sample), so values before and after are comparable."""
    R = sitk.ImageRegistrationMethod()
    set_metric(R, metric, bins, None, 0, fixed_mask, moving_mask)
    R.SetInitialTransform(transform)
    try:
        return float(R.MetricEvaluate(fixed, moving))
    except RuntimeError:
        return math.nan


_OUTSIDE = ("samples map outside moving image", "All samples map outside", "Too many samples")


def _outside_error(exc: RuntimeError, where: str) -> RegistrationError | None:
    text = str(exc)
    if not any(s in text for s in _OUTSIDE):
        return None
    return RegistrationError(
        f"registration failed {where}: the moving image left the fixed image's field of view "
        "(too few sample points map inside it). The optimiser diverged or the initial overlap "
        "is too small: try a smaller `learning_rate`, more `levels`, a better `init` "
        "('moments', 'landmarks'), or masks. ITK said: " + text.strip().splitlines()[-1]
    )


@contextlib.contextmanager
def mask_hint(pair: Pair):
    """Re-raise a RegistrationError of a masked registration with what a mask over one uniform
    structure does to the metric."""
    try:
        yield
    except RegistrationError as exc:
        if pair.fixed_mask is None and pair.moving_mask is None:
            raise
        # Measured on the sarcoma CT/MR with the tumour mask as fixed mask: Mattes MI inside it
        # was -0.0002 (-0.26 over the whole image), a flat metric whose line search leaves the image.
        raise RegistrationError(
            f"{exc} With masks: the metric only sees the voxels inside them; a mask over one "
            "uniform structure (e.g. a tumour) leaves an almost flat metric. Dilate it to take in "
            "the surrounding anatomy (e.g. 20 mm)."
        ) from exc


def _relay(user_cb):
    def relay(fraction, message):
        if user_cb is None or message.endswith(" done"):
            return None  # one "done" at the very end of a stage, from the stage
        return user_cb(fraction, message)

    return relay


def run_method(R, fixed, moving, levels, iterations, user_cb, rows, name, level_offset=0):
    """Run ``R``; every iteration appends ``(level, iteration, metric)`` to ``rows`` and reports
    ``"level L/N, iteration I, metric M"`` to ``user_cb``."""
    n_levels = len(levels)

    def describe():
        level = R.GetCurrentLevel() + level_offset
        it = R.GetOptimizerIteration()
        value = R.GetMetricValue()
        rows.append((level, it, value))
        frac = (level + min(it / max(iterations, 1), 1.0)) / n_levels
        return frac, f"level {level + 1}/{n_levels}, iteration {it}, metric {value:.5g}"

    try:
        return run_filter(R, (fixed, moving), _relay(user_cb), describe, name)
    except RuntimeError as exc:
        level = rows[-1][0] + 1 if rows else 1
        err = _outside_error(exc, f"at level {level}/{n_levels}")
        if err is not None:
            raise err from None
        raise


def run_demons_filter(filt, inputs, user_cb, describe):
    """Run a demons filter with the same progress relay as :func:`run_method`."""
    return run_filter(filt, inputs, _relay(user_cb), describe, "register")


def trace_frame(rows):
    import pandas as pd  # lazy: pandas would double the import time of medlab.registration

    return pd.DataFrame(rows, columns=["level", "iteration", "metric"])


# --------------------------------------------------------------------------- overlap


def _sample_points(fixed: sitk.Image, fixed_mask: sitk.Image | None, n: int = 4096) -> np.ndarray:
    if fixed_mask is not None:
        idx = np.argwhere(sitk.GetArrayViewFromImage(fixed_mask) != 0)[:, ::-1]
    else:
        size = fixed.GetSize()
        step = max(1, int(round((np.prod(size) / n) ** (1.0 / len(size)))))
        grids = np.meshgrid(*[np.arange(0, s, step) for s in size], indexing="ij")
        idx = np.stack([g.ravel() for g in grids], axis=1)
    if len(idx) > n:
        idx = idx[np.random.default_rng(0).choice(len(idx), n, replace=False)]
    return index_points(fixed, idx)


def inside_moving(pair: Pair, transform: sitk.Transform) -> float:
    """Fraction of (sampled) fixed voxels that ``transform`` maps inside the moving image."""
    return inside_fraction(
        _sample_points(pair.fixed, pair.fixed_mask), transform, pair.moving,
        None if pair.moving_mask is None else sitk.GetArrayViewFromImage(pair.moving_mask) != 0)


def inside_fixed(pair: Pair, moving_to_fixed: sitk.Transform) -> float:
    """Fraction of (sampled) moving voxels that ``moving_to_fixed`` maps inside the fixed image."""
    return inside_fraction(
        _sample_points(pair.moving, pair.moving_mask), moving_to_fixed, pair.fixed,
        None if pair.fixed_mask is None else sitk.GetArrayViewFromImage(pair.fixed_mask) != 0)


def check_overlap(pair: Pair, transform: sitk.Transform, init, notes: list) -> float:
    """The fraction of the fixed image that ``transform`` maps inside the moving image; none at
    all raises ValueError, under 10% adds a note."""
    frac = inside_moving(pair, transform)
    if frac == 0.0:
        fm, mm = pair.fixed_mask is not None, pair.moving_mask is not None
        how = f"init={init!r}" if init is not None else "the identity (init=None)"
        raise ValueError(
            f"no overlap: after initialisation ({how}) no voxel of the fixed image"
            f"{' mask' if fm else ''} maps inside the moving image"
            f"{' mask' if mm else ''}. Fixed image spans "
            f"{_extent(pair.fixed)} mm, moving image {_extent(pair.moving)} mm (x, y[, z]). Give "
            "init='geometry' or 'moments' (or landmarks) when the images are not in one "
            "physical space."
        )
    if frac < 0.1:
        notes.append(
            f"only {100 * frac:.1f}% of the fixed image maps inside the moving image after "
            "initialisation; registration may fail (try init='geometry' or 'moments')")
    return frac


def _extent(img: sitk.Image) -> str:
    lo = np.asarray(img.TransformContinuousIndexToPhysicalPoint([-0.5] * img.GetDimension()))
    hi = np.asarray(img.TransformContinuousIndexToPhysicalPoint([s - 0.5 for s in img.GetSize()]))
    a, b = np.minimum(lo, hi), np.maximum(lo, hi)
    return "[" + ", ".join(f"{x:.0f}..{y:.0f}" for x, y in zip(a, b, strict=True)) + "]"


def worse_note(notes: list, metric: str, initial: float, final: float) -> None:
    """Add a note to ``notes`` when the metric ended worse than it started (the optimiser
    diverged)."""
    if math.isfinite(initial) and (not math.isfinite(final) or final > initial + 1e-9 * abs(initial)):
        notes.append(f"the {metric} metric got worse during registration ({initial:.6g} -> "
                     f"{final:.6g}): the optimiser probably diverged. Try a smaller "
                     "`learning_rate`, more `levels`, a better `init`, or masks around the anatomy "
                     "of interest.")


def check_finite(transform: sitk.Transform) -> None:
    params = np.asarray(transform.GetParameters()) if transform.GetName() != "CompositeTransform" else np.zeros(1)
    if not np.all(np.isfinite(params)):
        raise RegistrationError(
            "registration diverged: the transform parameters are not finite. Try a smaller "
            "`learning_rate` or more `levels`.")
