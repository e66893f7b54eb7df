"""Benchmarks of medlab.detection: multi-scale LoG blobs against scikit-image's ``blob_log``.

detection_blobs_log_ct  the synthetic nodule CT (``nodule_ct_phantom``, 64 x 112 x 112 voxels of
                        1.25 x 1 x 1 mm), 8 scales for diameters 4-20 mm, threshold 100 HU, no
                        refinement. Baseline: ``skimage.feature.blob_log`` with the same sigmas
                        (``log_scale=True``) on the same array; skimage ignores the anisotropic
                        spacing, medlab takes derivatives in mm and returns physical candidates.
                        Target: ratio <= 1.5 (the mm derivatives cost one filter per axis and
                        scale, where skimage uses one Laplace filter). Measured 0.56 (2.2 s vs
                        4.0 s on 2 busy cores: skimage's peak search is the slower part).

Timed interleaved (medians of wall time), in the same run.
"""

from __future__ import annotations

import math
import statistics
import time


def bench_detection_blobs_log_ct(repeats=3):
    import SimpleITK as sitk
    from skimage.feature import blob_log

    from medlab import datasets, detection

    ph = datasets.nodule_ct_phantom(seed=0)
    arr = sitk.GetArrayFromImage(ph.image).astype(float)
    d = (4.0, 20.0)
    sig = [x / (2 * math.sqrt(3)) for x in d]

    def ours():
        return detection.blobs(ph.image, diameters_mm=d, n_scales=8, threshold=100, refine=False, overlap=1.0)

    def theirs():
        return blob_log(arr, min_sigma=sig[0], max_sigma=sig[1], num_sigma=8, threshold=100, log_scale=True, overlap=1.0)

    wall = {"ours": [], "theirs": []}
    for _ in range(repeats):
        for who, func in (("ours", ours), ("theirs", theirs)):
            t = time.perf_counter()
            func()
            wall[who].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in wall.items()}
    ratio = med["ours"] / med["theirs"]
    return {
        "medlab_ms": 1e3 * med["ours"],
        "baseline_ms": 1e3 * med["theirs"],
        "ratio": ratio,
        "target": "ratio <= 1.5",
        "ok": ratio <= 1.5,
        "note": f"{arr.size} voxels, 8 scales; medlab in mm (anisotropic), skimage in voxels",
    }


BENCHMARKS = {"detection_blobs_log_ct": bench_detection_blobs_log_ct}
