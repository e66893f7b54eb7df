"""medlab.pacs retrieval throughput on localhost: one series from a real Orthanc (started here
on 127.0.0.1, as in the tests) over DICOMweb (WADO-RS) and DIMSE (C-GET), 1 vs 2 workers.

The series: the IBSI CT phantom's 60 slices stored 4 times with new UIDs and shifted positions
as one series of 240 instances (about 20 MB), so a transfer lasts long enough to time.
Each configuration retrieves into an empty folder; configurations are interleaved and the
median of ``REPEATS`` runs is reported (MB/s of DICOM files written, instances/s).

DICOMweb with 1 worker and an empty folder uses one streamed series request; with 2 workers,
one request per instance, 2 at a time. ``dicomweb_per_instance_1_worker`` forces the
per-instance path with 1 worker (one instance already in the folder, as a resumed retrieval
sees it), so the 1 vs 2 worker comparison is like for like. DIMSE: 1 worker is one C-GET of
the series; 2 workers are 2 associations, each a C-GET of half the instances by UID list;
``dimse_move_1_worker``: one C-MOVE of the series to this client's own storage listener.
``dimse_tls_1_worker``: one C-GET of the series from a second Orthanc whose DICOM port speaks
only DICOM TLS (``local_orthanc(tls=True)``: its own TLS, client certificate required), so
``dimse_tls_cost`` (TLS time / plain time, both 1 worker) is what TLS costs on localhost.
Target (issue): report the numbers."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPEATS = 5
COPIES = 4


def _series(folder: Path) -> tuple[list[Path], str, str]:
    """The phantom series copied ``COPIES`` times into one 240-instance series."""
    import pydicom
    from pydicom.uid import generate_uid

    import medlab.datasets

    src = sorted((medlab.datasets.fetch("ibsi_ct_phantom", ["dicom/*"], progress=False) / "dicom" / "image").glob("*.dcm"))
    series_uid, files = generate_uid(), []
    for copy in range(COPIES):
        for p in src:
            ds = pydicom.dcmread(p)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            pos = [float(v) for v in ds.ImagePositionPatient]
            ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + copy * 200.0]
            out = folder / f"{copy}_{p.name}"
            ds.save_as(out)
            files.append(out)
    return files, str(ds.StudyInstanceUID), series_uid


def bench_pacs_retrieval_1_vs_2_workers():
    from medlab.pacs import local_orthanc

    import os

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="medlab-bench-pacs-"))
    server = local_orthanc(work / "orthanc")
    tls_server = local_orthanc(work / "orthanc-tls", tls=True)
    try:
        files, study, series = _series(Path(tempfile.mkdtemp(dir=work)))
        server.upload(files)
        tls_server.upload(files)
        web, dimse, dimse_move = server.dicomweb(), server.dimse(), server.dimse(move_port=True)
        dimse_tls = tls_server.dimse()
        first_uid = str(__import__("pydicom").dcmread(files[0], stop_before_pixels=True).SOPInstanceUID)
        seed = files[0].read_bytes()

        def run(client, workers, preset=False):
            folder = Path(tempfile.mkdtemp(dir=work))
            if preset:
                (folder / f"{first_uid}.dcm").write_bytes(seed)
            t = time.perf_counter()
            res = client.retrieve_series(study, series, folder, workers=workers, progress=False)
            seconds = time.perf_counter() - t
            size = sum(p.stat().st_size for p in res.files)
            shutil.rmtree(folder)
            assert len(res.files) == len(files)
            return seconds, size, len(res.files)

        configs = {
            "dicomweb_series_1_worker": (web, 1, False),
            "dicomweb_per_instance_1_worker": (web, 1, True),
            "dicomweb_per_instance_2_workers": (web, 2, False),
            "dimse_1_worker": (dimse, 1, False),
            "dimse_2_workers": (dimse, 2, False),
            "dimse_move_1_worker": (dimse_move, 1, False),
            "dimse_tls_1_worker": (dimse_tls, 1, False),
        }
        for c in configs.values():  # warm-up: imports, Orthanc's caches
            run(*c)
        times = {k: [] for k in configs}
        size = n = 0
        for _ in range(REPEATS):
            for k, c in configs.items():
                s, size, n = run(*c)
                times[k].append(s)
    finally:
        server.stop()
        tls_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {}
    for k, s in med.items():
        out[f"{k}_MB_per_s"] = size / 1e6 / s
        out[f"{k}_instances_per_s"] = n / s
    web_speedup = med["dicomweb_per_instance_1_worker"] / med["dicomweb_per_instance_2_workers"]
    dimse_speedup = med["dimse_1_worker"] / med["dimse_2_workers"]
    return {
        "medlab_ms": 1e3 * med["dicomweb_series_1_worker"],
        "baseline_ms": 1e3 * med["dimse_1_worker"],
        "ratio": med["dicomweb_series_1_worker"] / med["dimse_1_worker"],
        **out,
        "dicomweb_speedup_2_workers": web_speedup,
        "dimse_speedup_2_workers": dimse_speedup,
        "dimse_tls_cost": med["dimse_tls_1_worker"] / med["dimse_1_worker"],
        "load_average_1min": (load_before + os.getloadavg()[0]) / 2,
        "series_MB": size / 1e6,
        "series_instances": n,
        "target": "report MB/s and instances/s over DICOMweb and DIMSE, 1 vs 2 workers",
        "ok": True,
        "note": (f"Orthanc 1.10 + DICOMweb 1.7 on 127.0.0.1, {n} CT instances ({size / 1e6:.1f} MB), "
                 f"median of {REPEATS} interleaved runs; medlab_ms = DICOMweb streamed series, "
                 "baseline_ms = DIMSE C-GET (1 worker each)"),
    }


BENCHMARKS = {"pacs_retrieval_1_vs_2_workers": bench_pacs_retrieval_1_vs_2_workers}
