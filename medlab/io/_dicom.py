"""Reading one DICOM file (single- or multi-frame) with pydicom as the decoder.

pydicom decodes every transfer syntax it has a handler for: uncompressed (little/big endian,
implicit/explicit, deflated) natively, RLE natively or with pylibjpeg-rle, JPEG baseline,
extended and lossless and JPEG-LS with pylibjpeg-libjpeg, JPEG 2000 with pylibjpeg-openjpeg.
"""

from __future__ import annotations

import warnings

import numpy as np
import SimpleITK as sitk

from medlab._image import as_sitk
from medlab.errors import ImageIOError
from medlab.io import _dcm2niix, _guard
from medlab.io._common import DicomWarning, itk_reason, warn_if_nonuniform
from medlab.io._fields import dataset_metadata
from medlab.io._header import find, frame_items, open_dicom
from medlab.io._suv import pet_scale
from medlab.io._volumes import attach, geometry_4d


def read_dicom_file(path: str, *, pet_units: str, max_bytes: int | None = None) -> sitk.Image:
    """Decode one DICOM file into a ``sitk.Image`` in physical units.

    A single frame gives a 2D image; several frames give a 3D image with frames along z, or,
    for a cine (frames that are instants of one plane), a 4D image (x, y, 1, frame).
    See :func:`medlab.io.read` for the conventions. The pixel module is checked before
    decoding (:func:`_check_pixel_module`) and the result's geometry after it.
    """
    limit = _guard.max_bytes(max_bytes)
    ds = open_dicom(path)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        modality = ds.get("Modality", "?")
        hint = {
            "RTSTRUCT": "; use medlab.io.rtstruct_to_labels",
        }.get(str(modality), "")
        raise ImageIOError(path, f"no pixel data in this DICOM file (Modality {modality}){hint}")
    iop = find(ds, "ImageOrientationPatient")
    iop = tuple(float(v) for v in iop) if iop is not None and len(iop) == 6 else None
    if is_mosaic(ds):
        check_mosaic_header(path, ds)
        return _dcm2niix.convert([path], path, orientation=iop)
    if int(ds.get("NumberOfFrames") or 1) > 1:
        positions = _repeated_frame_positions(ds, path)
        if positions is not None:
            spacing = find(ds, "PixelSpacing")
            spacing = tuple(float(v) for v in spacing) if spacing is not None and len(spacing) == 2 else None
            return _dcm2niix.convert([path], path, orientation=iop, positions=positions, pixel_spacing=spacing)
    expected = _check_pixel_module(ds, path, limit)
    try:
        arr = ds.pixel_array
    except (KeyboardInterrupt, SystemExit):
        raise
    # Decoder plugins raise many types; all mean undecodable here. Rust-based plugins
    # (pylibjpeg-rle) report corrupt data as pyo3's PanicException, a BaseException: seen on
    # a corrupted RLE file found by the reader fuzz test (tests/test_fuzz_readers.py).
    except BaseException as exc:  # noqa: BLE001
        ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        name = ts.name if ts else "unknown transfer syntax"
        raise ImageIOError(path, f"cannot decode the pixel data ({name}): {exc}") from exc

    if not arr.dtype.isnative:  # big endian transfer syntaxes; SimpleITK needs native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    frames = int(ds.get("NumberOfFrames") or 1)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    vector = arr.ndim == (4 if frames > 1 else 3)
    if frames == 1:
        arr = arr[np.newaxis]  # one layout below: (frames, rows, columns[, samples])
    if arr.shape[:3] != expected[:3] or (arr.ndim == 4 and arr.shape[3] != 3) or arr.ndim not in (3, 4):
        raise ImageIOError(
            path,
            f"decoded pixel data of shape {arr.shape} do not match NumberOfFrames x Rows x Columns x "
            f"SamplesPerPixel = {expected}",
        )
    if photometric == "MONOCHROME1":
        arr = _invert_monochrome1(arr, ds)
    if not vector:
        arr = _modality_lut(arr, ds, path)
    if str(ds.get("Modality", "")).upper() == "PT":
        factor = pet_scale(dataset_metadata(ds, identifying=True), pet_units, path)
        if factor is not None:
            arr = arr.astype(np.float32) * np.float32(factor)

    spacing_xy = _pixel_spacing_xy(ds, path)
    if frames == 1:
        img, _ = as_sitk(arr[0], vector=vector)
        img.SetSpacing(spacing_xy)
        _guard.check_geometry(img, path, dicom=True)
        return attach(img, {"source": "pydicom"})
    geometry = _frame_geometry(ds, frames, path)
    order, origin, direction, step = geometry
    cine, times = _cine_frame_times_ms(ds, frames) if geometry is _UNPLACED else (False, None)
    if cine:
        # a cine (ultrasound, XA, ...): frames are instants of one plane, so they go on the time
        # axis of a 4D image (x, y, 1, frame), as every series with several volumes does
        img = sitk.GetImageFromArray(arr[:, np.newaxis], isVector=vector)
        geometry_4d(img, (*spacing_xy, 1.0), (0.0, 0.0, 0.0), np.eye(3))
        _guard.check_geometry(img, path, dicom=True)
        return attach(img, {"source": "pydicom", "frame_times_ms": times})
    img, _ = as_sitk(arr[order] if order is not None else arr, vector=vector)
    try:
        img.SetSpacing((*spacing_xy, step))
        img.SetOrigin(origin)
        img.SetDirection(direction)
    except RuntimeError as exc:  # ITK refuses e.g. a singular direction
        raise ImageIOError(path, f"the frame geometry is not a valid grid: {itk_reason(exc)}") from exc
    _guard.check_geometry(img, path, dicom=True)
    return attach(img, {"source": "pydicom"})


# Transfer syntaxes whose PixelData is stored uncompressed (its length is known exactly).
_NATIVE = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",  # deflated: the dataset, not the pixel data, is compressed
}


def _check_pixel_module(ds, path: str, limit: int) -> tuple[int, int, int, int]:
    """(frames, rows, columns, samples) after checking the pixel module against the data.

    Refuses sizes that are not positive, SamplesPerPixel other than 1 or 3 (4 for retired
    ARGB/CMYK is not read), a BitsAllocated that is not 1, 8, 16, 32 or 64, a declared size
    above ``limit`` bytes and, for uncompressed transfer syntaxes, a PixelData shorter than
    the header declares; longer data (padding) give a :class:`DicomWarning` and only the
    declared bytes are read, never extra components or frames.
    """
    fields = {}
    for key, default in (("Rows", None), ("Columns", None), ("SamplesPerPixel", 1), ("NumberOfFrames", 1), ("BitsAllocated", None)):
        value = ds.get(key, default)
        if value in (None, ""):
            value = default
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ImageIOError(path, f"{key} must be an integer; got {value!r}") from None
        if value is None or value < 1:
            raise ImageIOError(path, f"{key} must be a positive integer; got {value!r}")
        fields[key] = value
    if fields["SamplesPerPixel"] not in (1, 3):
        raise ImageIOError(path, f"SamplesPerPixel must be 1 or 3; got {fields['SamplesPerPixel']}")
    bits = fields["BitsAllocated"]
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        bits = 64 if "DoubleFloatPixelData" in ds else 32
    if bits not in (1, 8, 16, 32, 64):
        raise ImageIOError(path, f"BitsAllocated must be 1, 8, 16, 32 or 64; got {bits}")
    shape = (fields["NumberOfFrames"], fields["Rows"], fields["Columns"], fields["SamplesPerPixel"])
    voxels = shape[0] * shape[1] * shape[2] * shape[3]
    nbytes = (voxels * bits + 7) // 8
    decoded = voxels * max(bits // 8, 1)
    if decoded > limit:
        raise ImageIOError(
            path,
            f"NumberOfFrames x Rows x Columns x SamplesPerPixel x BitsAllocated declare {decoded / 2**20:.6g} "
            f"MiB, above the limit of {limit / 2**20:.6g} MiB (pass max_bytes= to medlab.io.read if trusted)",
        )
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if "PixelData" in ds and ts in _NATIVE:
        try:
            length = len(ds.PixelData)
        except Exception as exc:  # noqa: BLE001 - a corrupted element length surfaces here
            raise ImageIOError(path, f"unreadable PixelData element: {type(exc).__name__}: {exc}") from None
        if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "YBR_FULL_422":
            nbytes = nbytes // 3 * 2  # chroma subsampled horizontally: 2 values per pixel
        if length < nbytes:
            raise ImageIOError(
                path,
                f"PixelData holds {length} bytes; NumberOfFrames x Rows x Columns x SamplesPerPixel x "
                f"BitsAllocated = {shape[0]} x {shape[1]} x {shape[2]} x {shape[3]} x {bits} bits declare {nbytes}",
            )
        if length > nbytes + 1:
            # Decoders would turn the excess into extra frames or components: read what is declared.
            ds.PixelData = bytes(ds.PixelData[: nbytes + nbytes % 2])
            warnings.warn(
                f"{path}: PixelData holds {length} bytes, {length - nbytes} more than NumberOfFrames x Rows x "
                f"Columns x SamplesPerPixel x BitsAllocated declare ({nbytes}); the trailing bytes are ignored",
                DicomWarning,
                stacklevel=4,
            )
    return shape


# Private creator of Siemens' CSA headers; the image header is element xx10 of its block.
_CSA_CREATOR = "SIEMENS CSA HEADER"


def is_mosaic(ds) -> bool:
    """Whether a dataset is a Siemens mosaic (ImageType holds MOSAIC)."""
    return any(str(v).strip().upper() == "MOSAIC" for v in (ds.get("ImageType") or []))


def check_mosaic_header(path: str, ds=None) -> None:
    """Raise ImageIOError unless a Siemens mosaic file has a CSA image header with its number of slices.

    The CSA header (0029,xx10) gives NumberOfImagesInMosaic; without it the tiles of the
    picture cannot be told from empty space, nor their order and slice normal.
    """
    if ds is None:
        ds = open_dicom(path, header_only=True)
    manufacturer = str(ds.get("Manufacturer") or "").upper()
    if manufacturer and "SIEMENS" not in manufacturer:
        return  # other vendors' mosaics (e.g. UIH) keep their layout in their own tags: dcm2niix reads them
    reason = None
    try:
        block = ds.private_block(0x0029, _CSA_CREATOR)
        raw = block[0x10].value
    except KeyError:
        raw = None
        reason = f"no Siemens CSA image header (private block {_CSA_CREATOR!r}, element 0029,xx10)"
    if raw is not None:
        try:
            with warnings.catch_warnings():
                # nibabel.nicom warns on import that its DICOM *readers* are experimental;
                # only its CSA parser is used here.
                warnings.simplefilter("ignore", UserWarning)
                from nibabel.nicom import csareader
        except ImportError:  # the CSA's content is then checked by dcm2niix only
            return
        try:
            header = csareader.read(raw)
            n = csareader.get_n_mosaic(header)
        except Exception as exc:  # noqa: BLE001 - nibabel raises several types for a corrupt CSA
            reason = f"unreadable Siemens CSA image header ({type(exc).__name__}: {exc})"
        else:
            if not n:
                reason = "the Siemens CSA image header has no NumberOfImagesInMosaic"
    if reason is not None:
        raise ImageIOError(
            path,
            f"Siemens mosaic (ImageType MOSAIC) with {reason}: the number, order and normal of the "
            "slices tiled in the picture are unknown, so it cannot be read as a volume",
        )


def _repeated_frame_positions(ds, path: str):
    """The distinct frame positions (N, 3) if a multi-frame file holds several volumes, else None.

    Several volumes: each frame position repeated equally often. Raises ImageIOError when
    positions repeat unequally (frames missing or duplicated).
    """
    items = frame_items(ds, "PlanePositionSequence")
    frames = int(ds.get("NumberOfFrames") or 1)
    iop = find(ds, "ImageOrientationPatient")
    if items is None or len(items) != frames or iop is None or len(iop) != 6:
        return None
    if not all("ImagePositionPatient" in it for it in items):
        return None
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    positions = np.array([[float(v) for v in it.ImagePositionPatient] for it in items])
    _, first, counts = np.unique(np.round(positions @ normal / 0.01).astype(np.int64), return_index=True, return_counts=True)
    if counts.max() == 1:
        return None
    if counts.min() != counts.max():
        raise ImageIOError(
            path,
            f"the {frames} frames lie at {len(counts)} slice positions, repeated {counts.min()} to "
            f"{counts.max()} times: frames are missing or duplicated, so the volumes cannot be separated",
        )
    return positions[first]


def _invert_monochrome1(arr: np.ndarray, ds) -> np.ndarray:
    """Map MONOCHROME1 (low = white) to MONOCHROME2 in the stored range, as GDCM does."""
    if arr.dtype.kind == "f":
        return -arr
    bits = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
    if arr.dtype.kind == "i":  # stored range [-2**(b-1), 2**(b-1) - 1]: its sum is -1
        return (-1 - arr).astype(arr.dtype)
    return ((1 << bits) - 1 - arr.astype(np.int64)).astype(arr.dtype)


def _number(value, default: float, name: str, path: str) -> float:
    if value is None or value == "":
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ImageIOError(path, f"{name} must be a number; got {value!r}") from None
    if not np.isfinite(out):
        raise ImageIOError(path, f"{name} must be finite; got {value!r}")
    return out


def _rescale_params(ds, frames: int, path: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (slope, intercept): per-frame functional groups, shared ones, or top level."""
    items = frame_items(ds, "PixelValueTransformationSequence")
    if items is not None and len(items) in (1, frames):
        slopes = [_number(it.get("RescaleSlope"), 1.0, "RescaleSlope", path) for it in items]
        intercepts = [_number(it.get("RescaleIntercept"), 0.0, "RescaleIntercept", path) for it in items]
    else:
        slopes = [_number(ds.get("RescaleSlope"), 1.0, "RescaleSlope", path)]
        intercepts = [_number(ds.get("RescaleIntercept"), 0.0, "RescaleIntercept", path)]
    slopes = [s if s != 0 else 1.0 for s in slopes]  # 0 = not set (as before: `or 1`)
    if "DoseGridScaling" in ds:  # RTDOSE: stored value * DoseGridScaling = dose in DoseUnits
        scale = _number(ds.DoseGridScaling, 1.0, "DoseGridScaling", path)
        slopes = [s * scale for s in slopes]
    return np.asarray(slopes, float), np.asarray(intercepts, float)


def _modality_lut(arr: np.ndarray, ds, path: str = "") -> np.ndarray:
    """Apply the modality LUT or rescale (CT to HU, PET to its Units, RTDOSE to Gy)."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return apply_modality_lut(arr, ds)
    slopes, intercepts = _rescale_params(ds, arr.shape[0], path)
    if np.all(slopes == 1) and np.all(intercepts == 0):
        return arr
    shape = (-1,) + (1,) * (arr.ndim - 1)
    slopes, intercepts = slopes.reshape(shape), intercepts.reshape(shape)
    integral = np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts))
    # Computed in float64 (exact for every integer below 2**53), then range-checked: integer
    # arithmetic in int64 would overflow silently for an absurd slope.
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float64) * slopes + intercepts
    low = high = 0.0
    if out.size:
        low, high = float(out.min()), float(out.max())
        if not (np.isfinite(low) and np.isfinite(high)) or max(abs(low), abs(high)) > float(np.finfo(np.float32).max):
            raise ImageIOError(
                path,
                f"RescaleSlope/RescaleIntercept{'/DoseGridScaling' if 'DoseGridScaling' in ds else ''} "
                f"({slopes.ravel()[0]:g}, {intercepts.ravel()[0]:g}) map the stored values outside the float32 range",
            )
    if integral and arr.dtype.kind in "iu":
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if out.size == 0 or (low >= info.min and high <= info.max):
                return out.astype(dtype)
        if high - low < 2**53 and max(abs(low), abs(high)) < 2**63:
            return out.astype(np.int64)
    return out.astype(np.float32)


def _valid_spacing(value, keyword: str = "PixelSpacing", path: str = "") -> tuple[float, float] | None:
    """(column step, row step) mm from a (row, column) spacing attribute; None if absent.

    A present but unusable value (not two numbers, not finite, outside
    :data:`medlab.io._guard.SPACING_RANGE`) raises: it is never replaced by another value.
    """
    if value is None:
        return None
    try:
        values = list(value) if not isinstance(value, (str, bytes)) else str(value).split("\\")
        row, col = (float(v) for v in values[:2])
    except (TypeError, ValueError):
        raise ImageIOError(path, f"{keyword} must be two numbers (row, column spacing in mm); got {value!r}") from None
    low, high = _guard.SPACING_RANGE
    if not (np.isfinite(row) and np.isfinite(col) and low <= row <= high and low <= col <= high):
        raise ImageIOError(path, f"{keyword} must be finite and in [{low:g}, {high:g}] mm; got {row!r}, {col!r}")
    return col, row


def _all_zero(value) -> bool:
    try:
        values = list(value) if not isinstance(value, (str, bytes)) else str(value).split("\\")
        return len(values) >= 2 and all(float(v) == 0.0 for v in values[:2])
    except (TypeError, ValueError):
        return False


def _pixel_spacing_xy(ds, path: str = "") -> tuple[float, float]:
    """In-plane spacing (x = column step, y = row step) in mm.

    PixelSpacing (patient plane), else ImagerPixelSpacing (projection radiographs: the
    detector plane), else the ultrasound region calibration when every 2D region agrees and
    is in cm, else 1.0 (no physical calibration). An attribute that is empty or exactly
    ``0\\0`` (how scanners write an unknown spacing) counts as not given; any other value
    outside the valid range is refused.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        value = find(ds, keyword)
        if value is not None and not str(value).strip("[]' \\"):
            continue  # present but empty (type 2): not given
        if _all_zero(value):
            # all zero: what scanners write for an unknown spacing (a real CR does); treated as
            # not given, and said, so that no one takes the 1.0 below for a calibration
            warnings.warn(
                f"{path}: {keyword} is 0\\0 (unknown); no pixel calibration in the header, "
                "so the spacing is 1.0 (one pixel), not mm: set it (image.SetSpacing) if you know it",
                DicomWarning,
                stacklevel=4,
            )
            continue
        spacing = _valid_spacing(value, keyword, path)
        if spacing is not None:
            return spacing
    deltas = set()
    for region in ds.get("SequenceOfUltrasoundRegions") or []:
        if region.get("RegionSpatialFormat") != 1:  # 1 = 2D tissue or flow image
            continue
        if region.get("PhysicalUnitsXDirection") != 3 or region.get("PhysicalUnitsYDirection") != 3:
            continue  # 3 = cm
        deltas.add((round(float(region.PhysicalDeltaX) * 10.0, 9), round(float(region.PhysicalDeltaY) * 10.0, 9)))
    if len(deltas) == 1:
        dx, dy = deltas.pop()
        if dx > 0 and dy > 0:
            return dx, dy
    return 1.0, 1.0


# FrameIncrementPointer values that make the frames instants of a cine (PS3.3 C.7.6.5)
_FRAME_TIME, _FRAME_TIME_VECTOR = 0x00181063, 0x00181065


def _cine_frame_times_ms(ds, frames: int) -> tuple[bool, list[float] | None]:
    """(is a cine, time of each frame from the first in ms or None) of a multi-frame file.

    A cine's FrameIncrementPointer names FrameTime or FrameTimeVector (PS3.3 C.7.6.5): its
    frames are instants of one plane. Frames of other kinds (NM energy windows, detectors or
    views; secondary captures without a pointer) are not instants.
    """
    pointer = ds.get("FrameIncrementPointer")
    if pointer is None:
        return False, None
    try:
        pointers = [int(pointer)] if isinstance(pointer, int) else [int(t) for t in pointer]
    except (TypeError, ValueError):
        return False, None
    if _FRAME_TIME_VECTOR in pointers:
        try:
            steps = np.asarray([float(v) for v in ds.FrameTimeVector], float)
        except (AttributeError, TypeError, ValueError):
            return True, None
        if len(steps) != frames or not np.all(np.isfinite(steps)):
            return True, None
        return True, [float(v) for v in np.cumsum(np.r_[0.0, steps[1:]])]
    if _FRAME_TIME in pointers:
        try:
            dt = float(ds.FrameTime)
        except (AttributeError, TypeError, ValueError):
            return True, None
        return True, ([k * dt for k in range(frames)] if np.isfinite(dt) and dt > 0 else None)
    return False, None


_UNPLACED = (None, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), 1.0)


def _frame_geometry(ds, frames: int, path: str):
    """(frame order or None, origin (x, y, z) mm, direction, z step mm) of a multi-frame file.

    Frames with known positions (enhanced per-frame PlanePositionSequence, or RTDOSE
    GridFrameOffsetVector) that are distinct along the slice normal are sorted along it and
    form a volume. Otherwise (cine, time series, multi-frame without geometry) frames stay in
    file order along z with step 1.0 (frame index), origin 0 and identity direction.
    """
    plain = _UNPLACED
    iop = find(ds, "ImageOrientationPatient")
    if iop is None or len(iop) != 6:
        return plain
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    positions = None
    items = frame_items(ds, "PlanePositionSequence")
    if items is not None and len(items) == frames and all("ImagePositionPatient" in it for it in items):
        positions = np.array([[float(v) for v in it.ImagePositionPatient] for it in items])
    elif "GridFrameOffsetVector" in ds and "ImagePositionPatient" in ds:
        offsets = np.asarray([float(v) for v in ds.GridFrameOffsetVector])
        if len(offsets) == frames:
            positions = np.asarray([float(v) for v in ds.ImagePositionPatient]) + offsets[:, None] * normal
    if positions is None:
        return plain
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    steps = np.diff(along[order])
    if np.any(steps <= 1e-6 * max(1.0, float(np.abs(along).max()))):
        return plain  # repeated positions (e.g. a time series): not one volume
    step = float((along[order[-1]] - along[order[0]]) / (frames - 1))
    warn_if_nonuniform(steps, path, stacklevel=4)
    direction = tuple(np.column_stack([row, col, normal]).ravel().tolist())
    order = None if np.all(order == np.arange(frames)) else order
    first = positions[order[0] if order is not None else 0]
    return order, tuple(float(v) for v in first), direction, step
