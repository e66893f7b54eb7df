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

A Siemens mosaic series (two or more files of the same pixel formats) needs no dcm2niix at
all (:func:`mosaic_refusal`): the tiles are unpacked by the CSA image header's
NumberOfImagesInMosaic (read by nibabel's ``csareader``), the first tile's corner is
ImagePositionPatient moved by half the picture-minus-tile size along rows and columns, slices
run along CSA SliceNormalVector (put along the normal of ImageOrientationPatient, reversed
when it points the other way) at SpacingBetweenSlices, slice timing is CSA MosaicRefAcqTimes
with dcm2niix's rule for a differently timed first volume, and the phase-encoding direction
is InPlanePhaseEncodingDirection with CSA PhaseEncodingDirectionPositive. Anything it does not
fully recognise goes to dcm2niix, as does everything below.

Anything else goes to dcm2niix as before (:func:`refusal` names the reason): single mosaic
files, other vendors' mosaics, multi-frame files, compressed or big-endian data, a header
medlab's reader hands to pydicom, pixel formats other than 16-bit grey values, a rescale other
than identity, padding values, files that differ in any of these, several echo times, diffusion b-values, and vendors
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
    if ordered and all(f.mosaic for f in ordered):
        return mosaic_refusal(layout, modality)
    if any(f.mosaic or f.frames != 1 for f in ordered):
        return "mosaic or multi-frame files"
    if layout.get("route") != "dcm2niix" or layout.get("slice_positions") is None or not ordered:
        return "not a series of single-slice files with one position each per volume"
    if (modality or "").upper() != "MR":
        return f"modality {modality!r}, not MR"
    if (layout.get("volumes") or 0) <= SAMPLE_VOLUMES:
        return f"{layout.get('volumes')} volume(s): the sample conversion would be the whole series"
    said = _format_refusal_of(ordered)
    if said is not None:
        return said
    echoes = {f.echo_time_ms for f in ordered}
    if len(echoes) > 1:
        return f"{len(echoes)} echo times"
    return None


def _format_refusal_of(ordered: list) -> str | None:
    """Why the files ``ordered`` are not read natively for their pixel format, or None."""
    formats = {f.pixel_format for f in ordered}
    if None in formats:
        return "a file whose header medlab's reader leaves to pydicom (big endian, deflate, an unusual encoding)"
    if len(formats) > 1:
        fields = [n for n in ordered[0].pixel_format._fields if len({getattr(p, n) for p in formats}) > 1]
        return f"the files differ in {', '.join(fields)}"
    return format_refusal(formats.pop())


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
    mosaic = "MOSAIC" in image_type
    return (
        str(v.get("Modality") or "").upper() == "MR"
        and (not mosaic or str(v.get("Manufacturer") or "").upper().startswith("SIEMENS"))
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
    if first.mosaic:
        return _read_mosaic(layout, per_volume=per_volume)
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


# --------------------------------------------------------------------------- Siemens mosaics
#: Header elements a mosaic file is parsed for (pydicom, pixels not read): the CSA private
#: creators and their image headers, phase encoding, TR, TE and the slice spacing.
_MOSAIC_TAGS = [
    0x00180080, 0x00180081, 0x00180088, 0x00181312,
    0x00290010, 0x00290011, 0x00290012, 0x00291010, 0x00291110, 0x00291210,
]


class _Refused(Exception):
    """A mosaic the native route does not read (the message is the reason)."""


def _g(value: float) -> float:
    """A number as dcm2niix writes it into its sidecar (printf ``%g``: 6 significant digits)."""
    return float(f"{value:g}")


_CSA_FAST = {0x00180080: "RepetitionTime", 0x00180081: "EchoTime", 0x00180088: "SpacingBetweenSlices",
             0x00181312: "InPlanePhaseEncodingDirection", 0x00290010: "Creator", 0x00291010: "CSA"}
_CSA_FAST_VR = {0x00180080: b"DS", 0x00180081: b"DS", 0x00180088: b"DS", 0x00181312: b"CS",
                0x00290010: b"LO", 0x00291010: b"OB"}


class _Values(dict):
    """The values of :data:`_CSA_FAST` as attributes (what the pydicom path gives too)."""

    def __getattr__(self, name):
        value = self.get(name)
        if value is None:
            raise AttributeError(name)
        return value


def _mosaic_values(path: str):
    """(values, CSA image header bytes) of a mosaic file: medlab's header reader when the CSA
    header sits in the first private block (the usual case), else pydicom."""
    try:
        v = _tags.read(path, _CSA_FAST, 0x00291010, _CSA_FAST_VR)
        if str(v.get("Creator") or "").strip() == "SIEMENS CSA HEADER" and v.get("CSA"):
            return _Values(v), v["CSA"]
    except Exception:  # noqa: BLE001 - an unusual file: pydicom decides
        pass
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_MOSAIC_TAGS)
        raw = ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x10].value
    except Exception as exc:  # noqa: BLE001 - no block, no element, unreadable file
        raise _Refused(f"{os.path.basename(path)}: no Siemens CSA image header ({type(exc).__name__})") from exc
    return ds, raw


def _mosaic_header(path: str) -> dict:
    """The values of one mosaic file that the native route needs; :class:`_Refused` when the
    file has no readable Siemens CSA image header or lacks any of them."""
    ds, raw = _mosaic_values(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # nibabel.nicom's import-time note on its readers
            from nibabel.nicom import csareader
    except ImportError as exc:
        raise _Refused("nibabel (the CSA header reader) is not installed") from exc
    try:
        tags = csareader.read(bytes(raw))["tags"]
        n = csareader.get_n_mosaic({"tags": tags})
        normal = csareader.get_slice_normal({"tags": tags})
        times = tags.get("MosaicRefAcqTimes", {}).get("items") or []
        positive = tags.get("PhaseEncodingDirectionPositive", {}).get("items") or []
        protocol_slice = tags.get("ProtocolSliceNumber", {}).get("items") or [0]
    except Exception as exc:  # noqa: BLE001 - nibabel raises several types (and asserts) on a corrupt CSA
        raise _Refused(f"{os.path.basename(path)}: unreadable CSA image header ({type(exc).__name__})") from exc
    try:
        return {
            "n": int(n),
            "normal": np.asarray(normal, float).reshape(3),
            "times_ms": [float(t) for t in times],
            "positive": int(positive[0]) if positive else None,
            "protocol_slice": int(protocol_slice[0]),
            "pe": str(ds.get("InPlanePhaseEncodingDirection") or "").strip().upper(),
            "tr_ms": float(ds.RepetitionTime),
            "te_ms": float(ds.EchoTime),
            "spacing": float(ds.SpacingBetweenSlices),
        }
    except Exception as exc:  # noqa: BLE001 - missing or non-numeric values
        raise _Refused(
            f"{os.path.basename(path)}: NumberOfImagesInMosaic, SliceNormalVector, RepetitionTime, EchoTime or "
            f"SpacingBetweenSlices missing or not a number ({type(exc).__name__})"
        ) from exc


def _slice_times(first: list, second: list, tr_ms: float) -> list:
    """The slice times (ms, tile order) dcm2niix reports for a mosaic series from the CSA
    MosaicRefAcqTimes of its first two volumes: the first volume's, unless their span differs
    from the second volume's or they are all equal (dcm2niix's issue 870: the first volume of
    some runs is timed differently), then the second volume's, from its earliest time on.
    :class:`_Refused` where that rule's tolerance would decide."""
    if not first or len(first) != len(second):
        raise _Refused("CSA MosaicRefAcqTimes missing or of different lengths")
    span0, span1 = max(first) - min(first), max(second) - min(second)
    if abs(span0 - span1) <= 1e-6 and span0 > 0 and max(first) <= tr_ms:
        return list(first)
    if abs(span0 - span1) < 0.01 or not min(second) < max(second) < tr_ms:
        raise _Refused("CSA MosaicRefAcqTimes of the first two volumes differ in a way not read natively")
    shift = max(min(second), 0.0)
    return [t - shift for t in second]


def _mosaic_plan(layout: dict) -> dict:
    """How the mosaic series of ``layout`` is unpacked and placed; :class:`_Refused` otherwise."""
    ordered = layout["ordered"]
    first = ordered[0]
    if any(f.orientation is None or f.position is None or f.pixel_spacing is None for f in ordered):
        raise _Refused("a mosaic file without ImagePositionPatient, ImageOrientationPatient or PixelSpacing")
    if any(
        (f.rows, f.columns) != (first.rows, first.columns)
        or not np.allclose(f.orientation, first.orientation, atol=1e-6)
        or not np.allclose(f.position, first.position, atol=1e-4)
        or not np.allclose(f.pixel_spacing, first.pixel_spacing, atol=1e-6)
        for f in ordered
    ):
        raise _Refused("the mosaic files differ in size, orientation, position or pixel spacing")
    instances = [f.instance for f in ordered]
    if None in instances or len(set(instances)) != len(instances) or instances != sorted(instances):
        raise _Refused("InstanceNumber missing, repeated or not in the order of AcquisitionTime")
    if len(ordered) < 2:
        raise _Refused("a single mosaic file (dcm2niix's slice-timing rule compares two volumes)")
    heads = [_mosaic_header(f.path) for f in ordered]
    for h in heads:
        numbers = [h["tr_ms"], h["te_ms"], h["spacing"], *h["normal"], *h["times_ms"]]
        if not np.all(np.isfinite(numbers)):
            raise _Refused("a CSA or acquisition value that is not a finite number")
    head = heads[0]
    for other in heads[1:]:
        if (other["n"], other["pe"], other["positive"], other["tr_ms"], other["te_ms"], other["spacing"]) != (
            head["n"], head["pe"], head["positive"], head["tr_ms"], head["te_ms"], head["spacing"]
        ) or not np.allclose(other["normal"], head["normal"], atol=1e-6) or (
            len(other["times_ms"]) != len(head["times_ms"])
        ):
            raise _Refused("the mosaic files' CSA headers or acquisition parameters differ")
    times = _slice_times(heads[0]["times_ms"], heads[1]["times_ms"], head["tr_ms"])
    n = head["n"]
    across = int(np.ceil(np.sqrt(n))) if n > 0 else 0
    if n < 1 or first.rows % across or first.columns % across:
        raise _Refused(f"NumberOfImagesInMosaic {n} does not tile {first.rows} x {first.columns} pixels")
    o = np.asarray(first.orientation, float)
    row, col = o[:3], o[3:]
    normal = np.cross(row, col)
    along = float(head["normal"] @ normal)
    if not (abs(abs(along) - 1.0) <= 1e-4 and abs(float(np.linalg.norm(head["normal"])) - 1.0) <= 1e-4):
        raise _Refused("the CSA SliceNormalVector is not the normal of ImageOrientationPatient")
    if head["protocol_slice"] != 0:
        raise _Refused("CSA ProtocolSliceNumber is not 0 (image numbering reversed on the scanner)")
    if not head["spacing"] > 0:
        raise _Refused(f"SpacingBetweenSlices {head['spacing']}")
    if len(times) != n or min(times) < 0 or max(times) > head["tr_ms"]:
        raise _Refused(f"{len(times)} CSA MosaicRefAcqTimes for {n} slices, or times outside 0..TR")
    if head["pe"] not in ("ROW", "COL") or head["positive"] not in (0, 1):
        raise _Refused(f"phase encoding {head['pe']!r}, CSA PhaseEncodingDirectionPositive {head['positive']}")
    return {**head, "times_ms": times, "across": across, "row": row, "col": col, "slice_normal": normal,
            "descending": along < 0}


def mosaic_refusal(layout: dict, modality: str | None) -> str | None:
    """Why the Siemens mosaic series of ``layout`` is not read natively, or None (then the plan
    is kept in ``layout['mosaic_plan']`` for :func:`read`). Reads every file's CSA header."""
    ordered = layout.get("ordered") or []
    if not ordered or not all(f.mosaic and f.frames == 1 for f in ordered):
        return "not a series of single-frame mosaic files"
    if (modality or "").upper() != "MR":
        return f"modality {modality!r}, not MR"
    said = _format_refusal_of(ordered)
    if said is not None:
        return said
    if not str(ordered[0].pixel_format.manufacturer or "").upper().startswith("SIEMENS"):
        return f"manufacturer {ordered[0].pixel_format.manufacturer!r} (the native route knows Siemens mosaics)"
    try:
        layout["mosaic_plan"] = _mosaic_plan(layout)
    except _Refused as exc:
        return str(exc)
    return None


def _read_mosaic(layout: dict, *, per_volume: dict) -> sitk.Image | None:
    plan = layout["mosaic_plan"]
    ordered = layout["ordered"]
    first = ordered[0]
    arr = _pixels([[f] for f in ordered], first.pixel_format, first.rows, first.columns)
    if arr is None:  # e.g. an element after the pixels (a truncated file: refused by _scan.check_pixel_data)
        return None
    m, n = plan["across"], plan["n"]
    tr, tc = first.rows // m, first.columns // m
    tiles = arr[:, 0].reshape(len(ordered), m, tr, m, tc).transpose(0, 1, 3, 2, 4).reshape(len(ordered), m * m, tr, tc)
    tiles = tiles[:, :n]
    dy, dx = (float(v) for v in first.pixel_spacing)
    row, col, normal = plan["row"], plan["col"], plan["slice_normal"]
    # ImagePositionPatient of a mosaic is the corner of the whole picture: the first tile's
    # first voxel lies half the picture-minus-tile size further along the rows and columns.
    origin = np.asarray(first.position, float) + row * dx * (first.columns - tc) / 2 + col * dy * (first.rows - tr) / 2
    times = [_g(t / 1000.0) for t in plan["times_ms"]]
    if plan["descending"]:  # tiles run against the normal: put them along it
        origin = origin + plan["normal"] * plan["spacing"] * (n - 1)
        tiles, times = tiles[:, ::-1], times[::-1]
    axis = "j" if plan["pe"] == "COL" else "i"
    part = {
        "name": os.path.basename(first.path),
        "array": np.ascontiguousarray(tiles),
        "spacing": np.array([dx, dy, plan["spacing"]]),
        "origin": origin,
        "direction": np.column_stack([row, col, normal]),
        "sidecar": {
            "RepetitionTime": _g(plan["tr_ms"] / 1000.0),
            "EchoTime": _g(plan["te_ms"] / 1000.0),
            "SliceTiming": times,
            "PhaseEncodingDirection": axis + ("" if plan["positive"] else "-"),
        },
        "bvals": None,
        "bvecs": None,
        "flipped": [],
    }
    return _dcm2niix.assemble([part], per_volume, source="medlab (Siemens mosaic, CSA header read by nibabel)")
