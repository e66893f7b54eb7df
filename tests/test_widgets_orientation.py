"""Orientation in the Jupyter viewer: R/L, A/P, S/I labels at the picture's edges, and an oblique
volume shown in its own planes with a note while the read-out gives true physical positions."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from medlab.widgets import SliceViewer

import medlab.io


def _oblique_volume(tmp_path, degrees: float = 15.0):
    """A volume stored right-to-left and anterior-to-posterior reversed (RAS storage), rotated by
    ``degrees`` about the patient's z axis, with one bright landmark voxel; written and read
    back through medlab.io (NIfTI)."""
    arr = np.zeros((20, 30, 40), np.int16)
    landmark = (5, 7, 31)  # numpy (z, y, x) of the stored volume
    arr[landmark] = 1000
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.9, 2.0))
    img.SetOrigin((12.5, -30.0, 47.0))
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    img.SetDirection(tuple((rot @ np.diag([-1.0, -1.0, 1.0])).ravel()))
    path = medlab.io.write(img, tmp_path / "oblique.nii.gz")
    return medlab.io.read(path), landmark


def test_oblique_volume_landmark_has_the_same_mm_in_medlab_io_and_the_readout(tmp_path):
    img, landmark = _oblique_volume(tmp_path)
    expected = np.array(img.TransformIndexToPhysicalPoint(tuple(int(i) for i in landmark[::-1])))
    v = SliceViewer(img, unit="HU")
    assert v.obliquity_deg == pytest.approx(15.0, abs=1e-3)
    assert "Oblique acquisition (15.0°" in v.notice and "not resampled" in v.notice
    assert v._notice in v.children
    idx = np.unravel_index(int(np.argmax(v.array)), v.array.shape)  # the landmark in the shown volume
    v.set_slice(int(idx[0]), "axial")
    row, col = v.pixel_of_index(idx)
    v.canvas.dispatch({"event": "move", "row": row, "col": col})
    np.testing.assert_allclose(v.cursor["point_mm"], expected, atol=1e-6)
    assert v.cursor["value"] == 1000
    assert "({:.1f}, {:.1f}, {:.1f}) mm".format(*expected) in v._readout.value
    # the labels: the landmark lies on the patient's right (LPS: x below the centre's) and
    # posterior (y above it), and shows on the side labelled R, in the half labelled P
    top, bottom, left, right = v.canvas.orientation
    assert (top, bottom, left, right) == ("A", "P", "R", "L")
    centre = np.array(img.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in img.GetSize()]))
    assert expected[0] < centre[0] and expected[1] > centre[1]
    rows, cols = v.canvas.shape
    assert col < cols / 2 and row > rows / 2


def test_orientation_labels_follow_the_view_and_2d_has_none():
    v = SliceViewer(np.zeros((6, 8, 10), np.float32) + np.arange(10, dtype=np.float32))
    assert v.canvas.orientation == ["A", "P", "R", "L"] and v.obliquity_deg == 0.0
    assert "Oblique" not in v.notice
    v.set_slice(2, "coronal")
    assert v.canvas.orientation == ["S", "I", "R", "L"]
    v.set_slice(2, "sagittal")
    assert v.canvas.orientation == ["S", "I", "A", "P"]
    assert SliceViewer(np.arange(64, dtype=np.float32).reshape(8, 8)).canvas.orientation == []
