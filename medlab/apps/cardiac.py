"""Echocardiography cines: grey conversion of color-Doppler frames, cavity (blood pool)
segmentation per frame with temporal consistency, area-time curve, end-diastole/end-systole
and fractional area change.

A cine is one plane over time: the 4D ``SimpleITK.Image`` (x, y, 1, frame) that
``medlab.io.read`` gives for an ultrasound cine (scalar or RGB; results come back on the same
4D grid), a 3D image whose z axis is time (one frame per z index), or a numpy array
``(frames, y, x[, 3])`` with ``spacing=(dy, dx)`` in mm. Seeds are numpy indexes
``(frame, y, x)`` in every case.

=============================== ==============================================================
:func:`echo_grey`               RGB cine -> grey cine; color-Doppler pixels (flowing blood)
                                set to 0 (blood) or kept as luminance
:func:`segment_cavity`          per-frame threshold level set from a seed; each frame starts
                                from the previous frame's cavity and may grow at most
                                ``max_step_mm``; opening, holes filled, the seed's component
:func:`cardiac_phases`          ED (largest area), ES (smallest), fractional area change
=============================== ==============================================================

Examples
--------
>>> from medlab import datasets
>>> from medlab.apps import cardiac
>>> ph = datasets.echo_cine_phantom(n_frames=12, seed=0)
>>> res = cardiac.segment_cavity(ph.image, seed_index=(0, *ph.truth["centre_index"]))
>>> ph_fac = cardiac.cardiac_phases(res["areas_mm2"])["fac"]
>>> abs(ph_fac - ph.truth["fac"]) < 0.05
True
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medlab._image import as_sitk, check_scalar
from medlab._options import check_choice, check_int, check_positive
from medlab.segmentation import auto_threshold, threshold_level_set

__all__ = ["cardiac_phases", "echo_grey", "segment_cavity"]


def _cine(cine, spacing, *, vector):
    """(sitk image, back, array (frames, y, x[, c]), (dy, dx) mm) of a cine."""
    if not isinstance(cine, sitk.Image):
        arr = np.asarray(cine)
        vec = vector and arr.ndim == 4
        sp = None if spacing is None else (1.0, *np.broadcast_to(np.asarray(spacing, float), (2,)))
        img, back = as_sitk(arr, spacing=sp, name="cine", vector=vec)
    elif cine.GetDimension() == 4:
        img, back = _cine_4d(cine, spacing)
    else:
        # a 3D SimpleITK image is a volume (z is space): taking its slices for frames would be
        # silently wrong, so only the layout medlab.io.read gives a cine (or a numpy array) is a cine
        raise ValueError(
            f"`cine` is a {cine.GetDimension()}D SimpleITK image (size {cine.GetSize()}); a cine is 4D "
            "(x, y, 1, frame) as medlab.io.read gives it, or a numpy array (frames, y, x) with `spacing`"
        )
    if img.GetDimension() != 3:
        raise ValueError(f"a numpy `cine` must be (frames, y, x[, 3]); got {img.GetDimension()}D")
    if img.GetSize()[2] < 2:
        raise ValueError(f"`cine` must have at least 2 frames (z size); got {img.GetSize()}")
    return img, back, sitk.GetArrayFromImage(img), tuple(img.GetSpacing()[1::-1])


def _cine_4d(cine: sitk.Image, spacing):
    """A cine as ``medlab.io.read`` gives it, 4D (x, y, 1, frame), as the 3D working image
    (frames along z, z step 1) and a ``back`` that returns 3D results on the 4D grid."""
    if spacing is not None:
        raise ValueError(f"`spacing` is only for numpy input; `cine` is a SimpleITK.Image with spacing {cine.GetSpacing()}")
    if cine.GetSize()[2] != 1:
        raise ValueError(
            f"`cine` is 4D with {cine.GetSize()[2]} slices per volume (size {cine.GetSize()}); a cine is one plane "
            "over time: (x, y, 1, frame) as medlab.io.read gives it, or (frames, y, x) along z"
        )
    vector = cine.GetNumberOfComponentsPerPixel() > 1
    img = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(cine)[:, 0], isVector=vector)
    d = np.asarray(cine.GetDirection(), float).reshape(4, 4)[:3, :3]
    img.SetSpacing((*cine.GetSpacing()[:2], 1.0))
    img.SetOrigin(cine.GetOrigin()[:3])
    img.SetDirection(d.ravel().tolist())

    def back(result):
        if not isinstance(result, sitk.Image):
            return result
        out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(result)[:, np.newaxis],
                                     isVector=result.GetNumberOfComponentsPerPixel() > 1)
        out.CopyInformation(cine)
        return out

    return img, back


def echo_grey(cine, *, color="blood", chroma_threshold=40.0, spacing=None):
    """Grey-level cine from an RGB (color-Doppler) echo cine.

    Parameters
    ----------
    cine : sitk.Image or (T, Y, X, 3) ndarray
        RGB cine: 4D (x, y, 1, frame) as read by ``medlab.io.read``, or an array (frames
        along axis 0); a scalar cine is returned as float32 unchanged.
    color : {'blood', 'luminance'}
        What to do with color pixels (``max(R, G, B) - min(R, G, B) > chroma_threshold``):
        color Doppler shows flowing blood, so 'blood' sets them to 0 (the grey level of the
        blood pool); 'luminance' keeps their mean of R, G, B.
    chroma_threshold : float
        Grey pixels have R = G = B; JPEG compression leaves small differences.
    spacing : float or (dy, dx), optional
        Pixel size in mm for numpy input.

    Returns
    -------
    grey : sitk.Image or ndarray of float32
        Mean of R, G, B (0-255), color pixels per ``color``.
    color_mask : sitk.Image or ndarray of uint8
        1 where a pixel is colored.
    """
    check_choice("color", color, ("blood", "luminance"))
    chroma = check_positive("chroma_threshold", chroma_threshold, allow_zero=True)
    img, back, arr, _ = _cine(cine, spacing, vector=True)
    if arr.ndim == 3:
        grey = arr.astype(np.float32)
        col = np.zeros(arr.shape, np.uint8)
    else:
        a = arr.astype(np.float32)
        col = (a.max(axis=-1) - a.min(axis=-1)) > chroma
        grey = a.mean(axis=-1)
        if color == "blood":
            grey[col] = 0.0
        col = col.astype(np.uint8)
    out = []
    for x in (grey, col):
        o = sitk.GetImageFromArray(x)
        o.SetSpacing(img.GetSpacing())
        o.SetOrigin(img.GetOrigin())
        o.SetDirection(img.GetDirection())
        out.append(back(o))
    return out[0], out[1]


def _disc(shape, centre, radius_px):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius_px**2


def _ball_px(radius_mm, sp):
    r = max(1, round(radius_mm / sp))
    yy, xx = np.ogrid[-r : r + 1, -r : r + 1]
    return (yy**2 + xx**2) <= r * r


def segment_cavity(cine, *, seed_index, threshold=None, sigma_mm=0.8, sigma_frames=0.7,
                   curvature=3.0, iterations=300, max_step_mm=4.0, opening_mm=3.0,
                   window_mm=50.0, shrink=1, progress=None, spacing=None) -> dict:
    """Segment a dark cardiac cavity (blood pool) in every frame of a cine.

    Steps: the cine is cropped to a square of half-size ``window_mm`` around the seed,
    optionally averaged over ``shrink`` x ``shrink`` pixels, smoothed in space
    (``sigma_mm``) and time (``sigma_frames``, against speckle and frame-to-frame dropout).
    Frame 0 starts from a 5 mm disc at the seed; each later frame starts from the previous
    cavity eroded by 2 mm. A threshold level set
    (:func:`medlab.segmentation.threshold_level_set`, range ``[-inf, threshold]``, with a
    curvature term against leaks through gaps in the wall) grows the region; it is then
    limited to the previous cavity dilated by ``max_step_mm`` (walls move a few mm per frame),
    holes are filled, an opening of ``opening_mm`` cuts thin tongues, and the connected
    component containing the frame's seed is kept. The frame's seed is ``seed_index`` when it
    lies in the region, else the most interior pixel of the previous cavity.

    Parameters
    ----------
    cine : sitk.Image or (T, Y, X) ndarray
        Scalar cine (e.g. from :func:`echo_grey`): 4D (x, y, 1, frame), or an array (frames
        along axis 0); blood dark.
    seed_index : (t, y, x)
        A pixel inside the cavity as a numpy index of the cine (frame, row, column), like
        every index of a 3D image in medlab. Frame ``t`` is where it was picked: its smoothed
        frame sets the default ``threshold`` and must be dark at the seed. The in-plane
        position seeds frame 0 and every frame where it lies in the region, ideally all.
    threshold : float, optional
        Upper grey level of blood in the smoothed cine; None: Otsu's threshold
        (:func:`medlab.segmentation.auto_threshold`) of the seed's smoothed frame inside the
        window.
    sigma_mm, sigma_frames : float
        Gaussian smoothing in the plane (mm) and over time (frames); 0: none.
    curvature : float
        Curvature weight of the level set.
    iterations : int
        Level-set iterations per frame (three times as many for the first frame).
    max_step_mm : float
        Largest outward wall motion allowed between consecutive frames (mm).
    opening_mm : float
        Radius of the opening applied to each cavity (mm); 0: none.
    window_mm : float
        Half-size of the analysed square around the seed (mm).
    shrink : int
        Average ``shrink`` x ``shrink`` pixels before segmenting (speed on large frames);
        the masks are returned on the input grid.
    progress : callable, optional
        ``progress(fraction, message)`` after each frame; return False to stop
        (InterruptedError).
    spacing : float or (dy, dx), optional
        Pixel size in mm for numpy input.

    Returns
    -------
    dict
        ``mask``: uint8 cine of the cavities (same kind and grid as ``cine``);
        ``areas_mm2`` (T,) cavity area per frame; ``seeds_index`` list of the (t, y, x) seed
        used in each frame; ``threshold`` used; ``pixel_spacing_mm`` (dy, dx).
    """
    img, back, arr, (dy, dx) = _cine(cine, spacing, vector=False)
    check_scalar(img, "cine")
    T, Y, X = arr.shape
    try:
        index = tuple(int(v) for v in seed_index)
    except (TypeError, ValueError):
        raise ValueError(f"`seed_index` must be a (t, y, x) index of the cine; got {seed_index!r}") from None
    if len(index) == 2:
        raise ValueError(
            f"`seed_index` must be a (t, y, x) index of the cine (frame, row, column), like every "
            f"index of a 3D image; got the in-plane (y, x) {index}. Give (0, {index[0]}, {index[1]}) "
            "for a seed picked in the first frame.")
    if len(index) != 3:
        raise ValueError(f"`seed_index` must be a (t, y, x) index of the cine; got {seed_index!r}")
    st, sy, sx = index
    if not (0 <= st < T and 0 <= sy < Y and 0 <= sx < X):
        raise ValueError(f"`seed_index` {index} lies outside the cine (t < {T}, y < {Y}, x < {X})")
    sig, sigt = (check_positive(n, v, allow_zero=True) for n, v in
                 (("sigma_mm", sigma_mm), ("sigma_frames", sigma_frames)))
    curv = check_positive("curvature", curvature, allow_zero=True)
    its = check_int("iterations", iterations, minimum=1)
    step = check_positive("max_step_mm", max_step_mm)
    opening = check_positive("opening_mm", opening_mm, allow_zero=True)
    win = check_positive("window_mm", window_mm)
    f = check_int("shrink", shrink, minimum=1)

    # crop (a multiple of ``f`` pixels) around the seed
    hy, hx = math.ceil(win / dy / f) * f, math.ceil(win / dx / f) * f
    y0, x0 = max(sy - hy, 0), max(sx - hx, 0)
    y1, x1 = min(sy + hy, Y), min(sx + hx, X)
    y1, x1 = y0 + (y1 - y0) // f * f, x0 + (x1 - x0) // f * f
    crop = arr[:, y0:y1, x0:x1].astype(np.float32)
    if f > 1:
        crop = crop.reshape(T, (y1 - y0) // f, f, (x1 - x0) // f, f).mean(axis=(2, 4))
    py, px = dy * f, dx * f
    seed = (min((sy - y0) // f, crop.shape[1] - 1), min((sx - x0) // f, crop.shape[2] - 1))
    sm = ndimage.gaussian_filter(crop, (sigt, sig / py, sig / px), mode="nearest")
    if threshold is None:
        threshold = auto_threshold(sm[st], "otsu")
    threshold = float(threshold)
    if not sm[st][seed] < threshold:
        raise ValueError(
            f"the seed {index} is brighter ({sm[st][seed]:.1f}) than `threshold` "
            f"({threshold:g}) in its smoothed frame: put it inside the dark cavity"
        )
    if threshold <= 0:
        raise ValueError(f"`threshold` must be > 0 (blood darker than tissue); got {threshold:g}")
    # ITK's threshold speed is in intensity units: rescale so that ``threshold`` is 50, which
    # makes the balance with ``curvature`` independent of the image's intensity scale
    sm = sm * np.float32(50.0 / threshold)
    iso = (py + px) / 2
    grow = _ball_px(step, iso)
    open_st = _ball_px(opening, iso) if opening > 0 else None
    erode_px = max(1, round(2.0 / iso))
    prev = _disc(sm.shape[1:], seed, 5.0 / iso)
    lower = float(min(sm.min(), 0.0)) - 1.0  # blood: everything below ``threshold``
    masks = np.zeros(sm.shape, bool)
    seeds = []
    for k in range(T):
        init = ndimage.binary_erosion(prev, iterations=erode_px) if k else prev
        if not init.any():
            init = prev
        m = threshold_level_set(sm[k], init.astype(np.uint8), lower=lower, upper=50.0,
                                curvature=curv, iterations=its if k else 3 * its,
                                spacing=(py, px)).astype(bool)
        if k:
            m &= ndimage.binary_dilation(prev, grow)
        m = ndimage.binary_fill_holes(m)
        if open_st is not None:
            m = ndimage.binary_opening(m, open_st)
        s = seed
        if not m[s]:
            edt = ndimage.distance_transform_edt(prev)
            s = tuple(int(v) for v in np.unravel_index(np.argmax(edt * m), m.shape)) if m.any() else seed
        lab, _ = ndimage.label(m)
        m = lab == lab[s] if lab[s] else np.zeros_like(m)
        if not m.any():
            raise ValueError(f"frame {k}: no cavity below `threshold` {threshold:g} at the seed")
        masks[k] = m
        prev = m
        seeds.append((k, int(s[0] * f + y0 + (f - 1) // 2), int(s[1] * f + x0 + (f - 1) // 2)))
        if progress is not None and progress((k + 1) / T, f"frame {k + 1}/{T}") is False:
            raise InterruptedError(f"segment_cavity stopped by the `progress` callback at frame {k + 1}")
    full = np.zeros((T, Y, X), np.uint8)
    up = np.repeat(np.repeat(masks, f, axis=1), f, axis=2) if f > 1 else masks
    full[:, y0:y1, x0:x1] = up
    areas = full.reshape(T, -1).sum(axis=1) * dy * dx
    out = sitk.GetImageFromArray(full)
    out.CopyInformation(img)
    return {"mask": back(out), "areas_mm2": areas.astype(np.float64), "seeds_index": seeds,
            "threshold": threshold, "pixel_spacing_mm": (dy, dx)}


def cardiac_phases(areas_mm2, *, frame_time_ms=None) -> dict:
    """End-diastole, end-systole and fractional area change of an area-time curve.

    Parameters
    ----------
    areas_mm2 : (T,) sequence of float
        Cavity area per frame (any area unit; FAC is a ratio).
    frame_time_ms : float, optional
        Time between frames (DICOM FrameTime); gives the heart rate from the systoles.

    Returns
    -------
    dict
        ``ed_frame`` (largest area), ``es_frame`` (smallest), ``ed_area``, ``es_area``,
        ``fac = (ed_area - es_area) / ed_area``; ``systole_frames``: every local minimum of
        the curve below the midpoint of its range (one per beat); ``diastole_frames``: every
        local maximum above it; with ``frame_time_ms``, ``heart_rate_bpm`` from the mean
        interval between consecutive systoles (None with fewer than two).
    """
    a = np.asarray(areas_mm2, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"`areas_mm2` must be a 1D sequence of at least 2 areas; got shape {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() <= 0:
        raise ValueError("`areas_mm2` must be finite, >= 0 and not all 0")
    ed, es = int(np.argmax(a)), int(np.argmin(a))
    mid = (a.max() + a.min()) / 2
    inner = range(1, a.size - 1)
    minima = [k for k in inner if a[k] < mid and a[k] <= a[k - 1] and a[k] < a[k + 1]]
    maxima = [k for k in inner if a[k] > mid and a[k] >= a[k - 1] and a[k] > a[k + 1]]
    out = {"ed_frame": ed, "es_frame": es, "ed_area": float(a[ed]), "es_area": float(a[es]),
           "fac": float((a[ed] - a[es]) / a[ed]), "systole_frames": minima,
           "diastole_frames": maxima}
    if frame_time_ms is not None:
        ft = check_positive("frame_time_ms", frame_time_ms)
        out["heart_rate_bpm"] = (60000.0 / (float(np.mean(np.diff(minima))) * ft)
                                 if len(minima) >= 2 else None)
    return out
