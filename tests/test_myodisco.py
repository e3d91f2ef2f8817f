"""The myodisco reader on fixture files written in exactly the layout of DATASETS.md section 9
(MyoDisCo states no licence, so no real file is shipped), covering every quirk listed there,
plus prepare -> info -> tokenize end to end."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import main
from aemg.datasets import get_reader
from aemg.datasets.myodisco import GESTURES, KEYS
from aemg.errors import DataFormatError

CLASSES_11 = ("double_tap", "extension", "finger_gun", "flexion", "hand_close", "hand_open", "point",
              "single_tap", "snap", "thumbs_up", "z_rest")  # S4/day1's metadata.json (quirk 3)
# fixture: subject -> {folder: repetitions}; the full dataset has 20 / 20 / 5 x 4 (fewer here, complete grids)
LAYOUT: dict[str, dict[str, int]] = {
    "S1": {"day1": 2, "day2": 2, **{f"positions/{p}": 1 for p in range(1, 5)}},
    "S2": {"day1": 1},
    "S4": {"day1": 2},
    "S7": {"day1": 10, "day2": 10},
    "S10": {"day1": 1, "positions/3": 1},
    "S12": {"day1": 8},
}
SHORT = ("S12", "day1", 7, 8)  # S12/day1/R_7_C_8_EMG.csv: 352 rows


def _signal(rng: np.random.Generator, cls: int, n: int) -> np.ndarray:
    """int (n, 8): near-rest noise, with a ~0.5 s gesture burst around 550 ms unless rest (class 9)."""
    x = rng.normal(0, 2.0, (n, 8))
    if cls != 9:
        a, b = 60, 160
        x[a:b] += rng.normal(0, 25.0, (b - a, 8)) * (1 + (np.arange(8) == cls % 8))
    return np.clip(np.round(x), -128, 127).astype(int)


def _write_csv(path: Path, data: np.ndarray) -> None:
    path.write_bytes("".join(",".join(str(v) for v in row) + "\r\n" for row in data).encode())


def _metadata(path: Path, subject_in_keys: str, folder: str, n_reps: int, classes: tuple[str, ...]) -> None:
    prefix = {"day1": f"data/{subject_in_keys}/SGT/static",
              "day2": f"data/{subject_in_keys}/Day2/SGT/static"}.get(
        folder, f"data/{subject_in_keys}/Day2/SGT/Confounding/Pos/static/{folder.split('/')[-1]}")
    meta: dict = {"continuous": False, "randomize": False, "gifs": False}
    for r in range(n_reps):
        for c, name in enumerate(classes):
            meta[f"{prefix}/R_{r}_C_{c}_EMG.csv"] = {"rep_idx": r, "class_idx": c, "class_name": name,
                                                    "file_type": "png"}
    path.write_text(json.dumps(meta))  # one line, no trailing newline


def write_myodisco(root: Path) -> Path:
    """A MyoDisCo folder in the repository's layout, with every quirk of DATASETS.md section 9."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    (root / "deletefiles.py").write_text("import os\n")  # the only file at the root
    for subj, folders in LAYOUT.items():
        n = int(subj[1:])
        for folder, n_reps in folders.items():
            d = root / subj / folder
            d.mkdir(parents=True)
            for r in range(n_reps):
                for c in range(10):
                    rows = 352 if (subj, folder, r, c) == SHORT else int(rng.choice([392, 400, 402, 404, 426]))
                    data = _signal(rng, c, rows)
                    if (subj, folder, r, c) == ("S1", "day1", 0, 4):
                        data[100, 0], data[101, 1] = -128, 127  # the int8 rails occur
                    _write_csv(d / f"R_{r}_C_{c}_EMG.csv", data)
            if (subj, folder) == ("S1", "day2"):
                continue  # quirk 1: S1/day2 has no metadata.json
            if subj == "S4" and folder == "day1":  # quirk 3: 11 classes, entries for C_10 files that do not exist
                _metadata(d / "metadata.json", subj, folder, n_reps, CLASSES_11)
            else:  # quirk 2: S10-S14 name the next subject
                _metadata(d / "metadata.json", f"S{n + 1}" if n >= 10 else subj, folder, n_reps, GESTURES)
    # quirk 4: S7/day1/R_9_C_5 and S7/day2/R_9_C_5 are byte-identical
    same = root / "S7" / "day1" / "R_9_C_5_EMG.csv"
    (root / "S7" / "day2" / "R_9_C_5_EMG.csv").write_bytes(same.read_bytes())
    return root


@pytest.fixture(scope="module")
def md_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_myodisco(tmp_path_factory.mktemp("myodisco") / "MyoDisCo")


@pytest.fixture(scope="module")
def md_recordings(md_root: Path) -> list:
    return list(get_reader("myodisco").read(md_root))


def test_fixture_has_the_published_format(md_root):
    raw = (md_root / "S1" / "day1" / "R_0_C_9_EMG.csv").read_bytes()
    assert raw.endswith(b"\r\n") and b"\r\n" in raw[:-2] and raw.count(b",") == 7 * raw.count(b"\r\n")
    meta = (md_root / "S1" / "day1" / "metadata.json").read_text()
    assert "\n" not in meta and meta.startswith('{"continuous": false, "randomize": false, "gifs": false')
    assert sorted(p.name for p in md_root.iterdir()) == ["S1", "S10", "S12", "S2", "S4", "S7", "deletefiles.py"]


def test_subjects_sessions_and_counts(md_recordings, md_root):
    recs = md_recordings
    n_files = sum(10 * r for f in LAYOUT.values() for r in f.values())
    assert len(recs) == n_files == len(get_reader("myodisco").files(md_root))
    # subjects from S<n> in natural order (S10 after S2; lexical order would put it first)
    assert list(dict.fromkeys(r.subject for r in recs)) == [f"myodisco/all/{s}" for s in
                                                             ("S1", "S2", "S4", "S7", "S10", "S12")]
    s1 = [r for r in recs if r.subject == "myodisco/all/S1"]
    sessions = list(dict.fromkeys((r.session, r.session_order) for r in s1))
    assert sessions == [("day1", 0), ("day2", 1), ("position1", 2), ("position2", 3), ("position3", 4),
                        ("position4", 5)]
    attrs = {r.session: (r.attrs["donning"], r.attrs["limb_position"]) for r in s1}
    assert attrs == {"day1": (1, 0), "day2": (2, 0), "position1": (2, 1), "position2": (2, 2),
                     "position3": (2, 3), "position4": (2, 4)}
    s10 = {(r.session, r.session_order, r.attrs["limb_position"]) for r in recs if r.subject.endswith("/S10")}
    assert s10 == {("day1", 0, 0), ("position3", 4, 3)}
    assert all(r.fs == 200.0 and r.units == "myo" and r.signal.shape[0] == 8 for r in recs)
    assert all(r.signal.dtype == np.float32 and (r.signal == np.round(r.signal)).all() for r in recs)


def test_classes_from_the_file_name_and_the_fixed_list(md_recordings):
    assert GESTURES[9] == "z_rest" and KEYS[9] == "rest"
    assert dict(zip(GESTURES, KEYS))["extension"] == "wrist_extension"
    assert dict(zip(GESTURES, KEYS))["flexion"] == "wrist_flexion"
    assert dict(zip(GESTURES, KEYS))["point"] == "index_point"
    assert KEYS[0] == "myodisco:double_tap" and KEYS[7] == "myodisco:snap" and len(set(KEYS)) == 10
    for r in md_recordings:
        stem = Path(r.source_file).stem  # R_<rep>_C_<class>_EMG
        rep, cls = int(stem.split("_")[1]), int(stem.split("_")[3])
        assert (r.labels == cls).all() and r.attrs["file_repetition"] == rep
        assert r.label_names == GESTURES
    # S4/day1's metadata lists 11 classes: ignored, its files read with the 10-class scheme
    s4 = [r for r in md_recordings if r.subject.endswith("/S4")]
    assert Counter(int(r.labels[0]) for r in s4) == {c: 2 for c in range(10)}
    # within a session: repetition-major order
    s1d1 = [Path(r.source_file).stem for r in md_recordings if r.subject.endswith("/S1") and r.session == "day1"]
    assert s1d1[:3] == ["R_0_C_0_EMG", "R_0_C_1_EMG", "R_0_C_2_EMG"] and s1d1[10] == "R_1_C_0_EMG"


def test_rows_values_and_repetitions(md_recordings):
    short = [r for r in md_recordings if r.source_file == "S12/day1/R_7_C_8_EMG.csv"]
    assert len(short) == 1 and short[0].n_samples == 352
    lengths = Counter(r.n_samples for r in md_recordings)
    assert min(lengths) == 352 and max(lengths) == 426
    rails = next(r for r in md_recordings if r.source_file == "S1/day1/R_0_C_4_EMG.csv")
    assert rails.signal.min() == -128 and rails.signal.max() == 127
    reps: dict[tuple[str, int], list[int]] = {}
    for r in md_recordings:
        reps.setdefault((r.subject, int(r.labels[0])), []).append(int(r.repetition[0]))
    assert all(v == list(range(len(v))) for v in reps.values())
    assert len(reps[("myodisco/all/S1", 9)]) == 2 + 2 + 4  # day1, day2, then the four positions


def test_metadata_quirks_are_reported_not_trusted(md_root, caplog):
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.myodisco"):
        recs = list(get_reader("myodisco").read(md_root))
    msgs = [r.getMessage() for r in caplog.records]
    other = [m for m in msgs if "names another subject" in m]
    assert len(other) == 1 and "S10/day1/metadata.json names S11" in other[0] and "3 case(s)" in other[0]
    assert "S12/day1/metadata.json names S13" in other[0]
    wrong = [m for m in msgs if "lists classes or files" in m]
    assert len(wrong) == 1 and "S4/day1/metadata.json: 8 of 22 entries" in wrong[0]
    assert not any("S1/day2" in m for m in msgs)  # a missing metadata.json is fine
    assert any("subjects absent" in m and "S3" in m for m in msgs)
    assert {r.subject for r in recs if r.subject.endswith("/S10")} == {"myodisco/all/S10"}  # never S11


def _raises(root: Path, needle: str, what: str) -> None:
    with pytest.raises(DataFormatError) as exc:
        list(get_reader("myodisco").read(root))
    msg = str(exc.value)
    assert needle in msg and what in msg, msg


def _one_folder(tmp_path: Path, name: str, n_reps: int = 1) -> Path:
    d = tmp_path / name / "S1" / "day1"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for r in range(n_reps):
        for c in range(10):
            _write_csv(d / f"R_{r}_C_{c}_EMG.csv", _signal(rng, c, 400))
    return d


def test_clear_errors(tmp_path, caplog):
    d = _one_folder(tmp_path, "ok")
    assert len(list(get_reader("myodisco").read(tmp_path / "ok"))) == 10
    assert len(list(get_reader("myodisco").read(tmp_path))) == 10  # the folder one level above is accepted

    d = _one_folder(tmp_path, "cls")
    (d / "R_0_C_10_EMG.csv").write_bytes((d / "R_0_C_1_EMG.csv").read_bytes())
    _raises(tmp_path / "cls", "R_0_C_10_EMG.csv", "class index 0..9")

    d = _one_folder(tmp_path, "rep")
    (d / "R_20_C_1_EMG.csv").write_bytes((d / "R_0_C_1_EMG.csv").read_bytes())
    _raises(tmp_path / "rep", "R_20_C_1_EMG.csv", "repetition index 0..19")

    d = _one_folder(tmp_path, "gap", n_reps=2)
    (d / "R_0_C_3_EMG.csv").unlink()
    _raises(tmp_path / "gap", "R_0_C_3_EMG.csv", "file missing")

    d = _one_folder(tmp_path, "range")
    (d / "R_0_C_2_EMG.csv").write_bytes(b"200,0,0,0,0,0,0,0\r\n" * 400)
    _raises(tmp_path / "range", "R_0_C_2_EMG.csv", "[-128, 127]")

    d = _one_folder(tmp_path, "float")
    (d / "R_0_C_2_EMG.csv").write_bytes(b"1.5,0,0,0,0,0,0,0\r\n" * 400)
    _raises(tmp_path / "float", "R_0_C_2_EMG.csv", "integer")

    d = _one_folder(tmp_path, "cols")
    (d / "R_0_C_2_EMG.csv").write_bytes(b"1,0,0,0,0,0,0\r\n" * 400)
    _raises(tmp_path / "cols", "R_0_C_2_EMG.csv", "found 7 columns")

    d = _one_folder(tmp_path, "name")  # a file not named R_<rep>_C_<class>_EMG.csv is stray: skipped, named
    (d / "R_0_C_2_IMU.csv").write_bytes(b"1\r\n")
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.myodisco"):
        assert len(list(get_reader("myodisco").read(tmp_path / "name"))) == 10
    assert any("stray" in r.getMessage() and "S1/day1/R_0_C_2_IMU.csv" in r.getMessage() for r in caplog.records)

    d = _one_folder(tmp_path, "empty")
    (d / "R_0_C_2_EMG.csv").write_bytes(b"")
    _raises(tmp_path / "empty", "R_0_C_2_EMG.csv", "no data rows")

    (tmp_path / "none" / "S1" / "other").mkdir(parents=True)
    _raises(tmp_path / "none", "S1", "day1/, day2/, positions/1..4/")

    (tmp_path / "nothing").mkdir()
    _raises(tmp_path / "nothing", "nothing", "S<n>/{day1,day2,positions/<p>}")


def test_prepare_info_tokenize_end_to_end(md_root, tmp_path, capsys, caplog):
    out = tmp_path / "corpus"
    with caplog.at_level(logging.WARNING, logger="aemg.corpus"):
        assert main(["prepare", "myodisco", "--root", str(md_root), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    dup = [r.getMessage() for r in caplog.records if "identical" in r.getMessage()]
    assert len(dup) == 1 and "S7 session day2" in dup[0] and "S7 session day1" in dup[0]
    assert "S7/day2/R_9_C_5_EMG.csv = S7/day1/R_9_C_5_EMG.csv" in dup[0]

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    n_files = sum(10 * r for f in LAYOUT.values() for r in f.values())
    assert info["n_subjects"] == 6 and info["n_recordings"] == n_files - 1  # the S7 copy dropped

    from aemg.corpus import Corpus

    c = Corpus(out)
    (d,) = c.provenance["dropped_duplicates"]
    assert d["source_file"] == "S7/day2/R_9_C_5_EMG.csv"
    assert d["duplicate_of"]["source_file"] == "S7/day1/R_9_C_5_EMG.csv"
    limb = c.recordings["recording_attrs"].str.get("limb_position")
    s1 = c.recordings["subject"] == "myodisco/all/S1"
    assert dict(zip(c.recordings["session"][s1], limb[s1])) == {"day1": 0, "day2": 0, "position1": 1,
                                                                 "position2": 2, "position3": 3, "position4": 4}
    assert list(c.sessions["session"][c.sessions["subject"] == "myodisco/all/S1"]) == [
        "day1", "day2", "position1", "position2", "position3", "position4"]

    assert main(["tokenize", str(out), "--json"]) == 0
    tok = json.loads(capsys.readouterr().out)
    assert tok["n_trials"] == n_files - 1 and tok["n_groups"] > 0 and tok["coverage_any"] > 0.5


def test_both_new_readers_are_listed_with_their_facts(capsys):
    assert main(["datasets", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    lts, md = listed["long-term-semg"], listed["myodisco"]
    assert (lts["fs"], lts["n_channels"], lts["n_subjects"], len(lts["gestures"])) == (200.0, 8, 5, 22)
    assert (md["fs"], md["n_channels"], md["n_subjects"], len(md["gestures"])) == (200.0, 8, 14, 10)
    assert lts["license"] == "Apache-2.0" and md["license"].startswith("none stated")
    assert "Suguru55/Wearable_Sensor_Long-term_sEMG_Dataset" in lts["url"] and "LibEMG/MyoDisCo" in md["url"]
    assert "Kanoga" in lts["citation"] and "10.1088/1741-2552/ad4915" in md["citation"]
    assert lts["device"] == md["device"] == "Thalmic Myo armband"
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "licence: Apache-2.0" in text and "licence: none stated" in text
