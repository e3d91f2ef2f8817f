"""The causal, stateful contraction-event detector: one class for offline corpora and live streams.

``det = EventDetector(fs, floor)``, then ``groups = det.process(chunk)`` for each ``(C, n)`` chunk in
time order and ``det.flush()`` at the end of the recording; ``det.pop_events()`` returns the events
that have ended. The offline result on a recording is, by definition, this detector run over it
whole; chunks of any size give the same events and the same tokens, bit for bit (every stage is
sample-sequential with explicit state; see :mod:`aemg.tokens.energy`).

Per sample: ``env_c / floor_c`` (the channel's TKEO envelope over its session noise floor) is
combined over channels by the **median** (robust to one noisy or mains-drowned channel, and it
kept weak gestures above threshold better than the mean on the real datasets; for an even channel
count the upper median, so "the level reaches x" means "at least half of the channels reach x",
which is decided by counting, without sorting), then:

1. hysteresis: the state turns on when the combined level reaches ``on`` x floor and off when it
   falls below ``off`` x floor;
2. onset: the start of the above-``off`` run that led to the on crossing, at most ``backtrack_ms``
   before it (the on threshold is reached on the way up, later than the contraction began);
3. gap merging: an off period shorter than ``merge_gap_ms`` followed by a new on crossing continues
   the same event;
4. minimum duration: an event is *confirmed* once it has lasted ``min_duration_ms``; shorter ones are
   dropped. ``confirmed_at - onset`` is the event's detection delay;
5. segments: a confirmed event is cut from its onset into successive segments of ``max_span_ms``
   (the last one shorter), each emitted as a token group as soon as it is complete and known to lie
   inside the event (segments before confirmation are emitted at confirmation).

An event whose combined level was above ``off`` from the first sample after a reset (the recording
started mid-contraction) has ``open_start``; one still on at :meth:`flush` has ``open_end``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from aemg.tokens.energy import DTYPE, EnergyEnvelope, ms_to_samples
from aemg.tokens.features import N_FEATURES, segment_features_rows

_NEVER = np.iinfo(np.int64).max
IDLE, ACTIVE, GAP = 0, 1, 2
SETTLE_MS = 25.0  # after a reset, samples this early never count as "below off" (start-up transient)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector parameters: times in ms, levels in multiples of the channel's session noise floor.

    The defaults are one setting for every dataset (chosen on the real data in ``../shared/data``;
    see docs/tokens.md for how).
    """

    highpass_hz: float = 20.0  # causal Butterworth high-pass before TKEO
    highpass_order: int = 4
    smooth_ms: float = 100.0  # moving average of |TKEO|
    floor_percentile: float = 10.0  # noise floor = this percentile of the envelope over the session
    on: float = 5.0  # onset threshold on the median normalized envelope, x floor
    off: float = 2.0  # offset threshold (hysteresis), x floor
    channel_on: float = 4.0  # a channel is active (for activation onsets and ranks) above this, x floor
    min_duration_ms: float = 500.0  # shorter events are dropped (also the least detection delay)
    merge_gap_ms: float = 200.0  # off periods up to this long do not end an event
    backtrack_ms: float = 100.0  # onset search back from the on crossing to the off crossing
    max_span_ms: float = 100.0  # segments (token groups) span at most this
    combine: str = "median"  # "median" or "mean" of normalized channel envelopes

    def __post_init__(self) -> None:
        if not self.on > self.off > 0:
            raise ValueError(f"need on > off > 0 (multiples of the floor), got on={self.on}, off={self.off}")
        if self.combine not in ("median", "mean"):
            raise ValueError(f"combine must be 'median' or 'mean', got {self.combine!r}")
        for f in ("smooth_ms", "min_duration_ms", "max_span_ms"):
            if not getattr(self, f) > 0:
                raise ValueError(f"{f} must be > 0 ms, got {getattr(self, f)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Event:
    """One contraction event, in samples since the detector's last reset."""

    event: int  # id, counting from 0 since the last reset
    onset: int  # first sample
    offset: int  # end (exclusive)
    confirmed_at: int  # sample at which the event was confirmed (its detection time)
    open_start: bool  # the level was above `off` from the reset on: on at the recording's start
    open_end: bool  # still on when the recording ended (flush)
    n_segments: int

    @property
    def delay(self) -> int:
        """Detection delay in samples: confirmation minus onset."""
        return self.confirmed_at - self.onset


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


@dataclass
class _State:
    clock: int = 0  # absolute index of the next sample
    s: int = 0  # hysteresis state of the last sample
    last_below: int = -1  # last sample with level < off
    phase: int = IDLE
    event: int = -1
    onset: int = 0
    active_since: int = 0
    confirmed: bool = False
    confirmed_at: int = -1
    open_start: bool = False
    last_off: int = 0
    seg_next: int = 0
    seg_count: int = 0
    last_end: int = 0  # offset of the previous event
    next_event: int = 0
    cf_event: int = -1  # event whose channel first-activation samples are in cf
    cf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class _History:
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


class EventDetector:
    """Causal multi-channel contraction-event detector and tokenizer (see the module docstring).

    ``floor``: ``(C,)`` per-channel noise floor of the subject's session, from
    :func:`~aemg.tokens.energy.estimate_floor` with the same config (label-free calibration, kept in
    :meth:`state_dict` so a live decoder restores it exactly). ``mains_hz`` adds a notch.
    """

    def __init__(self, fs: float, floor: np.ndarray, config: DetectorConfig | None = None, *,
                 mains_hz: float | None = None, energy: EnergyEnvelope | None = None) -> None:
        self.config = config or DetectorConfig()
        self.fs = float(fs)
        self.floor = np.asarray(floor, dtype=np.float64).copy()
        if self.floor.ndim != 1 or not np.all(self.floor > 0):
            raise ValueError("floor must be a (C,) array of positive values (see estimate_floor)")
        self.n_channels = int(self.floor.shape[0])
        self._inv_floor = (1.0 / self.floor).astype(DTYPE)
        cfg = self.config
        # ``energy``: an energy stage built with this config to take over, with its state (the offline
        # tokenizer ran it over the session for the floor)
        self.energy = energy or EnergyEnvelope(self.fs, self.n_channels, highpass_hz=cfg.highpass_hz,
                                               order=cfg.highpass_order, smooth_ms=cfg.smooth_ms,
                                               mains_hz=mains_hz)
        self.mains_hz = mains_hz
        self.min_len = ms_to_samples(cfg.min_duration_ms, self.fs)
        self.gap_len = ms_to_samples(cfg.merge_gap_ms, self.fs)
        self.span = ms_to_samples(cfg.max_span_ms, self.fs)
        self.backtrack = int(round(cfg.backtrack_ms * self.fs / 1000.0))
        self.warmup = self.energy.warmup
        self.settle = ms_to_samples(SETTLE_MS, self.fs)
        if energy is None:
            self.reset()
        else:
            self._reset_events()

    # ------------------------------------------------------------------ state
    def reset(self, x0: np.ndarray | None = None) -> None:
        """Start a new recording: filters settle on ``x0`` (or the next chunk's first sample);
        sample and event counters restart at 0. The floor is kept."""
        self.energy.reset(x0)
        self._reset_events()

    def _reset_events(self) -> None:
        self._st = _State(cf=np.full(self.n_channels, _NEVER, np.int64))
        self._hist = _History(self.n_channels)
        self._events: list[Event] = []
        # queued segments: (event, index of the first segment, starts, stop of the last, event onset)
        self._pending: list[tuple[int, int, list[int], int, int]] = []
        self._cuts: list[int] = []  # recording boundaries (see boundary) not yet passed by a segment

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this detector is: floor, config, filter and
        envelope state, history buffer and event state (plain numpy arrays and numbers)."""
        st = {f.name: getattr(self._st, f.name) for f in fields(_State)}
        st["cf"] = self._st.cf.copy()
        return {"fs": self.fs, "floor": self.floor.copy(), "config": self.config.to_dict(),
                "mains_hz": self.mains_hz, "energy": self.energy.state_dict(), "state": st,
                "hstart": self._hist.start, "hx": self._hist.state()[0], "he": self._hist.state()[1],
                "events": [asdict(e) for e in self._events], "cuts": list(self._cuts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if DetectorConfig.from_dict(state["config"]) != self.config or float(state["fs"]) != self.fs:
            raise ValueError("state was saved from a detector with another config or rate")
        self.floor = np.asarray(state["floor"], dtype=np.float64).copy()
        self._inv_floor = (1.0 / self.floor).astype(DTYPE)
        self.energy.load_state_dict(state["energy"])
        st = dict(state["state"])
        st["cf"] = np.asarray(st["cf"], dtype=np.int64).copy()
        self._st = _State(**st)
        self._hist = _History(self.n_channels)
        self._hist.load(int(state["hstart"]), state["hx"], state["he"])
        self._events = [Event(**e) for e in state["events"]]
        self._pending = []
        self._cuts = [int(c) for c in state.get("cuts", [])]

    def pop_events(self) -> list[Event]:
        """The events that have ended since the last call (in time order)."""
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------ processing
    def normalized_envelope(self, env: np.ndarray) -> np.ndarray:
        """``env / floor`` per channel (as a product with the floor's inverse)."""
        return env * self._inv_floor[:, None]

    def level(self, en: np.ndarray) -> np.ndarray:
        """The combined level ``(n,)`` of normalized envelopes ``(C, n)`` (for plots and checks):
        ``median`` = the upper median, the level that at least half of the channels reach."""
        if self.config.combine == "median":
            return np.sort(en, axis=0)[en.shape[0] // 2]
        return en.mean(axis=0)

    def _decide(self, en: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(level >= on, level < off)`` per sample, without sorting: the upper median reaches a
        threshold exactly when at least ``ceil(C/2)`` channels do."""
        cfg = self.config
        if cfg.combine == "median":
            need = self.n_channels - self.n_channels // 2
            acc = np.uint8 if self.n_channels < 256 else np.int32  # counts in bytes: 3x faster than int32
            up = (en >= cfg.on).view(np.uint8).sum(axis=0, dtype=acc) >= need
            below = (en < cfg.off).view(np.uint8).sum(axis=0, dtype=acc) > self.n_channels - need
            return up, below
        m = en.mean(axis=0)
        return m >= cfg.on, m < cfg.off

    def process(self, chunk: np.ndarray) -> GroupBatch:
        """Consume the next ``(C, n)`` chunk; return the token groups completed in it."""
        xf, env = self.energy.process(chunk)
        return self.process_energy(xf, env)

    def process_energy(self, xf: np.ndarray, env: np.ndarray, cuts: Sequence[int] = ()) -> GroupBatch:
        """:meth:`process` after the energy stage: for a caller that ran this detector's
        :attr:`energy` stage itself (the offline tokenizer, which needs the session's envelope for
        the floor anyway; results are identical). ``cuts``: positions in the chunk where a new
        recording starts (:meth:`boundary` there; 0 = before this chunk)."""
        n = xf.shape[1]
        if n == 0:
            return GroupBatch.empty(self.n_channels)
        st = self._st
        n0 = st.clock
        for c in cuts:
            if 0 <= c < n and (not self._cuts or self._cuts[-1] != n0 + c):
                self._cuts.append(n0 + int(c))
        en = self._hist.append(xf, env, self._inv_floor)  # env / floor, kept for the token content
        # hysteresis, vectorized: each sample takes the decision of the last decisive sample, so the
        # state changes exactly at the decisive samples whose decision differs from the previous one
        up, below = self._decide(en)
        if n0 < self.settle:  # the first samples after a reset are no evidence of rest (filter and
            below[: self.settle - n0] = False  # TKEO still settling on the recording's first values)
        dec = np.flatnonzero(up | below)
        bl = np.flatnonzero(below)
        if dec.size:
            rise = up[dec]
            change = np.flatnonzero(rise[1:] != rise[:-1]) + 1
            if rise[0] != bool(st.s):
                change = np.concatenate([[0], change])
            if change.size:
                edges = dec[change]
                # last below-off sample before each edge (earlier chunks: st.last_below)
                j = np.searchsorted(bl, edges)
                lb_before = np.where(j > 0, n0 + bl[np.maximum(j - 1, 0)], st.last_below) if bl.size else (
                    np.full(len(edges), st.last_below))
                for i, r, lbi in zip(edges.tolist(), rise[change].tolist(), lb_before.tolist()):
                    t = n0 + i
                    self._advance(t)
                    if r:
                        self._rise(t, lbi)
                    else:
                        st.phase, st.last_off = GAP, t
            st.s = int(rise[-1])
        self._advance(n0 + n)
        st.clock = n0 + n
        if bl.size:
            st.last_below = n0 + int(bl[-1])
        out = self._compute_pending()
        self._trim()
        return out

    def flush(self) -> GroupBatch:
        """End of the recording: close the event in progress (``open_end`` if still on) and return
        its remaining groups. Call :meth:`reset` before the next recording."""
        st = self._st
        if st.phase == ACTIVE and st.confirmed:
            self._end_event(st.clock, open_end=True)
        elif st.phase == GAP and st.confirmed:
            self._end_event(st.last_off, open_end=False)
        st.phase = IDLE
        return self._compute_pending()

    def _rise(self, t: int, last_below: int) -> None:
        st = self._st
        if st.phase == GAP:  # merge: the gap was short enough (else _advance ended the event)
            st.phase, st.active_since = ACTIVE, t
            return
        st.phase = ACTIVE
        st.event = st.next_event
        st.next_event += 1
        st.onset = max(last_below + 1, t - self.backtrack, st.last_end, 0)
        st.open_start = last_below < 0  # above `off` ever since the reset
        st.active_since = t
        st.confirmed = False
        st.confirmed_at = -1
        st.seg_next = st.onset
        st.seg_count = 0

    def _advance(self, t_until: int) -> None:
        """Apply the time-driven rules for samples up to ``t_until - 1``."""
        st = self._st
        if st.phase == ACTIVE:
            if not st.confirmed:
                at = max(st.onset + self.min_len - 1, st.active_since)
                if at < t_until:
                    st.confirmed, st.confirmed_at = True, at
            if st.confirmed:
                self._emit_until(t_until)
        elif st.phase == GAP:
            if st.confirmed:
                self._emit_until(st.last_off)
            if st.last_off + self.gap_len < t_until:
                if st.confirmed:
                    self._end_event(st.last_off, open_end=False)
                st.phase = IDLE  # an unconfirmed (too short) event is dropped

    def boundary(self) -> None:
        """The next sample starts a new recording of the same session, joined in time order: the
        state carries on (an event may continue), but no segment straddles this point."""
        if not self._cuts or self._cuts[-1] != self._st.clock:
            self._cuts.append(self._st.clock)

    def pending_groups(self) -> GroupBatch:
        """Provisional groups of the event in progress that is not yet confirmed (shorter than the
        minimum duration so far): its segments complete by now (``max_span`` each from its onset),
        exactly as :meth:`process` will release them if the event is confirmed. Empty when there
        is no unconfirmed event. Read-only: the detector's state and later outputs are unchanged.
        A live decoder can act on these as soon as the first 100 ms segment closes and discard them
        if the event is dropped (never confirmed; its id is then never released)."""
        st = self._st
        if st.phase == IDLE or st.confirmed:
            return GroupBatch.empty(self.n_channels)
        saved = (self._pending, self._cuts, st.seg_next, st.seg_count, st.cf_event, st.cf)
        try:
            self._pending, self._cuts = [], list(self._cuts)
            self._emit(st.clock if st.phase == ACTIVE else st.last_off)
            return self._compute_pending()
        finally:
            self._pending, self._cuts = saved[0], saved[1]
            st.seg_next, st.seg_count, st.cf_event, st.cf = saved[2:]

    def _emit(self, limit: int, final: bool = False) -> None:
        """Queue the event's segments from ``seg_next``: those complete by ``limit`` (a segment is
        complete at ``max_span`` or at a recording boundary); with ``final``, also the last, shorter
        one ending at ``limit`` (the event's offset)."""
        st = self._st
        pos = st.seg_next
        if not final and limit - pos < self.span and not (self._cuts and self._cuts[0] <= limit):
            return  # nothing complete yet (the common case, checked first)
        self._cuts = [c for c in self._cuts if c > pos]
        starts: list[int] = []  # plain ints: most calls queue a segment or two, numpy would cost more
        for stop_at in [c for c in self._cuts if c <= limit] + [limit]:
            closed = final or stop_at < limit or stop_at in self._cuts
            length = stop_at - pos
            k = -(-length // self.span) if closed else length // self.span
            if k > 0:
                starts.extend(range(pos, pos + self.span * k, self.span))
                pos = min(pos + self.span * k, stop_at)
            if not closed:
                break
        if starts:
            self._pending.append((st.event, st.seg_count, starts, pos, st.onset))
            st.seg_count += len(starts)
            st.seg_next = pos
            self._cuts = [c for c in self._cuts if c > pos]

    def _emit_until(self, limit: int) -> None:
        self._emit(limit)

    def _end_event(self, offset: int, *, open_end: bool) -> None:
        st = self._st
        self._emit(offset, final=True)
        self._events.append(Event(st.event, st.onset, offset, st.confirmed_at, st.open_start,
                                  open_end, st.seg_count))
        st.last_end = offset
        st.phase = IDLE

    def _trim(self) -> None:
        st = self._st
        keep = st.clock - self.backtrack - 1
        if st.phase != IDLE:
            keep = min(keep, st.seg_next)
        self._hist.trim(keep)

    def _compute_pending(self) -> GroupBatch:
        pend, self._pending = self._pending, []
        c = self.n_channels
        if not pend:
            return GroupBatch.empty(c)
        st = self._st
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
        row = self._hist.row(0)  # gathered from the whole buffers, which are contiguous (no copy)
        content, first_rel, duration = segment_features_rows(self._hist.x, self._hist.e, a + row, b + row,
                                                             self.config.channel_on)
        first_in = np.where(first_rel >= 0, a[:, None] + first_rel, _NEVER)  # (G, C) absolute
        # first activation in the event up to each group's end: a running min over each event's groups
        # (rows are in event order; offsets that shrink from event to event keep the runs apart)
        big = np.int64(1) << 45  # later than any sample index
        evidx = np.zeros(len(ev), np.int64)  # 0, 1, ... per event (rows come in event order)
        np.cumsum(ev[1:] != ev[:-1], out=evidx[1:])
        off = (evidx[-1] - evidx) * (big << 1)
        vals = np.minimum(first_in, big) + off[:, None]
        if st.cf_event == ev[0]:  # the event continues from the previous call
            vals = np.vstack([np.minimum(st.cf, big)[None, :] + off[0], vals])
            first = np.minimum.accumulate(vals, axis=0)[1:] - off[:, None]
        else:
            first = np.minimum.accumulate(vals, axis=0) - off[:, None]
        first = np.where(first >= big, _NEVER, first)
        st.cf_event, st.cf = int(ev[-1]), first[-1].copy()
        active = first < _NEVER
        onset = np.where(active, np.maximum(first - a[:, None], 0), lengths[:, None])
        event_onset = np.where(active, first - eon[:, None], -1)
        rank = dense_rank(first)  # channels not yet active hold _NEVER: they share the last rank
        return GroupBatch(ev, seg, a, b, content, onset.astype(np.int64, copy=False),
                          event_onset.astype(np.int64, copy=False), active, rank, duration)
