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


def _sum_halving(y: np.ndarray, axis: int) -> np.ndarray:
    """Sum of ``y`` along ``axis`` by pairwise halving, in place (``y`` is scratch): a view of the result.

    The order is fixed by the code, not by numpy's choice of loop for the memory layout (``y.sum``
    adds the contiguous axis pairwise but any other sequentially, so a segment's float32 sum could
    change with the batch it is computed in; here it cannot, which keeps chunked and whole runs
    bit-identical). Each step adds the entries from the largest power of two below the current
    length onto the first ones; entries past a segment's end are zeros, so its sum depends on its own
    length only, whatever the longest segment of the batch (adding 0.0 at the end turns a zero sum's
    sign, which could depend on the order, into +0). ``log2(K)`` vectorized additions.
    """
    ys = np.moveaxis(y, axis, 0)
    m = ys.shape[0]
    while m > 1:
        h = 1 << ((m - 1).bit_length() - 1)  # largest power of two below m
        ys[: m - h] += ys[h:m]
        m = h
    ys[0] += 0.0
    return ys[0]


def segment_features(x: np.ndarray, env: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                     channel_on: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token content of ``G`` segments of one stretch of signal.

    ``x``: high-passed signal ``(C, L)``; ``env``: floor-normalized envelope ``(C, L)``; segment
    ``g`` is ``[starts[g], stops[g])`` (sorted, non-overlapping, non-empty). A channel is active
    where ``env >= channel_on``. Returns ``content (G, C, F)`` float32, ``first (G, C)`` (first active
    sample relative to the segment's start, -1 if none) and ``n_active (G, C)``.

    The same as :func:`segment_features_rows` on the transposed (time-major) arrays.
    """
    return segment_features_rows(np.ascontiguousarray(np.asarray(x).T), np.ascontiguousarray(np.asarray(env).T),
                                 starts, stops, channel_on)


def segment_features_rows(xt: np.ndarray, et: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                          channel_on: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`segment_features` on time-major arrays: ``xt``, ``et`` are ``(L, C)`` (one row per
    sample), best C-contiguous (the detector keeps its history this way).

    Only the samples inside segments are read (never the rest between events): their rows are
    gathered into a dense ``(K, G, C)`` block (``K`` the longest segment, shorter ones padded with
    zeros), and the envelope's into ``(4, P, G, C)`` (its :data:`N_SHAPE` parts of at most ``P``
    samples, padded likewise). Gathering whole rows is a copy of ``C`` contiguous values per sample,
    every per-sample quantity is then one vectorized pass over all segments, and the per-segment sums
    take ``log2(K)`` additions (:func:`_sum_halving`) instead of one ``reduceat`` call per segment,
    channel and quantity. Products with a neighbour outside the segment are not formed (or meet the
    padding), so a token sees its own segment only.
    """
    c = xt.shape[1]
    a = np.asarray(starts, np.int64)
    b = np.asarray(stops, np.int64)
    g = a.shape[0]
    if g == 0:
        return np.zeros((0, c, N_FEATURES), np.float32), np.zeros((0, c), np.int64), np.zeros((0, c), np.int64)
    L = b - a
    k_max = int(L.max())

    # signal: x^2, lag-1 and lag-2 products (at the later sample), zero crossings; (4, K, G, C)
    k = np.arange(k_max)[:, None]
    xs = np.take(xt, a + np.minimum(k, L - 1), axis=0)  # (K, G, C)
    pad = k >= L  # past the segment's end
    if pad.any():
        xs[pad] = 0.0
    q = np.empty((4, k_max, g, c), np.float32)
    q[1:3, :1] = 0.0  # no neighbour before the first sample
    q[2, 1:2] = 0.0
    np.multiply(xs, xs, out=q[0])
    np.multiply(xs[1:], xs[:-1], out=q[1, 1:])  # x[i] x[i-1]
    np.multiply(xs[2:], xs[:-2], out=q[2, 2:])  # x[i] x[i-2]
    np.less(q[1], 0, out=q[3])
    s_x2, s_lag1, s_lag2, s_zc = _sum_halving(q, 1).astype(np.float64)  # each (G, C)

    # envelope and activity over N_SHAPE parts [ceil(jL/4), ceil((j+1)L/4)); (2, 4, P, G, C)
    edges = -(-(L * np.arange(N_SHAPE + 1)[:, None]) // N_SHAPE)  # (5, G)
    cnt = np.diff(edges, axis=0)  # (4, G)
    p_max = int(cnt.max())
    offs = edges[:-1, None, :] + np.arange(p_max)[None, :, None]  # (4, P, G): sample in the segment
    e = np.empty((2, N_SHAPE, p_max, g, c), np.float32)
    np.take(et, a + np.minimum(offs, L - 1), axis=0, out=e[0], mode="clip")  # in range; "raise" would copy
    np.greater_equal(e[0], channel_on, out=e[1])
    ppad = offs >= edges[1:, None, :]  # past the part's end
    if ppad.any():
        e[:, ppad] = 0.0
    # first active sample: parts and samples are in time order, padding is never active
    n_pos = N_SHAPE * p_max
    score = e[1].reshape(n_pos, g, c) * np.arange(n_pos, 0, -1, dtype=np.float32)[:, None, None]
    best = score.max(axis=0).astype(np.int64)  # (G, C): n_pos - position of the first active, 0 if none
    at = offs.reshape(n_pos, g)[n_pos - np.maximum(best, 1), np.arange(g)[:, None]]
    first = np.where(best > 0, at, -1)
    parts, act = _sum_halving(e, 2).astype(np.float64)  # (4, G, C) each
    n_active = act.sum(axis=0).astype(np.int64)  # (G, C)

    # the features, (F, G, C) in float64; a ratio without a defined value (no pair, no signal) is 0
    length = L.astype(np.float64)[:, None]  # (G, 1)
    out = np.zeros((N_FEATURES, g, c))
    mean_env = parts.sum(axis=0) / length  # (G, C)
    np.log(mean_env + _EPS_ENV, out=out[0])
    cntf = cnt.astype(np.float64)[:, :, None]  # (4, G, 1); an empty part (segments under 4 samples) is 0
    shape = np.log((parts / np.maximum(cntf, 1.0) + _EPS_ENV) / (mean_env + _EPS_ENV))  # (4, G, C)
    out[1:1 + N_SHAPE] = np.where(cntf > 0, shape, 0.0)
    # sums over no pair (no triple) are 0, so dividing them by 1 instead gives the 0
    n_pair = np.maximum(L - 1, 1).astype(np.float64)[:, None]
    n_trip = np.maximum(L - 2, 1).astype(np.float64)[:, None]
    m0 = s_x2 / length
    has = m0 > 0
    np.divide(s_zc, n_pair, out=out[5])
    np.divide(s_lag1 / n_pair, m0, out=out[6], where=has)  # lag-1 autocorrelation, ~cos(w)
    np.divide(s_lag2 / n_trip, m0, out=out[7], where=has)  # lag-2 autocorrelation, ~cos(2w)
    np.divide(n_active, length, out=out[8])
    return out.transpose(1, 2, 0).astype(np.float32), first, n_active
