"""Measurements against ground truth and of image quality.

Image quality (``_quality.py``): :func:`snr`, :func:`cnr`, :func:`mse`, :func:`psnr`,
:func:`ssim`, :func:`local_contrast`; denoisers run and scored in one table
(``_denoising.py``): :func:`compare_denoisers`.

Segmentation against ground truth (``_segmentation.py``; definitions of boundary, HD95 and the
empty-mask cases in its module docstring): :func:`dice`, :func:`jaccard`, :func:`hausdorff`,
:func:`hd95`, :func:`assd`, :func:`surface_dice`, :func:`volume_difference`, and
:func:`segmentation_scores` for all of them in one call.

Classification (``_classification.py``): :func:`roc_auc_ci` (ROC AUC with DeLong or bootstrap
interval; :class:`AUC`), :func:`calibration` (reliability curve and Brier score),
:func:`confusion` (confusion matrix, sensitivity, specificity). Pipelines and cross-validation
that produce the scores are in :mod:`medlab.classification`.

Agreement of two measurement methods (``_agreement.py``): :func:`bland_altman` (bias, limits of
agreement and their confidence intervals).
"""

from __future__ import annotations

from medlab.metrics._agreement import BlandAltman, bland_altman
from medlab.metrics._classification import (
    AUC,
    Calibration,
    Confusion,
    calibration,
    confusion,
    roc_auc_ci,
)
from medlab.metrics._quality import cnr, local_contrast, mse, psnr, snr, ssim
from medlab.metrics._denoising import compare_denoisers
from medlab.metrics._segmentation import (
    assd,
    dice,
    hausdorff,
    hd95,
    jaccard,
    segmentation_scores,
    surface_dice,
    volume_difference,
)

__all__ = [
    # image quality (_quality.py)
    "snr",
    "cnr",
    "mse",
    "psnr",
    "ssim",
    "local_contrast",
    "compare_denoisers",
    # segmentation against ground truth (_segmentation.py)
    "dice",
    "jaccard",
    "hausdorff",
    "hd95",
    "assd",
    "surface_dice",
    "volume_difference",
    "segmentation_scores",
    # classification (_classification.py)
    "roc_auc_ci",
    "AUC",
    "calibration",
    "Calibration",
    "confusion",
    "Confusion",
    # agreement of two methods (_agreement.py)
    "bland_altman",
    "BlandAltman",
]
