"""Image-quality metrics: SNR, CNR, MSE, PSNR, SSIM, local contrast.

Images are ``SimpleITK.Image`` or numpy arrays indexed ``(z, y, x)``; masks are numpy arrays or
SimpleITK label images of the same shape (nonzero = inside). Every metric returns a Python
float in the intensity units stated.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from medlab._image import check_same_grid, check_same_shape, mask_array
from medlab._options import check_int, check_positive

__all__ = ["snr", "cnr", "mse", "psnr", "ssim", "local_contrast"]


def _image_array(image, name: str) -> np.ndarray:
    if isinstance(image, sitk.Image):
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"`{name}` must be a scalar image")
        return sitk.GetArrayViewFromImage(image)
    if not isinstance(image, np.ndarray) and not hasattr(image, "__array__"):
        raise TypeError(
            f"`{name}` must be a SimpleITK.Image or a numpy array; got {type(image).__name__}"
        )
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must have a numeric dtype; got {arr.dtype}")
    return arr


def _pair(reference, test) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(reference, sitk.Image) and isinstance(test, sitk.Image):
        check_same_grid(reference, test, names=("reference", "test"))
    ref = _image_array(reference, "reference")
    tst = _image_array(test, "test")
    check_same_shape(ref.shape, tst.shape, names=("reference", "test"))
    return ref, tst


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.inf if num > 0 else math.nan


def snr(image, signal_mask, background_mask=None, *, ddof: int = 0) -> float:
    """Signal-to-noise ratio: mean signal divided by the noise standard deviation.

    ``snr = mean(image[signal_mask]) / std(image[background_mask])`` (the two-region method,
    with no Rayleigh correction for magnitude MR background). Without ``background_mask`` the
    noise is the spread inside the signal region: ``mean / std`` of ``image[signal_mask]``.

    Parameters
    ----------
    image : sitk.Image or ndarray
        Scalar image.
    signal_mask : sitk.Image or ndarray
        Region of uniform signal.
    background_mask : sitk.Image or ndarray, optional
        Region of noise only (e.g. air).
    ddof : int
        Delta degrees of freedom of the standard deviation (0: population, 1: sample).

    Returns
    -------
    float
        Dimensionless; ``inf`` when the noise std is 0.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[10.0, 10.0, 1.0, 3.0]])
    >>> snr(img, img >= 10, img < 10)
    10.0
    """
    arr = _image_array(image, "image")
    ddof = check_int("ddof", ddof, minimum=0)
    s = arr[mask_array(signal_mask, image, name="signal_mask")].astype(np.float64)
    if background_mask is None:
        noise = s
    else:
        noise = arr[mask_array(background_mask, image, name="background_mask")]
    return _ratio(float(s.mean()), _std(noise, ddof, "noise region"))


def cnr(image, mask_a, mask_b, *, noise_mask=None, ddof: int = 0) -> float:
    """Contrast-to-noise ratio between two regions.

    ``cnr = |mean_a - mean_b| / sigma``, with ``sigma = std(image[noise_mask])`` when a noise
    region is given, else the pooled ``sqrt((std_a**2 + std_b**2) / 2)``.

    Parameters
    ----------
    image : sitk.Image or ndarray
        Scalar image.
    mask_a, mask_b : sitk.Image or ndarray
        The two regions compared (e.g. lesion and background tissue).
    noise_mask : sitk.Image or ndarray, optional
        A region of noise only.
    ddof : int
        Delta degrees of freedom of the standard deviations.

    Returns
    -------
    float
        Dimensionless; ``inf`` when the noise std is 0 and the means differ.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[10.0, 12.0, 2.0, 4.0]])
    >>> cnr(img, img > 5, img < 5)
    8.0
    """
    arr = _image_array(image, "image")
    ddof = check_int("ddof", ddof, minimum=0)
    a = arr[mask_array(mask_a, image, name="mask_a")].astype(np.float64)
    b = arr[mask_array(mask_b, image, name="mask_b")].astype(np.float64)
    if noise_mask is None:
        sigma = math.sqrt((_std(a, ddof, "mask_a") ** 2 + _std(b, ddof, "mask_b") ** 2) / 2)
    else:
        sigma = _std(arr[mask_array(noise_mask, image, name="noise_mask")], ddof, "noise")
    return _ratio(abs(float(a.mean()) - float(b.mean())), sigma)


def _std(values: np.ndarray, ddof: int, what: str) -> float:
    if values.size <= ddof:
        raise ValueError(f"the {what} has {values.size} voxels; need more than `ddof`={ddof}")
    return float(np.std(values.astype(np.float64), ddof=ddof))


def mse(reference, test) -> float:
    """Mean squared error ``mean((reference - test) ** 2)`` in squared intensity units.

    Parameters
    ----------
    reference, test : sitk.Image or ndarray
        Same shape (and grid, when both are SimpleITK images).

    Returns
    -------
    float
    """
    ref, tst = _pair(reference, test)
    diff = ref.astype(np.float64) - tst.astype(np.float64)
    return float(np.mean(diff * diff))


def _data_range(ref: np.ndarray, data_range) -> float:
    if data_range is None:
        data_range = float(ref.max()) - float(ref.min())
        if not data_range > 0:
            raise ValueError(
                "`reference` is constant, so the default `data_range` (max - min) is 0; "
                "give `data_range`"
            )
        return data_range
    return check_positive("data_range", data_range)


def psnr(reference, test, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range**2 / mse)`` in dB.

    Agrees with ``skimage.metrics.peak_signal_noise_ratio`` for the same ``data_range``.

    Parameters
    ----------
    reference, test : sitk.Image or ndarray
        Same shape.
    data_range : float, optional
        Intensity span of a full-scale signal. Default ``reference.max() - reference.min()``
        (scikit-image's default is the dtype's range, meaningless for HU or MR units).

    Returns
    -------
    float
        dB; ``inf`` for identical images.
    """
    ref, tst = _pair(reference, test)
    dr = _data_range(ref, data_range)
    err = mse(ref, tst)
    if err == 0:
        return math.inf
    return float(10.0 * np.log10(dr * dr / err))


def ssim(
    reference,
    test,
    *,
    data_range: float | None = None,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    return_map: bool = False,
):
    """Mean structural similarity (``skimage.metrics.structural_similarity``), 2D or 3D.

    Parameters
    ----------
    reference, test : sitk.Image or ndarray
        Same shape; every axis at least ``win_size`` voxels long.
    data_range : float, optional
        Default ``reference.max() - reference.min()``.
    win_size : int, optional
        Odd side of the window in voxels, >= 3. Default 7 for uniform weights and 11 for
        Gaussian weights (scikit-image's defaults).
    gaussian_weights : bool
        Gaussian weights of sigma 1.5 voxels with population covariances, as in Wang et al.
        (2004) (scikit-image: ``gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False``); otherwise uniform weights with sample covariances.
    return_map : bool
        Also return the local SSIM map (numpy array, shape of the input).

    Returns
    -------
    float, or (float, ndarray)
        Mean SSIM in [-1, 1], computed over voxels at least ``(win_size - 1) // 2`` from the
        border (scikit-image's convention).
    """
    from skimage.metrics import structural_similarity

    ref, tst = _pair(reference, test)
    dr = _data_range(ref, data_range)
    if win_size is None:
        win_size = 11 if gaussian_weights else 7
    win_size = check_int("win_size", win_size, minimum=3)
    if win_size % 2 == 0:
        raise ValueError(f"`win_size` must be odd; got {win_size}")
    need = win_size
    if min(ref.shape) < need:
        raise ValueError(
            f"`reference` (shape {ref.shape}) must be at least {need} voxels along every axis "
            "for this SSIM window"
        )
    kwargs = {"sigma": 1.5, "use_sample_covariance": False} if gaussian_weights else {}
    result = structural_similarity(
        ref.astype(np.float64),
        tst.astype(np.float64),
        data_range=dr,
        win_size=win_size,
        gaussian_weights=bool(gaussian_weights),
        full=bool(return_map),
        **kwargs,
    )
    if return_map:
        return float(result[0]), result[1]
    return float(result)


def local_contrast(image, *, size: int = 15) -> float:
    """Mean local contrast: the standard deviation in a ``size`` x ``size`` (x ``size``) window
    around each pixel, averaged over the image.

    What contrast-limited adaptive histogram equalisation (CLAHE) is designed to raise, where a
    global measure (the image's standard deviation, the RMS contrast) may fall. Windows are
    centred on each pixel and reflected at the border (``scipy.ndimage.uniform_filter``); the
    local variance ``E[x^2] - E[x]^2`` is clipped at 0 against rounding.

    Parameters
    ----------
    image : sitk.Image or ndarray
        Scalar 2D or 3D image; the result is in its intensity units.
    size : int
        Window side in pixels (odd or even, >= 1; 1 gives 0).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(local_contrast(np.full((8, 8), 7.0)), 6)  # a flat image has no contrast
    0.0
    >>> round(local_contrast(np.tile([0.0, 1.0], (9, 9)), size=3), 3)  # stripes: std of (0, 1, 0) or (1, 0, 1)
    0.471
    """
    from scipy.ndimage import uniform_filter  # lazy, as the other scipy users of medlab.metrics

    size = check_int("size", size, minimum=1)
    x = np.asarray(_image_array(image, "image"), dtype=np.float64)
    local_var = uniform_filter(x * x, size) - uniform_filter(x, size) ** 2
    return float(np.sqrt(np.clip(local_var, 0, None)).mean())
