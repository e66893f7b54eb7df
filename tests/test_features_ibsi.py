"""medlab.features against the IBSI 1 consensus reference values.

The reference values and tolerances are parsed from the IBSI document
(``datasets.load("ibsi_reference").paths["file"]``, chapter "Image features") by
``features.ibsi_reference_values``; each feature is one test per reference data set, named
after it (``test_digital_phantom[cm_joint_max]``), that checks all its aggregation methods, so a
failure names the feature and the aggregations that miss. A value is within tolerance when
``|value - reference| <= tolerance``; where the document prints no tolerance (most digital
phantom values) the reference is exact to its printed digits (half a unit in the last digit).

Data sets: the digital phantom (no processing; 2D, 2.5D and 3D texture aggregation) and the
IBSI CT phantom under configurations A and B (2D, required) and C, D, E (3D), each computed
once per test session (module- or class-scoped fixtures, about 4 s in all).
"""

from __future__ import annotations

import numpy as np
import pytest

from medlab import datasets
from medlab import features as F

REFERENCE = F.ibsi_reference_values()
CONFIGS = ("A", "B", "C", "D", "E")


def _columns(data):
    return sorted(REFERENCE.loc[REFERENCE["data"] == data, "column"])


def _features(*data):
    return sorted(REFERENCE.loc[REFERENCE["data"].isin(data), "feature"].unique())


def _check(values, data, feature):
    """Every reference value of ``feature`` (all its aggregations) for ``data`` within tolerance."""
    refs = REFERENCE[(REFERENCE["data"] == data) & (REFERENCE["feature"] == feature)]
    assert len(refs), f"no IBSI reference for {feature} ({data})"
    bad = []
    for ref in refs.itertuples(index=False):
        if ref.column not in values:
            bad.append(f"{ref.column} is not computed")
            continue
        value = values[ref.column]
        if not abs(value - ref.value) <= ref.tolerance + 1e-9 * max(abs(ref.value), 1):
            bad.append(f"{ref.column} = {value:.6g}, IBSI {ref.value:.6g} +- {ref.tolerance:.3g}")
    assert not bad, f"{feature} ({data}): " + "; ".join(bad)


# ---------------------------------------------------------------------------- reference parser
def test_reference_table_structure():
    ref = F.ibsi_reference_values(with_values=False)
    assert set(ref["data"]) == {"digital phantom", *CONFIGS}
    per_family = ref.groupby("family")["feature"].nunique().to_dict()
    # feature counts of the IBSI families that have reference values
    assert per_family == {
        "morphology": 25, "local intensity": 2, "intensity statistics": 18, "intensity histogram": 23,
        "intensity-volume histogram": 6, "GLCM": 25, "GLRLM": 16, "GLSZM": 16, "GLDZM": 16,
        "NGTDM": 5, "NGLDM": 17,
    }
    counts = REFERENCE.groupby("data").size().to_dict()
    assert counts == {"digital phantom": 482, "A": 346, "B": 346, "C": 209, "D": 210, "E": 210}
    assert REFERENCE["tolerance"].gt(0).all()
    assert not REFERENCE.duplicated(["data", "column"]).any()
    coded = REFERENCE["ibsi_code"].str.fullmatch(r"[A-Z0-9]{4}")
    # the document's "small zone emphasis" section has no identifier line
    assert set(REFERENCE.loc[~coded, "feature"]) == {"szm_sze"}
    # the one unset value in the document: compactness 1, configuration C
    unset = ref[ref["value"].isna()]
    assert unset[["feature", "data"]].values.tolist() == [["morph_comp_1", "C"]]


@pytest.mark.parametrize(
    "data, column, value, tolerance, rounding, code",
    [
        ("digital phantom", "morph_vol", 556.0, 4.0, False, "RNU0"),
        ("A", "morph_vol", 3.58e5, 5e3, False, "RNU0"),
        ("A", "loc_peak_local", -277.0, 10.0, False, "VJGA"),
        ("A", "ivh_v90", 6.98e-5, 1.03e-5, False, "BC2M"),
        ("A", "ivh_i10", 96.0, 0.5, True, "GBPN"),
        ("digital phantom", "cm_joint_max_2D_avg", 0.519, 0.0005, True, "GYBY"),
        ("B", "cm_joint_max_2.5D_mrg", 0.126, 0.002, False, "GYBY"),
        ("digital phantom", "stat_p10", 1.0, 0.5, True, "QG58"),
        ("digital phantom", "ih_p90", 4.0, 0.5, True, "GPMT"),
        ("E", "ngt_complexity_3D", None, None, False, None),
        ("digital phantom", "ngl_dc_energy_3D", 0.0533, 0.00005, True, "CAS9"),
    ],
)
def test_reference_values_parsed(data, column, value, tolerance, rounding, code):
    row = REFERENCE[(REFERENCE["data"] == data) & (REFERENCE["column"] == column)]
    assert len(row) == 1
    row = row.iloc[0]
    if value is not None:
        assert row["value"] == pytest.approx(value)
        assert row["tolerance"] == pytest.approx(tolerance)
        assert row["tolerance_from_rounding"] == rounding
        assert row["ibsi_code"] == code


def test_reference_data_filter_and_errors(tmp_path):
    only = F.ibsi_reference_values(data=["A", "B"])
    assert set(only["data"]) == {"A", "B"} and len(only) == 692
    with pytest.raises(ValueError, match="did you mean 'digital phantom'"):
        F.ibsi_reference_values(data="digital_phantom")
    with pytest.raises(FileNotFoundError, match="not a file"):
        F.ibsi_reference_values(tmp_path / "missing.rst")


# ----------------------------------------------------------------------------- digital phantom
def _values(table):
    return {k: float(v) for k, v in table.iloc[0].items()}


@pytest.fixture(scope="module")
def digital():
    image_case = datasets.load("ibsi_digital_phantom", progress=False)
    image, mask = image_case.image, image_case.label
    return F.extract(image, mask, F.ibsi_settings("digital phantom"), name="digital phantom")


@pytest.fixture(scope="module")
def digital_values(digital):
    return _values(digital)


def test_digital_phantom_computes_exactly_the_reference_features(digital):
    # no feature without an IBSI reference value is computed, and none with one is missing
    assert sorted(digital.columns) == _columns("digital phantom")


@pytest.mark.parametrize("feature", _features("digital phantom"))
def test_digital_phantom(digital_values, feature):
    _check(digital_values, "digital phantom", feature)


# -------------------------------------------------------------------------------- CT phantom
@pytest.fixture(scope="module")
def ct_phantom():
    case = datasets.load("ibsi_ct_phantom", progress=False)
    return case.image, case.label


@pytest.fixture(scope="module")
def table_a(ct_phantom):
    return F.extract(*ct_phantom, F.ibsi_settings("A"), name="A")


@pytest.fixture(scope="module")
def table_b(ct_phantom):
    return F.extract(*ct_phantom, F.ibsi_settings("B"), name="B")


@pytest.fixture(scope="module")
def tables_cde(ct_phantom):
    return {c: F.extract(*ct_phantom, F.ibsi_settings(c), name=c) for c in ("C", "D", "E")}


@pytest.fixture(scope="module")
def values_a(table_a):
    return _values(table_a)


@pytest.fixture(scope="module")
def values_b(table_b):
    return _values(table_b)


@pytest.fixture(scope="module")
def values_cde(tables_cde):
    return {c: _values(t) for c, t in tables_cde.items()}


# one class per configuration, so that pytest-xdist (--dist loadscope) can run them in parallel
class TestConfigA:
    def test_columns(self, table_a):
        assert sorted(table_a.columns) == _columns("A")

    @pytest.mark.parametrize("feature", _features("A"))
    def test_feature(self, values_a, feature):
        _check(values_a, "A", feature)


class TestConfigB:
    def test_columns(self, table_b):
        assert sorted(table_b.columns) == _columns("B")

    def test_processing_diagnostics(self, ct_phantom):
        roi = F.prepare_roi(*ct_phantom, F.ibsi_settings("B"))
        assert roi.spacing == (3.0, 2.0, 2.0)
        # bilinear in-plane only: slices are not interpolated
        assert roi.morph.shape[0] == roi.image.shape[0]
        assert roi.n_levels == 32
        assert np.array_equal(roi.image, np.round(roi.image))

    @pytest.mark.parametrize("feature", _features("B"))
    def test_feature(self, values_b, feature):
        _check(values_b, "B", feature)


class TestConfigsCDE:
    @pytest.mark.parametrize("feature", _features("C", "D", "E"))
    def test_feature(self, values_cde, feature):
        # (compactness 1 has no reference value for C)
        for config in sorted(set(REFERENCE.loc[REFERENCE["feature"] == feature, "data"]) & {"C", "D", "E"}):
            _check(values_cde[config], config, feature)

    def test_compliance_summary(self, tables_cde):
        comps = {c: F.compare_with_reference(t, c) for c, t in tables_cde.items()}
        summary = F.compliance_summary(comps)
        assert summary.loc["total", "C within"] == summary.loc["total", "C reference"] == 209
        assert (summary.filter(like="within").to_numpy() == summary.filter(like="reference").to_numpy()).all()


def test_compare_with_reference_detects_wrong_settings(ct_phantom):
    # configuration B's values computed with A's settings: most features must fail
    table = F.extract(*ct_phantom, F.ibsi_settings("A", families=["stat", "cm"]))
    comp = F.compare_with_reference(table, "B")
    stat = comp[comp["family"] == "intensity statistics"]
    assert stat["implemented"].all()
    assert 0 < stat["within"].sum() < len(stat)
    glcm = comp[comp["family"] == "GLCM"]
    assert glcm["within"].sum() == 0
    assert not comp[comp["family"] == "morphology"]["implemented"].any()
    summary = F.compliance_summary(comp)
    assert summary.loc["morphology", "implemented"] == 0
    assert summary.loc["total", "reference"] == 346
