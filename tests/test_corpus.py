"""The corpus store: HDF5 round trip, the prepare pipeline, duplicates, crash safety, lazy reads, real data."""

from __future__ import annotations

import ast
import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from aemg.corpus import Corpus, import_manifest, prepare
from aemg.corpus import pipeline as prepare_mod
from aemg.corpus.store import read_one, read_session, write_session
from aemg.errors import DataFormatError
from aemg.layouts import get_layout
from aemg.recording import Electrode, Recording
from aemg.signal import harmonize_session

NAN = float("nan")


def _assert_same_recording(a: Recording, b: Recording) -> None:
    assert a.signal.dtype == b.signal.dtype == np.float32
    assert a.signal.shape == b.signal.shape
    assert np.array_equal(a.signal.view(np.uint32), b.signal.view(np.uint32)), "signal not bit-exact"
    for name in ("labels", "repetition"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert list(a.tracks) == list(b.tracks)
    for k in a.tracks:
        assert a.tracks[k].dtype == b.tracks[k].dtype
        assert np.array_equal(a.tracks[k], b.tracks[k], equal_nan=True)
    assert len(a.electrodes) == len(b.electrodes)
    for e, f in zip(a.electrodes, b.electrodes):
        assert (e.site, e.layout, e.index) == (f.site, f.layout, f.index)
        for x, y in ((e.angle_deg, f.angle_deg), (e.z, f.z)):
            assert (math.isnan(x) and math.isnan(y)) or x == y
    for field in ("fs", "units", "dataset", "subject", "session", "session_order", "label_names", "gesture_keys",
                  "attrs", "layout_rotation_unknown", "arm", "source_file", "recording_id", "order", "mains_hz",
                  "hardware_band", "channel_flags", "processing"):
        assert getattr(a, field) == getattr(b, field), field


def _rich_recording(i: int = 0, labelled: bool = True) -> Recording:
    rng = np.random.default_rng(i)
    n = 777
    sig = rng.normal(0, 1e-3, (4, n)).astype(np.float32)
    sig[0, :3] = [np.float32(-0.0), np.float32(1e-38), np.float32(np.finfo(np.float32).max)]
    electrodes = (Electrode("ring", 0.0, 0.33, "custom", 0), Electrode("ring", 90.0, 0.33, "custom", 1),
                  Electrode("biceps_brachii", NAN, NAN, "custom", 2), Electrode("unknown", NAN, 0.5, "custom", 3))
    labels = np.repeat(np.array([-1, 0, 1, -1], np.int32), [100, 300, 300, 77]) if labelled else None
    rep = np.where(labels >= 0, i, -1).astype(np.int32) if labelled else None
    return Recording(
        signal=sig, fs=200.0 + 1 / 3, units="uV", electrodes=electrodes, dataset="test", subject="test/p/ä b",
        session="Test0", session_order=2, labels=labels, label_names=("Rest", "Fist") if labelled else (),
        gesture_keys=("rest", "hand_close") if labelled else (), repetition=rep,
        tracks={"stimulus": rng.integers(0, 5, n).astype(np.int16), "time_ms": np.arange(n, dtype=np.float64) * 4.9,
                "glove": rng.normal(size=n).astype(np.float32)},
        attrs={"fs_original": 1000.0, "user": "u7", "nested": {"a": [1, 2.5, None], "b": "x"}, "part": 3},
        layout_rotation_unknown=True, arm="left", source_file="raw/ä b/file 1.txt", recording_id=f"test/p/ä b/Test0/f{i}",
        order=i, mains_hz=60.0, hardware_band=(20.0, 450.0), channel_flags=("", "dead", "", "mains"),
        processing=("rebuild_sample_and_hold(fs=200)", "resample(200)"))


def _imports_within(package: Path, prefix: str) -> dict[str, set[str]]:
    """``{module: modules of `prefix` it imports}`` for each .py file of ``package`` (top level and
    inside functions alike; ``TYPE_CHECKING`` imports included)."""
    out: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        mod = f"{prefix}.{path.stem}" if path.stem != "__init__" else prefix
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        out[mod] = {m for m in found if m.startswith(prefix + ".")} - {mod}
    return out


def test_corpus_modules_import_each_other_without_a_cycle():
    import aemg.corpus

    graph = _imports_within(Path(aemg.corpus.__file__).parent, "aemg.corpus")
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    assert "aemg.corpus.pipeline" not in graph["aemg.corpus.corpus"]
    assert "aemg.corpus.corpus" in graph["aemg.corpus.pipeline"]
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m in done:
            return
        for d in graph[m]:
            visit(d, (*path, m))
        done.add(m)

    for m in graph:
        visit(m, ())


def test_harmonization_lives_once_in_aemg_signal():
    import aemg.signal
    from aemg.signal import harmonize

    for name in ("harmonize_session", "resolve_mains", "native_rate", "detect_session_mains"):
        assert getattr(aemg.signal, name) is getattr(harmonize, name) and not hasattr(prepare_mod, name)
    for name in ("SCALE_METHOD", "MAINS_WINDOW_S"):
        assert hasattr(harmonize, name) and not hasattr(prepare_mod, name)
    assert prepare_mod.MARKER == ".aemg-prepare.json" and prepare_mod.PROVENANCE == "provenance.json"
    assert prepare_mod.safe_name("3dc/all/Participant 1") == "3dc__all__Participant_1"
    with pytest.raises(AttributeError):
        prepare_mod.no_such_name  # noqa: B018


def test_store_round_trip_is_bit_exact_with_equal_metadata(tmp_path: Path):
    recs = [_rich_recording(0), _rich_recording(1, labelled=False)]
    path = tmp_path / "s" / "Test0.h5"
    write_session(path, recs, scale=np.array([1.0, 2.0, 3.0, 4.0]), fingerprint="fp")
    assert [p.name for p in path.parent.iterdir()] == ["Test0.h5"]  # no temporary left behind
    back = read_session(path)
    assert len(back) == 2
    for a, b in zip(recs, back):
        _assert_same_recording(a, b)
    _assert_same_recording(recs[1], read_one(path, "r00001"))
    # electrodes of a registry layout survive too
    rec = Recording(signal=np.ones((8, 5), np.float32), fs=200.0, units="myo", electrodes=get_layout("myo8").electrodes,
                    dataset="d", subject="d/a", session="s")
    write_session(tmp_path / "b.h5", [rec], scale=np.ones(8))
    _assert_same_recording(rec, read_session(tmp_path / "b.h5")[0])


def test_real_reader_recordings_round_trip_raw_and_harmonized(real_root: Path, tmp_path: Path):
    import itertools

    from aemg.datasets import get_reader

    recs = list(itertools.islice(get_reader("cote-allard").read(real_root / "cote-allard"), 3))
    harmonized, scale = harmonize_session(recs, 200.0)
    for name, group in (("raw", recs), ("harmonized", harmonized)):
        write_session(tmp_path / f"{name}.h5", group, scale=scale)
        for a, b in zip(group, read_session(tmp_path / f"{name}.h5"), strict=True):
            _assert_same_recording(a, b)


def test_import_builds_an_indexed_corpus_with_provenance(tiny_dataset, tmp_path: Path):
    raw = tiny_dataset()
    corpus = import_manifest(raw, tmp_path / "corpus", progress=False)
    assert corpus.fs == 200.0 and corpus.dataset == "tiny"
    assert corpus.subjects == ["generic/tiny/S0", "generic/tiny/S1", "generic/tiny/S2"]
    assert len(corpus.recordings) == 3 * 2 * 2 * 3 and len(corpus.trials) == 36
    assert sorted(corpus.sessions["h5_file"])[0] == "subjects/generic__tiny__S0/s1.h5"
    assert corpus.trials["trial"].tolist() == list(range(36))
    # durations survive resampling 1000 -> 200 Hz
    assert set(corpus.recordings["n_samples"]) == {300}
    assert np.allclose(corpus.recordings["duration_s"], 1.5)
    assert set(corpus.sessions["mains_hz"]) == {60.0}
    prov = corpus.provenance
    assert prov["reader"] == "aemg.datasets.generic" and prov["params"] == {"fs": 200.0, "dedupe": True}
    assert len(prov["sources"]) == 37 and all(len(s["sha256"]) == 64 and s["size"] > 0 for s in prov["sources"])
    assert len(prov["hash"]) == 64
    # order: subject, session_order, order
    got = [(r.subject, r.session_order, r.order) for r in corpus.iter_recordings()]
    assert got == sorted(got) and len(got) == 36
    assert [r.session for r in corpus.iter_recordings(subject="generic/tiny/S1", session="s2")] == ["s2"] * 6
    # scaled load divides by the session scale; the stored signal is unscaled, DC removed
    rid = corpus.recordings["recording_id"].iloc[0]
    raw_rec, scaled = corpus.load(rid), corpus.load(rid, scaled=True)
    scale = corpus.scale(raw_rec.subject, raw_rec.session)
    assert scale.shape == (4,) and np.all(scale > 0)
    assert np.allclose(scaled.signal, raw_rec.signal / scale[:, None].astype(np.float32), rtol=1e-6)
    assert abs(float(np.median(raw_rec.signal))) < 0.5  # DC (7.0) removed
    assert raw_rec.mains_hz == 60.0 and raw_rec.fs == 200.0 and raw_rec.attrs["fs_original"] == 1000.0
    assert len(raw_rec.channel_flags) == 4 and set(raw_rec.channel_flags) <= {"", "dead", "saturated", "mains"}
    ses = corpus.sessions.set_index(["subject", "session"]).loc[(raw_rec.subject, raw_rec.session)]
    assert {int(k) for k in ses["flagged_channels"]} >= {i for i, f in enumerate(raw_rec.channel_flags) if f}
    summary = corpus.summary()
    assert summary["n_trials"] == 36 and summary["trials_per_gesture"] == {"hand_close": 12, "rest": 12, "tiny:wave": 12}
    assert math.isclose(summary["hours"], 36 * 1.5 / 3600)
    json.dumps(summary)


def test_duplicates_are_dropped_by_default_and_recorded(tiny_dataset, tmp_path: Path, caplog):
    raw = tiny_dataset(duplicate=True)
    with caplog.at_level("WARNING", logger="aemg.corpus"):
        corpus = import_manifest(raw, tmp_path / "c1", progress=False)
    assert "generic/tiny/S3" not in corpus.subjects and len(corpus.recordings) == 36
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "generic/tiny/S3 session s1" in warning and "generic/tiny/S0 session s1" in warning
    dropped = corpus.provenance["dropped_duplicates"]
    assert len(dropped) == 6 and {d["subject"] for d in dropped} == {"generic/tiny/S3"}
    assert {d["duplicate_of"]["subject"] for d in dropped} == {"generic/tiny/S0"}
    kept = import_manifest(raw, tmp_path / "c2", dedupe=False, progress=False)
    assert "generic/tiny/S3" in kept.subjects and len(kept.recordings) == 42
    assert kept.provenance["dropped_duplicates"] == [] and len(kept.provenance["duplicates"]) == 6


def test_a_dataset_too_big_for_memory_is_read_twice_with_the_same_result(tiny_dataset, tmp_path: Path, monkeypatch):
    raw = tiny_dataset(duplicate=True)
    cached = import_manifest(raw, tmp_path / "cached", progress=False)
    monkeypatch.setattr(prepare_mod, "CACHE_BYTES", 1)
    streamed = import_manifest(raw, tmp_path / "streamed", progress=False)
    assert streamed.provenance["hash"] == cached.provenance["hash"]
    assert streamed.provenance["dropped_duplicates"] == cached.provenance["dropped_duplicates"]
    assert streamed.recording_ids == cached.recording_ids
    for rid in cached.recording_ids[::7]:
        _assert_same_recording(cached.load(rid), streamed.load(rid))


def test_interrupted_prepare_is_not_trusted_and_a_rerun_finishes(tiny_dataset, tmp_path: Path, monkeypatch):
    raw = tiny_dataset()
    out = tmp_path / "corpus"

    class Boom(RuntimeError):
        pass

    def interrupt(n_written, h5_file):
        if n_written == 2:
            raise Boom("killed")

    monkeypatch.setattr(prepare_mod, "_session_done", interrupt)
    with pytest.raises(Boom):
        import_manifest(raw, out, progress=False)
    monkeypatch.undo()
    assert not (out / "provenance.json").exists() and not (out / "index").exists()
    assert not list(out.rglob("*.tmp"))
    assert len(list(out.rglob("*.h5"))) == 2
    with pytest.raises(DataFormatError, match="interrupted"):
        Corpus(out)
    # a file left half-written by a crash is never trusted: the rerun rewrites it
    half = sorted(out.rglob("*.h5"))[0]
    half.write_bytes(half.read_bytes()[:1000])
    leftovers = [out / ".provenance.json.x1.tmp", out / "index" / ".trials.csv.x2.tmp", half.parent / ".s2.h5.x3.tmp"]
    for p in leftovers:  # what a kill during an atomic write leaves behind
        p.parent.mkdir(exist_ok=True)
        p.write_text("half")
    corpus = import_manifest(raw, out, progress=False)
    assert corpus.provenance["n_sessions_written"] == 5  # 6 sessions, 1 intact one reused
    assert not any(p.exists() for p in leftovers) and not list(out.rglob("*.tmp"))
    fresh = import_manifest(raw, tmp_path / "fresh", progress=False)
    assert corpus.provenance["hash"] == fresh.provenance["hash"]
    for rid in fresh.recording_ids:
        _assert_same_recording(fresh.load(rid), corpus.load(rid))
    # running it again on a finished corpus rewrites nothing
    again = import_manifest(raw, out, progress=False)
    assert again.provenance["n_sessions_written"] == 0


def test_rerun_rewrites_only_sessions_whose_sources_changed(tiny_dataset, tmp_path: Path):
    raw = tiny_dataset(n_subjects=2, sessions=("s1",))
    out = tmp_path / "c"
    first = import_manifest(raw, out, progress=False)
    changed = raw / "S1_s1_wave_0.npy"
    np.save(changed, np.load(changed) * 2)
    shutil.copy(sorted(out.rglob("*.h5"))[0], out / "subjects" / "stale.h5")  # a session file of an earlier build
    (out / "subjects" / "mine.h5").write_bytes(b"old")  # not aemg's: never deleted
    again = import_manifest(raw, out, progress=False)
    assert again.provenance["n_sessions_written"] == 1 and again.provenance["hash"] != first.provenance["hash"]
    assert not (out / "subjects" / "stale.h5").exists()
    assert (out / "subjects" / "mine.h5").read_bytes() == b"old"
    rid = "generic/tiny/S1/s1/wave_0"
    assert again.recordings.set_index("recording_id").loc[rid, "raw_sha256"] != \
        first.recordings.set_index("recording_id").loc[rid, "raw_sha256"]


def test_refuses_foreign_or_different_folders(tiny_dataset, tmp_path: Path):
    raw = tiny_dataset(n_subjects=1, sessions=("s1",))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="foreign"):
        import_manifest(raw, foreign, progress=False)
    with pytest.raises(FileExistsError, match="not an aemg corpus"):
        import_manifest(raw, foreign, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "c"
    import_manifest(raw, out, progress=False)
    with pytest.raises(FileExistsError, match=r"fs.*--overwrite"):
        import_manifest(raw, out, fs=100.0, progress=False)
    assert import_manifest(raw, out, fs=100.0, progress=False, overwrite=True).fs == 100.0
    with pytest.raises(DataFormatError):
        Corpus(tmp_path / "foreign")
    # raw data inside the corpus folder: --overwrite would delete it with the corpus, so it is refused
    inner = out / "raw"
    shutil.copytree(raw, inner)
    with pytest.raises(FileExistsError, match="must not contain the raw data"):
        import_manifest(inner, out, fs=50.0, progress=False, overwrite=True)
    assert (inner / "manifest.csv").is_file()
    with pytest.raises(KeyError, match="unknown dataset"):
        prepare("no-such-dataset", raw, tmp_path / "x", progress=False)


def test_corpus_is_lazy_and_picklable(tiny_dataset, tmp_path: Path):
    import h5py

    raw = tiny_dataset(n_subjects=1, sessions=("s1",))
    import_manifest(raw, tmp_path / "c", progress=False)
    before = h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)
    corpus = Corpus(tmp_path / "c")
    clone = pickle.loads(pickle.dumps(corpus))
    rid = corpus.recording_ids[0]
    assert np.array_equal(clone.load(rid).signal, corpus.load(rid).signal)
    assert h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE) == before
    with pytest.raises(KeyError, match="no recording"):
        corpus.load("nope")


# ---------------------------------------------------------------------------------------- real data

@pytest.mark.slow
def test_real_uci_rebuilt_at_true_rate(corpus_uci):
    c = corpus_uci
    assert c.subjects == [f"uci-gestures/all/{s}" for s in ("01", "04", "15", "26", "28", "31")]
    assert len(c.recordings) == 12 and c.provenance["dropped_duplicates"] == []
    tr = c.trials
    assert len(tr) == 6 * 24  # 4 repetitions of each of 6 classes per subject
    assert (tr.groupby(["subject", "label"]).size() == 4).all()
    # a repetition keeps its duration in seconds: compare with the raw file's time column
    rec = c.load(c.recordings["recording_id"].iloc[0])
    assert rec.fs == 200.0 and rec.attrs["fs_original"] == 200.0 and rec.attrs["fs_logged"] > 900
    assert any(p.startswith("rebuild_sample_and_hold") for p in rec.processing)
    assert set(c.recordings["fs_original"]) == {200.0}
    # no mains line in the Myo spectra: the reader's documented 50 Hz is used, and info says so
    assert c.summary()["mains_hz"] == [50.0] and c.summary()["mains_sources"] == {"declared": 6}
    raw = np.loadtxt(Path(c.provenance["root"]) / rec.source_file, skiprows=1)
    t_ms, cls = raw[:, 0], raw[:, 9].astype(int)
    first = np.flatnonzero(cls == cls[cls > 0][0])
    runs = np.split(first, np.flatnonzero(np.diff(first) > 1) + 1)
    raw_dur = (t_ms[runs[0][-1]] - t_ms[runs[0][0]]) / 1000.0
    t0 = tr[(tr["recording_id"] == rec.recording_id)].iloc[0]
    assert abs((t0["stop"] - t0["start"]) / rec.fs - raw_dur) < 0.05
    assert abs(rec.duration_s - (t_ms[-1] - t_ms[0]) / 1000.0) < 0.05


@pytest.mark.slow
def test_real_cote_allard_duplicates_dropped(corpus_cote_allard):
    c = corpus_cote_allard
    assert c.subjects == ["cote-allard/evaluation/Female0", "cote-allard/evaluation/Female1",
                          "cote-allard/evaluation/Male0", "cote-allard/pretraining/Female1",
                          "cote-allard/pretraining/Male0"]
    dropped = c.provenance["dropped_duplicates"]
    assert len(dropped) == 3 * 28
    assert {d["subject"] for d in dropped} == {f"cote-allard/pretraining/Female{i}" for i in (7, 8, 9)}
    assert {d["duplicate_of"]["subject"] for d in dropped} == {"cote-allard/evaluation/Female0"}
    assert len(c.sessions) == 3 + 3 + 3 + 1 + 1 and len(c.recordings) == 11 * 28
    assert (c.trials.groupby(["subject", "session", "gesture_key"]).size() == 4).all()
    assert c.fs == 200.0 and set(c.recordings["fs_original"]) == {200.0}


@pytest.mark.slow
def test_real_ciil_counts(corpus_ciil):
    c = corpus_ciil
    assert len(c.subjects) == 25 and c.provenance["dropped_duplicates"] == []
    minimal = c.trials[c.trials["subject"].str.startswith("ciil/minimal/")]
    assert len(minimal) == 10 * 5 * 16
    es = c.trials[c.trials["subject"].str.startswith("ciil/electrodeshift/")]
    assert len(es) == 15 * 5 * 13 + 5 * 2  # subject13's extra trial_0


@pytest.mark.slow
def test_real_3dc_duplicates_and_mains(corpus_3dc):
    c = corpus_3dc
    assert c.subjects == [f"3dc/all/Participant{i}" for i in (1, 5, 13, 14)]
    dropped = c.provenance["dropped_duplicates"]
    assert len(dropped) == 13 and {d["subject"] for d in dropped} == {"3dc/all/Participant14"}
    assert len(c.trials) == 352 - 13 and len(c.recordings) == 352 - 13
    assert set(c.sessions["mains_hz"]) == {60.0}
    assert c.summary()["mains_sources"] == {"session": 2, "dataset": 6}  # Participant1 shows it, the rest inherit
    assert set(c.sessions.loc[c.sessions["mains_source"] == "session", "subject"]) == {"3dc/all/Participant1"}
    rec = c.load(c.recordings["recording_id"].iloc[0])
    assert rec.fs == 200.0 and rec.attrs["fs_original"] == 1000.0 and rec.n_channels == 10
    assert rec.mains_hz == 60.0
    assert rec.subject == "3dc/all/Participant1" and rec.attrs["mains_source"] == "session"  # seen in its own data
