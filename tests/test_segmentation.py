"""medlab.segmentation: thresholds, region growing, morphology, label statistics (exact answers)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage import filters as skf

from medlab import datasets
from medlab import segmentation as seg


def _arr(x):
    return sitk.GetArrayFromImage(x) if isinstance(x, sitk.Image) else np.asarray(x)


@pytest.fixture(scope="module")
def ct_clean():
    """Noise-free CT chest (spacing 2.5, 2, 2 mm) with two lung nodules of 60 HU."""
    return datasets.ct_phantom(shape=(32, 64, 64), n_lesions=2, noise_hu=0, seed=1)


@pytest.fixture(scope="module")
def ct_noisy():
    return datasets.ct_phantom(shape=(32, 64, 64), n_lesions=2, noise_hu=10, seed=1)


@pytest.fixture(scope="module")
def pet_clean():
    return datasets.pet_phantom(n_lesions=2, noise=0, seed=3)


# --------------------------------------------------------------------------- threshold


@pytest.mark.parametrize("kind", ["numpy", "sitk"])
def test_threshold_is_inclusive_and_keeps_kind(kind):
    a = np.array([[-5.0, 0.0, 2.5, 5.0, 10.0]])
    img = a if kind == "numpy" else sitk.GetImageFromArray(a)
    out = seg.threshold(img, lower=0, upper=5)
    assert isinstance(out, np.ndarray if kind == "numpy" else sitk.Image)
    assert _arr(out).tolist() == [[0, 1, 1, 1, 0]]
    assert _arr(seg.threshold(img, upper=0)).tolist() == [[1, 1, 0, 0, 0]]
    assert _arr(seg.threshold(img, lower=5)).tolist() == [[0, 0, 0, 1, 1]]
    assert a.tolist() == [[-5.0, 0.0, 2.5, 5.0, 10.0]]  # input untouched


def test_threshold_integer_image_fractional_and_out_of_range_bounds():
    a = np.array([[0, 2, 3, 250, 255]], np.uint8)
    # ITK would truncate 2.5 to 2 for a uint8 image: the bound is rounded inward instead
    assert seg.threshold(a, lower=2.5).tolist() == [[0, 0, 1, 1, 1]]
    assert seg.threshold(a, upper=2.5).tolist() == [[1, 1, 0, 0, 0]]
    # a bound outside the pixel type must not wrap around
    assert seg.threshold(a, lower=300).sum() == 0
    assert seg.threshold(a, upper=-1).sum() == 0
    assert seg.threshold(a, lower=-1000, upper=1000).sum() == 5


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint16, np.int8, np.float32])
def test_open_bounds_on_every_pixel_type(dtype):
    # an open bound is clipped to the pixel type; for 64-bit integers that must not overflow
    a = np.array([[0, 9, 9, 0, 9]], dtype)
    assert seg.threshold(a, lower=5).tolist() == [[0, 1, 1, 0, 1]]
    assert seg.threshold(a, upper=5).tolist() == [[1, 0, 0, 1, 0]]
    assert seg.connected_threshold(a, seeds_index=[(0, 1)], lower=5).tolist() == [[0, 1, 1, 0, 0]]
    assert seg.connected_threshold(a, seeds_index=[(0, 0)], upper=5).tolist() == [[1, 0, 0, 0, 0]]


def test_threshold_bad_arguments():
    a = np.zeros((4, 4))
    with pytest.raises(ValueError, match="`lower`, `upper` or both"):
        seg.threshold(a)
    with pytest.raises(ValueError, match=r"`lower` \(5\) must be <= `upper` \(1\)"):
        seg.threshold(a, lower=5, upper=1)
    with pytest.raises(TypeError, match="`lower` must be a number"):
        seg.threshold(a, lower="x")
    with pytest.raises(TypeError):
        seg.threshold(a, 1, 2)  # bounds are keyword-only


# --------------------------------------------------------------------------- automatic thresholds


@pytest.mark.parametrize("method", ["otsu", "li", "triangle", "yen", "isodata"])
def test_auto_threshold_equals_skimage_on_masked_values(method, ct_noisy):
    arr = _arr(ct_noisy.image)
    body = _arr(ct_noisy.labels) > 0
    func = getattr(skf, f"threshold_{method}")
    expect = func(arr[body]) if method == "li" else func(arr[body], nbins=256)
    got = seg.auto_threshold(ct_noisy.image, method, mask=ct_noisy.labels)
    assert got == pytest.approx(float(expect))
    # unmasked, numpy and sitk input agree
    assert seg.auto_threshold(arr, method) == pytest.approx(seg.auto_threshold(ct_noisy.image, method))


@pytest.mark.parametrize(
    ("method", "itk"),
    [("otsu", sitk.OtsuThresholdImageFilter), ("yen", sitk.YenThresholdImageFilter)],
)
def test_auto_threshold_agrees_with_simpleitk_within_a_bin(method, itk, ct_noisy):
    arr = _arr(ct_noisy.image)
    filt = itk()
    filt.SetNumberOfHistogramBins(256)
    filt.Execute(ct_noisy.image)
    bin_width = (arr.max() - arr.min()) / 256
    assert abs(seg.auto_threshold(ct_noisy.image, method) - filt.GetThreshold()) <= bin_width


def test_auto_threshold_bimodal_and_errors():
    img = np.r_[np.zeros(60), np.full(40, 100.0)].reshape(10, 10)
    t = seg.auto_threshold(img, "otsu")
    assert 0 <= t < 100
    assert seg.auto_threshold_mask(img, "otsu").sum() == 40
    with pytest.raises(ValueError, match="By 'otsu_', did you mean 'otsu'"):
        seg.auto_threshold(img, "otsu_")
    with pytest.raises(ValueError, match="constant"):
        seg.auto_threshold(np.ones((5, 5)))
    with pytest.raises(ValueError, match="constant within `mask`"):
        seg.auto_threshold(img, mask=img == 100)
    with pytest.raises(ValueError, match=r"`mask` \(shape \(3, 3\)\) must have the same shape"):
        seg.auto_threshold(img, mask=np.ones((3, 3)))


def test_auto_threshold_mask_respects_mask(ct_noisy):
    arr = _arr(ct_noisy.image)
    lungs = _arr(ct_noisy.labels) >= 2
    t = seg.auto_threshold(arr, "otsu", mask=lungs)
    out = seg.auto_threshold_mask(arr, "otsu", mask=lungs)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, (arr > t) & lungs)


def test_multi_otsu_three_levels_and_mask():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (40, 40))
    img = truth * 100.0 + rng.normal(0, 5, truth.shape)
    lab, th = seg.multi_otsu(img, 3, return_thresholds=True)
    np.testing.assert_array_equal(lab, truth + 1)
    assert th == pytest.approx(list(skf.threshold_multiotsu(img, classes=3)))
    mask = np.zeros(img.shape, bool)
    mask[:20] = True
    lab_m = seg.multi_otsu(img, 3, mask=mask)
    assert (lab_m[~mask] == 0).all()
    # the thresholds come from the masked histogram only
    np.testing.assert_array_equal(lab_m[mask], np.digitize(img[mask], skf.threshold_multiotsu(img[mask])) + 1)
    assert (lab_m[mask] == truth[mask] + 1).mean() > 0.99


# --------------------------------------------------------------------------- modality helpers


def test_hu_mask_table_and_phantom(ct_clean):
    assert set(seg.HU_RANGES) == {"air", "lung", "fat", "soft_tissue", "bone"}
    for r in seg.HU_RANGES.values():
        assert r.source and (r.lower is None or r.upper is None or r.lower < r.upper)
    values = np.array([[-1000.0, -700.0, -100.0, 40.0, 700.0]])
    for i, tissue in enumerate(["air", "lung", "fat", "soft_tissue", "bone"]):
        assert seg.hu_mask(values, tissue).tolist()[0] == [int(k == i) for k in range(5)]
    labels = _arr(ct_clean.labels)
    np.testing.assert_array_equal(_arr(seg.hu_mask(ct_clean.image, "lung")), labels == 2)
    np.testing.assert_array_equal(_arr(seg.hu_mask(ct_clean.image, "bone")), labels == 3)
    with pytest.raises(ValueError, match="did you mean 'lung'"):
        seg.hu_mask(values, "lungs")


def test_suv_threshold_and_percent_suvmax(pet_clean):
    labels = _arr(pet_clean.labels)
    les = pet_clean.truth["lesions"]
    hot = _arr(seg.suv_threshold(pet_clean.image, suv=2.5))
    np.testing.assert_array_equal(hot, labels >= 3)
    # 40 % of the hottest lesion in the whole image
    out, (suvmax, t) = seg.percent_suvmax(pet_clean.image, percent=40, return_threshold=True)
    assert suvmax == pytest.approx(max(x["suv"] for x in les), rel=1e-6)
    assert t == pytest.approx(0.4 * suvmax)
    # within a region of interest around the colder lesion, its own SUVmax sets the threshold
    cold = min(les, key=lambda x: x["suv"])
    roi = ndi.binary_dilation(labels == cold["label"], iterations=2)
    out, (suvmax, t) = seg.percent_suvmax(pet_clean.image, percent=50, mask=roi, return_threshold=True)
    assert suvmax == pytest.approx(cold["suv"], rel=1e-6)
    np.testing.assert_array_equal(_arr(out), labels == cold["label"])
    with pytest.raises(ValueError, match=r"`percent` must be in \(0, 100\]"):
        seg.percent_suvmax(pet_clean.image, percent=140)


# --------------------------------------------------------------------------- region growing


@pytest.mark.parametrize("kind", ["numpy", "sitk"])
def test_connected_threshold_grows_exactly_the_lesion(kind, ct_clean):
    labels = _arr(ct_clean.labels)
    image = ct_clean.image if kind == "sitk" else _arr(ct_clean.image)
    spacing = None if kind == "sitk" else ct_clean.truth["spacing_mm"]
    for les in ct_clean.truth["lesions"]:
        by_index = seg.connected_threshold(image, seeds_index=[les["centre_index"]], lower=50, upper=70,
                                           spacing=spacing)
        by_mm = seg.connected_threshold(image, seeds_mm=[les["centre_mm"]], lower=50, upper=70,
                                        spacing=spacing)
        assert isinstance(by_index, sitk.Image if kind == "sitk" else np.ndarray)
        np.testing.assert_array_equal(_arr(by_index), labels == les["label"])
        np.testing.assert_array_equal(_arr(by_mm), _arr(by_index))
    both = seg.connected_threshold(image, seeds_index=[x["centre_index"] for x in ct_clean.truth["lesions"]],
                                   lower=50, upper=70, spacing=spacing)
    np.testing.assert_array_equal(_arr(both), labels >= 4)


def test_connected_threshold_2d_and_single_seed_tuple():
    ph = datasets.ct_phantom(shape=(96, 96), n_lesions=1, noise_hu=0, seed=1)
    les = ph.truth["lesions"][0]
    out = seg.connected_threshold(ph.image, seeds_index=les["centre_index"], lower=50, upper=70)
    np.testing.assert_array_equal(_arr(out), _arr(ph.labels) == les["label"])
    out_mm = seg.connected_threshold(ph.image, seeds_mm=les["centre_mm"], lower=50, upper=70)
    np.testing.assert_array_equal(_arr(out_mm), _arr(out))


def test_connected_threshold_equals_raw_simpleitk(ct_noisy):
    seed = ct_noisy.truth["lesions"][1]["centre_index"]
    ours = seg.connected_threshold(ct_noisy.image, seeds_index=[seed], lower=-200, upper=200,
                                   connectivity="full")
    raw = sitk.ConnectedThreshold(ct_noisy.image, [seed[::-1]], -200, 200, 1,
                                  sitk.ConnectedThresholdImageFilter.FullConnectivity)
    np.testing.assert_array_equal(_arr(ours), _arr(raw))


def test_connectivity_face_vs_full():
    a = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    assert seg.connected_threshold(a, seeds_index=[(0, 0)], lower=1).sum() == 1
    assert seg.connected_threshold(a, seeds_index=[(0, 0)], lower=1, connectivity="full").sum() == 3
    with pytest.raises(ValueError, match="did you mean 'full'"):
        seg.connected_threshold(a, seeds_index=[(0, 0)], lower=1, connectivity="ful")


def test_seed_errors_name_the_seed_and_the_extent(ct_clean):
    img = ct_clean.image
    with pytest.raises(ValueError, match=r"seed \(40, 1, 1\) in `seeds_index` \(z, y, x\) is outside "
                                         r"the image: index \(z, y, x\) z 0..31, y 0..63, x 0..63"):
        seg.connected_threshold(img, seeds_index=[(1, 1, 1), (40, 1, 1)], lower=0)
    with pytest.raises(ValueError, match=r"seed \(500.0, 1.0, 1.0\) mm in `seeds_mm` \(x, y, z\) is "
                                         r"outside the image: .*physical \(x, y, z\) mm x \[-1, 127\]"):
        seg.connected_threshold(img, seeds_mm=[(500.0, 1.0, 1.0)], lower=0)
    with pytest.raises(ValueError, match="exactly one of `seeds_index`.*got both"):
        seg.connected_threshold(img, seeds_index=[(1, 1, 1)], seeds_mm=[(1, 1, 1)], lower=0)
    with pytest.raises(ValueError, match="exactly one of `seeds_index`.*got neither"):
        seg.connected_threshold(img, lower=0)
    with pytest.raises(ValueError, match="integer voxel indexes"):
        seg.connected_threshold(img, seeds_index=[(1.5, 1, 1)], lower=0)
    with pytest.raises(ValueError, match="3 values each"):
        seg.connected_threshold(img, seeds_index=[(1, 1)], lower=0)
    with pytest.raises(ValueError, match="outside the image"):
        seg.confidence_connected(img, seeds_index=[(-1, 0, 0)])


def test_confidence_and_neighborhood_connected_agree_with_simpleitk():
    # nodules of 200 HU: mean +- 3 std of the nodule stays clear of soft tissue (40 HU), which
    # a nodule may touch at the lung border
    ph = datasets.ct_phantom(shape=(32, 64, 64), n_lesions=2, lesion_hu=200, noise_hu=10, seed=1)
    les = ph.truth["lesions"][1]
    seed = les["centre_index"]
    truth = _arr(ph.labels) == les["label"]
    ours = seg.confidence_connected(ph.image, seeds_index=[seed], multiplier=3.0, iterations=3)
    raw = sitk.ConfidenceConnected(ph.image, [seed[::-1]], 3, 3.0, 1, 1)
    np.testing.assert_array_equal(_arr(ours), _arr(raw))
    dice = 2 * (_arr(ours).astype(bool) & truth).sum() / (_arr(ours).sum() + truth.sum())
    assert dice > 0.95
    # radius in array order (z, y, x) becomes SimpleITK's (x, y, z)
    ours = seg.neighborhood_connected(ph.image, seeds_index=[seed], lower=150, upper=250,
                                      radius_voxels=(0, 1, 1))
    raw = sitk.NeighborhoodConnected(ph.image, [seed[::-1]], 150, 250, [1, 1, 0], 1)
    np.testing.assert_array_equal(_arr(ours), _arr(raw))
    assert 0 < _arr(ours).sum() < truth.sum()


def test_region_grow_percent_suvmax_local_max_and_threshold(pet_clean):
    labels = _arr(pet_clean.labels)
    for les in pet_clean.truth["lesions"]:
        out, info = seg.region_grow_percent_suvmax(pet_clean.image, seeds_index=[les["centre_index"]],
                                                   percent=40, return_info=True)
        np.testing.assert_array_equal(_arr(out), labels == les["label"])
        assert info["suvmax"] == pytest.approx(les["suv"], rel=1e-6)
        assert info["threshold"] == pytest.approx(0.4 * les["suv"], rel=1e-6)
        assert labels[info["suvmax_index"]] == les["label"]
        assert pet_clean.image.TransformPhysicalPointToIndex(info["suvmax_mm"])[::-1] == info["suvmax_index"]
    # a seed next to (not on) the lesion still finds it through the search radius
    les = pet_clean.truth["lesions"][1]
    z, y, x = les["centre_index"]
    r_vox = int(les["radius_mm"] // 4)
    out = seg.region_grow_percent_suvmax(pet_clean.image, seeds_index=[(z, y, x + r_vox + 1)],
                                         percent=40, search_radius_mm=8)
    np.testing.assert_array_equal(_arr(out), labels == les["label"])


def test_region_growing_does_not_modify_input(ct_noisy):
    arr = _arr(ct_noisy.image)
    before = arr.copy()
    seg.connected_threshold(arr, seeds_index=[(16, 32, 32)], lower=-100, upper=100)
    seg.region_grow_percent_suvmax(arr, seeds_index=[(16, 32, 32)], percent=50)
    np.testing.assert_array_equal(arr, before)


# --------------------------------------------------------------------------- morphology


def test_fill_holes_ring_2d_and_tube_3d():
    yy, xx = np.mgrid[:32, :32]
    r = np.hypot(yy - 16, xx - 16)
    ring = (r <= 10) & (r >= 7)
    np.testing.assert_array_equal(seg.fill_holes(ring), r <= 10)
    tube = np.repeat(ring[None], 6, axis=0)
    # open at both ends: nothing enclosed in 3D, every slice's hole filled slice-wise
    np.testing.assert_array_equal(seg.fill_holes(tube), tube)
    np.testing.assert_array_equal(seg.fill_holes(tube, slice_wise=True), np.repeat((r <= 10)[None], 6, 0))
    # a tube lying along x: slices along axis 2 are rings only with axis=2
    tube_x = np.moveaxis(tube, 0, 2)
    np.testing.assert_array_equal(seg.fill_holes(tube_x, slice_wise=True, axis=2),
                                  np.moveaxis(np.repeat((r <= 10)[None], 6, 0), 0, 2))
    with pytest.raises(ValueError, match="needs a 3D mask"):
        seg.fill_holes(ring, slice_wise=True)


def test_components_largest_and_small_objects():
    m = np.zeros((20, 20), bool)
    m[1:4, 1:4] = True  # 9
    m[10:15, 10:15] = True  # 25
    m[18, 18] = True  # 1
    m[6, 6] = m[7, 7] = True  # diagonal pair: 2 face components, 1 full component
    lab = seg.connected_components(m)
    assert lab.dtype == np.uint32 and lab.max() == 5
    assert [int((lab == k).sum()) for k in range(1, 6)] == [25, 9, 1, 1, 1]
    assert seg.connected_components(m, connectivity="full").max() == 4
    np.testing.assert_array_equal(seg.largest_component(m), lab == 1)
    assert seg.remove_small_objects(m, min_voxels=9).sum() == 34
    assert seg.remove_small_objects(m, min_voxels=2, connectivity="full").sum() == 36
    # 2 x 2 mm pixels: 9 px = 36 mm^2
    assert seg.remove_small_objects(m, min_area_mm2=36, spacing=2.0).sum() == 34
    assert seg.remove_small_objects(m, min_area_mm2=36.1, spacing=2.0).sum() == 25
    with pytest.raises(ValueError, match="exactly one of `min_voxels`"):
        seg.remove_small_objects(m, min_voxels=2, min_area_mm2=3)
    with pytest.raises(ValueError, match="`min_volume_ml` is for 3D"):
        seg.remove_small_objects(m, min_volume_ml=1)


def test_remove_small_objects_volume_ml(ct_clean):
    lesions = _arr(ct_clean.labels) >= 4
    small, big = sorted(ct_clean.truth["lesions"], key=lambda x: x["n_voxels"])
    kept = seg.remove_small_objects(lesions, min_volume_ml=small["volume_ml"] + 0.01,
                                    spacing=ct_clean.truth["spacing_mm"])
    np.testing.assert_array_equal(kept, _arr(ct_clean.labels) == big["label"])
    kept = seg.remove_small_objects(lesions, min_volume_ml=small["volume_ml"], spacing=ct_clean.truth["spacing_mm"])
    np.testing.assert_array_equal(kept, lesions)


def test_component_at_seed():
    m = np.zeros((10, 10), np.uint8)
    m[1:3, 1:3] = 1
    m[5:9, 5:9] = 1
    np.testing.assert_array_equal(seg.component_at(m, seeds_index=[(6, 6)]), m * (np.arange(10) >= 5)[:, None])
    assert seg.component_at(m, seeds_index=[(0, 9)]).sum() == 0


def test_opening_radius_mm_is_per_axis_on_anisotropic_grid():
    rng = np.random.default_rng(1)
    m = ndi.binary_opening(rng.random((12, 30, 30)) > 0.35, iterations=1).astype(np.uint8)
    img = sitk.GetImageFromArray(m)
    img.SetSpacing((1.0, 1.0, 5.0))  # x, y, z
    # 2 mm: 2 voxels in x and y, round(2 / 5) = 0 in z -> SimpleITK radius [2, 2, 0]
    ours = seg.opening(img, 2.0)
    raw = sitk.BinaryMorphologicalOpening(img, [2, 2, 0], sitk.sitkBall, backgroundValue=0, foregroundValue=1)
    np.testing.assert_array_equal(_arr(ours), _arr(raw))
    np.testing.assert_array_equal(seg.opening(m, 2.0, spacing=(5.0, 1.0, 1.0)), _arr(raw))
    ours = seg.closing(img, (5.0, 1.0, 1.0), kernel="box")
    raw = sitk.BinaryMorphologicalClosing(img, [1, 1, 1], sitk.sitkBox, 1, True)
    np.testing.assert_array_equal(_arr(ours), _arr(raw))
    with pytest.raises(ValueError, match="less than half a voxel along every axis"):
        seg.opening(img, 0.4)


def test_opening_cuts_a_thin_bridge():
    m = np.zeros((20, 40), np.uint8)
    m[4:16, 2:14] = 1
    m[4:16, 26:38] = 1
    m[9:11, 14:26] = 1  # 2 px = 1 mm wide bridge at 0.5 mm spacing
    opened = seg.opening(m, 1.0, spacing=0.5)  # 2 px radius
    assert seg.connected_components(opened).max() == 2
    assert opened[4:16, 2:14].sum() > 0.8 * 144
    closed = seg.closing(opened, 1.0, spacing=0.5)
    assert not closed[10, 20]


# --------------------------------------------------------------------------- label statistics


@pytest.mark.parametrize("kind", ["numpy", "sitk"])
def test_label_statistics_match_phantom_truth(kind, ct_clean):
    labels = ct_clean.labels if kind == "sitk" else _arr(ct_clean.labels)
    image = ct_clean.image if kind == "sitk" else _arr(ct_clean.image)
    spacing = None if kind == "sitk" else ct_clean.truth["spacing_mm"]
    st = seg.label_statistics(labels, image, spacing=spacing)
    assert list(st.columns) == ["label", "voxels", "volume_ml", "centroid_mm", "bbox_index", "bbox_size",
                                "mean", "std", "min", "max"]
    assert st["label"].tolist() == [1, 2, 3, 4, 5]  # background 0 is not a label
    truth = ct_clean.truth
    for row in st.itertuples():
        assert row.voxels == truth["n_voxels"][row.label]
        assert row.volume_ml == pytest.approx(truth["volume_ml"][row.label])
        assert row.mean == pytest.approx(truth["values"][row.label])
        assert row.std == pytest.approx(0, abs=1e-9)
    lab = _arr(ct_clean.labels)
    for les in truth["lesions"]:
        row = st.set_index("label").loc[les["label"]]
        assert row["centroid_mm"] == pytest.approx(les["centre_mm"])
        idx = np.nonzero(lab == les["label"])
        assert row["bbox_index"] == tuple(int(i.min()) for i in idx)
        assert row["bbox_size"] == tuple(int(i.max() - i.min() + 1) for i in idx)


def test_label_statistics_intensity_against_numpy_and_mixed_kinds(ct_noisy):
    lab = _arr(ct_noisy.labels)
    arr = _arr(ct_noisy.image)
    st = seg.label_statistics(lab, ct_noisy.image)  # numpy labels take the image's geometry
    for row in st.itertuples():
        v = arr[lab == row.label].astype(np.float64)
        assert row.mean == pytest.approx(v.mean(), rel=1e-6)
        assert row.std == pytest.approx(v.std(ddof=1), rel=1e-6)
        assert (row.min, row.max) == pytest.approx((v.min(), v.max()))
    assert st["volume_ml"].tolist() == pytest.approx([ct_noisy.truth["volume_ml"][k] for k in st["label"]])


def test_label_statistics_2d_mask_and_no_image():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    st = seg.label_statistics(m, spacing=(2.0, 0.5))
    assert list(st.columns) == ["label", "voxels", "area_mm2", "centroid_mm", "bbox_index", "bbox_size"]
    row = st.iloc[0]
    assert (row["label"], row["voxels"], row["area_mm2"]) == (1, 18, 18.0)
    assert row["centroid_mm"] == pytest.approx((5.5 * 0.5, 3 * 2.0))  # (x, y)
    assert (row["bbox_index"], row["bbox_size"]) == ((2, 3), (3, 6))
    assert len(seg.label_statistics(np.zeros((4, 4), np.uint8))) == 0
    with pytest.raises(ValueError, match="non-negative integer labels"):
        seg.label_statistics(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match=r"`image` \(shape \(3, 3\)\) must have the same shape as `labels`"):
        seg.label_statistics(m, np.zeros((3, 3)))


@pytest.mark.parametrize("module", ["_threshold", "_region", "_morphology", "_edges", "_lesion"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"medlab.segmentation.{module}"))
    assert result.failed == 0
