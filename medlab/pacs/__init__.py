"""Query, retrieve and store against a PACS; results written back as DICOM SEG and SR.

Two transports with the same methods (``echo``, ``search``/``search_patients``/
``search_studies``/``search_series``/``search_instances``, ``retrieve_series``,
``retrieve_image``, ``store``) and the same result columns:

=============================== ==============================================================
:class:`DicomWebClient`         DICOMweb: QIDO-RS, WADO-RS, STOW-RS; basic or bearer-token
                                authentication, TLS (``https://``, ``verify``, client ``cert``),
                                retries with back-off
:class:`DimseClient`            DIMSE: C-ECHO, C-FIND, C-GET or C-MOVE, C-STORE (pynetdicom);
                                DICOM TLS (``tls``, an ``ssl.SSLContext``)
:class:`Retrieval`              what a series retrieval wrote (files, counts, bytes, seconds)
:class:`PacsError`              a failed request: server, reason, what was already retrieved
:func:`local_orthanc`           a throw-away Orthanc on 127.0.0.1 (teaching, notebooks, tests;
                                ``tls=True``: DICOM TLS with throw-away certificates)
:func:`retrieve_deidentified`   a series retrieved and kept only de-identified (medlab.privacy)
:func:`connect`                 a client for ``http(s)://...`` or ``dicom://AET@host:port``
:func:`store_sample_studies`    teaching studies for a sandbox: the sarcoma PET/CT (NIfTI written
                                as DICOM) with the reader's GTV as SEG; the IBSI CT phantom
:func:`cohort_from_pacs`        a series query as a :mod:`medlab.batch` cohort (workers
                                retrieve their own cases; task ``pacs_measure`` stores SEG+SR)
=============================== ==============================================================

A retrieved series is a folder of ``<SOPInstanceUID>.dcm`` files, each written through a
temporary file and a rename; a rerun skips the instances already there. Credentials never
appear in messages.

Results as standard DICOM (highdicom):

=============================== ==============================================================
:class:`Segment`                what a segment is (label, coded category and type)
:func:`write_seg`               label image (binary) or probabilities (fractional) on a
                                source series' grid -> DICOM SEG with coded segments
:func:`read_seg`                DICOM SEG -> label image (or fractions) on a reference grid
:func:`write_sr`                measurements of segments -> DICOM SR measurement report
                                (TID 1500) with UCUM units, referencing the SEG
:func:`read_sr`                 DICOM SR (TID 1500) -> measurements with values and units
:func:`segment_measurements`    volume, longest diameter, mean HU or SUV metrics per segment
:data:`MEASUREMENTS`            the measurement names :func:`write_sr` knows (codes, units)
:func:`ibsi_measurements`       IBSI features (medlab.features) as SR measurements: IBSI
                                identifiers as codes (scheme ``IBSI``), UCUM units
:func:`write_rtstruct`          label images -> DICOM RT Structure Set (contours along the voxel
                                edges: :func:`medlab.io.rtstruct_to_labels` gives them back)
=============================== ==============================================================
"""

from __future__ import annotations

from medlab.pacs._cohort import cohort_from_pacs, connect, retrieve_case, retrieve_deidentified, task_measure
from medlab.pacs._common import LEVELS, RETURN_KEYS, PacsError, Retrieval
from medlab.pacs._dimse import DimseClient
from medlab.pacs._orthanc import LocalOrthanc, local_orthanc
from medlab.pacs._rtstruct import write_rtstruct
from medlab.pacs._samples import SAMPLE_STUDIES, SarcomaStudy, store_sample_studies
from medlab.pacs._seg import Segment, read_seg, write_seg
from medlab.pacs._sr import MEASUREMENTS, ibsi_measurements, read_sr, segment_measurements, write_sr
from medlab.pacs._web import DicomWebClient

__all__ = [
    "connect",
    "cohort_from_pacs",
    "retrieve_case",
    "retrieve_deidentified",
    "task_measure",
    "DicomWebClient",
    "DimseClient",
    "local_orthanc",
    "LocalOrthanc",
    "store_sample_studies",
    "SarcomaStudy",
    "SAMPLE_STUDIES",
    "PacsError",
    "Retrieval",
    "RETURN_KEYS",
    "LEVELS",
    "Segment",
    "write_seg",
    "read_seg",
    "write_sr",
    "write_rtstruct",
    "read_sr",
    "segment_measurements",
    "MEASUREMENTS",
    "ibsi_measurements",
]
