"""Property tests (hypothesis) for core functions: what must hold for every input."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from medlab import display, enhance, metrics  # noqa: E402
from medlab._image import as_sitk  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)
masks2d = arrays(np.bool_, st.tuples(st.integers(2, 12), st.integers(2, 12)))
spacings = st.tuples(st.floats(0.2, 5.0), st.floats(0.2, 5.0))


@SETTINGS
@given(st.data())
def test_overlap_metrics_symmetric_and_bounded(data):
    a = data.draw(masks2d)
    b = data.draw(arrays(np.bool_, a.shape))
    d, j = metrics.dice(a, b), metrics.jaccard(a, b)
    assert d == pytest.approx(metrics.dice(b, a)) and j == pytest.approx(metrics.jaccard(b, a))
    assert 0.0 <= j <= d <= 1.0
    if a.any() or b.any():
        assert d == pytest.approx(2 * j / (1 + j))  # Dice and Jaccard are one monotone map apart
    assert metrics.dice(a, a) == 1.0


@SETTINGS
@given(st.data())
def test_surface_distances_symmetric_nonnegative_and_ordered(data):
    a = data.draw(masks2d.filter(np.any))
    b = data.draw(arrays(np.bool_, a.shape).filter(np.any))
    sp = data.draw(spacings)
    h, h95, asd = (metrics.hausdorff(a, b, spacing=sp), metrics.hd95(a, b, spacing=sp), metrics.assd(a, b, spacing=sp))
    assert h == pytest.approx(metrics.hausdorff(b, a, spacing=sp))
    assert 0.0 <= asd <= h and 0.0 <= h95 <= h + 1e-9
    assert metrics.hausdorff(a, a, spacing=sp) == 0.0


@SETTINGS
@given(
    arrays(np.float32, st.integers(2, 50), elements=st.floats(-3000, 3000, width=32)),
    st.floats(1.0, 4000.0),
    st.floats(-1000.0, 1000.0),
)
def test_window_level_is_monotone_and_bounded(values, window, level):
    order = np.argsort(values, kind="stable")
    img = values[order][None, :]
    out = enhance.window_level(img, window, level)
    assert np.all(np.diff(out[0]) >= 0) and out.min() >= 0.0 and out.max() <= 1.0
    u8 = display.to_uint8(img, window, level)
    assert np.all(np.diff(u8[0].astype(int)) >= 0)


@SETTINGS
@given(arrays(np.int16, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))), spacings)
def test_numpy_sitk_round_trip_keeps_values_and_spacing(arr, sp):
    img, back = as_sitk(arr, spacing=(1.0, *sp))
    assert img.GetSpacing() == pytest.approx((sp[1], sp[0], 1.0))
    np.testing.assert_array_equal(back(img), arr)


def _physical_box(img):
    """Lower and upper physical corners (x, y[, z]) of an image's voxel-edge extent."""
    import itertools

    dim = img.GetDimension()
    corners = np.array([
        img.TransformContinuousIndexToPhysicalPoint([(-0.5 if c == 0 else s - 0.5) for c, s in zip(combo, img.GetSize(), strict=True)])
        for combo in itertools.product((0, 1), repeat=dim)
    ])
    return corners.min(axis=0), corners.max(axis=0)


@SETTINGS
@given(st.tuples(st.integers(3, 20), st.integers(3, 20)), spacings,
       st.tuples(st.floats(0.3, 4.0), st.floats(0.3, 4.0)),
       st.tuples(st.floats(-50, 50), st.floats(-50, 50)), st.floats(-np.pi, np.pi))
def test_resampling_preserves_physical_extent_and_values(shape, sp, new_sp, origin, angle):
    """Resampling an image onto a grid that covers the same physical box (any spacing) keeps
    that box, and a constant image stays constant; moving an image by a rigid transform keeps
    every voxel of its content (the moved grid covers the moved box)."""
    import SimpleITK as sitk

    from medlab import registration as reg

    img = sitk.Image([shape[1], shape[0]], sitk.sitkFloat32) + 7.0
    img.SetSpacing(sp[::-1])
    img.SetOrigin(origin)
    lo, hi = _physical_box(img)
    size = [max(1, int(round((h - low) / s))) for low, h, s in zip(lo, hi, new_sp, strict=True)]
    spacing = [(h - low) / n for low, h, n in zip(lo, hi, size, strict=True)]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(spacing)
    ref.SetOrigin([low + s / 2 for low, s in zip(lo, spacing, strict=True)])
    out = reg.resample(img, ref)
    olo, ohi = _physical_box(out)
    np.testing.assert_allclose(olo, lo, atol=1e-6)
    np.testing.assert_allclose(ohi, hi, atol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(out), 7.0, atol=1e-5)
    # a rigid motion: the moved grid holds the whole moved box (nothing cropped)
    t = sitk.Euler2DTransform((0.0, 0.0), angle, (3.0, -2.0))
    moved = reg.move_image(img, t)
    mlo, mhi = _physical_box(moved)
    pts = np.array([t.TransformPoint(tuple(float(v) for v in p)) for p in (lo, hi, (lo[0], hi[1]), (hi[0], lo[1]))])
    assert np.all(pts.min(axis=0) >= mlo - 1e-6) and np.all(pts.max(axis=0) <= mhi + 1e-6)
