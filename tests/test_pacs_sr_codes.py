"""Coded measurements in the DICOM SR (TID 1500) that medlab.pacs writes: IBSI features with
their IBSI identifiers as codes (coding scheme "IBSI", texture aggregation as the measurement
method) and UCUM units, and the head circumference with LOINC's code; each read back equal,
each file validated by dciodvfy (dicom3tools)."""

from __future__ import annotations

import pydicom
import pytest
import SimpleITK as sitk

pytest.importorskip("highdicom")
pytest_plugins = ["orthanc_fixture"]

import medlab.io  # noqa: E402
from dicom_validator import dciodvfy_errors  # noqa: E402
from medlab import features  # noqa: E402
from medlab.pacs import ibsi_measurements, read_sr, write_seg, write_sr  # noqa: E402

# the phantom's PatientName "PAT1" has one component; highdicom says so (the data, not us)
pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")


@pytest.fixture(scope="module")
def gtv_seg(ibsi_ct_dicom, tmp_path_factory):
    ct = medlab.io.read(ibsi_ct_dicom)
    gtv = medlab.io.rtstruct_to_labels(ibsi_ct_dicom.parent / "mask" / "DCM_RS_00060.dcm", ct, roi="GTV-1")
    gtv = sitk.Cast(gtv > 0, sitk.sitkUInt8)
    seg = write_seg(gtv, ibsi_ct_dicom, tmp_path_factory.mktemp("seg") / "gtv.dcm", segments=["GTV-1"])
    return ct, gtv, seg


def test_ibsi_features_coded_with_ibsi_identifiers_and_units(gtv_seg, ibsi_ct_dicom, tmp_path):
    ct, gtv, seg = gtv_seg
    table = features.extract(ct, gtv, features.ibsi_settings("A"), families=["morph", "stat", "cm"])
    coded = ibsi_measurements(table, intensity_unit="HU")
    assert len(coded) > 100  # every morph, stat and GLCM column with an IBSI identifier and a unit rule
    path = write_sr(tmp_path / "sr.dcm", seg=seg, source=ibsi_ct_dicom, measurements={1: coded})
    assert dciodvfy_errors(path) == []
    back = read_sr(path).set_index("name")
    assert back.index.is_unique and set(back.index) == set(coded)
    for name, (value, unit) in coded.items():
        assert back.loc[name, "value"] == pytest.approx(value, rel=1e-12, abs=1e-300), name  # DS: 16 characters
        assert back.loc[name, "unit"] == unit[0], name
    # codes and units of a few: the IBSI identifiers of the IBSI 1 document
    assert back.loc["ibsi:morph_vol", ["concept_code", "concept", "unit"]].tolist() == ["RNU0 (IBSI)", "Volume (mesh)",
                                                                                        "mm3"]
    assert back.loc["ibsi:stat_mean", ["concept_code", "unit"]].tolist() == ["Q4LE (IBSI)", "[hnsf'U]"]
    assert back.loc["ibsi:stat_var", "unit"] == "([hnsf'U])2"
    assert back.loc["ibsi:morph_sphericity", "unit"] == "1"
    glcm = back.loc["ibsi:cm_joint_max_2D_avg"]
    assert (glcm.concept_code, glcm.method, glcm.unit) == ("GYBY (IBSI)", "2D, averaged", "1")
    assert back.loc["ibsi:cm_joint_max_2D_smrg", "method"] == "2D, slice-merged"
    item = next(i for i in pydicom.dcmread(path).ContentSequence if i.ValueType == "CONTAINER"
                and i.ConceptNameCodeSequence[0].CodeValue == "126010")  # Imaging Measurements
    assert item is not None
    # mixing with the standard measurements of the same segment
    both = {1: {"volume_ml": float(table.morph_approx_vol.iloc[0]) / 1000, **ibsi_measurements(
        table, columns=["morph_vol", "stat_mean"])}}
    mixed = read_sr(write_sr(tmp_path / "mixed.dcm", seg=seg, source=ibsi_ct_dicom, measurements=both))
    assert sorted(mixed.name) == ["ibsi:morph_vol", "ibsi:stat_mean", "volume_ml"]


def test_ibsi_measurements_bad_input(gtv_seg, ibsi_ct_dicom, tmp_path):
    ct, gtv, seg = gtv_seg
    table = features.extract(ct, gtv, families=["stat"])
    with pytest.raises(ValueError, match="'stat_energy' has no unit rule"):
        ibsi_measurements(table, columns=["stat_energy"])
    with pytest.raises(ValueError, match="'stat_mean' has no|is not in `features`"):
        ibsi_measurements(table.drop(columns="stat_mean"), columns=["stat_mean"])
    with pytest.raises(ValueError, match="intensity_unit"):
        ibsi_measurements(table, intensity_unit="Bq/ml")
    assert "ibsi:stat_energy" not in ibsi_measurements(table)  # left out by default
    with pytest.raises(ValueError, match="needs \\(value, \\(UCUM code, meaning\\)\\)"):
        write_sr(tmp_path / "a.dcm", seg=seg, source=ibsi_ct_dicom, measurements={1: {"ibsi:stat_mean": 1.0}})
    with pytest.raises(ValueError, match="not an IBSI feature column"):
        write_sr(tmp_path / "a.dcm", seg=seg, source=ibsi_ct_dicom,
                 measurements={1: {"ibsi:stat_meen": (1.0, ("1", "no units"))}})
    assert not (tmp_path / "a.dcm").exists()


def test_head_circumference_coded_with_loinc(gtv_seg, ibsi_ct_dicom, tmp_path):
    # the coding round trip of a fetal head circumference (HC18's reference value of one image);
    # the segment it refers to is the CT phantom's: the test data have no fetal ultrasound in DICOM
    from medlab import datasets

    hc = float(datasets.load("hc18", case="000_HC", progress=False).meta["hc_mm"])
    ct, gtv, seg = gtv_seg
    path = write_sr(tmp_path / "hc.dcm", seg=seg, source=ibsi_ct_dicom,
                    measurements={1: {"head_circumference_mm": hc}})
    assert dciodvfy_errors(path) == []
    (row,) = read_sr(path).itertuples()
    assert (row.name, row.concept_code, row.concept, row.unit) == ("head_circumference_mm", "11984-2 (LN)",
                                                                  "Head Circumference", "mm")
    assert row.value == pytest.approx(hc, rel=1e-12)
