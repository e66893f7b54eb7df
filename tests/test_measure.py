"""medlab.segmentation measurements: longest_diameter (exact RECIST-style diameters of digitised
discs, ellipses and spheres, brute-force agreement, physical end points, errors) and the ellipse
fit (fit_ellipse on exact area-sampled ellipses, partial outlines, ellipse_circumference against
the exact perimeter, ellipse_residual)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab.segmentation import (
    ELLIPSE_METHODS,
    Diameter,
    Ellipse,
    ellipse_circumference,
    ellipse_residual,
    fit_ellipse,
    longest_diameter,
)


def _ellipse(shape, centre, a, b, angle_deg=0.0):
    """Pixels (y, x) with ((u/a)^2 + (v/b)^2 <= 1), u along an axis at angle_deg to x."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    t = math.radians(angle_deg)
    dx, dy = x - centre[1], y - centre[0]
    u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def _brute_force(mask2d, spacing_yx):
    pts = np.argwhere(mask2d) * np.asarray(spacing_yx)
    return max(math.dist(p, q) for p, q in combinations(pts, 2))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5), (0.8, 0.8)])
def test_axis_aligned_ellipse_is_exact(spacing):
    # semi-axes 20 x 7 voxels: the end voxels (0, +-20) are in the mask, so the answer is 40 voxels
    m = _ellipse((41, 61), (20, 30), 20, 7)
    assert longest_diameter(m, spacing=spacing) == pytest.approx(40 * spacing[1], abs=1e-12)
    # the same ellipse standing: its long axis along y
    assert longest_diameter(m.T.copy(), spacing=spacing) == pytest.approx(40 * spacing[1], abs=1e-12)


def test_anisotropic_pixels_measure_in_mm():
    # 20 voxels along x at 0.5 mm = 10 mm; 7 voxels along y at 2 mm -> 14 mm across: the longest
    # physical diameter is the one along y (28 mm), although it spans fewer voxels
    m = _ellipse((41, 61), (20, 30), 20, 7)
    assert longest_diameter(m, spacing=(2.0, 0.5)) == pytest.approx(28.0, abs=1e-12)


@pytest.mark.parametrize("angle", [17.0, 30.0, 45.0, 110.0])
def test_rotated_ellipse_agrees_with_brute_force_and_the_true_axis(angle):
    m = _ellipse((81, 81), (40, 40), 30.4, 9.3, angle)
    got = longest_diameter(m, spacing=(0.7, 0.7))
    assert got == pytest.approx(_brute_force(m, (0.7, 0.7)), abs=1e-9)
    # a digitised ellipse loses at most one pixel diagonal at each end
    assert 2 * 30.4 * 0.7 - 2 * math.sqrt(2) * 0.7 <= got <= 2 * 30.4 * 0.7


def test_sphere_3d_takes_the_central_slice_and_reports_it():
    # ball of radius 12 mm, voxels 3 x 0.75 x 0.75 mm, centre on a voxel: 2 r = 24 mm on slice 10
    sp = (3.0, 0.75, 0.75)
    z, y, x = np.mgrid[:21, :41, :41].astype(float)
    ball = ((z - 10) * sp[0]) ** 2 + ((y - 20) * sp[1]) ** 2 + ((x - 20) * sp[2]) ** 2 <= 12.0**2
    info = longest_diameter(ball, spacing=sp, return_info=True)
    assert isinstance(info, Diameter)
    assert info.diameter_mm == pytest.approx(24.0, abs=1e-12)
    assert info.slice_index == 10
    (z0, y0, x0), (z1, y1, x1) = info.endpoints_index
    assert z0 == z1 == 10 and math.dist((y0, x0), (y1, x1)) * 0.75 == pytest.approx(24.0)
    assert math.dist(*info.endpoints_mm) == pytest.approx(24.0)
    # off-centre slices are shorter: remove the central slice and the next best is shorter
    ball[10] = False
    assert longest_diameter(ball, spacing=sp) < 24.0


def test_sitk_input_uses_its_geometry_for_the_end_points():
    m = np.zeros((3, 20, 30), np.uint8)
    m[1, 5, 4:25] = 1  # a line of 21 voxels along x: 20 voxel steps of 0.5 mm
    img = sitk.GetImageFromArray(m)
    img.SetSpacing((0.5, 0.6, 2.0))
    img.SetOrigin((10.0, -20.0, 100.0))
    info = longest_diameter(img, return_info=True)
    assert info.diameter_mm == pytest.approx(10.0)
    assert sorted(info.endpoints_mm) == [pytest.approx((12.0, -17.0, 102.0)), pytest.approx((22.0, -17.0, 102.0))]
    assert longest_diameter(img) == pytest.approx(10.0)


def test_single_voxel_and_2d_input():
    m = np.zeros((5, 5), bool)
    m[2, 3] = True
    info = longest_diameter(m, return_info=True)
    assert info.diameter_mm == 0.0 and info.slice_index is None and info.endpoints_index == ((2, 3), (2, 3))
    m[4, 0] = True  # two separate voxels still count together: sqrt(2^2 + 3^2) voxels
    assert longest_diameter(m, spacing=0.5) == pytest.approx(0.5 * math.sqrt(13))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`mask` selects no voxels"):
        longest_diameter(np.zeros((4, 4)))
    img = sitk.GetImageFromArray(np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="`spacing` is taken from the SimpleITK `mask`"):
        longest_diameter(img, spacing=1.0)
    with pytest.raises(ValueError, match="2D"):
        longest_diameter(np.ones((2, 2, 2, 2)))


# ---------------------------------------------------------------------------- ellipse fit


def test_ellipse_circumference():
    assert ellipse_circumference(3.0, 3.0) == pytest.approx(2 * math.pi * 3.0, rel=1e-15)
    # a = 2, b = 1: the exact perimeter is 4 a E(e^2) = 9.688448220547675...
    assert ellipse_circumference(2.0, 1.0) == pytest.approx(9.688448220547675, rel=1e-9)
    assert ellipse_circumference(1.0, 0.0) == pytest.approx(4.0, rel=5e-4)  # degenerate: 4a
    with pytest.raises(ValueError, match="semi-axes"):
        ellipse_circumference(-1.0, 1.0)


def _ellipse_mask(shape, centre_xy, axes, angle_deg, supersample=8):
    """Area-sampled filled ellipse (fraction of each pixel inside), thresholded at 0.5."""
    h, w = shape
    yy, xx = np.mgrid[:h * supersample, :w * supersample]
    x = (xx + 0.5) / supersample - 0.5 - centre_xy[0]
    y = (yy + 0.5) / supersample - 0.5 - centre_xy[1]
    t = math.radians(angle_deg)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    inside = (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1
    return inside.reshape(h, supersample, w, supersample).mean(axis=(1, 3))


@pytest.mark.parametrize("method", ELLIPSE_METHODS)
def test_fit_ellipse_recovers_a_rotated_ellipse_in_mm(method):
    frac = _ellipse_mask((240, 320), (170.3, 118.6), (120.0, 80.0), 30.0)
    spacing = (0.2, 0.2)
    e = fit_ellipse(frac, method=method, spacing=spacing)  # probability-like map: sub-pixel contour
    assert e.semi_axes_mm == pytest.approx((24.0, 16.0), abs=0.03)
    assert e.centre_mm == pytest.approx((170.3 * 0.2, 118.6 * 0.2), abs=0.03)
    assert e.angle_deg == pytest.approx(30.0, abs=0.5)
    assert e.circumference_mm == pytest.approx(ellipse_circumference(24.0, 16.0), rel=2e-3)
    # a binary mask: its 0.5 contour is the pixel edge, within about half a pixel of the ellipse
    binary = fit_ellipse(frac >= 0.5, method=method, spacing=spacing)
    assert binary.circumference_mm == pytest.approx(e.circumference_mm, abs=2 * math.pi * 0.2 * 0.5)
    # SimpleITK input carries its spacing
    img = sitk.GetImageFromArray(frac.astype(np.float32))
    img.SetSpacing(spacing)
    assert fit_ellipse(img, method=method).circumference_mm == pytest.approx(e.circumference_mm, rel=1e-9)


def test_fit_ellipse_picks_the_head_and_handles_nothing():
    frac = _ellipse_mask((200, 200), (100, 100), (60, 40), 0)
    blob = frac.copy()
    blob[5:9, 5:9] = 1  # a stray blob: the longer contour (the head) is fitted
    assert fit_ellipse(blob).semi_axes_mm == pytest.approx((60, 40), abs=0.1)
    empty = fit_ellipse(np.zeros((20, 20)))
    assert math.isnan(empty.circumference_mm)
    with pytest.raises(ValueError, match="did you mean 'opencv'"):
        fit_ellipse(frac, method="open_cv")


def test_fit_ellipse_on_a_head_cut_by_the_border():
    # an ellipse whose lower fifth lies outside the image: the image edge is not the skull
    frac = _ellipse_mask((200, 300), (150, 110), (100, 70), 0)[:160]
    e = fit_ellipse(frac, spacing=(0.1, 0.1))
    assert e.semi_axes_mm == pytest.approx((10.0, 7.0), abs=0.03)
    naive = fit_ellipse(frac, spacing=(0.1, 0.1), exclude_border=False)
    assert abs(naive.semi_axes_mm[1] - 7.0) > 0.5  # the straight edge pulls a naive fit (6.30 mm)
    fit = fit_ellipse(frac, spacing=(0.1, 0.1), return_info=True)
    assert fit.ellipse == e and len(fit.points_mm) > 100
    border = fit.border_share
    assert 0.05 < border < 0.3  # share of the outline on the border


def test_ellipse_residual_is_zero_for_an_ellipse_and_not_for_a_square():
    e = Ellipse((0.0, 0.0), (2.0, 1.0), 30.0, ellipse_circumference(2.0, 1.0))
    t = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    x, y = 2 * np.cos(t), np.sin(t)
    c, s_ = math.cos(math.radians(30)), math.sin(math.radians(30))
    pts = np.column_stack([x * c - y * s_, x * s_ + y * c])
    assert ellipse_residual(e, pts) == pytest.approx(0.0, abs=1e-12)
    assert ellipse_residual(e, pts * 1.1) == pytest.approx(0.1 * math.sqrt(np.mean(np.hypot(x, y) ** 2)) / math.sqrt(2),
                                                              rel=1e-9)
    square = np.zeros((100, 100))
    square[20:80, 20:80] = 1
    e2, xy, _ = fit_ellipse(square, return_info=True)
    assert ellipse_residual(e2, xy) > 0.03
