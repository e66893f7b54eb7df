"""napari plugin: what a user waits for, in a real napari viewer (Qt, OpenGL; run under xvfb-run).

napari_3d_frame       IBSI CT phantom (60x201x204, HU) with its GTV and a threshold mask (two
                      Labels layers) in the 3D view: median time of one drawn frame (a camera
                      rotation, then ``screenshot``). Baseline: the CT alone. Target: <= 500 ms
                      per frame for CT + two labels (software OpenGL under Xvfb is what CI has).
napari_open_dicom     the plugin's reader on the IBSI DICOM series folder (read, metadata for
                      the layer name, CT window) vs ``medlab.io.read`` alone. Target: ratio <= 1.3.
napari_threshold      the Threshold dock on the CT (threshold, new layer, volume and mean HU),
                      vs ``medlab.segmentation.threshold`` alone. Target: median <= 500 ms.

Each needs an X display (``xvfb-run -a -s "-screen 0 1600x1200x24" python benchmarks/run.py
napari_3d_frame``); without one it reports ``ok: None`` and says so.
"""

from __future__ import annotations

import os
import statistics
import time

N_FRAMES = 8


def _no_display() -> dict | None:
    if not os.environ.get("DISPLAY"):
        return {"medlab_ms": None, "baseline_ms": None, "ratio": None, "target": "needs an X display",
                "ok": None, "note": "run under xvfb-run"}
    return None


def _ct_and_gtv():
    import medlab.datasets

    case = medlab.datasets.load("ibsi_ct_phantom", progress=False)
    return case.image, case.label


def _frames(viewer, n: int) -> float:
    times = []
    for k in range(n):
        viewer.scene.camera.angles = (0.0, 10.0 * k, 90.0)
        t = time.perf_counter()
        viewer.screenshot(canvas_only=True, flash=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000.0


def napari_3d_frame() -> dict:
    skip = _no_display()
    if skip:
        return skip
    import napari

    import medlab.segmentation
    from medlab.widgets.napari import _layers

    ct, gtv = _ct_and_gtv()
    viewer = napari.Viewer(show=True)
    try:
        data, kw, _ = _layers.image_to_layer(ct, "ct", modality="CT")
        viewer.add_image(data, **kw)
        viewer.dims.ndisplay = 3
        viewer.reset_view()
        _frames(viewer, 2)  # warm-up: textures uploaded
        alone = _frames(viewer, N_FRAMES)
        for img, name in ((gtv, "GTV"), (medlab.segmentation.threshold(ct, lower=200, upper=3000), "bone")):
            d, k, _ = _layers.image_to_layer(img, name, "labels")
            viewer.add_labels(d, **k)
        _frames(viewer, 2)
        both = _frames(viewer, N_FRAMES)
    finally:
        viewer.close()
    return {"medlab_ms": round(both, 1), "baseline_ms": round(alone, 1), "ratio": round(both / alone, 2),
            "target": "<= 500 ms per 3D frame, CT + two labels", "ok": both <= 500.0,
            "note": f"median of {N_FRAMES} frames; baseline: the CT alone"}


def napari_open_dicom() -> dict:
    import medlab.datasets
    import medlab.io
    from medlab.widgets.napari import _reader

    folder = medlab.datasets.fetch("ibsi_ct_phantom", progress=False) / "dicom" / "image"
    plugin, plain = [], []
    for _ in range(3):  # interleaved
        t = time.perf_counter()
        _reader.read_layers(str(folder))
        plugin.append(time.perf_counter() - t)
        t = time.perf_counter()
        medlab.io.read(folder)
        plain.append(time.perf_counter() - t)
    a, b = statistics.median(plugin) * 1000.0, statistics.median(plain) * 1000.0
    return {"medlab_ms": round(a, 1), "baseline_ms": round(b, 1), "ratio": round(a / b, 2),
            "target": "ratio <= 1.3", "ok": a / b <= 1.3, "note": "reader layer vs medlab.io.read"}


def napari_threshold() -> dict:
    skip = _no_display()
    if skip:
        return skip
    import napari

    import medlab.segmentation
    from medlab.widgets.napari import _layers

    ct, _ = _ct_and_gtv()
    viewer = napari.Viewer(show=False)
    try:
        data, kw, _ = _layers.image_to_layer(ct, "ct", modality="CT")
        layer = viewer.add_image(data, **kw)
        _, dock = viewer.window.add_plugin_dock_widget("medlab", "Threshold")
        dock.image.value = layer
        dock.lower.value, dock.upper.value = 200.0, 3000.0
        widget, plain = [], []
        for _ in range(5):
            t = time.perf_counter()
            dock()
            widget.append(time.perf_counter() - t)
            t = time.perf_counter()
            medlab.segmentation.threshold(ct, lower=200, upper=3000)
            plain.append(time.perf_counter() - t)
    finally:
        viewer.close()
    a, b = statistics.median(widget) * 1000.0, statistics.median(plain) * 1000.0
    return {"medlab_ms": round(a, 1), "baseline_ms": round(b, 1), "ratio": round(a / b, 2),
            "target": "median <= 500 ms", "ok": a <= 500.0,
            "note": "dock call (new layer, summary) vs medlab.segmentation.threshold"}


BENCHMARKS = {"napari_3d_frame": napari_3d_frame, "napari_open_dicom": napari_open_dicom,
              "napari_threshold": napari_threshold}
