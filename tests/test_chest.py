"""medlab.apps.chest.lung_fields on a hand-built radiograph with known lungs, and on the real
chest CR of pydicom-data (measured, no ground truth)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets, io
from medlab.apps.chest import lung_fields
from medlab.metrics import dice
from medlab.segmentation import label_statistics


def _radiograph(seed=0, pixel_mm=0.5):
    """A 400 x 360 px frontal radiograph: bright body, two dark elliptic lungs (the image-left one
    larger) with bright nodules inside, air above the shoulders touching the border, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:400, :360].astype(float)
    left = ((x - 100) / 60) ** 2 + ((y - 210) / 140) ** 2 <= 1
    right = ((x - 262) / 55) ** 2 + ((y - 200) / 120) ** 2 <= 1
    img = np.full(y.shape, 1000.0)
    img[(y < 40) & ((x < 70) | (x > 290))] = 100.0  # air beside the neck, at the border
    img[left | right] = 400.0
    for cy, cx, r in ((180, 100, 12), (230, 250, 9)):  # nodules: bright, inside the lungs
        img[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = 950.0
    img += rng.normal(0, 60, img.shape)
    image = sitk.GetImageFromArray(img.astype(np.float32))
    image.SetSpacing((pixel_mm, pixel_mm))
    return image, left, right


# measured Dice (image-left, image-right) and area ratio: Otsu 0.993, 0.990, 0.99, 0.98; Li (a lower
# threshold, so the blurred border is cut inside) 0.978, 0.968, 0.96, 0.94
@pytest.mark.parametrize("threshold, min_dice, area_rtol", [("otsu", 0.98, 0.03), ("li", 0.95, 0.08)])
def test_two_lungs_found_filled_and_ordered(threshold, min_dice, area_rtol):
    image, left, right = _radiograph()
    labels, info = lung_fields(image, threshold=threshold, return_info=True)
    lab = sitk.GetArrayFromImage(labels)
    assert info["n_lungs"] == 2 and info["shrink"] == 2  # 0.5 mm pixels -> 1 mm working grid
    assert labels.GetSpacing() == image.GetSpacing() and lab.shape == left.shape
    # nodules are filled back in; the air at the border is not a lung
    assert dice(lab == 1, left) > min_dice and dice(lab == 2, right) > min_dice
    assert not lab[:40, :70].any()
    areas = label_statistics(labels)["area_mm2"].to_numpy()
    true = np.array([left.sum(), right.sum()]) * 0.25
    np.testing.assert_allclose(areas, true, rtol=area_rtol)


def test_numpy_in_numpy_out_and_no_lungs():
    image, _, _ = _radiograph(seed=1)
    arr = sitk.GetArrayFromImage(image)
    lab = lung_fields(arr, spacing=(0.5, 0.5))
    assert isinstance(lab, np.ndarray) and lab.dtype == np.uint8 and set(np.unique(lab)) == {0, 1, 2}
    flat, info = lung_fields(np.full((100, 100), 5.0) + np.random.default_rng(0).normal(0, 1, (100, 100)),
                             return_info=True, opening_mm=0)
    assert info["n_lungs"] <= 2 and flat.shape == (100, 100)


def test_bad_input():
    with pytest.raises(ValueError, match="2D"):
        lung_fields(np.zeros((3, 10, 10)))
    with pytest.raises(ValueError, match="min_area_fraction"):
        lung_fields(np.zeros((10, 10)), min_area_fraction=0.6)


def test_real_chest_cr_two_plausible_lungs():
    # RG1_UNCI.dcm has no pixel spacing (PixelSpacing 0); 0.2 mm is assumed as in the use case
    with pytest.warns(io.DicomWarning, match=r"PixelSpacing is 0\\0 \(unknown\)"):
        cr = io.read(datasets.load("pydicom_data", case="RG1_UNCI.dcm").paths["file"])
    cr.SetSpacing((0.2, 0.2))
    labels = lung_fields(cr)
    stats = label_statistics(labels)
    # measured: 152 and 179 cm^2 (image left / right); adult lung fields are 100-250 cm^2
    assert list(stats["label"]) == [1, 2]
    assert ((stats["area_mm2"] > 120e2) & (stats["area_mm2"] < 210e2)).all()
    # the image-left lung lies left of the image-right one
    assert stats["centroid_mm"][0][0] < stats["centroid_mm"][1][0]
