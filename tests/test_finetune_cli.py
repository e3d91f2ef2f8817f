"""``aemg finetune`` / ``aemg predict``: the model directory round-trips, its metadata matches the corpus, refusals.

One ``tiny`` pre-training (a few steps per stage) on Côté-Allard's pre-training subjects only; an
evaluation subject (another person, never seen by the run) is the new user fine-tuned on.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

from aemg.cli import main  # noqa: E402
from aemg.cli.finetune import finetune_config  # noqa: E402
from aemg.errors import DataFormatError, OptionError  # noqa: E402
from aemg.evaluate.data import SignalSource, fold_sets  # noqa: E402
from aemg.evaluate.encoder_methods import FinetuneMethod, trial_tokens  # noqa: E402
from aemg.evaluate.folds import Fold, calibration_split  # noqa: E402
from aemg.evaluate.model_dir import read_model  # noqa: E402
from aemg.tokens.tokenizer import tokenize_session  # noqa: E402
from aemg.train import checkpoint as ckpt  # noqa: E402

QUIET = ["--log-level", "ERROR"]
USER = "cote-allard/evaluation/Female0"
FAST = ["--set", "epochs=2", "--set", "max_tokens=64", "--set", "batch_size=4"]


@pytest.fixture(scope="module")
def tiny_run(cote_allard_tiny_run):
    """The session's tiny run on Côté-Allard's pre-training subjects only (conftest), with one torch thread
    for this module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield cote_allard_tiny_run
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_k1(tiny_run, corpus_cote_allard, tmp_path_factory):
    """``aemg finetune --reps 1`` of the new user: (model dir, the JSON it printed)."""
    out = tmp_path_factory.mktemp("ftm") / "model"
    stdout = _cli(["finetune", "--run", str(tiny_run), "--corpus", str(corpus_cote_allard.path), "--subject", USER,
                   "--reps", "1", "--out", str(out), "--json", *FAST])
    return out, json.loads(stdout)


def _cli(argv: list[str], code: int = 0) -> str:
    """Run ``aemg`` in this process; returns stdout (asserting the exit status)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(QUIET + argv)
    assert rc == code, err.getvalue()
    return out.getvalue() if code == 0 else err.getvalue()


def _first_reps(trials, subject: str) -> set[int]:
    """Independently of the code under test: per class, the trial with the smallest repetition index."""
    own = trials[trials["subject"] == subject].sort_values(["repetition", "trial"])
    return {int(t) for t in own.groupby("gesture_key")["trial"].first()}


def _predict_json(model: Path, corpus, *extra: str) -> dict:
    stdout = _cli(["predict", str(model), "--corpus", str(corpus.path), "--json", *extra])
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1  # exactly one JSON object on stdout
    return json.loads(lines[0])


# ------------------------------------------------------------------ the model directory


@pytest.mark.slow
def test_finetune_then_predict_round_trips_bit_for_bit(model_k1, tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    out, printed = model_k1
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "probe.pt", "run.json", "weights.pt"]
    assert not list(out.parent.glob(".model.*"))  # no temporary folder left beside it
    info = read_model(out).info
    # the same fine-tuning in memory: the low-label protocol's TrialSet and FinetuneMethod.fit
    ids = tuple(sorted(info.train_trials))
    fold = Fold(name="mem", protocol="loso", train_trials=ids, test_trials=tuple(int(t) for t in
                c.trials.loc[c.trials["subject"] == USER, "trial"]), train_subjects=(USER,), test_subjects=(USER,),
                calibration_trials=ids, k=1)
    train, test = fold_sets(SignalSource(c), fold, "session", info.classes)
    mem = FinetuneMethod(tiny_run, trial_tokens(c), finetune_config(FAST[1::2], None), pretrained=True)
    mem.fit(train)
    assert printed["losses"] == mem.losses and printed["n_trials"] == len(train) == len(ids)
    for name, net in (("weights.pt", mem.model), ("probe.pt", mem.probe_net)):  # plain state dicts
        saved = torch.load(out / name, map_location="cpu", weights_only=True)
        state = net.state_dict()
        assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in state)
    res = _predict_json(out, c, "--subject", USER)
    y_mem = mem.predict(test).y_pred
    by_trial = {r["trial"]: r["predicted"] for r in res["trials"]}
    assert [by_trial[int(t)] for t in test.trial_ids] == [info.classes[int(y)] for y in y_mem]
    assert res["n_trials"] == len(test) == 84 and res["accuracy"] == pytest.approx(float(np.mean(y_mem == test.y)))
    # the loaded network gives the very same logits
    from aemg.evaluate.model_dir import load_model

    loaded = load_model(out, c, [USER])
    rows = trial_tokens(c).rows(test.trials.iloc[:8])
    batch = trial_tokens(c).batches(rows, 8, mem.cfg.max_tokens, amp=mem.amp)[0]
    with torch.no_grad():
        assert torch.equal(loaded.model(batch), mem.model(batch))
        assert torch.equal(loaded.probe_net(batch), mem.probe_net(batch))
    tuned = {r["trial"] for r in res["trials"] if r["fine_tuned_on"]}
    assert tuned == set(ids) and res["not_fine_tuned_on"]["n_trials"] == 84 - len(ids)


@pytest.mark.slow
def test_reps_uses_exactly_the_first_repetition_per_class(model_k1, corpus_cote_allard):
    c = corpus_cote_allard
    info = read_model(model_k1[0]).info
    expected = _first_reps(c.trials, USER)
    assert set(info.train_trials) == expected and len(expected) == 7  # one per class
    assert set(info.train_trials) == set(calibration_split(c.trials, USER, [1])[1][0]["trial"])
    assert info.reps == 1 and info.subjects == (USER,)
    assert set(c.trials.loc[c.trials["trial"].isin(info.train_trials), "repetition"]) == {0}


@pytest.mark.slow
def test_metadata_matches_the_corpus(model_k1, tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    info = read_model(model_k1[0]).info
    own = c.trials[c.trials["subject"] == USER]
    assert info.classes == tuple(sorted(set(own["gesture_key"])))
    names = dict(zip(own["gesture_key"], own["label_name"]))
    assert info.label_names == tuple(names[k] for k in info.classes) and "rest" in info.classes
    ts = trial_tokens(c).ts
    assert info.token_settings == ts.settings.to_meta() and info.token_settings["fs"] == c.fs == 200.0
    assert info.n_features == ts.n_features and info.n_channels == 8 and info.layout == "myo8"
    rec = c.load(c.recordings.loc[c.recordings["subject"] == USER, "recording_id"].iloc[0])
    assert list(info.electrodes) == [e.to_dict() for e in rec.electrodes]
    sessions = list(dict.fromkeys(c.recordings.loc[c.recordings["subject"] == USER, "session"]))
    assert [s.session for s in info.calibration] == sessions and len(sessions) == 3
    assert [s.trained for s in info.calibration] == [s == "training0" for s in sessions]
    for s in info.calibration:
        assert np.allclose(s.scale, c.scale(USER, s.session), rtol=0, atol=0)
        assert info.calibration_of(USER, s.session) is s
    # the floor is the tokenizer's own, for the session it was computed on
    recs = list(c.iter_recordings(subject=USER, session="Test0"))
    floor = tokenize_session(recs, ts.settings.config).floor
    assert np.allclose(info.calibration_of(USER, "Test0").noise_floor, floor, rtol=1e-6, atol=0)
    assert not np.allclose(info.calibration_of(USER, "training0").noise_floor, floor, rtol=1e-3)
    with pytest.raises(KeyError, match="Female0/training0"):
        info.calibration_of(USER, "nope")
    assert info.run["hash"] == hashlib.sha256((tiny_run / "summary.json").read_bytes()).hexdigest()
    assert info.run["path"] == str(tiny_run.resolve()) and info.corpus["hash"] == c.hash
    assert info.finetune_config["epochs"] == 2 and info.finetune_config["max_tokens"] == 64
    assert info.encoder_config["d_model"] == 32 and info.fallback in range(len(info.classes))
    assert json.loads((model_k1[0] / "run.json").read_text()) == json.loads((tiny_run / "run.json").read_text())


# ------------------------------------------------------------------ refusals


@pytest.mark.slow
def test_existing_model_dir_refused_unless_overwrite(model_k1, tiny_run, corpus_cote_allard, tmp_path):
    c = corpus_cote_allard
    out = tmp_path / "m"
    shutil.copytree(model_k1[0], out)
    before = (out / "model.json").read_text()
    base = ["finetune", "--run", str(tiny_run), "--corpus", str(c.path), "--subject", USER, "--out", str(out),
            "--set", "epochs=1", "--set", "max_tokens=32"]
    err = _cli([*base, "--reps", "2"], code=1)
    assert str(out) in err and "--overwrite" in err and err.count("\n") == 1
    assert (out / "model.json").read_text() == before
    import errno

    from aemg.train import checkpoint

    def full(obj, path):  # the disk fills while the weights are written: the old model must stay
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "atomic_torch_save", full)
        err = _cli([*base, "--reps", "2", "--overwrite"], code=1)
    assert "no space left" in err.lower() and err.count("\n") == 1
    assert (out / "model.json").read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    for left in (".m.building-dead", ".m.old-dead"):  # what a killed save leaves beside the model
        (tmp_path / left).mkdir()
        (tmp_path / left / "model.json").write_text("{}")
    _cli([*base, "--reps", "2", "--overwrite"])
    info = read_model(out).info
    assert info.reps == 2 and len(info.train_trials) == 14 and (out / "model.json").read_text() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no .building / .old folder left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    err = _cli([*base[:-4], "--out", str(mine), "--overwrite"], code=1)
    assert "never deletes" in err and (mine / "notes.txt").read_text() == "keep"


@pytest.mark.slow
def test_unknown_subject_lists_the_known_ones(model_k1, tiny_run, corpus_cote_allard, tmp_path):
    c = corpus_cote_allard
    for argv in (["finetune", "--run", str(tiny_run), "--corpus", str(c.path), "--out", str(tmp_path / "x")],
                 ["predict", str(model_k1[0]), "--corpus", str(c.path)]):
        err = _cli([*argv, "--subject", "cote-allard/evaluation/Nobody"], code=1)
        assert "Nobody" in err and USER in err and "cote-allard/pretraining/Male0" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_mismatching_corpus_and_damaged_model_dir(model_k1, corpus_cote_allard, tmp_path):
    c = corpus_cote_allard

    def variant(name: str, edit) -> Path:
        d = tmp_path / name
        shutil.copytree(model_k1[0], d)
        meta = json.loads((d / "model.json").read_text())
        edit(meta)
        (d / "model.json").write_text(json.dumps(meta))
        return d

    def features(m):
        m["token_settings"]["feature_names"] = m["token_settings"]["feature_names"][:-1]
        m["n_features"] -= 1

    def channels(m):
        m["n_channels"], m["layout"] = 16, "ring16"

    def detector(m):
        m["token_settings"]["config"]["on"] = 7.0

    def classes(m):
        m["classes"] = ["relax" if k == "rest" else k for k in m["classes"]]

    for name, edit, words in (("k", classes, ["model's classes", "relax", "found rest"]),
                              ("f", features, ["8 token features", "found 9", "active_frac"]),
                              ("c", channels, ["16 channels in layout ring16", "found 8 channels in layout myo8"]),
                              ("d", detector, ["config.on=7.0", "found config.on=5.0"])):
        d = variant(name, edit)
        err = _cli(["predict", str(d), "--corpus", str(c.path), "--subject", USER], code=1)
        assert str(d / "model.json") in err and str(c.path) in err and all(w in err for w in words), err
    for missing in ("weights.pt", "model.json", "run.json"):
        d = tmp_path / f"no-{missing}"
        shutil.copytree(model_k1[0], d)
        (d / missing).unlink()
        err = _cli(["predict", str(d), "--corpus", str(c.path), "--subject", USER], code=1)
        assert str(d / missing) in err and err.count("\n") == 1
    d = tmp_path / "bad-weights"
    shutil.copytree(model_k1[0], d)
    torch.save(torch.zeros(2), d / "weights.pt")  # a tensor, not a state dict
    with pytest.raises(DataFormatError, match="weights.pt"):
        read_model(d)


@pytest.mark.slow
def test_predict_refuses_a_subject_the_pretraining_saw(model_k1, corpus_cote_allard):
    err = _cli(["predict", str(model_k1[0]), "--corpus", str(corpus_cote_allard.path),
                "--subject", "cote-allard/pretraining/Male0"], code=1)
    assert "pretraining/Male0" in err and "never saw" in err


@pytest.mark.slow
def test_predict_table_and_json(model_k1, corpus_cote_allard):
    c = corpus_cote_allard
    text = _cli(["predict", str(model_k1[0]), "--corpus", str(c.path), "--subject", USER])
    assert text.startswith(f"{model_k1[0]} on {c.path}") and "accuracy" in text
    assert len(text.splitlines()) == 84 + 3 and text.count(" yes\n") + text.endswith(" yes") == 7
    res = _predict_json(model_k1[0], c, "--subject", USER)
    assert set(res) >= {"model", "corpus", "subjects", "classes", "n_trials", "accuracy", "balanced_accuracy",
                        "macro_f1", "not_fine_tuned_on", "trials"}
    assert len(res["trials"]) == 84 and {r["subject"] for r in res["trials"]} == {USER}
    assert all(r["true"] in res["classes"] and r["predicted"] in res["classes"] for r in res["trials"])


# ------------------------------------------------------------------ options and the run lookup


def test_finetune_config_overrides():
    cfg = finetune_config(["epochs=3", "lr_head=5e-3"], None)
    assert cfg.epochs == 3 and cfg.lr_head == 5e-3 and isinstance(cfg.epochs, int)
    assert finetune_config([], 7).epochs == 7
    assert finetune_config(["amp_head=false"], None).amp_head is False  # not bool("false")
    assert finetune_config(["head_init=probe", "probe_C=0.1"], None).probe_C == 0.1
    with pytest.raises(OptionError, match="epochs, batch_size"):
        finetune_config(["epoch=3"], None)
    with pytest.raises(OptionError, match="epochs a int"):
        finetune_config(["epochs=three"], None)


def test_resolve_run_by_path_or_name(tmp_path, monkeypatch):
    from aemg.errors import OptionError

    run = tmp_path / "myrun"
    run.mkdir()
    assert ckpt.resolve_run(run) == run and ckpt.resolve_run(str(run)) == run
    store = tmp_path / "pretrained"
    (store / "small-all").mkdir(parents=True)
    (store / "small-all" / "encoder.pt").write_bytes(b"")
    monkeypatch.setattr(ckpt, "pretrained_dir", lambda: store)
    assert ckpt.resolve_run("small-all") == store / "small-all"
    with pytest.raises(OptionError, match="small-all") as e:
        ckpt.resolve_run("nope")
    assert "nope" in str(e.value) and str(store) in str(e.value)


def test_reps_must_be_positive(tmp_path):
    err = _cli(["finetune", "--run", str(tmp_path), "--corpus", str(tmp_path), "--out", str(tmp_path / "m"),
                "--reps", "0"], code=1)
    assert "--reps 0" in err and not (tmp_path / "m").exists()


@pytest.mark.slow
def test_the_blended_probe_travels_and_older_models_load_without_it(model_k1, corpus_cote_allard, tmp_path):
    """A model fine-tuned with probe_blend > 0 holds probe.pt; without it the model is refused, naming the file; a
    model written before the blend (no probe_blend entry, no probe.pt) loads as the fine-tuned network alone."""
    from aemg.evaluate.model_dir import PROBE, load_model

    src = model_k1[0]
    info = json.loads((src / "model.json").read_text())
    assert info["finetune_config"]["probe_blend"] > 0 and (src / PROBE).is_file()
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / PROBE).unlink()
    err = _cli(["predict", str(broken), "--corpus", str(corpus_cote_allard.path), "--json"], code=1)
    assert str(broken / PROBE) in err and "probe_blend" in err
    foreign = tmp_path / "foreign"  # a state dict of another network
    shutil.copytree(src, foreign)
    torch.save({"head.weight": torch.zeros(2, 2)}, foreign / PROBE)
    with pytest.raises(DataFormatError, match="probe.pt") as e:
        load_model(foreign, corpus_cote_allard, [USER])
    assert str(foreign) in str(e.value)
    older = tmp_path / "older"
    shutil.copytree(broken, older)
    del info["finetune_config"]["probe_blend"]
    (older / "model.json").write_text(json.dumps(info))
    m = load_model(older, corpus_cote_allard, [USER])
    assert m.probe_net is None and m.cfg.probe_blend == 0.0
    res = _predict_json(older, corpus_cote_allard, "--subject", USER)
    assert res["n_trials"] == 84


@pytest.mark.slow
def test_predict_with_stdout_a_closed_pipe_exits_quietly(model_k1, corpus_cote_allard, capsys, monkeypatch):
    import os
    import sys

    from aemg.cli import EXIT_BROKEN_PIPE

    r, w = os.pipe()
    os.close(r)
    with open(w, "w", encoding="utf-8", closefd=True) as broken:
        monkeypatch.setattr(sys, "stdout", broken)
        rc = main(QUIET + ["predict", str(model_k1[0]), "--corpus", str(corpus_cote_allard.path), "--subject", USER])
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    assert rc == EXIT_BROKEN_PIPE and capsys.readouterr().err.strip() == ""


def test_others_trains_the_new_user_with_every_other_subject(tiny_run, corpus_cote_allard, tmp_path, monkeypatch):
    """``--others``: the new user's first repetition per class plus every other subject's labelled trials, the
    new user weighted as in the low-label folds (``TrialSet.test_subjects`` is the user); the model predicts the
    user; without ``--subject`` it is refused before any work."""
    import aemg.evaluate.encoder_methods as em

    c = corpus_cote_allard
    seen = []
    orig = em.FinetuneMethod.fit

    def spy(self, train):
        seen.append(train.test_subjects)
        return orig(self, train)

    monkeypatch.setattr(em.FinetuneMethod, "fit", spy)
    out = tmp_path / "model"
    got = json.loads(_cli(["finetune", "--run", str(tiny_run), "--corpus", str(c.path), "--subject", USER, "--reps",
                           "1", "--others", "--out", str(out), "--json", *FAST, "--set", "epochs=1"]))
    others = c.trials[c.trials["subject"] != USER]
    assert got["n_other_trials"] == len(others) and got["n_trials"] == len(others) + 7
    info = read_model(out).info
    assert set(info.train_trials) == _first_reps(c.trials, USER) | {int(t) for t in others["trial"]}
    assert seen == [(USER,)]
    res = _predict_json(out, c, "--subject", USER)
    assert 0.0 <= res["accuracy"] <= 1.0
    err = _cli(["finetune", "--run", str(tiny_run), "--corpus", str(c.path), "--others", "--out",
                str(tmp_path / "m2")], code=1)
    assert "--others" in err and not (tmp_path / "m2").exists()
