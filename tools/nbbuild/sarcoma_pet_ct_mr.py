"""Build notebooks/usecases/sarcoma_pet_ct_mr.ipynb (run: .venv/bin/python tools/nbbuild/sarcoma_pet_ct_mr.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Soft-tissue sarcoma on PET/CT/MR: fusion, PET tumour, SUV and TLG

    One patient of the **IBSI soft-tissue sarcoma validation set** (TCIA collection
    *Soft-tissue-Sarcoma*, thigh tumours): a CT in HU, a T1-weighted MR and an FDG PET in SUV, each
    with the radiation oncologist's gross tumour volume (GTV). The task:

    1. **fuse** the three modalities on the CT grid (`medlab.registration.resample`,
       `resample_labels`) and look at them together (`medlab.fusion`: side-by-side panels, PET
       colour overlay with its SUV scale, GTV contours, CT/MR checkerboard);
    2. **segment** the metabolically active tumour on the PET from one click
       (`medlab.segmentation.segment_pet_tumour`: Otsu in a box, 40 % of SUVmax, or SUV 2.5);
    3. **quantify** it the way a PET report does (`medlab.segmentation.suv_metrics`): SUVmax,
       SUVmean, SUVpeak (IBSI local intensity peak, mean in a 1 cm³ sphere at the SUVmax voxel),
       metabolic tumour volume (MTV, mL) and total lesion glycolysis (TLG = SUVmean × MTV);
    4. **compare** the PET tumour with the GTV (`medlab.metrics`: Dice, HD95, volumes).
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    PATIENT = "STS_001"      # one of medlab.datasets.cases('sts')
    METHOD = "otsu_box"      # segment_pet_tumour method: 'otsu_box', 'percent_suvmax' or 'suv'
    PERCENT = 40.0           # % of SUVmax for 'percent_suvmax' (and the first extent of 'otsu_box')
    SUV_THRESHOLD = 2.5      # absolute SUV threshold for 'suv'
    SUV_RANGE = [0.0, 10.0]  # PET colour scale (SUV), fixed so that patients compare on one scale
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets, display, fusion, metrics, registration, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    print("patients:", ", ".join(datasets.cases("sts")))
    scans = {m: datasets.load("sts", case=PATIENT, modality=m) for m in ("CT", "MR_T1", "PET")}
    ct, gtv_ct = scans["CT"]
    mr, gtv_mr = scans["MR_T1"]
    pet, gtv_pet = scans["PET"]
    pd.DataFrame({m: {"size (x, y, z)": img.GetSize(),
                      "spacing (mm)": tuple(round(s, 3) for s in img.GetSpacing()),
                      "origin (mm)": tuple(round(o, 1) for o in img.GetOrigin()),
                      "GTV (mL)": float(segmentation.label_statistics(mask)["volume_ml"].iloc[0])}
                  for m, (img, mask) in scans.items()}).T
    """),
    ("md", """
    ## Fusion on the CT grid

    The three scans are given in **one physical space** (their origins and directions place them
    in the same patient coordinates), so no registration is needed here: MR and PET are resampled
    onto the CT grid through the identity (`resample`, linear; the GTV masks with
    `resample_labels`, nearest neighbour). The GTV was drawn once and rasterised on each grid; after
    resampling, the MR and PET copies should coincide with the CT one (the PET copy less exactly:
    its 4.7 mm voxels are coarser).

    **The MR comes from another session.** It was acquired in another session, in another
    posture; the IBSI data set resampled it onto the CT *around the tumour*. Near the tumour the
    anatomy matches; away from it, bone and leg posture differ by up to about 2 cm. The CT/MR
    checkerboard below shows it: the femur and the skin line jump at the tile borders. A
    deformable registration (`medlab.registration`: B-spline or demons) would be needed to fuse
    the whole leg; for the tumour, the alignment the data set provides is what counts.
    """),
    ("code", """
    t0 = time.perf_counter()
    mr_on_ct = registration.resample(mr, ct, default_value=0.0)
    pet_on_ct = registration.resample(pet, ct, default_value=0.0)
    gtv_mr_on_ct = registration.resample_labels(gtv_mr, ct)
    gtv_pet_on_ct = registration.resample_labels(gtv_pet, ct)
    resample_seconds = time.perf_counter() - t0
    gtv_agreement = {"MR GTV vs CT GTV": metrics.dice(gtv_mr_on_ct, gtv_ct),
                     "PET GTV vs CT GTV": metrics.dice(gtv_pet_on_ct, gtv_ct)}
    print(f"resampled onto the CT grid in {resample_seconds:.2f} s; Dice of the resampled GTVs:",
          ", ".join(f"{k} {v:.3f}" for k, v in gtv_agreement.items()))

    panels = fusion.fusion_panels(ct, mr=mr, pet=pet, labels=gtv_ct, suv_range=SUV_RANGE)
    z = panels["index"]
    names = ["CT", "MR", "PET", "PET/CT", "MR/CT blend", "MR/CT checkerboard"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 8.4))
    for ax, name in zip(axes.ravel(), names):
        ax.imshow(panels[name])
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(f"{PATIENT}, axial slice {z} (most GTV voxels); green: GTV")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ### PET on CT with its SUV scale

    The PET colour overlay (`fusion.colour_overlay`, colour map *hot*) on the CT soft-tissue window;
    SUV below the low end of the scale is transparent. The colour bar (`fusion.colorbar`) gives the
    scale in SUV. The scale is a parameter (`SUV_RANGE`) so that several patients are compared on
    the same one. On the right, the GTV contour on the CT (`fusion.label_contours`).
    """),
    ("code", """
    ct_z = display.slice_of(ct, z)
    sx, sy = ct.GetSpacing()[:2]
    mm = [0, ct.GetSize()[0] * sx, ct.GetSize()[1] * sy, 0]  # axes in mm from the slice's corner
    overlay = fusion.colour_overlay(ct_z, display.slice_of(pet_on_ct, z), preset="abdomen", colormap="hot",
                                    overlay_range=SUV_RANGE, alpha=0.6)
    contours = fusion.label_contours(ct_z, [display.slice_of(gtv_ct, z)], preset="abdomen")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    axes[0].imshow(overlay, extent=mm)
    axes[0].set_title(f"FDG PET on CT, slice {z}")
    fusion.colorbar(axes[0], colormap="hot", vmin=SUV_RANGE[0], vmax=SUV_RANGE[1], label="SUV (g/mL)")
    axes[1].imshow(contours, extent=mm)
    axes[1].set_title("GTV (green) on CT")
    for ax in axes:
        ax.set_xlabel("x (mm)"); ax.set_ylabel("y (mm)")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ### CT/MR checkerboard

    Tiles alternate between the CT (soft-tissue window) and the MR (automatic window), both on the
    CT grid (`fusion.checkerboard`). Inside the GTV the edges continue across the tile borders;
    at the femur and the skin line away from the tumour they do not: the MR session's posture.
    """),
    ("code", """
    board = fusion.checkerboard(ct, mr_on_ct, tiles=(1, 6, 6), window1="abdomen", window2="auto")
    board_z = fusion.label_contours(display.slice_of(board, z), [display.slice_of(gtv_ct, z)], window=1.0, level=0.5)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    axes[0].imshow(board_z, extent=mm)
    axes[0].set_title(f"CT/MR checkerboard, slice {z}; green: GTV")
    far = 0 if z > ct.GetSize()[2] // 2 else ct.GetSize()[2] - 1  # the slice farthest from the tumour's
    axes[1].imshow(display.render(display.slice_of(board, far), 1.0, 0.5), cmap="gray", extent=mm)
    axes[1].set_title(f"slice {far}, {abs(far - z) * ct.GetSpacing()[2]:.0f} mm from it")
    for ax in axes:
        ax.set_xlabel("x (mm)"); ax.set_ylabel("y (mm)")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## The tumour on PET, from one click

    The segmentation runs on the **PET's own grid**: SUVs are measured on the scanner's voxels, not
    on values interpolated onto the CT grid. The click is simulated at the hottest voxel of the GTV
    (`seed_from_mask(..., rule='max')`; the GTV only says where the tumour is, as a reader's pointer
    would). `segment_pet_tumour` grows the tumour from the local SUVmax above a threshold:

    - `'otsu_box'` (default): Otsu's threshold in a box around a first 40 % extent, which adapts to a
      heterogeneous tumour (best mean Dice against the GTVs on the ten patients: 0.74);
    - `'percent_suvmax'`: `PERCENT` % of the local SUVmax, the classic fixed fraction;
    - `'suv'`: SUV ≥ `SUV_THRESHOLD` (classically 2.5).

    Enclosed holes (a necrotic core) are filled: the metabolic tumour volume is the tumour's outline.

    **Does the result hold?** A threshold cannot know the tumour, so every result carries a
    plausibility verdict (`info['verdict']`, `segmentation.pet_plausibility`), and a warning with the
    reasons when it fails: uptake near the click below SUV 2.5 or not above the local background, a
    region of a handful of voxels, a region touching the field of view or larger than a volume bound,
    or a far hotter structure (bladder, heart) in the search box that may have set the threshold.
    The data-driven thresholds were chosen by a rule checked leave-one-patient-out on the ten
    teaching patients (`tools/pet_lopo.py`).
    """),
    ("code", """
    seed = segmentation.seed_from_mask(gtv_pet, pet, rule="max")
    t0 = time.perf_counter()
    tumour, info = segmentation.segment_pet_tumour(pet, seed_index=seed, method=METHOD, percent=PERCENT,
                                                   suv=SUV_THRESHOLD, return_info=True)
    seg_seconds = time.perf_counter() - t0
    print(f"click at (z, y, x) = {seed}; local SUVmax {info['suvmax']:.2f}; {METHOD} threshold "
          f"SUV {info['threshold']:.2f}; {seg_seconds:.2f} s")
    verdict = info["verdict"]
    print("verdict:", "plausible" if verdict.plausible else "IMPLAUSIBLE: " + "; ".join(verdict.reasons),
          f"(contrast to background {verdict.values['contrast']:.1f} x)")

    uptake = {"PET tumour": segmentation.suv_metrics(pet, tumour), "GTV": segmentation.suv_metrics(pet, gtv_pet)}
    columns = {"suvmax": "SUVmax", "suvpeak": "SUVpeak", "suvmean": "SUVmean", "mtv_ml": "MTV (mL)",
               "tlg": "TLG (SUV·mL)", "n_voxels": "PET voxels"}
    pd.DataFrame(uptake).T[list(columns)].rename(columns=columns).astype(float).round(2)
    """),
    ("md", """
    ## PET tumour vs GTV

    The GTV is the radiation oncologist's outline of the whole tumour (on CT and MR); the PET tumour
    is where the tumour takes up FDG above the threshold. They need not agree: a sarcoma's necrotic
    or myxoid parts take up little FDG, and the GTV includes margins the PET cannot see. Dice and
    HD95 (`metrics.segmentation_scores`) are computed on the PET grid.
    """),
    ("code", """
    scores = metrics.segmentation_scores(tumour, gtv_pet)
    comparison = pd.Series({"Dice": scores["dice"], "HD95 (mm)": scores["hd95_mm"],
                            "PET tumour volume (mL)": uptake["PET tumour"]["mtv_ml"],
                            "GTV volume on PET grid (mL)": uptake["GTV"]["mtv_ml"],
                            "GTV volume on CT grid (mL)": float(segmentation.label_statistics(gtv_ct)["volume_ml"].iloc[0]),
                            "volume ratio PET/GTV": uptake["PET tumour"]["mtv_ml"] / uptake["GTV"]["mtv_ml"]})
    comparison.round(3).to_frame(f"{PATIENT}, {METHOD}")
    """),
    ("code", """
    tumour_on_ct = registration.resample_labels(tumour, ct)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    both = fusion.label_contours(ct_z, [display.slice_of(gtv_ct, z), display.slice_of(tumour_on_ct, z)],
                                 preset="abdomen")
    axes[0].imshow(both, extent=mm)
    axes[0].set_title(f"slice {z}: GTV (green), PET tumour (magenta)")
    axes[0].set_xlabel("x (mm)"); axes[0].set_ylabel("y (mm)")
    pet_arr = sitk.GetArrayViewFromImage(pet)
    bins = np.linspace(0, max(info["suvmax"], SUV_RANGE[1]), 60)
    axes[1].hist(pet_arr[sitk.GetArrayViewFromImage(gtv_pet) > 0], bins, alpha=0.6, label="inside the GTV")
    axes[1].hist(pet_arr[sitk.GetArrayViewFromImage(tumour) > 0], bins, alpha=0.6, label="PET tumour")
    axes[1].axvline(info["threshold"], color="k", ls="--", label=f"threshold SUV {info['threshold']:.2f}")
    axes[1].set_xlabel("SUV"); axes[1].set_ylabel("PET voxels"); axes[1].legend()
    axes[1].set_title("uptake inside the GTV and the PET tumour")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    The PET tumour keeps the voxels above the threshold connected to the hottest spot: it leaves
    out the parts of the GTV that take up little FDG (the left tail of the GTV's histogram:
    necrotic or myxoid tissue), and it can reach beyond the GTV where the tissue around takes up
    FDG too (the outline on the left). So its SUVmean is higher than the GTV's, while its volume
    may be smaller or larger. SUVmax and SUVpeak are the same for both when the hottest spot lies
    inside both. TLG combines uptake and volume: the total uptake of the metabolically active
    tumour, the number that follows a response to treatment.

    ## Summary
    """),
    ("code", """
    pet_u, gtv_u = uptake["PET tumour"], uptake["GTV"]
    record(
        patient=PATIENT,
        method=METHOD,
        threshold_suv=info["threshold"],
        suvmax=pet_u["suvmax"],
        suvpeak=pet_u["suvpeak"],
        suvmean=pet_u["suvmean"],
        mtv_ml=pet_u["mtv_ml"],
        tlg=pet_u["tlg"],
        gtv_suvmean=gtv_u["suvmean"],
        gtv_volume_pet_ml=gtv_u["mtv_ml"],
        gtv_volume_ct_ml=comparison["GTV volume on CT grid (mL)"],
        gtv_tlg=gtv_u["tlg"],
        dice=scores["dice"],
        hd95_mm=scores["hd95_mm"],
        verdict_plausible=bool(verdict.plausible),
        verdict_reasons=list(verdict.reasons),
        contrast_to_background=float(verdict.values["contrast"]),
        gtv_dice_mr_vs_ct=gtv_agreement["MR GTV vs CT GTV"],
        gtv_dice_pet_vs_ct=gtv_agreement["PET GTV vs CT GTV"],
        fusion_slice=z,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/sarcoma_pet_ct_mr.ipynb", CELLS))
