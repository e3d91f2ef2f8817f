"""What a method sees of a fold: :class:`TrialSet` (trials + labels + amplitude scales), and the scale rules.

Two scale modes (every result records which one it used):

* ``session``: the corpus's stored per-session scale for every subject (``Corpus.scale``), label-free
  but computed over whole sessions, test trials included (transductive).
* ``calibration``: subjects seen only in training keep their session scale; a test subject's scale
  is computed with the corpus's own function (:func:`aemg.signal.session_scale`) from its
  calibration trials alone (``Fold.calibration_trials``) and used for all its sessions. Without
  calibration trials (LOSO k = 0) there is no scale for the new user, so the whole fold runs in
  raw device units (training subjects too: a model trained on scaled signals cannot be applied to
  unscaled ones); this is the README's "raw device units" reference setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aemg.corpus import Corpus
from aemg.evaluate.folds import Fold, classes_of
from aemg.recording import Recording
from aemg.signal import session_scale

SCALES = ("session", "calibration")
ScaleMap = dict[tuple[str, str], np.ndarray]


class SignalSource:
    """One corpus's recordings, loaded once (raw, unscaled, unfiltered) and shared by every fold.

    ``derived(name, rid, fn)`` memoises a per-recording array (e.g. a baseline's filtered signal),
    so folds and methods do not repeat the same preprocessing. Method state never lives here.
    """

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._raw: dict[str, Recording] = {}
        self._derived: dict[tuple[str, str], np.ndarray] = {}

    def recording(self, recording_id: str) -> Recording:
        if recording_id not in self._raw:
            self._raw[recording_id] = self.corpus.load(recording_id, scaled=False)
        return self._raw[recording_id]

    def derived(self, name: str, recording_id: str, fn: Callable[[Recording], np.ndarray]) -> np.ndarray:
        key = (name, recording_id)
        if key not in self._derived:
            self._derived[key] = fn(self.recording(recording_id))
        return self._derived[key]

    def segment(self, row: pd.Series) -> Recording:
        """The raw samples of one trial (a ``Corpus.trials`` row) as a Recording of its own."""
        rec = self.recording(row["recording_id"])
        a, b = int(row["start"]), int(row["stop"])
        return rec.replace(signal=np.ascontiguousarray(rec.signal[:, a:b]), labels=None, repetition=None, tracks={})


@dataclass(frozen=True, eq=False)
class TrialSet:
    """The trials of one side of a fold, as a method receives them.

    ``trials`` are ``Corpus.trials`` rows in trial-id order; ``y`` their class indices into
    ``classes``; ``scales[(subject, session)]`` the per-channel divisor (C,) that applies to each
    trial's signal (ones = raw device units); ``scale_mode`` the rule that chose them;
    ``test_subjects`` the fold's held-out subjects (on both sides: a rule that treats a new user's
    calibration trials apart, such as the encoder methods' calibration floor, needs them).
    """

    source: SignalSource
    trials: pd.DataFrame
    classes: tuple[str, ...]
    scales: ScaleMap
    scale_mode: str
    test_subjects: tuple[str, ...] = ()
    y: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(self.trials["gesture_key"]) - set(index))
        if unknown:
            raise ValueError(f"trials hold classes outside {self.classes}: {unknown}")
        object.__setattr__(self, "y", np.array([index[g] for g in self.trials["gesture_key"]], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def corpus(self) -> Corpus:
        return self.source.corpus

    @property
    def trial_ids(self) -> np.ndarray:
        return self.trials["trial"].to_numpy(dtype=np.int64)

    def scale_of(self, subject: str, session: str) -> np.ndarray:
        return self.scales[(subject, session)]

    @property
    def of_test_subjects(self) -> np.ndarray:
        """(n_trials,) bool: the trial is a held-out subject's (on the training side of a low-label fold: one of
        the new user's calibration trials, which ``calib_share`` weights up)."""
        return self.trials["subject"].isin(self.test_subjects).to_numpy()


def _stored(corpus: Corpus, subject: str, session: str) -> np.ndarray:
    s = corpus.scale(subject, session)
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)  # as Corpus.load(scaled=True) does


def calibration_scale(source: SignalSource, trials: pd.DataFrame) -> np.ndarray:
    """A subject's scale from its calibration trials only: :func:`aemg.signal.session_scale` of their segments."""
    if trials.empty:
        raise ValueError("a calibration scale needs at least one calibration trial")
    return session_scale([source.segment(row) for _, row in trials.iterrows()])


def fold_scales(source: SignalSource, fold: Fold, mode: str) -> ScaleMap:
    """The divisor of every (subject, session) a fold touches, by ``mode`` (module docstring)."""
    if mode not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {mode!r}")
    corpus = source.corpus
    ids = set(fold.train_trials) | set(fold.test_trials)
    tr = corpus.trials[corpus.trials["trial"].isin(ids)]
    pairs = sorted(set(zip(tr["subject"], tr["session"])))
    if mode == "session":
        return {(s, ss): _stored(corpus, s, ss) for s, ss in pairs}
    calib = corpus.trials[corpus.trials["trial"].isin(set(fold.calibration_trials))]
    if calib.empty:  # no scale for the new user: the whole fold in raw device units
        n_ch = {rid: int(n) for rid, n in zip(corpus.recordings["recording_id"], corpus.recordings["n_channels"])}
        width = {(s, ss): n_ch[rid] for s, ss, rid in zip(tr["subject"], tr["session"], tr["recording_id"])}
        return {p: np.ones(width[p]) for p in pairs}
    own = {s: calibration_scale(source, calib[calib["subject"] == s]) for s in fold.test_subjects
           if (calib["subject"] == s).any()}
    return {(s, ss): own[s] if s in own else _stored(corpus, s, ss) for s, ss in pairs}


def fold_sets(source: SignalSource, fold: Fold, mode: str,
              classes: Sequence[str] | None = None) -> tuple[TrialSet, TrialSet]:
    """The (train, test) :class:`TrialSet` pair of a fold under scale ``mode``.

    ``classes`` default: the classes of the fold's training trials (sorted gesture keys).
    """

    t = source.corpus.trials.set_index("trial", drop=False)
    train = t.loc[list(fold.train_trials)].reset_index(drop=True)
    test = t.loc[list(fold.test_trials)].reset_index(drop=True)
    cls = tuple(classes) if classes is not None else classes_of(train)
    scales = fold_scales(source, fold, mode)
    held = tuple(fold.test_subjects)
    return TrialSet(source, train, cls, scales, mode, held), TrialSet(source, test, cls, scales, mode, held)
