"""RegistrationBlender without a browser: setters -> state, medlab.fusion results, rendered pixels;
a medlab.registration job on a background thread (live trace, progress, stop), always joined."""

from __future__ import annotations

import base64
import time

import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from medlab.widgets import BLEND_MODES, RegistrationBlender

import medlab.datasets
import medlab.display
import medlab.fusion
import medlab.registration

W1, W2 = (1.0, 0.5), (1.2, 0.4)  # explicit (window, level) of the fixed and the moving image
SHIFT_MM = (2.0, -1.5, 0.0)  # fixed -> moving translation of the test pair


pytestmark = pytest.mark.usefixtures("no_leaked_threads")


@pytest.fixture(scope="module")
def pair():
    fixed = medlab.datasets.mr_phantom(shape=(16, 40, 40), seed=1).image
    moving = sitk.Resample(fixed, sitk.TranslationTransform(3, SHIFT_MM), sitk.sitkLinear, 0.0)
    return fixed, moving


def _arr(img):
    return sitk.GetArrayFromImage(img) if isinstance(img, sitk.Image) else np.asarray(img)


def test_every_mode_is_the_medlab_fusion_result_and_is_drawn(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving, window1=W1, window2=W2, tiles=5)
    assert b.windows == (W1, W2) and b.mode == "alpha" and b.viewer.index == 8
    kw = dict(window1=W1, window2=W2)
    expected = {
        ("alpha", 0.3): medlab.fusion.alpha_blend(fixed, moving, 0.3, **kw),
        ("checkerboard", 5): medlab.fusion.checkerboard(fixed, moving, tiles=(1, 5, 5), **kw),
        ("difference", None): medlab.fusion.difference(fixed, moving, **kw),
    }
    for (mode, value), want in expected.items():
        b.set_mode(mode)
        if mode == "alpha":
            b.set_alpha(value)
        np.testing.assert_array_equal(b.fused, _arr(want))
        window, level = (2.0, 0.0) if mode == "difference" else (1.0, 0.5)
        assert (b.viewer.window, b.viewer.level) == (window, level)
        np.testing.assert_array_equal(b.viewer.pixels, medlab.display.render(_arr(want)[8], window, level))
    # checkerboard: tiles alternate fixed / moving (windowed) on the shown slice
    b.set_mode("checkerboard")
    u1 = _arr(medlab.enhance.window_level(fixed, window=W1[0], level=W1[1]))
    assert np.array_equal(b.fused[8, :8, :8], u1[8, :8, :8].astype(np.float32))
    # flicker: frame k is frame k of medlab.fusion.flicker_frames on the shown slice
    b.set_mode("flicker")
    frames = medlab.fusion.flicker_frames(_arr(fixed)[8], _arr(moving)[8], window1=W1, window2=W2)
    for k in (0, 1, 0):
        b.set_frame(k)
        diff = b.viewer.pixels.astype(int) - frames[k]
        assert np.abs(diff).max() <= 1 and np.count_nonzero(diff) <= 2  # float32 vs float64 rounding
    assert b.frame == 0 and b._frame.value == 0 and b._play.layout.display == ""
    assert b._alpha.layout.display == "none"


def test_controls_drive_the_state(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving)
    b._mode.value = "checkerboard"  # as the browser would
    b._tiles.value = 3
    assert (b.mode, b.tiles) == ("checkerboard", 3)
    assert b._tiles.layout.display == "" and b._alpha.layout.display == "none"
    b._mode.value = "alpha"
    b._alpha.value = 0.8
    assert b.alpha == 0.8
    ref = medlab.fusion.alpha_blend(fixed, moving, 0.8, window1="auto", window2="auto")
    np.testing.assert_allclose(b.fused, _arr(ref), atol=1e-6)
    b.viewer.set_slice(2)  # the slice of the viewer shows the same fused volume
    np.testing.assert_array_equal(b.viewer.pixels, medlab.display.render(b.fused[2], 1.0, 0.5))


def test_setters_check_their_values(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving)
    with pytest.raises(ValueError, match="`alpha` must be in"):
        b.set_alpha(1.5)
    with pytest.raises(ValueError, match="`tiles` must be an int"):
        b.set_tiles(0)
    with pytest.raises(ValueError, match="`tiles` must be an int"):
        b.set_tiles(float("nan"))
    with pytest.raises(ValueError, match="`alpha` must be in"):
        b.set_alpha(float("nan"))
    with pytest.raises(TypeError, match="`alpha` must be a number"):
        b.set_alpha("half")
    with pytest.raises(ValueError, match="`frame` must be in"):
        b.set_frame(2)
    with pytest.raises(ValueError, match="did you mean 'checkerboard'"):
        b.set_mode("checker")
    with pytest.raises(ValueError, match="must be on the fixed grid"):
        RegistrationBlender(fixed, np.zeros((3, 4, 5)))
    with pytest.raises(TypeError, match="`window2` must be None, a preset name"):
        RegistrationBlender(fixed, moving, window2=3.0)
    assert set(BLEND_MODES) == {"alpha", "checkerboard", "difference", "flicker"}


def test_moving_on_another_grid_is_resampled_and_2d_works(pair):
    fixed, _ = pair
    coarse = sitk.Resample(fixed, [20, 20, 8], sitk.Transform(), sitk.sitkLinear, fixed.GetOrigin(),
                           [2 * s for s in fixed.GetSpacing()], fixed.GetDirection())
    b = RegistrationBlender(fixed, coarse, window1=None, window2=None)
    np.testing.assert_array_equal(_arr(b.moving), _arr(medlab.registration.resample(coarse, fixed)))
    assert b.windows is None  # raw values: the view takes the fused image's own window
    assert (b.viewer.window, b.viewer.level) == pytest.approx(
        medlab.enhance.resolve_window(b.fused, preset="auto"))
    us = np.add.outer(np.arange(30.0), np.arange(20.0))
    b2 = RegistrationBlender(us, us[::-1], mode="difference", window1=None, window2=None, spacing=(0.5, 0.5))
    np.testing.assert_array_equal(b2.fused, us - us[::-1])


def test_static_png_fallback_is_the_fused_picture(pair):
    b = RegistrationBlender(*pair, mode="checkerboard")
    bundle, meta = b._repr_mimebundle_()
    png = cv2.imdecode(np.frombuffer(base64.b64decode(bundle["image/png"]), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, b.viewer.pixels)
    assert meta["image/png"]["width"] == 512 and "application/vnd.jupyter.widget-view+json" in bundle


def test_registration_runs_in_the_background_and_updates_the_view(pair):
    fixed, moving = pair
    w = medlab.enhance.resolve_window(fixed, preset="auto")  # one window for both: same modality
    b = RegistrationBlender(fixed, moving, mode="difference", window1=w, window2=w)
    before = float(np.abs(b.fused).mean())
    t0 = time.perf_counter()
    job = b.run_registration(transform="rigid", metric="mean_squares", levels=(2, 1), iterations=60)
    returned_s = time.perf_counter() - t0
    assert b._run.disabled and not b._stop.disabled
    b.set_mode("alpha")  # the kernel is free while it runs
    b.set_mode("difference")
    res = b.wait(timeout=120)
    assert job.status == "done" and res is b.result and job.stop_reason == res.stop_reason
    assert returned_s < job.seconds  # run_registration returned before the registration ended
    # the medlab result: the known in-plane translation (fixed -> moving: minus the shift), 0.1 mm
    np.testing.assert_allclose(res.transform.GetTranslation()[:2], [-v for v in SHIFT_MM[:2]], atol=0.1)
    assert res.final_metric < 0.5 * res.initial_metric  # 1555 vs 3877
    # the live trace is the result's metric trace (as reported: 5 significant digits)
    assert len(b.trace) == res.iterations > 0
    np.testing.assert_allclose([r["metric"] for r in b.trace], res.metric_trace["metric"], rtol=1e-4)
    assert [r["level"] for r in b.trace] == list(res.metric_trace["level"])
    assert b.plot.draws >= 2 and b.plot.value[:4] == b"\x89PNG" and b._progress.value == 1.0
    # the view now shows the registered image: the difference nearly vanishes
    np.testing.assert_array_equal(sitk.GetArrayFromImage(b.moving), _arr(res.resampled))
    np.testing.assert_array_equal(b.fused, _arr(medlab.fusion.difference(fixed, res.resampled, window1=w, window2=w)))
    assert float(np.abs(b.fused).mean()) < 0.85 * before  # 0.030 vs 0.038 (phantom noise stays)
    assert "done" in b._status.value and not b._run.disabled and b._stop.disabled
    assert b.moving_input is moving  # a rerun starts from the input again
    # the status speaks plainly and quotes the plotted metric (first and last point of the plot)
    status = b._status.value
    assert "Optimizer" not in status and "Template" not in status and "mean squares" in status
    assert f"{b.trace[0]['metric']:.5g} → {b.trace[-1]['metric']:.5g}" in status
    assert b.plot.integer_x  # iteration ticks are whole numbers


def test_stop_button_stops_the_registration(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving)
    shown = b.fused.copy()

    def press_stop_at_third_iteration(_change):
        if len(b.trace) == 3:
            b._stop.click()  # the button, pressed while the registration reports progress

    b._progress.observe(press_stop_at_third_iteration, names="value")
    job = b.run_registration(transform="affine", metric="mean_squares", levels=(1,), iterations=500,
                             learning_rate=0.05)
    assert b.wait(timeout=120) is None
    assert job.status == "stopped" and "stopped by the `progress` callback" in job.stop_reason
    assert len(b.trace) == 3 and b.result is None  # ended at the iteration it was stopped at
    np.testing.assert_array_equal(b.fused, shown)  # the view keeps the images it had
    assert "stopped" in b._status.value and not b._run.disabled
    assert "stopped on request" in b._status.value and "callback" not in b._status.value
    # the register button reruns with the same arguments
    b._progress.unobserve(press_stop_at_third_iteration, names="value")
    b._register_kwargs.update(iterations=2)
    b._run.click()
    b.wait(timeout=120)
    # affine runs a rigid stage first (rigid_first): 2 iterations in each stage
    assert b.job.status == "done" and b.result.iterations == 4
    assert list(b.result.metric_trace["stage"]) == ["rigid"] * 2 + ["affine"] * 2


def test_a_failed_registration_is_reported_not_lost(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving)
    job = b.run_registration(transform="rigid", iterations=0)
    with pytest.raises(ValueError, match="iterations"):
        b.wait(timeout=60)
    assert job.status == "failed" and "failed" in b._status.value
    with pytest.raises(TypeError, match="`progress` is the widget's own"):
        b.run_registration(progress=True)


def test_stop_reasons_in_words():
    from medlab.widgets._blender import plain_stop_reason

    assert plain_stop_reason("RegularStepGradientDescentOptimizerv4: Maximum number of iterations (50) exceeded.") \
        == "reached the iteration limit (50)"
    assert plain_stop_reason("GradientDescentOptimizerv4Template: Convergence checker passed at iteration 9.") \
        == "converged at iteration 9"
    assert plain_stop_reason("RegularStepGradientDescentOptimizerv4: Step too small after 23 iterations. Current "
                             "step (0.0009) is less than minimum step (0.001).") \
        == "converged after 23 iterations (the step became smaller than the minimum)"
    assert plain_stop_reason("stopped by the `progress` callback at level 1") == "stopped on request"


def test_layout_keeps_the_picture_whole_and_labels_uncut(pair):
    fixed, moving = pair
    b = RegistrationBlender(fixed, moving, mode="checkerboard")
    assert b._mode.style.button_width == "auto"  # "checkerboard" was cut to "checkerb..."
    row = b.children[1]
    assert row.layout.flex_flow == "row wrap" and b.viewer.layout.flex == "0 0 auto"
    side = row.children[1]
    assert side.layout.width == f"{b.plot.size[0] + 20}px"  # fixed: a long status wraps in it
    assert b._alpha.continuous_update is True
    b._alpha.value = 0.3  # live alpha: applied (no event loop here: at once)
    assert b.alpha == 0.3
