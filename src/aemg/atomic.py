"""Atomic file writes: a reader never sees half a file, and an interrupted write leaves the old one.

Every writer in aemg (corpus store, token sets, configs, checkpoints, simulated datasets) goes
through :func:`atomic_path`: write to a temporary name beside the target, flush and fsync it,
``os.replace`` it over the target, then fsync the folder so the rename itself is durable.
Before writing, the folder's free space is checked against an estimate of the bytes to be written
(:class:`aemg.errors.DiskFullError` instead of a half-written file, or a crash in a C library on a
full disk); a read-only or forbidden folder is :class:`aemg.errors.NotWritableError`. The file
gets the permissions the user's umask gives (not the 0600 of a bare ``tempfile.mkstemp``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aemg.errors import DiskFullError, NotWritableError

# added to every estimate: file-format headers, metadata, filesystem blocks (bytes)
MARGIN = 1 << 20
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = {errno.EROFS: "a read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}
# how C libraries (HDF5, torch's zip writer) report a full disk in the text of their exceptions
_NO_SPACE_TEXT = ("no space left on device", "errno = 28", "disk quota exceeded")


def fsync_dir(folder: str | Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def estimate_nbytes(obj: Any) -> int:
    """Bytes the arrays, tensors and strings inside ``obj`` (nested dicts, lists, tuples) occupy."""
    if hasattr(obj, "nbytes") and not hasattr(obj, "element_size"):  # numpy arrays and scalars
        return int(obj.nbytes)
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):  # torch tensors (no torch import here)
        return int(obj.element_size() * obj.nelement())
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    if isinstance(obj, Mapping):
        return sum(estimate_nbytes(k) + estimate_nbytes(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(estimate_nbytes(v) for v in obj)
    return 8


def free_bytes(folder: str | Path) -> int | None:
    """Free bytes on the filesystem holding ``folder`` (None where that cannot be asked)."""
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def require_space(folder: str | Path, needed: int, what: str = "") -> None:
    """Raise :class:`DiskFullError` unless ``folder`` has ``needed`` + :data:`MARGIN` bytes free."""
    free = free_bytes(folder)
    if free is not None and free < needed + MARGIN:
        raise DiskFullError(folder, needed + MARGIN, free, what)


def is_no_space(exc: BaseException, folder: str | Path | None = None) -> bool:
    """Whether ``exc`` reports a full disk (ENOSPC / EDQUOT, or a C library's text saying so).

    With ``folder``, a bare "write failed" (torch's zip writer hides the errno) counts when the folder's
    filesystem has under :data:`MARGIN` bytes free.
    """
    if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in NO_SPACE):
        return True
    if not isinstance(exc, (OSError, RuntimeError)):
        return False
    text = str(exc).lower()
    if any(t in text for t in _NO_SPACE_TEXT):
        return True
    free = free_bytes(folder) if folder is not None and "write failed" in text else None
    return free is not None and free < MARGIN


def not_writable(exc: BaseException, folder: str | Path) -> NotWritableError | None:
    """The :class:`NotWritableError` for ``folder`` when ``exc`` is EROFS / EACCES / EPERM, else None."""
    if isinstance(exc, NotWritableError):
        return exc
    if isinstance(exc, OSError) and exc.errno in NOT_WRITABLE:
        return NotWritableError(folder, NOT_WRITABLE[exc.errno])
    return None


def make_folder(folder: str | Path) -> Path:
    """``mkdir -p folder``, a read-only or forbidden place raising :class:`NotWritableError` (one line)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = not_writable(exc, exc.filename or folder)
        if err is None:
            raise
        raise err from exc
    return folder


@contextmanager
def atomic_path(path: str | Path, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The temporary
    name starts with a dot and ends in ``.tmp``, so no reader globbing for the real name trusts it.
    ``needed`` (bytes, an estimate) is checked against the folder's free space before anything is
    written; a full disk while writing (ENOSPC) becomes :class:`DiskFullError` too.
    """
    path = Path(path)
    folder = make_folder(path.parent)
    if needed is not None:
        require_space(folder, needed, path.name)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        err = not_writable(exc, folder)
        if err is None:
            raise
        raise err from exc
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide corpus and run files from the group
    except OSError:
        pass
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(folder)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, DiskFullError) and is_no_space(exc, folder):
            raise DiskFullError(folder, needed, None, path.name) from exc  # free again, now the temporary is gone
        err = None if isinstance(exc, NotWritableError) else not_writable(exc, folder)
        if err is not None:
            raise err from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    data = text.encode("utf-8")
    with atomic_path(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)
