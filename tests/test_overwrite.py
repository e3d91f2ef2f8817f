"""Issue 9 (A): no command ever deletes what aemg did not write (simulate, prepare and import --overwrite)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import main
from aemg.corpus import Corpus, import_manifest, pipeline
from aemg.errors import DataFormatError
from aemg.simulate import simulate_dataset, writer


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _siblings(out: Path) -> list[Path]:
    """Temporary build folders left beside ``out``."""
    return sorted(out.parent.glob(f".{out.name}.building-*"))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---------------------------------------------------------------------------------------- simulate

SIM = ["--subjects", "1", "--reps", "1", "--gestures", "rest,hand_open", "--no-progress"]


def test_simulate_overwrite_refuses_a_user_import_folder(tiny_dataset, capsys):
    user = tiny_dataset(n_subjects=1, sessions=("s1",))
    before = _snapshot(user)
    assert main(["simulate", "--out", str(user), "--overwrite", *SIM]) == 1
    line = _one_error_line(capsys)
    assert str(user) in line and "simulation.json" in line and "expected" in line, line
    assert _snapshot(user) == before  # not one file removed or replaced
    with pytest.raises(FileExistsError, match="not an aemg simulation"):
        simulate_dataset(user, n_subjects=1, reps=1, overwrite=True, progress=False)
    assert _snapshot(user) == before
    # a simulation.json that aemg did not write is no proof either
    (user / "simulation.json").write_text(json.dumps({"seed": 1}))
    assert main(["simulate", "--out", str(user), "--overwrite", *SIM]) == 1
    assert "simulation.json" in _one_error_line(capsys)
    (user / "simulation.json").write_text("[not json")
    assert main(["simulate", "--out", str(user), "--overwrite", *SIM]) == 1
    assert "simulation.json" in _one_error_line(capsys)
    assert {k: v for k, v in _snapshot(user).items() if k != "simulation.json"} == before


def test_simulate_overwrite_removes_only_the_files_the_simulation_wrote(tmp_path: Path):
    out = tmp_path / "sim"
    simulate_dataset(out, n_subjects=2, reps=1, gestures=("rest", "hand_open"), progress=False)
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["generator"] == "aemg simulate" and len(meta["files"]) == 4
    assert sorted(meta["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*.npy"))
    # the user adds a recording of their own to the folder and its manifest, and a note
    np.save(out / "S02" / "mine.npy", np.zeros((10, 8), np.float32))
    with (out / "manifest.csv").open("a") as f:
        f.write("S02/mine.npy,S02,session1,x,rest,1000,myo8,,uV\n")
    (out / "notes.txt").write_text("mine")
    simulate_dataset(out, n_subjects=1, reps=1, gestures=("rest", "hand_open"), seed=3, overwrite=True,
                     progress=False)
    assert (out / "S02" / "mine.npy").is_file() and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (out / "S02").iterdir()) == ["mine.npy"]  # S02's simulated files removed
    with (out / "manifest.csv").open() as f:
        assert [r["file"] for r in csv.DictReader(f)] == json.loads((out / "simulation.json").read_text())["files"]


def test_an_interrupted_simulation_can_be_overwritten(tmp_path: Path, monkeypatch):
    out = tmp_path / "sim"
    real = writer.simulate_subject
    calls = []

    def dies_on_the_second_subject(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(writer, "simulate_subject", dies_on_the_second_subject)
    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(out, n_subjects=2, reps=1, gestures=("rest", "hand_open"), progress=False)
    monkeypatch.undo()
    assert list(out.rglob("*.npy")) and not (out / "manifest.csv").exists()
    (out / "notes.txt").write_text("mine")
    simulate_dataset(out, n_subjects=1, reps=1, gestures=("rest", "hand_open"), overwrite=True, progress=False)
    fresh = tmp_path / "fresh"
    simulate_dataset(fresh, n_subjects=1, reps=1, gestures=("rest", "hand_open"), progress=False)
    assert _snapshot(out) == {**_snapshot(fresh), "notes.txt": b"mine"}  # byte-identical, the note kept


# ---------------------------------------------------------------------------------------- prepare / import

def test_overwrite_keeps_the_users_files_inside_the_corpus(tiny_dataset, tmp_path: Path, capsys):
    raw = tiny_dataset(n_subjects=2, sessions=("s1",))
    out = tmp_path / "c"
    old = import_manifest(raw, out, progress=False)
    mine = {out / "notes.txt": b"mine", out / "index" / "my_split.csv": b"a,b\n",
            out / "subjects" / "mine.h5": b"not an aemg file", out / "tokens" / "README": b"my words"}
    for p, data in mine.items():
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
    assert main(["import", str(raw), "--out", str(out), "--fs", "100", "--overwrite", "--no-progress"]) == 0
    new = Corpus(out)
    assert new.fs == 100.0 and new.provenance["hash"] != old.provenance["hash"]
    assert all(p.read_bytes() == data for p, data in mine.items())
    assert not _siblings(out)
    fresh = import_manifest(raw, tmp_path / "fresh", fs=100.0, progress=False)
    assert {k: v for k, v in _snapshot(out).items() if out / k not in mine and k != "provenance.json"} == \
        {k: v for k, v in _snapshot(fresh.path).items() if k != "provenance.json"}
    # with fewer sessions, the old session files not planned any more are removed, the user's kept
    raw1 = tiny_dataset(n_subjects=1, sessions=("s1",))
    import_manifest(raw1, out, fs=50.0, progress=False, overwrite=True)
    assert len(list(out.rglob("*.h5"))) == 2 and all(p.read_bytes() == data for p, data in mine.items())


def test_a_failed_overwrite_leaves_the_old_corpus_intact(tiny_dataset, tmp_path: Path, capsys, monkeypatch):
    raw = tiny_dataset(n_subjects=2, sessions=("s1", "s2"))
    out = tmp_path / "c"
    import_manifest(raw, out, progress=False)
    before = _snapshot(out)
    damaged = sorted(raw.glob("S1_s2_*.npy"))[0]
    good = damaged.read_bytes()
    damaged.write_bytes(good[:100])  # a truncated input file, read after sessions of S0 are written
    for extra in (["--fs", "100", "--overwrite"], [], ["--overwrite"]):  # another build, a rerun, a forced one
        assert main(["import", str(raw), "--out", str(out), "--no-progress", *extra]) == 1
        assert damaged.name in _one_error_line(capsys)
        assert _snapshot(out) == before and not _siblings(out)
        assert len(Corpus(out).load(Corpus(out).recording_ids[0]).signal)
    damaged.write_bytes(good)

    class Boom(RuntimeError):
        pass

    def interrupt(n_written, h5_file):
        if n_written == 2:
            raise Boom("killed")

    monkeypatch.setattr(pipeline, "_session_done", interrupt)
    with pytest.raises(Boom):
        import_manifest(raw, out, fs=100.0, overwrite=True, progress=False)
    monkeypatch.undo()
    assert _snapshot(out) == before and not _siblings(out)
    assert Corpus(out).fs == 200.0
    # a build killed with -9 leaves its temporary folder: the next run removes it
    left = out.parent / f".{out.name}.building-dead"
    left.mkdir()
    (left / pipeline.MARKER).write_text("{}")
    (left / "subjects").mkdir()
    (left / "subjects" / "x.h5").write_bytes(b"half")
    assert import_manifest(raw, out, fs=100.0, overwrite=True, progress=False).fs == 100.0
    assert not _siblings(out)


def test_an_interrupted_swap_is_untrusted_and_a_rerun_finishes(tiny_dataset, tmp_path: Path, monkeypatch):
    raw = tiny_dataset(n_subjects=2, sessions=("s1",))
    out = tmp_path / "c"
    import_manifest(raw, out, progress=False)
    (out / "notes.txt").write_text("mine")
    real = pipeline._move_file
    moved = []

    def dies_midway(src: Path, dst: Path) -> None:
        moved.append(dst)
        if len(moved) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(pipeline, "_move_file", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        import_manifest(raw, out, fs=100.0, overwrite=True, progress=False)
    monkeypatch.undo()
    with pytest.raises(DataFormatError, match="interrupted"):
        Corpus(out)
    again = import_manifest(raw, out, fs=100.0, overwrite=True, progress=False)
    fresh = import_manifest(raw, tmp_path / "fresh", fs=100.0, progress=False)
    assert (out / "notes.txt").read_text() == "mine" and not _siblings(out)
    assert again.provenance["hash"] == fresh.provenance["hash"]
    assert {k: v for k, v in _snapshot(out).items() if k not in ("provenance.json", "notes.txt")} == \
        {k: v for k, v in _snapshot(fresh.path).items() if k != "provenance.json"}


def test_a_user_file_where_the_new_corpus_writes_is_refused(tiny_dataset, tmp_path: Path):
    out = tmp_path / "c"
    import_manifest(tiny_dataset(n_subjects=1, sessions=("s1",)), out, progress=False)
    before = _snapshot(out)
    raw2 = tiny_dataset(n_subjects=2, sessions=("s1",))
    new_rel = [p for p in pipeline.session_paths([("generic/tiny/S0", "s1"), ("generic/tiny/S1", "s1")]).values()
               if not (out / p).exists()][0]
    (out / new_rel).parent.mkdir(parents=True)
    (out / new_rel).write_bytes(b"the user's own file")
    with pytest.raises(FileExistsError, match="not written by"):
        import_manifest(raw2, out, fs=100.0, overwrite=True, progress=False)
    assert (out / new_rel).read_bytes() == b"the user's own file"
    assert {k: v for k, v in _snapshot(out).items() if k != new_rel} == before and not _siblings(out)
    assert Corpus(out).fs == 200.0


def test_an_input_inside_the_output_folder_is_refused_before_anything_is_touched(tiny_dataset, tmp_path: Path,
                                                                                 capsys):
    raw = tiny_dataset(n_subjects=1, sessions=("s1",))
    before = _snapshot(raw)
    # --out is the manifest folder itself
    assert main(["import", str(raw), "--out", str(raw), "--overwrite", "--no-progress"]) == 1
    assert "raw data" in _one_error_line(capsys) and _snapshot(raw) == before
    # a manifest (elsewhere) whose files lie inside the corpus folder
    out = tmp_path / "c"
    import_manifest(raw, out, progress=False)
    corpus_before = _snapshot(out)
    inner = out / "mine"
    inner.mkdir()
    np.save(inner / "x.npy", np.zeros((1500, 4), np.float32))
    corpus_before = _snapshot(out)
    elsewhere = tmp_path / "m" / "tiny"
    elsewhere.mkdir(parents=True)
    text = (raw / "manifest.csv").read_text().splitlines()
    first = text[1].split(",")
    first[0] = str(inner / "x.npy")
    (elsewhere / "manifest.csv").write_text("\n".join([text[0], ",".join(first)]) + "\n")
    for extra in ([], ["--overwrite"], ["--overwrite", "--fs", "100"]):
        assert main(["import", str(elsewhere), "--out", str(out), "--no-progress", *extra]) == 1
        line = _one_error_line(capsys)
        assert "x.npy" in line and "inside" in line, line
        assert _snapshot(out) == corpus_before and not (out / pipeline.MARKER).exists()
    # a relative path climbing into the corpus folder is the same file
    first[0] = "../../c/mine/x.npy"
    (elsewhere / "manifest.csv").write_text("\n".join([text[0], ",".join(first)]) + "\n")
    assert main(["import", str(elsewhere), "--out", str(out), "--no-progress", "--overwrite"]) == 1
    assert "x.npy" in _one_error_line(capsys) and _snapshot(out) == corpus_before


def test_a_simulation_from_before_files_were_listed_is_still_replaced(tmp_path: Path):
    out = tmp_path / "sim"
    simulate_dataset(out, n_subjects=1, reps=1, gestures=("rest", "hand_open"), progress=False)
    meta = json.loads((out / "simulation.json").read_text())
    del meta["files"]
    (out / "simulation.json").write_text(json.dumps(meta))
    np.save(out / "S01" / "mine.npy", np.zeros((10, 8), np.float32))
    with (out / "manifest.csv").open("a") as f:
        f.write("S01/mine.npy,S01,session1,x,rest,1000,myo8,,uV\n")
    simulate_dataset(out, n_subjects=1, reps=1, gestures=("rest", "hand_open"), seed=2, overwrite=True,
                     progress=False)
    assert (out / "S01" / "mine.npy").is_file() and len(list(out.rglob("*.npy"))) == 3
