"""napari viewer cases of medlab's plugin, run by tests/test_napari_plugin.py in a fresh pytest process
(a Qt window with OpenGL under Xvfb; no TensorFlow in this process: see
widgets/napari/_model_process.py). Not collected by the suite itself (the name has no ``test_``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.datasets
import medlab.fusion
import medlab.io
import medlab.registration
import medlab.segmentation
from medlab.widgets.napari import _layers, _model_process, _view, _widgets

assert "tensorflow" not in __import__("sys").modules


@pytest.fixture(scope="module")
def phantom():
    ph = medlab.datasets.ct_phantom(shape=(24, 48, 64), seed=3)
    img = sitk.Cast(sitk.Round(ph.image), sitk.sitkInt16)
    img.SetOrigin((-40.0, 12.5, 100.0))
    return img, ph


@pytest.fixture(scope="module", autouse=True)
def model_process():
    yield
    _model_process.shutdown()


def _add(viewer, layer_tuple):
    data, kwargs, kind = layer_tuple
    return getattr(viewer, f"add_{kind}")(data, **kwargs)


def _notes():
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records]


def _rows_brightness(shot) -> tuple[float, float]:
    """Mean grey of the top and bottom halves of the drawn (non-black) rows of a screenshot."""
    grey = shot[..., :3].mean(axis=2)
    rows = np.flatnonzero(grey.max(axis=1) > 0)
    drawn = grey[rows[0]:rows[-1] + 1]
    half = len(drawn) // 2
    return float(drawn[:half].mean()), float(drawn[half:].mean())


def test_open_sample_and_screenshot(make_napari_viewer, phantom, tmp_path):
    viewer = make_napari_viewer(show=True)
    path = medlab.io.write(phantom[0], tmp_path / "ct.nrrd")
    [layer] = viewer.open(str(path), plugin="medlab")
    assert layer.scale == pytest.approx((2.5, 2.0, 2.0)) and layer.translate == pytest.approx((100.0, 12.5, -40.0))
    assert [str(u) for u in layer.units] == ["millimeter"] * 3 and tuple(layer.axis_labels) == ("I→S", "A→P", "R→L")
    assert tuple(layer.contrast_limits) == (-150.0, 250.0)  # CT soft-tissue window, not -1000..max
    assert viewer.canvas.overlays["scale_bar"].visible and tuple(viewer.dims.axis_labels) == ("I→S", "A→P", "R→L")
    viewer.layers.remove("ct")
    # radiological display: superior up in coronal and sagittal views, letters on the canvas
    arr = np.zeros((24, 48, 64), np.int16)
    arr[12:] = 1000  # the superior half bright (z index grows towards the head)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((2.0, 2.0, 2.5))
    [layer] = viewer.open(str(medlab.io.write(img, tmp_path / "head_up.nrrd")), plugin="medlab")
    viewer.dims.order = (1, 0, 2)  # coronal: I→S vertical, R→L horizontal
    viewer.reset_view()
    assert viewer.scene.camera.orientation2d[0] == "up"
    assert viewer.canvas.overlays["text"].visible and viewer.canvas.overlays["text"].text.startswith("coronal   top S · bottom I")
    top, bottom = _rows_brightness(viewer.screenshot(canvas_only=True, flash=False))
    assert top > bottom + 100, (top, bottom)  # the bright superior half drawn at the top
    viewer.dims.order = (2, 0, 1)
    assert viewer.canvas.overlays["text"].text.startswith("sagittal   top S")
    viewer.dims.order = (0, 1, 2)
    assert viewer.scene.camera.orientation2d[0] == "down" and viewer.canvas.overlays["text"].text.startswith("axial   top A")
    viewer.layers.remove(layer)
    layers = viewer.open_sample("medlab", "ct_phantom")
    assert [lay.name for lay in layers] == ["CT phantom (HU)", "phantom labels"]
    labels = viewer.layers["phantom labels"]
    assert labels.data.max() >= 1
    viewer.dims.ndisplay = 2
    z = int(np.argmax((labels.data > 0).sum(axis=(1, 2))))  # the slice with most lesion voxels
    viewer.dims.set_point(0, z * labels.scale[0] + labels.translate[0])
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # a picture, not a black window
    rgb = shot[..., :3].astype(int)
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > 40  # grey CT has r = g = b; label colours do not
    assert coloured.sum() > 20, coloured.sum()


def test_status_bar_in_mm_with_units_and_3d_axes_named(make_napari_viewer, phantom):
    img, _ = phantom
    viewer = make_napari_viewer()
    ct = _add(viewer, _layers.image_to_layer(img, "ct", modality="CT"))
    _view.radiological(viewer)
    index = np.array([10, 20, 30])
    world = index * np.asarray(ct.scale) + np.asarray(ct.translate)  # (z, y, x) mm
    viewer.dims.set_point(0, world[0])  # the slice shown: napari reads the value there
    status = ct.get_status(world, dims_displayed=[1, 2], world=True)
    hu = int(sitk.GetArrayViewFromImage(img)[tuple(index)])
    want = f"I→S {world[0]:.1f} mm, A→P {world[1]:.1f} mm, R→L {world[2]:.1f} mm: {hu} HU"
    assert status["coordinates"] == want, status
    labels_img = sitk.Cast(img > 300, sitk.sitkUInt8)
    labels = _add(viewer, _layers.image_to_layer(labels_img, "bright", "labels"))
    status = labels.get_status(world, dims_displayed=[1, 2], world=True)
    assert status["coordinates"].startswith(f"I→S {world[0]:.1f} mm, A→P") and "HU" not in status["coordinates"]
    # 3D: the axes drawn and named anatomically; 2D: the letters in the text overlay instead
    axes = viewer.canvas.overlays["axes"]
    assert not axes.visible
    viewer.dims.ndisplay = 3
    assert axes.visible and axes.labels and tuple(viewer.dims.axis_labels) == ("I→S", "A→P", "R→L")
    viewer.dims.ndisplay = 2
    assert not axes.visible and viewer.canvas.overlays["text"].visible


def _colour_fraction(shot, rgba, tol: float = 0.06) -> float:
    """Fraction of the drawn pixels with the chromaticity of ``rgba`` (shading keeps it)."""
    rgb = np.asarray(shot, float)[..., :3].reshape(-1, 3)
    drawn = rgb[rgb.max(axis=1) > 30]
    want = np.asarray(rgba, float)[:3] / np.sum(np.asarray(rgba, float)[:3])
    return float(np.mean(np.abs(drawn / drawn.sum(axis=1, keepdims=True) - want).max(axis=1) < tol))


def test_labels_are_drawn_as_surfaces_in_3d(make_napari_viewer, phantom):
    img, ph = phantom
    viewer = make_napari_viewer(show=True)
    _view.radiological(viewer)
    labels_img = sitk.Cast(ph.labels, sitk.sitkUInt8)
    labels_img.CopyInformation(img)
    labels = _add(viewer, _layers.image_to_layer(labels_img, "lesions", "labels"))
    viewer.dims.ndisplay = 3
    surface = viewer.layers["lesions (3D surface)"]
    assert not labels.visible and surface.visible and viewer.layers.selection.active is labels
    assert surface.scale == pytest.approx(labels.scale) and surface.translate == pytest.approx(labels.translate)
    assert [str(u) for u in surface.units] == ["millimeter"] * 3
    values = [v for v in np.unique(labels.data) if v]
    colours = np.unique(np.round(np.asarray(surface.vertex_colors, float), 5), axis=0)
    want = np.unique(np.round([np.asarray(labels.get_color(v), float) for v in values], 5), axis=0)
    np.testing.assert_array_equal(colours, want)  # each lesion in its colour
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    outer = int(np.argmax(np.bincount(labels.data.ravel())[1:])) + 1  # the body, around everything else
    assert _colour_fraction(shot, labels.get_color(outer)) > 0.5  # its colour covers the picture
    # a new labels layer in 3D gets its surface; painting: the volume replaces the surface
    second = _add(viewer, _layers.image_to_layer(labels_img, "copy", "labels"))
    assert "copy (3D surface)" in viewer.layers and not second.visible
    second.visible = True
    assert "copy (3D surface)" not in viewer.layers
    viewer.layers.remove(second)
    # back in 2D: the surfaces go, the labels show again
    viewer.dims.ndisplay = 2
    assert labels.visible and not any(lay.name.endswith(_view.SURFACE_SUFFIX) for lay in viewer.layers)


def test_scripted_label_edits_update_the_3d_surface_once_and_only_the_edited_label(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _view.radiological(viewer)
    arr = np.zeros((16, 20, 24), np.uint8)
    arr[2:6, 2:6, 2:6], arr[8:12, 8:12, 8:12], arr[2:5, 14:18, 16:20] = 1, 2, 3
    labels = viewer.add_labels(arr, name="organs", scale=(2.0, 1.0, 1.0))
    viewer.dims.ndisplay = 3
    surface, meshes = viewer.layers["organs (3D surface)"], _view._MESHES[labels]
    assert meshes.meshed == 3  # one marching cubes per label value
    n_layers = len(viewer.layers)

    def x_range(value):  # of the surface's vertices in that label's colour (x: voxel index)
        colours = np.asarray(surface.vertex_colors, float)
        v = surface.vertices[np.isclose(colours, labels.get_color(value)).all(axis=1)]
        return (v[:, 2].min(), v[:, 2].max()) if len(v) else None

    for k in range(5):  # a script grows label 2 by one slice at a time, refreshing after each edit
        labels.data[8:12, 8:12, 12 + k] = 2
        labels.refresh()
    assert meshes.meshed == 3 and x_range(2) == (7.5, 11.5)  # nothing remeshed yet: debounced
    qtbot.waitUntil(lambda: meshes.meshed > 3, timeout=10_000)
    qtbot.wait(2 * _view.SURFACE_DELAY_MS)
    assert meshes.meshed == 4  # the five edits: one update, of label 2 only
    assert x_range(2) == (7.5, 16.5) and x_range(1) == (1.5, 5.5) and x_range(3) == (15.5, 19.5)
    assert viewer.layers["organs (3D surface)"] is surface and len(viewer.layers) == n_layers  # in place
    # an erased label leaves the surface without remeshing anything; a refresh without a change does nothing
    erased = labels.data.copy()
    erased[erased == 3] = 0
    labels.data = erased
    assert _view.update_surfaces(viewer) == 1 and meshes.meshed == 4 and x_range(3) is None
    labels.refresh()
    assert _view.update_surfaces(viewer) == 0 and meshes.meshed == 4
    assert x_range(2) == (7.5, 16.5) and not labels.visible and surface.visible


def test_a_folder_of_several_series_opens_a_series_picker(make_napari_viewer, phantom, tmp_path):
    img, _ = phantom
    study = tmp_path / "study"
    study.mkdir()
    first = medlab.io.write_dicom_series(img, study / "s1", modality="CT", series_description="plain CT")
    medlab.io.write_dicom_series(img[:, :, :12], study / "s2", modality="CT", study_uid=first.study_uid,
                                 series_description="top slices", series_number=2)
    viewer = make_napari_viewer()
    assert viewer.open(str(study), plugin="medlab") == []  # no error, nothing added yet: a choice
    picker = viewer.window.dock_widgets["Series in study"]
    assert len(picker.series) == len(medlab.io.list_series(study)) == 2
    assert [s["series_description"] for s in picker.series] == ["plain CT", "top slices"]
    assert picker.choice.current_choice == f"{study / 's1'}: CT, plain CT, 64x48x24 voxels, 24 files"
    picker.choice.value = 1
    layer = picker.open()
    assert layer.name == "top slices" and layer.data.shape == (12, 48, 64)
    np.testing.assert_array_equal(layer.data, sitk.GetArrayFromImage(img[:, :, :12]))
    assert layer.translate == pytest.approx(img.GetOrigin()[::-1])
    assert picker._status.value == "opened: top slices"


def test_threshold_and_region_growing_dock_widgets(make_napari_viewer, phantom):
    img, ph = phantom
    viewer = make_napari_viewer()
    ct = _add(viewer, _layers.image_to_layer(img, "ct", modality="CT"))
    _, th = viewer.window.add_plugin_dock_widget("medlab", "Threshold")
    th.image.value = ct
    th.lower.value, th.upper.value = 100.0, 3000.0
    th()  # the call button; napari adds the returned labels layer
    want = sitk.GetArrayFromImage(medlab.segmentation.threshold(img, lower=100, upper=3000))
    first = viewer.layers["ct threshold"]
    np.testing.assert_array_equal(first.data, want)
    assert first.scale == pytest.approx(ct.scale)
    # its size and mean HU, shown and kept
    summary = first.metadata["summary"]
    assert summary["volume_ml"] == pytest.approx(want.sum() * 2.5 * 2.0 * 2.0 / 1000.0)
    assert summary["mean"] == pytest.approx(sitk.GetArrayFromImage(img)[want > 0].mean())
    assert any(m.startswith("ct threshold: ") and " HU (" in m for m in _notes())
    # a painted edit survives a re-run: the result goes to a new layer; each layer's undo is its own
    first.data_setitem((np.zeros(5, int), np.zeros(5, int), np.arange(5)), 7)  # as the brush paints (undo history)
    th()
    second = viewer.layers["ct threshold [2]"]
    assert (first.data[0, 0, :5] == 7).all()
    np.testing.assert_array_equal(second.data, want)
    second.undo()  # nothing to undo in the new layer: no hole punched into it
    np.testing.assert_array_equal(second.data, want)
    first.undo()  # the painted edit undone in its own layer
    np.testing.assert_array_equal(first.data, want)
    # a readable error, nothing added
    n_layers = len(viewer.layers)
    th.lower.value, th.upper.value = 3000.0, 100.0
    th()
    assert len(viewer.layers) == n_layers
    assert "Threshold: lower (3000) is above upper (100); set lower <= upper. Nothing was added" in _notes()[-2:]

    lesion = max(ph.truth["lesions"], key=lambda le: le["n_voxels"])
    seed = np.asarray(lesion["centre_index"], float)
    points = viewer.add_points([seed * ct.scale + ct.translate], name="seeds")  # world coordinates (mm)
    _, rg = viewer.window.add_plugin_dock_widget("medlab", "Region growing")
    rg.image.value, rg.seeds.value = ct, points
    rg.lower.value, rg.upper.value = lesion["hu"] - 100, lesion["hu"] + 100
    rg()
    want = medlab.segmentation.connected_threshold(img, seeds_index=[tuple(int(i) for i in seed)],
                                                    lower=lesion["hu"] - 100, upper=lesion["hu"] + 100)
    np.testing.assert_array_equal(viewer.layers["ct region"].data, sitk.GetArrayFromImage(want))
    assert viewer.layers["ct region"].data.sum() > 10
    assert viewer.layers["ct region"].metadata["summary"]["voxels"] == int(sitk.GetArrayFromImage(want).sum())
    outside = viewer.add_points([ct.translate - 500.0], name="outside")
    rg.seeds.value = outside
    n_layers = len(viewer.layers)
    rg()
    assert len(viewer.layers) == n_layers
    assert _notes()[-1].startswith("Region growing: seed point") and "is outside the image" in _notes()[-1]
    assert "move the point into 'ct'" in _notes()[-1]
    # window presets
    _, win = viewer.window.add_plugin_dock_widget("medlab", "Window")
    win.image.value = ct
    win.preset.value = "lung"  # auto_call: applied at once
    assert tuple(ct.contrast_limits) == (-1350.0, 150.0)


def test_threshold_dock_previews_live_and_sets_otsu(make_napari_viewer, phantom, qtbot):
    img, ph = phantom
    arr = sitk.GetArrayFromImage(img)
    viewer = make_napari_viewer()
    ct = _add(viewer, _layers.image_to_layer(img, "ct", modality="CT"))
    _, th = viewer.window.add_plugin_dock_widget("medlab", "Threshold")
    th.image.value = ct
    pv = th.preview
    assert (pv.range.min, pv.range.max) == (float(arr.min()), float(arr.max()))
    # the range slider moves: lower/upper follow, the preview is drawn once the slider rests
    pv.range.value = (100.0, 700.0)
    assert (th.lower.value, th.upper.value) == (100.0, 700.0)
    qtbot.waitUntil(lambda: "ct threshold preview" in viewer.layers, timeout=10_000)
    preview = viewer.layers["ct threshold preview"]
    want = (arr >= 100) & (arr <= 700)
    np.testing.assert_array_equal(preview.data, want)
    ml, mean = want.sum() * 2.5 * 2.0 * 2.0 / 1000.0, arr[want].mean()
    assert pv.stats.value.startswith(f"preview: {ml:.1f} mL, mean {mean:.1f} HU")
    # debounced: quick moves redraw once, after the last one, into the same layer
    redraws = []
    preview.events.data.connect(lambda _e: redraws.append(1))
    for low in (150.0, 200.0, 250.0, 300.0):
        th.lower.value = low
    assert pv.range.value == (300.0, 700.0)
    qtbot.waitUntil(lambda: len(redraws) >= 1, timeout=10_000)
    qtbot.wait(3 * _widgets.PREVIEW_DELAY_MS)
    assert len(redraws) == 1
    np.testing.assert_array_equal(viewer.layers["ct threshold preview"].data, (arr >= 300) & (arr <= 700))
    # Otsu: medlab's one Otsu, foreground up to the maximum
    t = pv.apply_otsu()
    assert t == medlab.segmentation.auto_threshold(img, "otsu")
    assert (th.lower.value, th.upper.value) == (t, float(arr.max()))
    qtbot.waitUntil(lambda: len(redraws) >= 2, timeout=10_000)
    np.testing.assert_array_equal(viewer.layers["ct threshold preview"].data, arr >= t)
    # running the threshold makes the result layer; the preview goes
    th()
    np.testing.assert_array_equal(viewer.layers["ct threshold"].data, arr >= t)
    assert "ct threshold preview" not in viewer.layers
    # an impossible range: no preview, the reason in the dock (no pop-up per keystroke)
    th.lower.value = 500.0
    th.upper.value = 100.0
    qtbot.waitUntil(lambda: pv.stats.value.startswith("no preview: lower (500) is above upper (100)"),
                    timeout=10_000)
    # preview off: no layer
    th.upper.value = 3000.0
    pv.live.value = False
    qtbot.wait(3 * _widgets.PREVIEW_DELAY_MS)
    assert "ct threshold preview" not in viewer.layers
    # region growing: the region from the seeds, redrawn when a seed is added
    lesions = sorted(ph.truth["lesions"], key=lambda le: -le["n_voxels"])[:2]
    seeds = [tuple(int(i) for i in le["centre_index"]) for le in lesions]
    points = viewer.add_points([np.asarray(seeds[0]) * ct.scale + ct.translate], name="seeds")
    _, rg = viewer.window.add_plugin_dock_widget("medlab", "Region growing")
    rg.image.value, rg.seeds.value = ct, points
    lo, hi = min(le["hu"] for le in lesions) - 60, max(le["hu"] for le in lesions) + 60
    rg.preview.range.value = (lo, hi)
    qtbot.waitUntil(lambda: "ct region preview" in viewer.layers, timeout=10_000)

    def grown(k):
        return sitk.GetArrayFromImage(medlab.segmentation.connected_threshold(img, seeds_index=seeds[:k], lower=lo,
                                                                              upper=hi))
    qtbot.waitUntil(lambda: np.array_equal(viewer.layers["ct region preview"].data, grown(1)), timeout=10_000)
    assert rg.preview.stats.value.startswith(f"preview: {grown(1).sum() * 2.5 * 2.0 * 2.0 / 1000.0:.1f} mL")
    points.add(np.asarray(seeds[1]) * ct.scale + ct.translate)
    qtbot.waitUntil(lambda: np.array_equal(viewer.layers["ct region preview"].data, grown(2)), timeout=10_000)
    assert grown(2).sum() > grown(1).sum()
    rg()
    assert "ct region preview" not in viewer.layers and "ct region" in viewer.layers


def test_pet_lesion_dock_widget_shows_the_plausibility_verdict(make_napari_viewer):
    ph = medlab.datasets.pet_phantom(n_lesions=1, noise=0, seed=3)
    lesion = ph.truth["lesions"][0]
    viewer = make_napari_viewer()
    _view.radiological(viewer)  # what the reader does when a file is opened
    pet = _add(viewer, _layers.image_to_layer(ph.image, "pet", modality="PT"))
    seed = np.asarray(lesion["centre_index"], float)
    points = viewer.add_points([seed * pet.scale + pet.translate], name="seed")
    _, w = viewer.window.add_plugin_dock_widget("medlab", "PET lesion")
    w.pet.value, w.seed.value = pet, points
    w()
    want, info = medlab.segmentation.segment_pet_tumour(ph.image, seed_index=lesion["centre_index"],
                                                       return_info=True, warn=False)
    layer = viewer.layers["pet lesion"]
    np.testing.assert_array_equal(layer.data, sitk.GetArrayFromImage(want))
    assert layer.metadata["plausible"] is False and layer.metadata["reasons"] == list(info["verdict"].reasons)
    assert any(m.startswith("pet lesion: implausible result: region is a handful of voxels") for m in _notes())
    # the user's seeds layer is put in mm too, so napari keeps rendering in mm (it drops the units of
    # all layers while one is in pixels; its one-off "Inconsistent units" toast comes first, napari's
    # own handlers run before a plugin's)
    assert viewer.layers.extent.units is not None
    assert [str(u) for u in points.units] == ["millimeter"] * 3
    assert any(m.startswith("pet lesion: ") and " SUV (" in m for m in _notes())  # volume and mean SUV


def test_registration_blend_dock_widget_registers_and_blends(make_napari_viewer, phantom, qtbot, tmp_path):
    img = phantom[0]
    shift = (4.0, -2.0, 0.0)
    moved = medlab.registration.move_image(img, sitk.TranslationTransform(3, shift))
    viewer = make_napari_viewer()
    fixed_layer = _add(viewer, _layers.image_to_layer(img, "fixed"))
    moving_layer = _add(viewer, _layers.image_to_layer(moved, "moving"))
    assert moving_layer.translate[2] != fixed_layer.translate[2]  # another grid: resampled by the widget
    _, w = viewer.window.add_plugin_dock_widget("medlab", "Registration blend")
    w.fixed.value, w.moving.value = fixed_layer, moving_layer
    w.mode.value, w.register.value, w.metric.value, w.iterations.value = "difference", True, "mean_squares", 60
    worker = w.run()  # registers on a thread worker: the viewer stays responsive
    assert not w._run.enabled and w._stop.enabled  # no second registration by a double click
    # progress shown once a second: each repaint makes Qt compose the whole window with OpenGL, and under
    # software OpenGL that CPU is taken from the registration (every 200 ms: 1.8x its time, bench_napari)
    assert w._timer.interval() == _widgets.PROGRESS_POLL_MS >= 1000
    qtbot.waitUntil(lambda: "blend" in viewer.layers and w._run.enabled, timeout=120_000)
    assert worker.abort_requested is False and w._progress.value == 100 and "metric" in w._status.value
    blend = viewer.layers["blend"].data
    on_fixed = viewer.layers["moving on fixed"].data
    assert blend.shape == on_fixed.shape == fixed_layer.data.shape
    before = sitk.GetArrayFromImage(medlab.fusion.difference(img, medlab.registration.resample(moved, img),
                                                             window1="auto", window2="auto"))
    assert np.abs(blend).mean() < 0.5 * np.abs(before).mean()  # registered: the difference shrank
    # mode and alpha re-blend the cached result into the same layer: no new registration, no new layer
    result, n_layers = w.result, len(viewer.layers)
    w.mode.value = "alpha"
    w.alpha.value = 0.25
    assert w.result is result and len(viewer.layers) == n_layers and viewer.layers["blend"].metadata["mode"] == "alpha"
    fixed_img = _layers.layer_meta_to_image(fixed_layer.data, fixed_layer.as_layer_data_tuple()[1])
    want = medlab.fusion.alpha_blend(fixed_img, result.resampled, 0.25, window1="auto", window2="auto")
    np.testing.assert_allclose(viewer.layers["blend"].data, sitk.GetArrayFromImage(want))
    assert w.run() is None  # same inputs: re-blended from the cache
    # the transform, saved and read back
    path = w.save_transform(tmp_path / "moving_to_fixed.tfm")
    back = medlab.registration.read_transform(path)
    np.testing.assert_allclose(back.GetParameters(), result.transform.GetParameters(), atol=1e-9)
    # and applied to the moving image's labels: a labels layer on the fixed grid
    labels = sitk.Cast(phantom[1].labels, sitk.sitkUInt8)
    labels.CopyInformation(img)
    moved_labels = medlab.registration.move_image(labels, sitk.TranslationTransform(3, shift), is_label=True)
    labels_layer = _add(viewer, _layers.image_to_layer(moved_labels, "moving labels", "labels"))
    out = w.apply_to(labels_layer)
    assert out.name == "moving labels on fixed" and out.data.shape == fixed_layer.data.shape
    want = result.apply(_layers.layer_meta_to_image(labels_layer.data, labels_layer.as_layer_data_tuple()[1]),
                        is_label=True)
    np.testing.assert_array_equal(out.data, sitk.GetArrayFromImage(want))
    assert set(np.unique(out.data)) <= set(np.unique(labels_layer.data))
    # a stop request ends a registration without changing the layers
    w.iterations.value = 500
    w.run()
    w.stop()
    qtbot.waitUntil(lambda: w._run.enabled, timeout=120_000)
    assert w._status.value.startswith("stopped") and w.result is result


def test_model_runner_dock_widget(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("medlab", "hc18")
    _, w = viewer.window.add_plugin_dock_widget("medlab", "Model runner")  # returns at once: device checked later
    qtbot.waitUntil(lambda: w.device is not None, timeout=120_000)
    assert w._device.value.startswith("runs on ") and len(w._device.value) <= 48
    assert "backend" in w._device.tooltip
    w._image.value = layers[0]
    w._model.value = "hc18_unet"
    w.run()
    qtbot.waitUntil(lambda: "model labels" in viewer.layers, timeout=180_000)
    want = np.load(Path(os.environ["MEDLAB_TEST_EXPECTED"]) / "hc18_unet_000_HC.npy")  # medlab.models.segment
    np.testing.assert_array_equal(viewer.layers["model labels"].data, want)
    cam = viewer.layers["Grad-CAM"]
    assert cam.data.shape == want.shape and cam.data.max() == pytest.approx(1.0)
    # a second run updates the two layers in place (no removal and re-creation: napari's removal
    # runs a full garbage collection), with the new result in them
    labels_layer, n_layers = viewer.layers["model labels"], len(viewer.layers)
    labels_layer.data = np.zeros_like(want)
    worker = w.run()
    qtbot.waitUntil(lambda: w._run.enabled and labels_layer.data.any(), timeout=180_000)
    assert viewer.layers["model labels"] is labels_layer and viewer.layers["Grad-CAM"] is cam
    assert len(viewer.layers) == n_layers
    np.testing.assert_array_equal(labels_layer.data, want)
    # a failure: readable, and the status and the button reset
    def broken(*args, **kwargs):
        raise RuntimeError(_model_process.POOL_HELP)

    monkeypatch.setattr(_model_process, "run_model", broken)
    worker = w.run()
    qtbot.waitUntil(lambda: "failed" in w._result.value, timeout=30_000)
    qtbot.waitUntil(lambda: w._run.enabled, timeout=30_000)
    assert "__main__" in w._result.value and "__main__" in _notes()[-1] and _widgets is not None and worker
    monkeypatch.undo()
    # an RGB layer (as napari opens a PNG) is converted to grey for the model
    grey = layers[0].data
    rgb = viewer.add_image(np.stack([grey] * 3, axis=-1).astype(np.uint8), rgb=True, name="rgb")
    w._image.value = rgb
    w._model.value = "busi_resnet"
    w.run()
    qtbot.waitUntil(lambda: "probabilities" in w.info, timeout=180_000)
    info = w.info
    assert set(info["probabilities"]) == {"benign", "malignant", "normal"} and "benign" in w._result.value
    # the model's own input check (an HC18 head is not a BUSI breast image) reaches the user
    assert any(m.startswith("busi_resnet: the image does not look like what busi_resnet was trained on")
               for m in _notes())
    assert "tensorflow" not in __import__("sys").modules  # it ran in the worker process
