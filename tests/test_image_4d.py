"""A 4D image (several volumes) reaching a function that needs one 2D/3D image is refused with a
message that says how to take one volume, never treated as a fourth spatial axis."""

import numpy as np
import pytest
import SimpleITK as sitk

import medlab.io
from medlab import detection, enhance, features, filters, fusion, registration, segmentation


@pytest.fixture(scope="module")
def epi():
    arr = np.random.default_rng(0).normal(100, 10, (3, 6, 16, 16)).astype(np.float32)
    img = sitk.GetImageFromArray(arr, isVector=False)  # size (16, 16, 6, 3): 3 volumes
    img.SetSpacing((2.0, 2.0, 3.0, 1.0))
    mask = sitk.GetImageFromArray((arr > 100).astype(np.uint8), isVector=False)
    mask.CopyInformation(img)
    return img, mask


CALLS = {
    "filters.gaussian": lambda img, m: filters.gaussian(img, sigma_mm=1.0),
    "filters.n4_bias_correction": lambda img, m: filters.n4_bias_correction(img),
    "segmentation.threshold": lambda img, m: segmentation.threshold(img, lower=0, upper=100),
    "segmentation.auto_threshold": lambda img, m: segmentation.auto_threshold(img),
    "segmentation.connected_components": lambda img, m: segmentation.connected_components(m),
    "segmentation.label_statistics": lambda img, m: segmentation.label_statistics(m, img),
    "segmentation.connected_threshold": lambda img, m: segmentation.connected_threshold(
        img, seeds_index=[(0, 0, 0)], lower=0, upper=200),
    "enhance.window_level": lambda img, m: enhance.window_level(img, window=100, level=50),
    "registration.resample": lambda img, m: registration.resample(img, img),
    "registration.register": lambda img, m: registration.register(img, img),
    "features.extract": lambda img, m: features.extract(img, m),
    "fusion.alpha_blend": lambda img, m: fusion.alpha_blend(img, img),
    "detection.blobs": lambda img, m: detection.blobs(img),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_4d_is_refused_with_the_way_out(epi, name):
    img, mask = epi
    with pytest.raises(ValueError, match=r"is a 4D image of 3 volumes .*medlab\.io\.volume\(image, index\)"):
        CALLS[name](img, mask)


def test_one_volume_of_it_is_accepted(epi):
    img, _ = epi
    vol = medlab.io.volume(img, 1)
    assert vol.GetDimension() == 3 and vol.GetSpacing() == (2.0, 2.0, 3.0)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(vol), sitk.GetArrayViewFromImage(img)[1])
    out = filters.gaussian(vol, sigma_mm=1.0)
    assert out.GetSize() == (16, 16, 6)
