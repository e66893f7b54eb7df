"""DICOM series read time: medlab.io.read vs the dcm2niix binary (convert + load) vs SimpleITK.

For each series of dcm2niix's NIH corpus (``dcm_qa_nih``: GE EPI 150 files = 15 slices x 10
volumes; Siemens mosaic EPI 2 files = 72x72x5 x 2) and the IBSI CT phantom (60 slices, 3D), one
run times, interleaved and as a median of ``REPEATS``:

- ``medlab``: ``medlab.io.read(folder)`` (header scan, geometry checks; GE's classic 4D files
  read natively with dcm2niix on the first two volumes for the metadata, mosaics converted by
  dcm2niix, the CT by GDCM; the SimpleITK image with per-volume metadata; ``route`` gives
  ``volume_metadata(image)["source"]``);
- ``dcm2niix``: the same binary run by hand into a temporary folder and its NIfTI loaded with
  SimpleITK (what a user would otherwise do);
- ``sitk``: ``sitk.ImageSeriesReader`` on GDCM's file list (fast, but it stacks a 4D series into
  one 3D volume and reads a mosaic as a 2D picture: the shape it returns is reported).

Target: medlab no slower than dcm2niix convert + load on the 4D series (ratio <= 1.0 on their
total time); each series' own ratio is reported too, with the load average before and after. Run: ``python benchmarks/run.py dicom_read`` (or this file directly).
"""

from __future__ import annotations

import glob
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPEATS = 5
HERE = Path(__file__).resolve().parent
if "MEDLAB_DATA_STORE" not in os.environ and (HERE.parents[1] / "shared" / "data").is_dir():
    os.environ["MEDLAB_DATA_STORE"] = str(HERE.parents[1] / "shared" / "data")


def _dcm2niix_load(folder: str):
    import dcm2niix
    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([dcm2niix.bin, "-g", "i", "-b", "n", "-z", "n", "-f", "%s", "-o", tmp, folder],
                       capture_output=True, check=True)
        return [sitk.ReadImage(p) for p in sorted(glob.glob(os.path.join(tmp, "*.nii")))]


def _sitk_read(folder: str):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return reader.Execute()


def _cpu() -> float:
    """CPU seconds of this process and its finished children (dcm2niix) so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time(func, cpu: list | None = None) -> float:
    c, t = _cpu(), time.perf_counter()
    func()
    t = time.perf_counter() - t
    if cpu is not None:
        cpu.append(_cpu() - c)
    return t


def bench_dicom_read():
    import warnings

    import medlab.datasets
    import medlab.io

    series = {case: str(medlab.datasets.load("dcm_qa_nih", case=case).paths["series"])
              for case in medlab.datasets.cases("dcm_qa_nih")}
    series["ibsi_ct (3D)"] = str(medlab.datasets.fetch("ibsi_ct_phantom", progress=False) / "dicom" / "image")
    rows = {}
    load_before = os.getloadavg()[0]
    for name, folder in series.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SimpleITK's and medlab's notes are not timed
            image = medlab.io.read(folder)
            stacked = _sitk_read(folder)
            _dcm2niix_load(folder)  # warm the file cache for all three
            times = {"medlab": [], "dcm2niix": [], "sitk": []}
            cpu = {"medlab": [], "dcm2niix": []}
            for _ in range(REPEATS):
                times["medlab"].append(_time(lambda: medlab.io.read(folder), cpu["medlab"]))
                times["dcm2niix"].append(_time(lambda: _dcm2niix_load(folder), cpu["dcm2niix"]))
                times["sitk"].append(_time(lambda: _sitk_read(folder)))
        rows[name] = {
            **{f"{k}_ms": 1e3 * statistics.median(v) for k, v in times.items()},
            **{f"{k}_cpu_ms": 1e3 * statistics.median(v) for k, v in cpu.items()},
            "medlab_size": image.GetSize(),
            "sitk_size": stacked.GetSize(),
            "route": medlab.io.volume_metadata(image)["source"],
        }
        rows[name]["ratio"] = rows[name]["medlab_ms"] / rows[name]["dcm2niix_ms"]
    four_d = [r for n, r in rows.items() if "3D" not in n]
    medlab_ms = sum(r["medlab_ms"] for r in four_d)
    baseline_ms = sum(r["dcm2niix_ms"] for r in four_d)
    cpu_ratio = sum(r["medlab_cpu_ms"] for r in four_d) / sum(r["dcm2niix_cpu_ms"] for r in four_d)
    return {
        "medlab_ms": medlab_ms,
        "baseline_ms": baseline_ms,
        "ratio": medlab_ms / baseline_ms,
        "cpu_ratio": cpu_ratio,
        "load_average": os.getloadavg()[0],
        "load_average_before": load_before,
        "target": "ratio <= 1.0 (4D series, total)",
        "ok": medlab_ms <= baseline_ms,
        "note": "baseline = dcm2niix binary convert + SimpleITK load of its NIfTI; wall-clock medians, and CPU "
        "seconds of the process and its dcm2niix child (cpu_ratio: what the ratio tends to on a fully loaded "
        "machine, where medlab's header scan can no longer run beside dcm2niix); per series: "
        + "; ".join(f"{n}: ratio {r['ratio']:.2f}, medlab {r['medlab_ms']:.1f} ms (CPU {r['medlab_cpu_ms']:.0f}) "
                    f"{r['medlab_size']} [{r['route']}], "
                    f"dcm2niix {r['dcm2niix_ms']:.1f} ms (CPU {r['dcm2niix_cpu_ms']:.0f}), "
                    f"sitk {r['sitk_ms']:.1f} ms {r['sitk_size']}" for n, r in rows.items()),
        "series": rows,
    }


BENCHMARKS = {"dicom_read": bench_dicom_read}

if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed reads per route and series (median)")
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args()
    REPEATS = args.repeats
    text = json.dumps(bench_dicom_read(), indent=1, default=str)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
