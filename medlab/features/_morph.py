"""IBSI morphological features (3D, from the morphological mask, its mesh and the intensity mask)."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from scipy.special import eval_legendre
from skimage.measure import marching_cubes

from ._prepare import PreparedROI

__all__ = ["morphology_features", "roi_mesh", "spatial_autocorrelation"]


def roi_mesh(mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes mesh (vertices in mm, (z, y, x); faces) of a binary mask at level 0.5.

    The mask is padded with background so that ROIs touching the crop border are closed.
    """
    padded = np.pad(mask.astype(np.float32), 1)
    verts, faces, _, _ = marching_cubes(padded, 0.5, spacing=tuple(float(s) for s in spacing))
    return verts, faces


def _mesh_volume_area(verts, faces) -> tuple[float, float]:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    volume = abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2.0
    return float(volume), float(area)


def _ellipsoid_area(a: float, b: float, c: float, terms: int = 20) -> float:
    """IBSI approximation of an ellipsoid's surface (Legendre series up to degree ``terms``)."""
    alpha = math.sqrt(max(0.0, 1 - b * b / (a * a)))
    beta = math.sqrt(max(0.0, 1 - c * c / (a * a)))
    if alpha == 0 and beta == 0:
        return 4 * math.pi * a * a
    # a spheroid makes the series' argument infinite; its limit is reached to ~1e-12 this way
    alpha, beta = max(alpha, 1e-7), max(beta, 1e-7)
    x = (alpha**2 + beta**2) / (2 * alpha * beta)
    nu = np.arange(terms + 1)
    s = np.sum((alpha * beta) ** nu / (1 - 4 * nu**2) * eval_legendre(nu, x))
    return float(4 * math.pi * a * b * s)


def spatial_autocorrelation(values: np.ndarray, mask: np.ndarray, spacing) -> tuple[float, float]:
    """Moran's I and Geary's C with inverse-Euclidean-distance weights over all voxel pairs.

    The pair sums are exact: the weight depends only on the displacement between two voxels,
    so every sum over pairs is a convolution with the kernel ``1 / |d|`` (``d != 0``, mm),
    done with FFTs instead of the O(N^2) double loop.
    """
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    mask, values = mask[box], values[box]
    m = mask.astype(np.float64)
    n = int(mask.sum())
    x = np.where(mask, values, 0.0)
    mu = x.sum() / n
    z = np.where(mask, values - mu, 0.0)
    ss = float((z * z).sum())
    if n < 2 or ss == 0:
        return math.nan, math.nan
    axes = [np.arange(-(k - 1), k) * s for k, s in zip(mask.shape, spacing, strict=True)]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    r = np.sqrt(sum(g * g for g in grids))
    with np.errstate(divide="ignore"):
        kernel = np.where(r > 0, 1.0 / r, 0.0)
    # circular convolution of length >= 2k - 1 is enough: the wrapped-around part of the full
    # (3k - 2 long) linear convolution never reaches the kept outputs k-1 .. 2k-2
    full = [sfft.next_fast_len(2 * k - 1, real=True) for k in mask.shape]
    kf = sfft.rfftn(kernel, full)

    def conv(a):
        out = sfft.irfftn(sfft.rfftn(a, full) * kf, full)
        # kernel centre sits at index (k - 1) along each axis
        sl = tuple(slice(k - 1, 2 * k - 1) for k in mask.shape)
        return out[sl]

    s_m = conv(m)
    s_z = conv(z)
    w_total = float((m * s_m).sum())
    zz = float((z * s_z).sum())
    moran = n / w_total * zz / ss
    geary = (n - 1) / (2 * w_total) * (2 * float((z * z * s_m).sum()) - 2 * zz) / ss
    return float(moran), float(geary)


def morphology_features(roi: PreparedROI) -> dict[str, float]:
    """IBSI morphological features of a prepared ROI (mm, mm^2, mm^3)."""
    sp = np.asarray(roi.spacing, float)
    morph = roi.morph
    verts, faces = roi_mesh(morph, sp)
    vol, area = _mesh_volume_area(verts, faces)
    out = {"morph_vol": vol}
    out["morph_approx_vol"] = float(morph.sum() * np.prod(sp))
    out["morph_area"] = area
    out["morph_av"] = area / vol
    out["morph_comp_1"] = vol / (math.sqrt(math.pi) * area**1.5)
    out["morph_comp_2"] = 36 * math.pi * vol**2 / area**3
    out["morph_sph_dispr"] = area / (36 * math.pi * vol**2) ** (1 / 3)
    out["morph_sphericity"] = (36 * math.pi * vol**2) ** (1 / 3) / area
    out["morph_asphericity"] = (area**3 / (36 * math.pi * vol**2)) ** (1 / 3) - 1

    # centre of mass shift: geometric (morphological mask) vs intensity-weighted (intensity mask)
    pts = np.argwhere(morph) * sp
    com_geom = pts.mean(axis=0)
    ipts = np.argwhere(roi.inten) * sp
    ivals = roi.image[roi.inten]
    com_gl = (ipts * ivals[:, None]).sum(axis=0) / ivals.sum()
    out["morph_com"] = float(np.linalg.norm(com_geom - com_gl))

    hull = ConvexHull(verts)
    out["morph_diam"] = float(pdist(verts[hull.vertices]).max())

    # PCA of the voxel-centre point set (sample covariance, N - 1, as in the IBSI reference values)
    lam = np.sort(np.linalg.eigvalsh(np.cov(pts.T)))[::-1] if len(pts) > 1 else np.zeros(3)
    lam = np.clip(lam, 0, None)
    major, minor, least = (4 * math.sqrt(v) for v in lam)
    out["morph_pca_major"] = major
    out["morph_pca_minor"] = minor
    out["morph_pca_least"] = least
    out["morph_pca_elongation"] = math.sqrt(lam[1] / lam[0]) if lam[0] > 0 else math.nan
    out["morph_pca_flatness"] = math.sqrt(lam[2] / lam[0]) if lam[0] > 0 else math.nan

    extent = verts.max(axis=0) - verts.min(axis=0)
    v_aabb = float(np.prod(extent))
    a_aabb = float(2 * (extent[0] * extent[1] + extent[1] * extent[2] + extent[0] * extent[2]))
    out["morph_v_dens_aabb"] = vol / v_aabb
    out["morph_a_dens_aabb"] = area / a_aabb
    a, b, c = major / 2, minor / 2, least / 2
    out["morph_v_dens_aee"] = 3 * vol / (4 * math.pi * a * b * c) if c > 0 else math.nan
    out["morph_a_dens_aee"] = area / _ellipsoid_area(a, b, c) if c > 0 else math.nan
    out["morph_v_dens_conv_hull"] = vol / float(hull.volume)
    out["morph_a_dens_conv_hull"] = area / float(hull.area)
    out["morph_integ_int"] = vol * float(ivals.mean())
    moran, geary = spatial_autocorrelation(roi.image, roi.inten, sp)
    out["morph_moran_i"] = moran
    out["morph_geary_c"] = geary
    return out
