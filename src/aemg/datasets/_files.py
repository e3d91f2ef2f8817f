"""Small helpers shared by the fixture-tested readers (Ninapro, EPN-612, Toro-Ossaba, MCS_EMG, generic).

Everything here reads only; nothing writes, moves or deletes a user's file. Every failure becomes a
:class:`aemg.errors.DataFormatError` naming the file and what was expected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from aemg.errors import DataFormatError

SINGLE_PART = "all"
"""Part name in subject ids of datasets that have no parts of their own (``ninapro-db2/all/s1``)."""


def subject_id(dataset: str, part: str, name: str) -> str:
    """Corpus-unique subject id ``dataset/part/name`` (DESIGN.md); ``part`` is ``"all"`` when the
    dataset has no parts."""
    return f"{dataset}/{part}/{name}"


def rel(path: Path, root: Path) -> str:
    """``path`` relative to the dataset root, as a POSIX string (falls back to the full path)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (``user2`` before ``user10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def check_finite(arr: np.ndarray, path: Path | str, what: str = "signal") -> None:
    """Raise when ``arr`` holds NaN or inf, naming the first bad sample."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise DataFormatError(path, f"finite {what} values",
                              f"{int(bad.sum())} NaN/inf values, first at index {tuple(int(i) for i in idx)}")


def as_signal(samples_by_channels: np.ndarray, path: Path | str, n_channels: int | None,
              what: str = "emg") -> np.ndarray:
    """A ``(samples, channels)`` numeric array as the float32 ``(channels, samples)`` a Recording holds.

    Checks the shape, the channel count (when given) and finiteness.
    """
    arr = np.asarray(samples_by_channels)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(path, f"{what} as a numeric (samples, channels) array",
                              f"found {arr.dtype} array of shape {arr.shape}")
    if n_channels is not None and arr.shape[1] != n_channels:
        raise DataFormatError(path, f"{what} with {n_channels} channels (columns)",
                              f"found {arr.shape[1]} (shape {arr.shape})")
    if arr.shape[0] == 0:
        raise DataFormatError(path, f"{what} with at least one sample", "found 0 samples")
    check_finite(arr, path, what)
    return np.ascontiguousarray(arr.T, dtype=np.float32)


def as_column(arr: Any, path: Path | str, name: str) -> np.ndarray:
    """A MATLAB ``(T, 1)`` / ``(1, T)`` / ``(T,)`` integer variable as an int32 ``(T,)`` vector."""
    a = np.asarray(arr)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.number):
        raise DataFormatError(path, f"{name!r} as one numeric column", f"found {a.dtype} array of shape {a.shape}")
    check_finite(a, path, name)
    if np.any(a != np.round(a)):
        raise DataFormatError(path, f"integer values in {name!r}", "found non-integer values")
    return a.astype(np.int32)


def chronological_runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of constant value: ``(starts, stops, values)`` with exclusive stops."""
    if len(labels) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, labels.dtype)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return starts, stops, labels[starts]


class WarningCounter:
    """Collects repeated, per-file warnings and logs each kind once with a count and examples."""

    def __init__(self, logger: logging.Logger, dataset: str):
        self.logger = logger
        self.dataset = dataset
        self._items: dict[str, list[str]] = {}

    def add(self, kind: str, example: str) -> None:
        self._items.setdefault(kind, []).append(example)

    def flush(self) -> None:
        for kind, examples in self._items.items():
            shown = "; ".join(examples[:3]) + (" ..." if len(examples) > 3 else "")
            self.logger.warning("%s: %s in %d case(s): %s", self.dataset, kind, len(examples), shown)
        self._items.clear()


def warn_missing(logger: logging.Logger, dataset: str, what: str, missing: Iterable[str]) -> None:
    """Log (not raise) that expected subjects or files are absent from the user's download."""
    missing = list(missing)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        logger.warning("%s: %d expected %s not found (read the rest): %s", dataset, len(missing), what, shown)
