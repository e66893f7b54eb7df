"""medlab benchmarks: speed targets measured as ratios against a baseline in the same run.

Run with ``bash tools/dev.sh bench`` (or ``python benchmarks/run.py [NAME ...]``). Results are
printed as a table and written to ``benchmarks/results/latest.json``. Each benchmark interleaves
the medlab call and its baseline so machine noise hits both alike, and reports medians.

Benchmarks
----------
dicom_series_read   IBSI CT phantom DICOM series (60 slices): medlab.io.read vs raw
                    SimpleITK ImageSeriesReader. Target: ratio <= 1.2.
window_level_png    a real 512x512 CT slice (pydicom-data 693_J2KI.dcm) to display-ready
                    PNG bytes with medlab.display.png_bytes. Target: median <= 10 ms.
                    Baseline: cv2.imencode alone of the already-windowed 8-bit slice.
region_grow_3d      connected-threshold region growing of the IBSI CT phantom tumour from one
                    seed: medlab.segmentation.connected_threshold vs raw SimpleITK
                    ConnectedThreshold. Target: ratio <= 1.1.
region_grow_2d      the same on a real 512x512 CT slice (693_J2KI.dcm), the interactive
                    preview case. Target: median <= 30 ms. Baseline: raw SimpleITK.
import_time         ``import medlab`` in a fresh interpreter vs ``import numpy`` (baseline);
                    also ``import medlab.io`` and the first submodules a notebook touches.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if "MEDLAB_DATA_STORE" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["MEDLAB_DATA_STORE"] = str(ROOT.parent / "shared" / "data")


def _interleaved(fa, fb, repeats):
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter(); fa(); ta.append(time.perf_counter() - t)
        t = time.perf_counter(); fb(); tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def _result(t_ours, t_base, target, ok, note, **extra):
    """A benchmark's row from two median times in seconds (reported in ms)."""
    return {"medlab_ms": 1e3 * t_ours, "baseline_ms": 1e3 * t_base, "ratio": t_ours / t_base,
            "target": target, "ok": ok, "note": note, **extra}


def bench_dicom_series_read(repeats=15):
    import SimpleITK as sitk

    import medlab.datasets
    import medlab.io

    folder = medlab.datasets.fetch("ibsi_ct_phantom", progress=False) / "dicom" / "image"

    def raw():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        return reader.Execute()

    def ours():
        return medlab.io.read(folder)

    a, b = sitk.GetArrayFromImage(raw()), sitk.GetArrayFromImage(ours())
    assert (a == b).all(), "medlab and SimpleITK read different voxels"
    raw(), ours()  # warm the file cache for both
    t_ours, t_raw = _interleaved(ours, raw, repeats)
    return _result(t_ours, t_raw, "ratio <= 1.2", t_ours / t_raw <= 1.2,
                   f"{len(list(folder.glob('*.dcm')))} slices; baseline = SimpleITK ImageSeriesReader")


def bench_window_level_png(repeats=200):
    import SimpleITK as sitk
    from pydicom.data import get_testdata_file

    import medlab.display
    import medlab.enhance
    import medlab.io

    ct = medlab.io.read(get_testdata_file("693_J2KI.dcm"))
    slice2d = sitk.GetArrayFromImage(ct)
    slice2d = slice2d.reshape(slice2d.shape[-2:])
    assert slice2d.shape == (512, 512), slice2d.shape
    preset = medlab.enhance.presets()["abdomen"]  # W 400 / L 50 HU
    u8 = medlab.display.to_uint8(slice2d, preset.window, preset.level)

    def ours():
        return medlab.display.png_bytes(slice2d, preset.window, preset.level)

    import cv2

    def encode_only():
        return cv2.imencode(".png", u8)[1].tobytes()

    ours()
    t_ours, t_base = _interleaved(ours, encode_only, repeats)
    return _result(t_ours, t_base, "median <= 10 ms", 1e3 * t_ours <= 10,
                   f"512x512 {slice2d.dtype} CT (693_J2KI.dcm), abdomen preset; baseline = cv2.imencode of the already-windowed 8-bit slice",
                   png_bytes=len(ours()))


def _region_grow(image, seed_zyx, lower, upper, repeats):
    import SimpleITK as sitk

    import medlab.segmentation as seg

    seed_xyz = [tuple(int(v) for v in seed_zyx[::-1])]

    def raw():
        return sitk.ConnectedThreshold(image, seed_xyz, lower, upper, 1)

    def ours():
        return seg.connected_threshold(image, seeds_index=[seed_zyx], lower=lower, upper=upper)

    n = int(sitk.GetArrayFromImage(ours()).sum())
    assert n == int(sitk.GetArrayFromImage(raw()).sum()) and n > 0
    ours(), raw()
    t_ours, t_raw = _interleaved(ours, raw, repeats)
    return t_ours, t_raw, n


def bench_region_grow_3d(repeats=15):
    import numpy as np
    import SimpleITK as sitk
    from scipy.ndimage import distance_transform_edt

    import medlab.datasets

    ct_case = medlab.datasets.load("ibsi_ct_phantom", progress=False)
    ct, gtv = ct_case.image, ct_case.label
    inside = sitk.GetArrayFromImage(gtv) > 0
    seed = tuple(int(v) for v in np.unravel_index(np.argmax(distance_transform_edt(inside)), inside.shape))
    t_ours, t_raw, n = _region_grow(ct, seed, -300.0, 300.0, repeats)
    return _result(t_ours, t_raw, "ratio <= 1.1", t_ours / t_raw <= 1.1,
                   f"IBSI CT phantom 204x201x60, seed (z,y,x)={seed} (deepest GTV voxel), -300..300 HU, {n} voxels grown")


def bench_region_grow_2d(repeats=100):
    import SimpleITK as sitk
    from pydicom.data import get_testdata_file

    import medlab.io

    ct = medlab.io.read(get_testdata_file("693_J2KI.dcm"))
    assert ct.GetSize() == (512, 512), ct.GetSize()
    t_ours, t_raw, n = _region_grow(ct, (256, 256), -200.0, 200.0, repeats)
    return _result(t_ours, t_raw, "median <= 30 ms", 1e3 * t_ours <= 30,
                   f"512x512 CT slice (693_J2KI.dcm), seed (y,x)=(256,256), -200..200 HU, {n} pixels grown")


def _import_time(stmt, repeats):
    times = []
    for _ in range(repeats):
        code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def bench_import_time(repeats=7):
    base = _import_time("import numpy", repeats)
    res = {"baseline_ms (import numpy)": 1e3 * base}
    for stmt in ("import medlab", "import medlab.io", "import medlab.enhance, medlab.display", "import medlab.datasets"):
        res[f"{stmt} ms"] = 1e3 * _import_time(stmt, repeats)
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, medlab, medlab.io, medlab.enhance, medlab.filters, medlab.datasets;"
         "print(sorted(m for m in ('tensorflow','keras','dask','napari','torch','jax') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    res["ratio"] = res["import medlab ms"] / res["baseline_ms (import numpy)"]
    res["heavy modules loaded"] = heavy
    res["target"] = "import medlab faster than import numpy; no TF/Dask/napari loaded"
    res["ok"] = res["ratio"] <= 1.0 and heavy == "[]"
    return res


BENCHMARKS = {
    # foundation and segmentation; topic modules benchmarks/bench_<topic>.py add theirs
    # through a BENCHMARKS dict of their own (see _discover)
    "dicom_series_read": bench_dicom_series_read,
    "window_level_png": bench_window_level_png,
    "region_grow_3d": bench_region_grow_3d,
    "region_grow_2d": bench_region_grow_2d,
    "import_time": bench_import_time,
}


def _discover():
    """Add the BENCHMARKS of every ``benchmarks/bench_<topic>.py`` (name clashes are errors)."""
    import importlib.util

    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, func in getattr(mod, "BENCHMARKS", {}).items():
            if name in BENCHMARKS:
                raise SystemExit(f"benchmark {name!r} of {path.name} is already defined")
            BENCHMARKS[name] = func


def main(argv=None):
    _discover()
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "benchmarks": {},
    }
    for name in names:
        print(f"== {name}", flush=True)
        r = BENCHMARKS[name]()
        results["benchmarks"][name] = r
        for k, v in r.items():
            print(f"   {k:40s} {v:.3f}" if isinstance(v, float) else f"   {k:40s} {v}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    tmp = out / ".latest.json.partial"
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(out / "latest.json")
    print(f"results: {out / 'latest.json'}")
    return 0 if all(r.get("ok", True) for r in results["benchmarks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
