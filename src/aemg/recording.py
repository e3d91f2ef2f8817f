"""The shared signal format: one continuous EMG recording, whatever device or dataset it came from.

Every reader fills :class:`Recording` objects; every later stage (harmonization, corpus store,
tokenizer, live decoder) reads them. The schema is closed: the fields below are the whole of it.

Electrode coordinates (forearm frame, the same for left and right arms after mirroring):

* ``angle_deg``: around the forearm, 0 on the dorsal midline (over extensor digitorum), growing
  toward the radial (thumb) side, so the ventral midline (flexor digitorum) is at 180 and the ulnar
  side at 270. 360-periodic: models embed it as (cos, sin), never as a raw number.
* ``z``: along the forearm, 0 at the elbow crease, 1 at the wrist crease (fraction of forearm length).
* Electrodes off the forearm (Ninapro's biceps and triceps) or with an unpublished position have
  ``angle_deg = z = nan`` and a ``site`` name; :attr:`Electrode.on_forearm` is False for them.

Repetitions: ``Recording.repetition`` is chronological within subject and gesture across the
subject's sessions in ``session_order``, hence also within each session. Sorting a subject's
trials of one gesture by ``(session_order, order, start sample)`` gives ids that increase strictly:
0, 1, 2, ... for every reader (3DC's ``test`` files, named 0-3 again, get 4-7), except where a
generic-import manifest gives its own ``repetition`` values, which are kept as given.

Standard ``attrs`` keys set by the readers and the signal functions (each recording may hold
further, dataset-specific ones, listed in its reader's docstring):

* ``fs_original``: the device's own sampling rate in Hz (every reader; kept through resampling).
* ``fs_logged``: the rate at which rows were logged when it differs from the device's (UCI's
  ~960 Hz sample-and-hold rows); ``sample_and_hold``: True while the signal still holds repeated
  rows, False once rebuilt; ``change_rate_hz``: measured rate of value changes (after the rebuild).
* ``file_repetition``: the dataset's own repetition number of the recording, as its file or
  folder numbers it (restarting per session in 3DC, Côté-Allard and CIIL; per sample group in
  EMG-EPN-612); ``repetition`` itself is renumbered as above.
* ``part``, ``set``, ``series``, ``start_time``, ``user``, ``samples_group``, ``sample_index``,
  ``exercise``, ``subject_number``, ``participant_id``, ``manifest_row``, ``trial``, ``layout``,
  ``analog_lowpass_hz``: where a recording came from within its dataset (see each reader).
* ``mains_source``: how ``mains_hz`` was decided (set by corpus preparation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

UNLABELLED = -1
"""Label and repetition value of samples that carry no label (e.g. UCI's class 0 "unmarked")."""

ARMS = ("right", "left", "unknown")


@dataclass(frozen=True)
class Electrode:
    """One EMG channel's place on the body, in the forearm frame described in the module docstring."""

    site: str  # muscle or placement name ("ring" for an armband pod, "biceps", "unknown")
    angle_deg: float  # around the forearm, degrees; nan when off the forearm or unknown
    z: float  # along the forearm, 0 elbow .. 1 wrist; nan when off the forearm or unknown
    layout: str  # name of the layout this electrode belongs to (see aemg.layouts)
    index: int = 0  # channel index within its layout

    @property
    def on_forearm(self) -> bool:
        """True when the electrode has forearm coordinates."""
        return not (math.isnan(self.angle_deg) or math.isnan(self.z))

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "angle_deg": self.angle_deg, "z": self.z, "layout": self.layout,
                "index": self.index}


@dataclass(frozen=True, eq=False)
class Recording:
    """One continuous multi-channel EMG recording in the shared format.

    ``signal`` is ``(channels, samples)`` float32 in ``units``; ``labels`` and ``repetition`` are
    per-sample int arrays (``-1`` = unlabelled / not in a repetition). ``labels`` index
    ``label_names`` (the dataset's own gesture names); ``gesture_keys[i]`` is the shared-vocabulary
    name of ``label_names[i]`` or ``"dataset:name"`` when it is outside the vocabulary.
    ``repetition`` is chronological within subject and gesture across the subject's sessions in
    ``session_order``, hence also within each session (the dataset's own per-file number, where it
    restarts per session, is ``attrs["file_repetition"]``). ``fs`` changes only through
    :mod:`aemg.signal` functions, which return a new Recording and append to ``processing``.
    """

    signal: np.ndarray  # (C, T) float32
    fs: float  # Hz, current rate; the device's own rate is attrs["fs_original"]
    units: str  # "mV", "uV", "V", "adc" (raw counts, unknown scale), "myo" (Myo int8 counts), ...
    electrodes: tuple[Electrode, ...]  # one per channel, in channel order
    dataset: str  # registry name, e.g. "3dc"
    subject: str  # unique within a corpus: "dataset/part/name", e.g. "cote-allard/pretraining/Female1"
    session: str  # session name within the subject, e.g. "train"
    session_order: int = 0  # chronological rank of the session within the subject (0 first)
    labels: np.ndarray | None = None  # (T,) int32, index into label_names, -1 unlabelled
    label_names: tuple[str, ...] = ()  # the dataset's own gesture names
    gesture_keys: tuple[str, ...] = ()  # shared-vocabulary key per label name
    repetition: np.ndarray | None = None  # (T,) int32, chronological within subject and gesture across sessions
    tracks: dict[str, np.ndarray] = field(default_factory=dict)  # named (T,) extra per-sample arrays
    attrs: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable per-recording facts
    layout_rotation_unknown: bool = False  # armband whose rotation / direction on the arm is unknown
    arm: str = "unknown"  # "right", "left" or "unknown"
    source_file: str = ""  # path of the raw file(s), relative to the dataset root
    recording_id: str = ""  # unique within a corpus; set by the reader (e.g. "subject/session/file")
    order: int = 0  # chronological rank of this recording within its subject and session
    mains_hz: float | None = None  # 50 or 60 once detected; None when unknown
    hardware_band: tuple[float, float] | None = None  # device's analog band (Hz), when published
    channel_flags: tuple[str, ...] = ()  # per channel: "" ok, or "dead", "saturated", "mains"
    processing: tuple[str, ...] = ()  # processing steps applied, in order

    def __post_init__(self) -> None:
        sig = self.signal
        if not isinstance(sig, np.ndarray) or sig.dtype != np.float32 or sig.ndim != 2:
            raise ValueError(f"{self.source_file or self.recording_id}: signal must be a float32 "
                             f"(channels, samples) array, got {getattr(sig, 'dtype', type(sig))} "
                             f"{getattr(sig, 'shape', '')}")
        n_ch, n = sig.shape
        if not self.fs > 0:
            raise ValueError(f"{self.source_file}: fs must be > 0, got {self.fs}")
        if len(self.electrodes) != n_ch:
            raise ValueError(f"{self.source_file}: {n_ch} channels but {len(self.electrodes)} electrodes")
        for name, arr in (("labels", self.labels), ("repetition", self.repetition)):
            if arr is not None and (arr.ndim != 1 or len(arr) != n):
                raise ValueError(f"{self.source_file}: {name} must have shape ({n},), got {arr.shape}")
        for name, arr in self.tracks.items():
            if len(arr) != n:
                raise ValueError(f"{self.source_file}: track {name!r} has {len(arr)} samples, signal {n}")
        if len(self.gesture_keys) != len(self.label_names):
            raise ValueError(f"{self.source_file}: {len(self.label_names)} label names but "
                             f"{len(self.gesture_keys)} gesture keys")
        if self.labels is not None and n and int(self.labels.max(initial=-1)) >= len(self.label_names):
            raise ValueError(f"{self.source_file}: label {int(self.labels.max())} outside "
                             f"{len(self.label_names)} label names")
        if self.channel_flags and len(self.channel_flags) != n_ch:
            raise ValueError(f"{self.source_file}: {len(self.channel_flags)} channel flags for {n_ch} channels")
        if self.arm not in ARMS:
            raise ValueError(f"{self.source_file}: arm must be one of {ARMS}, got {self.arm!r}")

    @property
    def n_channels(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def replace(self, **changes: Any) -> Recording:
        """A copy with some fields changed (the object itself is frozen)."""
        return replace(self, **changes)

    def with_step(self, step: str, **changes: Any) -> Recording:
        """A copy with ``changes`` applied and ``step`` appended to ``processing``."""
        return replace(self, processing=(*self.processing, step), **changes)

    def pick(self, channels: list[int] | np.ndarray) -> Recording:
        """Keep ``channels`` (in that order): signal rows, electrodes and flags move together."""
        idx = [int(c) for c in channels]
        flags = tuple(self.channel_flags[i] for i in idx) if self.channel_flags else ()
        return replace(self, signal=np.ascontiguousarray(self.signal[idx]),
                       electrodes=tuple(self.electrodes[i] for i in idx), channel_flags=flags)

    def trials(self) -> list[tuple[int, int, int, int]]:
        """Maximal runs of constant (label, repetition) with a label: ``(start, stop, label, rep)``.

        ``stop`` is exclusive, in samples. A trial is one repetition of one gesture.
        """
        if self.labels is None or self.n_samples == 0:
            return []
        lab = self.labels.astype(np.int64)
        rep = self.repetition.astype(np.int64) if self.repetition is not None else np.zeros_like(lab)
        key = lab * 1_000_003 + rep
        change = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(key)]])
        return [(int(a), int(b), int(lab[a]), int(rep[a])) for a, b in zip(starts, stops) if lab[a] >= 0]
