"""medlab.fusion: exact pixel values on hand-built images, agreement with the one renderer
(medlab.display), clear errors, and the multimodal panels on a real sarcoma patient."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import SimpleITK as sitk

from medlab import datasets, fusion
from medlab.display import render


def test_docstring_examples():
    result = doctest.testmod(fusion, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


def test_alpha_blend_with_windows_is_exact():
    a = np.array([[-1000.0, 0.0, 1000.0]])
    b = np.array([[0.0, 5.0, 10.0]])
    # window (2000, 0) maps -1000..1000 to 0..1; window (10, 5) maps 0..10 to 0..1
    out = fusion.alpha_blend(a, b, 0.25, window1=(2000, 0), window2=(10, 5))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]], atol=1e-6)
    out = fusion.alpha_blend(a, b, 1.0)
    np.testing.assert_array_equal(out, b.astype(np.float32))


def test_alpha_blend_keeps_sitk_geometry():
    img = sitk.GetImageFromArray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    img.SetSpacing((0.5, 0.7, 2.0))
    img.SetOrigin((1.0, 2.0, 3.0))
    out = fusion.alpha_blend(img, img, 0.3)
    assert isinstance(out, sitk.Image)
    assert out.GetSpacing() == img.GetSpacing() and out.GetOrigin() == img.GetOrigin()
    np.testing.assert_allclose(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(img), atol=1e-5)


def test_checkerboard_tiles_alternate_in_3d():
    a, b = np.zeros((4, 4, 4)), np.ones((4, 4, 4))
    out = fusion.checkerboard(a, b, tiles=2)
    z, y, x = np.indices(out.shape)
    expected = ((z // 2 + y // 2 + x // 2) % 2).astype(np.float32)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(fusion.checkerboard(a, b, tiles=(1, 1, 4))[0, 0], [0, 1, 0, 1])


def test_difference_raw_and_absolute():
    a, b = np.array([[3.0, 1.0]]), np.array([[1.0, 4.0]])
    np.testing.assert_array_equal(fusion.difference(a, b), [[2.0, -3.0]])
    np.testing.assert_array_equal(fusion.difference(a, b, absolute=True), [[2.0, 3.0]])


def test_flicker_frames_start_and_end_on_the_two_slices():
    a = np.linspace(0, 1, 64).reshape(8, 8)
    b = a[::-1]
    frames = fusion.flicker_frames(a, b, n_frames=3, window1=(1, 0.5), window2=(1, 0.5))
    assert frames.shape == (3, 8, 8) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], render(a, 1, 0.5))
    np.testing.assert_array_equal(frames[2], render(b, 1, 0.5))
    assert np.abs(frames[1].astype(int) - render((a + b) / 2, 1, 0.5).astype(int)).max() <= 1


def test_color_overlay_only_above_threshold():
    base = np.full((4, 4), 40.0)
    suv = np.zeros((4, 4))
    suv[1, 2] = 5.0
    rgb = fusion.color_overlay(base, suv, window=400, level=40, overlay_range=(0, 5), alpha=1.0,
                                colormap="hot")
    grey = render(base, 400, 40)
    assert rgb.shape == (4, 4, 3)
    mask = np.ones((4, 4), bool)
    mask[1, 2] = False
    np.testing.assert_array_equal(rgb[mask], np.repeat(grey[mask][:, None], 3, axis=1))
    np.testing.assert_array_equal(rgb[1, 2], render(suv, 5, 2.5, colormap="hot")[1, 2])
    assert tuple(rgb[1, 2]) == (255, 255, 255)  # top of 'hot' is white


def test_label_contours_draw_only_on_the_boundary():
    image = np.zeros((9, 9))
    labels = np.zeros((9, 9), np.uint8)
    labels[2:7, 2:7] = 1
    rgb = fusion.label_contours(image, labels, window=1, level=0.5)
    coloured = np.any(rgb != rgb[..., :1], axis=-1)
    assert coloured[2, 4] and coloured[4, 2]  # boundary pixels
    assert not coloured[4, 4] and not coloured[0, 0]  # inside and outside stay grey


def test_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        fusion.alpha_blend(np.zeros((2, 2)), np.zeros((2, 2)), 1.5)
    with pytest.raises(ValueError, match="same shape"):
        fusion.checkerboard(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2D"):
        fusion.flicker_frames(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="low < high"):
        fusion.color_overlay(np.zeros((2, 2)), np.zeros((2, 2)), overlay_range=(5, 1))


@pytest.mark.slow
def test_fusion_panels_of_a_sarcoma_patient():
    """Relations the panels must satisfy exactly: the slice is the one with the most tumour
    voxels, the checkerboard is made of the CT and MR panels' own pixels (both kinds present),
    the blend is their 50/50 mix, and the PET/CT overlay is neither the CT nor the PET panel."""
    ct_case = datasets.load("sts", case="STS_003", modality="CT", progress=False)
    ct, mask = ct_case.image, ct_case.label
    mr = datasets.load("sts", case="STS_003", modality="MR_T1", progress=False).image
    pet = datasets.load("sts", case="STS_003", modality="PET", progress=False).image
    panels = fusion.fusion_panels(ct, mr=mr, pet=pet, labels=mask, suv_range=(0, 8))
    assert set(panels) == {"CT", "MR", "MR/CT blend", "MR/CT checkerboard", "PET", "PET/CT", "index", "suv_range"}
    per_slice = sitk.GetArrayViewFromImage(mask).reshape(mask.GetSize()[2], -1).sum(axis=1)
    assert panels["index"] == int(np.argmax(per_slice)) and tuple(panels["suv_range"]) == (0, 8)
    ct_p, mr_p = (panels[k].astype(int) for k in ("CT", "MR"))
    assert ct_p.shape == mr_p.shape == (ct.GetSize()[1], ct.GetSize()[0], 3)  # axial slice of the CT grid
    cb = panels["MR/CT checkerboard"].astype(int)
    # every checkerboard pixel is the CT's or the MR's (to 1 grey level: measured 99.95 % exact)
    from_ct = np.abs(cb - ct_p).max(axis=-1) <= 1
    from_mr = np.abs(cb - mr_p).max(axis=-1) <= 1
    assert np.all(from_ct | from_mr)
    differ = np.abs(ct_p - mr_p).max(axis=-1) > 1
    assert 0.3 < from_ct[differ].mean() < 0.7  # measured 0.53: half the tiles from each
    assert np.abs(panels["MR/CT blend"].astype(int) - (ct_p + mr_p) / 2).max() <= 1  # alpha 0.5, rounding
    pet_ct, pet_p = panels["PET/CT"].astype(int), panels["PET"].astype(int)
    assert np.any(pet_ct != ct_p, axis=-1).mean() > 0.5 and np.any(pet_ct != pet_p, axis=-1).mean() > 0.5
