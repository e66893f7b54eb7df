"""Burned-in annotation: flag the images that may carry text in their pixels; blank the
header band of ultrasound images."""

from __future__ import annotations

import math

import numpy as np

# Modalities whose images usually carry burned-in text when the header does not say otherwise:
# ultrasound, other/secondary capture, external camera, endoscopy, microscopy, documents.
TEXT_PRONE_MODALITIES = frozenset({"US", "IVUS", "OT", "XC", "ES", "GM", "SM", "DOC"})
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame variants .7.1 - .7.4
ULTRASOUND_MODALITIES = frozenset({"US", "IVUS"})
US_HEADER_FRACTION = 0.1  # default band without SequenceOfUltrasoundRegions (typical: 8-10%)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _text(value) -> str:
    return str(value or "").strip(" \x00").upper()


def has_pixels(ds) -> bool:
    return any(k in ds for k in _PIXEL_KEYWORDS)


def burned_in_reason(ds) -> str | None:
    """Why the image in ``ds`` may show identifying text in its pixels, or None.

    ``BurnedInAnnotation`` (0028,0301) 'YES' flags the image; 'NO' clears it. Without that
    attribute, images of text-prone modalities (ultrasound, secondary capture, camera,
    endoscopy, microscopy, documents) and screen captures are flagged.

    Parameters
    ----------
    ds : pydicom.Dataset
        The DICOM header (pixel data need not be loaded).
    """
    if not has_pixels(ds):
        return None
    burned = _text(ds.get("BurnedInAnnotation"))
    if burned == "YES":
        return "BurnedInAnnotation (0028,0301) is YES"
    if burned == "NO":
        return None
    modality = _text(ds.get("Modality"))
    sop_class = str(ds.get("SOPClassUID", "")).strip(" \x00")
    image_type = [_text(v) for v in (ds.get("ImageType") or [])] if ds.get("ImageType") else []
    if modality in TEXT_PRONE_MODALITIES:
        return f"Modality {modality} without BurnedInAnnotation (0028,0301): text is often burned in"
    if sop_class == _SECONDARY_CAPTURE or sop_class.startswith(_SECONDARY_CAPTURE + "."):
        return "secondary capture without BurnedInAnnotation (0028,0301): text is often burned in"
    if "SCREEN SAVE" in image_type or "SCREEN SAVE" in " ".join(image_type):
        return "ImageType SCREEN SAVE without BurnedInAnnotation (0028,0301)"
    return None


def header_rows(ds, rows: int | None) -> int:
    """Rows of the top band to blank: ``rows`` if given, else above the first ultrasound region.

    Without ``rows``, the band ends at the smallest RegionLocationMinY0 of the
    SequenceOfUltrasoundRegions (the top of the imaged area); without regions it is
    ``ceil(0.1 * Rows)``.
    """
    total = int(ds.Rows)
    if rows is not None:
        return min(int(rows), total)
    tops = [
        int(region.RegionLocationMinY0)
        for region in ds.get("SequenceOfUltrasoundRegions") or []
        if region.get("RegionLocationMinY0") is not None
    ]
    if tops:
        return max(0, min(min(tops), total))
    return min(total, math.ceil(US_HEADER_FRACTION * total))


def blank_header(ds, rows: int) -> None:
    """Set the top ``rows`` rows of every frame to black, in place (pixel data made native).

    Compressed pixel data are decoded first (colour as RGB) and stored uncompressed, so the
    transfer syntax becomes Explicit VR Little Endian.
    """
    import pydicom.uid

    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(as_rgb=True)
    arr = ds.pixel_array.copy()
    frames = int(ds.get("NumberOfFrames") or 1)
    band = (slice(None), slice(0, rows)) if frames > 1 else (slice(0, rows),)
    photometric = _text(ds.get("PhotometricInterpretation"))
    if photometric.startswith("YBR") and arr.shape[-1] == 3:
        arr[band + (0,)] = 0  # black in YCbCr: no luma, neutral chroma
        arr[band + (slice(1, 3),)] = 1 << (int(ds.BitsStored) - 1)
    elif photometric == "MONOCHROME1":  # the largest value is black
        bits = int(ds.BitsStored) - int(ds.PixelRepresentation)
        arr[band] = (1 << bits) - 1
    else:
        arr[band] = 0
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        ds.PlanarConfiguration = 0  # pixel_array is colour-by-pixel
    ds.PixelData = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    if ds.file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
