"""What :func:`medlab.registration.register` returns: :class:`RegistrationResult`, with one
:class:`StageResult` per stage."""

from __future__ import annotations

from dataclasses import dataclass, field

import SimpleITK as sitk

from ._resample import resample, resample_labels
from ._transforms import save_transform

__all__ = ["RegistrationResult", "StageResult", "VERDICTS"]

VERDICTS = ("accepted", "collapsed", "rejected")


@dataclass(frozen=True)
class StageResult:
    """The verdict and numbers of one stage of a registration.

    Attributes
    ----------
    kind : str
        The stage's transform model (``'rigid'``, ..., ``'diffeomorphic_demons'``).
    metric : str
        The metric it minimised.
    verdict : {'accepted', 'collapsed', 'rejected'}
        ``'accepted'``: its transform was used (the next stage starts from it, or it is the
        result). ``'collapsed'``: a similarity/affine stage after another one scaled the image
        outside ``SCALE_BOUNDS``; the earlier stage was kept. ``'rejected'``: a stage after
        another one failed (e.g. ran off the image); the earlier stage was kept.
    reason : str
        Why a stage was not accepted ('' when accepted).
    initial_metric, final_metric : float
        The stage's metric at full resolution before and after (NaN when it failed).
    iterations : int
        Optimiser iterations over the stage's levels.
    levels : tuple of int
        The stage's shrink factors.
    seconds : float
        Wall time of the stage.
    sampled_on : str
        ``'fixed'`` or ``'moving'`` (linear stages; see ``LinearOptions.sample_on``).
    notes : tuple of str
        What looked suspect (metric got worse, little overlap, a single collapsed stage);
        :func:`register` issues these as :class:`RegistrationWarning` for accepted stages.
    """

    kind: str
    metric: str
    verdict: str
    reason: str = ""
    initial_metric: float = float("nan")
    final_metric: float = float("nan")
    iterations: int = 0
    levels: tuple = ()
    seconds: float = 0.0
    sampled_on: str = "fixed"
    notes: tuple = ()

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"


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
        correlation, negative mutual information); with several stages also ``stage`` (the
        stage's kind), each stage's levels numbered after the previous stage's.
    initial_metric, final_metric : float
        The metric at full resolution over all fixed voxels, before the first stage and after
        the stage whose transform is returned (comparable when the stages share a metric).
    seconds : float
        Wall time of the registration.
    stop_reason : str
        The optimiser's last stop condition (per level for demons); says when the last stage
        was rejected and which stage was kept.
    transform_kind, metric : str
        What was asked (the last stage's kind) and the metric of the stage returned.
    levels : tuple of int
        Shrink factors used, coarse to fine, of every stage that ran.
    sampled_on : str
        ``'fixed'`` or ``'moving'``: the image whose voxels the metric sampled (see
        ``sample_on``); with ``'moving'`` the trace and the metric values are those of the
        moving -> fixed registration that was run and inverted.
    stages : tuple of StageResult
        One per stage, in order, with its verdict (``'accepted'``, ``'collapsed'``,
        ``'rejected'``) and metrics.
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
    stages: tuple = ()

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

        Parameters
        ----------
        path : str or Path
            ``.tfm``, ``.txt``, ``.h5`` or ``.mat``; see
            :func:`medlab.registration.save_transform`.
        overwrite : bool
            Replace an existing file (default: raise).
        """
        return save_transform(self.transform, path, overwrite=overwrite)
