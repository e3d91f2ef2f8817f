"""Run methods over folds: one fresh method per fold, scored per trial (and per window where it has them).

``run_folds(source, folds, {"lda-td": lda_td}, scale="session")`` returns one :class:`FoldResult`
per (fold, method); :func:`summarize` turns them into means and standard deviations over the
folds (over subjects, for LOSO and within-subject folds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aemg.evaluate.data import SignalSource, fold_sets
from aemg.evaluate.folds import Fold, classes_of
from aemg.evaluate.method import Method
from aemg.evaluate.metrics import METRICS, scores


@dataclass(frozen=True)
class FoldResult:
    """Scores of one method on one fold, with what defines the fold (subjects, k, scale)."""

    method: str
    fold: str
    protocol: str
    scale: str  # "session" or "calibration": the amplitude scale used
    k: int | None
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    n_train: int  # training trials
    n_test: int  # test trials
    accuracy: float  # trial accuracy
    balanced_accuracy: float
    macro_f1: float
    window_accuracy: float | None  # window methods only
    wall_s: float
    test_trials: tuple[int, ...] = field(repr=False, default=())  # trial ids, the order of y_true / y_pred
    y_true: tuple[int, ...] = field(repr=False, default=())
    y_pred: tuple[int, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_fold(fold: Fold, trials_subject: Mapping[int, str]) -> None:
    """Refuse a fold whose test subject appears on its training side beyond its calibration trials."""
    calib = set(fold.calibration_trials)
    if not calib <= set(fold.train_trials):
        raise ValueError(f"{fold.name}: calibration trials outside the training side")
    if set(fold.train_trials) & set(fold.test_trials):
        raise ValueError(f"{fold.name}: a trial is on both sides")
    leaked = [t for t in fold.train_trials if trials_subject[t] in fold.test_subjects and t not in calib]
    if leaked:
        raise ValueError(f"{fold.name}: test subject's trials {leaked[:5]} on the training side")


def run_fold(source: SignalSource, fold: Fold, make_method: Callable[[], Method], scale: str,
             classes: Sequence[str]) -> FoldResult:
    """Build a fresh method, fit it on the fold's training trials, score it on the test trials."""
    t0 = time.perf_counter()
    trials = source.corpus.trials
    check_fold(fold, dict(zip(trials["trial"].astype(int), trials["subject"])))
    train, test = fold_sets(source, fold, scale, classes)
    method = make_method()
    method.fit(train)
    pred = method.predict(test)
    s = scores(test.y, pred.y_pred)
    win_acc = None
    if pred.window_true is not None and pred.window_pred is not None and len(pred.window_true):
        win_acc = float(np.mean(pred.window_true == pred.window_pred))
    return FoldResult(method=method.name, fold=fold.name, protocol=fold.protocol, scale=scale, k=fold.k,
                      train_subjects=fold.train_subjects, test_subjects=fold.test_subjects,
                      n_train=len(train), n_test=len(test), window_accuracy=win_acc,
                      wall_s=time.perf_counter() - t0, test_trials=tuple(int(t) for t in test.trial_ids), y_true=tuple(int(v) for v in test.y),
                      y_pred=tuple(int(v) for v in pred.y_pred), **s)


def run_folds(source: SignalSource, folds: Iterable[Fold], methods: Mapping[str, Callable[[], Method]],
              scale: str, classes: Sequence[str] | None = None,
              progress: Callable[[FoldResult], None] | None = None) -> list[FoldResult]:
    """Every method on every fold (a fresh method object each time); ``classes`` default: the corpus's."""
    folds = list(folds)
    if classes is None:
        ids = {t for f in folds for t in (*f.train_trials, *f.test_trials)}
        classes = classes_of(source.corpus.trials[source.corpus.trials["trial"].isin(ids)])
    out = []
    for fold in folds:
        for make in methods.values():
            r = run_fold(source, fold, make, scale, classes)
            out.append(r)
            if progress is not None:
                progress(r)
    return out


def summarize(results: Iterable[FoldResult]) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {key: {metric_mean, metric_std, n_folds}}}``, key = protocol and k (``"loso:k=0"``)."""
    groups: dict[tuple[str, str], list[FoldResult]] = {}
    for r in results:
        key = f"{r.protocol}:k={r.k}" if r.k is not None else r.protocol
        groups.setdefault((r.method, key), []).append(r)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (method, key), rs in groups.items():
        row: dict[str, float] = {"n_folds": float(len(rs))}
        for m in (*METRICS, "window_accuracy"):
            v = np.array([getattr(r, m) for r in rs if getattr(r, m) is not None], dtype=np.float64)
            row[f"{m}_mean"] = float(np.nanmean(v)) if v.size else float("nan")
            row[f"{m}_std"] = float(np.nanstd(v)) if v.size else float("nan")
        out.setdefault(method, {})[key] = row
    return out
