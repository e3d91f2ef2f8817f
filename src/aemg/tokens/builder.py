"""Builds a :class:`~aemg.tokens.tokenset.TokenSet` from the tokenizer's per-session outputs.

The tokenizer (:mod:`aemg.tokens.tokenizer`) runs one detector per subject-session and hands each
session's groups and event pieces here, with the session's recordings: their trials, the trial each
group overlaps most, electrode coordinates and times in ms become the token set's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.recording import Electrode, Recording
from aemg.tokens.detector import DetectorConfig
from aemg.tokens.features import FEATURE_NAMES
from aemg.tokens.tokenset import TABLES, TokenSet, TokenSettings

if TYPE_CHECKING:
    from aemg.tokens.tokenizer import SessionTokens


def electrode_coords(rec: Recording) -> np.ndarray:
    """``(C, 4)`` float32: cos(angle), sin(angle), z, off_forearm (1 = off the forearm or unknown,
    then the others are 0)."""
    return _coords(tuple(rec.electrodes)).copy()


@lru_cache(maxsize=256)
def _coords(electrodes: tuple[Electrode, ...]) -> np.ndarray:
    out = np.zeros((len(electrodes), 4), np.float32)
    for i, e in enumerate(electrodes):
        if e.on_forearm:
            a = np.deg2rad(e.angle_deg)
            out[i] = (np.cos(a), np.sin(a), e.z, 0.0)
        else:
            out[i, 3] = 1.0
    return out


class TokenSetBuilder:
    """Collects the tokenizer's per-session outputs into one :class:`TokenSet`.

    ``config``, ``window_ms`` and ``notch`` are the tokenizer's settings, stored with the token set
    (:class:`~aemg.tokens.tokenset.TokenSettings`); ``meta`` adds provenance (corpus, hash, dataset).
    """

    def __init__(self, config: DetectorConfig, *, window_ms: float | None = None, notch: bool = False,
                 meta: dict[str, Any] | None = None) -> None:
        self.config, self.window_ms, self.notch, self.meta = config, window_ms, bool(notch), dict(meta or {})
        self.parts: dict[str, list[Any]] = {key: [] for _, table in TABLES for key in table.keys()}
        self.n_groups = self.n_trials = self.n_recs = self.n_events = 0

    def add_session(self, recs: Sequence[Recording], out: SessionTokens,
                    trial_ids: dict[tuple[str, int, int], int] | None = None) -> None:
        """Add one session: ``recs`` in time order and ``out``, its
        :class:`~aemg.tokens.tokenizer.SessionTokens`."""
        p, r0 = self.parts, self.n_recs
        fs = float(recs[0].fs)
        ms = 1000.0 / fs
        offsets = out.offsets
        for rec in recs:
            p["recording_id"].append(rec.recording_id)
            p["recording_subject"].append(rec.subject)
            p["recording_session"].append(rec.session)
            p["recording_dataset"].append(rec.dataset)
            p["recording_n_samples"].append(rec.n_samples)
            p["recording_rotation_unknown"].append(bool(rec.layout_rotation_unknown))
        # trials, in session samples for the group assignment
        t_start, t_stop = [], []
        for i, rec in enumerate(recs):
            for a, z, lab, rep in _trials(rec):
                key = (rec.recording_id, a, z)
                p["trial_recording"].append(r0 + i)
                p["trial_id"].append(trial_ids[key] if trial_ids and key in trial_ids
                                     else self.n_trials + len(t_start))
                p["trial_start"].append(a)
                p["trial_stop"].append(z)
                p["trial_label"].append(lab)
                p["trial_label_name"].append(rec.label_names[lab])
                p["trial_gesture_key"].append(rec.gesture_keys[lab])
                p["trial_repetition"].append(rep)
                t_start.append(int(offsets[i]) + a)
                t_stop.append(int(offsets[i]) + z)
        for q in out.pieces:
            p["event_recording"].append(r0 + q["recording"])
            p["event_id"].append(q["event"] + self.n_events)
            p["event_onset"].append(q["onset"])
            p["event_offset"].append(q["offset"])
            p["event_confirmed_at"].append(q["confirmed_at"])
            p["event_true_onset"].append(q["event_onset"])
            p["event_open_start"].append(q["open_start"])
            p["event_open_end"].append(q["open_end"])
            p["event_delay_ms"].append((q["confirmed_at"] - q["event_onset"]) * ms)
        g = out.groups
        n_g, c = len(g), g.content.shape[1]
        grec = out.group_recording.astype(np.int64)
        gstart = g.start - offsets[grec]
        # each group belongs to the trial it overlaps most (candidates: the trials around its ends)
        tri = np.full(n_g, -1, np.int64)
        if t_start and n_g:
            ts, te = np.asarray(t_start), np.asarray(t_stop)
            best = np.zeros(n_g, np.int64)
            for cand in (np.searchsorted(ts, g.start, side="right") - 1, np.searchsorted(ts, g.stop - 1, side="right") - 1):
                ok = cand >= 0
                cc = np.maximum(cand, 0)
                ov = np.where(ok, np.minimum(g.stop, te[cc]) - np.maximum(g.start, ts[cc]), 0)
                better = ov > best
                tri = np.where(better, cc + self.n_trials, tri)
                best = np.where(better, ov, best)
        self.n_trials += len(t_start)
        p["group_recording"].append(grec + r0)
        p["group_trial"].append(tri)
        p["group_event"].append(g.event.astype(np.int64) + self.n_events)
        p["group_segment"].append(g.segment.astype(np.int64))
        p["group_start"].append(gstart)
        p["group_stop"].append(g.stop - offsets[grec])
        p["group_t_ms"].append(gstart * ms)
        coords = np.stack([_coords(tuple(rec.electrodes)) for rec in recs])
        p["content"].append(g.content.reshape(n_g * c, g.content.shape[-1]))
        p["channel"].append(np.tile(np.arange(c, dtype=np.int64), n_g))
        p["coords"].append(coords[grec].reshape(n_g * c, 4))
        p["onset_ms"].append((g.onset * ms).astype(np.float32).reshape(-1))
        p["event_onset_ms"].append(np.where(g.active, g.event_onset * ms, -1.0).astype(np.float32).reshape(-1))
        p["time_ms"].append(((gstart[:, None] + g.onset) * ms).astype(np.float32).reshape(-1))
        p["duration_ms"].append((g.duration * ms).astype(np.float32).reshape(-1))
        p["rank"].append(g.rank.astype(np.int64).reshape(-1))
        p["active"].append(g.active.reshape(-1))
        p["group"].append(np.repeat(np.arange(n_g, dtype=np.int64) + self.n_groups, c))
        self.n_groups += n_g
        self.n_recs += len(recs)
        self.n_events += int(max([q["event"] for q in out.pieces] + [int(g.event.max(initial=-1))])) + 1

    def build(self, fs: float) -> TokenSet:
        """The token set of every session added (``fs``: the corpus rate, Hz)."""
        arrays: dict[str, np.ndarray] = {}
        for name, parts in self.parts.items():
            if parts and isinstance(parts[0], np.ndarray):
                arrays[name] = np.concatenate(parts)
            elif name == "content":
                arrays[name] = np.zeros((0, len(FEATURE_NAMES)), np.float32)
            elif name == "coords":
                arrays[name] = np.zeros((0, 4), np.float32)
            elif name in _STR_FIELDS:
                arrays[name] = np.array(parts, dtype=str).reshape(len(parts))
            elif name in _BOOL_FIELDS:
                arrays[name] = np.array(parts, dtype=bool).reshape(len(parts))
            elif name in _FLOAT_FIELDS:
                arrays[name] = np.array(parts, dtype=np.float32).reshape(len(parts))
            else:
                arrays[name] = np.array(parts, dtype=np.int64).reshape(len(parts))
        settings = TokenSettings(fs=float(fs), mode="events" if self.window_ms is None else "windows",
                                 window_ms=self.window_ms, notch=self.notch, config=self.config,
                                 feature_names=FEATURE_NAMES)
        return TokenSet.from_columns(arrays, {**settings.to_meta(), **self.meta})


def _trials(rec: Recording) -> list[tuple[int, int, int, int]]:
    """``rec.trials()``, with a shortcut for the common one-repetition-per-file recording."""
    lab, rep = rec.labels, rec.repetition
    if lab is None or rec.n_samples == 0:
        return []
    if lab[0] == lab[-1] and (rep is None or rep[0] == rep[-1]):
        if (lab == lab[0]).all() and (rep is None or (rep == rep[0]).all()):
            return [(0, rec.n_samples, int(lab[0]), int(rep[0]) if rep is not None else 0)] if lab[0] >= 0 else []
    return rec.trials()


_STR_FIELDS = {"trial_label_name", "trial_gesture_key", "recording_id", "recording_subject", "recording_session",
               "recording_dataset"}
_BOOL_FIELDS = {"active", "event_open_start", "event_open_end", "recording_rotation_unknown"}
_FLOAT_FIELDS = {"onset_ms", "event_onset_ms", "time_ms", "duration_ms", "event_delay_ms", "group_t_ms"}


__all__ = ["TokenSetBuilder", "electrode_coords"]
