"""The simulator's knobs: how noisy, how variable between subjects and how artefact-laden the EMG is.

Defaults are calibrated against real corpora in ``../shared/data`` (Côté-Allard, 3DC, UCI, CIIL;
docs/simulator.md has the measured figures beside the simulator's, from
``benchmarks/bench_simulator.py``): the token detector's contraction-to-floor TKEO ratio, rest
false events, and the LDA-TD gap between leave-one-subject-out and within-subject accuracy.
Ranges ``(lo, hi)`` are drawn uniformly; ``*_sigma`` are log-normal sigmas.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    """Noise, inter-subject variability and artefacts of a simulated session (units in the names)."""

    # --- inter-subject variability
    rotation_sd_deg: float = 25.0  # armband rotation around the nominal placement (channel 0 on the dorsal midline)
    rotation_nominal_deg: float = 0.0  # the nominal rotation every subject aims at
    z_sd: float = 0.04  # armband position along the forearm (fraction of its length) around 0.3
    gain_sigma: float = 0.3  # per-channel gain (skin contact, electrode-skin impedance)
    style_sigma: float = 0.3  # per-subject scaling of each muscle's activation
    pattern_sd: float = 0.12  # per-subject, per-gesture additive change of each muscle's level (own synergy)
    intensity: tuple[float, float] = (0.2, 0.6)  # per-subject contraction intensity (fraction of the templates)
    repetition_sd: float = 0.08  # per-repetition additive change of each active muscle's level (no two alike)
    # --- recording noise
    noise_uv: tuple[float, float] = (12.0, 28.0)  # RMS of band-limited skin/amplifier noise per channel
    mains_uv: tuple[float, float] = (0.3, 3.0)  # mains amplitude (per subject, x log-normal 0.2 per channel)
    # --- rest
    rest_tone: tuple[float, float] = (0.0, 0.015)  # per-subject residual activation at rest (fraction of max)
    rest_burst_prob: float = 0.04  # chance that a rest period holds a short stray contraction
    rest_burst_level: tuple[float, float] = (0.03, 0.12)  # its activation level (a weak, brief co-contraction)
    # --- artefacts
    motion_per_min: float = 2.0  # motion artefacts (cable sway, electrode shift): low-frequency bumps per minute
    motion_uv: tuple[float, float] = (20.0, 120.0)  # their peak, on the channels they touch
    drift_uv: float = 30.0  # baseline wander: RMS of a < 1 Hz random walk per channel (removed by the high-pass)
    bad_channel_prob: float = 0.25  # chance that a session has one bad channel (loose contact)
    bad_channel_noise: tuple[float, float] = (3.0, 8.0)  # its noise, x the channel's normal noise

    def __post_init__(self) -> None:
        for name in ("intensity", "noise_uv", "mains_uv", "rest_tone", "rest_burst_level", "motion_uv",
                     "bad_channel_noise"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"SimConfig.{name}: expected 0 <= lo <= hi, got {(lo, hi)}")
        for name in ("rest_burst_prob", "bad_channel_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SimConfig.{name}: expected a probability in [0, 1], got {getattr(self, name)}")


CLEAN = SimConfig(rotation_sd_deg=180.0, gain_sigma=0.15, style_sigma=0.2, pattern_sd=0.0, intensity=(1.0, 1.0),
                  repetition_sd=0.0, noise_uv=(1.5, 4.0), rest_tone=(0.0, 0.0), rest_burst_prob=0.0, motion_per_min=0.0,
                  drift_uv=0.0, bad_channel_prob=0.0)
"""The simulator before calibration (uniform armband rotation, clean rest, no artefacts): for tests of the
physiology alone, and to show the difference (docs/simulator.md)."""
