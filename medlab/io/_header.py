"""Opening DICOM files with pydicom (imported lazily) and looking up header values.

Every pydicom parse in ``medlab.io`` goes through :func:`open_dicom`, so a file that is not
DICOM, empty, truncated or otherwise unreadable always becomes an ``ImageIOError`` naming it.
"""

from __future__ import annotations

import os

from medlab.errors import ImageIOError

# A DICOM file without the 128-byte preamble and "DICM" marker (allowed by old writers, e.g.
# pydicom's own ``rtstruct.dcm``) starts with an element of group 0002 or 0008, little or big
# endian. Only such files are parsed with ``force=True``; anything else is refused up front.
_RAW_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def is_dicom_file(path) -> bool:
    """Whether ``path`` starts like a DICOM file (preamble + 'DICM', or a raw group 0002/0008 element).

    Reads 132 bytes; no pydicom import. False for unreadable files and folders.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return (len(head) == 132 and head[128:132] == b"DICM") or (len(head) >= 8 and head[:2] in _RAW_STARTS)


def open_dicom(path, *, header_only: bool = False):
    """Parse a DICOM file with pydicom.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    header_only : bool
        If True, stop before the pixel data (fast; for metadata).

    Returns
    -------
    pydicom.Dataset

    Raises
    ------
    ImageIOError
        If the file is missing, empty, not DICOM, or cannot be parsed.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise ImageIOError(path, f"cannot open: {exc.strerror or exc}") from exc
    if not head:
        raise ImageIOError(path, "empty file")
    if len(head) == 132 and head[128:132] == b"DICM":
        force = False
    elif head[:2] in _RAW_STARTS:
        force = True
    else:
        raise ImageIOError(
            path,
            "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM element at the start); "
            "other formats are recognised by their extension (.nii, .nii.gz, .nrrd, .mha, .mhd, "
            ".png, .jpg, .tif, .bmp)",
        )
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=force, stop_before_pixels=header_only)
    except Exception as exc:  # pydicom raises many types for broken files; all mean unreadable
        raise ImageIOError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    if force and len(ds) == 0:
        raise ImageIOError(path, "not a DICOM file (no data elements could be parsed)")
    if force and "TransferSyntaxUID" not in ds.file_meta:
        # No file meta: the decoders need the transfer syntax the parser has just detected.
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian
            if implicit
            else pydicom.uid.ExplicitVRLittleEndian
            if little
            else pydicom.uid.ExplicitVRBigEndian
        )
    return ds


def find(ds, keyword: str):
    """The value of ``keyword`` in ``ds``, else in its functional groups, else None.

    Enhanced multi-frame objects keep pixel spacing, orientation, rescale and MR timing in
    ``SharedFunctionalGroupsSequence`` (or the first item of ``PerFrameFunctionalGroupsSequence``),
    one macro sequence deeper than in classic single-frame objects.
    """
    if keyword in ds:
        return ds[keyword].value
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(groups)
        if not seq:
            continue
        for elem in seq[0]:
            if elem.VR == "SQ" and elem.value and keyword in elem.value[0]:
                return elem.value[0][keyword].value
    return None


def frame_items(ds, macro: str) -> list | None:
    """Per-frame items of a functional-group ``macro`` (e.g. ``PlanePositionSequence``).

    Returns one dataset per frame (the per-frame item, else the shared one), or None when the
    macro is absent.
    """
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0].get(macro) if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return None if not shared_item else [shared_item[0]]
    items = []
    for fg in per_frame:
        seq = fg.get(macro) or shared_item
        if not seq:
            return None
        items.append(seq[0])
    return items
