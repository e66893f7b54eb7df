"""Build notebooks/usecases/fetal_biometry.ipynb (run: .venv/bin/python tools/nbbuild/fetal_biometry.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Fetal biometry: head circumference from ultrasound, and agreement with the sonographer

    **HC18** (van den Heuvel et al. 2018): 2D ultrasound of the fetal head, each with its pixel size and
    the sonographer's head circumference (HC). Here medlab's pretrained U-Net
    (`medlab.models.pretrained('hc18_unet')`) segments the head, an ellipse is fitted to it in
    millimetres (`medlab.models.head_circumference`, via `evaluate_hc18`), and the HC is compared with
    the sonographer's by a **Bland-Altman** analysis (`medlab.metrics.bland_altman`): the bias and the
    95 % limits of agreement, the way a new measurement method is compared with the clinical one.

    **Which images.** `medlab.models.hc18_split(seed=0)` splits HC18 by subject (images of one fetus
    stay together) and stratifies by head circumference, so every part spans the three trimesters.
    The U-Net was trained on the training part; the annotation-line offset was calibrated on the
    training masks and the quality-control thresholds were chosen on the validation part. This
    notebook measures on the **test part**, which chose nothing: its numbers are held-out numbers.
    medlab's HC18 copy holds only the challenge's training set (the test set's HC is not public).
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    N_IMAGES = 0          # test images used (0: all), spread over gestational age
    FIT = "opencv"        # ellipse fit: 'opencv' (algebraic) or 'skimage' (total least squares)
    SPLIT_SEED = 0        # must be the seed the model was trained with (0) for held-out images
    """),
    ("code", """
    import time
    import warnings

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    from IPython.display import Markdown, display as show

    from medlab import datasets, display, metrics, models
    from medlab.reports import record

    t_start = time.perf_counter()
    net = models.pretrained("hc18_unet")
    trained_on = net.info["split"]
    split = models.hc18_split(val_fraction=trained_on["val_fraction"], test_fraction=trained_on["test_fraction"],
                              seed=SPLIT_SEED)
    held_out = split["test"]
    shared = {models.hc18.subject_of(c) for c in split["train"] + split["val"]} & \
        {models.hc18.subject_of(c) for c in held_out}
    print(f"model trained on hc18_split(seed={trained_on['seed']}): {trained_on['n_train']} images; "
          f"test part here (seed {SPLIT_SEED}): {len(held_out)} images, subjects shared with training or "
          f"validation: {len(shared)}")
    if SPLIT_SEED != trained_on["seed"]:
        print("WARNING: another split seed; some of these images were used for training")
    cases = held_out if not N_IMAGES or N_IMAGES >= len(held_out) else \
        [held_out[i] for i in np.linspace(0, len(held_out) - 1, N_IMAGES).astype(int)]
    """),
    ("md", """
    ## The model card

    What the model was trained on, what it is for, how it did on held-out data by head size (with
    95 % confidence intervals from resampling whole subjects), how it fails and what its quality
    flags mean: `models.card(net)` renders its `info` (a notebook also shows it when the model is
    displayed).
    """),
    ("code", """
    show(Markdown(models.card(net)))
    """),
    ("md", """
    ## Measure every image, with a quality verdict

    `evaluate_hc18` runs `models.measure_head` on each image: the network segments the head in the
    image and in its three flips (test-time augmentation), the mean head probability is mapped back
    onto the image's own pixel grid, an ellipse is fitted to its 0.5 contour in mm (leaving out any
    part along the image border, so a head cut by the border is fitted to its skull arc), and the
    width of the drawn annotation line is subtracted (`net.info['boundary_offset_px']`). Every HC
    comes with a **QC verdict**: flagged when the outline is far from an ellipse, the head touches
    the border, the HC changes between the flipped passes, or the size is implausible for the pixel
    spacing.
    """),
    ("code", """
    t0 = time.perf_counter()
    table = models.evaluate_hc18(net, cases, methods=(FIT,))
    infer_seconds = time.perf_counter() - t0
    table = table.rename(columns={f"hc_{FIT}_mm": "hc_unet_mm", f"abs_err_{FIT}_mm": "abs_err_mm"})
    print(f"{len(table)} images in {infer_seconds:.1f} s ({1000 * infer_seconds / len(table):.0f} ms per image, "
          "four network passes each)")
    table[["case", "band", "pixel_size_mm", "hc_ref_mm", "hc_unet_mm", "abs_err_mm", "dice", "qc_flag"]].round(2).head(8)
    """),
    ("md", """
    ## Agreement: Bland-Altman

    For each image the difference U-Net - sonographer against their mean. The bias says whether the
    method measures systematically larger or smaller; the limits of agreement say how far apart the
    two can be for one fetus (95 % of the differences), which is what decides whether the methods can
    replace each other. Head circumference grows from about 50 to 350 mm over pregnancy, so the plot
    also shows whether the differences grow with the size.
    """),
    ("code", """
    ba = metrics.bland_altman(table["hc_unet_mm"], table["hc_ref_mm"])
    within_2mm = float((table["abs_err_mm"] <= 2).mean())
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ref, est = table["hc_ref_mm"], table["hc_unet_mm"]
    axes[0].plot(ref, est, "o", ms=4)
    lim = [ref.min() - 10, ref.max() + 10]
    axes[0].plot(lim, lim, "k--", lw=1)
    axes[0].set(xlabel="sonographer HC (mm)", ylabel="U-Net HC (mm)", title=f"{len(table)} held-out images")
    axes[1].plot(ba.means, ba.differences, "o", ms=4)
    for value, style, label in ((ba.bias, "-", f"bias {ba.bias:+.2f} mm"),
                                (ba.lower, "--", f"-1.96 SD {ba.lower:+.2f} mm"),
                                (ba.upper, "--", f"+1.96 SD {ba.upper:+.2f} mm")):
        axes[1].axhline(value, color="k", ls=style, lw=1)
        axes[1].text(ba.means.max(), value, " " + label, va="bottom", ha="right")
    axes[1].axhspan(*ba.bias_ci, color="C1", alpha=0.15, label="95 % CI of the bias")
    axes[1].set(xlabel="mean of the two (mm)", ylabel="U-Net - sonographer (mm)",
                title=f"Bland-Altman ({FIT} ellipse fit)")
    axes[1].legend(loc="lower left")
    plt.tight_layout()
    plt.show()
    print(f"bias {ba.bias:+.2f} mm (95 % CI {ba.bias_ci[0]:+.2f} to {ba.bias_ci[1]:+.2f}); "
          f"limits of agreement {ba.lower:+.2f} to {ba.upper:+.2f} mm; MAD {ba.mean_abs_difference:.2f} mm; "
          f"{within_2mm:.0%} within 2 mm")
    """),
    ("md", """
    ## By head size

    Head circumference grows from about 50 to 350 mm over pregnancy, and a pixel of a late-pregnancy
    image covers more millimetres, so the error is reported per band (HC below 150 mm, 150-250 mm,
    above 250 mm), each with a 95 % confidence interval from resampling whole subjects.
    """),
    ("code", """
    summary = models.hc18_summary(table.rename(columns={"hc_unet_mm": f"hc_{FIT}_mm", "abs_err_mm": f"abs_err_{FIT}_mm"}),
                                  method=FIT)
    rows = {"all": summary["overall"], **{f"HC {k} mm": v for k, v in summary["bands"].items()}}
    bands = pd.DataFrame({k: {"images": v["n_images"], "subjects": v["n_subjects"], "MAD (mm)": v["mad_mm"],
                              "95 % CI": f"{v['mad_ci95_mm'][0]:.2f}-{v['mad_ci95_mm'][1]:.2f}",
                              "median (mm)": v["median_abs_err_mm"], "bias (mm)": v["bias_mm"],
                              "within 2 mm": f"{v['within_2mm']:.0%}"} for k, v in rows.items()}).T
    bands.round(2)
    """),
    ("md", """
    ## Do the flags hold the large errors?

    A quality flag is useful when the flagged measurements are the bad ones: the mean absolute
    difference of flagged and unflagged images, the share flagged, and the share of the large
    errors (above 4 mm) that carry a flag. The thresholds were chosen on the validation part, so
    this is a held-out check of the flags.
    """),
    ("code", """
    qc = summary["qc"]
    flagged = table["qc_flag"].to_numpy(bool)
    print(f"flagged {qc['n_flagged']} of {len(table)} ({qc['share_flagged']:.0%}); MAD flagged "
          f"{qc['mad_flagged_mm']:.2f} mm, unflagged {qc['mad_unflagged_mm']:.2f} mm "
          f"(95 % CI {qc['mad_unflagged_ci95_mm'][0]:.2f}-{qc['mad_unflagged_ci95_mm'][1]:.2f}); "
          f"{qc['n_large_errors']} errors above {qc['large_error_mm']:g} mm, of which {qc['large_errors_flagged']:.0%} flagged")
    print("reasons:", qc["reasons"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.scatter(table["hc_ref_mm"][~flagged], table["abs_err_mm"][~flagged], s=14, label="not flagged")
    ax.scatter(table["hc_ref_mm"][flagged], table["abs_err_mm"][flagged], s=30, marker="x", color="C3", label="flagged")
    ax.axhline(qc["large_error_mm"], color="k", ls=":", lw=1)
    ax.set(xlabel="sonographer HC (mm)", ylabel="|U-Net - sonographer| (mm)", yscale="symlog",
           title="held-out errors and QC flags")
    ax.legend()
    plt.show()
    """),
    ("md", """
    ## The largest disagreements

    The three images with the largest differences, with the U-Net's head outline and the QC verdict:
    a reader would check a flagged measurement against its outline before using it.
    """),
    ("code", """
    worst = table.sort_values("abs_err_mm", ascending=False).head(3)
    fig, axes = plt.subplots(1, len(worst), figsize=(5 * len(worst), 4.2))
    for ax, (_, row) in zip(np.atleast_1d(axes), worst.iterrows()):
        d = datasets.load("hc18", case=row["case"], progress=False)
        labels = models.segment(net, d["image"], tta=True)
        display.imshow(ax, d["image"], overlay=labels, overlay_mode="contour")
        verdict = "QC: " + (row["qc_reasons"][:60] if row["qc_flag"] else "not flagged")
        ax.set_title(f"{row['case']}: {row['hc_unet_mm']:.0f} vs {row['hc_ref_mm']:.0f} mm\\n{verdict}", fontsize=9)
        ax.axis("off")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Bad input gets a flag or an error, never a confident number

    A blank frame, and a frame whose pixel spacing was never set (1 mm, as a PNG read without
    its metadata), go through the same call; a numpy array without a spacing is refused.
    """),
    ("code", """
    d = datasets.load("hc18", case=cases[0], progress=False)
    blank = sitk.Image(d["image"].GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(d["image"])
    no_spacing = sitk.Image(d["image"])
    no_spacing.SetSpacing((1.0, 1.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bad = {"blank frame": models.measure_head(net, blank), "spacing not set": models.measure_head(net, no_spacing)}
    for name, m in bad.items():
        print(f"{name}: HC {m.hc_mm:.0f} mm, flagged {m.qc.flagged}: {'; '.join(m.qc.reasons)}")
    print("input warnings:", [str(w.message)[:100] for w in caught])
    try:
        models.measure_head(net, sitk.GetArrayFromImage(d["image"]))
    except ValueError as err:
        print("numpy without spacing:", err)
    bad_input_flagged = all(m.qc.flagged for m in bad.values())
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        fit=FIT,
        split_seed=SPLIT_SEED,
        n_images=len(table),
        n_subjects=int(table["subject"].nunique()),
        shared_subjects_with_training=len(shared),
        mad_mm=ba.mean_abs_difference,
        median_abs_err_mm=float(table["abs_err_mm"].median()),
        bias_mm=ba.bias,
        bias_ci_mm=list(ba.bias_ci),
        sd_mm=ba.sd,
        loa_lower_mm=ba.lower,
        loa_upper_mm=ba.upper,
        within_2mm=within_2mm,
        dice_mean=float(table["dice"].mean()),
        ms_per_image=1000 * infer_seconds / len(table),
        mad_ci_mm=summary["overall"]["mad_ci95_mm"],
        band_mad_mm={k: v["mad_mm"] for k, v in summary["bands"].items()},
        band_mad_ci_mm={k: v["mad_ci95_mm"] for k, v in summary["bands"].items()},
        band_n={k: v["n_images"] for k, v in summary["bands"].items()},
        qc_share_flagged=qc["share_flagged"],
        qc_mad_flagged_mm=qc["mad_flagged_mm"],
        qc_mad_unflagged_mm=qc["mad_unflagged_mm"],
        qc_n_large_errors=qc["n_large_errors"],
        qc_large_errors_flagged=qc["large_errors_flagged"],
        bad_input_flagged=bad_input_flagged,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/fetal_biometry.ipynb", CELLS))
