"""The test run blocks the network (root conftest.py), so nothing downloads silently."""

import socket
import urllib.request

import pytest


def test_remote_lookup_and_connect_are_blocked():
    with pytest.raises(OSError, match="blocked in the test suite"):
        socket.getaddrinfo("raw.githubusercontent.com", 443)
    with pytest.raises(OSError, match="blocked in the test suite"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(OSError):
        urllib.request.urlopen("https://raw.githubusercontent.com/", timeout=2)


def test_loopback_still_works():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close()
    finally:
        server.close()


def test_dataset_download_fails_cleanly_when_blocked(tmp_path, monkeypatch):
    import medlab.datasets
    from medlab.errors import DatasetError

    monkeypatch.setenv("MEDLAB_DATA_STORE", str(tmp_path / "no-store"))
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="MEDLAB_DATA_STORE"):
        medlab.datasets.fetch("ibsi_digital_phantom", progress=False)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*") if p.name != "verified.json")
