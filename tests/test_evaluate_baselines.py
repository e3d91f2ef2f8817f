"""Window baselines, scale rules and the fold runner (aemg.evaluate) on synthetic and real corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aemg.corpus import Corpus, import_manifest
from aemg.evaluate.baselines import lda_td, preprocess, svm_tdar
from aemg.evaluate.data import SignalSource, calibration_scale, fold_scales, fold_sets
from aemg.evaluate.folds import loso_folds, subset, within_folds
from aemg.evaluate.metrics import scores
from aemg.evaluate.run import check_fold, run_folds, summarize
from aemg.signal import session_scale
from conftest import write_manifest

GESTURES = ("rest", "hand_close", "hand_open", "wrist_flexion")
FS = 200.0


def synthetic(folder: Path, *, shuffle: bool, seed: int = 0, n_subjects: int = 4, reps: int = 6) -> Path:
    """Gestures that are trivially separable: gesture g drives channels 2g and 2g+1 well above the noise.

    Each subject has its own per-channel gain (0.8-1.25x). With ``shuffle`` the manifest's gesture
    names are a random permutation of the true ones, so labels carry no information.
    """
    rng = np.random.default_rng(seed)
    rows, signals = [], {}
    n = int(FS)  # 1 s per repetition
    for s in range(n_subjects):
        gain = rng.uniform(0.8, 1.25, 8)
        trials = [(g, rep) for rep in range(reps) for g in range(len(GESTURES))]
        names = [GESTURES[g] for g, _ in trials]
        if shuffle:
            names = list(rng.permutation(names))
        counts: dict[str, int] = {}
        for (g, _rep), name in zip(trials, names):
            amp = np.ones(8)
            if g:  # rest drives nothing
                amp[2 * g - 2: 2 * g] = 12.0
            x = rng.normal(0.0, 1.0, (n, 8)) * amp * gain
            f = f"S{s}_{len(signals)}.npy"
            signals[f] = x.astype(np.float32)
            rep = counts.get(name, 0)
            counts[name] = rep + 1
            rows.append({"file": f, "subject": f"S{s}", "session": "s1", "trial": f"{name}_{rep}", "gesture": name,
                         "fs": FS, "layout": "unknown8", "repetition": rep, "units": "uV"})
    return write_manifest(folder, rows, signals)


@pytest.fixture(scope="session")
def separable(tmp_path_factory) -> Corpus:
    d = tmp_path_factory.mktemp("eval-sep")
    return import_manifest(synthetic(d / "raw", shuffle=False), d / "corpus", progress=False)


@pytest.fixture(scope="session")
def shuffled(tmp_path_factory) -> Corpus:
    d = tmp_path_factory.mktemp("eval-shuf")
    return import_manifest(synthetic(d / "raw", shuffle=True, seed=1), d / "corpus", progress=False)


def mean_acc(results) -> float:
    return float(np.mean([r.accuracy for r in results]))


def test_separable_gestures_reach_near_perfect_loso(separable):
    src = SignalSource(separable)
    res = run_folds(src, loso_folds(separable.trials), {"lda-td": lda_td, "svm-tdar": svm_tdar}, "calibration")
    assert len(res) == 8
    for name in ("lda-td", "svm-tdar"):
        rs = [r for r in res if r.method == name]
        assert mean_acc(rs) >= 0.95, name
        assert all(r.window_accuracy is not None and r.window_accuracy > 0.9 for r in rs)
        assert all(r.scale == "calibration" and r.k == 0 for r in rs)


def test_shuffled_labels_stay_near_chance(shuffled):
    src = SignalSource(shuffled)
    res = run_folds(src, loso_folds(shuffled.trials), {"lda-td": lda_td}, "session")
    acc = mean_acc(res)
    assert acc < 0.45  # chance 0.25; 96 test trials in all
    assert sum(r.n_test for r in res) == 96


def test_a_fresh_method_per_fold(separable):
    made = []

    def factory():
        m = lda_td()
        made.append(m)
        return m

    folds = loso_folds(separable.trials, ks=(0, 1))
    run_folds(SignalSource(separable), folds, {"lda-td": factory}, "session")
    assert len(made) == len(folds) == 8
    assert len({id(m) for m in made}) == 8
    assert len({id(m.model) for m in made}) == 8


def test_scale_rules(separable):
    c = separable
    src = SignalSource(c)
    s0, *others = c.subjects
    f0, f1 = loso_folds(c.trials, ks=(0, 2), subjects=[s0])
    stored = {(s, ss): c.scale(s, ss) for s, ss in zip(c.sessions["subject"], c.sessions["session"])}
    sess = fold_scales(src, f0, "session")
    assert set(sess) == set(stored) and all(np.allclose(sess[p], stored[p]) for p in stored)
    raw = fold_scales(src, f0, "calibration")  # k = 0: no scale for the new user, the fold in device units
    assert all(np.array_equal(v, np.ones(8)) for v in raw.values())
    cal = fold_scales(src, f1, "calibration")
    calib = c.trials[c.trials["trial"].isin(f1.calibration_trials)]
    assert len(calib) == 2 * len(GESTURES) and set(calib["subject"]) == {s0}
    expect = session_scale([src.segment(r) for _, r in calib.iterrows()])
    assert np.allclose(cal[(s0, "s1")], expect)
    assert np.allclose(calibration_scale(src, calib), expect)
    assert not np.allclose(cal[(s0, "s1")], stored[(s0, "s1")])  # computed from 8 trials, not the session
    for s in others:
        assert np.allclose(cal[(s, "s1")], stored[(s, "s1")])  # training subjects keep their session scale
    with pytest.raises(ValueError):
        fold_scales(src, f0, "whole")
    train, test = fold_sets(src, f1, "calibration")
    assert train.classes == tuple(sorted(GESTURES)) and len(test) == 4 * 4 and train.scale_mode == "calibration"


def test_check_fold_refuses_a_leak(separable):
    from dataclasses import replace

    tr = separable.trials
    subj = dict(zip(tr["trial"].astype(int), tr["subject"]))
    s0 = separable.subjects[0]
    f = loso_folds(tr, subjects=[s0])[0]
    check_fold(f, subj)
    leak = replace(f, train_trials=(*f.train_trials, f.test_trials[0]))
    with pytest.raises(ValueError):
        check_fold(leak, subj)
    own = int(tr[tr["subject"] == s0]["trial"].iloc[0])
    with pytest.raises(ValueError):
        check_fold(replace(f, train_trials=(*f.train_trials, own), test_trials=f.test_trials[1:]), subj)


def test_preprocess_removes_the_offset_and_is_causal(separable):
    rec = separable.load(separable.recording_ids[0])
    y = preprocess(rec.replace(signal=rec.signal + 50.0))
    assert y.shape == rec.signal.shape and y.dtype == np.float32
    assert abs(float(y[:, 50:].mean())) < 1.0
    z = preprocess(rec.replace(signal=rec.signal[:, :100].copy(), labels=None, repetition=None))
    assert np.allclose(z, preprocess(rec)[:, :100], atol=1e-4)  # the past does not depend on the future


def test_scores_and_summary():
    s = scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["balanced_accuracy"] == pytest.approx(0.75)  # recalls 0.5 and 1.0
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    s2 = scores(np.array([0, 0, 0]), np.array([0, 2, 2]))  # class 2 predicted, never tested
    assert s2["balanced_accuracy"] == pytest.approx(1 / 3) and s2["macro_f1"] == pytest.approx(0.5)
    assert np.isnan(scores(np.array([]), np.array([]))["accuracy"])


def test_within_subject_on_synthetic(separable):
    res = run_folds(SignalSource(separable), within_folds(separable.trials), {"lda-td": lda_td}, "calibration")
    assert len(res) == 4 and mean_acc(res) >= 0.95
    summ = summarize(res)
    assert summ["lda-td"]["within"]["n_folds"] == 4


@pytest.mark.slow
def test_real_three_subject_loso_beats_chance(corpus_cote_allard):
    """LOSO over Côté-Allard's three Evaluation subjects (7 classes, chance 0.14), raw device units."""
    c = corpus_cote_allard
    tr = subset(c.trials, "cote-allard/evaluation/")
    folds = loso_folds(tr)
    assert len(folds) == 3
    res = run_folds(SignalSource(c), folds, {"lda-td": lda_td}, "calibration")
    assert mean_acc(res) > 0.3
    assert all(r.n_test == 84 for r in res)
    summ = summarize(res)["lda-td"]["loso:k=0"]
    assert summ["accuracy_mean"] == pytest.approx(mean_acc(res)) and summ["n_folds"] == 3


def test_calib_share_lists_the_new_users_windows_to_that_share(corpus_cote_allard):
    """``calib_share``: in a low-label fold (k = 1, real Côté-Allard) the classifier is fitted on as many windows as
    without it, that share of them the held-out subject's calibration windows; 0 fits every window once."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    c = corpus_cote_allard
    fold = next(f for f in loso_folds(subset(c.trials, "cote-allard/evaluation/"), (0, 1)) if f.k == 1)
    train, _ = fold_sets(SignalSource(c), fold, "session")
    seen = {}
    for share in (0.0, 0.75):
        m = lda_td(calib_share=share)
        m.make_classifier = lambda s=share: _Recorder(seen, s, LinearDiscriminantAnalysis())
        m.fit(train)
    x0, x1 = seen[0.0][0], seen[0.75][0]
    assert len(x0) == len(x1) and len(np.unique(x0, axis=0)) == len(x0)  # off: every window once
    # the calibration windows are the rows repeated (the others are drawn once at most)
    counts = np.unique(x1, axis=0, return_counts=True)[1]
    assert abs(counts[counts > 1].sum() / len(x1) - 0.75) < 0.02
    with pytest.raises(ValueError, match="calib_share"):
        lda_td(calib_share=1.0)


class _Recorder:
    """A classifier that records what it was fitted on (keyed by ``key``) and delegates to ``inner``."""

    def __init__(self, seen: dict, key: float, inner) -> None:
        self.seen, self.key, self.inner = seen, key, inner

    def fit(self, x, y):
        self.seen[self.key] = (np.asarray(x), np.asarray(y))
        return self.inner.fit(x, y)

    def predict(self, x):
        return self.inner.predict(x)
