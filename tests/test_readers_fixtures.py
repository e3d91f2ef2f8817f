"""Readers of datasets without real files in data/: tiny fixture files written in the published layout.

Ninapro DB2/DB4/DB5 (.mat via scipy.io.savemat), EMG-EPN-612 (JSON), Toro-Ossaba (tab text),
MCS_EMG (.mat). Each reader is checked for subjects, trials per gesture, label mapping, fs, layout,
tracks/attrs, and for bad input raising DataFormatError that names the file.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aemg.datasets import get_reader
from aemg.datasets._common import SINGLE_PART, subject_id, warn_absent
from aemg.datasets.mcs_emg import McsEmgReader, McsTiming
from aemg.errors import DataFormatError
from aemg.recording import Recording


def _assert_chronological(recs: list[Recording]) -> None:
    """Per (subject, gesture), the repetition ids in time order ((session_order, order, start sample))
    increase strictly and cover 0..n-1: chronological across the subject's sessions, hence within each."""
    seq: dict[tuple[str, int], list[int]] = {}
    for r in sorted(recs, key=lambda r: (r.subject, r.session_order, r.order)):
        for _, _, lab, rep in r.trials():
            seq.setdefault((r.subject, lab), []).append(rep)
    assert seq
    for key, reps in seq.items():
        assert reps == list(range(len(reps))), (key, reps)

# ---------------------------------------------------------------------------------------------- Ninapro


def _ninapro_arrays(rng: np.random.Generator, n_ch: int, moves: list[int], n_reps: int = 2, seg: int = 20,
                    lag: int = 3) -> dict[str, np.ndarray]:
    """One exercise file: rest, then per movement ``n_reps`` repetitions (seg samples) separated by rest.

    ``restimulus`` is ``stimulus`` shifted by ``lag`` samples (the a-posteriori relabelling).
    """
    stim, rep = [np.zeros(seg, int)], [np.zeros(seg, int)]
    for m in moves:
        for r in range(1, n_reps + 1):
            stim += [np.full(seg, m), np.zeros(seg, int)]
            rep += [np.full(seg, r), np.zeros(seg, int)]
    stimulus = np.concatenate(stim)
    repetition = np.concatenate(rep)
    restimulus = np.roll(stimulus, lag)
    rerepetition = np.roll(repetition, lag)
    n = len(stimulus)
    return {"emg": rng.normal(0, 1e-5, (n, n_ch)), "stimulus": stimulus[:, None], "restimulus": restimulus[:, None],
            "repetition": repetition[:, None], "rerepetition": rerepetition[:, None],
            "subject": np.array([[1]]), "exercise": np.array([[1]])}


_FIRST = {"db2": {1: 0, 2: 17, 3: 40}, "db4": {1: 0, 2: 12, 3: 29}, "db5": {1: 0, 2: 12, 3: 29}}


def _write_ninapro(root: Path, db: str, subjects=(1, 2), exercises=(1, 2, 3), n_ch=12, swapped=False,
                   database_wide=False) -> None:
    rng = np.random.default_rng(0)
    for s in subjects:
        folder = root / f"DB2_s{s}" if db == "db2" else root / f"s{s}"
        folder.mkdir(parents=True, exist_ok=True)
        for e in exercises:
            name = f"S{s}_A1_E{e}.mat" if swapped else f"S{s}_E{e}_A1.mat"
            first = _FIRST[db][e] if database_wide else 0
            scipy.io.savemat(folder / name, _ninapro_arrays(rng, n_ch, moves=[first + 1, first + 2, first + 3]))


@pytest.mark.parametrize("db,n_ch,fs,layout,units,n_labels,wide", [
    ("db2", 12, 2000.0, "ninapro12", "V", 50, True),
    ("db2", 12, 2000.0, "ninapro12", "V", 50, False),
    ("db4", 12, 2000.0, "ninapro12", "V", 53, False),
    ("db5", 16, 200.0, "myo2x8", "myo", 53, False),
])
def test_ninapro_reads_published_layout(tmp_path, caplog, db, n_ch, fs, layout, units, n_labels, wide):
    _write_ninapro(tmp_path, db, n_ch=n_ch, swapped=(db == "db4"), database_wide=wide)
    reader = get_reader(f"ninapro-{db}")
    assert reader.info.fs == fs and reader.info.layout == layout and len(reader.info.gestures) == n_labels
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path))
    assert f"{reader.info.n_subjects - 2} subjects absent" in caplog.text  # only 2 of 10/40 present: warned, not fatal
    assert len(recs) == 6
    assert sorted({r.subject for r in recs}) == [f"ninapro-{db}/all/s1", f"ninapro-{db}/all/s2"]
    r0 = recs[0]
    assert r0.fs == fs and r0.units == units and r0.n_channels == n_ch and r0.signal.dtype == np.float32
    assert r0.electrodes[0].layout == layout and r0.attrs["fs_original"] == fs
    assert set(r0.tracks) == {"stimulus", "restimulus", "repetition", "rerepetition"}
    # labels follow restimulus: the first movement sample is where restimulus (not stimulus) turns 1
    assert np.array_equal(r0.labels > 0, r0.tracks["restimulus"] > 0)
    assert not np.array_equal(r0.labels > 0, r0.tracks["stimulus"] > 0)
    # order within the session follows the exercise number, and ids are unique
    s1 = [r for r in recs if r.subject.endswith("/s1")]
    assert [r.order for r in s1] == [0, 1, 2] and [r.attrs["exercise"] for r in s1] == [1, 2, 3]
    assert len({r.recording_id for r in recs}) == 6
    assert all(not Path(r.source_file).is_absolute() for r in recs)
    # movement ids restart in each E-file: E1 id 2 and E2 id 2 are different labels
    names = r0.label_names
    e1 = {names[i] for i in np.unique(s1[0].labels)}
    e2 = {names[i] for i in np.unique(s1[1].labels)}
    assert e1 & e2 == {"rest"} and all(n.startswith("E1-") for n in e1 - {"rest"})
    assert sorted(n.split("_")[0] for n in e2 - {"rest"}) == ["E2-1", "E2-2", "E2-3"]  # either numbering
    assert s1[1].attrs["movement_ids"] == ("database-wide" if wide else "file-local")
    assert r0.gesture_keys[0] == "rest"
    # 2 repetitions of every movement, numbered chronologically from 0
    trials = Counter((names[lab], rep) for rec in s1 for _, _, lab, rep in rec.trials() if lab > 0)
    per_gesture = Counter(g for g, _ in trials)
    assert set(per_gesture.values()) == {2} and len(per_gesture) == 9
    assert {rep for _, rep in trials} == {0, 1}
    # rest runs are distinct, chronological repetitions across the subject's files
    rest_reps = [rep for rec in s1 for _, _, lab, rep in rec.trials() if lab == 0]
    assert rest_reps == sorted(rest_reps) and len(set(rest_reps)) == len(rest_reps)
    _assert_chronological(recs)


def test_ninapro_movement_ids_fitting_neither_convention_raise(tmp_path):
    rng = np.random.default_rng(8)
    scipy.io.savemat(tmp_path / "S1_E2_A1.mat", _ninapro_arrays(rng, 12, moves=[3, 30]))  # DB2 E2: 1..23 or 18..40
    with pytest.raises(DataFormatError, match="database-wide") as err:
        list(get_reader("ninapro-db2").read(tmp_path))
    assert "S1_E2_A1.mat" in str(err.value)


def test_ninapro_vocabulary_mapping():
    db2 = get_reader("ninapro-db2")
    keys = dict(zip(db2.info.gestures, db2.gesture_keys))
    assert keys["E1-6_fist"] == "hand_close" and keys["E1-13_wrist_flexion"] == "wrist_flexion"
    assert keys["E1-1_thumb_up"] == "ninapro-db2:E1-1_thumb_up"
    mapped = [k for k in db2.gesture_keys if ":" not in k]
    assert len(mapped) == len(set(mapped))  # one label per vocabulary key
    db5 = get_reader("ninapro-db5")
    assert "E1-1_index_flexion" in db5.info.gestures and "E3-15_tip_pinch_grasp" in db5.info.gestures


def test_ninapro_length_mismatch_is_truncated_with_warning(tmp_path, caplog):
    rng = np.random.default_rng(1)
    arr = _ninapro_arrays(rng, 12, [1])
    arr["emg"] = arr["emg"][:-5]
    scipy.io.savemat(tmp_path / "S1_E1_A1.mat", arr)
    with caplog.at_level(logging.WARNING):
        (rec,) = list(get_reader("ninapro-db4").read(tmp_path))
    assert rec.n_samples == len(arr["stimulus"]) - 5
    assert "different lengths" in caplog.text and "S1_E1_A1.mat" in caplog.text


@pytest.mark.parametrize("case", ["truncated", "channels", "nan", "label", "missing_var", "garbage"])
def test_ninapro_bad_files_raise(tmp_path, case):
    rng = np.random.default_rng(2)
    arr = _ninapro_arrays(rng, 12, [1, 2])
    path = tmp_path / "S3_E1_A1.mat"
    if case == "channels":
        arr["emg"] = arr["emg"][:, :10]
    elif case == "nan":
        arr["emg"][5, 3] = np.nan
    elif case == "label":
        arr["restimulus"][30] = 40  # exercise A (DB4 E1) has 12 movements
    elif case == "missing_var":
        del arr["restimulus"]
    scipy.io.savemat(path, arr)
    if case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "garbage":
        path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataFormatError) as err:
        list(get_reader("ninapro-db4").read(tmp_path))
    assert "S3_E1_A1.mat" in str(err.value)


def test_ninapro_empty_folder_raises(tmp_path):
    with pytest.raises(DataFormatError, match="S\\{n\\}_E\\{e\\}_A1.mat"):
        list(get_reader("ninapro-db2").read(tmp_path))


def test_ninapro_v73_file_read_with_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(3)
    arr = _ninapro_arrays(rng, 16, [1, 2])
    # MATLAB v7.3: an HDF5 file with a 512-byte user block; variables stored column-major (transposed)
    with h5py.File(tmp_path / "S1_E1_A1.mat", "w", userblock_size=512) as f:
        for k in ("emg", "stimulus", "restimulus", "repetition", "rerepetition"):
            f[k] = np.asarray(arr[k], float).T
    with open(tmp_path / "S1_E1_A1.mat", "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan 1 00:00:00 2024 HDF5 schema 1.00 .")
        f.seek(124)
        f.write(b"\x00\x02IM")
    (rec,) = list(get_reader("ninapro-db5").read(tmp_path))
    assert rec.n_channels == 16 and rec.n_samples == len(arr["stimulus"])
    assert np.allclose(rec.signal, arr["emg"].T.astype(np.float32))


# ---------------------------------------------------------------------------------------------- EPN-612

_EPN_ORDER = ["noGesture", "fist", "waveIn", "waveOut", "open", "pinch"]


def _epn_sample(rng, name: str | None, n: int = 60, gt=(11, 40)) -> dict:
    s = {"startPointforGestureExecution": 5, "myoDetection": [0] * 15, "quaternion": {"w": [1.0]},
         "emg": {f"ch{i}": rng.integers(-128, 128, n).tolist() for i in range(1, 9)},
         "gyroscope": {"x": [0]}, "accelerometer": {"x": [0]}}
    if name is not None:
        s["gestureName"] = name
        if name != "noGesture":
            s["groundTruth"] = [0] * (gt[0] - 1) + [1] * (gt[1] - gt[0] + 1) + [0] * (n - gt[1])
            s["groundTruthIndex"] = list(gt)
    return s


def _epn_user(rng, user: str, labelled_testing: bool, reps: int = 2) -> dict:
    def group(labelled: bool) -> dict:
        names = [g for g in _EPN_ORDER for _ in range(reps)]
        return {f"idx_{i}": _epn_sample(rng, g if labelled else None) for i, g in enumerate(names, start=1)}

    return {"generalInfo": {"deviceModel": "Myo Armband", "samplingFrequencyInHertz": 200,
                            "recordingTimeInSeconds": 5, "repetitionsForSynchronizationGesture": 5,
                            "myoPredictionLabel": {g: i for i, g in enumerate(_EPN_ORDER)}},
            "userInfo": {"name": user, "age": 23, "gender": "man", "handedness": "right"},
            "synchronizationGesture": {"samples": {}},
            "trainingSamples": group(True), "testingSamples": group(labelled_testing)}


def _write_epn(root: Path, users=(1, 2)) -> None:
    rng = np.random.default_rng(4)
    for folder, labelled_testing in (("trainingJSON", True), ("testingJSON", False)):
        for u in users:
            d = root / folder / f"user{u}"
            d.mkdir(parents=True)
            (d / f"user{u}.json").write_text(json.dumps(_epn_user(rng, f"user{u}", labelled_testing)))


def test_epn612_reads_both_parts(tmp_path, caplog):
    _write_epn(tmp_path)
    reader = get_reader("emg-epn-612")
    assert reader.info.fs == 200.0 and reader.info.layout == "myo8" and reader.info.n_channels == 8
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path))
    assert "304 trainingJSON users absent" in caplog.text
    assert len(recs) == 2 * 2 * 2 * 12  # parts x users x groups x samples
    subjects = sorted({r.subject for r in recs})
    assert subjects == ["emg-epn-612/testing/user1", "emg-epn-612/testing/user2",
                        "emg-epn-612/training/user1", "emg-epn-612/training/user2"]
    r = recs[0]
    assert r.fs == 200.0 and r.units == "myo" and r.n_channels == 8 and r.layout_rotation_unknown
    assert r.gesture_keys == ("rest", "hand_close", "wrist_flexion", "wrist_extension", "hand_open", "pinch")
    assert r.attrs["user"] == "user1" and r.attrs["part"] == "training" and r.attrs["idx"] == "idx_1"
    assert r.attrs["samples_group"] == "trainingSamples" and r.attrs["fs_original"] == 200.0
    assert np.all(r.labels == 0)  # noGesture: rest through the whole sample
    fist = next(x for x in recs if x.attrs["gesture_name"] == "fist")
    # groundTruthIndex [11, 40] is 1-based inclusive -> samples 10..39; outside unlabelled
    assert np.array_equal(np.flatnonzero(fist.labels == 1), np.arange(10, 40))
    assert np.all(fist.labels[:10] == -1) and np.all(fist.labels[40:] == -1)
    # per user and group: 2 chronological repetitions of each of the 6 gestures
    train_u1 = [x for x in recs if x.subject.endswith("training/user1") and x.session == "trainingSamples"]
    assert [x.order for x in train_u1] == list(range(12))
    trials = Counter((x.label_names[lab], rep) for x in train_u1 for _, _, lab, rep in x.trials())
    assert trials == Counter({(g, rep): 1 for g in _EPN_ORDER for rep in (0, 1)})
    # the labelled testingSamples of a trainingJSON user number on (2, 3); the group's own count is kept
    test_u1 = [x for x in recs if x.subject.endswith("training/user1") and x.session == "testingSamples"]
    trials = Counter((x.label_names[lab], rep) for x in test_u1 for _, _, lab, rep in x.trials())
    assert trials == Counter({(g, rep): 1 for g in _EPN_ORDER for rep in (2, 3)})
    assert [x.attrs["file_repetition"] for x in test_u1] == [0, 1] * 6
    assert [x.attrs["file_repetition"] for x in train_u1] == [0, 1] * 6
    _assert_chronological(recs)
    # testingJSON testingSamples: unlabelled recordings, not an error
    unl = [x for x in recs if x.attrs["part"] == "testing" and x.session == "testingSamples"]
    assert len(unl) == 24 and all(np.all(x.labels == -1) and x.attrs["gesture_name"] is None for x in unl)
    assert all("file_repetition" not in x.attrs for x in unl)
    assert {x.session_order for x in recs if x.session == "testingSamples"} == {1}
    assert len({x.recording_id for x in recs}) == len(recs)


@pytest.mark.parametrize("case", ["truncated", "channels", "nan", "label", "gt_index"])
def test_epn612_bad_files_raise(tmp_path, case):
    rng = np.random.default_rng(5)
    doc = _epn_user(rng, "user7", True, reps=1)
    sample = doc["trainingSamples"]["idx_2"]
    if case == "channels":
        del sample["emg"]["ch8"]
    elif case == "nan":
        sample["emg"]["ch3"][4] = float("nan")
    elif case == "label":
        sample["gestureName"] = "thumbsUp"
    elif case == "gt_index":
        sample["groundTruthIndex"] = [50, 20]
    d = tmp_path / "trainingJSON" / "user7"
    d.mkdir(parents=True)
    text = json.dumps(doc)  # NaN is written as the non-standard token NaN, which json.loads accepts
    if case == "truncated":
        text = text[: len(text) // 2]
    (d / "user7.json").write_text(text)
    with pytest.raises(DataFormatError) as err:
        list(get_reader("emg-epn-612").read(tmp_path))
    assert "user7.json" in str(err.value)


def test_epn612_missing_root_folders_raise(tmp_path):
    with pytest.raises(DataFormatError, match="trainingJSON"):
        list(get_reader("emg-epn-612").read(tmp_path))


# ---------------------------------------------------------------------------------------------- Toro-Ossaba


def _write_toro(root: Path, subjects=(1, 3), n=300, extra_cols=2) -> None:
    rng = np.random.default_rng(6)
    for s in subjects:
        d = root / f"subject {s}"
        d.mkdir(parents=True)
        for c in range(5):
            data = rng.normal(0, 0.1, (n, 4 + extra_cols))
            (d / f"{c}.txt").write_text("\n".join("\t".join(f"{v:.6f}" for v in row) for row in data) + "\n")


def test_toro_ossaba_reads_published_layout(tmp_path, caplog):
    _write_toro(tmp_path)
    reader = get_reader("toro-ossaba")
    assert reader.info.fs == 1024.0 and reader.info.layout == "toro4"
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path))
    assert "6 subjects absent" in caplog.text
    assert len(recs) == 10
    assert sorted({r.subject for r in recs}) == ["toro-ossaba/all/subject1", "toro-ossaba/all/subject3"]
    r = recs[2]
    assert r.fs == 1024.0 and r.n_channels == 4 and r.n_samples == 300 and r.attrs["fs_original"] == 1024.0
    assert r.source_file == "subject 1/2.txt" and r.label_names[2] == "class2"
    assert r.gesture_keys == tuple(f"toro-ossaba:class{c}" for c in range(5))
    assert r.trials() == [(0, 300, 2, 0)] and r.order == 2
    assert r.electrodes[0].layout == "toro4"
    _assert_chronological(recs)


@pytest.mark.parametrize("case", ["truncated", "channels", "nan", "text"])
def test_toro_ossaba_bad_files_raise(tmp_path, case):
    _write_toro(tmp_path, subjects=(2,), n=20, extra_cols=0)
    path = tmp_path / "subject 2" / "3.txt"
    lines = path.read_text().splitlines()
    if case == "truncated":
        lines[-1] = lines[-1].split("\t")[0]
    elif case == "channels":
        lines = ["\t".join(ln.split("\t")[:3]) for ln in lines]
    elif case == "nan":
        lines[4] = "nan\t0\t0\t0"
    elif case == "text":
        lines[4] = "0.1\tabc\t0\t0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        list(get_reader("toro-ossaba").read(tmp_path))
    assert "3.txt" in str(err.value)


def test_toro_ossaba_header_line_is_skipped(tmp_path):
    _write_toro(tmp_path, subjects=(1,), n=10, extra_cols=0)
    path = tmp_path / "subject 1" / "0.txt"
    path.write_text("ch1\tch2\tch3\tch4\n" + path.read_text())
    recs = list(get_reader("toro-ossaba").read(tmp_path))
    assert recs[0].n_samples == 10


# ---------------------------------------------------------------------------------------------- MCS_EMG

_FAST = McsTiming(cycle_offsets_s=(0.1, 1.2, 2.3, 3.4, 4.5), gesture_period_s=0.1, cue_s=0.06)


def _write_mcs(root: Path, ids=(1, 2), n=None, n_ch=4) -> list[Path]:
    rng = np.random.default_rng(7)
    n = n or int(5.6 * 2000)
    paths = []
    for i in ids:
        d = root / "sEMG-dataset" / "raw" / "mat" / ("female" if i % 2 else "male")
        d.mkdir(parents=True, exist_ok=True)
        paths.append(d / f"participant{i}.mat")
        scipy.io.savemat(paths[-1], {"data": rng.normal(0, 0.05, (n, n_ch)), "iD": np.array([[i]])})
    return paths


def test_mcs_emg_reads_stated_layout(tmp_path, caplog):
    _write_mcs(tmp_path)
    filtered = tmp_path / "sEMG-dataset" / "filtered" / "mat"
    filtered.mkdir(parents=True)
    (filtered / "ignored.mat").write_bytes(b"not read")
    reader = McsEmgReader(_FAST)
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path))
    assert "38 participants absent" in caplog.text
    assert [r.subject for r in recs] == ["mcs-emg/all/p1", "mcs-emg/all/p2"]
    r = recs[0]
    assert r.fs == 2000.0 and r.n_channels == 4 and r.electrodes[0].layout == "mcs4"
    assert r.attrs["participant_id"] == 1 and r.attrs["group_folder"] == "female"
    assert r.gesture_keys[:3] == ("rest", "wrist_extension", "wrist_flexion")
    trials = r.trials()
    assert len(trials) == 50 and Counter(lab for _, _, lab, _ in trials) == Counter({g: 5 for g in range(10)})
    a, b, lab, rep = trials[-1]
    assert (a, b, lab, rep) == (int(round((4.5 + 0.9) * 2000)), int(round((4.5 + 0.9) * 2000)) + 120, 9, 4)
    assert r.labels[0] == -1  # before the first cue: unlabelled
    _assert_chronological(recs)


def test_mcs_emg_default_timing_rejects_short_file(tmp_path):
    (path,) = _write_mcs(tmp_path, ids=(3,), n=4000)
    with pytest.raises(DataFormatError, match="truncated") as err:
        list(get_reader("mcs-emg").read(tmp_path))
    assert path.name in str(err.value) and "1272000" in str(err.value)


@pytest.mark.parametrize("case", ["channels", "nan", "duplicate", "missing_var", "bad_id", "transposed"])
def test_mcs_emg_bad_files_raise(tmp_path, case):
    paths = _write_mcs(tmp_path, ids=(1, 2))
    target = paths[1]
    if case == "channels":
        scipy.io.savemat(target, {"data": np.zeros((12000, 6)), "iD": np.array([[2]])})
    elif case == "nan":
        m = scipy.io.loadmat(target)
        m["data"][100, 2] = np.inf
        scipy.io.savemat(target, {"data": m["data"], "iD": m["iD"]})
    elif case == "duplicate":
        scipy.io.savemat(target, {"data": np.zeros((20, 4)), "iD": np.array([[1]])})
    elif case == "missing_var":
        scipy.io.savemat(target, {"emg": np.zeros((20, 4)), "iD": np.array([[2]])})
    elif case == "bad_id":
        scipy.io.savemat(target, {"data": np.zeros((20, 4)), "iD": np.array([[99]])})
    elif case == "transposed":
        scipy.io.savemat(target, {"data": np.zeros((4, 12000)), "iD": np.array([[2]])})
    with pytest.raises(DataFormatError) as err:
        list(McsEmgReader(_FAST).read(tmp_path))
    assert target.name in str(err.value)


def test_readers_return_recordings_only(tmp_path):
    _write_toro(tmp_path, subjects=(1,), n=5, extra_cols=0)
    assert all(isinstance(r, Recording) for r in get_reader("toro-ossaba").read(tmp_path))
    assert get_reader("toro-ossaba").files(tmp_path)[0].name == "0.txt"


def test_mcs_emg_csv_variant_when_no_mat_files(tmp_path):
    d = tmp_path / "sEMG-dataset" / "raw" / "csv"
    d.mkdir(parents=True)
    data = np.random.default_rng(9).normal(0, 0.05, (int(5.6 * 2000), 4))
    np.savetxt(d / "5_raw.csv", data, delimiter=",", header="ch1,ch2,ch3,ch4", comments="")
    (rec,) = list(McsEmgReader(_FAST).read(tmp_path))
    assert rec.subject == "mcs-emg/all/p5" and rec.attrs["variant"] == "raw-csv"
    assert np.allclose(rec.signal, data.T.astype(np.float32))


def test_attrs_are_json_serialisable(tmp_path):
    _write_ninapro(tmp_path / "n", "db5", subjects=(1,), exercises=(1,), n_ch=16)
    _write_epn(tmp_path / "e", users=(1,))
    _write_toro(tmp_path / "t", subjects=(1,), n=5, extra_cols=0)
    _write_mcs(tmp_path / "m", ids=(1,))
    recs = [*get_reader("ninapro-db5").read(tmp_path / "n"), *get_reader("emg-epn-612").read(tmp_path / "e"),
            *get_reader("toro-ossaba").read(tmp_path / "t"), *McsEmgReader(_FAST).read(tmp_path / "m")]
    for r in recs:
        json.dumps(r.attrs)
        assert r.attrs["fs_original"] == r.fs and r.recording_id.startswith(r.subject)

# ---------------------------------------------------------------------------------------------- shared helpers


def test_absent_names_are_reported_once_in_one_format(caplog):
    log = logging.getLogger("aemg.datasets.test")
    expected = [f"s{i}" for i in range(1, 51)]
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.test"):
        assert warn_absent(log, "demo", Path("/data/demo"), "subjects", expected, ["s2"]) == [
            e for e in expected if e != "s2"]
        assert warn_absent(log, "demo", Path("/data/demo"), "subjects", expected, expected) == []
    (msg,) = [r.getMessage() for r in caplog.records]  # one warning; none when nothing is absent
    assert msg.startswith(f"demo: 49 subjects absent from {Path('/data/demo')}: s1, s3, s4, ")
    assert msg.endswith(", s41 ...")  # the first 40 names, then an ellipsis
    assert subject_id("demo", SINGLE_PART, "s1") == "demo/all/s1"


@pytest.mark.parametrize("name", ["toro-ossaba", "emg-epn-612"])
def test_fixture_readers_report_absent_in_read_only(tmp_path, caplog, name):
    (_write_toro if name == "toro-ossaba" else _write_epn)(tmp_path)
    reader = get_reader(name)
    with caplog.at_level(logging.WARNING):
        assert reader.files(tmp_path)
    assert not [r for r in caplog.records if "absent" in r.getMessage()]
    with caplog.at_level(logging.WARNING):
        list(reader.read(tmp_path))
    assert [r for r in caplog.records if "absent" in r.getMessage()]
