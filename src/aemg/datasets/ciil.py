"""LibEMG's CIIL datasets: MinimalTrainingData and ElectrodeShift (``ciil``).

Layout on disk (the repository ``LibEMG/CIILData``)::

    <root>/MinimalTrainingData/subject<k>/train/R_0_C_<c>.csv
    <root>/MinimalTrainingData/subject<k>/test/trial_<t>/R_<r>_C_<c>.csv
    <root>/ElectrodeShift/subject<k>/training/R_<r>_C_<c>.csv
    <root>/ElectrodeShift/subject<k>/trial_<t>/R_<r>_C_<c>.csv

CSV without header, 8 integer columns (Myo int8 counts, 200 Hz). One file = one repetition ``r`` of
class ``c``. Every folder holding CSVs is a session: ``train``/``training`` first, then the trials
in numeric order (ElectrodeShift's trials follow shifts of the armband). Within a session files are
in repetition order, then class order (the acquisition's ``metadata.json`` says
``"randomize": false``). Subjects are ``ciil/minimal/subject<k>`` and ``ciil/electrodeshift/subject<k>``.

Repetitions: ``R`` restarts at 0 in every session folder; it is kept in ``attrs["file_repetition"]``.
``Recording.repetition`` numbers a class's repetitions across the subject's session folders in
``session_order`` (Minimal: ``train`` 0, then the test trials 1..15; ElectrodeShift: ``training``
0-4, then the trials 5..12, or 5..14 with subject13's ``trial_0``).

Class names follow the dataset's own ``metadata.json`` (3 Wrist_Extension, 4 Wrist_Flexion), not
LibEMG's loader (3 Flexion, 4 Extension); the signals agree with the metadata (docs/datasets.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from aemg.datasets._common import (
    BadFiles,
    RepetitionCounter,
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

log = logging.getLogger(__name__)  # aemg.datasets.ciil

NAME = "ciil"
GESTURES = ("Hand_Close", "Hand_Open", "No_Motion", "Wrist_Extension", "Wrist_Flexion")
MAPPING = {"Hand_Close": "hand_close", "Hand_Open": "hand_open", "No_Motion": "rest",
           "Wrist_Extension": "wrist_extension", "Wrist_Flexion": "wrist_flexion"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)
FILE_RE = re.compile(r"R_(\d+)_C_(\d+)\.csv")

# part folder -> (subject part id, training folder, test folder pattern, subjects in the full dataset)
PARTS: dict[str, tuple[str, str, str, int]] = {
    "MinimalTrainingData": ("minimal", "train", "test/trial_*", 11),
    "ElectrodeShift": ("electrodeshift", "training", "trial_*", 21),
}
EXPECTED = ("<root>/MinimalTrainingData/subject<k>/{train,test/trial_<t>}/R_<r>_C_<c>.csv and/or "
            "<root>/ElectrodeShift/subject<k>/{training,trial_<t>}/R_<r>_C_<c>.csv")

INFO = DatasetInfo(
    name=NAME,
    title="CIIL datasets of LibEMG: MinimalTrainingData and ElectrodeShift",
    device="Thalmic Myo armband",
    fs=200.0,
    n_channels=8,
    n_subjects=32,
    gestures=GESTURES,
    layout="myo8",
    citation=("Eddy E., Campbell E., Phinyomark A., Bateman S., Scheme E. LibEMG: An Open Source Library to "
              "Facilitate the Exploration of Myoelectric Control. IEEE Access 11:87380-87397, 2023 "
              "(datasets distributed with LibEMG, github.com/LibEMG/CIILData)."),
    url="https://github.com/LibEMG/CIILData",
    license="none stated in the repository",
    mains_hz=60.0,
    notes=("MinimalTrainingData: 11 subjects, 1 training repetition (1 s) + 15 test repetitions per class. "
           "ElectrodeShift: 21 subjects, 5 repetitions before and 8 after shifts of the armband. Class names "
           "from the dataset's metadata.json (3 Wrist_Extension, 4 Wrist_Flexion); LibEMG's loader swaps 3 and 4. "
           "Units: Myo int8 counts."),
)


class CiilReader:
    """Reader of the CIIL MinimalTrainingData and ElectrodeShift datasets (layout in the module docstring)."""

    info = INFO

    def _sessions(self, root: Path, report_absent: bool = True) -> tuple[Path, list[tuple[str, str, int, str, Path]]]:
        """The dataset root and ``(part id, subject, session_order, session, folder)`` of each session."""
        base = find_root(root, tuple(PARTS), EXPECTED)
        if report_absent:  # read() reports; files() lists the same folders silently
            warn_absent(log, NAME, base, "parts", list(PARTS), [f for f in PARTS if (base / f).is_dir()])
        found = []
        for folder, (part, train, test_glob, n_full) in PARTS.items():
            part_dir = base / folder
            if not part_dir.is_dir():
                continue
            subjects = sorted((p for p in part_dir.iterdir() if p.is_dir() and re.fullmatch(r"subject\d+", p.name)),
                              key=lambda p: natural_key(p.name))
            if report_absent:  # read() reports; files() lists the same folders silently
                warn_absent(log, NAME, part_dir, f"{folder} subjects", [f"subject{i}" for i in range(n_full)],
                            [p.name for p in subjects])
            for subj in subjects:
                trials = sorted((p for p in subj.glob(test_glob) if p.is_dir() and re.fullmatch(r"trial_\d+", p.name)),
                                key=lambda p: natural_key(p.name))
                sessions = ([subj / train] if (subj / train).is_dir() else []) + trials
                if not sessions:
                    raise DataFormatError(subj, f"session folders {train}/ and {test_glob}/", "found none")
                if not (subj / train).is_dir():
                    log.warning("%s: %s/%s has no %s/ folder", NAME, folder, subj.name, train)
                for order, sess in enumerate(sessions):
                    found.append((part, subj.name, order, sess.name, sess))
        if not found:
            raise DataFormatError(base, EXPECTED, "no subject sessions")
        return base, found

    @staticmethod
    def _session_files(sess: Path, bad: BadFiles) -> list[tuple[int, int, Path]]:
        """``(repetition, class, path)`` of a session folder's CSVs, in recording order, checked complete."""
        named = list_files(sess, FILE_RE, bad, allowed=("metadata.json",))
        if not named:
            raise DataFormatError(sess, "R_<rep>_C_<class>.csv files", "found none")
        items = []
        for path, m in named:
            rep, cls = int(m.group(1)), int(m.group(2))
            if cls >= len(GESTURES):
                bad.reject(DataFormatError(path, f"class index 0..{len(GESTURES) - 1} ({', '.join(GESTURES)})",
                                           f"class {cls}"))
                continue
            items.append((rep, cls, path))
        if not items:
            return []
        reps = sorted({r for r, _, _ in items})
        have = {(r, c) for r, c, _ in items}
        for r in range(max(reps) + 1):
            for c in range(len(GESTURES)):
                if (r, c) not in have:
                    bad.reject(DataFormatError(sess / f"R_{r}_C_{c}.csv",
                                               f"every class 0..{len(GESTURES) - 1} for repetitions 0..{max(reps)}",
                                               "file missing"))
        return sorted(items)

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        _, sessions = self._sessions(Path(root), report_absent=False)
        return [p for *_, sess in sessions for _, _, p in self._session_files(sess, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        bad = bad if bad is not None else BadFiles(root)
        layout = get_layout("myo8")
        base, sessions = self._sessions(Path(root))
        reps = RepetitionCounter()  # sessions come in (part, subject, session_order) order
        try:
            for part, name, session_order, session, sess in sessions:
                subject = subject_id(NAME, part, name)
                is_train = session_order == 0 and session in ("train", "training")
                for order, (rep, cls, path) in enumerate(self._session_files(sess, bad)):
                    data = bad.attempt(path, read_myo_counts_csv, path)
                    if data is None:
                        continue
                    yield one_repetition_recording(
                        data, path=path, root=Path(root), fs=INFO.fs, units="myo", layout=layout, dataset=NAME,
                        subject=subject, session=session, session_order=session_order, order=order, label=cls,
                        repetition=reps.next(subject, cls), label_names=GESTURES, gesture_keys=KEYS,
                        recording_id=f"{subject}/{session}/{path.stem}",
                        attrs={"part": part, "set": "train" if is_train else "test", "file_repetition": rep})
        finally:
            bad.warn_strays(log, NAME)


READER = CiilReader()
