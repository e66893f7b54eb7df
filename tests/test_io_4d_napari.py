"""Orientation in napari: the reader's layer puts an oblique volume's voxels where medlab.io does.

A CT rotated by 15 degrees (an oblique acquisition) lost its rotation in the napari reader before
(31 mm at mid-volume, 72 mm at a corner). A landmark (one bright voxel) must sit at the same mm
position in ``medlab.io.read`` and in the napari layer's data-to-world transform; so must a 4D
image's voxels. No Qt: napari layers are built without a viewer.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

napari = pytest.importorskip("napari", reason="the napari extra is not installed (pip install 'medlab[napari]')")

import medlab.io  # noqa: E402
from medlab.io._volumes import geometry_4d  # noqa: E402
from medlab.widgets.napari import _layers, _reader  # noqa: E402


def _rotated_ct(degrees_z: float, degrees_x: float = 0.0) -> tuple[sitk.Image, tuple[int, int, int]]:
    arr = np.full((20, 40, 50), -1000, np.int16)  # (z, y, x)
    landmark = (13, 31, 7)  # index (z, y, x)
    arr[landmark] = 3000
    img = sitk.GetImageFromArray(arr)
    a, b = np.radians(degrees_z), np.radians(degrees_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    img.SetDirection((rz @ rx).ravel().tolist())
    img.SetSpacing((0.8, 0.9, 2.5))
    img.SetOrigin((-120.0, 35.5, -60.25))
    return img, landmark


def _world_of_brightest(data, kwargs) -> np.ndarray:
    layer = napari.layers.Image(data, **{k: v for k, v in kwargs.items() if k != "metadata"})
    index = np.unravel_index(np.argmax(data), data.shape)
    return np.asarray(layer.data_to_world(index))


# napari says so when a rotation tilts the slicing axis (double oblique): its 2D view then
# leaves out the out-of-slice part, while its data-to-world transform (tested) stays exact.
@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")
@pytest.mark.parametrize("angles", [(15.0, 0.0), (15.0, -20.0), (165.0, 0.0)])
def test_landmark_at_the_same_mm_in_medlab_and_napari(angles, tmp_path):
    img, landmark = _rotated_ct(*angles)
    path = medlab.io.write(img, tmp_path / "oblique.nii.gz")
    expected = medlab.io.read(path).TransformIndexToPhysicalPoint(landmark[::-1])  # (x, y, z) mm
    [(data, kwargs, _)] = _reader.read_layers(str(path))
    world = _world_of_brightest(data, kwargs)  # napari world: (z, y, x) mm
    np.testing.assert_allclose(world[::-1], expected, atol=1e-3)
    # and the far corner of the volume, where a dropped rotation is largest
    corner = np.array(data.shape) - 1
    layer = napari.layers.Image(data, **{k: v for k, v in kwargs.items() if k != "metadata"})
    corner_world = np.asarray(layer.data_to_world(corner))[::-1]
    reoriented = sitk.DICOMOrient(medlab.io.read(path), "LPS")
    np.testing.assert_allclose(corner_world, reoriented.TransformIndexToPhysicalPoint([int(v) for v in corner[::-1]]), atol=1e-3)


def test_4d_image_layer_keeps_the_3d_geometry():
    img, landmark = _rotated_ct(15.0)
    arr = sitk.GetArrayFromImage(img)
    four = geometry_4d(sitk.GetImageFromArray(np.stack([arr, arr]), isVector=False), img.GetSpacing(), img.GetOrigin(), img.GetDirection())
    data, kwargs, _ = _layers.image_to_layer(four, "epi")
    assert data.shape == (2, 20, 40, 50)
    world = _world_of_brightest(data, kwargs)
    np.testing.assert_allclose(world[1:][::-1], img.TransformIndexToPhysicalPoint(landmark[::-1]), atol=1e-3)
    # the layer back to an image (one volume) keeps the rotation
    back = _layers.layer_to_image(data[0], kwargs["scale"], kwargs["translate"], kwargs["rotate"])
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-9)
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-9)
