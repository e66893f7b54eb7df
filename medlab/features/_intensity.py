"""IBSI local intensity, intensity statistics, intensity histogram and intensity-volume histogram."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import fftconvolve

from ._prepare import PEAK_RADIUS_MM, PreparedROI

__all__ = [
    "histogram_features",
    "ivh_features",
    "local_intensity_features",
    "statistics_features",
]


def _sphere(spacing) -> np.ndarray:
    """Voxels whose centres lie within the 1 cm^3 sphere's radius of the central voxel."""
    half = [int(PEAK_RADIUS_MM // s) for s in spacing]
    axes = [np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)]
    g = np.meshgrid(*axes, indexing="ij", sparse=True)
    return (sum(a * a for a in g) <= PEAK_RADIUS_MM**2 + 1e-9).astype(np.float64)


def local_intensity_features(roi: PreparedROI) -> dict[str, float]:
    """Local and global intensity peak: mean intensity in a 1 cm^3 sphere (all image voxels).

    Near the image border the sphere holds only the voxels that exist.
    """
    img = roi.image
    ball = _sphere(roi.spacing)
    ones = np.ones(img.shape)
    # local peak, computed directly at the maximum-intensity voxel(s) of the intensity mask
    vmax = img[roi.inten].max()
    half = [k // 2 for k in ball.shape]
    padded = np.pad(img, [(h, h) for h in half])
    pmask = np.pad(ones, [(h, h) for h in half])
    best = -math.inf
    for p in np.argwhere(roi.inten & (img == vmax)):
        sl = tuple(slice(int(c), int(c) + k) for c, k in zip(p, ball.shape, strict=True))
        best = max(best, float((padded[sl] * ball).sum() / (pmask[sl] * ball).sum()))
    total = fftconvolve(img, ball, mode="same")
    count = fftconvolve(ones, ball, mode="same")
    glob = float((total / np.maximum(count, 1e-9))[roi.inten].max())
    return {"loc_peak_local": best, "loc_peak_global": glob}


def _percentile(x: np.ndarray, q) -> np.ndarray:
    return np.percentile(x, q)


def _moments(x: np.ndarray, prefix: str) -> dict[str, float]:
    """Statistics shared (with different prefixes) by the intensity and histogram families."""
    x = x.astype(np.float64)
    n = x.size
    mu = x.mean()
    d = x - mu
    var = float((d * d).mean())
    p10, p25, p50, p75, p90 = _percentile(x, [10, 25, 50, 75, 90])
    out = {
        f"{prefix}_mean": float(mu),
        f"{prefix}_var": var,
        f"{prefix}_skew": float((d**3).mean() / var**1.5) if var > 0 else 0.0,
        f"{prefix}_kurt": float((d**4).mean() / var**2 - 3) if var > 0 else 0.0,
        f"{prefix}_median": float(p50),
        f"{prefix}_min": float(x.min()),
        f"{prefix}_p10": float(p10),
        f"{prefix}_p90": float(p90),
        f"{prefix}_max": float(x.max()),
        f"{prefix}_iqr": float(p75 - p25),
        f"{prefix}_range": float(x.max() - x.min()),
        f"{prefix}_mad": float(np.abs(d).mean()),
    }
    mid = x[(x >= p10) & (x <= p90)]
    out[f"{prefix}_rmad"] = float(np.abs(mid - mid.mean()).mean())
    out[f"{prefix}_medad"] = float(np.abs(x - p50).mean())
    out[f"{prefix}_cov"] = float(math.sqrt(var) / mu) if mu != 0 else math.nan
    out[f"{prefix}_qcod"] = float((p75 - p25) / (p75 + p25)) if (p75 + p25) != 0 else math.nan
    del n
    return out


def statistics_features(roi: PreparedROI) -> dict[str, float]:
    """Intensity-based statistics of the intensity mask (3D)."""
    x = roi.image[roi.inten].astype(np.float64)
    out = _moments(x, "stat")
    energy = float((x * x).sum())
    out["stat_energy"] = energy
    out["stat_rms"] = math.sqrt(energy / x.size)
    return out


def histogram_features(roi: PreparedROI) -> dict[str, float]:
    """Intensity-histogram features of the discretised intensity mask (3D)."""
    xd = roi.levels[roi.inten].astype(np.int64)
    out = _moments(xd, "ih")
    hist = np.bincount(xd, minlength=roi.n_levels + 1)[1:].astype(np.float64)
    levels = np.arange(1, hist.size + 1)
    mean = out["ih_mean"]
    top = np.flatnonzero(hist == hist.max()) + 1
    # ties: the level nearest the mean, the lower one when equidistant
    out["ih_mode"] = float(top[np.argmin(np.abs(top - mean) + 1e-9 * (top > mean))])
    p = hist / hist.sum()
    nz = p[p > 0]
    out["ih_entropy"] = float(-(nz * np.log2(nz)).sum())
    out["ih_uniformity"] = float((p * p).sum())
    if hist.size > 1:
        grad = np.gradient(hist)  # one-sided at the ends, central differences inside
    else:
        grad = np.zeros(1)
    out["ih_max_grad"] = float(grad.max())
    out["ih_max_grad_gl"] = float(levels[np.argmax(grad)])
    out["ih_min_grad"] = float(grad.min())
    out["ih_min_grad_gl"] = float(levels[np.argmin(grad)])
    return out


def ivh_features(roi: PreparedROI) -> dict[str, float]:
    """Intensity-volume histogram: V10, V90, I10, I90 and their differences.

    Discretisation per :attr:`FeatureSettings.ivh_discretisation`: 'none' (discrete calibrated
    intensities, step 1, range = re-segmentation range or ROI range), 'fbs' (bin centres,
    range from the re-segmentation range), 'fbn' (bin numbers 1..N).
    """
    s = roi.settings
    x = roi.image[roi.inten].astype(np.float64)
    rng = s.resegment_range
    has_lo = rng is not None and np.isfinite(rng[0])
    has_hi = rng is not None and np.isfinite(rng[1])
    if s.ivh_discretisation == "none":
        # discrete intensities: step 1 over the re-segmentation range (or the ROI range)
        g_min = rng[0] if has_lo else x.min()
        g_max = rng[1] if has_hi else x.max()
        step = 1.0
        index = x - g_min  # position of each voxel on the intensity axis, in steps
    elif s.ivh_discretisation == "fbs":
        # bin centres; range [x_min + w/2, x_max - w/2] from the re-segmentation range or the ROI
        w = s.ivh_bin_width
        x_min = rng[0] if has_lo else x.min()
        x_max = rng[1] if has_hi else x.max()
        index = np.floor((x - x_min) / w)
        g_min, g_max, step = x_min + 0.5 * w, x_max - 0.5 * w, w
    else:
        # arbitrary units: bin numbers 1..N
        nb = s.ivh_bins
        lo, hi = x.min(), x.max()
        index = np.minimum(np.floor(nb * (x - lo) / (hi - lo)), nb - 1) if hi > lo else np.zeros_like(x)
        g_min, g_max, step = 1.0, float(nb), 1.0
    n_steps = max(math.ceil((g_max - g_min) / step - 1e-9), int(index.max()), 1)
    k = np.arange(n_steps + 1)
    srt = np.sort(index)
    # volume fraction with intensity >= step k
    nu = 1.0 - np.searchsorted(srt, k - 1e-9, side="left") / srt.size
    intensity = g_min + k * step
    gamma = (intensity - g_min) / (g_max - g_min) if g_max > g_min else k / n_steps

    def v_at(frac):
        return float(nu[np.argmax(gamma >= frac - 1e-12)])

    def i_at(frac):
        ok = nu <= frac + 1e-12
        return float(intensity[np.argmax(ok)]) if ok.any() else float(intensity[-1] + step)

    out = {
        "ivh_v10": v_at(0.10),
        "ivh_v90": v_at(0.90),
        "ivh_i10": i_at(0.10),
        "ivh_i90": i_at(0.90),
    }
    out["ivh_v10minusv90"] = out["ivh_v10"] - out["ivh_v90"]
    out["ivh_i10minusi90"] = out["ivh_i10"] - out["ivh_i90"]
    return out
