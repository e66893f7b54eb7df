"""Seeded anatomical phantoms with exact ground truth: a vessel with a stenosis, a beating
cardiac cavity (echo cine) and a head CT with haemorrhages.

Same conventions as :mod:`medlab.datasets._phantoms`: grids start at origin 0 mm with identity
direction; ``shape`` and ``spacing_mm`` are in numpy axis order; the returned
``SimpleITK.Image`` carries spacing in ``(x, y[, z])`` order; ``centre_mm`` points are physical
``(x, y, z)`` in mm and ``centre_index`` numpy indexes ``(z, y, x)``. The same ``seed`` gives
bit-identical output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import SimpleITK as sitk

from medlab._options import check_positive

from ._phantoms import (
    Phantom,
    _check_count,
    _check_range,
    _check_seed,
    _check_shape,
    _check_spacing,
    _finish,
    _Grid,
    _merge,
    _place_balls,
)

__all__ = ["echo_cine_phantom", "head_ct_phantom", "vessel_phantom"]


def _fraction(name: str, value, *, high: float) -> float:
    v = check_positive(name, value, allow_zero=True)
    if v >= high:
        raise ValueError(f"`{name}` must be in [0, {high:g}); got {value!r}")
    return v


# ------------------------------------------------------------------ vessel


def _radius_profile(s_mm, r0, percent, s0, length):
    """Radius (mm) along the centreline: ``r0`` narrowed by a raised-cosine stenosis of
    ``percent`` (diameter reduction at its centre ``s0``) over ``length`` mm."""
    s_mm = np.asarray(s_mm, dtype=np.float64)
    u = np.clip(np.abs(s_mm - s0) / (length / 2), 0, 1)
    bump = 0.5 * (1 + np.cos(np.pi * u))
    return r0 * (1 - percent / 100.0 * bump)


def vessel_phantom(*, shape=(32, 48, 128), spacing_mm=None, radius_mm=2.5, stenosis_percent=50.0,
                   stenosis_position=0.5, stenosis_length_mm=10.0, amplitude_mm=3.0,
                   vessel_value=200.0, background_value=0.0, fwhm_mm=0.0, noise_sigma=5.0,
                   seed=0) -> Phantom:
    """A bright 3D tube along x, gently curved in y, with one stenosis of known percent.

    The centreline is ``y(x) = yc + amplitude_mm * sin(2 pi (x - x0) / L)`` in the central
    z plane (``L`` the tube length, ``x0`` its start). The radius is ``radius_mm`` except in the
    stenosis, a raised-cosine narrowing of ``stenosis_length_mm`` (arc length) whose centre
    (at ``stenosis_position`` of the arc length) has the diameter reduced by
    ``stenosis_percent``. A voxel is vessel when its centre lies within the local radius of
    the nearest centreline point; the tube stops 4 voxels before the x borders.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Grid size in numpy axis order.
    spacing_mm : float or (dz, dy, dx), optional
        Voxel size in mm, numpy axis order. Default 0.4 mm isotropic.
    radius_mm : float
        Radius of the normal vessel (mm).
    stenosis_percent : float
        Diameter stenosis in percent, ``100 * (1 - d_min / d_reference)``, in [0, 100).
    stenosis_position : float
        Where the stenosis centre lies, as a fraction of the arc length, in (0, 1).
    stenosis_length_mm : float
        Arc length of the narrowed segment (mm).
    amplitude_mm : float
        Amplitude of the sinusoidal bend in y (mm); 0 gives a straight tube.
    vessel_value, background_value : float
        Noise-free intensities (e.g. contrast-enhanced lumen in HU, background).
    fwhm_mm : float
        Gaussian point-spread function (mm); 0: none.
    noise_sigma : float
        Standard deviation of additive Gaussian noise; 0: noise-free.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``labels`` 0 background, 1 vessel. ``truth`` adds ``centreline_mm`` ((N, 3) physical
        points ``(x, y, z)``), ``arc_length_mm`` (N,), ``radius_profile_mm`` (N,),
        ``reference_diameter_mm``, ``min_diameter_mm``, ``stenosis_percent``,
        ``stenosis_centre_mm`` (x, y, z) and ``stenosis_arc_mm``.

    Examples
    --------
    >>> from medlab.datasets import vessel_phantom
    >>> ph = vessel_phantom(stenosis_percent=60, noise_sigma=0)
    >>> ph.truth["reference_diameter_mm"], round(ph.truth["min_diameter_mm"], 3)
    (5.0, 2.0)
    """
    shape = _check_shape(shape, ndims=(3,))
    grid = _Grid(shape, _check_spacing(spacing_mm, 3, (0.4, 0.4, 0.4)))
    r0 = check_positive("radius_mm", radius_mm)
    percent = _fraction("stenosis_percent", stenosis_percent, high=100.0)
    pos = check_positive("stenosis_position", stenosis_position)
    if pos >= 1:
        raise ValueError(f"`stenosis_position` must be in (0, 1); got {stenosis_position!r}")
    length = check_positive("stenosis_length_mm", stenosis_length_mm)
    amp = check_positive("amplitude_mm", amplitude_mm, allow_zero=True)
    fwhm = check_positive("fwhm_mm", fwhm_mm, allow_zero=True)
    sigma = check_positive("noise_sigma", noise_sigma, allow_zero=True)
    rng = _check_seed(seed)

    dz, dy, dx = grid.spacing
    yc, zc = grid.centre("y"), grid.centre("z")
    x0, x1 = 4 * dx, grid.extent("x") - 4 * dx
    if amp + r0 + 2 * dy > yc or r0 + 2 * dz > zc:
        raise ValueError(
            f"the tube (radius {r0:g} mm, bend {amp:g} mm) does not fit in the y/z extent of "
            f"`shape` {shape} at `spacing_mm` {grid.spacing}; use a larger shape or smaller tube"
        )
    # dense centreline, arc length by cumulative chord length
    step = min(grid.spacing) / 8
    xs = np.arange(x0, x1 + step / 2, step)
    ys = yc + amp * np.sin(2 * np.pi * (xs - x0) / (x1 - x0))
    pts = np.stack([xs, ys, np.full_like(xs, zc)], axis=1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    s0 = pos * arc[-1]
    if not (length / 2 < s0 < arc[-1] - length / 2):
        raise ValueError(
            f"the stenosis ({length:g} mm long at {pos:g} of {arc[-1]:.1f} mm) must lie inside the "
            "tube; change `stenosis_position` or `stenosis_length_mm`"
        )
    radius = _radius_profile(arc, r0, percent, s0, length)

    from scipy.spatial import cKDTree

    zz, yy, xx = np.meshgrid(*(np.arange(n) * s for n, s in zip(grid.shape, grid.spacing)),
                             indexing="ij")
    vox = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    near = np.abs(vox[:, 1] - yc) <= amp + r0 + dy
    near &= np.abs(vox[:, 2] - zc) <= r0 + dz
    dist, idx = cKDTree(pts).query(vox[near])
    inside = np.zeros(vox.shape[0], bool)
    # the nearest point must not be an end point: the tube is cut flat at x0 and x1
    inside[near] = (dist <= radius[idx]) & (idx > 0) & (idx < len(xs) - 1)
    labels = inside.reshape(grid.shape).astype(np.uint8)

    clean = np.where(labels == 1, float(vessel_value), float(background_value))
    if fwhm > 0:
        from scipy import ndimage

        sig = [fwhm / (2 * math.sqrt(2 * math.log(2))) / s for s in grid.spacing]
        clean = ndimage.gaussian_filter(clean, sig, mode="nearest")
    image = clean + rng.normal(0.0, sigma, grid.shape) if sigma > 0 else clean
    # keep the truth readable: one centreline point per voxel length
    keep = np.arange(0, len(xs), 8)
    ic = int(np.argmin(np.abs(arc - s0)))
    truth = {
        "modality": "CTA", "units": "a.u.", "label_names": {0: "background", 1: "vessel"},
        "values": {0: float(background_value), 1: float(vessel_value)}, "lesions": [],
        "centreline_mm": pts[keep], "arc_length_mm": arc[keep],
        "radius_profile_mm": radius[keep],
        "reference_diameter_mm": 2 * r0, "min_diameter_mm": float(2 * radius.min()),
        "stenosis_percent": percent, "stenosis_centre_mm": tuple(float(v) for v in pts[ic]),
        "stenosis_arc_mm": float(s0), "stenosis_length_mm": length, "fwhm_mm": fwhm,
        "noise_sigma": sigma,
    }
    return _finish(grid, image, labels, truth)


# ------------------------------------------------------------------ echo cine


def echo_cine_phantom(*, n_frames=24, shape=(160, 160), spacing_mm=None, semi_axes_mm=(18.0, 12.0),
                      fac=0.4, n_cycles=1.0, phase=0.0, blood=0.05, tissue=1.0,
                      speckle=True, speckle_size_mm=0.5, frame_time_ms=40.0, seed=0) -> Phantom:
    """A beating cardiac cavity: a dark ellipse in speckled tissue, one image per frame.

    The cine has the layout ``medlab.io.read`` gives a real ultrasound cine: a 4D image
    (x, y, 1, frame) whose frame times are in ``medlab.io.volume_metadata(image)["frame_times_ms"]``.

    The cavity area follows ``A(t) = A_ed * (1 - fac * (1 - cos(2 pi n_cycles t / n_frames
    + phase)) / 2)``: end-diastole (largest area) at ``t = 0`` for ``phase=0``. Both semi-axes
    scale by ``sqrt(A(t) / A_ed)``, so the shape is kept and the area changes by ``fac``.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 4): the fourth axis of the image.
    shape : (Y, X) tuple of int
        Size of one frame, numpy axis order.
    spacing_mm : float or (dy, dx), optional
        Pixel size in mm. Default 0.3 mm (like a cardiac probe's scan-converted image).
    semi_axes_mm : (along y, along x)
        Semi-axes of the cavity at end-diastole (mm).
    fac : float
        Fractional area change of the noise-free continuous ellipse, in [0, 1).
    n_cycles : float
        Heart cycles in the cine.
    phase : float
        Phase of the cycle at frame 0 (radians).
    blood, tissue : float
        Mean echogenicity of the cavity and the myocardium/tissue.
    speckle : bool
        Multiply by Rayleigh speckle (independent per frame); False: noise-free.
    speckle_size_mm : float
        Correlation length (Gaussian sigma, mm) of the speckle.
    frame_time_ms : float
        Time between frames in ms (> 0); frame ``k`` is at ``k * frame_time_ms``.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image`` (float32) and ``labels`` (1 tissue, 2 cavity): 4D (x, y, 1, frame), spacing
        (dx, dy, 1, 1), frame times in their volume metadata; as arrays (frame, 1, y, x).
        ``truth`` adds ``areas_mm2`` (exact pixel areas per frame), ``area_px`` (pixel counts),
        ``ed_frame``, ``es_frame`` (largest/smallest pixel area), ``fac`` (from the pixel
        areas), ``fac_continuous`` (the parameter), ``centre_index`` (y, x) and
        ``centre_mm`` (x, y) of the cavity, ``pixel_spacing_mm`` (dy, dx).
    """
    n_frames = _check_count("n_frames", n_frames)
    if n_frames < 4:
        raise ValueError(f"`n_frames` must be >= 4; got {n_frames!r}")
    shp = _check_shape(shape, ndims=(2,))
    grid = _Grid(shp, _check_spacing(spacing_mm, 2, (0.3, 0.3)))
    try:
        ay, ax = (check_positive("semi_axes_mm", v) for v in semi_axes_mm)
    except (TypeError, ValueError):
        raise ValueError(f"`semi_axes_mm` must be two positive numbers (y, x) in mm; got {semi_axes_mm!r}") from None
    fac = _fraction("fac", fac, high=1.0)
    n_cycles = check_positive("n_cycles", n_cycles)
    size = check_positive("speckle_size_mm", speckle_size_mm)
    dt = check_positive("frame_time_ms", frame_time_ms)
    rng = _check_seed(seed)
    cy, cx = grid.centre("y"), grid.centre("x")
    if ay > cy - 2 * grid.spacing[0] or ax > cx - 2 * grid.spacing[1]:
        raise ValueError(f"`semi_axes_mm` {semi_axes_mm} do not fit in `shape` {shp} at {grid.spacing} mm")

    t = np.arange(n_frames)
    scale = 1 - fac * (1 - np.cos(2 * np.pi * n_cycles * t / n_frames + phase)) / 2
    labels = np.ones((n_frames, *shp), np.uint8)
    for k in range(n_frames):
        f = math.sqrt(scale[k])
        labels[k][grid.ellipsoid({"y": cy, "x": cx}, {"y": ay * f, "x": ax * f})] = 2
    image = np.where(labels == 2, float(blood), float(tissue))
    if speckle:
        from scipy import ndimage

        sig = [0] + [size / s for s in grid.spacing]
        re_ = ndimage.gaussian_filter(rng.normal(size=labels.shape), sig, mode="wrap")
        im_ = ndimage.gaussian_filter(rng.normal(size=labels.shape), sig, mode="wrap")
        env = np.hypot(re_, im_)
        image = image * (env / env.mean())
    px = (labels == 2).reshape(n_frames, -1).sum(axis=1)
    areas = px * grid.voxel_mm3
    ed, es = int(np.argmax(px)), int(np.argmin(px))
    cine = _Grid((n_frames, *shp), (1.0, *grid.spacing))
    truth = {
        "modality": "US", "units": "a.u. (linear envelope)",
        "label_names": {1: "tissue", 2: "cavity"}, "values": {1: float(tissue), 2: float(blood)},
        "lesions": [], "areas_mm2": areas.tolist(), "area_px": px.tolist(),
        "ed_frame": ed, "es_frame": es, "fac": float((px[ed] - px[es]) / px[ed]),
        "fac_continuous": fac, "centre_index": (round(cy / grid.spacing[0]),
                                                round(cx / grid.spacing[1])),
        "centre_mm": (cx, cy), "pixel_spacing_mm": grid.spacing,
        "speckle": "rayleigh" if speckle else None, "frame_time_ms": dt,
    }
    ph = _finish(cine, image, labels, truth)
    times = [k * dt for k in range(n_frames)]
    return Phantom(_cine_4d(ph.image, times), _cine_4d(ph.labels, times), ph.truth)


def _cine_4d(frames: sitk.Image, frame_times_ms: list[float]) -> sitk.Image:
    """Frames along z (z step 1) as the 4D cine (x, y, 1, frame) that ``medlab.io.read`` gives."""
    from medlab.io import VOLUME_METADATA_KEY

    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(frames)[:, np.newaxis], isVector=False)
    out.SetSpacing((*frames.GetSpacing()[:2], 1.0, 1.0))
    out.SetMetaData(VOLUME_METADATA_KEY, json.dumps({"frame_times_ms": frame_times_ms}))
    return out


# ------------------------------------------------------------------ head CT

_HEAD_NAMES = {0: "air", 1: "scalp", 2: "skull", 3: "grey_matter", 4: "white_matter", 5: "csf"}
_HEAD_HU = {"air": -1000.0, "scalp": 20.0, "skull": 1000.0, "grey_matter": 38.0,
            "white_matter": 30.0, "csf": 5.0}


def head_ct_phantom(*, shape=(40, 96, 96), spacing_mm=None, n_haemorrhages=2,
                    radius_mm=(6.0, 12.0), haemorrhage_hu=(60.0, 85.0), hu=None, noise_hu=3.0,
                    seed=0) -> Phantom:
    """A synthetic non-contrast head CT: scalp, skull, grey and white matter, CSF (ventricles
    and a subarachnoid layer) and spherical intraparenchymal haemorrhages.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Grid size in numpy axis order.
    spacing_mm : float or (dz, dy, dx), optional
        Voxel size in mm. Default (4.0, 2.0, 2.0), a thick-slice head CT.
    n_haemorrhages : int
        Number of haemorrhages (labels 6, 7, ...), each inside the brain parenchyma, not
        touching another.
    radius_mm : (low, high)
        Haemorrhage radii are drawn uniformly from this range (mm).
    haemorrhage_hu : (low, high)
        Each haemorrhage's attenuation is drawn uniformly from this range (HU); acute blood
        is about 50-90 HU.
    hu : dict, optional
        Overrides of the tissue values, keys among 'air' (-1000), 'scalp' (20), 'skull' (1000),
        'grey_matter' (38), 'white_matter' (30), 'csf' (5).
    noise_hu : float
        Standard deviation of additive Gaussian noise (HU); 0: noise-free.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Phantom
        ``image`` in HU; ``labels`` 0 air, 1 scalp, 2 skull, 3 grey matter, 4 white matter,
        5 CSF, 6.. haemorrhages. Each entry of ``truth['lesions']`` has ``label``,
        ``centre_mm``, ``centre_index``, ``radius_mm``, ``n_voxels``, ``volume_ml`` and ``hu``.

    Examples
    --------
    >>> from medlab.datasets import head_ct_phantom
    >>> ph = head_ct_phantom(n_haemorrhages=1, noise_hu=0, seed=3)
    >>> ph.truth["label_names"][6], 50 <= ph.truth["lesions"][0]["hu"] <= 90
    ('haemorrhage_1', True)
    """
    shape = _check_shape(shape, ndims=(3,))
    grid = _Grid(shape, _check_spacing(spacing_mm, 3, (4.0, 2.0, 2.0)))
    n = _check_count("n_haemorrhages", n_haemorrhages)
    radius_range = _check_range("radius_mm", radius_mm)
    hu_lo, hu_hi = _check_range("haemorrhage_hu", haemorrhage_hu)
    vals = _merge("hu", _HEAD_HU, hu)
    noise = check_positive("noise_hu", noise_hu, allow_zero=True)
    rng = _check_seed(seed)

    c = {ax: grid.centre(ax) for ax in grid.axis}
    ext = {ax: grid.extent(ax) for ax in grid.axis}
    outer = {"x": 0.40 * ext["x"], "y": 0.46 * ext["y"], "z": 0.46 * ext["z"]}

    def shell(k):
        return grid.ellipsoid(c, {a: v - k for a, v in outer.items()})

    t = max(grid.spacing[1:])
    labels = np.zeros(grid.shape, np.uint8)
    labels[shell(0)] = 1
    labels[shell(1.5 * t)] = 2  # skull about 3 voxels thick in-plane
    labels[shell(4.5 * t)] = 5  # subarachnoid CSF
    labels[shell(5.5 * t)] = 3  # cortex
    labels[grid.ellipsoid(c, {a: 0.72 * (v - 5.5 * t) for a, v in outer.items()})] = 4
    for side in (-1, 1):
        vc = dict(c, x=c["x"] + side * 0.07 * ext["x"], y=c["y"] - 0.03 * ext["y"])
        labels[grid.ellipsoid(vc, {"x": 0.04 * ext["x"], "y": 0.15 * ext["y"],
                                   "z": 0.12 * ext["z"]})] = 5
    lesions = _place_balls(rng, grid, labels, n=n, radius_range=radius_range,
                           region=(labels == 3) | (labels == 4), first_label=6,
                           what="haemorrhages", args=("n_haemorrhages", "radius_mm"))
    names = dict(_HEAD_NAMES)
    values = {lab: vals[nm] for lab, nm in names.items()}
    for les in lesions:
        names[les["label"]] = f"haemorrhage_{les['label'] - 5}"
        values[les["label"]] = les["hu"] = float(rng.uniform(hu_lo, hu_hi))
    lut = np.zeros(256, np.float64)
    for lab, v in values.items():
        lut[lab] = v
    image = lut[labels]
    if noise > 0:
        image = image + rng.normal(0.0, noise, grid.shape)
    truth = {"modality": "CT", "units": "HU", "label_names": names, "values": values,
             "lesions": lesions, "noise_sigma": noise, "synthetic": True}
    return _finish(grid, image, labels, truth)
