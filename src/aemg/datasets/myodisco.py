"""MyoDisCo (LibEMG) (``myodisco``): 14 subjects, two donnings, four limb positions, 10 gestures.

Layout on disk (the repository ``LibEMG/MyoDisCo``)::

    <root>/S<n>/day1/R_<rep>_C_<class>_EMG.csv           rep 0-19, class 0-9
    <root>/S<n>/day2/R_<rep>_C_<class>_EMG.csv           rep 0-19
    <root>/S<n>/positions/<p>/R_<rep>_C_<class>_EMG.csv  p = 1-4, rep 0-4
    <root>/S<n>/.../metadata.json                        optional, never trusted (below)

CSV, CRLF, no header, 8 integer columns in [-128, 127] (Myo int8 counts, 200 Hz), 352-426 rows:
one ~0.5 s gesture inside ~2 s that start and end near rest. Subjects are ``myodisco/all/S<n>``,
taken from the folder name only. Sessions, in time order: ``day1`` (session_order 0), ``day2`` (1),
then ``position1`` .. ``position4`` (2-5), the limb-position blocks recorded in the day-2 donning
(their metadata paths lie under ``Day2/``; that they followed the day-2 static block is assumed).
``attrs["limb_position"]`` is ``p`` for ``position<p>`` and 0 for the day1/day2 blocks (whose posture
is not stated either); ``attrs["donning"]`` is 1 or 2, ``attrs["file_repetition"]`` the ``R`` number.
Within a session files are in repetition, then class order (the metadata lists them rep-major).

Classes come from the file name and the fixed list :data:`GESTURES` (9 ``z_rest`` is rest), never
from ``metadata.json``: S1/day2 has none, S10-S14's name the next subject, and S4/day1's lists an
11-class scheme that its files do not follow. A metadata file that disagrees is reported once, not
read. ``S7/day1/R_9_C_5_EMG.csv`` and ``S7/day2/R_9_C_5_EMG.csv`` are byte-identical: yielded as
found, for the corpus builder's duplicate check.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from aemg.datasets._common import (
    SINGLE_PART,
    BadFiles,
    RepetitionCounter,
    WarningCounter,
    find_root,
    list_files,
    one_repetition_recording,
    read_myo_counts_csv,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.naming import natural_key
from aemg.recording import Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)  # aemg.datasets.myodisco

NAME = "myodisco"
GESTURES = ("double_tap", "extension", "finger_gun", "flexion", "hand_close", "hand_open", "point", "snap",
            "thumbs_up", "z_rest")
"""Class names 0-9 (the ``class_name`` of every metadata.json but S4/day1's)."""
MAPPING = {"extension": "wrist_extension", "flexion": "wrist_flexion", "hand_close": "hand_close",
           "hand_open": "hand_open", "point": "index_point", "z_rest": "rest"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)
N_SUBJECTS = 14
N_POSITIONS = 4
# session folder (relative to S<n>) -> (session name, session_order, repetitions, donning, limb position)
SESSIONS: dict[str, tuple[str, int, int, int, int]] = {
    "day1": ("day1", 0, 20, 1, 0),
    "day2": ("day2", 1, 20, 2, 0),
    **{f"positions/{p}": (f"position{p}", 1 + p, 5, 2, p) for p in range(1, N_POSITIONS + 1)},
}
FILE_RE = re.compile(r"R_(\d+)_C_(\d+)_EMG\.csv")
SUBJECT_RE = re.compile(r"S(\d+)")
EXPECTED = "<root>/S<n>/{day1,day2,positions/<p>}/R_<rep>_C_<class>_EMG.csv (n 1-14, p 1-4)"

INFO = DatasetInfo(
    name=NAME,
    title="MyoDisCo (LibEMG): two donnings and four limb positions, 10 gestures",
    device="Thalmic Myo armband",
    fs=200.0,
    n_channels=8,
    n_subjects=N_SUBJECTS,
    gestures=GESTURES,
    layout="myo8",
    citation=("MyoDisCo dataset, distributed with LibEMG; J. Neural Eng., doi 10.1088/1741-2552/ad4915 "
              "(the citation of LibEMG's loader; authors and title not checked)."),
    url="https://github.com/LibEMG/MyoDisCo",
    license="none stated in the repository (no file of it is shipped with aemg)",
    notes=("day1 and day2 are separate donnings (20 repetitions per class each); positions/1-4 are limb positions "
           "in the day-2 donning (5 per class), attrs['limb_position']. LibEMG keeps classes 1-5, 8, 9. "
           "metadata.json is ignored (missing in S1/day2, wrong subject in S10-S14, 11 classes in S4/day1). "
           "S7 day1/day2 R_9_C_5 are byte-identical. Units: Myo int8 counts."),
)


class MyoDisCoReader:
    """Reader of MyoDisCo (layout in the module docstring)."""

    info = INFO

    def _sessions(self, root: Path, report_absent: bool = True) -> list[tuple[str, str, Path]]:
        """``(subject folder name, session folder key, folder)`` of every session present, in time order."""
        base = find_root(root, ("S[0-9]*",), EXPECTED)
        subjects = sorted((p for p in base.iterdir() if p.is_dir() and SUBJECT_RE.fullmatch(p.name)),
                          key=lambda p: natural_key(p.name))
        if not subjects:
            raise DataFormatError(base, EXPECTED, "no S<n> folder")
        if report_absent:  # read() reports; files() lists the same folders silently
            warn_absent(log, NAME, base, "subjects", [f"S{i}" for i in range(1, N_SUBJECTS + 1)],
                        [p.name for p in subjects])
        found, missing = [], []
        for subj in subjects:
            present = [k for k in SESSIONS if (subj / k).is_dir()]
            if not present:
                raise DataFormatError(subj, "session folders day1/, day2/, positions/1..4/", "found none")
            missing.extend(f"{subj.name}/{k}" for k in SESSIONS if k not in present)
            found.extend((subj.name, k, subj / k) for k in present)
        if report_absent and missing:
            warn_absent(log, NAME, base, "session folders", missing, [])
        return found

    @staticmethod
    def _session_files(folder: Path, n_reps: int, bad: BadFiles) -> list[tuple[int, int, Path]]:
        """``(repetition, class, path)`` of a session folder's files in recording order, checked complete."""
        named = list_files(folder, FILE_RE, bad, allowed=("metadata.json",))
        if not named:
            raise DataFormatError(folder, "R_<rep>_C_<class>_EMG.csv files", "found none")
        items = {}
        for path, m in named:
            rep, cls = int(m.group(1)), int(m.group(2))
            if cls >= len(GESTURES):
                bad.reject(DataFormatError(path, f"class index 0..{len(GESTURES) - 1} ({', '.join(GESTURES)})",
                                           f"class {cls}"))
            elif rep >= n_reps:
                bad.reject(DataFormatError(path, f"repetition index 0..{n_reps - 1} in this folder",
                                           f"repetition {rep}"))
            else:
                items[(rep, cls)] = path
        last = max((r for r, _ in items), default=-1)
        for r in range(last + 1):
            for c in range(len(GESTURES)):
                if (r, c) not in items:
                    bad.reject(DataFormatError(folder / f"R_{r}_C_{c}_EMG.csv",
                                               f"every class 0..{len(GESTURES) - 1} for repetitions 0..{last}",
                                               "file missing"))
        return [(r, c, p) for (r, c), p in sorted(items.items())]

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for _, key, folder in self._sessions(Path(root), report_absent=False)
                for _, _, p in self._session_files(folder, SESSIONS[key][2], bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        layout = get_layout("myo8")
        reps = RepetitionCounter()  # sessions come in (subject, session_order) order
        quirks = WarningCounter(log, NAME)
        try:
            for name, key, folder in self._sessions(root):
                session, session_order, n_reps, donning, limb = SESSIONS[key]
                subject = subject_id(NAME, SINGLE_PART, name)
                files = self._session_files(folder, n_reps, bad)
                _check_metadata(folder / "metadata.json", f"{name}/{key}/metadata.json", name, files, quirks)
                for order, (rep, cls, path) in enumerate(files):
                    data = bad.attempt(path, read_myo_counts_csv, path)
                    if data is None:
                        continue
                    yield one_repetition_recording(
                        data, path=path, root=root, fs=INFO.fs, units="myo", layout=layout, dataset=NAME,
                        subject=subject, session=session, session_order=session_order, order=order, label=cls,
                        repetition=reps.next(subject, cls), label_names=GESTURES, gesture_keys=KEYS,
                        recording_id=f"{subject}/{session}/{path.stem}",
                        attrs={"donning": donning, "limb_position": limb, "file_repetition": rep})
            quirks.flush()
        finally:
            bad.warn_strays(log, NAME)


def _check_metadata(path: Path, where: str, subject: str, files: list[tuple[int, int, Path]],
                    quirks: WarningCounter) -> None:
    """Note (never raise) where a folder's ``metadata.json`` disagrees with its folder or the fixed classes.

    The metadata is not used: the folder gives the subject, the file name and :data:`GESTURES` the class.
    """
    if not path.is_file():
        return
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        quirks.add("unreadable metadata.json (ignored)", where)
        return
    if not isinstance(meta, dict):
        quirks.add("unreadable metadata.json (ignored)", where)
        return
    entries = {k: v for k, v in meta.items() if isinstance(v, dict)}
    others = {m.group(1) for k in entries if (m := re.search(r"(?:^|/)(S\d+)/", k)) and m.group(1) != subject}
    if others:
        quirks.add("metadata.json names another subject (the folder's is used)",
                   f"{where} names {', '.join(sorted(others, key=natural_key))}")
    have = {(r, c) for r, c, _ in files}
    wrong = [v for v in entries.values()
             if not (isinstance(v.get("class_idx"), int) and isinstance(v.get("rep_idx"), int)
                     and 0 <= v["class_idx"] < len(GESTURES) and v.get("class_name") == GESTURES[v["class_idx"]]
                     and (v["rep_idx"], v["class_idx"]) in have)]
    if wrong:
        quirks.add("metadata.json lists classes or files the folder does not hold (file names and the fixed "
                   "class list are used)", f"{where}: {len(wrong)} of {len(entries)} entries")


READER = MyoDisCoReader()
