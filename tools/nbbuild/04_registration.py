"""Build notebooks/tutorials/04_registration.ipynb (run: .venv/bin/python tools/nbbuild/04_registration.py)."""

from _nb import write

CELLS = [
    ("md", """
    # 04 · Registration: rigid to non-rigid, on real images with a known truth

    Registration finds the transform that brings one image (the **moving** image) onto another
    (the **fixed** image). `medlab.registration.register` is one call for every model: rigid
    (rotation + translation), similarity (+ one scale), affine (+ scales and shears), B-spline
    free-form deformation and (diffeomorphic) demons, with a multi-resolution pyramid, a metric
    for one or two modalities, progress and stop.

    How good is a registration? On real scans the true alignment is usually unknown. Here it is
    **made known**: the moving scan is moved by a seeded random transform (`random_rigid`,
    `random_affine`, `random_deformation`), registered back, and the result is compared with that
    transform point by point: the **target registration error** (TRE, mm) over the tumour voxels,
    and the Dice of the tumour masks.

    1. CT + PET (or MR) of a soft-tissue-sarcoma patient: rigid / similarity / affine;
    2. the metric trace, the blend and checkerboard views before and after, the scores;
    3. what the data allow (the MR's other session) and a TRE table over several patients;
    4. non-rigid: a known smooth deformation of the MNI152 brain template, recovered by demons
       (or B-spline), with the Jacobian determinant and the folding count.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    PATIENT = "STS_001"                    # one of medlab.datasets.cases('sts')
    MODALITY = "PET"                       # moving modality: 'PET' or 'MR_T1' (fixed: the CT)
    TRANSFORM = "rigid"                    # 'rigid', 'similarity' or 'affine'
    METRIC = None                          # None: registration.default_metric(TRANSFORM, ('CT', MODALITY))
    LEVELS = (4, 2)                        # pyramid shrink factors, coarse to fine; (4, 2, 1) adds the
                                           # full-resolution level: ~8x slower, no better on PET (4.7 mm voxels)
    SEED = 1                               # seed of the known random transforms
    N_PATIENTS = 2                         # patients in the TRE table (10 for the full table)
    DEFORMABLE = "diffeomorphic_demons"    # 'bspline', 'demons', 'diffeomorphic_demons' or None (skip)
    MNI_RESOLUTION = 2                     # MNI152 template voxel size (mm): 1 or 2
    """),
    ("code", """
    import tempfile
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets, display, fusion, registration, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    ct, gtv = datasets.load("sts", case=PATIENT, modality="CT", progress=False)
    image, image_gtv = datasets.load("sts", case=PATIENT, modality=MODALITY, progress=False)
    metric = METRIC or registration.default_metric(TRANSFORM, ("CT", MODALITY))
    pd.DataFrame({m: {"size (x, y, z)": img.GetSize(),
                      "spacing (mm)": tuple(round(s, 3) for s in img.GetSpacing()),
                      "origin (mm)": tuple(round(o, 1) for o in img.GetOrigin())}
                  for m, img in (("CT (fixed)", ct), (f"{MODALITY} (moving)", image))}).T
    """),
    ("md", """
    ## Fixed → moving: ITK's convention

    A registration transform `T` maps **fixed** points to **moving** points: the point `x` of the CT
    corresponds to the point `T(x)` of the moving scan. This is the direction resampling needs:
    to build the moving scan on the CT grid, each CT voxel `x` looks up the moving scan at `T(x)`
    (`registration.resample(moving, ct, T)`).

    **A known truth.** The CT and the PET of one PET/CT share the scanner's space, so the identity
    aligns them. `move_image(image, truth)` moves the scan's content by `truth`: what was at `p`
    ends up at `truth(p)`, on a grid enlarged so that nothing is cropped. Registering the CT
    (fixed) to the moved scan (moving) must then give back `truth` itself. The random rigid motion
    (every angle up to 10°, every shift up to 15 mm) turns about the tumour's centre; an affine
    one (for `TRANSFORM='affine'`) adds up to 5 % scale and shear per axis; `'similarity'` is
    given a rigid truth (it has one scale, no shear).
    """),
    ("code", """
    centre = tuple(segmentation.label_statistics(gtv)["centroid_mm"].iloc[0])  # tumour centre (x, y, z) mm
    make_truth = registration.random_affine if TRANSFORM == "affine" else registration.random_rigid
    truth = make_truth(seed=SEED, center_mm=centre)
    moving = registration.move_image(image, truth)
    moving_gtv = registration.move_image(image_gtv, truth, is_label=True)
    print(f"tumour centre {np.round(centre, 1)} mm; known truth ({truth.GetName()}):")
    print("  matrix", np.round(truth.GetMatrix(), 3))
    print("  translation (mm)", np.round(truth.GetTranslation(), 2))
    print(f"moving grid {moving.GetSize()} (enlarged from {image.GetSize()} to hold the moved scan)")
    """),
    ("md", """
    ## Before: blend and checkerboard

    Both views need the two images on one grid: the moved scan is resampled onto the CT grid
    through the identity (`resample`: no registration yet). The **alpha blend** mixes the CT
    (soft-tissue window) and the moving scan (automatic window) half and half: misalignment shows
    as doubled edges. The **checkerboard** alternates tiles of the two: misalignment shows as
    edges that break at the tile borders. The CT's tumour outline is green; the moved tumour
    mask is magenta.
    """),
    ("code", """
    z = int(np.argmax(sitk.GetArrayViewFromImage(gtv).sum(axis=(1, 2))))  # axial slice with most tumour
    sx, sy = ct.GetSpacing()[:2]
    mm = [0, ct.GetSize()[0] * sx, ct.GetSize()[1] * sy, 0]
    gtv_z = display.slice_of(gtv, z)


    def fusion_views(moving_on_ct, moving_gtv_on_ct, title):
        blend = fusion.alpha_blend(ct, moving_on_ct, 0.5, window1="abdomen", window2="auto")
        board = fusion.checkerboard(ct, moving_on_ct, tiles=(1, 6, 6), window1="abdomen", window2="auto")
        outlines = [gtv_z, display.slice_of(moving_gtv_on_ct, z)]
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
        for ax, view, name in zip(axes, (blend, board), ("alpha blend", "checkerboard")):
            ax.imshow(fusion.label_contours(display.slice_of(view, z), outlines, window=1.0, level=0.5), extent=mm)
            ax.set_title(f"{title}: CT/{MODALITY} {name}, slice {z}")
            ax.set_xlabel("x (mm)"); ax.set_ylabel("y (mm)")
        plt.tight_layout()
        plt.show()


    moving_on_ct = registration.resample(moving, ct, default_value=0.0)
    fusion_views(moving_on_ct, registration.resample_labels(moving_gtv, ct), "before")
    """),
    ("md", """
    ## Register

    The CT is fixed, the moved scan is moving. The metric (when `METRIC` is None) comes from
    `default_metric`: Mattes **mutual information** for two modalities (CT in HU against PET in
    SUV or MR in arbitrary units: no intensity relation to assume, only that one predicts the
    other), mean squares for CT-CT, normalised correlation for two scans of another same modality.
    The pyramid `LEVELS` registers shrunken, smoothed copies first (shrink 4, then 2, ...):
    the coarse levels find the large motion quickly and are less easily trapped; the finer ones
    refine it. Every metric is minimised (mutual information enters with a minus sign).
    """),
    ("code", """
    result = registration.register(ct, moving, transform=TRANSFORM, metric=METRIC, modalities=("CT", MODALITY),
                                   levels=LEVELS, progress=True)
    print(f"{result.transform_kind}, {result.metric}: {result.iterations} iterations over levels {result.levels} "
          f"in {result.seconds:.1f} s; metric {result.initial_metric:.4f} -> {result.final_metric:.4f}")
    print("stop:", result.stop_reason)

    trace = result.metric_trace
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for level, rows in trace.groupby("level"):
        ax.plot(rows.index, rows["metric"], ".-", label=f"level {level + 1}: shrink {result.levels[level]}")
    ax.set_xlabel("iteration (all levels)"); ax.set_ylabel(f"{result.metric} (lower is better)")
    ax.set_title("metric trace"); ax.legend()
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    The metric jumps between levels because each level compares other (less smoothed, finer)
    images; within a level it falls and flattens, and the level stops when it has flattened.

    ## After: the same views, and the scores

    `result.resampled` is the moving scan on the CT grid through the found transform;
    `result.apply(mask, is_label=True)` brings the moved tumour mask along the same way.
    `registration_scores` compares the result with the truth: TRE over every CT tumour voxel
    (mean, 95th percentile), where the scan started (the identity's TRE), and the Dice of the
    tumour masks after registration, before it and through the true transform (the best the two
    mask grids allow).
    """),
    ("code", """
    fusion_views(result.resampled, result.apply(moving_gtv, is_label=True), "after")
    scores = registration.registration_scores(result.transform, truth, target_mask=gtv, fixed_mask=gtv,
                                              moving_mask=moving_gtv)
    pd.Series({"TRE start, mean (mm)": scores["tre_start_mean_mm"], "TRE after, mean (mm)": scores["tre_mean_mm"],
               "TRE after, p95 (mm)": scores["tre_p95_mm"], "TRE after, max (mm)": scores["tre_max_mm"],
               "Dice before": scores["dice_start"], "Dice after": scores["dice"],
               "Dice through the truth": scores["dice_truth"]}).round(3).to_frame(f"{PATIENT} CT-{MODALITY} {TRANSFORM}")
    """),
    ("md", """
    **Similarity and affine** (`TRANSFORM`): more parameters are not free. On this CT-PET pair
    mutual information *prefers* a collapse: mapping the whole CT onto a small part of the PET
    (a radial body profile onto the radial tumour profile) scores higher than the true alignment.
    So `register` runs similarity and affine as two stages: rigid over the whole pyramid first,
    then the full model from there (`rigid_first=True`, ANTs' practice), and it rejects a second
    stage that scales the image outside 0.8-1.25 or runs off the image, keeping the rigid stage:
    each stage's verdict (accepted, collapsed, rejected) and metric are in `result.stages`. Measured here (STS_001, seed 1, `LEVELS` (4, 2)): rigid 2.3 mm;
    similarity 3.8 mm (7.9 mm in one stage, `rigid_first=False`); affine collapses either way
    (scales 0.3-0.8: 37 mm in one stage), so the rigid stage is kept (2.5 mm). For one patient's
    PET/CT, rigid is the right model.

    **Which image is sampled.** The metric is computed at sample points of one image, and samples
    that map outside the other image drop out. When the moving image is a crop inside the fixed
    one (the sarcoma MR covers less than the CT) the optimiser could choose *which* anatomy is
    compared; `register` then samples the moving image instead (`sample_on='auto'`, shown in
    `result.sampled_on`) and inverts the result: on the 10 sarcoma CT/MR pairs the mean TRE fell
    from 13.0 to 10.0 mm and no registration ran off the image
    (`benchmarks/results/registration.md`).

    The result is a `sitk.Transform`: it composes with others (`registration.compose`) and is
    saved as an ITK transform file that ITK, SimpleITK, 3D Slicer or ANTs read back.
    """),
    ("code", """
    with tempfile.TemporaryDirectory() as tmp:
        path = result.save(Path(tmp) / f"{PATIENT}_ct_{MODALITY.lower()}_{TRANSFORM}.tfm")
        back = registration.read_transform(path)
        print(f"{path.name}: {path.stat().st_size} bytes; read back: {back.GetName()}, "
              f"same parameters: {np.allclose(back.GetParameters(), result.transform.GetParameters())}")
    """),
    ("md", """
    ## What the data allow: one session or two

    The known truth is exact only if the **unmoved** pair is truly aligned. For the **PET** it is:
    PET and CT come from the same PET/CT session, aligned by the hardware. The **MR** was acquired
    in another session, in another posture; the IBSI data set resampled it onto the CT *around the
    tumour*. Bone and leg posture differ by about 2 cm away from it. Mutual information sees the
    whole field of view, so its optimum is not the provided alignment, and the TRE against it for
    the MR is 15-20 mm (STS_001: 13.7 mm mean, 17.8 mm p95, Dice no better than before): it
    measures the data as much as the method.

    Registering the **unperturbed** pair makes this visible: the result should be the identity.
    Its distance from the identity over the tumour (the **drift**) is small for the PET (STS_001:
    2.7 mm) and large for the MR (15.4 mm; run with `MODALITY='MR_T1'`).
    """),
    ("code", """
    unperturbed = registration.register(ct, image, transform=TRANSFORM, metric=METRIC, modalities=("CT", MODALITY),
                                        levels=LEVELS)
    identity = sitk.Transform(3, sitk.sitkIdentity)
    drift = registration.target_registration_error(unperturbed.transform, identity, mask=gtv)
    print(f"{PATIENT} CT-{MODALITY}, no motion applied: the registration moves the tumour by "
          f"{drift.mean:.2f} mm on average (p95 {drift.p95:.2f} mm) away from the provided alignment")
    """),
    ("md", """
    For the PET the drift is about as large as the TRE after registering the moved scan: from
    15 mm away the registration comes back to the same optimum, and what is left is where mutual
    information puts that optimum on 4.7 mm PET voxels, not a failure to converge.

    ## TRE table over patients

    The same experiment (a fresh random transform per patient, seeded) on the first `N_PATIENTS`
    patients of the data set (10 for the full table).
    """),
    ("code", """
    def known_truth_scores(patient):
        f, f_gtv = datasets.load("sts", case=patient, modality="CT", progress=False)
        m, m_gtv = datasets.load("sts", case=patient, modality=MODALITY, progress=False)
        c = tuple(segmentation.label_statistics(f_gtv)["centroid_mm"].iloc[0])
        t = make_truth(seed=SEED, center_mm=c)
        r = registration.register(f, registration.move_image(m, t), transform=TRANSFORM, metric=METRIC,
                                  modalities=("CT", MODALITY), levels=LEVELS)
        s = registration.registration_scores(r.transform, t, target_mask=f_gtv, fixed_mask=f_gtv,
                                             moving_mask=registration.move_image(m_gtv, t, is_label=True))
        return s, r.seconds


    patients = datasets.cases("sts")[:N_PATIENTS]
    per_patient = {p: ((scores, result.seconds) if p == PATIENT else known_truth_scores(p)) for p in patients}
    table = pd.DataFrame({p: {"TRE start (mm)": s["tre_start_mean_mm"], "TRE after (mm)": s["tre_mean_mm"],
                              "TRE p95 (mm)": s["tre_p95_mm"], "Dice after": s["dice"], "Dice before": s["dice_start"],
                              "seconds": sec} for p, (s, sec) in per_patient.items()}).T
    table.index.name = f"CT-{MODALITY} {TRANSFORM}"
    table.round(3)
    """),
    ("md", """
    ## Non-rigid: a known deformation of the MNI152 brain

    A smooth random displacement field (`random_deformation`: Gaussian-smoothed noise, largest
    displacement 6 mm, checked fold-free) deforms the MNI152 T1 template; `DEFORMABLE` recovers it.
    Demons (Thirion's) pushes each voxel along the intensity gradient where the images differ and
    smooths the field; the **diffeomorphic** variant composes small exponential updates, so the
    result stays invertible. B-spline moves a grid of control points (every 20 mm) under any
    metric. Demons compares intensities directly: one modality only. Measured on the 2 mm template
    (seed 1, 2 shared cores): diffeomorphic demons 1.59 -> 0.43 mm in 20-40 s, B-spline
    1.59 -> 0.37 mm in about 70 s, neither folding.

    The error is the mean distance between the found and the true displacement over the brain
    mask. The **Jacobian determinant** of the transform says how it changes volume locally (> 1
    expands, < 1 shrinks); where it is <= 0 the transform **folds** (not invertible: anatomy
    turned inside out).
    """),
    ("code", """
    if DEFORMABLE is None:
        deformable_scores = None
        print("DEFORMABLE is None: skipped")
    else:
        mni = datasets.load("mni152", resolution=MNI_RESOLUTION, progress=False)
        t1, brain = mni["template"], mni["brain_mask"]
        deformation = registration.random_deformation(t1, max_displacement_mm=6.0, seed=SEED)
        warped = registration.resample(registration.move_image(t1, deformation), t1)
        nonrigid = registration.register(t1, warped, transform=DEFORMABLE, progress=True)
        deformable_scores = registration.registration_scores(nonrigid.transform, deformation, target_mask=brain)
        jac = registration.jacobian_determinant(nonrigid.transform, t1)
        print(f"{DEFORMABLE}: {nonrigid.iterations} iterations in {nonrigid.seconds:.1f} s; displacement error "
              f"over the brain {deformable_scores['tre_start_mean_mm']:.2f} -> {deformable_scores['tre_mean_mm']:.2f} mm "
              f"(p95 {deformable_scores['tre_p95_mm']:.2f} mm); folding voxels {deformable_scores['folding']}, "
              f"Jacobian determinant min {deformable_scores['jacobian_min']:.3f}")
    """),
    ("code", """
    if deformable_scores is not None:
        k = t1.GetSize()[2] // 2  # the middle axial slice
        before = sitk.GetArrayFromImage(display.slice_of(fusion.difference(t1, warped), k))
        after = sitk.GetArrayFromImage(display.slice_of(fusion.difference(t1, nonrigid.resampled), k))
        jac_k = sitk.GetArrayFromImage(display.slice_of(jac, k))
        brain_k = sitk.GetArrayFromImage(display.slice_of(brain, k))
        lim = float(np.percentile(np.abs(before), 99.5))
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
        for ax, diff, name in ((axes[0], before, "T1 - deformed, before"),
                               (axes[1], after, f"T1 - registered ({DEFORMABLE})")):
            im = ax.imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(name); ax.axis("off")
        fig.colorbar(im, ax=axes[:2], shrink=0.8, label="intensity difference")
        im = axes[2].imshow(jac_k, cmap="PuOr_r", vmin=0.5, vmax=1.5)
        axes[2].contour(brain_k, [0.5], colors="k", linewidths=0.6)
        axes[2].set_title("Jacobian determinant (black: brain mask)"); axes[2].axis("off")
        fig.colorbar(im, ax=axes[2], shrink=0.8, label="det J (1: volume kept)")
        plt.show()
    """),
    ("md", """
    The difference image shows where the deformed template disagrees with the original: along
    every edge before, much less after (the ventricles' sharp edges keep a
    trace: the field is smoothed). The Jacobian map shows the found deformation's
    local expansions and compressions; a fold-free result stays above 0 everywhere.

    ## Summary
    """),
    ("code", """
    d = deformable_scores or {}
    record(
        patient=PATIENT,
        modality=MODALITY,
        transform=TRANSFORM,
        metric=result.metric,
        tre_mean_mm=scores["tre_mean_mm"],
        tre_p95_mm=scores["tre_p95_mm"],
        tre_start_mm=scores["tre_start_mean_mm"],
        dice_after=scores["dice"],
        dice_before=scores["dice_start"],
        dice_truth=scores["dice_truth"],
        drift_mm=drift.mean,
        table_tre_mean_mm=float(table["TRE after (mm)"].mean()),
        table_tre_max_mm=float(table["TRE after (mm)"].max()),
        n_patients=len(table),
        deformable=DEFORMABLE,
        deformable_error_mm=d.get("tre_mean_mm"),
        deformable_start_mm=d.get("tre_start_mean_mm"),
        folding=d.get("folding"),
        jacobian_min=d.get("jacobian_min"),
        register_seconds=result.seconds,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("tutorials/04_registration.ipynb", CELLS))
