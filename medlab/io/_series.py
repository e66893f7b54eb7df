"""DICOM series folders: discovery and sorting by GDCM, pixels by ``sitk.ImageSeriesReader``."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medlab._image import copy_geometry, to_array
from medlab.errors import ImageIOError
from medlab.io._common import fspath, itk_reason, require_exists, warn_if_nonuniform

_PEEK_TAGS = {
    "modality": "0008|0060",
    "series_description": "0008|103e",
    "series_number": "0020|0011",
}


def _peek(path: str) -> dict:
    """A few header fields of one file through GDCM (no pixels, no pydicom import)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO("GDCMImageIO")
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageIOError(path, f"unreadable DICOM header: {itk_reason(exc)}") from exc
    out = {}
    for key, tag in _PEEK_TAGS.items():
        try:
            value = reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ""
        except (RuntimeError, UnicodeDecodeError):
            value = ""
        out[key] = value or None
    return out


def _count_files(folder: str) -> int:
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.is_file())


def list_series(folder) -> list[dict]:
    """The DICOM image series in a folder (not its subfolders), as GDCM groups them.

    Files are grouped by SeriesInstanceUID; DICOM files without pixel data (RTSTRUCT, SR, ...)
    and non-DICOM files are not listed.

    Parameters
    ----------
    folder : str or os.PathLike

    Returns
    -------
    list of dict
        One dict per series with keys ``series_instance_uid``, ``modality``,
        ``series_description``, ``series_number`` (str or None), ``number_of_files`` and
        ``files`` (tuple of paths, sorted along the slice normal).

    Raises
    ------
    ImageIOError
        If ``folder`` does not exist or is not a folder.
    """
    folder = fspath(folder, "folder")
    require_exists(folder)
    if not os.path.isdir(folder):
        raise ImageIOError(folder, "not a folder")
    out = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder):
        files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
        if not files:
            continue
        info = _peek(files[0])
        out.append(
            {
                "series_instance_uid": uid,
                "modality": info["modality"],
                "series_description": info["series_description"],
                "series_number": info["series_number"],
                "number_of_files": len(files),
                "files": files,
            }
        )
    return out


def _describe(series: list[dict]) -> str:
    return "\n".join(
        f"  series_uid={s['series_instance_uid']!r}: {s['modality'] or '?'}, "
        f"{s['series_description'] or 'no description'!r}, {s['number_of_files']} files"
        for s in series
    )


def series_files(folder: str, *, series_uid: str | None) -> tuple[str, ...]:
    """Files of the selected series in ``folder``, sorted along the slice normal by GDCM."""
    if series_uid is not None:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, str(series_uid))
        if files:
            return tuple(files)
        series = list_series(folder)
        listing = f"; the folder holds:\n{_describe(series)}" if series else "; the folder holds no DICOM image series"
        raise ImageIOError(folder, f"no series with SeriesInstanceUID {series_uid!r}{listing}")
    count = _count_files(folder)
    if count == 0:
        raise ImageIOError(folder, "no DICOM image series in this folder (0 files)")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    # Fast path: every file of the folder is in the first series, so there is no other one.
    if files and len(files) == count:
        return tuple(files)
    series = list_series(folder)
    if not series:
        raise ImageIOError(folder, f"no DICOM image series in this folder ({count} files)")
    if len(series) > 1:
        raise ImageIOError(
            folder,
            f"{len(series)} DICOM series in this folder; choose one with series_uid=...:\n{_describe(series)}",
        )
    return series[0]["files"]


def read_series(folder: str, *, series_uid: str | None, pet_units: str) -> sitk.Image:
    """Read one DICOM series as a 3D image (see :func:`medlab.io.read`)."""
    files = series_files(folder, series_uid=series_uid)
    if len(files) == 1:
        from medlab.io._dicom import read_dicom_file

        return read_dicom_file(files[0], pet_units=pet_units)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    # Per-slice dictionaries cost nothing measurable and give every slice's position.
    reader.MetaDataDictionaryArrayUpdateOn()
    img = _execute(reader, folder, files)
    if img.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64) and _fractional_rescale(reader, len(files)):
        # Slices have their own RescaleSlope/Intercept (PET always): GDCM picked an integer
        # type from the first slice, which would truncate the others. Read again as float.
        reader.SetOutputPixelType(sitk.sitkFloat32)
        img = _execute(reader, folder, files)
    modality = _slice_tag(reader, 0, "0008|0060").upper()
    if img.GetDimension() != 3 or img.GetSize()[2] != len(files):
        raise ImageIOError(
            folder,
            f"the series holds {len(files)} files but gave size {img.GetSize()} (multi-frame files?); "
            f"read each file on its own: {files[0]}, ...",
        )
    _check_positions(reader, img, folder)
    if modality == "PT":
        img = _pet_units(img, files, pet_units, folder)
    return img


def _execute(reader: sitk.ImageSeriesReader, folder: str, files) -> sitk.Image:
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise ImageIOError(folder, f"cannot read the DICOM series ({len(files)} files): {itk_reason(exc)}") from exc


def _slice_tag(reader: sitk.ImageSeriesReader, index: int, tag: str) -> str:
    try:
        return reader.GetMetaData(index, tag).strip() if reader.HasMetaDataKey(index, tag) else ""
    except (RuntimeError, UnicodeDecodeError):
        return ""


def _fractional_rescale(reader: sitk.ImageSeriesReader, n: int) -> bool:
    """Whether any slice has a non-integer RescaleSlope or RescaleIntercept."""
    for i in range(n):
        for tag in ("0028|1053", "0028|1052"):
            text = _slice_tag(reader, i, tag)
            try:
                if text and not float(text).is_integer():
                    return True
            except ValueError:
                continue
    return False


def _check_positions(reader: sitk.ImageSeriesReader, img: sitk.Image, folder: str) -> None:
    """Warn when slice positions along the normal are not uniformly spaced (missing slices)."""
    try:
        positions = np.array(
            [[float(v) for v in _slice_tag(reader, i, "0020|0032").split("\\")] for i in range(img.GetSize()[2])]
        )
    except ValueError:
        return  # no positions (e.g. secondary capture): GDCM stacked the files by number
    if positions.shape[1:] != (3,):
        return
    normal = np.asarray(img.GetDirection(), float).reshape(3, 3)[:, 2]
    warn_if_nonuniform(np.diff(positions @ normal), folder, stacklevel=4)


def _pet_units(img: sitk.Image, files, pet_units: str, folder: str) -> sitk.Image:
    from medlab.io._header import open_dicom
    from medlab.io._meta import metadata, pet_scale

    meta = metadata(open_dicom(files[0], header_only=True), identifying=True)
    if str(meta.get("decay_correction") or "").upper() == "NONE" and pet_units == "suv":
        # Not decay corrected: every slice is corrected from its own acquisition time.
        factors = [pet_scale(metadata(open_dicom(f, header_only=True), identifying=True), pet_units, f) for f in files]
        arr = to_array(img) * np.asarray(factors, np.float32)[:, None, None]
        return copy_geometry(arr.astype(np.float32), img)
    factor = pet_scale(meta, pet_units, folder)
    img = sitk.Cast(img, sitk.sitkFloat32) if img.GetPixelID() != sitk.sitkFloat32 else img
    return img if factor is None else img * float(factor)
