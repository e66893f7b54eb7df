"""Benchmarks of medlab.features: time per case on the IBSI CT phantom against pyradiomics.

features_ct_phantom     IBSI configuration A on the CT phantom (204 x 201 x 60, GTV of 125k
                        voxels): no interpolation, re-segmentation [-500, 400] HU, fixed bin
                        size 25 HU, texture per slice. medlab computes every IBSI family
                        (346 values: 2D and 2.5D aggregations, GLDZM, IVH, intensity peak,
                        Moran's I / Geary's C included). Baseline: pyradiomics with the same
                        input, range and bin width, ``force2D`` (per-slice texture), classes
                        shape, firstorder, glcm, glrlm, glszm, gldm, ngtdm (all their default
                        features). Target: ratio <= 1 (medlab no slower).
features_ct_phantom_3d  the same without per-slice texture: medlab ``texture_dims=('3D',)``
                        (every family, 3D averaged and merged) vs pyradiomics 3D.
                        Target: ratio <= 1.

Both take ``SimpleITK.Image`` inputs already in memory and are timed interleaved (medians of
wall time, the ratio; CPU time of the process is reported too, as ``cpu_ratio``, because it is
what stays comparable on a shared, busy machine). pyradiomics is an optional benchmark
dependency (``pip install 'medlab[bench]'``; see the note on building it in pyproject.toml).
Without it the baseline is pyradiomics' CPU time recorded on the development machine, compared
with medlab's CPU time, and the note says so.
"""

from __future__ import annotations

import logging
import statistics
import time

# pyradiomics 3.0.1 CPU time per case on the development machine (2 cores, Python 3.11,
# 2026-11), median of 5 runs; used only when pyradiomics is not installed
_RECORDED_BASELINE_CPU_MS = {"2D": 1073.0, "3D": 1149.0}


def _pyradiomics_extractor(force2d: bool):
    try:
        import radiomics
        from radiomics import featureextractor
    except ImportError:
        return None
    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    settings = {"binWidth": 25, "resegmentRange": [-500, 400], "force2D": force2d, "force2Ddimension": 0}
    ex = featureextractor.RadiomicsFeatureExtractor(**settings)
    ex.disableAllFeatures()
    for cls in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):
        ex.enableFeatureClassByName(cls)
    return ex


def _bench(dims: str, repeats: int):
    from medlab import datasets
    from medlab import features as F

    image_case = datasets.load("ibsi_ct_phantom", progress=False)
    image, mask = image_case.image, image_case.label
    settings = F.ibsi_settings("A") if dims == "2D" else F.ibsi_settings("A", texture_dims=("3D",))

    def ours():
        return F.extract(image, mask, settings)

    n_ours = ours().shape[1]
    ex = _pyradiomics_extractor(force2d=dims == "2D")
    theirs = (lambda: ex.execute(image, mask)) if ex is not None else None
    wall = {"ours": [], "theirs": []}
    cpu = {"ours": [], "theirs": []}
    for _ in range(repeats):
        for who, func in (("ours", ours), ("theirs", theirs)):
            if func is None:
                continue
            t, c = time.perf_counter(), time.process_time()
            func()
            wall[who].append(time.perf_counter() - t)
            cpu[who].append(time.process_time() - c)
    med = {k: statistics.median(v) for k, v in wall.items() if v}
    cmed = {k: statistics.median(v) for k, v in cpu.items() if v}
    if ex is None:
        base_cpu = _RECORDED_BASELINE_CPU_MS[dims] / 1e3
        res = {
            "medlab_ms": 1e3 * med["ours"],
            "medlab_cpu_ms": 1e3 * cmed["ours"],
            "baseline_cpu_ms": 1e3 * base_cpu,
            "ratio": cmed["ours"] / base_cpu,
            "note": "pyradiomics not installed: CPU time vs pyradiomics 3.0.1 recorded on the development machine",
        }
    else:
        import radiomics

        n_theirs = sum(1 for k in theirs() if not k.startswith("diagnostics"))
        res = {
            "medlab_ms": 1e3 * med["ours"],
            "baseline_ms": 1e3 * med["theirs"],
            "ratio": med["ours"] / med["theirs"],
            "medlab_cpu_ms": 1e3 * cmed["ours"],
            "baseline_cpu_ms": 1e3 * cmed["theirs"],
            "cpu_ratio": cmed["ours"] / cmed["theirs"],
            "note": (
                f"medlab {n_ours} feature values vs pyradiomics {radiomics.__version__} {n_theirs}; "
                f"texture {'per slice' if dims == '2D' else '3D'}; same image, range, bin width"
            ),
        }
    res["target"] = "ratio <= 1"
    res["ok"] = res["ratio"] <= 1.0
    return res


def bench_features_ct_phantom(repeats=5):
    return _bench("2D", repeats)


def bench_features_ct_phantom_3d(repeats=5):
    return _bench("3D", repeats)


BENCHMARKS = {
    "features_ct_phantom": bench_features_ct_phantom,
    "features_ct_phantom_3d": bench_features_ct_phantom_3d,
}
