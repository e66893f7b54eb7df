"""``medlab.io.write``: atomic, non-clobbering image writing by extension."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import SimpleITK as sitk

from medlab._image import as_sitk
from medlab.errors import ImageIOError
from medlab.io._common import ITK_EXTENSIONS, extension, fspath, itk_reason

# 2D raster formats: the pixel types and component counts their ITK writers accept.
_RASTER = {
    ".png": ((sitk.sitkUInt8, sitk.sitkUInt16), (1, 2, 3, 4)),
    ".jpg": ((sitk.sitkUInt8,), (1, 3)),
    ".jpeg": ((sitk.sitkUInt8,), (1, 3)),
}
# BMP is read but not written: ITK writes grey BMP as a palette that reads back as RGB.
WRITE_EXTENSIONS = tuple(e for e in ITK_EXTENSIONS if e != ".bmp")


def write(image, path, *, overwrite: bool = False, compress: bool = True) -> Path:
    """Write an image, atomically, in the format given by the extension of ``path``.

    Formats: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``;
    ``.mhd`` with its ``.raw``/``.zraw`` data file beside it), TIFF (``.tif``, ``.tiff``) and
    the 2D raster formats PNG (uint8/uint16) and JPEG (uint8, lossy); BMP is read, not written.
    NIfTI, NRRD and MetaImage keep spacing, origin and direction, for 2D, 3D and 4D images
    (a 4D image's fourth axis is the volume axis, see :func:`medlab.io.volume`) and label
    maps (the integer pixel type is kept). NIfTI gets its qform and sform (code 1, scanner)
    from the LPS geometry converted to RAS, stored as float32 (about 1e-6 relative); NRRD and
    MetaImage store it exactly and also keep the per-volume metadata
    (:func:`medlab.io.volume_metadata`), which NIfTI has no place for. TIFF, PNG and JPEG keep
    no origin or direction, and spacing only as a resolution (PNG to about 1e-6 mm, TIFF
    to float32 precision, JPEG to about 1%).
    DICOM is not written.

    The image is written into a fresh temporary folder beside ``path`` under the final file
    name (so the writer picks the format from the same extension, and a ``.mhd`` header names
    its data file correctly), then moved into place with ``os.replace``. If anything fails,
    the temporary folder is removed: no partial file is ever left at ``path``.

    Parameters
    ----------
    image : SimpleITK.Image or (M, N[, P]) ndarray
        The image; never modified. An array is indexed (z, y, x) and written with spacing 1.
    path : str or os.PathLike
        Destination file; its folder must exist.
    overwrite : bool
        If False (default), an existing file at ``path`` is an error.
    compress : bool
        Ask the writer to compress (NRRD, MetaImage, TIFF; ``.nii.gz`` is always compressed,
        ``.nii`` never).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImageIOError
        If ``path`` exists and ``overwrite`` is False (the message names the path), its folder
        does not exist, or the writer fails.
    ValueError
        If the extension is not supported, or the image's pixel type, dimension or number of
        components cannot be stored in that format (e.g. float32 as PNG).
    """
    img, _ = as_sitk(image, name="image")
    target = Path(fspath(path))
    ext = extension(str(target))
    if ext not in WRITE_EXTENSIONS:
        raise ValueError(
            f"`path` must end with one of {', '.join(WRITE_EXTENSIONS)}; got {target.name!r}"
            + (" (writing DICOM is not supported)" if ext in (".dcm", ".dicom") else "")
        )
    _check_format(img, ext)
    folder = target.parent
    if not folder.is_dir():
        raise ImageIOError(target, f"the folder {str(folder)!r} does not exist")
    if target.exists() and not overwrite:
        raise ImageIOError(target, "file exists; pass overwrite=True to replace it")
    tmpdir = tempfile.mkdtemp(prefix=".medlab-write-", dir=folder)
    try:
        tmp = os.path.join(tmpdir, target.name)
        try:
            sitk.WriteImage(img, tmp, useCompression=compress)
        except RuntimeError as exc:
            raise ImageIOError(target, f"cannot write {ext}: {itk_reason(exc)}") from exc
        # Companion files (the .raw/.zraw of a .mhd) first, the file named by `path` last, so
        # the header never points at data that is not there yet.
        companions = sorted(n for n in os.listdir(tmpdir) if n != target.name)
        for name in companions:
            if (folder / name).exists() and not overwrite:
                raise ImageIOError(folder / name, f"file exists (data file of {target.name}); pass overwrite=True")
        for name in companions:
            os.replace(os.path.join(tmpdir, name), folder / name)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return target


def _check_format(img: sitk.Image, ext: str) -> None:
    if ext not in _RASTER:
        return
    types, components = _RASTER[ext]
    name = ext.lstrip(".").upper()
    if img.GetDimension() != 2:
        raise ValueError(f"`image` must be 2D to be written as {name}; got size {img.GetSize()}")
    n = img.GetNumberOfComponentsPerPixel()
    vector_to_scalar = {sitk.sitkVectorUInt8: sitk.sitkUInt8, sitk.sitkVectorUInt16: sitk.sitkUInt16}
    scalar_id = vector_to_scalar.get(img.GetPixelID()) if n > 1 else img.GetPixelID()
    if scalar_id not in types or n not in components:
        allowed = " or ".join(sitk.GetPixelIDValueAsString(t) for t in types)
        raise ValueError(
            f"`image` ({img.GetPixelIDTypeAsString()}, {n} component(s)) cannot be written as {name}, "
            f"which stores {allowed} with {components} components; rescale and cast it first"
        )
