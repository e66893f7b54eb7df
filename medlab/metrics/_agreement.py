"""Agreement between two measurement methods: Bland-Altman analysis.

Bland & Altman (Lancet 1986; Stat Methods Med Res 1999): for paired measurements of the same
quantity, the difference ``d = measured - reference`` per subject; its mean is the **bias**, and
``bias +- 1.96 sd`` (``sd`` the sample standard deviation of ``d``, n - 1) are the **95 % limits
of agreement**, within which about 95 % of differences fall if they are roughly normal. The
confidence intervals use Student's t with ``n - 1`` degrees of freedom: standard error
``sd / sqrt(n)`` for the bias and ``sd * sqrt(3 / n)`` for each limit (Bland & Altman 1986,
section 5). The plot shows ``d`` against the pair's mean ``(measured + reference) / 2``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["BlandAltman", "bland_altman"]


class BlandAltman(NamedTuple):
    """Bland-Altman agreement of paired measurements (units of the measurements).

    ``bias``: mean difference (measured - reference); ``sd``: sample standard deviation of the
    differences; ``lower``, ``upper``: limits of agreement ``bias -+ z sd``; ``bias_ci``,
    ``lower_ci``, ``upper_ci``: their (low, high) confidence intervals; ``n``: pairs;
    ``mean_abs_difference``: mean absolute difference (MAD); ``means``, ``differences``:
    per-pair values for the plot (pair order kept).
    """

    bias: float
    sd: float
    lower: float
    upper: float
    bias_ci: tuple
    lower_ci: tuple
    upper_ci: tuple
    n: int
    mean_abs_difference: float
    means: np.ndarray
    differences: np.ndarray


def bland_altman(measured, reference, *, z: float = 1.96, confidence: float = 0.95) -> BlandAltman:
    """Bland-Altman bias and limits of agreement of ``measured`` against ``reference``.

    Parameters
    ----------
    measured, reference : (N,) array_like of float
        Paired measurements in one unit (e.g. head circumference in mm by a model and by a
        sonographer), N >= 2, all finite.
    z : float
        Multiple of the standard deviation for the limits (1.96: 95 % limits).
    confidence : float
        Level of the confidence intervals, in (0, 1).

    Returns
    -------
    BlandAltman

    Examples
    --------
    >>> ba = bland_altman([10.0, 12.0, 15.0], [9.0, 12.0, 13.0])
    >>> ba.bias, ba.sd, round(ba.upper, 2)
    (1.0, 1.0, 2.96)
    """
    from scipy import stats

    m = np.asarray(measured, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if m.ndim != 1 or r.ndim != 1:
        raise ValueError(f"`measured` and `reference` must be 1D; got shapes {m.shape} and {r.shape}")
    if m.shape != r.shape:
        raise ValueError(f"`measured` (length {m.size}) must have the same length as `reference` (length {r.size})")
    if m.size < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs; got {m.size}")
    if not (np.isfinite(m).all() and np.isfinite(r).all()):
        bad = int((~np.isfinite(m) | ~np.isfinite(r)).sum())
        raise ValueError(f"`measured` and `reference` must be finite; {bad} pair(s) are not (drop them first)")
    if not z > 0:
        raise ValueError(f"`z` must be > 0; got {z!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}")
    d = m - r
    n = d.size
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    lower, upper = bias - z * sd, bias + z * sd
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    se_bias, se_limit = sd / math.sqrt(n), sd * math.sqrt(3.0 / n)
    return BlandAltman(
        bias=bias,
        sd=sd,
        lower=lower,
        upper=upper,
        bias_ci=(bias - t * se_bias, bias + t * se_bias),
        lower_ci=(lower - t * se_limit, lower + t * se_limit),
        upper_ci=(upper - t * se_limit, upper + t * se_limit),
        n=n,
        mean_abs_difference=float(np.abs(d).mean()),
        means=(m + r) / 2,
        differences=d,
    )
