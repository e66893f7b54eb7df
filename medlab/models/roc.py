"""ROC AUC with a confidence interval: kept as ``medlab.models.roc_auc_ci`` for existing code.

The one implementation lives in :mod:`medlab.metrics` (classification metrics, beside
calibration and the confusion matrix); this module only re-exports it.
"""

from __future__ import annotations

from medlab.metrics._classification import AUC, roc_auc_ci

__all__ = ["AUC", "roc_auc_ci"]
