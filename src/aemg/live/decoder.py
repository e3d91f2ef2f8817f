"""The live decoder core: chunks of a stream -> event detector -> token groups -> model -> decisions.

``dec = LiveDecoder(model_dir, subject=..., session=...)``, then ``dec.process(chunk)`` for each
``(C, n)`` chunk in time order (any sizes; the decisions do not depend on them) and ``dec.flush()``
at the end of the stream; each call returns the :class:`Decision` objects made in it.

**Input units**: the samples as the corpus stores them (``corpus.load(rid, scaled=False).signal``),
at the corpus rate :attr:`LiveDecoder.fs`: the tokenizer runs on that unscaled signal and the model's
stored noise floor is in its units (the token content is relative to the floor, so the session's
amplitude scale of ``model.json`` is not applied). A device stream must first be brought to the
corpus's units and rate (the LSL source, still to come, does this).

**Noise floor**: the model's stored per-channel floor of one (subject, session)
(:meth:`~aemg.evaluate.model_dir.ModelInfo.calibration_of`), or an explicit ``floor`` ``(C,)`` in the
same units; or, with ``calibration_s=S``, one estimated from the stream's first ``S`` seconds with the
tokenizer's estimator (:func:`aemg.tokens.estimate_floor`, the model's detector config): no decision is
made during that period; when it is complete the detector is built on the estimate and run over the
period (its decisions dropped), so from then on the decisions are those of a decoder given that floor
from the start (docs/live.md).

**Decisions**, per event (a group is a <= 100 ms segment; "the event's groups so far" are tiled into
spans of the model's ``span_groups`` exactly as a trial is offline, and the probabilities are the
softmax of the spans' mean log-probability):

* ``provisional``: after each group that closed while the event was not confirmed
  (:meth:`~aemg.tokens.detector.EventDetector.pending_groups`), at the group's end;
* ``confirmed``: at confirmation (the groups closed by then) and after each later group, at its end
  (the event's last group: when the event ended); ``open_end`` when :meth:`flush` closed it;
* ``retracted``: an event with provisional decisions that was dropped (shorter than the minimum
  duration), at the time it was dropped.

Times are stream seconds since the first sample. The detector is fed in pieces of at most
``min(max_span, merge_gap)`` samples, so every group that closes while the event is unconfirmed is
seen before the event can be dropped, whatever the chunk size.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from aemg.evaluate.model_dir import SavedModel
from aemg.tokens.detector import EventDetector
from aemg.tokens.energy import estimate_floor, ms_to_samples
from aemg.tokens.groups import GroupBatch

PROVISIONAL, CONFIRMED, RETRACTED = "provisional", "confirmed", "retracted"


@dataclass(frozen=True)
class Decision:
    """One decision about one event; times in stream seconds, ``compute_ms`` wall time of its model passes."""

    status: str  # "provisional", "confirmed" or "retracted"
    event: int  # the detector's event id (from 0 at the stream's start)
    gesture: str  # the class's gesture key (a retraction repeats the last provisional one)
    label_name: str  # the dataset's name of that class
    probabilities: tuple[float, ...]  # per class, in the model's class order (sum 1)
    n_groups: int  # the event's groups it is based on
    time_s: float  # when it could be made: end of its last group, confirmation, or the event's end
    onset_s: float  # the detector's onset of the event
    compute_ms: float  # wall time of the model passes this decision needed
    open_end: bool = False  # the stream ended (flush) with the event still on
    final: bool = False  # the event's last decision

    @property
    def delay_s(self) -> float:
        """Seconds from the detector's onset to this decision."""
        return self.time_s - self.onset_s

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["probabilities"] = [round(p, 6) for p in self.probabilities]
        d["time_s"], d["onset_s"] = round(self.time_s, 6), round(self.onset_s, 6)
        d["compute_ms"] = round(self.compute_ms, 3)
        return d


@dataclass
class _EventState:
    """The decoder's view of the event in progress."""

    event: int = -1
    onset: int = 0
    released: GroupBatch | None = None  # groups released by the detector (confirmed event)
    n_prov: int = 0  # groups covered by provisional decisions
    n_done: int = 0  # groups covered by confirmed decisions
    confirmed: bool = False
    confirmed_at: int = -1
    last_off: int = -1  # last observed gap start (while unconfirmed)
    last_probs: tuple[float, ...] = ()
    # (a, b) -> (made from the detector's pending groups, digest of the span's model input, log-probabilities)
    cache: dict[tuple[int, int], tuple[bool, bytes, np.ndarray]] = field(default_factory=dict)


def _digest(groups: GroupBatch, a: int, b: int) -> bytes:
    """A digest of what the model reads of groups ``a:b`` (LiveModel.item): equal digests, equal log-probabilities."""
    h = hashlib.blake2b(digest_size=16)
    for arr in (groups.content, groups.start, groups.onset, groups.duration, groups.rank):
        h.update(np.ascontiguousarray(arr[a:b]).tobytes())
    return h.digest()


class LiveDecoder:
    """Stateful causal decoder of a model directory (module docstring): ``process(chunk)`` -> decisions.

    ``model``: a model directory of ``aemg finetune`` (or a :class:`LiveModel` already loaded, shared by
    several decoders); ``subject``/``session``: whose stored noise floor to use (may be omitted when the
    model stores one session); ``floor``: an explicit ``(C,)`` floor instead; ``mains_hz``: the mains
    frequency, needed when the model's tokens were notch-filtered; ``calibration_s``: estimate the floor from
    the stream's first seconds instead (module docstring; :attr:`floor` is None until then; ``subject`` and
    ``session`` then only choose the stored amplitude scale). ``scale``: the session's amplitude scale ``(C,)``
    for a model whose head reads token amplitude on the session scale (``FinetuneConfig.amp_head``; default
    the stored one of ``subject``/``session``; with ``calibration_s`` and no stored session named, the
    corpus's scale function on the calibration period, :func:`aemg.signal.scale.stream_scale`, so that
    period should hold rest and contractions): the amplitude reference is ``log(floor) - 2 log(scale)``
    (:mod:`aemg.tokens.amplitude`), set whenever the floor is.
    """

    def __init__(self, model: str | Path | SavedModel | Any, *, subject: str | None = None,
                 session: str | None = None, floor: np.ndarray | None = None, scale: np.ndarray | None = None,
                 mains_hz: float | None = None, calibration_s: float = 0.0) -> None:
        from aemg.live.model import LiveModel

        self.model = model if isinstance(model, LiveModel) else LiveModel(model)
        info = self.model.info
        settings = self.model.settings
        if settings.notch and not mains_hz:
            raise ValueError(f"{self.model.saved.path}: the model's tokens were notch-filtered: give mains_hz")
        self.mains_hz = float(mains_hz) if settings.notch and mains_hz else None
        self.n_channels = int(info.n_channels)
        cfg = settings.config
        self._cfg = cfg
        self.gap_len = ms_to_samples(cfg.merge_gap_ms, self.fs)  # as the detector computes them
        self.piece = max(1, min(ms_to_samples(cfg.max_span_ms, self.fs), self.gap_len))
        self.clock = 0  # samples consumed (decoded; the calibration period included once it is over)
        self._ev = _EventState()
        self.compute_s = 0.0  # total wall time in process/flush (s)
        self.calibration_s = float(calibration_s)
        if not self.calibration_s >= 0:
            raise ValueError(f"calibration_s must be >= 0 seconds, got {calibration_s}")
        self.detector: EventDetector | None = None
        self.floor: np.ndarray | None = None  # the per-channel noise floor in use (None while calibrating)
        self.scale: np.ndarray | None = None  # the session's amplitude scale (models with the amplitude path)
        self.amp_offset: np.ndarray | None = None  # log(floor) - 2 log(scale): the head's amplitude reference
        if floor is not None:
            floor = self._checked_floor(floor)
        later = bool(self.calibration_s) and subject is None and session is None and len(info.calibration) != 1
        if self.model.uses_amplitude and not (scale is None and later):
            if scale is None:
                try:
                    scale = np.asarray(self._calibration(subject, session).scale, np.float64)
                except KeyError as exc:
                    raise KeyError(f"{exc.args[0]}; the model's head reads token amplitude on the session scale: "
                                   "say whose stored scale to use (subject and session) or give scale") from None
            scale = np.asarray(scale, np.float64)
            if scale.shape != (info.n_channels,) or not (np.isfinite(scale) & (scale > 0)).all():
                raise ValueError(f"scale must be {info.n_channels} positive finite values (the model's channels), "
                                 f"got shape {scale.shape}")
            self.scale = scale
        self._calib: list[np.ndarray] | None = None  # samples of the calibration period so far
        if self.calibration_s:
            if floor is not None:
                raise ValueError("calibration_s estimates the floor from the stream: give no floor with it")
            self.calibration_samples = max(1, int(round(self.calibration_s * self.fs)))
            self._calib = []
            return
        self.calibration_samples = 0
        if floor is None:
            floor = np.asarray(self._calibration(subject, session).noise_floor, np.float64)
        self._start(floor)

    def _checked_floor(self, floor: np.ndarray) -> np.ndarray:
        floor = np.asarray(floor, np.float64)
        if floor.shape != (self.n_channels,) or not (np.isfinite(floor) & (floor > 0)).all():
            raise ValueError(f"floor must be {self.n_channels} positive finite values (the model's channels), "
                             f"got shape {floor.shape}")
        return floor

    def _start(self, floor: np.ndarray) -> None:
        """Build the event detector on ``floor`` (C,)."""
        floor = self._checked_floor(floor)
        self.floor = floor
        if self.scale is not None:
            self.amp_offset = np.log(floor) - 2.0 * np.log(self.scale)
        self.detector = EventDetector(self.model.fs, floor, self._cfg, mains_hz=self.mains_hz)

    @property
    def calibrating(self) -> bool:
        """True while the calibration period (``calibration_s``) is still being collected."""
        return self._calib is not None

    def _calibrate(self, chunk: np.ndarray) -> np.ndarray:
        """Collect calibration samples; at the end of the period estimate the floor (the tokenizer's estimator),
        build the detector and run it over the period with its decisions dropped. Returns what is left of
        ``chunk`` to decode (nothing while still calibrating)."""
        assert self._calib is not None
        have = sum(c.shape[1] for c in self._calib)
        need = self.calibration_samples - have
        self._calib.append(chunk[:, :need])
        if chunk.shape[1] < need:
            return chunk[:, :0]
        period = np.concatenate(self._calib, axis=1)
        cfg = self._cfg
        if self.model.uses_amplitude and self.scale is None:
            from aemg.signal.scale import stream_scale

            self.scale = stream_scale([period], self.fs, mains_hz=self.mains_hz)
        self._start(estimate_floor([period], self.fs, percentile=cfg.floor_percentile, highpass_hz=cfg.highpass_hz,
                                   order=cfg.highpass_order, smooth_ms=cfg.smooth_ms, mains_hz=self.mains_hz))
        self._calib = None
        self._decode(period)  # the detector's state as if it had run from the start; no decisions from it
        return chunk[:, need:]

    def _calibration(self, subject: str | None, session: str | None) -> Any:
        info = self.model.info
        cal = info.calibration
        if subject is None and session is None:
            if len(cal) != 1:
                known = ", ".join(f"{c.subject}/{c.session}" for c in cal)
                raise KeyError(f"{self.model.saved.path}: the model stores {len(cal)} sessions ({known}): "
                               "say whose noise floor to use (subject and session)")
            return cal[0]
        if session is None:
            mine = [c for c in cal if c.subject == subject]
            if len(mine) == 1:
                return mine[0]
        return info.calibration_of(str(subject), str(session))

    @property
    def fs(self) -> float:
        """The rate the chunks must have (the model's corpus rate, Hz)."""
        return self.model.fs

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.model.info.classes)

    # ------------------------------------------------------------------ the stream
    def process(self, chunk: np.ndarray) -> list[Decision]:
        """Consume the next ``(C, n)`` chunk (corpus units and rate); the decisions made in it, in time order
        (none during the calibration period)."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[0] != self.n_channels:
            raise ValueError(f"chunk must have shape ({self.n_channels}, n) (the model's channels), got {chunk.shape}")
        t0 = time.perf_counter()
        if self._calib is not None:
            chunk = self._calibrate(chunk)
        out = self._decode(chunk)
        self.compute_s += time.perf_counter() - t0
        return out

    def _decode(self, chunk: np.ndarray) -> list[Decision]:
        """Feed the detector ``chunk`` in pieces of at most ``self.piece`` samples; the decisions made."""
        out: list[Decision] = []
        det = self.detector
        if det is None or not chunk.shape[1]:
            return out
        for a in range(0, chunk.shape[1], self.piece):
            piece = chunk[:, a:a + self.piece]
            released = det.process(piece)
            self.clock += piece.shape[1]
            self._step(released, out, flushing=False)
        return out

    def flush(self) -> list[Decision]:
        """End of the stream: the event in progress is closed and reported ``open_end`` (confirmed), or
        retracted (unconfirmed, with provisional decisions)."""
        t0 = time.perf_counter()
        out: list[Decision] = []
        if self.detector is None:  # the stream ended during calibration: nothing was decoded
            return out
        released = self.detector.flush()
        self._step(released, out, flushing=True)
        self.compute_s += time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------ decisions
    def _step(self, released: GroupBatch, out: list[Decision], *, flushing: bool) -> None:
        ended = {e.event: e for e in self.detector.pop_events()}
        now = self.detector.in_progress()
        ev = self._ev
        # released groups belong to confirmed events, in event order
        for e in dict.fromkeys(released.event.tolist()):
            sel = released.event == e
            part = GroupBatch(*(getattr(released, f.name)[sel] for f in fields(GroupBatch)))
            if ev.event != e:
                self._retract(out, open_end=False)
                self._ev = ev = _EventState(event=e, onset=int(part.start[0]))
            if e in ended:
                ev.confirmed_at = ended[e].confirmed_at
            elif now is not None and now.event == e:
                ev.confirmed_at = now.confirmed_at
            ev.released = part if ev.released is None else GroupBatch.concat([ev.released, part], self.n_channels)
            self._confirmed_decisions(out, ended.get(e), flushing)
        for e, info in ended.items():  # an event that ended without releasing a group now
            if e == ev.event and ev.confirmed and ev.n_done and not (out and out[-1].event == e and out[-1].final):
                self._final_again(out, info, flushing)
        if now is not None and not now.confirmed:
            if ev.event != now.event:
                self._retract(out, open_end=False)
                self._ev = ev = _EventState(event=now.event, onset=now.onset)
            if not now.active:
                ev.last_off = now.last_off
            pend = self.detector.pending_groups()
            for k in range(ev.n_prov, len(pend)):
                out.append(self._decide(PROVISIONAL, pend, k + 1, int(pend.stop[k]), pending=True))
                ev.n_prov = k + 1
        elif not flushing and ev.event >= 0 and not ev.confirmed and (now is None or now.event != ev.event):
            self._retract(out, open_end=False)
        if flushing:
            self._retract(out, open_end=True)
            self._ev = _EventState(event=ev.event)

    def _confirmed_decisions(self, out: list[Decision], ended: Any, flushing: bool) -> None:
        ev = self._ev
        g = ev.released
        assert g is not None
        n = len(g)
        ca = ev.confirmed_at
        # groups that closed before confirmation are provisional decisions first (a chunk may hold both)
        for k in range(ev.n_prov, n):
            if g.stop[k] > ca:
                break
            out.append(self._decide(PROVISIONAL, g, k + 1, int(g.stop[k])))
            ev.n_prov = k + 1
        if not ev.confirmed:
            ev.confirmed = True
            m = max(1, int(np.searchsorted(g.stop, ca + 1, side="right")))
            last = ended is not None and m == n
            out.append(self._decide(CONFIRMED, g, m, max(ca + 1, int(g.stop[m - 1])) if not last
                                    else self._end_time(ended, flushing), final=last,
                                    open_end=last and ended.open_end))
            ev.n_done = m
        for k in range(ev.n_done, n):
            last = ended is not None and k == n - 1
            out.append(self._decide(CONFIRMED, g, k + 1, int(g.stop[k]) if not last else self._end_time(ended, flushing),
                                    final=last, open_end=last and ended.open_end))
            ev.n_done = k + 1

    def _final_again(self, out: list[Decision], ended: Any, flushing: bool) -> None:
        """The event ended after its last group had closed: its decision again, marked final."""
        ev = self._ev
        assert ev.released is not None
        out.append(self._decide(CONFIRMED, ev.released, ev.n_done, self._end_time(ended, flushing), final=True,
                                open_end=ended.open_end))

    def _end_time(self, ended: Any, flushing: bool) -> int:
        """The sample at which an event's end was known: its gap outlasted ``merge_gap``, or the flush."""
        return self.clock if flushing and ended.open_end else int(ended.offset) + self.gap_len + 1

    def _retract(self, out: list[Decision], *, open_end: bool) -> None:
        """Retract the unconfirmed event with provisional decisions, if any (then forget it)."""
        ev = self._ev
        if ev.event < 0 or ev.confirmed or not ev.n_prov:
            return
        t = self.clock if open_end or ev.last_off < 0 else ev.last_off + self.gap_len + 1
        probs = ev.last_probs
        k = int(np.argmax(probs))
        out.append(Decision(RETRACTED, ev.event, self.classes[k], self.model.info.label_names[k], probs, ev.n_prov,
                            t / self.fs, ev.onset / self.fs, 0.0, open_end=open_end, final=True))
        self._ev = _EventState(event=ev.event, confirmed=True)  # nothing left to retract

    def _decide(self, status: str, groups: GroupBatch, n: int, at: int, *, pending: bool = False,
                final: bool = False, open_end: bool = False) -> Decision:
        """The decision on the event's first ``n`` groups, made at sample ``at``; ``pending``: ``groups`` are the
        detector's pending groups (an unconfirmed event), else the released ones."""
        ev = self._ev
        t0 = time.perf_counter()
        logps = []
        for a, b in self.model.spans(n):
            hit = ev.cache.get((a, b))
            # a span made from the other source (pending vs released groups) is reused only if its input is the same
            if hit is None or hit[0] != pending:
                digest = _digest(groups, a, b)
                logp = hit[2] if hit is not None and hit[1] == digest else self.model.span_log_probs(groups, a, b,
                                                                                                  self.amp_offset)
                hit = ev.cache[(a, b)] = (pending, digest, logp)
            logps.append(hit[2])
        mean = np.mean(logps, axis=0)
        p = np.exp(mean - mean.max())
        p /= p.sum()
        probs = tuple(float(v) for v in p)
        ev.last_probs = probs
        k = int(np.argmax(mean))
        return Decision(status, ev.event, self.classes[k], self.model.info.label_names[k], probs, n, at / self.fs,
                        ev.onset / self.fs, (time.perf_counter() - t0) * 1000.0, open_end=open_end, final=final)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here: the floor, the detector's state, the clock and the event
        in progress (its released groups and decision counters; cached span outputs are recomputed), or
        while calibrating the calibration samples so far."""
        ev = self._ev
        evd = {f.name: getattr(ev, f.name) for f in fields(_EventState) if f.name not in ("cache", "released")}
        evd["released"] = None if ev.released is None else {f.name: getattr(ev.released, f.name).copy()
                                                            for f in fields(GroupBatch)}
        calib = None if self._calib is None else (np.concatenate(self._calib, axis=1) if self._calib
                                                  else np.zeros((self.n_channels, 0), np.float32))
        return {"detector": None if self.detector is None else self.detector.state_dict(), "clock": self.clock,
                "event": evd, "model": str(self.model.saved.path),
                "floor": None if self.floor is None else self.floor.copy(), "calibration": calib,
                "scale": None if self.scale is None else self.scale.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        calib = state.get("calibration")
        if state.get("scale") is not None:
            self.scale = np.asarray(state["scale"], np.float64)
        if calib is not None:  # saved while calibrating: the detector is built when the period is complete
            self._calib, self.detector, self.floor = [np.asarray(calib).copy()], None, None
        else:
            floor = state.get("floor")
            if floor is not None and (self.floor is None or not np.array_equal(self.floor, floor)):
                self._start(np.asarray(floor, np.float64))
            self._calib = None
            assert self.detector is not None
            self.detector.load_state_dict(state["detector"])
        self.clock = int(state["clock"])
        evd = dict(state["event"])
        rel = evd.pop("released")
        evd["last_probs"] = tuple(evd["last_probs"])
        self._ev = _EventState(**evd, released=None if rel is None else GroupBatch(**{k: np.asarray(v).copy()
                                                                                        for k, v in rel.items()}))


__all__ = ["CONFIRMED", "PROVISIONAL", "RETRACTED", "Decision", "LiveDecoder"]
