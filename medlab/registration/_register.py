"""``register``: one entry point that runs linear, B-spline and demons stages in order.

Each model lives in its own module with its own options object (:class:`LinearOptions`,
:class:`BSplineOptions`, :class:`DemonsOptions`); this module checks the images, builds the list
of stages, runs them one after the other (each from the last accepted transform), keeps a verdict
per stage and issues the warnings of the stages it used, on the caller's thread.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
import warnings
from collections.abc import Sequence

from medlab._options import check_choice

from ._bspline import BSplineOptions, run_bspline
from ._common import RegistrationError, RegistrationWarning, check_dimensions, check_transform, float_image, scalar_image
from ._demons import DEMONS, DemonsOptions, run_demons
from ._landmarks import check_points
from ._linear import (
    LINEAR,
    SAMPLE_MARGIN,
    SAMPLE_ON,
    SCALE_BOUNDS,
    WINSORIZE,
    LinearOptions,
    run_linear,
)
from ._method import (
    DEFAULTS,
    METRICS,
    Pair,
    as_kind,
    mask_image,
    progress_callable,
    rotation_centre,
    sub_progress,
    trace_frame,
)
from ._resample import resample
from ._result import RegistrationResult, StageResult

__all__ = ["register", "RegistrationResult", "StageResult", "LinearOptions", "BSplineOptions",
           "DemonsOptions", "TRANSFORMS", "METRICS", "INITS", "DEFAULTS", "SAMPLE_ON", "SAMPLE_MARGIN",
           "SCALE_BOUNDS", "WINSORIZE", "default_metric", "stage_options"]

TRANSFORMS = (*LINEAR, "bspline", *DEMONS)
INITS = ("geometry", "moments", "landmarks")

_OPTIONS = {**dict.fromkeys(LINEAR, LinearOptions), "bspline": BSplineOptions,
            **dict.fromkeys(DEMONS, DemonsOptions)}
_RUNNERS = {LinearOptions: run_linear, BSplineOptions: run_bspline, DemonsOptions: run_demons}

#: Keywords of ``register``'s one-function form and the value at which each does nothing; a
#: keyword that is not an option of the transform asked is accepted only at that value.
_NEUTRAL = {"metric": None, "levels": None, "smoothing_mm": None, "iterations": None, "learning_rate": None,
            "sampling_fraction": None, "histogram_bins": 32, "mesh_spacing_mm": None, "field_sigma_mm": None,
            "match_histograms": False, "sample_on": "auto", "winsorize": None, "search_mm": 0.0, "seed": 0}


def default_metric(transform: str = "rigid", modalities: Sequence[str] | None = None) -> str:
    """The metric :func:`register` uses when ``metric`` is None.

    Demons always compare intensities directly (``'mean_squares'``). Otherwise: Mattes mutual
    information for two different modalities or when the modalities are not given (it works
    for both cases), mean squares for CT-CT (Hounsfield units are calibrated), normalised
    correlation for two images of another same modality (MR-MR, PET-PET: same contrast, scale
    may differ).

    Parameters
    ----------
    transform : str
        One of ``TRANSFORMS``.
    modalities : (str, str), optional
        ``(fixed, moving)`` modalities, e.g. ``('CT', 'PET')``; a suffix after ``_`` is
        ignored (``'MR_T1'`` is MR).

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


def _same(value, neutral) -> bool:
    if neutral is None or value is None:
        return value is neutral
    try:
        return bool(value == neutral)
    except (TypeError, ValueError):
        return False


def stage_options(transform: str = "rigid", **options):
    """The options object of ``transform`` built from ``register``'s keywords.

    Parameters
    ----------
    transform : str
        One of ``TRANSFORMS``.
    **options
        Fields of the transform's options class (:class:`LinearOptions`,
        :class:`BSplineOptions`, :class:`DemonsOptions`). A keyword of another class is
        accepted only at its neutral value (e.g. ``search_mm=0`` for demons), so that one set
        of keywords can be passed for every transform; otherwise it is a ValueError.

    Examples
    --------
    >>> stage_options("affine", iterations=50)
    LinearOptions(transform='affine', metric=None, levels=None, smoothing_mm=None, iterations=50, learning_rate=None, sampling_fraction=None, histogram_bins=32, sample_on='auto', winsorize=None, search_mm=0.0, seed=0)
    """
    kind = check_choice("transform", transform, TRANSFORMS)
    cls = _OPTIONS[kind]
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    given = {}
    for name, value in options.items():
        if name in names:
            given[name] = value
        elif name not in _NEUTRAL:
            close = difflib.get_close_matches(name, sorted(set(_NEUTRAL) | names), n=1)
            hint = f" By {name!r}, did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"register() got an unexpected keyword argument {name!r}.{hint}")
        elif name == "metric" and kind in DEMONS:
            if value is not None and check_choice("metric", value, METRICS) != "mean_squares":
                raise ValueError(
                    f"`metric` must be 'mean_squares' for {kind}: demons compare intensities directly "
                    f"(same modality only); got {value!r}. For two modalities use transform='bspline' "
                    "with metric='mattes'.")
        elif not _same(value, _NEUTRAL[name]):
            owners = [c.__name__ for c in (LinearOptions, BSplineOptions, DemonsOptions)
                      if name in {f.name for f in dataclasses.fields(c)}]
            which = {"LinearOptions": "linear (rigid, similarity, affine)", "BSplineOptions": "B-spline",
                     "DemonsOptions": "demons"}
            raise ValueError(
                f"`{name}` is an option of {' and '.join(which[o] for o in owners)} registration "
                f"({', '.join(owners)}), not of transform={kind!r}; got {name}={value!r}")
    if cls is not BSplineOptions:
        given["transform"] = kind
    return cls(**given)


def _as_stage(stage):
    if isinstance(stage, LinearOptions | BSplineOptions | DemonsOptions):
        return stage
    if isinstance(stage, str):
        return stage_options(stage)
    raise TypeError(f"each of `stages` must be a transform name or LinearOptions/BSplineOptions/"
                    f"DemonsOptions; got {stage!r}")


def _build_stages(transform, stages, rigid_first, init, initial_transform, options):
    if stages is None:
        opts = stage_options("rigid" if transform is None else transform, **options)
        if (opts.transform in ("similarity", "affine") and rigid_first and initial_transform is None
                and init != "landmarks"):
            # ANTs' rigid -> affine practice: the same options, a rigid stage first; only the
            # first stage searches (multi-start)
            return [dataclasses.replace(opts, transform="rigid"), dataclasses.replace(opts, search_mm=0.0)]
        return [opts]
    if transform is not None:
        raise ValueError(f"give `transform` ({transform!r}) or `stages`, not both")
    if options:
        raise ValueError(f"with `stages`, give each stage's options in its options object "
                         f"(LinearOptions(...), ...); got keywords {sorted(options)}")
    if isinstance(stages, str | LinearOptions | BSplineOptions | DemonsOptions):
        stages = [stages]
    out = [_as_stage(s) for s in stages]
    if not out:
        raise ValueError("`stages` is empty; give at least one, e.g. stages=['rigid']")
    return out


def _check_start(dim, init, fixed_landmarks_mm, moving_landmarks_mm, initial_transform):
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
    return initial_transform


def _trace(runs):
    """One trace: a single stage's as it is; several with a ``stage`` column, each stage's levels
    numbered after the previous ones'."""
    if len(runs) == 1:
        return trace_frame(runs[0].rows)
    import pandas as pd  # lazy, as in trace_frame

    parts, offset = [], 0
    for run in runs:
        frame = trace_frame(run.rows).assign(stage=run.kind)
        parts.append(frame.assign(level=frame["level"] + offset))
        offset += len(run.levels)
    return pd.concat(parts, ignore_index=True)


def register(
    fixed,
    moving,
    *,
    transform: str | None = None,
    stages=None,
    modalities: Sequence[str] | None = None,
    init: str | None = None,
    fixed_landmarks_mm=None,
    moving_landmarks_mm=None,
    initial_transform=None,
    fixed_mask=None,
    moving_mask=None,
    rigid_first: bool = True,
    spacing=None,
    progress=None,
    **options,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed``: find the transform mapping fixed points to moving points.

    One call for every transform model: a list of stages (linear, B-spline, demons), each run
    from the transform the last accepted stage found, with a multi-resolution pyramid, a
    metric, initialisation, masks, progress and stop. Each stage's verdict is in
    ``result.stages``.

    Parameters
    ----------
    fixed, moving : sitk.Image or (M, N[, P]) ndarray
        Scalar images of the same dimension (2D or 3D), any grids: registration works in
        physical space (mm). numpy arrays are indexed (z, y, x), with ``spacing``.
    transform : {'rigid', 'similarity', 'affine', 'bspline', 'demons', 'diffeomorphic_demons'}, optional
        One model (default ``'rigid'``), with its options as keywords (``**options``).
        Similarity and affine run as two stages, rigid first (see ``rigid_first``).
    stages : sequence of str or options objects, optional
        Instead of ``transform``: the stages in order, each a transform name (default
        options) or a :class:`LinearOptions`, :class:`BSplineOptions` or
        :class:`DemonsOptions`, e.g. ``['rigid', LinearOptions('affine'),
        BSplineOptions(mesh_spacing_mm=30)]``. A later linear stage starts from the last
        accepted transform (a deformable stage is composed on top of it). A later stage that
        collapses (similarity/affine scaling outside ``SCALE_BOUNDS``) or fails (runs off the
        image) is not used: its verdict says so and the previous stage's transform goes on.
    modalities : (str, str), optional
        ``(fixed, moving)`` modalities, e.g. ``('CT', 'PET')``, to choose the default metric
        (:func:`default_metric`).
    init : {'geometry', 'moments', 'landmarks'}, optional
        How the first stage starts. None (default): the identity, i.e. the images' physical
        coordinates are trusted (scans of one patient from one scanner or session, as in
        PET/CT, or a data set resampled into one space). ``'geometry'`` aligns the centres of
        the two image grids, ``'moments'`` the intensity centres of mass (above each image's
        minimum), ``'landmarks'`` fits ``fixed_landmarks_mm`` onto ``moving_landmarks_mm``
        (see :func:`landmark_registration`). With ``initial_transform``, leave it None.
    fixed_landmarks_mm, moving_landmarks_mm : (N, dim) array_like, optional
        Paired physical points (x, y[, z], mm) for ``init='landmarks'``.
    initial_transform : sitk.Transform or RegistrationResult, optional
        A previous fixed -> moving result to start from. A linear transform seeds a linear
        stage directly when it fits the model (rigid into affine); otherwise the new stage is
        found on top of it and the result is ``compose(initial, new)``.
    fixed_mask, moving_mask : sitk.Image or ndarray, optional
        Only voxels inside (nonzero) count in the metric; same grid as their image. Not used
        by demons (a ValueError).
    rigid_first : bool
        ``transform='similarity'`` or ``'affine'`` started from ``init`` (not from landmarks
        or an ``initial_transform``): run ``stages=[rigid, transform]`` with the same options
        (ANTs' rigid -> affine practice; only the rigid stage searches with ``search_mm``).
        On the 10 sarcoma patients with known affine motions it removes the CT/PET failures
        of a direct affine (the ``direct`` columns against medlab's in
        ``benchmarks/results/registration.md``, which ``benchmarks/bench_registration.py``
        writes).
    spacing : sequence of float, optional
        Voxel size in mm (array axis order) for numpy inputs.
    progress : None, True or callable
        ``progress(fraction, message)`` after every iteration (messages ``"level L/N,
        iteration I, metric M"``; return False to stop: then :class:`InterruptedError` is
        raised); True shows a progress bar. Each stage reports on its share of [0, 1]. A
        Jupyter kernel interrupt also stops it.
    **options
        With ``transform``: the fields of its options object. Linear (:class:`LinearOptions`):
        ``metric``, ``levels``, ``smoothing_mm``, ``iterations``, ``learning_rate``,
        ``sampling_fraction``, ``histogram_bins``, ``sample_on``, ``winsorize``,
        ``search_mm``, ``seed``. B-spline (:class:`BSplineOptions`): ``metric``, ``levels``,
        ``smoothing_mm``, ``iterations``, ``sampling_fraction``, ``histogram_bins``,
        ``mesh_spacing_mm``, ``winsorize``, ``seed``. Demons (:class:`DemonsOptions`):
        ``levels``, ``smoothing_mm``, ``iterations``, ``field_sigma_mm``,
        ``match_histograms``. See each class for meanings and defaults (``DEFAULTS``).

    Returns
    -------
    RegistrationResult
        ``transform`` (fixed -> moving), ``resampled`` (moving on the fixed grid),
        ``metric_trace``, ``initial_metric``, ``final_metric``, ``seconds``, ``stop_reason``,
        ``sampled_on``, ``stages`` (one :class:`StageResult` each, with its verdict);
        ``.apply(image, is_label=...)`` and ``.save(path)``.

    Raises
    ------
    ValueError
        Images of different dimension, no overlap after initialisation, bad options.
    RegistrationError
        The (first) stage moved the moving image out of view (diverged).
    InterruptedError
        Stopped by ``progress``.

    Warns
    -----
    RegistrationWarning
        For a stage whose transform is used: the metric at the end is worse than at the start
        (the optimiser diverged), the initial overlap is below 10%, or a single
        similarity/affine stage collapsed. Issued once, from the calling thread, after the
        stages ran (``result.stages[i].notes`` hold them too).

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
    >>> staged = register(fixed, moving, stages=["rigid", LinearOptions("affine", metric="mean_squares",
    ...                                                                 levels=(2, 1))])
    >>> [(s.kind, s.verdict) for s in staged.stages]
    [('rigid', 'accepted'), ('affine', 'accepted')]
    """
    t0 = time.perf_counter()
    stage_list = _build_stages(transform, stages, rigid_first, init, initial_transform, options)
    fimg, back = scalar_image(fixed, spacing, "fixed")
    mimg, _ = scalar_image(moving, spacing, "moving")
    dim = check_dimensions(fimg, mimg)
    initial_transform = _check_start(dim, init, fixed_landmarks_mm, moving_landmarks_mm, initial_transform)
    first = stage_list[0]
    if (isinstance(first, LinearOptions) and first.sample_on == "moving" and initial_transform is not None
            and not initial_transform.IsLinear()):
        raise ValueError("sample_on='moving' needs a linear registration started from a linear transform "
                         f"(the result is inverted); got transform={first.transform!r} with a non-linear "
                         "initial_transform")
    for name, size in (("fixed", fimg.GetSize()), ("moving", mimg.GetSize())):
        if min(size) < 4:
            raise ValueError(f"`{name}` (size {size}) must have at least 4 voxels along every axis")
    fmask = mask_image(fixed_mask, fimg, "fixed_mask", "fixed")
    mmask = mask_image(moving_mask, mimg, "moving_mask", "moving")
    demons = [s.transform for s in stage_list if isinstance(s, DemonsOptions)]
    if demons and (fmask is not None or mmask is not None):
        raise ValueError(f"masks are not used by {demons[0]}; crop the images instead, or use 'bspline'")
    pair = Pair(fixed=fimg, moving=mimg, fixed32=float_image(fimg), moving32=float_image(mimg),
                fixed_mask=fmask, moving_mask=mmask, back=back, dim=dim, centre=rotation_centre(fimg, fmask))

    user_cb, close = progress_callable(progress)
    runs, verdicts, kept = [], [], None  # kept: the run whose transform goes on
    try:
        n = len(stage_list)
        for i, opts in enumerate(stage_list):
            t_stage = time.perf_counter()
            metric = opts.metric or default_metric(opts.transform, modalities)
            cb = sub_progress(user_cb, i / n, (i + 1) / n)
            if kept is None:
                start = dict(init=init, fixed_landmarks_mm=fixed_landmarks_mm,
                             moving_landmarks_mm=moving_landmarks_mm, initial_transform=initial_transform)
            else:
                start = dict(initial_transform=kept.transform, sample_on=runs[0].sampled_on)
            try:
                run = _RUNNERS[type(opts)](pair, opts, metric, user_cb=cb, **start)
            except Exception as exc:
                if kept is None or not isinstance(exc, RegistrationError):
                    raise
                # seen on unperturbed sarcoma CT/PET pairs: the affine stage runs off the image
                verdicts.append(StageResult(kind=opts.transform, metric=metric, verdict="rejected",
                                            reason=f"failed ({str(exc).split(': the')[0]})",
                                            seconds=time.perf_counter() - t_stage))
                continue
            if cb is not None:
                cb(1.0, f"register done ({run.kind}, {metric})")
            if run.collapse is not None and kept is not None:
                verdict, reason = "collapsed", run.collapse
            else:
                verdict, reason = "accepted", ""
                if run.collapse is not None:
                    run.notes.append(f"the {run.kind} result {run.collapse}. Use rigid_first=True, a fixed "
                                     "mask over the anatomy, or stay with 'rigid'.")
                kept = run
            runs.append(run)
            verdicts.append(StageResult(
                kind=run.kind, metric=metric, verdict=verdict, reason=reason, initial_metric=run.initial_metric,
                final_metric=run.final_metric, iterations=len(run.rows), levels=run.levels,
                seconds=time.perf_counter() - t_stage, sampled_on=run.sampled_on, notes=tuple(run.notes)))
        resampled = resample(pair.moving32, fimg, kept.transform)
    finally:
        close()

    last_kind = stage_list[-1].transform
    stop, transform_out = kept.stop_reason, kept.transform
    if not verdicts[-1].accepted:
        stop = (f"{last_kind} stage rejected ({verdicts[-1].reason}); {kept.kind} stage kept. "
                f"{kept.stop_reason}")
        if kept.kind in LINEAR and last_kind in LINEAR:
            # the kept stage as a transform of the kind asked (a rigid motion is an affine one)
            transform_out = as_kind(kept.transform, last_kind, kept.transform.GetCenter()) or kept.transform
    for run, verdict in zip(runs, [v for v in verdicts if v.verdict != "rejected"], strict=True):
        if verdict.accepted:
            for note in run.notes:
                warnings.warn(note, RegistrationWarning, stacklevel=2)
    return RegistrationResult(
        transform=transform_out,
        resampled=back(resampled),
        metric_trace=_trace(runs),
        initial_metric=runs[0].initial_metric,
        final_metric=kept.final_metric,
        seconds=time.perf_counter() - t0,
        stop_reason=stop,
        transform_kind=last_kind,
        metric=kept.metric,
        levels=tuple(v for run in runs for v in run.levels),
        reference=fimg,
        sampled_on=runs[0].sampled_on,
        stages=tuple(verdicts),
    )
