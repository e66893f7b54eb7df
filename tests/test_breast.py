"""medlab.apps.breast.segment_us_lesion on the speckled ultrasound phantom (exact cysts)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab.apps.breast import segment_us_lesion
from medlab.datasets import us_phantom
from medlab.metrics import dice


@pytest.mark.parametrize("seed", range(6))
def test_cyst_from_a_seed(seed):
    ph = us_phantom(shape=(128, 128), n_cysts=1, n_inclusions=1, seed=seed)
    cyst = ph.truth["lesions"][0]
    mask = segment_us_lesion(ph.image, seed_mm=cyst["centre_mm"], method="midpoint", smoothing_mm=1.0,
                             opening_mm=0.5, window=None)
    assert isinstance(mask, sitk.Image) and mask.GetSpacing() == ph.image.GetSpacing()
    assert dice(mask, ph.labels == 2) > 0.93  # measured 0.946-0.975 over seeds 0-7


def test_otsu_default_finds_a_large_central_cyst_and_keeps_the_input_kind():
    ph = us_phantom(shape=(96, 96), n_cysts=1, n_inclusions=0, radius_mm=(8.0, 9.0), seed=3)
    arr = sitk.GetArrayFromImage(ph.image)
    rgb = np.repeat(arr[..., None], 3, axis=-1)
    mask = segment_us_lesion(rgb, spacing=0.3, smoothing_mm=1.0, opening_mm=1.0, window=None,
                             seed_index=ph.truth["lesions"][0]["centre_index"])
    assert isinstance(mask, np.ndarray) and mask.dtype == np.uint8
    assert dice(mask, sitk.GetArrayFromImage(ph.labels) == 2) > 0.9


def test_busi_defaults_cut_the_lesion_from_the_shadow_below():
    from medlab import datasets

    image = datasets.load("busi", case="malignant (133)", progress=False).image
    mask = sitk.GetArrayFromImage(segment_us_lesion(image))
    rows = np.flatnonzero(mask.any(axis=1))
    # the region stays off the bottom of the frame (acoustic shadow); measured rows 43-193 of 256, 15169 px
    assert rows.max() < 210 and 8000 < mask.sum() < 22000


def test_errors_name_the_argument():
    image = np.random.default_rng(0).random((32, 32))
    with pytest.raises(ValueError, match="did you mean 'otsu'"):
        segment_us_lesion(image, method="otsy")
    with pytest.raises(ValueError, match="`window` must be in"):
        segment_us_lesion(image, window=0.9)
    with pytest.raises(ValueError, match="`skin` must be in"):
        segment_us_lesion(image, skin=0.7)
    with pytest.raises(ValueError, match="outside"):
        segment_us_lesion(image, seed_index=(40, 3))
    with pytest.raises(ValueError, match="2D ultrasound"):
        segment_us_lesion(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="constant"):
        segment_us_lesion(np.ones((32, 32)))


# ------------------------------------------------------------- BI-RADS-like lesion descriptors


def _ellipse(shape, centre, semi_axes):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return ((yy - centre[0]) / semi_axes[0]) ** 2 + ((xx - centre[1]) / semi_axes[1]) ** 2 <= 1


def test_descriptors_of_ellipses_taller_or_wider_than_deep():
    from medlab.apps.breast import lesion_descriptors

    tall = _ellipse((160, 160), (80, 80), (40, 20))
    wide = _ellipse((160, 160), (80, 80), (20, 40))
    d_tall = lesion_descriptors(np.where(tall, 20.0, 120.0), tall)
    d_wide = lesion_descriptors(np.where(wide, 20.0, 120.0), wide)
    assert d_tall["depth_width_ratio"] == pytest.approx(81 / 41)  # rows / columns of the box
    assert d_wide["depth_width_ratio"] == pytest.approx(41 / 81)
    assert d_tall["orientation_deg"] == pytest.approx(90, abs=0.5) and d_wide["orientation_deg"] == pytest.approx(0, abs=0.5)
    assert d_tall["axis_ratio"] == pytest.approx(0.5, abs=0.02)
    assert d_tall["eccentricity"] == pytest.approx(np.sqrt(1 - 0.25), abs=0.01)
    assert d_tall["area_frac"] == pytest.approx(tall.sum() / 160**2)
    assert d_tall["convexity"] == pytest.approx(1, abs=0.03) and d_tall["n_concavities"] == 0
    # a dark lesion in bright tissue: hypoechoic, and uniform inside
    assert d_tall["echo_rel"] < 0.3 and d_tall["contrast_ring"] > 0.7 and d_tall["heterogeneity"] == 0
    assert d_tall["centroid_depth"] == pytest.approx(0.5, abs=0.01) and d_tall["touches_border"] == 0


def test_spiculated_margin_and_posterior_shadow():
    from medlab.apps.breast import lesion_descriptors

    yy, xx = np.mgrid[:200, :200]
    r, t = np.hypot(yy - 90, xx - 100), np.arctan2(yy - 90, xx - 100)
    round_ = r <= 30
    spiky = r <= 30 * (1 + 0.35 * np.cos(12 * t))  # twelve spicules
    image = np.full((200, 200), 120.0)
    d_round = lesion_descriptors(np.where(round_, 20.0, image), round_)
    d_spiky = lesion_descriptors(np.where(spiky, 20.0, image), spiky)
    assert d_spiky["solidity"] < d_round["solidity"] - 0.15
    assert d_spiky["n_concavities"] == 12 and d_round["n_concavities"] == 0
    assert d_spiky["fd_hf8"] > 10 * d_round["fd_hf8"] and d_spiky["roughness"] > 3 * d_round["roughness"]
    assert d_spiky["radial_cv"] > 0.15 > d_round["radial_cv"]
    # shadow: the column below the lesion is darker than beside it; enhancement: brighter
    shadow = np.where(round_, 20.0, image)
    shadow[121:, 70:131] = 40.0
    bright = np.where(round_, 20.0, image)
    bright[121:, 70:131] = 200.0
    assert lesion_descriptors(shadow, round_)["posterior_ratio"] < 0.5
    assert lesion_descriptors(bright, round_)["posterior_ratio"] > 1.4
    assert d_round["posterior_ratio"] == pytest.approx(1.0, abs=0.02)


def test_descriptors_refuse_an_empty_or_misplaced_mask():
    from medlab.apps.breast import lesion_descriptors

    with pytest.raises(ValueError, match="`mask` is empty"):
        lesion_descriptors(np.ones((32, 32)), np.zeros((32, 32)))
    with pytest.raises(ValueError, match="`mask` has shape"):
        lesion_descriptors(np.ones((32, 32)), np.ones((16, 16)))
    with pytest.raises(ValueError, match="2D ultrasound"):
        lesion_descriptors(np.ones((4, 32, 32)), np.ones((32, 32)))


def test_lesion_feature_table_joins_ibsi_and_descriptors():
    from medlab.apps.breast import lesion_descriptors, lesion_feature_table

    phs = [us_phantom(shape=(96, 96), n_cysts=1, n_inclusions=0, seed=s) for s in (1, 2)]
    masks = [sitk.Cast(ph.labels == 2, sitk.sitkUInt8) for ph in phs]
    table = lesion_feature_table([ph.image for ph in phs], masks, names=["a", "b"])
    assert list(table.index) == ["a", "b"]
    assert not any(c.startswith("image_") for c in table.columns)
    assert any(c.startswith("lesion_morph_") for c in table.columns)
    d = lesion_descriptors(phs[1].image, masks[1])
    assert table.loc["b", [f"birads_{k}" for k in d]].to_numpy(float) == pytest.approx(list(d.values()), nan_ok=True)
    assert table.loc["a", "birads_area_frac"] == pytest.approx(sitk.GetArrayFromImage(masks[0]).mean())


def test_doctests():
    import doctest

    from medlab.apps import breast

    result = doctest.testmod(breast)
    assert result.attempted >= 3 and result.failed == 0
