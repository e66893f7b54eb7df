"""notebooks/usecases/chest_radiograph.ipynb: chest CR enhancement and lung fields (no ground truth:
measured areas); papermill run on the lossless JPEG 2000 copy of the same radiograph with the Li
threshold."""

import pytest
from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("usecases/chest_radiograph.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 3  # every exercise's hidden solution passes its check
    assert r["n_lungs"] == 2
    assert r["pixel_size_from_header"] is False and r["pixel_mm"] == 0.2  # header PixelSpacing is 0
    # measured (0.2 mm pixels assumed): right 152.2 cm^2, left 179.0 cm^2, L/R 1.18
    assert 140 < r["right_lung_area_cm2"] < 165
    assert 165 < r["left_lung_area_cm2"] < 195
    assert r["left_right_ratio"] == pytest.approx(r["left_lung_area_cm2"] / r["right_lung_area_cm2"])
    # a linear window that does not clip leaves the CNR unchanged (2.579); CLAHE lowers it (2.07)
    cnr = r["cnr"]
    assert cnr["header window"] == pytest.approx(cnr["original"], rel=1e-3)
    assert cnr["CLAHE (clip 0.01)"] < cnr["original"]


@pytest.mark.notebook
def test_notebook_lossless_jpeg2000_li(tmp_path):
    r = run("usecases/chest_radiograph.ipynb", tmp_path, CASE="RG1_J2KR.dcm", THRESHOLD="li")
    assert r["case"] == "RG1_J2KR.dcm" and r["threshold"] == "li" and r["n_lungs"] == 2
    # the same pixels as RG1_UNCI; Li's lower threshold keeps less: measured 133.3 and 168.9 cm^2
    assert 120 < r["right_lung_area_cm2"] < 145
    assert 155 < r["left_lung_area_cm2"] < 180
