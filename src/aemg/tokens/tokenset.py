"""The tokens of a corpus: :class:`TokenSet`, five small tables (tokens, groups, events, trials, recordings).

Stored beside the corpus as one ``.npz`` (``CORPUS_DIR/tokens/events.npz``, or
``windows-<ms>ms.npz`` for the fixed-window ablation), written atomically. Every column is a numpy
array, stored under its table's prefix (``group_start``, ``trial_label``; token columns have none);
the settings (:class:`TokenSettings`) and provenance are one JSON object, ``meta``. torch is imported
only when batching (:mod:`aemg.tokens.batch`).

Tables (row counts ``N`` tokens, ``G`` groups, ``E`` event pieces, ``K`` trials, ``R`` recordings):
:class:`Tokens`, :class:`Groups`, :class:`Events`, :class:`Trials`, :class:`Recordings`; each
column's meaning is beside its field.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aemg.atomic import atomic_path, estimate_nbytes
from aemg.errors import DataFormatError
from aemg.tokens.batch import IGNORE, pad_batch
from aemg.tokens.detector import DetectorConfig


class _Table:
    """A table of equal-length numpy columns, stored as ``PREFIX + column`` keys."""

    PREFIX: ClassVar[str] = ""

    def __len__(self) -> int:
        return int(getattr(self, fields(self)[0].name).shape[0])  # type: ignore[arg-type]

    @classmethod
    def keys(cls) -> list[str]:
        """The stored keys of the columns, in order."""
        return [cls.PREFIX + f.name for f in fields(cls)]  # type: ignore[arg-type]

    def columns(self) -> dict[str, np.ndarray]:
        """Stored key -> column."""
        return {self.PREFIX + f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_columns(cls, columns: Any) -> Any:
        """The table from a mapping of stored keys (an ``.npz``, a dict) to columns."""
        return cls(**{f.name: columns[cls.PREFIX + f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass
class Tokens(_Table):
    """One row per token (a channel's part of one group)."""

    content: np.ndarray  # (N, F) float32 content vector (FEATURE_NAMES)
    channel: np.ndarray  # (N,) int64 channel index in its recording
    coords: np.ndarray  # (N, 4) float32 cos(angle), sin(angle), z, off_forearm
    onset_ms: np.ndarray  # (N,) float32 activation relative to the group's start
    event_onset_ms: np.ndarray  # (N,) float32 activation relative to the event's onset, -1 when not active
    time_ms: np.ndarray  # (N,) float32 the activation's time in the recording: group start + onset_ms
    duration_ms: np.ndarray  # (N,) float32 active time in the group
    rank: np.ndarray  # (N,) int64 activation rank in the group: ties share, inactive last
    active: np.ndarray  # (N,) bool
    group: np.ndarray  # (N,) int64 row in the group table


@dataclass
class Groups(_Table):
    """One row per token group (an event segment, or a window)."""

    PREFIX: ClassVar[str] = "group_"
    recording: np.ndarray  # (G,) int64 row in the recording table
    trial: np.ndarray  # (G,) int64 row in the trial table (the trial it overlaps most), -1 none
    event: np.ndarray  # (G,) int64 event id
    segment: np.ndarray  # (G,) int64 index of the segment in its event
    start: np.ndarray  # (G,) int64 first sample in the recording
    stop: np.ndarray  # (G,) int64 end (exclusive), samples in the recording
    t_ms: np.ndarray  # (G,) float32 start relative to the recording, ms


@dataclass
class Events(_Table):
    """One row per event and recording it touches (an event piece; none for windows)."""

    PREFIX: ClassVar[str] = "event_"
    recording: np.ndarray  # (E,) int64 row in the recording table
    id: np.ndarray  # (E,) int64 event id (the groups' ``event``)
    onset: np.ndarray  # (E,) int64 first sample of the piece in the recording
    offset: np.ndarray  # (E,) int64 end of the piece (exclusive)
    confirmed_at: np.ndarray  # (E,) int64 detection time, samples (may lie in a later recording)
    true_onset: np.ndarray  # (E,) int64 the event's onset relative to this recording (< 0: began earlier)
    open_start: np.ndarray  # (E,) bool on at the piece's start (began earlier, or on from the first sample)
    open_end: np.ndarray  # (E,) bool still on at the piece's end
    delay_ms: np.ndarray  # (E,) float32 detection delay (confirmation minus onset)


@dataclass
class Trials(_Table):
    """One row per labelled repetition, with or without groups."""

    PREFIX: ClassVar[str] = "trial_"
    recording: np.ndarray  # (K,) int64 row in the recording table
    id: np.ndarray  # (K,) int64 the corpus's trial number
    start: np.ndarray  # (K,) int64 first sample in the recording
    stop: np.ndarray  # (K,) int64 end (exclusive)
    label: np.ndarray  # (K,) int64 the dataset's class index
    label_name: np.ndarray  # (K,) str the dataset's class name
    gesture_key: np.ndarray  # (K,) str the shared-vocabulary key
    repetition: np.ndarray  # (K,) int64


@dataclass
class Recordings(_Table):
    """One row per recording of the corpus, in corpus order."""

    PREFIX: ClassVar[str] = "recording_"
    id: np.ndarray  # (R,) str recording id
    subject: np.ndarray  # (R,) str
    session: np.ndarray  # (R,) str
    dataset: np.ndarray  # (R,) str
    n_samples: np.ndarray  # (R,) int64
    rotation_unknown: np.ndarray  # (R,) bool the layout is known only up to rotation / flip


TABLES: tuple[tuple[str, type[_Table]], ...] = (("tokens", Tokens), ("groups", Groups), ("events", Events),
                                                ("trials", Trials), ("recordings", Recordings))
"""The TokenSet's tables in stored order: (attribute, table class)."""

_LEGACY = {key: (attr, key[len(cls.PREFIX):]) for attr, cls in TABLES for key in cls.keys()}
"""The flat column names of the TokenSet before it had tables (``ts.group_start``): deprecated aliases."""
_WARNED: set[str] = set()


@dataclass(frozen=True)
class TokenSettings:
    """How a token set was made: everything the tokenizer was given besides the corpus."""

    fs: float  # corpus rate, Hz
    mode: str  # "events" or "windows"
    window_ms: float | None  # window length for mode "windows"
    notch: bool | None  # mains notch before the energy stage (None: not recorded, older token sets)
    config: DetectorConfig
    feature_names: tuple[str, ...]

    def to_meta(self) -> dict[str, Any]:
        """The settings as the JSON object stored with the tables (``meta``)."""
        return {"fs": float(self.fs), "mode": self.mode, "window_ms": self.window_ms, "notch": self.notch,
                "config": self.config.to_dict(), "feature_names": list(self.feature_names)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TokenSettings:
        return cls(fs=float(meta["fs"]), mode=str(meta.get("mode", "events")), window_ms=meta.get("window_ms"),
                   notch=meta.get("notch"), config=DetectorConfig.from_dict(meta.get("config") or {}),
                   feature_names=tuple(meta.get("feature_names") or ()))


@dataclass
class TokenSet:
    """Tokens of a corpus with their groups, events, trials and recordings (see the module docstring)."""

    tokens: Tokens
    groups: Groups
    events: Events
    trials: Trials
    recordings: Recordings
    meta: dict[str, Any]  # the settings (TokenSettings.to_meta) and provenance: corpus, corpus_hash, dataset

    def __getattr__(self, name: str) -> Any:
        """Deprecated flat column names (``ts.group_start`` is ``ts.groups.start``), kept one release."""
        if name not in _LEGACY:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        attr, column = _LEGACY[name]
        table = self.__dict__.get(attr)
        if table is None:  # not initialised (copying, unpickling)
            raise AttributeError(name)
        if name not in _WARNED:  # once per name and process: a loop over recordings would repeat it
            _WARNED.add(name)
            warnings.warn(f"TokenSet.{name} is deprecated: use TokenSet.{attr}.{column}", DeprecationWarning,
                          stacklevel=2)
        return getattr(table, column)

    # ------------------------------------------------------------------ facts
    @property
    def settings(self) -> TokenSettings:
        """How this token set was made (rate, mode, window, notch, detector config, feature names)."""
        return TokenSettings.from_meta(self.meta)

    @property
    def fs(self) -> float:
        return float(self.meta["fs"])

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def n_features(self) -> int:
        return int(self.tokens.content.shape[1])

    def __repr__(self) -> str:
        return (f"TokenSet({self.meta.get('mode')}: {self.n_tokens} tokens, {self.n_groups} groups, "
                f"{len(self.events)} event pieces, {self.n_trials} trials, {len(self.recordings)} recordings)")

    def group_table(self) -> Any:
        """One row per group (pandas DataFrame): subject, session, recording_id, trial (the corpus's
        trial number, -1 none), repetition, label, gesture_key, event, segment, start, stop (samples
        in the recording), t_ms."""
        import pandas as pd

        gr, tr, rc = self.groups, self.trials, self.recordings
        t = gr.trial
        has = t >= 0
        tt = np.maximum(t, 0)
        r = gr.recording
        return pd.DataFrame({
            "subject": rc.subject[r], "session": rc.session[r],
            "recording_id": rc.id[r], "trial": np.where(has, tr.id[tt], -1),
            "repetition": np.where(has, tr.repetition[tt], -1),
            "label": np.where(has, tr.label[tt], IGNORE),
            "gesture_key": np.where(has, tr.gesture_key[tt], ""),
            "event": gr.event, "segment": gr.segment, "start": gr.start,
            "stop": gr.stop, "t_ms": gr.t_ms})

    # ------------------------------------------------------------------ sequences
    def sequences(self, by: str = "trial") -> list[np.ndarray]:
        """Token indices per sequence, tokens in time order (group, then channel).

        ``by="trial"``: one sequence per row of the trial table, in that order, **empty** for a trial
        without groups; ``by="event"``: one per event piece with groups (labelled or not, for
        pre-training); ``by="recording"``: one per recording.
        """
        gr, group = self.groups, self.tokens.group
        if by == "trial":
            key, n = gr.trial[group], self.n_trials
        elif by == "recording":
            key, n = gr.recording[group], len(self.recordings)
        elif by == "event":
            pair = gr.recording.astype(np.int64) * (1 << 32) + gr.event
            _, inv = np.unique(pair, return_inverse=True)
            key, n = inv[group], int(inv.max(initial=-1)) + 1
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
            return self.trials.label.astype(np.int64)
        return np.array([self._label_of(s) for s in self.sequences(by)], np.int64)

    def _label_of(self, tokens: np.ndarray) -> int:
        """The label of the trial most of a sequence's tokens belong to (IGNORE if none)."""
        tri = self.groups.trial[self.tokens.group[tokens]]
        tri = tri[tri >= 0]
        if tri.size == 0:
            return IGNORE
        vals, counts = np.unique(tri, return_counts=True)
        return int(self.trials.label[vals[counts.argmax()]])

    def collate(self, *positional: Any, trials: Sequence[int] | None = None, events: Sequence[int] | None = None,
                recordings: Sequence[int] | None = None, tokens: Sequence[np.ndarray] | None = None,
                labels: Sequence[int] | None = None, max_tokens: int | None = None) -> dict[str, Any]:
        """Pad sequences into one batch of torch tensors (the contract in docs/dev/contracts.md).

        Say what is given, by keyword, exactly one of: ``trials=`` trial numbers (rows of the trial
        table, as :meth:`sequences` numbers them), ``events=`` / ``recordings=`` numbers of
        ``sequences("event")`` / ``sequences("recording")``, or ``tokens=`` one token-index array per
        sequence (e.g. ``sequences()[:8]``; one sequence is ``tokens=[seq]``). Anything else is refused.
        ``labels`` overrides the sequences' labels; ``max_tokens`` keeps the first tokens of longer
        sequences. Returns (B sequences, N tokens, F features)::

            content (B, N, F) float32   coords (B, N, 4) float32   onset_ms, t_ms, duration_ms (B, N) float32
            group_order, rank, channel (B, N) int64   pad_mask (B, N) bool (True = padding)
            rotation_unknown (B,) bool   label (B,) int64 (IGNORE when unlabelled)

        ``t_ms`` is the group's start relative to the sequence's first group; ``group_order`` the
        group's index within the sequence. An empty sequence is one all-padding row.
        """
        given = {k: v for k, v in (("trials", trials), ("events", events), ("recordings", recordings),
                                   ("tokens", tokens)) if v is not None}
        if positional or len(given) != 1:
            raise TypeError("TokenSet.collate takes exactly one keyword saying what is given: trials=[0, 1] "
                            "(trial numbers; or events=, recordings=), or tokens=[idx, ...] (token-index arrays "
                            "from sequences(); one sequence is tokens=[seq])")
        (kind, value), = given.items()
        seq_rec: list[int] | None = None
        if kind == "tokens":
            toks = self._token_arrays(value)
            lab = labels
        else:
            by = kind[:-1]
            all_seqs = self.sequences(by)
            idx = self._sequence_numbers(value, kind, len(all_seqs))
            toks = [all_seqs[i] for i in idx]
            lab_all = self.sequence_labels(by)
            lab = labels if labels is not None else [int(lab_all[i]) for i in idx]
            if by == "trial":  # an empty trial still knows its recording
                seq_rec = [int(self.trials.recording[i]) for i in idx]
        if max_tokens:
            toks = [t[:max_tokens] for t in toks]
        if lab is None:
            lab = [self._label_of(t) for t in toks]
        if len(lab) != len(toks):
            raise ValueError(f"labels has {len(lab)} entries for {len(toks)} sequences")
        items = [self._item(t, int(y), None if seq_rec is None else seq_rec[i])
                 for i, (t, y) in enumerate(zip(toks, lab))]
        return pad_batch(items, n_features=self.n_features)

    def _item(self, t: np.ndarray, label: int, recording: int | None) -> dict[str, Any]:
        """One sequence's per-token arrays for :func:`~aemg.tokens.batch.pad_batch`."""
        tk, gr = self.tokens, self.groups
        g = tk.group[t]
        rot = False if recording is None else bool(self.recordings.rotation_unknown[recording])
        if len(t):
            rot = bool(self.recordings.rotation_unknown[gr.recording[g[0]]])
            t_ms = gr.t_ms[g] - gr.t_ms[g[0]]
            group_order = np.unique(g, return_inverse=True)[1]
        else:
            t_ms, group_order = np.zeros(0, np.float32), np.zeros(0, np.int64)
        return {"content": tk.content[t], "coords": tk.coords[t], "onset_ms": tk.onset_ms[t], "t_ms": t_ms,
                "duration_ms": tk.duration_ms[t], "group_order": group_order, "rank": tk.rank[t],
                "channel": tk.channel[t], "rotation_unknown": rot, "label": label}

    @staticmethod
    def _sequence_numbers(value: Any, kind: str, n: int) -> list[int]:
        """``value`` as sequence numbers in ``[0, n)``, or a TypeError / IndexError naming the fix."""
        out = []
        for v in value:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"collate({kind}=...) takes {kind[:-1]} numbers (ints), got {type(v).__name__}; "
                                "for token-index arrays from sequences() use collate(tokens=[...])")
            if not 0 <= int(v) < n:
                raise IndexError(f"collate({kind}=...): {kind[:-1]} {int(v)} is not in [0, {n})")
            out.append(int(v))
        return out

    def _token_arrays(self, value: Any) -> list[np.ndarray]:
        """``value`` as 1-D int64 token-index arrays, or a TypeError / IndexError naming the fix."""
        out = []
        for v in value:
            arr = np.asarray(v)
            if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
                raise TypeError("collate(tokens=...) takes one 1-D token-index array per sequence (a list of "
                                "arrays); for one sequence pass tokens=[seq], for trial numbers trials=[...]")
            arr = arr.astype(np.int64, copy=False)
            if arr.size and not (0 <= arr.min() and arr.max() < self.n_tokens):
                raise IndexError(f"collate(tokens=...): token indices must lie in [0, {self.n_tokens})")
            out.append(arr)
        return out

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> dict[str, Any]:
        """Counts plus the detection figures of :func:`aemg.tokens.metrics.detection_metrics`."""
        ev = self.events
        out: dict[str, Any] = {"mode": self.meta.get("mode"), "n_groups": self.n_groups,
                               "n_tokens": self.n_tokens, "n_trials": self.n_trials,
                               "n_events": int(np.sum(~ev.open_start)) if len(ev) else 0}
        if self.n_trials and self.meta.get("mode") == "events":  # figures of the event detector
            out.update(self._detection(slice(None), slice(None)))
        d = ev.delay_ms[~ev.open_start] if len(ev) else np.zeros(0)
        if self.meta.get("mode") == "events" and d.size:
            out["detection_delay_ms"] = {"median": float(np.median(d)), "p10": float(np.percentile(d, 10)),
                                         "p90": float(np.percentile(d, 90))}
        return out

    def metrics_by_subject(self) -> dict[str, dict[str, Any]]:
        """Detection figures of each subject alone (:data:`aemg.tokens.metrics.SUBJECT_KEYS`), subject id -> figures.

        Every session of a subject is pooled, as :meth:`metrics` pools the corpus; an event belongs to the
        recording it was detected in. Empty for window token sets and corpora without labelled trials.
        """
        from aemg.tokens.metrics import SUBJECT_KEYS

        if not self.n_trials or self.meta.get("mode") != "events":
            return {}
        subject = np.asarray(self.recordings.subject)
        trial_subject = subject[self.trials.recording]
        out: dict[str, dict[str, Any]] = {}
        for s in np.unique(trial_subject):
            d = self._detection(trial_subject == s, np.isin(self.events.recording, np.flatnonzero(subject == s)))
            out[str(s)] = {k: d[k] for k in SUBJECT_KEYS}
        return out

    def _detection(self, trials: np.ndarray | slice, events: np.ndarray | slice) -> dict[str, Any]:
        """:func:`aemg.tokens.metrics.detection_metrics` on the trial and event rows picked by two masks (or slices)."""
        from aemg.tokens.metrics import detection_metrics

        tr, ev = self.trials, self.events
        return detection_metrics(tr.recording[trials], tr.start[trials], tr.stop[trials],
                                 np.asarray(tr.gesture_key, dtype=object)[trials], ev.recording[events],
                                 ev.onset[events], ev.offset[events], ev.open_start[events], self.fs)

    # ------------------------------------------------------------------ storage
    @staticmethod
    def default_path(corpus_dir: str | Path, window_ms: float | None = None) -> Path:
        name = "events.npz" if window_ms is None else f"windows-{window_ms:g}ms.npz"
        return Path(corpus_dir) / "tokens" / name

    def columns(self) -> dict[str, np.ndarray]:
        """Every table's columns under their stored keys, in stored order."""
        out: dict[str, np.ndarray] = {}
        for attr, _ in TABLES:
            out.update(getattr(self, attr).columns())
        return out

    @classmethod
    def from_columns(cls, columns: Any, meta: dict[str, Any]) -> TokenSet:
        """A TokenSet from stored keys -> columns (see :meth:`columns`) and its ``meta``."""
        return cls(**{attr: table.from_columns(columns) for attr, table in TABLES}, meta=meta)

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write to ``path`` atomically (temporary file, fsync, rename)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        arrays = self.columns()
        arrays["meta"] = np.array(json.dumps(self.meta))
        with atomic_path(path, needed=estimate_nbytes(arrays)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenSet:
        """The TokenSet stored at ``path`` (a file, or a corpus folder: its ``tokens/events.npz``).

        A damaged or foreign file (not an ``.npz``, truncated, a key missing, a pickled or object
        array, columns of unequal length or out-of-range references) is a DataFormatError naming it.
        """
        path = Path(path)
        if path.is_dir():
            path = cls.default_path(path)
        try:
            columns, meta = _read_stored(path)
            ts = cls.from_columns(columns, meta)
            _check_stored(ts, path)
        except DataFormatError as exc:
            raise DataFormatError(exc.path, exc.expected, f"{exc.found}; aemg tokenize writes it anew") from None
        return ts


# ---------------------------------------------------------------------- reading a stored token set
_STORED = "an aemg token set (.npz written by aemg tokenize)"
_STR_KEYS = {"trial_label_name", "trial_gesture_key", "recording_id", "recording_subject", "recording_session",
             "recording_dataset"}
_BOOL_KEYS = {"active", "event_open_start", "event_open_end", "recording_rotation_unknown"}
_WIDTH = {"content": None, "coords": 4}
"""2-D columns and their number of columns (None: any); every other column is 1-D."""
_REFERENCES = (("tokens", "group", "groups", 0), ("groups", "recording", "recordings", 0),
               ("groups", "trial", "trials", -1), ("events", "recording", "recordings", 0),
               ("trials", "recording", "recordings", 0))
"""(table, column, referenced table, smallest allowed value): each column holds rows of another table."""


def _read_stored(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The columns and meta of a stored token set, or a one-line DataFormatError naming ``path``
    (never numpy's advice to allow pickles: a stored token set holds none)."""
    import zipfile
    import zlib

    if not path.exists():
        raise FileNotFoundError(f"{path}: token set not found (aemg tokenize writes it)")
    damaged = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError)
    try:
        z = np.load(path, allow_pickle=False)
    except damaged as exc:
        raise DataFormatError(path, _STORED, f"found {_not_npz(path, exc)}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataFormatError(path, _STORED, "found a single .npy array, not an .npz archive")
    with z:
        missing = [k for k in [*_LEGACY, "meta"] if k not in z.files]
        if missing:
            raise DataFormatError(path, _STORED, f"found no key(s) {', '.join(missing[:6])}"
                                                 f"{' ...' if len(missing) > 6 else ''}")
        columns: dict[str, np.ndarray] = {}
        for key in [*_LEGACY, "meta"]:
            try:
                columns[key] = z[key]
            except damaged as exc:
                what = ("an object (pickled) array" if "allow_pickle" in str(exc) or "bject arrays" in str(exc)
                        else f"damaged data ({' '.join(str(exc).split())[:120]})")
                raise DataFormatError(path, f"{_STORED}: key {key!r} a numeric or text array",
                                      f"found {what}") from None
    raw = columns.pop("meta")
    try:
        meta = json.loads(str(raw)) if raw.dtype.kind == "U" and raw.ndim == 0 else None
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("fs"), (int, float)) or isinstance(meta["fs"], bool):
        raise DataFormatError(path, f"{_STORED}: key 'meta' a JSON object with 'fs' (the rate in Hz)",
                              f"found {str(raw)[:60]!r} ({raw.dtype}, shape {raw.shape})")
    return columns, meta


def _not_npz(path: Path, exc: BaseException) -> str:
    """What a file np.load could not read looks like (not numpy's message: it advises allow_pickle)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"\x93NUM":
        return "a single .npy array, not an .npz archive"
    if head.startswith(b"PK"):
        return f"a damaged or truncated zip archive ({' '.join(str(exc).split())[:120]})"
    if not head:
        return "an empty file"
    return "bytes that are neither an .npz archive nor a numpy array"


def _check_stored(ts: TokenSet, path: Path) -> None:
    """Each table's columns have the stored dtype kind, shape and one length, and every reference
    to another table's rows is in range; else a DataFormatError naming ``path`` and the column."""
    n: dict[str, int] = {}
    for attr, _ in TABLES:
        columns = getattr(ts, attr).columns()
        for key, col in columns.items():
            if col.ndim == 0:
                raise DataFormatError(path, f"column {key!r} of the {attr} table: an array with one row per item",
                                      f"found a single value ({col.dtype})")
        n[attr] = int(next(c for k, c in columns.items() if k not in _WIDTH).shape[0])  # rows: a 1-D column's
        for key, col in columns.items():
            ndim = 2 if key in _WIDTH else 1
            kind = "U" if key in _STR_KEYS else "b" if key in _BOOL_KEYS else "iuf"
            width = _WIDTH.get(key)
            ok = (col.ndim == ndim and col.shape[0] == n[attr] and (col.size == 0 or col.dtype.kind in kind)
                  and (width is None or col.shape[1] == width))
            if not ok:
                want = {"U": "text", "b": "booleans", "iuf": "numbers"}[kind]
                shape = f"({n[attr]}, {width or 'F'})" if ndim == 2 else f"({n[attr]},)"
                raise DataFormatError(path, f"column {key!r} of the {attr} table: {want} of shape {shape}",
                                      f"found {col.dtype} of shape {col.shape}")
    for attr, column, other, low in _REFERENCES:
        col = getattr(getattr(ts, attr), column)
        if col.size and (col.min() < low or col.max() >= n[other]):
            raise DataFormatError(path, f"column {column!r} of the {attr} table: rows of the {other} table "
                                  f"({low} to {n[other] - 1})", f"found values {col.min()} to {col.max()}")


__all__ = ["IGNORE", "TABLES", "Events", "Groups", "Recordings", "TokenSet", "TokenSettings", "Tokens", "Trials"]
