"""medlab.segmentation.suv_metrics: exact answers on hand-built volumes and the PET phantom,
agreement of SUVpeak with the IBSI local intensity peak of medlab.features, bad input."""

import math

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import features
from medlab.datasets import pet_phantom
from medlab.segmentation import suv_metrics


def test_hand_built_cube():
    pet = np.zeros((7, 7, 7))
    pet[2:5, 2:5, 2:5] = 3.0
    pet[3, 3, 3] = 7.0
    m = suv_metrics(pet, pet > 0, spacing=(2.0, 4.0, 4.0))
    assert m["suvmax"] == 7.0
    assert m["suvmean"] == pytest.approx((26 * 3 + 7) / 27)
    assert m["n_voxels"] == 27
    assert m["mtv_ml"] == pytest.approx(27 * 32 / 1000)
    assert m["tlg"] == pytest.approx(m["suvmean"] * m["mtv_ml"])
    assert m["suvmax_index"] == m["peak_index"] == (3, 3, 3)
    # 6.2 mm sphere on a 2 x 4 x 4 mm grid: z offsets up to 3 voxels. Voxels of the ball:
    # (dz, dy, dx) with (2 dz)^2 + (4 dy)^2 + (4 dx)^2 <= 6.2^2 -> dz 0: 9 (the corners at
    # 5.66 mm are in); dz +-1 (2 mm): 9 each; dz +-2 (4 mm): 5 each (centre + 4 faces at
    # 5.66 mm); dz +-3 (6 mm): 1 each. 9 + 18 + 10 + 2 = 39 voxels; those outside the cube
    # (|dz| >= 2) are 0 except none; inside the cube |dz|,|dy|,|dx| <= 1.
    ball = [(dz, dy, dx) for dz in range(-3, 4) for dy in range(-1, 2) for dx in range(-1, 2)
            if (2 * dz) ** 2 + (4 * dy) ** 2 + (4 * dx) ** 2 <= (10 * (3 / (4 * math.pi)) ** (1 / 3)) ** 2]
    values = [pet[3 + dz, 3 + dy, 3 + dx] for dz, dy, dx in ball]
    assert len(ball) == 39
    assert m["suvpeak"] == pytest.approx(np.mean(values))
    assert m["suvpeak"] == pytest.approx((7 + 3 * 26) / 39)  # 27 cube voxels in the ball, 12 zeros


def test_peak_counts_only_voxels_in_the_image():
    pet = np.zeros((3, 3, 3))
    pet[0, 0, 0] = 19.0
    m = suv_metrics(pet, pet > 0, spacing=4.0)
    # 19-voxel ball on a 4 mm grid; at the corner only the centre, 3 faces and 3 edges exist
    assert m["suvpeak"] == pytest.approx(19.0 / 7)
    assert m["suvmax"] == m["suvmean"] == 19.0
    assert m["mtv_ml"] == pytest.approx(0.064)


def test_ties_take_the_largest_peak():
    pet = np.zeros((9, 9, 9))
    pet[1, 1, 1] = 5.0       # an isolated hottest voxel
    pet[5:8, 5:8, 5:8] = 2.0
    pet[6, 6, 6] = 5.0       # the same maximum, inside a warm cube
    m = suv_metrics(pet, pet > 0, spacing=4.0)
    assert m["suvmax_index"] == (1, 1, 1)  # first in raster order
    assert m["peak_index"] == (6, 6, 6)
    assert m["suvpeak"] == pytest.approx((5 + 18 * 2) / 19)


def test_pet_phantom_exact():
    ph = pet_phantom(n_lesions=3, noise=0, seed=3)
    labels = sitk.GetArrayFromImage(ph.labels)
    for les in ph.truth["lesions"]:
        m = suv_metrics(ph.image, labels == les["label"])
        s = les["suv"]
        assert m["suvmax"] == pytest.approx(s, rel=1e-6)  # float32 image
        assert m["suvmean"] == pytest.approx(s, rel=1e-6)
        assert m["n_voxels"] == les["n_voxels"]
        assert m["mtv_ml"] == pytest.approx(les["volume_ml"])
        assert m["tlg"] == pytest.approx(s * les["volume_ml"], rel=1e-6)
        if les["radius_mm"] >= 6.21:  # the 1 cm^3 sphere fits in the lesion
            assert m["suvpeak"] == pytest.approx(s, rel=1e-6)
        else:  # radius 5.6 mm: 7 lesion voxels + 12 background voxels (SUV 1) in the ball
            assert les["n_voxels"] == 7
            assert m["suvpeak"] == pytest.approx((7 * s + 12 * 1.0) / 19, rel=1e-6)


def test_suvpeak_is_the_ibsi_local_intensity_peak():
    ph = pet_phantom(n_lesions=3, noise=0.2, fwhm_mm=8.0, seed=5)
    labels = sitk.GetArrayFromImage(ph.labels)
    for les in ph.truth["lesions"]:
        mask = (labels == les["label"]).astype(np.uint8)
        m = suv_metrics(ph.image, mask)
        f = features.extract(ph.image, mask, features.FeatureSettings(families=("loc", "stat")))
        assert m["suvpeak"] == pytest.approx(float(f["loc_peak_local"].iloc[0]), rel=1e-9)
        assert m["suvmax"] == pytest.approx(float(f["stat_max"].iloc[0]), rel=1e-9)
        assert m["suvmean"] == pytest.approx(float(f["stat_mean"].iloc[0]), rel=1e-9)
        assert m["suvpeak"] <= m["suvmax"]


def test_sitk_mask_on_another_grid_is_refused():
    ph = pet_phantom(n_lesions=1, noise=0, seed=3)
    other = sitk.Image(ph.labels)
    other.SetOrigin((1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="origin"):
        suv_metrics(ph.image, other)


def test_bad_input():
    with pytest.raises(ValueError, match="3D"):
        suv_metrics(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="selects no voxels"):
        suv_metrics(np.ones((3, 3, 3)), np.zeros((3, 3, 3)))
    # a NaN in the lesion (or beside it, inside the SUVpeak sphere): refused with the count, not an
    # IndexError from an SUVmax that no voxel equals (before)
    damaged = np.ones((3, 3, 3))
    damaged[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"`pet` has 1 voxels that are NaN or infinite \(of 27\)"):
        suv_metrics(damaged, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        suv_metrics(np.ones((3, 3, 3)), np.ones((3, 3, 2)))
