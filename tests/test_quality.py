"""medlab.metrics image-quality measures: SNR, CNR, MSE, PSNR, SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medlab import metrics


def test_snr_exact():
    img = np.array([[10.0, 12.0, 14.0, 1.0, 3.0, 1.0, 3.0]])
    signal = img >= 10
    background = img < 10
    # mean signal 12, background std (ddof 0) of [1, 3, 1, 3] = 1
    assert metrics.snr(img, signal, background) == pytest.approx(12.0)
    # sample std of the background: sqrt(4/3)
    assert metrics.snr(img, signal, background, ddof=1) == pytest.approx(12.0 / math.sqrt(4 / 3))
    # no background: mean / std inside the signal region; std of [10, 12, 14] = sqrt(8/3)
    assert metrics.snr(img, signal) == pytest.approx(12.0 / math.sqrt(8 / 3))
    # noise-free signal
    assert metrics.snr(np.array([[5.0, 5.0]]), np.array([[1, 1]])) == math.inf


def test_cnr_exact():
    img = np.array([[10.0, 12.0, 2.0, 6.0, 0.0, 2.0]])
    a = np.array([[1, 1, 0, 0, 0, 0]], bool)  # mean 11, std 1
    b = np.array([[0, 0, 1, 1, 0, 0]], bool)  # mean 4, std 2
    noise = np.array([[0, 0, 0, 0, 1, 1]], bool)  # std 1
    assert metrics.cnr(img, a, b, noise_mask=noise) == pytest.approx(7.0)
    assert metrics.cnr(img, a, b) == pytest.approx(7.0 / math.sqrt((1 + 4) / 2))
    assert metrics.cnr(img, b, a) == metrics.cnr(img, a, b)  # symmetric


def test_masks_may_be_sitk_label_images():
    img = np.array([[10.0, 12.0, 2.0, 6.0]])
    a = sitk.GetImageFromArray(np.array([[1, 1, 0, 0]], np.uint8))
    b = sitk.GetImageFromArray(np.array([[0, 0, 2, 2]], np.uint8))  # any nonzero label
    assert metrics.cnr(sitk.GetImageFromArray(img), a, b) == pytest.approx(7.0 / math.sqrt(2.5))


def test_mask_errors_name_the_argument():
    img = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"`signal_mask` \(shape \(4, 5\)\).*`image` \(shape \(4, 4\)\)"):
        metrics.snr(img, np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="`mask_b` selects no voxels"):
        metrics.cnr(img, np.ones((4, 4)), np.zeros((4, 4)))


def test_mse_exact_and_shape_check():
    ref = np.array([[0.0, 1.0], [2.0, 3.0]])
    test = np.array([[1.0, 1.0], [2.0, 1.0]])
    assert metrics.mse(ref, test) == pytest.approx((1 + 0 + 0 + 4) / 4)
    with pytest.raises(ValueError, match=r"`test` \(shape \(2, 3\)\).*`reference` \(shape \(2, 2\)\)"):
        metrics.mse(ref, np.zeros((2, 3)))


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    ref = np.cumsum(np.cumsum(rng.normal(size=(40, 48)), 0), 1)
    test = ref + rng.normal(0, 2.0, ref.shape)
    return ref, test


def test_psnr_agrees_with_skimage(pair):
    ref, test = pair
    dr = float(ref.max() - ref.min())
    expected = peak_signal_noise_ratio(ref, test, data_range=dr)
    assert metrics.psnr(ref, test) == pytest.approx(expected, rel=1e-12)  # default = ref range
    assert metrics.psnr(ref, test, data_range=500) == pytest.approx(
        peak_signal_noise_ratio(ref, test, data_range=500), rel=1e-12
    )
    assert metrics.psnr(ref, ref) == math.inf
    with pytest.raises(ValueError, match="`data_range`"):
        metrics.psnr(ref, test, data_range=0)
    with pytest.raises(ValueError, match="`data_range`"):
        metrics.psnr(np.ones((4, 4)), np.zeros((4, 4)))


@pytest.mark.parametrize("ndim", [2, 3])
def test_ssim_agrees_with_skimage(ndim):
    rng = np.random.default_rng(ndim)
    shape = (40, 48) if ndim == 2 else (12, 16, 20)
    ref = np.cumsum(rng.normal(size=shape), -1)
    test = ref + rng.normal(0, 1.0, shape)
    dr = float(ref.max() - ref.min())
    assert metrics.ssim(ref, test) == pytest.approx(
        structural_similarity(ref, test, data_range=dr), rel=1e-12
    )
    ours = metrics.ssim(ref, test, data_range=30.0, gaussian_weights=True)
    theirs = structural_similarity(
        ref, test, data_range=30.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ours == pytest.approx(theirs, rel=1e-12)
    value, local = metrics.ssim(ref, test, return_map=True)
    assert local.shape == shape and value == pytest.approx(metrics.ssim(ref, test))
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)


def test_ssim_bad_window():
    with pytest.raises(ValueError, match="`win_size`"):
        metrics.ssim(np.zeros((20, 20)) + np.eye(20), np.eye(20), win_size=6)
    with pytest.raises(ValueError, match="at least 7"):
        metrics.ssim(np.eye(5), np.eye(5))


def test_sitk_inputs_match_numpy(pair):
    ref, test = pair
    r, t = sitk.GetImageFromArray(ref), sitk.GetImageFromArray(test)
    assert metrics.psnr(r, t) == metrics.psnr(ref, test)
    assert metrics.ssim(r, t) == metrics.ssim(ref, test)
    t.SetSpacing((2.0, 1.0))
    with pytest.raises(ValueError, match="`test` spacing"):
        metrics.mse(r, t)


def test_public_api():
    assert set(metrics.__all__) >= {"snr", "cnr", "mse", "psnr", "ssim"}
