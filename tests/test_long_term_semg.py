"""The long-term-semg reader on ALL of ``../shared/data/long-term-semg`` (counts from its facts file),
its errors on damaged copies, and prepare -> info -> tokenize end to end on the real files."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import main
from aemg.datasets import get_reader
from aemg.datasets.long_term_semg import GESTURES, KEYS, POSITIONS
from aemg.errors import DataFormatError

SUBJECTS = [f"long-term-semg/all/sub{i}" for i in range(1, 5)]


@pytest.fixture(scope="session")
def lts_root(real_root: Path) -> Path:
    root = real_root / "long-term-semg"
    assert root.is_dir(), f"real data folder not found: {root}"
    return root


@pytest.fixture(scope="session")
def lts_recordings(lts_root: Path) -> list:
    """Every recording of the real subset, read once per test session."""
    return list(get_reader("long-term-semg").read(lts_root))


def test_counts_match_the_facts_file(lts_recordings, lts_root):
    recs = lts_recordings
    assert len(recs) == 1056  # 4 subjects x 3 days x 22 motions x 4 trials
    assert len(get_reader("long-term-semg").files(lts_root)) == 1056
    assert sorted({r.subject for r in recs}) == SUBJECTS
    per_session = Counter((r.subject, r.session) for r in recs)
    assert set(per_session.values()) == {88} and len(per_session) == 12
    assert all(r.signal.shape == (8, 300) and r.signal.dtype == np.float32 for r in recs)
    assert {r.fs for r in recs} == {200.0} and {r.units for r in recs} == {"myo/128"}
    assert all(r.labels is not None and (r.labels == r.labels[0]).all() for r in recs)
    assert Counter(int(r.labels[0]) for r in recs) == {m: 48 for m in range(22)}
    # bytes per subject-day of the facts file add up to the files read
    total = sum((lts_root / r.source_file).stat().st_size for r in recs)
    assert total == 23_312_443
    assert {r.source_file.split("/")[0] for r in recs} == {"data"}


def test_values_units_and_exponent_notation(lts_recordings, lts_root):
    allv = np.concatenate([r.signal for r in lts_recordings], axis=1)
    assert allv.min() == pytest.approx(-1.4447, abs=1e-4) and allv.max() == pytest.approx(1.4379, abs=1e-4)
    assert float(allv.std()) == pytest.approx(0.204, abs=0.002)
    assert np.isfinite(allv).all() and not (allv == 0).any()  # no exact zero in the subset
    text = (lts_root / "data/sub1/day1/D1M1T1.csv").read_text()
    rec = next(r for r in lts_recordings if r.recording_id == "long-term-semg/all/sub1/day1/D1M1T1")
    first = np.array([float(v) for v in text.splitlines()[0].split(",")], dtype=np.float32)
    assert np.array_equal(rec.signal[:, 0], first)
    small = [r for r in lts_recordings if (np.abs(r.signal) < 1e-4).any()]
    assert small  # exponent notation (e.g. -1.1306e-05) parses


def test_subject_session_motion_trial_from_the_path(lts_recordings):
    recs = lts_recordings
    sub1 = [r for r in recs if r.subject == SUBJECTS[0]]
    assert [r.session for r in sub1[::88]] == ["day1", "day2", "day3"]
    assert [r.session_order for r in sub1[::88]] == [0, 1, 2]
    day1 = sub1[:88]
    assert [r.order for r in day1] == list(range(88))
    # numbers parsed: M2 comes right after M1, M10 after M9 (a lexical sort would put M10 first)
    names = [Path(r.source_file).stem for r in day1]
    assert names[:6] == ["D1M1T1", "D1M1T2", "D1M1T3", "D1M1T4", "D1M2T1", "D1M2T2"]
    assert names.index("D1M10T1") == 36 and names.index("D1M2T1") == 4
    for r in day1:
        stem = Path(r.source_file).stem
        m, t = int(stem.split("M")[1].split("T")[0]), int(stem.split("T")[1])
        assert int(r.labels[0]) == m - 1 and r.attrs["file_repetition"] == t and r.attrs["day"] == 1
    assert GESTURES[0] == "rest" and GESTURES[1] == "wrist flexion" and GESTURES[7] == "hand close"
    assert len(GESTURES) == 22 and len(set(GESTURES)) == 22


def test_motion_names_map_onto_the_vocabulary(lts_recordings):
    assert KEYS[:8] == ("rest", "wrist_flexion", "wrist_extension", "radial_deviation", "ulnar_deviation",
                        "pronation", "supination", "hand_close")
    assert all(k.startswith("long-term-semg:") for k in KEYS[8:])
    assert KEYS[8] == "long-term-semg:wrist flexion + pronation"
    assert KEYS[21] == "long-term-semg:supination + hand close"
    assert "hand_open" not in KEYS and len(set(KEYS)) == 22
    assert all(r.gesture_keys == KEYS for r in lts_recordings)


def test_armband_position_per_session_from_the_schedule(lts_recordings):
    assert len(POSITIONS) == 30 and Counter(POSITIONS) == {"N": 10, "I": 10, "O": 10}
    assert POSITIONS[:10] == "NIONIIOONN" and POSITIONS[20:] == "OIOIINNINO"
    pos = {(r.subject, r.session): r.attrs["armband_position"] for r in lts_recordings}
    for s in SUBJECTS:
        assert (pos[(s, "day1")], pos[(s, "day2")], pos[(s, "day3")]) == ("N", "I", "O")


def test_repetitions_are_chronological_across_sessions(lts_recordings):
    reps: dict[tuple[str, int], list[int]] = {}
    for r in lts_recordings:
        assert (r.repetition == r.repetition[0]).all()
        reps.setdefault((r.subject, int(r.labels[0])), []).append(int(r.repetition[0]))
    assert all(v == list(range(12)) for v in reps.values())  # day1 0-3, day2 4-7, day3 8-11


def test_partial_download_is_reported_once(lts_root, caplog):
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.long_term_semg"):
        list(get_reader("long-term-semg")._sessions(lts_root))
    msgs = [r.getMessage() for r in caplog.records]
    assert any("1 subjects absent" in m and "sub5" in m for m in msgs)
    assert any("108 sessions absent" in m and "sub1/day4" in m for m in msgs)
    assert len(msgs) == 2


def _copy_day(lts_root: Path, dst: Path) -> Path:
    day = dst / "data" / "sub1" / "day1"
    shutil.copytree(lts_root / "data" / "sub1" / "day1", day)
    return day


def _raises(root: Path, needle: str, what: str) -> None:
    with pytest.raises(DataFormatError) as exc:
        list(get_reader("long-term-semg").read(root))
    msg = str(exc.value)
    assert needle in msg and what in msg, msg


def test_clear_errors_on_damaged_copies(lts_root, tmp_path):
    ok = tmp_path / "ok"
    _copy_day(lts_root, ok)
    assert len(list(get_reader("long-term-semg").read(ok))) == 88
    assert len(list(get_reader("long-term-semg").read(ok / "data"))) == 88  # root given as data/ itself

    d = _copy_day(lts_root, tmp_path / "missing")
    (d / "D1M17T3.csv").unlink()
    _raises(tmp_path / "missing", "D1M17T3.csv", "file missing")

    d = _copy_day(lts_root, tmp_path / "trunc")
    lines = (d / "D1M5T2.csv").read_text().splitlines()
    (d / "D1M5T2.csv").write_text("\n".join(lines[:-1] + [lines[-1].rsplit(",", 2)[0]]) + "\n")
    _raises(tmp_path / "trunc", "D1M5T2.csv", "columns")

    d = _copy_day(lts_root, tmp_path / "short")
    (d / "D1M5T2.csv").write_text("\n".join(lines[:200]) + "\n")
    _raises(tmp_path / "short", "D1M5T2.csv", "300 rows")

    d = _copy_day(lts_root, tmp_path / "counts")
    (d / "D1M3T1.csv").write_text("\n".join(",".join(["100"] * 8) for _ in range(300)) + "\n")
    _raises(tmp_path / "counts", "D1M3T1.csv", "normalised Myo units")

    d = _copy_day(lts_root, tmp_path / "motion")
    shutil.copy(d / "D1M1T1.csv", d / "D1M23T1.csv")
    _raises(tmp_path / "motion", "D1M23T1.csv", "M1..M22")

    d = _copy_day(lts_root, tmp_path / "day")
    (d / "D1M1T1.csv").rename(d / "D2M1T1.csv")
    _raises(tmp_path / "day", "D2M1T1.csv", "D1 in the file name")

    d = _copy_day(lts_root, tmp_path / "nan")
    (d / "D1M4T4.csv").write_text("\n".join(lines[:10] + ["nan," + lines[10].split(",", 1)[1]] + lines[11:]) + "\n")
    _raises(tmp_path / "nan", "D1M4T4.csv", "NaN")

    (tmp_path / "empty").mkdir()
    _raises(tmp_path / "empty", "empty", "sub<s>/day<d>")


@pytest.mark.slow
def test_prepare_info_tokenize_end_to_end(lts_root, tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["prepare", "long-term-semg", "--root", str(lts_root), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_subjects"] == 4 and info["n_sessions"] == 12 and info["n_recordings"] == 1056
    assert info["n_trials"] == 1056

    from aemg.corpus import Corpus

    c = Corpus(out)
    assert c.provenance["duplicates"] == []  # all 1056 files differ
    # the armband position reaches the index: one value per session, splittable without loading
    pos = c.recordings["recording_attrs"].str.get("armband_position")
    assert Counter(pos) == {"N": 352, "I": 352, "O": 352}
    by_session = dict(zip(c.recordings["session"], pos))
    assert by_session == {"day1": "N", "day2": "I", "day3": "O"}
    assert c.load(c.recording_ids[100]).attrs["armband_position"] == pos.iloc[100]
    # one scale per session (never per file), positive on every channel
    assert len(c.sessions) == 12 and all(len(s) == 8 and min(s) > 0 for s in c.sessions["scale"])

    assert main(["tokenize", str(out), "--json"]) == 0
    tok = json.loads(capsys.readouterr().out)
    assert tok["n_trials"] == 1056 and tok["n_gesture_trials"] == 1008 and tok["n_rest_trials"] == 48
    assert tok["coverage"] >= 0.9 and tok["coverage_any"] >= 0.97  # figures in docs/datasets.md
    assert tok["rest_events_per_minute"] <= 1.5 and tok["rest_hit_fraction"] <= 0.1
