"""Documented plausible ranges for the numbers aemg takes from files and options (rates, time steps).

A value outside its range is a typo or a unit mix-up (a rate in kHz, times in seconds), never a real
recording; refusing it at once, with the file and row named, saves a run that would otherwise take
hours or all memory (``fs=1e10``, ``fs=0.001``, ``--fs 100000``). Ranges (docs/datasets.md):

* :data:`SOURCE_FS_RANGE` (50-30000 Hz), a recording's own rate (a manifest's ``fs``): surface EMG
  carries power from ~20 to ~500 Hz; the slowest devices in use stream at 200 Hz (Myo, whose
  packets arrive ~100 times a second), and below 50 Hz (Nyquist 25 Hz) nothing of that band is left;
  the fastest amplifiers sample at 10240 Hz (OT Quattrocento) to 30 kHz (Intan RHD).
* :data:`CORPUS_FS_RANGE` (50-10000 Hz), the corpus rate ``--fs``: 10 kHz is 20 times the top of the
  surface-EMG band; a rate above a device's own rate adds only an empty band (aemg.signal.resample).
* :data:`GAP_MS` (1000 ms), the largest step of a logger's time column that is not a gap.
"""

from __future__ import annotations

import math
from pathlib import Path

from aemg.errors import ImplausibleValueError

SOURCE_FS_RANGE = (50.0, 30000.0)
"""Plausible sampling rate of a recording as stored by its device, Hz (inclusive)."""
CORPUS_FS_RANGE = (50.0, 10000.0)
"""Plausible corpus rate (``--fs`` of prepare / import), Hz (inclusive)."""
GAP_MS = 1000.0
"""A step of more than this many ms between two logged rows is a gap (recording paused or data
lost), not irregular logging: UCI's largest step on the real files is 36 ms (typical 1 ms)."""


def as_number(value: object) -> float:
    """``value`` as a float, NaN when it is not a number (so a range check refuses it)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def check_range(value: object, lo: float, hi: float, where: str | Path, what: str) -> float:
    """``value`` as a float when it is finite and in ``[lo, hi]``; else an :class:`ImplausibleValueError`.

    ``where`` names the file (and row) or option; ``what`` describes the value (e.g. "fs, the
    recording's sampling rate"). Cheap: call it before any heavy work.
    """
    x = as_number(value)
    if not (math.isfinite(x) and lo <= x <= hi):
        shown = repr(value) if math.isnan(x) and isinstance(value, str) else f"{x:g}"
        raise ImplausibleValueError(where, f"{what} in [{lo:g}, {hi:g}] Hz (a positive number in the "
                                           "plausible range, docs/datasets.md)", f"found {shown}")
    return x


def check_source_fs(value: object, where: str | Path, what: str = "fs (the recording's sampling rate)") -> float:
    """A recording's own rate checked against :data:`SOURCE_FS_RANGE` (Hz)."""
    return check_range(value, *SOURCE_FS_RANGE, where, what)


def check_corpus_fs(value: object, where: str | Path = "--fs", what: str = "the corpus rate") -> float:
    """The corpus rate (``--fs``) checked against :data:`CORPUS_FS_RANGE` (Hz)."""
    return check_range(value, *CORPUS_FS_RANGE, where, what)
