"""ROC AUC with a confidence interval (DeLong's method or a stratified bootstrap).

Placed here until medlab.metrics has its classification metrics; the definition is scikit-learn's
``roc_auc_score`` (ties count one half), which the tests check against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from medlab._options import check_choice, check_int

__all__ = ["AUC", "roc_auc_ci"]


class AUC(NamedTuple):
    """Area under the ROC curve with its confidence interval."""

    auc: float
    low: float
    high: float
    confidence: float
    method: str
    n_positive: int
    n_negative: int

    def __str__(self):
        return f"AUC {self.auc:.3f} ({100 * self.confidence:.0f}% CI {self.low:.3f}-{self.high:.3f}, {self.method}; {self.n_positive} positive, {self.n_negative} negative)"


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def _delong(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """AUC and its variance by DeLong et al. (1988), with the midrank algorithm of Sun & Xu
    (2014)."""
    m, n = len(pos), len(neg)
    tz = _midrank(np.concatenate([pos, neg]))
    tx, ty = _midrank(pos), _midrank(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:m] - tx) / n  # per positive: share of negatives ranked below
    v10 = 1.0 - (tz[m:] - ty) / m  # per negative: share of positives ranked above
    var = (np.var(v01, ddof=1) / m if m > 1 else 0.0) + (np.var(v10, ddof=1) / n if n > 1 else 0.0)
    return float(auc), float(var)


def roc_auc_ci(y_true, scores, *, confidence: float = 0.95, method: str = "delong",
               n_bootstrap: int = 2000, seed: int = 0) -> AUC:
    """ROC AUC of ``scores`` for the binary truth ``y_true``, with a confidence interval.

    Parameters
    ----------
    y_true : sequence of bool or {0, 1}
        1 (True) for positives.
    scores : sequence of float
        Higher means more likely positive (e.g. the predicted probability of malignancy).
    confidence : float
        Coverage of the interval, in (0, 1).
    method : {'delong', 'bootstrap'}
        'delong': DeLong's variance and a normal interval, clipped to [0, 1] (deterministic);
        'bootstrap': percentile interval of ``n_bootstrap`` resamples drawn within positives and
        within negatives (seeded).
    n_bootstrap, seed : int
        For 'bootstrap'.

    Returns
    -------
    AUC
        ``auc``, ``low``, ``high``, ``confidence``, ``method``, ``n_positive``, ``n_negative``.

    Examples
    --------
    >>> from medlab.models import roc_auc_ci
    >>> r = roc_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    >>> round(r.auc, 4)
    0.8889
    """
    check_choice("method", method, ("delong", "bootstrap"))
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}")
    y = np.asarray(y_true)
    s = np.asarray(scores, float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"`y_true` (shape {y.shape}) and `scores` (shape {s.shape}) must be 1D and equally long")
    if not np.isin(y, [0, 1]).all():
        raise ValueError("`y_true` must hold only 0/1 (or False/True)")
    y = y.astype(bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"ROC AUC needs positives and negatives; got {len(pos)} positive, {len(neg)} negative")
    auc, var = _delong(pos, neg)
    if method == "delong":
        half = stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(var)
        low, high = max(0.0, auc - half), min(1.0, auc + half)
    else:
        check_int("n_bootstrap", n_bootstrap, minimum=10)
        rng = np.random.default_rng(seed)
        aucs = np.array([
            _delong(rng.choice(pos, len(pos)), rng.choice(neg, len(neg)))[0] for _ in range(n_bootstrap)
        ])
        low, high = np.quantile(aucs, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return AUC(auc, float(low), float(high), float(confidence), method, len(pos), len(neg))
