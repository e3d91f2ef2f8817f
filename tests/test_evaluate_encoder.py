"""Encoder methods (aemg-probe, aemg-finetune, scratch): fresh weights per fold, the leakage guard, LOSO on real data.

One ``tiny`` pre-training (20 steps per stage) on Côté-Allard's pre-training subjects only; the
evaluation subjects (other people) are the LOSO targets, so the run never saw them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

from aemg.errors import DataFormatError  # noqa: E402
from aemg.evaluate.data import SignalSource, fold_sets  # noqa: E402
from aemg.evaluate.encoder_methods import (  # noqa: E402
    ENCODER_METHODS,
    FinetuneConfig,
    FinetuneMethod,
    ProbeConfig,
    ProbeMethod,
    check_run_subjects,
    fallback_class,
    trial_mean,
    trial_tokens,
)
from aemg.evaluate.folds import loso_folds, subset  # noqa: E402
from aemg.evaluate.run import run_folds  # noqa: E402
from aemg.evaluate.spans import epoch_spans, partition_spans, tile_spans  # noqa: E402
from aemg.model import load_encoder  # noqa: E402
from conftest import tiny_pretraining  # noqa: E402

EVAL = "cote-allard/evaluation/"
FAST = FinetuneConfig(epochs=1, batch_size=16, max_tokens=64)


@pytest.fixture(scope="module")
def tiny_run(corpus_cote_allard, tmp_path_factory):
    """A tiny pre-training on the corpus's pre-training subjects only (module-scoped, one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_pretraining(corpus_cote_allard, tmp_path_factory.mktemp("enc") / "run", 20)
    torch.set_num_threads(before)


def _cfg(name: str) -> FinetuneConfig | None:
    return None if name == "aemg-probe" else FAST


def _eval_folds(corpus, n: int | None = None):
    folds = loso_folds(subset(corpus.trials, EVAL))
    return folds if n is None else folds[:n]


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_fresh_pretrained_weights_at_every_fold(tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    pre = {k: v.clone() for k, v in load_encoder(tiny_run).state_dict().items()}
    starts, methods = [], []

    def make(pretrained: bool):
        base = ENCODER_METHODS["aemg-finetune" if pretrained else "scratch"](run_dir=tiny_run, corpus=c, cfg=FAST)

        def factory():
            m = base()
            m.on_fit_start = lambda enc: starts.append({k: v.clone() for k, v in enc.state_dict().items()})
            methods.append(m)
            return m
        return factory

    folds = _eval_folds(c, 2)
    res = run_folds(SignalSource(c), folds, {"aemg-finetune": make(True)}, "session")
    assert [r.method for r in res] == ["aemg-finetune"] * 2
    assert len(starts) == 2 and all(_equal(s, pre) for s in starts)  # every fold starts from the pre-trained weights
    tuned = methods[0].model.encoder.state_dict()
    assert not _equal(tuned, pre)  # fold 1 trained its encoder ... and fold 2 still started from `pre`
    assert methods[0].model is not methods[1].model and methods[0].losses and methods[1].losses
    assert _equal(load_encoder(tiny_run).state_dict(), pre)  # the run's encoder.pt is untouched

    starts.clear()
    run_folds(SignalSource(c), folds, {"scratch": make(False)}, "session")
    assert len(starts) == 2 and _equal(starts[0], starts[1])  # the same seeded random init per fold
    assert not _equal(starts[0], pre)


@pytest.mark.slow
def test_finetune_is_reproducible(tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    fold = _eval_folds(c, 1)[0]
    train, test = fold_sets(SignalSource(c), fold, "session")
    preds = []
    for _ in range(2):
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=c, cfg=FAST)()
        m.fit(train)
        preds.append((m.predict(test).y_pred, m.losses))
    assert np.array_equal(preds[0][0], preds[1][0]) and preds[0][1] == preds[1][1]


@pytest.mark.slow
def test_leakage_guard(tiny_run, corpus_cote_allard, tmp_path):
    c = corpus_cote_allard
    seen = "cote-allard/pretraining/Male0"
    with pytest.raises(DataFormatError, match="Male0") as e:
        check_run_subjects(tiny_run, [seen])
    msg = str(e.value)
    assert "\n" not in msg and str(tiny_run) in msg and "pretraining/Male0" in msg
    check_run_subjects(tiny_run, [s for s in c.subjects if s.startswith(EVAL)])  # never seen: accepted
    check_run_subjects(tiny_run / "encoder.pt", ["cote-allard/evaluation/Female0"])

    # a run whose provenance lists an evaluation subject is refused by every encoder method at fold time
    leaky = tmp_path / "leaky"
    shutil.copytree(tiny_run, leaky)
    run = json.loads((leaky / "run.json").read_text())
    run["corpora"][0]["subjects"].append("cote-allard/evaluation/Female0")
    (leaky / "run.json").write_text(json.dumps(run))
    folds = [f for f in _eval_folds(c) if f.test_subjects == ("cote-allard/evaluation/Female0",)]
    assert len(folds) == 1
    for name in ENCODER_METHODS:
        with pytest.raises(DataFormatError, match="evaluation/Female0"):
            run_folds(SignalSource(c), folds, {name: ENCODER_METHODS[name](run_dir=leaky, corpus=c, cfg=_cfg(name))},
                      "session")
    # no provenance at all: refused too (nothing proves the subject was unseen)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_run / "encoder.pt", bare / "encoder.pt")
    with pytest.raises(DataFormatError, match="provenance"):
        check_run_subjects(bare, ["cote-allard/evaluation/Female0"])


@pytest.mark.slow
def test_unknown_scale_is_refused(tiny_run, corpus_cote_allard):
    """``session`` and ``calibration`` run (tests/test_fold_tokens.py); any other scale is refused before fitting."""
    c = corpus_cote_allard
    train, _ = fold_sets(SignalSource(c), _eval_folds(c, 1)[0], "session")
    for name in ENCODER_METHODS:
        with pytest.raises(ValueError, match="not supported for encoder methods"):
            ENCODER_METHODS[name](run_dir=tiny_run, corpus=c)().fit(replace(train, scale_mode="raw"))


@pytest.mark.slow
def test_trials_map_to_token_set_rows_and_tokenless_rule(corpus_cote_allard):
    c = corpus_cote_allard
    tt = trial_tokens(c)
    assert trial_tokens(c) is tt  # loaded once per corpus
    rows = tt.rows(c.trials)
    assert np.array_equal(np.asarray(tt.ts.trials.id)[rows], c.trials["trial"].to_numpy())
    bad = c.trials.head(2).copy()
    bad["recording_id"] = "nope"
    with pytest.raises(DataFormatError, match="token set"):
        tt.rows(bad)
    # the rule for a trial without tokens: the class most frequent among event-less training trials, else overall
    y = np.array([0, 1, 1, 2, 2, 2])
    assert fallback_class(y, np.array([True, False, True, True, True, True]), 3) == 1
    assert fallback_class(y, np.ones(6, bool), 3) == 2
    assert fallback_class(np.array([0, 1]), np.zeros(2, bool), 2) == 0  # ties: lowest index


@pytest.mark.slow
def test_tokenless_test_trials_get_the_fallback(tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    tt = trial_tokens(c)
    ev = subset(c.trials, EVAL)
    empty = set(ev["trial"][tt.n_tokens[tt.rows(ev)] == 0])
    fold = next(f for f in _eval_folds(c) if empty & set(f.test_trials)) if empty else _eval_folds(c, 1)[0]
    train, test = fold_sets(SignalSource(c), fold, "session")
    m = FinetuneMethod(tiny_run, tt, FAST)
    m.fit(train)
    pred = m.predict(test).y_pred
    has = tt.n_tokens[tt.rows(test.trials)] > 0
    assert pred.shape == (len(test),)
    assert np.all(pred[~has] == m.fallback)
    assert m.fallback == fallback_class(train.y, tt.n_tokens[tt.rows(train.trials)] > 0, len(train.classes))


@pytest.mark.slow
def test_real_three_subject_loso_probe_beats_chance(tiny_run, corpus_cote_allard):
    """LOSO over Côté-Allard's three Evaluation subjects (7 classes, chance 0.14) with a tiny run."""
    c = corpus_cote_allard
    folds = _eval_folds(c)
    assert len(folds) == 3
    res = run_folds(SignalSource(c), folds, {"aemg-probe": ENCODER_METHODS["aemg-probe"](run_dir=tiny_run, corpus=c)},
                    "session")
    assert [r.method for r in res] == ["aemg-probe"] * 3 and all(r.scale == "session" for r in res)
    assert all(r.n_test == 84 for r in res)
    assert float(np.mean([r.accuracy for r in res])) > 0.25


@pytest.mark.slow
def test_spans_cover_each_trial_exactly_and_never_mix_trials(corpus_cote_allard):
    tt = trial_tokens(corpus_cote_allard)
    rows = tt.rows(corpus_cote_allard.trials)[:40]
    groups = tt.groups(rows)
    seqs = tt.ts.sequences("trial")
    group_of, trial_of = tt.ts.tokens.group, tt.ts.groups.trial
    assert any(len(g) > 8 for g in groups) and all(np.array_equal(np.concatenate(g), seqs[r]) for g, r in
                                                   zip(groups, rows) if g)
    spans, owner = epoch_spans(groups, 4, np.random.default_rng(0))
    for i, r in enumerate(rows):
        mine = [s for s, o in zip(spans, owner) if o == i]
        assert np.array_equal(np.concatenate(mine) if mine else np.zeros(0, np.int64), seqs[r])  # each token once
        for s in mine:
            assert set(trial_of[group_of[s]]) == {r}  # a span never crosses into another trial
            assert 1 <= len(np.unique(group_of[s])) <= 4
    few, own = epoch_spans(groups, 4, np.random.default_rng(0), per_trial=3)  # at most 3 spans per trial, in order
    assert np.bincount(own).max() == 3 and len(few) < len(spans)
    for i, r in enumerate(rows):
        mine = [s for s, o in zip(few, own) if o == i]
        assert all(set(trial_of[group_of[s]]) == {r} for s in mine)
        assert all(a[-1] < b[0] for a, b in zip(mine, mine[1:]))
    # the partition: the first cut after `offset` groups; the tiling: every group covered, last span at the end
    g = [np.array([k]) for k in range(10)]
    assert [s.tolist() for s in partition_spans(g, 4, 1)] == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert [s.tolist() for s in partition_spans(g, 4, 0)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [s[0] for s in tile_spans(g, 4, 4)] == [0, 4, 6] and [s[0] for s in tile_spans(g, 4, 2)] == [0, 2, 4, 6]
    assert [s.tolist() for s in tile_spans(g[:3], 4, 4)] == [[0, 1, 2]] and partition_spans([], 4, 0) == []


def test_trial_prediction_is_the_mean_of_span_log_probs():
    logp = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]))
    out = trial_mean(logp, np.array([0, 0, 1, 1]), 3)
    assert np.allclose(out[0], logp[:2].mean(0)) and np.allclose(out[1], logp[2:].mean(0)) and np.all(out[2] == 0)
    assert out[:2].argmax(1).tolist() == [0, 1]  # 0.9 * 0.2 > 0.1 * 0.8, although span 2 is surer of class 1


@pytest.mark.slow
def test_span_finetune_and_probe_predict_by_mean_span_log_probs(tiny_run, corpus_cote_allard):
    c = corpus_cote_allard
    fold = _eval_folds(c, 1)[0]
    train, test = fold_sets(SignalSource(c), fold, "session")
    tt = trial_tokens(c)
    rows = tt.rows(test.trials)
    rows = rows[tt.n_tokens[rows] > 0]
    cfg = FinetuneConfig(epochs=1, batch_size=32, span_groups=4, predict_stride=2, pool="channel", probe_blend=0.0)
    m = FinetuneMethod(tiny_run, tt, cfg)
    m.fit(train)
    spans, owner = tt.tiles(rows, 4, 2)
    assert len(spans) > 2 * len(rows)  # overlapping spans
    with torch.no_grad():
        logp = torch.cat([torch.log_softmax(m.model(b), 1) for b in tt.span_batches(spans, 7, cfg.max_tokens,
                                                                                  amp=m.amp)]).double().numpy()
    want = np.stack([logp[owner == i].mean(0) for i in range(len(rows))])
    assert np.allclose(m.trial_log_probs(rows), want, atol=1e-5)
    assert np.array_equal(m._predict_rows(rows), want.argmax(1))
    # one state per channel, and one amplitude per channel (amp_head)
    assert m.model.head.in_features == tt.n_channels * (m.model.encoder.cfg.d_model + 1) == 8 * 33
    rows_tr = tt.rows(train.trials)
    used = m.amp[np.concatenate([np.concatenate(g) for g in tt.groups(rows_tr[tt.n_tokens[rows_tr] > 0]) if g])]
    assert float(m.model.amp_mu) == pytest.approx(float(used.mean()), rel=1e-5)  # training tokens only
    assert float(m.model.amp_sd) == pytest.approx(float(used.std()), rel=1e-4)
    m2 = FinetuneMethod(tiny_run, tt, cfg)
    m2.fit(train)
    assert m.losses == m2.losses and np.array_equal(m.predict(test).y_pred, m2.predict(test).y_pred)  # seeded

    p = ProbeMethod(tiny_run, tt, ProbeConfig(span_groups=4, pool="meanmax"))
    p.fit(train)
    x, own = p._features(tt.rows(train.trials)[tt.n_tokens[tt.rows(train.trials)] > 0], 4)
    assert x.shape[1] == 2 * p.encoder.cfg.d_model + 8 and len(x) > 4 * len(np.unique(own))  # many spans per trial
    xs = np.concatenate([p.clf.predict_log_proba(p._features(rows[i:i + 1], 4)[0]).mean(0, keepdims=True)
                         for i in range(len(rows))])
    assert np.array_equal(p._predict_rows(rows), p.clf.classes_[xs.argmax(1)])


@pytest.mark.parametrize("n_classes", [2, 4])
def test_linear_head_equals_the_scikit_learn_classifier_on_raw_inputs(n_classes):
    """linear_head folds a scaler into a fitted LDA / LogisticRegression: softmax(W x + b) = predict_proba of
    (x - mean) / scale, binary ones included; a class the classifier never saw gets weight 0 and bias -30."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression

    from aemg.evaluate.encoder_methods import linear_head

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 30)
    x = rng.normal(size=(len(y), 6)) * [1, 2, 3, 4, 5, 6] + y[:, None] + 10.0
    mean, scale = x.mean(0), x.std(0) * 2.0
    z = (x - mean) / scale
    for clf in (LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"), LogisticRegression(max_iter=500)):
        clf.fit(z, y + 1)  # classes 1..n: class 0 of the head is never seen
        w, b = linear_head(clf, n_classes + 1, mean, scale)
        logits = x @ w.T + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert np.allclose(p[:, 1:], clf.predict_proba(z), atol=1e-9)
        assert not w[0].any() and b[0] == -30.0


def test_probe_blend_averages_the_fine_tuned_and_the_probe_span_log_probs(tiny_run, corpus_cote_allard, tmp_path):
    """probe_blend=w: a trial's log-probabilities are the mean over its spans of the log of (1 - w) x the network's
    + w x a frozen LDA probe's probabilities (probe_config, fitted on the same fold); the probe travels as a torch network equal to the
    fitted scikit-learn pipeline; the fine-tuned network is the one fitted without the blend; save and load keep it."""
    from aemg.evaluate.encoder_methods import blend_log_probs, probe_config
    from aemg.evaluate.model_dir import PROBE, load_model, save_model

    c = corpus_cote_allard
    train, test = fold_sets(SignalSource(c), _eval_folds(c, 1)[0], "session")
    tt = trial_tokens(c)
    rows = tt.rows(test.trials)
    rows = rows[tt.n_tokens[rows] > 0]
    cfg = FinetuneConfig(epochs=1, batch_size=32, probe_blend=0.0)
    plain = FinetuneMethod(tiny_run, tt, cfg)
    plain.fit(train)
    m = FinetuneMethod(tiny_run, tt, replace(cfg, probe_blend=0.4))
    m.fit(train)
    state = plain.model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in m.model.state_dict().items())  # the blend leaves the fit alone
    assert m.probe_net is not None and not any(p.requires_grad for p in m.probe_net.parameters())
    probe = ProbeMethod(tiny_run, tt, probe_config(m.cfg))
    probe.fit(train)
    m.predict(test)  # sets the test scales' amplitudes
    plain.amp = probe.amp = m.amp
    # the probe's network is its scikit-learn pipeline, span by span
    x, owner = probe._features(rows, 0)
    spans, owner2 = tt.tiles(rows, m.cfg.span_groups, 0)
    assert np.array_equal(owner, owner2)
    with torch.no_grad():
        net_lp = torch.cat([torch.log_softmax(m.probe_net(b), 1) for b in tt.span_batches(spans, 64, m.cfg.max_tokens,
                                                                                          amp=m.amp)]).double()
    sk = probe.clf.predict_log_proba(x)
    assert np.allclose(np.exp(net_lp.numpy()[:, probe.clf.classes_]), np.exp(sk), atol=1e-3)
    sure = sk > -30  # float32 logits: the log-probabilities agree closely where they are not vanishing
    assert np.allclose(net_lp.numpy()[:, probe.clf.classes_][sure], sk[sure], atol=2e-3, rtol=1e-4)
    # the blend, span by span, then the trial mean
    with torch.no_grad():
        fine = torch.cat([torch.log_softmax(plain.model(b), 1) for b in tt.span_batches(spans, 64, m.cfg.max_tokens,
                                                                                        amp=m.amp)]).double()
    want = trial_mean(blend_log_probs(fine, torch.as_tensor(sk), 0.4).numpy(), owner, len(rows))
    got = m.trial_log_probs(rows)
    assert np.allclose(got, want, atol=2e-3, rtol=1e-4)
    assert not np.allclose(got, plain.trial_log_probs(rows), atol=1e-2)  # the probe counts
    assert np.array_equal(m._predict_rows(rows), got.argmax(1))
    a, b = torch.tensor([[-0.1, -2.4]]), torch.tensor([[-3000.0, 0.0]])
    assert torch.allclose(blend_log_probs(a, b, 0.4), torch.log(0.6 * a.exp() + 0.4 * b.exp()))
    assert torch.equal(blend_log_probs(a, b, 0.0), a) and torch.equal(blend_log_probs(a, b, 1.0), b)
    # random init has no pre-trained probe
    scratch = FinetuneMethod(tiny_run, tt, replace(cfg, probe_blend=0.4), pretrained=False)
    scratch.fit(train)
    assert scratch.probe_net is None
    # a model directory carries the probe (probe.pt) and predicts as the method in memory
    out = save_model(m, train, tmp_path / "model", run_dir=tiny_run)
    assert (out / PROBE).is_file()
    loaded = load_model(out, c, _subjects_of(test))
    loaded.amp = m.amp
    assert np.array_equal(loaded.trial_log_probs(rows), got)
    with pytest.raises(ValueError, match="probe_blend"):
        FinetuneConfig(probe_blend=1.5)


def _subjects_of(ts) -> list[str]:
    return sorted(set(ts.trials["subject"].astype(str)))


@pytest.mark.slow
def test_probe_head_init_is_the_logistic_regression_on_the_frozen_head_input(tiny_run, corpus_cote_allard):
    """LP-FT: before any step the head equals StandardScaler + LogisticRegression on the frozen encoder's head
    input over the training spans (the scaler folded into the weights); scratch keeps its random head."""
    from sklearn.linear_model import LogisticRegression

    c = corpus_cote_allard
    train, _ = fold_sets(SignalSource(c), _eval_folds(c, 1)[0], "session")
    tt = trial_tokens(c)
    cfg = replace(FAST, epochs=0, head_init="probe")
    m = FinetuneMethod(tiny_run, tt, cfg)
    m.fit(train)
    rows = tt.rows(train.trials)
    has = tt.n_tokens[rows] > 0
    spans, owner = tt.tiles(rows[has], cfg.span_groups, 0)
    with torch.no_grad():
        x = torch.cat([m.model.features(b) for b in tt.span_batches(spans, 64, cfg.max_tokens, amp=m.amp)])
        logits = m.model.head(x).double().numpy()
    x = x.double().numpy()
    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    want = LogisticRegression(C=cfg.probe_C, max_iter=2000).fit(z, train.y[has][owner]).decision_function(z)
    assert np.allclose(logits, want, atol=1e-3)
    assert (logits.argmax(1) == train.y[has][owner]).mean() > 0.5  # the head already fits the training spans

    r = FinetuneMethod(tiny_run, tt, replace(cfg, head_init="random"))
    r.fit(train)
    assert not torch.allclose(r.model.head.weight, m.model.head.weight)
    s1, s2 = (FinetuneMethod(tiny_run, tt, replace(cfg, head_init=h), pretrained=False) for h in ("probe", "random"))
    s1.fit(train)
    s2.fit(train)
    assert torch.equal(s1.model.head.weight, s2.model.head.weight)  # scratch: always torch's seeded random init
    with pytest.raises(ValueError, match="head_init"):
        replace(cfg, head_init="lp")


def test_gain_jitter_moves_log_amp_and_the_amplitude_path_by_one_gain_per_span_and_channel(corpus_cote_allard):
    """The fine-tuning augmentation: every token of one span and channel gets the same 2 g on log_amp and on amp
    (TKEO ~ A^2), padding and the other features stay; std 0 changes nothing; a negative std is refused."""
    from aemg.evaluate.encoder_methods import jitter_gain
    from aemg.tokens.features import FEATURE_NAMES

    c = corpus_cote_allard
    tt = trial_tokens(c)
    rows = tt.rows(subset(c.trials, EVAL).head(8))
    spans, _ = tt.tiles(rows, 4, 0)
    amp = np.random.default_rng(0).normal(size=len(tt.ts.tokens.channel)).astype(np.float32)
    b = tt.span_batches(spans[:8], 8, 64, amp=amp)[0]
    torch.manual_seed(0)
    j = jitter_gain(b, 0.5, tt.n_channels)
    la = FEATURE_NAMES.index("log_amp")
    d = j["content"][..., la] - b["content"][..., la]
    real = ~b["pad_mask"]
    assert torch.allclose(j["amp"] - b["amp"], d, atol=1e-5) and (d[~real] == 0).all()
    others = [i for i in range(len(FEATURE_NAMES)) if i != la]
    assert torch.equal(j["content"][..., others], b["content"][..., others])
    assert torch.equal(b["content"], tt.span_batches(spans[:8], 8, 64, amp=amp)[0]["content"])  # input untouched
    for i in range(d.shape[0]):
        for ch in b["channel"][i][real[i]].unique():
            on = real[i] & (b["channel"][i] == ch)
            assert torch.allclose(d[i][on], d[i][on][0].expand(int(on.sum())))  # one gain per span and channel
    per = torch.stack([d[i][real[i] & (b["channel"][i] == ch)][0] for i in range(d.shape[0])
                       for ch in b["channel"][i][real[i]].unique()])
    assert len(per) > 30 and 0.35 < float(per.std()) / 2 < 0.65  # the gains' spread: std 0.5
    assert torch.equal(jitter_gain(b, 0.0, tt.n_channels)["content"], b["content"])
    with pytest.raises(ValueError, match="gain_jitter"):
        replace(FAST, gain_jitter=-0.1)


def test_lr_schedule_ramps_then_decays_to_zero_over_the_fit(tiny_run, corpus_cote_allard):
    """``lr_factor``: a linear warm-up then a linear / cosine decay reaching 0 at the fit's last step; a fit with
    ``lr_schedule="linear"`` ends with learning rates near 0 (constant keeps them); bad values are refused."""
    from aemg.evaluate.encoder_methods import lr_factor

    f = [lr_factor(s, n_steps=20, warmup=0.1, how="linear") for s in range(21)]
    assert f[:2] == [0.5, 1.0] and f[2] == 1.0 and f[20] == 0.0
    assert all(a > b for a, b in zip(f[2:], f[3:]))
    c = [lr_factor(s, n_steps=10, warmup=0.0, how="cosine") for s in range(11)]
    assert c[0] == 1.0 and abs(c[5] - 0.5) < 1e-12 and c[10] == 0.0
    corpus = corpus_cote_allard
    train, _ = fold_sets(SignalSource(corpus), _eval_folds(corpus, 1)[0], "session")
    seen = {}
    orig = torch.optim.AdamW.step
    for how in ("constant", "linear"):
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus, cfg=replace(FAST, lr_schedule=how))()
        steps = []

        def step(opt, *a, _steps=steps, **k):
            _steps.append([g["lr"] for g in opt.param_groups])
            return orig(opt, *a, **k)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.optim.AdamW, "step", step)
            m.fit(train)
        seen[how] = np.asarray(steps)
    assert len(seen["linear"]) > 5 and np.allclose(seen["constant"], [FAST.lr_encoder, FAST.lr_head])
    lin = seen["linear"]
    assert np.allclose(lin[0], [FAST.lr_encoder, FAST.lr_head]) and (np.diff(lin, axis=0) < 0).all()
    assert (lin[-1] < 0.2 * lin[0]).all()
    for bad in ({"lr_schedule": "step"}, {"warmup_frac": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            replace(FAST, **bad)


def test_weight_avg_replaces_the_last_weights_by_the_mean_of_the_last_steps(tiny_run, corpus_cote_allard):
    """``weight_avg``: the fitted network's parameters are the uniform mean of the parameters after each of the
    fit's last ``round(weight_avg * n_steps)`` optimizer steps (off: the last step's); bad fractions are refused."""
    corpus = corpus_cote_allard
    train, _ = fold_sets(SignalSource(corpus), _eval_folds(corpus, 1)[0], "session")
    orig = torch.optim.AdamW.step
    for frac in (0.0, 0.5):
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus, cfg=replace(FAST, weight_avg=frac))()
        after: list[torch.Tensor] = []

        def step(opt, *a, _after=after, **k):
            out = orig(opt, *a, **k)
            _after.append(torch.cat([p.detach().flatten() for g in opt.param_groups for p in g["params"]]).clone())
            return out

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.optim.AdamW, "step", step)
            m.fit(train)
        final = torch.cat([p.detach().flatten() for p in m.model.parameters()])
        n = len(after)
        assert n > 4
        if frac == 0.0:
            assert torch.equal(final, after[-1])
        else:
            last = after[n - int(round(frac * n)):]
            assert torch.allclose(final, torch.stack(last).mean(dim=0), atol=1e-6)
            assert not torch.allclose(final, after[-1], atol=1e-6)
    with pytest.raises(ValueError, match="weight_avg"):
        replace(FAST, weight_avg=1.0)


def test_fits_average_members_trained_from_the_same_start(tiny_run, corpus_cote_allard):
    """``fits``: every member starts from the same weights with a fresh optimizer and its own batches, and the
    fitted network is the uniform mean of each member's averaged steps (a soup); fewer than 1 is refused."""
    corpus = corpus_cote_allard
    train, _ = fold_sets(SignalSource(corpus), _eval_folds(corpus, 1)[0], "session")
    orig = torch.optim.AdamW.step
    before: dict[int, torch.Tensor] = {}
    after: dict[int, list[torch.Tensor]] = {}

    def flat(opt):
        return torch.cat([p.detach().flatten() for g in opt.param_groups for p in g["params"]]).clone()

    alive: list = []  # each member's optimizer kept referenced, so a freed one's id is not reused by the next

    def step(opt, *a, **k):
        if id(opt) not in before:
            alive.append(opt)
        before.setdefault(id(opt), flat(opt))
        out = orig(opt, *a, **k)
        after.setdefault(id(opt), []).append(flat(opt))
        return out

    m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus, cfg=replace(FAST, fits=2, weight_avg=0.5))()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.AdamW, "step", step)
        m.fit(train)
    assert len(after) == 2  # one optimizer per member
    (s1, s2), (a1, a2) = before.values(), after.values()
    assert len(a1) > 4 and not torch.allclose(a1[-1], a2[-1])  # the members' own batches
    assert torch.equal(s1, s2)  # both members start from the same weights (before their first step)
    last = [*a1[len(a1) - int(round(0.5 * len(a1))):], *a2[len(a2) - int(round(0.5 * len(a2))):]]
    final = torch.cat([p.detach().flatten() for p in m.model.parameters()])
    assert torch.allclose(final, torch.stack(last).mean(dim=0), atol=1e-6)
    with pytest.raises(ValueError, match="fits"):
        replace(FAST, fits=0)


def test_token_drop_keeps_a_random_subset_of_each_span_in_order():
    """``drop_tokens``: each span keeps its tokens in order, about 1 - p of them and never none; bad p refused."""
    from aemg.evaluate.encoder_methods import drop_tokens

    rng = np.random.default_rng(0)
    spans = [np.arange(1000), np.arange(5, 8), np.array([42])]
    out = drop_tokens(spans, 0.3, rng)
    assert 650 < len(out[0]) < 750 and set(out[0]) <= set(spans[0]) and (np.diff(out[0]) > 0).all()
    assert all(len(o) >= 1 and set(o) <= set(s) for o, s in zip(out, spans))
    assert all(len(s) == 1 for s in drop_tokens([np.arange(3)] * 50, 0.99, rng))
    with pytest.raises(ValueError, match="token_drop"):
        replace(FAST, token_drop=1.0)


def test_layer_decay_gives_lower_blocks_smaller_learning_rates(tiny_run):
    """``encoder_groups``: every encoder parameter in exactly one group; with decay d the embedding's rate is
    lr d^(L+1), block i's lr d^(L-i), the final norm's lr; d = 1 is one group (the former optimizer)."""
    from aemg.evaluate.encoder_methods import encoder_groups

    enc = load_encoder(tiny_run)
    n = len(enc.blocks)
    one = encoder_groups(enc, 1e-3)
    assert len(one) == 1 and len(one[0]["params"]) == len(list(enc.parameters()))
    groups = encoder_groups(enc, 1e-3, 0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(enc.parameters()))
    assert np.allclose([g["lr"] for g in groups], [1e-3 * 0.5 ** (n + 1 - i) for i in range(n + 1)] + [1e-3])
    assert {id(p) for p in enc.blocks[0].parameters()} == {id(p) for p in groups[1]["params"]}
    with pytest.raises(ValueError, match="layer_decay"):
        replace(FAST, layer_decay=0.0)


def test_l2sp_keeps_the_encoder_near_its_starting_weights(tiny_run, corpus_cote_allard):
    """``l2sp``: a strong pull to the pre-trained weights leaves the fitted encoder much nearer them than the plain
    fit does (weight averaging off, so both are the last step's weights); a negative weight is refused."""
    corpus = corpus_cote_allard
    train, _ = fold_sets(SignalSource(corpus), _eval_folds(corpus, 1)[0], "session")
    start = torch.cat([p.detach().flatten() for p in load_encoder(tiny_run).parameters()])
    moved = {}
    for w in (0.0, 100.0):
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus,
                                            cfg=replace(FAST, epochs=2, weight_avg=0.0, l2sp=w))()
        m.fit(train)
        moved[w] = float((torch.cat([p.detach().flatten() for p in m.model.encoder.parameters()]) - start).norm())
    assert moved[0.0] > 0 and moved[100.0] < 0.5 * moved[0.0]
    with pytest.raises(ValueError, match="l2sp"):
        replace(FAST, l2sp=-1.0)


def test_head_dropout_drops_head_inputs_in_training_only(tiny_run, corpus_cote_allard):
    """``head_dropout``: in training mode a fraction of the head input is zeroed (the logits vary between calls),
    in eval mode the logits are the head of the features, deterministic; a fraction of 1 is refused."""
    from aemg.evaluate.encoder_methods import classifier

    tokens = trial_tokens(corpus_cote_allard)
    spans = [np.concatenate(g) for g in tokens.groups(np.arange(40)) if g][:4]
    batch = tokens.span_batches(spans, 4, 64)[0]
    net = classifier(load_encoder(tiny_run), 3, "channel", tokens.n_channels, head_dropout=0.5)
    net.eval()
    with torch.no_grad():
        a, b = net(batch), net(batch)
        assert torch.equal(a, b) and torch.allclose(a, net.head(net.features(batch)))
        net.train()
        net.encoder.eval()  # the encoder's own dropout aside: only the head input's varies
        c, d = net(batch), net(batch)
    assert not torch.allclose(c, d)
    with pytest.raises(ValueError, match="head_dropout"):
        replace(FAST, head_dropout=1.0)



def test_epoch_trials_give_calibration_trials_their_share_at_the_same_epoch_size():
    """``epoch_trials``: as many trials per epoch as there are; ``round(share n)`` of them calibration trials, each
    repeated evenly; the rest distinct other trials; off (share 0) or with one side empty, every trial once."""
    from aemg.evaluate.weighting import epoch_trials

    rng = np.random.default_rng(0)
    calib = np.array([True] * 3 + [False] * 17)
    got = epoch_trials(calib, 0.5, rng)
    assert len(got) == 20
    cal, other = got[calib[got]], got[~calib[got]]
    assert len(cal) == 10 and sorted(np.bincount(cal, minlength=3).tolist()) == [3, 3, 4]
    assert len(other) == 10 and len(set(other.tolist())) == 10
    assert sorted(epoch_trials(calib, 0.1, rng).tolist()) == list(range(20))  # round(2) < 3: each once
    assert epoch_trials(calib, 0.0, rng).tolist() == list(range(20))
    assert epoch_trials(np.ones(4, bool), 0.5, rng).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="calib_share"):
        replace(FAST, calib_share=1.0)


def test_calib_share_weights_a_new_users_calibration_trials_up(tiny_run, corpus_cote_allard, monkeypatch):
    """``calib_share``: in a low-label fold (k = 1) the held-out subject's calibration trials make up that share of
    every epoch's training trials, and an epoch has as many trials as without it (the same cost)."""
    import aemg.evaluate.encoder_methods as em

    corpus = corpus_cote_allard
    fold = next(f for f in loso_folds(subset(corpus.trials, EVAL), (0, 1)) if f.k == 1)
    train, _ = fold_sets(SignalSource(corpus), fold, "session")
    listed: list[np.ndarray] = []
    n_trials: list[int] = []
    orig_trials, orig_spans = em.epoch_trials, em.epoch_spans

    def spy_trials(*a, **k):
        listed.append(orig_trials(*a, **k))
        return listed[-1]

    def spy_spans(trials, *a, **k):
        n_trials.append(len(trials))
        return orig_spans(trials, *a, **k)

    monkeypatch.setattr(em, "epoch_trials", spy_trials)
    monkeypatch.setattr(em, "epoch_spans", spy_spans)
    for share in (0.0, 0.5):
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus, cfg=replace(FAST, calib_share=share))()
        m.fit(train)
    rows = m.tokens.rows(train.trials)
    has = m.tokens.n_tokens[rows] > 0
    held = train.trials["subject"].isin(fold.test_subjects).to_numpy()
    assert m.calib.tolist() == held[has].tolist() and 0 < m.calib.sum() < 0.1 * len(m.calib)
    assert len(listed) == FAST.epochs  # share 0 lists every trial once, without drawing
    assert n_trials == [has.sum()] * (2 * FAST.epochs)  # the same epoch size either way
    assert abs(m.calib[listed[0]].mean() - 0.5) < 0.01


def test_calib_epochs_trains_longer_only_with_calibration_trials(tiny_run, corpus_cote_allard):
    """``calib_epochs``: a low-label fit (k = 1, the new user's trials in training) runs that many epochs; a LOSO
    fit (k = 0) keeps ``epochs``."""
    corpus = corpus_cote_allard
    folds = {f.k: f for f in loso_folds(subset(corpus.trials, EVAL), (0, 1)) if f.test_subjects == (f"{EVAL}Female0",)}
    cfg = replace(FAST, calib_epochs=3)
    for k, epochs in ((0, FAST.epochs), (1, 3)):
        train, _ = fold_sets(SignalSource(corpus), folds[k], "session")
        m = ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=corpus, cfg=cfg)()
        m.fit(train)
        assert len(m.losses) == epochs and m.calib.any() == bool(k)
    with pytest.raises(ValueError, match="calib_epochs"):
        replace(FAST, calib_epochs=-1)


def test_calibration_weights_give_the_calibration_samples_their_share():
    """``calibration_weights``: mean 1, ``share`` of the total on the calibration samples, split evenly; off or
    one-sided: all ones."""
    from aemg.evaluate.weighting import calibration_weights

    calib = np.array([True] * 2 + [False] * 8)
    w = calibration_weights(calib, 0.75)
    assert np.isclose(w.mean(), 1.0) and np.isclose(w[calib].sum() / w.sum(), 0.75)
    assert np.allclose(w[:2], w[0]) and np.allclose(w[2:], w[2])
    assert calibration_weights(calib, 0.0).tolist() == [1.0] * 10
    assert calibration_weights(np.zeros(3, bool), 0.5).tolist() == [1.0] * 3
    with pytest.raises(ValueError, match="calib_share"):
        ProbeConfig(calib_share=1.0)


def test_probe_calib_share_weights_the_new_users_spans(tiny_run, corpus_cote_allard, monkeypatch):
    """``ProbeConfig.calib_share``: in a low-label fold the logistic regression gets sample weights that put that
    share on the held-out subject's calibration spans; off, it is fitted without weights (the former fit)."""
    from sklearn.linear_model import LogisticRegression

    corpus = corpus_cote_allard
    fold = next(f for f in loso_folds(subset(corpus.trials, EVAL), (0, 1)) if f.k == 1)
    train, _ = fold_sets(SignalSource(corpus), fold, "session")
    got: list = []
    orig = LogisticRegression.fit

    def spy(self, x, y, sample_weight=None):
        got.append(sample_weight)
        return orig(self, x, y, sample_weight=sample_weight)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    for share in (0.0, 0.75):
        ENCODER_METHODS["aemg-probe"](run_dir=tiny_run, corpus=corpus, cfg=ProbeConfig(classifier="logreg",
                                                                                  calib_share=share))().fit(train)
    assert got[0] is None
    w = got[1]
    big = w > w.min()
    assert 0 < big.sum() < 0.2 * len(w) and np.isclose(w[big].sum() / w.sum(), 0.75)


def test_weighted_listing_repeats_the_calibration_samples_to_their_share():
    """``weighted_listing``: every other sample once, the calibration samples repeated evenly to ``share`` of the
    list (the repetitions :func:`calibration_weights` would give as weights); off or one-sided: each sample once."""
    from aemg.evaluate.weighting import weighted_listing

    calib = np.array([False, True] + [False] * 7 + [True])
    pick = weighted_listing(calib, 0.75)
    assert sorted(pick[~calib[pick]].tolist()) == np.flatnonzero(~calib).tolist()  # the others once each
    assert calib[pick].sum() == 24 and np.isclose(calib[pick].mean(), 0.75)  # 0.75 / 0.25 * 8
    assert np.bincount(pick[calib[pick]]).tolist()[1::8] == [12, 12]  # both calibration samples alike
    assert weighted_listing(calib, 0.0).tolist() == list(range(10))
    assert weighted_listing(np.ones(3, bool), 0.5).tolist() == [0, 1, 2]
    few = np.array([True] * 3 + [False])
    assert sorted(weighted_listing(few, 0.1).tolist()) == [0, 1, 2, 3]  # each calibration sample at least once


def test_probe_lda_is_shrinkage_lda_on_the_listed_spans(tiny_run, corpus_cote_allard, monkeypatch):
    """``ProbeConfig(classifier="lda")``: the probe's classifier is a Ledoit-Wolf shrinkage LDA after the scaler; at
    k = 0 it sees every training span once, in a low-label fold the new user's spans listed to ``calib_share``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    corpus = corpus_cote_allard
    folds = {f.k: f for f in loso_folds(subset(corpus.trials, EVAL), (0, 1)) if f.test_subjects == (f"{EVAL}Female0",)}
    got: list = []
    orig = LinearDiscriminantAnalysis.fit

    def spy(self, x, y):
        got.append(len(y))
        return orig(self, x, y)

    monkeypatch.setattr(LinearDiscriminantAnalysis, "fit", spy)
    n_spans = []
    for k in (0, 1):
        train, test = fold_sets(SignalSource(corpus), folds[k], "session")
        m = ENCODER_METHODS["aemg-probe"](run_dir=tiny_run, corpus=corpus, cfg=ProbeConfig(classifier="lda"))()
        m.fit(train)
        lda = m.clf.steps[-1][1]
        assert isinstance(lda, LinearDiscriminantAnalysis) and lda.shrinkage == "auto" and lda.solver == "lsqr"
        rows = m.tokens.rows(train.trials)
        spans, owner = m.tokens.tiles(rows[m.tokens.n_tokens[rows] > 0], m.cfg.span_groups, 0)
        n_spans.append(len(spans))
        assert (m.predict(test).y_pred == test.y).mean() > 1 / 7  # above chance on the left-out subject
    assert got[0] == n_spans[0]  # k = 0: every span once
    assert got[1] > n_spans[1]  # k = 1: the calibration spans repeated, the others kept
    with pytest.raises(ValueError, match="classifier"):
        ProbeConfig(classifier="svm")

