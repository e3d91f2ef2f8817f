"""The calibration scale of the encoder methods: a given noise floor, the held-out subject's floor, the fold's view.

Real data: Côté-Allard (its three Evaluation subjects are the LOSO targets; a tiny run pre-trained on
its pre-training subjects only, as in tests/test_evaluate_encoder.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from aemg.evaluate.data import SignalSource, fold_sets
from aemg.evaluate.fold_tokens import fold_token_set, pooled_floor, sessions_of
from aemg.evaluate.folds import loso_folds, subset
from aemg.tokens import EventDetector, GroupBatch, estimate_floor
from aemg.tokens.tokenizer import span_floor, tokenize_session
from conftest import tiny_pretraining  # noqa: E402

EVAL = "cote-allard/evaluation/"


def _fold(corpus, k: int, i: int = 0):
    folds = [f for f in loso_folds(subset(corpus.trials, EVAL), ks=(0, 1)) if f.k == k]
    return folds[i]


def _tokens(corpus):
    from aemg.train.sources import load_token_set

    return load_token_set(corpus, progress=False)


@pytest.fixture(scope="module")
def token_set(corpus_cote_allard):
    return _tokens(corpus_cote_allard)


@pytest.fixture(scope="module")
def session_recs(corpus_cote_allard):
    s = corpus_cote_allard.trials["subject"].iat[0]
    ss = corpus_cote_allard.trials["session"].iat[0]
    return list(corpus_cote_allard.iter_recordings(subject=s, session=ss))


def _same_groups(a: GroupBatch, b: GroupBatch) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in
               ("event", "segment", "start", "stop", "content", "onset", "event_onset", "active", "rank", "duration"))


def test_floor_none_is_the_session_estimate_bit_for_bit(session_recs):
    recs = session_recs
    a = tokenize_session(recs)
    assert len(a.groups) > 0
    # today's definition: one EventDetector on estimate_floor(signals), recordings joined with a boundary between
    fs = float(recs[0].fs)
    floor = estimate_floor([r.signal for r in recs], fs)
    assert np.array_equal(a.floor, floor)
    det = EventDetector(fs, floor)
    parts = []
    for i, r in enumerate(recs):
        if i:
            det.boundary()
        parts.append(det.process(r.signal))
    ref = GroupBatch.concat([*parts, det.flush()], det.n_channels)
    assert _same_groups(a.groups, ref)
    # the same floor given explicitly changes nothing; span_floor over whole recordings is that floor
    b = tokenize_session(recs, floor=a.floor)
    assert _same_groups(a.groups, b.groups) and a.pieces == b.pieces
    assert np.array_equal(span_floor(recs, [(i, 0, r.n_samples) for i, r in enumerate(recs)]), a.floor)


def test_a_given_floor_moves_the_events(session_recs):
    a = tokenize_session(session_recs)
    high = tokenize_session(session_recs, floor=a.floor * 4)
    low = tokenize_session(session_recs, floor=a.floor / 4)
    assert np.array_equal(high.floor, a.floor * 4)
    n_on = [int(s.groups.active.sum()) for s in (low, a, high)]
    assert n_on[0] > n_on[1] > n_on[2]  # active tokens fall as the floor rises
    dur = [sum(e.offset - e.onset for e in s.events) for s in (low, a, high)]
    assert dur[0] > dur[1] > dur[2]  # so does the time inside events
    assert len(low.groups) > len(a.groups) > len(high.groups)  # and the token groups (event segments)
    # (the number of events is not monotone: a higher floor breaks one long contraction into several)
    with pytest.raises(ValueError, match="positive finite"):
        tokenize_session(session_recs, floor=np.zeros_like(a.floor))
    with pytest.raises(ValueError, match="positive finite"):
        tokenize_session(session_recs, floor=a.floor[:-1])


def _perturbed(corpus, subject: str, keep: set[tuple[str, int, int]], factor: float) -> SignalSource:
    """A SignalSource whose ``subject`` samples outside the ``keep`` spans (recording, start, stop) are x ``factor``."""
    src = SignalSource(corpus)
    rids = corpus.recordings.loc[corpus.recordings["subject"] == subject, "recording_id"]
    for rid in rids:
        rec = src.recording(rid)
        mask = np.ones(rec.n_samples, bool)
        for r, a, z in keep:
            if r == rid:
                mask[a:z] = False
        sig = rec.signal.astype(np.float64)
        sig[:, mask] *= factor
        src._raw[rid] = rec.replace(signal=sig.astype(rec.signal.dtype))
    return src


def test_calibration_floor_comes_from_calibration_trials_only(corpus_cote_allard, token_set):
    c = corpus_cote_allard
    fold = _fold(c, 1)
    (subject,) = fold.test_subjects
    train, test = fold_sets(SignalSource(c), fold, "calibration")
    view = fold_token_set(token_set, train)
    assert view.rule == {subject: "calibration"}
    calib = c.trials[c.trials["trial"].isin(fold.calibration_trials)]
    assert len(calib) == 7 and set(calib["subject"]) == {subject}
    spans = {(r, int(a), int(z)) for r, a, z in zip(calib["recording_id"], calib["start"], calib["stop"])}
    # every other sample of the subject x 30: the same floor, but other tokens for its test trials
    src = _perturbed(c, subject, spans, 30.0)
    train2, _ = fold_sets(src, fold, "calibration")
    view2 = fold_token_set(token_set, train2)
    assert np.array_equal(view2.floors[subject], view.floors[subject])
    tri = np.asarray(view.token_set.trials.id)
    test_rows = np.isin(tri, test.trial_ids)
    n1 = np.array([len(s) for s in view.token_set.sequences("trial")])[test_rows]
    n2 = np.array([len(s) for s in view2.token_set.sequences("trial")])[test_rows]
    assert n2.sum() > n1.sum()
    # the calibration samples x 2: the floor (an energy, TKEO ~ A^2) x 4
    src3 = SignalSource(c)
    for rid in {r for r, _, _ in spans}:
        rec = src3.recording(rid)
        sig = rec.signal.astype(np.float64)
        for r, a, z in spans:
            if r == rid:
                sig[:, a:z] *= 2.0
        src3._raw[rid] = rec.replace(signal=sig.astype(np.float32))
    view3 = fold_token_set(token_set, fold_sets(src3, fold, "calibration")[0])
    assert np.allclose(view3.floors[subject], 4 * view.floors[subject], rtol=1e-3)


def test_k0_floor_is_the_training_subjects_median(corpus_cote_allard, token_set):
    c = corpus_cote_allard
    fold = _fold(c, 0)
    (subject,) = fold.test_subjects
    train, test = fold_sets(SignalSource(c), fold, "calibration")
    view = fold_token_set(token_set, train)
    assert view.rule == {subject: "pooled"}
    own = [tokenize_session(list(c.iter_recordings(subject=s, session=ss))).floor
           for s, ss, _ in sessions_of(token_set) if s in fold.train_subjects and s != subject]
    assert len(own) == 6  # the two other Evaluation subjects' 3 sessions each
    assert np.array_equal(view.floors[subject], np.median(np.stack(own), axis=0))
    # no sample of the held-out subject is used: all of them x 30 -> the same floor, many more tokens
    src = _perturbed(c, subject, set(), 30.0)
    view2 = fold_token_set(token_set, fold_sets(src, fold, "calibration")[0])
    assert np.array_equal(view2.floors[subject], view.floors[subject])
    rows = np.isin(np.asarray(view.token_set.trials.id), test.trial_ids)
    n1 = sum(len(s) for s, r in zip(view.token_set.sequences("trial"), rows) if r)
    n2 = sum(len(s) for s, r in zip(view2.token_set.sequences("trial"), rows) if r)
    assert n2 > n1
    with pytest.raises(Exception, match="one channel count"):
        pooled_floor([np.ones(8), np.ones(4)], "here")


def test_view_keeps_training_subjects_and_trial_numbers(corpus_cote_allard, token_set):
    from aemg.evaluate.encoder_methods import TrialTokens

    c = corpus_cote_allard
    fold = _fold(c, 1)
    (subject,) = fold.test_subjects
    train, test = fold_sets(SignalSource(c), fold, "calibration")
    view = fold_token_set(token_set, train)
    assert fold_token_set(token_set, train) is view  # made once per source and floors
    base, tt = TrialTokens(c, token_set), TrialTokens(c, view.token_set, test_subjects=view.test_subjects)
    others = train.trials[train.trials["subject"] != subject]
    for rows_b, rows_v, same in ((base.rows(others), tt.rows(others), True),
                                 (base.rows(test.trials), tt.rows(test.trials), False)):
        sb, sv = token_set.sequences("trial"), view.token_set.sequences("trial")
        equal = [np.array_equal(token_set.tokens.content[sb[a]], view.token_set.tokens.content[sv[b]])
                 for a, b in zip(rows_b, rows_v)]
        assert all(equal) if same else not all(equal)
    assert view.token_set.meta["calibration_floor"][subject] == [float(v) for v in view.floors[subject]]
    assert set(np.asarray(view.token_set.recordings.subject)) == set(train.trials["subject"]) | {subject}


# ------------------------------------------------------------------ end to end, with a tiny run

@pytest.fixture(scope="module")
def tiny_run(corpus_cote_allard, tmp_path_factory):
    """A tiny pre-training (10 steps per stage) on the corpus's pre-training subjects only."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_pretraining(corpus_cote_allard, tmp_path_factory.mktemp("cal") / "run", 10)
    torch.set_num_threads(before)


@pytest.mark.slow
def test_loso_under_calibration_scale_end_to_end(tiny_run, corpus_cote_allard):
    from aemg.evaluate.encoder_methods import ENCODER_METHODS, FinetuneConfig
    from aemg.evaluate.run import run_folds

    c = corpus_cote_allard
    folds = loso_folds(subset(c.trials, EVAL), ks=(0, 1))
    assert len(folds) == 6
    one_epoch = FinetuneConfig(epochs=1, batch_size=16, max_tokens=64)
    methods = {"aemg-probe": ENCODER_METHODS["aemg-probe"](run_dir=tiny_run, corpus=c),
               "aemg-finetune": ENCODER_METHODS["aemg-finetune"](run_dir=tiny_run, corpus=c, cfg=one_epoch)}
    res = run_folds(SignalSource(c), folds, methods, "calibration")
    assert len(res) == 12 and all(r.scale == "calibration" for r in res)
    assert {r.method for r in res} == set(methods) and {r.k for r in res} == {0, 1}
    assert all(r.n_test == 84 - 7 for r in res)  # the repetitions after the first, for every k
    assert all(0.0 <= r.accuracy <= 1.0 and len(r.y_pred) == r.n_test for r in res)
    probe = [r.accuracy for r in res if r.method == "aemg-probe"]
    assert float(np.mean(probe)) > 1 / 7  # above chance (7 classes)


@pytest.mark.slow
def test_predict_refuses_another_folds_test_subjects(tiny_run, corpus_cote_allard):
    from aemg.evaluate.encoder_methods import ENCODER_METHODS, trial_tokens

    c = corpus_cote_allard
    src = SignalSource(c)
    train, test = fold_sets(src, _fold(c, 0, 0), "calibration")
    _, other = fold_sets(src, _fold(c, 0, 1), "calibration")
    m = ENCODER_METHODS["aemg-probe"](run_dir=tiny_run, corpus=c)()
    m.fit(train)
    assert len(m.predict(test).y_pred) == len(test)
    with pytest.raises(ValueError, match="calibration token view"):
        m.predict(other)
    # fitted again (not what run_folds does, but allowed): from the shared token set, not from the last view
    shared = trial_tokens(c)
    assert m.tokens.base is shared and m.tokens.test_subjects == _fold(c, 0, 0).test_subjects
    m.fit(fold_sets(src, _fold(c, 0, 1), "calibration")[0])
    assert m.tokens.base is shared and m.tokens.test_subjects == _fold(c, 0, 1).test_subjects
    assert len(m.predict(other).y_pred) == len(other)
    m.fit(fold_sets(src, _fold(c, 0, 1), "session")[0])
    assert m.tokens is shared
