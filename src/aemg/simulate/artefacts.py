"""Recording artefacts added to a simulated session: motion artefacts and baseline wander, ``(E, T)`` uV.

Motion artefacts (cable sway, an electrode shifting on the skin) are Gaussian-windowed 2-15 Hz
oscillations of 0.1-0.4 s on one to three neighbouring channels, at Poisson times; the 20 Hz
high-pass before the detector removes most, not all, of their energy. Baseline wander is a
band-limited (< 1 Hz) random walk per channel. A bad channel is drawn with the subject
(:class:`aemg.simulate.physiology.Subject`: raised noise).
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from aemg.simulate.config import SimConfig


def motion_artefacts(n_channels: int, t_len: int, fs: float, config: SimConfig,
                     rng: np.random.Generator) -> np.ndarray:
    """Poisson-timed (``config.motion_per_min``) bumps of ``config.motion_uv`` peak on 1-3 adjacent channels."""
    out = np.zeros((n_channels, t_len))
    n = int(rng.poisson(config.motion_per_min * t_len / fs / 60.0))
    for _ in range(n):
        dur = rng.uniform(0.1, 0.4)
        half = int(dur * fs / 2)
        t = np.arange(-half, half + 1) / fs
        f = rng.uniform(2.0, 15.0)
        bump = np.exp(-0.5 * (t / (dur / 4)) ** 2) * np.cos(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        centre = int(rng.integers(t_len))
        a, b = max(centre - half, 0), min(centre + half + 1, t_len)
        first = int(rng.integers(n_channels))
        width = int(rng.integers(1, 4))
        peak = rng.uniform(*config.motion_uv)
        for k in range(width):
            ch = (first + k) % n_channels
            out[ch, a:b] += peak * (0.6 ** k) * bump[a - (centre - half):b - (centre - half)]
    return out


def baseline_wander(n_channels: int, t_len: int, fs: float, config: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """A < 1 Hz random walk per channel with RMS ``config.drift_uv``."""
    if config.drift_uv <= 0 or t_len < 2:
        return np.zeros((n_channels, t_len))
    sos = sps.butter(2, 1.0, btype="lowpass", fs=fs, output="sos")
    w = sps.sosfilt(sos, rng.standard_normal((n_channels, t_len)), axis=1)
    return w * (config.drift_uv / np.maximum(w.std(axis=1), 1e-12))[:, None]


def artefacts(n_channels: int, t_len: int, fs: float, config: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """Motion artefacts plus baseline wander of one session, ``(E, T)`` uV."""
    return motion_artefacts(n_channels, t_len, fs, config, rng) + baseline_wander(n_channels, t_len, fs, config, rng)
