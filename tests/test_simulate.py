"""The simulator: determinism, physiology (spatial selectivity, size principle, fatigue), the written
layout read back by the generic reader, and the ``aemg simulate`` command."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from aemg.cli import main
from aemg.datasets.generic import read_manifest
from aemg.simulate import DEFAULT_GESTURES, SIMULATED_GESTURES, simulate_dataset
from aemg.simulate.config import CLEAN
from aemg.simulate.physiology import (
    GESTURE_PATTERNS,
    MUSCLE_INDEX,
    MUSCLES,
    MotorUnitPools,
    Subject,
    emg_from_activation,
    fatigue_state,
    spike_trains,
)
from aemg.simulate.writer import Protocol


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_different_seed_different(tmp_path):
    kw = dict(n_subjects=2, reps=1, gestures=("rest", "hand_close", "wrist_extension"), progress=False)
    simulate_dataset(tmp_path / "a", seed=3, **kw)
    simulate_dataset(tmp_path / "b", seed=3, **kw)
    simulate_dataset(tmp_path / "c", seed=4, **kw)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".npy"))


def test_default_run_is_small_and_reads_back(tmp_path):
    simulate_dataset(tmp_path / "sim", n_subjects=4, seed=0, progress=False)
    recs = list(read_manifest(tmp_path / "sim"))
    # the work done is bounded by the protocol: every row lasts within its drawn ranges (seconds at 1000 Hz)
    p = Protocol()
    move = (p.delay_s[0] + p.ramp_s[0] + p.hold_s[0] + p.release_s[0] + p.tail_s,
            p.delay_s[1] + p.ramp_s[1] + p.hold_s[1] + p.release_s[1] + p.tail_s)
    bounds = [p.rest_s if r.label_names[r.labels[0]] == "rest" else move for r in recs]
    assert all(lo * 1000 - 1 <= r.n_samples <= hi * 1000 + 1 for r, (lo, hi) in zip(recs, bounds)), \
        [r.n_samples for r in recs]
    motions = len(DEFAULT_GESTURES) - 1
    assert len(recs) == 4 * 3 * motions * 2  # subjects x reps x motions x (rest + gesture)
    assert sorted({r.subject for r in recs}) == [f"generic/sim/S0{k}" for k in range(1, 5)]
    r = recs[0]
    assert r.fs == 1000.0 and r.units == "uV" and r.n_channels == 8 and r.electrodes[0].layout == "myo8"
    assert r.label_names == DEFAULT_GESTURES and r.gesture_keys == DEFAULT_GESTURES
    trials = Counter((x.subject, x.label_names[lab]) for x in recs for _, _, lab, _ in x.trials())
    assert set(trials.values()) == {3 * motions, 3}  # rest before every motion; 3 reps of each motion
    reps = [x.repetition[0] for x in recs if x.subject.endswith("S01") and x.label_names[x.labels[0]] == "hand_close"]
    assert reps == [0, 1, 2]
    assert [x.order for x in recs if x.subject.endswith("S02")] == list(range(3 * motions * 2))
    meta = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert meta["seed"] == 0 and len(meta["subjects"]) == 4
    assert {s["mains_hz"] for s in meta["subjects"]} <= {50.0, 60.0}


def test_activation_raises_rms_most_on_electrodes_over_the_muscle():
    rng = np.random.default_rng(0)
    subj = Subject.draw(rng, config=CLEAN)  # the physiology alone: no bad channel, low noise
    subj.rotation_deg = 0.0  # channel k at 45 k degrees; extensor digitorum sits at 0 degrees
    pools = MotorUnitPools.build(len(MUSCLES), 100, rng)
    fs, n = 1000.0, 3000
    act = np.zeros((len(MUSCLES), n))
    act[MUSCLE_INDEX["extensor_digitorum"], n // 2:] = 0.5
    x = emg_from_activation(act, fs, subj, pools, rng)
    rest = np.sqrt((x[:, : n // 2] ** 2).mean(axis=1))
    active = np.sqrt((x[:, n // 2:] ** 2).mean(axis=1))
    gain = active / rest
    near, far = gain[0], gain[4]  # 0 deg (over the muscle) vs 180 deg (ventral side)
    assert near > 3.0 * far, gain
    assert gain[0] > max(gain[3], gain[4], gain[5])
    # a ventral muscle does the opposite
    act2 = np.zeros_like(act)
    act2[MUSCLE_INDEX["flexor_digitorum_superficialis"], n // 2:] = 0.5
    y = emg_from_activation(act2, fs, subj, pools, np.random.default_rng(1))
    g2 = np.sqrt((y[:, n // 2:] ** 2).mean(axis=1)) / np.sqrt((y[:, : n // 2] ** 2).mean(axis=1))
    assert g2[4] > 3.0 * g2[0], g2


def test_size_principle_more_activation_more_units_and_amplitude():
    rng = np.random.default_rng(2)
    pools = MotorUnitPools.build(1, 100, rng)
    fs, n = 1000.0, 5000
    trains = [spike_trains(np.full((1, n), a), fs, pools, np.random.default_rng(3))[0] for a in (0.1, 0.3, 0.6)]
    counts = [int((t > 0).sum()) for t in trains]
    mean_amp = [t[t > 0].mean() for t in trains]
    assert counts[0] < counts[1] < counts[2]
    assert mean_amp[0] < mean_amp[2]  # larger units join later
    assert spike_trains(np.zeros((1, n)), fs, pools, rng).sum() == 0


def test_fatigue_lowers_mean_frequency():
    rng = np.random.default_rng(4)
    subj = Subject.draw(rng)
    pools = MotorUnitPools.build(len(MUSCLES), 100, rng)
    fs, n = 1000.0, 4000
    act = np.tile(GESTURE_PATTERNS["hand_close"][:, None], (1, n))
    fresh = emg_from_activation(act, fs, subj, pools, np.random.default_rng(5), include_noise=False)
    tired = emg_from_activation(act, fs, subj, pools, np.random.default_rng(5), include_noise=False,
                                fatigue=np.full_like(act, 0.4))

    def mean_freq(x):
        spec = np.abs(np.fft.rfft(x, axis=1)) ** 2
        f = np.fft.rfftfreq(x.shape[1], 1 / fs)
        return float((spec * f).sum() / spec.sum())

    assert mean_freq(tired) < 0.9 * mean_freq(fresh)
    assert np.sqrt((tired**2).mean()) > np.sqrt((fresh**2).mean())
    f = fatigue_state(act, fs, 0.3)
    assert np.all(np.diff(f, axis=1) >= 0) and f.max() < 0.5


def test_gesture_lists_in_step():
    assert tuple(GESTURE_PATTERNS) == SIMULATED_GESTURES
    assert set(DEFAULT_GESTURES) <= set(SIMULATED_GESTURES) and len(SIMULATED_GESTURES) >= 7


def test_fs_200_and_unlabelled_rest(tmp_path):
    simulate_dataset(tmp_path / "s", n_subjects=1, reps=1, fs=200.0, gestures=("pronation", "supination"),
                     progress=False)
    recs = list(read_manifest(tmp_path / "s"))
    assert [r.fs for r in recs] == [200.0] * 4
    assert recs[0].label_names == ("pronation", "supination")
    assert np.all(recs[0].labels == -1) and np.all(recs[1].labels == 0)  # rest periods unlabelled
    assert 300 < recs[1].n_samples < 800  # ~2.5-3.9 s at 200 Hz


def test_cli_refuses_non_empty_out_and_overwrites_only_its_files(tmp_path, capsys):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--reps", "1", "--no-progress"]) == 1
    assert "not empty" in capsys.readouterr().err
    # --overwrite still refuses a folder that holds no previous simulation
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--overwrite", "--no-progress"]) == 1
    (out / "mine.txt").unlink()
    args = ["simulate", "--out", str(out), "--subjects", "1", "--reps", "1", "--seed", "5", "--no-progress",
            "--gestures", "rest,hand_open"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().endswith("manifest.csv")
    (out / "mine.txt").write_text("keep me")
    assert main(args) == 1
    assert main([*args[:-2], "--gestures", "rest,fist", "--overwrite"]) == 1  # unknown gesture: one-line error
    assert "unknown gestures" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert (out / "mine.txt").read_text() == "keep me"
    assert len(list(read_manifest(out))) == 2


def test_cli_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    for opt in ("--out", "--subjects", "--seed", "--overwrite", "--fs", "--gestures"):
        assert opt in text
