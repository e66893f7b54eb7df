"""medlab.batch throughput: IBSI feature extraction over the 10 sarcoma CTs with 1 vs 2 Dask
workers (LocalCluster processes, one thread each), both measured in the same run.
Target (issue): report the ratio; ideal on 2 cores is 2x."""

from __future__ import annotations

import tempfile
import time


def bench_batch_features_1_vs_2_workers():
    from medlab import batch

    cohort = batch.cohort_from_dataset("sts", modality="CT")
    times = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = batch.run_cohort(cohort, "features", out, n_workers=n, progress=False)
            times[n] = time.perf_counter() - t0
            assert not res.failed, res.failed
    speedup = times[1] / times[2]
    return {
        "medlab_ms": 1e3 * times[2],
        "baseline_ms": 1e3 * times[1],
        "ratio": times[2] / times[1],
        "speedup_2_workers": speedup,
        "cases_per_s_1_worker": len(cohort) / times[1],
        "cases_per_s_2_workers": len(cohort) / times[2],
        "target": "report the 1 vs 2 worker ratio (ideal speed-up 2x on 2 cores)",
        "ok": speedup > 1.0,
        "note": "10 sarcoma CTs, IBSI features with default settings; wall time includes cluster start",
    }


BENCHMARKS = {"batch_features_1_vs_2_workers": bench_batch_features_1_vs_2_workers}
