"""``aemg prepare``, ``aemg import`` and ``aemg info`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aemg.cli import main


@pytest.mark.parametrize("command, words", [
    ("prepare", ["DATASET", "--root", "--out", "--fs", "--keep-duplicates", "--overwrite", "example"]),
    ("import", ["MANIFEST_DIR", "manifest.csv", "--out", "--fs", "example"]),
    ("info", ["CORPUS_DIR", "--json", "trials_per_gesture"]),
])
def test_help_documents_every_option(command, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for w in words:
        assert w in text, (command, w)


@pytest.mark.slow
def test_import_then_info_json_keeps_stdout_clean(tiny_dataset, tmp_path: Path):
    raw = tiny_dataset(duplicate=True)
    out = tmp_path / "corpus"
    # a real process: progress bars and warnings must stay on stderr
    done = subprocess.run([sys.executable, "-m", "aemg", "import", str(raw), "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert "harmonize" in done.stderr and "identical" in done.stderr
    assert summary["n_subjects"] == 3 and summary["dropped_duplicates"] == 6
    info = subprocess.run([sys.executable, "-m", "aemg", "info", str(out), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0, info.stderr
    s = json.loads(info.stdout)
    assert s["subjects"] == ["generic/tiny/S0", "generic/tiny/S1", "generic/tiny/S2"]
    assert s["n_trials"] == 36 and s["fs"] == 200.0 and s["hours"] > 0
    assert s["trials_per_gesture"] == {"hand_close": 12, "rest": 12, "tiny:wave": 12}


def test_info_human_summary_and_keep_duplicates(tiny_dataset, tmp_path: Path, capsys):
    raw = tiny_dataset(duplicate=True, n_subjects=1, sessions=("s1",))
    assert main(["import", str(raw), "--out", str(tmp_path / "c"), "--keep-duplicates", "--no-progress",
                 "--fs", "100"]) == 0
    assert "2 subjects" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    for w in ("subjects  2", "100 Hz", "trials per gesture", "hand_close", "dropped   0"):
        assert w in text, w


def test_errors_are_one_line_naming_the_file(tiny_dataset, tmp_path: Path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    raw = tiny_dataset(n_subjects=1, sessions=("s1",))
    cases = [
        (["info", str(tmp_path / "absent")], "absent"),
        (["info", str(foreign)], "mine"),
        (["import", str(raw), "--out", str(foreign), "--no-progress"], "mine"),
        (["import", str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress"], "manifest.csv"),
        (["prepare", "3dc", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2"), "--no-progress"],
         "nowhere"),
        (["prepare", "no-such-set", "--root", str(raw), "--out", str(tmp_path / "o3")], "no-such-set"),
    ]
    for argv, name in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0] and "error" in err[0], (argv, err)
    assert (foreign / "keep.txt").read_text() == "x"


def test_bad_raw_files_get_one_line_errors_naming_the_file_and_what_was_expected(tiny_dataset, real_root: Path,
                                                                               tmp_path: Path, capsys):
    import csv
    import shutil

    import numpy as np

    def broken(edit) -> Path:
        raw = tiny_dataset(n_subjects=1, sessions=("s1",))
        edit(raw)
        return raw

    def set_cell(raw: Path, column: str, value: str) -> None:
        rows = list(csv.DictReader(open(raw / "manifest.csv")))
        rows[1][column] = value
        with open(raw / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    def nan_in(path: Path) -> None:
        x = np.load(path)
        x[5, 1] = np.nan
        np.save(path, x)

    # a real dataset copied with one NaN sample, as a user's damaged download would be
    p1 = tmp_path / "3dc-copy" / "Participant1"
    shutil.copytree(real_root / "3dc" / "Participant1", p1)
    damaged = p1 / "train" / "EMG" / "3dc_EMG_gesture_0_0.txt"
    lines = damaged.read_text().split("\n")
    lines[3] = "nan," + lines[3].split(",", 1)[1]
    damaged.write_text("\n".join(lines))
    cases = [
        (broken(lambda r: (r / "S0_s1_rest_0.npy").unlink()), "S0_s1_rest_0.npy", "not found"),
        (broken(lambda r: nan_in(r / "S0_s1_rest_0.npy")), "S0_s1_rest_0.npy", "finite"),
        (broken(lambda r: set_cell(r, "layout", "myo9")), "myo9", "layout"),
        (broken(lambda r: set_cell(r, "fs", "fast")), "manifest.csv", "fs"),
    ]
    for i, (raw, name, what) in enumerate(cases):
        assert main(["import", str(raw), "--out", str(tmp_path / f"o{i}"), "--no-progress"]) == 1, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0] and what in err[0] and "expected" in err[0], err
    assert main(["--log-level", "ERROR", "prepare", "3dc", "--root", str(p1.parent), "--out", str(tmp_path / "o3dc"),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3dc_EMG_gesture_0_0.txt" in err[0] and "finite" in err[0], err
    assert "row 4" in err[0]


def test_ctrl_c_during_prepare_is_one_line_and_a_rerun_finishes(tiny_dataset, tmp_path: Path, capsys, monkeypatch):
    from aemg.corpus import pipeline

    def interrupt(n_written, h5_file):
        raise KeyboardInterrupt

    raw, out = tiny_dataset(n_subjects=2, sessions=("s1",)), tmp_path / "c"
    monkeypatch.setattr(pipeline, "_session_done", interrupt)
    assert main(["import", str(raw), "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0] and "again" in err[0], err
    assert main(["info", str(out)]) == 1 and "interrupted" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["import", str(raw), "--out", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_subjects"] == 2


@pytest.mark.slow
def test_info_on_a_real_corpus(corpus_cote_allard, capsys):
    assert main(["info", str(corpus_cote_allard.path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_subjects"] == 5 and s["dropped_duplicates"] == 84 and s["n_trials"] == 308
    assert s["trials_per_gesture"] == {k: 44 for k in ("hand_close", "hand_open", "radial_deviation", "rest",
                                                       "ulnar_deviation", "wrist_extension", "wrist_flexion")}
    assert s["channels"] == [8] and s["layouts"] == ["myo8"] and s["fs"] == 200.0
    assert s["mains_hz"] == [60.0] and s["mains_sources"] == {"declared": 11}  # the Myo shows no mains line
    assert main(["info", str(corpus_cote_allard.path)]) == 0
    text = capsys.readouterr().out
    assert "mains     60 Hz (sessions: 11 declared)" in text
    assert "cote-allard/pretraining/Male0 training0 channel 1: saturated" in text  # channel QC is reported
