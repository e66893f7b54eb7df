"""Thresholds: manual ranges, automatic histogram thresholds, CT tissue ranges, PET uptake."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from skimage import filters as ski_filters

from medlab._histogram import AUTO_METHODS, histogram_threshold
from medlab._image import copy_geometry, mask_array
from medlab._options import check_choice, check_int, check_positive

from ._common import bounds, check_number, empty_like, scalar_image, view


def threshold(image, *, lower=None, upper=None, spacing=None):
    """Voxels with ``lower <= image <= upper`` (a manual intensity window).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, numpy index order ``(z, y, x)``.
    lower, upper : float, optional
        Inclusive bounds in image intensity units (HU, SUV, ...); at least one. A missing
        bound is open.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input (kept on a ``sitk.Image``
        result; an array result carries none).

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 inside the window, 0 elsewhere; the same kind as ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> threshold(np.array([[-5, 0, 5, 10]]), lower=0, upper=5)
    array([[0, 1, 1, 0]], dtype=uint8)
    """
    img, back = scalar_image(image, spacing)
    lo, hi, empty = bounds(img, lower, upper)
    if empty:
        return back(empty_like(img))
    return back(sitk.BinaryThreshold(img, lo, hi, 1, 0))


def _values(img, mask, image):
    """The intensities the automatic threshold is computed from (a view when unmasked)."""
    arr = view(img)
    m = mask_array(mask, image)
    vals = arr[m] if m is not None else arr.reshape(-1)
    finite = np.isfinite(vals)
    if not finite.all():
        vals = vals[finite]
    if vals.size == 0:
        raise ValueError("no finite intensities to threshold (within `mask`)")
    lo, hi = vals.min(), vals.max()
    if lo == hi:
        where = " within `mask`" if mask is not None else ""
        raise ValueError(f"`image` is constant{where} (value {lo!r}): no threshold separates it")
    return arr, m, vals


def auto_threshold(image, method="otsu", *, mask=None, nbins=256) -> float:
    """An automatic global threshold from the intensity histogram.

    The computation is scikit-image's (``skimage.filters.threshold_<method>``) on the image
    intensities, restricted to ``mask`` when given; foreground is ``image > threshold``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    method : {'otsu', 'li', 'triangle', 'yen', 'isodata'}
        Otsu (maximum between-class variance, 1979), Li (minimum cross-entropy, iterative,
        1993/1998; not histogram-based), triangle (Zack 1977, suited to one dominant peak),
        Yen (maximum correlation, 1995), isodata (Ridler-Calvard intermeans).
    mask : sitk.Image or ndarray, optional
        Only voxels where ``mask`` is nonzero enter the histogram (e.g. a body mask or a box
        around a lesion); same shape (and grid) as ``image``.
    nbins : int
        Histogram bins over the intensity range, >= 2 (not used by 'li').

    Returns
    -------
    float
        The threshold in image intensity units.

    Raises
    ------
    ValueError
        If the (masked) image is constant, or ``method`` is unknown (with a suggestion).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.r_[np.zeros(50), np.full(50, 100.0)].reshape(10, 10)
    >>> 0 < auto_threshold(img, "otsu") < 100
    True
    """
    method = check_choice("method", method, AUTO_METHODS)
    nbins = check_int("nbins", nbins, minimum=2)
    img, _ = scalar_image(image, None)  # a number in intensity units: no geometry involved
    _, _, vals = _values(img, mask, image)
    return histogram_threshold(vals, method, nbins)


def auto_threshold_mask(image, method="otsu", *, mask=None, nbins=256, spacing=None):
    """Voxels above :func:`auto_threshold` (inside ``mask`` when given).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    method : {'otsu', 'li', 'triangle', 'yen', 'isodata'}
        See :func:`auto_threshold`.
    mask : sitk.Image or ndarray, optional
        Region the threshold is computed in; voxels outside it are 0 in the result.
    nbins : int
        Histogram bins.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 where ``image > threshold`` (and inside ``mask``), else 0.
    """
    t = auto_threshold(image, method, mask=mask, nbins=nbins)
    img, back = scalar_image(image, spacing)
    sel = view(img) > t  # exactly scikit-image's ``image > threshold``
    if mask is not None:
        sel &= mask_array(mask, image)
    out = copy_geometry(sel.astype(np.uint8), img)
    return back(out)


def multi_otsu(image, classes=3, *, mask=None, nbins=256, return_thresholds=False, spacing=None):
    """Multi-class Otsu: split the intensities into ``classes`` classes.

    Uses ``skimage.filters.threshold_multiotsu`` (Liao et al. 2001) on the image intensities
    (restricted to ``mask``); a voxel equal to a threshold goes to the upper class, as in
    scikit-image.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    classes : int
        Number of classes, >= 2 (the search grows as ``nbins ** (classes - 1)``; keep it <= 5).
    mask : sitk.Image or ndarray, optional
        Only these voxels are classified and enter the histogram.
    nbins : int
        Histogram bins.
    return_thresholds : bool
        Also return the ``classes - 1`` thresholds (increasing, intensity units).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    labels : sitk.Image or ndarray of uint8
        ``1`` (darkest class) to ``classes`` (brightest); ``0`` outside ``mask``. Unlike
        scikit-image (classes ``0 .. classes-1``), 0 is kept for "not classified" so the
        result is a label image whose every class is a label.
    thresholds : list of float
        Only with ``return_thresholds=True``.
    """
    classes = check_int("classes", classes, minimum=2)
    nbins = check_int("nbins", nbins, minimum=2)
    img, back = scalar_image(image, spacing)
    arr, m, vals = _values(img, mask, image)
    th = ski_filters.threshold_multiotsu(vals, classes=classes, nbins=nbins)
    lab = (np.digitize(arr, th) + 1).astype(np.uint8)
    if m is not None:
        lab[~m] = 0
    out = back(copy_geometry(lab, img))
    if return_thresholds:
        return out, [float(t) for t in th]
    return out


# --------------------------------------------------------------------------- CT tissues


class HURange(NamedTuple):
    """An inclusive CT attenuation range in Hounsfield units (None = open end)."""

    lower: float | None
    upper: float | None
    source: str


_GATTINONI = (
    "Gattinoni L, Caironi P, Cressoni M, et al. Lung recruitment in patients with the acute "
    "respiratory distress syndrome. N Engl J Med 2006;354:1775-1786 (compartments: "
    "hyperinflated -1000 to -901, normally aerated -900 to -501, poorly aerated -500 to -101, "
    "non-aerated -100 to +100 HU)"
)

#: Typical CT attenuation ranges of tissues (HU, inclusive), each with its source. HU alone
#: cannot tell lung from outside air or fat from a fatty tumour: combine with a body mask or
#: a region of interest (e.g. ``largest_component``).
HU_RANGES = MappingProxyType({
    "air": HURange(None, -901.0, "Air is -1000 HU by the definition of the Hounsfield scale; "
                   "the upper bound is that of the hyperinflated (air-like) compartment of "
                   + _GATTINONI),
    "lung": HURange(-900.0, -501.0, "Normally aerated lung: " + _GATTINONI),
    "fat": HURange(-190.0, -30.0, "Adipose tissue: Kvist H, Chowdhury B, Grangard U, Tylen U, "
                   "Sjostrom L. Total and visceral adipose-tissue volumes derived from "
                   "measurements with computed tomography in adult men and women. Am J Clin "
                   "Nutr 1988;48:1351-1361"),
    "soft_tissue": HURange(-29.0, 150.0, "Skeletal muscle (unenhanced soft tissue): "
                           "Mitsiopoulos N, Baumgartner RN, Heymsfield SB, et al. Cadaver "
                           "validation of skeletal muscle measurement by magnetic resonance "
                           "imaging and computerized tomography. J Appl Physiol 1998;85:115-122"),
    "bone": HURange(300.0, None, "Cancellous bone +300 to +400 HU, cortical bone +500 to +1900 "
                    "HU (table of the 'Hounsfield scale' article, Wikipedia, accessed 2025); "
                    "the lower bound keeps contrast-enhanced vessels (<= about 300 HU) out"),
})


def hu_mask(ct, tissue, *, spacing=None):
    """Voxels of a CT in the Hounsfield range of a tissue (see :data:`HU_RANGES`).

    Parameters
    ----------
    ct : sitk.Image or (M, N[, P]) ndarray
        CT in Hounsfield units.
    tissue : {'air', 'lung', 'fat', 'soft_tissue', 'bone'}
        Which range of :data:`HU_RANGES`.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 where ``lower <= ct <= upper``.

    Examples
    --------
    >>> import numpy as np
    >>> hu_mask(np.array([[-1000, -700, -100, 40, 1000]]), "lung")
    array([[0, 1, 0, 0, 0]], dtype=uint8)
    """
    tissue = check_choice("tissue", tissue, list(HU_RANGES))
    r = HU_RANGES[tissue]
    return threshold(ct, lower=r.lower, upper=r.upper, spacing=spacing)


# --------------------------------------------------------------------------- PET


def suv_threshold(pet, *, suv=2.5, spacing=None):
    """Voxels with uptake ``>= suv`` (absolute SUV threshold, 2.5 being the classic one).

    Parameters
    ----------
    pet : sitk.Image or (M, N[, P]) ndarray
        PET in SUV.
    suv : float
        Threshold in SUV (g/mL), >= 0.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 where ``pet >= suv``.
    """
    suv = check_positive("suv", suv, allow_zero=True)
    return threshold(pet, lower=suv, spacing=spacing)


def percent_threshold(suvmax: float, percent: float, background_suv: float | None = None) -> float:
    """``percent`` % of ``suvmax``, or of ``suvmax - background_suv`` above the background."""
    if background_suv is None:
        return suvmax * percent / 100.0
    return background_suv + (suvmax - background_suv) * percent / 100.0


def check_percent(percent) -> float:
    p = check_number("percent", percent)
    if not 0 < p <= 100:
        raise ValueError(f"`percent` must be in (0, 100] (percent of SUVmax); got {percent!r}")
    return p


def percent_suvmax(pet, *, percent=40.0, mask=None, background_suv=None, return_threshold=False, spacing=None):
    """Voxels with uptake ``>= percent`` % of SUVmax, SUVmax taken in a region of interest.

    The classic fixed-fraction PET tumour volume (40-50 % of SUVmax). SUVmax is the maximum
    of ``pet`` inside ``mask`` (the box or VOI a reader draws around a lesion), or over the
    whole image. For a lesion picked with a seed, use :func:`region_grow_percent_suvmax`,
    which also keeps only the region connected to the lesion.

    Parameters
    ----------
    pet : sitk.Image or (M, N[, P]) ndarray
        PET in SUV.
    percent : float
        Fraction of SUVmax in percent, in (0, 100].
    mask : sitk.Image or ndarray, optional
        Region of interest: where SUVmax is taken and the only voxels that can be selected.
    background_suv : float, optional
        With it, the threshold is ``background + percent% * (SUVmax - background)``
        (background-corrected, e.g. Nestle et al. 2005) instead of ``percent% * SUVmax``.
    return_threshold : bool
        Also return ``(suvmax, threshold)`` in SUV.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    mask : sitk.Image or ndarray of uint8
    (suvmax, threshold) : tuple of float
        Only with ``return_threshold=True``.
    """
    percent = check_percent(percent)
    if background_suv is not None:
        background_suv = check_number("background_suv", background_suv)
    img, back = scalar_image(pet, spacing, "pet")
    arr = view(img)
    m = mask_array(mask, pet, image_name="pet")
    suvmax = float(arr[m].max() if m is not None else arr.max())
    t = percent_threshold(suvmax, percent, background_suv)
    out = sitk.BinaryThreshold(img, *bounds(img, t, None)[:2], 1, 0)
    if m is not None:
        a = sitk.GetArrayFromImage(out)
        a[~m] = 0
        out = copy_geometry(a, img)
    out = back(out)
    return (out, (suvmax, t)) if return_threshold else out
