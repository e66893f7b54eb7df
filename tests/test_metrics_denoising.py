"""medlab.metrics.compare_denoisers: every denoiser run once and scored like the original."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import metrics


@pytest.fixture()
def phantom():
    rng = np.random.default_rng(3)
    arr = np.zeros((8, 32, 32), np.float32)
    signal = np.zeros(arr.shape, bool)
    signal[:, 4:12, 4:12] = True
    background = np.zeros(arr.shape, bool)
    background[:, 20:28, 4:12] = True
    noise = np.zeros(arr.shape, bool)
    noise[:, 4:28, 18:30] = True
    arr[signal] = 100.0
    arr[:, 2:30, 16:31] = 50.0  # homogeneous, one voxel wider than the noise mask all round
    arr += rng.normal(0.0, 10.0, arr.shape).astype(np.float32)
    return arr, signal, background, noise


def test_compare_denoisers_scores_each_like_the_original(phantom):
    arr, signal, background, noise = phantom
    image = sitk.GetImageFromArray(arr)
    denoisers = {"identity": lambda im: sitk.Image(im), "box": lambda im: sitk.Mean(im, [1, 1, 0])}
    table, results = metrics.compare_denoisers(image, denoisers, signal_mask=signal, background_mask=background,
                                               noise_mask=noise)
    assert list(table.index) == ["original", "identity", "box"]
    assert list(table.columns) == ["cnr", "noise", "ssim", "seconds"]
    original = table.loc["original"]
    assert original["cnr"] == metrics.cnr(arr, signal, background, noise_mask=noise)
    assert original["noise"] == pytest.approx(float(arr[noise].astype(np.float64).std()), rel=1e-12)
    assert original["noise"] == pytest.approx(10.0, rel=0.05)  # the noise put in
    assert original["ssim"] == 1.0 and original["seconds"] == 0.0
    assert table.loc["identity", ["cnr", "noise", "ssim"]].tolist() == original[["cnr", "noise", "ssim"]].tolist()
    box = sitk.GetArrayFromImage(sitk.Mean(image, [1, 1, 0]))
    np.testing.assert_array_equal(results["box"], box)
    # a 3x3 in-plane mean divides independent noise by 3 inside the homogeneous region
    assert table.loc["box", "noise"] == pytest.approx(10.0 / 3, rel=0.1)
    assert table.loc["box", "cnr"] > 2 * original["cnr"]
    assert table.loc["box", "ssim"] == metrics.ssim(arr, box) < 1.0
    assert (table["seconds"] >= 0).all()


def test_compare_denoisers_bad_arguments(phantom):
    arr, signal, background, noise = phantom
    image = sitk.GetImageFromArray(arr)
    masks = {"signal_mask": signal, "background_mask": background, "noise_mask": noise}
    with pytest.raises(ValueError, match="`denoisers` must be a non-empty"):
        metrics.compare_denoisers(image, {}, **masks)
    with pytest.raises(ValueError, match="'original'"):
        metrics.compare_denoisers(image, {"original": lambda im: im}, **masks)
    with pytest.raises(TypeError, match=r"`denoisers\['x'\]` must be callable"):
        metrics.compare_denoisers(image, {"x": 3}, **masks)
    with pytest.raises(TypeError, match=r"`denoisers\['x'\]` must return a SimpleITK.Image"):
        metrics.compare_denoisers(image, {"x": sitk.GetArrayFromImage}, **masks)
    with pytest.raises(TypeError, match="`image` must be a SimpleITK.Image"):
        metrics.compare_denoisers(arr, {"x": lambda im: im}, **masks)
    with pytest.raises(ValueError, match="noise_mask"):
        metrics.compare_denoisers(image, {"x": lambda im: im}, **{**masks, "noise_mask": noise[1:]})
