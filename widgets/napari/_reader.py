"""napari reader: DICOM series folders (or a folder above one), NIfTI, NRRD, MetaImage, single DICOM
files, RTSTRUCT and DICOM SEG, via medlab.io."""

from __future__ import annotations

import os
from pathlib import Path

from medlab.errors import ImageIOError

from ._layers import image_to_layer

__all__ = ["get_reader", "looks_like_labels", "read_layers"]

_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _has_dicom(folder: Path, depth: int, limit: int = 50) -> bool:
    """DICOM files directly in ``folder`` (depth 0), or in its subfolders down to ``depth``
    (the first ``limit`` entries of ``folder``, 10 of each subfolder: a quick look, not a scan)."""
    try:
        entries = sorted(folder.iterdir())[:limit]
    except OSError:
        return False
    if any(f.is_file() and (f.suffix.lower() == ".dcm" or _is_dicom(f)) for f in entries):
        return True
    return depth > 0 and any(f.is_dir() and _has_dicom(f, depth - 1, 10) for f in entries)


def _accepts(path: str) -> bool:
    p = Path(path)
    if p.is_dir():
        return _has_dicom(p, 2)
    name = p.name.lower()
    return p.is_file() and (name.endswith(_SUFFIXES) or _is_dicom(p))


def get_reader(path):
    """The reader function for ``path`` (a str, or a list of one), or None if medlab does not
    read it (napari then asks other plugins)."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    path = os.fspath(path)
    return read_layers if _accepts(path) else None


_LABEL_WORDS = ("mask", "label", "seg", "gtv", "roi")


def looks_like_labels(name: str, data) -> bool:
    """A label map: ``mask``, ``label``, ``seg``, ``gtv`` or ``roi`` in the file name, integer
    values (an integer dtype, or floats that are all whole numbers), at most 255 distinct."""
    import numpy as np

    if not any(w in name.lower() for w in _LABEL_WORDS):
        return False
    arr = np.asarray(data)
    if arr.ndim < 2 or arr.dtype.kind not in "iuf":
        return False
    sample = arr[tuple(slice(None, None, max(1, n // 64)) for n in arr.shape)]
    for part in (sample, arr):  # the sample first: a CT is refused without scanning it all
        if arr.dtype.kind == "f" and not np.all(part == np.round(part)):
            return False
        if len(np.unique(part)) > 255:
            return False
    return True


def _name(p: Path) -> str:
    name = p.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _dicom_header(p: Path):
    import pydicom

    return pydicom.dcmread(p, stop_before_pixels=True, force=True)


def _series_lines(folder: Path, series: list[dict]) -> list[str]:
    def size(s) -> str:
        known = [str(n) for n in (s.get("size") or ()) if n]
        return f", {'x'.join(known)} voxels" if known else ""

    return [f"{Path(s['folders'][0]) if len(s['folders']) == 1 else folder}: {s.get('modality') or '?'}, "
            f"{s.get('series_description') or 'no description'}{size(s)}, {s.get('number_of_files')} files"
            + (f", {s['volumes']} volumes" if (s.get("volumes") or 1) > 1 else "") for s in series]


def _several_series(folder: Path, series: list[dict]) -> ImageIOError:
    lines = [f"  - {line}" for line in _series_lines(folder, series)]
    return ImageIOError(folder, f"this folder holds {len(series)} DICOM series; open one of them "
                        "(File > Open Folder... on its folder):\n" + "\n".join(lines))


def series_choices(folder: Path, series: list[dict]) -> list[tuple[str, dict]]:
    """One line per series for a picker (folder, modality, description, size, files) with its
    :func:`medlab.io.list_series` entry."""
    return list(zip(_series_lines(folder, series), series, strict=True))


def series_source(folder: Path, s: dict) -> tuple[Path, str]:
    """What to read for one :func:`medlab.io.list_series` entry: its folder (or ``folder`` when its
    files are spread over several) and its SeriesInstanceUID."""
    return (Path(s["folders"][0]) if len(s["folders"]) == 1 else folder), s["series_instance_uid"]


def _dicom_source(p: Path) -> tuple[Path, str | None] | None:
    """The folder (or file) to read and the series UID, for a folder that may only hold series
    in subfolders. Several series: with a napari viewer, a 'Series' dock lists them to choose
    from and None is returned; without one, an error lists them."""
    import medlab.io

    if not p.is_dir() or _has_dicom(p, 0):
        return p, None
    series = medlab.io.list_series(p)
    if not series:
        raise ImageIOError(p, "no DICOM image series in this folder or its subfolders")
    if len(series) > 1:
        from ._view import current_viewer

        viewer = current_viewer()
        if viewer is None:
            raise _several_series(p, series)
        from ._widgets import SeriesPickerWidget

        viewer.window.add_dock_widget(SeriesPickerWidget(viewer, p, series), name=f"Series in {p.name}",
                                      area="right")
        return None
    return series_source(p, series[0])


def _image_layer(p: Path, series_uid: str | None = None) -> tuple:
    """One image (or label) layer of ``p``: named after the DICOM series description (else the
    modality and folder name, else the file name), CT windowed, label maps as Labels."""
    return _read_image_layer(p, series_uid)[0]


def _read_image_layer(p: Path, series_uid: str | None = None) -> tuple[tuple, object]:
    """:func:`_image_layer` and the ``sitk.Image`` read."""
    import medlab.io

    from ._layers import guess_modality

    img = medlab.io.read(p, series_uid=series_uid) if series_uid else medlab.io.read(p)
    meta = {"path": str(p)}
    name = _name(p)
    modality = None
    is_dicom = p.is_dir() or _is_dicom(p)
    if is_dicom:
        info = medlab.io.metadata(p, identifying=True, series_uid=series_uid)
        modality = info.get("modality")
        described = info.get("series_description")
        name = described or (f"{modality} {name}" if modality else name)
        meta.update(modality=modality, series_uid=info.get("series_instance_uid"),
                    series_description=described, dicom_source=str(p))
    if not is_dicom and looks_like_labels(p.name, _array_view(img)):
        return image_to_layer(img, name, "labels", metadata=meta), img
    modality = modality or guess_modality(p.name)
    return image_to_layer(img, name, modality=modality, metadata=meta), img


def _array_view(img):
    import SimpleITK as sitk

    return sitk.GetArrayViewFromImage(img)


def _referenced_series(ds, modality: str) -> str | None:
    try:
        if modality == "RTSTRUCT":
            ref = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
            return str(ref.RTReferencedSeriesSequence[0].SeriesInstanceUID)
        return str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID)
    except (AttributeError, IndexError, KeyError):
        return None


def _structure_layers(p: Path, modality: str) -> list[tuple]:
    """An RTSTRUCT or DICOM SEG as a Labels layer on the image series it references (found in an
    open layer, else beside the file: its folder or the folder above), with that image too when
    it is not open yet."""
    import medlab.io

    from . import _view
    from ._layers import layer_meta_to_image

    uid = _referenced_series(_dicom_header(p), modality)
    if uid is None:
        raise ImageIOError(p, f"this {modality} names no referenced image series; read it with "
                              f"medlab.io.{'rtstruct' if modality == 'RTSTRUCT' else 'seg'}_to_labels on its image")
    reference, layers, ref_name = None, [], None
    viewer = _view.current_viewer()
    for layer in (viewer.layers if viewer is not None else []):
        if layer.metadata.get("series_uid") == uid and layer._type_string == "image":
            reference = layer_meta_to_image(layer.data, layer.as_layer_data_tuple()[1])
            ref_name = layer.name
            break
    if reference is None:
        for folder in (p.parent, p.parent.parent):
            found = [s for s in medlab.io.list_series(folder) if s["series_instance_uid"] == uid]
            if found:
                source = Path(found[0]["folders"][0]) if len(found[0]["folders"]) == 1 else folder
                layer, reference = _read_image_layer(source, uid)
                layers.append(layer)
                ref_name = layer[1]["name"]
                break
    if reference is None:
        raise ImageIOError(p, f"the image series it was drawn on (SeriesInstanceUID {uid}) is neither open in "
                              "napari nor in this folder or the one above: open that series first, then this file")
    if modality == "RTSTRUCT":
        labels = medlab.io.rtstruct_to_labels(p, reference)
        names = medlab.io.rtstruct_rois(p)
    else:
        labels = medlab.io.seg_to_labels(p, reference)
        names = [str(s.SegmentLabel) for s in _dicom_header(p).SegmentSequence]
    meta = {"path": str(p), "modality": modality, "label_names": {i + 1: n for i, n in enumerate(names)},
            "referenced_series_uid": uid}
    layers.append(image_to_layer(labels, f"{ref_name} {', '.join(names)}" if len(names) <= 3 else
                                 f"{ref_name} {modality}", "labels", metadata=meta))
    return layers


def read_layers(path) -> list[tuple]:
    """Read one image with :func:`medlab.io.read`: one layer placed in mm by its scale, translate
    and rotate (or affine): the full SimpleITK geometry, direction included, so an oblique volume's
    voxels are where medlab.io puts them. A 4D image gives a layer with a volume slider. Units are
    mm, axes named anatomically (:func:`._layers.image_to_layer`); a DICOM layer is named after its
    series description, a CT opens in the soft-tissue window, a label map (:func:`looks_like_labels`)
    as a Labels layer; an RTSTRUCT or DICOM SEG file as Labels on the image it references; a folder
    holding several series opens a 'Series' dock listing them (:class:`._widgets.SeriesPickerWidget`)
    in napari, and raises an error listing them without a viewer."""
    from . import _view

    if isinstance(path, list | tuple):
        path = path[0]
    p = Path(os.fspath(path))
    _view.install_current()
    if p.is_file() and _is_dicom(p):
        modality = str(_dicom_header(p).get("Modality", ""))
        if modality in ("RTSTRUCT", "SEG"):
            return _structure_layers(p, modality)
    found = _dicom_source(p)
    if found is None:  # several series: the 'Series' dock lets the user choose
        return [(None,)]  # napari's "nothing to add" (no error)
    return [_image_layer(*found)]
