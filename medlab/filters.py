"""Denoising, bias-field correction, gradients and edge maps.

Every function takes a ``SimpleITK.Image`` or a numpy array indexed ``(z, y, x)`` (2D:
``(y, x)``, with an optional ``spacing`` in mm in the same order) and returns the same kind on
the same grid; inputs are never modified. Sizes named ``*_mm`` are physical (they use the voxel
spacing); sizes named ``*_voxels`` are not. Results are ``float32`` unless a docstring says
otherwise.

Long-running filters (:func:`n4_bias_correction`, :func:`anisotropic_diffusion`) take a
``progress`` callable, called as ``progress(fraction, message)`` with ``fraction`` in
``[0, 1]``; if it returns ``False`` the filter stops and :class:`InterruptedError` is raised.
A Jupyter kernel interrupt also stops them at the next iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import SimpleITK as sitk
from skimage import restoration as ski_restoration

from medlab._histogram import histogram_threshold
from medlab._image import as_sitk, check_scalar, copy_geometry, mask_array
from medlab._options import check_int, check_positive, is_int
from medlab._progress import run_filter

__all__ = [
    "gaussian",
    "median",
    "bilateral",
    "anisotropic_diffusion",
    "nl_means",
    "estimate_noise_std",
    "n4_bias_correction",
    "gradient_magnitude",
    "sobel",
    "canny",
    "laplacian_of_gaussian",
]

Progress = Callable[[float, str], "bool | None"]

# Donoho & Johnstone's MAD-to-sigma factor: the median of |N(0, 1)|.
_MAD_TO_SIGMA = 0.6744897501960817


def _float_image(image, spacing, name="image"):
    """``(original sitk image, float32 copy, back)`` for a scalar image."""
    img, back = as_sitk(image, spacing=spacing, name=name)
    check_scalar(img, name)
    f = img if img.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(img, sitk.sitkFloat32)
    return img, f, back


def _per_axis(name: str, value, ndim: int, *, allow_zero=False) -> tuple[float, ...]:
    """A positive scalar or ``ndim`` positive values (array axis order) as a tuple."""
    vals = (value,) * ndim if np.isscalar(value) else tuple(value)
    if len(vals) != ndim:
        raise ValueError(
            f"`{name}` must be a number or {ndim} numbers (array axis order); got {value!r}"
        )
    return tuple(check_positive(name, v, allow_zero=allow_zero) for v in vals)


def _check_min_size(img: sitk.Image, minimum: int, what: str):
    size = img.GetSize()[::-1]
    if min(size) < minimum:
        raise ValueError(
            f"`image` (shape {size}) must have at least {minimum} voxels along every axis for {what}"
        )


# --------------------------------------------------------------------------- denoising


def gaussian(image, sigma_mm: float | Sequence[float], *, spacing=None):
    """Gaussian smoothing with a physical standard deviation.

    Uses ``sitk.SmoothingRecursiveGaussian`` (Deriche's recursive approximation; boundary
    handled by extending the edge values), which works in physical units, so on an anisotropic
    grid each axis gets ``sigma_mm / spacing`` voxels.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, at least 4 voxels along every axis.
    sigma_mm : float or sequence of float
        Standard deviation in mm, > 0; one value, or one per axis in array axis order.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input (default 1 mm).

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    img, f, back = _float_image(image, spacing)
    sig = _per_axis("sigma_mm", sigma_mm, img.GetDimension())
    _check_min_size(img, 4, "recursive Gaussian filtering")
    out = sitk.SmoothingRecursiveGaussian(f, list(sig[::-1]), False)
    return back(out)


def median(image, radius_voxels=None, *, radius_mm=None, spacing=None):
    """Median filter over a box neighbourhood.

    Give the neighbourhood either in voxels or in mm (converted per axis with the spacing and
    rounded to whole voxels, at least 0); the box spans ``2 * radius + 1`` voxels per axis.
    With neither, ``radius_voxels=1``.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    radius_voxels : int or sequence of int, optional
        Radius in voxels, one value or one per axis (array axis order).
    radius_mm : float or sequence of float, optional
        Radius in mm, one value or one per axis (array axis order).
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray
        Same pixel type as ``image`` (a median only picks existing values).
    """
    img, back = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    nd = img.GetDimension()
    if radius_voxels is not None and radius_mm is not None:
        raise ValueError("give `radius_voxels` or `radius_mm`, not both")
    if radius_mm is not None:
        r_mm = _per_axis("radius_mm", radius_mm, nd, allow_zero=True)
        spacing_zyx = img.GetSpacing()[::-1]
        radius = tuple(int(np.floor(r / s + 0.5)) for r, s in zip(r_mm, spacing_zyx, strict=True))
    else:
        rv = 1 if radius_voxels is None else radius_voxels
        radius = (rv,) * nd if np.isscalar(rv) else tuple(rv)
        if len(radius) != nd or not all(is_int(r) and r >= 0 for r in radius):
            raise ValueError(
                f"`radius_voxels` must be an int >= 0 or {nd} of them (array axis order); "
                f"got {radius_voxels!r}"
            )
    return back(sitk.Median(img, [int(r) for r in radius[::-1]]))


def bilateral(image, *, domain_sigma_mm: float, range_sigma: float, spacing=None):
    """Edge-preserving bilateral filter (``sitk.Bilateral``).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    domain_sigma_mm : float
        Spatial standard deviation in mm (ITK applies it with the voxel spacing).
    range_sigma : float
        Intensity standard deviation in image units (e.g. HU); differences much larger than
        this are not averaged across.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    d = check_positive("domain_sigma_mm", domain_sigma_mm)
    r = check_positive("range_sigma", range_sigma)
    img, f, back = _float_image(image, spacing)
    return back(sitk.Bilateral(f, d, r))


def anisotropic_diffusion(
    image,
    *,
    time_step: float | None = None,
    conductance: float = 3.0,
    iterations: int = 5,
    progress: Progress | None = None,
    spacing=None,
):
    """Curvature anisotropic diffusion (``sitk.CurvatureAnisotropicDiffusion``).

    Smooths within regions while keeping edges (modified curvature diffusion, Whitaker & Xue).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    time_step : float, optional
        Step in mm-based units; at most ``min(spacing) / 2 ** (ndim + 1)`` for a stable
        explicit scheme, which is also the default.
    conductance : float
        Edge sensitivity, > 0; lower keeps more edges.
    iterations : int
        Number of diffusion steps, >= 1.
    progress : callable, optional
        ``progress(fraction, message)`` after each iteration; return False to stop.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32

    Raises
    ------
    ValueError
        If ``time_step`` exceeds the stable limit.
    InterruptedError
        If ``progress`` returned False.
    """
    conductance = check_positive("conductance", conductance)
    iterations = check_int("iterations", iterations, minimum=1)
    img, f, back = _float_image(image, spacing)
    limit = min(img.GetSpacing()) / 2 ** (img.GetDimension() + 1)
    if time_step is None:
        time_step = limit
    else:
        time_step = check_positive("time_step", time_step)
        if time_step > limit * (1 + 1e-9):
            raise ValueError(
                f"`time_step` must be <= min(spacing) / 2**(ndim + 1) = {limit:g} for a stable "
                f"solution on this grid; got {time_step!r}"
            )
    filt = sitk.CurvatureAnisotropicDiffusionImageFilter()
    filt.SetTimeStep(time_step)
    filt.SetConductanceParameter(conductance)
    filt.SetNumberOfIterations(iterations)
    count = [0]

    def describe():
        count[0] += 1
        return count[0] / iterations, f"iteration {count[0]}/{iterations}"

    return back(run_filter(filt, [f], progress, describe, "anisotropic_diffusion"))


def estimate_noise_std(image, *, spacing=None) -> float:
    """Robust estimate of the standard deviation of additive white Gaussian noise.

    Donoho's median-absolute-deviation estimator on the finest all-high-pass Haar wavelet band
    (the idea of ``skimage.restoration.estimate_sigma``, which needs PyWavelets and uses a db2
    wavelet): ``sigma = median(|d|) / 0.6745``, where ``d`` is the orthonormal Haar detail of
    every 2x2 (2x2x2) block. Smooth structure (up to bilinear) cancels in ``d``; edges
    inflate it only slightly because the median ignores them.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, at least 2 voxels along every axis.
    spacing : optional
        Accepted for symmetry; the estimate does not depend on it.

    Returns
    -------
    float
        Noise standard deviation in image intensity units.
    """
    img, _ = as_sitk(image, spacing=spacing)
    check_scalar(img, "image")
    _check_min_size(img, 2, "noise estimation")
    arr = sitk.GetArrayViewFromImage(img)
    nd = arr.ndim
    arr = arr[tuple(slice(0, (n // 2) * 2) for n in arr.shape)].astype(np.float64)
    detail = np.zeros(tuple(n // 2 for n in arr.shape))
    for corner in np.ndindex(*(2,) * nd):
        sign = -1.0 if sum(corner) % 2 else 1.0
        detail += sign * arr[tuple(slice(c, None, 2) for c in corner)]
    detail /= 2 ** (nd / 2)
    return float(np.median(np.abs(detail)) / _MAD_TO_SIGMA)


def nl_means(
    image,
    *,
    h: float | None = None,
    sigma: float | None = None,
    patch_size: int = 5,
    patch_distance: int | None = None,
    fast_mode: bool = True,
    spacing=None,
):
    """Non-local means denoising (``skimage.restoration.denoise_nl_means``), 2D or 3D.

    Patches are in voxels (the filter is not spacing-aware).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    h : float, optional
        Filtering strength in intensity units; default ``0.8 * sigma`` (fast mode) or
        ``0.6 * sigma``, scikit-image's recommendation when ``sigma`` is given.
    sigma : float, optional
        Noise standard deviation in intensity units; default :func:`estimate_noise_std`.
    patch_size : int
        Patch width in voxels.
    patch_distance : int, optional
        Search radius in voxels; default 6 in 2D and 3 in 3D (the 3D cost grows with
        ``(2 * patch_distance + 1) ** 3``).
    fast_mode : bool
        scikit-image's fast (uniform patch weights) algorithm.
    spacing : float or sequence of float, optional
        Voxel size in mm for numpy input (kept on the result, not used).

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    patch_size = check_int("patch_size", patch_size, minimum=1)
    img, f, back = _float_image(image, spacing)
    nd = img.GetDimension()
    if patch_distance is None:
        patch_distance = 6 if nd == 2 else 3
    patch_distance = check_int("patch_distance", patch_distance, minimum=1)
    if sigma is None:
        sigma = estimate_noise_std(f)
    else:
        sigma = check_positive("sigma", sigma, allow_zero=True)
    if h is None:
        h = (0.8 if fast_mode else 0.6) * sigma
        if not h > 0:
            return back(f)  # no noise measured: nothing to remove
    h = check_positive("h", h)
    arr = sitk.GetArrayFromImage(f)
    out = ski_restoration.denoise_nl_means(
        arr,
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=h,
        sigma=sigma,
        fast_mode=bool(fast_mode),
        preserve_range=True,
        channel_axis=None,
    )
    return back(copy_geometry(out.astype(np.float32, copy=False), img))


# --------------------------------------------------------------------------- bias field


def n4_bias_correction(
    image,
    *,
    mask=None,
    shrink_factor: int | Sequence[int] = 4,
    iterations: Sequence[int] = (50, 50, 50, 50),
    convergence_threshold: float = 1e-3,
    control_points: int = 4,
    return_field: bool = False,
    progress: Progress | None = None,
    spacing=None,
):
    """N4 bias-field correction (Tustison et al. 2010) for MR-like images.

    The image is modelled as ``image = corrected * field`` with a smooth multiplicative
    ``field`` (a B-spline in log space). The field is fitted on an image shrunk by
    ``shrink_factor`` for speed, then evaluated on the full grid.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image with positive intensities in the object (MR, not CT in HU).
    mask : sitk.Image or ndarray, optional
        Voxels used to fit the field (nonzero = use). Default: Otsu threshold of the image
        (voxels above it). Voxels <= 0 are always left out (the model is logarithmic).
    shrink_factor : int or sequence of int
        Downsampling per axis (array axis order) for the fit, >= 1; capped per axis so the
        shrunk image keeps at least 8 voxels along that axis (or its full size if smaller).
    iterations : sequence of int
        Maximum iterations at each fitting level; its length is the number of levels (the
        B-spline mesh doubles at each).
    convergence_threshold : float
        Stop a level when the change of the field falls below this.
    control_points : int
        B-spline control points per axis at the first level, >= 4 (spline order 3 + 1).
    return_field : bool
        Also return the multiplicative bias field.
    progress : callable, optional
        ``progress(fraction, message)`` after each iteration; return False to stop.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    corrected : sitk.Image or ndarray of float32
        ``image / field``.
    field : sitk.Image or ndarray of float32
        Only with ``return_field=True``; ``exp`` of N4's log bias field (1 = no bias).

    Raises
    ------
    InterruptedError
        If ``progress`` returned False.

    Notes
    -----
    With the defaults a 128^3 volume takes about a second on 2 cores.
    """
    img, f, back = _float_image(image, spacing)
    nd = img.GetDimension()
    size = img.GetSize()  # (x, y, z)
    shrink = _per_axis_int("shrink_factor", shrink_factor, nd, minimum=1)[::-1]  # (x, y, z)
    shrink = [max(1, min(s, n // 8)) if n >= 8 else 1 for s, n in zip(shrink, size, strict=True)]
    iterations = list(iterations) if not np.isscalar(iterations) else [iterations]
    if not iterations or not all(is_int(i) and i >= 1 for i in iterations):
        raise ValueError(
            f"`iterations` must be a non-empty sequence of ints >= 1 (one per level); "
            f"got {iterations!r}"
        )
    convergence_threshold = check_positive("convergence_threshold", convergence_threshold)
    control_points = check_int("control_points", control_points, minimum=4)

    arr = sitk.GetArrayViewFromImage(f)
    if mask is None:
        finite = arr[np.isfinite(arr)]
        if finite.size == 0 or finite.min() == finite.max():
            raise ValueError("`image` is constant (or not finite): no Otsu mask for N4; give `mask`")
        m = arr > histogram_threshold(finite, "otsu", 200)
    else:
        m = mask_array(mask, image)
    m = m & (arr > 0)
    if not m.any():
        raise ValueError("the mask for N4 selects no voxels with intensity > 0")
    mask_img = copy_geometry(m.astype(np.uint8), img)

    small = sitk.Shrink(f, shrink)
    small_mask = sitk.Shrink(mask_img, shrink)
    filt = sitk.N4BiasFieldCorrectionImageFilter()
    filt.SetMaximumNumberOfIterations([int(i) for i in iterations])
    filt.SetConvergenceThreshold(convergence_threshold)
    filt.SetNumberOfControlPoints([control_points] * nd)
    n_levels = len(iterations)

    def describe():
        level, it = filt.GetCurrentLevel(), filt.GetElapsedIterations()
        fraction = (level + min(it / iterations[level], 1.0)) / n_levels
        return fraction, (
            f"level {level + 1}/{n_levels}, iteration {it}, "
            f"convergence {filt.GetCurrentConvergenceMeasurement():.2e}"
        )

    run_filter(filt, [small, small_mask], progress, describe, "n4_bias_correction")
    field = sitk.Exp(filt.GetLogBiasFieldAsImage(f))
    field = sitk.Cast(field, sitk.sitkFloat32)
    corrected = sitk.Cast(sitk.Divide(f, field), sitk.sitkFloat32)
    if return_field:
        return back(corrected), back(field)
    return back(corrected)


def _per_axis_int(name, value, ndim, *, minimum):
    vals = (value,) * ndim if np.isscalar(value) else tuple(value)
    if len(vals) != ndim or not all(is_int(v) and v >= minimum for v in vals):
        raise ValueError(
            f"`{name}` must be an int >= {minimum} or {ndim} of them (array axis order); "
            f"got {value!r}"
        )
    return tuple(int(v) for v in vals)


# --------------------------------------------------------------------------- gradients, edges


def gradient_magnitude(image, sigma_mm: float | None = None, *, spacing=None):
    """Gradient magnitude in intensity units per mm.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    sigma_mm : float, optional
        If given, the derivative of a Gaussian of this standard deviation in mm
        (``sitk.GradientMagnitudeRecursiveGaussian``); otherwise central differences
        (``sitk.GradientMagnitude``), both with the voxel spacing.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        ``|grad image|``, e.g. HU/mm.
    """
    img, f, back = _float_image(image, spacing)
    if sigma_mm is None:
        out = sitk.GradientMagnitude(f, True)
    else:
        sigma = check_positive("sigma_mm", sigma_mm)
        _check_min_size(img, 4, "recursive Gaussian derivatives")
        out = sitk.GradientMagnitudeRecursiveGaussian(f, sigma, False)
    return back(sitk.Cast(out, sitk.sitkFloat32))


def sobel(image, *, spacing=None):
    """Sobel gradient magnitude, scaled to intensity units per mm.

    Each axis derivative uses the Sobel kernel (central difference along the axis, 1-2-1
    smoothing across it), divided by its weight ``2 * spacing * 4 ** (ndim - 1)`` so that a
    linear ramp gives its slope per mm; borders repeat the edge value.

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
    """
    from scipy import ndimage as ndi  # lazy: scipy.ndimage would more than double the import time

    img, f, back = _float_image(image, spacing)
    arr = sitk.GetArrayViewFromImage(f)
    sp = img.GetSpacing()[::-1]
    acc = np.zeros(arr.shape, np.float32)
    for axis, s in enumerate(sp):
        d = ndi.sobel(arr, axis=axis, mode="nearest", output=np.float32)
        d *= 1.0 / (2.0 * s * 4 ** (arr.ndim - 1))
        acc += d * d
    return back(copy_geometry(np.sqrt(acc), img))


def canny(
    image,
    *,
    sigma_mm: float = 1.0,
    low: float | None = None,
    high: float | None = None,
    spacing=None,
):
    """Canny edges in 2D or 3D, with physical smoothing and thresholds.

    Steps: Gaussian-derivative gradient with ``sigma_mm`` (``sitk.GradientRecursiveGaussian``,
    per mm); non-maximum suppression along the gradient direction (magnitude interpolated
    linearly one voxel step ahead and behind, the step taken in physical space); hysteresis:
    keep connected (full connectivity) candidate voxels ``>= low`` that touch one ``>= high``.
    Thresholds are in intensity units per mm, so the same physical edge gives the same result
    on any grid (unlike ITK's ``CannyEdgeDetection``, whose thresholds are per voxel).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, at least 4 voxels along every axis.
    sigma_mm : float
        Gaussian standard deviation in mm.
    low, high : float, optional
        Hysteresis thresholds on the gradient magnitude, intensity/mm, ``low <= high``.
        Default 0.1 and 0.2 times the largest gradient magnitude in the image.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of uint8
        1 on edges, 0 elsewhere.
    """
    from scipy import ndimage as ndi  # lazy: scipy.ndimage would more than double the import time

    sigma = check_positive("sigma_mm", sigma_mm)
    img, f, back = _float_image(image, spacing)
    _check_min_size(img, 4, "recursive Gaussian derivatives")
    nd = img.GetDimension()
    grad = sitk.GradientRecursiveGaussian(f, sigma, False, False)
    g = sitk.GetArrayViewFromImage(grad)[..., ::-1]  # components in array axis order, per mm
    mag = np.sqrt(np.einsum("...i,...i->...", g, g, dtype=np.float64)).astype(np.float32)
    gmax = float(mag.max())
    low = 0.1 * gmax if low is None else check_positive("low", low, allow_zero=True)
    high = 0.2 * gmax if high is None else check_positive("high", high, allow_zero=True)
    if low > high:
        raise ValueError(f"`low` ({low!r}) must be <= `high` ({high!r})")
    edges = np.zeros(mag.shape, bool)
    cand = np.nonzero((mag >= low) & (mag > 0))
    if cand[0].size:
        # unit gradient direction in mm -> voxel steps, scaled so the longest step is 1 voxel
        sp = np.array(img.GetSpacing()[::-1])
        step = g[cand].astype(np.float64) / sp
        step /= np.abs(step).max(axis=1, keepdims=True)
        coords = np.array(cand, dtype=np.float64)
        ahead = ndi.map_coordinates(mag, coords + step.T, order=1, mode="nearest")
        behind = ndi.map_coordinates(mag, coords - step.T, order=1, mode="nearest")
        m0 = mag[cand]
        keep = (m0 >= ahead) & (m0 > behind)
        edges[tuple(c[keep] for c in cand)] = True
        labels, n = ndi.label(edges, structure=np.ones((3,) * nd, bool))
        strong = np.unique(labels[edges & (mag >= high)])
        edges = np.isin(labels, strong[strong > 0])
    return back(copy_geometry(edges.astype(np.uint8), img))


def laplacian_of_gaussian(image, sigma_mm: float, *, normalize: bool = False, spacing=None):
    """Laplacian of Gaussian in intensity units per mm^2 (``sitk.LaplacianRecursiveGaussian``).

    Parameters
    ----------
    image : sitk.Image or (M, N[, P]) ndarray
        Scalar image, at least 4 voxels along every axis.
    sigma_mm : float
        Gaussian standard deviation in mm.
    normalize : bool
        Multiply by ``sigma_mm ** 2`` (scale-normalised, for blob detection across scales);
        the result is then in intensity units.
    spacing : float or sequence of float, optional
        Voxel size in mm, array axis order, for numpy input.

    Returns
    -------
    sitk.Image or ndarray of float32
        Negative inside bright blobs.
    """
    sigma = check_positive("sigma_mm", sigma_mm)
    img, f, back = _float_image(image, spacing)
    _check_min_size(img, 4, "recursive Gaussian derivatives")
    out = sitk.LaplacianRecursiveGaussian(f, sigma, bool(normalize))
    return back(sitk.Cast(out, sitk.sitkFloat32))
