"""medlab.classification and the classification metrics of medlab.metrics: agreement with
scikit-learn, exact answers on synthetic data, and the leakage guard on planted duplicates."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score
from sklearn.model_selection import KFold, StratifiedGroupKFold, cross_val_predict

from medlab import classification as mc
from medlab import metrics


def _data(n=120, p=8, informative=2, shift=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, p))
    X[:, :informative] += shift * y[:, None]
    groups = rng.integers(0, n // 3, n)  # about three items per group
    return X, y, groups


# ------------------------------------------------------------------------------ metrics


def test_calibration_and_brier_agree_with_sklearn():
    rng = np.random.default_rng(1)
    p = rng.random(300)
    y = (rng.random(300) < p ** 1.5).astype(int)
    for strategy in ("uniform", "quantile"):
        c = metrics.calibration(y, p, n_bins=7, strategy=strategy)
        prob_true, prob_pred = calibration_curve(y, p, n_bins=7, strategy=strategy)
        np.testing.assert_allclose(c.prob_true, prob_true, atol=1e-12)
        np.testing.assert_allclose(c.prob_pred, prob_pred, atol=1e-12)
        assert c.count.sum() == 300
    assert c.brier == pytest.approx(brier_score_loss(y, p), abs=1e-15)
    # perfectly confident and right: Brier 0; always wrong: 1
    assert metrics.calibration([0, 1], [0.0, 1.0]).brier == 0.0
    assert metrics.calibration([0, 1], [1.0, 0.0]).brier == 1.0


def test_confusion_agrees_with_sklearn():
    rng = np.random.default_rng(2)
    y, d = rng.random(50) < 0.5, rng.random(50) < 0.5
    c = metrics.confusion(y, d)
    np.testing.assert_array_equal(c.matrix, confusion_matrix(y, d, labels=[0, 1]))
    (tn, fp), (fn, tp) = c.matrix
    assert c.sensitivity == tp / (tp + fn) and c.specificity == tn / (tn + fp)
    assert c.accuracy == (tp + tn) / 50 and c.balanced_accuracy == (c.sensitivity + c.specificity) / 2
    assert np.isnan(metrics.confusion([0, 0], [0, 0]).sensitivity)  # no positives


def test_metric_errors_name_the_argument():
    with pytest.raises(ValueError, match="`probabilities` must lie in"):
        metrics.calibration([0, 1], [0.2, 1.3])
    with pytest.raises(ValueError, match="`probabilities` .* must match `y_true`"):
        metrics.calibration([0, 1], [0.2])
    with pytest.raises(ValueError, match="did you mean 'quantile'"):
        metrics.calibration([0, 1], [0.2, 0.3], strategy="quantil")
    with pytest.raises(ValueError, match="`y_pred` must hold only 0/1"):
        metrics.confusion([0, 1], [0, 2])


def test_models_reexports_the_one_roc_auc_ci():
    from medlab import models

    assert models.roc_auc_ci is metrics.roc_auc_ci and models.AUC is metrics.AUC


def test_perfectly_separable_set_gives_auc_one_and_exact_confusion():
    y = np.array([0] * 10 + [1] * 10)
    p = np.r_[np.linspace(0.0, 0.4, 10), np.linspace(0.6, 1.0, 10)]
    ev = mc.evaluate(y, p, n_bootstrap=200)
    assert ev.auc.auc == ev.auc.low == ev.auc.high == 1.0
    assert ev.confusion.matrix.tolist() == [[10, 0], [0, 10]]
    assert ev.tpr[np.flatnonzero(ev.fpr == 0)[-1]] == 1.0  # the curve reaches (0, 1)


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_n():
    widths = []
    for n in (60, 240, 960):
        rng = np.random.default_rng(n)
        y = (rng.random(n) < 0.5).astype(int)
        s = 1 / (1 + np.exp(-rng.normal(y * 1.2, 1.0)))
        ev = mc.evaluate(y, s, n_bootstrap=500, seed=1)
        assert ev.auc.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert ev.auc.low < ev.auc.auc < ev.auc.high
        widths.append(ev.auc.high - ev.auc.low)
    # width ~ 1/sqrt(n): each fourfold n about halves it
    assert widths[0] > 1.5 * widths[1] > 2.25 * widths[2]


# ----------------------------------------------------------------------------- pipelines


@pytest.mark.parametrize("model", mc.MODELS)
def test_cross_validate_matches_sklearn_reference(model):
    X, y, groups = _data()
    pipe = mc.make_pipeline(model, k_best=4)
    cv = mc.cross_validate(pipe, X, y, groups, n_splits=4, seed=3)
    ref = cross_val_predict(pipe, X, y, groups=groups, method="predict_proba",
                            cv=StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=3))[:, 1]
    np.testing.assert_allclose(cv.probability, ref, atol=1e-12)
    assert set(cv.fold.tolist()) == {0, 1, 2, 3}
    for k, (tr, te) in enumerate(cv.folds):
        assert np.all(cv.fold[te] == k)
        assert cv.fold_auc[k] == pytest.approx(roc_auc_score(y[te], cv.probability[te]))
    assert roc_auc_score(y, cv.probability) > 0.75  # two informative features, shift 1.5 sd


def test_grouped_folds_never_straddle_and_are_stratified():
    X, y, groups = _data(n=300, seed=5)
    folds = mc.grouped_folds(y, groups, n_splits=5, seed=0)
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested.tolist()) == list(range(300))  # every item tested once
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        assert abs(y[te].mean() - y.mean()) < 0.1
    ref = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, groups))
    assert all(np.array_equal(a, np.sort(b)) for (_, a), (_, b) in zip(folds, ref, strict=True))


def test_k_best_is_capped_at_the_available_features():
    X, y, _ = _data(p=3)
    X = np.c_[X, np.ones(len(X))]  # a constant column is dropped before selection
    est, prob = mc.fit_predict(mc.make_pipeline("logistic", k_best=50), X, y, np.arange(80), np.arange(80, 120))
    assert est.named_steps["select"].k == 3 and prob.shape == (40,)


def test_feature_importance_ranks_the_informative_feature_first():
    X, y, _ = _data(n=200, p=6, informative=1, shift=2.5, seed=7)
    names = [f"feat{i}" for i in range(6)]
    tr, te = np.arange(140), np.arange(140, 200)
    rf, _ = mc.fit_predict(mc.make_pipeline("random_forest", k_best=4, n_estimators=100), X, y, tr, te)
    imp = mc.feature_importance(rf, X[te], y[te], names=names, method="impurity")
    assert imp.index[0] == "feat0" and imp["importance"].sum() == pytest.approx(1.0)
    assert (imp["importance"] == 0).sum() == 2  # two features not selected
    kept = rf.named_steps["select"].get_support()
    np.testing.assert_allclose(imp.loc[np.array(names)[kept], "importance"],
                               rf.named_steps["model"].feature_importances_)
    svm, _ = mc.fit_predict(mc.make_pipeline("svm"), X, y, tr, te)
    perm = mc.feature_importance(svm, X[te], y[te], names=names, n_repeats=5)
    assert perm.index[0] == "feat0" and perm["importance"].iloc[0] > 0.1
    with pytest.raises(ValueError, match="needs a tree ensemble"):
        mc.feature_importance(svm, X[te], y[te], method="impurity")


def test_permutation_importance_matches_sklearn_on_the_whole_pipeline():
    from sklearn.inspection import permutation_importance

    X, y, _ = _data(n=150, p=7, informative=2, seed=8)
    tr, te = np.arange(100), np.arange(100, 150)
    est, _ = mc.fit_predict(mc.make_pipeline("logistic", k_best=3), X, y, tr, te)
    ours = mc.feature_importance(est, X[te], y[te], n_repeats=4, seed=2)
    ref = permutation_importance(est, X[te], y[te], scoring="roc_auc", n_repeats=4, random_state=2)
    names = [f"f{i}" for i in range(7)]
    np.testing.assert_allclose(ours.loc[names, "importance"], ref.importances_mean, atol=1e-12)
    np.testing.assert_allclose(ours.loc[names, "std"], ref.importances_std, atol=1e-12)


def test_feature_matrix_drops_text_empty_and_constant_columns():
    t = pd.DataFrame({"a": [1.0, 2.0, np.inf], "b": [np.nan] * 3, "c": [5.0] * 3, "d": ["x", "y", "z"],
                      "e": [0, 1, 1]})
    X, names = mc.feature_matrix(t)
    assert names == ["a", "e"]
    assert np.isnan(X[2, 0]) and X.shape == (3, 2)


# -------------------------------------------------------------------------- leakage guard


def _scenes(n, seed=0):
    rng = np.random.default_rng(seed)
    return [ndimage.gaussian_filter(rng.random((96, 96)), 3) for _ in range(n)]


def test_leakage_guard_catches_planted_duplicates():
    rng = np.random.default_rng(11)
    originals = _scenes(30)
    images = list(originals)
    planted = {}
    for k in range(0, 30, 3):  # ten copies: resized, brighter, noisy
        copy = originals[k][::2, ::2] * 1.3 + 0.1 + rng.normal(0, 0.002, (48, 48))
        planted[len(images)] = k
        images.append(copy)
    groups = mc.leakage_groups(images)
    assert len(np.unique(groups)) == 30
    for i, k in planted.items():
        assert groups[i] == groups[k]
    y = (np.arange(len(images)) % 2).astype(int)
    y[list(planted)] = y[list(planted.values())]
    # a plain K-fold of images puts copies on both sides; the guard names the groups
    straddling = 0
    for tr, te in KFold(5, shuffle=True, random_state=0).split(images):
        try:
            mc.check_no_leakage(groups, tr, te)
        except ValueError as exc:
            assert "straddle" in str(exc)
            straddling += 1
    assert straddling >= 3
    for tr, te in mc.grouped_folds(y, groups, n_splits=5):
        mc.check_no_leakage(groups, tr, te)  # does not raise


def test_leakage_groups_join_known_groups():
    hashes = np.zeros((5, 64), bool)
    hashes[[2, 3], :40] = True  # items 2 and 3 are near-duplicates, the others differ
    hashes[4, 20:] = True
    hashes[1, 50:] = True
    assert mc.leakage_groups(hashes=hashes).tolist() == [0, 1, 2, 2, 3]
    # patient A holds items 0 and 3: 0, 2, 3 become one group
    assert mc.leakage_groups(hashes=hashes, groups=["A", "B", "C", "A", "D"]).tolist() == [0, 1, 0, 0, 2]
    assert mc.leakage_groups(groups=["p", "q", "p"]).tolist() == [0, 1, 0]


def test_errors_name_the_argument():
    X, y, groups = _data()
    with pytest.raises(ValueError, match="did you mean 'svm'"):
        mc.make_pipeline("svn")
    with pytest.raises(ValueError, match="`y` must hold only 0/1"):
        mc.cross_validate(mc.make_pipeline(), X, y + 1, groups)
    with pytest.raises(ValueError, match="`X` has 120 rows but `y` has 119"):
        mc.cross_validate(mc.make_pipeline(), X, y[:-1], groups[:-1])
    with pytest.raises(ValueError, match="`groups` must hold one group per item"):
        mc.grouped_folds(y, groups[:5])
    with pytest.raises(ValueError, match="`n_splits`=5 needs at least 5 groups of class 1"):
        mc.grouped_folds([0, 0, 0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 5, 6, 6])
    with pytest.raises(ValueError, match="items \\[3\\] are in both"):
        mc.check_no_leakage(groups, [1, 2, 3], [3, 4])
    with pytest.raises(ValueError, match="leakage: 1 group"):
        mc.fit_predict(mc.make_pipeline(), X, y, [0, 1, 2, 3], [4], groups=[0, 1, 2, 3, 3] + [9] * 115)
    with pytest.raises(ValueError, match="`threshold` must be in"):
        mc.evaluate([0, 1], [0.2, 0.8], threshold=2)
    with pytest.raises(ValueError, match="`names` has 2 entries"):
        mc.feature_importance(None, X, y, names=["a", "b"])
    with pytest.raises(ValueError, match="give `images`, `hashes` or `groups`"):
        mc.leakage_groups()


@pytest.mark.parametrize("module", ["medlab.classification", "medlab.metrics._classification"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_image_feature_table_agrees_with_features_extract():
    import SimpleITK as sitk

    from medlab import features

    rng = np.random.default_rng(3)
    grey = ndimage.gaussian_filter(rng.random((48, 64)), 2) * 200
    rgb = sitk.GetImageFromArray(np.repeat(grey[..., None], 3, axis=-1).astype(np.float32), isVector=True)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:45] = 1
    mask_img = sitk.GetImageFromArray(mask)
    t = mc.image_feature_table([rgb], [mask_img], names=["a"], image_families=["stat"], mask_families=["morph", "stat"])
    ref_img = features.extract(grey.astype(np.float32), np.ones_like(mask), families=["stat"], spacing=1.0,
                               texture_dims=("2D",))
    ref_les = features.extract(grey.astype(np.float32), mask, families=["morph", "stat"], spacing=1.0, texture_dims=("2D",))
    assert list(t.index) == ["a"]
    np.testing.assert_allclose(t[[f"image_{c}" for c in ref_img.columns]].to_numpy(), ref_img.to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(t[[f"lesion_{c}" for c in ref_les.columns]].to_numpy(), ref_les.to_numpy(), rtol=1e-4)  # float32 channel mean
    assert t.loc["a", "lesion_morph_approx_vol"] == 20 * 25  # 500 pixels of 1 x 1 x 1 mm
    with pytest.raises(ValueError, match="`masks` has 0 entries"):
        mc.image_feature_table([rgb], [])
    with pytest.raises(ValueError, match="no features asked for"):
        mc.image_feature_table([rgb], image_families=[])


def test_grey_image_is_the_mean_of_the_colour_components_on_the_same_grid():
    import SimpleITK as sitk

    from medlab._image import grey_image

    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 60, 120
    rgb[1, 2] = (255, 0, 3)
    img = sitk.GetImageFromArray(rgb, isVector=True)
    img.SetSpacing((0.5, 0.25))
    img.SetOrigin((3.0, -2.0))
    grey = grey_image(img)
    assert grey.GetNumberOfComponentsPerPixel() == 1 and grey.GetPixelID() == sitk.sitkFloat64
    want = np.full((3, 4), 70.0)
    want[1, 2] = 86.0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(grey), want)
    assert grey.GetSpacing() == img.GetSpacing() and grey.GetOrigin() == img.GetOrigin()
    scalar = sitk.GetImageFromArray(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert grey_image(scalar) is scalar  # a scalar image unchanged
