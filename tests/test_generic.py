"""The generic importer's reader: manifest.csv + one .npy/.csv signal file per row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aemg.datasets.generic import READER, dataset_name, read_manifest
from aemg.errors import DataFormatError

HEADER = "file,subject,session,trial,gesture,fs,layout"


def _folder(tmp_path, rows: list[str], header: str = HEADER, name: str = "My Data"):
    root = tmp_path / name
    root.mkdir()
    (root / "manifest.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def _npy(root, rel, n=50, ch=8, seed=0):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    np.save(p, np.random.default_rng(seed).normal(size=(n, ch)).astype(np.float32))


def test_reads_rows_with_names_orders_and_repetitions(tmp_path):
    root = _folder(tmp_path, [
        "a/1.npy,A,,,rest,200,myo8",
        "a/2.npy,A,,,hand_close,200,myo8",
        "a/3.npy,A,,,thumbs up,200,myo8",
        "a/4.npy,A,,,hand_close,200,myo8",
        "b/1.csv,B,day2,t1,hand_close,1000,layout.json",
        "b/0.csv,B,day1,t0,,1000,layout.json",
    ])
    for i in range(1, 5):
        _npy(root, f"a/{i}.npy", seed=i)
    (root / "layout.json").write_text(json.dumps({"name": "band3", "rotation_unknown": False, "electrodes": [
        {"site": "ring", "angle_deg": 0, "z": 0.3}, {"site": "ring", "angle_deg": 120, "z": 0.3},
        {"site": "biceps", "angle_deg": None, "z": None}]}))
    (root / "b").mkdir()
    (root / "b" / "1.csv").write_text("c1,c2,c3\n" + "\n".join("1,2,3" for _ in range(7)) + "\n")
    (root / "b" / "0.csv").write_text("\n".join("0.5,0.25,-1" for _ in range(4)) + "\n")
    recs = list(read_manifest(root))
    assert dataset_name(root) == "my-data"
    assert [r.subject for r in recs] == ["generic/my-data/A"] * 4 + ["generic/my-data/B"] * 2
    assert recs[0].label_names == ("rest", "hand_close", "thumbs up")
    assert recs[0].gesture_keys == ("rest", "hand_close", "my-data:thumbs up")
    assert [int(r.repetition[0]) for r in recs[:4]] == [0, 0, 0, 1]
    assert [r.order for r in recs[:4]] == [0, 1, 2, 3] and recs[0].session == "session1"
    assert recs[0].trials() == [(0, 50, 0, 0)] and recs[0].fs == 200.0 and recs[0].n_channels == 8
    assert np.allclose(recs[1].signal, np.load(root / "a/2.npy").T)
    # B: sessions in order of first appearance (day2 listed first), layout from JSON, header skipped
    b2, b1 = recs[4], recs[5]
    assert (b2.session, b2.session_order, b1.session, b1.session_order) == ("day2", 0, "day1", 1)
    assert b2.n_samples == 7 and b2.electrodes[2].site == "biceps" and not b2.layout_rotation_unknown
    assert np.all(b1.labels == -1) and np.all(b1.repetition == -1)  # empty gesture: unlabelled
    assert b1.recording_id == "generic/my-data/B/day1/t0" and b1.source_file == "b/0.csv"
    assert b1.attrs["fs_original"] == 1000.0 and b1.units == "adc"
    files = [p.relative_to(root).as_posix() for p in READER.files(root)]
    assert files == ["manifest.csv", "a/1.npy", "a/2.npy", "a/3.npy", "a/4.npy", "b/1.csv", "layout.json", "b/0.csv"]
    assert list(read_manifest(root, dataset="ulb-mlg"))[0].subject == "generic/ulb-mlg/A"


def test_repetition_and_units_columns(tmp_path):
    root = _folder(tmp_path, ["x.npy,S,,,fist,500,unknown2,4,mV", "y.npy,S,,,fist,500,unknown2,,mV"],
                   header=HEADER + ",repetition,units")
    _npy(root, "x.npy", ch=2)
    _npy(root, "y.npy", ch=2)
    recs = list(read_manifest(root))
    assert [int(r.repetition[0]) for r in recs] == [4, 5] and recs[0].units == "mV"
    assert recs[0].gesture_keys == ("my-data:fist",)


def test_repetitions_number_on_across_sessions_without_a_column(tmp_path):
    """Without a repetition column, a subject's rows of one gesture are numbered in time order across
    its sessions (session_order, then row order), not restarting in each session."""
    root = _folder(tmp_path, [
        "d1a.npy,S,day1,a,fist,200,unknown2",
        "d1b.npy,S,day1,b,rest,200,unknown2",
        "d1c.npy,S,day1,c,fist,200,unknown2",
        "d2a.npy,S,day2,a,fist,200,unknown2",
        "d2b.npy,S,day2,b,rest,200,unknown2",
        "d1d.npy,S,day1,d,fist,200,unknown2",  # listed late, but day1 comes first (session_order 0)
        "t1.npy,T,day1,a,fist,200,unknown2",
    ])
    for f in ("d1a", "d1b", "d1c", "d2a", "d2b", "d1d", "t1"):
        _npy(root, f"{f}.npy", ch=2)
    recs = list(read_manifest(root))
    got = [(r.subject[-1], r.session, r.order, r.label_names[r.labels[0]], int(r.repetition[0])) for r in recs]
    assert got == [("S", "day1", 0, "fist", 0), ("S", "day1", 1, "rest", 0), ("S", "day1", 2, "fist", 1),
                   ("S", "day1", 3, "fist", 2), ("S", "day2", 0, "fist", 3), ("S", "day2", 1, "rest", 1),
                   ("T", "day1", 0, "fist", 0)]
    seq: dict[tuple[str, int], list[int]] = {}
    for r in sorted(recs, key=lambda r: (r.subject, r.session_order, r.order)):
        seq.setdefault((r.subject, int(r.labels[0])), []).append(int(r.repetition[0]))
    assert all(v == list(range(len(v))) for v in seq.values())


def test_repetition_column_values_are_kept_across_sessions(tmp_path):
    root = _folder(tmp_path, [
        "a.npy,S,day1,a,fist,200,unknown2,0",
        "b.npy,S,day1,b,fist,200,unknown2,1",
        "c.npy,S,day2,a,fist,200,unknown2,0",  # the user restarts per session: kept as given
        "d.npy,S,day2,b,fist,200,unknown2,",  # empty cell: next after the largest so far (1) -> 2
    ], header=HEADER + ",repetition")
    for f in "abcd":
        _npy(root, f"{f}.npy", ch=2)
    assert [int(r.repetition[0]) for r in read_manifest(root)] == [0, 1, 0, 2]


@pytest.mark.parametrize("case,match", [
    ("missing_file", "file not found"),
    ("channels", "8 channels"),
    ("nan", "finite"),
    ("bad_fs", "positive"),
    ("bad_layout", "layout"),
    ("truncated_npy", "readable"),
    ("one_d", "2-D"),
    ("duplicate_trial", "unique"),
    ("bad_rep", "repetition"),
])
def test_errors_name_row_and_file(tmp_path, case, match):
    rows = ["ok.npy,S,,t0,rest,200,myo8", "bad.npy,S,,t1,rest,200,myo8"]
    header = HEADER
    if case == "bad_fs":
        rows[1] = "bad.npy,S,,t1,rest,-3,myo8"
    elif case == "bad_layout":
        rows[1] = "bad.npy,S,,t1,rest,200,nolayout.json"
    elif case == "duplicate_trial":
        rows[1] = "bad.npy,S,,t0,rest,200,myo8"
    elif case == "bad_rep":
        header = HEADER + ",repetition"
        rows = [r + ",0" for r in rows[:1]] + ["bad.npy,S,,t1,rest,200,myo8,x"]
    root = _folder(tmp_path, rows, header=header)
    _npy(root, "ok.npy")
    if case != "missing_file":
        _npy(root, "bad.npy", ch=6 if case == "channels" else 8)
    if case == "nan":
        arr = np.load(root / "bad.npy")
        arr[3, 1] = np.nan
        np.save(root / "bad.npy", arr)
    elif case == "truncated_npy":
        data = (root / "bad.npy").read_bytes()
        (root / "bad.npy").write_bytes(data[:100])
    elif case == "one_d":
        np.save(root / "bad.npy", np.zeros(10))
    with pytest.raises(DataFormatError, match=match) as err:
        list(read_manifest(root))
    msg = str(err.value)
    assert "row 3" in msg and "bad.npy" in msg


def test_manifest_problems(tmp_path):
    with pytest.raises(DataFormatError, match="manifest.csv"):
        list(read_manifest(tmp_path))
    root = _folder(tmp_path, ["a.npy,S,,,rest,200"], header="file,subject,session,trial,gesture,fs")
    with pytest.raises(DataFormatError, match="missing layout"):
        list(read_manifest(root))
    root2 = _folder(tmp_path, [], name="empty")
    with pytest.raises(DataFormatError, match="at least one row"):
        list(read_manifest(root2))
