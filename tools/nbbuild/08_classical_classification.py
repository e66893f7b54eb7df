"""Build notebooks/tutorials/08_classical_classification.ipynb
(run: .venv/bin/python tools/nbbuild/08_classical_classification.py)."""

from _nb import write

CELLS = [
    ("md", """
    # 08 · Classical classification: radiomics features, SVM, random forest, logistic regression

    Is a breast lesion on ultrasound **benign or malignant**? BUSI (Al-Dhabyani et al. 2020) gives
    the class of each image. Here the classifier sees no pixels, only a table of **IBSI features**
    (`medlab.features`) of the whole frame and of the lesion region, and three scikit-learn
    pipelines (`medlab.classification`) learn from it: an RBF support vector machine, a random
    forest and an L2 logistic regression.

    What makes such a study trustworthy:

    1. **No leakage.** BUSI holds near-duplicate images (one lesion saved twice). Images are
       grouped by perceptual hash (`medlab.dedup`) and every split is made on groups; the guard
       (`classification.check_no_leakage`) refuses a split where a group straddles train and test.
    2. **Cross-validation on the development images only**, stratified and grouped
       (`StratifiedGroupKFold`), then **one** evaluation on the held-out test images: the test
       part of the same split the CNN of notebook 06 was trained with, so the two compare fairly.
    3. **Intervals, not just numbers**: ROC AUC with a bootstrap 95 % confidence interval;
       calibration (does 0.8 mean 80 %?) with the Brier score; the confusion matrix; which
       features matter (permutation importance).

    BUSI has no drawn lesion masks in this copy, so the lesion region is the hypoechoic region
    nearest the frame centre (`segmentation.segment_us_lesion`), a rough but automatic ROI.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    N_DEV_PER_CLASS = 40        # development images per class (0 for all)
    N_TEST_PER_CLASS = 20       # test images per class (0 for the whole test part)
    RESAMPLE_MM = 2.0           # pixel size for the features (the frames are 256 x 256 at 1 "mm")
    IMAGE_FAMILIES = ["stat", "ih", "cm", "szm"]  # whole-frame features (empty list: none)
    LESION_FAMILIES = ["morph", "stat", "ih", "cm", "szm"]      # lesion-region features
    MODELS = ["svm", "random_forest", "logistic"]
    K_BEST = 20                 # features kept by the ANOVA-F selection inside each training fold
    N_SPLITS = 5                # cross-validation folds
    MAX_DISTANCE = 10           # pHash Hamming distance for near-duplicates
    N_BOOTSTRAP = 1000          # resamples of the AUC interval
    COMPARE_CNN = True          # the pretrained busi_resnet on the same test images
    SEED = 0                    # the split seed: 0 is the CNN's own split
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    from sklearn.model_selection import KFold

    from medlab import classification, display, models, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    data = models.load_busi()
    split = models.busi_split(data["images"], data["cases"], data["labels"], seed=SEED, max_distance=MAX_DISTANCE)
    index = {c: i for i, c in enumerate(data["cases"])}


    # benign, then malignant cases of a split part; n per class spread over the part (0: all)
    dev_cases = models.busi_subset(split, "train", 0) + models.busi_subset(split, "val", 0)
    if N_DEV_PER_CLASS:
        dev_cases = models.busi_subset(split, "train", N_DEV_PER_CLASS * 3 // 4) + models.busi_subset(split, "val", N_DEV_PER_CLASS // 4)
    test_cases = models.busi_subset(split, "test", N_TEST_PER_CLASS)
    cases = dev_cases + test_cases
    images = [data["images"][index[c]] for c in cases]
    y = np.array([data["labels"][index[c]] == "malignant" for c in cases], int)
    groups = classification.leakage_groups(groups=[split["groups"][c] for c in cases])
    dev = np.arange(len(dev_cases))
    test = np.arange(len(dev_cases), len(cases))
    print(f"development: {len(dev)} images ({y[dev].sum()} malignant), test: {len(test)} images ({y[test].sum()} malignant)")
    print(f"{split['n_duplicates']} of {len(data['cases'])} BUSI images are near-duplicates of another one")
    """),
    ("md", """
    ## The leakage guard

    Groups come from the near-duplicate split (`busi_split`). A plain K-fold of single images puts
    copies of one lesion on both sides; the guard counts and refuses that, while the grouped
    folds and the development/test split pass.
    """),
    ("code", """
    naive = [classification.straddling_groups(groups[dev], tr, te).size
             for tr, te in KFold(N_SPLITS, shuffle=True, random_state=SEED).split(dev)]
    print("groups straddling train and test in each plain K-fold:", naive)
    classification.check_no_leakage(groups, dev, test)  # raises if the split leaked
    folds = classification.grouped_folds(y[dev], groups[dev], n_splits=N_SPLITS, seed=SEED)
    print("grouped folds: test sizes", [len(te) for _, te in folds], "- no group straddles")
    """),
    ("md", """
    ## Lesion regions and features

    Each image gets its lesion region, then IBSI features of the whole frame (`image_*`) and of
    the region (`lesion_*`: shape from its contour, intensity, histogram and texture), on a
    `RESAMPLE_MM` grid with 32 grey levels.
    """),
    ("code", """
    masks = [segmentation.segment_us_lesion(im) for im in images]
    fig, axes = plt.subplots(2, 4, figsize=(12, 6))
    shown = [*dev[y[dev] == 0][:4], *dev[y[dev] == 1][:4]]
    for ax, i in zip(axes.ravel(), shown):
        display.imshow(ax, sitk.VectorIndexSelectionCast(images[i], 0))
        ax.contour(sitk.GetArrayViewFromImage(masks[i]), levels=[0.5], colors="yellow", linewidths=1)
        ax.set_title(f"{cases[i]}", fontsize=9)
        ax.axis("off")
    fig.suptitle("lesion regions (yellow): benign (top), malignant (bottom)")
    plt.tight_layout()
    plt.show()

    t_features = time.perf_counter()
    table = classification.image_feature_table(images, masks, names=cases, image_families=IMAGE_FAMILIES,
                                               mask_families=LESION_FAMILIES, resample_mm=RESAMPLE_MM)
    X, names = classification.feature_matrix(table)
    t_features = time.perf_counter() - t_features
    print(f"{X.shape[1]} features per image in {t_features:.1f} s ({1000 * t_features / len(cases):.0f} ms per image)")
    """),
    ("md", """
    ## Cross-validation on the development images

    Each pipeline imputes, drops constant features, standardises, keeps the `K_BEST` features
    with the largest ANOVA F (learnt inside each training fold, so selection does not leak), then
    classifies. Out-of-fold probabilities give one ROC curve per model.
    """),
    ("code", """
    cv_results, cv_eval = {}, {}
    for name in MODELS:
        pipe = classification.make_pipeline(name, k_best=K_BEST, seed=SEED)
        cv_results[name] = classification.cross_validate(pipe, X[dev], y[dev], groups[dev], n_splits=N_SPLITS, seed=SEED)
        cv_eval[name] = classification.evaluate(y[dev], cv_results[name].probability, n_bootstrap=N_BOOTSTRAP, seed=SEED)
    print(pd.DataFrame({name: ev.summary() for name, ev in cv_eval.items()}).T.round(3))

    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    for name, ev in cv_eval.items():
        ax.plot(ev.fpr, ev.tpr, label=f"{name}: {ev.auc.auc:.2f} ({ev.auc.low:.2f}-{ev.auc.high:.2f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"{N_SPLITS}-fold grouped CV (development)")
    ax.legend(loc="lower right", fontsize=8)
    plt.show()
    """),
    ("md", """
    ## The held-out test images

    Each pipeline is fitted once on all development images and scores the test images, which it
    has never seen (nor copies of them).

    With every image (`-p N_DEV_PER_CLASS 0 -p N_TEST_PER_CLASS 0`: 403 development and 100 test
    images, about 90 s) we measured cross-validated AUCs of 0.76 (SVM), 0.73 (random forest) and
    0.77 (logistic), but only about 0.60 on the test images (95 % CIs about 0.48-0.72), where the
    CNN reaches 0.78 (0.69-0.87). The small default subsets swing by 0.1 or more either way: the
    intervals, not the point estimates, are the result to read.
    """),
    ("code", """
    fitted, test_prob, test_eval = {}, {}, {}
    for name in MODELS:
        pipe = classification.make_pipeline(name, k_best=K_BEST, seed=SEED)
        fitted[name], test_prob[name] = classification.fit_predict(pipe, X, y, dev, test, groups=groups)
        test_eval[name] = classification.evaluate(y[test], test_prob[name], n_bootstrap=N_BOOTSTRAP, seed=SEED)

    cnn_eval = None
    if COMPARE_CNN and SEED == 0 and MAX_DISTANCE == 10:  # only the CNN's own split keeps its training images out
        net = models.pretrained("busi_resnet")
        cnn = models.evaluate_busi(net, [cases[i] for i in test], images=[images[i] for i in test])
        cnn_eval = classification.evaluate(y[test], cnn["p_malignant"].to_numpy(), n_bootstrap=N_BOOTSTRAP, seed=SEED)
        test_eval["cnn (busi_resnet)"] = cnn_eval
    summary = pd.DataFrame({name: ev.summary() for name, ev in test_eval.items()}).T
    print(summary.round(3))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for name, ev in test_eval.items():
        axes[0].plot(ev.fpr, ev.tpr, label=f"{name}: {ev.auc.auc:.2f} ({ev.auc.low:.2f}-{ev.auc.high:.2f})")
        axes[1].plot(ev.calibration.prob_pred, ev.calibration.prob_true, "o-", label=f"{name} (Brier {ev.brier:.3f})")
    axes[0].plot([0, 1], [0, 1], "k--", lw=1)
    axes[0].set(xlabel="1 - specificity", ylabel="sensitivity", title="test ROC (AUC, 95% bootstrap CI)")
    axes[1].plot([0, 1], [0, 1], "k--", lw=1)
    axes[1].set(xlabel="mean predicted probability", ylabel="observed share malignant", title="calibration (test)",
                xlim=(0, 1), ylim=(0, 1))
    for ax in axes:
        ax.legend(loc="lower right", fontsize=8)
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Confusion matrix and what the best model looks at

    The decision threshold is 0.5 on the predicted probability (the pipelines weight the classes
    so that it sits between them). Permutation importance: how much the test AUC drops when one
    feature's values are shuffled.
    """),
    ("code", """
    best = max(MODELS, key=lambda m: test_eval[m].auc.auc)
    conf = test_eval[best].confusion
    print(f"best feature model on test: {best}")
    print(pd.DataFrame(conf.matrix, index=["benign", "malignant"], columns=["called benign", "called malignant"]))
    print(f"sensitivity {conf.sensitivity:.2f}, specificity {conf.specificity:.2f}, accuracy {conf.accuracy:.2f}")

    importance = classification.feature_importance(fitted[best], X[test], y[test], names=names, n_repeats=5, seed=SEED)
    top = importance.head(10)[::-1]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh(top.index, top["importance"], xerr=top["std"], color="tab:blue")
    ax.set(xlabel="drop of test AUC when shuffled", title=f"permutation importance ({best})")
    plt.tight_layout()
    plt.show()
    if "random_forest" in fitted:
        print("random forest, impurity importance (top 5):")
        print(classification.feature_importance(fitted["random_forest"], X[dev], y[dev], names=names,
                                                method="impurity").head(5).round(3))
    seconds = time.perf_counter() - t_start
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        n_dev=len(dev),
        n_test=len(test),
        n_features=X.shape[1],
        models=list(MODELS),
        naive_straddling_groups=int(sum(naive)),
        dev_test_shared_groups=int(classification.straddling_groups(groups, dev, test).size),
        cv_auc={m: cv_eval[m].auc.auc for m in MODELS},
        cv_auc_ci95={m: [cv_eval[m].auc.low, cv_eval[m].auc.high] for m in MODELS},
        test_auc={m: test_eval[m].auc.auc for m in MODELS},
        test_auc_ci95={m: [test_eval[m].auc.low, test_eval[m].auc.high] for m in MODELS},
        test_brier={m: test_eval[m].brier for m in MODELS},
        best_model=best,
        best_sensitivity=conf.sensitivity,
        best_specificity=conf.specificity,
        top_feature=str(importance.index[0]),
        cnn_test_auc=None if cnn_eval is None else cnn_eval.auc.auc,
        cnn_test_auc_ci95=None if cnn_eval is None else [cnn_eval.auc.low, cnn_eval.auc.high],
        feature_ms_per_image=1000 * t_features / len(cases),
        seconds=seconds,
    )
    """),
]

if __name__ == "__main__":
    print(write("tutorials/08_classical_classification.ipynb", CELLS))
