"""Classic multi-file 4D MR series whose pixels medlab reads itself, without a full conversion.

The common 4D case (fMRI: one uncompressed file per slice and time point, a GE or Siemens
scanner) needs nothing of a converter's vendor rules for its voxels: the folder scan
(:mod:`medlab.io._scan`) already has every file's slice position, time and pixel format, and
each file's pixels are its last element. This route reads those bytes with numpy and places
them where the headers put them (:func:`medlab.io._series._volume_groups`, the same volume
split as the dcm2niix route). The acquisition metadata that needs vendor rules (slice timing,
phase-encoding direction) comes from dcm2niix run on the first :data:`SAMPLE_VOLUMES` volumes
only, at the same time; the voxels of that sample must equal the native ones exactly, and its
grid must sit where the DICOM headers put it, else the whole series goes to dcm2niix.

Anything else goes to dcm2niix as before (:func:`refusal` names the reason): mosaics,
multi-frame files, compressed or big-endian data, a header medlab's reader hands to pydicom,
pixel formats other than 16-bit grey values, a rescale other than identity, padding values,
files that differ in any of these, several echo times, diffusion b-values, and vendors
other than GE and Siemens (Philips' private scaling, others not checked against dcm2niix).
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
import SimpleITK as sitk

from medlab.errors import ImageIOError
from medlab.io import _dcm2niix, _scan, _tags
from medlab.io._common import DicomWarning

#: Volumes converted by dcm2niix for the metadata and the cross-check (two: dcm2niix gives a
#: series' slice timing only when it sees more than one volume).
SAMPLE_VOLUMES = 2
_SYNTAXES = {"1.2.840.10008.1.2": False, "1.2.840.10008.1.2.1": True}  # implicit / explicit VR little endian
_VENDORS = ("GE", "SIEMENS")
_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian


def refusal(layout: dict, modality: str | None) -> str | None:
    """Why the series of ``layout`` (from :func:`medlab.io._series._layout`) is not read
    natively, or None when it is."""
    ordered = layout.get("ordered") or []
    if any(f.mosaic or f.frames != 1 for f in ordered):
        return "mosaic or multi-frame files"
    if layout.get("route") != "dcm2niix" or layout.get("slice_positions") is None or not ordered:
        return "not a series of single-slice files with one position each per volume"
    if (modality or "").upper() != "MR":
        return f"modality {modality!r}, not MR"
    if (layout.get("volumes") or 0) <= SAMPLE_VOLUMES:
        return f"{layout.get('volumes')} volume(s): the sample conversion would be the whole series"
    formats = {f.pixel_format for f in ordered}
    if None in formats:
        return "a file whose header medlab's reader leaves to pydicom (big endian, deflate, an unusual encoding)"
    if len(formats) > 1:
        fields = [n for n in ordered[0].pixel_format._fields if len({getattr(p, n) for p in formats}) > 1]
        return f"the files differ in {', '.join(fields)}"
    said = format_refusal(formats.pop())
    if said is not None:
        return said
    echoes = {f.echo_time_ms for f in ordered}
    if len(echoes) > 1:
        return f"{len(echoes)} echo times"
    return None


def format_refusal(fmt) -> str | None:
    """Why files of pixel format ``fmt`` (:class:`medlab.io._scan.PixelFormat`) are not read
    natively, or None."""
    if not str(fmt.manufacturer or "").upper().startswith(_VENDORS):
        return f"manufacturer {fmt.manufacturer!r} (the native route knows GE and Siemens files)"
    if fmt.transfer_syntax not in _SYNTAXES:
        return f"transfer syntax {fmt.transfer_syntax} (not uncompressed little endian)"
    if fmt.samples_per_pixel != 1 or fmt.photometric != "MONOCHROME2":
        return f"{fmt.samples_per_pixel} sample(s) per pixel, {fmt.photometric}"
    if fmt.bits_allocated != 16 or fmt.pixel_representation not in (0, 1):
        return f"{fmt.bits_allocated} bits allocated, pixel representation {fmt.pixel_representation}"
    if fmt.bits_stored is None or fmt.high_bit != fmt.bits_stored - 1 or (
        fmt.pixel_representation == 1 and fmt.bits_stored != 16
    ):
        return f"{fmt.bits_stored} bits stored, high bit {fmt.high_bit}"
    if fmt.padding:
        return "a pixel padding value"
    if fmt.rescale_slope not in (None, 1.0) or fmt.rescale_intercept not in (None, 0.0):
        return f"rescale slope {fmt.rescale_slope}, intercept {fmt.rescale_intercept}"
    if fmt.diffusion:
        return "diffusion b-values"
    return None


def likely(path: str) -> bool:
    """Whether the series of the DICOM file ``path`` will probably be read natively: the file
    alone passes :func:`format_refusal` and is a single-slice, non-mosaic MR image. (A folder
    of such files then needs no early whole-series dcm2niix run.)"""
    try:
        v = _tags.read(path, _scan._WANTED, _scan._FAST_LAST_TAG, _scan._WANTED_VR)
    except Exception:  # noqa: BLE001 - not a plain file: not native
        return False
    image_type = _scan._image_type(v.get("ImageType"))
    return (
        str(v.get("Modality") or "").upper() == "MR"
        and "MOSAIC" not in image_type
        and (_scan._int(v.get("NumberOfFrames")) or 1) == 1
        and format_refusal(_scan._pixel_format(v, image_type)) is None
    )


def _pixels(groups: list, fmt, rows: int, columns: int) -> np.ndarray | None:
    """(volume, slice, row, column) stored values of every file, or None when a file's pixel
    data is not its last element with the expected length."""
    nbytes = 2 * rows * columns
    length = struct.pack("<I", nbytes)
    if _SYNTAXES[fmt.transfer_syntax]:
        heads, skip = (_PIXEL_TAG + b"OW\0\0" + length, _PIXEL_TAG + b"OB\0\0" + length), 12
    else:
        heads, skip = (_PIXEL_TAG + length,), 8
    out = np.empty((len(groups), len(groups[0]), rows, columns), "<i2" if fmt.pixel_representation else "<u2")
    for v, group in enumerate(groups):
        for k, f in enumerate(group):
            fd = os.open(f.path, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                if size < 132 + skip + nbytes:
                    return None
                data = os.pread(fd, skip + nbytes, size - skip - nbytes)
            finally:
                os.close(fd)
            if len(data) != skip + nbytes or data[:skip] not in heads:
                return None
            out[v, k] = np.frombuffer(data, out.dtype, rows * columns, skip).reshape(rows, columns)
    if out.dtype == np.uint16 and fmt.bits_stored < 16:  # as dcm2niix writes them: int16
        if int(out.max(initial=0)) > np.iinfo(np.int16).max:
            return None  # values above BitsStored: dcm2niix's rule for them is not known here
        out = out.astype(np.int16)
    return out


def read(layout: dict, groups: list, where: str, *, per_volume: dict, stacklevel: int) -> sitk.Image | None:
    """The 4D image of a series that :func:`refusal` accepts, or None when the sample
    conversion disagrees with the native voxels or layout (the caller then converts all).

    ``groups``: the files of each volume, slices in order along the normal.
    """
    first = layout["ordered"][0]
    orientation, positions = layout["orientation"], layout["slice_positions"]
    sample = [f.path for g in groups[:SAMPLE_VOLUMES] for f in g]
    try:
        with _dcm2niix.Started(files=sample) as started:  # on the other core while the pixels are read
            arr = _pixels(groups, first.pixel_format, first.rows, first.columns)
            niftis, found = started.result(where, len(sample)) or ([], [])
            parts = [_dcm2niix._load_part(n, where) for n in niftis]
        if arr is None or len(parts) != 1 or parts[0]["bvals"] is not None:
            return None
        part = parts[0]
        if part["array"].shape != (SAMPLE_VOLUMES, *arr.shape[1:]):
            return None
        _dcm2niix.to_dicom_grid(part, where, orientation=orientation, positions=positions,
                                pixel_spacing=first.pixel_spacing)
    except (ImageIOError, OSError):  # the whole-series conversion reports what is wrong
        return None
    if part["array"].dtype != arr.dtype or not np.array_equal(part["array"], arr[:SAMPLE_VOLUMES]):
        return None
    for line in found:
        warnings.warn(f"{where}: dcm2niix: {line}", DicomWarning, stacklevel=stacklevel)
    part["array"] = arr
    source = f"medlab voxels, dcm2niix {part['sidecar'].get('ConversionSoftwareVersion') or _dcm2niix.version()} metadata"
    return _dcm2niix.assemble([part], per_volume, source=source)
