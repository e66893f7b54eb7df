"""``register``: one entry point for rigid, similarity, affine, B-spline and demons registration."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from medlab._image import mask_array
from medlab._options import check_choice, check_int, check_positive
from medlab._progress import run_filter

from ._common import (
    RegistrationError,
    RegistrationWarning,
    check_dimensions,
    check_transform,
    float_image,
    image_centre,
    index_points,
    inside_fraction,
    scalar_image,
)
from ._landmarks import check_points, landmark_registration
from ._resample import resample, resample_labels
from ._transforms import as_affine, compose, save_transform

__all__ = ["register", "RegistrationResult", "TRANSFORMS", "METRICS", "INITS", "DEFAULTS",
           "SAMPLE_ON", "SAMPLE_MARGIN", "SCALE_BOUNDS", "WINSORIZE", "default_metric"]

TRANSFORMS = ("rigid", "similarity", "affine", "bspline", "demons", "diffeomorphic_demons")
LINEAR = ("rigid", "similarity", "affine")
DEMONS = ("demons", "diffeomorphic_demons")
METRICS = ("mean_squares", "correlation", "mattes")
INITS = ("geometry", "moments", "landmarks")
SAMPLE_ON = ("auto", "fixed", "moving")

#: ``winsorize=WINSORIZE`` (opt-in): clip both images to these percentiles of their own
#: intensities before Mattes mutual information (ANTs' default), so the histogram bins cover
#: the anatomy rather than a few extreme voxels (CT metal, a PET hot spot). Not the default:
#: measured on the 10 sarcoma patients with known rigid motions (bench_registration cases), it
#: made CT/PET more repeatable (mean TRE against the method's own unperturbed optimum 4.2 -> 2.4
#: mm; against the truth 5.0 -> 4.9 mm) but CT/MR worse (mean TRE 10.0 -> 15.7 mm, STS_003
#: 8.2 -> 62 mm), and a rigid MR phantom with inverted contrast diverged with it.
WINSORIZE = (0.5, 99.5)

#: ``sample_on='auto'``: the metric is sampled on the moving image instead of the fixed one when
#: this much larger a fraction of its samples lies inside the other image at the start.
#: Samples that map outside the other image drop out of the metric, so when the moving image's
#: field of view is the smaller one (an MR crop inside a CT) the optimiser can change *which*
#: anatomy is compared, and mutual information can rise by sliding the crop off its place.
#: Measured on the sarcoma CT/MR with a known motion: STS_002 rigid TRE 38.9 -> 8.7 mm,
#: STS_004 affine 45.7 -> 7.1 mm, STS_008 rigid (left the image) -> 16.4 mm.
SAMPLE_MARGIN = 0.15

#: Linear transforms with the default ``sampling_fraction`` sample at most this many fixed
#: voxels per pyramid level (as ANTs does). Measured on the sarcoma CT (2.4 M voxels) / PET with a
#: known rigid motion: all 25% of the voxels at full resolution took 77 s for TRE 2.3 mm, at
#: most 30 000 samples 9 s for 3.1 mm (the unperturbed pair's own drift is 2.7 mm); the phantom
#: tests are unchanged (0.05 mm).
MAX_SAMPLES = 50_000

#: Default parameters per transform (``register`` arguments left at None take these).
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

Progress = Callable[[float, str], "bool | None"]


def default_metric(transform: str = "rigid", modalities: Sequence[str] | None = None) -> str:
    """The metric :func:`register` uses when ``metric`` is None.

    Demons always compare intensities directly (``'mean_squares'``). Otherwise: Mattes mutual
    information for two different modalities or when the modalities are not given (it works
    for both cases), mean squares for CT-CT (Hounsfield units are calibrated), normalised
    correlation for two images of another same modality (MR-MR, PET-PET: same contrast, scale
    may differ).

    Examples
    --------
    >>> default_metric("rigid", ("CT", "PET"))
    'mattes'
    >>> default_metric("affine", ("MR", "MR"))
    'correlation'
    """
    check_choice("transform", transform, TRANSFORMS)
    if transform in DEMONS:
        return "mean_squares"
    if modalities is None:
        return "mattes"
    try:
        a, b = (str(m).upper().split("_")[0] for m in modalities)
    except ValueError:
        raise ValueError(f"`modalities` must be a pair like ('CT', 'MR'); got {modalities!r}") from None
    if a != b:
        return "mattes"
    return "mean_squares" if a == "CT" else "correlation"


@dataclass
class RegistrationResult:
    """What :func:`register` returns.

    Attributes
    ----------
    transform : sitk.Transform
        Fixed -> moving (ITK's convention): a point ``x`` of the fixed image corresponds to
        ``transform.TransformPoint(x)`` in the moving image. Composable
        (:func:`medlab.registration.compose`), saveable (:meth:`save`).
    resampled : sitk.Image or ndarray
        The moving image resampled onto the fixed grid through ``transform`` (linear,
        float32), the same kind as the fixed image given.
    metric_trace : pandas.DataFrame
        One row per optimiser iteration: ``level`` (0 = coarsest), ``iteration`` (within the
        level), ``metric`` (lower is better for every metric: mean squares, negative
        correlation, negative mutual information).
    initial_metric, final_metric : float
        The metric at full resolution over all fixed voxels, before and after (comparable).
    seconds : float
        Wall time of the registration.
    stop_reason : str
        The optimiser's last stop condition (per level for demons).
    transform_kind, metric : str
        What was run.
    levels : tuple of int
        Shrink factors used, coarse to fine.
    sampled_on : str
        ``'fixed'`` or ``'moving'``: the image whose voxels the metric sampled (see
        ``sample_on``); with ``'moving'`` the trace and the metric values are those of the
        moving -> fixed registration that was run and inverted.
    """

    transform: sitk.Transform
    resampled: object = field(repr=False)
    metric_trace: object = field(repr=False)
    initial_metric: float
    final_metric: float
    seconds: float
    stop_reason: str
    transform_kind: str
    metric: str
    levels: tuple
    reference: sitk.Image = field(repr=False, default=None)
    sampled_on: str = "fixed"

    @property
    def iterations(self) -> int:
        """Total optimiser iterations over all levels."""
        return len(self.metric_trace)

    def apply(self, image, *, is_label: bool = False, interpolator: str | None = None,
              reference=None, default_value: float | None = None):
        """Resample another image of the moving frame (e.g. its mask) onto the fixed grid.

        Parameters
        ----------
        image : sitk.Image or ndarray
            An image or label image on the moving image's physical frame.
        is_label : bool
            Labels: nearest neighbour (or ``interpolator='label_gaussian'``), values kept.
        interpolator : str, optional
            See :func:`medlab.registration.resample` / :func:`resample_labels`.
        reference : sitk.Image, optional
            Another grid in the fixed frame (default: the fixed image's).
        default_value : float, optional
            Outside value for images (default: the image minimum).
        """
        ref = self.reference if reference is None else reference
        if is_label:
            return resample_labels(image, ref, self.transform, interpolator=interpolator or "nearest")
        return resample(image, ref, self.transform, interpolator=interpolator or "linear",
                        default_value=default_value)

    def save(self, path, *, overwrite: bool = False):
        """Write :attr:`transform` as an ITK transform file (atomically); returns the path.

        See :func:`medlab.registration.save_transform` for the formats.
        """
        return save_transform(self.transform, path, overwrite=overwrite)


# --------------------------------------------------------------------------- arguments


def _levels(levels, smoothing_mm, spacing_min: float):
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


def _progress_callable(progress):
    """``(callback or None, close)`` for ``progress`` = None/False, True (tqdm bar) or a callable."""
    if progress is None or progress is False:
        return None, lambda: None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=1000, desc="register", leave=False, bar_format="{l_bar}{bar}| {postfix}")

        def cb(fraction, message):
            bar.n = int(round(1000 * fraction))
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        return cb, bar.close
    if callable(progress):
        return progress, lambda: None
    raise TypeError(f"`progress` must be None, True (progress bar) or a callable(fraction, message); got {progress!r}")


def _mask_image(mask, image: sitk.Image, name: str, image_name: str) -> sitk.Image | None:
    m = mask_array(mask, image, name=name, image_name=image_name)
    if m is None:
        return None
    out = sitk.GetImageFromArray(m.astype(np.uint8))
    out.CopyInformation(image)
    return out


def _linear_transform(kind: str, dim: int) -> sitk.Transform:
    if kind == "rigid":
        return sitk.Euler3DTransform() if dim == 3 else sitk.Euler2DTransform()
    if kind == "similarity":
        return sitk.Similarity3DTransform() if dim == 3 else sitk.Similarity2DTransform()
    return sitk.AffineTransform(dim)


def _as_kind(initial: sitk.Transform, kind: str, centre) -> sitk.Transform | None:
    """``initial`` (linear) in the parameterisation of ``kind`` around ``centre``, or None if
    it cannot be represented (e.g. an affine with shear as a rigid transform)."""
    aff = as_affine(initial)
    a = np.asarray(aff.GetMatrix()).reshape(aff.GetDimension(), -1)
    b = np.asarray(aff.GetTranslation())
    c = np.asarray(centre, dtype=float)
    out = _linear_transform(kind, aff.GetDimension())
    out.SetCenter(tuple(float(v) for v in c))
    try:
        out.SetMatrix(tuple(float(v) for v in a.ravel()))
    except RuntimeError:
        return None  # not orthogonal (rigid) or not a scaled rotation (similarity)
    out.SetTranslation(tuple(float(v) for v in a @ c + b - c))
    if not np.allclose(np.asarray(out.GetMatrix()).reshape(a.shape), a, atol=1e-6):
        return None
    return out


def _centre(img: sitk.Image, mask: sitk.Image | None):
    """Centre of rotation: the mask's centroid, or the image grid's centre."""
    if mask is None:
        return image_centre(img)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    return stats.GetCentroid(1)


def _check_winsorize(winsorize):
    if winsorize is None:
        return None
    try:
        lo, hi = (float(v) for v in winsorize)
    except (TypeError, ValueError):
        raise TypeError(f"`winsorize` must be (low, high) percentiles or None; got {winsorize!r}") from None
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"`winsorize` percentiles must satisfy 0 <= low < high <= 100; got {winsorize!r}")
    return lo, hi


def _clip(img: sitk.Image, percentiles) -> sitk.Image:
    """``img`` (float32) clipped to its own intensity ``percentiles``; unchanged if flat."""
    lo, hi = np.percentile(sitk.GetArrayViewFromImage(img), percentiles)
    if not hi > lo:
        return img
    return sitk.Clamp(img, sitk.sitkFloat32, float(lo), float(hi))


def _moments_image(img: sitk.Image) -> sitk.Image:
    # Intensity moments need non-negative weights: CT air is -1000 HU. Shift so the minimum
    # (the background) weighs 0.
    low = float(sitk.GetArrayViewFromImage(img).min())
    return img - low if low != 0 else img


def _initial_linear(kind, fixed, moving, init, fixed_landmarks, moving_landmarks, centre):
    """The starting linear transform of ``kind`` (fixed -> moving)."""
    dim = fixed.GetDimension()
    tx = _linear_transform(kind, dim)
    if init is None:
        tx.SetCenter(tuple(float(v) for v in centre))
        return tx
    if init == "landmarks":
        fitted = landmark_registration(fixed_landmarks, moving_landmarks, transform=kind)
        out = _as_kind(fitted, kind, centre)
        return out if out is not None else fitted  # pragma: no cover - same kind always fits
    mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if init == "geometry"
            else sitk.CenteredTransformInitializerFilter.MOMENTS)
    f, m = (fixed, moving) if init == "geometry" else (_moments_image(fixed), _moments_image(moving))
    return sitk.CenteredTransformInitializer(f, m, tx, mode)


# --------------------------------------------------------------------------- metric set-up


def _set_metric(R, metric, bins, fraction, seed, fixed_mask, moving_mask):
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


def _evaluate(fixed, moving, transform, metric, bins, fixed_mask, moving_mask) -> float:
    """The metric at full resolution over every fixed voxel (``MetricEvaluate`` does not
    sample), so values before and after are comparable."""
    R = sitk.ImageRegistrationMethod()
    _set_metric(R, metric, bins, None, 0, fixed_mask, moving_mask)
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


def _check_overlap(fixed, moving, fixed_mask, moving_mask, transform, init):
    frac = inside_fraction(
        _sample_points(fixed, fixed_mask), transform, moving,
        None if moving_mask is None else sitk.GetArrayViewFromImage(moving_mask) != 0)
    if frac == 0.0:
        how = f"init={init!r}" if init is not None else "the identity (init=None)"
        raise ValueError(
            f"no overlap: after initialisation ({how}) no voxel of the fixed image"
            f"{' mask' if fixed_mask is not None else ''} maps inside the moving image"
            f"{' mask' if moving_mask is not None else ''}. Fixed image spans "
            f"{_extent(fixed)} mm, moving image {_extent(moving)} mm (x, y[, z]). Give "
            "init='geometry' or 'moments' (or landmarks) when the images are not in one "
            "physical space."
        )
    if frac < 0.1:
        warnings.warn(
            f"only {100 * frac:.1f}% of the fixed image maps inside the moving image after "
            "initialisation; registration may fail (try init='geometry' or 'moments')",
            RegistrationWarning, stacklevel=3)
    return frac


def _sample_moving(sample_on, inside_fixed, fixed, moving, fixed_mask, moving_mask, start) -> bool:
    """Whether to sample the metric on the moving image (see ``register``'s ``sample_on``)."""
    if sample_on != "auto":
        return sample_on == "moving"
    inside_moving = inside_fraction(
        _sample_points(moving, moving_mask), as_affine(start).GetInverse(), fixed,
        None if fixed_mask is None else sitk.GetArrayViewFromImage(fixed_mask) != 0)
    return inside_moving > inside_fixed + SAMPLE_MARGIN


def _extent(img: sitk.Image) -> str:
    lo = np.asarray(img.TransformContinuousIndexToPhysicalPoint([-0.5] * img.GetDimension()))
    hi = np.asarray(img.TransformContinuousIndexToPhysicalPoint([s - 0.5 for s in img.GetSize()]))
    a, b = np.minimum(lo, hi), np.maximum(lo, hi)
    return "[" + ", ".join(f"{x:.0f}..{y:.0f}" for x, y in zip(a, b, strict=True)) + "]"


# --------------------------------------------------------------------------- runners


#: A similarity or affine result that scales any axis outside these bounds has collapsed: real
#: scans of one patient differ in scale by a few percent. Mutual information can reward mapping
#: the whole fixed image onto a small part of the moving one (a radial body profile onto a
#: radial tumour profile): on the sarcoma CT/PET (STS_006, STS_014) the collapsed affine
#: (scales 0.01-0.5) has MI 0.78 against 0.36 at the true alignment, from any start. With
#: ``rigid_first`` such a stage is rejected and the rigid stage kept (with a warning); without
#: it the result is only reported.
SCALE_BOUNDS = (0.8, 1.25)


def _scales(transform: sitk.Transform) -> tuple[float, float]:
    """Smallest and largest scale of a linear transform (singular values of its matrix)."""
    aff = as_affine(transform)
    dim = aff.GetDimension()
    sv = np.linalg.svd(np.asarray(aff.GetMatrix()).reshape(dim, dim), compute_uv=False)
    return float(sv.min()), float(sv.max())


def _collapsed(transform: sitk.Transform) -> str | None:
    """A message if ``transform`` scales outside ``SCALE_BOUNDS``, else None."""
    lo, hi = _scales(transform)
    if SCALE_BOUNDS[0] <= lo and hi <= SCALE_BOUNDS[1]:
        return None
    return (f"scales the image by {lo:.2f}-{hi:.2f} along its principal axes (outside "
            f"{SCALE_BOUNDS[0]}-{SCALE_BOUNDS[1]}): it has collapsed onto part of the moving image")


def _check_scale(transform: sitk.Transform, kind: str) -> None:
    msg = _collapsed(transform)
    if msg is not None:
        warnings.warn(
            f"the {kind} result {msg}. Use rigid_first=True, a fixed mask over the anatomy, "
            "or stay with 'rigid'.", RegistrationWarning, stacklevel=3)


def _staged(kind: str, args: dict) -> RegistrationResult:
    """``register`` for similarity/affine with ``rigid_first``: a rigid stage over the whole
    pyramid, then ``kind`` from it; a collapsed second stage is rejected (the rigid one kept)."""
    t0 = time.perf_counter()
    user_cb, close = _progress_callable(args["progress"])

    def part(lo, hi):
        if user_cb is None:
            return None
        return lambda fraction, message: user_cb(lo + (hi - lo) * fraction, message)

    try:
        first = register(**{**args, "transform": "rigid", "progress": part(0.0, 0.5)})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                second = register(**{**args, "initial_transform": first.transform, "init": None,
                                     "sample_on": first.sampled_on, "rigid_first": False,
                                     "search_mm": 0.0, "progress": part(0.5, 1.0)})
                collapse = _collapsed(second.transform)
            except RegistrationError as exc:
                # seen on unperturbed sarcoma CT/PET pairs: the affine stage runs off the image
                second, collapse = None, f"failed ({str(exc).split(': the')[0]})"
    finally:
        close()
    for w in caught:
        if collapse is None or "collapsed" not in str(w.message):
            warnings.warn(w.message, w.category, stacklevel=3)
    trace = _concat_traces([first.metric_trace.assign(stage="rigid"),
                            None if second is None else second.metric_trace.assign(stage=kind)],
                           len(first.levels))
    if collapse is None:
        chosen, stop = second, second.stop_reason
    else:
        why = ("Mutual information can prefer such a collapse; give a fixed mask over the anatomy "
               "or use the rigid result." if second is not None else "")
        warnings.warn(
            f"the {kind} stage {collapse}; kept the rigid stage (returned as {_article(kind)} "
            f"{kind} transform). {why}".rstrip(), RegistrationWarning, stacklevel=3)
        chosen = first
        stop = f"{kind} stage rejected ({collapse}); rigid stage kept. {first.stop_reason}"
    transform = chosen.transform if chosen is second else \
        _as_kind(first.transform, kind, first.transform.GetCenter())
    return RegistrationResult(
        transform=transform, resampled=chosen.resampled, metric_trace=trace,
        initial_metric=first.initial_metric, final_metric=chosen.final_metric,
        seconds=time.perf_counter() - t0, stop_reason=stop, transform_kind=kind,
        metric=first.metric, levels=first.levels * (1 if second is None else 2),
        reference=first.reference, sampled_on=first.sampled_on)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _concat_traces(traces, offset: int):
    """The rigid stage's trace, then the second stage's (None: it failed) with its levels
    numbered after the first's."""
    import pandas as pd

    if traces[1] is None:
        return traces[0].reset_index(drop=True)
    second = traces[1].assign(level=traces[1]["level"] + offset)
    return pd.concat([traces[0], second], ignore_index=True)


def _trace_frame(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["level", "iteration", "metric"])


def _run_method(R, fixed, moving, levels, iterations, user_cb, rows, name, level_offset=0):
    n_levels = len(levels)

    def describe():
        level = R.GetCurrentLevel() + level_offset
        it = R.GetOptimizerIteration()
        value = R.GetMetricValue()
        rows.append((level, it, value))
        frac = (level + min(it / max(iterations, 1), 1.0)) / n_levels
        return frac, f"level {level + 1}/{n_levels}, iteration {it}, metric {value:.5g}"

    def relay(fraction, message):
        if user_cb is None or message.endswith(" done"):
            return None  # one "done" at the very end, from register
        return user_cb(fraction, message)

    try:
        return run_filter(R, (fixed, moving), relay, describe, name)
    except RuntimeError as exc:
        level = rows[-1][0] + 1 if rows else 1
        err = _outside_error(exc, f"at level {level}/{n_levels}")
        if err is not None:
            raise err from None
        raise


def _bspline_mesh(fixed: sitk.Image, mesh_spacing_mm: float, n_levels: int):
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    final = np.maximum(1, np.round(extent / mesh_spacing_mm)).astype(int)
    factor = 2 ** (n_levels - 1)
    initial = np.maximum(1, np.ceil(final / factor)).astype(int)
    return [int(v) for v in initial], [2**k for k in range(n_levels)]


def _register_itk(fixed, moving, kind, metric, start, moving_initial, levels, smoothing, iterations,
                  fraction, lr, bins, seed, fixed_mask, moving_mask, mesh_spacing_mm, user_cb,
                  cap_samples=False, search_mm=0.0):
    def method(shrinks, sigmas, sampled=fraction):
        R = sitk.ImageRegistrationMethod()
        _set_metric(R, metric, bins, sampled, seed, fixed_mask, moving_mask)
        R.SetShrinkFactorsPerLevel(list(shrinks))
        R.SetSmoothingSigmasPerLevel(list(sigmas))
        R.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        if moving_initial is not None:
            R.SetMovingInitialTransform(moving_initial)
        return R

    rows = []
    if kind == "bspline":
        R = method(levels, smoothing)
        mesh, scale_factors = _bspline_mesh(fixed, mesh_spacing_mm, len(levels))
        tx = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
        R.SetInitialTransformAsBSpline(tx, inPlace=True, scaleFactors=scale_factors)
        # as SimpleITK's multi-resolution B-spline example: L-BFGS-B cannot follow a mesh
        # that is refined between levels (its scales keep the first level's size)
        R.SetOptimizerAsGradientDescentLineSearch(
            learningRate=5.0, numberOfIterations=iterations, convergenceMinimumValue=1e-4,
            convergenceWindowSize=5)
        _run_method(R, fixed, moving, levels, iterations, user_cb, rows, "register")
        return tx, rows, R.GetOptimizerStopConditionDescription()
    # Linear: one registration per pyramid level, each starting where the last one ended, by
    # conjugate gradients with a golden-section line search whose first trial step moves
    # voxels by at most `lr` mm at the coarsest level (halving with the voxel size), stopped
    # when the metric has flattened over the last 10 iterations (ANTs' convergence test).
    # Measured on a rotated and shifted MR phantom (tests/test_registration.py): plain
    # gradient descent with a step re-estimated every iteration circles the optimum at the
    # step's distance (1-2 mm TRE), regular-step gradient descent stops early when random
    # sampling flips the gradient (0.3-0.5 mm) and, on the sarcoma CT/MR, follows shallow
    # slopes of mutual information for tens of mm; conjugate gradients reach 0.01-0.07 mm.
    def level_run(k, initial, out_rows):
        shrink, sigma = levels[k], smoothing[k]
        n_vox = float(np.prod([max(1, s // shrink) for s in fixed.GetSize()]))
        R = method([shrink], [sigma], fraction if not cap_samples else min(fraction, MAX_SAMPLES / n_vox))
        R.SetInitialTransform(initial, inPlace=False)
        R.SetOptimizerAsConjugateGradientLineSearch(
            learningRate=1.0, numberOfIterations=iterations, convergenceMinimumValue=1e-6,
            convergenceWindowSize=10, estimateLearningRate=R.Once,
            maximumStepSizeInPhysicalUnits=lr * shrink / levels[0])
        R.SetOptimizerScalesFromPhysicalShift()
        out = _unwrap(_run_method(R, fixed, moving, levels, iterations, user_cb, out_rows,
                                  "register", level_offset=k))
        return out, R.GetOptimizerStopConditionDescription()

    current, stop = start, ""
    for k in range(len(levels)):
        if k > 0 or not search_mm:
            current, stop = level_run(k, current, rows)
            continue
        # multi-start: the coarsest level from the start and from the start shifted by
        # +-search_mm along each axis; go on from the lowest final metric (same samples: the
        # sampling is seeded, so the values compare)
        best, first_error = None, None
        for candidate in _shifted(start, search_mm):
            candidate_rows = []
            try:
                tx, st = level_run(k, candidate, candidate_rows)
            except RegistrationError as exc:
                first_error = first_error or exc
                continue
            value = candidate_rows[-1][2] if candidate_rows else math.inf
            if best is None or value < best[0]:
                best = (value, tx, st, candidate_rows)
        if best is None:
            raise first_error
        _, current, stop, best_rows = best
        rows.extend(best_rows)
    return current, rows, stop


def _shifted(start: sitk.Transform, distance_mm: float) -> list:
    """``start`` and copies of it translated by +-``distance_mm`` along each physical axis."""
    out = [start]
    for axis in range(start.GetDimension()):
        for sign in (-1.0, 1.0):
            t = type(start)(start)
            offset = list(t.GetTranslation())
            offset[axis] += sign * distance_mm
            t.SetTranslation(tuple(offset))
            out.append(t)
    return out


def _unwrap(t: sitk.Transform) -> sitk.Transform:
    """``Execute`` returns a one-element composite; give back the concrete transform."""
    if t.GetName() == "CompositeTransform":
        c = sitk.CompositeTransform(t)
        if c.GetNumberOfTransforms() == 1:
            inner = c.GetNthTransform(0)
            cls = getattr(sitk, inner.GetName(), None)
            return cls(inner) if isinstance(cls, type) else inner
    return t


def _pyramid(img: sitk.Image, shrink: int, sigma_mm: float) -> sitk.Image:
    out = sitk.SmoothingRecursiveGaussian(img, sigma_mm) if sigma_mm > 0 else img
    return sitk.Shrink(out, [shrink] * img.GetDimension()) if shrink > 1 else out


def _register_demons(fixed, moving_on_fixed, kind, levels, smoothing, iterations, field_sigma_mm,
                     user_cb):
    """Multi-resolution (diffeomorphic) demons; returns a displacement field on ``fixed``."""
    n_levels = len(levels)
    fine_spacing = np.asarray(fixed.GetSpacing())
    # the field smoothing is a number of voxels (ITK's demons smooth in index units); it is
    # set from mm at the finest level and kept in voxels at coarser ones, as usual for demons
    sigma_vox = [float(v) for v in field_sigma_mm / fine_spacing]
    field = None
    rows, stops = [], []
    for li, (shrink, sigma) in enumerate(zip(levels, smoothing, strict=True)):
        f = _pyramid(fixed, shrink, sigma)
        m = _pyramid(moving_on_fixed, shrink, sigma)
        if field is None:
            init = sitk.Image(f.GetSize(), sitk.sitkVectorFloat64, f.GetDimension())
            init.CopyInformation(f)
        else:
            init = sitk.Resample(field, f, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64)
        filt = (sitk.DiffeomorphicDemonsRegistrationFilter() if kind == "diffeomorphic_demons"
                else sitk.DemonsRegistrationFilter())
        filt.SetNumberOfIterations(iterations)
        filt.SetSmoothDisplacementField(True)
        filt.SetStandardDeviations(sigma_vox)

        def describe(filt=filt, li=li):
            it = filt.GetElapsedIterations()
            value = filt.GetMetric()
            rows.append((li, it, value))
            frac = (li + min(it / iterations, 1.0)) / n_levels
            return frac, f"level {li + 1}/{n_levels}, iteration {it}, mean squares {value:.5g}"

        def relay(fraction, message):
            if user_cb is None or message.endswith(" done"):
                return None  # one "done" at the very end, from register
            return user_cb(fraction, message)

        field = run_filter(filt, [f, m, init], relay, describe, "register")
        stops.append(f"level {li + 1}: {filt.GetElapsedIterations()} iterations, "
                     f"RMS change {filt.GetRMSChange():.3g}")
    if field.GetSize() != fixed.GetSize():
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64)
    return field, rows, "; ".join(stops)


# --------------------------------------------------------------------------- entry point


def register(
    fixed,
    moving,
    *,
    transform: str = "rigid",
    metric: str | None = None,
    modalities: Sequence[str] | None = None,
    init: str | None = None,
    fixed_landmarks_mm=None,
    moving_landmarks_mm=None,
    initial_transform=None,
    levels: Sequence[int] | None = None,
    smoothing_mm: float | Sequence[float] | None = None,
    iterations: int | None = None,
    learning_rate: float | None = None,
    sampling_fraction: float | None = None,
    histogram_bins: int = 32,
    mesh_spacing_mm: float | None = None,
    field_sigma_mm: float | None = None,
    match_histograms: bool = False,
    fixed_mask=None,
    moving_mask=None,
    sample_on: str = "auto",
    winsorize: Sequence[float] | None = None,
    rigid_first: bool = True,
    search_mm: float = 0.0,
    seed: int = 0,
    spacing=None,
    progress=None,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed``: find the transform mapping fixed points to moving points.

    One call for every transform model, with a multi-resolution pyramid, a choice of metric,
    initialisation, masks, progress and stop. Chain stages (rigid -> affine -> B-spline) with
    ``initial_transform=previous_result``.

    Parameters
    ----------
    fixed, moving : sitk.Image or (M, N[, P]) ndarray
        Scalar images of the same dimension (2D or 3D), any grids: registration works in
        physical space (mm). numpy arrays are indexed (z, y, x), with ``spacing``.
    transform : {'rigid', 'similarity', 'affine', 'bspline', 'demons', 'diffeomorphic_demons'}
        Rigid (Euler angles + translation), similarity (+ isotropic scale), affine, B-spline
        free-form deformation (control points every ``mesh_spacing_mm`` at the finest level),
        demons or diffeomorphic demons (a dense displacement field; same-modality images
        only: they compare intensities directly).
    metric : {'mean_squares', 'correlation', 'mattes'}, optional
        Mean squares (same modality, same intensity scale), normalised correlation (same
        modality, linear intensity relation), Mattes mutual information (any two modalities).
        Default: :func:`default_metric` of ``transform`` and ``modalities``.
    modalities : (str, str), optional
        ``(fixed, moving)`` modalities, e.g. ``('CT', 'PET')``, to choose the default metric.
    init : {'geometry', 'moments', 'landmarks'}, optional
        How to start. None (default): the identity, i.e. the images' physical coordinates are
        trusted (scans of one patient from one scanner or session, as in PET/CT, or a data set
        resampled into one space). ``'geometry'`` aligns the centres of the two image grids,
        ``'moments'`` the intensity centres of mass (above each image's minimum),
        ``'landmarks'`` fits ``fixed_landmarks_mm`` onto ``moving_landmarks_mm`` (see
        :func:`landmark_registration`). With ``initial_transform``, leave it None.
    fixed_landmarks_mm, moving_landmarks_mm : (N, dim) array_like, optional
        Paired physical points (x, y[, z], mm) for ``init='landmarks'``.
    initial_transform : sitk.Transform or RegistrationResult, optional
        A previous fixed -> moving result to start from. A linear transform seeds a linear
        stage directly when it fits the model (rigid into affine); otherwise the new stage is
        found on top of it and the result is ``compose(initial, new)``.
    levels : sequence of int, optional
        Shrink factors of the multi-resolution pyramid, coarse to fine (default ``(4, 2, 1)``;
        ``(2, 1)`` for B-spline).
    smoothing_mm : float or sequence of float, optional
        Gaussian sigma (mm) per level before shrinking (default ``shrink / 2`` voxels of the
        finest fixed spacing; 0 at full resolution).
    iterations : int, optional
        Maximum optimiser iterations per level (defaults in ``DEFAULTS``).
    learning_rate : float, optional
        Linear transforms: the first trial step of the conjugate-gradient line search at the
        coarsest level, as the largest motion of any voxel in mm (parameter scales are
        estimated from physical shifts); it halves with the voxel size at each finer level.
        Default 1 mm. Each level stops when the metric has flattened over 10 iterations, or
        after ``iterations``.
    sampling_fraction : float, optional
        Fraction of fixed voxels sampled (randomly, seeded) for the metric; 1 = all voxels.
        Default per transform (``DEFAULTS``); for linear transforms the default is also capped
        at ``MAX_SAMPLES`` (50 000) samples per level, which makes large images fast; give a
        value to use exactly that fraction.
    histogram_bins : int
        Bins of the joint histogram for Mattes mutual information.
    mesh_spacing_mm : float, optional
        B-spline control point spacing at the finest level (default 20 mm); the mesh doubles
        from level to level.
    field_sigma_mm : float, optional
        Demons: Gaussian smoothing of the displacement field, mm at the finest level (default
        1.5 x the largest fixed voxel size).
    match_histograms : bool
        Demons: match the moving histogram to the fixed one first, for two scans of one
        modality whose intensities differ (e.g. MR from two sessions). Default False: on images
        with one intensity scale it distorts them (measured: demons TRE on the MNI152 with a
        known deformation 0.78 mm with matching, 0.69 mm without).
    fixed_mask, moving_mask : sitk.Image or ndarray, optional
        Only voxels inside (nonzero) count in the metric; same grid as their image. Not used
        by demons.
    sample_on : {'auto', 'fixed', 'moving'}
        Linear transforms: the image whose voxels are sampled for the metric. Samples that map
        outside the other image drop out, so sampling an image whose field of view sticks out
        of the other one lets the optimiser choose which anatomy is compared (mutual
        information can rise by sliding a small crop off its place). ``'auto'`` (default)
        samples the moving image when clearly more of it lies inside the fixed one than the
        other way round at the start (e.g. an MR crop inside a CT; see ``SAMPLE_MARGIN``),
        otherwise the fixed image. Sampling the moving image registers it the other way round
        and inverts the result: ``transform`` is always fixed -> moving.
    winsorize : (low, high) percentiles, optional
        Mattes mutual information: clip each image to these percentiles of its intensities
        first (e.g. ``WINSORIZE = (0.5, 99.5)``, ANTs' default) so the histogram covers the
        anatomy, not a few extreme voxels. Default None: intensities as they are (measured
        trade-off at ``WINSORIZE``). The resampled image is never clipped.
    rigid_first : bool
        Similarity and affine started from ``init`` (not from landmarks or an
        ``initial_transform``): register rigidly first over the whole pyramid, then the full
        model from there (ANTs' rigid -> affine practice). If that stage scales outside
        ``SCALE_BOUNDS`` (0.8-1.25; a collapse that mutual information can prefer), or runs
        off the image, it is rejected with a :class:`RegistrationWarning` and the rigid stage
        is returned, as a transform of the kind asked. The trace has a ``stage`` column and
        the second stage's levels follow the first's. Measured on the 10 sarcoma patients
        with known affine motions (``benchmarks/results/registration.md``): mean TRE CT/PET
        14.3 -> 6.3 mm (2 of 10 failed before, none after), CT/MR 8.6 -> 9.2 mm.
    search_mm : float
        Linear transforms: a multi-start search. The coarsest level is run from the start and
        from the start shifted by +-``search_mm`` along each axis (7 starts in 3D), and the
        finer levels go on from the one that ends with the lowest metric. 0 (default): one
        start. (With ``rigid_first`` only the rigid stage searches.) Measured with 10 mm on the
        10 sarcoma patients with known rigid motions: TRE against the method's own unperturbed
        optimum CT/PET 4.2 -> 3.3 mm, CT/MR 6.4 -> 6.2 mm, TRE against the truth unchanged
        (5.0 -> 4.9, 10.0 -> 10.5 mm), 1.6x the time; hence off by default.
    seed : int
        Seed of the random metric sampling: the same seed gives the same result.
    spacing : sequence of float, optional
        Voxel size in mm (array axis order) for numpy inputs.
    progress : None, True or callable
        ``progress(fraction, message)`` after every iteration (return False to stop: then
        :class:`InterruptedError` is raised); True shows a progress bar. A Jupyter kernel
        interrupt also stops it.

    Returns
    -------
    RegistrationResult
        ``transform`` (fixed -> moving), ``resampled`` (moving on the fixed grid),
        ``metric_trace``, ``initial_metric``, ``final_metric``, ``seconds``, ``stop_reason``,
        ``sampled_on``; ``.apply(image, is_label=...)`` and ``.save(path)``.

    Raises
    ------
    ValueError
        Images of different dimension, no overlap after initialisation, bad options.
    RegistrationError
        The optimiser moved the moving image out of view (diverged).
    InterruptedError
        Stopped by ``progress``.

    Warns
    -----
    RegistrationWarning
        The metric at the end is worse than at the start (the optimiser diverged), or the
        initial overlap is below 10%.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> from medlab import datasets
    >>> fixed = datasets.mr_phantom(shape=(24, 48, 48), seed=1).image
    >>> moving = sitk.Resample(fixed, sitk.TranslationTransform(3, (2.0, -1.0, 0.5)))
    >>> result = register(fixed, moving, transform="rigid", metric="mean_squares")
    >>> import numpy as np
    >>> np.allclose(result.transform.GetTranslation(), (-2.0, 1.0, -0.5), atol=0.2)
    True
    """
    args = dict(locals())
    t0 = time.perf_counter()
    kind = check_choice("transform", transform, TRANSFORMS)
    if kind in ("similarity", "affine") and rigid_first and initial_transform is None and init != "landmarks":
        return _staged(kind, args)
    fimg, back = scalar_image(fixed, spacing, "fixed")
    mimg, _ = scalar_image(moving, spacing, "moving")
    dim = check_dimensions(fimg, mimg)
    metric = default_metric(kind, modalities) if metric is None else check_choice("metric", metric, METRICS)
    if kind in DEMONS and metric != "mean_squares":
        raise ValueError(
            f"`metric` must be 'mean_squares' for {kind}: demons compare intensities directly "
            f"(same modality only); got {metric!r}. For two modalities use transform='bspline' "
            "with metric='mattes'."
        )
    if init is not None:
        check_choice("init", init, INITS)
    if (fixed_landmarks_mm is None) != (moving_landmarks_mm is None):
        raise ValueError("give both `fixed_landmarks_mm` and `moving_landmarks_mm` or neither")
    if init == "landmarks":
        if fixed_landmarks_mm is None:
            raise ValueError("init='landmarks' needs `fixed_landmarks_mm` and `moving_landmarks_mm`")
        check_points(fixed_landmarks_mm, "fixed_landmarks_mm", dim)
        check_points(moving_landmarks_mm, "moving_landmarks_mm", dim)
    elif fixed_landmarks_mm is not None:
        raise ValueError(f"landmarks are given but init={init!r}; pass init='landmarks'")
    if initial_transform is not None:
        if isinstance(initial_transform, RegistrationResult):
            initial_transform = initial_transform.transform
        check_transform(initial_transform, dim, "initial_transform")
        if init is not None:
            raise ValueError(f"give either `initial_transform` or `init` ({init!r}), not both")

    d = DEFAULTS[kind]
    spacing_min = float(min(fimg.GetSpacing()))
    lv, sm = _levels(d["levels"] if levels is None else levels, smoothing_mm, spacing_min)
    iters = check_int("iterations", d["iterations"] if iterations is None else iterations, minimum=1)
    fraction = d["sampling_fraction"] if sampling_fraction is None else sampling_fraction
    if fraction is not None:
        fraction = check_positive("sampling_fraction", fraction)
        if fraction > 1:
            raise ValueError(f"`sampling_fraction` must be in (0, 1]; got {sampling_fraction!r}")
    lr = check_positive("learning_rate", d["learning_rate"] if learning_rate is None else learning_rate) \
        if kind in LINEAR else None
    if learning_rate is not None and kind not in LINEAR:
        raise ValueError(f"`learning_rate` is for linear transforms; {kind} sets its own steps")
    bins = check_int("histogram_bins", histogram_bins, minimum=4)
    check_choice("sample_on", sample_on, SAMPLE_ON)
    if sample_on == "moving" and (kind not in LINEAR or (initial_transform is not None
                                                        and not initial_transform.IsLinear())):
        raise ValueError(
            f"sample_on='moving' needs a linear registration started from a linear transform "
            f"(the result is inverted); got transform={kind!r}"
            + ("" if kind not in LINEAR else " with a non-linear initial_transform"))
    clip = _check_winsorize(winsorize)
    if metric != "mattes":
        clip = None  # only mutual information bins intensities
    search = check_positive("search_mm", search_mm, allow_zero=True)
    if search and kind not in LINEAR:
        raise ValueError(f"`search_mm` is for linear transforms; got transform={kind!r}")
    seed = check_int("seed", seed, minimum=0)
    mesh = check_positive("mesh_spacing_mm", mesh_spacing_mm if mesh_spacing_mm is not None
                          else DEFAULTS["bspline"]["mesh_spacing_mm"])
    fsig = check_positive("field_sigma_mm", field_sigma_mm) if field_sigma_mm is not None else \
        1.5 * float(max(fimg.GetSpacing()))
    for name, size in (("fixed", fimg.GetSize()), ("moving", mimg.GetSize())):
        if min(size) < 4:
            raise ValueError(f"`{name}` (size {size}) must have at least 4 voxels along every axis")

    fmask = _mask_image(fixed_mask, fimg, "fixed_mask", "fixed")
    mmask = _mask_image(moving_mask, mimg, "moving_mask", "moving")
    if kind in DEMONS and (fmask is not None or mmask is not None):
        raise ValueError(f"masks are not used by {kind}; crop the images instead, or use 'bspline'")

    f32, m32 = float_image(fimg), float_image(mimg)
    user_cb, close = _progress_callable(progress)
    try:
        # ---- the starting transform (fixed -> moving)
        centre = _centre(fimg, fmask)
        moving_initial = None
        start = None
        if kind in LINEAR:
            if initial_transform is not None:
                start = _as_kind(initial_transform, kind, centre) if initial_transform.IsLinear() else None
                if start is None:
                    moving_initial = initial_transform
                    start = _initial_linear(kind, fimg, mimg, None, None, None, centre)
            else:
                start = _initial_linear(kind, f32, m32, init, fixed_landmarks_mm, moving_landmarks_mm, centre)
            begin = start if moving_initial is None else compose(moving_initial, start)
        else:
            if initial_transform is not None:
                moving_initial = initial_transform
            elif init is not None:
                moving_initial = _initial_linear("affine" if init == "landmarks" else "rigid", f32, m32, init,
                                                 fixed_landmarks_mm, moving_landmarks_mm, centre)
            begin = moving_initial if moving_initial is not None else sitk.Transform(dim, sitk.sitkIdentity)
        inside_f = _check_overlap(fimg, mimg, fmask, mmask, begin, init)
        swap = (kind in LINEAR and moving_initial is None
                and _sample_moving(sample_on, inside_f, fimg, mimg, fmask, mmask, start))
        # the images the metric sees (clipped for mutual information); `swap`: the other way round
        f_metric, m_metric = (_clip(f32, clip), _clip(m32, clip)) if clip is not None else (f32, m32)

        # ---- optimise
        if kind in DEMONS:
            moving_on_fixed = resample(m32, f32, begin)
            if match_histograms:
                moving_on_fixed = sitk.HistogramMatching(moving_on_fixed, f32, 256, 7, True)
            field_img, rows, stop = _register_demons(f32, moving_on_fixed, kind, lv, sm, iters,
                                                     fsig, user_cb)
            dft = sitk.DisplacementFieldTransform(field_img)
            final = dft if moving_initial is None else compose(moving_initial, dft)
            eval_moving = None
        else:
            try:
                if swap:
                    centre_m = _centre(mimg, mmask)
                    lv_m, sm_m = _levels(lv, smoothing_mm, float(min(mimg.GetSpacing())))
                    back_start = _as_kind(as_affine(start).GetInverse(), kind, centre_m)
                    reverse, rows, stop = _register_itk(
                        m_metric, f_metric, kind, metric, back_start, None, lv_m, sm_m, iters,
                        fraction, lr, bins, seed, mmask, fmask, mesh, user_cb,
                        cap_samples=sampling_fraction is None, search_mm=search)
                    optimised = _as_kind(as_affine(reverse).GetInverse(), kind, centre)
                else:
                    optimised, rows, stop = _register_itk(
                        f_metric, m_metric, kind, metric, start, moving_initial, lv, sm, iters,
                        fraction, lr, bins, seed, fmask, mmask, mesh, user_cb,
                        cap_samples=sampling_fraction is None, search_mm=search)
            except RegistrationError as exc:
                if fmask is None and mmask is None:
                    raise
                # Measured on the sarcoma CT/MR with the tumour mask as fixed mask: Mattes MI
                # inside it was -0.0002 (-0.26 over the whole image), a flat metric whose
                # line search leaves the image.
                raise RegistrationError(
                    f"{exc} With masks: the metric only sees the voxels inside them; a mask over "
                    "one uniform structure (e.g. a tumour) leaves an almost flat metric. Dilate "
                    "it to take in the surrounding anatomy (e.g. 20 mm)."
                ) from exc
            final = optimised if moving_initial is None else compose(moving_initial, optimised)
            eval_moving = m_metric
        params = np.asarray(final.GetParameters()) if final.GetName() != "CompositeTransform" else np.zeros(1)
        if not np.all(np.isfinite(params)):
            raise RegistrationError(
                "registration diverged: the transform parameters are not finite. Try a smaller "
                "`learning_rate` or more `levels`.")

        # ---- the metric before and after, at full resolution with the same samples
        if eval_moving is None:
            initial_metric = _evaluate(f32, moving_on_fixed, sitk.Transform(dim, sitk.sitkIdentity),
                                       "mean_squares", bins, None, None)
            final_metric = _evaluate(f32, moving_on_fixed, dft, "mean_squares", bins, None, None)
        elif swap:
            initial_metric = _evaluate(m_metric, f_metric, as_affine(begin).GetInverse(), metric, bins,
                                       mmask, fmask)
            final_metric = _evaluate(m_metric, f_metric, as_affine(final).GetInverse(), metric, bins,
                                     mmask, fmask)
        else:
            initial_metric = _evaluate(f_metric, eval_moving, begin, metric, bins, fmask, mmask)
            final_metric = _evaluate(f_metric, eval_moving, final, metric, bins, fmask, mmask)
        if math.isfinite(initial_metric) and (not math.isfinite(final_metric) or
                                              final_metric > initial_metric + 1e-9 * abs(initial_metric)):
            warnings.warn(
                f"the {metric} metric got worse during registration ({initial_metric:.6g} -> "
                f"{final_metric:.6g}): the optimiser probably diverged. Try a smaller "
                "`learning_rate`, more `levels`, a better `init`, or masks around the anatomy "
                "of interest.", RegistrationWarning, stacklevel=2)
        if kind in ("similarity", "affine"):
            _check_scale(optimised, kind)
        if user_cb is not None:
            user_cb(1.0, f"register done ({kind}, {metric})")
        resampled = resample(m32, fimg, final)
    finally:
        close()
    return RegistrationResult(
        transform=final,
        resampled=back(resampled),
        metric_trace=_trace_frame(rows),
        initial_metric=initial_metric,
        final_metric=final_metric,
        seconds=time.perf_counter() - t0,
        stop_reason=stop,
        transform_kind=kind,
        metric=metric,
        levels=lv,
        reference=fimg,
        sampled_on="moving" if swap else "fixed",
    )
