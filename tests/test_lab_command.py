"""The README's JupyterLab command (`bash tools/dev.sh lab`) serves on 127.0.0.1 with a token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Hex local addresses of sockets listening on ``port``, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "jupyter").exists(), reason="needs the project venv (tools/dev.sh env)")
def test_lab_binds_loopback_with_token(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    proc = subprocess.Popen(
        ["bash", str(ROOT / "tools" / "dev.sh"), "lab", f"--port={port}", "--allow-root",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        info = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and info is None:
            assert proc.poll() is None, "jupyter lab exited early"
            files = list((tmp_path / "runtime").glob("jpserver-*.json"))
            if files:
                try:
                    info = json.loads(files[0].read_text())
                except json.JSONDecodeError:  # still being written
                    info = None
            time.sleep(0.3)
        assert info is not None, "jupyter lab did not start within 60 s"
        assert info["hostname"] == "127.0.0.1" and info["port"] == port
        assert len(info["token"]) >= 32
        base = f"http://127.0.0.1:{port}/api/status"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base, timeout=10)
        err.value.close()  # the error holds the response's socket
        assert err.value.code == 403
        with urllib.request.urlopen(f"{base}?token={info['token']}", timeout=10) as resp:
            assert resp.status == 200
        # the kernel's own table of listening sockets: only 127.0.0.1 (or ::1) holds the port
        assert _listening_addresses(port) <= {"0100007F", "00000000000000000000000001000000"}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
