"""Sample-and-hold detection and rebuilding on synthetic loggers (the real UCI case: test_readers_real.py)."""

from __future__ import annotations

import numpy as np
import pytest

from aemg.layouts import get_layout
from aemg.recording import Recording
from aemg.signal.holds import detect_sample_and_hold, rebuild_sample_and_hold, repeat_fraction


def _rec(signal: np.ndarray, fs: float, **kw) -> Recording:
    return Recording(signal=signal.astype(np.float32), fs=fs, units="myo",
                     electrodes=get_layout(f"unknown{signal.shape[0]}").electrodes, dataset="test",
                     subject="test/a", session="s", **kw)


def _true_signal(n: int, n_ch: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth-ish multi-channel signal with no repeated samples, integer-valued like Myo counts."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.stack([40 * np.sin(2 * np.pi * t / (17 + 5 * c)) + rng.normal(0, 3, n) for c in range(n_ch)])
    return x


def test_detect_is_false_for_ordinary_emg_and_true_for_held_rows():
    x = _true_signal(1000)
    assert not detect_sample_and_hold(_rec(x, 200.0))
    held = np.repeat(x, 5, axis=1)  # a 200 Hz signal logged at 1 kHz
    rec = _rec(held, 1000.0)
    assert repeat_fraction(rec.signal) == pytest.approx(0.8, abs=0.001)
    assert detect_sample_and_hold(rec)
    assert not detect_sample_and_hold(_rec(held[:, :2], 1000.0))


def test_rebuild_of_a_plain_hold_recovers_the_samples_and_maps_labels():
    x = np.round(_true_signal(400))
    labels = np.repeat(np.r_[np.full(100, -1), np.zeros(200), np.full(100, 1)], 5).astype(np.int32)
    reps = np.where(labels >= 0, 0, -1).astype(np.int32)
    rec = _rec(np.repeat(x, 5, axis=1), 1000.0, labels=labels, repetition=reps, label_names=("a", "b"),
               gesture_keys=("rest", "hand_close"), tracks={"extra": np.arange(2000)}, attrs={"fs_original": 200.0})
    out = rebuild_sample_and_hold(rec)  # fs_true from attrs["fs_original"]
    assert out.fs == 200.0 and out.attrs["fs_logged"] == 1000.0
    assert out.processing == ("rebuild_sample_and_hold(fs_true=200, fs_logged=1000, changes=199.6/s, linear)",)
    # grid spans the logged time (0 .. 1999 ms): 400 samples at 0, 5, ..., 1995 ms
    assert out.n_samples == 400 and np.allclose(out.tracks["time_ms"], np.arange(400) * 5.0)
    assert np.array_equal(out.signal, x.astype(np.float32))
    assert np.array_equal(out.labels, labels[::5]) and np.array_equal(out.repetition, reps[::5])
    assert np.array_equal(out.tracks["extra"], np.arange(0, 2000, 5))
    assert [(b - a) for a, b, _, _ in out.trials()] == [200, 100]
    assert not detect_sample_and_hold(out)


def test_rebuild_places_the_first_sample_of_a_packet_one_period_early():
    """Myo-like logger: packets of 2 samples every 10 ms; the first is visible for 1 row, the second held."""
    true = np.round(_true_signal(400, seed=1))  # 200 Hz truth, 2 s
    rows, times = [], []
    for p in range(200):  # packet p carries true samples 2p, 2p+1 and arrives at 10p + 5 ms
        t_arr = 10 * p + 5
        rows.append(true[:, 2 * p])
        times.append(t_arr)
        for k in range(1, 10):  # then the second sample is held for 9 rows
            rows.append(true[:, 2 * p + 1])
            times.append(t_arr + k)
    logged = np.stack(rows, axis=1)
    rec = _rec(logged, 1000.0, tracks={"time_ms": np.asarray(times, dtype=np.float64)})
    assert detect_sample_and_hold(rec)
    out = rebuild_sample_and_hold(rec, fs_true=200.0)
    # true sample j sits at t0 - 4 + 5j ms once the first of each packet moves one period (5 ms) back, so
    # grid sample k (at t0 + 5k) lies 4/5 of the way from true sample k to k+1
    assert out.n_samples == 400  # rows span 5 .. 2004 ms
    k = np.arange(1, 398)
    assert np.allclose(out.signal[:, k], 0.2 * true[:, k] + 0.8 * true[:, k + 1], atol=1e-4)
    naive = np.allclose(np.interp(out.tracks["time_ms"], times, logged[0]), out.signal[0], atol=1.0)
    assert not naive  # holding or interpolating the logged rows as they stand would not give this
    assert repeat_fraction(out.signal) < 0.01


def test_rebuild_estimates_the_rate_from_changes_without_device_facts():
    x = _true_signal(300)
    rec = _rec(np.repeat(x, 4, axis=1), 1000.0)  # a 250 Hz stream held at 1 kHz, no time track
    out = rebuild_sample_and_hold(rec)
    assert out.fs == pytest.approx(250.0, rel=0.01)
    assert out.duration_s == pytest.approx(rec.duration_s, abs=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        rebuild_sample_and_hold(_rec(x[:, :1], 1000.0))
    with pytest.raises(ValueError, match="strictly increasing"):
        rebuild_sample_and_hold(_rec(x[:, :3], 1000.0, tracks={"time_ms": np.array([0.0, 2.0, 2.0])}))
