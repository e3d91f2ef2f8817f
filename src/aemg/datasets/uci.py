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
* Gaps: a step of more than :data:`aemg.plausible.GAP_MS` (1 s) in the time column is reported
  (file, data rows, length) and the file split there into separate recordings (``<stem>-part2``...);
  nothing is filled in and the row rate is measured on the gap-free parts (:func:`split_at_gaps`).
  The row rate must lie in :data:`FS_LOGGED_RANGE`.
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
    BadFiles,
    find_root,
    list_files,
    myo_counts_from_scaled,
    read_numeric_text,
    relpath,
    subject_id,
    text_row,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError, ImplausibleValueError
from aemg.layouts import Layout, get_layout
from aemg.plausible import GAP_MS
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
FS_LOGGED_RANGE = (200.0, 5000.0)
"""Plausible row rate of a file, Hz: the logger holds every Myo sample (>= 200 rows/s) at a nominal
1 kHz (real files: 947-970 rows/s); outside it the time column is not in ms (or not the row times)."""
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

    def _subject_files(self, subj: Path, bad: BadFiles) -> list[tuple[str, int, Path, str]]:
        """``(date, series, path, start "HH:MM")`` of a subject's series files, in recording order."""
        out = []
        for path, m in list_files(subj, FILE_RE, bad):
            series, hh, mm, dd, mo, yy = m.groups()
            out.append((f"20{yy}-{mo}-{dd}", int(series), f"{hh}:{mm}", path))
        out.sort(key=lambda t: (t[0], t[1], t[2]))
        return [(date, series, path, start) for date, series, start, path in out]

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        base = self._base(Path(root))
        return [path for subj in _subject_dirs(base) for _, _, path, _ in self._subject_files(subj, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        bad = bad if bad is not None else BadFiles(root)
        base = self._base(Path(root))
        subjects = _subject_dirs(base)
        warn_absent(log, NAME, base, "subjects", [f"{i:02d}" for i in range(1, N_SUBJECTS + 1)],
                    [p.name for p in subjects])
        layout = get_layout("myo8")
        try:
            for subj in subjects:
                files = self._subject_files(subj, bad)
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
                    counts = rep_count.copy()  # kept only when the file reads (a skipped file numbers nothing)
                    recs = bad.attempt(path, self._read_file, path, Path(root), layout, subject, date,
                                      dates.index(date), order, series, start, counts)
                    if recs is None:
                        continue
                    rep_count[:] = counts
                    for rec in recs:  # one per gap-free part
                        yield rec
                        order += 1
        finally:
            bad.warn_strays(log, NAME)

    def _read_file(self, path: Path, root: Path, layout: Layout, subject: str, session: str, session_order: int,
                   order: int, series: int, start: str, rep_count: np.ndarray) -> list[Recording]:
        """The file's recording: one per gap-free part (see :func:`split_at_gaps`), ``order`` on from ``order``."""
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
        bad = np.flatnonzero(time_ms != np.round(time_ms))
        if len(bad):
            raise DataFormatError(path, "a strictly increasing integer time column (ms)",
                                  f"time {time_ms[bad[0]]:g} in data row {bad[0] + 1}")
        bad = np.flatnonzero(np.diff(time_ms) <= 0)
        if len(bad):
            i = int(bad[0])
            raise DataFormatError(path, "a strictly increasing integer time column (ms)",
                                  f"time {time_ms[i + 1]:g} after {time_ms[i]:g} in data row {i + 2}")
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
        parts = split_at_gaps(time_ms)
        for (_, b), (c, _) in zip(parts[:-1], parts[1:]):
            log.warning("%s: %s: the time column jumps by %.3f s between data rows %d and %d (a gap: more than "
                        "%g ms); the file is split there into separate recordings, nothing is filled in",
                        NAME, path, (time_ms[c] - time_ms[b - 1]) / 1000.0, b, c + 1, GAP_MS)
        fs_logged = logged_rate(time_ms, parts, path)
        recs = []
        for k, (a, b) in enumerate(parts):
            attrs = {"fs_original": FS_DEVICE, "fs_logged": fs_logged, "sample_and_hold": True, "series": series,
                     "start_time": f"{session}T{start}"}
            stem = path.stem
            if len(parts) > 1:
                attrs.update(part=k + 1, n_parts=len(parts), first_data_row=a + 1)
                stem = f"{stem}-part{k + 1}" if k else stem
            recs.append(Recording(
                signal=np.ascontiguousarray(counts[a:b].T, dtype=np.float32), fs=fs_logged, units="myo",
                electrodes=layout.electrodes, dataset=NAME, subject=subject, session=session,
                session_order=session_order, labels=labels[a:b], label_names=GESTURES, gesture_keys=KEYS,
                repetition=repetition[a:b], tracks={"time_ms": time_ms[a:b].astype(np.float64)}, attrs=attrs,
                layout_rotation_unknown=layout.rotation_unknown, arm="unknown", source_file=relpath(path, root),
                recording_id=f"{subject}/{session}/{stem}", order=order + k))
        return recs


def split_at_gaps(time_ms: np.ndarray, gap_ms: float = GAP_MS) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` row ranges of ``time_ms`` between steps of more than ``gap_ms``.

    A gap is never filled (nor interpolated over by the rebuild at 200 Hz): each part becomes its own
    recording, and the row rate is measured on the parts alone (:func:`logged_rate`).
    """
    cut = (np.flatnonzero(np.diff(time_ms) > gap_ms) + 1).tolist()
    return list(zip([0, *cut], [*cut, len(time_ms)]))


def logged_rate(time_ms: np.ndarray, parts: list[tuple[int, int]], path: Path) -> float:
    """Rows per second over the gap-free ``parts`` (Hz, 3 decimals), checked against :data:`FS_LOGGED_RANGE`.

    A file of one row has no measurable rate: the logger's nominal 1000 Hz.
    """
    steps = sum(b - a - 1 for a, b in parts)
    span_s = sum(float(time_ms[b - 1] - time_ms[a]) for a, b in parts) / 1000.0
    if steps == 0 or span_s <= 0:
        return 1000.0
    fs = round(steps / span_s, 3)
    lo, hi = FS_LOGGED_RANGE
    if not lo <= fs <= hi:
        raise ImplausibleValueError(path, f"rows logged at {lo:g}-{hi:g} per second (time column in ms)",
                                    f"found {fs:g} rows per second over {span_s:g} s")
    return fs


READER = UciReader()
