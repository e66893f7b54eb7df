"""Teaching studies for a PACS sandbox: the sarcoma patient STS_001's CT and PET (NIfTI in
:mod:`medlab.datasets`, written as DICOM series) with the reader's GTV as a DICOM SEG on the
PET, and the IBSI CT phantom series with its RTSTRUCT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLE_STUDIES = ("sts", "ibsi_ct_phantom")


@dataclass
class SarcomaStudy:
    """The UIDs of the sarcoma PET/CT study stored by :func:`store_sample_studies`."""

    study_uid: str
    ct_series_uid: str
    pet_series_uid: str
    seg_series_uid: str
    n_instances: int


def store_sample_studies(client, folder, *, studies=SAMPLE_STUDIES, case: str = "STS_001",
                         progress: bool = False) -> dict:
    """Store teaching studies in a PACS (a sandbox: :func:`medlab.pacs.local_orthanc`).

    - ``'sts'``: the sarcoma patient ``case`` (soft-tissue sarcoma PET/CT, :mod:`medlab.datasets`
      ``sts``): its CT (HU) and PET (SUV) written as two DICOM series of one study and frame
      of reference (:func:`medlab.io.write_dicom_series`, PatientID = the case id), and the
      reader's GTV (the data set's PET mask) as a MANUAL DICOM SEG on the PET series.
    - ``'ibsi_ct_phantom'``: the IBSI CT phantom's 60 CT slices and its RTSTRUCT, as published.

    Parameters
    ----------
    client : DicomWebClient or DimseClient
        Where to store (STOW-RS or C-STORE).
    folder : str or os.PathLike
        Work folder for the DICOM files written on the way (created).
    studies : sequence of str
        Which of ``SAMPLE_STUDIES``.
    case : str
        The sarcoma case.
    progress : bool
        Progress bars.

    Returns
    -------
    dict
        ``'sts'``: a :class:`SarcomaStudy`; ``'ibsi_ct_phantom'``: the number of instances stored.
    """
    from medlab import datasets, io
    from medlab.pacs._seg import Segment, write_seg

    unknown = [s for s in studies if s not in SAMPLE_STUDIES]
    if unknown:
        raise ValueError(f"`studies`: {unknown} not among {SAMPLE_STUDIES}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    if "sts" in studies:
        ct = datasets.load("sts", case=case, modality="CT", progress=progress)
        pet = datasets.load("sts", case=case, modality="PET", progress=progress)
        common = {"patient_id": case, "study_description": "soft-tissue sarcoma PET/CT (medlab sample)",
                  "overwrite": True}
        ct_dicom = io.write_dicom_series(ct.image, folder / f"{case}_CT", modality="CT", series_number=2,
                                         series_description="CT", **common)
        pet_dicom = io.write_dicom_series(pet.image, folder / f"{case}_PET", modality="PT", series_number=3,
                                          series_description="PET SUVbw", study_uid=ct_dicom.study_uid,
                                          frame_of_reference_uid=ct_dicom.frame_of_reference_uid, **common)
        seg = write_seg(pet.labels["gtv"], pet_dicom.folder, folder / f"{case}_GTV_seg.dcm",
                        segments=[Segment("GTV (reader)", "Tissue", "Neoplasm", tracking_id="GTV")],
                        algorithm_type="MANUAL", series_description="GTV (reader)", series_number=10,
                        overwrite=True)
        stored = client.store([*ct_dicom.files, *pet_dicom.files, seg], progress=progress)
        import pydicom

        seg_series = str(pydicom.dcmread(seg, stop_before_pixels=True).SeriesInstanceUID)
        out["sts"] = SarcomaStudy(ct_dicom.study_uid, ct_dicom.series_uid, pet_dicom.series_uid, seg_series,
                                  len(stored))
    if "ibsi_ct_phantom" in studies:
        ibsi = datasets.fetch("ibsi_ct_phantom", ["dicom/*"], progress=progress) / "dicom"
        out["ibsi_ct_phantom"] = len(client.store(sorted(ibsi.rglob("*.dcm")), progress=progress))
    return out
