"""Image fusion: alpha blend, checkerboard, difference, flicker, colour overlay, label contours,
and the multimodal CT/MR/PET panels.

Two kinds of output:

* **images** (:func:`alpha_blend`, :func:`checkerboard`, :func:`difference`): 2D or 3D, the same
  kind and grid as the first input, ``float32``. Each input is first mapped onto ``[0, 1]``
  by a display window (``window1``/``window2``: a ``(window, level)`` pair, a
  :func:`medlab.enhance.presets` name such as ``'abdomen'``, or ``'auto'``), so that two
  modalities with different units can be mixed; ``None`` keeps the raw values (same modality,
  or exact arithmetic).
* **display pixels** (:func:`flicker_frames`, :func:`color_overlay`, :func:`label_contours`,
  :func:`fusion_panels`): 2D ``uint8`` grey or RGB, rendered through :mod:`medlab.display`
  (the one renderer), ready for ``imshow`` or PNG.

Both inputs of a fusion must be on one grid: resample one onto the other first
(:func:`medlab.registration.resample`, or ``RegistrationResult.resampled``).

>>> import numpy as np
>>> a, b = np.zeros((2, 4)), np.ones((2, 4))
>>> checkerboard(a, b, tiles=2)
array([[0., 0., 1., 1.],
       [1., 1., 0., 0.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk, check_same_grid, check_same_shape, check_scalar, copy_geometry
from medlab._options import check_choice, check_int, check_range

__all__ = [
    "alpha_blend",
    "checkerboard",
    "difference",
    "flicker_frames",
    "color_overlay",
    "label_contours",
    "colorbar",
    "fusion_panels",
]

# Distinct contour colours (RGB) for several label images: green, magenta, cyan, yellow.
_CONTOUR_COLOURS = ((0, 200, 0), (230, 0, 230), (0, 200, 230), (240, 220, 0))


# --------------------------------------------------------------------------- inputs


def _pair(image1, image2, spacing):
    """``(img1, img2, back)`` for two scalar images on one grid."""
    img1, back = as_sitk(image1, spacing=spacing, name="image1")
    img2, _ = as_sitk(image2, spacing=spacing, name="image2")
    check_scalar(img1, "image1")
    check_scalar(img2, "image2")
    if isinstance(image1, sitk.Image) and isinstance(image2, sitk.Image):
        check_same_grid(img1, img2, names=("image1", "image2"))
    else:
        check_same_shape(img1.GetSize()[::-1], img2.GetSize()[::-1], names=("image1", "image2"),
                         hint="; resample it first (medlab.registration.resample)")
    return img1, img2, back


def _unit(img: sitk.Image, window, name: str) -> np.ndarray:
    """The image as float64, mapped onto [0, 1] by ``window`` (or raw for None)."""
    if window is None:
        return sitk.GetArrayFromImage(img).astype(np.float64)
    from medlab.enhance import window_level

    if isinstance(window, str):
        out = window_level(img, preset=window)
    else:
        try:
            w, lev = window
        except (TypeError, ValueError):
            raise TypeError(
                f"`{name}` must be None, a preset name or a (window, level) pair; got {window!r}"
            ) from None
        out = window_level(img, window=w, level=lev)
    return sitk.GetArrayFromImage(out).astype(np.float64)


def _result(arr: np.ndarray, ref: sitk.Image, back):
    return back(copy_geometry(arr.astype(np.float32), ref))


# --------------------------------------------------------------------------- images


def alpha_blend(image1, image2, alpha: float = 0.5, *, window1=None, window2=None, spacing=None):
    """Alpha blend ``(1 - alpha) * u1 + alpha * u2`` of two images on one grid.

    Parameters
    ----------
    image1, image2 : sitk.Image or (M, N[, P]) ndarray
        Scalar images on the same grid (same shape; same geometry for SimpleITK images).
    alpha : float
        Weight of ``image2``, in [0, 1].
    window1, window2 : None, str or (float, float)
        Display window that maps each image onto [0, 1] first (``u = clip((x - low) /
        (high - low), 0, 1)``, see :func:`medlab.enhance.window_level`): a ``(window, level)``
        pair, a preset name or ``'auto'``. None: raw values.
    spacing : sequence of float, optional
        Voxel size in mm (array axis order) for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        Same kind and grid as ``image1``.

    Examples
    --------
    >>> import numpy as np
    >>> alpha_blend(np.array([[0.0, 10.0]]), np.array([[10.0, 20.0]]), 0.25)
    array([[ 2.5, 12.5]], dtype=float32)
    """
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]; got {alpha!r}")
    img1, img2, back = _pair(image1, image2, spacing)
    u1, u2 = _unit(img1, window1, "window1"), _unit(img2, window2, "window2")
    return _result((1.0 - a) * u1 + a * u2, img1, back)


def _tiles(tiles, shape) -> tuple[int, ...]:
    if isinstance(tiles, int | np.integer) and not isinstance(tiles, bool):
        t = (int(tiles),) * len(shape)
    else:
        try:
            t = tuple(int(v) for v in tiles)
        except TypeError:
            raise TypeError(f"`tiles` must be an int or one int per axis; got {tiles!r}") from None
        if len(t) != len(shape):
            raise ValueError(
                f"`tiles` must have one count per axis ({len(shape)}, array axis order); got {tiles!r}"
            )
    for n, size in zip(t, shape, strict=True):
        if n < 1 or n > size:
            raise ValueError(f"`tiles` counts must be in [1, axis size]; got {tiles!r} for shape {shape}")
    return t


def checkerboard(image1, image2, *, tiles=4, window1=None, window2=None, spacing=None):
    """Checkerboard of two images on one grid: tiles alternate between them.

    Along an axis of ``n`` voxels cut into ``k`` tiles, voxel ``i`` is in tile ``(i * k) // n``;
    a voxel shows ``image1`` where the tile indexes sum to an even number, else ``image2``
    (so the first tile is ``image1``). Misalignment shows as broken edges at tile borders.

    Parameters
    ----------
    image1, image2 : sitk.Image or (M, N[, P]) ndarray
        Scalar images on the same grid.
    tiles : int or sequence of int
        Tiles per axis (array axis order), each in ``[1, axis size]``; an int for all axes.
        For a 3D image, ``(1, 4, 4)`` gives the same in-plane pattern on every slice.
    window1, window2 : None, str or (float, float)
        As in :func:`alpha_blend`.
    spacing : sequence of float, optional
        For numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    img1, img2, back = _pair(image1, image2, spacing)
    u1, u2 = _unit(img1, window1, "window1"), _unit(img2, window2, "window2")
    shape = u1.shape
    t = _tiles(tiles, shape)
    parity = np.zeros(shape, dtype=np.int64)
    for axis, (k, n) in enumerate(zip(t, shape, strict=True)):
        idx = (np.arange(n) * k) // n
        parity = parity + idx.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return _result(np.where(parity % 2 == 0, u1, u2), img1, back)


def difference(image1, image2, *, absolute: bool = False, window1=None, window2=None, spacing=None):
    """Difference ``u1 - u2`` (or ``|u1 - u2|``) of two images on one grid.

    With windows, both are on [0, 1] first (a difference in [-1, 1]); raw values otherwise
    (same modality: e.g. HU).

    Parameters
    ----------
    image1, image2 : sitk.Image or ndarray
        Two images on one grid (numpy: the same shape).
    absolute : bool
        Return ``|u1 - u2|`` instead of ``u1 - u2``.
    window1, window2 : (window, level) or str, optional
        Display window (or preset name) that maps each image onto [0, 1] first; None: raw values.
    spacing : optional
        Voxel size in mm for numpy input (array axis order).

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    img1, img2, back = _pair(image1, image2, spacing)
    d = _unit(img1, window1, "window1") - _unit(img2, window2, "window2")
    return _result(np.abs(d) if absolute else d, img1, back)


# --------------------------------------------------------------------------- display pixels


def _slice2d(image, name):
    img, _ = as_sitk(image, name=name)
    check_scalar(img, name)
    if img.GetDimension() != 2:
        raise ValueError(
            f"`{name}` must be 2D; got size {img.GetSize()}. Take a slice first with "
            "medlab.display.slice_of(image, index, axis)."
        )
    return img


def _slice_pair(first, first_name: str, second, second_name: str, *, hint: str = ""):
    """Two 2D scalar slices of one shape, as SimpleITK images; ``hint`` ends the error."""
    a = _slice2d(first, first_name)
    b = _slice2d(second, second_name)
    check_same_shape(a.GetSize()[::-1], b.GetSize()[::-1], names=(first_name, second_name), hint=hint)
    return a, b


def flicker_frames(slice1, slice2, *, n_frames: int = 2, window1="auto", window2="auto") -> np.ndarray:
    """Display frames that flicker (or cross-fade) between two 2D slices on one grid.

    Frame ``k`` of ``n_frames`` is the alpha blend with ``alpha = k / (n_frames - 1)`` of the
    two windowed slices: 2 frames flick from one to the other; more frames cross-fade. Show
    them in turn (e.g. ``matplotlib.animation``) to spot misalignment as apparent motion.

    Parameters
    ----------
    slice1, slice2 : sitk.Image or (M, N) ndarray
        2D scalar slices of the same shape.
    n_frames : int
        >= 2.
    window1, window2 : str or (float, float)
        Display windows (see :func:`alpha_blend`); default ``'auto'`` (percentile windows).

    Returns
    -------
    (n_frames, M, N) ndarray of uint8
        Grey frames, quantised like :func:`medlab.display.to_uint8`.
    """
    from medlab.display import to_uint8

    n = check_int("n_frames", n_frames, minimum=2)
    img1, img2 = _slice_pair(slice1, "slice1", slice2, "slice2")
    u1, u2 = _unit(img1, window1, "window1"), _unit(img2, window2, "window2")
    return np.stack([to_uint8((1 - k / (n - 1)) * u1 + (k / (n - 1)) * u2, 1.0, 0.5) for k in range(n)])


def color_overlay(base, overlay, *, window=None, level=None, preset=None, colormap: str = "hot",
                   overlay_range: Sequence[float] | None = None, alpha: float = 0.6,
                   threshold: float | None = None) -> np.ndarray:
    """A colour overlay (e.g. PET in SUV) on a grey base slice (CT or MR).

    The base is windowed to grey (``window``/``level`` or ``preset``, as in
    :func:`medlab.display.render`); the overlay is mapped linearly from ``overlay_range``
    (e.g. SUV 0..5) onto ``colormap`` through the same renderer. Where the overlay is above
    ``threshold`` the pixel is ``(1 - alpha) * grey + alpha * colour``; elsewhere the base
    shows alone.

    Parameters
    ----------
    base, overlay : sitk.Image or (M, N) ndarray
        2D slices on one grid (resample the PET onto the CT first).
    window, level, preset
        Base display window (default ``'auto'``).
    colormap : str
        A matplotlib colormap name (``'hot'``, ``'inferno'``, ``'jet'``, ...).
    overlay_range : (float, float), optional
        Overlay values shown from the first to the last colour, in the overlay's units (SUV
        for PET). Default ``(0, 99.5th percentile)``; keep it fixed across patients to compare
        them on one SUV scale.
    alpha : float
        Opacity of the overlay in [0, 1].
    threshold : float, optional
        Overlay values at or below it are transparent (default: the low end of
        ``overlay_range``).

    Returns
    -------
    (M, N, 3) ndarray of uint8
        RGB. Draw the scale with :func:`colorbar`.
    """
    from medlab.display import render

    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]; got {alpha!r}")
    b, o = _slice_pair(base, "base", overlay, "overlay", hint="; resample it onto the base grid first")
    values = sitk.GetArrayFromImage(o).astype(np.float64)
    lo, hi = _overlay_range(values, overlay_range)
    grey = render(b, window, level, preset=preset)
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float64)
    colour = render(values, hi - lo, (hi + lo) / 2.0, colormap=colormap).astype(np.float64)
    t = lo if threshold is None else float(threshold)
    sel = values > t
    rgb[sel] = (1.0 - a) * rgb[sel] + a * colour[sel]
    return np.floor(rgb + 0.5).astype(np.uint8)


def _overlay_range(values, overlay_range):
    if overlay_range is None:
        finite = values[np.isfinite(values)]
        lo, hi = 0.0, float(np.percentile(finite, 99.5)) if finite.size else 1.0
        if not hi > lo:
            hi = lo + 1.0
        return lo, hi
    return check_range("overlay_range", overlay_range)


def label_contours(image, labels, *, window=None, level=None, preset=None, colors=None) -> np.ndarray:
    """Outlines of one or several label images on a grey 2D slice.

    Parameters
    ----------
    image : sitk.Image or (M, N) ndarray
        2D scalar slice.
    labels : label slice, or a list of label slices
        One label image (each label value gets its own colour, as in
        :func:`medlab.display.render`) or several (e.g. the reference mask and a registered
        one), each drawn in one colour. Same shape as ``image``.
    window, level, preset
        Display window of ``image`` (default ``'auto'``).
    colors : sequence of (r, g, b), optional
        One colour per label image in a list (default green, magenta, cyan, yellow), or for a
        single label image a dict ``{label: (r, g, b)}``.

    Returns
    -------
    (M, N, 3) ndarray of uint8
        RGB; contour pixels are labelled pixels with a 4-neighbour of another value, opaque.
    """
    from medlab.display import boundary as _boundary, render

    if not isinstance(labels, list | tuple):
        return render(image, window, level, preset=preset, overlay=labels, overlay_mode="contour",
                      overlay_colors=colors)
    if not labels:
        raise ValueError("`labels` is an empty list")
    cols = _CONTOUR_COLOURS if colors is None else colors
    if len(cols) < len(labels):
        raise ValueError(f"`colors` has {len(cols)} colours for {len(labels)} label images")
    grey = render(image, window, level, preset=preset)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    for k, lab in enumerate(labels):
        arr = sitk.GetArrayFromImage(_slice2d(lab, f"labels[{k}]"))
        if arr.shape != grey.shape:
            raise ValueError(
                f"`labels[{k}]` (shape {arr.shape}) must have the shape of `image` (shape {grey.shape})"
            )
        colour = np.clip(np.asarray(cols[k], dtype=float), 0, 255).astype(np.uint8)
        rgb[_boundary((arr != 0).astype(np.uint8))] = colour
    return rgb


def colorbar(ax, *, colormap: str = "hot", vmin: float = 0.0, vmax: float = 1.0, label: str = "SUV",
             **kwargs):
    """A matplotlib colour bar for an overlay drawn by :func:`color_overlay` on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes the overlay is drawn on.
    colormap : str
        The overlay's matplotlib colour map.
    vmin, vmax : float
        The overlay range the colours span (e.g. SUV).
    label : str
        The bar's label (quantity and unit).
    **kwargs
        Passed to ``matplotlib.figure.Figure.colorbar``.

    Returns
    -------
    matplotlib.colorbar.Colorbar
    """
    import matplotlib as mpl

    if not vmax > vmin:
        raise ValueError(f"`vmax` must be > `vmin`; got {vmin}, {vmax}")
    mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(vmin, vmax), cmap=colormap)
    cb = ax.figure.colorbar(mappable, ax=ax, **kwargs)
    cb.set_label(label)
    return cb


# --------------------------------------------------------------------------- multimodal panels


def fusion_panels(ct, *, mr=None, pet=None, labels=None, transforms: Mapping | None = None,
                  index: int | None = None, axis: str = "axial", ct_preset: str = "abdomen",
                  suv_range: Sequence[float] | None = None, colormap: str = "hot",
                  alpha: float = 0.5, tiles: int = 6) -> dict:
    """Side-by-side fusion views of one patient's CT with MR and/or PET, on the CT grid.

    MR and PET are resampled onto the CT grid (linear) through ``transforms`` (fixed = CT ->
    moving, e.g. ``RegistrationResult.transform``; identity when the scans already share one
    physical space), then one slice of each is rendered in display orientation
    (:func:`medlab.display.slice_of`).

    Parameters
    ----------
    ct : sitk.Image
        3D CT in HU (the reference grid).
    mr, pet : sitk.Image, optional
        3D MR (any units) and PET (SUV).
    labels : sitk.Image or list of sitk.Image, optional
        Label images on the CT grid (e.g. the tumour mask) drawn as contours on every panel.
    transforms : dict, optional
        ``{'mr': transform, 'pet': transform}``, CT -> MR / PET.
    index : int, optional
        Slice number along ``axis`` (default: the slice with the most label voxels, else the
        middle one).
    axis : {'axial', 'coronal', 'sagittal'}
    ct_preset : str
        CT window preset (default soft tissue, 'abdomen' 400/50 HU).
    suv_range : (float, float), optional
        PET colour scale in SUV (default 0 to the 99.5th percentile of the slice).
    colormap, alpha
        PET overlay colour map and opacity.
    tiles : int
        Checkerboard tiles per axis.

    Returns
    -------
    dict of str to (M, N, 3) ndarray of uint8
        ``'CT'``, and with MR ``'MR'``, ``'MR/CT blend'``, ``'MR/CT checkerboard'``; with PET
        ``'PET'`` and ``'PET/CT'`` (colour overlay); plus ``'index'`` (int) and ``'suv_range'``
        when PET is given.
    """
    from medlab.display import render, slice_of
    from medlab.enhance import presets
    from medlab.registration import resample, resample_labels

    if not isinstance(ct, sitk.Image) or ct.GetDimension() != 3:
        raise TypeError("`ct` must be a 3D SimpleITK.Image (the reference grid)")
    check_choice("axis", axis, ("axial", "coronal", "sagittal"))
    transforms = dict(transforms or {})
    unknown = set(transforms) - {"mr", "pet"}
    if unknown:
        raise ValueError(f"`transforms` keys must be 'mr' and/or 'pet'; got {sorted(unknown)}")
    label_list = [] if labels is None else (list(labels) if isinstance(labels, list | tuple) else [labels])
    label_list = [resample_labels(lab, ct) for lab in label_list]
    oriented = sitk.DICOMOrient(ct, "LPS")
    n_axis = {"axial": 2, "coronal": 1, "sagittal": 0}[axis]
    if index is None:
        if label_list:
            lab = sitk.GetArrayFromImage(sitk.DICOMOrient(label_list[0], "LPS")) != 0
            sums = lab.sum(axis=tuple(a for a in range(3) if a != 2 - n_axis))
            index = int(np.argmax(sums)) if sums.any() else oriented.GetSize()[n_axis] // 2
        else:
            index = oriented.GetSize()[n_axis] // 2

    def cut(img):
        return slice_of(sitk.DICOMOrient(img, "LPS"), index, axis)

    ct2 = cut(ct)
    labs2 = [cut(lab) for lab in label_list]
    p = presets()[ct_preset]
    ct_window = (p.window, p.level) if p.window is not None else "auto"

    def outline(rgb):
        if not labs2:
            return rgb
        # draw the contours onto an existing RGB panel
        from medlab.display import boundary as _boundary

        out = rgb.copy()
        for k, lab in enumerate(labs2):
            out[_boundary((sitk.GetArrayFromImage(lab) != 0).astype(np.uint8))] = _CONTOUR_COLOURS[k % 4]
        return out

    def rgb_of(grey):
        return grey if grey.ndim == 3 else np.repeat(grey[:, :, None], 3, axis=2)

    panels: dict = {"CT": outline(rgb_of(render(ct2, preset=ct_preset)))}
    if mr is not None:
        mr2 = cut(resample(mr, ct, transforms.get("mr"), default_value=0.0))
        panels["MR"] = outline(rgb_of(render(mr2)))
        blend = alpha_blend(ct2, mr2, 0.5, window1=ct_window, window2="auto")
        panels["MR/CT blend"] = outline(rgb_of(render(blend, 1.0, 0.5)))
        board = checkerboard(ct2, mr2, tiles=tiles, window1=ct_window, window2="auto")
        panels["MR/CT checkerboard"] = outline(rgb_of(render(board, 1.0, 0.5)))
    if pet is not None:
        pet2 = cut(resample(pet, ct, transforms.get("pet"), default_value=0.0))
        lo, hi = _overlay_range(sitk.GetArrayFromImage(pet2).astype(np.float64), suv_range)
        panels["PET"] = outline(rgb_of(render(pet2, hi - lo, (hi + lo) / 2, colormap="gray_r")))
        panels["PET/CT"] = outline(color_overlay(ct2, pet2, preset=ct_preset, colormap=colormap,
                                                  overlay_range=(lo, hi), alpha=alpha))
        panels["suv_range"] = (lo, hi)
    panels["index"] = int(index)
    return panels
