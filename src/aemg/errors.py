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
