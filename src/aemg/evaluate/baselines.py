"""The classic window baselines: ``lda-td`` (LDA on MAV, WL, ZC, SSC) and ``svm-tdar`` (RBF SVM on TD + AR(4)).

The pipeline is the reference one of ``shared/data/README.md`` ("Reference figures"), on the
corpus's 200 Hz signal: per-recording mean removal, causal 4th-order Butterworth 20 Hz high-pass
(no notch), division by the fold's amplitude scale, 200 ms windows with a 50 ms hop inside each
trial, features standardised on the training windows only (scikit-learn ``StandardScaler``),
scikit-learn defaults for the classifier, trial label by majority vote of its windows.

ZC/SSC threshold: 1% of the channel's standard deviation over a subject's trials, measured on the
training side (a test subject with calibration trials uses those). A test subject with none uses
all its test trials under the transductive ``session`` scale (as the reference does), and each
trial's own standard deviation under ``calibration`` (nothing else of that user is known).
Votes: the most frequent window class, ties to the lowest class index; a trial too short for one
window gets the most frequent training class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aemg.evaluate.data import TrialSet
from aemg.evaluate.features import sliding_windows, td_features, tdar_features, window_samples
from aemg.evaluate.method import Prediction
from aemg.evaluate.weighting import check_share, epoch_trials
from aemg.recording import Recording
from aemg.signal import make_causal_filter

THRESHOLD_FRACTION = 0.01  # ZC/SSC threshold: this fraction of the channel's std
HIGHPASS_HZ = 20.0


def preprocess(rec: Recording) -> np.ndarray:
    """Per-recording mean removal then the causal 20 Hz high-pass (order 4, no notch): ``(C, T)`` float32."""
    x = rec.signal.astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    f = make_causal_filter(rec.fs, rec.n_channels, None, low=HIGHPASS_HZ)
    return f.process(x).astype(np.float32)


def trial_signals(data: TrialSet) -> list[np.ndarray]:
    """Each trial's preprocessed, scaled signal ``(C, n)`` float64, in the TrialSet's order."""
    out = []
    for rid, subject, session, a, b in zip(data.trials["recording_id"], data.trials["subject"],
                                           data.trials["session"], data.trials["start"], data.trials["stop"]):
        x = data.source.derived("baseline-hp20", rid, preprocess)[:, int(a):int(b)].astype(np.float64)
        out.append(x / data.scale_of(subject, session)[:, None])
    return out


def _pooled_std(signals: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(signals, axis=1).std(axis=1)


class WindowBaseline:
    """A window classifier with the shared pipeline; ``kind`` "td" or "tdar" picks the features.

    ``max_train_windows`` caps the training windows (a stratified random subset, drawn with
    ``seed``) for classifiers whose fit grows faster than linearly (the RBF SVM); None keeps all.
    ``calib_share`` (default 0.75, the encoder methods' share): in a low-label fold the held-out subjects'
    calibration windows are listed to that share of the training windows, the others subsampled to the rest
    (:func:`aemg.evaluate.weighting.epoch_trials`, as many windows as before); 0 = every window once (the
    reference pipeline's low-label rule); no effect at k = 0 (LOSO), where the reference figures are.
    """

    def __init__(self, name: str, kind: str, make_classifier: Callable[[], Any], *,
                 max_train_windows: int | None = None, seed: int = 0, calib_share: float = 0.75) -> None:
        check_share(calib_share)
        if kind not in ("td", "tdar"):
            raise ValueError(f"kind must be 'td' or 'tdar', got {kind!r}")
        self.name = name
        self.kind = kind
        self.make_classifier = make_classifier
        self.max_train_windows = max_train_windows
        self.seed = seed
        self.calib_share = calib_share
        self.model: Any = None
        self.thresholds: dict[str, np.ndarray] = {}
        self.fallback_class = 0

    # ------------------------------------------------------------------ features
    def _features(self, data: TrialSet, signals: list[np.ndarray], thr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Features of every window ``(W, F)`` and the trial index of each window ``(W,)``."""
        win, hop = window_samples(data.corpus.fs)
        wins, thrs, owner = [], [], []
        for i, (x, t) in enumerate(zip(signals, thr)):
            w = sliding_windows(x, win, hop)
            if len(w):
                wins.append(w)
                thrs.append(np.broadcast_to(t, (len(w), len(t))))
                owner.append(np.full(len(w), i))
        n_feat = (4 if self.kind == "td" else 8) * (signals[0].shape[0] if signals else 0)
        if not wins:
            return np.zeros((0, n_feat)), np.zeros(0, dtype=np.int64)
        w_all, t_all = np.concatenate(wins), np.concatenate(thrs)
        feats = td_features(w_all, t_all) if self.kind == "td" else tdar_features(w_all, t_all)
        return feats, np.concatenate(owner)

    def _thresholds_for(self, data: TrialSet, signals: list[np.ndarray]) -> list[np.ndarray]:
        subjects = list(data.trials["subject"])
        out: list[np.ndarray] = []
        pooled: dict[str, np.ndarray] = {}
        for s, x in zip(subjects, signals):
            if s in self.thresholds:
                out.append(self.thresholds[s])
            elif data.scale_mode == "session":
                if s not in pooled:
                    pooled[s] = THRESHOLD_FRACTION * _pooled_std([signals[j] for j, sj in enumerate(subjects) if sj == s])
                out.append(pooled[s])
            else:
                out.append(THRESHOLD_FRACTION * x.std(axis=1))
        return out

    # ------------------------------------------------------------------ Method
    def fit(self, train: TrialSet) -> None:
        signals = trial_signals(train)
        subjects = np.array(train.trials["subject"])
        self.thresholds = {s: THRESHOLD_FRACTION * _pooled_std([signals[j] for j in np.flatnonzero(subjects == s)])
                           for s in dict.fromkeys(subjects)}
        x, owner = self._features(train, signals, [self.thresholds[s] for s in subjects])
        y = train.y[owner]
        if len(y) == 0:
            raise ValueError(f"{self.name}: no training window (all trials shorter than one window)")
        self.fallback_class = int(np.bincount(train.y).argmax())
        calib = train.of_test_subjects[owner]
        if self.calib_share > 0 and calib.any():
            keep = epoch_trials(calib, self.calib_share, np.random.default_rng(self.seed))
            x, y = x[keep], y[keep]
        if self.max_train_windows is not None and len(y) > self.max_train_windows:
            keep = _stratified_subset(y, self.max_train_windows, np.random.default_rng(self.seed))
            x, y = x[keep], y[keep]
        self.model = self.make_classifier()
        self.model.fit(x, y)

    def predict(self, test: TrialSet) -> Prediction:
        if self.model is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        signals = trial_signals(test)
        x, owner = self._features(test, signals, self._thresholds_for(test, signals))
        n = len(test)
        y_pred = np.full(n, self.fallback_class, dtype=np.int64)
        if len(x) == 0:
            return Prediction(y_pred, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        w_pred = np.asarray(self.model.predict(x), dtype=np.int64)
        n_cls = len(test.classes)
        votes = np.zeros((n, n_cls), dtype=np.int64)
        np.add.at(votes, (owner, w_pred), 1)
        has = votes.sum(axis=1) > 0
        y_pred[has] = votes[has].argmax(axis=1)  # ties: lowest class index
        return Prediction(y_pred, test.y[owner], w_pred)


def _stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of about ``n`` samples, each class keeping its share (at least one sample each)."""
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        m = max(1, int(round(n * len(idx) / len(y))))
        keep.append(rng.choice(idx, size=min(m, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def lda_td(**kw: Any) -> WindowBaseline:
    """``lda-td``: scikit-learn ``LinearDiscriminantAnalysis`` (defaults) on standardised TD features."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return WindowBaseline("lda-td", "td", lambda: make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()), **kw)


def svm_tdar(**kw: Any) -> WindowBaseline:
    """``svm-tdar``: scikit-learn ``SVC`` (RBF, defaults) on standardised TD + AR(4) features."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return WindowBaseline("svm-tdar", "tdar", lambda: make_pipeline(StandardScaler(), SVC()), **kw)


BASELINES: dict[str, Callable[..., WindowBaseline]] = {"lda-td": lda_td, "svm-tdar": svm_tdar}
