"""The embedded sample (medlab/datasets/sample): registry files byte for byte, with their
licences, used when no data store is set, never silently in place of a full data set."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

import medlab.datasets as datasets
from medlab.datasets import _registry, _sample
from medlab.errors import DatasetError


def test_every_sample_member_is_a_registered_file_with_its_sha256():
    registry = json.loads((_sample.SAMPLE_DIR.parent / "registry.json").read_text())["datasets"]
    roots = {e["root"]: e for e in registry.values() if e["kind"] == "store"}
    n = 0
    for archive in _sample.SAMPLE_DIR.rglob("*.zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                root = next(r for r in sorted(roots, key=len, reverse=True) if name.startswith(r + "/"))
                rel = name[len(root) + 1:]
                assert hashlib.sha256(zf.read(name)).hexdigest() == roots[root]["files"][rel]["sha256"], name
                n += 1
    assert n == 336  # 2 + 1 + 30 + 6 + 35 + 153 + 63 + 46 files (tools/make_sample.py)


def test_data_source_follows_the_store_and_the_setting(no_store, monkeypatch, tmp_path):
    assert datasets.data_source("sts") == "sample"
    assert datasets.data_source("mni152") == "full"  # package data: always whole
    assert datasets.data_source("dcm_qa_nih") == "sample"  # one series of the eight
    monkeypatch.setenv("MEDLAB_DATA_STORE", str(tmp_path / "store"))
    assert datasets.data_source("sts") == "full"
    monkeypatch.delenv("MEDLAB_DATA_STORE")
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")
    assert datasets.data_source("sts") == "full"
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "sampel")
    with pytest.raises(ValueError, match="did you mean 'sample'"):
        datasets.data_source("sts")


def test_cases_list_the_sample_without_a_store_and_everything_with_one(no_store, monkeypatch):
    assert datasets.cases("sts") == datasets.cases("sts", source="full")  # every patient's PET is in
    assert len(datasets.cases("hc18")) == 17 and "000_HC" in datasets.cases("hc18")
    assert datasets.cases("dcm_qa_nih") == ["20180918GE/mr_0004"]
    assert len(datasets.cases("hc18", source="full")) == len(_registry.case_names("hc18")) > 800
    busi = datasets.cases("busi")
    assert len(busi) == 46 and sum(c.startswith("malignant") for c in busi) == 16


def test_hc18_split_on_the_sample_is_the_full_split_restricted(no_store, monkeypatch):
    # a sample image is "held out" only if the full split (the pretrained model's) holds it out
    from medlab import models

    on_sample = models.hc18_split(seed=0)
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")
    full = models.hc18_split(seed=0)
    sample = set(datasets.cases("hc18", source="sample"))
    for part in ("train", "val", "test"):
        assert on_sample[part] == [c for c in full[part] if c in sample]
    assert len(on_sample["test"]) == 16 and on_sample["train"] == ["000_HC"]
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")
    assert len(datasets.cases("hc18")) > 800


def test_sample_files_are_copied_verified_and_reported_as_sample(no_store, monkeypatch, tmp_path):
    log = tmp_path / "data.jsonl"
    monkeypatch.setenv("MEDLAB_DATA_LOG", str(log))
    image_case = datasets.load("sts", case="STS_001", modality="PET", progress=False)
    image, mask = image_case.image, image_case.label
    assert image.GetSpacing()[0] == pytest.approx(4.6875)
    assert (no_store / "sts" / "STS_001" / "PET_image.nii.gz").is_file()
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec == {"name": "sts", "source": "sample", "files": ["STS_001/PET_image.nii.gz", "STS_001/PET_mask.nii.gz"]}


def test_a_case_outside_the_sample_says_so_and_leaves_nothing(no_store):
    with pytest.raises(DatasetError, match="sample embedded in medlab holds 30 of the data set's 60 files"):
        datasets.load("sts", case="STS_004", modality="CT", progress=False)
    assert not (no_store / "sts" / "STS_004").exists()


def test_full_source_never_uses_the_sample(no_store, monkeypatch):
    monkeypatch.setenv("MEDLAB_DATA_SOURCE", "full")
    with pytest.raises(DatasetError, match="downloads are switched off"):
        datasets.fetch("ibsi_digital_phantom", progress=False)


def test_info_says_what_the_sample_holds(no_store):
    info = datasets.info("ibsi_ct_phantom")
    assert info["sample_files"] == info["n_files"] == 63 and info["data_source"] == "sample"
    assert datasets.info("dcm_qa_nih")["sample_files"] == 153 < datasets.info("dcm_qa_nih")["n_files"]
