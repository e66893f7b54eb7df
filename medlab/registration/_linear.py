"""Linear registration stages: rigid, similarity, affine (:class:`LinearOptions`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from medlab._options import check_choice, check_positive

from ._common import RegistrationError
from ._method import (
    DEFAULTS,
    Pair,
    StageRun,
    as_kind,
    check_common,
    check_finite,
    check_overlap,
    check_winsorize,
    clip,
    evaluate,
    initial_linear,
    inside_fixed,
    mask_hint,
    new_method,
    pyramid_levels,
    rotation_centre,
    run_method,
    worse_note,
)
from ._transforms import as_affine, compose

__all__ = ["LinearOptions", "LINEAR", "SAMPLE_ON", "WINSORIZE", "SAMPLE_MARGIN", "MAX_SAMPLES",
           "SCALE_BOUNDS", "collapsed", "run_linear"]

LINEAR = ("rigid", "similarity", "affine")
SAMPLE_ON = ("auto", "fixed", "moving")

#: ``winsorize=WINSORIZE`` (opt-in): clip both images to these percentiles of their own
#: intensities before Mattes mutual information (ANTs' default), so the histogram bins cover
#: the anatomy rather than a few extreme voxels (CT metal, a PET hot spot). Not the default:
#: measured on the 10 sarcoma patients with known rigid motions (bench_registration cases), it
#: made CT/PET more repeatable (against the method's own unperturbed optimum) without bringing it
#: closer to the truth, made CT/MR worse (one patient failed with it), and a rigid MR phantom
#: with inverted contrast diverged with it.
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

#: A similarity or affine result that scales any axis outside these bounds has collapsed: real
#: scans of one patient differ in scale by a few percent. Mutual information can reward mapping
#: the whole fixed image onto a small part of the moving one (a radial body profile onto a
#: radial tumour profile): on the sarcoma CT/PET (STS_006, STS_014) a collapsed affine
#: (scales far below 1) has a better mutual information than the true alignment, from any
#: start. A stage
#: after another one (``rigid_first``, or ``stages=[...]``) that collapses is rejected and the
#: earlier stage kept (its verdict ``'collapsed'`` in ``result.stages``); a single stage is
#: returned with a :class:`RegistrationWarning`.
SCALE_BOUNDS = (0.8, 1.25)


@dataclass(frozen=True)
class LinearOptions:
    """Options of one linear registration stage (rigid, similarity or affine).

    Give it to :func:`medlab.registration.register` as a stage (``stages=[LinearOptions(...)]``)
    or pass its fields as keywords (``register(f, m, transform='affine', iterations=50)``).
    Fields left at None take ``DEFAULTS[transform]``.

    Parameters
    ----------
    transform : {'rigid', 'similarity', 'affine'}
        Rigid (Euler angles + translation), similarity (+ isotropic scale) or affine.
    metric : {'mean_squares', 'correlation', 'mattes'}, optional
        Mean squares (same modality, same intensity scale), normalised correlation (same
        modality, linear intensity relation), Mattes mutual information (any two modalities).
        Default: :func:`default_metric` of ``transform`` and ``register``'s ``modalities``.
    levels : sequence of int, optional
        Shrink factors of the multi-resolution pyramid, coarse to fine (default ``(4, 2, 1)``).
    smoothing_mm : float or sequence of float, optional
        Gaussian sigma (mm) per level before shrinking (default ``shrink / 2`` voxels of the
        finest fixed spacing; 0 at full resolution).
    iterations : int, optional
        Maximum optimiser iterations per level (default 200).
    learning_rate : float, optional
        The first trial step of the conjugate-gradient line search at the coarsest level, as
        the largest motion of any voxel in mm (parameter scales are estimated from physical
        shifts); it halves with the voxel size at each finer level. Default 1 mm. Each level
        stops when the metric has flattened over 10 iterations, or after ``iterations``.
    sampling_fraction : float, optional
        Fraction of fixed voxels sampled (randomly, seeded) for the metric, in (0, 1]. Default
        0.25, capped at ``MAX_SAMPLES`` (50 000) samples per level, which makes large images
        fast; a value given is used exactly.
    histogram_bins : int
        Bins of the joint histogram for Mattes mutual information (>= 4).
    sample_on : {'auto', 'fixed', 'moving'}
        The image whose voxels are sampled for the metric. Samples that map outside the other
        image drop out, so sampling an image whose field of view sticks out of the other one
        lets the optimiser choose which anatomy is compared (mutual information can rise by
        sliding a small crop off its place). ``'auto'`` samples the moving image when clearly
        more of it lies inside the fixed one than the other way round at the start (e.g. an MR
        crop inside a CT; see ``SAMPLE_MARGIN``), otherwise the fixed image. Sampling the
        moving image registers it the other way round and inverts the result: the transform
        is always fixed -> moving. A later stage with ``'auto'`` samples where the first did.
    winsorize : (low, high) percentiles, optional
        Mattes mutual information: clip each image to these percentiles of its intensities
        first (e.g. ``WINSORIZE = (0.5, 99.5)``, ANTs' default) so the histogram covers the
        anatomy, not a few extreme voxels. Default None (measured trade-off at ``WINSORIZE``).
        The resampled image is never clipped.
    search_mm : float
        Multi-start search: the coarsest level is run from the start and from the start
        shifted by +-``search_mm`` along each axis (7 starts in 3D), and the finer levels go on
        from the one that ends with the lowest metric. 0 (default): one start. With 10 mm on
        the 10 sarcoma patients with known rigid motions it made the result more repeatable
        but not closer to the truth, at about one and a half times the time; hence off by
        default.
    seed : int
        Seed of the random metric sampling: the same seed gives the same result.

    Examples
    --------
    >>> LinearOptions("affine", iterations=50).transform
    'affine'
    >>> LinearOptions("elastic")
    Traceback (most recent call last):
    ...
    ValueError: `transform` must be one of 'rigid', 'similarity', 'affine'; got 'elastic'.
    """

    transform: str = "rigid"
    metric: str | None = None
    levels: Sequence[int] | None = None
    smoothing_mm: float | Sequence[float] | None = None
    iterations: int | None = None
    learning_rate: float | None = None
    sampling_fraction: float | None = None
    histogram_bins: int = 32
    sample_on: str = "auto"
    winsorize: Sequence[float] | None = None
    search_mm: float = 0.0
    seed: int = 0

    def __post_init__(self):
        check_choice("transform", self.transform, LINEAR)
        check_common(self, DEFAULTS[self.transform]["levels"])
        if self.learning_rate is not None:
            check_positive("learning_rate", self.learning_rate)
        check_choice("sample_on", self.sample_on, SAMPLE_ON)
        check_winsorize(self.winsorize)
        check_positive("search_mm", self.search_mm, allow_zero=True)


def _scales(transform: sitk.Transform) -> tuple[float, float]:
    """Smallest and largest scale of a linear transform (singular values of its matrix)."""
    aff = as_affine(transform)
    dim = aff.GetDimension()
    sv = np.linalg.svd(np.asarray(aff.GetMatrix()).reshape(dim, dim), compute_uv=False)
    return float(sv.min()), float(sv.max())


def collapsed(transform: sitk.Transform) -> str | None:
    """Why ``transform`` counts as collapsed (scales outside ``SCALE_BOUNDS``), else None."""
    lo, hi = _scales(transform)
    if SCALE_BOUNDS[0] <= lo and hi <= SCALE_BOUNDS[1]:
        return None
    return (f"scales the image by {lo:.2f}-{hi:.2f} along its principal axes (outside "
            f"{SCALE_BOUNDS[0]}-{SCALE_BOUNDS[1]}): it has collapsed onto part of the moving image")


def _sample_moving(sample_on, inside_f, pair: Pair, start) -> bool:
    """Whether to sample the metric on the moving image (see ``LinearOptions.sample_on``)."""
    if sample_on != "auto":
        return sample_on == "moving"
    return inside_fixed(pair, as_affine(start).GetInverse()) > inside_f + SAMPLE_MARGIN


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


def _optimise(fixed, moving, metric, start, moving_initial, levels, smoothing, iterations, fraction,
              lr, bins, seed, fixed_mask, moving_mask, user_cb, cap_samples, search_mm):
    # One registration per pyramid level, each starting where the last one ended, by
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
        sampled = fraction if not cap_samples else min(fraction, MAX_SAMPLES / n_vox)
        R = new_method(metric, bins, sampled, seed, fixed_mask, moving_mask, [shrink], [sigma], moving_initial)
        R.SetInitialTransform(initial, inPlace=False)
        R.SetOptimizerAsConjugateGradientLineSearch(
            learningRate=1.0, numberOfIterations=iterations, convergenceMinimumValue=1e-6,
            convergenceWindowSize=10, estimateLearningRate=R.Once,
            maximumStepSizeInPhysicalUnits=lr * shrink / levels[0])
        R.SetOptimizerScalesFromPhysicalShift()
        out = _unwrap(run_method(R, fixed, moving, levels, iterations, user_cb, out_rows,
                                 "register", level_offset=k))
        return out, R.GetOptimizerStopConditionDescription()

    rows = []
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


def run_linear(pair: Pair, options: LinearOptions, metric: str, *, init=None, fixed_landmarks_mm=None,
               moving_landmarks_mm=None, initial_transform=None, sample_on=None, user_cb=None) -> StageRun:
    """One linear stage on a prepared pair (``register`` checked the arguments).

    ``sample_on`` (None: the options') overrides where the metric is sampled: a later stage
    samples where the first one did.
    """
    kind = options.transform
    d = DEFAULTS[kind]
    sample_on = options.sample_on if sample_on is None or options.sample_on != "auto" else sample_on
    if sample_on == "moving" and initial_transform is not None and not initial_transform.IsLinear():
        raise ValueError(
            f"sample_on='moving' needs a linear registration started from a linear transform "
            f"(the result is inverted); got transform={kind!r} with a non-linear initial_transform")
    fimg, mimg, f32, m32 = pair.fixed, pair.moving, pair.fixed32, pair.moving32
    fmask, mmask, centre = pair.fixed_mask, pair.moving_mask, pair.centre
    lv, sm = pyramid_levels(d["levels"] if options.levels is None else options.levels, options.smoothing_mm,
                            float(min(fimg.GetSpacing())))
    iters = d["iterations"] if options.iterations is None else options.iterations
    fraction = d["sampling_fraction"] if options.sampling_fraction is None else options.sampling_fraction
    lr = d["learning_rate"] if options.learning_rate is None else options.learning_rate
    bins, seed = options.histogram_bins, options.seed
    percentiles = check_winsorize(options.winsorize) if metric == "mattes" else None  # only MI bins intensities
    notes = []

    # ---- the starting transform (fixed -> moving)
    moving_initial = None
    if initial_transform is not None:
        start = as_kind(initial_transform, kind, centre) if initial_transform.IsLinear() else None
        if start is None:
            moving_initial = initial_transform
            start = initial_linear(kind, fimg, mimg, None, None, None, centre)
    else:
        start = initial_linear(kind, f32, m32, init, fixed_landmarks_mm, moving_landmarks_mm, centre)
    begin = start if moving_initial is None else compose(moving_initial, start)
    inside_f = check_overlap(pair, begin, init, notes)
    swap = moving_initial is None and _sample_moving(sample_on, inside_f, pair, start)
    # the images the metric sees (clipped for mutual information); `swap`: the other way round
    f_metric, m_metric = clip(f32, percentiles), clip(m32, percentiles)

    # ---- optimise
    cap = options.sampling_fraction is None
    with mask_hint(pair):
        if swap:
            centre_m = rotation_centre(mimg, mmask)
            lv_m, sm_m = pyramid_levels(lv, options.smoothing_mm, float(min(mimg.GetSpacing())))
            back_start = as_kind(as_affine(start).GetInverse(), kind, centre_m)
            reverse, rows, stop = _optimise(m_metric, f_metric, metric, back_start, None, lv_m, sm_m, iters,
                                            fraction, lr, bins, seed, mmask, fmask, user_cb, cap, options.search_mm)
            optimised = as_kind(as_affine(reverse).GetInverse(), kind, centre)
        else:
            optimised, rows, stop = _optimise(f_metric, m_metric, metric, start, moving_initial, lv, sm, iters,
                                              fraction, lr, bins, seed, fmask, mmask, user_cb, cap,
                                              options.search_mm)
    final = optimised if moving_initial is None else compose(moving_initial, optimised)
    check_finite(final)

    # ---- the metric before and after, at full resolution with the same samples
    if swap:
        initial_metric = evaluate(m_metric, f_metric, as_affine(begin).GetInverse(), metric, bins, mmask, fmask)
        final_metric = evaluate(m_metric, f_metric, as_affine(final).GetInverse(), metric, bins, mmask, fmask)
    else:
        initial_metric = evaluate(f_metric, m_metric, begin, metric, bins, fmask, mmask)
        final_metric = evaluate(f_metric, m_metric, final, metric, bins, fmask, mmask)
    worse_note(notes, metric, initial_metric, final_metric)
    return StageRun(
        kind=kind, metric=metric, transform=final, optimised=optimised, rows=rows, stop_reason=stop,
        initial_metric=initial_metric, final_metric=final_metric, levels=lv,
        sampled_on="moving" if swap else "fixed",
        collapse=collapsed(optimised) if kind != "rigid" else None, notes=notes)
