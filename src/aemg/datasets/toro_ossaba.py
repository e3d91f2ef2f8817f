"""Toro-Ossaba et al. 2022: custom 4-channel EMG armband, 1024 Hz, 8 subjects, 5 gestures.

Layout (Zenodo record 7668251, as read by Colot's loader): ``<root>/subject {s}/{c}.txt`` (a space in
the folder name), s = 1..8, c = 0..4 the class index. Each file is one continuous ~20 s recording of
one gesture: tab-separated numbers, one row per sample, EMG in columns 0..3 (further columns, if
any, are ignored; a non-numeric first line is taken as a header and skipped).

The gestures' names are not published with the files: labels keep ``class0`` .. ``class4`` and
their keys stay ``toro-ossaba:classN``. The order in which a subject recorded the five files is
unknown; ``order`` follows the class index (an assumption). Each file is one repetition (0) of its
class, and a subject has one session (``session1``), so repetition ids are trivially chronological
within subject and gesture. Values are stored without a stated unit: ``units = "adc"``.
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
    as_signal,
    list_files,
    relpath,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.naming import natural_key
from aemg.recording import Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)

NAME = "toro-ossaba"
FS = 1024.0
N_CHANNELS = 4
N_CLASSES = 5
N_SUBJECTS = 8
GESTURES = tuple(f"class{c}" for c in range(N_CLASSES))
_SUBJECT_RE = re.compile(r"^subject (\d+)$")
FILE_RE = re.compile(rf"([0-{N_CLASSES - 1}])\.txt")

INFO = DatasetInfo(
    name=NAME, title="Toro-Ossaba hand gesture EMG (LSTM paper)", device="custom 4-channel EMG armband",
    fs=FS, n_channels=N_CHANNELS, n_subjects=N_SUBJECTS, gestures=GESTURES, layout="toro4",
    citation="Toro-Ossaba A. et al., LSTM Recurrent Neural Network for Hand Gesture Recognition Using EMG "
             "Signals, Applied Sciences 12(19):9700 (2022), doi:10.3390/app12199700",
    url="https://zenodo.org/records/7668251", license="unknown (see the Zenodo record)", mains_hz=60.0,
    notes="one 20 s file per class; class names unpublished (class0..class4); units unknown; file time order assumed.",
)


def read_table(path: Path, min_columns: int) -> np.ndarray:
    """A tab-separated numeric text file as a ``(rows, columns)`` float64 array (one header line allowed)."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, "a readable tab-separated text file", f"{type(exc).__name__}: {exc}") from exc
    numbered = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]  # file lines, 1-based
    if numbered:
        try:
            [float(x) for x in numbered[0][1].strip().split("\t")]
        except ValueError:
            numbered = numbered[1:]  # header
    if not numbered:
        raise DataFormatError(path, f"rows of >= {min_columns} tab-separated numbers", "found no data rows")
    line_no = [n for n, _ in numbered]
    rows = [ln.strip().split("\t") for _, ln in numbered]
    width = min(len(r) for r in rows)
    if width < min_columns:
        i = next(i for i, r in enumerate(rows) if len(r) < min_columns)
        raise DataFormatError(path, f">= {min_columns} tab-separated columns in every row",
                              f"found {len(rows[i])} in row {line_no[i]} (a truncated file?)")
    try:
        data = np.array([r[:min_columns] for r in rows], dtype=np.float64)
    except ValueError as exc:
        for i, r in enumerate(rows):
            for c, tok in enumerate(r[:min_columns], start=1):
                try:
                    float(tok)
                except ValueError:
                    cell = "an empty cell" if not tok.strip() else repr(tok.strip()[:40])
                    raise DataFormatError(path, "numbers in the EMG columns",
                                          f"found a malformed line: {cell} in row {line_no[i]}, "
                                          f"column {c}") from exc
        raise DataFormatError(path, "numbers in the EMG columns", str(exc)) from exc
    bad = ~np.isfinite(data)
    if bad.any():
        i, c = (int(k) for k in np.argwhere(bad)[0])
        raise DataFormatError(path, "finite numbers in the EMG columns", f"found {int(bad.sum())} NaN/inf values, the "
                                    f"first ({data[i, c]:g}) in row {line_no[i]}, column {c + 1}")
    return data


class ToroOssabaReader:
    info = INFO

    def _subjects(self, root: Path) -> list[tuple[int, Path]]:
        root = Path(root)
        if not root.is_dir():
            raise DataFormatError(root, "a folder holding 'subject {s}/{c}.txt'")
        subs = []
        for d in root.iterdir():
            m = _SUBJECT_RE.match(d.name)
            if d.is_dir() and m:
                subs.append((int(m.group(1)), d))
        if not subs:
            raise DataFormatError(root, "Toro-Ossaba folders named 'subject 1' .. 'subject 8'", "found none")
        return sorted(subs, key=lambda t: natural_key(t[1].name))

    @staticmethod
    def _class_files(folder: Path, bad: BadFiles) -> list[tuple[int, Path]]:
        """``(class, path)`` of a subject folder's class files ``0.txt`` .. ``4.txt`` present, in class order."""
        return [(int(m.group(1)), p) for p, m in list_files(folder, FILE_RE, bad)]

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for _, d in self._subjects(Path(root)) for _, p in self._class_files(d, bad)]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        subs = self._subjects(root)
        warn_absent(log, NAME, root, "subjects", [f"subject {s}" for s in range(1, N_SUBJECTS + 1)],
                    [f"subject {s}" for s, _ in subs])
        layout = get_layout(INFO.layout, N_CHANNELS)
        keys = gesture_keys(NAME, GESTURES, {})
        try:
            for s, folder in subs:
                present = self._class_files(folder, bad)
                warn_absent(log, NAME, folder, "class files", [f"{c}.txt" for c in range(N_CLASSES)],
                            [p.name for _, p in present])
                sid = subject_id(NAME, SINGLE_PART, f"subject{s}")
                order = 0
                for c, path in present:
                    signal = bad.attempt(path, _load, path)
                    if signal is None:
                        continue
                    n = signal.shape[1]
                    yield Recording(
                        signal=signal, fs=FS, units="adc", electrodes=layout.electrodes, dataset=NAME, subject=sid,
                        session="session1", session_order=0, labels=np.full(n, c, np.int32), label_names=GESTURES,
                        gesture_keys=keys, repetition=np.zeros(n, np.int32),
                        attrs={"fs_original": FS, "class_index": c, "subject_number": s},
                        layout_rotation_unknown=layout.rotation_unknown, source_file=relpath(path, root),
                        recording_id=f"{sid}/session1/{c}", order=order,
                    )
                    order += 1
        finally:
            bad.warn_strays(log, NAME)


def _load(path: Path) -> np.ndarray:
    """One class file's EMG as ``(channels, samples)`` float32 (the reading of one file, for
    :meth:`BadFiles.attempt`)."""
    return as_signal(read_table(path, N_CHANNELS), path, N_CHANNELS)


READER = ToroOssabaReader()
