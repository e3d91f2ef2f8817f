"""Causal energy envelope of multi-channel EMG: high-pass, |TKEO|, moving average; and the noise floor.

Why the Teager-Kaiser energy operator (TKEO) rather than an RMS envelope: ``psi[n] = x[n]^2 -
x[n-1] x[n+1]`` is about ``A^2 sin^2(w)`` for a sinusoid of amplitude ``A`` and frequency ``w``, so it
weighs the high-frequency content of motor-unit action potentials above the low-frequency
background (movement, cable sway, residual drift) that an RMS envelope passes at full weight. Onset
detection on TKEO-conditioned EMG has a markedly smaller onset error than on the raw or RMS envelope
(Li, Zhou & Aruin 2007; Solnik et al. 2010). Its absolute value is then smoothed by a moving
average (default 100 ms), which gives a stable envelope to threshold.

Causality: the operator needs ``x[n+1]``, so the stage emits ``psi`` one sample late (at sample ``n``
it outputs the operator centred on ``n - 1``); the 20 Hz high-pass is a :class:`~aemg.signal.CausalSOS`
and the moving average a fixed-order window sum over the carried tail and the chunk, so the output
does not depend on how the input is cut into chunks (bit for bit: every stage works sample by sample with
an explicit state).

The noise floor of a channel is a low percentile (default the 10th) of its envelope over a
subject's whole session, computed without labels (:func:`estimate_floor`). Per file it would fail:
many datasets store one repetition per file that is already contracting from its first sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from aemg.signal.filters import make_causal_filter

DTYPE = np.float32
"""Working precision after the high-pass filter (which runs in float64): float32 halves the memory
traffic of every later pass; a 100 ms sum of 20 values and ratios to the floor need no more."""


def ms_to_samples(ms: float, fs: float) -> int:
    """``ms`` milliseconds as a whole number of samples at ``fs`` Hz (at least 1)."""
    return max(1, int(round(ms * fs / 1000.0)))


def _factor(w: int) -> int:
    """The divisor ``p`` of ``w`` nearest to its square root (1 for a prime)."""
    return max(d for d in range(1, int(w ** 0.5) + 1) if w % d == 0)


def _box_sum(ext: np.ndarray, w: int, p: int) -> np.ndarray:
    """``out[:, j] = sum(ext[:, j:j + w])`` for ``j < ext.shape[1] - w + 1``, in a fixed order."""
    n = ext.shape[1] - w + 1
    m = n + w - p  # boxes of p needed
    box = ext[:, :m] + ext[:, 1:m + 1] if p > 1 else ext[:, :m].copy()
    for k in range(2, p):
        box += ext[:, k:k + m]
    q = w // p
    out = box[:, :n] + box[:, p:p + n] if q > 1 else box[:, :n].copy()
    for k in range(2, q):
        out += box[:, k * p:k * p + n]
    return out


class EnergyEnvelope:
    """Stateful causal energy stage: ``xf, env = stage.process(chunk)``.

    ``chunk`` is ``(C, n)``; ``xf`` is the high-passed signal ``(C, n)`` and ``env`` the moving
    average of ``|TKEO(xf)|`` over ``smooth_ms`` ``(C, n)``, both float32 (:data:`DTYPE`) (``env[:, i]`` uses samples
    up to ``i`` only). During the first ``smooth_ms`` after a :meth:`reset` (:attr:`warmup` samples)
    the average runs over the samples seen so far, so a recording that starts mid-contraction is
    above threshold from its first samples instead of ramping up from zero.

    The moving average sums each sample's last ``w`` values in a fixed order (boxes of ``p`` samples,
    then ``w / p`` boxes), from the carried tail of the previous chunk, so chunking does not change
    a bit; ``p + w/p - 2`` additions per sample instead of ``w - 1``.
    """

    def __init__(self, fs: float, n_channels: int, *, highpass_hz: float = 20.0, order: int = 4,
                 smooth_ms: float = 100.0, mains_hz: float | None = None) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        # the harmonization filter (designed once per setting); no notch when mains is unknown (None or 0)
        self._filter = make_causal_filter(self.fs, self.n_channels, mains_hz or None, low=highpass_hz, order=order)
        self.warmup = ms_to_samples(smooth_ms, self.fs)
        self._p = _factor(self.warmup)
        self.reset()

    def reset(self, x0: np.ndarray | None = None) -> None:
        """Restart: the filter settles on ``x0`` (or the next chunk's first sample); TKEO and the
        moving average start from zeros."""
        self._filter.reset(x0)
        self._hist = np.zeros((self.n_channels, 2), DTYPE)  # last two high-passed samples
        self._tail = np.zeros((self.n_channels, self.warmup - 1), DTYPE)  # last |TKEO| values (0 before reset)
        self._count = 0  # samples since reset

    def process(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[0] != self.n_channels:
            raise ValueError(f"chunk must have shape ({self.n_channels}, n), got {chunk.shape}")
        n = chunk.shape[1]
        if n == 0:
            return np.zeros((self.n_channels, 0), DTYPE), np.zeros((self.n_channels, 0), DTYPE)
        ext = np.empty((self.n_channels, n + 2), DTYPE)  # the last two samples, then the chunk's
        ext[:, :2] = self._hist
        xf = self._filter.process(chunk, out=ext[:, 2:])  # filtered in float64, stored as float32
        self._hist = ext[:, -2:].copy()
        w = self.warmup
        # |TKEO| centred on the previous sample, x[n-1]^2 - x[n-2] x[n], written after the carried tail
        buf = np.empty((self.n_channels, w - 1 + n), DTYPE)
        buf[:, : w - 1] = self._tail
        psi = buf[:, w - 1:]
        mid = ext[:, 1:-1]
        np.multiply(mid, mid, out=psi)
        psi -= ext[:, :-2] * ext[:, 2:]
        np.abs(psi, out=psi)
        env = _box_sum(buf, w, self._p)  # sum of each sample's last w values, (C, n)
        self._tail = buf[:, buf.shape[1] - (w - 1):].copy()
        if self._count < w:  # warm-up: the mean over the samples seen so far (the tail is zeros)
            k = min(n, w - self._count)
            env[:, :k] /= (self._count + 1 + np.arange(k, dtype=DTYPE))
            env[:, k:] /= w
        else:
            env /= w
        self._count += n
        return xf, env

    def state_dict(self) -> dict[str, Any]:
        return {"filter": self._filter.state_dict(), "hist": self._hist.copy(), "tail": self._tail.copy(),
                "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._filter.load_state_dict(state["filter"])
        self._hist = np.asarray(state["hist"], dtype=DTYPE).copy()
        self._tail = np.asarray(state["tail"], dtype=DTYPE).copy()
        self._count = int(state["count"])


FLOOR_STEP_MS = 25.0
"""The floor percentile is taken over the envelope every 25 ms: a 100 ms moving average hardly changes
in 25 ms, so this is the same statistic at a quarter of the cost."""


def floor_samples(env: np.ndarray, start: int, fs: float, skip: int = 0) -> np.ndarray:
    """The samples of an envelope block ``(C, n)`` (first sample at ``start`` in the session) that
    the floor uses: every :data:`FLOOR_STEP_MS` on the session's grid, none before ``skip``."""
    step = ms_to_samples(FLOOR_STEP_MS, fs)
    first = max(skip, start)
    first += (-first) % step
    return env[:, first - start::step]


def floor_from_samples(samples: np.ndarray, percentile: float = 10.0) -> np.ndarray:
    """Per-channel noise floor ``(C,)``: the ``percentile`` of ``samples (C, m)`` over time. A
    channel whose percentile is 0 (dead, or quantized to silence) gets 1e-3 of the median floor of
    the others, so normalized envelopes stay finite."""
    if samples.shape[1] == 0:
        return np.ones(samples.shape[0])
    k = (samples.shape[1] - 1) * percentile / 100.0
    lo = int(np.floor(k))
    hi = min(lo + 1, samples.shape[1] - 1)
    part = np.partition(samples, lo, axis=1)
    below = part[:, lo]
    # the next order statistic is the least of those after lo (one pass, cheaper than selecting it too)
    above = part[:, lo + 1:].min(axis=1) if hi > lo else below
    floor = below + (k - lo) * (above - below)  # numpy's "linear" percentile
    good = floor > 0
    if not good.any():
        return np.ones_like(floor)
    return np.where(good, floor, 1e-3 * np.median(floor[good]))


def estimate_floor(signals: Iterable[np.ndarray], fs: float, *, percentile: float = 10.0,
                   highpass_hz: float = 20.0, order: int = 4, smooth_ms: float = 100.0,
                   mains_hz: float | None = None) -> np.ndarray:
    """Per-channel noise floor ``(C,)`` of one subject's session, without labels: the ``percentile``
    of the energy envelope over all its recordings ``(C, T)``, in time order and joined (one
    :class:`EnergyEnvelope` runs through them, as the session's detector does), taken every
    :data:`FLOOR_STEP_MS` after the warm-up (:func:`floor_samples`, :func:`floor_from_samples`).
    """
    parts: list[np.ndarray] = []
    envs: list[np.ndarray] = []
    stage: EnergyEnvelope | None = None
    pos = 0
    for sig in signals:
        sig = np.asarray(sig)
        if stage is None:
            stage = EnergyEnvelope(fs, sig.shape[0], highpass_hz=highpass_hz, order=order,
                                   smooth_ms=smooth_ms, mains_hz=mains_hz)
        env = stage.process(sig)[1]
        parts.append(floor_samples(env, pos, fs, stage.warmup))
        envs.append(env)
        pos += env.shape[1]
    if stage is None:
        raise ValueError("estimate_floor needs at least one recording")
    samples = np.concatenate(parts, axis=1)
    if samples.shape[1] == 0:  # shorter than the warm-up: use what there is
        samples = np.concatenate(envs, axis=1)
    return floor_from_samples(samples, percentile)
