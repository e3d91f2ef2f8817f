"""Channel quality flags: dead, saturated and mains-drowned channels of one recording.

Flags say which channels a later stage should distrust (drop, mask or down-weight); they never
change the signal. One flag per channel, in channel order: ``""`` (ok), ``"dead"``, ``"saturated"``
or ``"mains"``; when several apply, the first in that order wins (a dead channel's spectrum, or a
clipped channel's, says nothing reliable about mains).

Run it on the device's own values, before resampling and filtering: saturation is recognised by
samples sitting exactly on the extreme values, which resampling smears.
"""

from __future__ import annotations

import numpy as np

from aemg.recording import Recording
from aemg.signal.mains import MAINS_CANDIDATES_HZ, median_psd

DEAD, SATURATED, MAINS = "dead", "saturated", "mains"


def dead_channels(x: np.ndarray, *, rel_std: float = 0.01, flat_fraction: float = 0.9) -> np.ndarray:
    """``(C,)`` bool: flat or near-zero-variance channels of ``x`` ``(C, T)``.

    A channel is dead when its standard deviation is 0 or below ``rel_std`` (1%, i.e. -40 dB) of
    the median of the live channels' standard deviations, or when one value fills at least
    ``flat_fraction`` (90%) of its samples (stuck, apart from a few spikes). Thresholds are relative
    because units differ by device; on the real Myo and 3DC data the quietest channel of a
    recording is above 15% of the median and the commonest value fills at most 45% of samples.
    """
    x = np.asarray(x, dtype=np.float64)
    n_ch, n = x.shape
    if n == 0:
        return np.ones(n_ch, bool)
    std = x.std(axis=1)
    live = std[std > 0]
    ref = float(np.median(live)) if live.size else 0.0
    dead = (std <= 0) | (std < rel_std * ref)
    for c in np.flatnonzero(~dead):
        _, counts = np.unique(x[c], return_counts=True)
        dead[c] = counts.max() >= flat_fraction * n
    return dead


def saturated_channels(x: np.ndarray, *, fraction: float = 0.05, min_levels: int = 16,
                       tol: float = 1e-3) -> np.ndarray:
    """``(C,)`` bool: channels clipped at their extreme values.

    A channel is saturated when at least ``fraction`` (5%) of its samples lie on its maximum or on
    its minimum (within ``tol`` of its range), and it spans at least ``min_levels`` distinct values.
    The level count matters for coarse ADCs: a Myo channel at rest takes only 6-10 values of its
    int8 range, and its extremes then hold several % of the samples without any clipping. On the
    real Myo data (Côté-Allard, CIIL) at most 5% of a channel's samples sit on the int8 rails.
    """
    x = np.asarray(x, dtype=np.float64)
    n_ch, n = x.shape
    out = np.zeros(n_ch, bool)
    if n == 0:
        return out
    hi, lo = x.max(axis=1), x.min(axis=1)
    span = hi - lo
    for c in np.flatnonzero(span > 0):
        t = tol * span[c]
        at_rail = max(np.count_nonzero(x[c] >= hi[c] - t), np.count_nonzero(x[c] <= lo[c] + t))
        if at_rail >= fraction * n and np.unique(x[c]).size >= min_levels:
            out[c] = True
    return out


def mains_fraction(x: np.ndarray, fs: float, mains_hz: float, *, low_hz: float = 20.0,
                   segment_s: float = 0.5, half_width_hz: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: (fraction of in-band power in the mains bands, mains-band power).

    In-band = from ``low_hz`` (the harmonization high-pass, 20 Hz) to Nyquist: power below it is
    removed by the pipeline anyway (3DC Participant1's channel 1 holds 40% of its power under 20 Hz,
    motion artefact, on top of its mains). Mains bands: ``mains_hz`` and its harmonics below
    Nyquist, each ``max(half_width_hz, 2% of the frequency)`` either side (device clock errors move
    the k-th harmonic k times as far). Welch spectrum with median averaging over ``segment_s``
    (0.5 s) segments, so bursts in a few segments do not dominate.
    """
    freqs, psd = median_psd(x, fs, segment_s)
    band = freqs >= low_hz
    mask = np.zeros_like(freqs, bool)
    k = 1
    while k * mains_hz < fs / 2:
        f0 = k * mains_hz
        mask |= np.abs(freqs - f0) <= max(half_width_hz, 0.02 * f0)
        k += 1
    mask &= band
    total = psd[:, band].sum(axis=1)
    power = psd[:, mask].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, power / total, 0.0)
    return frac, power


def mains_channels(x: np.ndarray, fs: float, mains_hz: float | None = None, *, fraction: float = 0.5,
                   rel_power: float = 3.0, overwhelming: float = 0.9) -> np.ndarray:
    """``(C,)`` bool: channels drowned in mains (``mains_hz``, or 50 and 60 Hz when unknown).

    A channel is drowned when at least ``fraction`` (half) of its in-band power sits in the mains
    bands (:func:`mains_fraction`) and either its mains power is at least ``rel_power`` (3x) the
    median channel's, or the mains share is ``overwhelming`` (90%). The relative test separates a
    bad contact, which picks up far more mains than its neighbours, from a rest recording where
    every channel's EMG is tiny and the common mains line takes half the power without anything
    being wrong (measured on 3DC neutral files: up to 60% on good channels, with mains power within
    a few times the median; Participant1's channel 1 has 5-800x the median).
    """
    x = np.asarray(x, dtype=np.float64)
    n_ch, n = x.shape
    if n < 8 or fs / 2 <= 20.0:
        return np.zeros(n_ch, bool)
    candidates = (mains_hz,) if mains_hz else tuple(f for f in MAINS_CANDIDATES_HZ if f < fs / 2)
    out = np.zeros(n_ch, bool)
    for f0 in candidates:
        frac, power = mains_fraction(x, fs, f0)
        ref = float(np.median(power))
        loud = power >= rel_power * ref if ref > 0 else power > 0
        out |= (frac >= fraction) & (loud | (frac >= overwhelming))
    return out


def channel_qc(rec: Recording) -> tuple[str, ...]:
    """Flags for each channel of ``rec``: ``""``, ``"dead"``, ``"saturated"`` or ``"mains"``.

    Uses :func:`dead_channels`, :func:`saturated_channels` and :func:`mains_channels` with their
    default thresholds (see each); mains at ``rec.mains_hz`` when known, else both 50 and 60 Hz.
    Store the result with ``rec.replace(channel_flags=channel_qc(rec))``.
    """
    x = rec.signal.astype(np.float64)
    dead = dead_channels(x)
    sat = saturated_channels(x)
    mains = mains_channels(x, rec.fs, rec.mains_hz)
    flags = []
    for c in range(rec.n_channels):
        flags.append(DEAD if dead[c] else SATURATED if sat[c] else MAINS if mains[c] else "")
    return tuple(flags)
