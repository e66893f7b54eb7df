"""notebooks/tutorials/01_images_and_modalities.ipynb: every modality loads with its real geometry."""

import pytest

from notebook_support import run


@pytest.mark.notebook
def test_notebook(tmp_path):
    r = run("tutorials/01_images_and_modalities.ipynb", tmp_path, SOLUTIONS=True)
    assert r["exercises_passed"] == 3  # every exercise's hidden solution passes its check
    assert r["ct_shape_zyx"] == [60, 201, 204]
    assert r["ct_spacing_mm_xyz"] == pytest.approx([0.977, 0.977, 3.0], abs=1e-3)
    assert r["ct_dicom_equals_nifti"] is True
    assert -1010 <= r["ct_air_hu"] <= -990 and 20 <= r["ct_soft_tissue_hu"] <= 80
    assert 2.0 < r["pet_suvmax_tumour"] < 40.0
    assert r["us_cine_frames"] == 30
    assert r["xray_shape_yx"] == [1955, 1841]
    assert set(r["modalities"]) >= {"CT", "MR", "PT", "CR", "US", "NM"}
    # the GE fMRI run (dcm_qa_nih): 15 slices x 10 volumes, TR 5 s, interleaved (dcm2niix's
    # reference and the BIDS sidecar agree: SliceTiming 0, 2.5, 0.333, ...)
    assert r["epi_size_xyzt"] == [64, 64, 15, 10]
    assert r["epi_tr_s"] == pytest.approx(5.0)
    assert r["epi_acquisition_order"][:4] == [0, 2, 4, 6]
    assert 3.0 < r["epi_tsnr_median"] < 5.5  # measured 4.0: the run's signal drifts between volumes
