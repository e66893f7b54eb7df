"""The embedded sample: a few cases of each real data set, shipped inside medlab.

Files of the sample are files of the registry, byte for byte: ``medlab/datasets/sample/**/*.zip``
hold members named ``<root>/<file>`` (the registry's layout), and :func:`medlab.datasets.fetch`
copies a member into the cache only after its sha256 matched the registry. So a notebook that
runs on the sample computes on the same pixels as on the full data set, only on fewer cases.

The sample comes in three folders, each with its sources' licences beside the archives
(``README.md`` there lists them):

- ``sample/``: in the wheel and in a source checkout; open licences (CC BY, BSD).
- ``sample/extra/``: in a source checkout only (kept out of the wheel for its size); open licences.
- ``sample/noncommercial/``: in a source checkout only; the IBSI CT phantom (CC BY-NC 3.0) and
  BUSI images (research use), never redistributed in the wheel.

Which data a run uses (:func:`data_source`, ``$MEDLAB_DATA_SOURCE``):

- ``'full'``: every case of the registry (:func:`medlab.datasets.cases` lists them all); files
  come from the cache, the local store, the sample or a download.
- ``'sample'``: only the cases the sample holds files of; nothing needs a network.
- ``'auto'`` (default): ``'full'`` when ``$MEDLAB_DATA_STORE`` is set or the cache holds every
  file of the data set (after ``medlab data fetch NAME``); else ``'sample'`` when the sample has
  the data set; else ``'full'``.
"""

from __future__ import annotations

import functools
import os
import shutil
import zipfile
from pathlib import Path

from medlab._options import check_choice

from . import _registry

__all__ = ["SAMPLE_DIR", "data_source", "sample_files", "member", "SOURCES"]

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SOURCES = ("auto", "sample", "full")
_CHUNK = 1 << 20


@functools.cache
def _index(folder: Path) -> dict[str, Path]:
    """``'<root>/<file>'`` -> the archive that holds it, over every ``*.zip`` under ``folder``."""
    out: dict[str, Path] = {}
    if folder.is_dir():
        for archive in sorted(folder.rglob("*.zip")):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if not name.endswith("/"):
                        out.setdefault(name, archive)
    return out


def _members() -> dict[str, Path]:
    return _index(SAMPLE_DIR)


def sample_files(name: str) -> list[str]:
    """Files of data set ``name`` (relative to its root) that the embedded sample holds."""
    ent = _registry._raw(name)
    if ent["kind"] != "store":
        return []
    members = _members()
    root = ent["root"]
    return [rel for rel in ent["files"] if f"{root}/{rel}" in members]


def member(ent: dict, rel: str):
    """A writer ``(source, out)`` that copies file ``rel`` of ``ent`` out of the sample, or None."""
    key = f"{ent['root']}/{rel}"
    archive = _members().get(key)
    if archive is None:
        return None

    def write(_source, out):
        with zipfile.ZipFile(archive) as zf, zf.open(key) as fh:
            shutil.copyfileobj(fh, out, _CHUNK)

    write.archive = archive  # where it comes from, for messages
    return write


def _setting() -> str:
    value = os.environ.get("MEDLAB_DATA_SOURCE", "").strip().lower() or "auto"
    return check_choice("MEDLAB_DATA_SOURCE", value, SOURCES)


def data_source(name: str) -> str:
    """Whether data set ``name`` is used in full or as its embedded sample: 'full' or 'sample'.

    Parameters
    ----------
    name : str
        A name from :func:`medlab.datasets.list_datasets`.

    Returns
    -------
    {'full', 'sample'}
        ``$MEDLAB_DATA_SOURCE`` ('auto', 'sample' or 'full'; default 'auto') decides: 'auto' is
        'full' when ``$MEDLAB_DATA_STORE`` is set or the cache holds every file of the data set,
        else 'sample' when the sample holds files of it, else 'full'. Data sets without a
        sample (and package data) are always 'full'.

    Examples
    --------
    >>> import os
    >>> from medlab import datasets
    >>> os.environ["MEDLAB_DATA_SOURCE"] = "sample"
    >>> datasets.data_source("sts"), datasets.data_source("mni152")
    ('sample', 'full')
    >>> del os.environ["MEDLAB_DATA_SOURCE"]
    """
    setting = _setting()
    ent = _registry._raw(name)
    if ent["kind"] != "store" or setting == "full" or not sample_files(name):
        return "full"
    if setting == "sample":
        return "sample"
    from ._fetch import cache_dir, store_dir

    if store_dir() is not None:
        return "full"
    cache_root = cache_dir() / ent["root"]
    if cache_root.is_dir() and all((cache_root / rel).is_file() for rel in ent["files"]):
        return "full"
    return "sample"
