"""medlab.batch throughput: IBSI feature extraction over the 10 sarcoma CTs with 1 vs 2 Dask
workers (LocalCluster processes, one thread each), both measured in the same run.

Two numbers per worker count: the end-to-end wall time of ``run_cohort`` as a user runs it
(cluster start included), and the steady-state time on an already started, warmed-up cluster
(median of ``REPEATS`` runs), which is the throughput a long cohort sees.
Target (issue): report the ratio; ideal on 2 cores is 2x."""

from __future__ import annotations

import statistics
import tempfile
import time

REPEATS = 3


def _timed_run(cohort, **kwargs):
    from medlab import batch

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = batch.run_cohort(cohort, "features", out, progress=False, **kwargs)
        seconds = time.perf_counter() - t0
    assert not res.failed, res.failed
    return seconds


def bench_batch_features_1_vs_2_workers():
    from distributed import Client, LocalCluster

    from medlab import batch

    cohort = batch.cohort_from_dataset("sts", modality="CT")
    end_to_end, steady = {}, {}
    for n in (1, 2):
        end_to_end[n] = _timed_run(cohort, n_workers=n)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            _timed_run(cohort, client=client)  # warm-up: imports and first-call caches on workers
            steady[n] = statistics.median(_timed_run(cohort, client=client) for _ in range(REPEATS))
    speedup = steady[1] / steady[2]
    return {
        "medlab_ms": 1e3 * steady[2],
        "baseline_ms": 1e3 * steady[1],
        "ratio": steady[2] / steady[1],
        "speedup_2_workers": speedup,
        "speedup_2_workers_end_to_end": end_to_end[1] / end_to_end[2],
        "end_to_end_1_worker_s": end_to_end[1],
        "end_to_end_2_workers_s": end_to_end[2],
        "cases_per_s_1_worker": len(cohort) / steady[1],
        "cases_per_s_2_workers": len(cohort) / steady[2],
        "target": "report the 1 vs 2 worker ratio (ideal speed-up 2x on 2 cores)",
        "ok": speedup > 1.0,
        "note": (f"10 sarcoma CTs, IBSI features with default settings; steady state = median of "
                 f"{REPEATS} runs on a started, warmed-up cluster; end to end includes cluster start"),
    }


BENCHMARKS = {"batch_features_1_vs_2_workers": bench_batch_features_1_vs_2_workers}
