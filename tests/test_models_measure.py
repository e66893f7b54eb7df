"""Measurements around the models, no Keras needed: ROC AUC with confidence intervals (against
scikit-learn), head circumference (exact ellipses; the ellipse fit itself is tested in
test_measure.py), perceptual hashes and
near-duplicate groups (medlab.dedup)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medlab import dedup
from medlab import models as mm
from test_measure import _ellipse_mask

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


# ------------------------------------------------------------------------ head circumference


def test_head_circumference_subtracts_the_boundary_offset():
    frac = _ellipse_mask((200, 300), (150, 100), (90, 60), 10)
    hc = mm.head_circumference(frac, spacing=(0.15, 0.15))
    hc_off = mm.head_circumference(frac, spacing=(0.15, 0.15), boundary_offset_px=mm.HC18_BOUNDARY_OFFSET_PX)
    assert hc - hc_off == pytest.approx(2 * math.pi * mm.HC18_BOUNDARY_OFFSET_PX * 0.15, rel=1e-12)


def test_head_crop_keeps_the_head_in_physical_space():
    """The crop of the second pass: the head fills 1 / margin of its side and its ellipse, resampled
    back onto the image, is the same one (sub-pixel); parts outside the image are black."""
    from medlab.models.data import resample_onto
    from medlab.models.hc18 import head_crop
    from medlab.segmentation import fit_ellipse

    frac = _ellipse_mask((200, 300), (190.0, 110.0), (90.0, 60.0), 20.0)  # near the right border
    img = sitk.GetImageFromArray(frac.astype(np.float32))
    img.SetSpacing((0.25, 0.25))
    img.SetOrigin((-12.0, 30.0))
    e = fit_ellipse(img)
    crop = head_crop(img, e, size=(160, 160), margin=1.4)
    assert crop.GetSize() == (160, 160)
    assert crop.GetSpacing()[0] == pytest.approx(1.4 * 2 * e.semi_axes_mm[0] / 160)
    inner = fit_ellipse(crop)
    assert inner.semi_axes_mm == pytest.approx(e.semi_axes_mm, rel=2e-3)
    assert inner.circumference_mm == pytest.approx(e.circumference_mm, rel=2e-3)
    # the crop's centre is the ellipse's centre
    assert np.array(inner.centre_mm) / crop.GetSpacing()[0] == pytest.approx([79.5, 79.5], abs=0.3)
    # the crop reaches past the right border (x = 300 px, 16 px short of its edge): black there
    assert sitk.GetArrayViewFromImage(crop)[80, -3:].max() == 0.0
    back = resample_onto(crop, img)
    assert fit_ellipse(back).circumference_mm == pytest.approx(e.circumference_mm, rel=2e-3)
    # shifted crops move the head the other way
    shifted = fit_ellipse(head_crop(img, e, size=(160, 160), margin=1.4, shift=(0.05, 0.0)))
    assert shifted.centre_mm[0] == pytest.approx(inner.centre_mm[0] - 0.05 * 1.4 * 2 * e.semi_axes_mm[0], abs=0.1)
    with pytest.raises(ValueError, match="margin"):
        head_crop(img, e, margin=0)
    with pytest.raises(ValueError, match="no head found"):
        head_crop(img, fit_ellipse(np.zeros((20, 20))))


def test_hc18_split_is_by_subject_and_stratified_by_head_size():
    split = mm.hc18_split(seed=0)
    n = sum(len(v) for v in split.values())
    assert n == 873 and set(split) == {"train", "val", "test"}
    subjects = [{c[:3] for c in split[k]} for k in ("train", "val", "test")]
    assert not (subjects[0] & subjects[1] or subjects[0] & subjects[2] or subjects[1] & subjects[2])
    assert 0.13 < len(split["val"]) / n < 0.17 and 0.13 < len(split["test"]) / n < 0.17
    # every head-size band is in every part, in about its overall share (HC18 is ordered by
    # gestational age: a split by subject range would put all large heads in one part)
    hc = dict(zip(split["train"] + split["val"] + split["test"],
                  mm.hc18._hc_of(split["train"] + split["val"] + split["test"]), strict=True))
    overall = {b: np.mean(mm.hc_band(list(hc.values())) == b) for b in ("<150", "150-250", ">250")}
    for part in ("val", "test"):
        bands = mm.hc_band([hc[c] for c in split[part]])
        for b, share in overall.items():
            assert abs(np.mean(bands == b) - share) < 0.04, (part, b)
    assert max(hc[c] for c in split["test"]) > 300 and min(hc[c] for c in split["test"]) < 70
    assert mm.hc18_split(seed=0) == split and mm.hc18_split(seed=1) != split
    assert mm.hc18_split(test_fraction=0)["test"] == []
    with pytest.raises(ValueError, match="must be < 1"):
        mm.hc18_split(val_fraction=0.6, test_fraction=0.5)


def test_hc_band_edges():
    assert list(mm.hc_band([149.9, 150.0, 250.0, 250.1])) == ["<150", "150-250", "150-250", ">250"]


def test_head_qc_reasons():
    ok = mm.head_qc(hc_mm=200.0, pixel_mm=0.15, fit_residual=0.005, border_share=0.0, tta_spread=0.005)
    assert ok == mm.HeadQC(False, (), 0.005, 0.0, 0.005, pytest.approx(200 / 0.15))
    bad = mm.head_qc(hc_mm=1005.0, pixel_mm=1.0, fit_residual=0.05, border_share=0.2, tta_spread=0.1)
    assert bad.flagged and len(bad.reasons) == 4  # all but the pixel count
    assert "implausible size for the pixel spacing: 1005 mm outside 40-400 mm" in bad.reasons
    assert "head cut by the image border (20% of its outline)" in bad.reasons
    assert mm.head_qc(hc_mm=math.nan, pixel_mm=0.1, fit_residual=math.nan, border_share=math.nan, tta_spread=0,
                      blank=True).reasons == ("blank image (constant intensity)", "no head found")
    damaged = mm.head_qc(hc_mm=200.0, pixel_mm=0.15, fit_residual=0.005, border_share=0.0, tta_spread=0.005,
                         nonfinite_px=3)
    assert damaged.flagged and damaged.reasons == (
        "3 pixels are not finite (NaN or inf): a damaged image or a wrong conversion",)
    # thresholds can be overridden
    assert not mm.head_qc(hc_mm=200.0, pixel_mm=0.15, fit_residual=0.05, border_share=0.0, tta_spread=0.0,
                          thresholds={"max_fit_residual": 0.1}).flagged


def test_expected_error_flag_and_its_model_by_hand():
    from medlab.models.hc18 import ERROR_MODEL_FEATURES, expected_error, fit_error_model

    # a model with one active feature (log pixel size): exp(0.5 + 1 * (log 0.2 - log 0.1) / 1) - 0.2
    model = {"features": list(ERROR_MODEL_FEATURES), "mean": [math.log(0.1), 0, 0, 0, 0, 0], "scale": [1.0] * 6,
             "coef": [1.0, 0, 0, 0, 0, 0], "intercept": 0.5, "floor_mm": 0.2}
    got = expected_error(model, pixel_mm=0.2, hc_mm=200.0, tta_spread=0.0, fit_residual=0.0, pass_change=0.0,
                         level_spread=0.0)
    assert got == pytest.approx(math.exp(0.5) * 2 - 0.2)
    assert math.isnan(expected_error(model, pixel_mm=0.2, hc_mm=200.0, tta_spread=0.0, fit_residual=0.0,
                                     pass_change=0.0, level_spread=math.nan))
    qc = mm.head_qc(hc_mm=200.0, pixel_mm=0.15, fit_residual=0.005, border_share=0.0, tta_spread=0.005,
                    expected_error_mm=3.04, thresholds={"max_expected_error_mm": 2.5})
    assert qc.reasons == ("large expected error: 3.0 mm (> 2.5 mm, from the pixel size, the head size and the "
                          "outline's stability)",) and qc.expected_error_mm == 3.04
    # no error model (NaN): the check is skipped
    assert not mm.head_qc(hc_mm=200.0, pixel_mm=0.15, fit_residual=0.005, border_share=0.0, tta_spread=0.005,
                          thresholds={"max_expected_error_mm": 2.5}).flagged
    # the gamma GLM recovers a known log-linear mean: |error| + 0.2 ~ Gamma(shape 20, mean exp(0.3 + 0.5 z))
    rng = np.random.default_rng(0)
    n = 4000
    px = np.exp(rng.normal(-2, 0.4, n))
    mean = np.exp(0.3 + 0.5 * (np.log(px) + 2) / 0.4)
    table = pd.DataFrame({"pixel_size_mm": px, "hc_opencv_mm": rng.uniform(100, 300, n),
                          "abs_err_opencv_mm": rng.gamma(20, mean / 20) - 0.2, "tta_spread": rng.random(n) * 0.01,
                          "fit_residual": rng.random(n) * 0.02, "pass_change": rng.random(n) * 0.02,
                          "level_spread": rng.random(n) * 0.05})
    fitted = fit_error_model(table, alpha=0.0)
    assert fitted["coef"][0] * 0.4 / fitted["scale"][0] == pytest.approx(0.5, abs=0.03)
    assert np.abs(fitted["coef"][1:]).max() < 0.03
    # the threshold of the check flags the chosen share of a validation table
    table = table.assign(expected_error_mm=expected_error(fitted, **{
        "pixel_mm": table["pixel_size_mm"], "hc_mm": table["hc_opencv_mm"], "tta_spread": table["tta_spread"],
        "fit_residual": table["fit_residual"], "pass_change": table["pass_change"],
        "level_spread": table["level_spread"]}))
    t = mm.choose_qc_thresholds(table, expected_error_share=0.2)
    assert (table["expected_error_mm"] > t["max_expected_error_mm"]).mean() == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ValueError, match="expected_error_share"):
        mm.choose_qc_thresholds(table, expected_error_share=1.0)


def test_outline_correction_by_hand_and_its_fit():
    from medlab.models.hc18 import fit_outline_correction, outline_correction

    corr = {"mean": [0.0, 0.0, 0.03], "scale": [1.0, 1.0, 0.01], "coef": [0.0, 0.0, 0.01], "intercept": 0.002}
    # level spread 0.05: z = 2, c = 0.002 + 0.02
    assert outline_correction(corr, pixel_mm=0.1, hc_mm=200.0, level_spread=0.05) == pytest.approx(0.022)
    assert math.isnan(outline_correction(corr, pixel_mm=0.1, hc_mm=200.0, level_spread=math.nan))
    # HCs that are (1 + 0.4 * level spread) too large: the fit finds c = 0.4 * level spread
    rng = np.random.default_rng(1)
    n = 500
    ref = rng.uniform(60, 340, n)
    level = rng.uniform(0.02, 0.06, n)
    hc = ref / (1 - 0.4 * level)
    table = pd.DataFrame({"pixel_size_mm": rng.uniform(0.05, 0.3, n), "hc_opencv_mm": hc, "hc_ref_mm": ref,
                          "level_spread": level})
    fitted = fit_outline_correction(table, alpha=0.0)
    c = outline_correction(fitted, pixel_mm=table["pixel_size_mm"], hc_mm=hc, level_spread=level)
    np.testing.assert_allclose(hc * (1 - c), ref, rtol=1e-4)
    # it records the fitted range of each input and does not extrapolate beyond it: a level spread
    # of 0.2 (outside 0.02-0.06) is corrected as the largest fitted one, 0.4 * max(level)
    assert fitted["low"][2] <= level.min() and fitted["high"][2] >= level.max()
    assert fitted["high"][2] - level.max() < 1e-5
    big = outline_correction(fitted, pixel_mm=0.1, hc_mm=200.0, level_spread=0.2)
    assert big == pytest.approx(0.4 * level.max(), abs=1e-4)
    # the hand-made correction above has no range: it extrapolates, as corrections fitted before did
    assert outline_correction(corr, pixel_mm=0.1, hc_mm=200.0, level_spread=0.2) == pytest.approx(0.172)


def test_hc18_summary_relative_and_outline_errors_by_hand():
    # two subjects: errors 2 mm on a 100 mm head at 0.1 mm pixels, 3 mm on a 300 mm head at 0.25 mm
    table = pd.DataFrame({"case": ["001_HC", "002_HC"], "subject": ["001", "002"], "pixel_size_mm": [0.1, 0.25],
                          "hc_ref_mm": [100.0, 300.0], "hc_opencv_mm": [102.0, 297.0], "abs_err_opencv_mm": [2.0, 3.0],
                          "band": ["<150", ">250"], "dice": [0.95, 0.97], "qc_flag": [False, True],
                          "qc_reasons": ["", "large expected error: 3.0 mm"]})
    s = mm.hc18_summary(table, n_boot=50)
    assert s["overall"]["mape_pct"] == pytest.approx((2.0 + 1.0) / 2)
    assert s["bands"][">250"]["mape_pct"] == pytest.approx(1.0)
    # 3 mm of perimeter at 0.25 mm pixels: an outline 3 / (2 pi 0.25) = 1.91 pixels out
    assert s["bands"][">250"]["mad_radius_px"] == pytest.approx(3 / (2 * math.pi * 0.25))
    assert s["bands"]["<150"]["mad_radius_px"] == pytest.approx(2 / (2 * math.pi * 0.1))
    assert s["bands"]["150-250"]["n_images"] == 0 and math.isnan(s["bands"]["150-250"]["mape_pct"])
    assert s["overall"]["bias_mm"] == pytest.approx(-0.5)
    assert s["overall"]["n_unflagged"] == 1 and s["overall"]["mad_unflagged_mm"] == pytest.approx(2.0)
    assert s["bands"][">250"]["n_unflagged"] == 0 and math.isnan(s["bands"][">250"]["mad_unflagged_mm"])


def test_hc18_reference_repeatability_pairs_by_hand():
    # from training_set_pixel_size_and_HC.csv: 010_HC 71.91 mm at 0.079935 mm, 010_2HC 72.87 at 0.079927;
    # subject 014 has three images (three pairs), 011 one (no pair)
    t = mm.hc18_reference_repeatability(["010_HC", "010_2HC", "014_HC", "014_2HC", "014_3HC", "011_HC"])
    assert len(t) == 4 and sorted(t["subject"]) == ["010", "014", "014", "014"]
    row = t[t["subject"] == "010"].iloc[0]
    assert row["abs_diff_mm"] == pytest.approx(0.96)
    assert row["abs_diff_pct"] == pytest.approx(100 * 0.96 / ((71.91 + 72.87) / 2))
    assert row["abs_diff_radius_px"] == pytest.approx(0.96 / (2 * math.pi * (0.079935165 + 0.079927246) / 2))
    assert set(t["band"]) == {"<150"}
    assert t[t["subject"] == "014"]["abs_diff_mm"].max() == pytest.approx(63.34 - 60.26)
    # every image this machine holds: 200 pairs of 143 fetuses
    full = mm.hc18_reference_repeatability()
    assert len(full) == 200 and full["subject"].nunique() == 143


def test_level_spread_of_a_blurred_disk_is_its_ramp_over_the_diameter():
    from medlab.models.hc18 import _level_spread

    # a disk of radius 60 px whose probability falls linearly from 1 to 0 over 8 px: the 0.25 and 0.75
    # contours lie at radii 62 and 58, so (HC_0.25 - HC_0.75) / HC_0.5 = 4 / 60
    yy, xx = np.mgrid[:200, :200]
    prob = np.clip((64 - np.hypot(yy - 100, xx - 100)) / 8, 0, 1)
    assert _level_spread(prob, method="opencv", spacing=(0.2, 0.2)) == pytest.approx(4 / 60, rel=0.01)
    assert _level_spread((prob > 0.5).astype(float), method="opencv", spacing=(1, 1)) == pytest.approx(0, abs=0.01)


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


# ------------------------------------------------------------------ BUSI operating point, calibration


def test_threshold_at_sensitivity_is_the_highest_that_reaches_it():
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0])
    s = np.array([0.95, 0.9, 0.6, 0.3, 0.1, 0.7, 0.2, 0.05])
    assert mm.threshold_at_sensitivity(y, s, 0.8) == 0.3  # 4 of 5 positives at >= 0.3
    assert mm.threshold_at_sensitivity(y, s, 0.81) == 0.1  # the fifth one is needed
    assert mm.threshold_at_sensitivity(y, s, 0.2) == 0.95
    with pytest.raises(ValueError, match="sensitivity"):
        mm.threshold_at_sensitivity(y, s, 0.0)
    with pytest.raises(ValueError, match="no positives"):
        mm.threshold_at_sensitivity(np.zeros(3), [0.1, 0.2, 0.3])


def test_expected_calibration_error_by_hand():
    from medlab.metrics import calibration

    # one bin: every image says 0.9, half are positive -> |0.5 - 0.9| = 0.4
    assert calibration([0, 1, 0, 1], [0.9] * 4).ece == pytest.approx(0.4)
    # two bins of 2: [0.1, 0.3] observed 0 (|0 - 0.2|), [0.7, 0.9] observed 1 (|1 - 0.8|) -> 0.2
    assert calibration([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], n_bins=2).ece == pytest.approx(0.2)
    assert calibration([0, 1], [0.0, 1.0]).ece == 0.0  # confident and right


def test_busi_performance_by_hand():
    import pandas as pd

    # 4 benign, 4 malignant (one normal row that must not count)
    table = pd.DataFrame({"label": ["benign"] * 4 + ["malignant"] * 4 + ["normal"],
                          "p_malignant": [0.05, 0.15, 0.45, 0.85, 0.35, 0.55, 0.75, 0.95, 0.99]})
    r = mm.busi_performance(table, threshold=0.5, n_bins=2, n_bootstrap=200)
    assert (r["n_benign"], r["n_malignant"]) == (4, 4)
    # pairs malignant > benign: 0.35 beats 2, 0.55 and 0.75 beat 3 (not 0.85), 0.95 beats 4 -> 12 of 16
    assert r["auc"] == pytest.approx(12 / 16)
    assert r["auc_ci"][0] <= r["auc"] <= r["auc_ci"][1]
    # bins [0, 0.5): 0.05 0.15 0.45 0.35 -> mean 0.25, observed 1/4; [0.5, 1]: 0.85 0.55 0.75 0.95 -> 0.775, 3/4
    assert r["reliability"]["count"] == [4, 4]
    np.testing.assert_allclose(r["reliability"]["prob_pred"], [0.25, 0.775])
    assert r["ece"] == pytest.approx((4 * 0.0 + 4 * abs(0.75 - 0.775)) / 8)
    assert r["confusion"] == [[3, 1], [1, 3]] and not r["threshold_chosen_here"]
    assert r["sensitivity"] == 0.75 and r["specificity"] == 0.75
    # Wilson 95 % interval of 3/4: 0.301-0.954
    np.testing.assert_allclose(r["sensitivity_ci"], [0.3006, 0.9544], atol=1e-3)
    chosen = mm.busi_performance(table, sensitivity=1.0, n_bootstrap=200)
    assert chosen["threshold"] == 0.35 and chosen["sensitivity"] == 1.0 and chosen["threshold_chosen_here"]
    assert chosen["specificity"] == 0.5
    with pytest.raises(ValueError, match="benign and malignant"):
        mm.busi_performance(table[table["label"] != "malignant"], n_bootstrap=200)
    with pytest.raises(ValueError, match="p_malignant"):
        mm.busi_performance(table.drop(columns="p_malignant"))
