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

import numpy as np

from medlab._image import mask_array, spacing_zyx

from ._common import scalar_image, view

__all__ = ["suv_metrics"]


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
    img, _ = scalar_image(pet, spacing, "pet")
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
