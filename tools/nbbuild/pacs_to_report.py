"""Build notebooks/usecases/pacs_to_report.ipynb (run: .venv/bin/python tools/nbbuild/pacs_to_report.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · From the PACS to a report: query, retrieve, segment, measure, store SEG and SR

    Clinical images live in a PACS. This notebook works the way a research tool in a hospital has to:

    1. **query** the PACS (DICOMweb QIDO-RS) for a study with a CT and a reader's contour (RTSTRUCT);
    2. **retrieve** the series (WADO-RS) into a folder, resumable, and read it as a physical image;
    3. **segment**: besides the reader's contour, its soft-tissue part (the contour's voxels in the
       soft-tissue Hounsfield range, which drops air pockets and bone);
    4. **measure** volume, longest axial diameter (RECIST) and mean HU of each segment;
    5. write the segmentation as a **DICOM SEG** (coded segments, referencing the CT series) and the
       numbers as a **DICOM SR** measurement report (TID 1500, UCUM units, referencing the segments),
       and **store** both in the PACS (STOW-RS), where any viewer or registry can read them;
    6. **read them back from the PACS** and check that nothing changed on the way.

    `PACS_URL` points at any DICOMweb server; its credentials come from the environment
    (`MEDLAB_PACS_USERNAME` and `MEDLAB_PACS_PASSWORD`, or `MEDLAB_PACS_TOKEN`), never from a
    parameter, so they never appear in the notebook. With `PACS_URL = None` the notebook starts a
    throw-away Orthanc on 127.0.0.1 (`medlab.pacs.local_orthanc`) and stores the IBSI CT phantom
    (60 CT slices and its RTSTRUCT) in it first. Patient names and IDs are not printed.
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    PACS_URL = None      # a DICOMweb root, e.g. 'https://pacs.example.org/dicom-web'; None: a local Orthanc sandbox
    STUDY_UID = None     # None: the first study with a CT series and an RTSTRUCT
    TISSUE = "soft_tissue"  # the Hounsfield range (medlab.segmentation.HU_RANGES) of the second segment
    STORE_BACK = True    # store the SEG and SR in the PACS (and read them back from it)
    WORKERS = 1          # parallel WADO-RS requests
    """),
    ("code", """
    import tempfile
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets, display, fusion, io, pacs, segmentation
    from medlab.reports import record

    t_start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="medlab-pacs-"))
    sandbox = None
    if PACS_URL is None:
        sandbox = pacs.local_orthanc(workdir / "orthanc")
        client = sandbox.dicomweb()
        ibsi = datasets.fetch("ibsi_ct_phantom", ["dicom/*"], progress=False) / "dicom"
        stored = client.store(sorted(ibsi.rglob("*.dcm")), progress=False)  # STOW-RS
        print(f"local Orthanc sandbox: {len(stored)} instances stored")
    else:
        client = pacs.connect(PACS_URL)  # credentials from the environment
    client.echo()
    print(client)
    """),
    ("md", """
    ## Query

    Studies first (only non-identifying columns are shown), then the series of the chosen study.
    A search takes DICOM keywords as filters with DICOM matching (`Modality="CT"`,
    `StudyDate="20200101-20201231"`, `PatientName="DOE*"`); the same call works over DIMSE
    (`pacs.DimseClient`, C-FIND) and gives the same columns.
    """),
    ("code", """
    studies = client.search_studies()
    shown = ["StudyInstanceUID", "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
             "NumberOfStudyRelatedInstances"]
    display_studies = studies[shown].copy()
    display_studies["StudyInstanceUID"] = display_studies["StudyInstanceUID"].str[-16:]
    print(display_studies.to_string(index=False))
    if STUDY_UID is None:
        wanted = [s for s, m in zip(studies.StudyInstanceUID, studies.ModalitiesInStudy)
                  if m and "CT" in m and "RTSTRUCT" in m]
        if not wanted:
            raise ValueError("no study with a CT and an RTSTRUCT on this PACS; set STUDY_UID")
        study_uid = wanted[0]
    else:
        study_uid = STUDY_UID
    series = client.search_series(study_uid)
    print(series[["Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances"]].to_string(index=False))
    ct_series = series[series.Modality == "CT"].SeriesInstanceUID.iloc[0]
    rt_series = series[series.Modality == "RTSTRUCT"].SeriesInstanceUID.iloc[0]
    """),
    ("md", """
    ## Retrieve

    Each instance is written to a temporary name and renamed, so the folder never holds half a file;
    run the cell again and nothing is transferred (the instances are there already). The folder is an
    ordinary DICOM series folder that `medlab.io.read` reads in Hounsfield units.
    """),
    ("code", """
    got = client.retrieve_series(study_uid, ct_series, workdir / "ct", workers=WORKERS, progress=False)
    again = client.retrieve_series(study_uid, ct_series, workdir / "ct", workers=WORKERS, progress=False)
    mb_per_s = got.bytes / 1e6 / got.seconds
    print(f"CT: {got.retrieved} instances, {got.bytes / 1e6:.1f} MB in {got.seconds:.2f} s ({mb_per_s:.0f} MB/s); "
          f"second call: {again.retrieved} retrieved, {again.skipped} already present")
    ct = io.read(got.folder)
    rt = client.retrieve_series(study_uid, rt_series, workdir / "rtstruct", progress=False).files[0]
    roi = io.rtstruct_rois(rt)[0]
    reader = io.rtstruct_to_labels(rt, ct, roi=roi)
    print("CT", ct.GetSize(), "voxels of", np.round(ct.GetSpacing(), 3), "mm; reader's ROI:", roi)
    """),
    ("md", """
    ## Two segments: the reader's contour and its soft-tissue part

    A contour drawn around a tumour also takes in air pockets and calcifications; the second segment
    keeps the contour's voxels in the soft-tissue range (`segmentation.hu_mask`, a cited Hounsfield
    range). Its share of the contour's volume is one of the recorded numbers.
    """),
    ("code", """
    contour = sitk.Cast(reader > 0, sitk.sitkUInt8)
    tissue = sitk.And(segmentation.hu_mask(ct, TISSUE), contour)
    masks = [contour, tissue]
    r = segmentation.HU_RANGES[TISSUE]
    print(f"{TISSUE}: {r.lower} to {r.upper} HU ({r.source[:60]}...)")
    fig, ax = plt.subplots(figsize=(5, 5))
    z = segmentation.seed_from_mask(contour, rule="interior")[0]
    ax.imshow(fusion.label_contours(display.slice_of(ct, z), [display.slice_of(m, z) for m in masks],
                                    preset="abdomen"))
    ax.set_title(f"slice {z}: {roi} (green), its {TISSUE} part (magenta)")
    ax.axis("off")
    plt.show()
    """),
    ("md", """
    ## Measure, write DICOM SEG and SR

    Two segments, both coded *Tissue / Neoplasm* (SNOMED CT), overlap: a binary SEG allows it. The SR
    holds one measurement group per segment, each referencing its segment in the SEG, with
    *Volume* (ml), *Long axis* (mm) and *Attenuation Coefficient, Mean* (`[hnsf'U]`).
    """),
    ("code", """
    measured = pacs.segment_measurements(masks, ct, modality="CT")
    segments = [pacs.Segment(f"{roi} (reader)", "Tissue", "Neoplasm", tracking_id="reader"),
                pacs.Segment(f"{roi} {TISSUE}", "Tissue", "Neoplasm", tracking_id=TISSUE)]
    seg_file = pacs.write_seg(masks, got.folder, workdir / "out" / "seg.dcm", segments=segments,
                              algorithm_type="SEMIAUTOMATIC")
    sr_file = pacs.write_sr(workdir / "out" / "sr.dcm", seg=seg_file, source=got.folder, measurements=measured)
    print(pd.DataFrame(measured).T.rename(index={1: roi, 2: f"{roi} {TISSUE}"}).round(2).to_string())
    """),
    ("md", """
    ## Store in the PACS, read back from it

    The SEG and SR go to the PACS (STOW-RS) as new series of the same study; then they are searched
    for and retrieved like any other series, and read: the segments must come back voxel for voxel on
    the CT grid, and the numbers with their units.
    """),
    ("code", """
    import pydicom

    seg_uid = str(pydicom.dcmread(seg_file, stop_before_pixels=True).SeriesInstanceUID)
    sr_uid = str(pydicom.dcmread(sr_file, stop_before_pixels=True).SeriesInstanceUID)
    if STORE_BACK:
        client.store([seg_file, sr_file], progress=False)
        after = client.search_series(study_uid)
        print(after[["Modality", "SeriesDescription", "NumberOfSeriesRelatedInstances"]].to_string(index=False))
        seg_back = client.retrieve_series(study_uid, seg_uid, workdir / "back" / "seg", progress=False).files[0]
        sr_back = client.retrieve_series(study_uid, sr_uid, workdir / "back" / "sr", progress=False).files[0]
    else:
        seg_back, sr_back = seg_file, sr_file
    fractions, described = pacs.read_seg(seg_back, ct, fractions=True)
    seg_equal = all(np.array_equal(sitk.GetArrayFromImage(f) > 0, sitk.GetArrayFromImage(m) > 0)
                    for f, m in zip(fractions, masks))
    report = pacs.read_sr(sr_back)
    sr_equal = all(np.isclose(r.value, measured[r.segment_number][r.name], rtol=1e-12) for r in report.itertuples())
    print(report[["tracking_id", "segment_number", "name", "value", "unit"]].round(3).to_string(index=False))
    print(f"SEG segments identical after the round trip: {seg_equal}; SR numbers identical: {sr_equal}")
    """),
    ("code", """
    if sandbox is not None:
        sandbox.stop()
    seconds = time.perf_counter() - t_start
    record(
        reader_volume_ml=measured[1]["volume_ml"],
        tissue_volume_ml=measured[2]["volume_ml"],
        tissue_fraction=measured[2]["volume_ml"] / measured[1]["volume_ml"],
        reader_diameter_mm=measured[1]["longest_diameter_mm"],
        n_ct_instances=len(got.files),
        retrieve_mb_per_s=mb_per_s,
        skipped_on_rerun=again.skipped,
        seg_roundtrip_equal=bool(seg_equal),
        sr_roundtrip_equal=bool(sr_equal),
        n_sr_measurements=len(report),
        stored_back=bool(STORE_BACK),
        seconds=seconds,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/pacs_to_report.ipynb", CELLS))
