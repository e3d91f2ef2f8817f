"""A small, fast physiological model of forearm surface EMG recorded by an armband.

Chain, per subject and session (all numpy, vectorized; ``docs/simulator.md`` lists what is and is
not modelled):

1. **Muscles** (:data:`MUSCLES`): 8 forearm muscles as point-like sources at an anatomical angle
   around the forearm and position along it (the forearm frame of :mod:`aemg.recording`: angle 0 on
   the dorsal midline over extensor digitorum, growing toward the radial side; z 0 elbow .. 1 wrist)
   and a depth below the skin.
2. **Activation** ``a_m(t)`` in [0, 1] per muscle, from a gesture's pattern (:data:`GESTURE_PATTERNS`)
   with an onset ramp, a hold with slow fluctuation and a release.
3. **Motor-unit pools**: per muscle, ``n_mu`` units with exponentially distributed recruitment
   thresholds and twitch (MUAP) amplitudes (Henneman's size principle, Fuglevand et al. 1993): a unit
   fires once ``a`` exceeds its threshold, at a rate rising linearly from 8 Hz to its peak rate,
   with gamma-distributed inter-spike intervals (CV 0.2).
4. **MUAPs**: each muscle's spike train (impulses weighted by unit amplitude) is convolved with a
   biphasic MUAP (first derivative of a Gaussian). Volume conduction spreads and low-passes
   the potential with distance: per electrode the muscle's contribution is attenuated as
   ``1 / (1 + (d / d0)^2)`` and mixed from a narrow and a wide MUAP by distance.
5. **Fatigue**: over the session each muscle's MUAP widens (conduction velocity falls: the spectrum
   compresses toward low frequencies) and its amplitude grows, in proportion to its accumulated
   activation.
6. **Recording**: 8 electrodes equally spaced (Myo-like, ``myo8``), rotated and shifted along the
   arm per subject, per-channel gains, band-limited skin/amplifier noise (one channel of some
   sessions noisier: a bad contact), and mains interference at 50 or 60 Hz with a third harmonic.

How much subjects differ, how noisy and how hard they contract is set by
:class:`aemg.simulate.config.SimConfig` (calibrated on real corpora); artefacts are added by
:mod:`aemg.simulate.artefacts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from aemg.simulate.config import SimConfig

FOREARM_RADIUS_CM = 4.0  # ~25 cm circumference at the armband
FOREARM_LENGTH_CM = 25.0  # elbow crease to wrist crease
D0_CM = 1.5  # attenuation scale of volume conduction


@dataclass(frozen=True)
class Muscle:
    """A muscle as a point source in the forearm frame."""

    name: str
    angle_deg: float  # around the forearm (0 dorsal midline, toward radial side)
    z: float  # along the forearm, 0 elbow .. 1 wrist (centre of the muscle belly)
    depth_cm: float  # below the skin


# Approximate cross-sectional anatomy of the proximal third of the forearm (ventral = 180 deg).
MUSCLES: tuple[Muscle, ...] = (
    Muscle("extensor_digitorum", 0.0, 0.35, 0.6),
    Muscle("extensor_carpi_radialis", 55.0, 0.28, 0.6),
    Muscle("supinator", 70.0, 0.15, 1.6),
    Muscle("pronator_teres", 140.0, 0.18, 1.0),
    Muscle("flexor_carpi_radialis", 155.0, 0.32, 0.6),
    Muscle("flexor_digitorum_superficialis", 195.0, 0.40, 1.1),
    Muscle("flexor_carpi_ulnaris", 245.0, 0.33, 0.6),
    Muscle("extensor_carpi_ulnaris", 305.0, 0.38, 0.6),
)
MUSCLE_INDEX = {m.name: i for i, m in enumerate(MUSCLES)}


def _pattern(**levels: float) -> np.ndarray:
    out = np.zeros(len(MUSCLES))
    for name, v in levels.items():
        out[MUSCLE_INDEX[name]] = v
    return out


_ED, _ECR, _SUP, _PT = "extensor_digitorum", "extensor_carpi_radialis", "supinator", "pronator_teres"
_FCR, _FDS, _FCU, _ECU = ("flexor_carpi_radialis", "flexor_digitorum_superficialis", "flexor_carpi_ulnaris",
                          "extensor_carpi_ulnaris")

# Activation (fraction of maximum) of each muscle during the hold of each gesture: the prime movers
# high, synergists and stabilisers lower (co-contraction of antagonists in grasping).
GESTURE_PATTERNS: dict[str, np.ndarray] = {
    "rest": _pattern(),
    "hand_close": _pattern(**{_FDS: 0.65, _FCU: 0.2, _FCR: 0.2, _ED: 0.2, _ECR: 0.3, _ECU: 0.15}),
    "hand_open": _pattern(**{_ED: 0.65, _ECU: 0.25, _ECR: 0.2, _FDS: 0.05}),
    "wrist_flexion": _pattern(**{_FCR: 0.55, _FCU: 0.55, _FDS: 0.3}),
    "wrist_extension": _pattern(**{_ECR: 0.55, _ECU: 0.5, _ED: 0.35}),
    "radial_deviation": _pattern(**{_ECR: 0.55, _FCR: 0.45, _ED: 0.1}),
    "ulnar_deviation": _pattern(**{_ECU: 0.55, _FCU: 0.5}),
    "pronation": _pattern(**{_PT: 0.6, _FCR: 0.2}),
    "supination": _pattern(**{_SUP: 0.6, _ED: 0.1, _ECR: 0.1}),
}


@dataclass(frozen=True)
class MotorUnitPools:
    """Recruitment thresholds, peak rates and MUAP amplitudes of each muscle's units, ``(M, n_mu)``."""

    thresholds: np.ndarray
    peak_rates: np.ndarray
    amplitudes: np.ndarray
    min_rate: float = 8.0
    isi_cv: float = 0.2

    @classmethod
    def build(cls, n_muscles: int, n_mu: int, rng: np.random.Generator, recruitment_range: float = 0.7,
              amplitude_range: float = 30.0) -> MotorUnitPools:
        i = np.arange(n_mu) / max(n_mu - 1, 1)
        # Fuglevand 1993: thresholds exp-spaced up to the recruitment range; few large late units
        thr = recruitment_range * (np.exp(np.log(60.0) * i) - 1.0) / 59.0 + 0.005
        amp = np.exp(np.log(amplitude_range) * i)
        peak = 35.0 - 10.0 * i  # earlier units reach higher peak rates
        jitter = rng.lognormal(0.0, 0.1, (n_muscles, n_mu))
        return cls(thresholds=np.broadcast_to(thr, (n_muscles, n_mu)) * jitter,
                   peak_rates=np.broadcast_to(peak, (n_muscles, n_mu)).copy(),
                   amplitudes=np.broadcast_to(amp, (n_muscles, n_mu)) * rng.lognormal(0.0, 0.2, (n_muscles, n_mu)))


@dataclass
class Subject:
    """Per-subject (and session) facts of the simulated recording."""

    rotation_deg: float  # armband rotation: electrode 0 sits at this forearm angle
    z_armband: float  # armband position along the forearm
    gains: np.ndarray  # (E,) per-channel gain (skin contact, amplifier)
    noise_uv: np.ndarray  # (E,) RMS of band-limited noise, uV (a bad channel's already raised)
    mains_hz: float  # 50 or 60
    mains_uv: np.ndarray  # (E,) mains amplitude, uV
    style: np.ndarray  # (M,) the subject's own scaling of every muscle's activation
    muap_ms: float  # MUAP half-width (fibre conduction velocity, fat layer)
    uv_per_unit: float  # overall amplitude scale
    fatigue_rate: float  # fractional MUAP widening per unit of accumulated activation-second / 100
    n_electrodes: int = 8
    intensity: float = 1.0  # how hard this subject contracts (fraction of the gesture templates)
    rest_tone: float = 0.0  # residual activation of every muscle at rest (fraction of max)
    bad_channel: int = -1  # the channel with a loose contact (raised noise), -1 for none
    patterns: dict[str, np.ndarray] = field(default_factory=dict)  # the subject's own gesture templates (M,)
    extra: dict = field(default_factory=dict)

    @classmethod
    def draw(cls, rng: np.random.Generator, n_electrodes: int = 8, config: SimConfig | None = None) -> Subject:
        """A random subject; ``config`` (default :class:`SimConfig`) sets how far subjects differ."""
        c = config or SimConfig()
        noise = rng.uniform(*c.noise_uv, n_electrodes)
        bad = int(rng.integers(n_electrodes)) if rng.uniform() < c.bad_channel_prob else -1
        if bad >= 0:
            noise[bad] *= rng.uniform(*c.bad_channel_noise)
        style = rng.lognormal(0.0, c.style_sigma, len(MUSCLES))
        patterns = {g: np.clip(p * style + c.pattern_sd * rng.standard_normal(len(MUSCLES)) * (p > 0), 0.0, 1.0)
                    for g, p in GESTURE_PATTERNS.items()}
        return cls(
            rotation_deg=float((c.rotation_nominal_deg + rng.normal(0.0, c.rotation_sd_deg)) % 360.0),
            z_armband=float(np.clip(rng.normal(0.3, c.z_sd), 0.15, 0.45)),
            gains=rng.lognormal(0.0, c.gain_sigma, n_electrodes),
            noise_uv=noise,
            mains_hz=float(rng.choice([50.0, 60.0])),
            mains_uv=rng.uniform(*c.mains_uv) * rng.lognormal(0.0, 0.2, n_electrodes),
            style=style,
            muap_ms=float(rng.uniform(1.0, 1.6)),
            uv_per_unit=float(rng.uniform(20.0, 40.0)),
            fatigue_rate=float(rng.uniform(0.15, 0.35)),
            n_electrodes=n_electrodes,
            intensity=float(rng.uniform(*c.intensity)),
            rest_tone=float(rng.uniform(*c.rest_tone)),
            bad_channel=bad,
            patterns=patterns,
        )

    def electrode_angles(self) -> np.ndarray:
        """Forearm angle of each electrode: channel 0 at ``rotation_deg``, then 360/E apart."""
        return (self.rotation_deg + 360.0 * np.arange(self.n_electrodes) / self.n_electrodes) % 360.0


def distances_cm(angles_deg: np.ndarray, z: float | np.ndarray, muscles: tuple[Muscle, ...] = MUSCLES) -> np.ndarray:
    """Distance (cm) from each electrode on the skin to each muscle source, ``(E, M)``."""
    a = np.deg2rad(np.asarray(angles_deg, float))[:, None]
    ze = np.broadcast_to(np.asarray(z, float), a.shape[:1])[:, None] * FOREARM_LENGTH_CM
    ma = np.deg2rad([m.angle_deg for m in muscles])[None, :]
    mr = FOREARM_RADIUS_CM - np.array([m.depth_cm for m in muscles])[None, :]
    mz = np.array([m.z for m in muscles])[None, :] * FOREARM_LENGTH_CM
    dx = FOREARM_RADIUS_CM * np.cos(a) - mr * np.cos(ma)
    dy = FOREARM_RADIUS_CM * np.sin(a) - mr * np.sin(ma)
    return np.sqrt(dx**2 + dy**2 + (ze - mz) ** 2)


def volume_conduction(dist_cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain ``1 / (1 + (d / d0)^2)`` and wide-MUAP share (0 near .. 1 far) per electrode and muscle."""
    gain = 1.0 / (1.0 + (dist_cm / D0_CM) ** 2)
    wide = np.clip((dist_cm - 0.5) / 5.0, 0.0, 1.0)
    return gain, wide


def muap(fs: float, half_width_ms: float) -> np.ndarray:
    """Biphasic MUAP: first derivative of a Gaussian of the given half width, unit peak."""
    sigma = half_width_ms / 1000.0 * fs
    n = int(np.ceil(5 * sigma))
    t = np.arange(-n, n + 1, dtype=float)
    h = -t * np.exp(-0.5 * (t / max(sigma, 0.3)) ** 2)
    return h / np.abs(h).max()


def activation_envelope(n: int, fs: float, level: float, rng: np.random.Generator, *, delay_s: float,
                        ramp_s: float, hold_s: float, release_s: float) -> np.ndarray:
    """``(n,)`` 0..level: wait ``delay_s``, raised-cosine ramp, hold (slow 1-3 Hz fluctuation), release."""
    t = np.arange(n) / fs
    t0, t1 = delay_s, delay_s + ramp_s
    t2, t3 = t1 + hold_s, t1 + hold_s + release_s
    env = np.zeros(n)
    up = (t >= t0) & (t < t1)
    env[up] = 0.5 - 0.5 * np.cos(np.pi * (t[up] - t0) / ramp_s)
    env[(t >= t1) & (t < t2)] = 1.0
    down = (t >= t2) & (t < t3)
    env[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - t2) / release_s)
    f = rng.uniform(1.0, 3.0)
    wobble = 1.0 + 0.06 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return level * env * wobble


def spike_trains(activation: np.ndarray, fs: float, pools: MotorUnitPools, rng: np.random.Generator,
                 rate_fs: float = 100.0) -> np.ndarray:
    """Per muscle, the sum over its motor units of amplitude-weighted impulses at their firing times.

    ``activation`` is ``(M, T)``; returns ``(M, T)``. Firing rates are integrated on a coarse grid
    (``rate_fs``; activation is slow) and spike times found where the integrated rate crosses
    gamma-distributed targets, so the cost is set by the number of spikes, not of samples.
    """
    n_mus, t_len = activation.shape
    step = max(int(round(fs / rate_fs)), 1)
    coarse = activation[:, ::step]  # (M, Tc)
    tc = np.arange(coarse.shape[1]) * step  # sample index of each coarse point
    out = np.zeros((n_mus, t_len))
    shape = 1.0 / pools.isi_cv**2
    for m in range(n_mus):
        thr = pools.thresholds[m][:, None]  # (U, 1)
        a = coarse[m][None, :]
        span = np.maximum(pools.peak_rates[m][:, None] - pools.min_rate, 0.0)
        rate = np.where(a >= thr, pools.min_rate + span * np.clip((a - thr) / np.maximum(1.0 - thr, 1e-3), 0, 1), 0.0)
        phase = np.concatenate([np.zeros((rate.shape[0], 1)), np.cumsum(rate, axis=1) * (step / fs)], axis=1)[:, :-1]
        total = phase[:, -1]
        k = int(np.ceil(total.max() * 1.3 + 5))
        if total.max() <= 0:
            continue
        targets = np.cumsum(rng.gamma(shape, 1.0 / shape, (len(total), k)), axis=1)
        targets += rng.uniform(0.0, 1.0, (len(total), 1))  # random phase of each unit's first spike
        idx_all, w_all = [], []
        for u in np.flatnonzero(total > 0):
            tg = targets[u][targets[u] < total[u]]
            if tg.size == 0:
                continue
            pos = np.interp(tg, phase[u], tc)  # sample time of each crossing (phase is non-decreasing)
            idx_all.append(np.clip(np.round(pos).astype(np.int64), 0, t_len - 1))
            w_all.append(np.full(tg.size, pools.amplitudes[m, u]))
        if idx_all:
            out[m] = np.bincount(np.concatenate(idx_all), weights=np.concatenate(w_all), minlength=t_len)
    return out


def emg_from_activation(activation: np.ndarray, fs: float, subject: Subject, pools: MotorUnitPools,
                        rng: np.random.Generator, *, fatigue: np.ndarray | None = None,
                        include_noise: bool = True) -> np.ndarray:
    """Electrode signals ``(E, T)`` in uV from muscle activation ``(M, T)``.

    ``fatigue`` ``(M, T)`` in [0, 1) widens the MUAPs and raises their amplitude (see module docs).
    """
    n_m, t_len = activation.shape
    trains = spike_trains(activation, fs, pools, rng)
    narrow = muap(fs, subject.muap_ms)
    wide = muap(fs, subject.muap_ms * 2.2)
    y_n = sps.oaconvolve(trains, narrow[None, :], mode="same", axes=1)
    y_w = sps.oaconvolve(trains, wide[None, :], mode="same", axes=1)
    # fatigue: conduction slows -> every MUAP widens (mix toward the wide shape), amplitude grows
    fat = np.zeros((n_m, t_len)) if fatigue is None else fatigue
    dist = distances_cm(subject.electrode_angles(), subject.z_armband)
    gain, wide_share = volume_conduction(dist)  # (E, M)
    gain = gain * subject.gains[:, None] * subject.uv_per_unit
    # per electrode e and muscle m: g_em * amp_m * ((1 - b_em) y_n + b_em y_w), with
    # b_em = w_em + f_m (1 - w_em): expanded into three (E, M) @ (M, T) products
    amp = 1.0 + 0.5 * fat
    diff = y_w - y_n
    out = (gain @ (amp * y_n) + (gain * wide_share) @ (amp * diff)
           + (gain * (1.0 - wide_share)) @ (amp * fat * diff))
    if include_noise:
        out += recording_noise(t_len, fs, subject, rng)
    return out


def recording_noise(t_len: int, fs: float, subject: Subject, rng: np.random.Generator) -> np.ndarray:
    """Band-limited (10 Hz .. 0.45 fs) skin/amplifier noise plus mains at f and 3f, ``(E, T)`` uV."""
    e = subject.n_electrodes
    sos = sps.butter(2, [10.0, 0.45 * fs], btype="bandpass", fs=fs, output="sos")
    noise = sps.sosfilt(sos, rng.standard_normal((e, t_len)), axis=1)
    noise *= (subject.noise_uv / np.maximum(noise.std(axis=1), 1e-12))[:, None]
    t = np.arange(t_len) / fs
    phase = rng.uniform(0, 2 * np.pi, e)[:, None]
    mains = np.sin(2 * np.pi * subject.mains_hz * t[None, :] + phase)
    if 3 * subject.mains_hz < fs / 2:
        mains += 0.3 * np.sin(2 * np.pi * 3 * subject.mains_hz * t[None, :] + 3 * phase)
    return noise + subject.mains_uv[:, None] * mains


def fatigue_state(activation: np.ndarray, fs: float, rate: float) -> np.ndarray:
    """``(M, T)`` fatigue in [0, 0.5): grows with each muscle's accumulated activation (recovers never)."""
    acc = np.cumsum(activation, axis=1) / fs  # activation-seconds
    return 0.5 * (1.0 - np.exp(-rate * acc / 4.0))
