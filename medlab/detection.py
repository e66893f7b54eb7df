"""Lesion candidates in 2D and 3D images as tables, and FROC analysis against lesion masks.

=================================== ==========================================================
Candidates
:func:`blobs`                       multi-scale Laplacian-of-Gaussian or difference-of-Gaussian
                                    blobs; sizes in mm; non-maximum suppression
:func:`components`                  threshold + connected components (e.g. PET ``SUV >= 2.5``)
:func:`non_max_suppression`         drop candidates that overlap a higher-scoring one
FROC
:func:`match`                       which candidate hits which lesion (the hit criterion below)
:func:`froc`                        sensitivity against false positives per image
:func:`sensitivity_at`              sensitivity at given FP/image; CPM = their mean
=================================== ==========================================================

Candidate tables (pandas) have one row per candidate, best score first, with columns
``x_mm``, ``y_mm`` (and ``z_mm`` in 3D): the centre as a physical point (SimpleITK's frame, mm);
``diameter_mm``; ``volume_ml`` (3D) or ``area_mm2`` (2D); ``score`` (higher = more likely a
lesion); and per method ``sigma_mm`` (blobs) or ``n_voxels``, ``max``, ``mean`` (components).

Blob sizes. The scale-normalised Laplacian ``-sigma^2 (d2/dx2 + d2/dy2 [+ d2/dz2])`` of a
Gaussian-smoothed image (derivatives in mm, so anisotropic voxels are handled) is largest at the
centre of a uniform ball of radius ``r`` for ``sigma = r / sqrt(ndim)``; a blob found at scale
``sigma`` therefore has ``diameter_mm = 2 sqrt(ndim) sigma`` (scikit-image's ``blob_log``
convention). Scales are spaced geometrically between the requested diameters, and the peak's
position and scale are refined by a parabola through the neighbouring responses (sub-voxel).
The score is the normalised response, in the image's units (about the blob's contrast).

Hit criterion (:func:`match`, :func:`froc`). A lesion is a connected component of the truth
mask (or one label value with ``labelled=True``). A candidate hits a lesion when the voxel
nearest to its centre belongs to that lesion, or, with ``tolerance_mm > 0``, when its centre
is within ``tolerance_mm`` of the lesion's nearest voxel. A lesion is detected at threshold
``t`` when a candidate with ``score >= t`` hits it. A candidate that hits no lesion is a false
positive; further candidates on an already hit lesion are neither true nor false positives
(they are not counted, as in LUNA16).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from medlab._image import as_sitk, check_scalar, mask_array
from medlab._options import check_choice, check_int, check_positive

__all__ = [
    "blobs",
    "components",
    "non_max_suppression",
    "match",
    "froc",
    "FROC",
    "sensitivity_at",
    "LUNA_FP_RATES",
]

#: FP/image at which LUNA16 reports sensitivity; their mean is the CPM
LUNA_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


# --------------------------------------------------------------------------- helpers


def _scalar(image, spacing, name="image") -> tuple[sitk.Image, np.ndarray, tuple[float, ...]]:
    img, _ = as_sitk(image, spacing=spacing, name=name)
    check_scalar(img, name)
    arr = sitk.GetArrayFromImage(img).astype(np.float64)
    return img, arr, tuple(img.GetSpacing()[::-1])


def _size_columns(ndim: int) -> list[str]:
    return ["x_mm", "y_mm", "z_mm"][:ndim] + ["diameter_mm", "volume_ml" if ndim == 3 else "area_mm2", "score"]


def _size_of(diameter_mm: np.ndarray, ndim: int) -> np.ndarray:
    r = np.asarray(diameter_mm, float) / 2
    return 4.0 / 3.0 * math.pi * r**3 / 1000.0 if ndim == 3 else math.pi * r**2


def _to_mm(img: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """Physical points (n, ndim) ``(x, y[, z])`` of continuous numpy indexes (n, ndim)."""
    return np.array([img.TransformContinuousIndexToPhysicalPoint([float(v) for v in idx[::-1]])
                     for idx in index_zyx]).reshape(len(index_zyx), img.GetDimension())


def _empty(ndim: int, extra: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in [*_size_columns(ndim), *extra]})


def _parabola(m: np.ndarray, c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] of the vertex of the parabola through (-1, m), (0, c), (1, p)."""
    den = m - 2 * c + p
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (m - p) / den, 0.0)
    return np.clip(np.nan_to_num(off), -0.5, 0.5)


def _laplacian_mm(smooth: Callable, ndim: int, spacing: tuple[float, ...]) -> np.ndarray:
    """Sum over axes of the second derivative in mm (``smooth(order)`` gives the voxel one)."""
    total = None
    for a in range(ndim):
        order = [0] * ndim
        order[a] = 2
        term = smooth(order) / spacing[a] ** 2
        total = term if total is None else total + term
    return total


# --------------------------------------------------------------------------------- blobs


def blobs(image, *, diameters_mm=(5.0, 30.0), n_scales: int = 8, method: str = "log",
          polarity: str = "bright", threshold: float | None = None, mask=None, overlap: float = 0.5,
          refine: bool = True, spacing=None, progress: Callable | None = None) -> pd.DataFrame:
    """Multi-scale blob candidates (Laplacian-of-Gaussian or difference-of-Gaussian).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar 2D or 3D image (HU, SUV, ...); numpy arrays are indexed ``(z, y, x)``.
    diameters_mm : (smallest, largest)
        Range of blob diameters to look for, in mm; scales are ``sigma_mm = d / (2 sqrt(ndim))``.
    n_scales : int
        Number of scales, geometrically spaced (>= 2).
    method : {'log', 'dog'}
        Scale-normalised Laplacian of Gaussian, or its difference-of-Gaussian approximation
        ``(G(sigma) - G(k sigma)) sqrt(k) / (k - 1)`` at scale ``sigma sqrt(k)``, with ``k`` the
        ratio of successive scales (fewer filters than 'log' in 3D; sizes within about 10 %).
    polarity : {'bright', 'dark'}
        Blobs brighter (PET hot spots, CT nodules) or darker than their surroundings.
    threshold : float, optional
        Smallest score kept (the normalised response, image units). Default: 10 % of the
        largest response in the image.
    mask : sitk.Image or ndarray, optional
        Keep only candidates whose centre voxel is inside (e.g. the lungs).
    overlap : float in [0, 1]
        Non-maximum suppression (:func:`non_max_suppression`); 1 keeps every local maximum.
    refine : bool
        Sub-voxel position and scale by parabolic interpolation of the response.
    spacing : float or sequence, optional
        Voxel size in mm for numpy input (array axis order).
    progress : callable, optional
        ``progress(fraction, message)`` after each scale; returning False stops with
        InterruptedError.

    Returns
    -------
    pandas.DataFrame
        Columns ``x_mm``, ``y_mm`` [, ``z_mm``], ``diameter_mm``, ``volume_ml`` (3D) or
        ``area_mm2`` (2D), ``score``, ``sigma_mm``; best score first.

    Examples
    --------
    >>> import numpy as np
    >>> from medlab.detection import blobs
    >>> yy, xx = np.mgrid[:64, :64]
    >>> disc = ((yy - 30) ** 2 + (xx - 20) ** 2 <= 8 ** 2).astype(float)  # diameter about 16 mm
    >>> t = blobs(disc, diameters_mm=(8, 32), n_scales=9, spacing=1.0)
    >>> len(t), round(float(t.x_mm[0]), 1), round(float(t.y_mm[0]), 1), round(float(t.diameter_mm[0]))
    (1, 20.0, 30.0, 16)
    """
    check_choice("method", method, ("log", "dog"))
    check_choice("polarity", polarity, ("bright", "dark"))
    check_int("n_scales", n_scales, minimum=2)
    try:
        dmin, dmax = (float(v) for v in diameters_mm)
    except (TypeError, ValueError):
        raise ValueError(f"`diameters_mm` must be a (smallest, largest) pair in mm; got {diameters_mm!r}") from None
    if not 0 < dmin < dmax or not math.isfinite(dmax):
        raise ValueError(f"`diameters_mm` must satisfy 0 < smallest < largest; got {diameters_mm!r}")
    if not 0 <= overlap <= 1:
        raise ValueError(f"`overlap` must be in [0, 1]; got {overlap!r}")
    img, arr, sp = _scalar(image, spacing)
    inside = mask_array(mask, image, nonempty=False)
    ndim = arr.ndim
    if polarity == "dark":
        arr = -arr
    sigmas = np.geomspace(dmin, dmax, n_scales) / (2 * math.sqrt(ndim))
    ratio = sigmas[1] / sigmas[0]
    stack = np.empty((n_scales, *arr.shape))
    if method == "log":
        for k, s in enumerate(sigmas):
            sig_vox = [s / d for d in sp]
            lap = _laplacian_mm(lambda order, sv=sig_vox: ndimage.gaussian_filter(arr, sv, order=order), ndim, sp)
            stack[k] = -(s**2) * lap
            if progress is not None and progress((k + 1) / n_scales, f"scale {k + 1}/{n_scales}") is False:
                raise InterruptedError("blobs stopped by the `progress` callback")
    else:
        # G(s) - G(k s) ~ (k - 1) s * s_m * lap G(s_m), s_m = s sqrt(k) (the difference quotient of
        # dG/dsigma = sigma lap G is best at the geometric mean of the two scales): scale s_m, and
        # the factor sqrt(k) / (k - 1) gives the normalised response s_m^2 lap G
        prev = ndimage.gaussian_filter(arr, [sigmas[0] / d for d in sp])
        for k, s in enumerate(sigmas):
            nxt = ndimage.gaussian_filter(arr, [s * ratio / d for d in sp])
            stack[k] = (prev - nxt) * math.sqrt(ratio) / (ratio - 1)
            prev = nxt
            if progress is not None and progress((k + 1) / n_scales, f"scale {k + 1}/{n_scales}") is False:
                raise InterruptedError("blobs stopped by the `progress` callback")
    if threshold is None:
        threshold = 0.1 * float(stack.max())
    peaks = (stack == ndimage.maximum_filter(stack, size=3, mode="nearest")) & (stack > threshold)
    where = np.argwhere(peaks)
    if inside is not None and len(where):
        where = where[inside[tuple(where[:, 1:].T)]]
    if len(where) == 0:
        return _empty(ndim, ["sigma_mm"])
    score = stack[tuple(where.T)]
    pos = where[:, 1:].astype(float)
    log_sigma = np.log(sigmas[where[:, 0]])
    if refine:
        for ax in range(ndim + 1):
            lo = where.copy()
            hi = where.copy()
            lo[:, ax] -= 1
            hi[:, ax] += 1
            size = stack.shape[ax]
            ok = (lo[:, ax] >= 0) & (hi[:, ax] < size)
            lo[~ok, ax] = where[~ok, ax]
            hi[~ok, ax] = where[~ok, ax]
            off = np.where(ok, _parabola(stack[tuple(lo.T)], score, stack[tuple(hi.T)]), 0.0)
            if ax == 0:
                log_sigma = log_sigma + off * np.log(ratio)
            else:
                pos[:, ax - 1] += off
    sigma = np.exp(log_sigma) * (math.sqrt(ratio) if method == "dog" else 1.0)
    diameter = 2 * math.sqrt(ndim) * sigma
    cols = _size_columns(ndim)
    table = pd.DataFrame(_to_mm(img, pos), columns=cols[:ndim])
    table["diameter_mm"] = diameter
    table[cols[ndim + 1]] = _size_of(diameter, ndim)
    table["score"] = score
    table["sigma_mm"] = sigma
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return non_max_suppression(table, overlap=overlap) if overlap < 1 else table


# ---------------------------------------------------------------------------- components


def components(image, *, threshold: float, mask=None, min_voxels: int = 1, connectivity: str = "face",
               spacing=None) -> pd.DataFrame:
    """Candidates as the connected components of ``image >= threshold``.

    Parameters
    ----------
    image : sitk.Image or ndarray
        Scalar 2D or 3D image (e.g. PET in SUV).
    threshold : float
        Lower bound, in the image's units (e.g. SUV 2.5).
    mask : sitk.Image or ndarray, optional
        Only voxels inside are thresholded.
    min_voxels : int
        Smaller components are dropped.
    connectivity : {'face', 'full'}
        Face neighbours only (6 in 3D, 4 in 2D) or also edges and corners (26 / 8).
    spacing : optional
        Voxel size in mm for numpy input.

    Returns
    -------
    pandas.DataFrame
        Columns ``x_mm``, ``y_mm`` [, ``z_mm``] (centroid), ``diameter_mm`` (of the sphere /
        circle of equal volume / area), ``volume_ml`` or ``area_mm2`` (the voxels' total),
        ``score`` (= ``max``), ``n_voxels``, ``max``, ``mean``; best score first.
    """
    check_choice("connectivity", connectivity, ("face", "full"))
    check_int("min_voxels", min_voxels, minimum=1)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"`threshold` must be a number; got {threshold!r}") from None
    img, arr, _ = _scalar(image, spacing)
    ndim = arr.ndim
    binary = arr >= threshold
    inside = mask_array(mask, image, nonempty=False)
    if inside is not None:
        binary &= inside
    extra = ["n_voxels", "max", "mean"]
    if not binary.any():
        return _empty(ndim, extra)
    bimg = sitk.GetImageFromArray(binary.astype(np.uint8))
    bimg.CopyInformation(img)
    labels = sitk.ConnectedComponent(bimg, connectivity == "full")
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(labels)
    stats = sitk.LabelIntensityStatisticsImageFilter()
    stats.Execute(labels, sitk.Cast(img, sitk.sitkFloat64))
    rows = []
    for lab in shape.GetLabels():
        n = shape.GetNumberOfPixels(lab)
        if n < min_voxels:
            continue
        size = shape.GetPhysicalSize(lab)
        diameter = 2 * (3 * size / (4 * math.pi)) ** (1 / 3) if ndim == 3 else 2 * math.sqrt(size / math.pi)
        rows.append([*shape.GetCentroid(lab), diameter, size / 1000.0 if ndim == 3 else size,
                     stats.GetMaximum(lab), n, stats.GetMaximum(lab), stats.GetMean(lab)])
    if not rows:
        return _empty(ndim, extra)
    table = pd.DataFrame(rows, columns=[*_size_columns(ndim), *extra])
    table["n_voxels"] = table["n_voxels"].astype(int)
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


# -------------------------------------------------------------------- non-maximum suppression


def _overlap_fraction(d: np.ndarray, r1: float, r2: np.ndarray, ndim: int) -> np.ndarray:
    """Volume (3D) or area (2D) shared by spheres/circles of radii ``r1``, ``r2`` at centre
    distance ``d``, as a fraction of the smaller one."""
    r2 = np.asarray(r2, float)
    d = np.asarray(d, float)
    small = np.minimum(r1, r2)
    out = np.zeros_like(d)
    inside = d <= np.abs(r1 - r2)
    out[inside] = 1.0
    part = ~inside & (d < r1 + r2)
    if part.any():
        dd, rr = d[part], r2[part]
        if ndim == 3:
            vol = math.pi * (r1 + rr - dd) ** 2 * (dd**2 + 2 * dd * rr - 3 * rr**2 + 2 * dd * r1 + 6 * rr * r1
                                                   - 3 * r1**2) / (12 * dd)
            out[part] = vol / (4 / 3 * math.pi * small[part] ** 3)
        else:
            a1 = r1**2 * np.arccos(np.clip((dd**2 + r1**2 - rr**2) / (2 * dd * r1), -1, 1))
            a2 = rr**2 * np.arccos(np.clip((dd**2 + rr**2 - r1**2) / (2 * dd * rr), -1, 1))
            tri = 0.5 * np.sqrt(np.clip((-dd + r1 + rr) * (dd + r1 - rr) * (dd - r1 + rr) * (dd + r1 + rr), 0, None))
            out[part] = (a1 + a2 - tri) / (math.pi * small[part] ** 2)
    return np.clip(out, 0.0, 1.0)


def non_max_suppression(candidates: pd.DataFrame, *, overlap: float = 0.5) -> pd.DataFrame:
    """Greedy non-maximum suppression of a candidate table.

    Candidates are visited by decreasing ``score``; one is dropped when its sphere (circle in
    2D; centre and ``diameter_mm``) shares more than ``overlap`` of the smaller one's volume with
    a kept candidate. ``overlap=0`` drops any touching candidate.

    Parameters
    ----------
    candidates : pandas.DataFrame
        A candidate table (:func:`blobs`, :func:`components`) with ``score``, ``diameter_mm`` and
        the centre in mm.
    overlap : float in [0, 1]
        Largest share of the smaller sphere's volume that a kept pair may share.

    Returns
    -------
    pandas.DataFrame
        The kept rows, best score first, index reset.
    """
    if not isinstance(candidates, pd.DataFrame):
        raise TypeError(f"`candidates` must be a candidate table (pandas DataFrame); got {type(candidates).__name__}")
    missing = [c for c in ("x_mm", "y_mm", "diameter_mm", "score") if c not in candidates]
    if missing:
        raise ValueError(f"`candidates` lacks column(s) {missing}")
    if not 0 <= overlap <= 1:
        raise ValueError(f"`overlap` must be in [0, 1]; got {overlap!r}")
    t = candidates.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    ndim = 3 if "z_mm" in t else 2
    pts = t[["x_mm", "y_mm", "z_mm"][:ndim]].to_numpy(float)
    radius = t["diameter_mm"].to_numpy(float) / 2
    alive = np.ones(len(t), bool)
    for i in range(len(t)):
        if not alive[i]:
            continue
        rest = np.flatnonzero(alive[i + 1:]) + i + 1
        if rest.size == 0:
            break
        d = np.linalg.norm(pts[rest] - pts[i], axis=1)
        frac = _overlap_fraction(d, radius[i], radius[rest], ndim)
        alive[rest[frac > overlap]] = False
    return t[alive].reset_index(drop=True)


# ---------------------------------------------------------------------------------- FROC


def _lesion_labels(truth, spacing, labelled: bool) -> tuple[sitk.Image, np.ndarray]:
    img, _ = as_sitk(truth, spacing=spacing, name="truth")
    check_scalar(img, "truth")
    arr = sitk.GetArrayFromImage(img)
    if labelled:
        return img, arr.astype(np.int64)
    lab, _ = ndimage.label(arr != 0)
    return img, lab.astype(np.int64)


def match(candidates: pd.DataFrame, truth, *, tolerance_mm: float = 0.0, labelled: bool = False,
          spacing=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match the candidates of one image to its lesions (hit criterion: module docstring).

    Parameters
    ----------
    candidates : pandas.DataFrame
        A candidate table (``x_mm``, ``y_mm`` [, ``z_mm``], ``score``).
    truth : sitk.Image or ndarray
        Lesion mask (components are lesions) or label image (``labelled=True``), on the grid
        whose physical frame the candidates' points are in.
    tolerance_mm : float
        A candidate within this distance of a lesion also hits it (0: the centre voxel must be
        inside).
    labelled : bool
        ``truth`` holds one label value per lesion (else: connected components, face
        connectivity).
    spacing : optional
        Voxel size in mm for a numpy ``truth``.

    Returns
    -------
    candidates : pandas.DataFrame
        A copy with ``lesion`` (label of the lesion hit, 0 for none) and ``outcome``: 'TP' (the
        best-scoring hit of its lesion), 'FP', or 'duplicate' (another hit of a lesion already
        hit; not counted).
    lesions : pandas.DataFrame
        One row per lesion: ``lesion``, ``n_voxels``, ``score`` (best hit; NaN if missed),
        ``detected``.
    """
    check_positive("tolerance_mm", tolerance_mm, allow_zero=True)
    if not isinstance(candidates, pd.DataFrame):
        raise TypeError(f"`candidates` must be a candidate table (pandas DataFrame); got {type(candidates).__name__}")
    img, lab = _lesion_labels(truth, spacing, labelled)
    ndim = lab.ndim
    coords = ["x_mm", "y_mm", "z_mm"][:ndim]
    missing = [c for c in [*coords, "score"] if c not in candidates]
    if missing:
        raise ValueError(f"`candidates` lacks column(s) {missing} for a {ndim}D `truth`")
    t = candidates.copy()
    hit = np.zeros(len(t), np.int64)
    if tolerance_mm > 0 and lab.any():
        _, nearest = ndimage.distance_transform_edt(lab == 0, sampling=img.GetSpacing()[::-1],
                                                       return_indices=True)
    for k, pt in enumerate(t[coords].to_numpy(float)):
        cidx = np.array(img.TransformPhysicalPointToContinuousIndex([float(v) for v in pt]))[::-1]
        idx = np.round(cidx).astype(int)
        if np.any(idx < 0) or np.any(idx >= lab.shape):
            continue
        idx = tuple(idx)
        if lab[idx]:
            hit[k] = lab[idx]
        elif tolerance_mm > 0 and lab.any():
            # distance from the centre itself to the nearest lesion voxel centre
            near = tuple(nearest[(slice(None), *idx)])
            p_near = np.array(img.TransformIndexToPhysicalPoint([int(v) for v in near[::-1]]))
            if np.linalg.norm(p_near - pt) <= tolerance_mm:
                hit[k] = lab[near]
    t["lesion"] = hit
    outcome = np.where(hit == 0, "FP", "duplicate").astype(object)
    scores = t["score"].to_numpy(float)
    ids = np.unique(lab[lab != 0])
    counts = ndimage.sum_labels(np.ones_like(lab), lab, ids) if len(ids) else np.zeros(0)
    best = []
    for les in ids:
        rows = np.flatnonzero(hit == les)
        if rows.size:
            top = rows[np.argmax(scores[rows])]
            outcome[top] = "TP"
            best.append(scores[top])
        else:
            best.append(np.nan)
    t["outcome"] = outcome
    lesions = pd.DataFrame({"lesion": ids.astype(int), "n_voxels": np.asarray(counts, int),
                            "score": np.array(best, float)})
    lesions["detected"] = lesions["score"].notna()
    return t, lesions


@dataclass
class FROC:
    """Free-response ROC: operating points from the highest threshold down.

    ``thresholds`` (score >= threshold counts), ``sensitivity`` (detected lesions / lesions),
    ``fp_per_image`` (false positives / images); the first point is (0, 0) at threshold +inf.
    ``n_lesions``, ``n_images``; ``candidates`` and ``lesions``: the per-image tables of
    :func:`match` concatenated, with an ``image`` column.
    """

    thresholds: np.ndarray
    sensitivity: np.ndarray
    fp_per_image: np.ndarray
    n_lesions: int
    n_images: int
    candidates: pd.DataFrame
    lesions: pd.DataFrame

    @property
    def max_sensitivity(self) -> float:
        return float(self.sensitivity[-1])


def froc(candidates: Sequence[pd.DataFrame], truths: Sequence, *, tolerance_mm: float = 0.0,
         labelled: bool = False, spacing=None) -> FROC:
    """FROC analysis over a set of images.

    Parameters
    ----------
    candidates : sequence of pandas.DataFrame
        One candidate table per image (:func:`blobs`, :func:`components`).
    truths : sequence of sitk.Image or ndarray
        The lesion mask of each image (an empty mask: an image without lesions).
    tolerance_mm, labelled, spacing
        As in :func:`match`.

    Returns
    -------
    FROC
    """
    candidates, truths = list(candidates), list(truths)
    if len(candidates) != len(truths):
        raise ValueError(f"`candidates` ({len(candidates)} tables) and `truths` ({len(truths)} masks) "
                         "must have one entry per image")
    if not candidates:
        raise ValueError("`candidates` is empty: FROC needs at least one image")
    cands, lesions = [], []
    for k, (c, tr) in enumerate(zip(candidates, truths, strict=True)):
        mc, ml = match(c, tr, tolerance_mm=tolerance_mm, labelled=labelled, spacing=spacing)
        cands.append(mc.assign(image=k))
        lesions.append(ml.assign(image=k))
    cand = pd.concat(cands, ignore_index=True)
    les = pd.concat(lesions, ignore_index=True)
    n_images, n_lesions = len(truths), len(les)
    fp_scores = cand.loc[cand["outcome"] == "FP", "score"].to_numpy(float)
    tp_scores = les["score"].dropna().to_numpy(float)
    thr = np.unique(np.r_[fp_scores, tp_scores])[::-1]
    sens = np.array([(tp_scores >= t).sum() for t in thr], float) / max(n_lesions, 1)
    fpi = np.array([(fp_scores >= t).sum() for t in thr], float) / n_images
    return FROC(np.r_[np.inf, thr], np.r_[0.0, sens], np.r_[0.0, fpi], n_lesions, n_images, cand, les)


def sensitivity_at(result: FROC, fp_per_image: Sequence[float] = LUNA_FP_RATES) -> dict[float, float]:
    """Sensitivity at given false positives per image.

    The sensitivity at ``f`` FP/image is the highest sensitivity of an operating point with at
    most ``f`` FP/image (a step function: no interpolation between thresholds).

    Parameters
    ----------
    result : FROC
        As :func:`froc` returns it.
    fp_per_image : sequence of float
        False positives per image at which to read the sensitivity.

    Returns
    -------
    dict
        ``{f: sensitivity}``; the mean over :data:`LUNA_FP_RATES` is the competition performance
        metric (CPM).
    """
    if not isinstance(result, FROC):
        raise TypeError(f"`result` must be a FROC from froc(); got {type(result).__name__}")
    out = {}
    for f in np.atleast_1d(np.asarray(fp_per_image, float)):
        if not f >= 0:
            raise ValueError(f"`fp_per_image` values must be >= 0; got {f!r}")
        ok = result.fp_per_image <= f + 1e-12
        out[float(f)] = float(result.sensitivity[ok].max())
    return out
