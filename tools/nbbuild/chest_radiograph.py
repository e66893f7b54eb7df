"""Build notebooks/usecases/chest_radiograph.ipynb (run: .venv/bin/python tools/nbbuild/chest_radiograph.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · Chest radiograph: contrast enhancement and lung fields

    A real chest radiograph (computed radiography, PA view) from pydicom-data, `RG1_UNCI.dcm`:
    1841 x 1955 pixels, 15-bit, MONOCHROME1 (medlab.io.read maps it to "larger = brighter").

    1. **Enhance** the contrast for reading: display windows (`medlab.enhance.window_level`), global
       histogram equalisation and CLAHE (`medlab.enhance.equalize_hist`, `clahe`).
    2. **Segment the lung fields** with a classical recipe (`medlab.segmentation.lung_fields`:
       smoothed automatic threshold, opening, border air removed, the two largest regions, closing
       and hole filling).
    3. **Measure**: lung-field areas in cm² and the left/right ratio.

    There is **no ground truth** for this image, so the segmentation is shown and measured, not
    scored (its recipe is tested on a synthetic radiograph with known lungs in
    `tests/test_segmentation_chest.py`). This radiograph shows many round opacities (nodules) in
    both lungs; where they, the heart or the diaphragm domes make the lung as bright as the
    mediastinum (the bases, the left lung behind the heart), a threshold cannot see lung, and the
    classical recipe leaves those parts out: its areas are those of the clearly aerated lung.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    CASE = "RG1_UNCI.dcm"    # pydicom-data file: RG1_UNCI (uncompressed), RG1_J2KR (lossless JPEG 2000), RG1_J2KI (lossy)
    THRESHOLD = "otsu"       # lung_fields threshold: 'otsu', 'li', 'yen', 'isodata'
    CLAHE_CLIP = 0.01        # CLAHE contrast limit in (0, 1]
    ASSUMED_PIXEL_MM = 0.2   # used only when the header has no pixel spacing (this file's PixelSpacing is 0)
    """),
    ("code", """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import pydicom
    import SimpleITK as sitk

    from medlab import datasets, display, enhance, io, metrics, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    path = datasets.load("pydicom_data", case=CASE)
    cr = io.read(path)
    meta = io.metadata(path, identifying=False)  # no names, IDs or dates
    header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ViewPosition", "PatientOrientation"])
    print({k: meta[k] for k in ("modality", "body_part_examined", "photometric_interpretation", "pixel_spacing_mm",
                                "imager_pixel_spacing_mm", "window_center", "window_width", "transfer_syntax")})
    print("view", header.get("ViewPosition"), "| patient orientation (rows, columns):", list(header.get("PatientOrientation", [])))
    """),
    ("md", """
    ## Pixel size

    Areas in cm² need the pixel size. This file's `PixelSpacing` is `0\\\\0` (unknown) and it has no
    `ImagerPixelSpacing`, so `medlab.io.read` leaves the spacing at 1 (uncalibrated). The notebook then
    uses `ASSUMED_PIXEL_MM` (0.2 mm, a typical storage-phosphor / selenium detector pitch: the image is
    then 368 x 391 mm, the size of a chest field). Areas scale with its square; the left/right ratio
    does not depend on it.
    """),
    ("code", """
    header_spacing = [s for s in (meta["pixel_spacing_mm"], meta["imager_pixel_spacing_mm"]) if s and min(s) > 0]
    calibrated = bool(header_spacing)
    if not calibrated:
        cr.SetSpacing((ASSUMED_PIXEL_MM, ASSUMED_PIXEL_MM))
    pixel_mm = cr.GetSpacing()[0]
    print(f"pixel {pixel_mm} mm ({'from the header' if calibrated else 'assumed'}); "
          f"field {cr.GetSize()[0] * pixel_mm:.0f} x {cr.GetSize()[1] * pixel_mm:.0f} mm")
    """),
    ("md", """
    ## Contrast enhancement

    A display window maps intensities linearly (the header's own window, and the 1st-99th percentile
    'auto' window); histogram equalisation and CLAHE redistribute grey levels, globally or per tile,
    which brings out the vessels and nodules in the lungs and the spine behind the heart.
    """),
    ("code", """
    t0 = time.perf_counter()
    variants = {
        "header window": enhance.window_level(cr, meta["window_width"], meta["window_center"]),
        "auto window (1-99 %)": enhance.window_level(cr, preset="auto"),
        "histogram equalisation": enhance.equalize_hist(cr),
        f"CLAHE (clip {CLAHE_CLIP})": enhance.clahe(cr, clip_limit=CLAHE_CLIP),
    }
    enhance_seconds = time.perf_counter() - t0
    fig, axes = plt.subplots(1, 4, figsize=(18, 5.2))
    for ax, (name, img) in zip(axes, variants.items()):
        display.imshow(ax, img, window=1.0, level=0.5)
        ax.set_title(name); ax.axis("off")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Lung fields

    The recipe runs on the image as read (intensities as acquired, at a 1 mm working grid). Labels
    are by image side: 1 is the field on the image's left. In a PA view with columns running towards
    the patient's left (`PatientOrientation` L\\\\F), that is the patient's **right** lung.
    """),
    ("code", """
    t0 = time.perf_counter()
    lungs, info = segmentation.lung_fields(cr, threshold=THRESHOLD, return_info=True)
    seg_seconds = time.perf_counter() - t0
    orientation = list(header.get("PatientOrientation", []))
    image_left_is = "right" if (orientation[:1] == ["L"]) else "left"
    names = {1: f"patient's {image_left_is}", 2: f"patient's {'left' if image_left_is == 'right' else 'right'}"}
    stats = segmentation.label_statistics(lungs, cr)
    stats["lung"] = stats["label"].map(names)
    stats["area_cm2"] = stats["area_mm2"] / 100
    print(f"{info['n_lungs']} lung fields, threshold {info['threshold']:.0f} ({THRESHOLD}), {seg_seconds:.2f} s")
    stats[["label", "lung", "area_cm2", "mean", "std"]].round(1)
    """),
    ("code", """
    area = dict(zip(stats["lung"], stats["area_cm2"]))
    right, left = area.get("patient's right", float("nan")), area.get("patient's left", float("nan"))
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5))
    display.imshow(axes[0], variants[f"CLAHE (clip {CLAHE_CLIP})"], window=1.0, level=0.5)
    axes[0].set_title("CLAHE")
    display.imshow(axes[1], cr, preset="auto", overlay=lungs, overlay_mode="fill", overlay_alpha=0.35)
    axes[1].set_title(f"lung fields: right {right:.0f} cm², left {left:.0f} cm² (L/R {left / right:.2f})")
    for ax in axes:
        ax.set_xlabel("x (mm)"); ax.set_ylabel("y (mm)")
    plt.tight_layout()
    plt.show()
    """),
    ("md", """
    ## Contrast in numbers

    The contrast-to-noise ratio between the lung fields and the rest of the chest inside their
    bounding box (`medlab.metrics.cnr`) for each rendering. A linear window changes it only where it
    clips. Equalisation and CLAHE spend grey levels on local detail (vessels, nodules, rib edges), so
    the contrast between the large regions, relative to their spread, goes *down* while the image
    reads better: a single global number does not capture what CLAHE is for.
    """),
    ("code", """
    lung_arr = sitk.GetArrayFromImage(lungs) > 0
    ys, xs = np.nonzero(lung_arr)
    around = np.zeros_like(lung_arr)
    around[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    around &= ~lung_arr
    cnr = {name: metrics.cnr(img, lung_arr, around) for name, img in {"original": cr, **variants}.items()}
    pd.Series(cnr).round(2).to_frame("CNR lungs vs chest")
    """),
    ("md", "## Summary"),
    ("code", """
    record(
        case=CASE,
        threshold=THRESHOLD,
        pixel_mm=pixel_mm,
        pixel_size_from_header=calibrated,
        n_lungs=int(info["n_lungs"]),
        right_lung_area_cm2=right,
        left_lung_area_cm2=left,
        total_lung_area_cm2=right + left,
        left_right_ratio=left / right,
        cnr=cnr,
        enhance_seconds=enhance_seconds,
        segmentation_seconds=seg_seconds,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/chest_radiograph.ipynb", CELLS))
