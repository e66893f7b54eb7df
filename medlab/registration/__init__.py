"""Image registration on SimpleITK: rigid to deformable, multi-resolution, multi-modal.

Conventions
-----------
* A registration transform maps **fixed** points to **moving** points (ITK's convention):
  the fixed point ``x`` corresponds to ``transform.TransformPoint(x)`` in the moving image, and
  resampling the moving image onto the fixed grid through it aligns the two.
* Points are physical, ``(x, y[, z])`` in mm (SimpleITK order); arguments that take points say
  so (``fixed_landmarks_mm``, ``points_mm``). Images may be ``SimpleITK.Image`` (any grids:
  registration is in physical space) or numpy arrays indexed ``(z, y, x)`` with ``spacing``.
* Every metric is minimised: mean squares, negative normalised correlation, negative Mattes
  mutual information.

=================================== ==========================================================
Registration
:func:`register`                    stages of rigid, similarity, affine, B-spline, (diffeomorphic)
                                    demons; pyramid, metric, init (geometry/moments/landmarks),
                                    masks, progress and stop -> :class:`RegistrationResult`
:class:`LinearOptions`              options of a rigid/similarity/affine stage
:class:`BSplineOptions`             options of a B-spline stage
:class:`DemonsOptions`              options of a (diffeomorphic) demons stage
:func:`stage_options`               the options object of a transform from keywords
:class:`RegistrationResult`         ``transform``, ``resampled``, ``metric_trace``, timing,
                                    ``stages`` (a :class:`StageResult` with a verdict each);
                                    ``.apply(image, is_label=...)``, ``.save(path)``
:func:`default_metric`              the metric for a transform and a modality pair
:func:`landmark_registration`       least-squares rigid/similarity/affine from paired points
Resampling and transforms
:func:`resample`                    an image into any reference grid (linear, B-spline, ...)
:func:`resample_labels`             a label image (nearest neighbour, label-Gaussian)
:func:`move_image`                  move an image's content by a transform (no cropping)
:func:`compose`                     ``t1(t2(x))``; linear ones flattened into one affine
:func:`as_affine`                   any linear transform as one ``AffineTransform``
:func:`save_transform`              ITK transform file (.tfm, .txt, .h5, .mat), atomic
:func:`read_transform`              read one back
Accuracy
:func:`target_registration_error`   TRE (mean, median, p95, max) against a true transform or
                                    landmark pairs -> :class:`TRE`
:func:`jacobian_determinant`        Jacobian determinant map on a grid
:func:`folding_count`               voxels with Jacobian determinant <= 0
:func:`displacement_field`          ``t(x) - x`` on a grid (numpy)
Known ground truth
:func:`random_rigid`                seeded random rigid transform (angles, translation bounds)
:func:`random_affine`               ... plus scale and shear
:func:`random_deformation`          seeded smooth, fold-free displacement field
:func:`registration_scores`         TRE, Dice, folding of a result against the truth
:func:`known_truth_study`           that recipe over a cohort of aligned pairs, one row per patient
=================================== ==========================================================

Errors: bad arguments (images of different dimension, no overlap after initialisation) raise
``ValueError`` naming what was wrong; an optimiser that leaves the field of view raises
:class:`RegistrationError`; a metric that ends worse than it started warns
:class:`RegistrationWarning` (issued on the calling thread; ``register`` is safe to run on
several threads at once). A later stage that collapses or fails is not used: its verdict is in
``result.stages``, not in a warning.
"""

from __future__ import annotations

from ._common import RegistrationError, RegistrationWarning
from ._evaluate import (
    TRE,
    displacement_field,
    folding_count,
    jacobian_determinant,
    target_registration_error,
)
from ._landmarks import LANDMARK_TRANSFORMS, landmark_registration
from ._register import (
    DEFAULTS,
    INITS,
    METRICS,
    SAMPLE_MARGIN,
    SAMPLE_ON,
    SCALE_BOUNDS,
    TRANSFORMS,
    WINSORIZE,
    BSplineOptions,
    DemonsOptions,
    LinearOptions,
    RegistrationResult,
    StageResult,
    default_metric,
    register,
    stage_options,
)
from ._resample import (
    IMAGE_INTERPOLATORS,
    LABEL_INTERPOLATORS,
    move_image,
    resample,
    resample_labels,
)
from ._transforms import (
    TRANSFORM_EXTENSIONS,
    as_affine,
    compose,
    read_transform,
    save_transform,
)
from ._study import TRUTHS, known_truth_study
from ._validation import (
    random_affine,
    random_deformation,
    random_rigid,
    registration_scores,
)

__all__ = [
    "register",
    "RegistrationResult",
    "StageResult",
    "LinearOptions",
    "BSplineOptions",
    "DemonsOptions",
    "stage_options",
    "default_metric",
    "landmark_registration",
    "resample",
    "resample_labels",
    "move_image",
    "compose",
    "as_affine",
    "save_transform",
    "read_transform",
    "target_registration_error",
    "TRE",
    "jacobian_determinant",
    "folding_count",
    "displacement_field",
    "random_rigid",
    "random_affine",
    "random_deformation",
    "registration_scores",
    "known_truth_study",
    "TRUTHS",
    "RegistrationError",
    "RegistrationWarning",
    "TRANSFORMS",
    "METRICS",
    "INITS",
    "DEFAULTS",
    "SAMPLE_ON",
    "SAMPLE_MARGIN",
    "SCALE_BOUNDS",
    "WINSORIZE",
    "LANDMARK_TRANSFORMS",
    "IMAGE_INTERPOLATORS",
    "LABEL_INTERPOLATORS",
    "TRANSFORM_EXTENSIONS",
]
