"""Shared reader of Ninapro databases (DB2, DB4, DB5): one ``S{n}_E{e}_A1.mat`` file per exercise.

What each file holds (Ninapro's variable scheme, DB3 README; DATASETS.md section 1-2):

* ``emg`` ``(T, C)``: 12 channels (DB2, DB4) or 16 (DB5, two Myo armbands).
* ``stimulus`` ``(T, 1)``: the movement the subject was asked to do (the cue shown on screen),
  0 = rest, k > 0 = movement id. The ids are **local to the exercise file** (restarting at 1 in
  every E-file) in the files Colot's DB4 loader reads, but run on across exercises in DB2 files as
  LibEMG and a third-party check read them; the reader classifies every file by its ids
  (``attrs["movement_ids"]``) and rejects ids that fit neither.
* ``restimulus`` ``(T, 1)``: the same, relabelled a-posteriori so that its boundaries follow the
  movement actually performed (Gijsberts et al. 2014). aemg's ``labels`` come from it: the cue
  leads and lags the real movement by a reaction time of a few hundred ms, so ``stimulus`` would
  label rest EMG as movement and movement EMG as rest at every boundary.
* ``repetition`` / ``rerepetition``: 0 outside a repetition, 1..6 inside; ``rerepetition`` matches
  ``restimulus``.

A subject's exercise files form one session (``session1``; ``order`` = exercise order). aemg's
``repetition`` is ``rerepetition - 1`` for movements (each movement occurs in one exercise file
only) and, for rest, the rank of the rest run in time order across the subject's files, so it is
chronological within subject and gesture. The dataset's own numbers stay in the ``repetition`` and
``rerepetition`` tracks.

All four label variables are kept as ``tracks``. Gesture names are made unique across exercises as
``E{e}-{k}_{name}`` (``E2-13_wrist_flexion``); the movement names are those of the Ninapro
exercise lists (Atzori et al. 2014, Sci. Data 1:140053; Pizzolato et al. 2017), and a movement id
with no known name keeps ``E{e}-{k}``. Label 0 of every recording is ``rest``.

File names are matched in both orders seen across Ninapro databases, ``S{n}_E{e}_A1.mat`` and
``S{n}_A1_E{e}.mat``, anywhere below the root (DB2 unpacks into ``DB2_s{n}/``). v7.3 (HDF5) files are
read with h5py.
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
    WarningCounter,
    as_column,
    as_signal,
    chronological_runs,
    list_files,
    relpath,
    subject_id,
    warn_absent,
)
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.recording import UNLABELLED, Recording
from aemg.vocabulary import gesture_keys

log = logging.getLogger(__name__)

# Ninapro exercise lists, by the letter used in the papers (A: basic finger movements; B: isometric,
# isotonic hand configurations and basic wrist movements; C: grasping and functional movements;
# D: force patterns, DB2 only). Names shortened to snake case.
EXERCISE_MOVEMENTS: dict[str, tuple[str, ...]] = {
    "A": ("index_flexion", "index_extension", "middle_flexion", "middle_extension", "ring_flexion",
          "ring_extension", "little_flexion", "little_extension", "thumb_adduction", "thumb_abduction",
          "thumb_flexion", "thumb_extension"),
    "B": ("thumb_up", "index_middle_extension", "ring_little_flexion", "thumb_opposition",
          "finger_abduction", "fist", "index_point", "finger_adduction", "wrist_supination_middle_axis",
          "wrist_pronation_middle_axis", "wrist_supination_little_axis", "wrist_pronation_little_axis",
          "wrist_flexion", "wrist_extension", "wrist_radial_deviation", "wrist_ulnar_deviation",
          "wrist_extension_closed_hand"),
    "C": ("large_diameter_grasp", "small_diameter_grasp", "fixed_hook_grasp", "index_extension_grasp",
          "medium_wrap", "ring_grasp", "prismatic_four_fingers_grasp", "stick_grasp", "writing_tripod_grasp",
          "power_sphere_grasp", "three_finger_sphere_grasp", "precision_sphere_grasp", "tripod_grasp",
          "prismatic_pinch_grasp", "tip_pinch_grasp", "quadpod_grasp", "lateral_grasp",
          "parallel_extension_grasp", "extension_type_grasp", "power_disk_grasp", "open_bottle_tripod",
          "turn_screw", "cut_with_knife"),
    "D": ("little_finger_flexion_force", "ring_finger_flexion_force", "middle_finger_flexion_force",
          "index_finger_flexion_force", "thumb_abduction_force", "thumb_flexion_force",
          "index_little_flexion_force", "ring_middle_flexion_force", "index_thumb_flexion_force"),
}

# Ninapro movement name -> shared vocabulary. One-to-one within a database: the wrist rotations
# about the little-finger axis and the other power grasps stay dataset keys, so that no two labels
# of one database share a vocabulary key.
VOCAB_MAP: dict[str, str] = {
    "rest": "rest",
    "fist": "hand_close",
    "finger_abduction": "finger_abduction",
    "finger_adduction": "finger_adduction",
    "index_point": "index_point",
    "wrist_supination_middle_axis": "supination",
    "wrist_pronation_middle_axis": "pronation",
    "wrist_flexion": "wrist_flexion",
    "wrist_extension": "wrist_extension",
    "wrist_radial_deviation": "radial_deviation",
    "wrist_ulnar_deviation": "ulnar_deviation",
    "tip_pinch_grasp": "pinch",
    "tripod_grasp": "tripod",
    "lateral_grasp": "key_pinch",
}

FILE_RE = re.compile(r"^S(\d+)_(?:E(\d+)_A1|A1_E(\d+))\.mat$", re.IGNORECASE)
REQUIRED = ("emg", "restimulus", "rerepetition")
OPTIONAL_TRACKS = ("stimulus", "repetition")


def load_mat(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The variables ``names`` of a MATLAB file (v5 through scipy, v7.3 through h5py) that exist."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=list(names))
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return _load_mat73(path, names)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, MatReadError ... on bad files
        raise DataFormatError(path, "a readable MATLAB .mat file", f"{type(exc).__name__}: {exc}") from exc
    return {k: mat[k] for k in names if k in mat}


def _load_mat73(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            # MATLAB stores column-major: h5py sees (C, T) for a (T, C) variable
            return {k: np.asarray(f[k][()]).T for k in names if k in f}
    except Exception as exc:
        raise DataFormatError(path, "a readable MATLAB v7.3 (HDF5) .mat file", f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class NinaproSpec:
    """What differs between Ninapro databases."""

    info: DatasetInfo
    exercises: dict[int, str]  # E-file number -> exercise letter (movement list)
    units: str
    db_folder: str = ""  # DB2: "DB2_s{n}" (only used to report mismatched folders)
    hardware_band: tuple[float, float] | None = None
    numbering: str = "file-local"  # movement ids when a file fits both conventions: "file-local" / "database-wide"


def gesture_names(exercises: dict[int, str]) -> tuple[str, ...]:
    """``rest`` then ``E{e}-{k}_{name}`` for every movement of every exercise, in exercise order."""
    names = ["rest"]
    for e, letter in sorted(exercises.items()):
        for k, mv in enumerate(EXERCISE_MOVEMENTS[letter], start=1):
            names.append(f"E{e}-{k}_{mv}")
    return tuple(names)


def _vocab_mapping(names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for n in names:
        base = n.split("_", 1)[1] if n.startswith("E") and "_" in n else n
        if base in VOCAB_MAP:
            out[n] = VOCAB_MAP[base]
    return out


def make_info(name: str, title: str, device: str, fs: float, n_channels: int, n_subjects: int,
              exercises: dict[int, str], layout: str, citation: str, url: str, notes: str) -> DatasetInfo:
    return DatasetInfo(name=name, title=title, device=device, fs=fs, n_channels=n_channels, n_subjects=n_subjects,
                       gestures=gesture_names(exercises), layout=layout, citation=citation, url=url,
                       license="Ninapro terms (commonly CC BY-ND 4.0; unconfirmed)", mains_hz=50.0, notes=notes,
                       extra={"exercises": {f"E{e}": letter for e, letter in exercises.items()}})


class NinaproReader:
    """Reads one Ninapro database into Recordings: one per subject and exercise file."""

    def __init__(self, spec: NinaproSpec):
        self.spec = spec
        self.info = spec.info
        self.label_names = spec.info.gestures
        self.gesture_keys = gesture_keys(spec.info.name, self.label_names, _vocab_mapping(self.label_names))
        offsets, off = {}, 1
        for e, letter in sorted(spec.exercises.items()):
            offsets[e] = off
            off += len(EXERCISE_MOVEMENTS[letter])
        self._offset = offsets

    # -- discovery ------------------------------------------------------------------------------
    def _find(self, root: Path, bad: BadFiles) -> dict[tuple[int, int], Path]:
        root = Path(root)
        if not root.is_dir():
            raise DataFormatError(root, f"a folder holding {self.info.name} files S{{n}}_E{{e}}_A1.mat")
        found: dict[tuple[int, int], Path] = {}
        folders = sorted({p.parent for p in root.rglob("*.mat") if FILE_RE.match(p.name)})
        for path, m in (item for folder in folders for item in list_files(folder, FILE_RE, bad)):
            subj, e = int(m.group(1)), int(m.group(2) or m.group(3))
            if e not in self.spec.exercises:
                log.warning("%s: ignoring %s: exercise E%d is not part of %s (expected E%s)", self.info.name,
                            relpath(path, root), e, self.info.name, "/E".join(str(x) for x in sorted(self.spec.exercises)))
                continue
            if (subj, e) in found:
                bad.reject(DataFormatError(path, f"one file for subject {subj} exercise E{e}",
                                           f"also found {relpath(found[(subj, e)], root)}"))
                continue
            found[(subj, e)] = path
        if not found:
            raise DataFormatError(root, f"{self.info.name} files named S{{n}}_E{{e}}_A1.mat or S{{n}}_A1_E{{e}}.mat "
                                        f"below this folder", "found none")
        return found

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        bad = bad if bad is not None else BadFiles(root)
        return [p for _, p in sorted(self._find(Path(root), bad).items())]

    # -- reading --------------------------------------------------------------------------------
    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        root = Path(root)
        bad = bad if bad is not None else BadFiles(root)
        found = self._find(root, bad)
        subjects = sorted({s for s, _ in found})
        warn_absent(log, self.info.name, root, "subjects", [f"S{s}" for s in range(1, self.info.n_subjects + 1)],
                    [f"S{s}" for s in subjects])
        warn_absent(log, self.info.name, root, "exercise files",
                    [f"S{s}_E{e}" for s in subjects for e in sorted(self.spec.exercises)],
                    [f"S{s}_E{e}" for s, e in found])
        warnings = WarningCounter(log, self.info.name)
        try:
            for s in subjects:
                rest_count = 0  # rest runs are numbered chronologically across the subject's files
                for order, e in enumerate(e for e in sorted(self.spec.exercises) if (s, e) in found):
                    read = bad.attempt(found[(s, e)], self._read_file, root, found[(s, e)], s, e, order, rest_count,
                                       warnings)
                    if read is None:
                        continue
                    rec, rest_count = read
                    yield rec
        finally:
            warnings.flush()
            bad.warn_strays(log, self.info.name)

    def _read_file(self, root: Path, path: Path, subj: int, e: int, order: int, rest_count: int,
                   warnings: WarningCounter) -> tuple[Recording, int]:
        spec = self.spec
        src = relpath(path, root)
        if spec.db_folder:
            parent = path.parent.name
            expected_folder = spec.db_folder.format(n=subj)
            if re.fullmatch(spec.db_folder.format(n=r"\d+"), parent, re.IGNORECASE) and \
                    parent.lower() != expected_folder.lower():
                warnings.add("file in another subject's folder", src)
        mat = load_mat(path, REQUIRED + OPTIONAL_TRACKS)
        missing = [k for k in REQUIRED if k not in mat]
        if missing:
            raise DataFormatError(path, f"Ninapro variables {', '.join(REQUIRED)}",
                                  f"missing {', '.join(missing)} (found {', '.join(sorted(mat)) or 'none'})")
        emg = np.asarray(mat["emg"])
        if emg.ndim != 2 or emg.shape[1] != spec.info.n_channels:
            raise DataFormatError(path, f"'emg' with {spec.info.n_channels} columns (samples x channels)",
                                  f"found shape {emg.shape}")
        cols = {k: as_column(mat[k], path, k) for k in (*REQUIRED[1:], *OPTIONAL_TRACKS) if k in mat}
        for k in OPTIONAL_TRACKS:
            if k not in cols:
                warnings.add(f"variable {k!r} missing (track not kept)", src)
        lengths = {"emg": emg.shape[0], **{k: len(v) for k, v in cols.items()}}
        n = min(lengths.values())
        if len(set(lengths.values())) > 1:
            # Known Ninapro quirk (LibEMG nina_pro.py): emg and restimulus can differ in length.
            warnings.add("variables of different lengths, truncated to the shortest",
                         f"{src} ({', '.join(f'{k}={v}' for k, v in lengths.items())})")
        signal = as_signal(emg[:n], path, spec.info.n_channels)
        cols = {k: v[:n] for k, v in cols.items()}

        n_moves = len(EXERCISE_MOVEMENTS[spec.exercises[e]])
        first = self._offset[e] - 1  # movements of earlier exercises
        numbering = self._numbering(path, cols, e, n_moves, first)
        shift = first if numbering == "file-local" else 0
        for k in ("rerepetition", "repetition"):
            if k in cols and (cols[k] < 0).any():
                raise DataFormatError(path, f"{k!r} >= 0", f"found {int(cols[k].min())}")

        restim, rerep = cols["restimulus"], cols["rerepetition"]
        labels = np.where(restim > 0, restim + shift, 0).astype(np.int32)
        repetition = np.full(n, UNLABELLED, np.int32)
        move = restim > 0
        repetition[move] = rerep[move] - 1  # Ninapro counts 1..N in time order; aemg counts from 0
        inconsistent = move & (rerep == 0)
        if inconsistent.any():
            warnings.add("restimulus > 0 where rerepetition = 0 (repetition set to -1)",
                         f"{src} ({int(inconsistent.sum())} samples)")
        starts, stops, vals = chronological_runs(restim)
        last_rep: dict[int, int] = {}
        for a, b, v in zip(starts, stops, vals):
            if v == 0:
                repetition[a:b] = rest_count
                rest_count += 1
            else:
                r = int(rerep[a])
                if r and r < last_rep.get(int(v), 0):
                    warnings.add("rerepetition not increasing in time", f"{src} movement {int(v)}")
                last_rep[int(v)] = r

        layout = get_layout(spec.info.layout, spec.info.n_channels)
        subj_name = f"s{subj}"
        sid = subject_id(spec.info.name, SINGLE_PART, subj_name)
        rec = Recording(
            signal=signal, fs=spec.info.fs, units=spec.units, electrodes=layout.electrodes,
            dataset=spec.info.name, subject=sid, session="session1", session_order=0,
            labels=labels, label_names=self.label_names, gesture_keys=self.gesture_keys,
            repetition=repetition, tracks={k: cols[k].astype(np.int16) for k in ("stimulus", "restimulus", "repetition",
                                                                                 "rerepetition") if k in cols},
            attrs={"fs_original": spec.info.fs, "exercise": e, "exercise_letter": spec.exercises[e],
                   "movement_ids": numbering,
                   "label_source": "restimulus", "subject_number": subj, "n_samples_file": lengths},
            layout_rotation_unknown=layout.rotation_unknown, source_file=src,
            recording_id=f"{sid}/session1/E{e}", order=order, hardware_band=spec.hardware_band,
        )
        return rec, rest_count

    def _numbering(self, path: Path, cols: dict[str, np.ndarray], e: int, n_moves: int, first: int) -> str:
        """Whether the file's movement ids restart at 1 (``file-local``) or run on across exercises
        (``database-wide``, ids ``first+1 .. first+n_moves``).

        Public loaders disagree: Colot's DB4 loader reads E2 ids 2..16 (file-local), while LibEMG's
        DB2 loader keeps 50 classes and a third-party check of DB2 downloads found 1..17, 18..40,
        41..49 (database-wide). Each file is classified by its own ids; a file that fits both (E1,
        or only ids inside the overlap) takes the database's default.
        """
        ids = np.unique(np.concatenate([cols[k] for k in ("restimulus", "stimulus") if k in cols]))
        if ids.size and ids.min() < 0:
            raise DataFormatError(path, "movement ids >= 0 in stimulus/restimulus", f"found {int(ids.min())}")
        moves = ids[ids > 0]
        if moves.size == 0:
            return self.spec.numbering
        fits_local = moves.max() <= n_moves
        fits_global = moves.min() > first and moves.max() <= first + n_moves
        if fits_local and fits_global:
            return self.spec.numbering
        if fits_local:
            return "file-local"
        if fits_global:
            return "database-wide"
        raise DataFormatError(path, f"stimulus/restimulus movement ids in 1..{n_moves} (exercise E{e} has {n_moves} "
                                    f"movements, file-local ids) or {first + 1}..{first + n_moves} (database-wide "
                                    f"ids)", f"found ids {moves.tolist()[:12]}{' ...' if moves.size > 12 else ''}")
