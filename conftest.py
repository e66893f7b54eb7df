"""Test-run set-up shared by tests/ and the notebooks run under nbval.

Real data come only through medlab's dataset registry. On developer machines and in CI the
registry's local store is ``../shared/data`` (used when ``MEDLAB_DATA_STORE`` is unset), and the
cache is a fresh temporary folder per test process, so a test run never writes into a home
directory. Notebook kernels inherit both settings.

The network is blocked in the test process: name look-ups and connections to anything but the
loopback interface raise :class:`NetworkBlocked` (an ``OSError``, as a real network failure
would), so no code path can download silently. Kernels and servers on 127.0.0.1 still work;
``MEDLAB_OFFLINE=1`` switches medlab's downloads off in the processes the tests start.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

_STORE = Path(__file__).resolve().parent.parent / "shared" / "data"
# notebooks that nbval must not collect: the end-to-end widgets notebook runs in a browser
collect_ignore_glob = ["tests/e2e/*.ipynb"]
_saved: dict = {}


class NetworkBlocked(OSError):
    """Raised by the test run's socket guard for any non-loopback network access."""


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard_network():
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise NetworkBlocked(f"network access to {address[0]!r} is blocked in the test suite")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            raise NetworkBlocked(f"name look-up of {host!r} is blocked in the test suite")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo


def pytest_configure(config):
    _guard_network()
    if "MEDLAB_DATA_STORE" not in os.environ and _STORE.is_dir():
        os.environ["MEDLAB_DATA_STORE"] = str(_STORE)
    _saved["cache"] = os.environ.get("MEDLAB_CACHE_DIR")
    _saved["tmp"] = tempfile.mkdtemp(prefix="medlab-test-cache-")
    os.environ["MEDLAB_CACHE_DIR"] = _saved["tmp"]
    # downloads are switched off in every process the tests start (notebook kernels, Dask
    # workers, napari's model process), which the socket guard of this process cannot reach
    _saved["offline"] = os.environ.get("MEDLAB_OFFLINE")
    os.environ["MEDLAB_OFFLINE"] = "1"


def pytest_unconfigure(config):
    if _saved.get("cache") is None:
        os.environ.pop("MEDLAB_CACHE_DIR", None)
    else:
        os.environ["MEDLAB_CACHE_DIR"] = _saved["cache"]
    if _saved.get("offline") is None:
        os.environ.pop("MEDLAB_OFFLINE", None)
    else:
        os.environ["MEDLAB_OFFLINE"] = _saved["offline"]
    if _saved.get("tmp"):
        shutil.rmtree(_saved["tmp"], ignore_errors=True)
