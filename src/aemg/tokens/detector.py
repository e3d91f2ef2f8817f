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

This module is the hysteresis and segmentation state machine only: the segments it cuts go to a
:class:`~aemg.tokens.groups.GroupAssembler` (history buffer, token content, activation onsets and
ranks), which the fixed-window tokenizer (:mod:`aemg.tokens.windows`) uses the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from aemg.tokens.energy import EnergyEnvelope, ms_to_samples
from aemg.tokens.groups import GroupAssembler, GroupBatch, dense_rank

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


@dataclass(frozen=True)
class InProgress:
    """The event in progress, read-only (for a live decoder): samples since the detector's last reset."""

    event: int  # its id
    onset: int  # first sample
    confirmed: bool
    confirmed_at: int  # sample of confirmation, -1 while unconfirmed
    active: bool  # above `off` now (False: in a gap that may still merge)
    last_off: int  # in a gap: the sample where the level fell below `off`


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
        cfg = self.config
        # the history, token content, onsets and ranks of the segments this state machine cuts
        self._groups = GroupAssembler(floor, cfg.channel_on)
        self.n_channels = self._groups.n_channels
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

    @property
    def floor(self) -> np.ndarray:
        """``(C,)`` the per-channel noise floor."""
        return self._groups.floor

    # ------------------------------------------------------------------ state
    def reset(self, x0: np.ndarray | None = None) -> None:
        """Start a new recording: filters settle on ``x0`` (or the next chunk's first sample);
        sample and event counters restart at 0. The floor is kept."""
        self.energy.reset(x0)
        self._reset_events()

    def _reset_events(self) -> None:
        self._st = _State()
        self._groups.reset()
        self._events: list[Event] = []
        self._cuts: list[int] = []  # recording boundaries (see boundary) not yet passed by a segment

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this detector is: floor, config, filter and
        envelope state, history buffer and event state (plain numpy arrays and numbers)."""
        groups = self._groups.state_dict()
        st = {f.name: getattr(self._st, f.name) for f in fields(_State)}
        st["cf_event"], st["cf"] = groups.pop("cf_event"), groups.pop("cf")
        return {"fs": self.fs, "floor": self.floor.copy(), "config": self.config.to_dict(),
                "mains_hz": self.mains_hz, "energy": self.energy.state_dict(), "state": st, **groups,
                "events": [asdict(e) for e in self._events], "cuts": list(self._cuts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if DetectorConfig.from_dict(state["config"]) != self.config or float(state["fs"]) != self.fs:
            raise ValueError("state was saved from a detector with another config or rate")
        self._groups.set_floor(state["floor"])
        self.energy.load_state_dict(state["energy"])
        st = dict(state["state"])
        self._groups.load_state_dict({"hstart": state["hstart"], "hx": state["hx"], "he": state["he"],
                                      "cf_event": st.pop("cf_event"), "cf": st.pop("cf")})
        self._st = _State(**st)
        self._events = [Event(**e) for e in state["events"]]
        self._cuts = [int(c) for c in state.get("cuts", [])]

    def in_progress(self) -> InProgress | None:
        """The event in progress (confirmed or not), or None between events. Read-only."""
        st = self._st
        if st.phase == IDLE:
            return None
        return InProgress(st.event, st.onset, st.confirmed, st.confirmed_at, st.phase == ACTIVE, st.last_off)

    def pop_events(self) -> list[Event]:
        """The events that have ended since the last call (in time order)."""
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------ processing
    def normalized_envelope(self, env: np.ndarray) -> np.ndarray:
        """``env / floor`` per channel (as a product with the floor's inverse)."""
        return env * self._groups.inv_floor[:, None]

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
        en = self._groups.append(xf, env)  # env / floor, kept for the token content
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
        out = self._groups.take()
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
        return self._groups.take()

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
        saved = (self._cuts, st.seg_next, st.seg_count)
        try:
            self._cuts = list(self._cuts)
            with self._groups.provisional():
                self._emit(st.clock if st.phase == ACTIVE else st.last_off)
                return self._groups.take()
        finally:
            self._cuts, st.seg_next, st.seg_count = saved

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
            self._groups.queue(st.event, st.seg_count, starts, pos, st.onset)
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
        self._groups.trim(keep)


__all__ = ["DetectorConfig", "Event", "EventDetector", "InProgress", "GroupBatch", "dense_rank"]
