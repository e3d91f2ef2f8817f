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
