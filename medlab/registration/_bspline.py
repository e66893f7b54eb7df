"""B-spline free-form deformation stages (:class:`BSplineOptions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from medlab._options import check_positive

from ._method import (
    DEFAULTS,
    Pair,
    StageRun,
    check_common,
    check_finite,
    check_overlap,
    check_winsorize,
    clip,
    evaluate,
    initial_linear,
    mask_hint,
    new_method,
    pyramid_levels,
    run_method,
    worse_note,
)
from ._transforms import compose

__all__ = ["BSplineOptions", "run_bspline"]


@dataclass(frozen=True)
class BSplineOptions:
    """Options of one B-spline (free-form deformation) registration stage.

    Give it to :func:`medlab.registration.register` as a stage (``stages=[..., BSplineOptions()]``)
    or pass its fields as keywords (``register(f, m, transform='bspline', mesh_spacing_mm=15)``).
    Fields left at None take ``DEFAULTS['bspline']``.

    Parameters
    ----------
    metric : {'mean_squares', 'correlation', 'mattes'}, optional
        As for :class:`LinearOptions`; default :func:`default_metric` of ``'bspline'`` and
        ``register``'s ``modalities``.
    levels : sequence of int, optional
        Shrink factors, coarse to fine (default ``(2, 1)``); the control point mesh doubles
        from level to level.
    smoothing_mm : float or sequence of float, optional
        Gaussian sigma (mm) per level before shrinking (default ``shrink / 2`` voxels of the
        finest fixed spacing).
    iterations : int, optional
        Maximum gradient-descent (line search) iterations per level (default 30).
    sampling_fraction : float, optional
        Fraction of fixed voxels sampled (randomly, seeded) for the metric, in (0, 1]
        (default 0.05).
    histogram_bins : int
        Bins of the joint histogram for Mattes mutual information (>= 4).
    mesh_spacing_mm : float, optional
        Control point spacing at the finest level, mm (default 20).
    winsorize : (low, high) percentiles, optional
        Mattes mutual information: clip each image to these percentiles first (see
        :class:`LinearOptions`).
    seed : int
        Seed of the random metric sampling.

    Examples
    --------
    >>> BSplineOptions(mesh_spacing_mm=15.0).transform
    'bspline'
    """

    metric: str | None = None
    levels: Sequence[int] | None = None
    smoothing_mm: float | Sequence[float] | None = None
    iterations: int | None = None
    sampling_fraction: float | None = None
    histogram_bins: int = 32
    mesh_spacing_mm: float | None = None
    winsorize: Sequence[float] | None = None
    seed: int = 0
    transform: str = field(default="bspline", init=False)

    def __post_init__(self):
        check_common(self, DEFAULTS["bspline"]["levels"])
        if self.mesh_spacing_mm is not None:
            check_positive("mesh_spacing_mm", self.mesh_spacing_mm)
        check_winsorize(self.winsorize)


def _bspline_mesh(fixed: sitk.Image, mesh_spacing_mm: float, n_levels: int):
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    final = np.maximum(1, np.round(extent / mesh_spacing_mm)).astype(int)
    factor = 2 ** (n_levels - 1)
    initial = np.maximum(1, np.ceil(final / factor)).astype(int)
    return [int(v) for v in initial], [2**k for k in range(n_levels)]


def nonlinear_start(pair: Pair, init, fixed_landmarks_mm, moving_landmarks_mm, initial_transform):
    """``(moving initial transform or None, begin)`` of a non-linear stage: the given transform,
    or a rigid (affine for landmarks) initialisation, or the identity."""
    moving_initial = None
    if initial_transform is not None:
        moving_initial = initial_transform
    elif init is not None:
        moving_initial = initial_linear("affine" if init == "landmarks" else "rigid", pair.fixed32,
                                        pair.moving32, init, fixed_landmarks_mm, moving_landmarks_mm,
                                        pair.centre)
    begin = moving_initial if moving_initial is not None else sitk.Transform(pair.dim, sitk.sitkIdentity)
    return moving_initial, begin


def run_bspline(pair: Pair, options: BSplineOptions, metric: str, *, init=None, fixed_landmarks_mm=None,
                moving_landmarks_mm=None, initial_transform=None, sample_on=None, user_cb=None) -> StageRun:
    """One B-spline stage on a prepared pair (``register`` checked the arguments); a linear
    ``initial_transform`` (an earlier stage) is composed under the deformation."""
    d = DEFAULTS["bspline"]
    fmask, mmask = pair.fixed_mask, pair.moving_mask
    lv, sm = pyramid_levels(d["levels"] if options.levels is None else options.levels, options.smoothing_mm,
                            float(min(pair.fixed.GetSpacing())))
    iters = d["iterations"] if options.iterations is None else options.iterations
    fraction = d["sampling_fraction"] if options.sampling_fraction is None else options.sampling_fraction
    mesh_mm = d["mesh_spacing_mm"] if options.mesh_spacing_mm is None else options.mesh_spacing_mm
    bins = options.histogram_bins
    percentiles = check_winsorize(options.winsorize) if metric == "mattes" else None
    notes = []
    moving_initial, begin = nonlinear_start(pair, init, fixed_landmarks_mm, moving_landmarks_mm, initial_transform)
    check_overlap(pair, begin, init, notes)
    f_metric, m_metric = clip(pair.fixed32, percentiles), clip(pair.moving32, percentiles)
    rows = []
    with mask_hint(pair):
        R = new_method(metric, bins, fraction, options.seed, fmask, mmask, lv, sm, moving_initial)
        mesh, scale_factors = _bspline_mesh(f_metric, mesh_mm, len(lv))
        tx = sitk.BSplineTransformInitializer(f_metric, mesh, order=3)
        R.SetInitialTransformAsBSpline(tx, inPlace=True, scaleFactors=scale_factors)
        # as SimpleITK's multi-resolution B-spline example: L-BFGS-B cannot follow a mesh
        # that is refined between levels (its scales keep the first level's size)
        R.SetOptimizerAsGradientDescentLineSearch(
            learningRate=5.0, numberOfIterations=iters, convergenceMinimumValue=1e-4,
            convergenceWindowSize=5)
        run_method(R, f_metric, m_metric, lv, iters, user_cb, rows, "register")
        stop = R.GetOptimizerStopConditionDescription()
    final = tx if moving_initial is None else compose(moving_initial, tx)
    check_finite(final)
    initial_metric = evaluate(f_metric, m_metric, begin, metric, bins, fmask, mmask)
    final_metric = evaluate(f_metric, m_metric, final, metric, bins, fmask, mmask)
    worse_note(notes, metric, initial_metric, final_metric)
    return StageRun(kind="bspline", metric=metric, transform=final, optimised=tx, rows=rows, stop_reason=stop,
                    initial_metric=initial_metric, final_metric=final_metric, levels=lv, notes=notes)
