"""medlab.segmentation.erosion/dilation (exact answers on squares) and score_methods (the same
rows as the loop it replaces, written out here)."""

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets, metrics
from medlab import segmentation as seg
from medlab.datasets import Case


def _square(n=20, lo=5, hi=15, depth=3):
    m = np.zeros((depth, n, n), np.uint8)
    m[:, lo:hi, lo:hi] = 1
    return m


def test_erosion_and_dilation_of_a_square_by_a_box_in_mm():
    m = _square()  # a 10 x 10 square on every slice, 0.5 mm pixels, 5 mm slices
    spacing = (5.0, 0.5, 0.5)
    eroded = seg.erosion(m, (0, 1.0, 1.0), kernel="box", spacing=spacing)  # 2 pixels in-plane, none in z
    dilated = seg.dilation(m, (0, 1.0, 1.0), kernel="box", spacing=spacing)
    expect_e, expect_d = _square(lo=7, hi=13), _square(lo=3, hi=17)
    np.testing.assert_array_equal(eroded, expect_e)
    np.testing.assert_array_equal(dilated, expect_d)
    assert eroded.dtype == np.uint8 and dilated.dtype == np.uint8


def test_erosion_matches_simpleitk_on_an_image_and_keeps_the_border():
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray((rng.random((6, 30, 30)) > 0.3).astype(np.uint8))
    img.SetSpacing((0.8, 0.8, 3.0))
    ours = seg.erosion(img, 1.6)  # 2 voxels in x and y, 1 in z (round(1.6 / 3) = 1)
    ref = sitk.BinaryErode(img, [2, 2, 1], sitk.sitkBall, 0, 1, True)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))
    assert ours.GetSpacing() == img.GetSpacing()
    full = np.ones((1, 8, 8), np.uint8)  # touches every border: nothing to peel
    np.testing.assert_array_equal(seg.erosion(full, (0, 2, 2)), full)
    with pytest.raises(ValueError, match="kernel"):
        seg.erosion(full, 1.0, kernel="disc")


def _cases():
    out = []
    for i, seed in enumerate((0, 1)):
        ph = datasets.pet_phantom(shape=(24, 40, 40), n_lesions=1, lesion_radius_mm=(8.0, 10.0), suv_range=(8.0, 12.0),
                                  noise=0.05, seed=seed)
        lesion = sitk.Cast(ph.labels == 3, sitk.sitkUInt8)
        out.append(Case(dataset="phantom", id=f"P{i}", image=ph.image, labels={"lesion": lesion}))
    return out


def test_score_methods_gives_the_rows_of_the_loop_it_replaces():
    methods = {"40%": {"method": "percent_suvmax", "percent": 40}, "SUV 2.5": {"method": "suv", "suv": 2.5}}
    cases = _cases()
    table = seg.score_methods(iter(cases), methods, segment=seg.segment_pet_tumour, tolerance_mm=4.0)
    assert list(table["case"]) == ["P0", "P0", "P1", "P1"] and list(table["method"]) == ["40%", "SUV 2.5"] * 2
    for row, (case, name) in zip(table.itertuples(), [(c, m) for c in cases for m in methods]):
        seed = seg.seed_from_mask(case.label, case.image, rule="max")
        mask = seg.segment_pet_tumour(case.image, seed_index=seed, **methods[name])
        expect = metrics.segmentation_scores(mask, case.label, tolerance_mm=4.0)
        assert row.seed_index == seed
        assert row.dice == expect["dice"] and row.hd95_mm == expect["hd95_mm"]
        assert row.surface_dice == expect["surface_dice"] and row.truth_ml == expect["truth_ml"]
    assert table["dice"].min() > 0.7  # hot spheres on a cold body: every method finds them


def test_score_methods_refuses_empty_input():
    with pytest.raises(ValueError, match="`methods` is empty"):
        seg.score_methods(_cases(), {}, segment=seg.segment_pet_tumour)
    with pytest.raises(ValueError, match="`cases` is empty"):
        seg.score_methods([], {"otsu": {}}, segment=seg.segment_pet_tumour)
    with pytest.raises(ValueError, match="seed_rule"):
        seg.score_methods(_cases(), {"otsu": {}}, segment=seg.segment_pet_tumour, seed_rule="centre")
