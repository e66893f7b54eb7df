"""Classical classifiers on feature tables: scikit-learn pipelines, grouped cross-validation
without leakage, ROC AUC with confidence intervals, calibration, confusion matrix, importance.

A binary task throughout (positive class 1, e.g. malignant); scores are the predicted
probability of the positive class.

=================================== ==========================================================
Pipelines
:func:`make_pipeline`               impute -> drop constant -> scale -> select k best -> model
``MODELS``                          'svm' (RBF SVC), 'random_forest', 'logistic'
:func:`feature_matrix`              a feature table -> finite float matrix and column names
:func:`image_feature_table`         IBSI features of whole 2D images and of their lesion masks
Leakage guard
:func:`leakage_groups`              near-duplicate images (:mod:`medlab.dedup`) joined with any
                                    known groups (patient, lesion) -> one group id per item
:func:`check_no_leakage`            ValueError naming the groups found in train and test
:func:`straddling_groups`           the groups found in train and test (to count them)
:func:`grouped_folds`               StratifiedGroupKFold folds, checked by the guard
Evaluation
:func:`cross_validate`              out-of-fold probabilities, per-fold AUC, fitted folds
:func:`fit_predict`                 fit on a fixed train part, score a test part (guarded)
:func:`evaluate`                    AUC with bootstrap CI, ROC curve, calibration + Brier,
                                    confusion matrix at a threshold
:func:`feature_importance`          permutation (any model) or impurity (random forest)
=================================== ==========================================================

The metrics themselves (:func:`medlab.metrics.roc_auc_ci`, :func:`~medlab.metrics.calibration`,
:func:`~medlab.metrics.confusion`) live in :mod:`medlab.metrics`; this module produces the scores.

Why groups: near-duplicate images (the same lesion saved twice, cropped or re-encoded) in train
and test make a classifier look better than it is. Every split here is made on groups and then
checked, so a duplicate can never straddle train and test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medlab._image import grey_image, is_image
from medlab._options import check_choice, check_int
from medlab.metrics import (
    AUC,
    Calibration,
    Confusion,
    calibration,
    confusion,
    roc_auc_ci,
)
from medlab.dedup import linked_groups, near_duplicate_groups

__all__ = [
    "MODELS",
    "make_pipeline",
    "feature_matrix",
    "image_feature_table",
    "leakage_groups",
    "check_no_leakage",
    "straddling_groups",
    "grouped_folds",
    "cross_validate",
    "CVResult",
    "fit_predict",
    "evaluate",
    "Evaluation",
    "feature_importance",
]

MODELS = ("svm", "random_forest", "logistic")


# ------------------------------------------------------------------------------ input checks


def _labels(y, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1D (one label per item); got shape {arr.shape}")
    if not np.isin(arr, [0, 1]).all():
        raise ValueError(f"`{name}` must hold only 0/1 (or False/True), 1 = positive; "
                         f"got values {np.unique(arr)[:5].tolist()}")
    return arr.astype(int)


def _matrix(X, n: int | None = None) -> np.ndarray:
    arr = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"`X` must be 2D (items x features); got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"`X` has {len(arr)} rows but `y` has {n} labels")
    return arr


def _groups(groups, n: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"`groups` must hold one group per item ({n}); got shape {g.shape}")
    return g


# ------------------------------------------------------------------------------- pipelines


def make_pipeline(model: str = "svm", *, k_best: int | None = 20, seed: int = 0, **params):
    """A scikit-learn pipeline: median imputation, constant-feature removal, standard scaling,
    univariate selection of the ``k_best`` features (ANOVA F), then the classifier.

    Parameters
    ----------
    model : {'svm', 'random_forest', 'logistic'}
        'svm': ``SVC(kernel='rbf', C=1, class_weight='balanced')`` with Platt scaling
        (``CalibratedClassifierCV(method='sigmoid', cv=3, ensemble=False)``); 'random_forest': 300 trees, ``min_samples_leaf=2``, balanced class
        weights; 'logistic': L2, ``C=0.1``, balanced class weights.
    k_best : int or None
        Number of features kept by ``SelectKBest(f_classif)``; None keeps all. Fewer than
        ``k_best`` features available keeps them all.
    seed : int
        ``random_state`` of the classifier.
    **params
        Passed to the classifier (the SVC for 'svm'; overrides the defaults above), e.g. ``C=10``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``impute``, ``constant``, ``scale``, ``select``, ``model``; selection is learnt
        inside each training fold, so it does not leak either.

    Examples
    --------
    >>> from medlab.classification import make_pipeline
    >>> [name for name, _ in make_pipeline("logistic").steps]
    ['impute', 'constant', 'scale', 'select', 'model']
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    check_choice("model", model, MODELS)
    if k_best is not None:
        check_int("k_best", k_best, minimum=1)
    check_int("seed", seed, minimum=0)
    if model == "svm":
        svc = SVC(**{"kernel": "rbf", "C": 1.0, "gamma": "scale", "class_weight": "balanced",
                     "random_state": seed, **params})
        # Platt scaling fitted on inner folds of the training part (scikit-learn >= 1.9 replaces
        # SVC(probability=True) by this)
        clf = CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
    elif model == "random_forest":
        clf = RandomForestClassifier(**{"n_estimators": 300, "min_samples_leaf": 2, "class_weight": "balanced",
                                        "random_state": seed, "n_jobs": 1, **params})
    else:
        clf = LogisticRegression(**{"C": 0.1, "class_weight": "balanced", "max_iter": 5000, **params})
    return Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("constant", VarianceThreshold(0.0)),
        ("scale", StandardScaler()),
        ("select", SelectKBest(f_classif, k="all" if k_best is None else k_best)),
        ("model", clf),
    ])


def _fit(pipeline, X, y):
    """Fit a clone; ``k`` of the selection step is capped at the features that reach it (learnt
    from the training part only), so a small or constant-rich table needs no other ``k_best``."""
    from sklearn.base import clone

    est = clone(pipeline)
    names = [name for name, _ in getattr(est, "steps", [])]
    with np.errstate(divide="ignore", invalid="ignore"):  # f_classif: zero within-class variance -> F = inf
        if "select" in names and est.named_steps["select"].k != "all":
            at = names.index("select")
            n_left = clone(est[:at]).fit_transform(X, y).shape[1] if at else X.shape[1]
            est.set_params(select__k=min(int(est.named_steps["select"].k), max(n_left, 1)))
        return est.fit(X, y)


def feature_matrix(table: pd.DataFrame, *, drop_constant: bool = True) -> tuple[np.ndarray, list[str]]:
    """Numeric feature columns of a table (e.g. :func:`medlab.features.extract_table`) as a
    float matrix: non-numeric columns and columns without any finite value are dropped, and
    (``drop_constant``) columns with one value only. Remaining NaN/inf are NaN (the pipeline
    imputes them from the training part).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per item, features in columns.
    drop_constant : bool
        Drop columns with one value only.

    Returns
    -------
    X : (n, p) ndarray of float
    names : list of str
        The ``p`` column names kept.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame; got {type(table).__name__}")
    num = table.select_dtypes(include=[np.number, bool]).astype(float)
    arr = num.to_numpy(dtype=float, copy=True)
    arr[~np.isfinite(arr)] = np.nan
    keep = ~np.isnan(arr).all(axis=0)
    if drop_constant:
        with np.errstate(all="ignore"):
            keep &= np.nanmax(np.where(np.isnan(arr), -np.inf, arr), axis=0) > np.nanmin(
                np.where(np.isnan(arr), np.inf, arr), axis=0)
    return arr[:, keep], [str(c) for c in num.columns[keep]]


def image_feature_table(images: Sequence, masks: Sequence | None = None, *, names: Sequence[str] | None = None,
                        image_families: Sequence[str] | None = ("stat", "ih", "cm", "rlm", "szm", "ngt"),
                        mask_families: Sequence[str] | None = ("morph", "stat", "ih", "cm", "szm"),
                        progress: Callable | None = None, **settings) -> pd.DataFrame:
    """IBSI features (:mod:`medlab.features`) of 2D images: of the whole frame and of a mask.

    Parameters
    ----------
    images : sequence of sitk.Image
        2D images, grey or RGB (channels averaged).
    masks : sequence of sitk.Image, optional
        A region per image (e.g. the lesion, :func:`medlab.apps.breast.segment_us_lesion`).
    names : sequence of str, optional
        Row names (default ``0, 1, ...``).
    image_families, mask_families : sequence of str or None
        Feature families of the whole frame (columns ``image_*``) and of the mask (``lesion_*``);
        an empty sequence leaves that part out.
    progress : callable, optional
        ``progress(fraction, message)`` after each image; False stops with InterruptedError.
    **settings
        :class:`medlab.features.FeatureSettings` fields (``resample_mm``, ``bins``, ...);
        texture is computed in 2D (``texture_dims=('2D',)``) unless given.

    Returns
    -------
    pandas.DataFrame
        One row per image (index ``case``); ``image_<feature>`` and ``lesion_<feature>``
        columns.
    """
    import SimpleITK as sitk

    from medlab import features

    images = list(images)
    names = [str(i) for i in range(len(images))] if names is None else [str(n) for n in names]
    if len(names) != len(images):
        raise ValueError(f"`names` has {len(names)} entries but `images` has {len(images)}")
    if masks is not None:
        masks = list(masks)
        if len(masks) != len(images):
            raise ValueError(f"`masks` has {len(masks)} entries but `images` has {len(images)}")
    parts = [("image", image_families)] + ([("lesion", mask_families)] if masks is not None else [])
    parts = [(prefix, fams) for prefix, fams in parts if fams is None or len(fams)]
    if not parts:
        raise ValueError("no features asked for: `image_families` and `mask_families` (with `masks`) are empty")
    settings = {"texture_dims": ("2D",), **settings}
    rows = []
    for k, (name, image) in enumerate(zip(names, images, strict=True)):
        grey = grey_image(image) if is_image(image) else image
        if not isinstance(grey, sitk.Image) or grey.GetDimension() != 2:
            raise ValueError(f"`images` must hold 2D SimpleITK images; item {k} ({name!r}) is not one")
        row = {}
        for prefix, fams in parts:
            if prefix == "image":
                roi = sitk.Image(grey.GetSize(), sitk.sitkUInt8) + 1
                roi.CopyInformation(grey)
            else:
                roi = masks[k]
            t = features.extract(grey, roi, families=None if fams is None else list(fams), name=name, **settings)
            row.update({f"{prefix}_{c}": v for c, v in t.iloc[0].items()})
        rows.append(row)
        if progress is not None and progress((k + 1) / len(images), f"features of {name}") is False:
            raise InterruptedError(f"image_feature_table stopped by the `progress` callback after {name!r}")
    return pd.DataFrame(rows, index=pd.Index(names, name="case"))


# ---------------------------------------------------------------------------- leakage guard


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Join two groupings: items sharing a group in ``a`` or in ``b`` end in one group
    (connected components), numbered 0.. in order of first appearance."""

    pairs = []
    for g in (a, b):
        _, inverse = np.unique(np.asarray(g), return_inverse=True)
        first = np.full(inverse.max() + 1 if len(inverse) else 0, -1)
        for i, key in enumerate(inverse):
            if first[key] < 0:
                first[key] = i
            else:
                pairs.append((first[key], i))
    return linked_groups(len(a), pairs)


def leakage_groups(images: Sequence | None = None, *, groups=None, hashes=None, method: str = "phash",
                   max_distance: int = 10) -> np.ndarray:
    """Group ids such that near-duplicate images (and items of one known group) share a group.

    Parameters
    ----------
    images : sequence of 2D images, optional
        Hashed with :func:`medlab.dedup.image_hash`; near-duplicates are pairs within
        ``max_distance`` bits, grouped transitively (:func:`medlab.dedup.near_duplicate_groups`).
    groups : sequence, optional
        Known groups (patient, lesion, study) to join with the near-duplicate groups.
    hashes : (n, bits) ndarray, optional
        Precomputed hashes instead of ``images``.
    method, max_distance
        As in :func:`medlab.dedup.near_duplicate_groups`.

    Returns
    -------
    ndarray of int, (n,)
        Group id per item, ``0 .. n_groups - 1`` in order of first appearance. Give it to
        :func:`grouped_folds` / :func:`cross_validate` as ``groups``.
    """

    if images is None and hashes is None and groups is None:
        raise ValueError("give `images`, `hashes` or `groups`")
    dup = None
    if images is not None or hashes is not None:
        dup = near_duplicate_groups(images, method=method, max_distance=max_distance, hashes=hashes)
    if groups is None:
        return dup
    known = np.asarray(groups)
    if dup is None:
        return _union(known, known)
    if len(known) != len(dup):
        raise ValueError(f"`groups` has {len(known)} entries but there are {len(dup)} images")
    return _union(dup, known)


def straddling_groups(groups, train_idx, test_idx) -> np.ndarray:
    """The group ids that have items in both ``train_idx`` and ``test_idx`` (sorted).

    Parameters
    ----------
    groups : (n,) array_like
        Group id per item.
    train_idx, test_idx : array_like of int
        Item indexes of the two parts.

    Returns
    -------
    ndarray
        The group ids found in both parts, sorted (empty: no leakage).
    """
    g = np.asarray(groups)
    return np.intersect1d(g[np.asarray(train_idx, int)], g[np.asarray(test_idx, int)])


def check_no_leakage(groups, train_idx, test_idx) -> None:
    """Raise ValueError if any group has items in both ``train_idx`` and ``test_idx``, or the two
    parts share an item.

    Parameters
    ----------
    groups : (n,) sequence
        Group id per item (e.g. from :func:`leakage_groups`).
    train_idx, test_idx : sequences of int
        Item indices of the two parts.
    """
    g = np.asarray(groups)
    tr, te = np.asarray(train_idx, int), np.asarray(test_idx, int)
    both = np.intersect1d(tr, te)
    if both.size:
        raise ValueError(f"items {both[:10].tolist()} are in both the training and the test part")
    shared = straddling_groups(g, tr, te)
    if shared.size:
        raise ValueError(
            f"leakage: {shared.size} group(s) straddle training and test (e.g. group(s) "
            f"{shared[:5].tolist()}); split by `groups`, e.g. with grouped_folds()")


def grouped_folds(y, groups, *, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, grouped K-fold: ``StratifiedGroupKFold(n_splits, shuffle=True,
    random_state=seed)``; each fold is checked with :func:`check_no_leakage`.

    Parameters
    ----------
    y : (n,) array_like
        Class per item (stratification).
    groups : (n,) array_like
        Group id per item (a group never straddles a train and a test part).
    n_splits : int
        Number of folds.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of (train_idx, test_idx)
        Every item is in exactly one test part.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    yy = _labels(y)
    g = _groups(groups, len(yy))
    check_int("n_splits", n_splits, minimum=2)
    n_groups = len(np.unique(g))
    if n_groups < n_splits:
        raise ValueError(f"`n_splits`={n_splits} needs at least as many groups; got {n_groups}")
    for label in (0, 1):
        n_label_groups = len(np.unique(g[yy == label]))
        if n_label_groups < n_splits:
            raise ValueError(f"`n_splits`={n_splits} needs at least {n_splits} groups of class {label} "
                             f"in `y`; got {n_label_groups}")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = [(np.sort(tr), np.sort(te)) for tr, te in cv.split(np.zeros(len(yy)), yy, g)]
    for tr, te in folds:
        check_no_leakage(g, tr, te)
    return folds


# ------------------------------------------------------------------------------ evaluation


@dataclass
class CVResult:
    """Out-of-fold predictions of :func:`cross_validate`.

    ``probability`` (n,) of the positive class, each from the fold model that did not see the
    item; ``fold`` (n,) the fold that scored it; ``fold_auc`` per fold (NaN where a fold has one
    class); ``estimators`` the fitted fold pipelines; ``folds`` the (train, test) indices.
    """

    probability: np.ndarray
    fold: np.ndarray
    fold_auc: list[float]
    estimators: list = field(repr=False)
    folds: list = field(repr=False)


def cross_validate(pipeline, X, y, groups, *, n_splits: int = 5, seed: int = 0,
                   progress: Callable | None = None) -> CVResult:
    """Grouped, stratified cross-validation with out-of-fold probabilities.

    Parameters
    ----------
    pipeline : sklearn estimator
        E.g. :func:`make_pipeline`; cloned and fitted once per fold.
    X : (n, p) array or DataFrame
    y : (n,) 0/1
    groups : (n,)
        Group per item (:func:`leakage_groups`); no group is in a fold's train and test part.
    n_splits, seed
        As in :func:`grouped_folds`.
    progress : callable, optional
        ``progress(fraction, message)`` after each fold; returning False stops with
        InterruptedError.

    Returns
    -------
    CVResult
    """
    from sklearn.metrics import roc_auc_score

    yy = _labels(y)
    Xa = _matrix(X, len(yy))
    folds = grouped_folds(yy, groups, n_splits=n_splits, seed=seed)
    prob = np.full(len(yy), np.nan)
    fold_of = np.full(len(yy), -1)
    aucs, ests = [], []
    for k, (tr, te) in enumerate(folds):
        est = _fit(pipeline, Xa[tr], yy[tr])
        prob[te] = est.predict_proba(Xa[te])[:, 1]
        fold_of[te] = k
        aucs.append(float(roc_auc_score(yy[te], prob[te])) if len(np.unique(yy[te])) == 2 else float("nan"))
        ests.append(est)
        if progress is not None and progress((k + 1) / len(folds), f"fold {k + 1}/{len(folds)}") is False:
            raise InterruptedError(f"cross_validate stopped by the `progress` callback after fold {k + 1}")
    return CVResult(prob, fold_of, aucs, ests, folds)


def fit_predict(pipeline, X, y, train_idx, test_idx, *, groups=None):
    """Fit on ``train_idx``, return ``(fitted pipeline, probabilities of the test items)``.

    With ``groups``, the split is first checked by :func:`check_no_leakage`.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        An unfitted pipeline (:func:`make_pipeline`); a fitted clone is returned.
    X : (n, p) ndarray
        Feature matrix.
    y : (n,) array_like
        Class per item.
    train_idx, test_idx : array_like of int
        Item indexes of the two parts.
    groups : (n,) array_like, optional
        Group id per item; the split is checked for leakage first.
    """
    yy = _labels(y)
    Xa = _matrix(X, len(yy))
    tr, te = np.asarray(train_idx, int), np.asarray(test_idx, int)
    if groups is not None:
        check_no_leakage(_groups(groups, len(yy)), tr, te)
    if len(np.unique(yy[tr])) < 2:
        raise ValueError("the training part (`train_idx`) must hold both classes")
    est = _fit(pipeline, Xa[tr], yy[tr])
    return est, est.predict_proba(Xa[te])[:, 1]


@dataclass
class Evaluation:
    """What :func:`evaluate` measures on one set of scores.

    ``auc`` (:class:`medlab.metrics.AUC`, bootstrap interval), ``fpr``/``tpr``/``thresholds``
    (ROC curve), ``calibration`` (:class:`medlab.metrics.Calibration`, with the Brier score),
    ``confusion`` (:class:`medlab.metrics.Confusion` at ``threshold``), ``threshold``.
    """

    auc: AUC
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    calibration: Calibration
    confusion: Confusion
    threshold: float

    @property
    def brier(self) -> float:
        return self.calibration.brier

    def summary(self) -> dict:
        """Headline numbers as plain floats (for a table or :func:`medlab.reports.record`)."""
        c = self.confusion
        return {"auc": self.auc.auc, "auc_low": self.auc.low, "auc_high": self.auc.high,
                "brier": self.brier, "sensitivity": c.sensitivity, "specificity": c.specificity,
                "accuracy": c.accuracy, "balanced_accuracy": c.balanced_accuracy}


def evaluate(y_true, probability, *, threshold: float = 0.5, confidence: float = 0.95,
             n_bootstrap: int = 2000, seed: int = 0, n_bins: int = 5) -> Evaluation:
    """ROC AUC with a stratified bootstrap interval, ROC curve, calibration and Brier score, and
    the confusion matrix of ``probability >= threshold``.

    Parameters
    ----------
    y_true : (n,) 0/1
    probability : (n,) float in [0, 1]
        Predicted probability of the positive class.
    threshold : float
        Decision threshold for the confusion matrix.
    confidence, n_bootstrap, seed
        Interval of :func:`medlab.metrics.roc_auc_ci` (``method='bootstrap'``).
    n_bins : int
        Bins of the calibration curve (uniform on [0, 1]).
    """
    from sklearn.metrics import roc_curve

    y = _labels(y_true, "y_true")
    p = np.asarray(probability, float)
    if p.shape != y.shape:
        raise ValueError(f"`probability` (shape {p.shape}) must match `y_true` (shape {y.shape})")
    if not 0 <= threshold <= 1:
        raise ValueError(f"`threshold` must be in [0, 1]; got {threshold!r}")
    auc = roc_auc_ci(y, p, method="bootstrap", confidence=confidence, n_bootstrap=n_bootstrap, seed=seed)
    fpr, tpr, thr = roc_curve(y, p)
    return Evaluation(auc, fpr, tpr, thr, calibration(y, p, n_bins=n_bins), confusion(y, p >= threshold),
                      float(threshold))


def _selected(estimator, X: np.ndarray):
    """(indices of the input columns that reach the model, the model, X transformed up to it)."""
    kept = np.arange(X.shape[1])
    if not hasattr(estimator, "named_steps"):
        return kept, estimator, X
    for step in ("constant", "select"):
        if step in estimator.named_steps:
            kept = kept[estimator.named_steps[step].get_support()]
    return kept, estimator.steps[-1][1], estimator[:-1].transform(X)


def feature_importance(estimator, X, y, *, names: Sequence[str] | None = None, method: str = "permutation",
                       n_repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Feature importance of a fitted pipeline.

    Parameters
    ----------
    estimator : fitted pipeline
        From :func:`fit_predict` or ``CVResult.estimators``.
    X, y
        Data to permute on ('permutation'; use held-out data). Ignored by 'impurity'.
    names : sequence of str, optional
        Column names of ``X`` (default: DataFrame columns or ``f0, f1, ...``).
    method : {'permutation', 'impurity'}
        'permutation': mean drop of ROC AUC when one input column is shuffled
        (``sklearn.inspection.permutation_importance``, ``n_repeats``, seeded), for any model;
        only the columns that reach the model are shuffled (the others get 0);
        'impurity': mean decrease of impurity of a random forest, mapped back through the
        pipeline's constant removal and selection (unselected features get 0).

    Returns
    -------
    pandas.DataFrame
        Index ``feature``; columns ``importance`` and ``std``; sorted, largest first.
    """
    check_choice("method", method, ("permutation", "impurity"))
    if names is None:
        names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"f{i}" for i in range(np.shape(X)[1])]
    names = [str(n) for n in names]
    Xa = _matrix(X)
    if len(names) != Xa.shape[1]:
        raise ValueError(f"`names` has {len(names)} entries but `X` has {Xa.shape[1]} columns")
    if method == "permutation":
        from sklearn.inspection import permutation_importance

        yy = _labels(y)
        kept, model, Xt = _selected(estimator, Xa)
        # Shuffling a column the pipeline drops changes nothing, and the steps before the model
        # act column by column (impute, scale, select), so shuffling a kept column after them is
        # the same as shuffling it in X: permute only the columns that reach the model.
        r = permutation_importance(model, Xt, yy, scoring="roc_auc", n_repeats=n_repeats, random_state=seed)
        imp, std = np.zeros(Xa.shape[1]), np.zeros(Xa.shape[1])
        imp[kept], std[kept] = r.importances_mean, r.importances_std
    else:
        model = estimator.named_steps["model"] if hasattr(estimator, "named_steps") else estimator
        if not hasattr(model, "feature_importances_"):
            raise ValueError(f"method='impurity' needs a tree ensemble; the model is {type(model).__name__}"
                             " (use method='permutation')")
        kept, _, _ = _selected(estimator, Xa)
        imp = np.zeros(Xa.shape[1])
        imp[kept] = model.feature_importances_
        std = np.zeros(Xa.shape[1])
        if hasattr(model, "estimators_"):
            std[kept] = np.std([t.feature_importances_ for t in model.estimators_], axis=0)
    out = pd.DataFrame({"importance": imp, "std": std}, index=pd.Index(names, name="feature"))
    return out.sort_values("importance", ascending=False)
