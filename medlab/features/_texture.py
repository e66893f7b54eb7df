"""IBSI texture families: GLCM, GLRLM, GLSZM, GLDZM, NGTDM, NGLDM with IBSI aggregation.

Matrices are built for all slices (2D) or the volume (3D) at once with array shifts and
``np.bincount``; features are evaluated on stacks of matrices. Aggregation (IBSI names):

========== ========================================================================
code       meaning
========== ========================================================================
2D_avg     GLCM/GLRLM: features per slice and 2D direction, averaged
2D_smrg    GLCM/GLRLM: directions merged per slice, features averaged over slices
2.5D_dmrg  GLCM/GLRLM: slices merged per direction, features averaged over directions
2.5D_mrg   GLCM/GLRLM: one matrix merged over slices and directions
3D_avg     GLCM/GLRLM: features per 3D direction (13), averaged
3D_mrg     GLCM/GLRLM: the 13 directional matrices merged
2D         GLSZM/GLDZM/NGTDM/NGLDM: features per slice, averaged
2.5D       GLSZM/GLDZM/NGTDM/NGLDM: per-slice matrices merged
3D         GLSZM/GLDZM/NGTDM/NGLDM: one volumetric matrix
========== ========================================================================

Slices (or directions) whose matrix is empty are left out of averages.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import xlogy
from skimage.measure import label as _label

from ._prepare import PreparedROI

__all__ = ["DIRECTIONS_2D", "DIRECTIONS_3D", "texture_features"]

#: in-plane direction vectors (z, y, x)
DIRECTIONS_2D = ((0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 1, -1))
#: the 13 unique 3D direction vectors (z, y, x) at Chebyshev distance 1
DIRECTIONS_3D = (
    (0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 1, 1), (0, 1, -1), (1, 0, 1), (1, 0, -1),
    (1, 1, 0), (1, -1, 0), (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1),
)
_LN2 = np.log(2.0)


def _log2_terms(p, q=None):
    """``p log2 q`` elementwise with 0 log 0 = 0 (q defaults to p)."""
    return xlogy(p, p if q is None else q) / _LN2


def _shift_slices(shape, d):
    """Slices ``(src, dst)`` so that ``a[dst]`` is the neighbour ``p + d`` of ``a[src]`` at ``p``."""
    src = tuple(slice(max(0, -k), n - max(0, k)) for n, k in zip(shape, d, strict=True))
    dst = tuple(slice(max(0, k), n + min(0, k)) for n, k in zip(shape, d, strict=True))
    return src, dst


# --------------------------------------------------------------------------------------- GLCM
def _glcm_counts(levels, ng, dirs, per_slice):
    """Symmetric co-occurrence counts, shape (slices or 1, directions, ng, ng)."""
    n_units = levels.shape[0] if per_slice else 1
    out = np.zeros((n_units, len(dirs), ng, ng))
    for k, d in enumerate(dirs):
        src, dst = _shift_slices(levels.shape, d)
        a, b = levels[src], levels[dst]
        ok = (a > 0) & (b > 0)
        idx = (a[ok].astype(np.int64) - 1) * ng + (b[ok] - 1)
        if per_slice:
            idx = idx + (np.nonzero(ok)[0] + src[0].start).astype(np.int64) * ng * ng
        c = np.bincount(idx, minlength=n_units * ng * ng).reshape(n_units, ng, ng).astype(np.float64)
        out[:, k] = c + c.transpose(0, 2, 1)
    return out


def _glcm_features(counts: np.ndarray, n_levels: int) -> dict[str, np.ndarray]:
    """GLCM features of a stack of count matrices (K, ng, ng); one value per matrix."""
    k_, ng, _ = counts.shape
    p = counts / counts.sum(axis=(1, 2), keepdims=True)
    i = np.arange(1, ng + 1, dtype=np.float64)
    ii, jj = np.meshgrid(i, i, indexing="ij")
    diff = np.abs(ii - jj)
    summ = ii + jj
    pi = p.sum(axis=2)
    mu = (pi * i).sum(axis=1)
    flat = p.reshape(k_, ng * ng)
    # diagonal (k = |i - j|) and cross-diagonal (k = i + j) probabilities, one diagonal at a time
    p_diff = np.zeros((k_, ng))
    p_sum = np.zeros((k_, 2 * ng + 1))
    flipped = p[:, :, ::-1]
    for off in range(ng):
        p_diff[:, off] = np.diagonal(p, off, 1, 2).sum(axis=-1) * (2 if off else 1)
    for k in range(2, 2 * ng + 1):
        # in the column-flipped matrix, i + j = k is the diagonal at offset ng + 1 - k
        p_sum[:, k] = np.diagonal(flipped, ng + 1 - k, 1, 2).sum(axis=-1)
    kd = np.arange(ng, dtype=np.float64)
    ks = np.arange(2 * ng + 1, dtype=np.float64)
    f = {}
    f["cm_joint_max"] = flat.max(axis=1, initial=0.0)
    f["cm_joint_avg"] = mu
    var = (((i[None, :] - mu[:, None]) ** 2) * pi).sum(axis=1)
    f["cm_joint_var"] = var
    hxy = -_log2_terms(p).sum(axis=(1, 2))
    f["cm_joint_entr"] = hxy
    d_avg = (kd * p_diff).sum(axis=1)
    f["cm_diff_avg"] = d_avg
    f["cm_diff_var"] = (((kd[None, :] - d_avg[:, None]) ** 2) * p_diff).sum(axis=1)
    f["cm_diff_entr"] = -_log2_terms(p_diff).sum(axis=1)
    s_avg = (ks * p_sum).sum(axis=1)
    f["cm_sum_avg"] = s_avg
    f["cm_sum_var"] = (((ks[None, :] - s_avg[:, None]) ** 2) * p_sum).sum(axis=1)
    f["cm_sum_entr"] = -_log2_terms(p_sum).sum(axis=1)
    f["cm_energy"] = (flat * flat).sum(axis=1)
    f["cm_contrast"] = (p * diff**2).sum(axis=(1, 2))
    f["cm_dissimilarity"] = (p * diff).sum(axis=(1, 2))
    f["cm_inv_diff"] = (p / (1 + diff)).sum(axis=(1, 2))
    f["cm_inv_diff_norm"] = (p / (1 + diff / n_levels)).sum(axis=(1, 2))
    f["cm_inv_diff_mom"] = (p / (1 + diff**2)).sum(axis=(1, 2))
    f["cm_inv_diff_mom_norm"] = (p / (1 + (diff / n_levels) ** 2)).sum(axis=(1, 2))
    f["cm_inv_var"] = (p_diff[:, 1:] / kd[1:] ** 2).sum(axis=1)
    auto = (p * ii * jj).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        f["cm_corr"] = (auto - mu**2) / var
    f["cm_auto_corr"] = auto
    c = summ[None] - 2 * mu[:, None, None]
    f["cm_clust_tend"] = (p * c**2).sum(axis=(1, 2))
    f["cm_clust_shade"] = (p * c**3).sum(axis=(1, 2))
    f["cm_clust_prom"] = (p * c**4).sum(axis=(1, 2))
    hx = -_log2_terms(pi).sum(axis=1)
    pipj = pi[:, :, None] * pi[:, None, :]
    hxy1 = -_log2_terms(p, pipj).sum(axis=(1, 2))
    hxy2 = -_log2_terms(pipj).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        f["cm_info_corr_1"] = (hxy - hxy1) / hx
    f["cm_info_corr_2"] = np.sqrt(np.clip(1 - np.exp(-2 * (hxy2 - hxy)), 0, None))
    return f


# ------------------------------------------------------------------------------ run lengths
def _runs(levels, d):
    """All runs along direction ``d``: (grey level, length, slice index of the run start)."""
    roi = levels > 0
    same_prev = np.zeros(levels.shape, bool)
    same_next = np.zeros(levels.shape, bool)
    src, dst = _shift_slices(levels.shape, d)
    eq = roi[src] & (levels[src] == levels[dst])
    same_prev[dst] = eq  # voxel p+d continues the run of p
    same_next[src] = eq
    starts = np.nonzero(roi & ~same_prev)
    ends = np.nonzero(roi & ~same_next)
    ax = next(a for a, k in enumerate(d) if k != 0)
    big = 4 * max(levels.shape) + 4  # every shifted coordinate below lies in [0, big)

    def keys(coords):
        t = coords[ax].astype(np.int64) * d[ax]
        key = np.zeros_like(t)
        for b in range(3):
            if b == ax:
                continue
            key = key * big + (coords[b].astype(np.int64) - t * d[b] + big // 2)
        return key * big + (t + big // 2), t

    ks, ts = keys(starts)
    ke, te = keys(ends)
    os_, oe = np.argsort(ks, kind="stable"), np.argsort(ke, kind="stable")
    length = te[oe] - ts[os_] + 1
    grey = levels[starts][os_]
    z = starts[0][os_]
    return grey, length, z


def _glrlm_counts(levels, ng, dirs, per_slice):
    """Run-length counts (units, directions, ng, max run)."""
    n_units = levels.shape[0] if per_slice else 1
    runs = [_runs(levels, d) for d in dirs]
    nr = max(int(r[1].max()) if r[1].size else 1 for r in runs)
    out = np.zeros((n_units, len(dirs), ng, nr))
    for k, (grey, length, z) in enumerate(runs):
        idx = (grey.astype(np.int64) - 1) * nr + (length - 1)
        if per_slice:
            idx = idx + z.astype(np.int64) * ng * nr
        out[:, k] = np.bincount(idx, minlength=n_units * ng * nr).reshape(n_units, ng, nr)
    return out


# -------------------------------------------------- features of (grey level x count) matrices
def _rl_like_features(m: np.ndarray, nv: np.ndarray, names: tuple) -> dict[str, np.ndarray]:
    """Features shared by GLRLM, GLSZM, GLDZM and NGLDM matrices (K, ng, nj); ``nv`` (K,).

    Sums are taken through the marginals and matrix products, so the only temporaries of the
    matrix' size are those of the entropy and energy.
    """
    _, ng, nj = m.shape
    i = np.arange(1, ng + 1, dtype=np.float64)
    j = np.arange(1, nj + 1, dtype=np.float64)
    ns = m.sum(axis=(1, 2))
    ri = m.sum(axis=2)
    rj = m.sum(axis=1)
    mj_inv = m @ (1.0 / j**2)  # (K, ng): sum_j m_ij / j^2
    mj_sq = m @ (j**2)
    mu_i = (ri @ i) / ns
    mu_j = (rj @ j) / ns
    vals = [
        (rj @ (1.0 / j**2)) / ns,
        (rj @ (j**2)) / ns,
        (ri @ (1.0 / i**2)) / ns,
        (ri @ (i**2)) / ns,
        (mj_inv @ (1.0 / i**2)) / ns,
        (mj_inv @ (i**2)) / ns,
        (mj_sq @ (1.0 / i**2)) / ns,
        (mj_sq @ (i**2)) / ns,
        (ri**2).sum(axis=1) / ns,
        (ri**2).sum(axis=1) / ns**2,
        (rj**2).sum(axis=1) / ns,
        (rj**2).sum(axis=1) / ns**2,
        ns / nv,
        (ri * (i[None, :] - mu_i[:, None]) ** 2).sum(axis=1) / ns,
        (rj * (j[None, :] - mu_j[:, None]) ** 2).sum(axis=1) / ns,
        -_log2_terms(m / ns[:, None, None]).sum(axis=(1, 2)),
        ((m * m).sum(axis=(1, 2))) / ns**2,
    ]
    return dict(zip(names, vals, strict=False))


_RLM = ("rlm_sre", "rlm_lre", "rlm_lgre", "rlm_hgre", "rlm_srlge", "rlm_srhge", "rlm_lrlge", "rlm_lrhge",
        "rlm_glnu", "rlm_glnu_norm", "rlm_rlnu", "rlm_rlnu_norm", "rlm_r_perc", "rlm_gl_var", "rlm_rl_var",
        "rlm_rl_entr")
_SZM = ("szm_sze", "szm_lze", "szm_lgze", "szm_hgze", "szm_szlge", "szm_szhge", "szm_lzlge", "szm_lzhge",
        "szm_glnu", "szm_glnu_norm", "szm_zsnu", "szm_zsnu_norm", "szm_z_perc", "szm_gl_var", "szm_zs_var",
        "szm_zs_entr")
_DZM = ("dzm_sde", "dzm_lde", "dzm_lgze", "dzm_hgze", "dzm_sdlge", "dzm_sdhge", "dzm_ldlge", "dzm_ldhge",
        "dzm_glnu", "dzm_glnu_norm", "dzm_zdnu", "dzm_zdnu_norm", "dzm_z_perc", "dzm_gl_var", "dzm_zd_var",
        "dzm_zd_entr")
_NGL = ("ngl_lde", "ngl_hde", "ngl_lgce", "ngl_hgce", "ngl_ldlge", "ngl_ldhge", "ngl_hdlge", "ngl_hdhge",
        "ngl_glnu", "ngl_glnu_norm", "ngl_dcnu", "ngl_dcnu_norm", "ngl_dc_perc", "ngl_gl_var", "ngl_dc_var",
        "ngl_dc_entr", "ngl_dc_energy")


# ------------------------------------------------------------------------- zones (GLSZM/GLDZM)
def _zones(levels, ng, per_slice):
    """Connected zones of equal grey level: (label image, grey per zone, slice per zone)."""
    roi = levels > 0
    if per_slice:
        # distinct values per slice, so 26-connected labelling never links two slices
        key = np.where(roi, levels + np.arange(levels.shape[0])[:, None, None] * (ng + 1), 0)
    else:
        key = levels
    lab, n = _label(key, background=0, connectivity=3, return_num=True)
    grey = np.zeros(n + 1, np.int64)
    grey[lab[roi]] = levels[roi]
    zsl = np.zeros(n + 1, np.int64)
    zsl[lab[roi]] = np.nonzero(roi)[0]
    return lab, n, grey[1:], zsl[1:]


def _distance_map(morph, per_slice):
    """Manhattan distance (in voxels, >= 1 inside) to the ROI edge (4-conn in-plane or 6-conn 3D)."""
    padded = np.pad(morph, 1)
    if per_slice:
        metric = np.zeros((3, 3, 3), bool)
        metric[1] = ndimage.generate_binary_structure(2, 1)
    else:
        metric = "taxicab"
    d = ndimage.distance_transform_cdt(padded, metric=metric)
    return d[1:-1, 1:-1, 1:-1]


def _zone_counts(levels, morph, ng, per_slice, want):
    """GLSZM and/or GLDZM counts, shape (units, ng, max size / max distance)."""
    n_units = levels.shape[0] if per_slice else 1
    lab, n, grey, zsl = _zones(levels, ng, per_slice)
    unit = zsl if per_slice else np.zeros_like(zsl)
    out = {}
    if "szm" in want:
        size = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        nz = int(size.max())
        idx = (unit * ng + grey - 1) * nz + size - 1
        out["szm"] = np.bincount(idx, minlength=n_units * ng * nz).reshape(n_units, ng, nz).astype(float)
    if "dzm" in want:
        dist = _distance_map(morph, per_slice)
        zd = ndimage.minimum(dist, lab, index=np.arange(1, n + 1)).astype(np.int64)
        nd = int(zd.max())
        idx = (unit * ng + grey - 1) * nd + zd - 1
        out["dzm"] = np.bincount(idx, minlength=n_units * ng * nd).reshape(n_units, ng, nd).astype(float)
    return out


# ----------------------------------------------------------------------------- NGTDM / NGLDM
def _offsets(dist, per_slice):
    r = range(-dist, dist + 1)
    zr = [0] if per_slice else r
    return [(a, b, c) for a in zr for b in r for c in r if (a, b, c) != (0, 0, 0)]


def _ngtdm(levels, ng, per_slice, dist):
    """NGTDM (s_i, n_i) per unit: shapes (units, ng)."""
    n_units = levels.shape[0] if per_slice else 1
    roi = levels > 0
    pad = dist
    g = np.pad(levels.astype(np.float64), pad)
    m = np.pad(roi.astype(np.float64), pad)
    tot = np.zeros(levels.shape)
    cnt = np.zeros(levels.shape)
    core = tuple(slice(pad, pad + n) for n in levels.shape)
    for off in _offsets(dist, per_slice):
        sl = tuple(slice(s.start + o, s.stop + o) for s, o in zip(core, off, strict=True))
        tot += g[sl]
        cnt += m[sl]
    valid = roi & (cnt > 0)
    avg = tot[valid] / cnt[valid]
    lv = levels[valid].astype(np.int64)
    idx = lv - 1
    if per_slice:
        idx = idx + np.nonzero(valid)[0].astype(np.int64) * ng
    s = np.bincount(idx, weights=np.abs(lv - avg), minlength=n_units * ng).reshape(n_units, ng)
    n = np.bincount(idx, minlength=n_units * ng).reshape(n_units, ng).astype(float)
    return s, n


def _ngtdm_features(s: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    ng = s.shape[1]
    nvc = n.sum(axis=1)
    p = n / nvc[:, None]
    i = np.arange(1, ng + 1, dtype=np.float64)
    present = p > 0
    ngp = present.sum(axis=1)
    ps = (p * s).sum(axis=1)
    pair = present[:, :, None] & present[:, None, :]
    di = i[:, None] - i[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        coarse = 1.0 / ps
        contrast = ((p[:, :, None] * p[:, None, :] * di**2).sum(axis=(1, 2)) / (ngp * (ngp - 1))) * (
            s.sum(axis=1) / nvc
        )
        ip = i[None, :] * p
        busy_den = (np.abs(ip[:, :, None] - ip[:, None, :]) * pair).sum(axis=(1, 2))
        busy = ps / busy_den
        psum = p[:, :, None] + p[:, None, :]
        frac = (p * s)[:, :, None] + (p * s)[:, None, :]
        comp = np.where(pair, np.abs(di) * frac / np.where(pair, psum, 1), 0).sum(axis=(1, 2)) / nvc
        strength = np.where(pair, psum * di**2, 0).sum(axis=(1, 2)) / s.sum(axis=1)
    return {
        "ngt_coarseness": coarse,
        "ngt_contrast": contrast,
        "ngt_busyness": busy,
        "ngt_complexity": comp,
        "ngt_strength": strength,
    }


def _ngldm_counts(levels, ng, per_slice, dist, alpha):
    """NGLDM counts (units, ng, max dependence)."""
    n_units = levels.shape[0] if per_slice else 1
    roi = levels > 0
    pad = dist
    g = np.pad(levels, pad)
    dep = np.ones(levels.shape, np.int64)
    core = tuple(slice(pad, pad + n) for n in levels.shape)
    for off in _offsets(dist, per_slice):
        sl = tuple(slice(s.start + o, s.stop + o) for s, o in zip(core, off, strict=True))
        nb = g[sl]
        dep += (nb > 0) & (np.abs(nb - levels) <= alpha)
    lv = levels[roi].astype(np.int64)
    dj = dep[roi]
    nn = int(dj.max())
    idx = (lv - 1) * nn + dj - 1
    if per_slice:
        idx = idx + np.nonzero(roi)[0].astype(np.int64) * ng * nn
    return np.bincount(idx, minlength=n_units * ng * nn).reshape(n_units, ng, nn).astype(float)


# ---------------------------------------------------------------------------- aggregation
def _mean_over(features: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, float]:
    out = {}
    for name, v in features.items():
        v = v[keep]
        out[name] = float(np.mean(v)) if v.size else float("nan")
    return out


def _directional(counts_2d, counts_3d, nv_2d, nv_3d, codes, func):
    """Aggregate directional matrices (GLCM, GLRLM) per IBSI; ``func(stack, nv) -> features``."""
    out = {}
    for code in codes:
        if code.startswith(("2D", "2.5D")):
            c, nv = counts_2d, nv_2d
        else:
            c, nv = counts_3d, nv_3d
        s_, d_ = c.shape[:2]
        if code in ("2D_avg", "3D_avg"):
            stack, nvs = c.reshape(s_ * d_, *c.shape[2:]), nv.reshape(-1)
        elif code == "2D_smrg":
            stack, nvs = c.sum(axis=1), nv.sum(axis=1)
        elif code == "2.5D_dmrg":
            stack, nvs = c.sum(axis=0), nv.sum(axis=0)
        else:  # 2.5D_mrg, 3D_mrg
            stack, nvs = c.sum(axis=(0, 1))[None], nv.sum()[None]
        keep = stack.sum(axis=(1, 2)) > 0
        feats = func(stack[keep], nvs[keep])
        for name, value in _mean_over(feats, np.ones(int(keep.sum()), bool)).items():
            out[f"{name}_{code}"] = value
    return out


def _per_slice(stack_2d, nv_2d, stack_3d, nv_3d, codes, func):
    """Aggregate non-directional matrices: '2D' (averaged), '2.5D' (merged), '3D'."""
    out = {}
    for code in codes:
        if code == "2D":
            stack, nvs = stack_2d, nv_2d
        elif code == "2.5D":
            stack, nvs = stack_2d.sum(axis=0)[None], nv_2d.sum()[None]
        else:
            stack, nvs = stack_3d, nv_3d
        keep = stack.reshape(stack.shape[0], -1).sum(axis=1) > 0
        feats = func(stack[keep], nvs[keep])
        for name, value in _mean_over(feats, np.ones(int(keep.sum()), bool)).items():
            out[f"{name}_{code}"] = value
    return out


def texture_features(roi: PreparedROI, families=("cm", "rlm", "szm", "dzm", "ngt", "ngl")) -> dict[str, float]:
    """Texture features of a prepared ROI for the aggregations of ``roi.settings.texture_dims``."""
    s = roi.settings
    # crop to the intensity mask (texture uses only it; GLDZM's distance map uses the morph mask)
    box = tuple(
        slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(roi.morph | roi.inten)
    )
    levels = roi.levels[box]
    morph = roi.morph[box]
    ng = roi.n_levels
    dims = s.texture_dims
    want2d = "2D" in dims or "2.5D" in dims
    want3d = "3D" in dims
    codes_dir = [c for d in dims for c in {"2D": ("2D_avg", "2D_smrg"), "2.5D": ("2.5D_dmrg", "2.5D_mrg"),
                                            "3D": ("3D_avg", "3D_mrg")}[d]]
    roi_mask = levels > 0
    nv_slice = roi_mask.sum(axis=(1, 2)).astype(np.float64)
    nv_all = float(roi_mask.sum())
    out = {}
    if "cm" in families:
        dirs2 = [tuple(s.distance * k for k in d) for d in DIRECTIONS_2D]
        dirs3 = [tuple(s.distance * k for k in d) for d in DIRECTIONS_3D]
        c2 = _glcm_counts(levels, ng, dirs2, True) if want2d else None
        c3 = _glcm_counts(levels, ng, dirs3, False) if want3d else None
        z2 = np.zeros(c2.shape[:2]) if c2 is not None else None
        z3 = np.zeros(c3.shape[:2]) if c3 is not None else None
        out.update(_directional(c2, c3, z2, z3, codes_dir, lambda m, nv: _glcm_features(m, ng)))
    if "rlm" in families:
        r2 = _glrlm_counts(levels, ng, DIRECTIONS_2D, True) if want2d else None
        r3 = _glrlm_counts(levels, ng, DIRECTIONS_3D, False) if want3d else None
        nv2 = np.repeat(nv_slice[:, None], len(DIRECTIONS_2D), axis=1) if want2d else None
        nv3 = np.full((1, len(DIRECTIONS_3D)), nv_all) if want3d else None
        out.update(_directional(r2, r3, nv2, nv3, codes_dir, lambda m, nv: _rl_like_features(m, nv, _RLM)))
    codes = list(dims)
    zone_want = [f for f in ("szm", "dzm") if f in families]
    if zone_want:
        z2 = _zone_counts(levels, morph, ng, True, zone_want) if want2d else {}
        z3 = _zone_counts(levels, morph, ng, False, zone_want) if want3d else {}
        names = {"szm": _SZM, "dzm": _DZM}
        for fam in zone_want:
            out.update(
                _per_slice(
                    z2.get(fam), nv_slice, z3.get(fam), np.array([nv_all]), codes,
                    lambda m, nv, fam=fam: _rl_like_features(m, nv, names[fam]),
                )
            )
    if "ngt" in families:
        if want2d:
            s2, n2 = _ngtdm(levels, ng, True, s.distance)
        else:
            s2 = n2 = None
        s3, n3 = _ngtdm(levels, ng, False, s.distance) if want3d else (None, None)
        st2 = np.stack([s2, n2], axis=1) if want2d else None
        st3 = np.stack([s3, n3], axis=1) if want3d else None
        out.update(
            _per_slice(st2, nv_slice, st3, np.array([nv_all]), codes,
                       lambda m, nv: _ngtdm_features(m[:, 0], m[:, 1]))
        )
    if "ngl" in families:
        g2 = _ngldm_counts(levels, ng, True, s.distance, s.ngldm_alpha) if want2d else None
        g3 = _ngldm_counts(levels, ng, False, s.distance, s.ngldm_alpha) if want3d else None
        out.update(
            _per_slice(g2, nv_slice, g3, np.array([nv_all]), codes,
                       lambda m, nv: _rl_like_features(m, nv, _NGL))
        )
    return out
