"""Measurements around the models, no Keras needed: ROC AUC with confidence intervals (against
scikit-learn), ellipse fits and head circumference (exact ellipses), perceptual hashes and
near-duplicate groups (medlab.dedup)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medlab import dedup
from medlab import models as mm

# ------------------------------------------------------------------------------------ ROC


def test_auc_agrees_with_sklearn_including_ties():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding makes ties
    r = mm.roc_auc_ci(y, s)
    assert r.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert r.low < r.auc < r.high and r.n_positive == y.sum() and r.n_negative == (~y).sum()
    assert "95% CI" in str(r)


def test_delong_variance_exact_on_a_small_case():
    # positives 0.9, 0.35; negatives 0.1, 0.4: V01 = [1, 0.5], V10 = [1, 0.5] (per DeLong)
    r = mm.roc_auc_ci([1, 1, 0, 0], [0.9, 0.35, 0.1, 0.4], confidence=0.95)
    assert r.auc == pytest.approx(0.75)
    var = np.var([1, 0.5], ddof=1) / 2 + np.var([1, 0.5], ddof=1) / 2
    half = 1.959963984540054 * math.sqrt(var)
    assert (r.low, r.high) == pytest.approx((0.75 - half, 1.0))  # upper end clipped at 1


def test_bootstrap_and_delong_intervals_agree_on_a_large_sample():
    rng = np.random.default_rng(1)
    y = rng.random(600) < 0.4
    s = rng.normal(y * 1.0, 1.0)
    d = mm.roc_auc_ci(y, s)
    b = mm.roc_auc_ci(y, s, method="bootstrap", n_bootstrap=400, seed=3)
    assert b.auc == d.auc
    assert abs((d.high - d.low) - (b.high - b.low)) < 0.015
    assert b == mm.roc_auc_ci(y, s, method="bootstrap", n_bootstrap=400, seed=3)  # seeded


def test_auc_errors():
    with pytest.raises(ValueError, match="needs positives and negatives"):
        mm.roc_auc_ci([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="only 0/1"):
        mm.roc_auc_ci([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="equally long"):
        mm.roc_auc_ci([0, 1], [0.2])
    with pytest.raises(ValueError, match="did you mean 'delong'"):
        mm.roc_auc_ci([0, 1], [0.2, 0.3], method="delon")


# -------------------------------------------------------------------------------- ellipse


def test_ellipse_circumference():
    assert mm.ellipse_circumference(3.0, 3.0) == pytest.approx(2 * math.pi * 3.0, rel=1e-15)
    # a = 2, b = 1: the exact perimeter is 4 a E(e^2) = 9.688448220547675...
    assert mm.ellipse_circumference(2.0, 1.0) == pytest.approx(9.688448220547675, rel=1e-9)
    assert mm.ellipse_circumference(1.0, 0.0) == pytest.approx(4.0, rel=5e-4)  # degenerate: 4a
    with pytest.raises(ValueError, match="semi-axes"):
        mm.ellipse_circumference(-1.0, 1.0)


def _ellipse_mask(shape, centre_xy, axes, angle_deg, supersample=8):
    """Area-sampled filled ellipse (fraction of each pixel inside), thresholded at 0.5."""
    h, w = shape
    yy, xx = np.mgrid[:h * supersample, :w * supersample]
    x = (xx + 0.5) / supersample - 0.5 - centre_xy[0]
    y = (yy + 0.5) / supersample - 0.5 - centre_xy[1]
    t = math.radians(angle_deg)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    inside = (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1
    return inside.reshape(h, supersample, w, supersample).mean(axis=(1, 3))


@pytest.mark.parametrize("method", mm.hc18.ELLIPSE_METHODS)
def test_fit_ellipse_recovers_a_rotated_ellipse_in_mm(method):
    frac = _ellipse_mask((240, 320), (170.3, 118.6), (120.0, 80.0), 30.0)
    spacing = (0.2, 0.2)
    e = mm.fit_ellipse(frac, method=method, spacing=spacing)  # probability-like map: sub-pixel contour
    assert e.semi_axes_mm == pytest.approx((24.0, 16.0), abs=0.03)
    assert e.center_mm == pytest.approx((170.3 * 0.2, 118.6 * 0.2), abs=0.03)
    assert e.angle_deg == pytest.approx(30.0, abs=0.5)
    assert e.circumference_mm == pytest.approx(mm.ellipse_circumference(24.0, 16.0), rel=2e-3)
    # a binary mask: its 0.5 contour is the pixel edge, within about half a pixel of the ellipse
    binary = mm.fit_ellipse(frac >= 0.5, method=method, spacing=spacing)
    assert binary.circumference_mm == pytest.approx(e.circumference_mm, abs=2 * math.pi * 0.2 * 0.5)
    # SimpleITK input carries its spacing
    img = sitk.GetImageFromArray(frac.astype(np.float32))
    img.SetSpacing(spacing)
    assert mm.fit_ellipse(img, method=method).circumference_mm == pytest.approx(e.circumference_mm, rel=1e-9)


def test_fit_ellipse_picks_the_head_and_handles_nothing():
    frac = _ellipse_mask((200, 200), (100, 100), (60, 40), 0)
    blob = frac.copy()
    blob[5:9, 5:9] = 1  # a stray blob: the longer contour (the head) is fitted
    assert mm.fit_ellipse(blob).semi_axes_mm == pytest.approx((60, 40), abs=0.1)
    empty = mm.fit_ellipse(np.zeros((20, 20)))
    assert math.isnan(empty.circumference_mm)
    with pytest.raises(ValueError, match="did you mean 'opencv'"):
        mm.fit_ellipse(frac, method="open_cv")


def test_head_circumference_subtracts_the_boundary_offset():
    frac = _ellipse_mask((200, 300), (150, 100), (90, 60), 10)
    hc = mm.head_circumference(frac, spacing=(0.15, 0.15))
    hc_off = mm.head_circumference(frac, spacing=(0.15, 0.15), boundary_offset_px=mm.HC18_BOUNDARY_OFFSET_PX)
    assert hc - hc_off == pytest.approx(2 * math.pi * 1.39 * 0.15, rel=1e-12)


def test_hc18_split_is_by_subject():
    split = mm.hc18_split(seed=0)
    assert len(split["train"]) + len(split["val"]) == 373
    assert not {c[:3] for c in split["train"]} & {c[:3] for c in split["val"]}
    assert 0.17 < len(split["val"]) / 373 < 0.23
    assert mm.hc18_split(seed=0) == split and mm.hc18_split(seed=1) != split


# ---------------------------------------------------------------------------------- dedup


@pytest.fixture(scope="module")
def scenes():
    """Six unrelated smooth 'ultrasound-like' images (smoothed noise) of 200 x 240 pixels."""
    rng = np.random.default_rng(0)
    return [ndimage.gaussian_filter(rng.random((200, 240)), 6) * 255 for _ in range(6)]


def test_hashes_match_for_copies_and_differ_for_unrelated_images(scenes):
    a = scenes[0]
    resized = cv2.resize(a.astype(np.float32), (160, 133), interpolation=cv2.INTER_AREA)
    noisy = a + np.random.default_rng(1).normal(0, 3, a.shape)
    brighter = a * 1.2 + 10
    rgb = np.repeat(a[..., None], 3, axis=-1)
    for method in dedup.METHODS:
        h = dedup.image_hash(a, method)
        assert h.shape == (64,) and h.dtype == bool
        np.testing.assert_array_equal(dedup.image_hash(rgb, method), h)
        np.testing.assert_array_equal(dedup.image_hash(brighter, method), h)  # gain and offset
        for copy in (resized, noisy):
            assert np.count_nonzero(dedup.image_hash(copy, method) != h) <= 6
        others = [np.count_nonzero(dedup.image_hash(b, method) != h) for b in scenes[1:]]
        assert min(others) >= 16
    assert dedup.image_hash(a, hash_size=16).shape == (256,)


def test_near_duplicate_groups(scenes):
    a, b, c = scenes[:3]
    images = [
        a,
        b,
        cv2.resize(a.astype(np.float32), (120, 100), interpolation=cv2.INTER_AREA),  # resized a
        b + np.random.default_rng(2).normal(0, 4, b.shape),  # noisy b
        c,
        a.copy(),  # exact a
        sitk.GetImageFromArray(c.astype(np.float32)),  # c as a SimpleITK image
    ]
    groups = dedup.near_duplicate_groups(images)
    assert groups.tolist() == [0, 1, 0, 1, 2, 0, 2]
    hashes = np.array([dedup.image_hash(im) for im in images])
    d = dedup.hash_distances(hashes)
    assert d[0, 5] == 0 and (d == d.T).all() and (np.diag(d) == 0).all()
    # with distance 0 only the exact copies are grouped
    assert dedup.near_duplicate_groups(None, hashes=hashes, max_distance=0).tolist()[5] == 0
    # grouping is transitive: chain x ~ y ~ z joins all three
    chain = np.zeros((3, 64), bool)
    chain[1, :8] = True
    chain[2, :16] = True
    assert dedup.near_duplicate_groups(None, hashes=chain, max_distance=8).tolist() == [0, 0, 0]
    assert dedup.near_duplicate_groups(None, hashes=chain, max_distance=7).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="2D grey or RGB"):
        dedup.image_hash(np.zeros((4, 4, 4, 4)))
