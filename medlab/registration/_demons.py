"""Demons and diffeomorphic demons stages (:class:`DemonsOptions`): dense displacement fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from medlab._options import check_choice, check_positive

from ._bspline import nonlinear_start
from ._method import (
    DEFAULTS,
    Pair,
    StageRun,
    check_common,
    check_finite,
    check_overlap,
    evaluate,
    pyramid_levels,
    run_demons_filter,
    worse_note,
)
from ._resample import resample
from ._transforms import compose

__all__ = ["DemonsOptions", "DEMONS", "run_demons"]

DEMONS = ("demons", "diffeomorphic_demons")


@dataclass(frozen=True)
class DemonsOptions:
    """Options of one (diffeomorphic) demons stage: a dense displacement field found by
    comparing intensities directly (mean squares; same modality only; no masks).

    Give it to :func:`medlab.registration.register` as a stage (``stages=[..., DemonsOptions()]``)
    or pass its fields as keywords (``register(f, m, transform='demons', iterations=50)``).

    Parameters
    ----------
    transform : {'demons', 'diffeomorphic_demons'}
        Thirion's demons, or the diffeomorphic variant (a fold-free field).
    levels : sequence of int, optional
        Shrink factors, coarse to fine (default ``(4, 2, 1)``).
    smoothing_mm : float or sequence of float, optional
        Gaussian sigma (mm) of the images per level before shrinking (default ``shrink / 2``
        voxels of the finest fixed spacing).
    iterations : int, optional
        Demons iterations per level (default 100).
    field_sigma_mm : float, optional
        Gaussian smoothing of the displacement field, mm at the finest level (default 1.5 x
        the largest fixed voxel size); kept in voxels at coarser levels.
    match_histograms : bool
        Match the moving histogram to the fixed one first, for two scans of one modality whose
        intensities differ (e.g. MR from two sessions). Default False: on images with one
        intensity scale it distorts them (on the MNI152 with a known deformation, demons
        recovered it less well with matching than without).

    Examples
    --------
    >>> DemonsOptions("diffeomorphic_demons", iterations=20).iterations
    20
    """

    transform: str = "demons"
    levels: Sequence[int] | None = None
    smoothing_mm: float | Sequence[float] | None = None
    iterations: int | None = None
    field_sigma_mm: float | None = None
    match_histograms: bool = False

    @property
    def metric(self) -> str:
        """Always ``'mean_squares'``: demons compare intensities directly."""
        return "mean_squares"

    def __post_init__(self):
        check_choice("transform", self.transform, DEMONS)
        check_common(self, DEFAULTS[self.transform]["levels"])
        if self.field_sigma_mm is not None:
            check_positive("field_sigma_mm", self.field_sigma_mm)
        if not isinstance(self.match_histograms, bool | np.bool_):
            raise TypeError(f"`match_histograms` must be True or False; got {self.match_histograms!r}")


def _pyramid(img: sitk.Image, shrink: int, sigma_mm: float) -> sitk.Image:
    out = sitk.SmoothingRecursiveGaussian(img, sigma_mm) if sigma_mm > 0 else img
    return sitk.Shrink(out, [shrink] * img.GetDimension()) if shrink > 1 else out


def _demons_field(fixed, moving_on_fixed, kind, levels, smoothing, iterations, field_sigma_mm, user_cb):
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

        field = run_demons_filter(filt, [f, m, init], user_cb, describe)
        stops.append(f"level {li + 1}: {filt.GetElapsedIterations()} iterations, "
                     f"RMS change {filt.GetRMSChange():.3g}")
    if field.GetSize() != fixed.GetSize():
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64)
    return field, rows, "; ".join(stops)


def run_demons(pair: Pair, options: DemonsOptions, metric: str = "mean_squares", *, init=None,
               fixed_landmarks_mm=None, moving_landmarks_mm=None, initial_transform=None, sample_on=None,
               user_cb=None) -> StageRun:
    """One demons stage on a prepared pair (``register`` checked the arguments): the moving
    image is resampled through the start transform, then a field is found on the fixed grid."""
    kind = options.transform
    d = DEFAULTS[kind]
    f32 = pair.fixed32
    lv, sm = pyramid_levels(d["levels"] if options.levels is None else options.levels, options.smoothing_mm,
                            float(min(pair.fixed.GetSpacing())))
    iters = d["iterations"] if options.iterations is None else options.iterations
    fsig = options.field_sigma_mm if options.field_sigma_mm is not None else 1.5 * float(max(pair.fixed.GetSpacing()))
    notes = []
    moving_initial, begin = nonlinear_start(pair, init, fixed_landmarks_mm, moving_landmarks_mm, initial_transform)
    check_overlap(pair, begin, init, notes)
    moving_on_fixed = resample(pair.moving32, f32, begin)
    if options.match_histograms:
        moving_on_fixed = sitk.HistogramMatching(moving_on_fixed, f32, 256, 7, True)
    field_img, rows, stop = _demons_field(f32, moving_on_fixed, kind, lv, sm, iters, fsig, user_cb)
    dft = sitk.DisplacementFieldTransform(field_img)
    final = dft if moving_initial is None else compose(moving_initial, dft)
    check_finite(final)
    identity = sitk.Transform(pair.dim, sitk.sitkIdentity)
    initial_metric = evaluate(f32, moving_on_fixed, identity, "mean_squares", 32, None, None)
    final_metric = evaluate(f32, moving_on_fixed, dft, "mean_squares", 32, None, None)
    worse_note(notes, "mean_squares", initial_metric, final_metric)
    return StageRun(kind=kind, metric="mean_squares", transform=final, optimised=dft, rows=rows, stop_reason=stop,
                    initial_metric=initial_metric, final_metric=final_metric, levels=lv, notes=notes)
