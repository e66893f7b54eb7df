"""Build notebooks/usecases/privacy.ipynb (run: .venv/bin/python tools/nbbuild/privacy.py)."""

from _nb import write

CELLS = [
    ("md", """
    # Use case · De-identify a DICOM study, and show what changed

    Before images leave the hospital for research or teaching, the identifying information in their
    DICOM headers goes: `medlab.privacy.deidentify` applies the DICOM PS3.15 **Basic Application Level
    Confidentiality Profile** (remove, empty, replace by a dummy or a keyed UID, as Table E.1-1 says;
    all private attributes removed). This notebook de-identifies a study into a temporary folder and
    checks the result the way a data protection officer would ask:

    * **what changed**: the audit file (one row per changed attribute, with a keyed hash of the old
      value, never the value) and the before/after state of each attribute (`medlab.privacy.compare`:
      *present* -> *removed* / *emptied* / *replaced* / *kept*), with no identifying value printed;
    * **did any old value survive**: every old name, ID, UID or date is searched for in the raw bytes
      of the output files;
    * **is the image still the same image**: pixel data and geometry unchanged, and (for the IBSI
      study) the RTSTRUCT contour still lands on the same voxels of the de-identified CT.

    Default data: the IBSI CT phantom's DICOM series (60 CT slices and an RTSTRUCT; already anonymised
    by its publishers, with placeholder names), or any pydicom-data file (`SOURCE`, e.g. the chest CR
    `RG1_UNCI.dcm`, whose test header has a name, birth date, institution and dates).
    """),
    ("params", """
    # Parameters (papermill: -p NAME VALUE)
    SOURCE = "ibsi_ct_phantom"  # 'ibsi_ct_phantom' (CT series + RTSTRUCT) or a pydicom-data file, e.g. 'RG1_UNCI.dcm'
    RETAIN_DATES = False        # False: the profile's actions on dates; 'shift': keep intervals, shift dates per patient
    KEY = None                  # secret key for pseudonyms and UIDs; None: a fresh random one (secrets.token_hex)
    """),
    ("code", """
    import secrets
    import shutil
    import tempfile
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from medlab import datasets, display, io, privacy
    from medlab.reports import record

    t_start = time.perf_counter()
    if SOURCE == "ibsi_ct_phantom":
        src = datasets.fetch("ibsi_ct_phantom", progress=False) / "dicom"
    else:
        src = Path(datasets.load("pydicom_data", case=SOURCE))
    inputs = sorted(src.rglob("*.dcm")) if src.is_dir() else [src]
    key = KEY or secrets.token_hex(16)  # keep a real key apart from the data: with it, pseudonyms can be recomputed
    workdir = Path(tempfile.mkdtemp(prefix="medlab-deid-"))
    print(f"{len(inputs)} DICOM file(s) from {SOURCE}; output in a temporary folder")
    print("modalities:", sorted({io.metadata(p, identifying=False)["modality"] for p in inputs}))
    """),
    ("md", """
    ## De-identify

    The output is built in a hidden folder and renamed at the end, so an interrupted run leaves nothing
    half-done; files are named by their new UIDs (original file names can hold identifiers).
    """),
    ("code", """
    t0 = time.perf_counter()
    summary = privacy.deidentify(src, workdir / "deid", key=key, retain_dates=RETAIN_DATES, progress=False)
    deid_seconds = time.perf_counter() - t0
    print(summary)
    print(f"{deid_seconds:.1f} s; skipped: {[(p.name, why) for p, why in summary.skipped]}; "
          f"flagged for burned-in text: {len(summary.burned_in)}")
    """),
    ("md", """
    ## The audit: what the profile did, attribute by attribute

    The audit CSV has one row per changed attribute and file, with the action (X removed, Z emptied,
    D dummy, U UID remapped, P pseudonym, S date shifted) and a keyed hash of the old value. Summed over
    the files (the hashes are not shown):
    """),
    ("code", """
    audit = pd.read_csv(summary.audit_csv, dtype=str)
    audit["keyword"] = audit["keyword"].fillna("(private)")
    nested = audit["tag"].str.contains(r"\\[")  # attributes inside sequences, e.g. an RTSTRUCT's references
    by_action = audit[~nested].groupby(["keyword", "action"]).size().unstack(fill_value=0)
    print(f"{len(audit)} audit rows over {audit['file'].nunique()} files ({int(nested.sum())} inside sequences); "
          f"actions: {audit['action'].value_counts().to_dict()}")
    by_action.sort_values(by=list(by_action.columns), ascending=False)
    """),
    ("md", """
    ## Before and after, as states only

    `privacy.compare` reads each original and its copy and reports, per attribute, its state before
    (*present*, *empty*) and after (*removed*, *emptied*, *replaced*, *kept*, *added*) and whether the old
    value (names, IDs, free text, UIDs, dates) still occurs anywhere in the output file's bytes.
    """),
    ("code", """
    states = pd.concat([privacy.compare(a, b).assign(file=i) for i, (a, b) in enumerate(summary.files)])
    identifying = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs", "InstitutionName",
                   "StationName", "ReferringPhysicianName", "AccessionNumber", "StudyID", "StudyDate", "SeriesDate",
                   "ContentDate", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
                   "DeviceSerialNumber", "PatientIdentityRemoved", "DeidentificationMethod"]
    shown = states[states["keyword"].isin(identifying)]
    before_after = (shown.assign(change=shown["before"] + " -> " + shown["after"])
                         .groupby("keyword")["change"].agg(lambda s: ", ".join(f"{k} ({v})" for k, v in s.value_counts().items()))
                         .reindex([k for k in identifying if k in set(shown["keyword"])]))
    leaks = states[states["old_value_found"].fillna(False).astype(bool)]
    print(f"{len(states)} attribute states over {len(summary.files)} files; private attributes removed: "
          f"{int(((states['profile_action'] == 'private') & (states['after'] == 'removed')).sum())}; "
          f"old values still found in the output: {len(leaks)}")
    before_after.to_frame("before -> after (files)")
    """),
    ("md", """
    Where an old value is still found, look at which attribute it came from. In the IBSI phantom the
    institution and station names are the name of the software that exported the study, which is also
    its `ManufacturerModelName`: equipment attributes are kept by the profile, so the same text is still
    in the file, though no longer as an institution. On a real study such a hit deserves a review.
    """),
    ("code", """
    leaks.groupby("keyword").size().to_frame("files where the old value still occurs") if len(leaks) else "no old value found"
    """),
    ("md", """
    ## The image is the same image

    De-identification touches the header only: the pixel data and the geometry (spacing, origin,
    direction) must come out unchanged. For the IBSI study, the RTSTRUCT (whose references to the CT
    now carry the new UIDs) must still give the same GTV voxels on the de-identified CT.
    """),
    ("code", """
    pairs = dict(summary.files)
    images = [p for p in inputs if io.metadata(p, identifying=False)["modality"] not in ("RTSTRUCT", "SEG")]
    if len(images) > 1:  # one series: read the folders as volumes
        before_img = io.read(images[0].parent)
        after_img = io.read(pairs[images[0]].parent)
    else:
        before_img, after_img = io.read(images[0]), io.read(pairs[images[0]])
    pixels_identical = np.array_equal(sitk.GetArrayFromImage(before_img), sitk.GetArrayFromImage(after_img))
    geometry_identical = (before_img.GetSize() == after_img.GetSize() and np.allclose(before_img.GetSpacing(), after_img.GetSpacing())
                          and np.allclose(before_img.GetOrigin(), after_img.GetOrigin())
                          and np.allclose(before_img.GetDirection(), after_img.GetDirection()))
    structs = [p for p in inputs if io.metadata(p, identifying=False)["modality"] == "RTSTRUCT"]
    rtstruct_identical = None
    if structs:
        gtv_before = io.rtstruct_to_labels(structs[0], before_img)
        gtv_after = io.rtstruct_to_labels(pairs[structs[0]], after_img)
        rtstruct_identical = np.array_equal(sitk.GetArrayFromImage(gtv_before), sitk.GetArrayFromImage(gtv_after))
    print(f"pixels identical: {pixels_identical}; geometry identical: {geometry_identical}; "
          f"RTSTRUCT voxels identical: {rtstruct_identical}")
    """),
    ("code", """
    show = lambda img: display.slice_of(img, img.GetSize()[2] // 2) if img.GetDimension() == 3 else img
    b, a = show(before_img), show(after_img)
    diff = sitk.Abs(sitk.Subtract(sitk.Cast(a, sitk.sitkFloat32), sitk.Cast(b, sitk.sitkFloat32)))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8))
    display.imshow(axes[0], b, preset="auto"); axes[0].set_title("original")
    display.imshow(axes[1], a, preset="auto"); axes[1].set_title("de-identified")
    display.imshow(axes[2], diff, window=2, level=1); axes[2].set_title(f"|difference|: max {sitk.GetArrayViewFromImage(diff).max():g}")
    for ax in axes:
        ax.axis("off")
    plt.tight_layout()
    plt.show()
    """),
    ("md", "## Summary"),
    ("code", """
    shutil.rmtree(workdir)  # the de-identified copies were only for this check
    after_states = {k: shown.loc[shown["keyword"] == k, "after"].mode().iloc[0] for k in before_after.index}
    record(
        source=SOURCE,
        retain_dates=RETAIN_DATES or "no",
        n_files=len(summary.files),
        n_skipped=len(summary.skipped),
        audit_rows=summary.audit_rows,
        actions=audit["action"].value_counts().to_dict(),
        after_states=after_states,
        private_removed=int(((states["profile_action"] == "private") & (states["after"] == "removed")).sum()),
        old_values_found=len(leaks),
        burned_in_flagged=len(summary.burned_in),
        pixels_identical=bool(pixels_identical),
        geometry_identical=bool(geometry_identical),
        rtstruct_identical=rtstruct_identical,
        deid_seconds=deid_seconds,
        seconds=time.perf_counter() - t_start,
    )
    """),
]

if __name__ == "__main__":
    print(write("usecases/privacy.ipynb", CELLS))
