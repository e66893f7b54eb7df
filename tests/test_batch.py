"""medlab.batch on a 2-worker Dask LocalCluster over the real sarcoma cohort."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from medlab import batch, datasets, metrics  # noqa: E402
from medlab import segmentation as seg  # noqa: E402

TESTS = Path(__file__).resolve().parent
VOLATILE = ["seconds", "worker", "task"]


@pytest.fixture(scope="module")
def cohort():
    return batch.cohort_from_dataset("sts", modality="PET")


@pytest.fixture(scope="module")
def clean_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return batch.run_cohort(cohort, "pet_segmentation", out, n_workers=2, progress=False)


def _stable(table):
    return table.drop(columns=[c for c in VOLATILE if c in table]).sort_values("case_id").reset_index(drop=True)


def test_cohort_completes_and_matches_direct_calls(cohort, clean_run):
    assert sorted(clean_run.computed) == sorted(cohort["case_id"]) and clean_run.failed == []
    table = clean_run.table
    assert list(table["case_id"]) == list(cohort["case_id"])  # cohort order
    assert (table["status"] == "ok").all()
    assert len(set(table["worker"])) == 2  # both workers did cases
    # the batch result is the library's result: recompute one case directly
    pet_case = datasets.load("sts", case="STS_003", modality="PET", progress=False)
    pet, gtv = pet_case.image, pet_case.label
    direct = seg.segment_pet_tumour(pet, seed_index=seg.seed_from_mask(gtv, pet, rule="max"))
    row = table.set_index("case_id").loc["STS_003"]
    assert row["dice"] == pytest.approx(metrics.dice(direct, gtv), abs=1e-12)
    assert table["dice"].mean() == pytest.approx(0.744, abs=0.02)  # as in tutorial 03
    assert (clean_run.out_dir / "results.parquet").is_file()


def test_rerun_after_interruption_does_only_missing_cases(cohort, clean_run, tmp_path):
    out = tmp_path / "resume"
    (out / "cases").mkdir(parents=True)
    missing = ["STS_002", "STS_010", "STS_014"]
    for f in (clean_run.out_dir / "cases").glob("*.json"):  # an interrupted run: 7 of 10 done
        if f.stem not in missing:
            (out / "cases" / f.name).write_text(f.read_text())
    res = batch.run_cohort(cohort, "pet_segmentation", out, n_workers=2, progress=False)
    assert sorted(res.computed) == missing and len(res.skipped) == 7
    pd.testing.assert_frame_equal(_stable(res.table), _stable(clean_run.table))
    again = batch.run_cohort(cohort, "pet_segmentation", out, n_workers=2, progress=False)
    assert again.computed == [] and len(again.skipped) == 10


def test_killed_worker_loses_no_case(cohort, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # workers import tests/batch_tasks.py
    c = cohort.assign(kill_case="STS_005", marker_dir=str(tmp_path))
    killed = batch.run_cohort(c, "batch_tasks:kill_worker_once", tmp_path / "killed", n_workers=2, progress=False)
    assert (tmp_path / "killed-STS_005").is_file(), "the worker really was killed"
    clean = batch.run_cohort(cohort, "intensity_statistics", tmp_path / "clean", n_workers=2, progress=False)
    assert killed.failed == [] and sorted(killed.computed) == sorted(cohort["case_id"])
    pd.testing.assert_frame_equal(
        _stable(killed.table).drop(columns=["kill_case", "marker_dir"], errors="ignore"), _stable(clean.table)
    )


def test_failing_case_is_recorded_and_others_finish(cohort, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    c = pd.concat([cohort.head(2), pd.DataFrame([{"case_id": "BROKEN", "image": str(broken), "mask": ""}])])
    res = batch.run_cohort(c, "intensity_statistics", tmp_path / "out", n_workers=2, progress=False)
    assert res.failed == ["BROKEN"] and sorted(res.computed) == ["STS_001", "STS_002"]
    rec = json.loads((tmp_path / "out" / "cases" / "BROKEN.json").read_text())
    assert rec["status"] == "error" and "ImageIOError" in rec["error"] and "broken.nii.gz" in rec["error"]
    assert "traceback" not in res.table.columns
    # a rerun retries the failed case only
    again = batch.run_cohort(c, "intensity_statistics", tmp_path / "out", n_workers=1, progress=False)
    assert again.failed == ["BROKEN"] and again.computed == [] and len(again.skipped) == 2


def test_bad_cohorts_and_tasks_are_clear_errors(cohort, tmp_path):
    with pytest.raises(ValueError, match="did you mean 'pet_segmentation'"):
        batch.run_cohort(cohort, "pet_segmentaton", tmp_path)
    with pytest.raises(ValueError, match="unique; repeated: \\['STS_001'\\]"):
        batch.read_cohort(pd.concat([cohort.head(1), cohort.head(1)]))
    with pytest.raises(ValueError, match="needs a `case_id` column"):
        batch.read_cohort(pd.DataFrame({"image": ["a"]}))
    with pytest.raises(ValueError, match="file names"):
        batch.read_cohort(pd.DataFrame({"case_id": ["../x"]}))
    csv = tmp_path / "cohort.csv"
    cohort.to_csv(csv, index=False)
    with pytest.raises(ValueError, match="must not be the folder"):
        batch.run_cohort(csv, "intensity_statistics", tmp_path)
    assert not (tmp_path / "cases").exists()


def test_cli_batch(cohort, tmp_path):
    csv = tmp_path / "in" / "cohort.csv"
    csv.parent.mkdir()
    cohort.head(3).to_csv(csv, index=False)
    res = subprocess.run(
        [sys.executable, "-m", "medlab.cli", "batch", str(csv), "--task", "intensity_statistics",
         "--out", str(tmp_path / "out"), "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "3 computed, 0 skipped, 0 failed" in res.stdout
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 3


def test_features_task_matches_direct_extraction(cohort, tmp_path):
    from medlab import features

    res = batch.run_cohort(cohort.head(2), "features", tmp_path, n_workers=2, progress=False)
    assert res.failed == []
    table = res.table.set_index("case_id")
    image_case = datasets.load("sts", case="STS_001", modality="PET", progress=False)
    image, mask = image_case.image, image_case.label
    direct = features.extract(image, mask, name="STS_001")
    for col in ("morph_vol", "stat_mean", "stat_max", "cm_joint_max_3D_avg"):
        assert table.loc["STS_001", col] == pytest.approx(float(direct.loc["STS_001", col]), rel=1e-9), col


def test_cluster_start_failure_is_retried(cohort, tmp_path, monkeypatch):
    # a worker lost while the local cluster starts aborts that start: the run starts another
    import distributed

    real, calls = distributed.LocalCluster, []

    def flaky(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Nanny failed to start: worker process died")
        return real(*args, **kw)

    monkeypatch.setattr(distributed, "LocalCluster", flaky)
    res = batch.run_cohort(cohort.head(2), "intensity_statistics", tmp_path / "out", n_workers=1, progress=False)
    assert len(calls) == 2 and res.failed == [] and sorted(res.computed) == ["STS_001", "STS_002"]


def test_cluster_that_never_starts_is_one_clear_error(cohort, tmp_path, monkeypatch):
    import distributed

    def broken(*args, **kw):
        raise OSError("no ports")

    monkeypatch.setattr(distributed, "LocalCluster", broken)
    with pytest.raises(batch.MedlabError, match=r"could not start a local Dask cluster .* 3 attempts; last error: OSError: no ports"):
        batch.run_cohort(cohort.head(1), "intensity_statistics", tmp_path / "out", n_workers=1, progress=False)


def test_rerun_removes_partial_files_of_a_killed_run(cohort, tmp_path):
    # a case file half-written by a worker that was killed (its process no longer exists)
    out = tmp_path / "out"
    (out / "cases").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from medlab import _atomic

    stale = out / "cases" / f".STS_001.json{_atomic.MARK}{_atomic._host()}-{dead.stdout.strip()}-0badcafe"
    stale.write_text('{"case_id": "STS_0')
    res = batch.run_cohort(cohort.head(1), "intensity_statistics", out, n_workers=1, progress=False)
    assert res.computed == ["STS_001"] and sorted(p.name for p in (out / "cases").iterdir()) == ["STS_001.json"]
