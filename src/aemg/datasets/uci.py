"""UCI "EMG data for gestures" (Lobov et al. 2018) (``uci-gestures``).

Layout on disk (the UCI archive, ``EMG_data_for_gestures-master``)::

    <root>/[EMG_data_for_gestures-master/]<NN>/<series>_raw_data_<HH-MM>_<DD.MM.YY>.txt

``NN`` is the subject (01-36; subject id ``uci-gestures/all/NN``), ``series`` 1 or 2. Each file is tab-separated with the header
``time channel1 .. channel8 class``: time in ms, 8 Myo channels stored as int8 counts x 1e-5, and
the class (0 unmarked, 1 hand at rest, 2 fist, 3 wrist flexion, 4 wrist extension, 5 radial
deviation, 6 ulnar deviation, 7 extended palm).

Decisions (details in docs/datasets.md):

* Units: the values are converted back to Myo counts (``units="myo"``, integers in [-128, 127]),
  the same units as the other Myo datasets; the stored values are exactly counts x 1e-5.
* Rate: rows are logged at ~960 per second but hold each Myo sample (sample-and-hold). The reader
  keeps the rows as logged: ``fs`` is the file's measured row rate, the exact row times are the
  ``time_ms`` track, ``attrs["fs_original"]`` is the Myo's own 200 Hz and ``attrs["fs_logged"]`` the
  row rate. :func:`aemg.signal.holds.rebuild_sample_and_hold` rebuilds the signal at 200 Hz.
* Labels: class 0 is *unmarked* (label -1), not rest; classes 1..7 are labels 0..6.
* Sessions: a subject's two series were recorded a minute or two apart on the same day (file names
  carry the start time and date) without taking the armband off, so they form one session named
  by the date; series 1 is ``order`` 0, series 2 ``order`` 1. A repetition is a maximal run of one
  non-zero class, numbered chronologically per class over series 1 then series 2 (0..3), and on
  across dates should a subject's files span two (the numbering follows the subject, not the
  session). The files carry no repetition number of their own, so no ``file_repetition`` is kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from aemg.datasets._common import (
    SINGLE_PART,
    find_root,
    myo_counts_from_scaled,
    read_numeric_text,
    relpath,
    subject_id,
    text_row,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import Layout, get_layout
from aemg.recording import UNLABELLED, Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)  # aemg.datasets.uci

NAME = "uci-gestures"
# classes 1..7 of the dataset's README, in order (label = class - 1; class 0 "unmarked" -> -1)
GESTURES = ("hand at rest", "hand clenched in a fist", "wrist flexion", "wrist extension", "radial deviation",
            "ulnar deviation", "extended palm")
MAPPING = {"hand at rest": "rest", "hand clenched in a fist": "hand_close", "wrist flexion": "wrist_flexion",
           "wrist extension": "wrist_extension", "radial deviation": "radial_deviation",
           "ulnar deviation": "ulnar_deviation", "extended palm": "hand_open"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)
HEADER = ("time", *(f"channel{i}" for i in range(1, 9)), "class")
SCALE = 1e-5  # stored value = Myo count x SCALE
FS_DEVICE = 200.0  # the Myo's EMG stream rate
N_SUBJECTS = 36
FILE_RE = re.compile(r"([12])_raw_data_(\d{2})-(\d{2})_(\d{2})\.(\d{2})\.(\d{2})\.txt")
EXPECTED = "<root>/[EMG_data_for_gestures-master/]<NN>/<1|2>_raw_data_<HH-MM>_<DD.MM.YY>.txt"

INFO = DatasetInfo(
    name=NAME,
    title='EMG data for gestures (UCI Machine Learning Repository; Lobov et al. 2018)',
    device="Thalmic Myo armband (logged at ~1 kHz with sample-and-hold)",
    fs=FS_DEVICE,
    n_channels=8,
    n_subjects=N_SUBJECTS,
    gestures=GESTURES,
    layout="myo8",
    citation=("Lobov S., Krilova N., Kastalskiy I., Kazantsev V., Makarov V.A. Latent Factors Limiting the "
              "Performance of sEMG-Interfaces. Sensors 18(4):1122, 2018. doi:10.3390/s18041122"),
    url="https://archive.ics.uci.edu/dataset/481/emg+data+for+gestures",
    license="CC BY 4.0",
    mains_hz=50.0,
    notes=("Rows logged at ~960/s (time column in ms) hold each Myo sample: recordings come as logged, with a "
           "time_ms track; rebuild at 200 Hz with aemg.signal.rebuild_sample_and_hold. Class 0 = unmarked "
           "(label -1, not rest). Class 7 (extended palm) was not performed by all subjects. Values are Myo "
           "counts x 1e-5; the reader returns counts. The two series of a subject form one session."),
    extra={"fs_logged_nominal": 1000.0},
)


def _subject_dirs(base: Path) -> list[Path]:
    return sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"\d{2}", p.name))



def _line(path: Path, index: int) -> int:
    """The file line (1-based, header counted) of data row ``index`` of a UCI file (for messages)."""
    return text_row(path, "\t", 1, index)

class UciReader:
    """Reader of the UCI EMG data for gestures (layout and decisions in the module docstring)."""

    info = INFO

    def _base(self, root: Path) -> Path:
        return find_root(root, ("[0-9][0-9]/*_raw_data_*.txt",), EXPECTED)

    def _subject_files(self, subj: Path) -> list[tuple[str, int, Path, str]]:
        """``(date, series, path, start "HH:MM")`` of a subject's series files, in recording order."""
        out = []
        for path in subj.glob("*.txt"):
            m = FILE_RE.fullmatch(path.name)
            if m is None:
                if "raw_data" in path.name:
                    raise DataFormatError(path, "a file named <1|2>_raw_data_<HH-MM>_<DD.MM.YY>.txt")
                continue
            series, hh, mm, dd, mo, yy = m.groups()
            out.append((f"20{yy}-{mo}-{dd}", int(series), f"{hh}:{mm}", path))
        out.sort(key=lambda t: (t[0], t[1], t[2]))
        return [(date, series, path, start) for date, series, start, path in out]

    def files(self, root: Path) -> list[Path]:
        base = self._base(Path(root))
        return [path for subj in _subject_dirs(base) for _, _, path, _ in self._subject_files(subj)]

    def read(self, root: Path) -> Iterator[Recording]:
        base = self._base(Path(root))
        subjects = _subject_dirs(base)
        warn_absent(log, NAME, base, "subjects", [f"{i:02d}" for i in range(1, N_SUBJECTS + 1)],
                    [p.name for p in subjects])
        layout = get_layout("myo8")
        for subj in subjects:
            files = self._subject_files(subj)
            if not files:
                log.warning("%s: subject %s has no data files", NAME, subj.name)
                continue
            if sorted(s for _, s, _, _ in files) != [1, 2]:
                log.warning("%s: subject %s has series %s (expected 1 and 2)", NAME, subj.name,
                            ", ".join(str(s) for _, s, _, _ in files))
            subject = subject_id(NAME, SINGLE_PART, subj.name)
            dates = sorted({d for d, _, _, _ in files})
            rep_count = np.zeros(len(GESTURES), np.int64)  # repetitions so far per label, across the subject's files
            last_date = None
            order = 0
            for date, series, path, start in files:
                if date != last_date:
                    order = 0
                    last_date = date
                yield self._read_file(path, Path(root), layout, subject, date, dates.index(date), order, series, start,
                                      rep_count)
                order += 1

    def _read_file(self, path: Path, root: Path, layout: Layout, subject: str, session: str, session_order: int,
                   order: int, series: int, start: str, rep_count: np.ndarray) -> Recording:
        expected = "tab-separated columns " + " ".join(HEADER) + " with that header"
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                head = fh.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFormatError(path, expected, f"cannot read: {exc}") from exc
        if tuple(t.strip().lower() for t in head.strip().split("\t")) != HEADER:
            raise DataFormatError(path, f"header {' '.join(HEADER)!r} (tab-separated)", f"found {head.strip()[:80]!r}")
        data = read_numeric_text(path, n_columns=len(HEADER), delimiter="\t", skiprows=1, what=expected)
        time_ms = data[:, 0]
        if np.any(time_ms != np.round(time_ms)) or np.any(np.diff(time_ms) <= 0):
            raise DataFormatError(path, "a strictly increasing integer time column (ms)")
        cls = data[:, -1]
        if np.any(cls != np.round(cls)) or cls.min() < 0 or cls.max() > len(GESTURES):
            bad = np.flatnonzero((cls != np.round(cls)) | (cls < 0) | (cls > len(GESTURES)))[0]
            raise DataFormatError(path, f"class column in 0..{len(GESTURES)} (0 unmarked, {', '.join(GESTURES)})",
                                  f"found class {cls[bad]:g} in row {_line(path, bad)}, "
                                  f"column {len(HEADER)}")
        counts = myo_counts_from_scaled(path, data[:, 1:-1], SCALE,
                                        cell=lambda i, j: f"row {_line(path, i)}, column {j + 2}")
        labels = cls.astype(np.int32) - 1  # class 0 (unmarked) -> -1
        repetition = np.full(len(labels), UNLABELLED, np.int32)
        change = np.flatnonzero(np.diff(labels)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(labels)]):
            lab = labels[a]
            if lab >= 0:
                repetition[a:b] = rep_count[lab]
                rep_count[lab] += 1
        n = len(labels)
        span_s = (time_ms[-1] - time_ms[0]) / 1000.0
        fs_logged = round((n - 1) / span_s, 3) if n > 1 and span_s > 0 else 1000.0
        return Recording(
            signal=np.ascontiguousarray(counts.T, dtype=np.float32), fs=fs_logged, units="myo",
            electrodes=layout.electrodes, dataset=NAME, subject=subject, session=session, session_order=session_order,
            labels=labels, label_names=GESTURES, gesture_keys=KEYS, repetition=repetition,
            tracks={"time_ms": time_ms.astype(np.float64)},
            attrs={"fs_original": FS_DEVICE, "fs_logged": fs_logged, "sample_and_hold": True, "series": series,
                   "start_time": f"{session}T{start}"},
            layout_rotation_unknown=layout.rotation_unknown, arm="unknown", source_file=relpath(path, root),
            recording_id=f"{subject}/{session}/{path.stem}", order=order)


READER = UciReader()
