"""``medlab.io.read``: one entry point, one read path per kind of input."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medlab._options import check_choice
from medlab.errors import ImageIOError, MedlabError
from medlab.io import _guard
from medlab.io._common import ITK_EXTENSIONS, extension, fspath, itk_reason, require_exists
from medlab.io._dicom import read_dicom_file
from medlab.io._series import read_series
from medlab.io._suv import PET_UNITS


def read(
    path,
    *,
    series_uid: str | None = None,
    pet_units: str = "suv",
    as_gray: bool = False,
    progress=None,
    max_bytes: int | None = None,
) -> sitk.Image:
    """Read a medical image into a ``SimpleITK.Image`` with physical geometry and units.

    What is read, and how (one read path per kind of input):

    - **a folder**: a DICOM series, found in the folder and its subfolders (grouped by
      SeriesInstanceUID; non-DICOM files, DICOMDIR and objects without an image are
      skipped). One file per slice position gives a **3D** image decoded by
      ``sitk.ImageSeriesReader`` (GDCM), with origin, spacing and direction from the slice
      positions (a :class:`DicomWarning` names non-uniform spacing or a gantry tilt, which
      is kept exactly with a non-orthogonal direction); a regular MR series is converted by
      dcm2niix like a 4D one (its vendor scaling rules and acquisition metadata). Several volumes (each slice position
      repeated equally often: fMRI, diffusion, multi-echo, multi-phase), Siemens mosaics
      (the CSA header gives the slices) and several multi-frame files give a **4D** image
      (x, y, z, volume) converted by dcm2niix; see :func:`volume`, :func:`volumes` and
      :func:`volume_metadata`. A plain GE or Siemens series of uncompressed 16-bit
      single-slice files (fMRI) has its pixels read by medlab at the positions its headers
      give, dcm2niix converting only its first two volumes for the metadata (their voxels
      must equal medlab's, else the whole series is converted). dcm2niix's result is checked against the DICOM slice
      positions (refused beyond 0.01 mm) and takes its geometry exactly from the DICOM
      header; dcm2niix runs in a private temporary folder that is always removed, and what it
      says becomes a :class:`DicomWarning` or the reason of an ``ImageIOError``. Files that
      disagree (sizes, orientations, positions repeated unequally) raise. A series of a
      single file is read as that file.
    - **a file ending in** ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``,
      ``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff`` or ``.bmp``: SimpleITK's own
      readers. PNG/JPEG/BMP are 2D; colour stays a vector image (see ``as_gray``).
      Before SimpleITK sees a NIfTI, NRRD or MetaImage file its header is parsed and checked
      in Python (dimensions, sizes, data type, spacing finite and positive, origin and
      direction finite, a data file that exists) and the data, decompressed with their
      checksum where compressed, must cover the size the header declares: ITK's readers would
      otherwise zero-fill short data, and crash or hang on some corrupted headers.
    - **any other file**: one DICOM file, decoded by pydicom with the pylibjpeg plugins, so
      every transfer syntax pydicom can decode works: uncompressed, deflate, RLE, JPEG
      baseline/extended/lossless, JPEG-LS, JPEG 2000. A single frame gives a **2D image**
      with spacing from PixelSpacing (else ImagerPixelSpacing, else the ultrasound region
      calibration, else 1.0), origin (0, 0) and identity direction: the slice's 3D position
      is in ``metadata(path)``, and reading the folder gives the 3D volume. Several frames
      give a 3D image with frames along z when they are slices: frames with positions
      (enhanced multi-frame, RTDOSE) are sorted along the slice normal with their real
      origin, direction and spacing. The frames of a **cine** (ultrasound, XA: the
      FrameIncrementPointer names FrameTime or FrameTimeVector) are instants of one plane:
      they are the time axis of a **4D** image (x, y, 1, frame), like any series of several
      volumes, with each frame's time in ``volume_metadata(image)["frame_times_ms"]``
      (``medlab.io.volume(image, k)`` is frame k). Other frames without positions (NM energy
      windows or views) keep file order along z with step 1.0 (frame index). A Siemens
      mosaic file, or an enhanced multi-frame file whose frame positions repeat (several
      volumes), is converted by dcm2niix like a folder (3D for one volume, else 4D).

    Intensities (DICOM): the modality LUT / RescaleSlope and RescaleIntercept are applied, so
    CT is in Hounsfield units; RTDOSE is scaled by DoseGridScaling (Gy); PET (Modality 'PT')
    follows ``pet_units`` and is float32. Colour DICOM (RGB, YBR_* converted to RGB, PALETTE
    COLOR expanded with its LUT, whose 16-bit entries stay 16-bit) is a 3-component vector
    image. MONOCHROME1 images are inverted into the stored range, as GDCM does, so larger
    values are brighter everywhere. Integer results are int16/int32 (or the stored type); a
    non-integer rescale gives float32 for a file and float64 for a series (GDCM's choice).

    Parameters
    ----------
    path : str or os.PathLike
        File or folder.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series (see
        :func:`list_series`). Only for folders.
    pet_units : {'suv', 'bqml', 'stored'}
        PET only: 'suv' gives SUV body weight (g/mL) using :func:`suv_factor`; 'bqml' gives
        activity concentration in Bq/mL (requires Units BQML); 'stored' gives the rescaled
        stored values in whatever Units the file declares.
    progress : None, bool or callable
        Folders only: progress of reading the headers; see :func:`list_series`.
    max_bytes : int, optional
        Largest voxel data (bytes, as the file's header declares them) to allocate; a header
        that asks for more is refused before anything is allocated. Default
        ``medlab.io.MAX_BYTES`` (None: half of this machine's physical memory). Raise it for a
        trusted, very large file.
    as_gray : bool
        If True, a colour (vector) image is converted to its luma
        ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as JPEG and DICOM YBR use) as float32
        in the same value range; an alpha channel is dropped. Grey images are unchanged.

    Returns
    -------
    SimpleITK.Image
        2D, 3D or 4D; spacing in mm in (x, y[, z]) order (a 4D image's fourth axis is the
        volume index: spacing 1, origin 0, identity direction). As an array
        (``sitk.GetArrayFromImage``) it is indexed (z, y, x) or (volume, z, y, x), with a
        trailing component axis for colour. Per-volume metadata: :func:`volume_metadata`.

    Raises
    ------
    ImageIOError
        When the path is missing, or a header field is invalid (the message names it), the
        header declares more than ``max_bytes``, the returned geometry would not be physical
        (spacing outside [1e-6, 1e5] mm along the spatial axes, non-finite origin, a direction
        without unit columns or singular), or the data are empty, truncated, not an image, ambiguous
        (several series without ``series_uid``; the message lists each series' UID, modality,
        description and number of files) or cannot be decoded; and when the PET header does
        not allow the requested ``pet_units`` (the message names the missing tags).
    ValueError
        For a bad option (``pet_units``, ``series_uid`` with a file).

    Examples
    --------
    >>> import pydicom.data, medlab.io
    >>> ct = medlab.io.read(pydicom.data.get_testdata_file("CT_small.dcm"))
    >>> ct.GetSize(), ct.GetSpacing()
    ((128, 128), (0.661468, 0.661468))
    >>> import SimpleITK as sitk
    >>> hu = sitk.GetArrayViewFromImage(ct)  # Hounsfield units, indexed (y, x)
    >>> int(hu.min()), int(hu.max())
    (-896, 1167)
    """
    check_choice("pet_units", pet_units, PET_UNITS)
    limit = _guard.max_bytes(max_bytes)
    path = fspath(path)
    require_exists(path)
    if os.path.isdir(path):
        try:
            img = read_series(path, series_uid=series_uid, pet_units=pet_units, progress=progress, max_bytes=limit)
        except (MedlabError, MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except (ValueError, TypeError) as exc:
            if str(exc).startswith("`"):  # medlab's own message about an argument (`progress`)
                raise
            raise ImageIOError(path, f"corrupted or unsupported DICOM content: {type(exc).__name__}: {exc}") from exc
        except BaseException as exc:  # noqa: BLE001 - pydicom/GDCM on a corrupted file; see below
            raise ImageIOError(path, f"corrupted or unsupported DICOM content: {type(exc).__name__}: {exc}") from exc
    else:
        if series_uid is not None:
            raise ValueError(f"`series_uid` selects a series in a folder; `path` is a file: {path}")
        if extension(path) in ITK_EXTENSIONS:
            img = _read_itk(path, limit)
        else:
            try:
                img = read_dicom_file(path, pet_units=pet_units, max_bytes=limit)
            except MedlabError:
                raise
            except Exception as exc:  # noqa: BLE001
                # pydicom parses lazily, so a corrupted header can surface as almost any
                # exception type (NotImplementedError for an unknown VR, struct.error, ...):
                # all of them mean this file's content is unreadable. Seen by the fuzz test.
                raise ImageIOError(path, f"corrupted or unsupported DICOM content: {type(exc).__name__}: {exc}") from exc
    return to_gray(img) if as_gray else img


def _read_itk(path: str, limit: int) -> sitk.Image:
    if os.path.getsize(path) == 0:
        raise ImageIOError(path, "empty file")
    ext = extension(path)
    _guard.preflight(path, ext, limit)
    try:
        img = sitk.ReadImage(path)
    except (RuntimeError, MemoryError) as exc:
        raise ImageIOError(path, f"cannot read as {ext}: {itk_reason(exc, path)}") from exc
    _guard.check_geometry(img, path)
    return img


#: ITU-R BT.601 luma weights of R, G, B (as JPEG and DICOM YBR use).
LUMA = (0.299, 0.587, 0.114)


def to_gray(image):
    """Luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601) of a colour image, as float32.

    Parameters
    ----------
    image : sitk.Image or ndarray
        A SimpleITK image with 3 or 4 components (an alpha channel is dropped; 2 components are
        grey + alpha, and the grey is kept), or a numpy array whose last axis holds 3 or 4
        colour components. Grey images and other arrays pass through unchanged.

    Returns
    -------
    sitk.Image or ndarray
        The same kind as given; a SimpleITK image keeps its geometry.
    """
    if not isinstance(image, sitk.Image):
        arr = np.asarray(image)
        if arr.ndim < 3 or arr.shape[-1] not in (3, 4):
            return image
        return arr[..., :3].astype(np.float32) @ np.asarray(LUMA, np.float32)
    n = image.GetNumberOfComponentsPerPixel()
    if n == 1:
        return image
    if image.GetDimension() == 4:  # SimpleITK's channel filters stop at 3D: a 4D cine in numpy
        arr = sitk.GetArrayViewFromImage(image)
        grey = arr[..., 0].astype(np.float32) if n < 3 else to_gray(arr)
        out = sitk.GetImageFromArray(grey, isVector=False)
        out.CopyInformation(image)
        for key in image.GetMetaDataKeys():  # the per-volume metadata (frame times) stays
            out.SetMetaData(key, image.GetMetaData(key))
        return out
    if n < 3:  # grey + alpha
        return sitk.VectorIndexSelectionCast(image, 0, sitk.sitkFloat32)
    out = None
    for index, weight in enumerate(LUMA):
        channel = sitk.VectorIndexSelectionCast(image, index, sitk.sitkFloat32) * weight
        out = channel if out is None else out + channel
    return out
