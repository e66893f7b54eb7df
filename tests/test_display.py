"""medlab.display: the one renderer (window/level LUT, overlays, PNG, slices, imshow)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medlab import display, enhance


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def ct_slice():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :80]
    hu = np.full((64, 80), -1000.0)
    hu[((yy - 32) / 28) ** 2 + ((xx - 40) / 36) ** 2 < 1] = 40.0
    hu[((yy - 30) / 10) ** 2 + ((xx - 50) / 8) ** 2 < 1] = 700.0
    return (hu + rng.normal(0, 20, hu.shape)).astype(np.int16)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64])
def test_to_uint8_exact(dtype):
    hu = np.array([[-1000, -160, -60, 40, 140, 240, 3000]], dtype=dtype)
    # 127.5 and 63.75 round half up: 128 and 64
    expected = np.array([[0, 0, 64, 128, 191, 255, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(display.to_uint8(hu, 400, 40), expected)


def test_lut_path_equals_float_path_for_every_value():
    values = np.arange(-2048, 2048, dtype=np.int16).reshape(64, 64)
    for window, level in [(400, 40), (1500, -600), (81, 40.5), (1, 0)]:
        lut_path = display.to_uint8(values, window, level)
        float_path = display.to_uint8(values.astype(np.float64), window, level)
        np.testing.assert_array_equal(lut_path, float_path)
        # ... and both are the enhance window map, quantised once (round half up)
        low, high = enhance.window_bounds(window, level)
        unit = np.clip((values - low) / (high - low), 0, 1)
        np.testing.assert_array_equal(lut_path, np.floor(unit * 255 + 0.5))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, bool])
def test_to_uint8_small_integer_types(dtype):
    arr = np.array([[0, 1, 100]]).astype(dtype)
    expected = np.floor(np.clip(arr.astype(float) / 100, 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(display.to_uint8(arr, 100, 50), expected)


def test_to_uint8_presets_and_auto(ct_slice):
    np.testing.assert_array_equal(
        display.to_uint8(ct_slice, preset="abdomen"), display.to_uint8(ct_slice, 400, 50)
    )
    w, lev = enhance.auto_window(ct_slice)
    np.testing.assert_array_equal(display.to_uint8(ct_slice), display.to_uint8(ct_slice, w, lev))
    nan = np.array([[np.nan, 0.0, 1.0]])
    np.testing.assert_array_equal(display.to_uint8(nan, 1, 0.5), [[0, 0, 255]])


def test_to_uint8_bad_arguments(ct_slice):
    with pytest.raises(ValueError, match="`slice2d` must be 2D.*slice_of"):
        display.to_uint8(np.zeros((2, 4, 4)), 400, 40)
    with pytest.raises(ValueError, match="`window`"):
        display.to_uint8(ct_slice, -5, 40)
    with pytest.raises(ValueError, match="did you mean 'brain'"):
        display.to_uint8(ct_slice, preset="brian")


@pytest.mark.parametrize("encoder", ["auto", "cv2", "pillow"])
def test_png_decodes_to_to_uint8(ct_slice, encoder):
    png = display.png_bytes(ct_slice, 400, 40, encoder=encoder)
    np.testing.assert_array_equal(_decode(png), display.to_uint8(ct_slice, 400, 40))


@pytest.mark.parametrize("encoder", ["cv2", "pillow"])
def test_png_rgb_overlay_and_colormap(ct_slice, encoder):
    labels = np.zeros(ct_slice.shape, np.uint8)
    labels[20:40, 30:50] = 1
    labels[45:50, 10:20] = 3
    png = display.png_bytes(ct_slice, 400, 40, overlay=labels, encoder=encoder)
    decoded = _decode(png)
    assert decoded.shape == (*ct_slice.shape, 3)
    np.testing.assert_array_equal(decoded, display.render(ct_slice, 400, 40, overlay=labels))
    cm = _decode(display.png_bytes(ct_slice, 400, 40, colormap="viridis", encoder=encoder))
    np.testing.assert_array_equal(cm, display.render(ct_slice, 400, 40, colormap="viridis"))


@pytest.mark.parametrize("encoder", ["cv2", "pillow"])
def test_encode_is_the_one_encoder(ct_slice, encoder):
    rgb = display.render(ct_slice, 400, 40, colormap="viridis")
    np.testing.assert_array_equal(_decode(display.encode(rgb, encoder=encoder)), rgb)
    data = display.encode(rgb, format="jpeg", quality=95, encoder=encoder)
    assert data[:3] == b"\xff\xd8\xff"  # a JPEG
    jpeg = np.asarray(Image.open(io.BytesIO(data)))
    assert jpeg.shape == rgb.shape and np.abs(jpeg.astype(int) - rgb).mean() < 12  # lossy: 6.7 on this noisy slice
    with pytest.raises(ValueError, match=r"`pixels` must be \(M, N\) or \(M, N, 3\) uint8"):
        display.encode(ct_slice)
    with pytest.raises(ValueError, match="`quality`"):
        display.encode(rgb, format="jpeg", quality=0)
    with pytest.raises(ValueError, match="'webp'"):
        display.encode(rgb, format="webp")


def test_public_compositing_helpers_match_render():
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 2
    edge = display.boundary(labels)
    assert edge.sum() == 12 and not edge[3:5, 3:5].any()  # the 4x4 square's outline
    pal = display.overlay_palette(2, {2: (1, 2, 3)})
    grey = np.full((8, 8), 100, np.uint8)
    drawn = display.render(grey, 255.0, 127.5, overlay=labels, overlay_mode="contour", overlay_colors={2: (1, 2, 3)})
    assert tuple(pal[2]) == (1, 2, 3) and (drawn[edge] == (1, 2, 3)).all()


def test_overlay_fill_and_contour_exact():
    grey = np.full((6, 6), 100, np.uint8)  # window 255 / level 127.5 keeps 0..255 as is
    labels = np.zeros((6, 6), np.uint8)
    labels[1:5, 1:5] = 2
    fill = display.render(grey, 255, 127.5, overlay=labels, overlay_alpha=0.5)
    colour = np.array([255, 127, 14])  # tab10 colour of label 2
    np.testing.assert_array_equal(fill[2, 2], np.floor(0.5 * 100 + 0.5 * colour + 0.5))
    np.testing.assert_array_equal(fill[0, 0], [100, 100, 100])
    contour = display.render(
        grey, 255, 127.5, overlay=labels, overlay_mode="contour", overlay_colors={2: (0, 0, 255)}
    )
    ring = np.zeros((6, 6), bool)
    ring[1:5, 1:5] = True
    ring[2:4, 2:4] = False
    np.testing.assert_array_equal(np.all(contour == [0, 0, 255], axis=-1), ring)
    np.testing.assert_array_equal(contour[~ring], np.full((int((~ring).sum()), 3), 100))


def test_overlay_bad_arguments(ct_slice):
    with pytest.raises(ValueError, match=r"`overlay` \(shape \(4, 4\)\).*`slice2d` \(shape \(64, 80\)\)"):
        display.render(ct_slice, 400, 40, overlay=np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="did you mean 'contour'"):
        display.render(ct_slice, 400, 40, overlay=ct_slice > 0, overlay_mode="contours")
    with pytest.raises(ValueError, match="`overlay_alpha`"):
        display.render(ct_slice, 400, 40, overlay=ct_slice > 0, overlay_alpha=2)
    with pytest.raises(ValueError, match="did you mean 'viridis'"):
        display.render(ct_slice, 400, 40, colormap="viridiss")
    with pytest.raises(ValueError, match="did you mean 'pillow'"):
        display.png_bytes(ct_slice, 400, 40, encoder="pil")


@pytest.fixture(scope="module")
def volume():
    """(z, y, x) = (5, 6, 7) volume whose value encodes its index: 100 z + 10 y + x."""
    z, y, x = np.indices((5, 6, 7))
    return (100 * z + 10 * y + x).astype(np.int16)


@pytest.mark.parametrize(
    ("axis", "index", "expected"),
    [
        ("axial", 2, lambda v: v[2]),
        ("coronal", 3, lambda v: v[::-1, 3, :]),  # superior (high z) on top
        ("sagittal", 4, lambda v: v[::-1, :, 4]),
    ],
)
def test_slice_of_numpy_and_sitk_agree(volume, axis, index, expected):
    from_numpy = display.slice_of(volume, index, axis)
    img = sitk.GetImageFromArray(volume)
    img.SetSpacing((0.5, 0.7, 2.5))
    from_sitk = display.slice_of(img, index, axis)
    assert isinstance(from_sitk, sitk.Image) and from_sitk.GetDimension() == 2
    np.testing.assert_array_equal(from_numpy, expected(volume))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(from_sitk), from_numpy)
    if axis == "coronal":
        assert from_numpy[0, 0] == 400 + 30  # top row is the most superior slice
        assert from_sitk.GetSpacing() == (0.5, 2.5)


def test_slice_of_reorients_to_lps(volume):
    img = sitk.GetImageFromArray(volume)
    flipped = sitk.Flip(img, [True, False, True])  # same anatomy stored in another order
    assert flipped.GetDirection() != img.GetDirection()
    for axis, index in [("axial", 1), ("coronal", 2), ("sagittal", 3)]:
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(display.slice_of(flipped, index, axis)),
            sitk.GetArrayFromImage(display.slice_of(img, index, axis)),
        )


def test_slice_of_bad_arguments(volume):
    with pytest.raises(ValueError, match=r"`index` must be in \[0, 4\]"):
        display.slice_of(volume, 5)
    with pytest.raises(ValueError, match="did you mean 'sagittal'"):
        display.slice_of(volume, 0, "sagital")
    with pytest.raises(ValueError, match="3D"):
        display.slice_of(volume[0], 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_numpy_and_sitk_render_the_same(ct_slice, ndim):
    if ndim == 2:
        arr, img = ct_slice, sitk.GetImageFromArray(ct_slice)
    else:
        vol = np.stack([ct_slice - 100, ct_slice, ct_slice + 100]).astype(np.int16)
        arr, img = display.slice_of(vol, 1), display.slice_of(sitk.GetImageFromArray(vol), 1)
    labels = (arr > 0).astype(np.uint8)
    for kwargs in [{"preset": "bone"}, {"overlay": labels, "overlay_mode": "contour"}, {}]:
        assert display.png_bytes(arr, **kwargs) == display.png_bytes(img, **kwargs)


def test_imshow_extent_in_mm(ct_slice):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    im = display.imshow(ax, ct_slice, 400, 40, spacing=(0.5, 2.0))
    rows, cols = ct_slice.shape
    assert im.get_extent() == [-1.0, (cols - 0.5) * 2.0, (rows - 0.5) * 0.5, -0.25]
    np.testing.assert_array_equal(np.asarray(im.get_array()), display.to_uint8(ct_slice, 400, 40))
    img = sitk.GetImageFromArray(ct_slice)
    img.SetSpacing((2.0, 0.5))
    assert display.imshow(ax, img, 400, 40).get_extent() == im.get_extent()


def test_largest_slice_per_axis_and_orientation():
    vol = np.zeros((6, 7, 8), np.uint8)
    vol[1, 2:5, 1:4] = 1        # 9 voxels on axial slice 1
    vol[4, 1:6, 2:7] = 1        # 25 voxels on axial slice 4: the largest
    assert display.largest_slice(vol) == 4
    # coronal counts along y (rows 2..4 hold 3 + 5 voxels, rows 1 and 5 only 5): first of the largest
    assert display.largest_slice(vol, "coronal") == 2
    assert display.largest_slice(vol, "sagittal") == 2  # columns 2, 3: 3 + 5 voxels
    img = sitk.GetImageFromArray(vol)
    flipped = sitk.Flip(img, [False, False, True])  # the same mask stored superior first
    flipped.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    assert display.largest_slice(flipped) == display.largest_slice(img) == 4
    np.testing.assert_array_equal(sitk.GetArrayFromImage(display.slice_of(flipped, 4)), vol[4])
    with pytest.raises(ValueError, match="`mask` has no foreground"):
        display.largest_slice(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="`mask` must be 3D"):
        display.largest_slice(vol[0])
    with pytest.raises(ValueError, match="`axis`"):
        display.largest_slice(vol, "oblique")


def test_outline_in_mm_on_imshow_axes():
    from matplotlib.figure import Figure

    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:8] = 1  # rows 2..5, columns 3..7
    ax = Figure().add_subplot()
    display.imshow(ax, mask, 1, 0.5, spacing=(0.5, 2.0))
    lines = display.outline(ax, mask, color="red", spacing=(0.5, 2.0))
    xy = np.concatenate([p.vertices for p in lines.get_paths()])
    # the 0.5 iso-line runs half-way between inside and outside pixel centres, in mm
    np.testing.assert_allclose(xy.min(axis=0), [2.5 * 2.0, 1.5 * 0.5])
    np.testing.assert_allclose(xy.max(axis=0), [7.5 * 2.0, 5.5 * 0.5])
    img = sitk.GetImageFromArray(mask)
    img.SetSpacing((2.0, 0.5))
    same = display.outline(ax, img)
    np.testing.assert_allclose(np.concatenate([p.vertices for p in same.get_paths()]), xy)
    assert display.outline(ax, np.zeros((4, 4))) is None
    with pytest.raises(ValueError, match="`mask` must be 2D"):
        display.outline(ax, np.zeros((2, 4, 4)))


def test_import_is_light_and_ui_free():
    code = (
        "import sys, medlab.display, medlab.enhance, medlab.filters, medlab.metrics; "
        "bad = [m for m in ('ipywidgets', 'matplotlib', 'IPython', 'cv2') if m in sys.modules]; "
        # skimage.restoration's package is a lazy_loader stub (imported at module top since
        # 982c9c5); what costs is its submodules, which must stay unloaded
        "bad += [m for m in sys.modules if m.startswith('skimage.restoration.')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
