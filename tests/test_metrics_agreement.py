"""medlab.metrics.bland_altman against a hand computation and its definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlab.metrics import BlandAltman, bland_altman


def test_hand_computed_example():
    # measured - reference = [2, -1, 3, 0, 1]: mean 1, squared deviations 1+4+4+1+0 = 10,
    # sd = sqrt(10 / 4) = 1.5811...; limits 1 -+ 1.96 * 1.5811 = -2.0990, 4.0990;
    # t(0.975, 4) = 2.7764; bias CI 1 -+ 2.7764 * 1.5811 / sqrt(5) = -0.9633, 2.9633;
    # limit CI half-width 2.7764 * 1.5811 * sqrt(3 / 5) = 3.4004
    measured = [12.0, 19.0, 33.0, 40.0, 51.0]
    reference = [10.0, 20.0, 30.0, 40.0, 50.0]
    ba = bland_altman(measured, reference)
    assert isinstance(ba, BlandAltman)
    assert ba.n == 5
    assert ba.bias == pytest.approx(1.0)
    assert ba.sd == pytest.approx(math.sqrt(2.5))
    assert (ba.lower, ba.upper) == (pytest.approx(-2.0990, abs=1e-4), pytest.approx(4.0990, abs=1e-4))
    assert ba.bias_ci == (pytest.approx(-0.9633, abs=1e-4), pytest.approx(2.9633, abs=1e-4))
    assert ba.upper_ci == (pytest.approx(4.0990 - 3.4004, abs=1e-4), pytest.approx(4.0990 + 3.4004, abs=1e-4))
    assert ba.lower_ci == (pytest.approx(-2.0990 - 3.4004, abs=1e-4), pytest.approx(-2.0990 + 3.4004, abs=1e-4))
    assert ba.mean_abs_difference == pytest.approx(7 / 5)
    np.testing.assert_allclose(ba.differences, [2, -1, 3, 0, 1])
    np.testing.assert_allclose(ba.means, [11, 19.5, 31.5, 40, 50.5])


def test_swapping_the_methods_flips_the_sign():
    rng = np.random.default_rng(0)
    a, b = rng.normal(100, 10, 40), rng.normal(100, 10, 40)
    ab, ba = bland_altman(a, b), bland_altman(b, a)
    assert ab.bias == pytest.approx(-ba.bias) and ab.sd == pytest.approx(ba.sd)
    assert ab.upper == pytest.approx(-ba.lower)


def test_other_z_and_confidence():
    ba = bland_altman([1.0, 2.0, 4.0], [0.0, 0.0, 0.0], z=2.0, confidence=0.9)
    sd = np.std([1, 2, 4], ddof=1)
    assert ba.upper == pytest.approx(7 / 3 + 2 * sd)
    # 90 %: t(0.95, 2) = 2.919986
    assert ba.bias_ci[1] == pytest.approx(7 / 3 + 2.919986 * sd / math.sqrt(3), rel=1e-6)


@pytest.mark.parametrize(
    "measured, reference, match",
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([1.0], [1.0], "at least 2 pairs"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1D"),
    ],
)
def test_bad_input_is_named(measured, reference, match):
    with pytest.raises(ValueError, match=match):
        bland_altman(measured, reference)


def test_bad_options():
    with pytest.raises(ValueError, match="`z`"):
        bland_altman([1.0, 2.0], [1.0, 3.0], z=0)
    with pytest.raises(ValueError, match="`confidence`"):
        bland_altman([1.0, 2.0], [1.0, 3.0], confidence=1.0)
