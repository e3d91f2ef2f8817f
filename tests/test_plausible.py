"""Issue 9 (D): implausible numbers are refused quickly, naming the file and row.

Sampling rates out of their documented range (a manifest's ``fs``, ``--fs`` of prepare / import,
resampling), gaps in UCI's time column (split, never filled, never changing the inferred rate), and
``.npy`` files that do not hold a real numeric array. Each refusal is checked under a generous
``pytest.mark.timeout`` (the bug was minutes of full CPU or a 40 GiB allocation).
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import main
from aemg.datasets.generic import read_manifest
from aemg.datasets.uci import READER as UCI
from aemg.datasets.uci import split_at_gaps
from aemg.errors import DataFormatError, ImplausibleValueError
from aemg.layouts import get_layout
from aemg.plausible import CORPUS_FS_RANGE, GAP_MS, SOURCE_FS_RANGE, check_corpus_fs, check_source_fs
from aemg.recording import Recording
from aemg.signal import rebuild_sample_and_hold, resample
from aemg.signal.resample import rational_ratio

HEADER = "file,subject,session,trial,gesture,fs,layout"
BAD_RATES = ["1e10", "0.001", "0", "-3", "nan", "inf", "-inf", "100000", "abc"]


def _manifest(tmp_path: Path, fs: str = "200", bad_file: str = "bad.npy") -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.csv").write_text(f"{HEADER}\nok.npy,S,,t0,rest,200,unknown2\n{bad_file},S,,t1,rest,{fs},unknown2\n")
    np.save(root / "ok.npy", np.zeros((50, 2), np.float32))
    if bad_file == "bad.npy":
        np.save(root / "bad.npy", np.zeros((50, 2), np.float32))
    return root


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"aemg {command}: error: "), err
    return err


# ---------------------------------------------------------------- sampling rates

def test_documented_ranges_accept_their_bounds_and_refuse_just_outside():
    lo, hi = SOURCE_FS_RANGE
    assert check_source_fs(lo, "f") == lo and check_source_fs(str(hi), "f") == hi
    assert check_corpus_fs(CORPUS_FS_RANGE[0]) == CORPUS_FS_RANGE[0] and check_corpus_fs(1926.0) == 1926.0
    for bad in (lo * 0.99, hi * 1.01, None, "", "12 Hz"):
        with pytest.raises(ImplausibleValueError, match="plausible range"):
            check_source_fs(bad, "f")
    with pytest.raises(ImplausibleValueError, match=r"^--fs: expected the corpus rate in \[50, 10000\] Hz.*found 20000$"):
        check_corpus_fs(20000.0)
    assert CORPUS_FS_RANGE[0] >= SOURCE_FS_RANGE[0] and CORPUS_FS_RANGE[1] <= SOURCE_FS_RANGE[1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fs", BAD_RATES)
def test_manifest_fs_out_of_range_names_row_and_file(tmp_path, fs):
    root = _manifest(tmp_path, fs=fs)
    with pytest.raises(ImplausibleValueError, match="positive number in the plausible range") as err:
        list(read_manifest(root))
    msg = str(err.value)
    assert "manifest.csv row 3 (bad.npy)" in msg and "found " in msg and "np.float64" not in msg
    assert isinstance(err.value, DataFormatError)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fs", ["1e10", "0.001", "nan", "100000"])
def test_import_refuses_a_manifest_fs_before_writing_anything(tmp_path, capsys, fs):
    root = _manifest(tmp_path, fs=fs)
    out = tmp_path / "corpus"
    assert main(["import", str(root), "--out", str(out), "--no-progress"]) == 1
    err = _one_line_error(capsys, "import")
    assert "row 3 (bad.npy)" in err and "fs (the recording's sampling rate) in [50, 30000] Hz" in err
    assert not out.exists()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fs", ["1e10", "0.001", "0", "-5", "nan", "inf", "100000", "10001"])
@pytest.mark.parametrize("command", ["prepare", "import"])
def test_fs_option_out_of_range_is_refused_at_once(tmp_path, capsys, command, fs):
    root = _manifest(tmp_path)
    out = tmp_path / "corpus"
    args = (["prepare", "uci-gestures", "--root", str(root)] if command == "prepare" else ["import", str(root)])
    assert main([*args, "--out", str(out), f"--fs={fs}", "--no-progress"]) == 1
    err = _one_line_error(capsys, command)
    assert err.startswith(f"aemg {command}: error: --fs: expected the corpus rate in [50, 10000] Hz"), err
    assert err.endswith(f"found {float(fs):g}")
    assert not out.exists()


def _rec(fs: float, n: int = 100) -> Recording:
    return Recording(signal=np.zeros((2, n), np.float32), fs=fs, units="adc",
                     electrodes=get_layout("unknown2").electrodes, dataset="t", subject="t/s/1", session="s",
                     source_file="x.npy", recording_id="t/s/1/s/x")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fs_from,fs_to", [(1e10, 200.0), (0.001, 200.0), (200.0, 1e10), (200.0, 0.001),
                                           (2000.0, 100000.0), (200.0, float("nan")), (200.0, 0.0)])
def test_resampling_refuses_implausible_rates_before_any_work(fs_from, fs_to):
    with pytest.raises(ImplausibleValueError, match="plausible range"):
        rational_ratio(fs_from, fs_to)
    with pytest.raises(ImplausibleValueError, match=r"^x\.npy: expected the"):
        resample(_rec(fs_from), fs_to)
    assert resample(_rec(1000.0), 200.0).fs == 200.0


# ---------------------------------------------------------------- UCI time gaps

UCI_HEADER = "time\t" + "\t".join(f"channel{i}" for i in range(1, 9)) + "\tclass"


def _uci_file(path: Path, time_ms: np.ndarray, seed: int = 0) -> np.ndarray:
    """A UCI-like file: rows at ``time_ms``, each Myo sample held for 5 rows; returns the counts."""
    rng = np.random.default_rng(seed)
    n = len(time_ms)
    held = np.repeat(rng.integers(-60, 60, size=(n // 5 + 1, 8)), 5, axis=0)[:n]
    cls = np.where((np.arange(n) // 300) % 2 == 1, 2, 1)  # rows 3900-4199: one fist repetition
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [UCI_HEADER] + ["\t".join([f"{t:g}", *(f"{v * 1e-5:.5g}" for v in row), str(c)])
                            for t, row, c in zip(time_ms, held, cls)]
    path.write_text("\r\n".join(lines) + "\r\n")
    return held


def _uci_root(tmp_path: Path, time_ms: np.ndarray) -> tuple[Path, np.ndarray]:
    root = tmp_path / "uci"
    counts = _uci_file(root / "01" / "1_raw_data_13-12_22.03.16.txt", time_ms)
    _uci_file(root / "01" / "2_raw_data_13-13_22.03.16.txt", np.arange(3000, dtype=np.float64) + 5, seed=1)
    return root, counts


def test_split_at_gaps_cuts_only_steps_above_the_threshold():
    t = np.r_[0, 1, 2, 2 + GAP_MS, 4 + GAP_MS, 5 + 2 * GAP_MS + 1].astype(float)  # steps 1, 1, GAP, 2, GAP + 1
    assert split_at_gaps(t) == [(0, 5), (5, 6)]
    assert split_at_gaps(np.r_[0.0, GAP_MS + 1, GAP_MS + 2]) == [(0, 1), (1, 3)]
    assert split_at_gaps(np.arange(10.0)) == [(0, 10)]


@pytest.mark.timeout(60)
def test_uci_gap_is_reported_split_and_leaves_the_rate_alone(tmp_path, caplog):
    # 4000 rows at 1 ms, then a 600 s pause, then 3000 rows at 1 ms (a logger at 1000 rows/s)
    t = np.r_[np.arange(4000), 600_000 + 3999 + np.arange(3000)].astype(np.float64)
    root, counts = _uci_root(tmp_path, t)
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.uci"):
        recs = list(UCI.read(root))
    gap_lines = [m for m in caplog.messages if "time column jumps" in m]
    assert len(gap_lines) == 1
    assert "1_raw_data_13-12_22.03.16.txt" in gap_lines[0] and "600.000 s" in gap_lines[0]
    assert "data rows 4000 and 4001" in gap_lines[0]
    first, second, other = recs
    # nothing invented: the parts hold exactly the file's rows; the rate comes from the gap-free parts
    assert (first.n_samples, second.n_samples) == (4000, 3000)
    assert first.fs == second.fs == 1000.0 and other.fs == 1000.0
    assert np.array_equal(np.c_[first.signal, second.signal].T, counts)
    assert first.recording_id.endswith("/1_raw_data_13-12_22.03.16")
    assert second.recording_id.endswith("/1_raw_data_13-12_22.03.16-part2")
    assert (first.order, second.order, other.order) == (0, 1, 2)
    assert second.attrs["part"] == 2 and second.attrs["first_data_row"] == 4001
    assert first.source_file == second.source_file
    # a repetition cut by the gap keeps its number on both sides
    assert first.repetition[-1] == second.repetition[0] and first.labels[-1] == second.labels[0]
    # each part rebuilds at 200 Hz over its own span only
    reb = [rebuild_sample_and_hold(r) for r in (first, second)]
    assert [r.fs for r in reb] == [200.0, 200.0]
    assert [r.n_samples for r in reb] == [800, 600]
    # an unsplit recording with the gap is refused rather than interpolated over
    whole = first.replace(signal=np.c_[first.signal, second.signal], labels=None, repetition=None,
                          tracks={"time_ms": t})
    with pytest.raises(ImplausibleValueError, match=r"gap of 600 s between samples 4000 and 4001"):
        rebuild_sample_and_hold(whole)


@pytest.mark.timeout(60)
def test_uci_irregular_steps_below_the_threshold_are_not_gaps(tmp_path, caplog):
    rng = np.random.default_rng(3)
    steps = rng.choice([1] * 20 + [2, 36], size=5000)  # 36 ms: the largest step of the real files
    steps[100] = int(GAP_MS)  # exactly the threshold: not a gap
    root, _ = _uci_root(tmp_path, np.cumsum(steps).astype(np.float64))
    with caplog.at_level(logging.WARNING, logger="aemg.datasets.uci"):
        recs = list(UCI.read(root))
    assert len(recs) == 2 and not [m for m in caplog.messages if "time column jumps" in m]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case,match", [
    ("seconds", r"rows logged at 200-5000 per second.*found 1 rows per second"),
    ("backwards", r"time 5 after 10 in data row 12"),
    ("fraction", r"time 3.5 in data row 4"),
])
def test_uci_time_column_in_other_units_or_unordered_is_refused(tmp_path, case, match):
    if case == "seconds":  # times in ms of a 1 Hz logger: 1 row/s cannot hold a 200 Hz stream
        t = np.arange(3000) * 1000.0
    else:
        t = np.arange(3000, dtype=np.float64)
        if case == "backwards":
            t[10], t[11] = 10, 5
        else:
            t[3] = 3.5
    root, _ = _uci_root(tmp_path, t)
    with pytest.raises(DataFormatError, match=match) as err:
        list(UCI.read(root))
    assert "1_raw_data_13-12_22.03.16.txt" in str(err.value)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_prepare_of_a_uci_file_with_a_gap_keeps_both_parts(tmp_path):
    from aemg.corpus import prepare

    t = np.r_[np.arange(4000), 600_000 + 3999 + np.arange(3000)].astype(np.float64)
    root, _ = _uci_root(tmp_path, t)
    corpus = prepare("uci-gestures", root, tmp_path / "c", progress=False)
    rows = corpus.recordings.sort_values("order")
    assert list(rows["order"]) == [0, 1, 2]
    assert rows["recording_id"].str.endswith("-part2").sum() == 1
    assert list(rows["n_samples"]) == [800, 600, 600]  # 4 s, 3 s and 3 s at 200 Hz: no 600 s of invented data


# ---------------------------------------------------------------- .npy content

def _write_bad_npy(path: Path, case: str) -> None:
    if case == "complex":
        np.save(path, np.zeros((50, 2), np.complex128))
    elif case == "string":
        np.save(path, np.full((50, 2), "1.0"))
    elif case == "bytes":
        np.save(path, np.full((50, 2), b"1.0"))
    elif case == "bool":
        np.save(path, np.zeros((50, 2), bool))
    elif case == "structured":
        np.save(path, np.zeros((50, 2), [("a", "f4"), ("b", "f4")]))
    elif case == "object":
        np.save(path, np.array([[1.0, {"x": 1}]] * 50, dtype=object), allow_pickle=True)
    elif case == "npz":
        np.savez(path.with_suffix(".npz"), np.zeros((50, 2)))
        path.with_suffix(".npz").rename(path)
    elif case == "pickle":
        path.write_bytes(pickle.dumps(np.zeros((50, 2))))
    elif case == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.txt", "1")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case,found", [
    ("complex", "dtype <c16 (complex128)"),
    ("string", "dtype <U3 (str96)"),
    ("bytes", "dtype |S3 (bytes24)"),
    ("bool", "dtype |b1 (bool)"),
    ("structured", "dtype |V8"),
    ("object", "an object array (a pickle)"),
    ("npz", "a zip archive (an .npz renamed .npy?)"),
    ("zip", "a zip archive"),
    ("pickle", "no .npy header"),
])
def test_npy_that_is_not_a_real_numeric_array_is_refused_in_one_line(tmp_path, capsys, case, found):
    root = _manifest(tmp_path, bad_file="bad.npy")
    _write_bad_npy(root / "bad.npy", case)
    with pytest.raises(DataFormatError) as err:
        list(read_manifest(root))
    msg = str(err.value)
    assert found in msg and str(root / "bad.npy") in msg and "row 3" in msg, msg
    assert "a .npy array of real numbers" in msg and "allow_pickle" not in msg
    assert main(["import", str(root), "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    assert found in _one_line_error(capsys, "import")


def test_numeric_npy_dtypes_still_load(tmp_path):
    root = _manifest(tmp_path)
    for dtype in ("int16", "uint8", "float16", "float64", ">f4"):
        np.save(root / "bad.npy", np.ones((50, 2), dtype))
        recs = list(read_manifest(root))
        assert recs[1].signal.dtype == np.float32 and np.all(recs[1].signal == 1)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fs", ["1e10", "0.001", "0", "nan"])
def test_simulate_refuses_an_implausible_rate_before_any_work(tmp_path: Path, fs: str, capsys):
    from aemg.cli import main

    assert main(["simulate", "--out", str(tmp_path / "sim"), "--fs", fs, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aemg simulate: error: --fs: expected") and "found" in err[0]
    assert not (tmp_path / "sim").exists()
