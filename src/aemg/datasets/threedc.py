"""The 3DC dataset (``3dc``): 10-channel 3DC armband, 1000 Hz, 11 gestures.

Layout on disk (the repository ``ECEEvanCampbell/3DCDataset``)::

    <root>/Participant<p>/{train,test}/EMG/3dc_EMG_gesture_<rep>_<gesture>.txt
    <root>/Participant<p>/{train,test}/IMU/3dc_IMU_gesture_<rep>_<gesture>.txt   (not read)

EMG files are comma-separated integers (raw ADC counts), 10 columns, no header, no trailing
newline. One file = one repetition (0-3 in the file name) of one gesture (0-10). ``train`` holds
the first four cycles of 11 gestures and ``test`` the four cycles recorded after a 5-minute break,
so they are two sessions (``session_order`` 0 and 1). The file names restart at repetition 0 in
``test``; ``Recording.repetition`` does not: it numbers a gesture's repetitions across the
subject's sessions in time order (``train`` 0-3, ``test`` 4-7; a subject without ``train`` gets
0-3 in ``test``), and the file name's number is kept in ``attrs["file_repetition"]``. Within a
session files are in cycle order: repetition, then gesture. Subjects are ``3dc/all/Participant<p>``.
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

log = logging.getLogger(__name__)  # aemg.datasets.threedc

NAME = "3dc"
GESTURES = ("neutral", "radial deviation", "wrist flexion", "ulnar deviation", "wrist extension", "supination",
            "pronation", "power grip", "open hand", "chuck grip", "pinch grip")
MAPPING = {"neutral": "rest", "radial deviation": "radial_deviation", "wrist flexion": "wrist_flexion",
           "ulnar deviation": "ulnar_deviation", "wrist extension": "wrist_extension", "supination": "supination",
           "pronation": "pronation", "power grip": "hand_close", "open hand": "hand_open", "chuck grip": "tripod",
           "pinch grip": "pinch"}
KEYS = gesture_keys(NAME, GESTURES, MAPPING)
N_REPS = 4
SESSIONS = ("train", "test")  # in recording order
N_PARTICIPANTS = 22
FILE_RE = re.compile(r"3dc_EMG_gesture_(\d+)_(\d+)\.txt")
EXPECTED = "<root>/Participant<p>/{train,test}/EMG/3dc_EMG_gesture_<rep>_<gesture>.txt"

INFO = DatasetInfo(
    name=NAME,
    title="3DC dataset (Côté-Allard et al.): 3DC armband, 11 hand and wrist gestures",
    device="3DC armband (prototype, 10 bipolar channels)",
    fs=1000.0,
    n_channels=10,
    n_subjects=N_PARTICIPANTS,
    gestures=GESTURES,
    layout="3dc10",
    citation=("Côté-Allard U., Campbell E., Phinyomark A., Laviolette F., Gosselin B., Scheme E. Interpreting deep "
              "learning features for myoelectric control: a comparison with handcrafted features. Front. Bioeng. "
              "Biotechnol. 8:158, 2020 (recorded in Côté-Allard et al., IEEE TNSRE 27(4):760-771, 2019)."),
    url="https://github.com/ECEEvanCampbell/3DCDataset",
    license="see the repository's README.md (credit the authors)",
    mains_hz=60.0,
    notes=("Analog low-pass at 460 Hz. Units: raw ADC counts (scale unpublished). Participant19 and Participant21 "
           "are byte-identical; Participant13/test and Participant14/test share 13 EMG files. Participant1's "
           "channel 1 is drowned in 60 Hz mains. IMU quaternions (~50 Hz) are not read."),
)


class ThreeDCReader:
    """Reader of the 3DC dataset (layout in the module docstring)."""

    info = INFO

    def _sessions(self, root: Path, report_absent: bool = True) -> tuple[Path, list[tuple[str, int, str, Path]]]:
        """The dataset root and ``(participant, session_order, session, EMG folder)`` of each session."""
        base = find_root(root, ("Participant*",), EXPECTED)
        parts = sorted((p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"Participant\d+", p.name)),
                       key=lambda p: natural_key(p.name))
        if report_absent:  # read() reports; files() lists the same folders silently
            warn_absent(log, NAME, base, "participants", [f"Participant{i}" for i in range(1, N_PARTICIPANTS + 1)],
                        [p.name for p in parts])
        found = []
        for part in parts:
            present = [s for s in SESSIONS if (part / s / "EMG").is_dir()]
            if not present:
                raise DataFormatError(part, "session folders train/EMG/ and test/EMG/", "found none")
            if len(present) < len(SESSIONS):
                log.warning("%s: %s lacks session(s) %s", NAME, part.name,
                            ", ".join(s for s in SESSIONS if s not in present))
            for s in present:
                found.append((part.name, SESSIONS.index(s), s, part / s / "EMG"))
        return base, found

    @staticmethod
    def _session_files(emg: Path, bad: BadFiles) -> list[tuple[int, int, Path]]:
        """``(repetition, gesture, path)`` of a session's EMG files in recording order, checked complete."""
        items = {}
        for path, m in list_files(emg, FILE_RE, bad):
            rep, g = int(m.group(1)), int(m.group(2))
            if g >= len(GESTURES):
                bad.reject(DataFormatError(path, f"gesture index 0..{len(GESTURES) - 1}", f"gesture {g}"))
            elif rep >= N_REPS:
                bad.reject(DataFormatError(path, f"repetition index 0..{N_REPS - 1}", f"repetition {rep}"))
            else:
                items[(rep, g)] = path
        for rep in range(N_REPS):
            for g in range(len(GESTURES)):
                if (rep, g) not in items:
                    bad.reject(DataFormatError(emg / f"3dc_EMG_gesture_{rep}_{g}.txt",
                                               f"{N_REPS} repetitions x {len(GESTURES)} gestures per session",
                                               "file missing"))
        return [(rep, g, p) for (rep, g), p in sorted(items.items())]

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        _, sessions = self._sessions(Path(root), report_absent=False)
        return [p for *_, emg in sessions for _, _, p in self._session_files(emg, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        bad = bad if bad is not None else BadFiles(root)
        layout = get_layout("3dc10")
        base, sessions = self._sessions(Path(root))
        reps = RepetitionCounter()  # sessions come in (participant, session_order) order
        try:
            for participant, session_order, session, emg in sessions:
                subject = subject_id(NAME, SINGLE_PART, participant)
                for order, (rep, g, path) in enumerate(self._session_files(emg, bad)):
                    data = bad.attempt(path, _load, path)
                    if data is None:
                        continue
                    yield one_repetition_recording(
                        data, path=path, root=Path(root), fs=INFO.fs, units="adc", layout=layout, dataset=NAME,
                        subject=subject, session=session, session_order=session_order, order=order, label=g,
                        repetition=reps.next(subject, g), label_names=GESTURES, gesture_keys=KEYS,
                        recording_id=f"{subject}/{session}/{path.stem}",
                        attrs={"analog_lowpass_hz": 460.0, "file_repetition": rep})
        finally:
            bad.warn_strays(log, NAME)


def _load(path: Path) -> np.ndarray:
    """One EMG file's ADC counts (the reading of one file, for :meth:`BadFiles.attempt`)."""
    return read_numeric_text(path, n_columns=INFO.n_channels, delimiter=",", integer=True,
                             what="10 comma-separated integer columns (ADC counts), no header")


READER = ThreeDCReader()
