"""Intensity enhancement: window/level with modality presets, histogram equalisation, CLAHE,
gamma and intensity normalisation.

Every function takes a ``SimpleITK.Image`` or a numpy array indexed ``(z, y, x)`` (2D:
``(y, x)``) and returns the same kind, on the same grid; inputs are never modified. Unless a
docstring says otherwise the result is ``float32``.

This module holds the **one** window/level definition of medlab (:func:`window_bounds` and the
linear map inside :func:`window_level`); :mod:`medlab.display` builds its lookup tables from it.

>>> import numpy as np
>>> window_level(np.array([[-160, 40, 240]], dtype=np.int16), window=400, level=40)
array([[0. , 0.5, 1. ]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from skimage import exposure as ski_exposure

from medlab._image import as_sitk, check_scalar, copy_geometry, mask_array
from medlab._options import check_choice, check_int, check_positive, check_range, is_int

__all__ = [
    "Preset",
    "presets",
    "window_bounds",
    "auto_window",
    "resolve_window",
    "window_unit",
    "DEFAULT_PERCENTILES",
    "window_level",
    "equalize_hist",
    "clahe",
    "gamma",
    "normalize",
]


class Preset(NamedTuple):
    """A named display window.

    Attributes
    ----------
    window : float or None
        Window width in image intensity units (HU for CT); None for ``'auto'``.
    level : float or None
        Window centre in the same units; None for ``'auto'``.
    modality : str
        The modality the preset is meant for.
    description : str
        What it shows, in words.
    """

    window: float | None
    level: float | None
    modality: str
    description: str


# CT presets in Hounsfield units, (width, centre). Values follow Radiopaedia, "Windowing (CT)"
# (https://radiopaedia.org/articles/windowing-ct): brain 80/40, lungs 1500/-600, mediastinum
# 350/50, abdomen soft tissue 400/50, liver 150/30, bone 1800/400 (their spine bone window; the
# other common choice is 2000/300 - we keep one, Radiopaedia's), subdural W 130-300 / L 50-100
# (we take 200/75, inside that range), stroke 40/40 (Turner & Holdsworth, Br J Radiol
# 2011;84:1061, doi:10.1259/bjr/99730184).
_PRESETS: dict[str, Preset] = {
    "lung": Preset(1500.0, -600.0, "CT", "lung parenchyma, airways"),
    "mediastinum": Preset(350.0, 50.0, "CT", "mediastinum and chest soft tissue"),
    "bone": Preset(1800.0, 400.0, "CT", "cortical and trabecular bone"),
    "brain": Preset(80.0, 40.0, "CT", "brain parenchyma"),
    "subdural": Preset(200.0, 75.0, "CT", "extra-axial blood against the skull"),
    "stroke": Preset(40.0, 40.0, "CT", "grey/white matter contrast for early ischaemia"),
    "abdomen": Preset(400.0, 50.0, "CT", "abdominal soft tissue"),
    "liver": Preset(150.0, 30.0, "CT", "liver parenchyma and lesions"),
    "auto": Preset(
        None, None, "MR/US/PET/any", "percentile window of the image itself (see auto_window)"
    ),
}

#: Percentiles of ``'auto'`` windows (:func:`auto_window`), also :mod:`medlab.display`'s default.
DEFAULT_PERCENTILES = (1.0, 99.0)


def presets() -> dict[str, Preset]:
    """The named windows :func:`window_level` accepts as ``preset``.

    Returns
    -------
    dict of str to Preset
        A fresh copy, in display order. CT presets are in Hounsfield units; ``'auto'`` has
        ``window`` and ``level`` None because it is computed from the image (:func:`auto_window`).

    Examples
    --------
    >>> presets()["lung"].window, presets()["lung"].level
    (1500.0, -600.0)
    """
    return dict(_PRESETS)


def window_bounds(window: float, level: float) -> tuple[float, float]:
    """The intensity interval ``(low, high)`` a window maps onto ``[0, 1]``.

    ``low = level - window / 2`` and ``high = level + window / 2``. This is the linear
    width/centre convention; it differs by half a unit from the DICOM VOI LUT formula
    (PS3.3 C.11.2.1.2, which uses ``window - 1`` and ``level - 0.5``).

    Parameters
    ----------
    window : float
        Window width in intensity units, > 0.
    level : float
        Window centre in intensity units.

    Returns
    -------
    (low, high) : tuple of float

    Examples
    --------
    >>> window_bounds(400, 40)
    (-160.0, 240.0)
    """
    window = check_positive("window", window)
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise TypeError(f"`level` must be a number; got {level!r}") from None
    if not np.isfinite(level) or not np.isfinite(window):
        raise ValueError(f"`window` and `level` must be finite; got window={window}, level={level}")
    return level - window / 2.0, level + window / 2.0


def window_unit(values: np.ndarray, low: float, high: float, *, dtype=np.float32) -> np.ndarray:
    """The window map itself: ``clip((values - low) / (high - low), 0, 1)`` as ``dtype``.

    The only implementation of the mapping; :func:`window_level`, :func:`gamma` and the display
    lookup tables all call it.

    Parameters
    ----------
    values : ndarray
        Intensities (any shape).
    low, high : float
        The window's bounds in intensity units (:func:`window_bounds`), ``high > low``.
    dtype : numpy dtype
        Of the result (float32 by default; float64 for lookup tables).

    Returns
    -------
    ndarray of ``dtype``
        Values in [0, 1], the shape of ``values``.

    Examples
    --------
    >>> window_unit(np.array([0.0, 25.0, 50.0, 100.0]), 0.0, 50.0)
    array([0. , 0.5, 1. , 1. ], dtype=float32)
    """
    out = np.subtract(values, low, dtype=np.float64)
    out /= high - low  # a true division: exact halves (e.g. 25.5 grey levels) stay exact
    np.clip(out, 0.0, 1.0, out=out)
    return out.astype(dtype, copy=False)




def _check_percentiles(percentiles) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError(
            f"`percentiles` must be two numbers (low, high) in [0, 100]; got {percentiles!r}"
        ) from None
    if not (0.0 <= lo < hi <= 100.0):
        raise ValueError(
            f"`percentiles` must satisfy 0 <= low < high <= 100; got {percentiles!r}"
        )
    return lo, hi


def auto_window(
    image, *, percentiles: Sequence[float] = DEFAULT_PERCENTILES, mask=None
) -> tuple[float, float]:
    """A window spanning two intensity percentiles of the image (for MR, US, PET, ...).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Any scalar image.
    percentiles : (float, float)
        Low and high percentile in [0, 100]; the window runs from the one to the other.
    mask : sitk.Image or ndarray of bool, optional
        Only voxels where ``mask`` is nonzero are counted (same shape as ``image``).

    Returns
    -------
    (window, level) : tuple of float
        In the image's intensity units. When both percentiles coincide (e.g. a constant
        image) the window is 1 intensity unit centred on that value.

    Examples
    --------
    >>> import numpy as np
    >>> auto_window(np.arange(101.0).reshape(1, 101), percentiles=(10, 90))
    (80.0, 50.0)
    """
    lo_p, hi_p = _check_percentiles(percentiles)
    img, _ = as_sitk(image)
    check_scalar(img, "image")
    return _auto_window(sitk.GetArrayViewFromImage(img), (lo_p, hi_p), mask_array(mask, image))


def _auto_window(arr: np.ndarray, percentiles, m) -> tuple[float, float]:
    values = arr[m] if m is not None else arr.ravel()
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if not hi > lo:
        return 1.0, lo
    return hi - lo, (hi + lo) / 2.0


def resolve_window(
    image,
    window: float | None = None,
    level: float | None = None,
    *,
    preset: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    mask=None,
) -> tuple[float, float]:
    """The ``(window, level)`` that :func:`window_level` would apply.

    Exactly one way of choosing is used: explicit ``window`` and ``level``, a named ``preset``
    (:func:`presets`), or, when neither is given, ``'auto'`` (:func:`auto_window`).

    Parameters
    ----------
    image : sitk.Image or ndarray
        Only read for ``'auto'``.
    window, level : float, optional
        Width (> 0) and centre in intensity units; give both or neither.
    preset : str, optional
        A key of :func:`presets`.
    percentiles : (float, float)
        For ``'auto'``.
    mask : sitk.Image or ndarray, optional
        For ``'auto'``: voxels whose percentiles set the window.

    Returns
    -------
    (window, level) : tuple of float
    """
    if isinstance(image, np.ndarray) and image.ndim in (2, 3):
        arr = image  # no copy into SimpleITK: only percentiles are read (display calls this per frame)
    else:
        img, _ = as_sitk(image)
        check_scalar(img, "image")
        arr = sitk.GetArrayViewFromImage(img)
    return _resolve(arr, image, window, level, preset, percentiles, mask)


def _resolve(arr, image, window, level, preset, percentiles, mask) -> tuple[float, float]:
    """:func:`resolve_window` on ``arr``, the array of ``image`` (given for mask checks)."""
    if (window is None) != (level is None):
        missing = "level" if level is None else "window"
        raise ValueError(f"give both `window` and `level` or neither; `{missing}` is missing")
    if window is not None:
        if preset is not None:
            raise ValueError(
                f"give either `window`/`level` or `preset`, not both; got preset={preset!r}"
            )
        window_bounds(window, level)  # validates both
        return float(window), float(level)
    if preset is None:
        preset = "auto"
    check_choice("preset", preset, _PRESETS)
    if preset == "auto":
        return _auto_window(arr, _check_percentiles(percentiles), mask_array(mask, image))
    p = _PRESETS[preset]
    return p.window, p.level


def window_level(
    image,
    window: float | None = None,
    level: float | None = None,
    *,
    preset: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    mask=None,
    spacing=None,
):
    """Map intensities linearly onto ``[0, 1]`` through a display window.

    ``out = clip((image - low) / (high - low), 0, 1)`` with ``(low, high)`` from
    :func:`window_bounds`.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image in physical intensity units (HU for CT).
    window, level : float, optional
        Window width (> 0) and centre, in intensity units. Give both, or use ``preset``.
    preset : str, optional
        One of :func:`presets`: ``'lung'``, ``'mediastinum'``, ``'bone'``, ``'brain'``,
        ``'subdural'``, ``'stroke'``, ``'abdomen'``, ``'liver'`` (CT, HU) or ``'auto'``.
        With neither ``window``/``level`` nor ``preset``, ``'auto'`` is used.
    percentiles : (float, float)
        Percentiles for ``'auto'`` (see :func:`auto_window`).
    mask : sitk.Image or ndarray, optional
        Voxels used by ``'auto'``.
    spacing : sequence of float, optional
        Voxel size in mm, array axis order, for numpy input (kept on the way through).

    Returns
    -------
    sitk.Image or ndarray of float32
        Same shape and kind as ``image``, values in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> window_level(np.array([[-1000, -600, -1350]]), preset="lung")
    array([[0.23333333, 0.5       , 0.        ]], dtype=float32)
    """
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    arr = sitk.GetArrayViewFromImage(img)
    w, lev = _resolve(arr, image, window, level, preset, percentiles, mask)
    low, high = window_bounds(w, lev)
    out = window_unit(arr, low, high)
    return back(copy_geometry(out, img))


def equalize_hist(image, *, nbins: int = 256, mask=None, spacing=None):
    """Global histogram equalisation (``skimage.exposure.equalize_hist``).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, any intensity range.
    nbins : int
        Histogram bins for float images (integer images get one bin per integer value, as in
        scikit-image).
    mask : sitk.Image or ndarray, optional
        Only voxels inside the mask set the histogram; every voxel is mapped.
    spacing : sequence of float, optional
        Voxel size in mm for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        The cumulative distribution value of each voxel, in ``[0, 1]``.
    """
    nbins = check_int("nbins", nbins, minimum=2)
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    m = mask_array(mask, image)
    out = ski_exposure.equalize_hist(sitk.GetArrayFromImage(img), nbins=nbins, mask=m)
    return back(copy_geometry(out.astype(np.float32), img))


def clahe(
    image,
    *,
    clip_limit: float = 0.01,
    kernel_size: int | Sequence[int] | None = None,
    nbins: int = 256,
    spacing=None,
):
    """Contrast-limited adaptive histogram equalisation, 2D or 3D.

    The image is first rescaled linearly from its ``[min, max]`` to ``[0, 1]`` (so any
    intensity range works: HU, MR units, PET SUV), then passed to
    ``skimage.exposure.equalize_adapthist``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    clip_limit : float
        Contrast limit in (0, 1]; higher gives more contrast.
    kernel_size : int or sequence of int, optional
        Contextual region in **voxels**, array axis order; default 1/8 of each axis.
    nbins : int
        Grey-level bins.
    spacing : sequence of float, optional
        Voxel size in mm for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        Values in ``[0, 1]`` (scikit-image stretches its result to that range). A constant
        image gives all zeros.
    """
    clip_limit = check_positive("clip_limit", clip_limit)
    if clip_limit > 1:
        raise ValueError(f"`clip_limit` must be in (0, 1]; got {clip_limit!r}")
    nbins = check_int("nbins", nbins, minimum=2)
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    arr = sitk.GetArrayViewFromImage(img)
    if kernel_size is not None:
        ks = (kernel_size,) * arr.ndim if np.isscalar(kernel_size) else tuple(kernel_size)
        if len(ks) != arr.ndim or not all(is_int(k) and k >= 1 for k in ks):
            raise ValueError(
                f"`kernel_size` must be a positive int or {arr.ndim} positive ints (voxels, "
                f"array axis order); got {kernel_size!r}"
            )
        kernel_size = tuple(int(k) for k in ks)
    lo, hi = float(arr.min()), float(arr.max())
    if hi > lo:
        unit = window_unit(arr, lo, hi, dtype=np.float64)
        out = ski_exposure.equalize_adapthist(unit, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    else:
        out = np.zeros(arr.shape)
    return back(copy_geometry(out.astype(np.float32), img))


def gamma(image, gamma: float, *, in_range: Sequence[float] | None = None, spacing=None):
    """Gamma correction ``out = u ** gamma`` of the image rescaled to ``u`` in ``[0, 1]``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    gamma : float
        Exponent, > 0; < 1 brightens, > 1 darkens.
    in_range : (float, float), optional
        Intensities mapped to 0 and 1 before the power (values outside are clipped);
        default the image minimum and maximum.
    spacing : sequence of float, optional
        Voxel size in mm for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        Values in ``[0, 1]``. A constant image (with the default ``in_range``) gives zeros.

    Examples
    --------
    >>> import numpy as np
    >>> gamma(np.array([[0.0, 1.0, 4.0]]), 0.5, in_range=(0, 4))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    g = check_positive("gamma", gamma)
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    arr = sitk.GetArrayViewFromImage(img)
    if in_range is None:
        lo, hi = float(arr.min()), float(arr.max())
        if not hi > lo:
            return back(copy_geometry(np.zeros(arr.shape, np.float32), img))
    else:
        lo, hi = check_range("in_range", in_range)
    out = window_unit(arr, lo, hi, dtype=np.float64) ** g
    return back(copy_geometry(out.astype(np.float32), img))


_NORMALIZE_METHODS = ("zscore", "minmax", "percentile")


def normalize(
    image,
    method: str = "zscore",
    *,
    mask=None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    clip: bool = True,
    constant: str = "raise",
    spacing=None,
):
    """Intensity normalisation for analysis and network inputs (not display).

    Statistics come from the voxels inside ``mask`` (all voxels by default); every voxel is
    transformed.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    method : {'zscore', 'minmax', 'percentile'}
        ``'zscore'``: ``(x - mean) / std`` (population std, ``ddof=0``), so the voxels in the
        mask get mean 0 and std 1. ``'minmax'``: ``(x - min) / (max - min)``.
        ``'percentile'``: ``(x - p_low) / (p_high - p_low)`` with ``percentiles``.
    mask : sitk.Image or ndarray, optional
        Voxels that set the statistics (same shape as ``image``).
    percentiles : (float, float)
        For ``'percentile'``.
    clip : bool
        For ``'minmax'`` and ``'percentile'``: clip the result to ``[0, 1]`` (voxels outside
        the mask, or beyond the percentiles, can fall outside). Ignored by ``'zscore'``.
    constant : {'raise', 'zeros'}
        What a zero scale (a constant image or mask region) gives: a ValueError (default), or
        an image of zeros (for a batch of network inputs, where one blank image must not stop
        the rest; ``medlab.models`` uses this).
    spacing : sequence of float, optional
        Voxel size in mm for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32

    Raises
    ------
    ValueError
        If the statistics give a zero scale (a constant image or mask region) and
        ``constant='raise'``.

    Examples
    --------
    >>> import numpy as np
    >>> normalize(np.array([[1.0, 3.0]]), "minmax")
    array([[0., 1.]], dtype=float32)
    >>> normalize(np.full((2, 2), 7.0), "zscore", constant="zeros")
    array([[0., 0.],
           [0., 0.]], dtype=float32)
    """
    check_choice("method", method, _NORMALIZE_METHODS)
    check_choice("constant", constant, ("raise", "zeros"))
    if method == "percentile":
        lo_p, hi_p = _check_percentiles(percentiles)
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    arr = sitk.GetArrayViewFromImage(img)
    m = mask_array(mask, image)
    values = (arr[m] if m is not None else arr.ravel()).astype(np.float64)
    where = "inside `mask`" if m is not None else "in `image`"
    if method == "zscore":
        mean, std = values.mean(), values.std()
        if not std > 0:
            if constant == "zeros":
                return back(copy_geometry(np.zeros(arr.shape, np.float32), img))
            raise ValueError(f"`image` is constant {where} (std 0); z-score is undefined")
        out = (arr - mean) / std
    else:
        if method == "minmax":
            lo, hi = values.min(), values.max()
        else:
            lo, hi = np.percentile(values, [lo_p, hi_p])
        if not hi > lo:
            if constant == "zeros":
                return back(copy_geometry(np.zeros(arr.shape, np.float32), img))
            raise ValueError(
                f"`image` has no intensity spread {where} ({method} low = high = {lo}); "
                "cannot normalise"
            )
        out = (arr - lo) / (hi - lo)
        if clip:
            np.clip(out, 0.0, 1.0, out=out)
    return back(copy_geometry(out.astype(np.float32), img))
