"""IBSI image processing before feature calculation: interpolation, re-segmentation, discretisation.

Implements the IBSI 1 processing chain (chapter "Image processing"):

* interpolation to a new voxel spacing on a grid whose centre is aligned with the original grid
  centre, ``n_b = ceil(n_a s_a / s_b)`` points per axis, boundary intensities extended
  outwards; the ROI mask is interpolated the same way and kept where it is ``>= partial_volume``;
  interpolated intensities may be rounded to integers (CT, Hounsfield units);
* re-segmentation of the intensity mask by an intensity range and/or ``mean +- k sd`` outlier
  filtering (the morphological mask keeps the original shape);
* discretisation with a fixed bin number (FBN) or a fixed bin size (FBS), grey levels from 1.

All arrays are indexed ``(z, y, x)``; spacings are in mm in the same order. Work is done on a
crop around the ROI (with a margin wide enough for the 1 cm^3 intensity-peak sphere), which
gives the same numbers as working on the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from medlab._image import check_not_4d, mask_array, spacing_zyx, to_array
from medlab._options import check_choice, check_int, check_positive

__all__ = ["FeatureSettings", "PreparedROI", "discretise", "ibsi_settings", "prepare_roi"]

_INTERP = {"nearest": 0, "linear": 1, "cubic": 3}
_DISCRETISATION = ("fbn", "fbs", "none")
_DIMS = ("2D", "2.5D", "3D")
# radius (mm) of the 1 cm^3 sphere of the local intensity features
PEAK_RADIUS_MM = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


@dataclass(frozen=True)
class FeatureSettings:
    """How an image and its ROI are processed before features are computed (IBSI 1 terms).

    Parameters
    ----------
    resample_mm : None, float or 3 values (z, y, x) in mm
        New voxel spacing; an entry None keeps that axis (``(None, 2, 2)``: in-plane only,
        as for IBSI configuration B). None: no interpolation.
    interpolation : {'linear', 'cubic', 'nearest'}
        Image interpolator (linear = bi/trilinear; cubic = cubic B-spline).
    mask_interpolation : {'linear', 'nearest'}
        ROI mask interpolator; a linearly interpolated mask is kept where ``>= partial_volume``.
    partial_volume : float
        Partial-volume threshold for the interpolated mask (IBSI default 0.5).
    round_intensities : bool
        Round interpolated intensities to the nearest integer (CT in HU).
    resegment_range : (lower, upper) or None
        Keep intensity-mask voxels with ``lower <= intensity <= upper`` (``upper`` may be inf).
    outlier_sigma : float or None
        Also drop intensity-mask voxels outside ``mean +- outlier_sigma * sd`` (IBSI: 3).
    discretisation : {'fbs', 'fbn', 'none'}
        For the intensity histogram and texture families: fixed bin size ``bin_width``, fixed
        bin number ``bins``, or 'none' when the intensities already are grey levels 1, 2, ...
        (the IBSI digital phantom).
    bin_width : float
        FBS bin width, in the image's units.
    bins : int
        FBN number of bins.
    bin_min : float or None
        FBS lower edge of bin 1; by default the lower re-segmentation bound, else the ROI minimum.
    ivh_discretisation : {'none', 'fbs', 'fbn'}
        For the intensity-volume histogram: 'none' for discrete calibrated intensities (CT),
        'fbs' with ``ivh_bin_width`` for continuous calibrated ones (PET), 'fbn' with
        ``ivh_bins`` (default 1000) for arbitrary units.
    texture_dims : sequence of {'2D', '2.5D', '3D'}
        Texture matrices per slice and averaged ('2D'), per slice and merged over slices
        ('2.5D'), or volumetric ('3D'). GLCM and GLRLM give two variants each (averaged over
        directions / merged), see :data:`medlab.features.AGGREGATIONS`. Slices are planes of
        the first array axis (z, the axial planes of a ``SimpleITK.Image`` in its stored order).
    distance : int
        Chebyshev neighbourhood distance of GLCM, NGTDM and NGLDM.
    ngldm_alpha : int
        NGLDM coarseness parameter.
    families : sequence of str or None
        Feature families to compute (prefixes: 'morph', 'loc', 'stat', 'ih', 'ivh', 'cm', 'rlm',
        'szm', 'dzm', 'ngt', 'ngl'); None for all.
    """

    resample_mm: float | tuple | None = None
    interpolation: str = "linear"
    mask_interpolation: str = "linear"
    partial_volume: float = 0.5
    round_intensities: bool = False
    resegment_range: tuple | None = None
    outlier_sigma: float | None = None
    discretisation: str = "fbn"
    bin_width: float = 25.0
    bins: int = 32
    bin_min: float | None = None
    ivh_discretisation: str = "none"
    ivh_bin_width: float = 2.5
    ivh_bins: int = 1000
    texture_dims: tuple = ("3D",)
    distance: int = 1
    ngldm_alpha: int = 0
    families: tuple | None = None

    def __post_init__(self):
        check_choice("interpolation", self.interpolation, list(_INTERP))
        check_choice("mask_interpolation", self.mask_interpolation, ["linear", "nearest"])
        check_choice("discretisation", self.discretisation, list(_DISCRETISATION))
        check_choice("ivh_discretisation", self.ivh_discretisation, list(_DISCRETISATION))
        if not 0 < float(self.partial_volume) <= 1:
            raise ValueError(f"`partial_volume` must be in (0, 1]; got {self.partial_volume!r}")
        check_positive("bin_width", self.bin_width)
        check_positive("ivh_bin_width", self.ivh_bin_width)
        check_int("bins", self.bins, minimum=1)
        check_int("ivh_bins", self.ivh_bins, minimum=1)
        check_int("distance", self.distance, minimum=1)
        check_int("ngldm_alpha", self.ngldm_alpha, minimum=0)
        dims = (self.texture_dims,) if isinstance(self.texture_dims, str) else tuple(self.texture_dims)
        for d in dims:
            check_choice("texture_dims", d, list(_DIMS))
        object.__setattr__(self, "texture_dims", dims)
        if self.resegment_range is not None:
            lo, hi = (float(v) for v in self.resegment_range)
            if not lo < hi:
                raise ValueError(f"`resegment_range` must be (lower, upper) with lower < upper; got {self.resegment_range!r}")
            object.__setattr__(self, "resegment_range", (lo, hi))
        if self.outlier_sigma is not None:
            check_positive("outlier_sigma", self.outlier_sigma)
        if self.families is not None:
            from ._reference import FAMILIES

            fams = (self.families,) if isinstance(self.families, str) else tuple(self.families)
            for f in fams:
                check_choice("families", f, list(FAMILIES))
            object.__setattr__(self, "families", fams)

    def replace(self, **changes) -> FeatureSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)


_IBSI = {
    # The digital phantom is its own grey-level image: no processing (IBSI 1, "Reference data sets").
    "digital phantom": {"discretisation": "none", "ivh_discretisation": "none", "texture_dims": ("2D", "2.5D", "3D")},
    # CT phantom configurations (IBSI 1, "Reference data sets", configurations A-E).
    "A": {"resegment_range": (-500, 400), "discretisation": "fbs", "bin_width": 25.0, "texture_dims": ("2D", "2.5D")},
    "B": {
        "resample_mm": (None, 2.0, 2.0), "interpolation": "linear", "mask_interpolation": "linear",
        "partial_volume": 0.5, "round_intensities": True, "resegment_range": (-500, 400),
        "discretisation": "fbn", "bins": 32, "texture_dims": ("2D", "2.5D"),
    },
    "C": {
        "resample_mm": 2.0, "interpolation": "linear", "round_intensities": True, "resegment_range": (-1000, 400),
        "discretisation": "fbs", "bin_width": 25.0, "ivh_discretisation": "fbs", "ivh_bin_width": 2.5, "texture_dims": ("3D",),
    },
    "D": {
        "resample_mm": 2.0, "interpolation": "linear", "round_intensities": True, "outlier_sigma": 3.0,
        "discretisation": "fbn", "bins": 32, "texture_dims": ("3D",),
    },
    "E": {
        "resample_mm": 2.0, "interpolation": "cubic", "round_intensities": True, "resegment_range": (-1000, 400),
        "outlier_sigma": 3.0, "discretisation": "fbn", "bins": 32, "ivh_discretisation": "fbn", "ivh_bins": 1000,
        "texture_dims": ("3D",),
    },
}


def ibsi_settings(name: str, **changes) -> FeatureSettings:
    """Settings of an IBSI 1 reference data set.

    Parameters
    ----------
    name : {'digital phantom', 'A', 'B', 'C', 'D', 'E'}
        The digital phantom (no processing; its intensities are grey levels) or a CT-phantom
        configuration: A = 2D, no interpolation, re-segmentation [-500, 400] HU, FBS 25 HU;
        B = 2D, bilinear to 2 x 2 mm in-plane (mask partial volume 0.5, HU rounded),
        [-500, 400] HU, FBN 32 bins; C-E = 3D at 2 mm isotropic (C: [-1000, 400] HU, FBS 25 HU,
        IVH FBS 2.5 HU; D: 3 sd outlier filter, FBN 32; E: cubic spline, both filters, FBN 32,
        IVH FBN 1000). GLCM/NGTDM/NGLDM distance 1, NGLDM coarseness 0.
    **changes
        Settings to override (see :class:`FeatureSettings`).
    """
    key = check_choice("name", name, list(_IBSI))
    return FeatureSettings(**{**_IBSI[key], **changes})


@dataclass
class PreparedROI:
    """An image and its ROI after IBSI processing, cropped around the ROI.

    ``image`` holds the (interpolated) intensities of the crop, ``morph`` the morphological mask,
    ``inten`` the re-segmented intensity mask, ``levels`` the discretised grey levels (0 outside
    the intensity mask), ``n_levels`` the number of grey levels, ``spacing`` the voxel size in mm
    (z, y, x) and ``diagnostics`` voxel counts before and after each step (IBSI diagnostic
    features). The crop keeps a margin around the ROI wide enough for the 1 cm^3 peak sphere.
    """

    image: np.ndarray
    morph: np.ndarray
    inten: np.ndarray
    levels: np.ndarray
    n_levels: int
    spacing: tuple
    settings: FeatureSettings
    diagnostics: dict


def _resample_axis_coords(n: int, s_old: float, s_new: float) -> np.ndarray:
    """IBSI 'align grid centres' positions of the new grid, in old grid coordinates."""
    n_new = math.ceil(n * s_old / s_new - 1e-9)
    step = s_new / s_old
    start = 0.5 * (n - 1 - step * (n_new - 1))
    return start + step * np.arange(n_new)


def _interpolate(arr: np.ndarray, coords: list[np.ndarray], order: int) -> np.ndarray:
    """Evaluate ``arr`` on the tensor grid ``coords`` (one 1D array per axis), edges extended."""
    if order in (0, 1):
        # separable: one axis at a time (exact for nearest/linear tensor-product interpolation)
        out = arr
        for ax, c in enumerate(coords):
            n = out.shape[ax]
            if len(c) == n and np.allclose(c, np.arange(n)):
                continue
            c = np.clip(c, 0, n - 1)
            if order == 0:
                out = np.take(out, np.floor(c + 0.5).astype(np.intp).clip(0, n - 1), axis=ax)
                continue
            i0 = np.floor(c).astype(np.intp).clip(0, max(n - 2, 0))
            i1 = np.minimum(i0 + 1, n - 1)
            w = (c - i0).reshape([-1 if k == ax else 1 for k in range(out.ndim)])
            out = np.take(out, i0, axis=ax) * (1 - w) + np.take(out, i1, axis=ax) * w
        return out
    coeffs = ndimage.spline_filter(arr, order=order, mode="nearest", output=np.float64)
    grid = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(coeffs, grid, order=order, mode="nearest", prefilter=False)


def _crop_bounds(mask: np.ndarray, margin: list[int]) -> tuple[slice, ...]:
    idx = np.nonzero(mask)
    return tuple(
        slice(max(0, int(i.min()) - m), min(n, int(i.max()) + m + 1))
        for i, m, n in zip(idx, margin, mask.shape, strict=True)
    )


def _new_spacing(spacing, resample_mm):
    if resample_mm is None:
        return None
    if np.isscalar(resample_mm):
        new = (float(resample_mm),) * len(spacing)
    else:
        if len(resample_mm) != len(spacing):
            raise ValueError(
                f"`resample_mm` must have {len(spacing)} values (z, y, x); got {resample_mm!r}"
            )
        new = tuple(s if r is None else float(r) for s, r in zip(spacing, resample_mm, strict=True))
    for v in new:
        check_positive("resample_mm", v)
    return new


def prepare_roi(image, mask, settings: FeatureSettings, *, spacing=None, label=None) -> PreparedROI:
    """Apply interpolation, re-segmentation and discretisation (see :class:`FeatureSettings`).

    ``image`` and ``mask`` are ``SimpleITK.Image`` or numpy arrays ``(z, y, x)`` (2D arrays are
    taken as one slice); ``mask`` nonzero (or ``== label``) is the ROI.

    Parameters
    ----------
    image : sitk.Image or ndarray
        The image (numpy: indexed (z, y, x) with ``spacing``).
    mask : sitk.Image or ndarray
        The region of interest on the grid of ``image``.
    settings : FeatureSettings
        Interpolation, re-segmentation and discretisation settings.
    spacing : optional
        Voxel size in mm for numpy input (array axis order).
    label : int, optional
        The label of ``mask`` to use (default: every nonzero voxel).
    """
    check_not_4d(image)
    check_not_4d(mask, "mask")
    arr = np.asarray(to_array(image), dtype=np.float64)
    sp = spacing_zyx(image, spacing)
    if label is not None:
        m_raw = to_array(mask)
        if m_raw.shape != arr.shape:
            mask_array(mask, image)  # raises the shape error
        roi = m_raw == label
        if not roi.any():
            raise ValueError(f"`label` {label!r} is not in `mask`")
    else:
        roi = mask_array(mask, image)
    if arr.ndim == 2:
        arr, roi, sp = arr[None], roi[None], (1.0, *sp)
    if not np.isfinite(arr[roi]).all():
        raise ValueError("`image` has non-finite values inside the ROI")

    new_sp = _new_spacing(sp, settings.resample_mm)
    step_mm = max(new_sp or sp)
    margin = [math.ceil((PEAK_RADIUS_MM + 2 * step_mm) / s) + 2 for s in sp]
    crop = _crop_bounds(roi, margin)
    diagnostics = {"roi_voxels_initial": int(roi.sum()), "spacing_initial": tuple(sp)}

    if new_sp is not None:
        coords = []
        for ax, (n, s_old, s_new) in enumerate(zip(arr.shape, sp, new_sp, strict=True)):
            c = _resample_axis_coords(n, s_old, s_new)
            lo, hi = crop[ax].start, crop[ax].stop - 1
            keep = np.ones(c.shape, bool)
            if lo > 0:
                keep &= c >= lo
            if hi < n - 1:
                keep &= c <= hi
            coords.append(c[keep] - lo)
        sub = arr[crop]
        order = _INTERP[settings.interpolation]
        img = _interpolate(sub, coords, order)
        if settings.round_intensities:
            img = np.round(img)
        mask_order = _INTERP[settings.mask_interpolation]
        m = _interpolate(roi[crop].astype(np.float64), coords, mask_order)
        # float noise must not drop a voxel whose interpolated mask is exactly the threshold
        morph = m >= settings.partial_volume - 1e-9
        sp = new_sp
    else:
        img = arr[crop].copy()
        morph = roi[crop].copy()
    if not morph.any():
        raise ValueError("the ROI is empty after interpolation of the mask")

    inten = morph.copy()
    if settings.resegment_range is not None:
        lo, hi = settings.resegment_range
        inten &= (img >= lo) & (img <= hi)
    if settings.outlier_sigma is not None and inten.any():
        vals = img[inten]
        mu, sd = vals.mean(), vals.std()
        k = settings.outlier_sigma
        inten &= (img >= mu - k * sd) & (img <= mu + k * sd)
    if not inten.any():
        raise ValueError("the intensity mask is empty after re-segmentation")
    levels, n_levels = discretise(img, inten, settings)
    diagnostics.update(
        morph_voxels=int(morph.sum()), intensity_voxels=int(inten.sum()), spacing=tuple(sp), n_levels=n_levels
    )
    return PreparedROI(img, morph, inten, levels, n_levels, tuple(sp), settings, diagnostics)


def discretise(image: np.ndarray, mask: np.ndarray, settings: FeatureSettings) -> tuple[np.ndarray, int]:
    """Grey levels (int32, 1..N inside ``mask``, 0 outside) and the number of levels N.

    FBN: ``floor(N (x - min) / (max - min)) + 1``, the maximum in bin N, min and max over the
    ROI. FBS: ``floor((x - x_min) / w) + 1`` with ``x_min`` = ``bin_min``, else the lower
    re-segmentation bound, else the ROI minimum. 'none': the intensities themselves (they must
    be positive integers). N is the highest grey level in the ROI.

    Parameters
    ----------
    image : ndarray
        Intensities (after interpolation and re-segmentation).
    mask : ndarray of bool
        The region of interest, same shape.
    settings : FeatureSettings
        The discretisation (fixed bin number or fixed bin size).
    """
    vals = image[mask]
    out = np.zeros(image.shape, np.int32)
    method = settings.discretisation
    if method == "fbn":
        lo, hi = float(vals.min()), float(vals.max())
        nb = settings.bins
        if hi > lo:
            d = np.floor(nb * (vals - lo) / (hi - lo)).astype(np.int64) + 1
            d = np.minimum(d, nb)
        else:
            d = np.ones(vals.shape, np.int64)
    elif method == "fbs":
        if settings.bin_min is not None:
            lo = float(settings.bin_min)
        elif settings.resegment_range is not None and np.isfinite(settings.resegment_range[0]):
            lo = settings.resegment_range[0]
        else:
            lo = float(vals.min())
        d = np.floor((vals - lo) / settings.bin_width).astype(np.int64) + 1
        if d.min() < 1:
            raise ValueError(
                f"FBS discretisation: intensities below `bin_min` ({lo}) in the ROI; "
                "set `bin_min` or a re-segmentation range"
            )
    else:
        if not np.allclose(vals, np.round(vals)) or vals.min() < 1:
            raise ValueError(
                "`discretisation='none'` needs intensities that are positive integers (grey levels); "
                f"the ROI has values in [{vals.min()}, {vals.max()}]"
            )
        d = np.round(vals).astype(np.int64)
    out[mask] = d
    return out, int(d.max())
