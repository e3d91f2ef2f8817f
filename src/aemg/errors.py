"""Exceptions aemg raises for bad input, each naming the file and what was expected."""

from __future__ import annotations

from pathlib import Path


class AemgError(Exception):
    """Base class of aemg's own errors (the CLI prints them as one line)."""


class DataFormatError(AemgError, ValueError):
    """A raw or corpus file is missing, truncated or malformed.

    The message always names the file and says what was expected, e.g.
    ``DataFormatError(path, "10 comma-separated columns", "found 9 in line 3")``.
    """

    def __init__(self, path: str | Path, expected: str, found: str | None = None):
        self.path = Path(path)
        self.expected = expected
        self.found = found
        msg = f"{self.path}: expected {expected}"
        if found:
            msg += f"; {found}"
        super().__init__(msg)


class ImplausibleValueError(DataFormatError):
    """A number outside its documented plausible range (a sampling rate, a gap in a time column).

    Raised before any heavy work, e.g. ``manifest.csv row 3 (a.npy): expected fs in [50, 30000] Hz
    ...; found 1e+10``; ``path`` names the file (and row) or the option (``--fs``).
    """


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (``"1.5 MiB"``)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class DiskFullError(AemgError, OSError):
    """A folder has too little free space for a write (checked before writing, or ENOSPC while writing).

    ``DiskFullError(folder, needed_bytes, free_bytes)``: the message names the folder and the space needed.
    """

    def __init__(self, folder: str | Path, needed: int | None, free: int | None, what: str = ""):
        self.folder = Path(folder)
        self.needed = needed
        self.free = free
        need = f"{format_bytes(needed)} free" if needed else "free disk space"
        have = "no space left on the device" if free is None else f"{format_bytes(free)} free"
        target = f" to write {what}" if what else ""
        super().__init__(f"{self.folder}: expected {need}{target}; found {have}")

    def __str__(self) -> str:
        return str(self.args[0])


class NotWritableError(AemgError, OSError):
    """An output or corpus folder cannot be written (read-only file system, no permission)."""

    def __init__(self, folder: str | Path, found: str):
        self.folder = Path(folder)
        super().__init__(f"{self.folder}: expected a writable folder; found {found}")

    def __str__(self) -> str:
        return str(self.args[0])
