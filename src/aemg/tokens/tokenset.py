"""The tokens of a corpus: :class:`TokenSet` (tables of tokens, groups, events, trials, recordings).

Stored beside the corpus as one ``.npz`` (``CORPUS_DIR/tokens/events.npz``, or
``windows-<ms>ms.npz`` for the fixed-window ablation), written atomically. Everything is a numpy
array; torch is imported only inside :meth:`TokenSet.collate`.

Tables (row counts ``N`` tokens, ``G`` groups, ``E`` event pieces, ``K`` trials, ``R`` recordings):

* tokens: ``content`` (N, F) float32, ``channel`` (N,), ``coords`` (N, 4) [cos(angle), sin(angle),
  z, off_forearm], ``onset_ms`` (activation relative to the group's start), ``event_onset_ms``
  (relative to the event's onset, -1 when not active), ``time_ms`` (the activation's time in the
  recording: group start + ``onset_ms``), ``duration_ms`` (active time in the group),
  ``rank`` (activation rank in the group: ties share, inactive last), ``active``, ``group``.
* groups: ``group_recording``, ``group_trial`` (row in the trial table, -1 none), ``group_event``
  (event id), ``group_segment`` (index in its event), ``group_start``/``group_stop`` (samples in
  the recording), ``group_t_ms`` (start relative to the recording).
* events (one row per event and recording it touches): ``event_recording``, ``event_id``,
  ``event_onset``/``event_offset`` (samples in the recording), ``event_confirmed_at`` (detection
  time, samples; may lie in a later recording), ``event_true_onset`` (onset relative to this
  recording, negative when it began earlier), ``event_open_start``, ``event_open_end``,
  ``event_delay_ms`` (detection delay).
* trials (every labelled repetition, with or without groups): ``trial_recording``, ``trial_id`` (the
  corpus's trial number), ``trial_start``/``trial_stop``, ``trial_label`` (the dataset's class
  index), ``trial_label_name``, ``trial_gesture_key``, ``trial_repetition``.
* recordings: ``recording_id``, ``recording_subject``, ``recording_session``, ``recording_dataset``,
  ``recording_n_samples``, ``recording_rotation_unknown``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from aemg.atomic import atomic_path
from aemg.recording import Electrode, Recording

IGNORE = -100
"""Target value of padding and unscored positions, everywhere in aemg (torch's cross-entropy default)."""


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


@dataclass
class TokenSet:
    """Tokens of a corpus with their groups, events, trials and recordings (see the module docstring)."""

    # tokens (N)
    content: np.ndarray
    channel: np.ndarray
    coords: np.ndarray
    onset_ms: np.ndarray
    event_onset_ms: np.ndarray
    time_ms: np.ndarray
    duration_ms: np.ndarray
    rank: np.ndarray
    active: np.ndarray
    group: np.ndarray
    # groups (G)
    group_recording: np.ndarray
    group_trial: np.ndarray
    group_event: np.ndarray
    group_segment: np.ndarray
    group_start: np.ndarray
    group_stop: np.ndarray
    group_t_ms: np.ndarray
    # event pieces (E)
    event_recording: np.ndarray
    event_id: np.ndarray
    event_onset: np.ndarray
    event_offset: np.ndarray
    event_confirmed_at: np.ndarray
    event_true_onset: np.ndarray
    event_open_start: np.ndarray
    event_open_end: np.ndarray
    event_delay_ms: np.ndarray
    # trials (K)
    trial_recording: np.ndarray
    trial_id: np.ndarray
    trial_start: np.ndarray
    trial_stop: np.ndarray
    trial_label: np.ndarray
    trial_label_name: np.ndarray
    trial_gesture_key: np.ndarray
    trial_repetition: np.ndarray
    # recordings (R)
    recording_id: np.ndarray
    recording_subject: np.ndarray
    recording_session: np.ndarray
    recording_dataset: np.ndarray
    recording_n_samples: np.ndarray
    recording_rotation_unknown: np.ndarray
    # facts: fs, mode ("events" / "windows"), window_ms, config, feature_names, corpus, ...
    meta: dict[str, Any]

    # ------------------------------------------------------------------ facts
    @property
    def fs(self) -> float:
        return float(self.meta["fs"])

    @property
    def n_tokens(self) -> int:
        return int(self.group.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.group_start.shape[0])

    @property
    def n_trials(self) -> int:
        return int(self.trial_start.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.content.shape[1])

    def __repr__(self) -> str:
        return (f"TokenSet({self.meta.get('mode')}: {self.n_tokens} tokens, {self.n_groups} groups, "
                f"{len(self.event_id)} event pieces, {self.n_trials} trials, {len(self.recording_id)} recordings)")

    def group_table(self) -> Any:
        """One row per group (pandas DataFrame): subject, session, recording_id, trial (the corpus's
        trial number, -1 none), repetition, label, gesture_key, event, segment, start, stop (samples
        in the recording), t_ms."""
        import pandas as pd

        t = self.group_trial
        has = t >= 0
        tt = np.maximum(t, 0)
        r = self.group_recording
        return pd.DataFrame({
            "subject": self.recording_subject[r], "session": self.recording_session[r],
            "recording_id": self.recording_id[r], "trial": np.where(has, self.trial_id[tt], -1),
            "repetition": np.where(has, self.trial_repetition[tt], -1),
            "label": np.where(has, self.trial_label[tt], IGNORE),
            "gesture_key": np.where(has, self.trial_gesture_key[tt], ""),
            "event": self.group_event, "segment": self.group_segment, "start": self.group_start,
            "stop": self.group_stop, "t_ms": self.group_t_ms})

    # ------------------------------------------------------------------ sequences
    def sequences(self, by: str = "trial") -> list[np.ndarray]:
        """Token indices per sequence, tokens in time order (group, then channel).

        ``by="trial"``: one sequence per row of the trial table, in that order, **empty** for a trial
        without groups; ``by="event"``: one per event piece with groups (labelled or not, for
        pre-training); ``by="recording"``: one per recording.
        """
        if by == "trial":
            key, n = self.group_trial[self.group], self.n_trials
        elif by == "recording":
            key, n = self.group_recording[self.group], len(self.recording_id)
        elif by == "event":
            pair = self.group_recording.astype(np.int64) * (1 << 32) + self.group_event
            _, inv = np.unique(pair, return_inverse=True)
            key, n = inv[self.group], int(inv.max(initial=-1)) + 1
        else:
            raise ValueError(f"by must be 'trial', 'event' or 'recording', got {by!r}")
        tok = np.flatnonzero(key >= 0)
        order = tok[np.argsort(key[tok], kind="stable")]
        bounds = np.searchsorted(key[order], np.arange(n + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(n)]

    def sequence_labels(self, by: str = "trial") -> np.ndarray:
        """Class index per sequence: the trial's label for ``by="trial"``, else the label of the trial
        most of its tokens belong to (``IGNORE`` when none)."""
        if by == "trial":
            return self.trial_label.astype(np.int64)
        return np.array([self._label_of(s) for s in self.sequences(by)], np.int64)

    def _label_of(self, tokens: np.ndarray) -> int:
        """The label of the trial most of a sequence's tokens belong to (IGNORE if none)."""
        tri = self.group_trial[self.group[tokens]]
        tri = tri[tri >= 0]
        if tri.size == 0:
            return IGNORE
        vals, counts = np.unique(tri, return_counts=True)
        return int(self.trial_label[vals[counts.argmax()]])

    def collate(self, seqs: Sequence[np.ndarray] | Sequence[int], *, by: str = "trial",
                labels: Sequence[int] | None = None, max_tokens: int | None = None) -> dict[str, Any]:
        """Pad sequences into one batch of torch tensors (the contract in docs/dev/contracts.md).

        ``seqs``: token-index arrays (from :meth:`sequences`) or sequence numbers of ``by``.
        ``max_tokens`` keeps the first tokens of longer sequences. Returns (B sequences, N tokens,
        F features)::

            content (B, N, F) float32   coords (B, N, 4) float32   onset_ms, t_ms, duration_ms (B, N) float32
            group_order, rank, channel (B, N) int64   pad_mask (B, N) bool (True = padding)
            rotation_unknown (B,) bool   label (B,) int64 (IGNORE when unlabelled)

        ``t_ms`` is the group's start relative to the sequence's first group; ``group_order`` the
        group's index within the sequence. An empty sequence is one all-padding row.
        """
        import torch

        seq_rec: list[int] | None = None
        if len(seqs) and np.ndim(seqs[0]) == 0:
            idx = [int(i) for i in seqs]  # type: ignore[arg-type]
            all_seqs = self.sequences(by)
            lab_all = self.sequence_labels(by)
            seqs = [all_seqs[i] for i in idx]
            if labels is None:
                labels = [int(lab_all[i]) for i in idx]
            if by == "trial":  # an empty trial still knows its recording
                seq_rec = [int(self.trial_recording[i]) for i in idx]
        toks = [np.asarray(s, np.int64)[:max_tokens] if max_tokens else np.asarray(s, np.int64) for s in seqs]
        if labels is None:
            labels = [self._label_of(t) for t in toks]
        b = len(toks)
        n = max([len(t) for t in toks] + [1])
        f = self.n_features
        content = np.zeros((b, n, f), np.float32)
        coords = np.zeros((b, n, 4), np.float32)
        onset = np.zeros((b, n), np.float32)
        t_ms = np.zeros((b, n), np.float32)
        dur = np.zeros((b, n), np.float32)
        gorder = np.zeros((b, n), np.int64)
        rank = np.zeros((b, n), np.int64)
        channel = np.zeros((b, n), np.int64)
        pad = np.ones((b, n), bool)
        rot = np.zeros(b, bool)
        for i, t in enumerate(toks):
            k = len(t)
            if seq_rec is not None:
                rot[i] = bool(self.recording_rotation_unknown[seq_rec[i]])
            if k == 0:
                continue
            g = self.group[t]
            content[i, :k] = self.content[t]
            coords[i, :k] = self.coords[t]
            onset[i, :k] = self.onset_ms[t]
            dur[i, :k] = self.duration_ms[t]
            t_ms[i, :k] = self.group_t_ms[g] - self.group_t_ms[g[0]]
            _, gorder[i, :k] = np.unique(g, return_inverse=True)
            rank[i, :k] = self.rank[t]
            channel[i, :k] = self.channel[t]
            pad[i, :k] = False
            rot[i] = bool(self.recording_rotation_unknown[self.group_recording[g[0]]])
        return {"content": torch.from_numpy(content), "coords": torch.from_numpy(coords),
                "onset_ms": torch.from_numpy(onset), "t_ms": torch.from_numpy(t_ms),
                "duration_ms": torch.from_numpy(dur), "group_order": torch.from_numpy(gorder),
                "rank": torch.from_numpy(rank), "channel": torch.from_numpy(channel),
                "pad_mask": torch.from_numpy(pad), "rotation_unknown": torch.from_numpy(rot),
                "label": torch.as_tensor(np.asarray(labels, np.int64))}

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> dict[str, Any]:
        """Counts plus the detection figures of :func:`aemg.tokens.metrics.detection_metrics`."""
        from aemg.tokens.metrics import detection_metrics

        out: dict[str, Any] = {"mode": self.meta.get("mode"), "n_groups": self.n_groups,
                               "n_tokens": self.n_tokens, "n_trials": self.n_trials,
                               "n_events": int(np.sum(~self.event_open_start)) if len(self.event_id) else 0}
        if self.n_trials and self.meta.get("mode") == "events":  # figures of the event detector
            out.update(detection_metrics(self.trial_recording, self.trial_start, self.trial_stop,
                                         self.trial_gesture_key, self.event_recording, self.event_onset,
                                         self.event_offset, self.event_open_start, self.fs))
        d = self.event_delay_ms[~self.event_open_start] if len(self.event_id) else np.zeros(0)
        if self.meta.get("mode") == "events" and d.size:
            out["detection_delay_ms"] = {"median": float(np.median(d)), "p10": float(np.percentile(d, 10)),
                                         "p90": float(np.percentile(d, 90))}
        return out

    # ------------------------------------------------------------------ storage
    @staticmethod
    def default_path(corpus_dir: str | Path, window_ms: float | None = None) -> Path:
        name = "events.npz" if window_ms is None else f"windows-{window_ms:g}ms.npz"
        return Path(corpus_dir) / "tokens" / name

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write to ``path`` atomically (temporary file, fsync, rename)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
        arrays["meta"] = np.array(json.dumps(self.meta))
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenSet:
        path = Path(path)
        if path.is_dir():
            path = cls.default_path(path)
        with np.load(path, allow_pickle=False) as z:
            kw = {f.name: z[f.name] for f in fields(cls) if f.name != "meta"}
            meta = json.loads(str(z["meta"]))
        return cls(**kw, meta=meta)

    @staticmethod
    def builder(config: Any, *, window_ms: float | None = None, meta: dict[str, Any] | None = None) -> _Builder:
        return _Builder(config, window_ms, meta or {})


class _Builder:
    """Collects the tokenizer's per-session outputs into one :class:`TokenSet`."""

    def __init__(self, config: Any, window_ms: float | None, meta: dict[str, Any]) -> None:
        self.config, self.window_ms, self.meta = config, window_ms, meta
        self.parts: dict[str, list[Any]] = {f.name: [] for f in fields(TokenSet) if f.name != "meta"}
        self.n_groups = self.n_trials = self.n_recs = self.n_events = 0

    def add_session(self, recs: Sequence[Recording], out: Any,
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
        from aemg.tokens.features import FEATURE_NAMES

        arrays: dict[str, np.ndarray] = {}
        for f in fields(TokenSet):
            name = f.name
            if name == "meta":
                continue
            parts = self.parts[name]
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
        cfg = self.config.to_dict() if hasattr(self.config, "to_dict") else dict(self.config)
        meta = {"fs": float(fs), "mode": "events" if self.window_ms is None else "windows",
                "window_ms": self.window_ms, "config": cfg, "feature_names": list(FEATURE_NAMES), **self.meta}
        return TokenSet(**arrays, meta=meta)


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
