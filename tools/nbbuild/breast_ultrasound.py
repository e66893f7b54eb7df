"""Build notebooks/usecases/breast_ultrasound.ipynb
(run: .venv/bin/python tools/nbbuild/breast_ultrasound.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Breast ultrasound: benign or malignant, and why the models get some wrong

    A radiologist sees a breast lesion on ultrasound and must decide whether to biopsy it. Two
    kinds of model give a second opinion on the same held-out images of BUSI (Al-Dhabyani et al.
    2020):

    - **radiomics + classical learning**: IBSI features (`medlab.features`) of the frame and of
      the lesion region (`segmentation.segment_us_lesion`), an SVM and a random forest
      (`medlab.classification`);
    - **a CNN**: the residual network `busi_resnet` shipped with medlab (notebook 06), which
      sees the pixels.

    Both are trained on the same leakage-free split (near-duplicate images grouped,
    `models.busi_split` with the CNN's own seed), so their test images are new to both. We then
    choose an operating point a clinic would use (high sensitivity: a missed cancer costs more
    than a biopsy), and look at the lesions the models get **wrong**: the image, the lesion
    region the features were computed in, and **Grad-CAM** (`models.grad_cam`), where the CNN
    looked.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    N_DEV_PER_CLASS = 40        # development images per class (0 for all)
    N_TEST_PER_CLASS = 20       # test images per class (0 for the whole test part)
    MODELS = ["svm", "random_forest"]
    RESAMPLE_MM = 2.0           # pixel size for the features
    K_BEST = 20                 # features kept inside each training fold
    TARGET_SENSITIVITY = 0.9    # operating point, chosen on the development images
    N_EXPLAIN = 4               # wrong decisions shown per model
    N_BOOTSTRAP = 1000
    SEED = 0                    # the CNN's own split seed
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import classification, display, metrics, models, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    data = models.load_busi()
    split = models.busi_split(data["images"], data["cases"], data["labels"], seed=SEED)
    index = {c: i for i, c in enumerate(data["cases"])}


    # benign, then malignant cases of a split part; n per class spread over the part (0: all)
    n_dev = N_DEV_PER_CLASS
    dev_cases = models.busi_subset(split, "train", n_dev * 3 // 4) + models.busi_subset(split, "val", n_dev // 4) if n_dev else models.busi_subset(split, "train", 0) + models.busi_subset(split, "val", 0)
    test_cases = models.busi_subset(split, "test", N_TEST_PER_CLASS)
    cases = dev_cases + test_cases
    images = [data["images"][index[c]] for c in cases]
    y = np.array([data["labels"][index[c]] == "malignant" for c in cases], int)
    groups = classification.leakage_groups(groups=[split["groups"][c] for c in cases])
    dev, test = np.arange(len(dev_cases)), np.arange(len(dev_cases), len(cases))
    classification.check_no_leakage(groups, dev, test)
    print(f"development {len(dev)} ({y[dev].sum()} malignant), test {len(test)} ({y[test].sum()} malignant)")
    """),
    ("md", """
    ## Both models on the same test images

    The feature models are fitted on the development images; their operating point (the
    probability threshold reaching `TARGET_SENSITIVITY`) is chosen on out-of-fold development
    probabilities, never on the test images. The CNN's threshold is chosen on the validation part
    it was tuned with.
    """),
    ("code", """
    masks = [segmentation.segment_us_lesion(im) for im in images]
    table = classification.image_feature_table(images, masks, names=cases, resample_mm=RESAMPLE_MM)
    X, names = classification.feature_matrix(table)


    def threshold_for(y_true, prob, sensitivity):
        # the largest threshold whose sensitivity reaches the target (from the ROC curve)
        ev = classification.evaluate(y_true, prob, n_bootstrap=10)
        ok = ev.tpr >= sensitivity
        return float(min(1.0, ev.thresholds[ok][0]))


    prob, thresholds, fitted = {}, {}, {}
    for name in MODELS:
        pipe = classification.make_pipeline(name, k_best=K_BEST, seed=SEED)
        cv = classification.cross_validate(pipe, X[dev], y[dev], groups[dev], seed=SEED)
        thresholds[name] = threshold_for(y[dev], cv.probability, TARGET_SENSITIVITY)
        fitted[name], prob[name] = classification.fit_predict(pipe, X, y, dev, test, groups=groups)

    net = models.pretrained("busi_resnet")
    cnn_test = models.evaluate_busi(net, [cases[i] for i in test], images=[images[i] for i in test])
    val_cases = models.busi_subset(split, "val", 0)
    cnn_val = models.evaluate_busi(net, val_cases, images=[data["images"][index[c]] for c in val_cases])
    prob["cnn"] = cnn_test["p_malignant"].to_numpy()
    thresholds["cnn"] = threshold_for((cnn_val["label"] == "malignant").to_numpy(int), cnn_val["p_malignant"].to_numpy(),
                                      TARGET_SENSITIVITY)

    results = {name: classification.evaluate(y[test], p, threshold=thresholds[name], n_bootstrap=N_BOOTSTRAP, seed=SEED)
               for name, p in prob.items()}
    summary = pd.DataFrame({name: {**ev.summary(), "threshold": ev.threshold} for name, ev in results.items()}).T
    print(summary.round(3).to_string())

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, ev in results.items():
        ax.plot(ev.fpr, ev.tpr, label=f"{name}: AUC {ev.auc.auc:.2f} ({ev.auc.low:.2f}-{ev.auc.high:.2f})")
        ax.plot(1 - ev.confusion.specificity, ev.confusion.sensitivity, "o", color=ax.lines[-1].get_color())
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="test images; dots: chosen operating points")
    ax.legend(loc="lower right", fontsize=8)
    plt.show()
    """),
    ("md", """
    ## The CNN's model card

    What `busi_resnet` was trained on, its held-out numbers and how it fails (`models.card`, from
    its `info`); every call checks that an image looks like its BUSI training images and warns
    otherwise (`models.check_input`).
    """),
    ("code", """
    from IPython.display import Markdown
    from IPython.display import display as show

    show(Markdown(models.card(net)))
    """),
    ("md", """
    ## Where they disagree, and the cases they get wrong

    A wrong decision at the operating point: a malignant lesion called benign (a **missed
    cancer**, the costly one) or a benign one called malignant (an unnecessary biopsy).
    """),
    ("code", """
    decisions = pd.DataFrame({"case": [cases[i] for i in test], "truth": np.where(y[test] == 1, "malignant", "benign")})
    for name, ev in results.items():
        decisions[f"p_{name}"] = prob[name]
        decisions[f"wrong_{name}"] = (prob[name] >= ev.threshold).astype(int) != y[test]
    wrong_cols = [f"wrong_{n}" for n in results]
    decisions["n_wrong"] = decisions[wrong_cols].sum(axis=1)
    print("wrong decisions per model:", {n: int(decisions[f"wrong_{n}"].sum()) for n in results})
    print("wrong for every model:", int((decisions["n_wrong"] == len(results)).sum()),
          "| right for every model:", int((decisions["n_wrong"] == 0).sum()))
    agree = metrics.confusion(decisions["wrong_cnn"], decisions[f"wrong_{MODELS[0]}"])
    print(f"CNN and {MODELS[0]} wrong on the same case: {agree.matrix[1, 1]} of {int(decisions['wrong_cnn'].sum())} CNN errors")
    """),
    ("md", """
    ### Grad-CAM of the CNN's wrong decisions

    Per case: the image with the lesion region the features used (yellow), and Grad-CAM of the
    CNN's decision (red: the regions that raised the score of the class it chose, blue: none).
    Missed cancers first.
    """),
    ("code", """
    local = {c: i for i, c in enumerate(cases)}
    shown_wrong = decisions[decisions["wrong_cnn"]].sort_values(["truth", "p_cnn"], ascending=[False, True]).head(N_EXPLAIN)
    n_cams = 0
    if len(shown_wrong):
        fig, axes = plt.subplots(2, len(shown_wrong), figsize=(3.2 * len(shown_wrong), 6.6), squeeze=False)
        for k, (_, row) in enumerate(shown_wrong.iterrows()):
            i = local[row["case"]]
            grey = sitk.VectorIndexSelectionCast(images[i], 0)
            display.imshow(axes[0, k], grey)
            axes[0, k].contour(sitk.GetArrayViewFromImage(masks[i]), levels=[0.5], colors="yellow", linewidths=1)
            axes[0, k].set_title(f"{row['case']}\\n{row['truth']}", fontsize=8)
            cam = models.grad_cam(net, images[i])
            n_cams += 1
            display.imshow(axes[1, k], cam, window=1.0, level=0.5, colormap="jet")
            scores = ", ".join(f"{n} {row[f'p_{n}']:.2f}" for n in results)
            axes[1, k].set_title(f"p(malignant): {scores}", fontsize=7)
            for ax in axes[:, k]:
                ax.axis("off")
        fig.suptitle("the CNN's wrong decisions: image and lesion region (top), Grad-CAM (bottom)")
        plt.tight_layout()
        plt.show()
    """),
    ("md", """
    ### What the feature model relies on

    Permutation importance on the test images (drop of AUC when a feature is shuffled), and the
    lesion regions of the cases the feature model gets wrong: a region that missed the lesion
    gives features of the wrong tissue, a failure the CNN does not share.
    """),
    ("code", """
    feature_model = MODELS[0]
    importance = classification.feature_importance(fitted[feature_model], X[test], y[test], names=names, n_repeats=5, seed=SEED)
    print(importance.head(8).round(3).to_string())
    shown_feat = decisions[decisions[f"wrong_{feature_model}"]].sort_values(["truth"], ascending=False).head(N_EXPLAIN)
    if len(shown_feat):
        fig, axes = plt.subplots(1, len(shown_feat), figsize=(3.2 * len(shown_feat), 3.4), squeeze=False)
        for ax, (_, row) in zip(axes[0], shown_feat.iterrows()):
            i = local[row["case"]]
            display.imshow(ax, sitk.VectorIndexSelectionCast(images[i], 0))
            ax.contour(sitk.GetArrayViewFromImage(masks[i]), levels=[0.5], colors="yellow", linewidths=1)
            ax.set_title(f"{row['case']} ({row['truth']})\\np {feature_model} {row[f'p_{feature_model}']:.2f}", fontsize=8)
            ax.axis("off")
        fig.suptitle(f"{feature_model}: wrong decisions and their lesion regions")
        plt.tight_layout()
        plt.show()
    seconds = time.perf_counter() - t_start
    """),
    ("md", """
    ## What to take home

    On all images (`-p N_DEV_PER_CLASS 0 -p N_TEST_PER_CLASS 0`: 403 development, 100 test, about
    a minute) we measured a test AUC of 0.78 (95 % CI 0.69-0.87) for the CNN against 0.61
    (0.49-0.73) for both feature models; at the 90 % sensitivity operating point the CNN still
    spares about half of the benign lesions a biopsy (specificity 0.53), the feature models
    almost none (0.04-0.12). The rough automatic lesion region is the feature models' weak point:
    where it misses the lesion, every lesion feature describes the wrong tissue, a failure the
    CNN, which sees the whole frame, does not share. Drawn masks would be the first improvement.
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        n_dev=len(dev),
        n_test=len(test),
        models=[*MODELS, "cnn"],
        test_auc={n: ev.auc.auc for n, ev in results.items()},
        test_auc_ci95={n: [ev.auc.low, ev.auc.high] for n, ev in results.items()},
        thresholds=thresholds,
        test_sensitivity={n: ev.confusion.sensitivity for n, ev in results.items()},
        test_specificity={n: ev.confusion.specificity for n, ev in results.items()},
        n_wrong={n: int(decisions[f"wrong_{n}"].sum()) for n in results},
        n_wrong_all=int((decisions["n_wrong"] == len(results)).sum()),
        n_grad_cams=n_cams,
        top_feature=str(importance.index[0]),
        seconds=seconds,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/breast_ultrasound.ipynb", CELLS))
