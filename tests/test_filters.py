"""medlab.filters: spacing-aware denoising, N4, gradients and edges."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from medlab import filters


def _psnr(clean, test, data_range=100.0):
    return 10 * np.log10(data_range**2 / np.mean((np.asarray(test, float) - clean) ** 2))


@pytest.fixture(scope="module")
def noisy_square():
    """A 100-unit square on 0 with Gaussian noise of std 10 (seeded): PSNR about 20 dB."""
    clean = np.zeros((96, 96))
    clean[24:72, 24:72] = 100.0
    clean[40:56, 30:40] = 50.0
    noisy = clean + np.random.default_rng(0).normal(0.0, 10.0, clean.shape)
    return clean, noisy


@pytest.fixture(scope="module")
def smooth_volume():
    rng = np.random.default_rng(5)
    return (ndi.gaussian_filter(rng.normal(size=(24, 40, 48)), 1.0) * 100).astype(np.float32)


# --------------------------------------------------------------------------- gaussian


def test_gaussian_mm_on_anisotropic_grid_equals_voxel_sigma(smooth_volume):
    spacing = (2.0, 1.0, 0.5)  # z, y, x mm
    before = smooth_volume.copy()
    mm = filters.gaussian(smooth_volume, 2.0, spacing=spacing)
    vox = filters.gaussian(smooth_volume, (1.0, 2.0, 4.0))  # same sigma in voxels, 1 mm grid
    np.testing.assert_allclose(mm, vox, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(smooth_volume, before)
    assert mm.dtype == np.float32

    # the sitk path gives the same numbers
    img = sitk.GetImageFromArray(smooth_volume)
    img.SetSpacing(spacing[::-1])
    via_sitk = filters.gaussian(img, 2.0)
    assert isinstance(via_sitk, sitk.Image) and via_sitk.GetSpacing() == spacing[::-1]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(via_sitk), mm)

    # and agree with scipy's sampled Gaussian of sigma / spacing voxels, away from borders
    ref = ndi.gaussian_filter(smooth_volume.astype(float), [2.0 / s for s in spacing], truncate=6)
    inner = (slice(6, -6), slice(10, -10), slice(18, -18))
    scale = np.abs(ref[inner]).max()
    assert np.abs(mm[inner] - ref[inner]).max() < 0.02 * scale


def test_gaussian_bad_sigma():
    with pytest.raises(ValueError, match="`sigma_mm`"):
        filters.gaussian(np.zeros((8, 8)), 0)
    with pytest.raises(ValueError, match="`sigma_mm`"):
        filters.gaussian(np.zeros((8, 8)), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="at least 4 voxels"):
        filters.gaussian(np.zeros((3, 8)), 1.0)


# --------------------------------------------------------------------------- median, bilateral


def test_median_matches_scipy_and_radius_mm(noisy_square):
    _, noisy = noisy_square
    arr = noisy.astype(np.float32)
    out = filters.median(arr, 1)
    np.testing.assert_array_equal(out, ndi.median_filter(arr, size=3, mode="nearest"))
    # radius 1 mm on (2.0, 0.5) mm pixels: 1 row (0.5 rounds up) and 2 columns each way
    out_mm = filters.median(arr, radius_mm=1.0, spacing=(2.0, 0.5))
    np.testing.assert_array_equal(out_mm, ndi.median_filter(arr, size=(3, 5), mode="nearest"))
    ints = noisy.astype(np.int16)
    assert filters.median(ints).dtype == np.int16
    with pytest.raises(ValueError, match="not both"):
        filters.median(arr, 1, radius_mm=1.0)
    with pytest.raises(ValueError, match="`radius_voxels`"):
        filters.median(arr, 1.5)


def test_bilateral_matches_sitk_with_spacing(noisy_square):
    _, noisy = noisy_square
    arr = noisy.astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.5))
    expected = sitk.GetArrayFromImage(sitk.Bilateral(img, 1.0, 30.0))
    ours = filters.bilateral(arr, domain_sigma_mm=1.0, range_sigma=30.0, spacing=0.5)
    np.testing.assert_array_equal(ours, expected)
    # the domain sigma is physical: on a 1 mm grid the same mm sigma is fewer voxels
    other = filters.bilateral(arr, domain_sigma_mm=1.0, range_sigma=30.0)
    assert not np.allclose(other, ours)
    with pytest.raises(ValueError, match="`range_sigma`"):
        filters.bilateral(arr, domain_sigma_mm=1.0, range_sigma=-1)


# --------------------------------------------------------------------------- denoisers improve PSNR


@pytest.mark.parametrize(
    ("name", "call", "gain_db"),
    [
        ("gaussian", lambda a: filters.gaussian(a, 1.0), 2.0),
        ("median", lambda a: filters.median(a, 1), 5.0),
        ("bilateral", lambda a: filters.bilateral(a, domain_sigma_mm=2.0, range_sigma=30.0), 10.0),
        ("anisotropic", lambda a: filters.anisotropic_diffusion(a, iterations=10), 10.0),
        ("nl_means", lambda a: filters.nl_means(a), 12.0),
    ],
)
def test_denoisers_improve_psnr(noisy_square, name, call, gain_db):
    clean, noisy = noisy_square
    before = _psnr(clean, noisy)
    after = _psnr(clean, call(noisy))
    assert after > before + gain_db, f"{name}: {before:.1f} dB -> {after:.1f} dB"


def test_nl_means_3d():
    clean = np.zeros((24, 24, 24))
    clean[6:18, 6:18, 6:18] = 100.0
    noisy = clean + np.random.default_rng(1).normal(0, 10, clean.shape)
    out = filters.nl_means(noisy)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert _psnr(clean, out) > _psnr(clean, noisy) + 10


@pytest.mark.parametrize("shape", [(128, 128), (32, 32, 32)])
def test_estimate_noise_std(shape):
    rng = np.random.default_rng(2)
    clean = np.zeros(shape)
    clean[tuple(slice(n // 4, 3 * n // 4) for n in shape)] = 500.0
    ramp = np.linspace(0, 50, shape[-1])  # smooth structure cancels in the Haar detail
    noisy = clean + ramp + rng.normal(0, 7.0, shape)
    assert filters.estimate_noise_std(noisy) == pytest.approx(7.0, rel=0.06)


def test_anisotropic_diffusion_time_step_and_progress(noisy_square):
    _, noisy = noisy_square
    # stable limit on a 0.5 mm 2D grid is 0.5 / 8
    with pytest.raises(ValueError, match="`time_step`.*0.0625"):
        filters.anisotropic_diffusion(noisy, time_step=0.1, spacing=0.5)
    seen = []
    filters.anisotropic_diffusion(noisy, iterations=4, progress=lambda f, m: seen.append(f))
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0]  # four iterations, then "done"
    with pytest.raises(InterruptedError, match="anisotropic_diffusion stopped"):
        filters.anisotropic_diffusion(noisy, iterations=50, progress=lambda f, m: f < 0.1)


# --------------------------------------------------------------------------- N4


def _biased_phantom(shape):
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r2 = sum((g / a) ** 2 for g, a in zip(grids, (0.8, 0.7, 0.75)[: len(shape)], strict=False))
    obj = r2 < 1
    clean = np.where(obj, 100.0, 5.0)
    clean[r2 < 0.15] = 60.0  # an inner structure of another intensity
    bias = np.exp(0.25 * grids[-1] + 0.3 * grids[0] ** 2)  # smooth multiplicative field
    rng = np.random.default_rng(4)
    image = clean * bias + rng.normal(0.0, 1.0, shape)
    return image, obj & (clean == 100.0), bias


def _cv(a, region):
    return a[region].std() / a[region].mean()


def test_n4_removes_multiplicative_bias_2d():
    image, region, bias = _biased_phantom((128, 128))
    calls = []
    corrected, field = filters.n4_bias_correction(
        image, return_field=True, progress=lambda f, m: calls.append((f, m))
    )
    assert _cv(image, region) > 0.08
    assert _cv(corrected, region) < 0.3 * _cv(image, region)
    np.testing.assert_allclose(corrected * field, image, rtol=1e-4, atol=1e-3)
    # the field has the shape of the true bias (up to a constant factor)
    assert np.corrcoef(np.log(field[region]), np.log(bias[region]))[0, 1] > 0.98
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    assert "level 1/4" in calls[0][1]


def test_n4_3d_sitk_and_stop():
    image, region, _ = _biased_phantom((40, 48, 48))
    img = sitk.GetImageFromArray(image.astype(np.float32))
    img.SetSpacing((1.0, 1.0, 2.0))
    out = filters.n4_bias_correction(img, iterations=(30, 30, 30))
    assert isinstance(out, sitk.Image) and out.GetSpacing() == (1.0, 1.0, 2.0)
    corrected = sitk.GetArrayFromImage(out)
    assert _cv(corrected, region) < 0.4 * _cv(image, region)
    with pytest.raises(InterruptedError, match="n4_bias_correction stopped"):
        filters.n4_bias_correction(img, progress=lambda f, m: False)


def test_n4_bad_arguments():
    image = np.ones((16, 16))
    with pytest.raises(ValueError, match=r"`mask` \(shape \(8, 8\)\)"):
        filters.n4_bias_correction(image, mask=np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="`iterations`"):
        filters.n4_bias_correction(image, iterations=())
    with pytest.raises(ValueError, match="`shrink_factor`"):
        filters.n4_bias_correction(image, shrink_factor=0)
    # the default fitting mask is Otsu's foreground (medlab's one histogram threshold): a
    # constant image has none, and says to give `mask`
    with pytest.raises(ValueError, match="constant.*give `mask`"):
        filters.n4_bias_correction(image)


# --------------------------------------------------------------------------- gradients, edges


@pytest.mark.parametrize("ndim", [2, 3])
def test_gradient_of_ramp_is_slope_per_mm(ndim):
    shape = (24, 30) if ndim == 2 else (12, 24, 30)
    spacing = (0.5, 2.0) if ndim == 2 else (2.5, 0.5, 2.0)
    idx = np.indices(shape, dtype=float)
    coeffs = (3.0, -2.0) if ndim == 2 else (1.0, 3.0, -2.0)  # intensity per mm along each axis
    ramp = sum(c * i * s for c, i, s in zip(coeffs, idx, spacing, strict=True))
    slope = np.sqrt(sum(c * c for c in coeffs))
    inner = tuple(slice(1, -1) for _ in shape)
    np.testing.assert_allclose(filters.gradient_magnitude(ramp, spacing=spacing)[inner], slope, rtol=1e-5)
    np.testing.assert_allclose(filters.sobel(ramp, spacing=spacing)[inner], slope, rtol=1e-5)
    smooth_inner = tuple(slice(6, -6) for _ in shape)
    smoothed = filters.gradient_magnitude(ramp, 1.0, spacing=spacing)
    np.testing.assert_allclose(smoothed[smooth_inner], slope, rtol=2e-3)


def test_laplacian_of_gaussian_of_quadratic():
    spacing = (0.5, 2.0)
    y, x = np.indices((40, 60), dtype=float)
    q = 0.5 * ((y * spacing[0]) ** 2 + (x * spacing[1]) ** 2)  # Laplacian = 2 per mm^2
    out = filters.laplacian_of_gaussian(q, 1.0, spacing=spacing)
    np.testing.assert_allclose(out[10:-10, 10:-10], 2.0, rtol=1e-2)
    normed = filters.laplacian_of_gaussian(q, 2.0, normalize=True, spacing=spacing)
    np.testing.assert_allclose(normed[16:-16, 6:-6], 8.0, rtol=2e-2)


def _disk(shape, spacing, radius_mm, centre_mm):
    idx = np.indices(shape, dtype=float)
    r = np.sqrt(sum((i * s - c) ** 2 for i, s, c in zip(idx, spacing, centre_mm, strict=True)))
    return np.where(r < radius_mm, 100.0, 0.0), r


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 1.0)])
def test_canny_finds_disk_boundary(spacing):
    shape = (int(80 / spacing[0]), int(80 / spacing[1]))
    disk, r = _disk(shape, spacing, 25.0, (40.3, 39.6))
    noisy = disk + np.random.default_rng(6).normal(0, 3, shape)
    edges = filters.canny(noisy, sigma_mm=1.5, spacing=spacing)
    assert edges.dtype == np.uint8 and set(np.unique(edges)) == {0, 1}
    on = edges.astype(bool)
    assert np.abs(r[on] - 25.0).max() < 1.0 + max(spacing)  # every edge pixel on the circle
    # the whole circle is found: every 10-degree sector has edge pixels
    yy, xx = np.nonzero(on)
    angle = np.degrees(np.arctan2(yy * spacing[0] - 40.3, xx * spacing[1] - 39.6))
    assert len(np.unique(np.floor(angle / 10))) == 36


def test_canny_3d_sphere_and_thresholds():
    disk, r = _disk((32, 32, 32), (1.0, 1.0, 1.0), 10.0, (15.7, 16.2, 15.9))
    edges = filters.canny(disk, sigma_mm=1.0)
    assert edges.sum() > 0.7 * 4 * np.pi * 10**2  # most of the sphere's surface
    assert np.abs(r[edges.astype(bool)] - 10.0).max() < 2.0
    # a threshold above the strongest gradient finds nothing
    assert filters.canny(disk, sigma_mm=1.0, low=1e6, high=1e6).sum() == 0
    with pytest.raises(ValueError, match="`low`"):
        filters.canny(disk, low=20, high=10)


def test_filters_accept_sitk_and_keep_kind():
    arr = np.random.default_rng(7).normal(size=(16, 16)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    for f in (
        lambda a: filters.gradient_magnitude(a),
        lambda a: filters.sobel(a),
        lambda a: filters.laplacian_of_gaussian(a, 1.0),
        lambda a: filters.median(a),
    ):
        out = f(img)
        assert isinstance(out, sitk.Image)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(out), f(arr))
