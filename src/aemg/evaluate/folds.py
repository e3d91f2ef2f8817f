"""Evaluation folds as pure functions of a corpus's trials table (``Corpus.trials``).

A :class:`Fold` lists the trial ids on each side and the subjects they belong to. Nothing here
reads a signal, so the fold rules (who is held out, which repetitions calibrate, which are tested)
are checked on tables alone. Classes are ``gesture_key`` values; repetitions are ordered by the
corpus's ``repetition`` column, chronological within subject and gesture across sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from aemg.naming import natural_key

PROTOCOLS = ("loso", "within", "split")


@dataclass(frozen=True)
class Fold:
    """One train/test partition of a corpus's trials (ids from ``Corpus.trials["trial"]``).

    ``train_subjects`` are all subjects with trials on the training side. ``calibration_trials``
    (a subset of ``train_trials``) are the test subjects' own labelled trials there: what a user
    gives before use (LOSO: the first k repetitions per class; within: the subject's training
    repetitions; split: its training sessions); a test subject's calibration scale is computed
    from them alone. ``k`` is the LOSO calibration repetitions per class (None elsewhere).
    ``name`` is unique within one protocol run, e.g. ``"loso:3dc/all/Participant1:k=1"``.
    """

    name: str
    protocol: str  # "loso", "within" or "split"
    train_trials: tuple[int, ...]
    test_trials: tuple[int, ...]
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    calibration_trials: tuple[int, ...] = ()
    k: int | None = None
    train_sessions: tuple[str, ...] = ()  # split protocol: the sessions trained on ("" elsewhere)
    test_sessions: tuple[str, ...] = ()  # split protocol: the sessions tested
    condition: str = ""  # split protocol: the test session's placement (e.g. "armband_position=I"), if known


def subjects_of(trials: pd.DataFrame) -> list[str]:
    """Subject ids of a trials table in natural order."""
    return sorted(dict.fromkeys(trials["subject"]), key=natural_key)


def classes_of(trials: pd.DataFrame) -> tuple[str, ...]:
    """The class names (``gesture_key``) of a trials table, sorted: index i is class i in results."""
    return tuple(sorted(dict.fromkeys(trials["gesture_key"]), key=natural_key))


def repetition_rank(trials: pd.DataFrame) -> pd.Series:
    """0, 1, 2, ... per (subject, class) in repetition order (ties by trial id).

    A rank rather than the ``repetition`` value itself, so gaps (3DC Participant14's dropped
    duplicates) do not shift which repetitions count as the first k.
    """
    order = trials.sort_values(["repetition", "trial"], kind="stable")
    rank = order.groupby(["subject", "gesture_key"], sort=False).cumcount()
    return rank.reindex(trials.index)


def _ids(df: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(t) for t in sorted(df["trial"]))


def _subjects(df: pd.DataFrame) -> tuple[str, ...]:
    return tuple(subjects_of(df)) if len(df) else ()


def calibration_split(trials: pd.DataFrame, subject: str, ks: Sequence[int]) -> dict[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """The low-label selection of one held-out ``subject``: ``{k: (calibration, test)}`` tables.

    Calibration for k = the subject's first k repetitions of each class (by repetition rank);
    test = its repetitions of rank >= max(ks), the same for every k, so the accuracy-vs-k curve
    compares like with like. A class with at most max(ks) repetitions has none tested.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 0:
        raise ValueError(f"ks must be non-negative integers, got {ks}")
    own = trials[trials["subject"] == subject]
    if own.empty:
        raise KeyError(f"no trials of subject {subject!r}")
    rank = repetition_rank(own)
    test = own[rank >= ks[-1]]
    return {k: (own[rank < k], test) for k in ks}


def loso_folds(trials: pd.DataFrame, ks: Sequence[int] = (0,), subjects: Iterable[str] | None = None) -> list[Fold]:
    """Leave-one-subject-out folds, one per held-out subject and k.

    Training side: every trial of the other subjects plus the held-out subject's first k
    repetitions per class (:func:`calibration_split`); test side: the held-out subject's
    repetitions after the largest k. With ``ks=(0,)`` every trial of the subject is tested.
    ``subjects`` restricts which subjects are held out (default all).
    """
    folds = []
    held = subjects_of(trials) if subjects is None else list(subjects)
    if len(subjects_of(trials)) < 2:
        raise ValueError("LOSO needs at least two subjects")
    for subject in held:
        others = trials[trials["subject"] != subject]
        for k, (calib, test) in calibration_split(trials, subject, ks).items():
            train = pd.concat([others, calib])
            folds.append(Fold(name=f"loso:{subject}:k={k}", protocol="loso", train_trials=_ids(train),
                              test_trials=_ids(test), train_subjects=_subjects(train),
                              test_subjects=(subject,), calibration_trials=_ids(calib), k=k))
    return folds


def within_folds(trials: pd.DataFrame, n_train: int | None = None) -> list[Fold]:
    """Within-subject folds: per subject, its first ``n_train`` repetitions of each class train, the rest test.

    Default ``n_train``: half of the subject's smallest per-class repetition count (rounded down,
    at least 1), which on the real data is 3DC's train -> test session, UCI's file 1 -> file 2 and
    long-term-semg's T1-T2 -> T3-T4, the within-subject references of ``shared/data/README.md``.
    """
    folds = []
    for subject in subjects_of(trials):
        own = trials[trials["subject"] == subject]
        rank = repetition_rank(own)
        n = n_train if n_train is not None else max(1, int(own.groupby("gesture_key").size().min()) // 2)
        train, test = own[rank < n], own[rank >= n]
        folds.append(Fold(name=f"within:{subject}", protocol="within", train_trials=_ids(train),
                          test_trials=_ids(test), train_subjects=(subject,), test_subjects=(subject,),
                          calibration_trials=_ids(train)))
    return folds


@dataclass(frozen=True)
class Split:
    """A dataset's own cross-session split: ``train_sessions`` -> each of ``test_sessions``, per subject.

    Only subjects whose id starts with ``subjects`` take part (CIIL's corpus holds both its
    MinimalTrainingData and ElectrodeShift parts, and only the latter has a shift). ``test_sessions``
    None: every other session of the subject, in natural order (long-term-semg's later days, however
    many were downloaded). ``condition`` names the recording attribute (``Corpus.recordings
    ["recording_attrs"]``) that tells a test session's placement, recorded in ``Fold.condition``.
    """

    train_sessions: tuple[str, ...]
    test_sessions: tuple[str, ...] | None
    subjects: str = ""
    condition: str = ""


# Session names are those the corpus's readers write (``Corpus.sessions``). A dataset with several
# splits (MyoDisCo: across days, then across limb positions) maps to a tuple of them.
SPLITS: dict[str, Split | tuple[Split, ...]] = {
    "3dc": Split(("train",), ("test",)),
    "cote-allard": Split(("training0",), ("Test0", "Test1"), "cote-allard/evaluation/"),
    # ElectrodeShift: "training" before the shift; trial_0 (subject13 only) is unshifted too.
    "ciil": Split(("training", "trial_0"), ("trial_1", "trial_2", "trial_3", "trial_4"), "ciil/electrodeshift/"),
    # day 1 (armband position N) -> each later day (the armband re-donned at N, I or O)
    "long-term-semg": Split(("day1",), None, condition="armband_position"),
    # day 1 -> day 2 (re-donned), then day 2 (limb position 0) -> limb positions 1..4 of the same donning
    "myodisco": (Split(("day1",), ("day2",), condition="limb_position"),
                 Split(("day2",), ("position1", "position2", "position3", "position4"), condition="limb_position")),
}


def splits_of(dataset: str) -> tuple[Split, ...]:
    """The splits of a dataset (one or more), or a ValueError naming the datasets that have one."""
    if dataset not in SPLITS:
        raise ValueError(f"no cross-session split defined for dataset {dataset!r}; known: {', '.join(SPLITS)}")
    s = SPLITS[dataset]
    return s if isinstance(s, tuple) else (s,)


def _conditions(recordings: pd.DataFrame | None, attr: str) -> dict[tuple[str, str], str]:
    """``{(subject, session): "attr=value"}`` from the recordings' attrs (first recording of each session)."""
    if recordings is None or not attr or "recording_attrs" not in recordings:
        return {}
    out: dict[tuple[str, str], str] = {}
    for subject, session, attrs in zip(recordings["subject"], recordings["session"], recordings["recording_attrs"]):
        if isinstance(attrs, dict) and attr in attrs:
            out.setdefault((subject, session), f"{attr}={attrs[attr]}")
    return out


def split_folds(trials: pd.DataFrame, dataset: str, recordings: pd.DataFrame | None = None) -> list[Fold]:
    """The dataset's own cross-session split, per subject: its training sessions -> each test session.

    3DC ``train`` -> ``test``; Côté-Allard Evaluation ``training0`` -> ``Test0`` and ``Test1``
    (PreTraining subjects have one session); CIIL ElectrodeShift ``training`` (and subject13's
    unshifted ``trial_0``) -> each shifted ``trial_1..4``; long-term-semg ``day1`` -> each later
    day; MyoDisCo ``day1`` -> ``day2`` and ``day2`` -> ``position1..4``. One fold per subject and
    test session; subjects lacking either side are skipped. With ``recordings`` (``Corpus.recordings``)
    each fold's ``condition`` names the test session's placement (armband or limb position).
    """
    folds = []
    for split in splits_of(dataset):
        cond = _conditions(recordings, split.condition)
        for subject in subjects_of(subset(trials, split.subjects)):
            own = trials[trials["subject"] == subject]
            train = own[own["session"].isin(split.train_sessions)]
            if train.empty:
                continue
            tests = split.test_sessions
            if tests is None:
                tests = tuple(sorted(set(own["session"]) - set(split.train_sessions), key=natural_key))
            for session in tests:
                test = own[own["session"] == session]
                if test.empty:
                    continue
                folds.append(Fold(name=f"split:{subject}:{session}", protocol="split", train_trials=_ids(train),
                                  test_trials=_ids(test), train_subjects=(subject,), test_subjects=(subject,),
                                  calibration_trials=_ids(train),
                                  train_sessions=tuple(sorted(set(train["session"]), key=natural_key)),
                                  test_sessions=(session,), condition=cond.get((subject, session), "")))
    return folds


def subset(trials: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """The trials of subjects whose id starts with ``prefix`` (e.g. ``"ciil/minimal/"``)."""
    return trials[trials["subject"].str.startswith(prefix)]
