"""Child process for tests/test_fuzz_readers.py: reads image paths from stdin, one per line, and
answers one JSON line each: the outcome ('image', 'medlab_error' or 'other: ...') and seconds.

A crash (segfault, abort) or a hang in a reader kills or stalls only this process; the parent
test sees it and names the input. Address space is capped so a corrupted header that asks for
a huge buffer fails as an allocation error instead of exhausting the machine.
"""

import json
import resource
import sys
import time

resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

import medlab.io  # noqa: E402
from medlab.errors import MedlabError  # noqa: E402

for line in sys.stdin:
    path = line.rstrip("\n")
    t0 = time.perf_counter()
    try:
        img = medlab.io.read(path)
        outcome = "image" if img.GetNumberOfPixels() > 0 else "other: empty image"
    except MedlabError:
        outcome = "medlab_error"
    except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzz test looks for
        outcome = f"other: {type(exc).__module__}.{type(exc).__name__}: {str(exc)[:200]}"
    print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t0}), flush=True)
