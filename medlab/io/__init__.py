"""Read and write medical images; DICOM metadata, PET SUV, RTSTRUCT and SEG to labels.

Images are ``SimpleITK.Image`` objects with spacing (mm), origin and direction in SimpleITK's
(x, y, z) order; as numpy arrays they are indexed (z, y, x). Intensities are physical: CT in
Hounsfield units, PET in SUV body weight by default. Unreadable data always raise
:class:`medlab.ImageIOError` naming the path and the reason.

=========================== =================================================================
:func:`read`                DICOM file, DICOM series folder, multi-frame DICOM, NIfTI, NRRD,
                            MetaImage, PNG/JPEG/TIFF/BMP -> ``SimpleITK.Image`` (2D, 3D, 4D)
:func:`volume`              one 3D volume of a 4D image (time point, b-value, echo, phase)
:func:`volumes`             a range of volumes of a 4D image, as a 4D image
:func:`volume_metadata`     per-volume metadata of a read image (b-values, gradients, echo
                            and acquisition times, slice timing, phase-encoding direction)
:func:`write`               atomic write by extension; never overwrites unless asked
:func:`write_dicom_series`  a 3D CT (HU) or PET (SUV) image as a DICOM image series (folder)
:func:`list_series`         the DICOM series under a folder (patient, study, series, modality,
                            size, volumes, files), recursively
:func:`metadata`            DICOM header as a plain dict (``identifying=False`` for reports)
:func:`suv_factor`          PET Bq/mL -> SUV body weight factor from the header
:func:`rtstruct_rois`       ROI names of an RTSTRUCT
:func:`rtstruct_to_labels`  RTSTRUCT contours -> label image on a reference grid
:func:`seg_to_labels`       DICOM SEG -> label image on a reference grid
=========================== =================================================================

pydicom is imported only by the functions that parse DICOM with it. Geometry is never guessed
silently: a series that cannot form one image raises :class:`medlab.ImageIOError`; one read
under an assumption gives a :class:`DicomWarning` (a ``UserWarning``) that states it.

``MAX_BYTES`` (None: half the physical memory) bounds the voxel data a file's header may ask
:func:`read` to allocate; set it, or pass ``read(..., max_bytes=)``, for trusted large files.
"""

from __future__ import annotations

from medlab.io._common import DicomWarning
from medlab.io._dicom_write import DicomSeries, write_dicom_series
from medlab.io._guard import MAX_BYTES
from medlab.io._labels import rtstruct_rois, rtstruct_to_labels, seg_to_labels
from medlab.io._meta import IDENTIFYING_KEYS, METADATA_KEYS, metadata
from medlab.io._read import read, to_gray
from medlab.io._series import list_series
from medlab.io._suv import PET_UNITS, suv_factor
from medlab.io._volumes import VOLUME_METADATA_KEY, VOLUME_METADATA_KEYS, volume, volume_metadata, volumes
from medlab.io._write import write

__all__ = [
    "read",
    "to_gray",
    "write",
    "write_dicom_series",
    "DicomSeries",
    "list_series",
    "volume",
    "volumes",
    "volume_metadata",
    "VOLUME_METADATA_KEY",
    "VOLUME_METADATA_KEYS",
    "DicomWarning",
    "MAX_BYTES",
    "metadata",
    "suv_factor",
    "rtstruct_rois",
    "rtstruct_to_labels",
    "seg_to_labels",
    "METADATA_KEYS",
    "IDENTIFYING_KEYS",
    "PET_UNITS",
]
