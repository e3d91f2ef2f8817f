"""Group assembly: the recent signal, queued segments and their token groups (content, onsets, ranks).

A detector decides *where* segments are (:class:`~aemg.tokens.detector.EventDetector`: events and
their segments; :class:`~aemg.tokens.windows.WindowDetector`: fixed windows) and hands them to one
:class:`GroupAssembler`, which keeps the history buffer the segments are read from, turns queued
segments into a :class:`GroupBatch` (token content from
:func:`~aemg.tokens.features.segment_features_rows`, per-channel activation onsets and ranks, a
running first activation per event across calls) and forgets samples no segment can need any more.
Both detectors use it by composition; neither reaches into the other's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from aemg.tokens.energy import DTYPE
from aemg.tokens.features import N_FEATURES, segment_features_rows

NEVER = np.iinfo(np.int64).max
"""First-activation sample of a channel not (yet) active."""


@dataclass
class GroupBatch:
    """Token groups (one per event segment) as arrays; ``G`` groups, ``C`` channels, ``F`` features.

    Per-channel times are in samples. ``onset`` is the channel's activation relative to the group's
    start (0 when active from the start; the group's length when not active by its end);
    ``event_onset`` is relative to the event's onset (-1 when not active by the group's end);
    ``rank`` orders channels by their activation in the event up to the group's end (ties share a
    rank, channels not active share the last one); ``duration`` counts the channel's active
    samples in the group.
    """

    event: np.ndarray  # (G,) int64 event id
    segment: np.ndarray  # (G,) int64 index of the segment within its event
    start: np.ndarray  # (G,) int64 first sample
    stop: np.ndarray  # (G,) int64 end (exclusive)
    content: np.ndarray  # (G, C, F) float32
    onset: np.ndarray  # (G, C) int64
    event_onset: np.ndarray  # (G, C) int64
    active: np.ndarray  # (G, C) bool
    rank: np.ndarray  # (G, C) int64
    duration: np.ndarray  # (G, C) int64

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def empty(cls, n_channels: int) -> GroupBatch:
        i1 = np.zeros(0, np.int64)
        i2 = np.zeros((0, n_channels), np.int64)
        return cls(i1, i1.copy(), i1.copy(), i1.copy(), np.zeros((0, n_channels, N_FEATURES), np.float32),
                   i2, i2.copy(), np.zeros((0, n_channels), bool), i2.copy(), i2.copy())

    @classmethod
    def concat(cls, parts: list[GroupBatch], n_channels: int) -> GroupBatch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(n_channels)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def dense_rank(first: np.ndarray) -> np.ndarray:
    """Dense ranks along the last axis (0 = earliest; equal values share a rank)."""
    order = np.argsort(first, axis=-1, kind="stable")
    srt = np.take_along_axis(first, order, axis=-1)
    new = np.ones_like(srt, dtype=np.int64)
    new[..., 0] = 0
    new[..., 1:] = srt[..., 1:] != srt[..., :-1]
    ranks = np.empty_like(new)
    np.put_along_axis(ranks, order, np.cumsum(new, axis=-1), axis=-1)
    return ranks


class History:
    """The recent high-passed signal and normalized envelope, time-major: ``x``, ``e`` are
    ``(capacity, C)`` buffers, one row per sample, so the token content gathers a segment's samples as
    whole rows (:func:`~aemg.tokens.features.segment_features_rows`). Appending writes each new
    sample once; trimming moves a start index (the kept tail is moved to the front only when the
    buffer is full)."""

    def __init__(self, n_channels: int) -> None:
        self.x = np.zeros((0, n_channels), DTYPE)
        self.e = np.zeros((0, n_channels), DTYPE)
        self.lo = self.hi = 0  # valid rows [lo, hi)
        self.start = 0  # absolute sample index of row lo

    def append(self, xf: np.ndarray, env: np.ndarray, inv_floor: np.ndarray) -> np.ndarray:
        """Append a ``(C, n)`` chunk; returns the normalized envelope ``env / floor``, ``(C, n)``."""
        n = xf.shape[1]
        if self.hi + n > self.x.shape[0]:
            kept = self.hi - self.lo
            if kept + n > self.x.shape[0] // 2:  # grow
                cap = max(2 * (kept + n), 256)
                for name in ("x", "e"):
                    new = np.empty((cap, self.x.shape[1]), DTYPE)
                    new[:kept] = getattr(self, name)[self.lo:self.hi]
                    setattr(self, name, new)
            else:
                self.x[:kept] = self.x[self.lo:self.hi]
                self.e[:kept] = self.e[self.lo:self.hi]
            self.lo, self.hi = 0, kept
        en = env * inv_floor[:, None]
        self.x[self.hi:self.hi + n] = xf.T
        self.e[self.hi:self.hi + n] = en.T
        self.hi += n
        return en

    def row(self, a: int) -> int:
        """The buffer row of absolute sample ``a``."""
        return self.lo + a - self.start

    def trim(self, keep: int) -> None:
        """Forget samples before absolute index ``keep``."""
        if keep > self.start:
            self.lo += keep - self.start
            self.start = keep

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, en)`` kept, as ``(C, n)`` arrays."""
        return self.x[self.lo:self.hi].T.copy(), self.e[self.lo:self.hi].T.copy()

    def load(self, start: int, hx: np.ndarray, he: np.ndarray) -> None:
        self.x = np.ascontiguousarray(np.asarray(hx, DTYPE).T)
        self.e = np.ascontiguousarray(np.asarray(he, DTYPE).T)
        self.lo, self.hi, self.start = 0, self.x.shape[0], int(start)


class GroupAssembler:
    """History buffer + queued segments -> :class:`GroupBatch` (see the module docstring).

    ``floor``: ``(C,)`` per-channel noise floor (the envelope is stored divided by it); a channel is
    active where its normalized envelope reaches ``channel_on``. Segments are queued as runs
    (:meth:`queue`) and assembled by :meth:`take`; sample indices are absolute since the last
    :meth:`reset`.
    """

    def __init__(self, floor: np.ndarray, channel_on: float) -> None:
        self.channel_on = float(channel_on)
        self.set_floor(floor)
        self.reset()

    def set_floor(self, floor: np.ndarray) -> None:
        """Use ``floor`` ``(C,)`` (positive) for the envelope appended from now on."""
        floor = np.asarray(floor, dtype=np.float64).copy()
        if floor.ndim != 1 or not np.all(floor > 0):
            raise ValueError("floor must be a (C,) array of positive values (see estimate_floor)")
        self.floor = floor
        self.n_channels = int(floor.shape[0])
        self.inv_floor = (1.0 / floor).astype(DTYPE)

    def reset(self) -> None:
        """Forget the history, the queue and the running first activations."""
        self.history = History(self.n_channels)
        # queued runs of segments: (event, index of the first segment, starts, stop of the last, event onset)
        self._queue: list[tuple[int, int, list[int], int, int]] = []
        self.cf_event = -1  # event whose channel first-activation samples are in cf
        self.cf = np.full(self.n_channels, NEVER, np.int64)

    def append(self, xf: np.ndarray, env: np.ndarray) -> np.ndarray:
        """Keep a ``(C, n)`` chunk of high-passed signal and envelope; returns ``env / floor``."""
        return self.history.append(xf, env, self.inv_floor)

    def queue(self, event: int, first_segment: int, starts: list[int], stop: int, event_onset: int) -> None:
        """Queue consecutive segments of one event: they start at ``starts``, the last ends at ``stop``."""
        self._queue.append((event, first_segment, starts, stop, event_onset))

    def trim(self, keep: int) -> None:
        """Forget samples before absolute index ``keep`` (no queued or future segment reads them)."""
        self.history.trim(keep)

    @contextmanager
    def provisional(self) -> Iterator[None]:
        """Segments queued and taken inside leave the queue and the running first activations as
        they were (for read-only previews of groups not yet released)."""
        saved = (self._queue, self.cf_event, self.cf)
        self._queue = []
        try:
            yield
        finally:
            self._queue, self.cf_event, self.cf = saved

    def state_dict(self) -> dict[str, Any]:
        hx, he = self.history.state()
        return {"hstart": self.history.start, "hx": hx, "he": he, "cf_event": self.cf_event, "cf": self.cf.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = History(self.n_channels)
        self.history.load(int(state["hstart"]), state["hx"], state["he"])
        self._queue = []
        self.cf_event = int(state["cf_event"])
        self.cf = np.asarray(state["cf"], dtype=np.int64).copy()

    def take(self) -> GroupBatch:
        """The queued segments as groups (content, onsets, ranks); the queue is emptied."""
        pend, self._queue = self._queue, []
        if not pend:
            return GroupBatch.empty(self.n_channels)
        hist = self.history
        # one run of consecutive segments per queued entry
        counts = np.array([len(q[2]) for q in pend])
        run_start = np.cumsum(counts) - counts
        a = np.array([t for q in pend for t in q[2]], np.int64)
        b = np.empty_like(a)  # a segment ends where the next one of its run starts
        b[:-1] = a[1:]
        b[run_start + counts - 1] = [q[3] for q in pend]
        ev = np.repeat(np.array([q[0] for q in pend], np.int64), counts)
        seg = np.arange(len(a), dtype=np.int64) + np.repeat(np.array([q[1] for q in pend]) - run_start, counts)
        eon = np.repeat(np.array([q[4] for q in pend], np.int64), counts)
        lengths = b - a
        row = hist.row(0)  # gathered from the whole buffers, which are contiguous (no copy)
        content, first_rel, duration = segment_features_rows(hist.x, hist.e, a + row, b + row, self.channel_on)
        first_in = np.where(first_rel >= 0, a[:, None] + first_rel, NEVER)  # (G, C) absolute
        # first activation in the event up to each group's end: a running min over each event's groups
        # (rows are in event order; offsets that shrink from event to event keep the runs apart)
        big = np.int64(1) << 45  # later than any sample index
        evidx = np.zeros(len(ev), np.int64)  # 0, 1, ... per event (rows come in event order)
        np.cumsum(ev[1:] != ev[:-1], out=evidx[1:])
        off = (evidx[-1] - evidx) * (big << 1)
        vals = np.minimum(first_in, big) + off[:, None]
        if self.cf_event == ev[0]:  # the event continues from the previous call
            vals = np.vstack([np.minimum(self.cf, big)[None, :] + off[0], vals])
            first = np.minimum.accumulate(vals, axis=0)[1:] - off[:, None]
        else:
            first = np.minimum.accumulate(vals, axis=0) - off[:, None]
        first = np.where(first >= big, NEVER, first)
        self.cf_event, self.cf = int(ev[-1]), first[-1].copy()
        active = first < NEVER
        onset = np.where(active, np.maximum(first - a[:, None], 0), lengths[:, None])
        event_onset = np.where(active, first - eon[:, None], -1)
        rank = dense_rank(first)  # channels not yet active hold NEVER: they share the last rank
        return GroupBatch(ev, seg, a, b, content, onset.astype(np.int64, copy=False),
                          event_onset.astype(np.int64, copy=False), active, rank, duration)


__all__ = ["NEVER", "GroupAssembler", "GroupBatch", "History", "dense_rank"]
