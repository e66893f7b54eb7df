"""A minimal DICOM header reader for the folder scan: a few top-level values, without pydicom.

Scanning a folder needs about twenty values per file (identity, grouping and geometry), all in
the groups before the pixel data. pydicom builds an element object for each of the few hundred
elements before them (vendors' private groups included) and costs about 1 ms a file; walking
the element headers with :mod:`struct` and decoding only the wanted values costs a fraction of
that, which matters for a 4D series of thousands of files.

Only the plain cases are handled here: a file with the 128-byte preamble and 'DICM', explicit
VR little endian file meta, and an implicit or explicit VR little endian data set (that of
every compressed transfer syntax too). Anything else (big endian, deflate, no preamble, an
unknown VR, an element cut off, an undefined length that is not a sequence, nesting deeper
than :data:`MAX_DEPTH`) raises :class:`Fallback`, and the caller parses the file with pydicom,
so a broken or unusual file is judged exactly as before. Values are returned as pydicom's
plain text, split at backslashes, and as integers for US, so the caller converts both the same
way.
"""

from __future__ import annotations

import os
import struct

#: Value representations with a 4-byte length in explicit VR (PS3.5 Table 7.1-1).
_LONG_VR = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
#: Every value representation of PS3.5 (an unknown one sends the file to pydicom).
_VRS = _LONG_VR | frozenset(
    (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
     b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")
)
_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_IMPLICIT = struct.Struct("<HHI").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from

_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_IMPLICIT_LE, _EXPLICIT_BE, _DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
#: Largest nesting of undefined-length sequences walked here.
MAX_DEPTH = 8
_CHUNK = 1 << 16


class Fallback(Exception):
    """The file is not one of the plain cases: parse it with pydicom."""


class _File:
    """Bytes of an open file at absolute offsets, read in chunks."""

    __slots__ = ("fh", "buf", "base")

    def __init__(self, fh):
        self.fh = fh
        self.buf = fh.read(_CHUNK)
        self.base = 0

    def at(self, pos: int, n: int) -> tuple[bytes, int]:
        """(buffer, offset in it) holding bytes pos .. pos+n-1 of the file; b'' at a clean end."""
        rel = pos - self.base
        if rel < 0 or rel + n > len(self.buf):
            self.fh.seek(pos)
            self.buf = self.fh.read(max(_CHUNK, n))
            self.base, rel = pos, 0
            if not self.buf:
                return b"", 0
            if len(self.buf) < n:
                raise Fallback("cut off")
        return self.buf, rel


def _element(f: _File, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, value offset) of the element at ``pos``."""
    buf, rel = f.at(pos, 8)
    if not buf:
        raise Fallback("cut off")
    if implicit:
        group, elem, n = _IMPLICIT(buf, rel)
        return group << 16 | elem, None, n, pos + 8
    group, elem, vr, n = _EXPLICIT(buf, rel)
    tag = group << 16 | elem
    if group == 0xFFFE:  # item tags have no VR
        return tag, None, _U32(buf, rel + 4)[0], pos + 8
    if vr in _LONG_VR:
        buf, rel = f.at(pos + 8, 4)
        if not buf:
            raise Fallback("cut off")
        return tag, vr, _U32(buf, rel)[0], pos + 12
    if vr not in _VRS:
        raise Fallback(f"unknown VR {vr!r}")
    return tag, vr, n, pos + 8


def _skip_sequence(f: _File, pos: int, implicit: bool, depth: int) -> int:
    """Offset after an undefined-length sequence whose first item starts at ``pos``."""
    if depth > MAX_DEPTH:
        raise Fallback("deep nesting")
    while True:
        tag, _, n, pos = _element(f, pos, True)  # item tags: tag + 4-byte length
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise Fallback("not an item")
        if n != _UNDEFINED:
            pos += n
            continue
        while True:  # the elements of an undefined-length item, up to its delimiter
            buf, rel = f.at(pos, 4)
            if not buf:
                raise Fallback("cut off")
            group, elem = struct.unpack_from("<HH", buf, rel)
            if (group << 16 | elem) == _ITEM_END:
                pos += 8
                break
            _, vr, n, pos = _element(f, pos, implicit)
            if n == _UNDEFINED:
                if not implicit and vr != b"SQ":
                    raise Fallback("undefined length outside a sequence")
                pos = _skip_sequence(f, pos, implicit, depth + 1)
            else:
                pos += n


def _group_limits(wanted) -> dict[int, int]:
    """Group -> its last element that :func:`read` needs (wanted, SpecificCharacterSet, the
    DICOMDIR's record sequence)."""
    limits: dict[int, int] = {}
    for tag in (*wanted, 0x00080005, 0x00041220):
        group, elem = tag >> 16, tag & 0xFFFF
        if elem > limits.get(group, -1):
            limits[group] = elem
    return limits


def _lands(f: _File, pos: int, group: int) -> bool:
    """Whether a group length (explicit VR) points at the end of the file or at the group
    length element of a later group. A group length left stale by an editing tool points
    elsewhere (seen in pydicom's test files): the walk then goes on element by element."""
    size = os.fstat(f.fh.fileno()).st_size
    if pos >= size:
        return pos == size  # the end of the file; beyond it: a wrong length
    if pos + 8 > size:
        return False
    buf, rel = f.at(pos, 8)
    g, e, vr, n = _EXPLICIT(buf, rel)
    return g > group and e == 0 and vr == b"UL" and n == 4


def _text(raw: bytes) -> str | list[str] | None:
    text = raw.decode("latin-1")
    parts = [p.strip(" \x00") for p in text.split("\\")]
    if len(parts) == 1:
        return parts[0] or None
    return parts


def _pixel_data(f: _File, n: int, start: int) -> tuple:
    """(value offset, declared length or -1 when undefined, file size, problem or None) of a
    Pixel Data element; for an undefined length (encapsulated), the problem names the first item
    header or fragment that does not fit in the file (only the 8-byte item headers are read)."""
    fd = f.fh.fileno()
    size = os.fstat(fd).st_size
    if n != _UNDEFINED:
        return start, n, size, None
    pos = start
    for _ in range(1 << 20):
        head = os.pread(fd, 8, pos)
        if len(head) < 8:
            return start, -1, size, f"the encapsulated item header at byte {pos} lies past the end of the file"
        group, elem, length = struct.unpack("<HHI", head)
        item = group << 16 | elem
        if item == _SEQ_END:
            return start, -1, size, None
        if item != _ITEM or length == _UNDEFINED:
            return start, -1, size, f"byte {pos} holds no encapsulated item (tag {item:08X})"
        pos += 8 + length
        if pos > size:
            return start, -1, size, (
                f"the encapsulated fragment of {length} bytes at byte {pos - length} runs past the end of the file "
                f"({pos - size} bytes missing)"
            )
    return start, -1, size, "more than a million encapsulated items"


def read(
    path: str, wanted: dict[int, str], last: int, text_vrs: dict[int, bytes], *, pixel_data: bool = False
) -> dict:
    """Values of the ``wanted`` top-level tags of a DICOM file, reading stops after tag ``last``.

    Parameters
    ----------
    path : str
    wanted : dict
        Tag (int, group << 16 | element) -> keyword of the values to return.
    last : int
        Parsing stops at the first top-level tag above this one.
    text_vrs : dict
        Tag -> VR of each wanted tag (the VR of an implicit VR file; None: any VR, the value
        returned as text, e.g. a private tag or one whose VR varies); US values are returned
        as ints, OB values as bytes, AT values as a list of tags (ints, group << 16 | element), every other value
        as its text (one str, or a list for several values; None
        when empty). Values of the VRs LO, SH, ST, LT, UT, PN, UC are returned as bytes under
        ``'raw:' + keyword`` too, to be decoded with the file's character set by the caller.
    pixel_data : bool
        Also walk on after ``last`` (reading no values) to the Pixel Data element (7FE0,0010) and
        return where it lies under 'PixelData' (see :func:`_pixel_data`; absent when the file has
        none). A walk that cannot go on after ``last`` (an unknown VR, a cut-off element) does not
        fail the read: 'PixelData' is then None (the caller asks pydicom about that file).

    Returns
    -------
    dict
        Keyword -> value for the wanted tags present, plus 'MediaStorageSOPClassUID' and
        'TransferSyntaxUID' from the file meta, 'SpecificCharacterSet' (raw bytes) when present and
        'DirectoryRecordSequence' (True) for a DICOMDIR; with ``pixel_data``, 'PixelData'.

    Raises
    ------
    Fallback
        The file is not one of the plain cases (see the module docstring).
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as fh:
        f = _File(fh)
        buf = f.buf
        if len(buf) < 144 or buf[128:132] != b"DICM":
            raise Fallback("no preamble")
        out: dict = {}
        pos, syntax = 132, None
        while True:  # file meta: always explicit VR little endian, group 0002
            buf, rel = f.at(pos, 8)
            if not buf or _U16(buf, rel)[0] != 2:
                break
            tag, vr, n, start = _element(f, pos, False)
            if n == _UNDEFINED:
                raise Fallback("undefined length in the file meta")
            if tag in (0x00020010, 0x00020002):
                buf, rel = f.at(start, n)
                if not buf and n:
                    raise Fallback("cut off")
                value = buf[rel:rel + n].decode("latin-1").strip(" \x00")
                if tag == 0x00020010:
                    syntax = value
                else:
                    out["MediaStorageSOPClassUID"] = value
            pos = start + n
        if not syntax or syntax in (_EXPLICIT_BE, _DEFLATED):
            raise Fallback(f"transfer syntax {syntax!r}")
        implicit = syntax == _IMPLICIT_LE
        limits = {} if implicit else _group_limits(wanted)
        if pixel_data:
            limits[0x7FE0] = 0x0010  # the pixel data's group is walked into, never jumped over
        cur, group_end = -1, 0  # the current group and its end from its group length (0: unknown)
        buf, base = f.buf, f.base
        end = len(buf)
        past = False  # walking on after ``last``, to the pixel data only
        try:
            while True:
                rel = pos - base
                if 0 <= rel and rel + 12 <= end:  # the common case, inline: 12 bytes at hand
                    if implicit:
                        group, elem, n = _IMPLICIT(buf, rel)
                        vr, start = None, pos + 8
                    else:
                        group, elem, vr, n = _EXPLICIT(buf, rel)
                        if vr in _LONG_VR:
                            n, start = _U32(buf, rel + 8)[0], pos + 12
                        elif vr in _VRS:
                            start = pos + 8
                        else:
                            raise Fallback(f"unknown VR {vr!r}")
                    tag = group << 16 | elem
                else:
                    head, _ = f.at(pos, 8)
                    if not head:  # a clean end of the file between elements
                        break
                    tag, vr, n, start = _element(f, pos, implicit)
                    buf, base = f.buf, f.base
                    end = len(buf)
                if tag > last:
                    if not pixel_data or tag > 0x7FE00010:
                        break
                    past = True
                    if tag == 0x7FE00010:
                        out["PixelData"] = _pixel_data(f, n, start)
                        break
                if not implicit:  # skip what is left of a group without wanted values, by its length
                    if tag >> 16 != cur:
                        cur, group_end = tag >> 16, 0
                        if tag & 0xFFFF == 0 and vr == b"UL" and n == 4:
                            chunk, at = f.at(start, 4)
                            if chunk:
                                group_end = start + 4 + _U32(chunk, at)[0]
                            if group_end and limits.get(cur, -1) < 1 and _lands(f, group_end, cur):
                                pos = group_end
                                buf, base = f.buf, f.base
                                end = len(buf)
                                continue
                            buf, base = f.buf, f.base
                            end = len(buf)
                    elif group_end and tag & 0xFFFF > limits.get(cur, -1):
                        if _lands(f, group_end, cur):
                            pos = group_end
                            buf, base = f.buf, f.base
                            end = len(buf)
                            continue
                        group_end = 0  # a wrong group length: walk on element by element
                        buf, base = f.buf, f.base
                        end = len(buf)
                if n == _UNDEFINED:
                    if not implicit and vr != b"SQ":
                        raise Fallback("undefined length outside a sequence")
                    if tag == 0x00041220:
                        out["DirectoryRecordSequence"] = True
                    pos = _skip_sequence(f, start, implicit, 1)
                    buf, base = f.buf, f.base
                    end = len(buf)
                    continue
                if tag in wanted or tag == 0x00080005:
                    chunk, at = f.at(start, n)
                    if not chunk and n:
                        raise Fallback("cut off")
                    raw = chunk[at:at + n]
                    buf, base = f.buf, f.base
                    end = len(buf)
                    if tag == 0x00080005:
                        out["SpecificCharacterSet"] = raw
                    else:
                        key, kind = wanted[tag], text_vrs[tag]
                        if kind is not None and vr is not None and vr != kind:  # e.g. UN, or a vendor's other VR
                            raise Fallback(f"{key} stored as {vr!r}")
                        if kind == b"US":
                            out[key] = _U16(raw)[0] if n == 2 else None
                        elif kind == b"OB":  # bytes as stored (e.g. a private binary header)
                            out[key] = bytes(raw)
                        elif kind == b"AT":  # attribute tags: (group, element) pairs of uint16
                            if n % 4:
                                raise Fallback(f"{key} of {n} bytes")
                            pairs = struct.unpack(f"<{n // 2}H", raw)
                            out[key] = [pairs[i] << 16 | pairs[i + 1] for i in range(0, len(pairs), 2)]
                        else:
                            out[key] = _text(raw)
                            if kind in (b"LO", b"SH", b"ST", b"LT", b"UT", b"PN", b"UC"):
                                out["raw:" + key] = raw
                elif tag == 0x00041220:
                    out["DirectoryRecordSequence"] = True
                pos = start + n
        except Fallback:
            if not past:
                raise
            out["PixelData"] = None
    out["TransferSyntaxUID"] = syntax
    return out
