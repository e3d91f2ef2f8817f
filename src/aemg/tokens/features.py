"""Token content: one fixed-size vector per (segment, channel), computed in one batch.

A token describes one channel's burst inside one segment of a contraction event, from the samples
of that segment only (so a live decoder can emit it when the segment closes). Every entry is
invariant to the channel's amplitude scale, because the session's noise floor scales with it:
amplitude is given relative to the floor, everything else as ratios. The vector has
:data:`N_FEATURES` entries, named by :data:`FEATURE_NAMES`:

* ``log_amp``: log of the mean floor-normalized TKEO envelope (how far above rest; TKEO ~ A^2 w^2).
* ``shape0..3``: the envelope's shape, the mean log envelope over 4 equal parts of the segment minus
  its mean over the segment (rising, flat, falling; the "envelope resampled to a fixed length").
* ``zc_rate``: zero crossings per sample pair of the high-passed signal (the classic Hudgins
  feature, a mean-frequency estimate).
* ``rho1``, ``rho2``: the signal's normalized autocorrelation at lags 1 and 2 (about ``cos w`` and
  ``cos 2w`` for a dominant frequency ``w``): the spectral shape, equivalent to the coefficients of
  an AR(2) model (Yule-Walker), the other classic EMG feature family.
* ``active_frac``: fraction of the segment in which the channel is active (above its threshold).

Why these: at the 200 Hz corpus rate a 100 ms segment holds 20 samples per channel, too few for
stable band powers from an FFT; amplitude-free time-domain ratios give the spectral shape robustly,
cost a few passes over the samples for all segments at once (the tokenizer must be as fast as plain
time-domain features: slope-sign changes and Hjorth parameters were dropped for that, they repeat
what zero crossings and the autocorrelations say), and a length-independent definition lets the
last, shorter segment of an event use the same vector. Duration and activation time are token
metadata (``duration_ms``, ``onset_ms``), not content.
"""

from __future__ import annotations

import numpy as np

FEATURE_NAMES: tuple[str, ...] = ("log_amp", "shape0", "shape1", "shape2", "shape3", "zc_rate", "rho1", "rho2",
                                  "active_frac")
N_FEATURES = len(FEATURE_NAMES)
N_SHAPE = 4
_EPS_ENV = 1e-3  # floor-normalized envelope is O(1) at rest, so a fixed epsilon is scale-free


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


def _reduce(ufunc: np.ufunc, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``ufunc.reduceat`` of ``y (..., L)`` over each ``[lo_g, hi_g)`` (sorted, non-overlapping,
    non-empty): ``(..., G)``. Each range is reduced on its own, sample by sample, so a segment's
    value does not depend on which other segments share the batch."""
    n = y.shape[-1]
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2] = lo
    idx[1::2] = np.minimum(hi, n - 1)
    if hi[-1] >= n:  # the last range runs to the end of y: reduceat's last index does just that
        idx = idx[:-1]
    return ufunc.reduceat(y, idx, axis=-1)[..., 0::2]


# per-sample quantities summed over each segment (rows of one buffer, one reduceat for all)
_Q_X2, _Q_LAG1, _Q_LAG2, _Q_ZC, _Q_ACT = range(5)


def segment_features(x: np.ndarray, env: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                     channel_on: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token content of ``G`` segments of one stretch of signal.

    ``x``: high-passed signal ``(C, L)``; ``env``: floor-normalized envelope ``(C, L)``; segment
    ``g`` is ``[starts[g], stops[g])`` (sorted, non-overlapping, non-empty). A channel is active
    where ``env >= channel_on``. Returns ``content (G, C, F)`` float32, ``first (G, C)`` (first active
    sample relative to the segment's start, -1 if none) and ``n_active (G, C)``.

    Per-sample quantities over the stretch are reduced per segment (``np.add.reduceat``); products
    with a neighbour outside the segment count as zero, so a token sees its own segment only.
    """
    c, n = x.shape
    a = np.asarray(starts, np.int64)
    b = np.asarray(stops, np.int64)
    g = a.shape[0]
    if g == 0:
        return np.zeros((0, c, N_FEATURES), np.float32), np.zeros((0, c), np.int64), np.zeros((0, c), np.int64)
    L = b - a
    length = L.astype(np.float64)[:, None]  # (G, 1)
    n_pair = np.maximum(L - 1, 0).astype(np.float64)[:, None]
    n_trip = np.maximum(L - 2, 0).astype(np.float64)[:, None]
    out = np.empty((g, c, N_FEATURES))

    # amplitude and envelope shape over N_SHAPE parts [a + ceil(jL/4), a + ceil((j+1)L/4))
    edges = a[:, None] + -(-(L[:, None] * np.arange(N_SHAPE + 1)[None, :]) // N_SHAPE)  # (G, 5)
    cnt = np.diff(edges, axis=1).astype(np.float64)  # (G, 4)
    lo = edges[:, :-1].reshape(-1)
    hi = edges[:, 1:].reshape(-1)
    keep = hi > lo
    if keep.all():
        parts = _reduce(np.add, env, lo, hi).astype(np.float64)
    else:
        parts = np.zeros((c, g * N_SHAPE))
        parts[:, keep] = _reduce(np.add, env, lo[keep], hi[keep])
    parts = parts.reshape(c, g, N_SHAPE).transpose(1, 0, 2)  # (G, C, 4)
    mean_env = parts.sum(-1) / length
    out[..., 0] = np.log(mean_env + _EPS_ENV)
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.log((parts / cnt[:, None, :] + _EPS_ENV) / (mean_env[..., None] + _EPS_ENV))
    out[..., 1:1 + N_SHAPE] = np.where(cnt[:, None, :] > 0, shape, 0.0)

    # per-sample quantities: x^2, lag-1 and lag-2 products, zero crossings, activity
    q = np.empty((5, c, n), x.dtype)
    np.multiply(x, x, out=q[_Q_X2])
    q[_Q_LAG1, :, 0] = 0.0
    np.multiply(x[:, 1:], x[:, :-1], out=q[_Q_LAG1, :, 1:])  # x[i] x[i-1], at i
    q[_Q_LAG1][:, a] = 0.0  # the neighbour is outside the segment
    q[_Q_LAG2, :, 0] = 0.0
    q[_Q_LAG2, :, -1] = 0.0
    np.multiply(x[:, 2:], x[:, :-2], out=q[_Q_LAG2, :, 1:-1])  # x[i+1] x[i-1], at i
    q[_Q_LAG2][:, a] = 0.0
    q[_Q_LAG2][:, b - 1] = 0.0
    np.less(q[_Q_LAG1], 0, out=q[_Q_ZC])
    act = env >= channel_on
    q[_Q_ACT] = act
    sums = _reduce(np.add, q, a, b).transpose(2, 1, 0).astype(np.float64)  # (G, C, 5)

    m0 = sums[..., _Q_X2] / length
    out[..., 5] = _div(sums[..., _Q_ZC], n_pair)
    out[..., 6] = _div(_div(sums[..., _Q_LAG1], n_pair), m0)  # lag-1 autocorrelation, ~cos(w)
    out[..., 7] = _div(_div(sums[..., _Q_LAG2], n_trip), m0)  # lag-2 autocorrelation, ~cos(2w)
    n_active = sums[..., _Q_ACT].astype(np.int64)
    out[..., 8] = n_active / length
    # first active sample of each segment
    pos = np.where(act, np.arange(n, dtype=np.int32)[None, :], np.int32(n))
    first_abs = _reduce(np.minimum, pos, a, b).T  # (G, C)
    first = np.where(first_abs < b[:, None], first_abs - a[:, None], -1)
    return out.astype(np.float32), first, n_active
