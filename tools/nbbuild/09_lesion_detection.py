"""Build notebooks/tutorials/09_lesion_detection.ipynb
(run: .venv/bin/python tools/nbbuild/09_lesion_detection.py)."""

from _nb import write

CELLS = [
    ("md", """
    # 09 · Lesion detection: PET hot spots, blobs in millimetres, FROC

    A detector does not draw the lesion; it points at **candidates**: a position in mm, a size
    and a score. `medlab.detection` has two classic detectors:

    - **blobs** (`detection.blobs`): the scale-normalised Laplacian of Gaussian (or its
      difference-of-Gaussian approximation) at several scales; a bright ball of diameter `d`
      answers most strongly at `sigma = d / (2 sqrt(3))`, so each local maximum over position
      and scale is a candidate with a diameter. Overlapping candidates are thinned by
      non-maximum suppression.
    - **threshold + connected components** (`detection.components`): every connected region with
      uptake `>= SUV_THRESHOLD`, scored by its SUVmax.

    They are scored with a **free-response ROC (FROC)**: sensitivity (lesions found) against
    false positives per image, as the decision threshold on the score falls. **Hit criterion**: a
    candidate hits a lesion when the voxel at its centre lies inside the lesion (or within
    `TOLERANCE_MM` of it); a second hit on the same lesion counts neither way; any other
    candidate is a false positive.

    Data: the **10 soft-tissue-sarcoma FDG PET scans** (in SUV) with the radiation oncologist's
    GTV as truth, cropped around the tumour; then a **synthetic** CT phantom with lung nodules of
    known position and size (`datasets.nodule_ct_phantom`), where the detector can be checked to
    the millimetre.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    CASES = []                  # sarcoma patients (empty: all 10)
    METHOD = "log"              # blob detector: 'log' or 'dog'
    DIAMETERS_MM = [20, 100]    # blob diameters looked for (the GTVs are 28-585 mL)
    N_SCALES = 8
    THRESHOLD = 0.5             # smallest blob score (normalised response, SUV)
    SUV_THRESHOLD = 2.5         # threshold of the component detector
    TOLERANCE_MM = 0.0          # hit criterion: 0 means the centre voxel must be inside the GTV
    SHOW_CASE = "STS_001"
    PHANTOM_SEED = 0            # synthetic nodule phantom
    N_NODULES = 5
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    from matplotlib.patches import Circle

    from medlab import datasets, detection, display, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    cases = list(CASES) or datasets.cases("sts")
    scans = {c: datasets.load("sts", case=c, modality="PET", progress=False) for c in cases}
    t_detect = time.perf_counter()
    blob_tables = {c: detection.blobs(pet, diameters_mm=DIAMETERS_MM, n_scales=N_SCALES, method=METHOD,
                                      threshold=THRESHOLD) for c, (pet, _) in scans.items()}
    comp_tables = {c: detection.components(pet, threshold=SUV_THRESHOLD, min_voxels=2) for c, (pet, _) in scans.items()}
    ms_per_scan = 1000 * (time.perf_counter() - t_detect) / len(cases)
    print(f"{len(cases)} PET scans; {np.mean([len(t) for t in blob_tables.values()]):.1f} blob and "
          f"{np.mean([len(t) for t in comp_tables.values()]):.1f} component candidates per scan ({ms_per_scan:.0f} ms per scan)")
    """),
    ("md", """
    ## One scan's candidates

    The table is what a detector hands on: centre `(x, y, z)` in mm (the scanner's frame), the
    diameter and volume of the blob, and the score. Circles show the blob candidates on the axial
    slice through the best one; the GTV is outlined.
    """),
    ("code", """
    show = SHOW_CASE if SHOW_CASE in scans else cases[0]
    pet, gtv = scans[show]
    matched, _ = detection.match(blob_tables[show], gtv, tolerance_mm=TOLERANCE_MM)
    print(matched.head(8).round(2).to_string())

    best = matched.iloc[0]
    k = int(round(pet.TransformPhysicalPointToContinuousIndex((best.x_mm, best.y_mm, best.z_mm))[2]))
    origin = pet.GetOrigin()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    display.imshow(ax, display.slice_of(pet, k), window=10, level=5, overlay=display.slice_of(gtv, k), overlay_mode="contour")
    for _, cand in matched.head(8).iterrows():
        if abs(cand.z_mm - best.z_mm) <= cand.diameter_mm / 2:  # the blob cuts this slice
            colour = {"TP": "lime", "FP": "red", "duplicate": "orange"}[cand.outcome]
            ax.add_patch(Circle((cand.x_mm - origin[0], cand.y_mm - origin[1]), cand.diameter_mm / 2, fill=False, color=colour, lw=1.5))
    ax.set_title(f"{show}: PET (SUV 0-10), GTV outline; blobs TP green, FP red, duplicate orange", fontsize=8)
    plt.show()
    """),
    ("md", """
    ## FROC over the ten scans

    A single score threshold is shared by all scans, as in clinical use. Sensitivity at a given
    number of false positives per scan is the best sensitivity reached without exceeding it.
    """),
    ("code", """
    truths = [scans[c][1] for c in cases]
    froc_blobs = detection.froc([blob_tables[c] for c in cases], truths, tolerance_mm=TOLERANCE_MM)
    froc_comp = detection.froc([comp_tables[c] for c in cases], truths, tolerance_mm=TOLERANCE_MM)
    rates = [0.25, 0.5, 1.0, 2.0, 4.0]
    sens = pd.DataFrame({f"blobs ({METHOD})": detection.sensitivity_at(froc_blobs, rates),
                         f"components (SUV >= {SUV_THRESHOLD})": detection.sensitivity_at(froc_comp, rates)})
    sens.index.name = "FP per scan"
    print(sens.T.round(2).to_string())

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, f in [(sens.columns[0], froc_blobs), (sens.columns[1], froc_comp)]:
        ax.step(f.fp_per_image, f.sensitivity, where="post", label=name)
    ax.set(xscale="symlog", xlim=(0, 20), ylim=(0, 1.05), xlabel="false positives per scan", ylabel="sensitivity",
           title=f"FROC, {len(cases)} sarcoma PET scans vs GTV")
    ax.legend(loc="lower right")
    plt.show()
    missed = froc_blobs.lesions[~froc_blobs.lesions["detected"]]
    print("GTVs no blob hits:", [cases[i] for i in missed["image"]])
    """),
    ("md", """
    ## Synthetic check: lung nodules of known size (synthetic data)

    `nodule_ct_phantom` places spherical nodules (40 HU) in the lungs (-850 HU) of a synthetic
    chest CT, with straight vessels of the same HU as distractors and 20 HU noise. The lungs are
    found by their HU (`segmentation.hu_mask`, 'lung'), closed with an 8 mm ball (the largest
    nodule radius) and filled, so that nodules, also those touching the chest wall, are inside;
    blobs inside them are compared with the known nodules.
    """),
    ("code", """
    ph = datasets.nodule_ct_phantom(n_nodules=N_NODULES, seed=PHANTOM_SEED)
    lung = segmentation.closing(segmentation.hu_mask(ph.image, "lung"), 8.0)
    lung = segmentation.fill_holes(lung, slice_wise=True)
    nodules = detection.blobs(ph.image, diameters_mm=(4, 20), n_scales=8, method=METHOD, mask=lung, threshold=100)
    labels = sitk.GetArrayFromImage(ph.labels)
    nodule_labels = sitk.GetImageFromArray(np.where(np.isin(labels, ph.truth["nodule_labels"]), labels, 0).astype(np.uint8))
    nodule_labels.CopyInformation(ph.labels)  # one label per nodule, as in the phantom's truth
    froc_ph = detection.froc([nodules], [nodule_labels], labelled=True)
    hits, _ = detection.match(nodules, nodule_labels, labelled=True)
    truth = pd.DataFrame([{"label": les["label"], "x_mm": les["centre_mm"][0], "y_mm": les["centre_mm"][1],
                           "z_mm": les["centre_mm"][2], "diameter_mm": les["diameter_mm"]} for les in ph.truth["lesions"]])
    found = hits[hits["outcome"] == "TP"].set_index("lesion")
    compare = truth.merge(found[["x_mm", "y_mm", "z_mm", "diameter_mm", "score"]], left_on="label", right_index=True,
                          how="left", suffixes=("", "_found")).set_index("label")
    compare["position_error_mm"] = np.linalg.norm(compare[["x_mm_found", "y_mm_found", "z_mm_found"]].to_numpy()
                                                  - compare[["x_mm", "y_mm", "z_mm"]].to_numpy(), axis=1)
    compare["diameter_error_mm"] = compare["diameter_mm_found"] - compare["diameter_mm"]
    print(compare[["diameter_mm", "diameter_mm_found", "position_error_mm", "diameter_error_mm", "score"]].round(2).to_string())
    print(f"{len(nodules)} candidates in the lungs; sensitivity before the first false positive: "
          f"{detection.sensitivity_at(froc_ph, [0.0])[0.0]:.2f}")

    biggest = ph.truth["lesions"][int(np.argmax([les["diameter_mm"] for les in ph.truth["lesions"]]))]
    z = biggest["centre_index"][0]
    fig, ax = plt.subplots(figsize=(5, 5))
    display.imshow(ax, display.slice_of(ph.image, z), preset="lung")
    for _, cand in hits.head(2 * N_NODULES).iterrows():
        if abs(cand.z_mm - biggest["centre_mm"][2]) <= cand.diameter_mm / 2:
            colour = "lime" if cand.outcome == "TP" else "red"
            ax.add_patch(Circle((cand.x_mm, cand.y_mm), cand.diameter_mm / 2, fill=False, color=colour, lw=1.5))
    ax.set_title(f"synthetic nodule phantom, slice z={z}: blob candidates (TP green, FP red)", fontsize=8)
    plt.show()
    seconds = time.perf_counter() - t_start
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        n_scans=len(cases),
        method=METHOD,
        blobs_per_scan=float(np.mean([len(t) for t in blob_tables.values()])),
        components_per_scan=float(np.mean([len(t) for t in comp_tables.values()])),
        blob_sensitivity={str(k): v for k, v in detection.sensitivity_at(froc_blobs, rates).items()},
        component_sensitivity={str(k): v for k, v in detection.sensitivity_at(froc_comp, rates).items()},
        blob_max_sensitivity=froc_blobs.max_sensitivity,
        component_max_sensitivity=froc_comp.max_sensitivity,
        show_case=show,
        show_case_top_outcome=str(matched.iloc[0]["outcome"]),
        phantom_nodules=len(ph.truth["lesions"]),
        phantom_sensitivity_at_0fp=detection.sensitivity_at(froc_ph, [0.0])[0.0],
        phantom_max_position_error_mm=float(compare["position_error_mm"].max()),
        phantom_max_abs_diameter_error_rel=float((compare["diameter_error_mm"].abs() / compare["diameter_mm"]).max()),
        ms_per_scan=ms_per_scan,
        seconds=seconds,
    )
    """),
]

if __name__ == "__main__":
    print(write("tutorials/09_lesion_detection.ipynb", CELLS))
