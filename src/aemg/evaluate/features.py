"""Classic time-domain EMG features of sliding windows, vectorised numpy (the baselines' input).

Windows are ``(W, C, L)`` arrays (W windows, C channels, L samples). Every feature returns
``(W, C)``: MAV and WL in the signal's units (WL per window, not per sample), ZC and SSC as counts,
AR(4) as ``(W, C, 4)`` dimensionless coefficients. Definitions follow Hudgins et al. (1993) and
``shared/data/README.md`` "Reference figures": a zero crossing needs a sign change and a step of
at least ``thr``; a slope sign change needs a slope product of at least ``thr**2``.
"""

from __future__ import annotations

import numpy as np

WINDOW_MS = 200.0
HOP_MS = 50.0
AR_ORDER = 4
TD = ("mav", "wl", "zc", "ssc")


def window_samples(fs: float, window_ms: float = WINDOW_MS, hop_ms: float = HOP_MS) -> tuple[int, int]:
    """Window and hop lengths in samples at ``fs`` Hz (40 and 10 at 200 Hz)."""
    return max(1, int(round(window_ms * 1e-3 * fs))), max(1, int(round(hop_ms * 1e-3 * fs)))


def sliding_windows(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """``(C, n)`` signal -> ``(W, C, win)`` windows starting at 0, hop, 2 hop, ... (a view; W = 0 when n < win)."""
    if x.shape[1] < win:
        return np.zeros((0, x.shape[0], win), dtype=x.dtype)
    v = np.lib.stride_tricks.sliding_window_view(x, win, axis=1)[:, ::hop]  # (C, W, win)
    return v.transpose(1, 0, 2)


def mav(w: np.ndarray) -> np.ndarray:
    """Mean absolute value per window and channel."""
    return np.abs(w).mean(axis=-1)


def wl(w: np.ndarray) -> np.ndarray:
    """Waveform length: sum of absolute sample-to-sample differences in the window."""
    return np.abs(np.diff(w, axis=-1)).sum(axis=-1)


def _thr(thr: np.ndarray | float, w: np.ndarray) -> np.ndarray:
    t = np.asarray(thr, dtype=np.float64)
    return t[..., None] if t.ndim else t  # (C,) or (W, C) -> broadcast over the window axis


def zc(w: np.ndarray, thr: np.ndarray | float = 0.0) -> np.ndarray:
    """Zero crossings: ``x[i] * x[i+1] < 0`` and ``|x[i] - x[i+1]| >= thr`` (thr per channel, or (W, C))."""
    a, b = w[..., :-1], w[..., 1:]
    return ((a * b < 0) & (np.abs(a - b) >= _thr(thr, w))).sum(axis=-1).astype(np.float64)


def ssc(w: np.ndarray, thr: np.ndarray | float = 0.0) -> np.ndarray:
    """Slope sign changes: ``(x[i] - x[i-1]) * (x[i] - x[i+1]) >= thr**2`` for interior samples.

    With ``thr = 0`` a flat stretch counts too (product 0); the baselines always pass ``thr > 0``.
    """
    mid = w[..., 1:-1]
    prod = (mid - w[..., :-2]) * (mid - w[..., 2:])
    return (prod >= _thr(thr, w) ** 2).sum(axis=-1).astype(np.float64)


def ar(w: np.ndarray, order: int = AR_ORDER) -> np.ndarray:
    """Autoregressive coefficients by Yule-Walker, ``(W, C, order)``: ``x[t] ~ sum_i a[i] x[t-1-i]``.

    Per window and channel on the mean-removed window, with the biased autocorrelation (divided by
    L, which keeps the Toeplitz matrix positive semi-definite). A flat window gets zeros.
    """
    x = w - w.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    if n <= order:
        raise ValueError(f"AR({order}) needs windows longer than {order} samples, got {n}")
    r = np.stack([(x[..., : n - lag] * x[..., lag:]).sum(axis=-1) / n for lag in range(order + 1)], axis=-1)
    idx = np.abs(np.arange(order)[:, None] - np.arange(order)[None, :])
    big_r = r[..., idx]  # (W, C, order, order) Toeplitz of r[0..order-1]
    rhs = r[..., 1:]
    flat = r[..., 0] <= 1e-12 * np.maximum(1.0, np.abs(r[..., 0]).max(initial=0.0))
    big_r = np.where(flat[..., None, None], np.eye(order), big_r)
    rhs = np.where(flat[..., None], 0.0, rhs)
    return np.linalg.solve(big_r, rhs[..., None])[..., 0]


def td_features(w: np.ndarray, thr: np.ndarray | float) -> np.ndarray:
    """``(W, 4 C)``: MAV, WL, ZC, SSC of every channel, in that order (feature-major)."""
    w = w.astype(np.float64, copy=False)
    return np.concatenate([mav(w), wl(w), zc(w, thr), ssc(w, thr)], axis=1)


def tdar_features(w: np.ndarray, thr: np.ndarray | float, order: int = AR_ORDER) -> np.ndarray:
    """``(W, (4 + order) C)``: the TD features then the AR coefficients (channel-major per channel)."""
    w = w.astype(np.float64, copy=False)
    coeffs = ar(w, order)
    return np.concatenate([td_features(w, thr), coeffs.reshape(len(w), -1)], axis=1)


def feature_names(n_channels: int, kind: str = "td", order: int = AR_ORDER) -> list[str]:
    """Column names of :func:`td_features` (``kind="td"``) or :func:`tdar_features` (``"tdar"``)."""
    names = [f"{f}{c}" for f in TD for c in range(n_channels)]
    if kind == "tdar":
        names += [f"ar{c}_{i + 1}" for c in range(n_channels) for i in range(order)]
    elif kind != "td":
        raise ValueError(f"kind must be 'td' or 'tdar', got {kind!r}")
    return names
