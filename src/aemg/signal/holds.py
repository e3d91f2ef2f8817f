"""Sample-and-hold logging: detect it, and rebuild the signal at the device's true rate.

Some recordings log rows faster than the device produces samples and repeat the last value in
between. UCI's gesture dataset logs rows at ~960 per second, but the Myo streams EMG at 200 Hz:
89% of rows repeat the previous row exactly and the values change only ~92-111 times per second.

How the Myo's samples reach such a logger (an inference from the measured hold pattern, see
docs/datasets.md): the armband sends its 200 Hz stream as packets of two consecutive samples,
~100 packets per second. Both samples of a packet arrive within a millisecond, so the logger shows
the first for ~1 row (or misses it) and holds the second until the next packet. The *true* rate is
therefore 200 Hz (one sample every 5 ms); the changes arrive irregularly at ~100 per second because
about half the samples are overwritten before a row is logged, and packets are sometimes late or
lost (holds of up to 169 ms).

:func:`rebuild_sample_and_hold` keeps only the rows where the value changes, at their true times
(the ``time_ms`` track when present, else sample index / fs). A change held for less than half a
true period is the first sample of a packet: it is placed one true period before the packet's
second sample (but after the previous change). The change points are then interpolated linearly
onto a uniform grid at the true rate that spans the same time as the input, so every repetition
keeps its duration in seconds. Labels, repetitions and tracks take the value of the row in effect
at each grid time (the last row at or before it). Lost samples cannot be recovered: the rebuilt
signal carries reliable content up to about half the change rate (~50 Hz), and a downstream
resampler should treat it as such.
"""

from __future__ import annotations

import numpy as np

from aemg.errors import ImplausibleValueError
from aemg.plausible import GAP_MS
from aemg.recording import Recording

__all__ = ["detect_sample_and_hold", "rebuild_sample_and_hold", "repeat_fraction"]

HOLD_THRESHOLD = 0.5
"""``detect_sample_and_hold`` is True when more than this fraction of samples repeat the previous one."""


def repeat_fraction(signal: np.ndarray) -> float:
    """Fraction of samples (after the first) equal to the previous sample on every channel."""
    x = np.asarray(signal)
    if x.ndim != 2 or x.shape[1] < 2:
        return 0.0
    same = np.all(x[:, 1:] == x[:, :-1], axis=0)
    return float(same.mean())


def detect_sample_and_hold(rec: Recording, threshold: float = HOLD_THRESHOLD) -> bool:
    """True when most consecutive samples of ``rec`` repeat exactly across all channels.

    Real EMG at the device's own rate almost never repeats a whole multi-channel sample (CIIL's Myo
    files: 1 row in 10^5), while UCI's sample-and-hold rows repeat 88-90% of the time.
    """
    return rec.n_samples >= 3 and repeat_fraction(rec.signal) > threshold


def _times_ms(rec: Recording) -> np.ndarray:
    """Sample times in ms: the ``time_ms`` track when present, else sample index / fs.

    A step of more than :data:`aemg.plausible.GAP_MS` is refused: interpolating over it would invent
    samples (a reader splits a file at such gaps, as the UCI reader does).
    """
    if "time_ms" in rec.tracks:
        t = np.asarray(rec.tracks["time_ms"], dtype=np.float64)
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{rec.source_file or rec.recording_id}: time_ms track is not strictly increasing")
        gaps = np.flatnonzero(np.diff(t) > GAP_MS)
        if len(gaps):
            i = int(gaps[0])
            raise ImplausibleValueError(rec.source_file or rec.recording_id,
                                        f"time_ms steps of at most {GAP_MS:g} ms (split a recording at its gaps)",
                                        f"found a gap of {(t[i + 1] - t[i]) / 1000.0:g} s between samples {i + 1} "
                                        f"and {i + 2}")
        return t
    return np.arange(rec.n_samples, dtype=np.float64) * (1000.0 / rec.fs)


def rebuild_sample_and_hold(rec: Recording, fs_true: float | None = None) -> Recording:
    """``rec`` rebuilt from its value changes on a uniform grid at the true rate ``fs_true`` (Hz).

    ``fs_true`` defaults to ``attrs["fs_original"]`` when that is below ``rec.fs`` (the device's own
    rate, e.g. the Myo's 200 Hz for UCI), else to the measured rate of value changes. The result
    has ``fs = fs_true``, ``attrs["fs_logged"]`` (the input's rate), ``attrs["change_rate_hz"]``,
    a ``time_ms`` track with the grid times, and a processing step. See the module docstring.
    """
    n = rec.n_samples
    if n < 2:
        raise ValueError(f"{rec.source_file or rec.recording_id}: need at least 2 samples to rebuild, got {n}")
    t = _times_ms(rec)  # ms throughout: integer logger times stay exact
    x = rec.signal
    change = np.ones(n, dtype=bool)
    change[1:] = np.any(x[:, 1:] != x[:, :-1], axis=0)
    idx = np.flatnonzero(change)
    span = float(t[-1] - t[0]) / 1000.0  # s
    change_rate = (len(idx) - 1) / span if span > 0 else float(rec.fs)
    if fs_true is None:
        fs_orig = rec.attrs.get("fs_original")
        fs_true = float(fs_orig) if fs_orig and float(fs_orig) < rec.fs else round(change_rate, 1)
    fs_true = float(fs_true)
    if not fs_true > 0:
        raise ValueError(f"{rec.source_file or rec.recording_id}: fs_true must be > 0, got {fs_true}")
    period = 1000.0 / fs_true  # ms

    # change times; the first sample of a two-sample packet moves one true period before the second
    tc = t[idx].copy()
    if len(idx) > 2:
        gap_next = np.diff(tc)  # gap_next[i] = tc[i+1] - tc[i]
        short = np.flatnonzero(gap_next < period / 2)  # changes followed within half a period
        short = short[short > 0]  # the first sample anchors the grid
        if len(short):
            after = tc[short + 1]
            before = tc[short - 1]
            tc[short] = np.maximum(after - period, (before + after) / 2)
    values = x[:, idx].astype(np.float64)

    n_out = int(np.floor(span * fs_true + 1e-9)) + 1
    grid = t[0] + np.arange(n_out) * period  # ms
    signal = np.empty((x.shape[0], n_out), dtype=np.float32)
    for c in range(x.shape[0]):
        signal[c] = np.interp(grid, tc, values[c])

    # per-sample annotations: the row in effect at each grid time
    row = np.clip(np.searchsorted(t, grid + 1e-6, side="right") - 1, 0, n - 1)
    labels = rec.labels[row] if rec.labels is not None else None
    repetition = rec.repetition[row] if rec.repetition is not None else None
    tracks = {k: np.asarray(v)[row] for k, v in rec.tracks.items() if k != "time_ms"}
    tracks["time_ms"] = grid
    attrs = {**rec.attrs, "fs_logged": float(rec.attrs.get("fs_logged", rec.fs)),
             "change_rate_hz": round(change_rate, 2), "sample_and_hold": False}
    attrs.setdefault("fs_original", fs_true)
    step = (f"rebuild_sample_and_hold(fs_true={fs_true:g}, fs_logged={attrs['fs_logged']:g}, "
            f"changes={change_rate:.1f}/s, linear)")
    return rec.with_step(step, signal=signal, fs=fs_true, labels=labels, repetition=repetition, tracks=tracks,
                         attrs=attrs)
