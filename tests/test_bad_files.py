"""(E) Bad files do not stop the world when the user says so.

Stray files (not named like a dataset file) are skipped with one warning naming them, by the one
rule of :func:`aemg.datasets._common.list_files`; a damaged file stops a read unless ``skip_bad``
(``--skip-bad``), which skips it, reads the rest, and records it with its reason (``BadFiles``,
provenance ``skipped``); the generic importer warns on likely slips and keeps its paths inside the
manifest folder unless ``allow_outside``. Real readers are tested on copies of real files, the
others on fixture layouts.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aemg.cli import main
from aemg.datasets import get_reader
from aemg.datasets._common import BadFiles, is_stray_name
from aemg.datasets.generic import GenericReader, read_manifest
from aemg.datasets.mcs_emg import McsEmgReader, McsTiming
from aemg.errors import DataFormatError

# dataset -> (folder copied from the real data, where it goes below the copy's root, a file to damage)
REAL = {
    "ciil": ("ciil/ElectrodeShift/subject0/trial_1", "ElectrodeShift/subject0/trial_1", "R_1_C_3.csv"),
    "cote-allard": ("cote-allard/EvaluationDataset/Female1/Test0", "EvaluationDataset/Female1/Test0", "classe_5.dat"),
    "3dc": ("3dc/Participant1/train/EMG", "Participant1/train/EMG", "3dc_EMG_gesture_1_3.txt"),
    "long-term-semg": ("long-term-semg/data/sub1/day1", "sub1/day1", "D1M2T3.csv"),
    "uci-gestures": ("uci-gestures/EMG_data_for_gestures-master/01", "01", "2_raw_data_13-13_22.03.16.txt"),
}


def _copy(real_root: Path, root: Path, name: str) -> Path:
    """A copy of one real folder of ``name`` below ``root`` (UCI files cut to 3000 lines); its path."""
    src, rel, _ = REAL[name]
    dst = root / rel
    if name == "uci-gestures":
        dst.mkdir(parents=True)
        for f in sorted((real_root / src).glob("*.txt")):
            with open(f, "rb") as fh:
                (dst / f.name).write_bytes(b"".join(fh.readline() for _ in range(3000)))
    else:
        shutil.copytree(real_root / src, dst)
    return dst


def _strays(folder: Path, like: str) -> list[str]:
    """Write the stray files of a folder whose dataset files are named like ``like``; their names.

    The look-alikes hold a real file's bytes: read, they would add (or duplicate) recordings."""
    stem, suffix = like.rsplit(".", 1)
    data = (folder / like).read_bytes()
    names = {f"._{like}": data, f"{stem} (1).{suffix}": data, f"{like}~": data, f"{stem} - Copy.{suffix}": data,
             "notes.txt": b"my notes\n", "Thumbs.db": b"\x00\x01", ".DS_Store": b"\x00\x00\x00\x01Bud1"}
    for n, b in names.items():
        (folder / n).write_bytes(b)
    return sorted(names)


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and word in r.getMessage()]


def test_stray_names():
    for n in ("._R_0_C_0.csv", ".DS_Store", "Thumbs.db", "desktop.ini", "R_0_C_0.csv~", "x.csv.bak", ".x.swp",
              "R_0_C_0 (1).csv", "R_0_C_0 - Copy.csv", "p1 copy.mat"):
        assert is_stray_name(n), n
    for n in ("R_0_C_0.csv", "classe_1.dat", "D1M1T1.csv", "1_raw_data_13-12_22.03.16.txt", "S1_E1_A1.mat",
              "participant1.mat", "0.txt", "user1.json"):
        assert not is_stray_name(n), n


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reader_skips_stray_files_with_one_warning_naming_them(real_root, tmp_path, caplog, name):
    _copy(real_root, tmp_path / "clean", name)
    folder = _copy(real_root, tmp_path / "dirty", name)
    strays = _strays(folder, REAL[name][2])
    reader = get_reader(name)
    clean = list(reader.read(tmp_path / "clean"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        files = reader.files(tmp_path / "dirty")
    assert not _warnings(caplog, "stray file(s)")  # files() lists silently; read() reports
    assert [p.relative_to(tmp_path / "dirty") for p in files] == \
        [p.relative_to(tmp_path / "clean") for p in reader.files(tmp_path / "clean")]
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path / "dirty"))
    assert [r.recording_id for r in recs] == [r.recording_id for r in clean]
    assert all(np.array_equal(a.signal, b.signal) for a, b in zip(recs, clean))
    (msg,) = _warnings(caplog, "stray file(s)")
    assert f"{len(strays)} stray file(s)" in msg and name in msg
    for s in strays:
        assert f"{REAL[name][1]}/{s}" in msg, (s, msg)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reader_damaged_file_fails_fast_or_is_skipped(real_root, tmp_path, name):
    folder = _copy(real_root, tmp_path, name)
    reader = get_reader(name)
    n_clean = len(list(reader.read(tmp_path)))
    damaged = folder / REAL[name][2]
    damaged.write_bytes(b"abc\n")  # matches the name pattern: damaged, not stray
    with pytest.raises(DataFormatError) as err:
        list(reader.read(tmp_path))
    assert REAL[name][2] in str(err.value)
    bad = BadFiles(tmp_path, skip_bad=True)
    recs = list(reader.read(tmp_path, bad=bad))
    assert len(recs) == n_clean - 1 and not [r for r in recs if r.source_file.endswith(REAL[name][2])]
    (skipped,) = bad.skipped
    assert skipped["file"] == f"{REAL[name][1]}/{REAL[name][2]}"
    assert skipped["reason"].startswith("expected") and str(tmp_path) not in skipped["reason"]
    assert bad.stray == []


def test_a_file_named_like_a_dataset_file_but_out_of_scheme_is_damaged_not_stray(real_root, tmp_path, caplog):
    folder = _copy(real_root, tmp_path, "ciil")
    shutil.copy(folder / "R_0_C_0.csv", folder / "R_0_C_9.csv")  # class 9 of 5: an error, not a stray
    (folder / "R_1_C_2.csv").unlink()  # missing from the complete set
    reader = get_reader("ciil")
    with pytest.raises(DataFormatError, match="class index 0..4"):
        list(reader.read(tmp_path))
    bad = BadFiles(tmp_path, skip_bad=True)
    with caplog.at_level(logging.WARNING):
        recs = list(reader.read(tmp_path, bad=bad))
    assert len(recs) == 9 and not _warnings(caplog, "stray file(s)")
    got = {s["file"].rsplit("/", 1)[1]: s["reason"] for s in bad.skipped}
    assert set(got) == {"R_0_C_9.csv", "R_1_C_2.csv"}
    assert "class index 0..4" in got["R_0_C_9.csv"] and "file missing" in got["R_1_C_2.csv"]
    # files() under the same record lists the rest and records nothing twice
    assert len(reader.files(tmp_path, bad=bad)) == 9 and len(bad.skipped) == 2


def test_skip_bad_keeps_repetitions_chronological(real_root, tmp_path):
    folder = _copy(real_root, tmp_path, "cote-allard")
    (folder / "classe_12.dat").unlink()
    bad = BadFiles(tmp_path, skip_bad=True)
    recs = list(get_reader("cote-allard").read(tmp_path, bad=bad))
    assert len(recs) == 27 and bad.skipped[0]["reason"].endswith("file missing")
    reps: dict[int, list[int]] = {}
    for r in sorted(recs, key=lambda r: r.order):
        reps.setdefault(int(r.labels[0]), []).append(int(r.repetition[0]))
    assert all(v == sorted(v) and len(set(v)) == len(v) for v in reps.values())


# ------------------------------------------------------------------------------------- fixture readers

def _toro(root: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(0)
    d = root / "subject 1"
    d.mkdir(parents=True)
    for c in range(5):
        (d / f"{c}.txt").write_text("\n".join("\t".join(f"{v:.5f}" for v in row) for row in rng.normal(size=(40, 4))))
    return d, "3.txt"


def _ninapro(root: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(1)
    d = root / "s1"
    d.mkdir(parents=True)
    for e in (1, 2, 3):
        z = np.zeros((60, 1), int)
        scipy.io.savemat(d / f"S1_E{e}_A1.mat", {"emg": rng.normal(size=(60, 16)), "stimulus": z, "restimulus": z,
                                                "repetition": z, "rerepetition": z})
    return d, "S1_E2_A1.mat"


def _epn(root: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(2)
    for u in (1, 2):
        d = root / "trainingJSON" / f"user{u}"
        d.mkdir(parents=True)
        sample = {"gestureName": "noGesture", "emg": {f"ch{i}": rng.integers(-128, 128, 30).tolist() for i in range(1, 9)}}
        (d / f"user{u}.json").write_text(json.dumps({"generalInfo": {"samplingFrequencyInHertz": 200},
                                                     "trainingSamples": {"idx_1": sample, "idx_2": sample}}))
    return root / "trainingJSON" / "user2", "user2.json"


_FAST = McsTiming(cycle_offsets_s=(0.1, 1.2, 2.3, 3.4, 4.5), gesture_period_s=0.1, cue_s=0.06)


def _mcs(root: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(3)
    d = root / "sEMG-dataset" / "raw" / "mat"
    d.mkdir(parents=True)
    for i in (1, 2):
        scipy.io.savemat(d / f"participant{i}.mat", {"data": rng.normal(size=(int(5.6 * 2000), 4)), "iD": [[i]]})
    return d, "participant2.mat"


FIXTURES = {"toro-ossaba": (_toro, 5), "ninapro-db5": (_ninapro, 3), "emg-epn-612": (_epn, 4), "mcs-emg": (_mcs, 2)}


def _reader(name: str):
    return McsEmgReader(_FAST) if name == "mcs-emg" else get_reader(name)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_reader_strays_and_skip_bad(tmp_path, caplog, name):
    make, n = FIXTURES[name]
    folder, target = make(tmp_path)
    strays = _strays(folder, next((p.name for p in sorted(folder.iterdir()) if p.name != target), target))
    reader = _reader(name)
    with caplog.at_level(logging.WARNING):
        assert len(list(reader.read(tmp_path))) == n
    (msg,) = _warnings(caplog, "stray file(s)")
    assert all(s in msg for s in strays), msg
    (folder / target).write_bytes(b"abc\n")
    with pytest.raises(DataFormatError) as err:
        list(reader.read(tmp_path))
    assert target in str(err.value)
    bad = BadFiles(tmp_path, skip_bad=True)
    recs = list(reader.read(tmp_path, bad=bad))
    per_file = 2 if name == "emg-epn-612" else 1
    assert len(recs) == n - per_file and [s["file"].rsplit("/", 1)[1] for s in bad.skipped] == [target]
    assert reader.files(tmp_path, bad=bad) and len(bad.skipped) == 1


# ------------------------------------------------------------------------------------- generic importer

HEADER = "file,subject,session,trial,gesture,fs,layout,repetition,units"


def _manifest(root: Path, rows: list[str], n_files: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    rng = np.random.default_rng(0)
    for r in rows:
        f = r.split(",", 1)[0]
        if not Path(f).is_absolute() and ".." not in f:
            np.save(root / f, rng.normal(size=(400, 2)).astype(np.float32))
    return root


def test_generic_warns_on_repeated_repetitions_unknown_units_and_near_vocabulary_names(tmp_path, caplog):
    root = _manifest(tmp_path / "d", [
        "a.npy,S,s1,a,hand_close,200,unknown2,0,uV",
        "b.npy,S,s1,b,hand_close,200,unknown2,0,uV",  # repetition 0 again, same subject/session/gesture
        "c.npy,S,s2,a,hand_close,200,unknown2,0,uV",  # another session: fine
        "d.npy,S,s1,c,Hand_Close,200,unknown2,,mv",  # case only; units mv (meant mV?)
        "e.npy,S,s1,d,hand clsoe,200,unknown2,,furlongs",  # a small typo; not a unit of potential
        "f.npy,S,s1,e,thumbs_up,200,unknown2,,myo",  # a dataset's own gesture; a device unit
    ])
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.generic"):
        recs = list(read_manifest(root))
    assert len(recs) == 6
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 3, msgs
    (rep,) = [m for m in msgs if "repeated repetition" in m]
    assert "subject S session s1 gesture 'hand_close' repetition 0 in rows 2, 3" in rep and "s2" not in rep
    (units,) = [m for m in msgs if "units" in m and "unit of potential" in m]
    assert "'mv' in row 5 (did you mean 'mV'?)" in units and "'furlongs' in row 6" in units
    assert "'uV'" not in units and "'myo'" not in units
    (names,) = [m for m in msgs if "vocabulary" in m]
    assert "'Hand_Close' in row 5: did you mean 'hand_close'?" in names
    assert "'hand clsoe' in row 6: did you mean 'hand_close'?" in names and "thumbs_up" not in names


def test_generic_clean_manifest_gives_no_warning(tmp_path, caplog):
    root = _manifest(tmp_path / "d", ["a.npy,S,s1,a,rest,200,unknown2,0,uV", "b.npy,S,s1,b,rest,200,unknown2,1,mV",
                                      "c.npy,S,s1,c,wave,200,unknown2,,µV", "d.npy,S,s1,d,,200,unknown2,,V"])
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.generic"):
        assert len(list(read_manifest(root))) == 4
    assert not caplog.records


@pytest.mark.parametrize("path", ["../outside.npy", "sub/../../outside.npy", "ABSOLUTE"])
def test_generic_paths_outside_the_manifest_folder_need_allow_outside(tmp_path, path):
    outside = tmp_path / "outside.npy"
    np.save(outside, np.zeros((300, 2), np.float32))
    path = str(outside) if path == "ABSOLUTE" else path
    (tmp_path / "d" / "sub").mkdir(parents=True)
    root = _manifest(tmp_path / "d", ["in.npy,S,s1,a,rest,200,unknown2,,uV", f"{path},S,s1,b,rest,200,unknown2,,uV"])
    for call in (lambda: list(read_manifest(root)), lambda: GenericReader().files(root)):
        with pytest.raises(DataFormatError) as err:
            call()
        msg = str(err.value)
        assert "row 3" in msg and path in msg and "--allow-outside" in msg and "\n" not in msg
    recs = list(read_manifest(root, allow_outside=True))
    assert len(recs) == 2 and len(GenericReader(allow_outside=True).files(root)) == 3


def test_generic_layout_json_outside_the_folder_is_refused(tmp_path):
    root = _manifest(tmp_path / "d", ["in.npy,S,s1,a,rest,200,../layout.json,,uV"])
    with pytest.raises(DataFormatError, match="row 2.*layout path inside the manifest folder"):
        list(read_manifest(root))


def test_generic_skip_bad_skips_a_damaged_row(tmp_path):
    root = _manifest(tmp_path / "d", ["a.npy,S,s1,a,rest,200,unknown2,,uV", "b.npy,S,s1,b,rest,200,unknown2,,uV"])
    (root / "b.npy").write_bytes((root / "b.npy").read_bytes()[:90])
    with pytest.raises(DataFormatError, match="row 3"):
        list(read_manifest(root))
    bad = BadFiles(root, skip_bad=True)
    (rec,) = list(read_manifest(root, bad=bad))
    assert rec.source_file == "a.npy"
    (s,) = bad.skipped
    assert s["file"] == "b.npy" and "manifest.csv row 3 (b.npy)" in s["reason"] and str(root) not in s["reason"]


# ------------------------------------------------------------------------------------- the commands

def test_import_skip_bad_reports_each_file_and_records_them_in_provenance(tiny_dataset, tmp_path, capsys, caplog):
    raw = tiny_dataset(n_subjects=2, sessions=("s1",))
    files = sorted(raw.glob("*.npy"))
    files[0].write_bytes(b"not an npy")
    np.save(files[3], np.zeros((10, 3), np.float32))  # 3 channels for a 4-channel layout
    out = tmp_path / "corpus"
    assert main(["import", str(raw), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and files[0].name in err[0]
    assert not (out / "provenance.json").exists()
    with caplog.at_level(logging.WARNING, logger="aemg.corpus"):
        assert main(["import", str(raw), "--out", str(out), "--no-progress", "--skip-bad", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_recordings"] == 12 - 2
    prov = json.loads((out / "provenance.json").read_text())
    assert [s["file"] for s in prov["skipped"]] == [files[0].name, files[3].name]
    assert all(s["reason"] for s in prov["skipped"])
    msgs = [r.getMessage() for r in caplog.records]
    lines = [m for m in msgs if "skipped" in m and ("npy" in m or "damaged" in m)]
    assert len(lines) == 3 and files[0].name in lines[0] and files[3].name in lines[1]
    assert "2 damaged file(s) skipped" in lines[2]


def test_prepare_skip_bad_on_real_files_and_clean_provenance_lists_none(real_root, tmp_path):
    from aemg.corpus import prepare

    folder = _copy(real_root, tmp_path / "raw", "ciil")
    (folder / "._R_0_C_0.csv").write_bytes((folder / "R_0_C_0.csv").read_bytes())
    clean = prepare("ciil", tmp_path / "raw", tmp_path / "clean", progress=False)
    assert clean.provenance["skipped"] == [] and len(clean.recordings) == 10
    assert "._R_0_C_0.csv" not in {s["path"].rsplit("/", 1)[1] for s in clean.provenance["sources"]}
    (folder / "R_1_C_3.csv").write_text("1,2,3\n")
    with pytest.raises(DataFormatError, match="R_1_C_3.csv"):
        prepare("ciil", tmp_path / "raw", tmp_path / "failed", progress=False)
    corpus = prepare("ciil", tmp_path / "raw", tmp_path / "skipped", progress=False, skip_bad=True)
    assert len(corpus.recordings) == 9
    (s,) = corpus.provenance["skipped"]
    assert s["file"] == "ElectrodeShift/subject0/trial_1/R_1_C_3.csv" and "columns" in s["reason"]


def test_cli_options_are_documented(capsys):
    for command, words in (("prepare", ["--skip-bad", "Stray"]), ("import", ["--skip-bad", "--allow-outside"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert all(w in text for w in words), (command, text)


def test_import_allow_outside(tmp_path, capsys):
    np.save(tmp_path / "shared.npy", np.random.default_rng(0).normal(size=(2000, 2)).astype(np.float32))
    root = _manifest(tmp_path / "d", ["in.npy,S,s1,a,rest,1000,unknown2,,uV", "../shared.npy,S,s1,b,rest,1000,unknown2,,uV"])
    assert main(["import", str(root), "--out", str(tmp_path / "c1"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 3" in err[0] and "../shared.npy" in err[0]
    assert not (tmp_path / "c1").exists()
    assert main(["import", str(root), "--out", str(tmp_path / "c2"), "--no-progress", "--allow-outside"]) == 0
