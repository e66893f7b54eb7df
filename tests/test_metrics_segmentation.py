"""medlab.metrics segmentation measures: Dice, Jaccard, Hausdorff, HD95, ASSD, surface Dice,
volume difference, and segmentation_scores.

Expected values come from hand-built phantoms with exact answers, from a brute-force
reference (all pairwise boundary distances) and from SimpleITK's own filters.
"""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.distance import cdist

from medlab import metrics
from medlab.metrics import _segmentation

ANISO = {2: (0.8, 1.3), 3: (2.5, 0.8, 1.1)}


# ----------------------------------------------------------------------------- helpers


def _box(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


def _ellipsoid(shape, center, radius_mm, spacing):
    grids = np.indices(shape)
    return sum(((g - c) * s / r) ** 2 for g, c, s, r in zip(grids, center, spacing, radius_mm, strict=True)) <= 1


def _blob(shape, seed, level=0.0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), 2.5) > level


def _sitk(mask, spacing, origin=None, direction=None):
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    if origin is not None:
        img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _reference_boundary(mask):
    """Voxels with a face neighbour outside (outside the array counts as outside), by loops."""
    padded = np.pad(mask, 1)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    edge = np.zeros_like(mask)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            edge |= mask & ~np.roll(padded, step, axis=axis)[inner]
    return edge


def _reference_distances(p, t, spacing):
    """Directed boundary distances by brute force: every pair of boundary voxel centres."""
    sp = np.asarray(spacing)
    bp = np.argwhere(_reference_boundary(p)) * sp
    bt = np.argwhere(_reference_boundary(t)) * sp
    d = cdist(bp, bt)
    return d.min(axis=1), d.min(axis=0)


# ----------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("ndim", [2, 3])
def test_dice_jaccard_exact_on_offset_boxes(ndim):
    shape = (8,) * ndim
    truth = _box(shape, (1,) * ndim, (5,) * ndim)  # side 4
    prediction = np.roll(truth, 1, axis=ndim - 1)  # offset by 1 along the last axis
    n = 4**ndim
    inter = n * 3 // 4
    assert metrics.dice(prediction, truth) == float(Fraction(2 * inter, 2 * n)) == 0.75
    assert metrics.jaccard(prediction, truth) == float(Fraction(inter, 2 * n - inter)) == 0.6
    # not symmetric in arguments by accident: a smaller prediction inside the truth
    inside = _box(shape, (1,) * ndim, (3,) + (5,) * (ndim - 1))  # half of the truth
    assert metrics.dice(inside, truth) == pytest.approx(2 * (n / 2) / (n + n / 2))
    assert metrics.jaccard(inside, truth) == 0.5


def test_integer_labels_nonzero_is_inside_and_float_labels_accepted():
    truth = np.zeros((6, 6), np.int16)
    truth[1:5, 1:5] = 3
    prediction = np.zeros((6, 6), np.uint8)
    prediction[1:5, 2:6] = 1
    prediction[1, 2] = 7
    assert metrics.dice(prediction, truth) == 0.75
    assert metrics.dice(prediction.astype(np.float32), truth) == 0.75  # labels stored as floats
    with pytest.raises(ValueError, match="`prediction` must be a label mask.*> 0.5"):
        metrics.dice(prediction * 0.4, truth)


# ----------------------------------------------------------------------------- distances, exact


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_shifted_cube_hausdorff_is_shift_times_spacing_3d(axis, k):
    spacing = ANISO[3]
    truth = _box((14, 14, 14), (3, 3, 3), (9, 9, 9))
    prediction = np.roll(truth, k, axis=axis)
    expected = k * spacing[axis]
    assert metrics.hausdorff(prediction, truth, spacing=spacing) == pytest.approx(expected, rel=1e-12)
    assert metrics.hausdorff(truth, prediction, spacing=spacing) == pytest.approx(expected, rel=1e-12)
    assert metrics.hd95(prediction, truth, spacing=spacing, percentile=100) == pytest.approx(expected, rel=1e-12)
    # every boundary distance is at most the shift, so a tolerance of one shift is a perfect score
    assert metrics.surface_dice(prediction, truth, expected, spacing=spacing) == 1.0


@pytest.mark.parametrize("axis", [0, 1])
def test_shifted_square_hausdorff_is_shift_times_spacing_2d(axis):
    spacing = ANISO[2]
    truth = _box((12, 12), (3, 3), (8, 8))
    prediction = np.roll(truth, 2, axis=axis)
    assert metrics.hausdorff(prediction, truth, spacing=spacing) == pytest.approx(2 * spacing[axis], rel=1e-12)


def test_single_voxel_difference():
    spacing = (2.0, 1.0, 1.0)
    truth = _box((9, 9, 9), (2, 2, 2), (7, 7, 7))  # 5^3 = 125 voxels, 98 on the boundary
    prediction = truth.copy()
    prediction[7, 4, 4] = True  # a one-voxel bump on the top face, along axis 0
    assert metrics.dice(prediction, truth) == 2 * 125 / (125 + 126)
    assert metrics.jaccard(prediction, truth) == 125 / 126
    # bump -> top face: 2.0 mm along z; the covered truth voxel -> nearest prediction
    # boundary voxel: its in-plane neighbour, 1.0 mm; every other boundary voxel is shared (0).
    assert metrics.hausdorff(prediction, truth, spacing=spacing) == 2.0
    assert metrics.assd(prediction, truth, spacing=spacing) == pytest.approx(3.0 / (98 + 98), rel=1e-12)
    assert metrics.surface_dice(prediction, truth, 1.5, spacing=spacing) == pytest.approx(195 / 196, rel=1e-12)
    assert metrics.surface_dice(prediction, truth, 0.5, spacing=spacing) == pytest.approx(194 / 196, rel=1e-12)
    # two single voxels side by side along y
    a = np.zeros((5, 5, 5), bool)
    a[2, 2, 2] = True
    b = np.roll(a, 1, axis=1)
    assert metrics.dice(a, b) == 0.0
    assert metrics.hausdorff(a, b, spacing=spacing) == 1.0
    assert metrics.assd(a, b, spacing=spacing) == 1.0


def test_concentric_spheres_hausdorff_is_radius_difference():
    spacing = (1.5, 1.0, 1.0)
    shape, center = (24, 34, 34), (12, 17, 17)
    r1, r2 = 8.0, 13.0
    inner = _ellipsoid(shape, center, (r1,) * 3, spacing)
    outer = _ellipsoid(shape, center, (r2,) * 3, spacing)
    hd = metrics.hausdorff(inner, outer, spacing=spacing)
    assert abs(hd - (r2 - r1)) <= max(spacing)
    assert abs(metrics.assd(inner, outer, spacing=spacing) - (r2 - r1)) <= max(spacing)
    assert metrics.hd95(inner, outer, spacing=spacing) <= hd


def test_surface_dice_nested_boxes_below_and_above_the_gap():
    spacing = ANISO[3]
    k = 2
    inner = _box((16, 16, 16), (5, 5, 5), (11, 11, 11))
    outer = _box((16, 16, 16), (5 - k,) * 3, (11 + k,) * 3)
    # every boundary distance lies in [k * min(spacing), k * |spacing|]
    lo, hi = k * min(spacing), k * math.sqrt(sum(s * s for s in spacing))
    assert metrics.surface_dice(inner, outer, 0.99 * lo, spacing=spacing) == 0.0
    assert metrics.surface_dice(inner, outer, hi, spacing=spacing) == 1.0
    assert metrics.hausdorff(inner, outer, spacing=spacing) == pytest.approx(hi, rel=1e-12)
    mid = metrics.surface_dice(inner, outer, lo, spacing=spacing)
    assert 0.0 < mid < 1.0


def test_tolerance_of_whole_voxels_is_not_lost_to_rounding():
    truth = _box((12, 12), (3, 3), (7, 7))
    prediction = np.roll(truth, 3, axis=0)
    # 3 * 0.1 == 0.30000000000000004 > 0.3 in floats
    assert metrics.surface_dice(prediction, truth, 0.3, spacing=(0.1, 0.1)) == 1.0


def test_border_counts_as_outside():
    spacing = (1.0, 2.0, 3.0)
    full = np.ones((6, 7, 8), bool)  # its boundary is the image border
    shrunk = np.zeros_like(full)
    shrunk[1:-1, 1:-1, 1:-1] = True
    # if the border counted as inside, `full` would have no boundary and this would be inf;
    # its corner voxels are one voxel diagonal from the corners of `shrunk`
    assert metrics.hausdorff(full, shrunk, spacing=spacing) == pytest.approx(math.sqrt(14.0), rel=1e-12)
    assert metrics.surface_dice(full, shrunk, 0.99, spacing=spacing) == 0.0
    assert metrics.hd95(full, full, spacing=spacing) == 0.0


# ----------------------------------------------------------------------------- brute-force reference


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [((30, 34), ANISO[2]), ((14, 18, 16), ANISO[3])],
    ids=["2d", "3d"],
)
def test_distances_match_brute_force_reference(shape, spacing):
    for seed in (1, 2):
        prediction, truth = _blob(shape, seed), _blob(shape, seed + 10, 0.02)
        d_pt, d_tp = _reference_distances(prediction, truth, spacing)
        pooled = np.concatenate([d_pt, d_tp])
        s = metrics.segmentation_scores(prediction, truth, spacing=spacing, tolerance_mm=1.7)
        assert s["hausdorff_mm"] == pytest.approx(pooled.max(), rel=1e-12)
        assert s["hd95_mm"] == pytest.approx(np.percentile(pooled, 95), rel=1e-12)
        assert s["assd_mm"] == pytest.approx(pooled.mean(), rel=1e-12)
        assert s["surface_dice"] == pytest.approx(np.mean(pooled <= 1.7), rel=1e-12)
        assert metrics.hd95(prediction, truth, spacing=spacing, percentile=50) == pytest.approx(
            np.percentile(pooled, 50), rel=1e-12
        )


def test_hd95_is_the_pooled_percentile_not_the_max_of_directed_percentiles():
    truth = _box((40, 40), (5, 5), (25, 25))
    prediction = truth.copy()
    prediction[14:16, 25:37] = True  # a thin spur sticking out of one side
    d_pt, d_tp = _reference_distances(prediction, truth, (1.0, 1.0))
    pooled = np.percentile(np.concatenate([d_pt, d_tp]), 95)
    max_directed = max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))
    assert pooled < max_directed - 1  # the definitions differ on this phantom
    assert metrics.hd95(prediction, truth) == pytest.approx(pooled, rel=1e-12)


# ----------------------------------------------------------------------------- volume


def test_volume_difference_exact_ml_3d_and_mm2_2d():
    spacing = (2.5, 0.7, 0.9)
    truth = _box((10, 10, 10), (0, 0, 0), (4, 5, 5))  # 100 voxels
    prediction = _box((10, 10, 10), (0, 0, 0), (4, 5, 6))  # 120 voxels
    v = metrics.volume_difference(prediction, truth, spacing=spacing)
    voxel_mm3 = 2.5 * 0.7 * 0.9
    assert v["prediction_ml"] == pytest.approx(120 * voxel_mm3 / 1000, rel=1e-14)
    assert v["truth_ml"] == pytest.approx(100 * voxel_mm3 / 1000, rel=1e-14)
    assert v["difference_ml"] == pytest.approx(20 * voxel_mm3 / 1000, rel=1e-12)
    assert v["relative"] == pytest.approx(0.2, rel=1e-12)
    w = metrics.volume_difference(truth, prediction, spacing=spacing)
    assert w["difference_ml"] == -v["difference_ml"]
    assert w["relative"] == pytest.approx(-20 / 120, rel=1e-12)
    area = metrics.volume_difference(prediction[0], truth[0], spacing=(0.5, 2.0))
    assert area == {"prediction_mm2": 30.0, "truth_mm2": 25.0, "difference_mm2": 5.0, "relative": 0.2}


# ----------------------------------------------------------------------------- SimpleITK agreement


def _agreement_cases(ndim):
    spacing = ANISO[ndim]
    shape = (20, 40, 36)[-ndim:]
    box = _box(shape, (5, 10, 8)[-ndim:], (12, 25, 20)[-ndim:])
    center = (10, 20, 18)[-ndim:]
    return spacing, [
        (np.roll(box, 3, axis=0), box),
        (np.roll(box, 4, axis=ndim - 1), box),
        (_ellipsoid(shape, center, (12, 10, 10)[-ndim:], spacing),
         _ellipsoid(shape, tuple(c + 2 for c in center), (15, 9, 11)[-ndim:], spacing)),
        (_blob(shape, 3), _blob(shape, 4)),
    ]


@pytest.mark.parametrize("ndim", [2, 3])
def test_agrees_with_simpleitk_filters(ndim):
    spacing, cases = _agreement_cases(ndim)
    for prediction, truth in cases:
        p_img, t_img = _sitk(prediction, spacing), _sitk(truth, spacing)
        overlap = sitk.LabelOverlapMeasuresImageFilter()
        overlap.Execute(p_img, t_img)  # source = prediction: volume similarity 2(P - T)/(P + T)
        hd = sitk.HausdorffDistanceImageFilter()
        hd.Execute(t_img, p_img)
        s = metrics.segmentation_scores(prediction, truth, spacing=spacing)
        v = s["difference_ml" if ndim == 3 else "difference_mm2"]
        total = s["prediction_ml" if ndim == 3 else "prediction_mm2"] + s["truth_ml" if ndim == 3 else "truth_mm2"]
        assert s["dice"] == pytest.approx(overlap.GetDiceCoefficient(), abs=1e-12)
        assert s["jaccard"] == pytest.approx(overlap.GetJaccardCoefficient(), abs=1e-12)
        assert 2 * v / total == pytest.approx(overlap.GetVolumeSimilarity(), abs=1e-12)
        # ITK measures from every object voxel, we from boundary voxels: the max agrees here
        assert s["hausdorff_mm"] == pytest.approx(hd.GetHausdorffDistance(), abs=1e-9)


def test_hausdorff_differs_from_simpleitk_for_a_mask_with_a_hole():
    # ITK: the hole's voxels are 1 voxel from the holed mask. Boundary distances: the hole's
    # rim is a boundary of the holed mask, 4 voxels from the solid cube's surface.
    solid = _box((13, 13, 13), (2, 2, 2), (11, 11, 11))
    holed = solid.copy()
    holed[6, 6, 6] = False
    hd = sitk.HausdorffDistanceImageFilter()
    hd.Execute(_sitk(solid, (1, 1, 1)), _sitk(holed, (1, 1, 1)))
    assert hd.GetHausdorffDistance() == pytest.approx(1.0)
    assert metrics.hausdorff(holed, solid) == pytest.approx(3.0)  # rim voxel (5,6,6) -> face z=2


# ----------------------------------------------------------------------------- input kinds


@pytest.mark.parametrize("ndim", [2, 3])
def test_numpy_and_sitk_inputs_give_identical_results(ndim):
    spacing = ANISO[ndim]
    shape = (16, 22, 20)[-ndim:]
    prediction, truth = _blob(shape, 5), _blob(shape, 6)
    expected = metrics.segmentation_scores(prediction, truth, spacing=spacing, tolerance_mm=1.5)
    origin = (3.0, -7.0, 11.0)[:ndim]
    theta = 0.3  # a rotated grid: direction changes no distance
    c, s = math.cos(theta), math.sin(theta)
    direction = (c, -s, s, c) if ndim == 2 else (c, -s, 0, s, c, 0, 0, 0, 1)
    p_img = _sitk(prediction, spacing, origin, direction)
    t_img = _sitk(truth, spacing, origin, direction)
    assert metrics.segmentation_scores(p_img, t_img, tolerance_mm=1.5) == expected
    assert metrics.segmentation_scores(p_img, truth, tolerance_mm=1.5) == expected  # mixed
    assert metrics.hausdorff(p_img, t_img) == expected["hausdorff_mm"]
    assert metrics.dice(prediction, t_img) == expected["dice"]


def test_scores_equal_the_single_metrics_and_transform_once(monkeypatch):
    spacing = ANISO[3]
    prediction, truth = _blob((14, 16, 15), 7), _blob((14, 16, 15), 8)
    single = {
        "dice": metrics.dice(prediction, truth),
        "jaccard": metrics.jaccard(prediction, truth),
        "hausdorff_mm": metrics.hausdorff(prediction, truth, spacing=spacing),
        "hd95_mm": metrics.hd95(prediction, truth, spacing=spacing),
        "assd_mm": metrics.assd(prediction, truth, spacing=spacing),
        "surface_dice": metrics.surface_dice(prediction, truth, 2.0, spacing=spacing),
        "tolerance_mm": 2.0,
        **metrics.volume_difference(prediction, truth, spacing=spacing),
    }
    calls = []
    edt = _segmentation.ndimage.distance_transform_edt

    def counting(*args, **kwargs):
        calls.append(kwargs.get("sampling"))
        return edt(*args, **kwargs)

    monkeypatch.setattr(_segmentation.ndimage, "distance_transform_edt", counting)
    scores = metrics.segmentation_scores(prediction, truth, spacing=spacing)
    assert scores == single
    assert all(isinstance(v, float) for v in scores.values())
    assert calls == [spacing, spacing]  # one transform per boundary, no more


def test_symmetric_in_prediction_and_truth():
    spacing = ANISO[3]
    a, b = _blob((14, 16, 15), 9), _blob((14, 16, 15), 10)
    sa = metrics.segmentation_scores(a, b, spacing=spacing)
    sb = metrics.segmentation_scores(b, a, spacing=spacing)
    for key in ("dice", "jaccard", "hausdorff_mm", "hd95_mm", "assd_mm", "surface_dice"):
        assert sa[key] == pytest.approx(sb[key], rel=1e-12)


# ----------------------------------------------------------------------------- empty masks


@pytest.mark.parametrize("ndim", [2, 3])
def test_empty_masks(ndim):
    shape = (6,) * ndim
    empty = np.zeros(shape, bool)
    full = _box(shape, (1,) * ndim, (4,) * ndim)
    both = metrics.segmentation_scores(empty, empty)
    unit = "ml" if ndim == 3 else "mm2"
    assert both == {
        "dice": 1.0, "jaccard": 1.0, "hausdorff_mm": 0.0, "hd95_mm": 0.0, "assd_mm": 0.0,
        "surface_dice": 1.0, "tolerance_mm": 2.0,
        f"prediction_{unit}": 0.0, f"truth_{unit}": 0.0, f"difference_{unit}": 0.0, "relative": 0.0,
    }
    for prediction, truth in ((empty, full), (full, empty)):
        assert metrics.dice(prediction, truth) == 0.0
        assert metrics.jaccard(prediction, truth) == 0.0
        assert metrics.surface_dice(prediction, truth, 5.0) == 0.0
        assert metrics.hausdorff(prediction, truth) == math.inf
        assert metrics.hd95(prediction, truth) == math.inf
        assert metrics.assd(prediction, truth) == math.inf
    assert metrics.volume_difference(full, empty)["relative"] == math.inf
    assert metrics.volume_difference(empty, full)["relative"] == -1.0
    assert metrics.hausdorff(empty, empty) == 0.0 and metrics.surface_dice(empty, empty, 0.0) == 1.0


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_with_argument_names():
    a = np.zeros((4, 5), bool)
    b = np.zeros((4, 6), bool)
    with pytest.raises(ValueError, match=r"`prediction` \(shape \(4, 5\)\).*`truth` \(shape \(4, 6\)\)"):
        metrics.dice(a, b)
    with pytest.raises(ValueError, match="`tolerance_mm` must be >= 0"):
        metrics.surface_dice(a, a, -1.0)
    with pytest.raises(ValueError, match="`tolerance_mm` must be >= 0"):
        metrics.segmentation_scores(a, a, tolerance_mm=-0.5)
    with pytest.raises(ValueError, match=r"`percentile` must be in \[0, 100\]"):
        metrics.hd95(a, a, percentile=101)
    with pytest.raises(ValueError, match="`spacing` must have 2 values"):
        metrics.hausdorff(a, a, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="`spacing` values must be positive"):
        metrics.assd(a, a, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="`truth` must be a 2D or 3D mask"):
        metrics.dice(np.zeros(5, bool), np.zeros(5, bool))
    with pytest.raises(TypeError, match="`prediction` must be a numpy array or a SimpleITK"):
        metrics.dice([[0, 1]], a)


def test_bad_sitk_input_raises_with_argument_names():
    m = np.zeros((4, 5, 6), bool)
    img = _sitk(m, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="`spacing` is only for numpy input; `prediction` is a SimpleITK"):
        metrics.hausdorff(img, m, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="`prediction` spacing .* differs from `truth` spacing"):
        metrics.dice(_sitk(m, (2.0, 1.0, 1.0)), img)
    with pytest.raises(ValueError, match="`prediction` origin .* differs from `truth` origin"):
        metrics.segmentation_scores(_sitk(m, (1.0, 1.0, 1.0), origin=(0.0, 0.0, 5.0)), img)
    with pytest.raises(ValueError, match=r"`prediction` \(shape \(4, 5, 7\)\).*`truth` \(shape \(4, 5, 6\)\)"):
        metrics.dice(_sitk(np.zeros((4, 5, 7), bool), (1, 1, 1)), img)
    vector = sitk.Compose(img, img)
    with pytest.raises(ValueError, match="`truth` must be a scalar image"):
        metrics.dice(img, vector)


def test_docstring_examples():
    result = doctest.testmod(_segmentation, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10
    assert result.failed == 0
