"""medlab.privacy.compare: before/after states of a de-identified file, never its values."""

from __future__ import annotations

import pydicom
import pydicom.data
import pytest

from medlab import privacy

KEY = "a long secret key for tests"


@pytest.fixture(scope="module")
def ct_pair(tmp_path_factory):
    src = pydicom.data.get_testdata_file("CT_small.dcm")
    s = privacy.deidentify(src, tmp_path_factory.mktemp("cmp") / "out", key=KEY, progress=False)
    return s.files[0]


def test_states_follow_the_profile(ct_pair):
    table = privacy.compare(*ct_pair)
    assert list(table.columns) == list(privacy.COMPARE_COLUMNS)
    t = table.set_index("keyword")
    # CT_small: PatientName 'CompressedSamples^CT1' (Z, replaced by the pseudonym), StudyDate (Z),
    # UIDs (U), PatientAge (X), private blocks removed, de-identification attributes added
    assert t.loc["PatientName", ["before", "after"]].tolist() == ["present", "replaced"]
    assert t.loc["StudyDate", "after"] == "emptied"
    assert t.loc["SOPInstanceUID", ["profile_action", "after"]].tolist() == ["U", "replaced"]
    assert t.loc["PatientAge", "after"] == "removed"
    assert t.loc["PatientIdentityRemoved", ["before", "after"]].tolist() == ["absent", "added"]
    private = t[t["profile_action"] == "private"]
    assert len(private) > 100 and (private["after"] == "removed").all()
    # no old name, ID, UID or date survives anywhere in the output bytes
    assert not t["old_value_found"].fillna(False).any()


def test_no_value_is_returned(ct_pair):
    original = pydicom.dcmread(ct_pair[0], stop_before_pixels=True)
    text = privacy.compare(*ct_pair).to_csv()
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
        assert str(original.data_element(keyword).value) not in text


def test_a_kept_value_is_found(tmp_path, ct_pair):
    # a copy of the original compared with itself: everything 'kept', and every text value found
    t = privacy.compare(ct_pair[0], ct_pair[0]).set_index("keyword")
    assert (t["after"] == "kept").all()
    assert t.loc["PatientName", "old_value_found"] is True


def test_bad_arguments(tmp_path, ct_pair):
    with pytest.raises(FileNotFoundError, match="`deidentified`"):
        privacy.compare(ct_pair[0], tmp_path / "missing.dcm")
    with pytest.raises(TypeError, match="`original` must be a path"):
        privacy.compare(pydicom.dcmread(ct_pair[0]), ct_pair[1])
