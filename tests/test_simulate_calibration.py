"""The simulator's calibration against real EMG (docs/simulator.md): its sessions are about as hard as
the real corpora measured by benchmarks/bench_simulator.py, not 10^4 times cleaner."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from aemg.simulate import DEFAULT_GESTURES, simulate_dataset
from aemg.simulate.config import CLEAN, SimConfig
from aemg.simulate.physiology import GESTURE_PATTERNS, Subject
from aemg.simulate.writer import simulate_subject

# The real range (docs/simulator.md): per-session medians of contraction / rest level of the token
# detector's floor-normalised TKEO envelope span about 6-170 over Côté-Allard, 3DC, UCI and CIIL.
REAL_RATIO = (6.0, 170.0)


def _ratio(config: SimConfig, seed: int) -> float:
    """Median contraction / median rest level (detector envelope / session floor) of one simulated subject at 200 Hz."""
    from aemg.signal.resample import resample_array
    from aemg.tokens.energy import EnergyEnvelope, floor_from_samples, floor_samples

    emg, rows, _ = simulate_subject(np.random.default_rng(seed), list(DEFAULT_GESTURES), 2, 1000.0, config=config)
    x = resample_array(emg, 1000.0, 200.0)
    stage = EnergyEnvelope(200.0, x.shape[0])
    env = stage.process(x)[1]
    floor = floor_from_samples(floor_samples(env, 0, 200.0, stage.warmup), 10.0)
    level = np.sort(env / floor[:, None], axis=0)[x.shape[0] // 2]
    gest = [np.median(level[r["start"] // 5:r["stop"] // 5]) for r in rows if r["gesture"] != "rest"]
    rest = [np.median(level[r["start"] // 5:r["stop"] // 5]) for r in rows if r["gesture"] == "rest"]
    return float(np.median(gest) / np.median(rest))


def test_contraction_to_rest_ratio_in_the_real_range_and_far_below_the_clean_model():
    calibrated = [_ratio(SimConfig(), s) for s in (0, 1)]
    assert all(REAL_RATIO[0] < r < REAL_RATIO[1] for r in calibrated), calibrated
    clean = _ratio(CLEAN, 0)
    assert clean > 10 * max(calibrated), (clean, calibrated)


def test_subjects_differ_by_rotation_gains_and_templates_as_configured():
    cfg = SimConfig()
    rng = np.random.default_rng(7)
    subs = [Subject.draw(rng, config=cfg) for _ in range(300)]
    rot = np.array([((s.rotation_deg - cfg.rotation_nominal_deg + 180.0) % 360.0) - 180.0 for s in subs])
    assert abs(rot.std() - cfg.rotation_sd_deg) < 0.15 * cfg.rotation_sd_deg
    gains = np.log(np.array([s.gains for s in subs]))
    assert abs(gains.std() - cfg.gain_sigma) < 0.1 * cfg.gain_sigma
    bad = np.mean([s.bad_channel >= 0 for s in subs])
    assert abs(bad - cfg.bad_channel_prob) < 0.08
    worst = [s.noise_uv[s.bad_channel] / np.median(s.noise_uv) for s in subs if s.bad_channel >= 0]
    assert min(worst) > 1.5
    lo, hi = cfg.intensity
    assert all(lo <= s.intensity <= hi for s in subs)
    # every subject has its own templates; rest stays silent, a gesture's prime mover stays active
    a, b = subs[0].patterns["hand_close"], subs[1].patterns["hand_close"]
    assert not np.allclose(a, b) and np.all(a >= 0) and np.all(a <= 1)
    assert all(s.patterns["rest"].sum() == 0 for s in subs)
    prime = int(np.argmax(GESTURE_PATTERNS["hand_close"]))
    assert np.mean([s.patterns["hand_close"][prime] > 0.2 for s in subs]) > 0.9
    # the clean model: nearly uniform rotation, no bad channel
    clean = [Subject.draw(rng, config=CLEAN) for _ in range(100)]
    assert all(s.bad_channel == -1 for s in clean)


def test_config_is_recorded_and_changes_the_signal(tmp_path):
    kw = dict(n_subjects=1, reps=1, gestures=("rest", "hand_close"), progress=False, seed=2)
    simulate_dataset(tmp_path / "a", **kw)
    simulate_dataset(tmp_path / "b", config=dataclasses.replace(SimConfig(), noise_uv=(40.0, 40.0)), **kw)
    meta_a = json.loads((tmp_path / "a" / "simulation.json").read_text())
    meta_b = json.loads((tmp_path / "b" / "simulation.json").read_text())
    assert meta_a["config"]["noise_uv"] == list(SimConfig().noise_uv) and meta_b["config"]["noise_uv"] == [40.0, 40.0]
    assert {"intensity", "rest_tone", "bad_channel"} <= set(meta_a["subjects"][0])
    rest_a = np.load(tmp_path / "a" / "S01" / "t000_rest.npy")
    rest_b = np.load(tmp_path / "b" / "S01" / "t000_rest.npy")
    assert rest_b.std() > 1.3 * rest_a.std()
    with pytest.raises(ValueError, match="intensity"):
        SimConfig(intensity=(0.9, 0.2))


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """The demo's evaluation group: 4 simulated subjects, seed 0, imported at 200 Hz."""
    from aemg.corpus import Corpus, import_manifest

    root = tmp_path_factory.mktemp("sim4")
    simulate_dataset(root / "sim", n_subjects=4, seed=0, progress=False)
    import_manifest(root / "sim", root / "corpus", progress=False)
    return Corpus(root / "corpus")


def test_lda_td_loso_clearly_below_within_subject(demo_corpus):
    from aemg.evaluate.baselines import lda_td
    from aemg.evaluate.data import SignalSource
    from aemg.evaluate.folds import loso_folds, within_folds
    from aemg.evaluate.run import run_folds

    src = SignalSource(demo_corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loso = np.mean([r.accuracy for r in run_folds(src, loso_folds(demo_corpus.trials), {"lda": lda_td}, "session")])
        within = np.mean([r.accuracy for r in run_folds(src, within_folds(demo_corpus.trials), {"lda": lda_td},
                                                         "session")])
    chance = 1.0 / len(DEFAULT_GESTURES)
    assert within > 0.9, within
    assert chance + 0.2 < loso < within - 0.1, (loso, within)  # a cross-subject gap like the real data's


def test_demo_passes_a_cheaper_finetuning_config_to_evaluate(capsys):
    """scripts/demo's ``aemg evaluate --set finetune.epochs=N``: applied to the encoder methods only,
    and a bad key or value is a one-line error naming it."""
    from pathlib import Path

    from aemg.cli import main
    from aemg.cli.evaluate import method_configs
    from aemg.errors import OptionError

    demo = (Path(__file__).resolve().parents[1] / "scripts" / "demo").read_text()
    assert "--methods aemg-finetune,lda-td" in demo and "--set finetune.epochs=" in demo
    assert method_configs(["lda-td", "aemg-finetune"], []) == {}
    with pytest.raises(OptionError, match="finetune.FIELD=VALUE"):
        method_configs([], ["stage1.lr=1"])
    with pytest.raises(OptionError, match="a field of finetune"):
        method_configs([], ["finetune.epoch=2"])
    with pytest.raises(OptionError, match="whole number"):
        method_configs([], ["finetune.epochs=two"])
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "finetune.epochs=2" in capsys.readouterr().out


def test_set_rebuilds_encoder_methods_with_the_given_config(monkeypatch):
    from pathlib import Path

    import aemg.evaluate.encoder_methods as em
    from aemg.cli.evaluate import method_configs
    from aemg.evaluate.registry import method_factories

    monkeypatch.setattr(em, "run_trial_tokens", lambda run, corpus: None)  # no corpus needed to build factories
    names = ["aemg-finetune", "scratch", "aemg-probe", "aemg-windows", "lda-td"]
    cfgs = method_configs(names, ["finetune.epochs=2", "finetune.lr_head=5e-3", "probe.C=0.5"])
    assert set(cfgs) == {"aemg-finetune", "scratch", "aemg-probe", "aemg-windows"}  # ablations too
    assert cfgs["aemg-windows"].epochs == 2
    out = method_factories(names[:3] + ["lda-td"], run_dir=Path("run"), configs=cfgs)
    ft, sc, pr = out["aemg-finetune"](), out["scratch"](), out["aemg-probe"]()
    assert ft.cfg.epochs == 2 and ft.cfg.lr_head == 5e-3 and sc.cfg.epochs == 2
    assert ft.cfg.max_tokens == em.FinetuneConfig().max_tokens  # the rest stays at the defaults
    assert pr.cfg.C == 0.5
