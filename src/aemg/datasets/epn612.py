"""EMG-EPN-612 (Benalcázar et al., Zenodo 2020): Myo armband, 8 channels, 200 Hz, 612 users.

Layout: ``<root>/trainingJSON/userN/userN.json`` and ``<root>/testingJSON/userN/userN.json`` (306
users each). The two parts hold **different people** with the same folder names, so subject ids keep
the part: ``emg-epn-612/training/user1`` and ``emg-epn-612/testing/user1``.

Each JSON holds ``generalInfo``, ``userInfo``, ``synchronizationGesture`` and two sample groups,
``trainingSamples`` and ``testingSamples`` (``idx_1`` .. ``idx_150``, 25 per gesture). One sample
(~5 s, ~1000 samples) becomes one Recording; ``emg`` is ``{"ch1": [...], ..., "ch8": [...]}`` of
Myo int8 counts (units ``"myo"``). The synchronization gesture is not read.

Sessions: the sample group is the session (``trainingSamples`` = order 0, ``testingSamples`` = 1;
that the training group was recorded first is an assumption). Within a group, ``idx_k`` in numeric
order is taken as time order. ``repetition`` counts the labelled samples of each gesture in time
order across the user's groups (``trainingSamples`` 0-24, ``testingSamples`` 25-49 when both are
labelled); the count within the group alone is kept in ``attrs["file_repetition"]``.

Labels: gesture samples carry ``groundTruthIndex = [start, end]`` (1-based, inclusive, MATLAB
origin): those samples get the gesture's label; the rest of the sample is **unlabelled (-1)**,
because the dataset marks only the movement, and the samples just outside it hold the reaction
time, onset and release, which are neither the gesture nor clean rest. ``noGesture`` samples are
rest through their whole span. ``testingJSON/*/testingSamples`` carry no ``gestureName`` (held-out
labels): those Recordings are unlabelled throughout, which is not an error.

Per-recording ``attrs``: ``user``, ``part`` (training/testing), ``samples_group``, ``idx``
(``"idx_k"``), ``sample_index`` (k), ``gesture_name`` (or None), ``ground_truth_index``,
``fs_original``, ``file_repetition`` (labelled samples only), and the user's
``handedness``/``age``/``gender`` when present.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aemg.datasets._common import (
    BadFiles,
    WarningCounter,
    check_finite,
    list_files,
    relpath,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.naming import natural_key
from aemg.recording import UNLABELLED, Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)

NAME = "emg-epn-612"
FS = 200.0
N_CHANNELS = 8
GESTURES = ("noGesture", "fist", "waveIn", "waveOut", "open", "pinch")  # = generalInfo.myoPredictionLabel 0..5
MAPPING = {"noGesture": "rest", "fist": "hand_close", "waveIn": "wrist_flexion", "waveOut": "wrist_extension",
           "open": "hand_open", "pinch": "pinch"}
PARTS = (("training", "trainingJSON"), ("testing", "testingJSON"))
GROUPS = ("trainingSamples", "testingSamples")
USERS_PER_PART = 306
_IDX_RE = re.compile(r"^idx_(\d+)$")

INFO = DatasetInfo(
    name=NAME, title="EMG-EPN-612", device="Thalmic Myo armband", fs=FS, n_channels=N_CHANNELS,
    n_subjects=2 * USERS_PER_PART, gestures=GESTURES, layout="myo8",
    citation="Benalcázar M.E. et al., EMG-EPN-612 Dataset, Zenodo (2020), doi:10.5281/zenodo.4421500",
    url="https://doi.org/10.5281/zenodo.4421500", license="unknown (see the Zenodo record)", mains_hz=60.0,
    notes="one Recording per 5 s sample; labels inside groundTruthIndex, -1 outside; testingJSON testingSamples "
          "are unlabelled; Myo int8 counts.",
    extra={"parts": ["training", "testing"], "sessions": list(GROUPS)},
)


class Epn612Reader:
    info = INFO

    def _users(self, root: Path, bad: BadFiles) -> dict[str, list[tuple[str, Path]]]:
        root = Path(root)
        out: dict[str, list[tuple[str, Path]]] = {}
        for part, folder in PARTS:
            base = root / folder
            if not base.is_dir():
                continue
            users = sorted((d for d in base.iterdir() if d.is_dir() and d.name.startswith("user")),
                           key=lambda d: natural_key(d.name))
            for d in users:  # anything beside userN.json is stray
                list_files(d, re.compile(re.escape(d.name) + r"\.json"), bad)
            out[part] = [(d.name, d / f"{d.name}.json") for d in users]
        if not out:
            raise DataFormatError(root, "EMG-EPN-612 folders trainingJSON/userN/userN.json and/or "
                                        "testingJSON/userN/userN.json", "found neither folder")
        return out

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for users in self._users(Path(root), bad).values() for _, p in users if p.is_file()]

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        parts = self._users(root, bad)
        warn_absent(log, NAME, root, "parts", [folder for _, folder in PARTS],
                    [folder for part, folder in PARTS if part in parts])
        warnings = WarningCounter(log, NAME)
        try:
            for part, folder in PARTS:
                if part not in parts:
                    continue
                present = {u for u, p in parts[part] if p.is_file()}
                warn_absent(log, NAME, root / folder, f"{folder} users",
                            [f"user{i}" for i in range(1, USERS_PER_PART + 1)], present)
                for user, path in parts[part]:
                    if not path.is_file():
                        warnings.add("user folder without its userN.json (skipped)", relpath(path.parent, root))
                        continue
                    # the whole file is read before its first recording is yielded, so a damaged file is
                    # skipped whole (skip_bad) rather than cut short
                    recs = bad.attempt(path, lambda *a: list(self._read_user(*a)), root, path, part, user, warnings)
                    yield from recs or ()
        finally:
            warnings.flush()
            bad.warn_strays(log, NAME)

    def _read_user(self, root: Path, path: Path, part: str, user: str,
                   warnings: WarningCounter) -> Iterator[Recording]:
        src = relpath(path, root)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFormatError(path, "a complete EMG-EPN-612 user JSON file", f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(doc, dict):
            raise DataFormatError(path, "a JSON object with generalInfo, userInfo, trainingSamples, testingSamples",
                                  f"found {type(doc).__name__}")
        general = doc.get("generalInfo") or {}
        fs = general.get("samplingFrequencyInHertz", FS) if isinstance(general, dict) else FS
        if not isinstance(fs, int | float) or float(fs) != FS:
            raise DataFormatError(path, f"generalInfo.samplingFrequencyInHertz = {FS:g}", f"found {fs}")
        groups = [g for g in GROUPS if g in doc]
        if not groups:
            raise DataFormatError(path, f"sample groups {' and/or '.join(GROUPS)}",
                                  f"found keys {', '.join(map(str, doc))}")
        user_info = doc.get("userInfo") if isinstance(doc.get("userInfo"), dict) else {}
        sid = subject_id(NAME, part, user)
        layout = get_layout("myo8", N_CHANNELS)
        keys = gesture_keys(NAME, GESTURES, MAPPING)
        reps: dict[int, int] = {}  # labelled samples so far per gesture, across the user's groups (sessions)
        for g_order, group in enumerate(GROUPS):
            if group not in doc:
                warnings.add(f"sample group {group!r} missing", src)
                continue
            samples = doc[group]
            if not isinstance(samples, dict):
                raise DataFormatError(path, f"{group} as an object of idx_k samples", f"found {type(samples).__name__}")
            indexed = []
            for k, sample in samples.items():
                m = _IDX_RE.match(str(k))
                if not m:
                    raise DataFormatError(path, f"{group} keys named idx_1, idx_2, ...", f"found key {k!r}")
                indexed.append((int(m.group(1)), k, sample))
            indexed.sort()
            group_reps: dict[int, int] = {}  # the same within this group (attrs["file_repetition"])
            for order, (k_num, k, sample) in enumerate(indexed):
                where = f"{group}.{k}"
                signal = _emg(sample, path, where)
                n = signal.shape[1]
                name = sample.get("gestureName")
                labels = np.full(n, UNLABELLED, np.int32)
                repetition = np.full(n, UNLABELLED, np.int32)
                gt_index = None
                group_rep = None
                if name is None:
                    if part == "training":
                        warnings.add("labelled part sample without gestureName (read as unlabelled)", f"{src} {where}")
                else:
                    if name not in GESTURES:
                        raise DataFormatError(path, f"{where}.gestureName in {', '.join(GESTURES)}", f"found {name!r}")
                    lab = GESTURES.index(name)
                    rep = reps.get(lab, 0)
                    reps[lab] = rep + 1
                    group_rep = group_reps.get(lab, 0)
                    group_reps[lab] = group_rep + 1
                    if name == "noGesture":
                        a, b = 0, n
                    else:
                        gt_index = sample.get("groundTruthIndex")
                        a, b = _span(gt_index, n, path, where, warnings, src)
                    labels[a:b] = lab
                    repetition[a:b] = rep
                attrs: dict[str, Any] = {
                    "fs_original": FS, "user": user, "part": part, "samples_group": group, "idx": k,
                    "sample_index": k_num, "gesture_name": name,
                    "ground_truth_index": [int(x) for x in gt_index] if gt_index is not None else None,
                }
                if group_rep is not None:
                    attrs["file_repetition"] = group_rep
                for key in ("handedness", "age", "gender"):
                    if key in user_info:
                        attrs[key] = user_info[key]
                yield Recording(
                    signal=signal, fs=FS, units="myo", electrodes=layout.electrodes, dataset=NAME, subject=sid,
                    session=group, session_order=g_order, labels=labels, label_names=GESTURES, gesture_keys=keys,
                    repetition=repetition, attrs=attrs, layout_rotation_unknown=True, source_file=src,
                    recording_id=f"{sid}/{group}/{k}", order=order,
                )


def _emg(sample: Any, path: Path, where: str) -> np.ndarray:
    emg = sample.get("emg") if isinstance(sample, dict) else None
    chans = [f"ch{i}" for i in range(1, N_CHANNELS + 1)]
    if not isinstance(emg, dict):
        raise DataFormatError(path, f"{where}.emg as an object with channels ch1..ch{N_CHANNELS}",
                              f"found {type(emg).__name__}")
    missing = [c for c in chans if c not in emg]
    extra = [c for c in emg if c not in chans]
    if missing or extra:
        raise DataFormatError(path, f"{where}.emg with {N_CHANNELS} channels ch1..ch{N_CHANNELS}",
                              f"missing {missing}, unexpected {extra}")
    lengths = {len(emg[c]) if isinstance(emg[c], list) else -1 for c in chans}
    if len(lengths) != 1 or -1 in lengths:
        raise DataFormatError(path, f"{where}.emg channels as lists of equal length", f"found lengths {sorted(lengths)}")
    try:
        arr = np.array([emg[c] for c in chans], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(path, f"{where}.emg numeric values", f"{type(exc).__name__}: {exc}") from exc
    if arr.shape[1] == 0:
        raise DataFormatError(path, f"{where}.emg with samples", "found empty channels")
    check_finite(arr, path, f"{where}.emg")
    return arr.astype(np.float32)


def _span(gt: Any, n: int, path: Path, where: str, warnings: WarningCounter, src: str) -> tuple[int, int]:
    """``groundTruthIndex`` [start, end] (1-based, inclusive) as a 0-based half-open sample range."""
    if not (isinstance(gt, list) and len(gt) == 2 and all(isinstance(x, int | float) for x in gt)):
        raise DataFormatError(path, f"{where}.groundTruthIndex as [start, end]", f"found {gt!r}")
    start, end = int(gt[0]), int(gt[1])
    if start < 1 or end < start or start > n:
        raise DataFormatError(path, f"{where}.groundTruthIndex 1 <= start <= end, start <= {n} samples",
                              f"found {gt!r}")
    if end > n:
        warnings.add("groundTruthIndex end past the last EMG sample (clipped)", f"{src} {where} ({end} > {n})")
        end = n
    return start - 1, end


READER = Epn612Reader()
