"""Reader fuzzing harness, shared by tests/test_fuzz_readers.py and benchmarks/fuzz_readers.py.

Run as a script it is the child process: it reads image paths from stdin, one per line, and
answers one JSON line each: the outcome ('image', 'medlab_error', 'memory' or 'other: ...'),
seconds, and for an image its geometry and a hash of its pixels. A crash (segfault, abort) or a
hang in a reader kills or stalls only this process; :class:`Worker` sees it and names the input.
Address space is capped and ``medlab.io.MAX_BYTES`` set to 1 GiB so that a corrupted header
that asks for a huge buffer is refused (or fails as an allocation error) instead of exhausting
the machine.

Imported, it gives :class:`Worker`, the mutations (:func:`apply`) and :func:`classify`, which
decides whether a returned image is acceptable. The rule ("silently wrong geometry"):

- a mutation that touched bytes of the header region (before the pixel data of an
  uncompressed file; the container header of a compressed one) may change the geometry or
  the pixels: the result passed every check, and no reader can know that e.g. a spacing of
  0.7 was 0.5. Counted as ``header_edit``.
- a mutation that touched bytes of the data region (a flip, an insertion) may change pixel
  values only where nothing could detect it: uncompressed pixel data, or encapsulated DICOM
  pixel data (JPEG, RLE have no checksum). Counted as ``pixel_change``. A truncation must
  give the seed's image or an error. A changed geometry, or changed pixels of a truncated
  file or of a checksummed stream (gzip/zlib in NIfTI .nii.gz,
  compressed MetaImage and NRRD, which medlab decompresses with their checksum), is
  ``silent_wrong``: a failure.
- an image identical to the seed's (geometry and pixels) is ``image``.
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

SECONDS_PER_FILE = 20.0
# Numbers put into header fields by the 'field' mutation: what the first fuzz run found harmful.
HOSTILE = ("-1", "0", "99", "nan", "inf", "-inf", "1e308", "1e-9", "1e6", "4294967297", "2.5", "abc", "", "1e-300", "-0")


# ---------------------------------------------------------------------------- child process


def _child() -> None:
    import hashlib
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
    import numpy as np
    import SimpleITK as sitk

    import medlab.io
    from medlab.errors import MedlabError

    medlab.io.MAX_BYTES = 2**30
    # Answers go to a private copy of stdout; what libraries or their subprocesses print goes
    # to stderr, so it can never be mistaken for (or corrupt) an answer line.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        path = line.rstrip("\n")
        t0 = time.perf_counter()
        result = {}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                img = medlab.io.read(path)
            if img.GetNumberOfPixels() == 0:
                outcome = "other: empty image"
            else:
                outcome = "image"
                arr = sitk.GetArrayViewFromImage(img)
                result = {
                    "geometry": [list(img.GetSize()), list(img.GetSpacing()), list(img.GetOrigin()),
                                 list(img.GetDirection()), img.GetNumberOfComponentsPerPixel(), img.GetPixelIDValue()],
                    "pixels": hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest(),
                    "warned": [str(w.message)[:200] for w in caught if issubclass(w.category, UserWarning)],
                }
        except MedlabError:
            outcome = "medlab_error"
        except MemoryError:
            outcome = "memory"
        except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzz test looks for
            outcome = f"other: {type(exc).__module__}.{type(exc).__name__}: {str(exc)[:200]}"
        print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t0, **result}), file=answers, flush=True)


# ---------------------------------------------------------------------------- parent side


class Worker:
    """A child process reading paths, restarted after a crash or a hang."""

    def __init__(self, seconds: float = SECONDS_PER_FILE):
        self.seconds = seconds
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )

    def read(self, path) -> dict:
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.seconds)
        if not ready:
            self.proc.kill()
            self.close()
            self.start()
            return {"outcome": f"hang: no answer within {self.seconds} s", "seconds": self.seconds}
        line = self.proc.stdout.readline()
        if not line:
            code = self.close()
            self.start()
            return {"outcome": f"crash: reader process died with exit code {code}", "seconds": 0.0}
        return json.loads(line)

    def close(self) -> int:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:  # a dead worker's stdin may refuse the final flush
                pass
        return self.proc.wait(timeout=30)


def header_end(data: bytes, fmt: str) -> int:
    """Bytes [0, header_end) are the header region of a seed (see the module docstring)."""
    if fmt in ("nifti_gz", "png"):
        return 10 if fmt == "nifti_gz" else 33  # gzip member header; PNG signature + IHDR
    if fmt == "nifti":
        endian = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
        return int(struct.unpack(endian + "f", data[108:112])[0])
    if fmt.startswith(("mha", "nrrd")):
        key = b"ElementDataFile" if fmt.startswith("mha") else None
        if key is not None:
            i = data.index(key)
            return data.index(b"\n", i) + 1
        return data.index(b"\n\n") + 2
    if fmt.startswith("dicom"):
        i = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) PixelData
        return i if i > 0 else len(data)
    raise ValueError(fmt)


CHECKSUMMED = ("nifti_gz", "mha_zlib", "nrrd_gzip")


def _field_spans(data: bytes, fmt: str, end: int) -> list[tuple[int, int]]:
    """(start, end) byte spans of the numbers in a seed's header: what 'field' overwrites.

    NIfTI: the binary fields of dim, datatype, pixdim, vox_offset, scl_slope, quatern, qoffset
    and srow. Text headers and DICOM (its DS/IS strings: RescaleSlope, PixelSpacing, positions,
    Rows as IS where present...): every run of digits before the pixel data.
    """
    if fmt == "nifti":
        return [(o, o + n) for o, n in ((40, 2), (42, 2), (44, 2), (46, 2), (70, 2), (80, 4), (84, 4),
                                        (88, 4), (108, 4), (112, 4), (256, 4), (268, 4), (272, 4),
                                        (280, 4), (296, 4), (312, 4))]
    if fmt.startswith(("mha", "nrrd", "dicom")):
        return [(m.start(), m.end()) for m in re.finditer(rb"-?[0-9][0-9.eE+-]*", data[:end])]
    return []


def mutation_kinds(fmt: str) -> tuple[str, ...]:
    kinds = ("truncate", "flip_header", "flip_anywhere", "splice")
    return kinds + (("field",) if fmt in ("nifti",) or fmt.startswith(("mha", "nrrd", "dicom")) else ())


def apply(data: bytes, fmt: str, mutation) -> tuple[bytes, str]:
    """(mutated bytes, region): region 'header' (only header bytes touched), 'data' or 'truncate'."""
    kind = mutation[0]
    end = header_end(data, fmt)
    if kind == "truncate":
        return data[: mutation[1]], "truncate"
    if kind == "splice":  # an insertion into the header shifts the header's fields: a header edit
        return data[: mutation[1]] + mutation[2] + data[mutation[1]:], "header" if mutation[1] < end else "data"
    if kind == "field":
        spans = _field_spans(data, fmt, end)
        start, stop = spans[mutation[1] % len(spans)]
        value = mutation[2]
        if fmt == "nifti":
            e = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
            width = stop - start
            try:
                number = float(value) if value not in ("", "abc") else 0.0
            except ValueError:
                number = 0.0
            if width == 2:
                packed = struct.pack(e + "h", int(max(-32768, min(32767, number))) if number == number and abs(number) != float("inf") else -1)
            else:
                packed = struct.pack(e + "f", number if abs(number) < 3e38 or number != number else float("inf"))
            return data[:start] + packed + data[stop:], "header"
        if fmt.startswith("dicom"):  # same width, so element lengths stay right (DS/IS pad with spaces)
            value = value[: stop - start].ljust(stop - start)
        return data[:start] + value.encode() + data[stop:], "header"
    out = bytearray(data)
    for pos, value in mutation[1]:
        out[pos] = value
    # Any header byte touched: the header may now describe other (valid) geometry or values.
    return bytes(out), "header" if any(pos < end for pos, _ in mutation[1]) else "data"


def classify(result: dict, seed: dict, fmt: str, region: str) -> str:
    """One of image, header_edit, pixel_change, warned_change, silent_wrong, medlab_error, memory,
    other, crash, hang."""
    outcome = result["outcome"]
    for prefix in ("crash", "hang", "other"):
        if outcome.startswith(prefix):
            return prefix
    if outcome != "image":
        return outcome
    # The pixel type is not geometry: it follows the value range (a rescaled DICOM is int16
    # or int32 depending on its values), so a flip in pixel data may change it.
    same_geometry = result["geometry"][:5] == seed["geometry"][:5]
    same_pixels = result["pixels"] == seed["pixels"]
    if same_geometry and same_pixels:
        return "image"
    if region == "header":
        return "header_edit"
    if region == "data" and same_geometry and fmt not in CHECKSUMMED:
        return "pixel_change"
    if result.get("warned"):  # changed, and a medlab warning says what was assumed or skipped
        return "warned_change"
    return "silent_wrong"


if __name__ == "__main__":
    _child()
