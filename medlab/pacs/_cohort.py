"""Cohorts from a PACS for :mod:`medlab.batch`: a query becomes a cohort table, each Dask
worker retrieves its own case, and the ``pacs_measure`` task stores SEG and SR back.

Credentials never enter the cohort table, the task graph or the results: workers read them
from the environment (``MEDLAB_PACS_USERNAME`` + ``MEDLAB_PACS_PASSWORD``, or
``MEDLAB_PACS_TOKEN``), which a ``LocalCluster``'s worker processes inherit; on a remote
cluster, set them in the workers' environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "MEDLAB_PACS_USERNAME", "MEDLAB_PACS_PASSWORD", "MEDLAB_PACS_TOKEN"


def connect(address: str, *, username: str | None = None, password: str | None = None,
            token: str | None = None, **options):
    """A client for a PACS address: DICOMweb or DIMSE.

    Parameters
    ----------
    address : str
        ``http(s)://host:port/dicom-web`` (DICOMweb) or
        ``dicom://CALLED_AET@host:port?calling_aet=MEDLAB`` (DIMSE; add ``&move_port=N`` to
        retrieve by C-MOVE to this client listening on port N).
    username, password, token : str, optional
        DICOMweb authentication. Default: from the environment (``MEDLAB_PACS_USERNAME``,
        ``MEDLAB_PACS_PASSWORD``, ``MEDLAB_PACS_TOKEN``) when set.
    **options
        Passed to :class:`DicomWebClient` or :class:`DimseClient` (``timeout_s``, ...).

    Returns
    -------
    DicomWebClient or DimseClient
    """
    from medlab.pacs._dimse import DimseClient
    from medlab.pacs._web import DicomWebClient

    parts = urlsplit(str(address))
    if parts.scheme in ("http", "https"):
        if username is None and token is None:
            username, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
            token = os.environ.get(ENV_TOKEN) if username is None else None
        return DicomWebClient(address, username=username, password=password, token=token, **options)
    if parts.scheme == "dicom":
        if not parts.hostname or not parts.port:
            raise ValueError(f"`address` {address!r} needs a host and a port: dicom://AET@host:port")
        query = parse_qs(parts.query)
        calling = query.get("calling_aet", [options.pop("calling_aet", "MEDLAB")])[0]
        if "move_port" in query:
            options["move_port"] = int(query["move_port"][0])
        return DimseClient(parts.hostname, parts.port, called_aet=parts.username or "ANY-SCP",
                           calling_aet=calling, **options)
    raise ValueError(f"`address` must start with http://, https:// or dicom://; got {parts.scheme!r}")


def retrieve_deidentified(client, study_uid: str, series_uid: str, folder, *, key, retain_dates=False,
                          workers: int = 1, progress: bool = True):
    """Retrieve a series and keep only a de-identified copy (:func:`medlab.privacy.deidentify`,
    DICOM PS3.15 Basic Profile, with its audit).

    The identifying instances go to a private temporary folder (mode 0700) beside ``folder``
    and are deleted afterwards, also when something fails; the de-identified series is built
    in a hidden folder and renamed to ``folder`` at the end, so ``folder`` never holds a partial
    result. Not resumable: a rerun retrieves again.

    Parameters
    ----------
    client : DicomWebClient or DimseClient
    study_uid, series_uid : str
    folder : str or os.PathLike
        Output folder; must not exist or be empty.
    key : bytes or str
        The de-identification secret (see :func:`medlab.privacy.deidentify`).
    retain_dates : {False, 'shift'}
        As in :func:`medlab.privacy.deidentify`.
    workers, progress
        As in ``retrieve_series``.

    Returns
    -------
    medlab.privacy.DeidSummary
    """
    import shutil
    import tempfile

    from medlab import privacy

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".medlab-identifying-", dir=folder.parent))
    try:
        client.retrieve_series(study_uid, series_uid, tmp, workers=workers, progress=progress)
        return privacy.deidentify(tmp, folder, key=key, retain_dates=retain_dates, progress=progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cohort_from_pacs(address: str, *, store_back: bool = False, **filters):
    """A :mod:`medlab.batch` cohort: one case per series that matches ``filters``.

    Parameters
    ----------
    address : str
        The PACS (see :func:`connect`); credentials come from the environment.
    store_back : bool
        Ask the ``pacs_measure`` task to store each case's SEG and SR in the PACS.
    **filters
        Series-level DICOM filters, e.g. ``Modality="CT"``, ``StudyInstanceUID=...``.

    Returns
    -------
    pandas.DataFrame
        ``case_id`` (the SeriesInstanceUID), ``pacs``, ``study_uid``, ``series_uid``,
        ``modality``, ``store_back``; save it as CSV for ``medlab batch``.
    """
    import pandas as pd

    client = connect(address)
    series = client.search("series", **filters)
    return pd.DataFrame({
        "case_id": series["SeriesInstanceUID"].astype(str),
        "pacs": str(address),
        "study_uid": series["StudyInstanceUID"].astype(str),
        "series_uid": series["SeriesInstanceUID"].astype(str),
        "modality": series["Modality"].astype(str),
        "store_back": bool(store_back),
    })


def retrieve_case(row: dict, out_dir) -> dict:
    """On a worker: retrieve the case's series into ``OUT/images/<case_id>`` (resumable) and
    return the row with ``image`` set to that folder (and ``out_dir``).

    Parameters
    ----------
    row : dict
        One cohort row of a PACS query (the case's series on the PACS).
    out_dir : str or pathlib.Path
        The batch's output folder (``OUT``).
    """
    folder = Path(out_dir) / "images" / str(row["case_id"])
    connect(row["pacs"]).retrieve_series(row["study_uid"], row["series_uid"], folder, progress=False)
    return {**row, "image": str(folder), "out_dir": str(out_dir)}


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes") if not isinstance(v, bool) else v


def task_measure(row: dict) -> dict:
    """Measure each segment of a case and write (optionally store) DICOM SEG and SR.

    The row needs ``image`` (a retrieved series folder; PACS rows get it on the worker) and a
    segmentation: ``mask`` (a label image on the series grid, any format :func:`medlab.io.read`
    reads) or ``seg_series_uid`` (a DICOM SEG series of the same study on the PACS). Results:
    ``OUT/dicom/<case_id>/seg.dcm`` (when written from ``mask``) and ``sr.dcm``; with
    ``store_back`` true both go to the PACS.

    Parameters
    ----------
    row : dict
        One cohort row: ``case_id``, ``image`` (a series folder) and ``mask`` or ``seg_series_uid``
        (see above).

    Returns
    -------
    dict
        ``seg<k>_<measurement>`` for every segment ``k`` (see :func:`segment_measurements`),
        ``seg_sop_uid``, ``sr_sop_uid``, ``stored`` (instances stored in the PACS).
    """
    import pydicom
    import SimpleITK as sitk

    import medlab.io
    from medlab.pacs._seg import write_seg
    from medlab.pacs._sr import segment_measurements, write_sr

    image = medlab.io.read(row["image"])
    modality = "PT" if str(row.get("modality", "CT")).upper() in ("PT", "PET") else "CT"
    out = Path(row.get("out_dir") or Path(row["image"]).parent) / "dicom" / str(row["case_id"])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if row.get("mask"):
        labels = sitk.Cast(medlab.io.read(row["mask"]), sitk.sitkUInt8)
        n = int(sitk.GetArrayViewFromImage(labels).max())
        seg_path = write_seg(labels, row["image"], out / "seg.dcm", segments=[f"segment {k}" for k in range(1, n + 1)],
                             overwrite=True)
        written.append(seg_path)
    elif row.get("seg_series_uid"):
        res = connect(row["pacs"]).retrieve_series(row["study_uid"], row["seg_series_uid"], out / "seg", progress=False)
        seg_path = res.files[0]
        labels = medlab.io.seg_to_labels(seg_path, image)
    else:
        raise ValueError(f"case {row['case_id']!r} needs a `mask` or a `seg_series_uid` column")
    measured = segment_measurements(labels, image, modality=modality)
    sr_path = write_sr(out / "sr.dcm", seg=seg_path, source=row["image"], measurements=measured, overwrite=True)
    written.append(sr_path)
    stored = 0
    if _truthy(row.get("store_back", False)):
        stored = len(connect(row["pacs"]).store(written, progress=False))
    values = {f"seg{k}_{name}": v for k, m in measured.items() for name, v in m.items()}
    values["seg_sop_uid"] = str(pydicom.dcmread(seg_path, stop_before_pixels=True).SOPInstanceUID)
    values["sr_sop_uid"] = str(pydicom.dcmread(sr_path, stop_before_pixels=True).SOPInstanceUID)
    values["stored"] = stored
    return values
