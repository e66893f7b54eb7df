"""Checks that run before and after a non-DICOM file is handed to SimpleITK's readers.

ITK's MetaImage and NRRD readers crash (SIGSEGV/SIGABRT) or loop forever on some corrupted
headers (``NDims = -1``, a mangled NRRD field), and its NIfTI, MetaImage and NRRD readers
zero-fill data that are shorter than the header declares. So, before ITK sees a file,
:func:`preflight` parses its header in Python and checks every field ITK relies on, bounds the
memory the header asks for (:data:`MAX_BYTES`, or ``medlab.io.read(..., max_bytes=)``) and checks
that the data (decompressed, with their checksum, where compressed) cover the declared size.
After the read, :func:`check_geometry` refuses spacing, origin or direction that cannot describe
a physical grid. Every refusal is an :class:`~medlab.errors.ImageIOError` naming the field.
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import re
import struct
import zlib

import numpy as np

from medlab.errors import ImageIOError

#: Largest image (bytes of voxel data, as the header declares them) that ``medlab.io.read``
#: allocates unless raised with ``read(..., max_bytes=)``. None (the default) means half of
#: this machine's physical memory. Set it (``medlab.io.MAX_BYTES = 2**34``) to change it for
#: the session.
MAX_BYTES: int | None = None

#: Spacing (mm) accepted along the spatial axes of any image read.
SPACING_RANGE = (1e-6, 1e5)

# A text header longer than this is not a MetaImage/NRRD header (real ones are < 10 KB).
_MAX_HEADER = 1 << 16
_MAX_DIMS = 5
_CHUNK = 1 << 22


def max_bytes(limit=None) -> int:
    """The byte limit in force: ``limit``, else :data:`MAX_BYTES`, else half the physical memory."""
    if limit is None:
        import medlab.io

        limit = getattr(medlab.io, "MAX_BYTES", None)
        if limit is None:
            limit = MAX_BYTES
    if limit is None:
        try:
            limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            limit = 8 << 30
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0:
        raise ValueError(f"`max_bytes` must be a positive int (bytes); got {limit!r}")
    return int(limit)


def _check_bytes(path, nbytes: int, limit: int, what: str) -> None:
    if nbytes > limit:
        raise ImageIOError(
            path,
            f"the header declares {what} = {nbytes / 2**20:.6g} MiB of voxel data, above the limit of "
            f"{limit / 2**20:.6g} MiB (pass max_bytes= to medlab.io.read, or set medlab.io.MAX_BYTES, "
            "if the file is trusted and this much memory is available)",
        )


def _finite(path, field: str, values, *, positive: bool = False) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ImageIOError(path, f"header field {field} holds {v!r}, not a number") from None
        if not math.isfinite(f) or (positive and f <= 0):
            kind = "finite and positive" if positive else "finite"
            raise ImageIOError(path, f"header field {field} must be {kind}; got {v!r}")
        out.append(f)
    return out


def _dimensions(path, h: dict, ndims_key: str, ndims_name: str, sizes_key: str, sizes_name: str):
    """The number of dimensions (1 to ``_MAX_DIMS``) and the positive grid sizes a text header declares.

    ``h`` maps lower-case header keys to their text; ``*_name`` is how an error names the field.
    """
    try:
        ndims = int(h.get(ndims_key, ""))
    except ValueError:
        raise ImageIOError(path, f"header field {ndims_name} must be an integer; got {h.get(ndims_key)!r}") from None
    if not 1 <= ndims <= _MAX_DIMS:
        raise ImageIOError(path, f"header field {ndims_name} must be 1 to {_MAX_DIMS}; got {ndims}")
    try:
        sizes = [int(v) for v in h.get(sizes_key, "").split()]
    except ValueError:
        raise ImageIOError(path, f"header field {sizes_name} must hold integers; got {h.get(sizes_key)!r}") from None
    if len(sizes) != ndims or min(sizes) < 1:
        raise ImageIOError(path, f"header field {sizes_name} must hold {ndims} positive integers; got {h.get(sizes_key)!r}")
    return ndims, sizes


def _data_file(path, source: str, field: str) -> str:
    """The path of the one detached data file a header names in ``field``, checked to exist beside it."""
    if source.upper().startswith("LIST") or "%" in source or len(source.split()) > 1:
        raise ImageIOError(path, f"{field} {source!r}: data split over several files is not supported")
    data_path = os.path.join(os.path.dirname(path), source)
    if not os.path.isfile(data_path):
        raise ImageIOError(path, f"the data file named by {field} ({source!r}) does not exist beside the header")
    return data_path


def _is_direction(matrix: np.ndarray) -> bool:
    """Whether a square matrix has unit columns (within 1e-3) and ``|det| >= 0.1`` (overflow-safe)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(matrix, axis=0)
        det = abs(np.linalg.det(matrix)) if np.all(np.isfinite(norms)) else 0.0
    return bool(np.all(np.abs(norms - 1) <= 1e-3) and det >= 0.1)


def _check_direction(path, field: str, matrix: np.ndarray) -> None:
    """A direction matrix must have unit columns and be far from singular (see check_geometry)."""
    if not _is_direction(matrix):
        raise ImageIOError(
            path,
            f"header field {field} must be a direction matrix (unit columns, far from singular); got "
            f"{' '.join(f'{v:g}' for v in matrix.ravel())}",
        )


def _decompressed_length(path, stream, need: int, *, kind: str, field: str) -> int:
    """Decompress ``stream`` (a file object positioned at the data) to its end; return its length.

    Raises ImageIOError when the stream is corrupt (checksum), ends early, or holds more than
    ``need`` bytes beyond what is needed (so memory stays bounded).
    """
    total = 0
    bz = kind == "bz2"
    dec = bz2.BZ2Decompressor() if bz else zlib.decompressobj(47)  # 47: zlib or gzip, as MetaIO/teem

    def pieces(data):
        yield len(dec.decompress(data, _CHUNK))
        if bz:
            while not dec.eof and not dec.needs_input:
                yield len(dec.decompress(b"", _CHUNK))
        else:
            while dec.unconsumed_tail and not dec.eof:
                yield len(dec.decompress(dec.unconsumed_tail, _CHUNK))

    try:
        while not dec.eof and total <= need + _CHUNK:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            for n in pieces(chunk):
                total += n
                if total > need + _CHUNK:
                    break  # more than declared: ITK reads what it needs; memory stays bounded
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise ImageIOError(path, f"the compressed data are corrupt ({exc}); {field}") from None
    if not dec.eof and total <= need:
        raise ImageIOError(
            path,
            f"the compressed data end early: {total} of the {need} bytes the header declares "
            f"({field}); the file is truncated",
        )
    if total < need:
        raise ImageIOError(path, f"the data hold {total} bytes; the header declares {need} ({field})")
    return total


# --------------------------------------------------------------------------------------------
# MetaImage (.mha, .mhd)

_MET_TYPES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
_MET_LINE = re.compile(rb"^\s*([^=\s][^=]*?)\s*=\s*(.*?)\s*$")  # keys of copied metadata: "dim[0]"


def _read_text_header(path, *, stop) -> tuple[list[tuple[str, str]], int]:
    """(key, value) pairs of a text header and the offset just after it; ``stop(key)`` ends it."""
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER + 1)
    fields, offset = [], 0
    while True:
        end = head.find(b"\n", offset)
        if end < 0:
            if len(head) > _MAX_HEADER:
                raise ImageIOError(path, f"no end of the text header within {_MAX_HEADER} bytes")
            end = len(head)
        line = head[offset:end]
        nxt = end + 1
        done = stop(line, fields)
        if done is not None:
            return fields, (nxt if done else offset)
        if end >= len(head):
            return fields, len(head)
        offset = nxt


_MET_KEYS = {"ndims", "dimsize", "elementtype", "elementnumberofchannels", "elementspacing", "elementsize",
             "offset", "position", "origin", "centerofrotation", "transformmatrix", "rotation", "orientation",
             "binarydata", "compresseddata", "compresseddatasize", "headersize", "elementdatafile"}


_MET_NAMES = {"transformmatrix": "TransformMatrix", "rotation": "Rotation", "orientation": "Orientation"}


def preflight_metaimage(path: str, limit: int) -> None:
    """Validate a MetaImage header (and its data length) before ITK reads it."""

    def stop(line, fields):
        if not line.strip():
            return None
        m = _MET_LINE.match(line.rstrip(b"\r"))
        if m is None:
            raise ImageIOError(path, f"not a MetaImage header line: {line[:60]!r}")
        try:
            key, value = m[1].decode("ascii"), m[2].decode("utf-8")
        except UnicodeDecodeError:
            raise ImageIOError(path, f"MetaImage header line is not text: {line[:60]!r}") from None
        fields.append((key, value))
        return True if key.lower() == "elementdatafile" else None

    fields, data_offset = _read_text_header(path, stop=stop)
    h = {}
    for key, value in fields:
        if key.lower() in h and key.lower() in _MET_KEYS:
            raise ImageIOError(path, f"header field {key} appears twice")
        h[key.lower()] = value
    if "elementdatafile" not in h:
        raise ImageIOError(path, "MetaImage header without ElementDataFile (where the data are)")
    ndims, dims = _dimensions(path, h, "ndims", "NDims", "dimsize", "DimSize")
    etype = h.get("elementtype", "").strip().upper()
    if etype not in _MET_TYPES:
        raise ImageIOError(path, f"header field ElementType {h.get('elementtype')!r} is not one of {', '.join(_MET_TYPES)}")
    try:
        channels = int(h.get("elementnumberofchannels", "1"))
    except ValueError:
        channels = 0
    if not 1 <= channels <= 1024:
        raise ImageIOError(path, f"header field ElementNumberOfChannels must be 1 to 1024; got {h.get('elementnumberofchannels')!r}")
    for key in ("elementspacing", "elementsize"):
        if key in h:
            values = h[key].split()
            if len(values) != ndims:
                raise ImageIOError(path, f"header field {key} must hold {ndims} numbers; got {h[key]!r}")
            _finite(path, "ElementSpacing" if key == "elementspacing" else "ElementSize", values, positive=True)
    for key in ("offset", "position", "origin", "centerofrotation"):
        if key in h:
            values = h[key].split()
            if len(values) != ndims:
                raise ImageIOError(path, f"header field {key} must hold {ndims} numbers; got {h[key]!r}")
            _finite(path, key, values)
    for key in ("transformmatrix", "rotation", "orientation"):
        if key in h:
            values = h[key].split()
            if len(values) != ndims * ndims:
                raise ImageIOError(path, f"header field {key} must hold {ndims * ndims} numbers; got {len(values)}")
            # ITK loops forever on e.g. an entry of 1e308 (its SVD does not converge).
            _check_direction(path, _MET_NAMES[key], np.asarray(_finite(path, key, values)).reshape(ndims, ndims))
    nbytes = int(np.prod(dims, dtype=object)) * channels * _MET_TYPES[etype]
    _check_bytes(path, nbytes, limit, "DimSize x ElementNumberOfChannels x size of ElementType")
    binary = h.get("binarydata", "True").strip().lower() in ("true", "1")
    compressed = h.get("compresseddata", "False").strip().lower() in ("true", "1")
    source = h["elementdatafile"].strip()
    if not source:
        raise ImageIOError(path, "header field ElementDataFile is empty")
    if source.upper() == "LOCAL":
        data_path, offset = path, data_offset
    else:
        data_path, offset = _data_file(path, source, "ElementDataFile"), 0
    if not binary:
        return  # ASCII voxel values: ITK parses them; the size is bounded above
    size = os.path.getsize(data_path)
    header_size = h.get("headersize")
    if header_size is not None and data_path != path:
        try:
            hs = int(header_size)
        except ValueError:
            raise ImageIOError(path, f"header field HeaderSize must be an integer; got {header_size!r}") from None
        if hs < -1:
            raise ImageIOError(path, f"header field HeaderSize must be -1 or >= 0; got {hs}")
        offset = max(hs, 0) if hs >= 0 else None
    field = f"DimSize {' '.join(map(str, dims))}, {etype}, {channels} channel(s)"
    if compressed:
        if "compresseddatasize" in h:
            try:
                csize = int(h["compresseddatasize"])
            except ValueError:
                raise ImageIOError(path, f"header field CompressedDataSize must be an integer; got {h['compresseddatasize']!r}") from None
            if csize < 1 or csize > size - (offset or 0):
                raise ImageIOError(path, f"header field CompressedDataSize {csize} does not fit the {size - (offset or 0)} bytes of data in {os.path.basename(data_path)}")
        with open(data_path, "rb") as f:
            f.seek(offset or 0)
            got = _decompressed_length(path, f, nbytes, kind="zlib", field=field)
        if got != nbytes:
            raise ImageIOError(path, f"the compressed data hold {got} bytes; the header declares {nbytes} ({field})")
        return
    available = size - (offset or 0) if offset is not None else size
    if available < nbytes:
        raise ImageIOError(
            path,
            f"the data hold {available} bytes; the header declares {nbytes} ({field}): the file is truncated "
            "or the header's DimSize/ElementType is wrong",
        )


# --------------------------------------------------------------------------------------------
# NRRD (.nrrd, .nhdr)

_NRRD_TYPES = {}
for _names, _size in (
    (("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    (("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
      "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    (("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"), 4),
    (("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
      "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
      "double"), 8),
):
    for _n in _names:
        _NRRD_TYPES[_n] = _size
_NRRD_ENCODINGS = {"raw": "raw", "txt": "text", "text": "text", "ascii": "text", "hex": "hex",
                   "gz": "gzip", "gzip": "gzip", "bz2": "bz2", "bzip2": "bz2"}
_VECTOR = re.compile(r"\(([^()]*)\)|none")


def _nrrd_vectors(path, field: str, value: str, count: int | None) -> list:
    items = _VECTOR.findall(value)
    tokens = _VECTOR.sub("", value).strip()
    if tokens:
        raise ImageIOError(path, f"header field {field!r} is not a list of (x,y,z) vectors: {value[:80]!r}")
    found = [m.group(0) for m in _VECTOR.finditer(value)]
    if count is not None and len(found) != count:
        raise ImageIOError(path, f"header field {field!r} must hold {count} entries; got {len(found)}")
    out = []
    for text, inner in zip(found, items):
        if text == "none":
            out.append(None)
        else:
            out.append(_finite(path, field, inner.split(",")))
    return out


def preflight_nrrd(path: str, limit: int) -> None:
    """Validate a NRRD header (and its data length) before ITK reads it."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if not re.fullmatch(rb"NRRD000[1-5]", magic):
        raise ImageIOError(path, f"not a NRRD file (magic {magic!r}, expected NRRD0001 to NRRD0005)")

    def stop(line, fields):
        line = line.rstrip(b"\r")
        if not fields and line.startswith(b"NRRD"):
            fields.append(("magic", ""))
            return None
        if not line.strip():
            return True  # the blank line ends the header
        if line.startswith(b"#"):
            return None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ImageIOError(path, f"NRRD header line is not text: {line[:60]!r}") from None
        if ":=" in text:
            return None  # key/value pair, free text
        if ": " not in text:
            raise ImageIOError(path, f"not a NRRD header line: {text[:60]!r}")
        key, value = text.split(": ", 1)
        fields.append((key.strip().lower(), value.strip()))
        return True if key.strip().lower() in ("data file", "datafile") else None

    fields, data_offset = _read_text_header(path, stop=stop)
    h = {}
    for key, value in fields[1:]:
        if key in h:
            raise ImageIOError(path, f"header field {key!r} appears twice")
        h[key] = value
    ndims, sizes = _dimensions(path, h, "dimension", "'dimension'", "sizes", "'sizes'")
    etype = " ".join(h.get("type", "").split()).lower()
    if etype not in _NRRD_TYPES:
        raise ImageIOError(path, f"header field 'type' {h.get('type')!r} is not a NRRD scalar type ITK reads")
    encoding = _NRRD_ENCODINGS.get(h.get("encoding", "").strip().lower())
    if encoding is None or encoding == "hex":
        raise ImageIOError(path, f"header field 'encoding' {h.get('encoding')!r} is not one of raw, gzip, bzip2, ascii")
    if _NRRD_TYPES[etype] > 1 and encoding in ("raw", "gzip", "bz2"):
        if h.get("endian", "").strip().lower() not in ("little", "big"):
            raise ImageIOError(path, f"header field 'endian' must be little or big; got {h.get('endian')!r}")
    space_dim = None
    if "space dimension" in h:
        try:
            space_dim = int(h["space dimension"])
        except ValueError:
            space_dim = 0
        if not 1 <= space_dim <= 4:
            raise ImageIOError(path, f"header field 'space dimension' must be 1 to 4; got {h['space dimension']!r}")
    elif "space" in h:
        space_dim = 4 if "time" in h["space"].lower() else 3
    kinds = h.get("kinds", "").split()
    if "spacings" in h:
        values = h["spacings"].split()
        if len(values) != ndims:
            raise ImageIOError(path, f"header field 'spacings' must hold {ndims} entries; got {h['spacings']!r}")
        # NaN marks an axis without a spacing: allowed for non-spatial kinds (vector, list,
        # RGB-color, ...), never for a domain/space axis, which ITK would silently give 1.0.
        spatial_axes = [
            v for i, v in enumerate(values)
            if v.lower() != "nan" or len(kinds) != ndims or kinds[i].lower() in ("domain", "space", "time")
        ]
        _finite(path, "spacings", spatial_axes, positive=True)
    if "space directions" in h:
        vectors = _nrrd_vectors(path, "space directions", h["space directions"], ndims)
        for v in vectors:
            if v is None:
                continue
            if space_dim is not None and len(v) != space_dim:
                raise ImageIOError(path, f"header field 'space directions' holds a vector of {len(v)} numbers in a {space_dim}D space")
            if not math.isfinite(math.hypot(*v)) or math.hypot(*v) <= 0:
                raise ImageIOError(path, f"header field 'space directions' holds a zero or infinite vector {v}")
        spatial = [v for v in vectors if v is not None]
        if not spatial:
            raise ImageIOError(path, "header field 'space directions' has no spatial axis")
        if len(spatial) == len(spatial[0]):  # square: ITK normalizes the columns, then inverts
            m = np.asarray(spatial, float).T
            with np.errstate(over="ignore", invalid="ignore"):
                m = m / np.linalg.norm(m, axis=0)
            _check_direction(path, "'space directions' (normalized)", m)
    if "space origin" in h:
        (origin,) = _nrrd_vectors(path, "space origin", h["space origin"], 1)
        if origin is None or (space_dim is not None and len(origin) != space_dim):
            raise ImageIOError(path, f"header field 'space origin' must be a {space_dim}-vector; got {h['space origin']!r}")
    nbytes = int(np.prod(sizes, dtype=object)) * _NRRD_TYPES[etype]
    _check_bytes(path, nbytes, limit, "sizes x size of type")
    source = h.get("data file", h.get("datafile"))
    offset = data_offset
    data_path = path
    if source is not None:
        data_path, offset = _data_file(path, source, "'data file'"), 0
    for key in ("line skip", "lineskip"):
        if key in h and h[key].strip() != "0":
            raise ImageIOError(path, f"header field {key!r} is not supported")
    if "byte skip" in h or "byteskip" in h:
        try:
            skip = int(h.get("byte skip", h.get("byteskip")))
        except ValueError:
            raise ImageIOError(path, "header field 'byte skip' must be an integer") from None
        if skip < -1:
            raise ImageIOError(path, f"header field 'byte skip' must be -1 or >= 0; got {skip}")
        offset = None if skip == -1 else offset + skip
    if encoding == "text":
        return
    size = os.path.getsize(data_path)
    field = f"sizes {' '.join(map(str, sizes))}, type {etype}"
    if encoding == "raw":
        available = size if offset is None else size - offset
        if available < nbytes:
            raise ImageIOError(
                path,
                f"the data hold {max(available, 0)} bytes; the header declares {nbytes} ({field}): the file "
                "is truncated or the header's sizes/type is wrong",
            )
        return
    if offset is None:
        raise ImageIOError(path, "'byte skip: -1' with compressed data is not supported")
    with open(data_path, "rb") as f:
        f.seek(offset)
        _decompressed_length(path, f, nbytes, kind=encoding, field=field)


# --------------------------------------------------------------------------------------------
# NIfTI (.nii, .nii.gz)

_NIFTI_TYPES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8,
                1280: 8, 1536: 16, 1792: 16, 2048: 32, 2304: 4}


def _nifti_header(path: str, raw: bytes) -> dict:
    if len(raw) < 348:
        raise ImageIOError(path, f"shorter ({len(raw)} bytes) than a NIfTI header (348 bytes)")
    for endian in "<>":
        (n,) = struct.unpack(endian + "i", raw[:4])
        if n in (348, 540):
            break
    else:
        raise ImageIOError(path, f"not a NIfTI file (sizeof_hdr {struct.unpack('<i', raw[:4])[0]}, expected 348 or 540)")
    e = endian
    if n == 348:
        dims = struct.unpack(e + "8h", raw[40:56])
        datatype, bitpix = struct.unpack(e + "2h", raw[70:74])
        pixdim = struct.unpack(e + "8f", raw[76:108])
        (vox_offset,) = struct.unpack(e + "f", raw[108:112])
        slope, inter = struct.unpack(e + "2f", raw[112:120])
        qform_code, sform_code = struct.unpack(e + "2h", raw[252:256])
        quatern = struct.unpack(e + "6f", raw[256:280])
        srow = struct.unpack(e + "12f", raw[280:328])
    else:
        if len(raw) < 540:
            raise ImageIOError(path, f"shorter ({len(raw)} bytes) than a NIfTI-2 header (540 bytes)")
        datatype, bitpix = struct.unpack(e + "2h", raw[12:16])
        dims = struct.unpack(e + "8q", raw[16:80])
        pixdim = struct.unpack(e + "8d", raw[104:168])
        (vox_offset,) = struct.unpack(e + "q", raw[168:176])
        slope, inter = struct.unpack(e + "2d", raw[176:192])
        qform_code, sform_code = struct.unpack(e + "2i", raw[344:352])
        quatern = struct.unpack(e + "6d", raw[352:400])
        srow = struct.unpack(e + "12d", raw[400:496])
    return dict(size=n, dims=dims, datatype=datatype, bitpix=bitpix, pixdim=pixdim, vox_offset=vox_offset,
                slope=slope, inter=inter, qform_code=qform_code, sform_code=sform_code, quatern=quatern, srow=srow)


def preflight_nifti(path: str, limit: int) -> None:
    """Validate a NIfTI-1/2 header and check that the (decompressed) data cover it."""
    gz = path.lower().endswith(".gz")
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            raw = f.read(540)
    except EOFError:
        raise ImageIOError(path, "the compressed data end before the NIfTI header is complete: the file is truncated") from None
    except (OSError, zlib.error) as exc:
        raise ImageIOError(path, f"cannot decompress the NIfTI header: {exc}") from None
    h = _nifti_header(path, raw)
    ndim = h["dims"][0]
    if not 1 <= ndim <= 7:
        raise ImageIOError(path, f"header field dim[0] (number of dimensions) must be 1 to 7; got {ndim}")
    dims = h["dims"][1 : ndim + 1]
    if min(dims) < 1:
        raise ImageIOError(path, f"header field dim[1..{ndim}] must be positive; got {list(dims)}")
    if h["datatype"] not in _NIFTI_TYPES:
        raise ImageIOError(path, f"header field datatype {h['datatype']} is not a NIfTI data type ITK reads")
    itemsize = _NIFTI_TYPES[h["datatype"]]
    spatial = min(ndim, 3)
    _finite(path, f"pixdim[1..{spatial}] (voxel size)", h["pixdim"][1 : spatial + 1], positive=True)
    _finite(path, f"pixdim[{spatial + 1}..{ndim}]", h["pixdim"][spatial + 1 : ndim + 1])
    if h["pixdim"][0] not in (0.0, 1.0, -1.0) and not math.isfinite(h["pixdim"][0]):
        raise ImageIOError(path, f"header field pixdim[0] (qfac) must be finite; got {h['pixdim'][0]}")
    _finite(path, "scl_slope/scl_inter", (h["slope"], h["inter"]))
    if h["qform_code"] > 0:
        _finite(path, "quatern_b/c/d, qoffset_x/y/z", h["quatern"])
    if h["sform_code"] > 0:
        _finite(path, "srow_x/y/z", h["srow"])
        m = np.asarray(h["srow"], float).reshape(3, 4)[:, :3]
        if abs(np.linalg.det(m)) < 1e-12 * max(1.0, float(np.abs(m).max()) ** 3):
            raise ImageIOError(path, "header field srow_x/y/z (sform) is singular: no voxel-to-world map")
    vox_offset = _finite(path, "vox_offset", [h["vox_offset"]])[0]
    if vox_offset < h["size"] or vox_offset != int(vox_offset):
        raise ImageIOError(path, f"header field vox_offset must be an integer >= {h['size']}; got {h['vox_offset']}")
    nbytes = int(np.prod(dims, dtype=object)) * itemsize
    _check_bytes(path, nbytes, limit, "dim x size of datatype")
    need = int(vox_offset) + nbytes
    field = f"dim {list(dims)}, datatype {h['datatype']}, vox_offset {int(vox_offset)}"
    if not gz:
        size = os.path.getsize(path)
        if size < need:
            raise ImageIOError(
                path,
                f"the file holds {size} bytes; the header declares {need} ({field}): the file is truncated "
                "or the header's dim/datatype is wrong",
            )
        return
    # gzip: decompress to the end, which also checks each member's CRC and length.
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > need + (64 << 20):
                    break  # far more data than declared: ITK reads what it needs
    except EOFError:
        raise ImageIOError(
            path,
            f"the compressed data end before the {need} bytes the header declares ({field}) are complete "
            "(or without their end-of-stream checksum): the file is truncated",
        ) from None
    except (OSError, zlib.error) as exc:
        raise ImageIOError(path, f"the compressed data are corrupt ({exc}); {field}") from None
    if total < need:
        raise ImageIOError(path, f"the data hold {total} bytes; the header declares {need} ({field})")


_PREFLIGHT = {
    ".mha": preflight_metaimage,
    ".mhd": preflight_metaimage,
    ".nrrd": preflight_nrrd,
    ".nhdr": preflight_nrrd,
    ".nii": preflight_nifti,
    ".nii.gz": preflight_nifti,
}


def preflight(path: str, ext: str, limit: int) -> None:
    """Run the header check of ``ext`` (if any) on ``path``; raise ImageIOError on a bad header."""
    check = _PREFLIGHT.get(ext)
    if check is None:
        return
    try:
        check(path, limit)
    except ImageIOError:
        raise
    except (OSError, ValueError, struct.error, OverflowError, MemoryError) as exc:
        raise ImageIOError(path, f"unreadable {ext} header: {type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------------------------
# After the read


def check_geometry(img, path: str, *, dicom: bool = False) -> None:
    """Refuse an image whose spacing, origin or direction is not a physical grid.

    Spacing along the (up to 3) spatial axes must lie in :data:`SPACING_RANGE` mm (a further
    axis, e.g. time or volume, must be finite and positive); origin finite; direction finite
    with unit columns and a determinant of magnitude above 0.1 (orthonormal, or sheared as
    a DICOM gantry tilt is kept, never singular).
    """
    dim = img.GetDimension()
    spacing = np.asarray(img.GetSpacing(), float)
    low, high = SPACING_RANGE
    spatial = spacing[: min(dim, 3)]
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ImageIOError(path, f"spacing must be finite and positive; got {tuple(spacing.tolist())}")
    if np.any(spatial < low) or np.any(spatial > high):
        raise ImageIOError(path, f"spacing must lie in [{low:g}, {high:g}] mm; got {tuple(spacing.tolist())}")
    origin = np.asarray(img.GetOrigin(), float)
    if not np.all(np.isfinite(origin)):
        raise ImageIOError(path, f"origin must be finite; got {tuple(origin.tolist())}")
    direction = np.asarray(img.GetDirection(), float).reshape(dim, dim)
    if not np.all(np.isfinite(direction)):
        raise ImageIOError(path, "direction must be finite")
    if not _is_direction(direction):
        raise ImageIOError(
            path,
            f"direction must have unit columns and be far from singular; got {tuple(np.round(direction.ravel(), 6).tolist())}",
        )
