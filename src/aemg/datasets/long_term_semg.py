"""Long-term sEMG dataset (Kanoga, Kanemura, Asoh 2020) (``long-term-semg``): 5 subjects x 30 sessions.

Layout on disk (the repository ``Suguru55/Wearable_Sensor_Long-term_sEMG_Dataset``, folder ``data/``)::

    <root>/[data/]sub<s>/day<d>/D<d>M<m>T<t>.csv      s = 1-5, d = 1-30, m = motion 1-22, t = trial 1-4

Each file is one 1.5 s epoch (300 rows x 8 comma-separated floats, no header, 200 Hz, Myo armband)
cut at a contraction onset: motion files are contraction from their first to their last sample,
and rest exists only as its own motion M1. No unit is stated; the values look like Myo normalised
units (int8 counts / 128) high-passed at about 15 Hz, so ``units = "myo/128"`` and the signal is
kept as stored. Amplitude scale and noise floor are per session (``aemg.signal``, ``aemg.tokens``),
never per file.

Subjects are ``long-term-semg/all/sub<s>``; sessions ``day<d>`` in numeric order (``dayD`` is the
session number of 30 sessions over 40-42 days, not a calendar day). Within a session, files are in
(motion, trial) order, numbers parsed (``M10`` after ``M2``): the recording order inside a session
is not published. ``attrs["armband_position"]`` is the session's armband placement, ``N``, ``I`` or
``O``, from the schedule in ``code/set_config.m`` (the same for every subject);
``attrs["file_repetition"]`` is the trial number ``t`` (1-4), ``attrs["day"]`` the session number.
``Recording.repetition`` numbers a motion's trials across the subject's sessions (day1 0-3, day2 4-7, ...).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from aemg.datasets._common import (
    SINGLE_PART,
    BadFiles,
    RepetitionCounter,
    check_range,
    find_root,
    list_files,
    one_repetition_recording,
    read_numeric_text,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.naming import natural_key
from aemg.recording import Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)  # aemg.datasets.long_term_semg

NAME = "long-term-semg"
_SINGLE = ("wrist flexion", "wrist extension", "radial deviation", "ulnar deviation")
GESTURES: tuple[str, ...] = (
    "rest", *_SINGLE, "pronation", "supination", "hand close",  # M1-M8
    *(f"{g} + pronation" for g in _SINGLE),  # M9-M12
    *(f"{g} + supination" for g in _SINGLE),  # M13-M16
    *(f"{g} + hand close" for g in _SINGLE),  # M17-M20
    "pronation + hand close", "supination + hand close",  # M21, M22
)
"""Motion names M1..M22 (label = m - 1): README, the movie names and ``code/labeling.m``."""
MAPPING = {"rest": "rest", "wrist flexion": "wrist_flexion", "wrist extension": "wrist_extension",
           "radial deviation": "radial_deviation", "ulnar deviation": "ulnar_deviation", "pronation": "pronation",
           "supination": "supination", "hand close": "hand_close"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)  # M9-M22 keep "long-term-semg:<name>"
N_SUBJECTS = 5
N_DAYS = 30
N_TRIALS = 4
N_ROWS = 300  # 1.5 s at 200 Hz, in every file of the full repository
VALUE_LIMIT = 4.0  # |value| bound: normalised units (full scale 1; measured max 1.53); int8 counts would exceed it
POSITIONS = "NIONIIOONN" "ONNOOIIINO" "OIOIINNINO"
"""Armband position of sessions day1..day30 (``code/set_config.m`` ``struct.pos``), for every subject."""
FILE_RE = re.compile(r"D(\d+)M(\d+)T(\d+)\.csv")
EXPECTED = "<root>/[data/]sub<s>/day<d>/D<d>M<m>T<t>.csv (s 1-5, d 1-30, m 1-22, t 1-4)"

INFO = DatasetInfo(
    name=NAME,
    title="Long-term sEMG dataset (Kanoga et al.): 30 sessions with armband shifts, 22 motions",
    device="Thalmic Myo armband",
    fs=200.0,
    n_channels=8,
    n_subjects=N_SUBJECTS,
    gestures=GESTURES,
    layout="myo8",
    citation=("Kanoga S., Kanemura A., Asoh H. Are armband sEMG devices dense enough for long-term use? "
              "Sensor placement shifts cause significant reduction in recognition accuracy. Biomedical Signal "
              "Processing and Control, 2020 (ScienceDirect PII S1746809420301373)."),
    url="https://github.com/Suguru55/Wearable_Sensor_Long-term_sEMG_Dataset (folder data/)",
    license="Apache-2.0",
    notes=("5 subjects x 30 sessions (day1..day30, over 40-42 days) x 22 motions x 4 trials, one 1.5 s epoch per "
           "file cut at the contraction onset (no rest inside motion files; rest is M1). Armband position N, I or "
           "O per session (attrs['armband_position']). M9-M22 combine two motions. Units unstated (normalised "
           "Myo units, high-passed ~15 Hz: units 'myo/128')."),
    extra={"sessions": N_DAYS, "armband_positions": POSITIONS},
)


def position(day: int) -> str:
    """Armband position (``N``, ``I`` or ``O``) of session ``day`` (1-30)."""
    return POSITIONS[day - 1]


class LongTermSemgReader:
    """Reader of the long-term sEMG dataset (layout in the module docstring)."""

    info = INFO

    def _sessions(self, root: Path, report_absent: bool = True) -> list[tuple[str, int, Path]]:
        """``(subject folder name, day, day folder)`` of every session present, in time order."""
        base = find_root(root, ("sub[0-9]*",), EXPECTED)
        subjects = sorted((p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"sub\d+", p.name)),
                          key=lambda p: natural_key(p.name))
        if not subjects:
            raise DataFormatError(base, EXPECTED, "no sub<s> folder")
        if report_absent:  # read() reports; files() lists the same folders silently
            warn_absent(log, NAME, base, "subjects", [f"sub{i}" for i in range(1, N_SUBJECTS + 1)],
                        [p.name for p in subjects])
        found, missing = [], []
        for subj in subjects:
            days = {}
            for p in subj.iterdir():
                m = re.fullmatch(r"day(\d+)", p.name)
                if p.is_dir() and m:
                    d = int(m.group(1))
                    if not 1 <= d <= N_DAYS:
                        raise DataFormatError(p, f"session folders day1..day{N_DAYS}", f"day {d}")
                    days[d] = p
            if not days:
                raise DataFormatError(subj, f"session folders day1..day{N_DAYS}", "found none")
            missing.extend(f"{subj.name}/day{d}" for d in range(1, N_DAYS + 1) if d not in days)
            found.extend((subj.name, d, days[d]) for d in sorted(days))
        if report_absent and missing:  # one line for all subjects (a partial download is normal)
            warn_absent(log, NAME, base, "sessions", missing, [])
        return found

    @staticmethod
    def _session_files(day_dir: Path, day: int, bad: BadFiles) -> list[tuple[int, int, Path]]:
        """``(motion, trial, path)`` of a session's 88 files, in (motion, trial) order, checked complete."""
        items = {}
        for path, m in list_files(day_dir, FILE_RE, bad):
            d, mo, t = (int(g) for g in m.groups())
            if d != day:
                bad.reject(DataFormatError(path, f"D{day} in the file name (the folder's day)", f"D{d}"))
            elif not 1 <= mo <= len(GESTURES):
                bad.reject(DataFormatError(path, f"motion M1..M{len(GESTURES)}", f"M{mo}"))
            elif not 1 <= t <= N_TRIALS:
                bad.reject(DataFormatError(path, f"trial T1..T{N_TRIALS}", f"T{t}"))
            else:
                items[(mo, t)] = path
        for mo in range(1, len(GESTURES) + 1):
            for t in range(1, N_TRIALS + 1):
                if (mo, t) not in items:
                    bad.reject(DataFormatError(day_dir / f"D{day}M{mo}T{t}.csv",
                                               f"{len(GESTURES)} motions x {N_TRIALS} trials per session",
                                               "file missing"))
        return [(mo, t, p) for (mo, t), p in sorted(items.items())]

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for _, day, d in self._sessions(Path(root), report_absent=False)
                for _, _, p in self._session_files(d, day, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        layout = get_layout("myo8")
        reps = RepetitionCounter()  # sessions come in (subject, day) order
        try:
            for name, day, day_dir in self._sessions(root):
                subject = subject_id(NAME, SINGLE_PART, name)
                session = f"day{day}"
                for order, (mo, t, path) in enumerate(self._session_files(day_dir, day, bad)):
                    data = bad.attempt(path, _load, path)
                    if data is None:
                        continue
                    label = mo - 1
                    yield one_repetition_recording(
                        data, path=path, root=root, fs=INFO.fs, units="myo/128", layout=layout, dataset=NAME,
                        subject=subject, session=session, session_order=day - 1, order=order, label=label,
                        repetition=reps.next(subject, label), label_names=GESTURES, gesture_keys=KEYS,
                        recording_id=f"{subject}/{session}/{path.stem}",
                        attrs={"armband_position": position(day), "day": day, "file_repetition": t})
        finally:
            bad.warn_strays(log, NAME)


def _load(path: Path) -> np.ndarray:
    """One epoch file's values, checked (the reading of one file, for :meth:`BadFiles.attempt`)."""
    data = read_numeric_text(path, n_columns=INFO.n_channels, delimiter=",",
                             what="8 comma-separated float columns (normalised Myo units), no header")
    if data.shape[0] != N_ROWS:
        raise DataFormatError(path, f"{N_ROWS} rows (one 1.5 s epoch at 200 Hz)", f"{data.shape[0]} rows")
    check_range(path, data, -VALUE_LIMIT, VALUE_LIMIT, what="normalised Myo units")
    return data


READER = LongTermSemgReader()
