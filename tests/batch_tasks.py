"""Per-case tasks used by tests/test_batch.py; the Dask workers import them by name."""

import os
import signal
from pathlib import Path

from medlab.batch import task_intensity_statistics


def kill_worker_once(row):
    """Kill the worker process the first time it meets the case named in ``row['kill_case']``."""
    marker = Path(row["marker_dir"]) / f"killed-{row['case_id']}"
    if row["case_id"] == row["kill_case"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return task_intensity_statistics(row)
