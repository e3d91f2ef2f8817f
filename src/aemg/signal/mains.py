"""Mains (power-line) frequency detection from the spectrum: 50 Hz, 60 Hz, or neither.

The mains frequency decides the notch. It is a property of where the data was recorded, rarely
written in a dataset, and visible as a narrow spectral line on top of EMG's smooth spectrum.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch

MAINS_CANDIDATES_HZ = (50.0, 60.0)


def median_psd(signal: np.ndarray, fs: float, segment_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD per channel with median averaging over Hann segments of ``segment_s`` seconds.

    The median over segments (rather than the mean) keeps isolated bursts and spikes from
    dominating the spectrum. Returns ``(freqs (F,) Hz, psd (C, F))``; segments are shortened to the
    signal's length when it is shorter.
    """
    x = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    nperseg = max(1, min(x.shape[1], int(round(segment_s * fs))))
    return welch(x, fs=fs, nperseg=nperseg, average="median", detrend="constant", axis=-1)


def mains_line_ratio(freqs: np.ndarray, psd: np.ndarray, f0: float, *, half_width_hz: float = 1.5,
                     neighbours_hz: tuple[float, float] = (3.0, 10.0)) -> np.ndarray:
    """How far the spectrum at ``f0`` Hz stands above its neighbourhood, per row of ``psd``.

    Mean PSD within ``max(half_width_hz, 2% of f0)`` of ``f0``, over the median PSD at
    ``neighbours_hz`` (inner, outer) distance on either side. About 1 for a smooth spectrum;
    ``nan`` when ``f0`` or its neighbours are not resolved below Nyquist. The 2% width admits
    device clock errors (3DC's 60 Hz mains appears at 60.5-61 Hz). ``psd`` is (F,) or (C, F);
    returns (C,) (or (1,)).
    """
    psd = np.atleast_2d(psd)
    hw = max(half_width_hz, 0.02 * f0)
    dist = np.abs(freqs - f0)
    peak = dist <= hw
    neigh = (dist >= max(neighbours_hz[0], hw + 0.5)) & (dist <= neighbours_hz[1])
    if peak.sum() < 1 or neigh.sum() < 3 or f0 + hw >= freqs[-1]:
        return np.full(psd.shape[0], np.nan)
    return psd[:, peak].mean(axis=1) / np.maximum(np.median(psd[:, neigh], axis=1), np.finfo(float).tiny)


def detect_mains(signal: np.ndarray, fs: float, *, threshold: float = 3.0, segment_s: float = 2.0,
                 min_duration_s: float = 0.5) -> float | None:
    """The mains frequency in ``signal`` (``(C, T)`` or ``(T,)``, sampled at ``fs`` Hz): 50.0, 60.0 or None.

    The spectrum is the channels' Welch spectra summed (the recording's total power per
    frequency; median over ``segment_s``-second segments, 0.5 Hz bins by default), so a line in
    any loud channel counts in proportion to its power. For each candidate the narrow-band power
    (:func:`mains_line_ratio`: within 1.5 Hz, or 2% of the frequency) is compared with the median of
    its neighbours 3-10 Hz away. The candidate with the larger ratio wins if that ratio is at least
    ``threshold`` (3 = 4.8 dB above the neighbours); otherwise None: no line stands out (a device
    with a hardware notch, or mains too weak to matter), or the signal is too short (under
    ``min_duration_s`` seconds) or too slowly sampled (a candidate not below Nyquist) to tell.
    A longer signal (e.g. a session's recordings concatenated) gives a steadier answer.
    """
    x = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    if x.ndim != 2 or not fs > 0:
        raise ValueError(f"signal must be (C, T) or (T,) with fs > 0, got {x.shape} at {fs} Hz")
    if x.shape[1] < max(8, min_duration_s * fs):
        return None
    freqs, psd = median_psd(x, fs, segment_s)
    spectrum = psd.sum(axis=0)
    if not spectrum.sum() > 0:
        return None
    ratios = {f0: float(mains_line_ratio(freqs, spectrum, f0)[0]) for f0 in MAINS_CANDIDATES_HZ}
    ratios = {f0: r for f0, r in ratios.items() if np.isfinite(r)}
    if not ratios:
        return None
    best = max(ratios, key=ratios.__getitem__)
    return best if ratios[best] >= threshold else None
