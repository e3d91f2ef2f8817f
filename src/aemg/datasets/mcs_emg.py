"""MCS_EMG (the name EMGBench and the AEMG code use; likely Ozdemir et al. 2022, Data in Brief 41:107921).

**The layout below is pinned down from public loaders, not from a real file; see
docs/datasets_fixtures.md for what is confirmed.** The reader states each expectation and raises
:class:`~aemg.errors.DataFormatError` naming the file when a real file differs.

* Files: ``<root>/sEMG-dataset/raw/mat/**/*.mat`` (EMGBench globs recursively; a third-party
  analysis keeps them in ``female/`` and ``male/``), one per participant, holding ``data``
  ``(T, 4)`` time-major and ``iD`` (participant number 1..40, read as ``iD[0][0]``). Any ``*.mat``
  below the root is read except under a ``filtered`` folder (the dataset's pre-filtered copy).
  Without .mat files, ``raw/csv/{id}_raw.csv`` (comma-separated, 4 numeric columns, optional header)
  is read instead.
* 2000 Hz; 4 channels (EMGBench ``numElectrodes = 4``; positions unpublished: layout ``mcs4``).
* One continuous recording per participant: 5 cycles starting at 4, 138, 272, 406, 540 s; in each,
  gesture g (0..9, order below) is cued from ``offset + 10 g`` s for 6 s, then 4 s until the next cue.
  The cue windows get the gesture's label and repetition = cycle index (0..4; one session per
  participant, so chronological within subject and gesture); the 4 s gaps are
  unlabelled (-1): they are transitions and recovery, not a cued rest (gesture 0 is the cued rest).
  A file shorter than the last cue's end (636 s) is reported as truncated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aemg.datasets._common import (
    SINGLE_PART,
    BadFiles,
    as_signal,
    list_files,
    read_csv,
    relpath,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.datasets.ninapro import load_mat
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.recording import UNLABELLED, Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)

NAME = "mcs-emg"
FS = 2000.0
N_CHANNELS = 4
N_SUBJECTS = 40
GESTURES = ("Rest", "Extension", "Flexion", "Ulnar_Deviation", "Radial_Deviation", "Grip", "Abduction",
            "Adduction", "Supination", "Pronation")
MAPPING = {"Rest": "rest", "Extension": "wrist_extension", "Flexion": "wrist_flexion",
           "Ulnar_Deviation": "ulnar_deviation", "Radial_Deviation": "radial_deviation", "Grip": "hand_close",
           "Abduction": "finger_abduction", "Adduction": "finger_adduction", "Supination": "supination",
           "Pronation": "pronation"}
_CSV_RE = re.compile(r"^(\d+)_raw\.csv$", re.IGNORECASE)
_MAT_RE = re.compile(r".+\.mat")


@dataclass(frozen=True)
class McsTiming:
    """Cue timing of one participant's continuous recording, in seconds (EMGBench process_MCS.py)."""

    cycle_offsets_s: tuple[float, ...] = (4.0, 138.0, 272.0, 406.0, 540.0)
    gesture_period_s: float = 10.0  # cue of gesture g starts at offset + g * period
    cue_s: float = 6.0  # the cue lasts 6 s; the remaining 4 s are a pause

    def windows(self, fs: float, n_gestures: int) -> list[tuple[int, int, int, int]]:
        """``(start, stop, gesture, cycle)`` sample ranges of every cue, in time order."""
        out = []
        for c, off in enumerate(self.cycle_offsets_s):
            for g in range(n_gestures):
                a = int(round((off + g * self.gesture_period_s) * fs))
                out.append((a, a + int(round(self.cue_s * fs)), g, c))
        return sorted(out)


INFO = DatasetInfo(
    name=NAME, title="MCS_EMG: multi-channel sEMG of 10 hand gestures (layout unconfirmed)",
    device="unconfirmed (BIOPAC likely)", fs=FS, n_channels=N_CHANNELS, n_subjects=N_SUBJECTS, gestures=GESTURES,
    layout="mcs4",
    citation="Ozdemir M.A., Kisa D.H., Guren O., Akan A., Dataset for multi-channel surface electromyography (sEMG) "
             "signals of hand gestures, Data in Brief 41:107921 (2022), doi:10.1016/j.dib.2022.107921 (attribution "
             "unconfirmed)",
    url="https://doi.org/10.1016/j.dib.2022.107921", license="unknown", mains_hz=50.0,
    notes="layout pinned down from EMGBench and AEMG loaders, not a real file: data (T x 4) + iD per .mat; "
          "5 cycles x 10 cued gestures of 6 s; gaps unlabelled; units unknown.",
)


class McsEmgReader:
    info = INFO

    def __init__(self, timing: McsTiming | None = None):
        self.timing = timing or McsTiming()

    def _find(self, root: Path, bad: BadFiles) -> tuple[str, list[Path]]:
        root = Path(root)
        if not root.is_dir():
            raise DataFormatError(root, "a folder holding MCS_EMG sEMG-dataset/raw/mat/**/*.mat")

        def listed(glob: str, pattern: re.Pattern[str]) -> list[Path]:
            """Files named ``pattern`` in the folders (not under ``filtered``) holding any; the rest stray."""
            folders = sorted({p.parent for p in root.rglob(glob) if pattern.match(p.name)
                              and "filtered" not in {q.lower() for q in p.relative_to(root).parts[:-1]}})
            return [p for folder in folders for p, _ in list_files(folder, pattern, bad)]

        mats = sorted(listed("*.mat", _MAT_RE))
        if mats:
            return "mat", mats
        csvs = sorted(listed("*.csv", _CSV_RE), key=lambda p: int(_CSV_RE.match(p.name).group(1)))
        if csvs:
            return "csv", csvs
        raise DataFormatError(root, "MCS_EMG files sEMG-dataset/raw/mat/**/*.mat (or raw/csv/{id}_raw.csv)",
                              "found none")

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        return self._find(Path(root), bad if bad is not None else BadFiles(root))[1]

    def _ident(self, kind: str, path: Path) -> int:
        if kind == "csv":
            return int(_CSV_RE.match(path.name).group(1))
        mat = load_mat(path, ("iD",))
        if "iD" not in mat:
            raise DataFormatError(path, "MCS_EMG variables 'data' (samples x 4) and 'iD'", "missing 'iD'")
        ident = np.asarray(mat["iD"]).reshape(-1)
        if ident.size != 1 or not np.issubdtype(ident.dtype, np.number) or ident[0] != np.round(ident[0]):
            raise DataFormatError(path, "'iD' holding one participant number", f"found {np.asarray(mat['iD']).reshape(-1)[:4].tolist()} "
                                  f"(shape {np.asarray(mat['iD']).shape})")
        return int(ident[0])

    def _data(self, kind: str, path: Path) -> np.ndarray:
        if kind == "csv":
            return _read_csv(path)
        mat = load_mat(path, ("data",))
        if "data" not in mat:
            raise DataFormatError(path, "MCS_EMG variables 'data' (samples x 4) and 'iD'", "missing 'data'")
        data = np.asarray(mat["data"])
        if data.ndim == 2 and data.shape[0] == N_CHANNELS and data.shape[1] > N_CHANNELS:
            raise DataFormatError(path, f"'data' time-major (samples x {N_CHANNELS})",
                                  f"found shape {data.shape} (channels x samples?)")
        return data

    def _signal(self, kind: str, path: Path, need: int) -> np.ndarray:
        """One participant's ``(channels, samples)`` signal, checked long enough for every cue."""
        signal = as_signal(self._data(kind, path), path, N_CHANNELS, what="data")
        n = signal.shape[1]
        if n < need:
            raise DataFormatError(path, f">= {need} samples ({need / FS:g} s at {FS:g} Hz: 5 cycles of 10 cued "
                                        f"gestures)", f"found {n} ({n / FS:.1f} s): truncated?")
        return signal

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        kind, paths = self._find(root, bad)
        windows = self.timing.windows(FS, len(GESTURES))
        need = max(b for _, b, _, _ in windows)
        layout = get_layout(INFO.layout, N_CHANNELS)
        keys = gesture_keys(NAME, GESTURES, MAPPING)
        seen: dict[int, Path] = {}
        try:
            for path in paths:  # participant ids first (cheap), so a duplicate fails before any heavy read
                ident = bad.attempt(path, self._ident, kind, path)
                if ident is None:
                    continue
                if not 1 <= ident <= N_SUBJECTS:
                    bad.reject(DataFormatError(path, f"participant iD in 1..{N_SUBJECTS}", f"found {ident}"))
                elif ident in seen:
                    bad.reject(DataFormatError(path, "one file per participant",
                                               f"iD {ident} also in {relpath(seen[ident], root)}"))
                else:
                    seen[ident] = path
            warn_absent(log, NAME, root, "participants", [f"p{i}" for i in range(1, N_SUBJECTS + 1)],
                        [f"p{i}" for i in seen])
            for ident, path in sorted(seen.items()):
                signal = bad.attempt(path, self._signal, kind, path, need)
                if signal is None:
                    continue
                n = signal.shape[1]
                labels = np.full(n, UNLABELLED, np.int32)
                repetition = np.full(n, UNLABELLED, np.int32)
                for a, b, g, c in windows:
                    labels[a:b] = g
                    repetition[a:b] = c
                sid = subject_id(NAME, SINGLE_PART, f"p{ident}")
                group = path.parent.name.lower()
                attrs = {"fs_original": FS, "participant_id": ident, "variant": f"raw-{kind}"}
                if group in ("female", "male"):
                    attrs["group_folder"] = group
                yield Recording(
                    signal=signal, fs=FS, units="adc", electrodes=layout.electrodes, dataset=NAME, subject=sid,
                    session="session1", session_order=0, labels=labels, label_names=GESTURES, gesture_keys=keys,
                    repetition=repetition, attrs=attrs, layout_rotation_unknown=layout.rotation_unknown,
                    source_file=relpath(path, root), recording_id=f"{sid}/session1/raw", order=0,
                )
        finally:
            bad.warn_strays(log, NAME)


def _read_csv(path: Path) -> np.ndarray:
    return read_csv(path, f"comma-separated rows of {N_CHANNELS} numbers (optional header)")


READER = McsEmgReader()
