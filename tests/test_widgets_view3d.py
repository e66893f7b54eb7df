"""View3D (NiiVue through ipyniivue) without a browser: the volumes it hands to NiiVue, the
geometry of its crosshair, its links to the SliceViewer and its static picture. The browser
side (WebGL2 on SwiftShader) is in tests/test_e2e_jupyterlab.py."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("ipyniivue")

from medlab.widgets import SliceViewer, View3D  # noqa: E402
from medlab.widgets._view3d import nifti_bytes  # noqa: E402

import medlab.datasets  # noqa: E402
import medlab.display  # noqa: E402


@pytest.fixture(scope="module")
def phantom():
    return medlab.datasets.ct_phantom(shape=(24, 48, 64), seed=3)


def test_crosshair_fraction_is_the_voxel_centre_in_niivue_ras_space(phantom):
    import nibabel as nib

    img = phantom.image
    v = SliceViewer(img, unit="HU")
    w = View3D(v)
    nii = nib.Nifti1Image.from_bytes(gzip.decompress(nifti_bytes(v.image)))
    ras = nib.as_closest_canonical(nii)  # NiiVue's orthogonal RAS volume
    shape = np.array(ras.shape[:3])
    for index in ((0, 0, 0), (23, 47, 63), (5, 30, 7)):
        frac = np.array(w.crosshair_fraction(index))
        # the voxel's centre in mm (SimpleITK, LPS) -> RAS, then its position in the canonical
        # volume's voxel grid, as a fraction of the grid (voxel edges at 0 and 1)
        lps = np.array(v.image.TransformIndexToPhysicalPoint(tuple(int(i) for i in index[::-1])))
        ras_mm = lps * [-1, -1, 1]
        vox = np.linalg.inv(ras.affine) @ np.append(ras_mm, 1.0)
        np.testing.assert_allclose(frac, (vox[:3] + 0.5) / shape, atol=1e-6)


def test_links_follow_the_viewer(phantom):
    v = SliceViewer(phantom.image, unit="HU", overlay=phantom.labels, window=400, level=40)
    w = View3D(v)
    assert w.labels == ("overlay",) and len(w.nv.volumes) == 2
    assert (w.nv.volumes[0].cal_min, w.nv.volumes[0].cal_max) == (-160.0, 240.0)
    v.set_window_level(1500, -600)
    assert (w.nv.volumes[0].cal_min, w.nv.volumes[0].cal_max) == (-1350.0, 150.0)
    v.set_slice(5)
    assert w.crosshair_index[0] == 5 and w.nv.scene.crosshair_pos == w.crosshair_fraction(w.crosshair_index)
    v.set_slice(20, "coronal")
    assert w.crosshair_index[1] == 20
    v.cursor = {"index": (3, 4, 5), "point_mm": v.point_mm((3, 4, 5)), "value": 0}  # the pointer on the picture
    assert w.crosshair_index == (3, 4, 5)
    labels = nifti_bytes(sitk.Cast(phantom.labels > 0, sitk.sitkUInt8))
    assert w.nv.volumes[1].data[:2] == labels[:2] == b"\x1f\x8b"  # gzipped NIfTI

    # the other way: a click in NiiVue (its world mm are RAS) moves the viewer to that slice
    def niivue_click(index):
        lps = v.point_mm(index)
        w.nv._handle_custom_msg({"event": "location_change",
                                 "data": {"mm": [-lps[0], -lps[1], lps[2]], "ax_cor_sag": 0}}, [])

    niivue_click((6, 30, 33))  # the viewer shows coronal slice 20
    assert w.crosshair_index == (6, 30, 33) and (v.axis, v.index) == ("coronal", 30)
    v.set_slice(9, "axial")
    niivue_click((14, 2, 50))
    assert w.crosshair_index == (14, 2, 50) and (v.axis, v.index) == ("axial", 14)
    assert w.nv.scene.crosshair_pos == w.crosshair_fraction((14, 2, 50))

    # closed: NiiVue's widget too (a VBox leaves its children open), and the links are cut
    w.close()
    assert w.nv.comm is None and w.comm is None
    v.set_window_level(400, 40)
    v.set_slice(3, "axial")
    assert (w.nv.volumes[0].cal_min, w.nv.volumes[0].cal_max) == (-1350.0, 150.0) and w.crosshair_index[0] == 14
    w.close()  # twice: nothing left to cut


def test_pet_on_ct_and_the_static_planes(phantom):
    v = SliceViewer(phantom.image, unit="HU", overlay=phantom.labels, window=400, level=40)
    pet = sitk.Shrink(sitk.Cast(phantom.image, sitk.sitkFloat32), [2, 2, 2])  # another grid, same space
    w = View3D(v, overlay=pet, overlay_colormap="warm", overlay_opacity=0.5)
    assert [vol.colormap for vol in w.nv.volumes] == ["gray", "warm", "red"]
    w.set_crosshair_index((12, 24, 32))
    planes = w.planes()
    arr = sitk.GetArrayFromImage(phantom.image)
    lab = sitk.GetArrayFromImage(phantom.labels)
    axial = medlab.display.render(arr[12], 400, 40, overlay=(lab[12] > 0).astype(np.uint8), overlay_mode="contour")
    np.testing.assert_array_equal(planes[:48, :64], axial if axial.ndim == 3 else np.dstack([axial] * 3))
    # coronal and sagittal at their true proportions (2.5 mm slices over 2 mm pixels here)
    sx, sy, sz = phantom.image.GetSpacing()
    assert planes.shape[0] == max(48, round(24 * sz / sx), round(24 * sz / sy))
    from PIL import Image

    png = Image.open(io.BytesIO(w.planes_png()))
    assert png.size == (planes.shape[1], planes.shape[0])
    assert "image/png" in w._repr_mimebundle_()


def test_view3d_checks_its_arguments(phantom):
    v = SliceViewer(phantom.image)
    with pytest.raises(TypeError, match="`viewer` must be a SliceViewer"):
        View3D(phantom.image)
    with pytest.raises(ValueError, match="`viewer` must show a 3D image"):
        View3D(SliceViewer(np.zeros((8, 8), np.float32)))
    with pytest.raises(TypeError, match="`overlay` must be a SimpleITK.Image"):
        View3D(v, overlay=np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="`overlay_opacity`"):
        View3D(v, overlay_opacity=2)
    with pytest.raises(ValueError, match="`height`"):
        View3D(v, height=5)
    with pytest.raises(ValueError, match="`pixel_ratio`"):
        View3D(v, pixel_ratio=0)
    pet = sitk.Image([8, 8, 4], sitk.sitkFloat32)
    with pytest.raises(ValueError, match="`overlay_colormap` must be a NiiVue colour map"):
        View3D(v, overlay=pet, overlay_colormap="no-such-map")
    for bad in ((1,), "x", (float("nan"), 0), (0, 1), (100, float("inf"))):
        with pytest.raises(ValueError, match=r"`overlay_window` must be \(window, level\)"):
            View3D(v, overlay=pet, overlay_window=bad)
    with pytest.raises(ValueError, match="`overlay_window` is the window of an `overlay`"):
        View3D(v, overlay_window=(100, 0))
    assert View3D(v, overlay=pet, overlay_colormap="Warm", overlay_window=(4, 2)).overlay_window == (4.0, 2.0)
    for bad in (0, 1.5, float("nan"), "half", True):
        with pytest.raises(ValueError, match="`rotate_resolution`"):
            View3D(v, rotate_resolution=bad)
    assert View3D(v, pixel_ratio=0.5).nv.opts.force_device_pixel_ratio == 0.5
    w = View3D(v)
    with pytest.raises(ValueError, match="outside the image"):
        w.set_crosshair_index((99, 0, 0))


def test_smooth_drags_wrap_ipyniivue_javascript(phantom, tmp_path, monkeypatch):
    """View3D's NiiVue is ipyniivue's own JavaScript module with the smooth-drag wrapper appended
    (it reaches the module's NiiVue instance and wraps its default export); the browser side
    (half resolution while rotating, full after) is checked in tests/test_e2e_jupyterlab.py."""
    import pathlib
    import shutil
    import subprocess

    import ipyniivue

    import medlab.widgets._view3d as v3d

    cls = v3d._niivue_class()
    assert issubclass(cls, ipyniivue.NiiVue) and cls is not ipyniivue.NiiVue  # the installed bundle is known
    source = (pathlib.Path(ipyniivue.__file__).parent / "static" / "widget.js").read_text(encoding="utf-8")
    cut = source.rindex("export{")
    assert cls._esm.startswith(source[:cut]) and cls._esm.rstrip().endswith("export { __medlabView as default };")
    tail = cls._esm[cut:]
    assert "INSTANCE" not in tail and "EXPORT" not in tail and tail.count("export") == 1
    assert v3d._smooth_esm("const a = 1;\nexport{a as default};") is None  # no NiiVue instance: not wrapped
    if shutil.which("node"):  # the wrapped module parses
        mod = tmp_path / "widget.mjs"
        mod.write_text(cls._esm, encoding="utf-8")
        done = subprocess.run(["node", "--check", str(mod)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]

    v = SliceViewer(phantom.image, unit="HU")
    w = View3D(v)
    assert isinstance(w.nv, cls) and w.nv._rotate_resolution == 0.5 and "_rotate_resolution" in w.nv.keys
    assert w.nv.opts.is_corner_orientation_text and w.nv.opts.is_radiological_convention
    assert View3D(v, rotate_resolution=1).nv._rotate_resolution == 1.0

    # an ipyniivue whose bundle the wrapper does not know: a warning, and ipyniivue's own widget
    monkeypatch.setattr(v3d, "_smooth_esm", lambda source: None)
    with pytest.warns(RuntimeWarning, match="NiiVue draws on every pointer event"):
        assert v3d._niivue_class.__wrapped__() is ipyniivue.NiiVue
    monkeypatch.setattr(v3d, "_niivue_class", lambda: ipyniivue.NiiVue)
    assert not View3D(v).nv.has_trait("_rotate_resolution")


def test_the_viewers_notice_explains_a_black_3d_view():
    nan = SliceViewer(np.full((4, 8, 8), np.nan, np.float32))
    w = View3D(nan)
    assert w.children[0] is w._notice and "no finite values" in w._notice.value and w.children[1] is w.nv
    ok = View3D(SliceViewer(np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)))
    assert list(ok.children) == [ok.nv] and ok._notice.value == ""


@pytest.mark.parametrize("scale", [3e38, 1e300])
def test_huge_values_reach_niivue_in_its_float32_range(scale):
    """NiiVue computes in float32 on the GPU: a float32 image near +-3e38 or a float64 one near
    +-1e300 showed a black view (seen in Chromium). The values and the display range go to NiiVue
    divided by one power of ten: the same picture."""
    import nibabel as nib

    ramp = np.linspace(-1, 1, 4 * 8 * 8).reshape(4, 8, 8) * scale
    v = SliceViewer(ramp.astype(np.float32) if scale < 1e38 else ramp)
    w = View3D(v)
    data = nib.Nifti1Image.from_bytes(gzip.decompress(w.nv.volumes[0].data)).get_fdata()
    divisor = w._divisor
    assert 1e5 < np.abs(data).max() <= 1e6 and divisor == 10.0 ** (int(np.ceil(np.log10(np.abs(ramp).max()))) - 6)
    np.testing.assert_allclose(np.sort(data.ravel()), np.sort(ramp.ravel() / divisor), rtol=1e-6)
    low, high = (v.level - v.window / 2) / divisor, (v.level + v.window / 2) / divisor
    assert (w.nv.volumes[0].cal_min, w.nv.volumes[0].cal_max) == pytest.approx((low, high), rel=1e-9)
    v.set_window_level(v.window / 2, v.level)  # the link divides too
    assert w.nv.volumes[0].cal_max == pytest.approx((v.level + v.window / 2) / divisor, rel=1e-9)
    small = View3D(SliceViewer(np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 8, 8) * 1e6))
    assert small._divisor == 1.0
