"""A corpus knows when it has been damaged (issue 9, part C).

One small corpus (a tiny manifest dataset, imported) and its token set are built once per module;
each test copies them to ``tmp_path``, damages the copy in one way and checks that opening it
(``Corpus``, ``aemg info``, ``aemg tokenize``) or loading the tokens is one DataFormatError naming
the damaged file, never a traceback nor numpy's advice to allow pickles.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import main
from aemg.corpus import Corpus, import_manifest
from aemg.corpus import index as ix
from aemg.corpus.provenance import INDEX_HASH
from aemg.errors import DataFormatError
from aemg.tokens import TokenSet
from conftest import small_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished corpus (2 subjects x 2 sessions x 6 recordings) with a token set, built once."""
    from aemg.tokens import tokenize_corpus

    base = tmp_path_factory.mktemp("integrity")
    raw = small_dataset(base / "raw" / "tiny", n_subjects=2)
    corpus = import_manifest(raw, base / "corpus", progress=False)
    # fixed windows: tokens in every recording (the noise of the tiny dataset holds no events)
    ts = tokenize_corpus(corpus, window_ms=100.0, progress=False)
    assert ts.n_tokens > 0 and ts.n_trials > 0
    ts.save(TokenSet.default_path(corpus.path))
    return corpus.path


@pytest.fixture
def corpus_dir(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built corpus, free to damage."""
    return Path(shutil.copytree(built, tmp_path / "corpus"))


def _h5_files(d: Path) -> list[Path]:
    return sorted((d / "subjects").rglob("*.h5"))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _drop_line(path: Path, i: int = -1) -> None:
    lines = _lines(path)
    del lines[i]
    path.write_text("".join(lines))


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(path.read_text())))
    rows[line - 1][rows[0].index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())


def _prov(d: Path) -> Path:
    return d / "provenance.json"


def _edit_prov(d: Path, edit: Callable[[dict], object]) -> None:
    doc = json.loads(_prov(d).read_text())
    edit(doc)
    _prov(d).write_text(json.dumps(doc))


def _h5_attr(path: Path, key: str, value: object) -> None:
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs[key] = value


def _expect(d: Path, fragment: str) -> str:
    """Opening ``d`` raises one DataFormatError whose one-line message names ``fragment``."""
    with pytest.raises(DataFormatError) as exc:
        Corpus(d)
    msg = str(exc.value)
    assert fragment in msg, msg
    assert "\n" not in msg and "expected" in msg and "found" in msg, msg
    return msg


# ------------------------------------------------------------------------------------ the index
def test_a_built_corpus_records_its_index_hash_and_opens(built: Path):
    prov = json.loads(_prov(built).read_text())
    assert prov[INDEX_HASH] == ix.tables_sha256(built)
    assert set(prov[INDEX_HASH]) == {"recordings", "trials", "sessions"}
    c = Corpus(built)
    assert len(c) == prov["n_recordings"] == 24 and len(c.sessions) == 4


def test_a_deleted_recording_row_is_refused(corpus_dir: Path):
    _drop_line(corpus_dir / "index" / "recordings.csv")
    msg = _expect(corpus_dir, str(corpus_dir / "index" / "recordings.csv"))
    assert "24 rows" in msg and "found 23" in msg


def test_a_truncated_recordings_table_is_refused(corpus_dir: Path):
    path = corpus_dir / "index" / "recordings.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])  # cut inside the last row
    _expect(corpus_dir, str(path))


@pytest.mark.parametrize("table", ["trials", "sessions"])
def test_a_deleted_trial_or_session_row_is_refused(corpus_dir: Path, table: str):
    _drop_line(corpus_dir / "index" / f"{table}.csv", 1)
    _expect(corpus_dir, str(corpus_dir / "index" / f"{table}.csv"))


def test_a_deleted_row_with_provenance_counts_edited_too_is_refused(corpus_dir: Path):
    _drop_line(corpus_dir / "index" / "recordings.csv")
    _edit_prov(corpus_dir, lambda d: d.update(n_recordings=23))
    assert "sha256" in _expect(corpus_dir, str(corpus_dir / "index" / "recordings.csv"))
    # without the hash (a corpus written before it), the session row still counts the recording
    _edit_prov(corpus_dir, lambda d: d.pop(INDEX_HASH))
    msg = _expect(corpus_dir, str(corpus_dir / "index" / "recordings.csv"))
    assert "6 recordings of session" in msg and "found 5" in msg
    _set_cell(corpus_dir / "index" / "sessions.csv", 5, "n_recordings", "5")
    assert "a row for recording" in _expect(corpus_dir, str(corpus_dir / "index" / "recordings.csv"))  # its trial
    _drop_line(corpus_dir / "index" / "trials.csv")
    _edit_prov(corpus_dir, lambda d: d.update(n_trials=23))  # and its session file still holds it
    assert "missing from the index" in _expect(corpus_dir, str(_h5_files(corpus_dir)[-1]))


def test_an_edited_cell_is_refused_by_the_index_hash(corpus_dir: Path):
    path = corpus_dir / "index" / "trials.csv"
    _set_cell(path, 2, "gesture_key", "wave")
    msg = _expect(corpus_dir, str(path))
    assert "sha256" in msg and "changed" in msg


def test_an_edited_n_samples_is_refused(corpus_dir: Path):
    path = corpus_dir / "index" / "recordings.csv"
    n = int(Corpus(corpus_dir).recordings["n_samples"].iat[0])
    _set_cell(path, 2, "n_samples", str(n - 1))
    _expect(corpus_dir, str(path))


@pytest.mark.parametrize("column, value", [("n_samples", "abc"), ("channel_flags", "[\"\", "),
                                           ("rotation_unknown", "maybe"), ("scale", "{}")])
def test_a_bad_cell_names_the_file_and_line(corpus_dir: Path, column: str, value: str):
    table = "sessions" if column == "scale" else "recordings"
    path = corpus_dir / "index" / f"{table}.csv"
    _set_cell(path, 3, column, value)
    msg = _expect(corpus_dir, str(path))
    assert "line 3" in msg and repr(column) in msg


def test_a_row_with_an_extra_field_names_the_line(corpus_dir: Path):
    path = corpus_dir / "index" / "trials.csv"
    lines = _lines(path)
    lines[4] = lines[4].rstrip("\n") + ",extra\n"
    path.write_text("".join(lines))
    assert "line 5" in _expect(corpus_dir, str(path))


def test_a_missing_table_is_named(corpus_dir: Path):
    (corpus_dir / "index" / "sessions.csv").unlink()
    assert "no such file" in _expect(corpus_dir, str(corpus_dir / "index" / "sessions.csv"))


# ------------------------------------------------------------------------------------ session files
def test_a_missing_session_file_is_named(corpus_dir: Path):
    h5 = _h5_files(corpus_dir)[1]
    h5.unlink()
    assert "no such file" in _expect(corpus_dir, str(h5))


def test_a_stray_session_file_is_named(corpus_dir: Path):
    extra = _h5_files(corpus_dir)[0].with_name("s9.h5")
    shutil.copy(_h5_files(corpus_dir)[0], extra)
    _expect(corpus_dir, str(extra))


def test_a_session_file_swapped_for_another_is_refused(corpus_dir: Path):
    a, b = _h5_files(corpus_dir)[:2]
    shutil.copy(a, b)
    assert "fingerprint" in _expect(corpus_dir, str(b))


def test_a_changed_fingerprint_attribute_is_refused(corpus_dir: Path):
    h5 = _h5_files(corpus_dir)[2]
    _h5_attr(h5, "fingerprint", "0" * 64)
    assert "fingerprint" in _expect(corpus_dir, str(h5))


def test_recording_ids_that_disagree_with_the_index_are_refused(corpus_dir: Path):
    import h5py

    h5 = _h5_files(corpus_dir)[0]
    with h5py.File(h5, "r") as f:
        ids = json.loads(f.attrs["recordings"])
    _h5_attr(h5, "recordings", json.dumps([*ids[:-1], "someone/else"]))
    _expect(corpus_dir, str(h5))
    _h5_attr(h5, "recordings", json.dumps(ids[:-1]))
    _expect(corpus_dir, str(h5))


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "not_aemg"])
def test_a_corrupted_session_file_is_one_line(corpus_dir: Path, damage: str):
    import h5py

    h5 = _h5_files(corpus_dir)[0]
    data = h5.read_bytes()
    if damage == "truncated":
        h5.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        h5.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "empty":
        h5.write_bytes(b"")
    else:
        h5.unlink()
        with h5py.File(h5, "w") as f:
            f.create_group("r00000")
    _expect(corpus_dir, str(h5))


def _replace_signal(h5: Path, group: str, new: object) -> None:
    import h5py

    with h5py.File(h5, "r+") as f:
        del f[group]["signal"]
        if isinstance(new, np.ndarray):
            f[group].create_dataset("signal", data=new)
        else:
            f[group].create_group("signal")


@pytest.mark.parametrize("damage", ["shorter_signal", "signal_a_group", "group_gone"])
def test_damage_inside_a_group_is_named_when_the_recording_is_read(corpus_dir: Path, damage: str):
    import h5py

    h5 = _h5_files(corpus_dir)[0]
    with h5py.File(h5, "r") as f:
        sig = f["r00001/signal"][()]
    if damage == "shorter_signal":
        _replace_signal(h5, "r00001", sig[:, :-10])
    elif damage == "signal_a_group":
        _replace_signal(h5, "r00001", None)
    else:
        with h5py.File(h5, "r+") as f:
            del f["r00001"]
    corpus = Corpus(corpus_dir)  # the attributes still agree: found when the recording is read
    with pytest.raises(DataFormatError) as exc:
        list(corpus.iter_recordings())
    assert str(h5) in str(exc.value) and "\n" not in str(exc.value)


def test_tokenize_on_a_damaged_group_exits_1_with_one_line(corpus_dir: Path, capsys):
    h5 = _h5_files(corpus_dir)[-1]
    _replace_signal(h5, "r00002", None)
    assert main(["tokenize", str(corpus_dir), "--json", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith(f"aemg tokenize: error: {h5}: expected an aemg recording group /r00002")


def test_a_corpus_written_before_the_index_hash_still_opens_and_is_checked(corpus_dir: Path):
    _edit_prov(corpus_dir, lambda d: d.pop(INDEX_HASH))
    c = Corpus(corpus_dir)
    assert len(c) == 24 and c.summary()["n_recordings"] == 24
    # without the hash, an edited n_samples is found by comparing with the signal's shape
    path = corpus_dir / "index" / "recordings.csv"
    _set_cell(path, 2, "n_samples", str(int(c.recordings["n_samples"].iat[0]) + 1))
    assert "samples in group 'r00000'" in _expect(corpus_dir, str(_h5_files(corpus_dir)[0]))
    _drop_line(path)
    _expect(corpus_dir, str(path))


# ------------------------------------------------------------------------------------ provenance.json
@pytest.mark.parametrize("text, found", [
    ("{not json", "invalid JSON"), ("[]", "found a list"), ('"a string"', "found the string"),
    ("null", "found null"), ("3", "found the number 3"), ("", "invalid JSON"),
])
def test_a_provenance_that_is_not_an_object_is_one_line(corpus_dir: Path, text: str, found: str):
    _prov(corpus_dir).write_text(text)
    assert found in _expect(corpus_dir, str(_prov(corpus_dir)))


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.pop("hash"), "no key(s) hash"),
    (lambda d: d.pop("params"), "no key(s) params"),
    (lambda d: d.update(format="something-else"), "format 'aemg-corpus'"),
    (lambda d: d.update(n_recordings="24"), "'n_recordings' to be an integer"),
    (lambda d: d.update(n_trials=True), "'n_trials' to be an integer"),
    (lambda d: d.update(params=[200]), "'params' to be a JSON object"),
    (lambda d: d.update(params={"fs": "200"}), "'params' to hold 'fs'"),
    (lambda d: d.update(params={"fs": -1}), "'params' to hold 'fs'"),
    (lambda d: d.update(dataset=7), "'dataset' to be a string"),
    (lambda d: d.update(dropped_duplicates="none"), "'dropped_duplicates' to be a list"),
    (lambda d: d.update(dropped_duplicates=[1]), "'dropped_duplicates'"),
    (lambda d: d.update({INDEX_HASH: ["x"]}), INDEX_HASH),
    (lambda d: d.update({INDEX_HASH: {"recordings": 1}}), INDEX_HASH),
])
def test_a_provenance_with_missing_keys_or_wrong_types_is_one_line(corpus_dir: Path, edit, words: str):
    _edit_prov(corpus_dir, edit)
    assert words in _expect(corpus_dir, str(_prov(corpus_dir)))


def test_a_provenance_that_is_not_utf8_is_one_line(corpus_dir: Path):
    _prov(corpus_dir).write_bytes(b"\xff\xfe\x00garbage")
    assert "UTF-8" in _expect(corpus_dir, str(_prov(corpus_dir)))


# ------------------------------------------------------------------------------------ the CLI
def _no_recording_row(d: Path) -> Path:
    _drop_line(d / "index" / "recordings.csv")
    return d / "index" / "recordings.csv"


def _no_session_file(d: Path) -> Path:
    h5 = _h5_files(d)[0]
    h5.unlink()
    return h5


def _provenance_list(d: Path) -> Path:
    _prov(d).write_text("[]")
    return _prov(d)


def _h5_garbage(d: Path) -> Path:
    h5 = _h5_files(d)[1]
    h5.write_bytes(b"\0garbage" * 100)
    return h5


DAMAGES: dict[str, Callable[[Path], Path]] = {"recording_row": _no_recording_row, "session_file": _no_session_file,
                                              "provenance_list": _provenance_list, "h5_garbage": _h5_garbage}
"""Damage to a corpus copy -> the file the error must name."""


@pytest.mark.parametrize("command", ["info", "tokenize"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_info_and_tokenize_on_a_damaged_corpus_exit_1_with_one_line(corpus_dir: Path, command: str, damage: str,
                                                                    capsys):
    named = DAMAGES[damage](corpus_dir)
    code = main([command, str(corpus_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"aemg {command}: error: {corpus_dir}") and str(named) in err, err
    assert "Traceback" not in err and "allow_pickle" not in err


def test_import_over_a_provenance_holding_a_list_is_one_line(corpus_dir: Path, capsys):
    raw = json.loads(_prov(corpus_dir).read_text())["root"]
    _prov(corpus_dir).write_text("[]")
    assert main(["import", raw, "--out", str(corpus_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"aemg import: error: {corpus_dir}"), err
    assert _h5_files(corpus_dir) and _prov(corpus_dir).read_text() == "[]"  # nothing touched


def test_info_on_a_damaged_corpus_in_a_real_process(corpus_dir: Path):
    _drop_line(corpus_dir / "index" / "recordings.csv")
    done = subprocess.run([sys.executable, "-m", "aemg", "info", str(corpus_dir)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "recordings.csv" in done.stderr, done.stderr


# ------------------------------------------------------------------------------------ events.npz
def _npz(d: Path) -> Path:
    return TokenSet.default_path(d)


def _rewrite_npz(path: Path, edit: Callable[[dict], None]) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at:at + 16] = bytes(255 - b for b in data[at:at + 16])
    path.write_bytes(bytes(data))


NPZ_DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "truncated_tail": lambda p: p.write_bytes(p.read_bytes()[:-30]),
    "flipped_bytes": lambda p: _flip(p, p.stat().st_size // 3),
    "random_bytes": lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)),
    "empty": lambda p: p.write_bytes(b""),
    "pickle": lambda p: p.write_bytes(__import__("pickle").dumps({"content": [1, 2]})),
    "npy_renamed": lambda p: np.save(open(p, "wb"), np.zeros(3)),  # noqa: SIM115
    "npy_object_renamed": lambda p: np.save(open(p, "wb"), np.array([{}], dtype=object)),  # noqa: SIM115
    "missing_key": lambda p: _rewrite_npz(p, lambda a: a.pop("group_start")),
    "missing_meta": lambda p: _rewrite_npz(p, lambda a: a.pop("meta")),
    "object_array": lambda p: _rewrite_npz(p, lambda a: a.update(channel=np.array([object()] * 3, dtype=object))),
    "meta_not_json": lambda p: _rewrite_npz(p, lambda a: a.update(meta=np.array("{oops"))),
    "meta_a_list": lambda p: _rewrite_npz(p, lambda a: a.update(meta=np.array("[1, 2]"))),
    "short_column": lambda p: _rewrite_npz(p, lambda a: a.update(rank=a["rank"][:-1])),
    "text_for_numbers": lambda p: _rewrite_npz(p, lambda a: a.update(group_start=a["group_start"].astype(str))),
    "one_dim_content": lambda p: _rewrite_npz(p, lambda a: a.update(content=a["content"].ravel())),
    "a_scalar_column": lambda p: _rewrite_npz(p, lambda a: a.update(channel=np.int64(3))),
    "bad_token_group": lambda p: _rewrite_npz(p, lambda a: a.update(group=a["group"] - 5)),
    "bad_reference": lambda p: _rewrite_npz(p, lambda a: a.update(trial_recording=a["trial_recording"] + 1000)),
}


@pytest.mark.parametrize("damage", list(NPZ_DAMAGES))
def test_a_damaged_token_set_is_one_line(corpus_dir: Path, damage: str):
    path = _npz(corpus_dir)
    TokenSet.load(path)  # intact before
    NPZ_DAMAGES[damage](path)
    with pytest.raises(DataFormatError) as exc:
        TokenSet.load(corpus_dir)  # a corpus folder means its tokens/events.npz
    msg = str(exc.value)
    assert msg.startswith(f"{path}: expected"), msg
    assert "\n" not in msg and "allow_pickle" not in msg and "found" in msg, msg


def test_pretraining_sources_report_a_damaged_token_set(corpus_dir: Path):
    from aemg.train.sources import load_token_set

    _npz(corpus_dir).write_bytes(b"not a zip at all")
    with pytest.raises(DataFormatError, match="events.npz: expected an aemg token set.*aemg tokenize writes it"):
        load_token_set(Corpus(corpus_dir), progress=False)


def test_the_advice_works_running_the_import_again_rebuilds_the_index(corpus_dir: Path):
    _drop_line(corpus_dir / "index" / "recordings.csv")
    (_h5_files(corpus_dir)[0]).unlink()
    assert "run the aemg prepare/import command that built the corpus again" in _expect(corpus_dir, "recordings.csv")
    raw = Path(json.loads(_prov(corpus_dir).read_text())["root"])
    import_manifest(raw, corpus_dir, progress=False)
    assert len(Corpus(corpus_dir)) == 24


def test_an_unlisted_session_file_is_refused_but_a_users_h5_is_left_alone(corpus_dir: Path):
    import shutil

    users = corpus_dir / "subjects" / "mine.h5"
    users.write_bytes(b"not an aemg file")
    assert len(Corpus(corpus_dir).sessions) == 4  # the user's file is neither read nor an error
    extra = corpus_dir / "subjects" / "copy.h5"
    shutil.copy(_h5_files(corpus_dir)[0], extra)  # an aemg session file the index does not list
    assert "does not list" in _expect(corpus_dir, str(extra))
