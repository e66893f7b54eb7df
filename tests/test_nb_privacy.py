"""notebooks/usecases/privacy.ipynb: de-identify the IBSI CT study (CT series + RTSTRUCT) and show
what changed; papermill run on the chest CR of pydicom-data with dates shifted."""

import pytest
from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("usecases/privacy.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 2  # every exercise's hidden solution passes its check
    assert r["n_files"] == 61 and r["n_skipped"] == 0  # 60 CT slices and the RTSTRUCT
    s = r["after_states"]
    assert s["PatientName"] == s["PatientID"] == "replaced"  # pseudonym
    assert s["StudyInstanceUID"] == s["SeriesInstanceUID"] == s["SOPInstanceUID"] == "replaced"
    assert s["PatientIdentityRemoved"] == "added"
    # 61 files x 6 instance/series/study UIDs (measured 368 U rows, 122 pseudonyms P)
    assert r["actions"]["U"] == 368 and r["actions"]["P"] == 122
    # the header still names the exporting software as ManufacturerModelName (kept), the same text
    # as its institution and station names: found in every file, as the notebook explains
    assert r["old_values_found"] == 122
    assert r["pixels_identical"] and r["geometry_identical"] and r["rtstruct_identical"]


@pytest.mark.notebook
def test_notebook_chest_cr_dates_shifted(tmp_path):
    r = run("usecases/privacy.ipynb", tmp_path, SOURCE="RG1_UNCI.dcm", RETAIN_DATES="shift", KEY="a fixed test key")
    assert r["source"] == "RG1_UNCI.dcm" and r["n_files"] == 1 and r["retain_dates"] == "shift"
    s = r["after_states"]
    # a real-looking test header: name, IDs, birth date, institution and dates all present before
    assert s["PatientName"] == "replaced" and s["PatientBirthDate"] == "emptied"
    assert s["OtherPatientIDs"] == "removed" and s["InstitutionName"] == "replaced"
    assert s["StudyDate"] == s["SeriesDate"] == "replaced"  # shifted, not emptied
    assert r["actions"]["S"] == 4  # study, series, content and instance creation dates
    assert r["old_values_found"] == 0
    assert r["pixels_identical"] and r["geometry_identical"] and r["rtstruct_identical"] is None
