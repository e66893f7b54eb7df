"""Atomic writes: the one way medlab puts a file or a folder at its destination.

A write goes to a hidden temporary entry beside the destination (same folder, so the final
``os.replace``/``os.rename`` is atomic on POSIX file systems) and is renamed into place only when
it is complete. An exception removes the temporary entry. A process that is killed (SIGKILL, out
of memory, power loss) cannot clean up after itself, so each temporary name carries the host and
the process id of its writer, and :func:`clean_stale` removes the entries of writers that are no
longer running: every medlab command that writes into a folder calls it first.

Temporary names look like ``.<name>.medlab-tmp-<host>-<pid>-<random>[<suffix>]``: a writer that
picks the format from the file name's ending (Keras, ITK transform files) asks for the target's
ending with ``suffix=``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MARK", "atomic_path", "write_text", "write_bytes", "clean_stale", "is_temporary", "temp_for"]

#: The part of every temporary name that marks it as medlab's.
MARK = ".medlab-tmp-"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


_TEMP_RE = re.compile(r"^\.(?P<name>.+)" + re.escape(MARK) + r"(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[0-9a-f]+"
                      r"(?P<suffix>\.[^/]*)?$")


def is_temporary(name: str) -> bool:
    """True if ``name`` (a file or folder name) is one of medlab's temporary write entries."""
    return _TEMP_RE.match(name) is not None


def _check_suffix(suffix: str) -> str:
    if not isinstance(suffix, str) or (suffix and (not suffix.startswith(".") or "/" in suffix or os.sep in suffix)):
        raise ValueError(f"`suffix` must be '' or a file ending such as '.keras' (no folder); got {suffix!r}")
    return suffix


def temp_for(target: Path, *, suffix: str = "") -> Path:
    """A temporary name beside ``target`` (same folder) that :func:`clean_stale` recognises;
    it ends with ``suffix`` (e.g. ``'.keras'``, ``target.suffix``) for writers that choose the
    format from the name."""
    suffix = _check_suffix(suffix)
    return target.parent / f".{target.name}{MARK}{_host()}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(target, *, overwrite: bool = True, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it becomes ``target``.

    The caller creates a file or a folder at the yielded path. When the ``with`` block ends
    without an exception, the entry is renamed to ``target`` (a file replaces an existing file;
    a folder replaces only a missing or empty folder). On an exception nothing is left behind.

    Parameters
    ----------
    target : str or os.PathLike
        Destination. Its folder must exist.
    overwrite : bool
        If False and ``target`` exists, :class:`FileExistsError` is raised before any work.
    suffix : str
        The temporary path ends with it (``''``: no particular ending), for writers that choose
        the format from the file name's ending: ``atomic_path(path, suffix=path.suffix)``.

    Raises
    ------
    FileExistsError
        ``overwrite=False`` and ``target`` exists, or a folder is to replace a non-empty folder.
    """
    target = Path(target)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    tmp = temp_for(target, suffix=suffix)
    try:
        yield tmp
        if tmp.is_dir():
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            elif target.exists():
                raise FileExistsError(f"{target} exists and is not an empty folder; a folder never replaces it")
            os.rename(tmp, target)
        elif tmp.exists():
            os.replace(tmp, target)
        else:
            raise FileNotFoundError(f"nothing was written for {target}")
    except BaseException:
        _remove(tmp)
        raise


def write_text(target, text: str, *, encoding: str = "utf-8", overwrite: bool = True) -> Path:
    """Write ``text`` to ``target`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(target)


def write_bytes(target, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def clean_stale(folder) -> list[Path]:
    """Remove temporary entries in ``folder`` left by medlab writers that are no longer running.

    Only entries with medlab's temporary name (:data:`MARK`) written on this host by a process
    that no longer exists are removed; those of running processes and of other hosts (a shared
    file system) are kept. A missing folder is fine.

    Returns
    -------
    list of pathlib.Path
        The entries removed.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    host = _host()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m and m["host"] == host and not _alive(int(m["pid"])):
            _remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed
