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

Both take ``SimpleITK.Image`` inputs already in memory and are timed interleaved (medians).
pyradiomics is an optional benchmark dependency (``pip install 'medlab[bench]'``; see the note
on building it in pyproject.toml). Without it the baseline is the median measured on the
development machine (2 cores) and the note says so.
"""

from __future__ import annotations

import logging
import statistics
import time

# pyradiomics 3.0.1 on the development machine (2 cores, 2026-11), medians of 5 runs, used
# only when pyradiomics is not installed
_RECORDED_BASELINE_MS = {"2D": 9300.0, "3D": 8000.0}


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

    image, mask = datasets.load("ibsi_ct_phantom", progress=False)
    settings = F.ibsi_settings("A") if dims == "2D" else F.ibsi_settings("A", texture_dims=("3D",))

    def ours():
        return F.extract(image, mask, settings)

    n_ours = ours().shape[1]
    ex = _pyradiomics_extractor(force2d=dims == "2D")
    if ex is None:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            ours()
            times.append(time.perf_counter() - t)
        t_ours, t_base = statistics.median(times), _RECORDED_BASELINE_MS[dims] / 1e3
        note = "pyradiomics not installed: baseline is the median recorded on the development machine"
    else:
        import radiomics

        def theirs():
            return ex.execute(image, mask)

        n_theirs = sum(1 for k in theirs() if not k.startswith("diagnostics"))
        ta, tb = [], []
        for _ in range(repeats):
            t = time.perf_counter(); ours(); ta.append(time.perf_counter() - t)
            t = time.perf_counter(); theirs(); tb.append(time.perf_counter() - t)
        t_ours, t_base = statistics.median(ta), statistics.median(tb)
        note = (
            f"medlab {n_ours} feature values vs pyradiomics {radiomics.__version__} {n_theirs}; "
            f"texture {'per slice' if dims == '2D' else '3D'}; same image, range, bin width"
        )
    ratio = t_ours / t_base
    return {
        "medlab_ms": 1e3 * t_ours,
        "baseline_ms": 1e3 * t_base,
        "ratio": ratio,
        "target": "ratio <= 1",
        "ok": ratio <= 1.0,
        "note": note,
    }


def bench_features_ct_phantom(repeats=5):
    return _bench("2D", repeats)


def bench_features_ct_phantom_3d(repeats=5):
    return _bench("3D", repeats)


BENCHMARKS = {
    "features_ct_phantom": bench_features_ct_phantom,
    "features_ct_phantom_3d": bench_features_ct_phantom_3d,
}
