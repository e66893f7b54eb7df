"""medlab.segmentation.longest_diameter: exact RECIST-style diameters of digitised discs,
ellipses and spheres, brute-force agreement, physical end points, errors."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab.segmentation import Diameter, longest_diameter


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
