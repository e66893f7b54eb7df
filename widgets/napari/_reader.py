"""napari reader: DICOM series folders, NIfTI, NRRD (and single DICOM files) via medlab.io.read."""

from __future__ import annotations

import os
from pathlib import Path

from ._layers import image_to_layer

__all__ = ["get_reader", "read_layers"]

_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".dcm")


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _accepts(path: str) -> bool:
    p = Path(path)
    if p.is_dir():
        return any(f.is_file() and (f.suffix.lower() == ".dcm" or _is_dicom(f)) for f in sorted(p.iterdir())[:50])
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


def read_layers(path) -> list[tuple]:
    """Read one image with :func:`medlab.io.read`: one image layer placed in mm by its scale,
    translate and rotate (or affine): the full SimpleITK geometry, direction included, so an oblique
    volume's voxels are where medlab.io puts them. A 4D image gives a layer with a volume slider."""
    import medlab.io

    if isinstance(path, list | tuple):
        path = path[0]
    p = Path(os.fspath(path))
    img = medlab.io.read(p)
    name = p.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return [image_to_layer(img, name, metadata={"path": str(p)})]
