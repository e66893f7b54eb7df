"""medlab's napari plugin: the npe2 manifest, the reader (DICOM series folder, NIfTI, NRRD; geometry as
layer scale/translate in napari's (z, y, x) order), sample data and the dock widgets.

The pure functions (widgets/napari/_layers.py, _reader.py) are tested here without Qt. The viewer
tests (``tests/napari_viewer_cases.py``: napari's ``make_napari_viewer`` fixture, a real Qt window,
the dock widgets) run in a fresh pytest process: a process of the suite may have imported
TensorFlow, and TensorFlow and napari's OpenGL canvas crash together (see
widgets/napari/_model_process.py). napari needs OpenGL (``QT_QPA_PLATFORM=offscreen`` fails): CI
runs the suite under ``xvfb-run``; without a display this module starts an Xvfb of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("napari", reason="the napari extra is not installed (pip install 'medlab[napari]')")

import medlab.datasets  # noqa: E402
import medlab.fusion  # noqa: E402
import medlab.io  # noqa: E402
import medlab.registration  # noqa: E402
import medlab.segmentation  # noqa: E402
from medlab.widgets.napari import _layers, _reader, _samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "widgets" / "napari" / "napari.yaml"
CASES = ROOT / "tests" / "napari_viewer_cases.py"


@pytest.fixture(scope="module")
def phantom():
    ph = medlab.datasets.ct_phantom(shape=(24, 48, 64), seed=3)
    img = sitk.Cast(sitk.Round(ph.image), sitk.sitkInt16)
    img.SetOrigin((-40.0, 12.5, 100.0))
    labels = sitk.Cast(ph.labels, sitk.sitkUInt8)
    labels.CopyInformation(img)
    return img, labels, ph


@pytest.fixture(scope="session")
def display():
    """An X display for Qt: the one given (xvfb-run in CI), else an Xvfb started here (session
    scope: it must exist before pytest-qt's session-wide QApplication)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("napari's viewer needs an X display: run under xvfb-run, or install xvfb")
    r, w = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as fh:
        number = fh.readline().strip()
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- manifest
def test_manifest_is_valid_and_discovered_through_the_entry_point():
    import npe2

    mf = npe2.PluginManifest.from_file(MANIFEST)
    mf.validate_imports()  # every command's python_name imports
    pm = npe2.PluginManager.instance()
    pm.discover()
    found = pm.get_manifest("medlab")
    assert found.name == "medlab"
    assert {c.id for c in found.contributions.commands} == {c.id for c in mf.contributions.commands}
    assert [w.display_name for w in mf.contributions.widgets] == ["Threshold", "Region growing", "Registration blend",
                                                                 "Model runner", "Window", "PET lesion"]
    writers = {w.command: w.filename_extensions for w in mf.contributions.writers}
    assert writers == {"medlab.write_labels": [".nii.gz", ".nii", ".nrrd", ".mha", ".dcm"],
                       "medlab.write_image": [".nii.gz", ".nii", ".nrrd", ".mha"]}
    assert {s.key for s in mf.contributions.sample_data} == {"ct_phantom", "ibsi_ct_phantom", "hc18"}
    assert mf.contributions.readers[0].accepts_directories


# --------------------------------------------------------------------------- reader (no Qt)
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_reader_keeps_geometry_as_scale_and_translate(phantom, tmp_path, suffix):
    img = phantom[0]
    path = medlab.io.write(img, tmp_path / f"ct{suffix}")
    reader = _reader.get_reader(str(path))
    assert reader is _reader.read_layers
    [(data, kwargs, kind)] = reader(str(path))
    assert kind == "image" and kwargs["name"] == "ct"
    np.testing.assert_array_equal(data, sitk.GetArrayFromImage(img))  # (z, y, x)
    assert kwargs["scale"] == pytest.approx(img.GetSpacing()[::-1])  # (2.5, 2.0, 2.0) mm
    assert kwargs["translate"] == pytest.approx((100.0, 12.5, -40.0))  # the origin, (z, y, x)


def test_reader_reorients_to_lps_and_reads_dicom_series_folders(ibsi_ct, phantom, tmp_path):
    folder = Path(ibsi_ct) / "dicom" / "image"
    [(data, kwargs, _)] = _reader.get_reader(str(folder))(str(folder))
    img = medlab.io.read(folder)
    assert data.shape == sitk.GetArrayViewFromImage(img).shape == (60, 201, 204)
    assert kwargs["scale"] == pytest.approx(img.GetSpacing()[::-1])
    assert kwargs["translate"] == pytest.approx(img.GetOrigin()[::-1])
    # a volume in another orientation is put in LPS first: no rotation is dropped
    ras = sitk.DICOMOrient(phantom[0], "RAS")
    path = medlab.io.write(ras, tmp_path / "ras.nii.gz")
    [(data, kwargs, _)] = _reader.read_layers(str(path))
    np.testing.assert_array_equal(data, sitk.GetArrayFromImage(phantom[0]))
    assert kwargs["translate"] == pytest.approx(phantom[0].GetOrigin()[::-1], abs=1e-3)
    # what medlab does not read is left to other readers
    (tmp_path / "notes.txt").write_text("x")
    assert _reader.get_reader(str(tmp_path / "notes.txt")) is None
    assert _reader.get_reader([str(path), str(path)]) is None


def test_pure_functions_are_the_medlab_results(phantom):
    img, labels, ph = phantom
    data, kw, kind = _layers.threshold_layer(img, 100, 3000)
    assert kind == "labels"
    want = medlab.segmentation.threshold(img, lower=100, upper=3000)
    np.testing.assert_array_equal(data, sitk.GetArrayFromImage(want))
    lesion = max(ph.truth["lesions"], key=lambda le: le["n_voxels"])
    seed = tuple(int(i) for i in lesion["centre_index"])
    world = np.asarray(seed) * kw["scale"] + kw["translate"]
    assert _layers.points_to_index([world], kw["scale"], kw["translate"], data.shape) == [seed]
    with pytest.raises(ValueError, match="outside the image"):
        _layers.points_to_index([world - 1000], kw["scale"], kw["translate"], data.shape)
    lo, hi = lesion["hu"] - 100, lesion["hu"] + 100
    region, _, _ = _layers.region_growing_layer(img, [seed], lo, hi)
    want = medlab.segmentation.connected_threshold(img, seeds_index=[seed], lower=lo, upper=hi)
    np.testing.assert_array_equal(region, sitk.GetArrayFromImage(want))
    moved = medlab.registration.move_image(img, sitk.TranslationTransform(3, (4.0, 0.0, 0.0)))
    layers, res = _layers.registration_blend_layers(img, moved, mode="difference")
    assert res is None and [lay[1]["name"] for lay in layers] == ["moving on fixed", "blend (difference)"]
    on_fixed = medlab.registration.resample(moved, img)
    np.testing.assert_array_equal(layers[1][0], sitk.GetArrayFromImage(
        medlab.fusion.difference(img, on_fixed, window1="auto", window2="auto")))


def test_label_surfaces_enclose_each_label_in_its_colour():
    from medlab.widgets.napari import _view

    arr = np.zeros((12, 14, 16), np.uint8)
    arr[2:5, 3:9, 4:10] = 2  # a box of 3 x 6 x 6 voxels
    arr[7:12, 0:2, 15] = 1  # touching the border: closed all the same
    colours = {1: (1.0, 0.0, 0.0, 1.0), 2: (0.0, 0.5, 1.0, 1.0)}
    vertices, faces, rgba = _view.label_surfaces(arr, colours.get)
    assert faces.max() < len(vertices) == len(rgba)
    for value, (lo, hi) in {2: ((1.5, 2.5, 3.5), (4.5, 8.5, 9.5)), 1: ((6.5, -0.5, 14.5), (11.5, 1.5, 15.5))}.items():
        v = vertices[(rgba == colours[value]).all(axis=1)]
        # marching cubes at 0.5: the boundary half a voxel outside the labelled voxels' centres
        np.testing.assert_allclose(v.min(axis=0), lo)
        np.testing.assert_allclose(v.max(axis=0), hi)
    assert _view.label_surfaces(np.zeros((4, 4, 4), np.uint8)) is None
    with pytest.raises(ValueError, match="negative"):
        _view.label_surfaces(np.full((3, 3, 3), -1, np.int16))
    with pytest.raises(ValueError, match="3D integer"):
        _view.label_surfaces(np.zeros((3, 3), np.uint8))


def test_samples_without_a_viewer():
    layers = _samples.hc18_ultrasound()
    assert [lay[2] for lay in layers] == ["image", "labels"] and layers[0][0].ndim == 2


def test_viewer_and_dock_widgets_in_a_fresh_process(display, tmp_path):
    import medlab.models

    # the model runner's expected labels, computed here (TensorFlow stays out of the Qt process)
    case = medlab.datasets.load("hc18", case="000_HC", progress=False)
    labels = medlab.models.segment(medlab.models.pretrained("hc18_unet"), case.image)
    np.save(tmp_path / "hc18_unet_000_HC.npy", sitk.GetArrayFromImage(labels))
    env = {**os.environ, "DISPLAY": display, "MEDLAB_TEST_EXPECTED": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", str(CASES)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "10 passed" in r.stdout.splitlines()[-1], r.stdout[-2000:]
