"""Recordings -> events -> segments -> tokens and groups (a :class:`~aemg.tokens.tokenset.TokenSet`).

One subject-session at a time: its noise floor is estimated over all its recordings (label-free),
then one :class:`~aemg.tokens.detector.EventDetector` runs over the session's recordings **joined in
time order** (corpus order), its state carried from file to file, with a recording boundary marked
between them so that no token group straddles two recordings. Why joined: many datasets store one
repetition per file and cut the files from one continuous session; a gesture file that ends
mid-contraction continues into the next file, and a detector restarted per file would see that
release as a new contraction at the start of the next (often rest) file. Events are stored per
recording piece: a piece that began in an earlier recording (or was on from the session's first
sample) has ``open_start``, one that continues past its recording's end (or was on at the end of the
session) has ``open_end``.

:class:`~aemg.tokens.windows.WindowDetector` is the fixed-window tokenizer of the ablation: same
interface, every window of ``window_ms`` (restarting at each recording) is one group, with the same
token content. :class:`~aemg.tokens.builder.TokenSetBuilder` turns the sessions' outputs into tables.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.recording import Recording
from aemg.tokens.builder import TokenSetBuilder
from aemg.tokens.detector import DetectorConfig, Event, EventDetector
from aemg.tokens.energy import EnergyEnvelope, estimate_floor, floor_from_samples, floor_samples
from aemg.tokens.features import FEATURE_NAMES
from aemg.tokens.groups import GroupBatch
from aemg.tokens.tokenset import TokenSet
from aemg.tokens.windows import WindowDetector

if TYPE_CHECKING:
    from aemg.corpus import Corpus

log = logging.getLogger(__name__)


BLOCK = 16384
"""Samples per block when tokenizing offline: big enough to amortize numpy's per-call cost, small
enough that a block's temporaries stay in cache (measured on 3DC and UCI: best between 8k and 32k)."""


def _blocks(recs: Sequence[Recording], size: int) -> Iterable[tuple[np.ndarray, list[int]]]:
    """The session's recordings joined in time order, in blocks of about ``size`` samples:
    ``(block (C, n), cuts)`` with ``cuts`` the positions in the block where a recording starts."""
    pieces: list[np.ndarray] = []
    cuts: list[int] = []
    n = 0
    for i, rec in enumerate(recs):
        sig = rec.signal
        if i:
            cuts.append(n)  # n == 0: the recording starts a block
        pos = 0
        while pos < sig.shape[1]:
            take = min(size - n, sig.shape[1] - pos)
            pieces.append(sig[:, pos:pos + take])
            n += take
            pos += take
            if n >= size:
                yield (np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0]), cuts
                pieces, cuts, n = [], [], 0
    if n:
        yield (np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0]), cuts


def _session_key(rec: Recording) -> tuple[str, str]:
    return rec.subject, rec.session


def iter_sessions(recordings: Iterable[Recording]) -> Iterable[list[Recording]]:
    """Group consecutive recordings of the same subject and session (input in corpus order)."""
    cur: list[Recording] = []
    for rec in recordings:
        if cur and _session_key(rec) != _session_key(cur[0]):
            yield cur
            cur = []
        cur.append(rec)
    if cur:
        yield cur


@dataclass
class SessionTokens:
    """The tokenizer's output for one subject-session (recordings joined in time order)."""

    groups: GroupBatch  # start/stop in session samples, event ids from 0
    group_recording: np.ndarray  # (G,) position of each group's recording in the session
    offsets: np.ndarray  # (R + 1,) first sample of each recording in the session, then the total
    pieces: list[dict[str, Any]]  # event pieces per recording (see tokenize_session)
    floor: np.ndarray  # (C,) the session's noise floor
    events: list[Event]  # session-level events (samples since the session's start)


def tokenize_session(recs: Sequence[Recording], config: DetectorConfig | None = None, *,
                     window_ms: float | None = None, notch: bool = False,
                     floor: np.ndarray | None = None) -> SessionTokens:
    """Tokenize one subject-session (recordings in time order).

    ``floor`` ``(C,)``: a given noise floor (same units as the signals) instead of the session's own
    estimate (None); e.g. a new user's floor from its calibration trials alone (:func:`span_floor`).
    Equivalent to ``EventDetector(fs, estimate_floor(signals))`` fed each recording with
    :meth:`~EventDetector.boundary` between them, then flushed (one energy pass serves both).
    Event pieces are dicts with ``recording`` (position in ``recs``), ``event``, ``onset``,
    ``offset``, ``confirmed_at``, ``event_onset`` (the event's true onset, negative when it began in
    an earlier recording), all in that recording's samples, and ``open_start``, ``open_end``.
    """
    cfg = config or DetectorConfig()
    fs = float(recs[0].fs)
    if any(r.fs != fs or r.n_channels != recs[0].n_channels for r in recs):
        raise ValueError(f"{recs[0].subject}/{recs[0].session}: recordings of one session need the same "
                         "rate and channel count")
    mains = recs[0].mains_hz if notch else None
    offsets = np.cumsum([0] + [r.n_samples for r in recs])
    # one pass of the energy stage over the joined session, in cache-sized blocks, serves the floor
    # and the detector
    stage = EnergyEnvelope(fs, recs[0].n_channels, highpass_hz=cfg.highpass_hz, order=cfg.highpass_order,
                           smooth_ms=cfg.smooth_ms, mains_hz=mains)
    blocks, samples, pos = [], [], 0
    for x, cuts in _blocks(recs, BLOCK):
        xf, env = stage.process(x)
        blocks.append((xf, env, cuts))
        samples.append(floor_samples(env, pos, fs, stage.warmup))
        pos += x.shape[1]
    sam = np.concatenate(samples, axis=1)
    if sam.shape[1] == 0:  # shorter than the warm-up: use what there is
        sam = np.concatenate([e for _, e, _ in blocks], axis=1)
    if floor is None:
        floor = floor_from_samples(sam, cfg.floor_percentile)
    else:
        floor = np.asarray(floor, np.float64)
        if floor.shape != (recs[0].n_channels,) or not (np.isfinite(floor) & (floor > 0)).all():
            raise ValueError(f"{recs[0].subject}/{recs[0].session}: a given floor must be {recs[0].n_channels} "
                             f"positive finite values, got {floor!r}")
    # the detector takes over the stage with its state, as if it had run it itself
    det = (EventDetector(fs, floor, cfg, mains_hz=mains, energy=stage) if window_ms is None
           else WindowDetector(fs, floor, window_ms, cfg, mains_hz=mains, energy=stage))
    groups = GroupBatch.concat([det.process_energy(xf, env, cuts) for xf, env, cuts in blocks] + [det.flush()],
                               det.n_channels)
    events = det.pop_events()
    total = int(offsets[-1])
    rec_of_group = np.searchsorted(offsets, groups.start, side="right") - 1
    bounds = offsets.tolist()
    pieces = []
    if window_ms is None:
        for e in events:
            first = bisect_right(bounds, e.onset) - 1  # plain ints: one event at a time, numpy costs more
            last = bisect_right(bounds, max(e.offset - 1, e.onset)) - 1
            for i in range(first, min(last, len(recs) - 1) + 1):
                a, b = bounds[i], bounds[i + 1]
                pieces.append({"recording": i, "event": e.event, "onset": max(e.onset, a) - a,
                               "offset": min(e.offset, b) - a, "confirmed_at": e.confirmed_at - a,
                               "event_onset": e.onset - a,
                               "open_start": bool(e.open_start or e.onset < a),
                               "open_end": bool(e.offset > b or (e.open_end and e.offset >= total))})
    return SessionTokens(groups, rec_of_group, offsets, pieces, floor, events)


def span_floor(recs: Sequence[Recording], spans: Sequence[tuple[int, int, int]],
               config: DetectorConfig | None = None, *, notch: bool = False) -> np.ndarray:
    """The noise floor ``(C,)`` from the given sample spans only: ``(position in recs, start, stop)``
    in that recording's samples, joined in the given order through one energy stage, the percentile
    of ``config`` (:func:`~aemg.tokens.energy.estimate_floor`): what a new user's calibration gives.
    All of ``recs`` as whole spans gives :func:`tokenize_session`'s own floor."""
    cfg = config or DetectorConfig()
    if not spans:
        raise ValueError("span_floor needs at least one span")
    mains = recs[0].mains_hz if notch else None
    return estimate_floor((recs[i].signal[:, a:b] for i, a, b in spans), float(recs[0].fs),
                          percentile=cfg.floor_percentile, highpass_hz=cfg.highpass_hz, order=cfg.highpass_order,
                          smooth_ms=cfg.smooth_ms, mains_hz=mains)


def tokenize_recordings(recordings: Iterable[Recording], config: DetectorConfig | None = None, *,
                        window_ms: float | None = None, notch: bool = False,
                        trial_ids: dict[tuple[str, int, int], int] | None = None,
                        progress: bool = False, meta: dict[str, Any] | None = None) -> TokenSet:
    """Tokenize recordings given in corpus order (subject, session, time) into a :class:`TokenSet`.

    ``window_ms`` switches to the fixed-window tokenizer (whose "events" are its windows; it stores
    no event pieces). ``trial_ids`` maps ``(recording_id, start, stop)`` to the corpus's trial number
    (else trials are numbered in order). Every labelled trial is kept, with or without groups; a
    group belongs to the trial it overlaps most (-1: none).
    """
    cfg = config or DetectorConfig()
    b = TokenSetBuilder(cfg, window_ms=window_ms, notch=notch, meta=meta)
    sessions = iter_sessions(recordings)
    if progress:
        from tqdm import tqdm

        sessions = tqdm(sessions, desc="tokenize", unit="session")
    fs = None
    for recs in sessions:
        fs = fs or float(recs[0].fs)
        if float(recs[0].fs) != fs:
            raise ValueError(f"all recordings must share one rate; got {recs[0].fs} and {fs} Hz")
        b.add_session(recs, tokenize_session(recs, cfg, window_ms=window_ms, notch=notch), trial_ids)
    return b.build(fs or 0.0)


def tokenize_corpus(corpus: Corpus, config: DetectorConfig | None = None, *, window_ms: float | None = None,
                    notch: bool = False, progress: bool = False) -> TokenSet:
    """Tokenize a prepared :class:`~aemg.corpus.Corpus` (recordings in corpus order)."""
    tr = corpus.trials
    trial_ids = {(r, int(a), int(z)): int(t) for r, a, z, t in
                 zip(tr["recording_id"], tr["start"], tr["stop"], tr["trial"])} if len(tr) else {}
    meta = {"corpus": str(corpus.path), "corpus_hash": corpus.hash, "dataset": corpus.dataset}
    return tokenize_recordings(corpus.iter_recordings(), config, window_ms=window_ms, notch=notch,
                               trial_ids=trial_ids, progress=progress, meta=meta)


__all__ = ["FEATURE_NAMES", "SessionTokens", "WindowDetector", "iter_sessions", "span_floor", "tokenize_corpus",
           "tokenize_recordings", "tokenize_session"]
