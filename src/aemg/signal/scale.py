"""Offset and amplitude normalisation: DC removal per recording, one robust scale per subject-session.

Amplitude depends on skin, electrode contact, device gain and units, none of which say anything
about the gesture. :func:`session_scale` measures it once per subject and session, without labels,
on the signal a live decoder sees (after the causal 20 Hz high-pass and mains notch), and the
corpus stores it so that the decoder divides by the very same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np

from aemg.recording import Recording
from aemg.signal.filters import CausalSOS, make_causal_filter


def remove_dc(rec: Recording, method: Literal["median", "mean"] = "median") -> Recording:
    """Subtract each channel's offset (its median by default, or its mean) over the whole recording.

    The median is the default because it ignores bursts and spikes (3DC Participant1's channel 1
    bursts, Participant5's transmission glitches) that would drag a mean; for the zero-mean EMG of
    a clean channel both agree. This is an offline step on a whole recording; a live stream gets
    the same effect from the causal high-pass (:func:`aemg.signal.bandpass_sos`), which removes DC.
    Appends ``"remove_dc(median)"`` (or ``mean``) to ``processing``.
    """
    if method not in ("median", "mean"):
        raise ValueError(f"method must be 'median' or 'mean', got {method!r}")
    x = rec.signal.astype(np.float64)
    if rec.n_samples:
        offset = np.median(x, axis=1, keepdims=True) if method == "median" else x.mean(axis=1, keepdims=True)
        x = x - offset
    return rec.with_step(f"remove_dc({method})", signal=np.ascontiguousarray(x, dtype=np.float32))


def robust_scale(recordings: Iterable[Recording], *, window_ms: float = 100.0, percentile: float = 90.0) -> np.ndarray:
    """One amplitude scale per channel for a subject's session, from all its recordings, without labels.

    Definition: the ``percentile`` (default 90th) of the per-channel RMS of non-overlapping
    ``window_ms`` (default 100 ms) windows, pooled over the whole session. Each window's mean is
    removed first (so its RMS is a standard deviation), which keeps a residual DC offset or slow
    drift out of the scale. The windows are laid on the session's recordings joined end to end in
    the order given (a window may span two files; the last partial window is dropped, unless the
    whole session is shorter than one window, in which case it is used), so the scale is the same
    however the session is split into files: many datasets store one repetition per file,
    starting at rest or mid-contraction, and a per-file statistic would depend on that split.

    Why a high percentile: a session mixes rest and contractions in dataset-dependent proportions
    (3DC: 10 of 11 gestures active; UCI: long unmarked pauses). The 90th percentile of window RMS
    sits on the contraction level whenever at least ~10% of the session is active, so it measures
    "how strong is this subject's EMG on this channel", while a median would land on the rest
    level for some datasets and the contraction level for others. Isolated spikes touch a few
    windows and do not move it. Scaling every signal by ``k`` scales the result by ``k``.

    Pass the recordings after DC removal and filtering (the signal the decoder will see;
    :func:`session_scale` does the filtering, and is what the corpus stores). All must
    share the channel count and ``fs``. Channels whose scale is 0 or not finite (flat) get the
    median of the other channels' scales (1.0 if none), so dividing by the scale never makes
    infinities. Returns ``(C,)`` float64.
    """
    recs = _same_rate_and_channels(recordings, "robust_scale")
    return _pooled_window_rms([r.signal for r in recs], recs[0].fs, window_ms, percentile)


def _same_rate_and_channels(recordings: Iterable[Recording], who: str) -> list[Recording]:
    recs = list(recordings)
    if not recs:
        raise ValueError(f"{who} needs at least one recording")
    n_ch, fs = recs[0].n_channels, recs[0].fs
    for r in recs[1:]:
        if r.n_channels != n_ch or r.fs != fs:
            raise ValueError(f"recordings of one session must share channels and fs: {r.recording_id or r.source_file} "
                             f"has {r.n_channels} channels at {r.fs} Hz, expected {n_ch} at {fs} Hz")
    return recs


def _pooled_window_rms(signals: Iterable[np.ndarray], fs: float, window_ms: float, percentile: float) -> np.ndarray:
    """:func:`robust_scale` on ``(C, n)`` arrays joined end to end (see there)."""
    signals = list(signals)
    n_ch = signals[0].shape[0]
    win = max(1, int(round(window_ms * 1e-3 * fs)))
    rms: list[np.ndarray] = []
    carry = np.zeros((n_ch, 0))
    for sig in signals:
        x = np.concatenate([carry, sig.astype(np.float64)], axis=1)
        n_win = x.shape[1] // win
        if n_win:
            w = x[:, : n_win * win].reshape(n_ch, n_win, win)
            rms.append(w.std(axis=2))
        carry = x[:, n_win * win:]
    if not rms:  # the whole session is shorter than one window
        rms.append(carry.std(axis=1, keepdims=True) if carry.shape[1] else np.zeros((n_ch, 1)))
    scale = np.percentile(np.concatenate(rms, axis=1), percentile, axis=1)
    bad = ~(np.isfinite(scale) & (scale > 0))
    if bad.any():
        good = scale[~bad]
        scale[bad] = float(np.median(good)) if good.size else 1.0
    return scale


def session_scale(recordings: Iterable[Recording], *, low: float | None = 20.0, notch: bool = True,
                  window_ms: float = 100.0, percentile: float = 90.0) -> np.ndarray:
    """The scale the corpus stores: :func:`robust_scale` of the session after the decoder's filter.

    Each recording goes through the filter of :func:`aemg.signal.filters.apply_causal_filter` (the causal
    ``low`` Hz Butterworth high-pass, default 20 Hz, and with ``notch`` a notch at
    ``rec.mains_hz`` and its harmonics), then :func:`robust_scale` pools the session's windows.
    Why filtered: the scale should measure EMG, and what a live decoder divides is the filtered
    stream. Unfiltered, motion artefact, baseline wander and mains pick-up enter the window RMS:
    on the real data the unfiltered scale is 1.04-1.14x the filtered one (Côté-Allard, CIIL, 3DC;
    1.35-1.55x on UCI, whose rebuilt signal lies mostly below 50 Hz), about the same on every
    channel of a session, but 1.7-2x on 3DC Participant1's channel 1 (60 Hz pick-up and bursts),
    which would then be shrunk to about half the level of its neighbours.

    Label-free, one value per channel, linear in the signal (the filter is linear), and for a
    live session computed the same way from its calibration recordings. A ``low`` at or above the
    Nyquist frequency is skipped (no high-pass). Returns ``(C,)`` float64.
    """
    recs = _same_rate_and_channels(recordings, "session_scale")
    fs, n_ch = recs[0].fs, recs[0].n_channels
    hp = low if low is not None and low < fs / 2 else None
    filters: dict[float | None, CausalSOS] = {}  # designed once per mains frequency, restarted per recording
    filtered = []
    for r in recs:
        mains = r.mains_hz if notch else None
        if mains not in filters:
            filters[mains] = make_causal_filter(fs, n_ch, mains, low=hp)
        f = filters[mains]
        f.reset()  # settles on the recording's first sample, exactly as apply_causal_filter does
        filtered.append(f.process(r.signal))
    return _pooled_window_rms(filtered, fs, window_ms, percentile)


def stream_scale(signals: Iterable[np.ndarray], fs: float, *, mains_hz: float | None = None, low: float | None = 20.0,
                 window_ms: float = 100.0, percentile: float = 90.0) -> np.ndarray:
    """:func:`session_scale` of raw ``(C, n)`` arrays at ``fs`` Hz (e.g. a live stream's calibration period),
    each filtered from its first sample (the ``low`` Hz high-pass, and a notch at ``mains_hz`` when given)."""
    signals = [np.asarray(s) for s in signals]
    if not signals:
        raise ValueError("stream_scale needs at least one (C, n) array")
    n_ch = signals[0].shape[0]
    hp = low if low is not None and low < fs / 2 else None
    f = make_causal_filter(fs, n_ch, mains_hz, low=hp)
    filtered = []
    for s in signals:
        f.reset()
        filtered.append(f.process(s))
    return _pooled_window_rms(filtered, fs, window_ms, percentile)


def divide_by_scale(signal: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``signal (C, n)`` divided channel by channel by ``scale (C,)``, as float32 (computed in float64).

    The one place a stored scale is applied (:func:`apply_scale`, ``Corpus.load(scaled=True)``, a
    live loop on filtered chunks). A channel whose scale is not a positive finite number is left as
    it is, so a bad scale never makes infinities.
    """
    scale = np.asarray(scale, dtype=np.float64)
    signal = np.asarray(signal)
    if signal.ndim != 2 or scale.shape != (signal.shape[0],):
        raise ValueError(f"scale must have shape ({signal.shape[0] if signal.ndim == 2 else 'C'},) for a (C, n) "
                         f"signal, got scale {scale.shape} and signal {signal.shape}")
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return np.ascontiguousarray(signal.astype(np.float64) / scale[:, None], dtype=np.float32)


def apply_scale(rec: Recording, scale: np.ndarray) -> Recording:
    """Divide each channel by its ``scale`` (from :func:`robust_scale`); appends a ``"scale"`` step.

    Strict: raises ValueError unless every scale is finite and > 0 (:func:`divide_by_scale` is
    the lenient form). The scale itself is stored by the corpus per subject and session, not in
    the recording.
    """
    scale = np.asarray(scale, dtype=np.float64)
    if scale.shape != (rec.n_channels,):
        raise ValueError(f"scale must have shape ({rec.n_channels},), got {scale.shape}")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    return rec.with_step("scale(robust)", signal=divide_by_scale(rec.signal, scale))
