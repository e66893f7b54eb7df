"""medlab.apps.cardiac: exact answers on the beating-ellipse cine phantom, plausibility and
consistency on the real colour-Doppler echo cine of deid-data (no ground truth there)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

import medlab.io
from medlab import datasets, metrics
from medlab.apps import cardiac

ECHO_SEED = (0, 235, 380)  # (t, y, x): inside the dark cavity near the top of the sector in every frame


def arr(img):
    return sitk.GetArrayFromImage(img)


# ------------------------------------------------------------------ phantom


def test_cine_phantom_truth_is_exact():
    ph = datasets.echo_cine_phantom(n_frames=16, fac=0.5, speckle=False)
    lab = arr(ph.labels)
    px = (lab == 2).reshape(16, -1).sum(axis=1)
    assert px.tolist() == ph.truth["area_px"]
    assert np.allclose(ph.truth["areas_mm2"], px * 0.09)
    assert ph.truth["ed_frame"] == 0 and ph.truth["es_frame"] == 8
    assert ph.truth["fac"] == pytest.approx((px[0] - px[8]) / px[0])
    assert ph.truth["fac"] == pytest.approx(0.5, abs=0.01)  # pixelated ellipse vs continuous
    # the ellipse at ED has semi-axes 18 x 12 mm: area pi*a*b within pixelisation
    assert ph.truth["areas_mm2"][0] == pytest.approx(np.pi * 18 * 12, rel=0.01)
    assert set(np.unique(arr(ph.image))) == {np.float32(0.05), np.float32(1.0)}
    # the layout medlab.io.read gives a real ultrasound cine: (x, y, 1, frame) with frame times
    assert ph.image.GetSize() == ph.labels.GetSize() == (160, 160, 1, 16)
    assert ph.image.GetSpacing() == pytest.approx((0.3, 0.3, 1.0, 1.0))
    assert medlab.io.volume_metadata(ph.image)["frame_times_ms"] == pytest.approx(np.arange(16) * 40.0)
    ph2 = datasets.echo_cine_phantom(n_frames=4, frame_time_ms=33.0, speckle=False)
    assert medlab.io.volume_metadata(ph2.labels)["frame_times_ms"] == pytest.approx([0.0, 33.0, 66.0, 99.0])


@pytest.mark.parametrize("kw", [{"fac": 0.4, "seed": 0}, {"fac": 0.25, "n_cycles": 2.0, "seed": 1},
                                {"fac": 0.55, "phase": 1.0, "seed": 2}])
def test_cavity_on_phantom(kw):
    ph = datasets.echo_cine_phantom(n_frames=20, **kw)
    res = cardiac.segment_cavity(ph.image, seed_index=(0, *ph.truth["centre_index"]))
    truth = np.array(ph.truth["areas_mm2"])
    # every frame's area within 6 % (measured worst 1.6 % for one cycle, 4.5 % for two cycles
    # in 20 frames, where the temporal smoothing mixes frames of quite different areas)
    assert np.all(np.abs(res["areas_mm2"] / truth - 1) < 0.06)
    phases = cardiac.cardiac_phases(res["areas_mm2"])
    tphases = cardiac.cardiac_phases(truth)
    assert abs(phases["fac"] - ph.truth["fac"]) < 0.03  # measured 0.002-0.011
    # ED/ES frames exact, or a frame whose true area is within 1 % of the extreme (flat top)
    for key in ("ed_frame", "es_frame"):
        assert abs(truth[phases[key]] / truth[tphases[key]] - 1) < 0.01
    assert res["mask"].GetSize() == ph.labels.GetSize()  # results on the cine's 4D grid
    assert metrics.dice(arr(res["mask"])[:, 0], arr(ph.labels)[:, 0] == 2) > 0.97  # measured 0.989


def test_cavity_numpy_input_and_errors():
    ph = datasets.echo_cine_phantom(n_frames=6, seed=3)
    cine = arr(ph.image)[:, 0]  # (frames, y, x)
    res = cardiac.segment_cavity(cine, seed_index=(0, *ph.truth["centre_index"]), spacing=0.3)
    assert isinstance(res["mask"], np.ndarray) and res["mask"].shape == cine.shape
    with pytest.raises(ValueError, match="brighter"):
        cardiac.segment_cavity(ph.image, seed_index=(0, 5, 5))
    with pytest.raises(ValueError, match="outside the cine"):
        cardiac.segment_cavity(ph.image, seed_index=(0, 500, 5))
    with pytest.raises(ValueError, match="outside the cine"):
        cardiac.segment_cavity(ph.image, seed_index=(6, 5, 5))  # 6 frames: t < 6
    # the old in-plane (y, x) form: a clear error that says what to give
    with pytest.raises(ValueError, match=r"\(t, y, x\).*Give \(0, 5, 5\)"):
        cardiac.segment_cavity(ph.image, seed_index=(5, 5))
    # a seed picked in a later frame: its frame sets the threshold; the same cavities here
    centre = ph.truth["centre_index"]
    later = cardiac.segment_cavity(cine, seed_index=(3, *centre), spacing=0.3)
    assert later["threshold"] != res["threshold"]
    assert metrics.dice(later["mask"], res["mask"]) > 0.95
    with pytest.raises(ValueError, match="at least 2 areas"):
        cardiac.cardiac_phases([1.0])
    # a 3D SimpleITK image is a volume, not a cine: refused, not read as frames along z
    volume = sitk.GetImageFromArray(cine.astype(np.float32))
    with pytest.raises(ValueError, match=r"3D SimpleITK image .* a cine is 4D \(x, y, 1, frame\)"):
        cardiac.segment_cavity(volume, seed_index=(0, *centre))
    with pytest.raises(ValueError, match="a cine is 4D"):
        cardiac.echo_grey(volume)


def test_stop_from_progress():
    ph = datasets.echo_cine_phantom(n_frames=6, seed=3)
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        return fraction < 0.4

    with pytest.raises(InterruptedError, match="frame 3"):
        cardiac.segment_cavity(ph.image, seed_index=(0, *ph.truth["centre_index"]), progress=progress)
    assert seen == pytest.approx([1 / 6, 2 / 6, 3 / 6])


# ------------------------------------------------------------------ real echo cine


@pytest.fixture(scope="module")
def echo():
    cine = datasets.load("deid_echo", progress=False).image
    grey, colour = cardiac.echo_grey(cine)
    return cine, grey, colour


def test_echo_grey(echo):
    cine, grey, colour = echo
    # medlab.io.read gives a cine as 4D (x, y, 1, frame); the results keep that grid
    assert cine.GetSize() == (800, 600, 1, 30) and grey.GetSize() == colour.GetSize() == cine.GetSize()
    rgb = arr(cine)[:, 0].astype(np.float32)
    g, c = arr(grey)[:, 0], arr(colour)[:, 0].astype(bool)
    assert g.shape == rgb.shape[:3] and grey.GetSpacing() == cine.GetSpacing()
    assert 0.01 < c.mean() < 0.1  # the colour box: measured 4.1 % of the pixels
    assert np.all(g[c] == 0)
    assert np.allclose(g[~c], rgb[~c].mean(axis=-1))
    lum, _ = cardiac.echo_grey(cine, color="luminance")
    assert arr(lum)[:, 0][c].mean() > 20


def test_echo_cavity_is_plausible_and_consistent(echo):
    _cine, grey, _ = echo
    res = cardiac.segment_cavity(grey, seed_index=ECHO_SEED, threshold=50.0, shrink=2)
    assert res["mask"].GetSize() == grey.GetSize()  # 4D (x, y, 1, frame), like the cine
    m = arr(res["mask"])[:, 0].astype(bool)
    areas_cm2 = res["areas_mm2"] / 100
    # pixel spacing from the DICOM ultrasound region (0.0308 cm): areas in cm^2
    assert res["pixel_spacing_mm"] == pytest.approx((0.3076, 0.3076), abs=1e-4)
    # a cardiac chamber in this view: 1-20 cm^2 in every frame (measured 2.3-11.4 cm^2)
    assert np.all((areas_cm2 > 1.0) & (areas_cm2 < 20.0))
    for k in range(m.shape[0]):
        _lab, n = ndimage.label(m[k])
        assert n == 1, f"frame {k}: {n} components"
        assert res["seeds_index"][k][0] == k and m[res["seeds_index"][k]]
    # temporal consistency: no jump between frames above 25 % of the largest area (measured 17 %)
    assert np.all(np.abs(np.diff(areas_cm2)) < 0.25 * areas_cm2.max())
    # two heart cycles at 75 bpm over 30 frames of 54 ms: the curve has 2 minima
    phases = cardiac.cardiac_phases(res["areas_mm2"], frame_time_ms=54.241)
    assert 0.0 < phases["fac"] < 1.0
    assert phases["fac"] > 0.5  # measured 0.80
    # measured systoles at frames 8 and 22: 79 bpm, the screen says 75 bpm
    assert len(phases["systole_frames"]) == 2
    assert 65 < phases["heart_rate_bpm"] < 90


def test_cardiac_phases_exact():
    p = cardiac.cardiac_phases([5, 4, 3, 2, 3, 4, 5, 4, 3, 2, 2.5, 4], frame_time_ms=50)
    assert (p["ed_frame"], p["es_frame"], p["fac"]) == (0, 3, 0.6)
    assert p["systole_frames"] == [3, 9] and p["diastole_frames"] == [6]
    assert p["heart_rate_bpm"] == pytest.approx(60000 / (6 * 50))
    assert cardiac.cardiac_phases([3.0, 2.0, 3.0], frame_time_ms=40)["heart_rate_bpm"] is None


def test_doctests():
    import doctest

    result = doctest.testmod(cardiac)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("kw, match", [
    ({"n_frames": 3}, "n_frames"),
    ({"fac": 1.0}, "fac"),
    ({"semi_axes_mm": (30.0, 12.0)}, "do not fit"),
    ({"semi_axes_mm": (-1.0, 12.0)}, "semi_axes_mm"),
    ({"frame_time_ms": 0.0}, "frame_time_ms"),
])
def test_cine_phantom_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        datasets.echo_cine_phantom(**kw)
