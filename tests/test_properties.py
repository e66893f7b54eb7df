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
