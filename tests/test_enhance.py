"""medlab.enhance: window/level and presets, equalisation, CLAHE, gamma, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from skimage import exposure

from medlab import enhance


def _sitk(arr, spacing_xyz=None):
    img = sitk.GetImageFromArray(arr)
    if spacing_xyz is not None:
        img.SetSpacing(spacing_xyz)
    return img


def _nd(values_2d: np.ndarray, ndim: int) -> np.ndarray:
    return values_2d if ndim == 2 else np.stack([values_2d, values_2d])


# --------------------------------------------------------------------------- window/level


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["numpy", "sitk"])
def test_window_level_exact_values(ndim, kind):
    hu = _nd(np.array([[-1000, -160, -60, 40, 140, 240, 3000]], dtype=np.int16), ndim)
    expected = _nd(np.array([[0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]], dtype=np.float32), ndim)
    before = hu.copy()
    image = hu if kind == "numpy" else _sitk(hu)
    out = enhance.window_level(image, window=400, level=40)
    if kind == "sitk":
        assert isinstance(out, sitk.Image)
        out = sitk.GetArrayFromImage(out)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(hu, before)  # input untouched


def test_window_level_keeps_geometry():
    img = _sitk(np.zeros((3, 4, 5), np.int16), (0.7, 0.8, 2.5))
    img.SetOrigin((1.0, 2.0, 3.0))
    out = enhance.window_level(img, 400, 40)
    assert out.GetSpacing() == (0.7, 0.8, 2.5)
    assert out.GetOrigin() == (1.0, 2.0, 3.0)
    assert out.GetPixelID() == sitk.sitkFloat32


def test_presets_exact_numbers():
    expected = {
        "lung": (1500, -600),
        "mediastinum": (350, 50),
        "bone": (1800, 400),
        "brain": (80, 40),
        "subdural": (200, 75),
        "stroke": (40, 40),
        "abdomen": (400, 50),
        "liver": (150, 30),
    }
    p = enhance.presets()
    assert set(p) == set(expected) | {"auto"}
    for name, (w, lev) in expected.items():
        assert (p[name].window, p[name].level) == (w, lev), name
        assert p[name].modality == "CT"
    assert p["auto"].window is None and p["auto"].level is None
    p["lung"] = None  # a copy: the registry itself is unchanged
    assert enhance.presets()["lung"].window == 1500


def test_window_level_with_preset():
    hu = np.array([[-1350, -600, 150]], dtype=np.int16)
    out = enhance.window_level(hu, preset="lung")
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])
    assert enhance.resolve_window(hu, preset="brain") == (80.0, 40.0)


def test_window_bounds():
    assert enhance.window_bounds(400, 40) == (-160.0, 240.0)
    assert enhance.window_bounds(1500, -600) == (-1350.0, 150.0)


@pytest.mark.parametrize("window", [0, -10])
def test_window_must_be_positive(window):
    with pytest.raises(ValueError, match="`window`"):
        enhance.window_bounds(window, 40)
    with pytest.raises(ValueError, match="`window`"):
        enhance.window_level(np.zeros((4, 4)), window=window, level=40)


def test_bad_preset_suggests():
    with pytest.raises(ValueError, match="`preset`.*did you mean 'lung'"):
        enhance.window_level(np.zeros((4, 4)), preset="lungs")


def test_window_and_level_come_together():
    with pytest.raises(ValueError, match="`level` is missing"):
        enhance.window_level(np.zeros((4, 4)), window=400)
    with pytest.raises(ValueError, match="`preset`"):
        enhance.window_level(np.zeros((4, 4)), 400, 40, preset="lung")


def test_auto_window_percentiles_and_mask():
    ramp = np.arange(101.0).reshape(1, 101)
    assert enhance.auto_window(ramp, percentiles=(10, 90)) == (80.0, 50.0)
    assert enhance.auto_window(ramp, percentiles=(0, 100)) == (100.0, 50.0)
    mask = ramp >= 50  # values 50..100
    assert enhance.auto_window(ramp, percentiles=(0, 100), mask=mask) == (50.0, 75.0)
    # constant image: a 1-unit window on the value
    assert enhance.auto_window(np.full((3, 3), 7.0)) == (1.0, 7.0)


def test_window_level_auto_default():
    ramp = np.arange(101.0).reshape(1, 101)
    out = enhance.window_level(ramp)  # no window, no preset: 1st-99th percentile
    assert out[0, 1] == 0.0 and out[0, 99] == 1.0
    assert out[0, 50] == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [(99, 1), (-1, 50), (1, 101), (5,)])
def test_bad_percentiles(bad):
    with pytest.raises(ValueError, match="`percentiles`"):
        enhance.auto_window(np.zeros((4, 4)), percentiles=bad)


def test_mask_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"`mask` \(shape \(3, 4\)\).*`image` \(shape \(4, 4\)\)"):
        enhance.auto_window(np.zeros((4, 4)), mask=np.ones((3, 4), bool))


def test_sitk_mask_on_another_grid():
    img = _sitk(np.zeros((4, 4), np.float32), (1.0, 1.0))
    mask = _sitk(np.ones((4, 4), np.uint8), (2.0, 1.0))
    with pytest.raises(ValueError, match="`mask` spacing"):
        enhance.normalize(img, mask=mask)


def test_vector_image_rejected():
    rgb = sitk.GetImageFromArray(np.zeros((4, 4, 3), np.uint8), isVector=True)
    with pytest.raises(ValueError, match="scalar"):
        enhance.window_level(rgb, 400, 40)


# --------------------------------------------------------------------------- equalisation


@pytest.mark.parametrize("dtype", [np.float64, np.int16])
def test_equalize_hist_agrees_with_skimage(dtype):
    rng = np.random.default_rng(1)
    arr = (rng.gamma(2.0, 100.0, size=(24, 32)) - 300).astype(dtype)
    ours = enhance.equalize_hist(arr)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, exposure.equalize_hist(arr), rtol=1e-6, atol=1e-7)
    mask = arr > np.median(arr)
    np.testing.assert_allclose(
        enhance.equalize_hist(arr, mask=mask),
        exposure.equalize_hist(arr, mask=mask),
        rtol=1e-6,
        atol=1e-7,
    )


@pytest.mark.parametrize("shape", [(64, 48), (16, 32, 24)])
def test_clahe_agrees_with_skimage_any_range(shape):
    rng = np.random.default_rng(2)
    smooth = np.cumsum(rng.normal(size=shape), axis=-1)
    hu = (smooth * 50 - 500).astype(np.int16)  # CT-like, far outside [0, 1]
    ours = enhance.clahe(hu, clip_limit=0.02)
    unit = (hu - float(hu.min())) / (float(hu.max()) - float(hu.min()))
    ref = exposure.equalize_adapthist(unit, clip_limit=0.02)
    assert ours.dtype == np.float32 and ours.shape == hu.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert ours.min() == 0.0 and ours.max() == 1.0
    # input already in [0, 1] spanning 0..1: exactly scikit-image's result
    np.testing.assert_allclose(
        enhance.clahe(unit, kernel_size=8), exposure.equalize_adapthist(unit, kernel_size=8), atol=1e-6
    )


def test_clahe_bad_arguments():
    with pytest.raises(ValueError, match="`clip_limit`"):
        enhance.clahe(np.zeros((8, 8)), clip_limit=0)
    with pytest.raises(ValueError, match="`kernel_size`"):
        enhance.clahe(np.zeros((8, 8)), kernel_size=(4, 4, 4))


def test_gamma_exact():
    out = enhance.gamma(np.array([[0.0, 1.0, 4.0, 9.0]]), 0.5, in_range=(0, 4))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0, 1.0]])
    # default range: image min..max
    out = enhance.gamma(np.array([[10.0, 20.0, 30.0]]), 2.0)
    np.testing.assert_allclose(out, [[0.0, 0.25, 1.0]])
    with pytest.raises(ValueError, match="`gamma`"):
        enhance.gamma(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="`in_range`"):
        enhance.gamma(np.zeros((4, 4)), 1.0, in_range=(5, 5))
    with pytest.raises(ValueError, match="`in_range` must have low < high"):
        enhance.gamma(np.zeros((4, 4)), 1.0, in_range=(0, float("nan")))
    with pytest.raises(TypeError, match=r"`in_range` must be \(low, high\)"):
        enhance.gamma(np.zeros((4, 4)), 1.0, in_range=(1,))


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("ndim", [2, 3])
def test_normalize_zscore_in_mask(ndim):
    rng = np.random.default_rng(3)
    shape = (20, 30) if ndim == 2 else (6, 20, 30)
    arr = rng.normal(300.0, 40.0, size=shape)
    mask = np.zeros(shape, bool)
    mask[..., 5:15, 5:25] = True
    arr[~mask] = -1000.0  # outside values must not affect the statistics
    out = enhance.normalize(arr, "zscore", mask=mask)
    assert out.dtype == np.float32
    assert out[mask].mean() == pytest.approx(0.0, abs=1e-5)
    assert out[mask].std() == pytest.approx(1.0, abs=1e-5)
    expected_outside = (-1000.0 - arr[mask].mean()) / arr[mask].std()
    assert out[~mask][0] == pytest.approx(expected_outside, rel=1e-5)


def test_normalize_minmax_and_percentile():
    arr = np.arange(101.0).reshape(1, 101)
    np.testing.assert_allclose(enhance.normalize(arr, "minmax"), arr / 100, rtol=1e-6)
    out = enhance.normalize(arr, "percentile", percentiles=(10, 90))
    assert out[0, 10] == 0 and out[0, 90] == 1 and out[0, 50] == pytest.approx(0.5)
    assert out.min() == 0 and out.max() == 1  # clipped
    unclipped = enhance.normalize(arr, "percentile", percentiles=(10, 90), clip=False)
    assert unclipped[0, 0] == pytest.approx(-0.125)
    sitk_out = enhance.normalize(_sitk(arr), "minmax")
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk_out), arr / 100, rtol=1e-6)


def test_normalize_bad_method_and_constant():
    with pytest.raises(ValueError, match="did you mean 'zscore'"):
        enhance.normalize(np.zeros((4, 4)), "z-score")
    with pytest.raises(ValueError, match="constant"):
        enhance.normalize(np.ones((4, 4)), "zscore")
    with pytest.raises(ValueError, match="selects no voxels"):
        enhance.normalize(np.ones((4, 4)), mask=np.zeros((4, 4), bool))


@pytest.mark.parametrize("method", ["zscore", "minmax", "percentile"])
def test_normalize_constant_zeros_for_network_inputs(method):
    """``constant='zeros'`` (what ``medlab.models`` needs for a blank image in a batch): a
    constant image gives zeros, a non-constant one the same values as the default."""
    out = enhance.normalize(np.full((3, 4, 1), 7.0), method, constant="zeros")
    assert out.dtype == np.float32 and out.shape == (3, 4, 1) and not out.any()
    x = np.random.default_rng(0).normal(5, 2, (3, 4, 1))
    np.testing.assert_array_equal(enhance.normalize(x, method, constant="zeros"), enhance.normalize(x, method))
    with pytest.raises(ValueError, match="did you mean 'zeros'"):
        enhance.normalize(x, method, constant="zero")


def test_numpy_spacing_kept_on_the_way_through():
    # numpy in -> numpy out; a spacing of the wrong length is rejected by name
    with pytest.raises(ValueError, match="`spacing`"):
        enhance.window_level(np.zeros((4, 4)), 400, 40, spacing=(1.0, 1.0, 1.0))
