"""PET uptake of a segmented lesion: SUVmax, SUVmean, SUVpeak, metabolic tumour volume, TLG.

The standard numbers a PET report gives for a tumour, from a PET in SUV and a lesion mask on
the PET grid:

- SUVmax: the largest voxel value inside the mask.
- SUVmean: the mean voxel value inside the mask.
- SUVpeak: the IBSI 1 *local intensity peak* (the same definition and sphere as the feature
  ``loc_peak_local`` of :mod:`medlab.features`): the mean of all image voxels whose centres lie
  within the radius of a 1 cm^3 sphere (6.2 mm) of the mask's SUVmax voxel; voxels outside the
  mask count, voxels outside the image do not exist. Several voxels at SUVmax: the largest
  of their peaks. (PERCIST's SUVpeak places its 1 cm^3 sphere where its mean is highest; the
  IBSI one is centred on the maximum, which is reproducible and never above SUVmax plus noise.)
- MTV: metabolic tumour volume, the mask's volume in mL.
- TLG: total lesion glycolysis, ``SUVmean * MTV`` (SUV x mL).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from medlab._image import mask_array, spacing_zyx

from ._common import scalar_image, view

__all__ = ["suv_metrics", "pet_plausibility", "PetVerdict", "PET_PLAUSIBILITY", "ImplausibleSegmentationWarning"]

#: SUV below which a voxel is outside the body (air)
_BODY_SUV = 0.1


def suv_metrics(pet, mask, *, spacing=None) -> dict:
    """SUVmax, SUVmean, SUVpeak, metabolic tumour volume and TLG of a lesion on PET.

    Parameters
    ----------
    pet : sitk.Image or (M, N, P) ndarray
        3D PET in SUV.
    mask : sitk.Image or (M, N, P) ndarray
        The lesion (nonzero = inside, not empty) on the PET grid: same shape, and the same
        geometry when both are ``sitk.Image`` (resample a mask drawn on another grid with
        :func:`medlab.registration.resample_labels` first).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order ``(z, y, x)``, for numpy input.

    Returns
    -------
    dict
        ``suvmax``, ``suvmean``, ``suvpeak`` (SUV); ``mtv_ml`` (mL); ``tlg`` (SUV x mL,
        ``suvmean * mtv_ml``); ``n_voxels``; ``suvmax_index`` (numpy index ``(z, y, x)`` of
        the SUVmax voxel, the first in raster order) and ``peak_index`` (the voxel the SUVpeak
        sphere is centred on).

    Examples
    --------
    >>> import numpy as np
    >>> pet = np.zeros((5, 5, 5)); pet[1:4, 1:4, 1:4] = 3.0; pet[2, 2, 2] = 7.0
    >>> m = suv_metrics(pet, pet > 0, spacing=4.0)
    >>> m["suvmax"], round(m["suvmean"], 4), m["mtv_ml"], round(m["tlg"], 4)
    (7.0, 3.1481, 1.728, 5.44)
    >>> round(m["suvpeak"], 4)  # (7 + 18 x 3) / 19 voxels within 6.2 mm of the centre
    3.2105
    """
    img, _ = scalar_image(pet, spacing, "pet", finite=True)
    if img.GetDimension() != 3:
        raise ValueError(f"`pet` must be 3D (a volume in mL); got a {img.GetDimension()}D image")
    arr = view(img).astype(np.float64)
    m = mask_array(mask, pet, image_name="pet")
    sp = spacing_zyx(img)
    inside = arr[m]
    suvmax = float(inside.max())
    suvmean = float(inside.mean())
    n = int(inside.size)
    mtv_ml = n * math.prod(sp) / 1000.0
    tops = np.argwhere(m & (arr == suvmax))
    peak, peak_at = _peak(arr, sp, tops)
    return {
        "suvmax": suvmax,
        "suvmean": suvmean,
        "suvpeak": peak,
        "mtv_ml": mtv_ml,
        "tlg": suvmean * mtv_ml,
        "n_voxels": n,
        "suvmax_index": tuple(int(v) for v in tops[0]),
        "peak_index": peak_at,
    }


def _peak(arr: np.ndarray, spacing, centres) -> tuple[float, tuple[int, ...]]:
    """Largest mean of ``arr`` in the IBSI 1 cm^3 sphere over ``centres`` (voxels that exist)."""
    from medlab.features._intensity import _sphere  # the IBSI sphere, one definition

    ball = _sphere(spacing).astype(bool)
    offsets = np.argwhere(ball) - np.array(ball.shape) // 2
    best, where = -math.inf, None
    shape = np.array(arr.shape)
    for c in centres:
        pts = c + offsets
        ok = np.all((pts >= 0) & (pts < shape), axis=1)
        pts = pts[ok]
        value = float(arr[tuple(pts.T)].mean())
        if value > best:
            best, where = value, tuple(int(v) for v in c)
    return best, where


# ------------------------------------------------------------------ plausibility of a one-click PET lesion


class ImplausibleSegmentationWarning(UserWarning):
    """An automatic segmentation is implausible; the message gives the reasons (see
    :class:`PetVerdict`). Filter it with ``warnings.simplefilter('ignore',
    ImplausibleSegmentationWarning)`` or pass ``warn=False`` and read the verdict instead."""


#: Thresholds of :func:`pet_plausibility`. ``min_contrast`` and ``max_volume_ml`` are learnt from the
#: ten teaching sarcoma PETs by a rule that ``tools/pet_lopo.py`` checks leave-one-patient-out
#: (half the lowest contrast, twice the largest region of the correct clicks: 9.35 and 944 mL on
#: all ten); the others are stated a priori: SUV 2.5 (the classic threshold for malignant FDG
#: uptake), a handful of voxels, a structure twice as hot as the lesion.
PET_PLAUSIBILITY = {
    "min_suvmax": 2.5,          # SUV
    "min_contrast": 4.7,        # local SUVmax / background median SUV (shell 10-30 mm around the region)
    "min_voxels": 8,            # voxels
    "max_volume_ml": 1900.0,    # mL
    "max_hotter_ratio": 2.0,    # hottest voxel of the search box outside the region / local SUVmax
    "max_suvmax": 250.0,        # SUV; stated a priori: above any uptake of a clinical tracer (bladder, kidneys
                                # reach about 100), far below a PET in Bq/mL (about 5000 per SUV unit)
}

PET_REASONS = {
    "low_suv": "uptake near the click is low: local SUVmax {suvmax:.2f} < {min_suvmax:g}",
    "not_suv": "local SUVmax {suvmax:.0f} is not a plausible SUV (> {max_suvmax:g}): is the PET in Bq/mL rather "
               "than SUV? (medlab.io reads SUV from DICOM with its decay and weight tags)",
    "low_contrast": "uptake near the click is not above the local background: SUVmax {suvmax:.2f} is "
                    "{contrast:.2f} x the background median {background:.2f} (< {min_contrast:g} x)",
    "tiny": "region is a handful of voxels ({n_voxels} < {min_voxels})",
    "border": "region touches the border of the field of view ({border_faces})",
    "too_large": "region of {volume_ml:.0f} mL exceeds {max_volume_ml:g} mL (a leak into other structures?)",
    "hotter": "a far hotter structure dominates the search box: SUV {box_max:.1f} = {hotter_ratio:.1f} x the "
              "lesion's SUVmax (> {max_hotter_ratio:g} x); the threshold may be set by it",
}


class PetVerdict(NamedTuple):
    """Plausibility of a one-click PET lesion: ``plausible`` is False when any check failed;
    ``reasons`` say which, in words; ``values`` holds the measured quantities (SUV, mL, voxels)."""

    plausible: bool
    reasons: tuple
    values: dict

    def __bool__(self):
        return self.plausible


def _shell(core, spacing, arr):
    """Body voxels (SUV > 0.1) 10-30 mm from ``core``."""
    from scipy import ndimage as ndi

    d = ndi.distance_transform_edt(~core, sampling=spacing)
    return (d > 10.0) & (d <= 30.0) & (arr > _BODY_SUV)


def pet_plausibility(pet, mask, *, suvmax=None, suvmax_index=None, box=None, thresholds=None,
                     spacing=None) -> PetVerdict:
    """Is a PET lesion found from one click plausible?

    Checks (thresholds in :data:`PET_PLAUSIBILITY`, overridden by ``thresholds``):

    - ``low_suv``: the local SUVmax (the uptake the click found) is below ``min_suvmax``;
    - ``not_suv``: it is above ``max_suvmax``, no SUV a tracer reaches (a PET in Bq/mL);
    - ``low_contrast``: it is less than ``min_contrast`` times the background, the median SUV
      of body voxels (SUV > 0.1) in a shell 10-30 mm around the region (around the local
      maximum when the region leaves no shell);
    - ``tiny``: fewer than ``min_voxels`` voxels;
    - ``border``: the region touches a face of the image (the lesion may continue outside the
      field of view);
    - ``too_large``: more than ``max_volume_ml``;
    - ``hotter``: within ``box`` (the search box, e.g. the Otsu box of ``segment_pet_tumour``;
      default the region's bounding box widened by 30 mm) a voxel outside the region is more
      than ``max_hotter_ratio`` times the lesion's SUVmax.

    Parameters
    ----------
    pet : sitk.Image or ndarray
        PET in SUV, 2D or 3D.
    mask : sitk.Image or ndarray
        The region (nonzero inside) on the PET grid; may be empty.
    suvmax : float, optional
        The local SUVmax near the click (default: the region's maximum).
    suvmax_index : tuple of int, optional
        Its voxel, numpy index ``(z, y, x)`` (default: the first maximum of the region).
    box : tuple of slice, optional
        The search box (numpy order).
    thresholds : dict, optional
        Overrides of :data:`PET_PLAUSIBILITY`.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    PetVerdict
    """
    t = dict(PET_PLAUSIBILITY)
    if thresholds:
        unknown = set(thresholds) - set(t)
        if unknown:
            raise ValueError(f"`thresholds` has unknown keys {sorted(unknown)}; expected some of {sorted(t)}")
        t.update(thresholds)
    img, _ = scalar_image(pet, spacing, "pet", finite=True)
    arr = view(img).astype(np.float64)
    m = mask_array(mask, pet, image_name="pet", nonempty=False)  # an empty result gets its verdict too
    sp = spacing_zyx(img)
    n = int(m.sum())
    values = {"n_voxels": n, "volume_ml": n * math.prod(sp) / 1000.0, **t}
    if suvmax is None:
        suvmax = float(arr[m].max()) if n else math.nan
    values["suvmax"] = float(suvmax)
    failed = []
    if not suvmax >= t["min_suvmax"]:
        failed.append("low_suv")
    if suvmax > t["max_suvmax"]:
        failed.append("not_suv")
    # background: a shell 10-30 mm around the region (or around the local maximum if empty)
    if suvmax_index is None:
        suvmax_index = np.unravel_index(int(np.argmax(np.where(m, arr, -np.inf))), arr.shape) if n else \
            np.unravel_index(int(np.argmax(arr)), arr.shape)
    top = np.zeros(arr.shape, bool)
    top[tuple(int(i) for i in suvmax_index)] = True
    core = m if n else top
    shell = _shell(core, sp, arr)
    if shell.sum() < 10:  # the region fills the field of view: the shell around its maximum
        shell = _shell(top, sp, arr)
    background = float(np.median(arr[shell])) if shell.any() else math.nan
    values["background"] = background
    values["contrast"] = suvmax / background if background > 0 else math.inf
    if values["contrast"] < t["min_contrast"]:
        failed.append("low_contrast")
    if n < t["min_voxels"]:
        failed.append("tiny")
    faces = []
    if n:
        for ax in range(m.ndim):
            first, last = np.take(m, 0, axis=ax).any(), np.take(m, -1, axis=ax).any()
            name = "zyx"[3 - m.ndim + ax]
            faces += [f"{name} = 0"] * bool(first) + [f"{name} = {m.shape[ax] - 1}"] * bool(last)
    values["border_faces"] = ", ".join(faces)
    if faces:
        failed.append("border")
    if values["volume_ml"] > t["max_volume_ml"]:
        failed.append("too_large")
    if box is None:
        where = np.argwhere(core)
        half = [math.floor(30.0 / s) for s in sp]
        box = tuple(slice(max(int(lo) - h, 0), int(hi) + h + 1)
                    for lo, hi, h in zip(where.min(axis=0), where.max(axis=0), half, strict=True))
    outside = arr[box][~m[box]]
    values["box_max"] = float(outside.max()) if outside.size else math.nan
    values["hotter_ratio"] = values["box_max"] / suvmax if suvmax > 0 and outside.size else math.nan
    if values["hotter_ratio"] > t["max_hotter_ratio"]:
        failed.append("hotter")
    reasons = tuple(PET_REASONS[k].format(**values) for k in failed)
    return PetVerdict(not failed, reasons, {k: v for k, v in values.items() if k not in t} | {"failed": tuple(failed)})
