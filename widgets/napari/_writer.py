"""napari writers (npe2): an Image or Labels layer to NIfTI, NRRD or MetaImage with its geometry
(spacing, origin, direction: napari's scale, translate, rotate and affine, in mm), and a Labels
layer to DICOM SEG referencing the DICOM series it was drawn on.

napari calls a single-layer writer as ``writer(path, data, attributes) -> [paths written]``;
``attributes`` are the layer's (``scale``, ``translate``, ``rotate``, ``shear``, ``affine``,
``metadata``, ``name``). The file is written by :func:`medlab.io.write` (atomic); napari's save
dialog has already asked before replacing a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medlab.errors import ImageIOError

from ._layers import layer_meta_to_image

__all__ = ["VOLUME_SUFFIXES", "write_image", "write_labels"]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def _suffix(path: str, allowed: tuple[str, ...]) -> str:
    low = path.lower()
    for s in allowed:
        if low.endswith(s):
            return s
    raise ImageIOError(path, f"medlab writes {', '.join(allowed)} here; choose one of these extensions")


def _volume(path: str, data, attributes: dict, *, labels: bool) -> list[str]:
    _suffix(path, VOLUME_SUFFIXES)
    arr = np.asarray(data)
    if labels:
        if arr.dtype.kind not in "iub":
            raise ImageIOError(path, f"a labels layer must hold integers; got {arr.dtype}")
        top = int(arr.max()) if arr.size else 0
        arr = arr.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32)
    try:
        img = layer_meta_to_image(arr, attributes)
    except ValueError as exc:
        raise ImageIOError(path, f"{exc}; save one 2D/3D layer at a time") from None
    import medlab.io

    return [os.fspath(medlab.io.write(img, path, overwrite=True))]


def write_image(path: str, data, attributes: dict) -> list[str]:
    """An Image layer (2D or 3D) to ``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha``, geometry kept."""
    if attributes.get("rgb"):
        raise ImageIOError(path, "an RGB layer is not a medical volume; save it as PNG or TIFF")
    return _volume(path, data, attributes, labels=False)


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """A Labels layer to ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha`` (geometry kept; uint8, or uint16
    for more than 255 labels), or ``.dcm``: a DICOM SEG (:func:`medlab.pacs.write_seg`) on the DICOM
    series the layer came from (its ``metadata['dicom_source']``, set by the reader and kept by the
    dock widgets), label ``k`` named from ``metadata['label_names']`` when there."""
    if not path.lower().endswith(".dcm"):
        return _volume(path, data, attributes, labels=True)
    meta = attributes.get("metadata") or {}
    source = meta.get("dicom_source")
    if not source:
        raise ImageIOError(path, "a DICOM SEG needs the DICOM series the labels were drawn on; this layer does not "
                                 "come from one (open the DICOM series folder with medlab, segment on it), or "
                                 "save as .nii.gz / .nrrd / .mha")
    import medlab.io
    import medlab.pacs
    import medlab.registration

    labels = layer_meta_to_image(np.asarray(data).astype(np.uint16), attributes)
    reference = medlab.io.read(source, series_uid=meta.get("series_uid")) if meta.get("series_uid") else \
        medlab.io.read(source)
    same = (labels.GetSize() == reference.GetSize()
            and np.allclose(labels.GetOrigin(), reference.GetOrigin(), atol=1e-3)
            and np.allclose(labels.GetSpacing(), reference.GetSpacing(), atol=1e-4)
            and np.allclose(labels.GetDirection(), reference.GetDirection(), atol=1e-5))
    if not same:  # e.g. a series stored in another orientation than LPS: back on its own grid
        labels = medlab.registration.resample_labels(labels, reference)
    arr = sitk.GetArrayFromImage(labels)
    present = [int(v) for v in np.unique(arr) if v]
    if not present:
        raise ImageIOError(path, "the labels layer is empty: there is no segment to write")
    names = {int(k): str(v) for k, v in (meta.get("label_names") or {}).items()}
    top = max(present)
    segments = [names.get(k, f"{attributes.get('name', 'segment')} {k}") for k in range(1, top + 1)]
    out = medlab.pacs.write_seg(arr, source, Path(path), segments=segments, series_uid=meta.get("series_uid"),
                                algorithm_type="SEMIAUTOMATIC", overwrite=True)
    return [os.fspath(out)]
