"""``medlab.io.write``: atomic, non-clobbering image writing by extension."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import SimpleITK as sitk

from medlab import _atomic
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
    DICOM: a series folder with :func:`medlab.io.write_dicom_series`.

    The image is written into a temporary folder beside ``path`` (named by
    :mod:`medlab._atomic`, with this host and process id) under the final file name, so the
    writer picks the format from the same extension, then moved into place with
    ``os.replace``; if anything fails the folder is removed, and the folders of writers that
    were killed are removed by the next write into the same folder: no partial file is ever
    left at ``path``. A header with a separate data file (``.mhd``, ``.nhdr``) is replaced
    as a pair: when it replaces an existing image (or its data file's name is taken), the
    new data go to a new file named ``<name>.<16 hex digits><suffix>``, then the header that
    names it replaces the old header in one rename, then the old data file is removed. A
    process killed at any point thus leaves the old pair or the new pair, never a header
    with the other's data; a data file it leaves unreferenced is removed by the next write
    of the same ``path`` (any ``<name>[.<16 hex>].raw``, ``.zraw`` or ``.raw.gz`` beside it
    that its header does not name).

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
    img, _ = as_sitk(image, name="image", allow_4d=True)
    target = Path(fspath(path))
    ext = extension(str(target))
    if ext not in WRITE_EXTENSIONS:
        raise ValueError(
            f"`path` must end with one of {', '.join(WRITE_EXTENSIONS)}; got {target.name!r}"
            + (" (DICOM: medlab.io.write_dicom_series writes a series folder)" if ext in (".dcm", ".dicom") else "")
        )
    _check_format(img, ext)
    folder = target.parent
    if not folder.is_dir():
        raise ImageIOError(target, f"the folder {str(folder)!r} does not exist")
    if target.exists() and not overwrite:
        raise ImageIOError(target, "file exists; pass overwrite=True to replace it")
    _atomic.clean_stale(folder)
    pair = ext in _PAIR_FIELD
    if pair:
        _remove_orphans(target, ext)
    scratch = _atomic.temp_for(target)
    scratch.mkdir()
    try:
        tmp = scratch / target.name
        try:
            sitk.WriteImage(img, str(tmp), useCompression=compress)
        except RuntimeError as exc:
            raise ImageIOError(target, f"cannot write {ext}: {itk_reason(exc)}") from exc
        companions = sorted(n for n in os.listdir(scratch) if n != target.name)
        if not pair or not companions:
            if companions:  # pragma: no cover - only the pair formats write a second file
                raise ImageIOError(target, f"the {ext} writer wrote unexpected files {companions}")
            os.replace(tmp, target)
        else:
            _replace_pair(tmp, companions, target, ext, overwrite=overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# Header formats with a separate data file: the header line that names it.
_PAIR_FIELD = {
    ".mhd": re.compile(r"^(?P<key>ElementDataFile\s*=\s*)(?P<name>.*?)\s*$", re.MULTILINE),
    ".nhdr": re.compile(r"^(?P<key>data ?file:\s*)(?P<name>.*?)\s*$", re.MULTILINE | re.IGNORECASE),
}


def _data_name(header: Path, ext: str) -> str | None:
    """The data file a ``.mhd``/``.nhdr`` header names (None if unreadable or LOCAL)."""
    try:
        with open(header, "rb") as f:
            text = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return None
    m = _PAIR_FIELD[ext].search(text)
    if m is None or m["name"].upper() == "LOCAL" or os.sep in m["name"] or not m["name"]:
        return None
    return m["name"]


def _unique_name(target: Path, companion: str) -> str:
    suffix = companion[len(target.stem):] if companion.startswith(target.stem) else Path(companion).suffix
    return f"{target.stem}.{secrets.token_hex(8)}{suffix}"


def _orphan_pattern(target: Path) -> re.Pattern:
    # ITK's own data names (x.raw, x.zraw, x.raw.gz) and the unique ones given at an overwrite.
    return re.compile(re.escape(target.stem) + r"(\.[0-9a-f]{16})?\.(raw|zraw|raw\.gz)$")


def _remove_orphans(target: Path, ext: str) -> None:
    """Remove data files of ``target`` (``<stem>[.<16 hex>].raw|.zraw|.raw.gz``) its header does not name.

    They are left by a write killed between moving the new data in and replacing the header
    (or before removing the old data).
    """
    if not target.is_file():
        return  # no header: nothing says which data files are its own
    current = _data_name(target, ext)
    if current is None:
        return
    pattern = _orphan_pattern(target)
    for entry in os.scandir(target.parent):
        if entry.name != current and pattern.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.remove(entry.path)
            except FileNotFoundError:
                pass


def _replace_pair(tmp: Path, companions: list, target: Path, ext: str, *, overwrite: bool) -> None:
    """Move a freshly written header + data file pair from its scratch folder to ``target``."""
    if len(companions) != 1:
        raise ImageIOError(target, f"the {ext} writer wrote several data files {companions}; expected one")
    (companion,) = companions
    folder = target.parent
    old = _data_name(target, ext) if target.exists() else None
    if target.exists() or (folder / companion).exists():
        if not overwrite:
            taken = target if target.exists() else folder / companion
            raise ImageIOError(taken, f"file exists (data file of {target.name}); pass overwrite=True")
        # Replacing: the new data get a name of their own, so the old header keeps naming the
        # old data until the header itself is replaced.
        name = _unique_name(target, companion)
        text = tmp.read_text(encoding="utf-8")
        m = _PAIR_FIELD[ext].search(text)
        if m is None or m["name"] != companion:
            raise ImageIOError(target, f"the {ext} header written does not name its data file {companion!r}")
        tmp.write_text(text[: m.start("name")] + name + text[m.end("name"):], encoding="utf-8")
    else:
        name = companion
    os.replace(tmp.parent / companion, folder / name)
    os.replace(tmp, target)  # the one step that switches from the old pair to the new one
    if old is not None and old != name and (folder / old).is_file():
        os.remove(folder / old)


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
