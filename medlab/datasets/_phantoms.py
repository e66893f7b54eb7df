"""Seeded synthetic phantoms with exact ground truth, for unit tests and tutorials.

Every phantom is built on a voxel grid with origin (0, 0[, 0]) mm and identity direction.
``shape`` and ``spacing_mm`` are given in numpy axis order, ``(z, y, x)`` or ``(y, x)``, like
arrays in medlab; the returned ``SimpleITK.Image`` carries the spacing in SimpleITK's
``(x, y[, z])`` order. Points in ``truth`` come twice: ``centre_mm`` is a physical point
``(x, y[, z])`` in mm, ``centre_index`` the numpy index ``(z, y, x)`` / ``(y, x)`` of the same
voxel. A lesion is the set of voxels whose centres lie within ``radius_mm`` of a voxel centre,
so its voxel count, volume and centroid in ``truth`` are exact, not approximations of a sphere.

The same ``seed`` gives bit-identical output; anything random (lesion sizes and positions,
noise, speckle, bias field) is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, check_spacing
from medlab._options import check_choice, check_positive

__all__ = ["Phantom", "ct_phantom", "mr_phantom", "pet_phantom", "us_phantom", "xray_phantom"]


@dataclass(frozen=True)
class Phantom:
    """A synthetic image with its exact ground truth.

    Attributes
    ----------
    image : sitk.Image
        Intensities in physical units (CT: HU, PET: SUV, MR/US: arbitrary units as acquired,
        X-ray: detected photons), ``sitkFloat32``.
    labels : sitk.Image
        ``sitkUInt8`` label image on the same grid as ``image``; names in
        ``truth['label_names']``.
    truth : dict
        Exact values: ``label_names`` {label: name}, ``values`` {label: noise-free intensity},
        ``units``, ``n_voxels`` {label: count}, ``volume_ml`` (3D) or ``area_mm2`` (2D)
        {label: size}, ``lesions`` (list of dicts with ``label``, ``centre_mm``,
        ``centre_index``, ``radius_mm``, ``n_voxels`` and ``volume_ml``/``area_mm2``), the noise
        parameters, and modality-specific entries documented by each generator.
    """

    image: sitk.Image
    labels: sitk.Image
    truth: dict = field(default_factory=dict)


# ------------------------------------------------------------------ argument checks


def _check_shape(shape, ndims=(2, 3), *, name="shape", minimum=16) -> tuple[int, ...]:
    try:
        shp = tuple(int(n) for n in shape)
    except TypeError:
        raise TypeError(f"`{name}` must be a sequence of ints; got {shape!r}") from None
    if len(shp) not in ndims or any(n != s for n, s in zip(shp, shape, strict=True)):
        dims = " or ".join(str(d) for d in ndims)
        raise ValueError(f"`{name}` must have {dims} integer sizes (array axis order); got {shape!r}")
    if min(shp) < minimum:
        raise ValueError(f"every size in `{name}` must be >= {minimum}; got {shape!r}")
    return shp


def _check_spacing(spacing_mm, ndim: int, default=None) -> tuple[float, ...]:
    """``spacing_mm`` checked against ``ndim``; None takes the last ``ndim`` values of ``default``."""
    if spacing_mm is None:
        spacing_mm = tuple(default)[-ndim:]
    return check_spacing(spacing_mm, ndim, "`shape`", arg="spacing_mm")


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0; got {value!r}")
    return int(value)


def _check_range(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a (low, high) pair of numbers; got {value!r}") from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"`{name}` must satisfy 0 < low <= high; got {value!r}")
    return lo, hi


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"`seed` must be an int >= 0 or None; got {seed!r}")
    return np.random.default_rng(seed)


def _merge(name: str, defaults: dict, given) -> dict:
    out = dict(defaults)
    for key, val in (given or {}).items():
        check_choice(f"{name} key", key, list(defaults))
        out[key] = float(val)
    return out


# ------------------------------------------------------------------ geometry


class _Grid:
    """A voxel grid (origin 0, identity direction); everything in numpy axis order."""

    def __init__(self, shape, spacing):
        self.shape = tuple(shape)
        self.spacing = tuple(spacing)
        self.ndim = len(shape)
        self.axis = {"z": 0, "y": 1, "x": 2} if self.ndim == 3 else {"y": 0, "x": 1}
        self.voxel_mm3 = float(np.prod(spacing))
        # open grids of voxel-centre coordinates in mm, one per axis
        self.coords = [
            (np.arange(n, dtype=np.float64) * s).reshape([-1 if a == i else 1 for a in range(self.ndim)])
            for i, (n, s) in enumerate(zip(shape, spacing))
        ]

    def extent(self, ax: str) -> float:
        """Distance in mm between the first and last voxel centres along physical axis ``ax``."""
        i = self.axis[ax]
        return (self.shape[i] - 1) * self.spacing[i]

    def centre(self, ax: str) -> float:
        return self.extent(ax) / 2

    def ellipsoid(self, centre: dict, semi: dict) -> np.ndarray:
        """Voxels inside an axis-aligned ellipsoid; axes missing from ``semi`` are unbounded."""
        acc = np.zeros((1,) * self.ndim)
        for ax, i in self.axis.items():
            if ax in semi:
                acc = acc + ((self.coords[i] - centre[ax]) / semi[ax]) ** 2
        return np.broadcast_to(acc <= 1.0, self.shape)

    def to_sitk(self, arr: np.ndarray) -> sitk.Image:
        img, _ = as_sitk(arr, spacing=self.spacing)
        return img

    def index_to_mm(self, index) -> tuple[float, ...]:
        """Physical point ``(x, y[, z])`` in mm of the numpy index ``(z, y, x)``."""
        return tuple(float(i * s) for i, s in zip(index, self.spacing))[::-1]

    def size_key(self) -> str:
        return "volume_ml" if self.ndim == 3 else "area_mm2"

    def size(self, n_voxels: int) -> float:
        """Volume in mL (3D) or area in mm^2 (2D) of ``n_voxels`` voxels."""
        return n_voxels * self.voxel_mm3 / (1000.0 if self.ndim == 3 else 1.0)


def _ball(grid: _Grid, centre_index, radius_mm: float):
    """(slices, mask) of the voxels within ``radius_mm`` of voxel ``centre_index``, or None if
    the ball's bounding box leaves the grid."""
    half = [int(math.floor(radius_mm / s)) for s in grid.spacing]
    lo = [c - h for c, h in zip(centre_index, half)]
    hi = [c + h + 1 for c, h in zip(centre_index, half)]
    if any(a < 0 for a in lo) or any(b > n for b, n in zip(hi, grid.shape)):
        return None
    acc = np.zeros((1,) * grid.ndim)
    for i, (h, s) in enumerate(zip(half, grid.spacing)):
        d = (np.arange(-h, h + 1) * s).reshape([-1 if a == i else 1 for a in range(grid.ndim)])
        acc = acc + d**2
    # a tiny tolerance so a radius that is an exact multiple of the spacing keeps its boundary
    mask = np.broadcast_to(acc <= radius_mm**2 * (1 + 1e-12), [2 * h + 1 for h in half])
    return tuple(slice(a, b) for a, b in zip(lo, hi)), mask


def _place_balls(rng, grid: _Grid, labels: np.ndarray, *, n: int, radius_range, region: np.ndarray,
                 first_label: int, what: str, gap_mm: float | None = None, project_axis=None,
                 max_tries: int = 400, args=("n_lesions", "lesion_radius_mm")) -> list[dict]:
    """Place ``n`` non-overlapping balls fully inside ``region``; write their labels.

    Centres are voxel centres, so each ball is symmetric and its centroid is its centre.
    With ``project_axis``, balls also must not overlap in the projection along that axis.
    """
    if n == 0:
        return []
    if first_label + n - 1 > 255:
        raise ValueError(f"too many {what} for a uint8 label image: `{args[0]}`={n}")
    gap = max(grid.spacing) if gap_mm is None else gap_mm
    candidates = np.flatnonzero(region)
    if candidates.size == 0:
        raise ValueError(f"no room for {what}: the region is empty for this `shape`/`spacing_mm`")
    occupied = np.zeros(grid.shape, bool)
    shadow = None
    if project_axis is not None:
        shadow = np.zeros([s for i, s in enumerate(grid.shape) if i != project_axis], bool)
    out = []
    for k in range(n):
        for _ in range(max_tries):
            radius = float(rng.uniform(*radius_range))
            centre = np.unravel_index(candidates[rng.integers(candidates.size)], grid.shape)
            inner = _ball(grid, centre, radius)
            outer = _ball(grid, centre, radius + gap)
            if inner is None or outer is None:
                continue
            (sl, mask), (osl, omask) = inner, outer
            if not region[sl][mask].all() or occupied[osl][omask].any():
                continue
            if shadow is not None:
                oproj = omask.any(axis=project_axis)
                psl = tuple(s for i, s in enumerate(osl) if i != project_axis)
                if shadow[psl][oproj].any():
                    continue
            break
        else:
            raise ValueError(
                f"could not place {n} {what} of radius {radius_range[0]:g}-{radius_range[1]:g} mm "
                f"(placed {k}); use fewer (`{args[0]}`) or smaller (`{args[1]}`) ones, "
                f"or a larger `shape`"
            )
        label = first_label + k
        labels[sl][mask] = label
        occupied[osl] |= omask
        if shadow is not None:
            shadow[psl] |= oproj
        nvox = int(mask.sum())
        idx = tuple(int(c) for c in centre)
        out.append({
            "label": label,
            "centre_index": idx,
            "centre_mm": grid.index_to_mm(idx),
            "radius_mm": radius,
            "n_voxels": nvox,
            grid.size_key(): grid.size(nvox),
        })
    return out


def _finish(grid: _Grid, image: np.ndarray, labels: np.ndarray, truth: dict) -> Phantom:
    counts = np.bincount(labels.ravel(), minlength=256)
    truth["n_voxels"] = {int(lab): int(counts[lab]) for lab in truth["label_names"]}
    truth[grid.size_key()] = {lab: grid.size(c) for lab, c in truth["n_voxels"].items()}
    truth["spacing_mm"] = grid.spacing
    truth["shape"] = grid.shape
    return Phantom(grid.to_sitk(image.astype(np.float32)), grid.to_sitk(labels), truth)


# ------------------------------------------------------------------ CT / X-ray anatomy

_CT_NAMES = {0: "air", 1: "soft_tissue", 2: "lung", 3: "bone"}
_CT_HU = {"air": -1000.0, "soft_tissue": 40.0, "lung": -850.0, "bone": 700.0}


def _chest(rng, grid: _Grid, *, n_lesions, radius_range, project_axis=None):
    """Label image of a chest: body, two lungs, spine, lung nodules (labels 4, 5, ...)."""
    X, Y = grid.extent("x"), grid.extent("y")
    cx, cy = grid.centre("x"), grid.centre("y")
    labels = np.zeros(grid.shape, np.uint8)
    labels[grid.ellipsoid({"x": cx, "y": cy}, {"x": 0.46 * X, "y": 0.36 * Y})] = 1
    zc, zsemi = (grid.centre("z"), 0.42 * grid.extent("z")) if grid.ndim == 3 else (0.0, math.inf)
    for side in (-1, 1):
        lung = grid.ellipsoid({"x": cx + side * 0.2 * X, "y": cy - 0.03 * Y, "z": zc},
                              {"x": 0.15 * X, "y": 0.24 * Y, "z": zsemi})
        labels[lung] = 2
    labels[grid.ellipsoid({"x": cx, "y": cy + 0.24 * Y}, {"x": 0.06 * X, "y": 0.06 * X})] = 3
    lesions = _place_balls(rng, grid, labels, n=n_lesions, radius_range=radius_range,
                           region=labels == 2, first_label=4, what="lung nodules",
                           project_axis=project_axis)
    return labels, lesions


def ct_phantom(*, shape=(48, 96, 96), spacing_mm=None, n_lesions=3,
               lesion_radius_mm=(3.0, 8.0), lesion_hu=60.0, hu=None, noise_hu=10.0,
               seed=0) -> Phantom:
    """A CT-like chest: soft-tissue body in air, two lungs, a spine and lung nodules.

    Parameters
    ----------
    shape : (Z, Y, X) or (Y, X) tuple of int
        Grid size in numpy axis order; 2D gives one axial slice.
    spacing_mm : float or tuple of float, optional
        Voxel size in mm, numpy axis order. Default (2.5, 2.0, 2.0) in 3D, (2.0, 2.0) in 2D.
    n_lesions : int
        Number of spherical nodules, each fully inside a lung, not touching another.
    lesion_radius_mm : (low, high)
        Nodule radii are drawn uniformly from this range (mm).
    lesion_hu : float
        Nodule attenuation (HU).
    hu : dict, optional
        Overrides of the tissue values, keys among 'air' (-1000), 'soft_tissue' (40),
        'lung' (-850), 'bone' (700).
    noise_hu : float
        Standard deviation of additive Gaussian noise (HU); 0 gives the noise-free image.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image`` in HU (float32); ``labels`` 0 air, 1 soft tissue, 2 lung, 3 bone, 4.. nodules.
        ``truth`` adds ``noise_sigma`` (HU) to the common keys (see :class:`Phantom`).

    Examples
    --------
    >>> from medlab.datasets import ct_phantom
    >>> ph = ct_phantom(shape=(32, 64, 64), n_lesions=1, noise_hu=0)
    >>> ph.truth["label_names"][4], ph.truth["values"][2]
    ('lesion_1', -850.0)
    """
    shape = _check_shape(shape)
    grid = _Grid(shape, _check_spacing(spacing_mm, len(shape), (2.5, 2.0, 2.0)))
    n_lesions = _check_count("n_lesions", n_lesions)
    radius_range = _check_range("lesion_radius_mm", lesion_radius_mm)
    noise = check_positive("noise_hu", noise_hu, allow_zero=True)
    values_by_name = _merge("hu", _CT_HU, hu)
    rng = _check_seed(seed)

    labels, lesions = _chest(rng, grid, n_lesions=n_lesions, radius_range=radius_range)
    names = dict(_CT_NAMES)
    values = {lab: values_by_name[nm] for lab, nm in names.items()}
    for les in lesions:
        names[les["label"]] = f"lesion_{les['label'] - 3}"
        values[les["label"]] = les["hu"] = float(lesion_hu)
    lut = np.zeros(256, np.float64)
    for lab, v in values.items():
        lut[lab] = v
    image = lut[labels]
    if noise > 0:
        image = image + rng.normal(0.0, noise, grid.shape)
    truth = {"modality": "CT", "units": "HU", "label_names": names, "values": values,
             "lesions": lesions, "noise_sigma": noise}
    return _finish(grid, image, labels, truth)


# ------------------------------------------------------------------ MR

_MR_NAMES = {0: "background", 1: "csf", 2: "gm", 3: "wm"}
_MR_VALUES = {"background": 0.0, "csf": 300.0, "gm": 600.0, "wm": 850.0, "lesion": 450.0}


def _bias_field(rng, grid: _Grid, strength: float) -> np.ndarray:
    """Smooth multiplicative field in [1 - strength, 1 + strength] (random quadratic)."""
    u = [(c - c.max() / 2) / max(c.max() / 2, 1e-9) for c in grid.coords]  # each in [-1, 1]
    terms = list(u) + [a * b for i, a in enumerate(u) for b in u[i:]]
    poly = sum(rng.uniform(-1, 1) * t for t in terms)
    poly = np.broadcast_to(poly, grid.shape)
    poly = poly - (poly.max() + poly.min()) / 2
    peak = np.abs(poly).max()
    return 1.0 + strength * (poly / peak if peak > 0 else poly)


def mr_phantom(*, shape=(64, 64, 64), spacing_mm=None, intensities=None,
               n_lesions=0, lesion_radius_mm=(3.0, 6.0), bias_strength=0.2, noise="rician",
               noise_sigma=20.0, seed=0) -> Phantom:
    """A T1-weighted-like brain: CSF, grey and white matter, ventricles, optional WM lesions.

    Parameters
    ----------
    shape : (Z, Y, X) or (Y, X) tuple of int
        Grid size in numpy axis order.
    spacing_mm : float or tuple of float, optional
        Voxel size in mm, numpy axis order. Default 2.5 mm isotropic.
    intensities : dict, optional
        Overrides of the noise-free intensities (arbitrary units), keys among 'background' (0),
        'csf' (300), 'gm' (600), 'wm' (850), 'lesion' (450).
    n_lesions : int
        Number of spherical lesions inside white matter (labels 4, 5, ...).
    lesion_radius_mm : (low, high)
        Lesion radii are drawn uniformly from this range (mm).
    bias_strength : float
        Amplitude of a smooth multiplicative bias field, in [0, 1): the field spans
        ``[1 - bias_strength, 1 + bias_strength]``. 0: no bias.
    noise : {'rician', 'gaussian'}
        Rician (magnitude of complex Gaussian noise, as in magnitude MR) or additive Gaussian.
    noise_sigma : float
        Standard deviation of each Gaussian component; 0: noise-free.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image`` = values[labels] * bias field (+ noise); ``truth`` adds ``bias_field``
        (``sitk.Image``, float32, same grid), ``bias_strength``, ``noise`` and ``noise_sigma``.
    """
    shape = _check_shape(shape)
    grid = _Grid(shape, _check_spacing(spacing_mm, len(shape), (2.5, 2.5, 2.5)))
    vals = _merge("intensities", _MR_VALUES, intensities)
    n_lesions = _check_count("n_lesions", n_lesions)
    radius_range = _check_range("lesion_radius_mm", lesion_radius_mm)
    strength = check_positive("bias_strength", bias_strength, allow_zero=True)
    if strength >= 1:
        raise ValueError(f"`bias_strength` must be in [0, 1); got {bias_strength!r}")
    check_choice("noise", noise, ["rician", "gaussian"])
    sigma = check_positive("noise_sigma", noise_sigma, allow_zero=True)
    rng = _check_seed(seed)

    c = {ax: grid.centre(ax) for ax in grid.axis}
    ext = {ax: grid.extent(ax) for ax in grid.axis}
    outer = {"x": 0.42 * ext["x"], "y": 0.46 * ext["y"]}
    if grid.ndim == 3:
        outer["z"] = 0.42 * ext["z"]
    labels = np.zeros(grid.shape, np.uint8)
    labels[grid.ellipsoid(c, outer)] = 1
    labels[grid.ellipsoid(c, {k: 0.9 * v for k, v in outer.items()})] = 2
    labels[grid.ellipsoid(c, {k: 0.72 * v for k, v in outer.items()})] = 3
    for side in (-1, 1):
        vc = dict(c, x=c["x"] + side * 0.07 * ext["x"], y=c["y"] - 0.03 * ext["y"])
        vs = {"x": 0.045 * ext["x"], "y": 0.16 * ext["y"]}
        if grid.ndim == 3:
            vs["z"] = 0.1 * ext["z"]
        labels[grid.ellipsoid(vc, vs)] = 1
    lesions = _place_balls(rng, grid, labels, n=n_lesions, radius_range=radius_range,
                           region=labels == 3, first_label=4, what="white-matter lesions")
    names = dict(_MR_NAMES)
    values = {lab: vals[nm] for lab, nm in names.items()}
    for les in lesions:
        names[les["label"]] = f"lesion_{les['label'] - 3}"
        values[les["label"]] = les["intensity"] = vals["lesion"]
    lut = np.zeros(256, np.float64)
    for lab, v in values.items():
        lut[lab] = v
    clean = lut[labels]
    bias = _bias_field(rng, grid, strength) if strength > 0 else np.ones(grid.shape)
    image = clean * bias
    if sigma > 0:
        if noise == "rician":
            image = np.hypot(image + rng.normal(0, sigma, grid.shape), rng.normal(0, sigma, grid.shape))
        else:
            image = image + rng.normal(0, sigma, grid.shape)
    truth = {"modality": "MR", "units": "a.u.", "label_names": names, "values": values,
             "lesions": lesions, "bias_strength": strength,
             "bias_field": grid.to_sitk(bias.astype(np.float32)), "noise": noise,
             "noise_sigma": sigma}
    return _finish(grid, image, labels, truth)


# ------------------------------------------------------------------ PET


def pet_phantom(*, shape=(48, 64, 64), spacing_mm=None, n_lesions=3,
                lesion_radius_mm=(5.0, 12.0), suv_range=(4.0, 12.0), background_suv=1.0,
                liver_suv=2.0, fwhm_mm=0.0, noise=0.1, seed=0) -> Phantom:
    """A PET-like body in SUV: uniform background, a liver and hot spherical lesions.

    Parameters
    ----------
    shape : (Z, Y, X) or (Y, X) tuple of int
        Grid size in numpy axis order.
    spacing_mm : float or tuple of float, optional
        Voxel size in mm, numpy axis order. Default 4 mm isotropic.
    n_lesions : int
        Number of hot spheres in the body background (not in the liver), labels 3, 4, ...
    lesion_radius_mm : (low, high)
        Lesion radii are drawn uniformly from this range (mm).
    suv_range : (low, high)
        Each lesion's uniform uptake (its true SUVmax) is drawn uniformly from this range.
    background_suv, liver_suv : float
        Uptake of the body background (label 1) and of the liver (label 2).
    fwhm_mm : float
        Full width at half maximum of a Gaussian point-spread function (mm); 0: no blur.
        With blur, the observed maximum in a small lesion is lower than its true SUV
        (partial-volume effect); ``truth`` gives both.
    noise : float
        Coefficient of variation of Gaussian noise in a region of SUV ``background_suv``; the
        variance grows in proportion to the noise-free SUV (Poisson-like). Negative values are
        clipped to 0. 0: noise-free.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image`` in SUV (float32); ``labels`` 0 outside, 1 body, 2 liver, 3.. lesions. Each
        lesion in ``truth['lesions']`` has ``suv`` (true uptake = true SUVmax) and
        ``suvmax_blurred`` (maximum of the noise-free, blurred image inside the lesion).
        ``truth`` adds ``fwhm_mm`` and ``noise``.
    """
    shape = _check_shape(shape)
    grid = _Grid(shape, _check_spacing(spacing_mm, len(shape), (4.0, 4.0, 4.0)))
    n_lesions = _check_count("n_lesions", n_lesions)
    radius_range = _check_range("lesion_radius_mm", lesion_radius_mm)
    suv_lo, suv_hi = _check_range("suv_range", suv_range)
    bg = check_positive("background_suv", background_suv, allow_zero=True)
    liver = check_positive("liver_suv", liver_suv, allow_zero=True)
    fwhm = check_positive("fwhm_mm", fwhm_mm, allow_zero=True)
    cov = check_positive("noise", noise, allow_zero=True)
    rng = _check_seed(seed)

    X, Y = grid.extent("x"), grid.extent("y")
    cx, cy = grid.centre("x"), grid.centre("y")
    labels = np.zeros(grid.shape, np.uint8)
    labels[grid.ellipsoid({"x": cx, "y": cy}, {"x": 0.45 * X, "y": 0.33 * Y})] = 1
    lc = {"x": cx - 0.2 * X, "y": cy - 0.02 * Y}
    ls = {"x": 0.17 * X, "y": 0.2 * Y}
    if grid.ndim == 3:
        lc["z"], ls["z"] = grid.centre("z"), 0.3 * grid.extent("z")
    labels[grid.ellipsoid(lc, ls) & (labels == 1)] = 2
    lesions = _place_balls(rng, grid, labels, n=n_lesions, radius_range=radius_range,
                           region=labels == 1, first_label=3, what="PET lesions")
    names = {0: "outside", 1: "body", 2: "liver"}
    values = {0: 0.0, 1: bg, 2: liver}
    for les in lesions:
        names[les["label"]] = f"lesion_{les['label'] - 2}"
        values[les["label"]] = les["suv"] = float(rng.uniform(suv_lo, suv_hi))
    lut = np.zeros(256, np.float64)
    for lab, v in values.items():
        lut[lab] = v
    clean = lut[labels]
    if fwhm > 0:
        from scipy import ndimage

        sigma_vox = [fwhm / (2 * math.sqrt(2 * math.log(2))) / s for s in grid.spacing]
        clean = ndimage.gaussian_filter(clean, sigma_vox, mode="constant")
    for les in lesions:
        les["suvmax_blurred"] = float(clean[labels == les["label"]].max())
    image = clean
    if cov > 0:
        sd = cov * np.sqrt(np.clip(clean, 0, None) * max(bg, 1e-12))
        image = np.clip(clean + rng.normal(0.0, 1.0, grid.shape) * sd, 0, None)
    truth = {"modality": "PET", "units": "SUV", "label_names": names, "values": values,
             "lesions": lesions, "fwhm_mm": fwhm, "noise": cov}
    return _finish(grid, image, labels, truth)


# ------------------------------------------------------------------ ultrasound

_US_ECHO = {"tissue": 1.0, "cyst": 0.05, "inclusion": 2.5}


def us_phantom(*, shape=(128, 128), spacing_mm=None, n_cysts=1, n_inclusions=1,
               radius_mm=(3.0, 6.0), echogenicity=None, speckle=True, speckle_size_mm=0.4,
               seed=0) -> Phantom:
    """An ultrasound-like B-mode envelope: speckled tissue with anechoic cysts and echogenic
    inclusions.

    The image is the echogenicity map times fully developed speckle: the magnitude of a
    complex Gaussian field smoothed to ``speckle_size_mm`` (Rayleigh distributed), scaled to
    mean 1 over the image. Linear envelope amplitude, not log-compressed.

    Parameters
    ----------
    shape : (Y, X) or (Z, Y, X) tuple of int
        Grid size in numpy axis order (y is depth).
    spacing_mm : float or tuple of float, optional
        Pixel size in mm, numpy axis order. Default 0.3 mm isotropic.
    n_cysts, n_inclusions : int
        Number of round anechoic cysts (labels 2, ...) and echogenic inclusions (after them).
    radius_mm : (low, high)
        Radii of cysts and inclusions are drawn uniformly from this range (mm).
    echogenicity : dict, optional
        Overrides of the mean echogenicity, keys among 'tissue' (1.0), 'cyst' (0.05),
        'inclusion' (2.5).
    speckle : bool
        Multiply by speckle; False gives the noise-free echogenicity map.
    speckle_size_mm : float
        Standard deviation (mm) of the Gaussian that correlates the speckle.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``labels`` 1 tissue, then cysts, then inclusions (there is no label 0: the whole field
        is tissue). Each entry of ``truth['lesions']`` has ``kind`` ('cyst' or 'inclusion') and
        ``echogenicity``. ``truth`` adds ``speckle`` ('rayleigh' or None) and
        ``speckle_size_mm``.
    """
    shape = _check_shape(shape)
    grid = _Grid(shape, _check_spacing(spacing_mm, len(shape), (0.3, 0.3, 0.3)))
    n_cysts = _check_count("n_cysts", n_cysts)
    n_inclusions = _check_count("n_inclusions", n_inclusions)
    radius_range = _check_range("radius_mm", radius_mm)
    echo = _merge("echogenicity", _US_ECHO, echogenicity)
    size = check_positive("speckle_size_mm", speckle_size_mm)
    rng = _check_seed(seed)

    labels = np.ones(grid.shape, np.uint8)
    field_ = np.ones(grid.shape, bool)
    cysts = _place_balls(rng, grid, labels, n=n_cysts, radius_range=radius_range, region=field_,
                         first_label=2, what="cysts", args=("n_cysts", "radius_mm"))
    incl = _place_balls(rng, grid, labels, n=n_inclusions, radius_range=radius_range,
                        region=labels == 1, first_label=2 + n_cysts, what="inclusions",
                        args=("n_inclusions", "radius_mm"))
    names = {1: "tissue"}
    values = {1: echo["tissue"]}
    for kind, group in (("cyst", cysts), ("inclusion", incl)):
        for i, les in enumerate(group, 1):
            names[les["label"]] = f"{kind}_{i}"
            values[les["label"]] = les["echogenicity"] = echo[kind]
            les["kind"] = kind
    lut = np.zeros(256, np.float64)
    for lab, v in values.items():
        lut[lab] = v
    image = lut[labels]
    if speckle:
        from scipy import ndimage

        sig = [size / s for s in grid.spacing]
        re_ = ndimage.gaussian_filter(rng.normal(size=grid.shape), sig, mode="wrap")
        im_ = ndimage.gaussian_filter(rng.normal(size=grid.shape), sig, mode="wrap")
        env = np.hypot(re_, im_)
        image = image * (env / env.mean())
    truth = {"modality": "US", "units": "a.u. (linear envelope)", "label_names": names,
             "values": values, "lesions": cysts + incl,
             "speckle": "rayleigh" if speckle else None, "speckle_size_mm": size}
    return _finish(grid, image, labels, truth)


# ------------------------------------------------------------------ X-ray

#: linear attenuation coefficient of water at about 60 keV (1/mm)
MU_WATER_PER_MM = 0.0206


def xray_phantom(*, shape=(128, 128), spacing_mm=(2.5, 2.5), n_lesions=2,
                 lesion_radius_mm=(4.0, 10.0), lesion_hu=60.0, photons=1e4, noise=True,
                 seed=0) -> Phantom:
    """A chest radiograph: parallel-beam projection of the CT chest (Beer-Lambert).

    The CT chest of :func:`ct_phantom` (noise-free) is built on a ``(rows, depth, cols)``
    volume whose depth equals ``cols`` and whose voxels are ``spacing_mm[1]`` deep; HU are
    turned into attenuation ``mu = MU_WATER_PER_MM * (1 + HU / 1000)`` (1/mm) and integrated
    along y (anterior-posterior). The detector counts ``photons * exp(-line_integral)``.

    Parameters
    ----------
    shape : (rows, cols) tuple of int
        Detector size; rows run along z (cranio-caudal), columns along x.
    spacing_mm : float or (row, col) tuple of float
        Detector pixel size in mm.
    n_lesions : int
        Number of lung nodules; their projections do not overlap each other.
    lesion_radius_mm : (low, high)
        Nodule radii are drawn uniformly from this range (mm).
    lesion_hu : float
        Nodule attenuation (HU).
    photons : float
        Unattenuated photons per pixel.
    noise : bool
        Poisson counting noise; False gives the expected counts exactly.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image``: detected photons (float32, 2D). ``labels``: per pixel the densest structure
        crossed by its ray (nodule > bone > lung > soft tissue > air; 0 where the ray misses
        the body). ``truth`` adds ``line_integral`` (``sitk.Image``, dimensionless sum of
        mu * path length), ``mu_per_mm`` {label: mu}, ``photons``, ``noise``; lesions carry
        ``centre_mm`` = (x, z) in detector mm and the 3D ``centre_mm_3d`` (x, y, z).
    """
    shape = _check_shape(shape, ndims=(2,))
    sp = _check_spacing(spacing_mm, 2)
    n_lesions = _check_count("n_lesions", n_lesions)
    radius_range = _check_range("lesion_radius_mm", lesion_radius_mm)
    photons = check_positive("photons", photons)
    rng = _check_seed(seed)

    vol = _Grid((shape[0], shape[1], shape[1]), (sp[0], sp[1], sp[1]))
    labels3, lesions3 = _chest(rng, vol, n_lesions=n_lesions, radius_range=radius_range,
                               project_axis=1)
    names = dict(_CT_NAMES)
    hu = {lab: _CT_HU[nm] for lab, nm in names.items()}
    for les in lesions3:
        names[les["label"]] = f"lesion_{les['label'] - 3}"
        hu[les["label"]] = float(lesion_hu)
    mu = {lab: max(MU_WATER_PER_MM * (1 + v / 1000.0), 0.0) for lab, v in hu.items()}
    lut = np.zeros(256, np.float64)
    for lab, v in mu.items():
        lut[lab] = v
    line = lut[labels3].sum(axis=1) * vol.spacing[1]
    expected = photons * np.exp(-line)
    image = rng.poisson(expected).astype(np.float64) if noise else expected

    det = _Grid(shape, sp)
    labels = np.zeros(shape, np.uint8)
    for lab in (1, 2, 3):  # increasing priority
        labels[(labels3 == lab).any(axis=1)] = lab
    for les in lesions3:
        labels[(labels3 == les["label"]).any(axis=1)] = les["label"]
    lesions = []
    for les in lesions3:
        n = int((labels == les["label"]).sum())
        z, _, x = les["centre_index"]
        lesions.append({
            "label": les["label"],
            "centre_index": (z, x),
            "centre_mm": det.index_to_mm((z, x)),
            "centre_mm_3d": les["centre_mm"],
            "radius_mm": les["radius_mm"],
            "n_voxels": n,
            "area_mm2": det.size(n),
            "volume_ml": les["volume_ml"],
            "hu": float(lesion_hu),
            "mu_per_mm": mu[les["label"]],
        })
    # No per-label ``values``: a projection's intensity depends on the path length, not the label.
    truth = {"modality": "XR", "units": "photons", "label_names": names, "hu": hu,
             "mu_per_mm": mu, "lesions": lesions,
             "line_integral": det.to_sitk(line.astype(np.float32)), "photons": photons,
             "noise": "poisson" if noise else None}
    return _finish(det, image, labels, truth)
