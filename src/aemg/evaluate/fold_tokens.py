"""The token set as one fold sees it under ``--scale calibration``: the held-out subjects re-tokenized.

The tokens are amplitude-invariant because the event detector divides every channel's envelope by
its noise floor, and the stored token set estimates that floor over each subject's whole session,
test trials included (transductive, like the stored session scale). Under ``calibration`` a
held-out subject's sessions are tokenized again with a floor computed only from what a new user
gives before use:

* its calibration trials exist (LOSO k >= 1, within, split): the floor of those trials' raw
  samples alone, joined in time order through the same energy stage and percentile
  (:func:`aemg.tokens.tokenizer.span_floor`), used for all its sessions;
* none (LOSO k = 0): nothing of that user, so the per-channel median of the training subjects'
  session floors in raw device units (:func:`pooled_floor`). The median, because a new user on the
  same device mostly shares its noise (amplifier, quantisation, typical skin contact) and one
  training session with a loose electrode or a subject who never relaxed must not move it; a mean
  would follow such outliers.

Training subjects keep their own session floors (their sessions are labelled training data). A
short unlabelled rest-and-contraction period before use is not used: no corpus marks one yet.
Sessions are tokenized once per (session, floor) and signal source (a few seconds for a whole corpus).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np

from aemg.errors import DataFormatError

if TYPE_CHECKING:
    from aemg.evaluate.data import SignalSource, TrialSet
    from aemg.recording import Recording
    from aemg.tokens import TokenSet
    from aemg.tokens.tokenizer import SessionTokens


@dataclass(frozen=True)
class FoldTokenSet:
    """A fold's token set: ``token_set`` holds the sessions of the fold's subjects, trial ids as in the corpus;
    ``floors[subject]`` the floor (C,) each held-out subject was tokenized with; ``rule[subject]`` how it
    was made (``"calibration"``: its calibration trials; ``"pooled"``: the training subjects' median)."""

    token_set: TokenSet
    test_subjects: tuple[str, ...]
    floors: dict[str, np.ndarray]
    rule: dict[str, str]


def sessions_of(ts: TokenSet) -> list[tuple[str, str, list[str]]]:
    """``(subject, session, recording ids)`` of a token set, in its (corpus, time) order."""
    out: list[tuple[str, str, list[str]]] = []
    rec = ts.recordings
    for rid, subj, sess in zip(np.asarray(rec.id).astype(str), np.asarray(rec.subject).astype(str),
                               np.asarray(rec.session).astype(str)):
        if out and out[-1][:2] == (subj, sess):
            out[-1][2].append(rid)
        else:
            out.append((subj, sess, [rid]))
    return out


@dataclass
class _Cache:
    """What one :class:`SignalSource` has tokenized: sessions by (settings, session, floor), fold views."""

    sessions: dict[tuple[str, ...], SessionTokens] = field(default_factory=dict)
    views: dict[tuple[str, ...], FoldTokenSet] = field(default_factory=dict)


_CACHES: WeakKeyDictionary[SignalSource, _Cache] = WeakKeyDictionary()  # lives as long as its source
_MAX_VIEWS = 4  # views kept per source (the methods of one fold share one)


def _cache(source: SignalSource) -> _Cache:
    if source not in _CACHES:
        _CACHES[source] = _Cache()
    return _CACHES[source]


def _settings_key(ts: TokenSet) -> str:
    return json.dumps(ts.settings.to_meta(), sort_keys=True)


def session_tokens(source: SignalSource, ts: TokenSet, subject: str, session: str, rids: Sequence[str],
                   floor: np.ndarray | None) -> SessionTokens:
    """One session tokenized with ``ts``'s settings from its raw recordings (``floor`` None: its own estimate),
    made once per (source, settings, session, floor) in this process."""
    from aemg.tokens.tokenizer import tokenize_session

    fkey = "own" if floor is None else np.asarray(floor, np.float64).tobytes().hex()
    key = (_settings_key(ts), subject, session, fkey)
    cache = _cache(source).sessions
    if key not in cache:
        st = ts.settings
        recs = [source.recording(r) for r in rids]
        cache[key] = tokenize_session(recs, st.config, window_ms=st.window_ms, notch=st.notch, floor=floor)
    return cache[key]


def calibration_floor(source: SignalSource, ts: TokenSet, calibration: TrialSet | None, subject: str) -> np.ndarray:
    """A held-out subject's floor (C,) from its calibration trials among ``calibration.trials`` alone."""
    from aemg.tokens.tokenizer import span_floor

    tr = calibration.trials[calibration.trials["subject"].astype(str) == subject] if calibration is not None else None
    if tr is None or tr.empty:
        raise ValueError(f"{subject}: a calibration floor needs at least one calibration trial")
    order = {rid: i for i, rid in enumerate(np.asarray(ts.recordings.id).astype(str))}
    rows = sorted(zip(tr["recording_id"].astype(str), tr["start"].astype(int), tr["stop"].astype(int)),
                  key=lambda r: (order[r[0]], r[1]))
    rids = list(dict.fromkeys(r[0] for r in rows))
    pos = {rid: i for i, rid in enumerate(rids)}
    recs = [source.recording(r) for r in rids]
    return span_floor(recs, [(pos[r], a, z) for r, a, z in rows], ts.settings.config, notch=ts.settings.notch)


def pooled_floor(floors: Sequence[np.ndarray], where: str) -> np.ndarray:
    """The per-channel median of the training subjects' session floors (raw device units): the k = 0 floor."""
    widths = {len(f) for f in floors}
    if not floors or len(widths) != 1:
        raise DataFormatError(where, "training sessions with one channel count to pool their noise floors",
                              f"found channel counts {sorted(widths)}")
    return np.median(np.stack(floors), axis=0)


def fold_token_set(ts: TokenSet, train: TrialSet) -> FoldTokenSet:
    """The token set of a fold under the calibration rule (module docstring), from the fold's training side.

    Sessions of subjects outside the fold are left out; trials keep the corpus's trial numbers.
    """
    from aemg.tokens import TokenSetBuilder

    source = train.source
    held = tuple(sorted(train.test_subjects))
    if not held:
        raise ValueError("a calibration token set needs the fold's held-out subjects (TrialSet.test_subjects)")
    touched = set(train.trials["subject"].astype(str)) | set(held)
    sessions = [s for s in sessions_of(ts) if s[0] in touched]
    floors: dict[str, np.ndarray] = {}
    rule: dict[str, str] = {}
    calib_subjects = set(train.trials["subject"].astype(str)) & set(held)
    for s in held:
        if s in calib_subjects:
            floors[s], rule[s] = calibration_floor(source, ts, train, s), "calibration"
    if len(floors) < len(held):
        own = [session_tokens(source, ts, subj, sess, rids, None).floor for subj, sess, rids in sessions
               if subj not in set(held)]
        pool = pooled_floor(own, f"{source.corpus.path}")
        for s in held:
            if s not in floors:
                floors[s], rule[s] = pool, "pooled"
    key = (_settings_key(ts), *held, *(floors[s].tobytes().hex() for s in held), *sorted(touched))
    views = _cache(source).views
    if key in views:
        return views[key]
    tr = source.corpus.trials
    trial_ids = {(r, int(a), int(z)): int(t) for r, a, z, t in
                 zip(tr["recording_id"].astype(str), tr["start"], tr["stop"], tr["trial"])}
    st = ts.settings
    b = TokenSetBuilder(st.config, window_ms=st.window_ms, notch=st.notch,
                        meta={**{k: v for k, v in ts.meta.items() if k not in st.to_meta()},
                              "calibration_floor": {s: [float(v) for v in floors[s]] for s in held}})
    for subj, sess, rids in sessions:
        recs: list[Recording] = [source.recording(r) for r in rids]
        b.add_session(recs, session_tokens(source, ts, subj, sess, rids, floors.get(subj)), trial_ids)
    view = FoldTokenSet(b.build(float(st.fs)), held, floors, rule)
    if len(views) >= _MAX_VIEWS:
        views.pop(next(iter(views)))
    views[key] = view
    return view
