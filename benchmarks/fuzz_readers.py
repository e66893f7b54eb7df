"""Long reader fuzz run: >= 10,000 corrupted copies of real files through ``medlab.io.read``.

    MEDLAB_DATA_STORE=/work/shared/data .venv/bin/python benchmarks/fuzz_readers.py --per-seed 1000

Seeds and the verdict on each result are those of the suite's fuzz test
(tests/test_fuzz_readers.py, tests/read_worker.py): real DICOM files (CT, RLE MR, JPEG colour,
a Siemens mosaic, an enhanced multi-frame 4D file, a GE 4D folder), NIfTI (.nii, .nii.gz),
NRRD (gzip and raw), MetaImage (.mha, zlib .mha, .mhd) and PNG. Each input is read in a child
process with a 4 GiB address-space cap and 20 s per file. The mutations are drawn by
``random.Random(--seed)``: truncation, 1-16 byte flips in the first 4 KB, 1-64 byte flips
anywhere, an insertion of 1-64 random bytes in the first 4 KB, and (MetaImage, NRRD, NIfTI) a
header number replaced by a hostile value (tests/read_worker.py: HOSTILE, from the classes of
the first fuzz run of issue 22). Writes ``benchmarks/results/fuzz_readers.json`` (every
non-accepted input with its mutation) and prints the summary table in Markdown.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from read_worker import HOSTILE, Worker, apply, classify, mutation_kinds  # noqa: E402
from test_fuzz_readers import SEEDS  # noqa: E402

COLUMNS = ("image", "header_edit", "pixel_change", "warned_change", "medlab_error", "other", "crash", "hang", "memory", "silent_wrong")
SLOW = {"dicom_mosaic", "dicom_enhanced_4d", "dicom_4d_folder", "dicom_2_volume_folder"}  # dcm2niix per input


def _mutation(rng: random.Random, size: int, fmt: str):
    header = max(1, min(size, 4096))
    kind = rng.choice(mutation_kinds(fmt))
    if kind == "truncate":
        return ("truncate", rng.randrange(size))
    if kind == "flip_header":
        return ("flip_header", [(rng.randrange(header), rng.randrange(256)) for _ in range(rng.randint(1, 16))])
    if kind == "flip_anywhere":
        return ("flip_anywhere", [(rng.randrange(size), rng.randrange(256)) for _ in range(rng.randint(1, 64))])
    if kind == "splice":
        return ("splice", rng.randrange(header), rng.randbytes(rng.randint(1, 64)))
    return ("field", rng.randrange(10_000), rng.choice(HOSTILE))


def _family(fmt: str) -> str:
    return {"nifti_gz": "NIfTI", "nifti": "NIfTI", "png": "PNG"}.get(fmt) or (
        "DICOM" if fmt.startswith("dicom") else "NRRD" if fmt.startswith("nrrd") else "MetaImage"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-seed", type=int, default=1000, help="inputs per seed (4D DICOM seeds: a fifth)")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz_readers.json")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    counts: dict[str, Counter] = defaultdict(Counter)
    failures, slowest = [], 0.0
    t0 = time.perf_counter()
    worker = Worker()
    try:
        with tempfile.TemporaryDirectory(prefix="medlab-fuzz-") as tmp:
            tmp = Path(tmp)
            for name, (source, suffix, fmt) in sorted(SEEDS.items()):
                work = tmp / name
                work.mkdir()
                seed = source(work)
                if isinstance(seed, list):
                    folder = work / "series"
                    folder.mkdir()
                    for i, f in enumerate(seed[1:]):
                        (folder / f"{i:03d}{suffix}").write_bytes(f.read_bytes())
                    data, target, read_path = seed[0].read_bytes(), folder / f"fuzz{suffix}", folder
                else:
                    data = seed.read_bytes()
                    target = read_path = (seed.with_name(f"fuzz{suffix}") if suffix == ".mhd" else work / f"fuzz{suffix}")
                target.write_bytes(data)
                reference = worker.read(read_path)
                if reference["outcome"] != "image":
                    raise SystemExit(f"seed {name} does not read: {reference}")
                n = args.per_seed // 5 if name in SLOW else args.per_seed
                for _ in range(n):
                    mutation = _mutation(rng, len(data), fmt)
                    mutated, region = apply(data, fmt, mutation)
                    target.write_bytes(mutated)
                    result = worker.read(read_path)
                    slowest = max(slowest, result.get("seconds", 0.0))
                    verdict = classify(result, reference, fmt, region)
                    counts[_family(fmt)][verdict] += 1
                    counts[_family(fmt)]["inputs"] += 1
                    if verdict not in ("image", "header_edit", "pixel_change", "warned_change", "medlab_error"):
                        failures.append({"seed": name, "verdict": verdict, "region": region,
                                         "mutation": repr(mutation)[:400], "result": result})
                print(f"{name}: {n} inputs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        worker.close()
    total = Counter()
    for c in counts.values():
        total.update(c)
    rows = sorted(counts.items()) + [("all", total)]
    lines = ["| format | inputs | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for family, c in rows:
        lines.append(f"| {family} | {c['inputs']} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
    table = "\n".join(lines)
    summary = {
        "command": "benchmarks/fuzz_readers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed, "per_seed": args.per_seed, "seconds": round(time.perf_counter() - t0, 1),
        "slowest_read_s": round(slowest, 3), "counts": {k: dict(v) for k, v in rows}, "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(table)
    print(f"\n{total['inputs']} inputs in {summary['seconds']} s; slowest read {summary['slowest_read_s']} s; "
          f"{len(failures)} not accepted (see {args.out})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
