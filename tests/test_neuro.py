"""medlab.apps.neuro: exact answers on the head-CT phantom and on hand-built volumes, measured floors
on the MNI152 template (nilearn)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets, metrics
from medlab.apps import neuro


def arr(img):
    return sitk.GetArrayFromImage(img)


@pytest.fixture(scope="module")
def mni():
    return datasets.load("mni152", resolution=2, progress=False)


@pytest.fixture(scope="module")
def mni_brain(mni):
    return neuro.brain_extraction(mni.image)


# ------------------------------------------------------------------ head CT phantom


def test_head_ct_phantom_truth():
    ph = datasets.head_ct_phantom(n_haemorrhages=3, seed=2, noise_hu=0.0)
    t, lab, img = ph.truth, arr(ph.labels), arr(ph.image)
    assert t["synthetic"] is True and t["units"] == "HU"
    assert t["values"][2] == 1000.0 and t["values"][5] == 5.0
    assert 30.0 <= t["values"][3] <= 40.0 and 30.0 <= t["values"][4] <= 40.0
    assert len(t["lesions"]) == 3
    for les in t["lesions"]:
        m = lab == les["label"]
        assert m.sum() == les["n_voxels"]
        assert les["volume_ml"] == pytest.approx(m.sum() * 4 * 2 * 2 / 1000)
        assert 60.0 <= les["hu"] <= 85.0 and np.all(img[m] == np.float32(les["hu"]))
        # the centroid of a ball centred on a voxel centre is that voxel
        assert np.allclose(np.argwhere(m).mean(axis=0), les["centre_index"])
        z, y, x = les["centre_index"]
        assert les["centre_mm"] == (x * 2.0, y * 2.0, z * 4.0)
    assert np.array_equal(arr(datasets.head_ct_phantom(seed=5).image),
                          arr(datasets.head_ct_phantom(seed=5).image))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_haemorrhages_detected_exactly(seed):
    ph = datasets.head_ct_phantom(n_haemorrhages=3, seed=seed)
    table = neuro.detect_haemorrhage(ph.image)
    match = neuro.match_detections(table, ph.labels, ph.truth["lesions"])
    assert match.attrs["false_positives"] == 0
    assert match["detected"].all()
    # each haemorrhage's voxels exactly (noise 3 HU is 4 sigma from the 50 HU window)
    assert np.allclose(match["volume_ml"], match["true_volume_ml"])
    assert np.allclose(match["distance_mm"], 0.0, atol=1e-6)
    assert np.all(np.abs(match["mean_hu"] - match["true_hu"]) < 1.0)
    lab = arr(table.attrs["mask"])
    assert lab.max() == 3 and (arr(table.attrs["intracranial"]) > 0).sum() > 0
    # a candidate table of medlab.detection: FROC over the phantom gives sensitivity 1 at 0 FP
    from medlab import detection

    les = arr(ph.labels) * (arr(ph.labels) >= 6)
    result = detection.froc([table], [les], labelled=True, spacing=(4.0, 2.0, 2.0))
    assert result.max_sensitivity == 1.0 and result.fp_per_image[-1] == 0


def test_false_positive_is_counted():
    ph = datasets.head_ct_phantom(n_haemorrhages=2, seed=1)
    table = neuro.detect_haemorrhage(ph.image)
    # drop the first lesion from the truth: its detection becomes a false positive
    match = neuro.match_detections(table, ph.labels, ph.truth["lesions"][1:])
    assert len(match) == 1 and match["detected"].all() and match.attrs["false_positives"] == 1


def test_no_haemorrhage_no_detection():
    ph = datasets.head_ct_phantom(n_haemorrhages=0, seed=0)
    table = neuro.detect_haemorrhage(ph.image)
    assert len(table) == 0
    assert neuro.match_detections(table, ph.labels, []).attrs["false_positives"] == 0


def test_detection_numpy_input_and_window():
    ph = datasets.head_ct_phantom(n_haemorrhages=2, seed=4)
    table = neuro.detect_haemorrhage(arr(ph.image), spacing=(4.0, 2.0, 2.0))
    assert isinstance(table.attrs["mask"], np.ndarray) and len(table) == 2
    # a window above the haemorrhages' HU finds nothing
    assert len(neuro.detect_haemorrhage(ph.image, hu_range=(95, 120))) == 0
    with pytest.raises(ValueError, match="hu_range"):
        neuro.detect_haemorrhage(ph.image, hu_range=(90, 50))
    with pytest.raises(ValueError, match="bone"):
        neuro.detect_haemorrhage(ph.image, skull_hu=5000)


# ------------------------------------------------------------------ hand-built volumes


def test_simulate_atrophy_removes_the_exact_layer():
    region = np.zeros((20, 20, 20), np.uint8)
    region[5:15, 5:15, 5:15] = 1
    image = region * 100.0
    out = neuro.simulate_atrophy(image, region, depth_mm=1.0, fill_value=7.0)
    # with 1 mm voxels the 1 mm layer is the cube's surface voxels: 10^3 - 8^3
    assert out["n_voxels"] == 1000 - 512 and out["volume_ml"] == pytest.approx(0.488)
    assert np.all(out["image"][out["removed"] == 1] == 7.0)
    assert image.max() == 100.0  # input untouched
    tissue = np.zeros_like(region)
    tissue[:, :, :10] = 1
    half = neuro.simulate_atrophy(image, region, depth_mm=1.0, tissue=tissue, fill_value=0.0)
    assert half["n_voxels"] == int(((region == 1) & (tissue == 1) & (out["removed"] == 1)).sum())
    with pytest.raises(ValueError, match="no voxel"):
        neuro.simulate_atrophy(image, region, depth_mm=1.0, tissue=np.zeros_like(region))


def test_tissue_segmentation_on_three_known_classes():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 4, size=(16, 16, 16)).astype(np.uint8)
    image = np.choose(truth, [0.0, 300.0, 600.0, 850.0]) + rng.normal(0, 10, truth.shape)
    brain = np.ones_like(truth)
    for method in ("gmm", "kmeans", "multi_otsu"):
        lab = neuro.tissue_segmentation(image, brain, method=method)
        assert np.array_equal(lab, truth), method  # multi-Otsu thresholds 366, 662: 6+ sigma from each class
    vols = neuro.tissue_volumes(truth, spacing=2.0)
    assert vols["csf"] == pytest.approx((truth == 1).sum() * 8 / 1000)


# ------------------------------------------------------------------ MNI152


def test_brain_extraction_on_mni152(mni, mni_brain):
    # measured Dice 0.9929 against nilearn's brain mask
    assert metrics.dice(mni_brain, mni.labels["brain"]) > 0.98


@pytest.mark.parametrize("method, gm_floor, wm_floor", [
    ("kmeans", 0.68, 0.75),  # measured GM 0.702, WM 0.780
    ("gmm", 0.73, 0.67),  # measured GM 0.762, WM 0.700
    ("multi_otsu", 0.68, 0.76),  # measured GM 0.702, WM 0.791
])
def test_tissue_dice_on_mni152(mni, mni_brain, method, gm_floor, wm_floor):
    lab = arr(neuro.tissue_segmentation(mni.image, mni_brain, method=method))
    assert metrics.dice(lab == 2, mni.labels["gm"]) > gm_floor
    assert metrics.dice(lab == 3, mni.labels["wm"]) > wm_floor


def test_atrophy_measured_on_mni152(mni, mni_brain):
    base = arr(mni_brain).sum() * 8 / 1000
    # whole-brain atrophy: a 2 mm outer layer of the brain replaced by background
    shrink = neuro.simulate_atrophy(mni.image, mni_brain, depth_mm=2.0, fill_value=0.0)
    after = arr(neuro.brain_extraction(shrink["image"])).sum() * 8 / 1000
    # measured loss 145.2 mL for a true 141.8 mL (+2.4 %)
    assert (base - after) == pytest.approx(shrink["volume_ml"], rel=0.06)
    # cortical thinning: grey matter in the 2 mm outer layer replaced by CSF
    lab = neuro.tissue_segmentation(mni.image, mni_brain, method="kmeans")
    a, t = arr(lab), arr(mni.image)
    thin = neuro.simulate_atrophy(mni.image, mni_brain, depth_mm=2.0,
                                  tissue=(a == 2).astype(np.uint8), fill_value=float(t[a == 1].mean()))
    lab2 = neuro.tissue_segmentation(thin["image"], mni_brain, method="kmeans")
    loss = neuro.tissue_volumes(lab)["gm"] - neuro.tissue_volumes(lab2)["gm"]
    # measured GM loss 46.9 mL for a true 57.7 mL (-19 %)
    assert 0.7 * thin["volume_ml"] < loss < 1.3 * thin["volume_ml"]


def test_doctests():
    import doctest

    result = doctest.testmod(neuro)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("kw, match", [
    ({"n_haemorrhages": 40, "radius_mm": (12.0, 14.0)}, "could not place"),
    ({"haemorrhage_hu": (90.0, 50.0)}, "haemorrhage_hu"),
    ({"hu": {"skul": 900}}, "did you mean 'skull'"),
    ({"shape": (64, 64)}, "shape"),
])
def test_head_ct_phantom_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        datasets.head_ct_phantom(**kw)


# ------------------------------------------------------------------ 4D EPI stability


def _run(volumes, spacing=(2.0, 3.0, 4.0), direction=None):
    """A 4D image (x, y, z, volume) from a list of (z, y, x) arrays."""
    img = sitk.JoinSeries([sitk.GetImageFromArray(np.asarray(v, np.float32)) for v in volumes])
    img.SetSpacing((*spacing, 1.0))
    img.SetOrigin((10.0, -20.0, 5.0, 0.0))
    if direction is not None:
        d4 = np.eye(4)
        d4[:3, :3] = direction
        img.SetDirection(d4.ravel().tolist())
    return img


def test_epi_stability_translations_are_exact_in_mm():
    base = np.zeros((12, 20, 24))
    base[4:8, 6:12, 8:15] = 100.0
    base[5, 8, 10] = 400.0  # not symmetric
    moves = [(0, 0, 0), (1, 0, 0), (1, 2, 0), (0, 2, 1), (-2, 0, 1)]  # (x, y, z) voxels
    vols = [np.roll(base, (k, j, i), axis=(0, 1, 2)) for i, j, k in moves]
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # an oblique grid
    qc = neuro.epi_stability(_run(vols, direction=direction), mask=np.ones(base.shape))
    expected = np.array(moves, float) * (2.0, 3.0, 4.0) @ direction.T  # physical mm (x, y, z)
    np.testing.assert_allclose(qc["centroid_shift_mm"], expected, atol=1e-9)
    np.testing.assert_allclose(qc["framewise_displacement_mm"], np.r_[0.0, np.abs(np.diff(expected, axis=0)).sum(axis=1)],
                               atol=1e-9)
    assert qc["volumes"] == 5 and qc["tsnr"].GetSize() == (24, 20, 12) and qc["tsnr"].GetDirection() == pytest.approx(
        direction.ravel())


def test_epi_stability_signal_measures_are_exact():
    base = np.full((6, 8, 8), 1000.0)
    # alternating +-10 around 1000: mean 1000, SD (ddof 1) 10 sqrt(10/9); every change is 20 = 2 %
    vols = [base + 10.0 * (-1) ** k for k in range(10)]
    qc = neuro.epi_stability(_run(vols), mask=np.ones(base.shape, bool))
    assert qc["tsnr_median"] == pytest.approx(1000.0 / (10.0 * np.sqrt(10 / 9)), rel=1e-9)
    np.testing.assert_allclose(qc["dvars_percent"], [0.0] + [2.0] * 9, rtol=1e-12)
    np.testing.assert_allclose(qc["framewise_displacement_mm"], 0.0, atol=1e-9)
    # a linear drift of 5 a volume from 1000: 45 over the run = 4.5 % of the first volume
    drift = neuro.epi_stability(_run([base + 5.0 * k for k in range(10)]), mask=np.ones(base.shape))
    assert drift["drift_percent"] == pytest.approx(4.5, rel=1e-9)
    skipped = neuro.epi_stability(_run([base + 5.0 * k for k in range(10)]), skip=4, mask=np.ones(base.shape))
    assert skipped["volumes"] == 6 and skipped["drift_percent"] == pytest.approx(25.0 / 1020.0 * 100.0, rel=1e-9)


def test_epi_stability_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError, match=r"4D SimpleITK.Image \(x, y, z, volume\).*got a 3D image"):
        neuro.epi_stability(sitk.Image([4, 4, 4], sitk.sitkFloat32))
    run = _run([np.ones((2, 3, 3))] * 4)
    with pytest.raises(ValueError, match="`skip`=2 leaves 2 of 4 volumes"):
        neuro.epi_stability(run, skip=2)
    with pytest.raises(ValueError, match="mask"):
        neuro.epi_stability(run, mask=np.ones((3, 3, 3)))


def test_epi_stability_on_the_real_ge_fmri_run():
    image = __import__("medlab.io").io.read(datasets.load("dcm_qa_nih", case="20180918GE/mr_0004").paths["series"])
    qc = neuro.epi_stability(image)
    assert qc["volumes"] == 10 and qc["tsnr"].GetSize() == (64, 64, 15)
    # the head moves in this validation run: framewise displacement up to 28.9 mm, median tSNR
    # 4.2 in the Otsu mask of the mean volume (measured); a still run gives FD < 1 mm, tSNR > 40
    assert qc["framewise_displacement_mm"].max() > 15.0
    assert 2.0 < qc["tsnr_median"] < 8.0
    # the tSNR map is mean/SD over time, voxel by voxel (independent numpy computation)
    a = sitk.GetArrayFromImage(image).astype(np.float64)
    inside = sitk.GetArrayFromImage(qc["mask"]).astype(bool)
    assert qc["tsnr_median"] == pytest.approx(np.median(a.mean(0)[inside] / a.std(0, ddof=1)[inside]), rel=1e-5)
