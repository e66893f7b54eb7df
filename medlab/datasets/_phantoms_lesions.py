"""Seeded synthetic phantoms for lesion detection, with exact ground truth (synthetic data).

Same conventions as :mod:`medlab.datasets._phantoms`: origin (0, 0, 0) mm, identity direction,
``shape`` and ``spacing_mm`` in numpy axis order, points in ``truth`` both as ``centre_mm``
``(x, y, z)`` and ``centre_index`` ``(z, y, x)``; a nodule is the set of voxels whose centres lie
within ``radius_mm`` of its centre voxel, so its voxel count, volume and centroid are exact.
"""

from __future__ import annotations

import numpy as np

from medlab._options import check_positive

from ._phantoms import (
    _CT_HU,
    _CT_NAMES,
    Phantom,
    _check_count,
    _check_range,
    _check_seed,
    _check_shape,
    _check_spacing,
    _chest,
    _finish,
    _Grid,
)

__all__ = ["nodule_ct_phantom"]


def _vessels(rng, grid: _Grid, labels: np.ndarray, *, n: int, radius_mm: float, label: int) -> list[dict]:
    """Straight tubes through the lungs (distractors for a blob detector): written only into
    lung voxels, never into a nodule."""
    lung = labels == 2
    if n == 0 or not lung.any():
        return []
    out = []
    where = np.argwhere(lung)
    coords = np.meshgrid(*[np.arange(s) * sp for s, sp in zip(grid.shape, grid.spacing, strict=True)],
                         indexing="ij", sparse=True)
    for _ in range(n):
        start = np.array(where[rng.integers(len(where))], float) * grid.spacing
        direction = rng.normal(size=grid.ndim)
        direction /= np.linalg.norm(direction)
        # squared distance of every voxel centre from the line
        rel = [c - s for c, s in zip(coords, start, strict=True)]
        along = sum(r * d for r, d in zip(rel, direction, strict=True))
        dist2 = sum(r**2 for r in rel) - along**2
        tube = (dist2 <= radius_mm**2) & lung
        labels[tube] = label
        out.append({"start_mm": tuple(float(v) for v in start[::-1]),
                    "direction_xyz": tuple(float(v) for v in direction[::-1]), "radius_mm": float(radius_mm)})
    return out


def nodule_ct_phantom(*, shape=(64, 112, 112), spacing_mm=(1.25, 1.0, 1.0), n_nodules: int = 5,
                      diameter_mm=(5.0, 14.0), nodule_hu: float = 40.0, n_vessels: int = 4,
                      vessel_diameter_mm: float = 2.0, noise_hu: float = 20.0, seed: int | None = 0) -> Phantom:
    """A synthetic chest CT with lung nodules of known position and size, and vessels as
    distractors (for :mod:`medlab.detection`).

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Grid size, numpy axis order.
    spacing_mm : tuple of float
        Voxel size in mm, numpy axis order.
    n_nodules : int
        Spherical nodules, each fully inside a lung and not touching another.
    diameter_mm : (low, high)
        Nodule diameters are drawn uniformly from this range (mm).
    nodule_hu : float
        Nodule and vessel attenuation (HU); lung is -850 HU.
    n_vessels : int
        Straight tubes of ``vessel_diameter_mm`` through the lungs, at the nodules' HU.
    noise_hu : float
        Standard deviation of additive Gaussian noise (HU).
    seed : int or None

    Returns
    -------
    Phantom
        ``image`` (HU, float32); ``labels``: 0 air, 1 soft tissue, 2 lung, 3 bone, 4 .. 3 +
        ``n_nodules`` nodules, 250 vessels. ``truth['lesions']``: per nodule ``label``,
        ``centre_mm`` (x, y, z), ``centre_index`` (z, y, x), ``radius_mm``, ``diameter_mm``,
        ``n_voxels``, ``volume_ml``; ``truth['nodule_labels']`` their label values;
        ``truth['vessels']`` the tubes; ``truth['synthetic']`` is True.

    Examples
    --------
    >>> from medlab.datasets import nodule_ct_phantom
    >>> ph = nodule_ct_phantom(n_nodules=2, seed=3)
    >>> len(ph.truth["lesions"]), ph.truth["label_names"][250]
    (2, 'vessel')
    """
    shape = _check_shape(shape, ndims=(3,))
    grid = _Grid(shape, _check_spacing(spacing_mm, 3))
    n_nodules = _check_count("n_nodules", n_nodules)
    n_vessels = _check_count("n_vessels", n_vessels)
    lo, hi = _check_range("diameter_mm", diameter_mm)
    vessel_r = check_positive("vessel_diameter_mm", vessel_diameter_mm) / 2
    noise = check_positive("noise_hu", noise_hu, allow_zero=True)
    rng = _check_seed(seed)

    try:
        labels, lesions = _chest(rng, grid, n_lesions=n_nodules, radius_range=(lo / 2, hi / 2))
    except ValueError as exc:
        raise ValueError(str(exc).replace("`n_lesions`", "`n_nodules`").replace("`lesion_radius_mm`", "`diameter_mm`")) from None
    vessels = _vessels(rng, grid, labels, n=n_vessels, radius_mm=vessel_r, label=250)
    names = dict(_CT_NAMES)
    values = {lab: _CT_HU[nm] for lab, nm in names.items()}
    for les in lesions:
        names[les["label"]] = f"nodule_{les['label'] - 3}"
        values[les["label"]] = les["hu"] = float(nodule_hu)
        les["diameter_mm"] = 2 * les["radius_mm"]
    names[250] = "vessel"
    values[250] = float(nodule_hu)
    lut = np.zeros(256)
    for lab, v in values.items():
        lut[lab] = v
    image = lut[labels]
    if noise > 0:
        image = image + rng.normal(0.0, noise, grid.shape)
    truth = {"modality": "CT", "units": "HU", "synthetic": True, "label_names": names, "values": values,
             "lesions": lesions, "vessels": vessels, "noise_sigma": noise,
             "nodule_labels": [les["label"] for les in lesions]}
    return _finish(grid, image, labels, truth)
