"""Cohort processing on Dask: one task per case, results written per case, resumable.

A *cohort* is a table (CSV file or pandas DataFrame) with one row per case: a ``case_id`` column
plus the columns the task needs (for the built-in tasks: ``image`` and optionally ``mask``,
paths readable by :func:`medlab.io.read`). :func:`run_cohort` sends each case to a Dask
cluster, a ``LocalCluster`` of worker processes by default or any running scheduler by address,
so the same call runs on a laptop and on a cluster (Kubernetes, HPC via dask-jobqueue).

What makes it safe to run on thousands of studies:

* each case's result is written by the worker itself, atomically, as ``OUT/cases/<case_id>.json``
  the moment it is done; a crash of the client, a worker or the machine loses at most the cases
  in flight;
* a rerun skips the cases that already have a successful result (failed ones are retried);
* a case that raises is recorded with its error (``status='error'``) and does not stop the others;
* a worker that dies mid-case (killed, out of memory) has its case rescheduled by Dask on another
  worker;
* finally all case results are merged into ``OUT/results.csv`` (and ``OUT/results.parquet``
  when pyarrow is installed), written atomically.

Tasks are functions ``task(row: dict) -> dict`` of flat, JSON-serialisable values. Built-in ones
are listed in :data:`TASKS` (``features``, ``pet_segmentation``, ``intensity_statistics``,
``pacs_measure``); any importable function can be named as ``"package.module:function"``.

A cohort can come from a PACS (:func:`medlab.pacs.cohort_from_pacs`: columns ``pacs``,
``study_uid``, ``series_uid``): each worker retrieves its own case into ``OUT/images/<case_id>``
(resumable) before the task runs, with credentials from its environment, never from the table.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medlab._atomic import atomic_path, clean_stale, write_text
from medlab._options import check_choice, require
from medlab.errors import MedlabError

__all__ = ["run_cohort", "cohort_from_dataset", "read_cohort", "merge_results", "BatchResult", "TASKS"]


# ----------------------------------------------------------------------------- built-in tasks


def _read_pair(row):
    from medlab.io import read

    image = read(row["image"])
    mask = read(row["mask"]) if row.get("mask") else None
    return image, mask


def task_intensity_statistics(row: dict) -> dict:
    """Image geometry and intensity statistics, inside ``mask`` when the row has one."""
    import numpy as np
    import SimpleITK as sitk

    image, mask = _read_pair(row)
    arr = sitk.GetArrayViewFromImage(image)
    sel = arr[sitk.GetArrayViewFromImage(mask) > 0] if mask is not None else arr.ravel()
    if sel.size == 0:
        raise ValueError(f"mask of case {row['case_id']!r} is empty")
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    return {
        "size_xyz": "x".join(str(s) for s in image.GetSize()),
        "voxel_ml": voxel_ml,
        "n_voxels": int(sel.size),
        "volume_ml": sel.size * voxel_ml,
        "mean": float(sel.mean()),
        "std": float(sel.std()),
        "min": float(sel.min()),
        "max": float(sel.max()),
        "p50": float(np.percentile(sel, 50)),
    }


def task_pet_segmentation(row: dict) -> dict:
    """One-click PET tumour segmentation at the SUVmax (inside ``mask`` when given), scored
    against ``mask`` when the row has one: SUVmax, SUVmean, metabolic tumour volume, TLG, Dice."""
    import SimpleITK as sitk

    from medlab import metrics
    from medlab import segmentation as seg

    pet, mask = _read_pair(row)
    seed = seg.seed_from_mask(mask, pet, rule="max") if mask is not None else None
    if seed is None:
        import numpy as np

        seed = tuple(int(v) for v in np.unravel_index(np.argmax(sitk.GetArrayViewFromImage(pet)), pet.GetSize()[::-1]))
    method = row.get("method") or "otsu_box"
    result = seg.segment_pet_tumour(pet, seed_index=seed, method=method)
    suv = sitk.GetArrayViewFromImage(pet)[sitk.GetArrayViewFromImage(result) > 0]
    voxel_ml = math.prod(pet.GetSpacing()) / 1000.0
    out = {
        "method": method,
        "seed_index_zyx": "/".join(str(s) for s in seed),
        "suvmax": float(suv.max()),
        "suvmean": float(suv.mean()),
        "mtv_ml": suv.size * voxel_ml,
        "tlg": float(suv.mean()) * suv.size * voxel_ml,
    }
    if mask is not None:
        out["dice"] = metrics.dice(result, mask)
        out["hd95_mm"] = metrics.hd95(result, mask)
    return out


def task_features(row: dict) -> dict:
    """IBSI radiomics features (:func:`medlab.features.extract`) of ``image`` inside ``mask``.

    Optional row columns: ``settings`` (an IBSI configuration name for
    :func:`medlab.features.ibsi_settings`, e.g. ``'C'``) and ``bins`` (fixed bin number).
    """
    from medlab import features

    image, mask = _read_pair(row)
    if mask is None:
        raise ValueError(f"case {row['case_id']!r} needs a `mask` for feature extraction")
    settings = features.ibsi_settings(row["settings"]) if row.get("settings") else None
    changes = {"bins": int(row["bins"])} if row.get("bins") else {}
    table = features.extract(image, mask, settings, name=row["case_id"], **changes)
    return table.iloc[0].to_dict()


def task_pacs_measure(row: dict) -> dict:
    """Measure each segment and write DICOM SEG + SR, stored back in the PACS when the row
    asks (:func:`medlab.pacs.task_measure`)."""
    from medlab.pacs import task_measure

    return task_measure(row)


TASKS: dict[str, Callable[[dict], dict]] = {
    "features": task_features,
    "intensity_statistics": task_intensity_statistics,
    "pet_segmentation": task_pet_segmentation,
    "pacs_measure": task_pacs_measure,
}
"""Built-in per-case tasks by name."""


def _resolve_task(task) -> tuple[str, Callable[[dict], dict]]:
    if callable(task):
        return getattr(task, "__name__", "task"), task
    if isinstance(task, str) and ":" in task:
        module, _, name = task.partition(":")
        try:
            return task, getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"`task` {task!r} cannot be imported: {exc}") from exc
    return task, TASKS[check_choice("task", task, list(TASKS))]


# ----------------------------------------------------------------------------- cohorts


def read_cohort(cohort):
    """The cohort as a DataFrame, checked: a ``case_id`` column of unique, file-safe ids.

    Parameters
    ----------
    cohort : str, Path or pandas.DataFrame
        A CSV file (relative paths in it are taken relative to the CSV's folder) or a table.
    """
    import pandas as pd

    if isinstance(cohort, (str, os.PathLike)):
        path = Path(cohort)
        if not path.is_file():
            raise FileNotFoundError(f"cohort table not found: {path}")
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in ("image", "mask"):
            if col in df:
                df[col] = [str((path.parent / v).resolve()) if v and not os.path.isabs(v) else v for v in df[col]]
    elif isinstance(cohort, pd.DataFrame):
        df = cohort.copy()
    else:
        raise TypeError(f"`cohort` must be a CSV path or a pandas DataFrame; got {type(cohort).__name__}")
    if "case_id" not in df:
        raise ValueError(f"the cohort needs a `case_id` column; its columns are {list(df.columns)}")
    ids = df["case_id"].astype(str)
    dup = sorted(ids[ids.duplicated()].unique())
    if dup:
        raise ValueError(f"`case_id` values must be unique; repeated: {dup[:10]}")
    bad = [c for c in ids if not c or c.startswith(".") or any(ch in c for ch in '/\\:*?"<>|')]
    if bad:
        raise ValueError(f"`case_id` values must be usable as file names; got {bad[:10]}")
    df["case_id"] = ids
    return df.reset_index(drop=True)


def cohort_from_dataset(name: str = "sts", *, modality: str = "PET", progress: bool = False):
    """A cohort table (``case_id``, ``image``, ``mask``) for a registered data set with masks.

    Currently the soft-tissue-sarcoma set (``'sts'``, modality ``'CT'``, ``'MR_T1'`` or ``'PET'``):
    the files are fetched and verified first, and the table holds their paths.

    Parameters
    ----------
    name : {'sts'}
        The registered data set.
    modality : {'CT', 'MR_T1', 'PET'}
        Which images of each case.
    progress : bool
        Show a progress bar while the files are fetched and verified.
    """
    import pandas as pd

    from medlab import datasets

    check_choice("name", name, ["sts"])
    check_choice("modality", modality, ["CT", "MR_T1", "PET"])
    cases = datasets.cases(name)
    root = datasets.fetch(name, [f"{c}/{modality}_*.nii.gz" for c in cases], progress=progress)
    return pd.DataFrame(
        {
            "case_id": cases,
            "image": [str(root / c / f"{modality}_image.nii.gz") for c in cases],
            "mask": [str(root / c / f"{modality}_mask.nii.gz") for c in cases],
        }
    )


# ----------------------------------------------------------------------------- running


def _jsonable(v):
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def run_case(task, row: dict, out_dir: str) -> dict:
    """Run one case and write its result file; never raises for a failing task.

    This is what each Dask task executes on a worker. The result file
    ``OUT/cases/<case_id>.json`` holds ``case_id``, ``status`` ('ok' or 'error'), ``seconds``,
    ``worker`` (process id) and either the task's values or ``error`` and ``traceback``.
    """
    name, func = _resolve_task(task)
    t0 = time.perf_counter()
    record = {"case_id": row["case_id"], "task": name}
    try:
        if row.get("pacs") and row.get("series_uid") and not row.get("image"):
            from medlab.pacs import retrieve_case  # a PACS cohort: the worker retrieves its own case

            row = retrieve_case(row, out_dir)
        values = func(dict(row))
        if not isinstance(values, dict):
            raise TypeError(f"task {name!r} must return a dict; got {type(values).__name__}")
        record.update({k: _jsonable(v) for k, v in values.items()})
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a failing case is recorded, never fatal
        record.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5))
    record["seconds"] = time.perf_counter() - t0
    record["worker"] = os.getpid()
    out = Path(out_dir) / "cases"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{row['case_id']}.json", json.dumps(record, indent=1))
    return record


@dataclass
class BatchResult:
    """What :func:`run_cohort` did."""

    out_dir: Path
    results_csv: Path
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def table(self):
        import pandas as pd

        return pd.read_csv(self.results_csv)


def _finished_ok(out_dir: Path, case_id: str) -> bool:
    path = out_dir / "cases" / f"{case_id}.json"
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (OSError, json.JSONDecodeError):
        return False


def merge_results(out_dir, case_ids=None) -> Path:
    """Merge ``OUT/cases/*.json`` into ``OUT/results.csv`` (+ ``.parquet``), atomically.

    Rows are in cohort order when ``case_ids`` is given, else sorted by case id; tracebacks are
    left out of the table (they stay in the case files).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The batch's output folder (``OUT``).
    case_ids : sequence of str, optional
        The cohort's case ids: the rows follow their order (default: sorted by case id).
    """
    import pandas as pd

    out_dir = Path(out_dir)
    files = sorted((out_dir / "cases").glob("*.json"))
    rows = [json.loads(p.read_text()) for p in files]
    df = pd.DataFrame(rows).drop(columns=["traceback"], errors="ignore")
    if len(df):
        order = {c: i for i, c in enumerate(case_ids)} if case_ids is not None else None
        df = df.sort_values("case_id", key=(lambda s: s.map(order)) if order else None).reset_index(drop=True)
    csv = out_dir / "results.csv"
    write_text(csv, df.to_csv(index=False))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return csv
    with atomic_path(out_dir / "results.parquet") as tmp:
        df.astype({c: str for c in df.columns if df[c].dtype == object}).to_parquet(tmp, index=False)
    return csv


#: How often a local cluster is started before giving up (a worker process killed or failing
#: while the cluster starts aborts that start).
CLUSTER_START_ATTEMPTS = 3


def _start_local_cluster(distributed, n_workers: int, threads_per_worker: int):
    """A started ``LocalCluster`` with all its workers, and its client; retried on failure."""
    # One Dask thread per worker should mean one compute thread: ITK, OpenMP and BLAS would
    # otherwise each start one thread per core in every worker process and oversubscribe the
    # machine.
    threads = str(threads_per_worker)
    errors = []
    for _attempt in range(CLUSTER_START_ATTEMPTS):
        cluster = client = None
        try:
            cluster = distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                # A free loopback port: the default 8787 may be taken by another cluster (and
                # None still binds the scheduler's HTTP server to 8787).
                dashboard_address="127.0.0.1:0", host="127.0.0.1",
                env={"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": threads, "OMP_NUM_THREADS": threads,
                     "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
            )
            client = distributed.Client(cluster)
            client.wait_for_workers(n_workers, timeout=120)
            return cluster, client
        except Exception as exc:  # noqa: BLE001 - any failed start is retried, then reported
            errors.append(f"{type(exc).__name__}: {exc}")
            for thing in (client, cluster):
                if thing is not None:
                    try:
                        thing.close()
                    except Exception:  # noqa: BLE001, S110 - closing a broken cluster
                        pass
    raise MedlabError(
        f"could not start a local Dask cluster of {n_workers} worker(s) in {CLUSTER_START_ATTEMPTS} "
        f"attempts; last error: {errors[-1]}"
    )


def run_cohort(
    cohort,
    task,
    out_dir,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    progress: bool = True,
    client=None,
) -> BatchResult:
    """Run ``task`` on every case of ``cohort`` with Dask; write per-case results and a merged table.

    Parameters
    ----------
    cohort : str, Path or pandas.DataFrame
        See :func:`read_cohort`.
    task : str or callable
        A name from :data:`TASKS`, ``"package.module:function"``, or a function
        ``task(row: dict) -> dict`` (it must be importable by the workers).
    out_dir : str or Path
        Output folder (created); ``cases/`` holds one JSON per case, ``results.csv`` the merge.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``). Default: a ``LocalCluster``
        of ``n_workers`` processes started for this run and closed after it.
    n_workers, threads_per_worker : int
        Size of the local cluster (ignored with ``scheduler`` or ``client``).
    progress : bool
        Show a progress bar over cases.
    client : distributed.Client, optional
        Use this client (and its cluster) instead of creating one.

    Returns
    -------
    BatchResult
        ``computed``, ``skipped`` (already done in an earlier run) and ``failed`` case ids, the
        merged table path and the wall time.
    """

    distributed = require("distributed", extra="batch", purpose="medlab.batch")
    df = read_cohort(cohort)
    _resolve_task(task)  # fail early on an unknown task, before starting a cluster
    out_dir = Path(out_dir).resolve()
    if isinstance(cohort, (str, os.PathLike)) and Path(cohort).resolve().parent == out_dir:
        raise ValueError("`out_dir` must not be the folder of the cohort table")
    (out_dir / "cases").mkdir(parents=True, exist_ok=True)
    # partial result files of an earlier run that was killed
    clean_stale(out_dir)
    clean_stale(out_dir / "cases")
    rows = df.to_dict(orient="records")
    if not rows:
        raise MedlabError("the cohort has no cases")
    todo = [r for r in rows if not _finished_ok(out_dir, r["case_id"])]
    todo_ids = {r["case_id"] for r in todo}
    result = BatchResult(out_dir=out_dir, results_csv=out_dir / "results.csv",
                         skipped=[r["case_id"] for r in rows if r["case_id"] not in todo_ids])
    t0 = time.perf_counter()
    if todo:
        own_cluster = None
        if client is None:
            if scheduler:
                client = distributed.Client(scheduler)
            else:
                own_cluster, client = _start_local_cluster(distributed, n_workers, threads_per_worker)
            own_client = client
        else:
            own_client = None
        try:
            futures = {
                client.submit(run_case, task, r, str(out_dir), key=f"medlab-{r['case_id']}-{time.time_ns()}",
                              pure=False): r["case_id"]
                for r in todo
            }
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="cases", unit="case", disable=not progress)
            for fut in distributed.as_completed(futures):
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                    case = futures[fut]
                    rec = {"case_id": case, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
                    write_text(out_dir / "cases" / f"{case}.json", json.dumps(rec, indent=1))
                (result.computed if rec["status"] == "ok" else result.failed).append(rec["case_id"])
                bar.update(1)
            bar.close()
        finally:
            if own_client is not None:
                own_client.close()
            if own_cluster is not None:
                own_cluster.close()
    result.seconds = time.perf_counter() - t0
    merge_results(out_dir, [r["case_id"] for r in rows])
    return result
