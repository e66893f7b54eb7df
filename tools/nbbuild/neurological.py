"""Build notebooks/usecases/neurological.ipynb (run: .venv/bin/python tools/nbbuild/neurological.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Neurological: brain extraction, tissue classes, atrophy, and haemorrhage on CT

    **Part A: the MNI152 T1 template** (nilearn, ICBM 2009 at 2 mm) with nilearn's brain, grey- and
    white-matter masks as references.

    1. **Brain extraction**, classical: threshold (Otsu), opening, largest component, closing, holes
       filled (`medlab.neuro.brain_extraction`); Dice against the brain mask.
    2. **Tissue classes** CSF / grey / white matter from the T1 intensities inside the brain
       (`medlab.neuro.tissue_segmentation`: k-means, Gaussian mixture or multi-Otsu); Dice against the
       GM and WM masks.
    3. **Atrophy**: a known volume of tissue is removed (`medlab.neuro.simulate_atrophy`), the pipeline
       is run again, and the measured volume change is compared with the truth.

    **Part B: stroke, haemorrhage detection on a SYNTHETIC head CT.** No real head CT with a
    haemorrhage ships with the project's data, so this part runs on `medlab.datasets.head_ct_phantom`:
    a synthetic head (skull ~1000 HU, grey/white matter 38/30 HU, CSF 5 HU) with haemorrhages of 60-85 HU
    whose position and volume are known. Acute blood is found by its Hounsfield units
    (`medlab.neuro.detect_haemorrhage`) and each detection is compared with the truth.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    RESOLUTION = 2                # MNI152 grid (mm): 1 or 2
    TISSUE_METHOD = "kmeans"      # 'kmeans', 'gmm' or 'multi_otsu'
    ATROPHY_DEPTH_MM = 2.0        # thickness of the removed layer (mm), at least one voxel
    N_HAEMORRHAGES = 3            # synthetic head CT
    CT_SEED = 0
    CT_NOISE_HU = 3.0
    HU_RANGE = (50.0, 90.0)       # window of acute blood (HU)
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets, display, metrics, neuro
    from medlab.reports import record

    t_start = time.perf_counter()
    mni = datasets.load("mni152", resolution=RESOLUTION, progress=False)
    t1 = mni["template"]
    voxel_ml = float(np.prod(t1.GetSpacing())) / 1000
    ref = {k: sitk.GetArrayFromImage(mni[k]).astype(bool) for k in ("brain_mask", "gm_mask", "wm_mask")}
    print(f"T1 {t1.GetSize()} voxels of {t1.GetSpacing()[0]:g} mm; reference brain {ref['brain_mask'].sum() * voxel_ml:.0f} mL, "
          f"GM mask {ref['gm_mask'].sum() * voxel_ml:.0f} mL, WM mask {ref['wm_mask'].sum() * voxel_ml:.0f} mL; "
          f"voxels in both GM and WM masks: {(ref['gm_mask'] & ref['wm_mask']).sum() * voxel_ml:.0f} mL")
    """),
    ("md", """
    The MNI152 template that nilearn ships is already skull-stripped (0 outside the brain), so brain
    extraction here mostly checks the threshold-and-morphology recipe against the reference mask; on a
    head with skull and scalp the opening is what detaches the brain. nilearn's GM and WM masks are
    thresholded probability maps and **overlap** (many voxels are in both), so no hard labelling can
    reach a Dice of 1 against both; the Dice values below are bounded by that.

    ## Brain extraction and tissue classes
    """),
    ("code", """
    t0 = time.perf_counter()
    brain = neuro.brain_extraction(t1)
    brain_dice = metrics.dice(brain, mni["brain_mask"])
    tissue = {}
    rows = []
    for method in ("kmeans", "gmm", "multi_otsu"):
        lab = neuro.tissue_segmentation(t1, brain, method=method)
        a = sitk.GetArrayFromImage(lab)
        tissue[method] = lab
        vols = neuro.tissue_volumes(lab)
        rows.append({"method": method, "Dice GM": metrics.dice(a == 2, ref["gm_mask"]),
                     "Dice WM": metrics.dice(a == 3, ref["wm_mask"]),
                     "CSF (mL)": vols["csf"], "GM (mL)": vols["gm"], "WM (mL)": vols["wm"]})
    tissue_table = pd.DataFrame(rows).set_index("method")
    labels = tissue[TISSUE_METHOD]
    brain_seconds = time.perf_counter() - t0
    print(f"brain extraction Dice {brain_dice:.4f}; {brain_seconds:.1f} s for extraction and three tissue methods")
    tissue_table.round(3)
    """),
    ("code", """
    fig, axes = plt.subplots(2, 3, figsize=(16, 10))
    for row, (axis, idx) in enumerate((("axial", t1.GetSize()[2] // 2 + 5), ("coronal", t1.GetSize()[1] // 2))):
        sl = display.slice_of(t1, idx, axis)
        display.imshow(axes[row, 0], sl, preset="auto", overlay=display.slice_of(brain, idx, axis), overlay_mode="contour")
        axes[row, 0].set_title(f"{axis}: brain mask (Dice {brain_dice:.3f})")
        display.imshow(axes[row, 1], sl, preset="auto", overlay=display.slice_of(labels, idx, axis), overlay_alpha=0.45)
        axes[row, 1].set_title(f"{TISSUE_METHOD}: 1 CSF, 2 GM, 3 WM")
        ref_lab = sitk.Cast(mni["gm_mask"], sitk.sitkUInt8) * 2
        ref_lab = sitk.Mask(ref_lab, sitk.Not(mni["wm_mask"]), outsideValue=3)  # GM-and-WM voxels shown as WM
        display.imshow(axes[row, 2], sl, preset="auto", overlay=display.slice_of(ref_lab, idx, axis), overlay_alpha=0.45)
        axes[row, 2].set_title("nilearn masks: 2 GM, 3 WM")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Atrophy: a known loss, measured

    **Whole-brain atrophy.** The outer `ATROPHY_DEPTH_MM` layer of the extracted brain (voxels within
    that distance of the outside) is set to 0, as if the brain had shrunk; brain extraction is run on
    the new image and the volume change is compared with the exact volume removed (percent brain
    volume change, PBVC).

    **Cortical grey-matter thinning.** Only the GM voxels of that layer are replaced by the mean CSF
    intensity (tissue lost, fluid in its place); the tissue classes are fitted again on the new image
    and the GM volume change is compared with the truth. This one is harder: the classes are refitted,
    and partial-volume voxels change class.
    """),
    ("code", """
    t0 = time.perf_counter()
    base_brain_ml = float(sitk.GetArrayFromImage(brain).sum()) * voxel_ml
    shrink = neuro.simulate_atrophy(t1, brain, depth_mm=ATROPHY_DEPTH_MM, fill_value=0.0)
    after_brain_ml = float(sitk.GetArrayFromImage(neuro.brain_extraction(shrink["image"])).sum()) * voxel_ml
    a, t = sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(t1)
    thin = neuro.simulate_atrophy(t1, brain, depth_mm=ATROPHY_DEPTH_MM, tissue=(a == 2).astype(np.uint8),
                                  fill_value=float(t[a == 1].mean()))
    labels_after = neuro.tissue_segmentation(thin["image"], brain, method=TISSUE_METHOD)
    gm_before, gm_after = neuro.tissue_volumes(labels)["gm"], neuro.tissue_volumes(labels_after)["gm"]
    atrophy_seconds = time.perf_counter() - t0
    brain_loss_ml, gm_loss_ml = base_brain_ml - after_brain_ml, gm_before - gm_after
    atrophy_table = pd.DataFrame({
        "true loss (mL)": [shrink["volume_ml"], thin["volume_ml"]],
        "measured loss (mL)": [brain_loss_ml, gm_loss_ml],
        "true change (%)": [-100 * shrink["volume_ml"] / base_brain_ml, -100 * thin["volume_ml"] / gm_before],
        "measured change (%)": [-100 * brain_loss_ml / base_brain_ml, -100 * gm_loss_ml / gm_before],
    }, index=["whole brain (brain extraction)", f"grey matter ({TISSUE_METHOD})"])
    atrophy_table["error (%)"] = 100 * (atrophy_table["measured loss (mL)"] / atrophy_table["true loss (mL)"] - 1)
    atrophy_table.round(2)
    """),
    ("code", """
    idx = t1.GetSize()[1] // 2
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    display.imshow(axes[0], display.slice_of(shrink["image"], idx, "coronal"), preset="auto",
                   overlay=display.slice_of(shrink["removed"], idx, "coronal"), overlay_alpha=0.6)
    axes[0].set_title(f"whole brain: {shrink['volume_ml']:.0f} mL removed (coloured)")
    display.imshow(axes[1], display.slice_of(thin["image"], idx, "coronal"), preset="auto",
                   overlay=display.slice_of(thin["removed"], idx, "coronal"), overlay_alpha=0.6)
    axes[1].set_title(f"cortical GM: {thin['volume_ml']:.0f} mL to CSF (coloured)")
    x = np.arange(2)
    axes[2].bar(x - 0.2, atrophy_table["true loss (mL)"], 0.4, label="truth")
    axes[2].bar(x + 0.2, atrophy_table["measured loss (mL)"], 0.4, label="measured")
    axes[2].set_xticks(x, ["whole brain", "grey matter"]); axes[2].set_ylabel("volume loss (mL)")
    axes[2].legend(); axes[2].set_title("atrophy: truth vs measured")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Part B · Haemorrhage detection on a SYNTHETIC head CT

    ⚠ **Synthetic data**: `head_ct_phantom` is a simulated head, not a patient. Steps of
    `detect_haemorrhage`: bone is HU ≥ 300; the intracranial space is what the skull encloses, minus a
    2 mm margin along the inner table (partial volume of bone reads as blood); a median filter removes
    noisy single voxels; intracranial voxels within `HU_RANGE` are grouped into connected regions and
    those of at least 0.1 mL reported with centroid (mm), volume (mL) and mean HU.
    """),
    ("code", """
    ct = datasets.head_ct_phantom(n_haemorrhages=N_HAEMORRHAGES, noise_hu=CT_NOISE_HU, seed=CT_SEED)
    t0 = time.perf_counter()
    detections = neuro.detect_haemorrhage(ct.image, hu_range=HU_RANGE)
    detect_seconds = time.perf_counter() - t0
    match = neuro.match_detections(detections, ct.labels, ct.truth["lesions"])
    fmt = lambda p: "(" + ", ".join(f"{v:.1f}" for v in p) + ")" if p is not None else "-"
    table = pd.DataFrame({
        "true centre (mm)": match["true_centre_mm"].map(fmt),
        "detected centroid (mm)": match["centroid_mm"].map(fmt),
        "distance (mm)": match["distance_mm"],
        "true volume (mL)": match["true_volume_ml"],
        "detected volume (mL)": match["volume_ml"],
        "true HU": match["true_hu"],
        "mean HU": match["mean_hu"],
    })
    print(f"SYNTHETIC head CT: {len(detections)} detections in {detect_seconds:.2f} s; "
          f"{int(match['detected'].sum())}/{len(match)} haemorrhages found, {match.attrs['false_positives']} false positives")
    table.round(2)
    """),
    ("code", """
    img, lab = sitk.GetArrayFromImage(ct.image), sitk.GetArrayFromImage(detections.attrs["mask"])
    sp = ct.truth["spacing_mm"]
    n = max(len(ct.truth["lesions"]), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 5.4), squeeze=False)
    for ax, les in zip(axes[0], ct.truth["lesions"] or [None]):
        z = les["centre_index"][0] if les else img.shape[0] // 2
        display.imshow(ax, img[z], window=80, level=40, spacing=sp[1:], overlay=lab[z], overlay_mode="contour")
        if les:
            ax.plot(les["centre_mm"][0], les["centre_mm"][1], "y+", ms=14, mew=2)
            ax.set_title(f"SYNTHETIC · slice {z}: {les['volume_ml']:.2f} mL, {les['hu']:.0f} HU (+ truth)")
        ax.set_xlabel("x (mm); detections as contours, brain window W 80 / L 40")
    plt.tight_layout()
    plt.show()
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        resolution_mm=RESOLUTION,
        tissue_method=TISSUE_METHOD,
        brain_dice=brain_dice,
        gm_dice=float(tissue_table.loc[TISSUE_METHOD, "Dice GM"]),
        wm_dice=float(tissue_table.loc[TISSUE_METHOD, "Dice WM"]),
        dice_by_method=tissue_table[["Dice GM", "Dice WM"]].to_dict("index"),
        brain_volume_ml=base_brain_ml,
        atrophy_depth_mm=ATROPHY_DEPTH_MM,
        brain_loss_true_ml=shrink["volume_ml"],
        brain_loss_ml=brain_loss_ml,
        pbvc_true=-100 * shrink["volume_ml"] / base_brain_ml,
        pbvc=-100 * brain_loss_ml / base_brain_ml,
        gm_loss_true_ml=thin["volume_ml"],
        gm_loss_ml=gm_loss_ml,
        ct_synthetic=bool(ct.truth["synthetic"]),
        n_haemorrhages=len(ct.truth["lesions"]),
        n_detected=int(match["detected"].sum()) if len(match) else 0,
        false_positives=int(match.attrs["false_positives"]),
        detection_distance_max_mm=float(match["distance_mm"].max()) if len(match) else 0.0,
        detection_volume_error_max_percent=float(match["volume_error_percent"].abs().max()) if len(match) else 0.0,
        detection_hu_error_max=float((match["mean_hu"] - match["true_hu"]).abs().max()) if len(match) else 0.0,
        detections=[{"centroid_mm": list(r["centroid_mm"]), "volume_ml": r["volume_ml"], "mean_hu": r["mean_hu"]}
                    for _, r in detections.iterrows()],
        brain_seconds=brain_seconds,
        atrophy_seconds=atrophy_seconds,
        detect_seconds=detect_seconds,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/neurological.ipynb", CELLS))
