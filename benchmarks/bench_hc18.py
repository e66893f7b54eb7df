"""HC18 head circumference per image: inference and measurement with the QC verdict.

hc18_measure    ``medlab.models.measure_head`` with its default four flipped passes (test-time
                augmentation, the QC spread check, ellipse fits, verdict) on 16 real HC18
                frames of the test part, vs the one-pass path (``segment`` of the head
                probability + ``head_circumference``), both on frames already loaded, run
                interleaved. Target: <= 400 ms per image with QC on 2 CPU cores.

The QC verdict costs three extra network passes on the model's grid and three ellipse fits on
that coarse grid; the measurement itself stays on the image's own grid. The pretrained model's
second pass (a crop around the head, 224 x 224, the same four flips, its level spread and outline
correction) and the expected-error QC check are part of ``measure_head`` and so of ``medlab_ms``;
the baseline stays one pass of the first network.
"""

from __future__ import annotations

import statistics
import time


def bench_hc18_measure(repeats=3, n_images=16):
    import numpy as np
    import SimpleITK as sitk

    from medlab import datasets
    from medlab import models as mm

    net = mm.pretrained("hc18_unet")
    cases = mm.hc18_split(seed=0)["test"]
    cases = [cases[i] for i in np.linspace(0, len(cases) - 1, n_images).astype(int)]
    images = [datasets.load("hc18", case=c, progress=False).image for c in cases]
    offset = net.info.get("boundary_offset_px", mm.HC18_BOUNDARY_OFFSET_PX)

    def ours():
        mm.measure_head(net, images)

    def baseline():
        probs = mm.segment(net, images, output="probabilities")
        for p in probs:
            mm.head_circumference(sitk.VectorIndexSelectionCast(p, 1), boundary_offset_px=offset)

    ours(), baseline()  # graph tracing, caches
    a, b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        ours()
        a.append(1000 * (time.perf_counter() - t) / n_images)
        t = time.perf_counter()
        baseline()
        b.append(1000 * (time.perf_counter() - t) / n_images)
    medlab_ms, baseline_ms = statistics.median(a), statistics.median(b)
    return {
        "medlab_ms": round(medlab_ms, 1),
        "baseline_ms": round(baseline_ms, 1),
        "ratio": round(medlab_ms / baseline_ms, 2),
        "target": "<= 400 ms per image with the QC verdict (2 CPU cores)",
        "ok": medlab_ms <= 400,
        "note": f"{n_images} HC18 test frames (540 x 800), model grid {net.input_size}; baseline: one pass, no QC",
    }


BENCHMARKS = {"hc18_measure": bench_hc18_measure}
