"""Build notebooks/usecases/lung_ct.ipynb (run: .venv/bin/python tools/nbbuild/lung_ct.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Lung tumour on CT: one click, size in millimetres, radiomics

    A lung-cancer CT, the **IBSI 1 CT radiomics phantom** (a real patient's chest CT used by the
    Image Biomarker Standardisation Initiative; 204 x 201 x 60 voxels of 0.977 x 0.977 x 3 mm,
    with the radiation oncologist's GTV). The task a reader does at every follow-up visit:

    1. **segment** the tumour from one click on it (`medlab.segmentation.segment_ct_tumour`); the
       click is simulated with `seed_from_mask` (the GTV only says *where* the tumour is, as a
       reader's pointer would; the segmentation never sees it);
    2. **score** it against the GTV (`medlab.metrics.segmentation_scores`);
    3. **measure** it as RECIST 1.1 does, the longest axial diameter in mm
       (`medlab.segmentation.longest_diameter`), and its volume in mL
       (`medlab.segmentation.label_statistics`);
    4. extract **IBSI features** (`medlab.features`) from the click segmentation and from the GTV,
       to see how much the segmentation moves each feature.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    METHOD = "region_growing"  # segment_ct_tumour method: 'region_growing' or 'watershed'
    SEED_RULE = "interior"     # where the simulated click lands: 'interior' (deepest GTV voxel) or 'max' (brightest)
    HU_RANGE = [-300, 250]     # tumour HU range for the growth (soft tissue and its border with lung)
    FEATURE_CONFIG = "A"       # IBSI settings 'A'..'E' for the features (A: 2D, FBS 25 HU, no interpolation)
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from medlab import datasets, display, features, metrics, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    ct, gtv = datasets.load("ibsi_ct_phantom", progress=False)
    print(f"CT {ct.GetSize()} voxels of {tuple(round(s, 3) for s in ct.GetSpacing())} mm (x, y, z); "
          f"GTV {int(segmentation.label_statistics(gtv)['voxels'].iloc[0])} voxels")
    """),
    ("md", """
    ## Segment from one click

    The click is a voxel index `(z, y, x)`. The CT recipe grows the tumour's HU range from it inside
    a sphere whose radius it measures from the image (rays from the click), so it does not leak
    into the chest wall the tumour touches.
    """),
    ("code", """
    seed = segmentation.seed_from_mask(gtv, ct, rule=SEED_RULE)
    t0 = time.perf_counter()
    tumour, info = segmentation.segment_ct_tumour(ct, seed_index=seed, method=METHOD, lower=HU_RANGE[0],
                                                  upper=HU_RANGE[1], return_info=True)
    seg_seconds = time.perf_counter() - t0
    print(f"click at (z, y, x) = {seed}, {info['seed_value']:.0f} HU; sphere radius {info['radius_mm']:.1f} mm; "
          f"{METHOD} in {seg_seconds:.2f} s")
    scores = metrics.segmentation_scores(tumour, gtv)
    pd.Series(scores).round(3).to_frame("vs GTV")
    """),
    ("md", """
    ## Size: RECIST longest diameter and volume

    RECIST 1.1 follows a target lesion by its longest diameter on an axial slice. Here it is the
    largest distance between the centres of two tumour voxels of one slice, over all slices.
    """),
    ("code", """
    size = {}
    for name, m in (("segmentation", tumour), ("GTV", gtv)):
        d = segmentation.longest_diameter(m, return_info=True)
        size[name] = {"longest_diameter_mm": d.diameter_mm, "slice_z": d.slice_index,
                      "volume_ml": float(segmentation.label_statistics(m)["volume_ml"].iloc[0]), "ends": d.endpoints_index}
    table = pd.DataFrame(size).T
    table[["longest_diameter_mm", "slice_z", "volume_ml"]]
    """),
    ("code", """
    sp_y, sp_x = ct.GetSpacing()[1], ct.GetSpacing()[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
    for ax, (name, m) in zip(axes, (("segmentation", tumour), ("GTV", gtv))):
        z = size[name]["slice_z"]
        display.imshow(ax, display.slice_of(ct, z), preset="lung", overlay=display.slice_of(m, z), overlay_mode="contour")
        (_, y0, x0), (_, y1, x1) = size[name]["ends"]
        ax.plot([x0 * sp_x, x1 * sp_x], [y0 * sp_y, y1 * sp_y], "y-", lw=2)
        ax.set_title(f"{name}, slice z={z}: longest diameter {size[name]['longest_diameter_mm']:.1f} mm")
        ax.set_xlabel("x (mm)"); ax.set_ylabel("y (mm)")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Features: how much does the segmentation move them?

    The same IBSI settings on the click segmentation and on the GTV; the relative difference shows
    which features are robust to the contour (intensity statistics) and which follow it (shape,
    texture of the border).
    """),
    ("code", """
    settings = features.ibsi_settings(FEATURE_CONFIG)
    t0 = time.perf_counter()
    both = pd.concat([features.extract(ct, tumour, settings, name="segmentation"),
                      features.extract(ct, gtv, settings, name="GTV")])
    feature_seconds = time.perf_counter() - t0
    both = both.loc[:, both.notna().all()]
    rel = ((both.loc["segmentation"] - both.loc["GTV"]) / both.loc["GTV"].abs()).replace([np.inf, -np.inf], np.nan).dropna()
    family = rel.index.str.split("_").str[0]
    by_family = rel.abs().groupby(family).median().sort_values()
    print(f"{both.shape[1]} features in {feature_seconds:.1f} s (IBSI configuration {FEATURE_CONFIG})")
    shown = ["morph_vol", "morph_diam", "morph_sphericity", "stat_mean", "stat_var", "ih_entropy"]
    both[[c for c in shown if c in both]].T.round(3)
    """),
    ("code", """
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(by_family.index, 100 * by_family.values)
    ax.set_ylabel("median |relative difference| (%)")
    ax.set_title("features from the click segmentation vs the GTV, by family")
    plt.tight_layout()
    plt.show()
    """),
    ("md", "## Summary"),
    ("code", """
    seg, ref = size["segmentation"], size["GTV"]
    record(
        method=METHOD,
        seed_rule=SEED_RULE,
        dice=scores["dice"],
        hd95_mm=scores["hd95_mm"],
        longest_diameter_mm=seg["longest_diameter_mm"],
        longest_diameter_gtv_mm=ref["longest_diameter_mm"],
        diameter_error_mm=seg["longest_diameter_mm"] - ref["longest_diameter_mm"],
        volume_ml=seg["volume_ml"],
        volume_gtv_ml=ref["volume_ml"],
        volume_relative_error=(seg["volume_ml"] - ref["volume_ml"]) / ref["volume_ml"],
        feature_config=FEATURE_CONFIG,
        n_features=int(both.shape[1]),
        median_abs_rel_diff_by_family={k: float(v) for k, v in by_family.items()},
        segmentation_seconds=seg_seconds,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/lung_ct.ipynb", CELLS))
