"""Côté-Allard et al. 2019 Myo armband dataset (``cote-allard``).

Layout on disk (the repository ``UlysseCoteAllard/MyoArmbandDataset``)::

    <root>/PreTrainingDataset/<Female|Male><k>/training0/classe_0.dat .. classe_27.dat
    <root>/EvaluationDataset/<Female|Male><k>/{training0,Test0,Test1}/classe_0.dat .. classe_27.dat

Each ``.dat`` is little-endian int16, 8 channels interleaved (channel fastest), values in
[-128, 127] (sign-extended Myo int8 counts), 200 Hz. ``classe_N`` is one repetition of gesture
``N % 7``; the session cycles through the 7 gestures 4 times, so ``N`` is also the file's
chronological rank (``order``) and ``N // 7`` its repetition within the session (kept in
``attrs["file_repetition"]``). ``Recording.repetition`` numbers a gesture's repetitions across the
subject's sessions in time order: ``training0`` 0-3, ``Test0`` 4-7, ``Test1`` 8-11 (a missing
session shifts the later ones down, so the ids of a subject always cover 0..n-1).

Subjects are ``cote-allard/pretraining/<name>`` and ``cote-allard/evaluation/<name>``: the names
Female1 and Male0 occur in both parts and are different people. PreTraining Female7/8/9 duplicate
Evaluation Female0's three sessions byte for byte; the reader yields them as found, and the corpus
builder removes duplicates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from aemg.datasets._common import (
    MYO_RANGE,
    BadFiles,
    RepetitionCounter,
    check_range,
    find_root,
    list_files,
    one_repetition_recording,
    read_int16_interleaved,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.naming import natural_key
from aemg.recording import Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)  # aemg.datasets.cote_allard

NAME = "cote-allard"
GESTURES = ("neutral", "radial deviation", "wrist flexion", "ulnar deviation", "wrist extension",
            "hand close", "hand open")
MAPPING = {"neutral": "rest", "radial deviation": "radial_deviation", "wrist flexion": "wrist_flexion",
           "ulnar deviation": "ulnar_deviation", "wrist extension": "wrist_extension",
           "hand close": "hand_close", "hand open": "hand_open"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)
N_REPS = 4
N_FILES = N_REPS * len(GESTURES)
FILE_RE = re.compile(r"classe_(\d+)\.dat")

# part folder -> (subject part id, sessions in recording order, subjects of the full public dataset)
PARTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "PreTrainingDataset": ("pretraining", ("training0",),
                           tuple(f"Female{i}" for i in range(10)) + tuple(f"Male{i}" for i in range(12))),
    "EvaluationDataset": ("evaluation", ("training0", "Test0", "Test1"),
                          tuple(f"Female{i}" for i in range(2)) + tuple(f"Male{i}" for i in range(16))),
}
EXPECTED = ("<root>/PreTrainingDataset/<subject>/training0/classe_0..27.dat and/or "
            "<root>/EvaluationDataset/<subject>/{training0,Test0,Test1}/classe_0..27.dat")

INFO = DatasetInfo(
    name=NAME,
    title="Myo Armband Dataset (Côté-Allard et al.), pre-training and evaluation parts",
    device="Thalmic Myo armband",
    fs=200.0,
    n_channels=8,
    n_subjects=40,
    gestures=GESTURES,
    layout="myo8",
    citation=("Côté-Allard U., Fall C.L., Drouin A., Campeau-Lecours A., Gosselin C., Glette K., Laviolette F., "
              "Gosselin B. Deep learning for electromyographic hand gesture signal classification using transfer "
              "learning. IEEE Trans. Neural Syst. Rehabil. Eng. 27(4):760-771, 2019."),
    url="https://github.com/UlysseCoteAllard/MyoArmbandDataset",
    license="GPL-3.0",
    mains_hz=60.0,
    notes=("22 pre-training + 18 evaluation subject folders (the paper used 19 + 17). Female1 and Male0 exist in "
           "both parts as different people. PreTraining Female7/8/9 are byte-identical to Evaluation Female0's "
           "training0/Test0/Test1. Units: Myo int8 counts. Sessions: training0, then Test0, Test1."),
)


class CoteAllardReader:
    """Reader of the Côté-Allard Myo dataset (see the module docstring for the layout)."""

    info = INFO

    def _sessions(self, root: Path, report_absent: bool = True) -> list[tuple[str, str, int, Path]]:
        """``(part id, subject name, session_order, session folder)`` of every session present."""
        base = find_root(root, tuple(PARTS), EXPECTED)
        if report_absent:  # read() reports; files() lists the same folders silently
            warn_absent(log, NAME, base, "parts", list(PARTS), [f for f in PARTS if (base / f).is_dir()])
        found = []
        for folder, (part, sessions, full) in PARTS.items():
            part_dir = base / folder
            if not part_dir.is_dir():
                continue
            subjects = sorted((p for p in part_dir.iterdir() if p.is_dir() and re.fullmatch(r"(Fe)?[Mm]ale\d+", p.name)),
                              key=lambda p: natural_key(p.name))
            if report_absent:  # read() reports; files() lists the same folders silently
                warn_absent(log, NAME, part_dir, f"{folder} subjects", full, [p.name for p in subjects])
            for subj in subjects:
                present = [s for s in sessions if (subj / s).is_dir()]
                if not present:
                    raise DataFormatError(subj, f"session folder(s) {', '.join(sessions)}", "found none")
                missing = [s for s in sessions if s not in present]
                if missing:
                    log.warning("%s: %s/%s lacks session(s) %s", NAME, folder, subj.name, ", ".join(missing))
                for s in present:
                    found.append((part, subj.name, sessions.index(s), subj / s))
        if not found:
            raise DataFormatError(base, EXPECTED, "no subject sessions")
        return found

    @staticmethod
    def _session_files(sess: Path, bad: BadFiles) -> list[tuple[int, Path]]:
        """``(N, path)`` of a session's ``classe_N.dat`` files, in recording order, checked complete."""
        have = {}
        for path, m in list_files(sess, FILE_RE, bad):
            if int(m.group(1)) >= N_FILES:
                bad.reject(DataFormatError(path, f"files classe_0..{N_FILES - 1}.dat (gesture N % 7, repetition N // 7)",
                                           "a file outside that scheme"))
                continue
            have[int(m.group(1))] = path
        for n in range(N_FILES):
            if n not in have:
                bad.reject(DataFormatError(sess / f"classe_{n}.dat", f"{N_FILES} files classe_0..{N_FILES - 1}.dat "
                                           "per session", "file missing"))
        return sorted(have.items())

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for *_, sess in self._sessions(Path(root), report_absent=False)
                for _, p in self._session_files(sess, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        layout = get_layout("myo8")
        reps = RepetitionCounter()  # sessions come in (part, subject, session_order) order
        try:
            for part, name, session_order, sess in self._sessions(root):
                subject = subject_id(NAME, part, name)
                for n, path in self._session_files(sess, bad):
                    data = bad.attempt(path, _load, path)
                    if data is None:
                        continue
                    yield one_repetition_recording(
                        data, path=path, root=root, fs=INFO.fs, units="myo", layout=layout, dataset=NAME,
                        subject=subject, session=sess.name, session_order=session_order, order=n,
                        label=n % len(GESTURES), repetition=reps.next(subject, n % len(GESTURES)),
                        label_names=GESTURES, gesture_keys=KEYS, recording_id=f"{subject}/{sess.name}/classe_{n}",
                        attrs={"file_repetition": n // len(GESTURES)})
        finally:
            bad.warn_strays(log, NAME)


def _load(path: Path) -> np.ndarray:
    """One ``.dat`` file's Myo counts, checked (the reading of one file, for :meth:`BadFiles.attempt`)."""
    data = read_int16_interleaved(path, INFO.n_channels)
    check_range(path, data, *MYO_RANGE, what="Myo counts")
    return data


READER = CoteAllardReader()
