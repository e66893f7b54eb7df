"""The napari plugin's files, without a Qt window: writers (NIfTI, NRRD, MetaImage, DICOM SEG) through
napari's own save path (npe2 writer contributions), readers of label maps, RTSTRUCT, DICOM SEG and
parent folders, and what a layer opens with (units mm, anatomical axes, CT window)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

napari = pytest.importorskip("napari", reason="the napari extra is not installed (pip install 'medlab[napari]')")

import medlab.datasets  # noqa: E402
import medlab.io  # noqa: E402
from medlab.errors import ImageIOError  # noqa: E402
from medlab.widgets.napari import _layers, _reader, _view, _writer  # noqa: E402

FORMATS = [".nii.gz", ".nii", ".nrrd", ".mha"]


@pytest.fixture(scope="module", autouse=True)
def plugins():
    """napari's plugin manager with the installed manifests (a viewer does this when it starts)."""
    from napari.plugins import _initialize_plugins

    _initialize_plugins()


def _oblique_ct() -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1500, size=(12, 20, 24)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    a = np.radians(12.0)
    img.SetDirection([np.cos(a), -np.sin(a), 0, np.sin(a), np.cos(a), 0, 0, 0, 1])
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((-101.5, 33.25, -60.0))
    lab = sitk.GetImageFromArray((arr > 600).astype(np.uint8) + (arr > 1200).astype(np.uint8))
    lab.CopyInformation(img)
    return img, lab


def _layer(layer_tuple):
    data, kwargs, kind = layer_tuple
    return getattr(napari.layers, kind.capitalize())(data, **kwargs)


def _same_geometry(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)


@pytest.mark.parametrize("suffix", FORMATS)
def test_labels_and_image_layers_saved_by_napari_reload_identical(tmp_path, suffix):
    img, lab = _oblique_ct()
    image_layer = _layer(_layers.image_to_layer(img, "ct"))
    labels_layer = _layer(_layers.image_to_layer(lab, "ct labels", "labels"))
    for layer, original, kind in ((image_layer, img, "image"), (labels_layer, lab, "labels")):
        path = tmp_path / f"{kind}{suffix}"
        written = napari.save_layers(str(path), [layer], plugin="medlab")  # napari's writer dispatch (npe2)
        assert written == [str(path)]
        back = medlab.io.read(path)
        # the voxels, re-laid on the LPS grid of the layer, and the geometry of the original
        lps = sitk.DICOMOrient(original, "LPS")
        _same_geometry(back, lps)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(lps))
        if kind == "labels":
            assert back.GetPixelID() == sitk.sitkUInt8
        # and the reader gives the same layer back: data, scale, translate, rotate
        [(data, kwargs, read_kind)] = _reader.read_layers(str(path))
        np.testing.assert_array_equal(data, layer.data)
        np.testing.assert_allclose(kwargs["scale"], layer.scale, atol=1e-5)
        np.testing.assert_allclose(kwargs["translate"], layer.translate, atol=1e-4)
        np.testing.assert_allclose(kwargs["rotate"], layer.rotate, atol=1e-6)
        assert read_kind == kind  # 'labels' in the name and two integer values: a Labels layer


def test_writer_refuses_what_it_cannot_write(tmp_path):
    img, lab = _oblique_ct()
    attrs = _layer(_layers.image_to_layer(lab, "labels", "labels")).as_layer_data_tuple()[1]
    with pytest.raises(ImageIOError, match="choose one of these extensions"):
        _writer.write_labels(str(tmp_path / "x.png"), sitk.GetArrayFromImage(lab), attrs)
    with pytest.raises(ImageIOError, match="DICOM SEG needs the DICOM series"):
        _writer.write_labels(str(tmp_path / "x.dcm"), sitk.GetArrayFromImage(lab), attrs)
    with pytest.raises(ImageIOError, match="must hold integers"):
        _writer.write_labels(str(tmp_path / "x.nrrd"), np.zeros((3, 4, 5), np.float32), attrs)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_layers_open_in_mm_with_anatomical_axes_and_a_ct_window(tmp_path):
    img, lab = _oblique_ct()
    data, kw, kind = _layers.image_to_layer(img, "ct")
    assert kw["units"] == ("mm", "mm", "mm") and kw["axis_labels"] == ("I→S", "A→P", "R→L")
    assert kw["contrast_limits"] == (-150.0, 250.0)  # HU-like data: soft tissue W400/L50, not the data range
    mr = sitk.Cast(sitk.Abs(img), sitk.sitkFloat32)
    _, kw, _ = _layers.image_to_layer(mr, "t1")
    arr = sitk.GetArrayFromImage(mr)
    assert kw["contrast_limits"] == pytest.approx(tuple(np.percentile(arr, [1, 99])), rel=0.05)  # 'auto'
    # a 2D image: mm units, y/x
    _, kw, _ = _layers.image_to_layer(img[:, :, 0], "slice")
    assert kw["units"] == ("mm", "mm") and kw["axis_labels"] == ("y", "x")
    # label files by name and content
    assert _reader.looks_like_labels("CT_mask.nii.gz", sitk.GetArrayFromImage(lab))
    assert not _reader.looks_like_labels("CT_image.nii.gz", sitk.GetArrayFromImage(lab))
    assert not _reader.looks_like_labels("seg_probability.nii.gz", np.linspace(0, 1, 60).reshape(3, 4, 5))
    assert not _reader.looks_like_labels("mask.nii.gz", sitk.GetArrayFromImage(img))  # > 255 values
    # orientation letters
    assert _view.orientation_text("I→S", "R→L", True) == "coronal   top S · bottom I · left R · right L"
    assert _view.orientation_text("A→P", "R→L", False) == "axial   top A · bottom P · left R · right L"
    assert _view.window_limits("lung") == (-1350.0, 150.0)


def test_sts_ct_and_mask_files_open_as_image_and_labels():
    files = ["STS_001/CT_image.nii.gz", "STS_001/CT_mask.nii.gz"]
    root = medlab.datasets.fetch("sts", files, progress=False)
    [(ct, kw_ct, kind_ct)] = _reader.read_layers(str(root / files[0]))
    [(mask, kw_m, kind_m)] = _reader.read_layers(str(root / files[1]))
    assert (kind_ct, kind_m) == ("image", "labels")
    assert kw_ct["contrast_limits"] == (-150.0, 250.0) and kw_ct["metadata"]["modality"] == "CT"
    assert mask.shape == ct.shape and set(np.unique(mask)) == {0, 1}
    [(_, kw_pet, _)] = _reader.read_layers(str(medlab.datasets.fetch("sts", ["STS_001/PET_image.nii.gz"],
                                                                     progress=False) / "STS_001/PET_image.nii.gz"))
    assert kw_pet["metadata"]["modality"] == "PT" and kw_pet["contrast_limits"] == (0.0, 5.0)  # SUV
    np.testing.assert_allclose(kw_m["translate"], kw_ct["translate"])


# the phantom's PatientName "PAT1" has one component; highdicom says so (the data, not us)
@pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")
def test_rtstruct_opens_as_labels_on_its_series_and_saves_as_dicom_seg(ibsi_ct, tmp_path):
    rtstruct = Path(ibsi_ct) / "dicom" / "mask" / "DCM_RS_00060.dcm"
    assert _reader.get_reader(str(rtstruct)) is _reader.read_layers
    image_tuple, labels_tuple = _reader.read_layers(str(rtstruct))  # the image is found in ../image
    assert image_tuple[2] == "image" and labels_tuple[2] == "labels"
    assert image_tuple[1]["name"] == "CT image"  # no SeriesDescription: modality and folder
    assert labels_tuple[1]["name"] == "CT image GTV-1"
    ref = medlab.io.read(Path(ibsi_ct) / "dicom" / "image")
    want = sitk.GetArrayFromImage(medlab.io.rtstruct_to_labels(rtstruct, ref))
    np.testing.assert_array_equal(labels_tuple[0], want)
    # saved as DICOM SEG on the source series, and read back through the plugin's SEG reader
    layer = _layer(labels_tuple)
    layer.metadata["dicom_source"] = image_tuple[1]["metadata"]["dicom_source"]
    layer.metadata["series_uid"] = image_tuple[1]["metadata"]["series_uid"]
    seg = tmp_path / "seg" / "gtv.dcm"
    seg.parent.mkdir()
    assert napari.save_layers(str(seg), [layer], plugin="medlab") == [str(seg)]
    with pytest.raises(ImageIOError, match="neither open in napari nor in this folder"):
        _reader.read_layers(str(seg))  # the series is elsewhere: said so
    shutil.copytree(Path(ibsi_ct) / "dicom" / "image", tmp_path / "image")
    [_, (back, kw, kind)] = _reader.read_layers(str(seg))
    assert kind == "labels" and kw["name"] == "CT image GTV-1"
    np.testing.assert_array_equal(back, want)


def test_parent_folders_open_their_one_series_or_list_several(ibsi_ct):
    [(data, kw, _)] = _reader.read_layers(str(Path(ibsi_ct) / "dicom"))  # image/ and mask/ (an RTSTRUCT)
    assert data.shape == (60, 201, 204) and kw["name"] == "CT image"
    assert kw["metadata"]["series_uid"]
    cases = medlab.datasets.cases("dcm_qa_nih")
    if not cases:
        pytest.skip("dcm_qa_nih is not in the data store")
    study = Path(medlab.datasets.load("dcm_qa_nih", case=cases[0]).paths["series"]).parent
    assert _reader.get_reader(str(study)) is _reader.read_layers
    with pytest.raises(ImageIOError, match=r"holds \d+ DICOM series; open one of them") as err:
        _reader.read_layers(str(study))
    n = len(medlab.io.list_series(study))
    assert str(err.value).count("\n  - ") == n >= 2


def test_a_dead_model_process_is_explained_and_restarted():
    import os

    from medlab.widgets.napari import _model_process

    try:
        with pytest.raises(RuntimeError, match=r'if __name__ == \\"__main__\\"|if __name__ == "__main__"'):
            _model_process._submit(os._exit, 3)  # the worker dies as with an unguarded user script
        assert _model_process._submit(abs, -2) == 2  # a fresh worker on the next call
    finally:
        _model_process.shutdown()


def test_model_layers_of_a_blank_frame_name_no_class_and_draw_no_grad_cam():
    """The napari Model runner's work (run in its model process): a classifier on a blank frame
    gives NaN probabilities (medlab.models.classify) and no Grad-CAM layer."""
    import warnings

    import medlab.models

    blank = sitk.Image(256, 256, sitk.sitkUInt8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layers, info = _layers.model_layers(medlab.models.pretrained("busi_resnet"), blank)
    assert layers == [] and list(info["probabilities"]) == ["benign", "malignant", "normal"]
    assert np.isnan(list(info["probabilities"].values())).all()
    assert any("constant image" in str(w.message) for w in caught)
