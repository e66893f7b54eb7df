"""napari plugin: what a user waits for, in a real napari viewer (Qt, OpenGL; run under xvfb-run).

napari_3d_frame       IBSI CT phantom (60x201x204, HU) with its GTV and a threshold mask (two
                      Labels layers) in the 3D view: median time of one drawn frame (a camera
                      rotation, then ``screenshot``), wall clock and the process's CPU time
                      (Mesa llvmpipe draws on threads of this process: CPU time is what the
                      frame costs whatever else loads the machine). Three set-ups interleaved:
                      the CT alone (baseline), the labels drawn by napari as volumes
                      (iso_categorical ray casting, what the plugin did before) and the plugin's
                      3D view (``_view.surfaces_in_3d``: the labels as marching-cubes surfaces).
                      Target: <= 500 ms per frame for CT + two labels (software OpenGL under
                      Xvfb is what CI has); the surfaces' picture must show the label colours.
napari_open_dicom     the plugin's reader on the IBSI DICOM series folder (read, metadata for
                      the layer name, CT window) vs ``medlab.io.read`` alone. Target: ratio <= 1.3.
napari_threshold      the Threshold dock on the CT (threshold, new layer, volume and mean HU),
                      vs ``medlab.segmentation.threshold`` alone. Target: median <= 500 ms.

napari_registration   CT/PET rigid registration of STS_001 run by the Registration blend dock
                      (thread worker, Qt event loop, progress) vs the same register call in the
                      main thread, interleaved. Target: ratio <= 1.2 (the issue saw 35.5 s in
                      napari against 8-20 s outside).

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


def _frames(viewer, n: int, start: float = 0.0) -> tuple[float, float, object]:
    """Median wall and CPU ms of ``n`` frames (each after a camera rotation), and the last picture."""
    wall, cpu, shot = [], [], None
    for k in range(n):
        viewer.scene.camera.angles = (0.0, start + 10.0 * k, 90.0)
        t, c = time.perf_counter(), time.process_time()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1000.0, statistics.median(cpu) * 1000.0, shot


def colour_fraction(shot, rgba, tol: float = 0.06) -> float:
    """Fraction of a screenshot's drawn pixels whose chromaticity (r, g, b over their sum) is that
    of the colour ``rgba``: shading scales a colour, it keeps its chromaticity."""
    import numpy as np

    rgb = np.asarray(shot, float)[..., :3].reshape(-1, 3)
    drawn = rgb[rgb.max(axis=1) > 30]
    if not len(drawn):
        return 0.0
    want = np.asarray(rgba, float)[:3]
    want = want / want.sum()
    chroma = drawn / drawn.sum(axis=1, keepdims=True)
    return float(np.mean(np.abs(chroma - want).max(axis=1) < tol))


def napari_3d_frame() -> dict:
    skip = _no_display()
    if skip:
        return skip
    import napari

    import medlab.segmentation
    from medlab.widgets.napari import _layers, _view

    ct, gtv = _ct_and_gtv()
    viewer = napari.Viewer(show=True)
    out: dict = {"load_1min": round(os.getloadavg()[0], 1)}
    try:
        data, kw, _ = _layers.image_to_layer(ct, "ct", modality="CT")
        ct_layer = viewer.add_image(data, **kw)
        labels, volumes = [], []  # the same labels twice: drawn as surfaces, and as napari's volumes
        for img, name in ((gtv, "GTV"), (medlab.segmentation.threshold(ct, lower=200, upper=3000), "bone")):
            d, k, _ = _layers.image_to_layer(img, name, "labels")
            labels.append(viewer.add_labels(d, **k))
            k["metadata"] = {**k["metadata"], "surface_in_3d": False}
            volumes.append(viewer.add_labels(d, **{**k, "name": f"{name} volume", "visible": False}))
        viewer.dims.ndisplay = 3
        viewer.reset_view()
        times: dict = {"ct": [], "volumes": [], "surfaces": []}
        t = time.perf_counter()
        _view.radiological(viewer)  # the plugin's 3D view: surfaces for the labels
        out["surfaces_build_ms"] = round((time.perf_counter() - t) * 1000.0, 1)
        surfaces = [lay for lay in viewer.layers if lay.name.endswith(_view.SURFACE_SUFFIX)]
        assert [lay.name for lay in surfaces] == ["GTV (3D surface)", "bone (3D surface)"], viewer.layers

        def setup(name):
            for lay in volumes:
                lay.visible = name == "volumes"
            for lay in surfaces:
                lay.visible = name == "surfaces"

        for name in times:  # warm-up: textures and meshes uploaded
            setup(name)
            _frames(viewer, 2)
        for rnd in range(3):  # interleaved rounds
            for name in times:
                setup(name)
                times[name].append(_frames(viewer, N_FRAMES, start=5.0 * rnd))
        # the pictures: the GTV's colour on the canvas (CT and bone hidden)
        ct_layer.visible = False
        for name in ("volumes", "surfaces"):
            setup(name)
            (volumes[1] if name == "volumes" else surfaces[1]).visible = False
            shot = _frames(viewer, 1, start=30.0)[2]
            out[f"gtv_colour_fraction_{name}"] = round(colour_fraction(shot, labels[0].get_color(1)), 3)
        out["load_1min_end"] = round(os.getloadavg()[0], 1)
    finally:
        viewer.close()
    med = {name: (statistics.median(w for w, _, _ in v), statistics.median(c for _, c, _ in v))
           for name, v in times.items()}
    after, before, alone = med["surfaces"][0], med["volumes"][0], med["ct"][0]
    out.update({"medlab_ms": round(after, 1), "baseline_ms": round(alone, 1), "ratio": round(after / alone, 2),
                "volumes_ms": round(before, 1),
                "cpu_ms": {name: round(c, 1) for name, (_, c) in med.items()},
                "target": "<= 500 ms per 3D frame, CT + two labels; GTV colour on the canvas",
                "ok": after <= 500.0 and out["gtv_colour_fraction_surfaces"] >= 0.5,
                "note": f"median of 3 rounds x {N_FRAMES} frames, interleaved; medlab: labels as surfaces "
                        "(plugin), volumes_ms: labels ray-cast by napari (before); baseline: the CT alone"})
    return out


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


def napari_registration(rounds: int = 2) -> dict:
    """CT/PET rigid registration of STS_001 (Mattes, 100 iterations: the dock's defaults) run by
    the Registration blend dock (a thread worker, the Qt event loop turning, progress polled)
    vs the same ``medlab.registration.register`` call on the same images in the main thread,
    interleaved. Also the ITK thread count seen inside the worker thread."""
    skip = _no_display()
    if skip:
        return skip
    import napari
    import SimpleITK as sitk
    from qtpy.QtWidgets import QApplication

    import medlab.datasets
    import medlab.registration
    from medlab.widgets.napari import _layers, _widgets

    ct = medlab.datasets.load("sts", case="STS_001", modality="CT", progress=False).image
    pet = medlab.datasets.load("sts", case="STS_001", modality="PET", progress=False).image
    viewer = napari.Viewer(show=True)
    out: dict = {"load_1min": round(os.getloadavg()[0], 1),
                 "itk_threads_main": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}
    app = QApplication.instance()
    try:
        d, k, _ = _layers.image_to_layer(ct, "CT", modality="CT")
        fixed = viewer.add_image(d, **k)
        d, k, _ = _layers.image_to_layer(pet, "PET", modality="PT")
        moving = viewer.add_image(d, **k)
        _, w = viewer.window.add_plugin_dock_widget("medlab", "Registration blend")
        w.fixed.value, w.moving.value = fixed, moving
        w.register.value, w.transform.value, w.metric.value, w.iterations.value = True, "rigid", "mattes", 100
        options = {"transform": "rigid", "metric": "mattes", "iterations": 100}
        fimg, mimg = _widgets._image(fixed), _widgets._image(moving)
        seen = {}

        registered_s = []  # in the dock: until the registration returned (before the blend is drawn)
        blend_done = w._done

        def stamped(*args):
            registered_s.append(time.perf_counter())
            return blend_done(*args)

        w._done = stamped

        def dock() -> float:
            w._cache = None  # a fresh registration, not the cached blend
            done = []
            t = time.perf_counter()
            worker = w.run()
            worker.finished.connect(lambda: done.append(time.perf_counter()))
            while not done:
                app.processEvents()
                time.sleep(0.005)
            registered_s[-1] -= t
            return done[0] - t

        def plain() -> float:
            t = time.perf_counter()
            medlab.registration.register(fimg, mimg, progress=lambda f, m: True, **options)
            return time.perf_counter() - t

        def threads():
            seen["itk_threads_worker"] = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()

        import threading

        th = threading.Thread(target=threads)
        th.start()
        th.join()
        widget_s, plain_s = [], []
        for _ in range(rounds):
            widget_s.append(dock())
            plain_s.append(plain())
        metric = w.result.metric if w.result is not None and hasattr(w.result, "metric") else None
    finally:
        viewer.close()
    a, b = statistics.median(widget_s), statistics.median(plain_s)
    out.update(seen)
    out.update({"medlab_ms": round(a * 1000.0, 1), "baseline_ms": round(b * 1000.0, 1), "ratio": round(a / b, 2),
                "widget_s": [round(v, 2) for v in widget_s], "plain_s": [round(v, 2) for v in plain_s],
                "widget_registration_s": [round(v, 2) for v in registered_s],
                # the fastest run of each: what the machine allows when nothing else runs (the
                # medians move 2x between identical runs on a shared 2-core machine)
                "best_ratio": round(min(registered_s) / min(plain_s), 2),
                "final_metric": metric, "load_1min_end": round(os.getloadavg()[0], 1),
                "target": "dock within 1.2x of the plain call", "ok": a / b <= 1.2,
                "note": f"STS_001 CT/PET rigid, median of {rounds} interleaved runs each"})
    return out


BENCHMARKS = {"napari_3d_frame": napari_3d_frame, "napari_open_dicom": napari_open_dicom,
              "napari_threshold": napari_threshold, "napari_registration": napari_registration}
