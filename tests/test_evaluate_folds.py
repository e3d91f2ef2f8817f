"""Evaluation folds (aemg.evaluate.folds): who is held out, which repetitions calibrate, which are tested."""

from __future__ import annotations

import pandas as pd
import pytest

from aemg.evaluate.folds import (
    SPLITS,
    calibration_split,
    classes_of,
    loso_folds,
    repetition_rank,
    split_folds,
    subset,
    within_folds,
)


def table(n_subjects: int = 3, classes: tuple[str, ...] = ("a", "b", "c"), reps: int = 5,
          sessions: int = 1, skip: tuple[tuple[str, str, int], ...] = ()) -> pd.DataFrame:
    """A trials table like ``Corpus.trials``; rows deliberately not in repetition order."""
    rows = []
    for s in range(n_subjects):
        for ses in range(sessions):
            for rep in reversed(range(ses * reps, (ses + 1) * reps)):
                for c in classes:
                    if (f"S{s}", c, rep) in skip:
                        continue
                    rows.append({"subject": f"S{s}", "session": f"sess{ses}", "gesture_key": c, "repetition": rep,
                                 "recording_id": f"S{s}/{c}/{rep}", "start": 0, "stop": 100})
    df = pd.DataFrame(rows)
    df["trial"] = range(len(df))
    return df


def rows(df: pd.DataFrame, ids) -> pd.DataFrame:
    return df[df["trial"].isin(set(ids))]


def test_held_out_subject_never_on_the_training_side_at_k0():
    df = table(4)
    folds = loso_folds(df)
    assert [f.test_subjects for f in folds] == [("S0",), ("S1",), ("S2",), ("S3",)]
    for f in folds:
        held = f.test_subjects[0]
        assert held not in f.train_subjects
        assert held not in set(rows(df, f.train_trials)["subject"])
        assert set(rows(df, f.test_trials)["subject"]) == {held}
        assert len(f.test_trials) == 15  # every trial of the subject is tested at k = 0
        assert set(f.train_trials) | set(f.test_trials) == set(df["trial"])
        assert f.calibration_trials == () and f.k == 0


def test_k_calibration_repetitions_are_exactly_the_first_k_of_each_class():
    df = table(3, reps=6)
    for f in loso_folds(df, ks=(0, 1, 2, 4)):
        held = f.test_subjects[0]
        own_train = rows(df, f.train_trials)
        own_train = own_train[own_train["subject"] == held]
        assert set(own_train["trial"]) == set(f.calibration_trials)
        assert len(own_train) == 3 * f.k
        for _, g in own_train.groupby("gesture_key"):
            assert sorted(g["repetition"]) == list(range(f.k))
        others = rows(df, f.train_trials)
        assert set(others["subject"]) - {held} == {"S0", "S1", "S2"} - {held}
        assert (held in f.train_subjects) == (f.k > 0)


def test_every_k_tests_the_same_repetitions_those_after_the_largest_k():
    df = table(3, reps=6)
    folds = loso_folds(df, ks=(2, 0, 1))
    by_subject: dict[str, set] = {}
    for f in folds:
        by_subject.setdefault(f.test_subjects[0], set()).add(f.test_trials)
        tested = rows(df, f.test_trials)
        assert sorted(set(tested["repetition"])) == [2, 3, 4, 5]
        assert not set(f.test_trials) & set(f.train_trials)
    assert all(len(v) == 1 for v in by_subject.values())
    assert sorted(f.k for f in folds if f.test_subjects == ("S0",)) == [0, 1, 2]


def test_first_k_follow_the_repetition_rank_across_gaps():
    # S1 lacks repetition 1 of class "a" (like 3DC Participant14's dropped duplicates)
    df = table(2, reps=4, skip=(("S1", "a", 1),))
    split = calibration_split(df, "S1", (0, 2))
    calib, test = split[2]
    assert sorted(calib[calib["gesture_key"] == "a"]["repetition"]) == [0, 2]
    assert sorted(test[test["gesture_key"] == "a"]["repetition"]) == [3]
    assert sorted(test[test["gesture_key"] == "b"]["repetition"]) == [2, 3]
    rank = repetition_rank(df[df["subject"] == "S1"])
    assert rank.max() == 3 and (rank >= 0).all()


def test_calibration_split_checks_its_arguments():
    df = table(2)
    with pytest.raises(KeyError):
        calibration_split(df, "nobody", (0,))
    with pytest.raises(ValueError):
        calibration_split(df, "S0", (-1,))
    with pytest.raises(ValueError):
        loso_folds(table(1))


def test_within_subject_split_by_repetition():
    df = table(2, reps=4, sessions=2)
    folds = within_folds(df)
    assert len(folds) == 2
    for f in folds:
        train, test = rows(df, f.train_trials), rows(df, f.test_trials)
        assert set(train["subject"]) == set(test["subject"]) == set(f.test_subjects)
        assert sorted(set(train["repetition"])) == [0, 1, 2, 3]  # half of 8: the first session
        assert sorted(set(test["repetition"])) == [4, 5, 6, 7]
        assert set(f.calibration_trials) == set(f.train_trials)
    assert sorted(set(rows(df, within_folds(df, n_train=1)[0].train_trials)["repetition"])) == [0]


def test_classes_and_subset():
    df = table(3)
    assert classes_of(df) == ("a", "b", "c")
    assert set(subset(df, "S1")["subject"]) == {"S1"}


def test_real_split_sessions(corpus_3dc, corpus_cote_allard, corpus_ciil):
    f3 = split_folds(corpus_3dc.trials, "3dc")
    assert len(f3) == 4 and all(f.train_sessions == ("train",) and f.test_sessions == ("test",) for f in f3)
    fc = split_folds(corpus_cote_allard.trials, "cote-allard")
    assert len(fc) == 6  # 3 Evaluation subjects x (Test0, Test1); PreTraining subjects have one session
    assert {f.test_sessions for f in fc} == {("Test0",), ("Test1",)}
    assert all(s.startswith("cote-allard/evaluation/") for f in fc for s in f.test_subjects)
    fe = split_folds(corpus_ciil.trials, "ciil")
    assert len(fe) == 15 * 4 and all(f.test_subjects[0].startswith("ciil/electrodeshift/") for f in fe)
    s13 = [f for f in fe if f.test_subjects == ("ciil/electrodeshift/subject13",)][0]
    assert s13.train_sessions == ("training", "trial_0")
    tr = corpus_ciil.trials
    for f in fe[:8]:
        assert set(rows(tr, f.train_trials)["session"]) <= set(SPLITS["ciil"].train_sessions)
        assert set(rows(tr, f.test_trials)["session"]) == set(f.test_sessions)
    with pytest.raises(ValueError):
        split_folds(corpus_3dc.trials, "uci-gestures")


def test_real_loso_low_label_on_3dc(corpus_3dc):
    tr = corpus_3dc.trials
    folds = loso_folds(tr, ks=(0, 1, 2))
    assert len(folds) == 12
    for f in folds:
        held = f.test_subjects[0]
        calib = rows(tr, f.calibration_trials)
        assert set(calib["subject"]) <= {held}
        assert calib.groupby("gesture_key").size().eq(f.k).all() if f.k else calib.empty
        assert set(rows(tr, f.train_trials)["subject"]) == set(f.train_subjects)
        assert set(rows(tr, f.test_trials)["session"]) <= {"train", "test"}
