"""Classification metrics: ROC AUC with a confidence interval, calibration, confusion matrix.

- :func:`roc_auc_ci`: ROC AUC with DeLong's or a stratified bootstrap interval. The AUC is
  scikit-learn's ``roc_auc_score`` (ties count one half), which the tests check against.
- :func:`calibration`: reliability curve (observed frequency against mean predicted probability
  per bin, as ``sklearn.calibration.calibration_curve``) and the Brier score.
- :func:`confusion`: confusion matrix with sensitivity, specificity, accuracy.

numpy and SciPy only (no scikit-learn import), so ``medlab.metrics`` stays light.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from medlab._options import check_choice, check_int

__all__ = ["AUC", "roc_auc_ci", "Calibration", "calibration", "Confusion", "confusion"]


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


def _bootstrap_aucs(pos: np.ndarray, neg: np.ndarray, rng, n: int) -> np.ndarray:
    """AUCs of ``n`` resamples drawn with replacement within positives and within negatives.

    A positive's share of negatives below it (ties one half) is looked up in the sorted resampled
    negatives, so each resample costs O((m + k) log k), not a rank of the pooled scores."""
    out = np.empty(n)
    for b in range(n):
        p = pos[rng.integers(len(pos), size=len(pos))]
        q = np.sort(neg[rng.integers(len(neg), size=len(neg))])
        below = np.searchsorted(q, p, side="left") + np.searchsorted(q, p, side="right")
        out[b] = below.sum() / (2.0 * len(p) * len(q))
    return out


def _binary_truth(y_true, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be 1D; got shape {y.shape}")
    if not np.isin(y, [0, 1]).all():
        raise ValueError(f"`{name}` must hold only 0/1 (or False/True); got values {np.unique(y)[:5].tolist()}")
    return y.astype(bool)


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
    >>> from medlab.metrics import roc_auc_ci
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
        aucs = _bootstrap_aucs(pos, neg, rng, n_bootstrap)
        low, high = np.quantile(aucs, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return AUC(auc, float(low), float(high), float(confidence), method, len(pos), len(neg))


class Calibration(NamedTuple):
    """Reliability curve and Brier score of predicted probabilities.

    ``prob_true`` (observed share of positives), ``prob_pred`` (mean predicted probability) and
    ``count`` (cases) per non-empty bin; ``brier`` = mean of (p - y)^2 over all cases; ``ece``
    (a property): the expected calibration error."""

    prob_true: np.ndarray
    prob_pred: np.ndarray
    count: np.ndarray
    brier: float
    n_bins: int
    strategy: str

    @property
    def ece(self) -> float:
        """Expected calibration error (Naeini et al. 2015): the mean over cases of
        ``|prob_true - prob_pred|`` of their bin, ``sum(count * |prob_true - prob_pred|) / n``
        (0 for a perfectly calibrated model; the same unit as the probabilities)."""
        return float(np.sum(self.count * np.abs(self.prob_true - self.prob_pred)) / np.sum(self.count))


def calibration(y_true, probabilities, *, n_bins: int = 10, strategy: str = "uniform") -> Calibration:
    """Reliability curve (calibration curve) and Brier score.

    Parameters
    ----------
    y_true : (n,) sequence of bool or {0, 1}
        1 (True) for positives.
    probabilities : (n,) sequence of float in [0, 1]
        Predicted probability of the positive class.
    n_bins : int
        Number of bins of the predicted probability.
    strategy : {'uniform', 'quantile'}
        Bins of equal width on [0, 1], or with equal numbers of cases (as scikit-learn's
        ``calibration_curve``; empty bins are left out).

    Returns
    -------
    Calibration
        ``prob_true``, ``prob_pred``, ``count`` per non-empty bin, ``brier``, ``n_bins``,
        ``strategy``. A perfectly calibrated model has ``prob_true == prob_pred``.

    Examples
    --------
    >>> from medlab.metrics import calibration
    >>> c = calibration([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], n_bins=2)
    >>> c.prob_true.tolist(), round(c.brier, 3)
    ([0.0, 1.0], 0.05)
    """
    check_choice("strategy", strategy, ("uniform", "quantile"))
    check_int("n_bins", n_bins, minimum=1)
    y = _binary_truth(y_true)
    p = np.asarray(probabilities, float)
    if p.shape != y.shape:
        raise ValueError(f"`probabilities` (shape {p.shape}) must match `y_true` (shape {y.shape})")
    if len(p) == 0:
        raise ValueError("`y_true` and `probabilities` are empty")
    if not (np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
        raise ValueError(f"`probabilities` must lie in [0, 1]; got range {np.nanmin(p):g}..{np.nanmax(p):g}")
    if strategy == "quantile":
        edges = np.quantile(p, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    # the same binning as scikit-learn: inner edges, right-closed searchsorted
    which = np.searchsorted(edges[1:-1], p, side="right")
    count = np.bincount(which, minlength=len(edges) - 1)
    sum_p = np.bincount(which, weights=p, minlength=len(edges) - 1)
    sum_y = np.bincount(which, weights=y.astype(float), minlength=len(edges) - 1)
    keep = count > 0
    return Calibration(sum_y[keep] / count[keep], sum_p[keep] / count[keep], count[keep],
                       float(np.mean((p - y) ** 2)), int(n_bins), strategy)


class Confusion(NamedTuple):
    """Binary confusion matrix ``matrix = [[tn, fp], [fn, tp]]`` (rows: truth 0/1, columns:
    prediction 0/1, as scikit-learn's ``confusion_matrix``) and the rates derived from it."""

    matrix: np.ndarray
    sensitivity: float
    specificity: float
    accuracy: float
    balanced_accuracy: float
    ppv: float
    npv: float


def _ratio(a, b) -> float:
    return float(a / b) if b else float("nan")


def confusion(y_true, y_pred) -> Confusion:
    """Binary confusion matrix and sensitivity, specificity, (balanced) accuracy, PPV, NPV.

    Parameters
    ----------
    y_true, y_pred : (n,) sequences of bool or {0, 1}
        Truth and decision (e.g. ``probability >= 0.5``); 1 is positive.

    Returns
    -------
    Confusion
        A rate whose denominator is 0 is NaN.

    Examples
    --------
    >>> from medlab.metrics import confusion
    >>> c = confusion([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    >>> c.matrix.tolist(), round(c.sensitivity, 3), c.specificity
    ([[1, 1], [1, 2]], 0.667, 0.5)
    """
    y = _binary_truth(y_true)
    d = _binary_truth(y_pred, "y_pred")
    if d.shape != y.shape:
        raise ValueError(f"`y_pred` (shape {d.shape}) must match `y_true` (shape {y.shape})")
    tp, fn = int((y & d).sum()), int((y & ~d).sum())
    tn, fp = int((~y & ~d).sum()), int((~y & d).sum())
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return Confusion(np.array([[tn, fp], [fn, tp]]), sens, spec, _ratio(tp + tn, len(y)),
                     (sens + spec) / 2, _ratio(tp, tp + fp), _ratio(tn, tn + fn))
