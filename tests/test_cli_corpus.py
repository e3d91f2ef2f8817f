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


def test_info_on_a_real_corpus(corpus_cote_allard, capsys):
    assert main(["info", str(corpus_cote_allard.path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_subjects"] == 5 and s["dropped_duplicates"] == 84 and s["n_trials"] == 308
    assert s["trials_per_gesture"] == {k: 44 for k in ("hand_close", "hand_open", "radial_deviation", "rest",
                                                       "ulnar_deviation", "wrist_extension", "wrist_flexion")}
    assert s["channels"] == [8] and s["layouts"] == ["myo8"] and s["fs"] == 200.0
