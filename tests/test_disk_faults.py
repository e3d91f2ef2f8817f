"""Issue 9 (B): full disks, read-only places and closed pipes give one line (or quiet), never a traceback.

A full disk is simulated by patching ``shutil.disk_usage`` (the free-space check before each large write) and by
making a writer raise ``OSError(ENOSPC)`` mid-write; where this machine lets root mount a small tmpfs, a real
full filesystem and a real read-only one are tried too. Tests run as root here, where ``chmod`` stops nothing,
so a read-only folder is simulated by making every write under it (open for writing, mkdir, rename, unlink)
raise ``OSError(EROFS)``. A closed pipe is a real one: the read end closed before the command starts.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from aemg import atomic
from aemg.cli import COMMANDS, EXIT_BROKEN_PIPE, main
from aemg.errors import DiskFullError, NotWritableError

QUIET = ["--log-level", "ERROR"]


# ------------------------------------------------------------------------------------------- helpers

def _under(path: object, folder: Path) -> bool:
    try:
        p = Path(os.fsdecode(path)).absolute()
    except TypeError:
        return False
    return p == folder or folder in p.parents


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Every write under ``folder`` (create, open for writing, mkdir, rename, remove) fails with EROFS."""
    folder = folder.absolute()
    mp = pytest.MonkeyPatch()
    real_open, real_os_open = builtins.open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def erofs(path: object) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def fake_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and _under(file, folder):
            raise erofs(file)
        return real_open(file, mode, *a, **kw)

    def fake_os_open(path, flags, *a, **kw):
        if flags & write_flags and _under(path, folder):
            raise erofs(path)
        return real_os_open(path, flags, *a, **kw)

    def guard(real: Callable) -> Callable:
        def fake(path, *a, **kw):
            if _under(path, folder):
                raise erofs(path)
            return real(path, *a, **kw)
        return fake

    mp.setattr(builtins, "open", fake_open)
    mp.setattr(io, "open", fake_open)
    mp.setattr(os, "open", fake_os_open)
    for name in ("mkdir", "replace", "rename", "unlink", "remove", "rmdir"):
        mp.setattr(os, name, guard(getattr(os, name)))
    try:
        yield
    finally:
        mp.undo()


def low_disk(monkeypatch: pytest.MonkeyPatch, folder: Path, free: int) -> None:
    """``shutil.disk_usage`` reports ``free`` bytes for anything under ``folder``."""
    real = shutil.disk_usage
    folder = folder.absolute()

    def fake(path):
        u = real(path)
        return type(u)(u.total, u.total - free, free) if _under(path, folder) else u

    monkeypatch.setattr(shutil, "disk_usage", fake)


def one_error_line(capsys: pytest.CaptureFixture, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "error:" in lines[0] and "Traceback" not in captured.err, lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")] if folder.exists() else []


# ------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated dataset, its corpus with a token set, and a 2-step tiny pre-training run."""
    base = tmp_path_factory.mktemp("faults")
    sim, corpus, run = base / "sim", base / "corpus", base / "run"
    assert main(QUIET + ["simulate", "--out", str(sim), "--subjects", "2", "--reps", "1", "--fs", "200",
                         "--no-progress"]) == 0
    assert main(QUIET + ["import", str(sim), "--out", str(corpus), "--no-progress"]) == 0
    assert main(QUIET + ["tokenize", str(corpus), "--json"]) == 0
    if "pretrain" in COMMANDS:
        pytest.importorskip("torch")
        assert main(QUIET + ["pretrain", "--corpus", str(corpus), "--out", str(run), "--config", "tiny",
                             "--max-steps", "2", "--no-progress"]) == 0
    out = {"base": base, "sim": sim, "corpus": corpus, "run": run}
    if "live" in COMMANDS:  # a model directory, and a recording on which it decides something
        out["model"] = base / "model"
        assert main(QUIET + ["finetune", "--run", str(run), "--corpus", str(corpus), "--out", str(out["model"]),
                             "--epochs", "1", "--set", "max_tokens=32"]) == 0
        out["live_recording"] = _decided_recording(corpus, out["model"])
    return out


def _decided_recording(corpus: Path, model: Path) -> str:
    """The id of the first recording of ``corpus`` on which ``model``'s live decoder makes a decision."""
    from aemg.corpus import Corpus
    from aemg.live import LiveDecoder
    from aemg.live.model import LiveModel

    c, m = Corpus(corpus), LiveModel(model)
    for rec in c.iter_recordings():
        dec = LiveDecoder(m, subject=rec.subject, session=rec.session, mains_hz=rec.mains_hz)
        if dec.process(rec.signal) + dec.flush():
            return rec.recording_id
    raise AssertionError(f"no recording of {corpus} on which the model decides anything")


def command_argv(command: str, world: dict[str, Path], out: Path) -> tuple[list[str], bool]:
    """The argv of ``command`` writing under ``out`` (a folder), and whether it writes at all."""
    sim, corpus = world["sim"], world["corpus"]
    if command == "datasets":
        return ["datasets"], False
    if command == "simulate":
        return ["simulate", "--out", str(out / "sim"), "--subjects", "1", "--reps", "1", "--fs", "200",
                "--no-progress"], True
    if command == "prepare":  # a registered dataset: one real 3dc participant
        return ["prepare", "3dc", "--root", str(world["raw3dc"]), "--out", str(out / "c3dc"), "--no-progress"], True
    if command == "import_":
        return ["import", str(sim), "--out", str(out / "c"), "--no-progress"], True
    if command == "info":
        return ["info", str(out / "corpus")], False
    if command == "tokenize":
        return ["tokenize", str(out / "corpus"), "--json", "--no-progress"], True
    if command == "pretrain":
        return ["pretrain", "--corpus", str(corpus), "--out", str(out / "newrun"), "--config", "tiny", "--max-steps",
                "1", "--no-progress"], True
    if command == "prototypes":
        return ["prototypes", str(out / "run"), "--top", "4"], True
    if command == "evaluate":
        return ["evaluate", "--corpus", str(out / "corpus"), "--out", str(out / "eval"), "--methods", "lda-td",
                "--no-progress"], True
    if command == "finetune":  # the module registers `predict` too (walked in test_finetune_cli.py)
        return ["finetune", "--run", str(out / "run"), "--corpus", str(out / "corpus"), "--out", str(out / "model"),
                "--epochs", "1", "--set", "max_tokens=32"], True
    if command == "live":  # reads the model (outside the place) and the corpus, writes nothing
        return ["live", "--model", str(world["model"]), "--replay", f"{out / 'corpus'}:{world['live_recording']}",
                "--speed", "0"], False
    raise AssertionError(f"command {command} has no case in this test: add one")  # a new command must be walked


@pytest.fixture(scope="module")
def raw3dc(real_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 3dc participant copied (real files: `prepare` needs a registered dataset)."""
    root = tmp_path_factory.mktemp("raw3dc") / "3dc"
    src = real_root / "3dc" / "Participant1"
    if not src.is_dir():
        pytest.skip("3dc Participant1 not available")
    shutil.copytree(src, root / "Participant1")
    return root


@pytest.fixture
def ro_place(world: dict[str, Path], raw3dc: Path, tmp_path: Path) -> Path:
    """A folder holding a copy of the corpus and the run, about to be made read-only."""
    place = tmp_path / "ro"
    place.mkdir()
    shutil.copytree(world["corpus"], place / "corpus")
    if world["run"].exists():
        shutil.copytree(world["run"], place / "run")
    world["raw3dc"] = raw3dc
    return place


# ------------------------------------------------------------------------------------------- the walk

@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_a_read_only_place_gives_one_line(command, world, ro_place, capsys, monkeypatch):
    argv, writes = command_argv(command, world, ro_place)
    monkeypatch.chdir(ro_place)
    before = sorted(p.relative_to(ro_place) for p in ro_place.rglob("*"))
    with read_only(ro_place):
        rc = main(QUIET + argv)
    if not writes:  # reading a read-only corpus, or listing datasets, just works
        assert rc == 0
        assert "Traceback" not in capsys.readouterr().err
    else:
        assert rc == 1
        line = one_error_line(capsys, "expected a writable folder", "read-only file system", str(ro_place))
        assert line.startswith(f"aemg {command.rstrip('_')}: error: ")
    assert sorted(p.relative_to(ro_place) for p in ro_place.rglob("*")) == before  # nothing written or removed


def _closed_pipe_run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m aemg argv`` with stdout a pipe whose read end is already closed."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "aemg", *QUIET, *argv], stdout=w, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        os.close(w)


def _copy_world(world: dict[str, Path], raw3dc: Path, folder: Path) -> None:
    world["raw3dc"] = raw3dc
    shutil.copytree(world["corpus"], folder / "corpus")
    if world["run"].exists():
        shutil.copytree(world["run"], folder / "run")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_with_stdout_a_closed_pipe_exits_quietly(command, world, raw3dc, tmp_path, capsys,
                                                               monkeypatch):
    """In this process (fast): sys.stdout writes to a real pipe whose read end is closed."""
    _copy_world(world, raw3dc, tmp_path)
    argv, _ = command_argv(command, world, tmp_path)
    monkeypatch.chdir(tmp_path)
    r, w = os.pipe()
    os.close(r)
    with open(w, "w", encoding="utf-8", closefd=True) as broken:
        monkeypatch.setattr(sys, "stdout", broken)
        rc = main(QUIET + argv)
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    assert rc == EXIT_BROKEN_PIPE
    err = capsys.readouterr().err
    assert err.strip() == "", err


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_as_a_process_with_stdout_a_closed_pipe(command, world, raw3dc, tmp_path):
    """The same as real processes: nothing on stderr (no 'Exception ignored ... BrokenPipeError'), exit 141."""
    _copy_world(world, raw3dc, tmp_path)
    argv, _ = command_argv(command, world, tmp_path)
    done = _closed_pipe_run(argv, tmp_path)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert done.returncode == EXIT_BROKEN_PIPE, (done.returncode, done.stderr)


def test_head_one_on_info_and_datasets(world, tmp_path):
    """The issue's own pipes: ``aemg info C | head -1`` and ``aemg datasets | head -1``."""
    for argv in (["info", str(world["corpus"])], ["datasets"], ["--help"], ["simulate", "--help"]):
        cmd = " ".join([sys.executable, "-m", "aemg", *argv]) + " | head -1"
        done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and len(done.stdout.splitlines()) == 1, done
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


# ------------------------------------------------------------------------------------------- full disks

def test_full_disk_before_a_session_file_names_the_folder_and_the_space(world, tmp_path, capsys, monkeypatch):
    out = tmp_path / "c"
    low_disk(monkeypatch, tmp_path, atomic.MARGIN + 50_000)  # room for the small text files, not for a session
    assert main(QUIET + ["import", str(world["sim"]), "--out", str(out), "--no-progress"]) == 1
    line = one_error_line(capsys, str(out / "subjects"), "expected", "MiB free to write session1.h5", "found")
    assert "found 1.0 MiB free" in line
    assert temporaries(out) == []


def test_full_disk_in_prepare_tokenize_and_pretrain(world, raw3dc, tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(world["corpus"], corpus)
    shutil.rmtree(corpus / "tokens")
    low_disk(monkeypatch, tmp_path, 1000)
    cases = [
        (["prepare", "3dc", "--root", str(raw3dc), "--out", str(tmp_path / "p"), "--no-progress"], tmp_path / "p"),
        (["tokenize", str(corpus), "--json", "--no-progress"], corpus / "tokens"),
    ]
    if "pretrain" in COMMANDS:
        pytest.importorskip("torch")
        cases.append((["pretrain", "--corpus", str(world["corpus"]), "--out", str(tmp_path / "run"), "--config",
                       "tiny", "--max-steps", "1", "--no-progress"], tmp_path / "run"))
    for argv, folder in cases:
        assert main(QUIET + argv) == 1, argv
        one_error_line(capsys, str(folder), "free to write", "found 1000 bytes free")
        assert temporaries(tmp_path) == [], argv


def test_enospc_while_writing_becomes_one_line_and_leaves_no_temporary(world, tmp_path, capsys, monkeypatch):
    from aemg.corpus import store

    def full(group, rec):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store, "write_recording", full)
    out = tmp_path / "c"
    assert main(QUIET + ["import", str(world["sim"]), "--out", str(out), "--no-progress"]) == 1
    one_error_line(capsys, str(out / "subjects"), "free to write session1.h5; found no space left on the device")
    assert temporaries(out) == []
    with pytest.raises(DiskFullError) as exc:  # an HDF5-style message without an errno counts too
        with atomic.atomic_path(tmp_path / "x.h5") as tmp:
            tmp.write_bytes(b"x")
            raise OSError("Can't write data (file write failed: errno = 28, error message = 'No space left')")
    assert str(tmp_path) in str(exc.value) and temporaries(tmp_path) == []


def test_torch_save_failing_on_a_full_disk(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from aemg.train import checkpoint

    def fail(obj, f):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0: file write failed")

    monkeypatch.setattr(torch, "save", fail)
    state = {"w": torch.zeros(1000)}
    real, calls = shutil.disk_usage, []

    def filling(path):  # room at the check before writing; full by the time the write fails
        calls.append(path)
        u = real(path)
        return type(u)(u.total, u.total, 10 ** 9 if len(calls) == 1 else 0)

    monkeypatch.setattr(shutil, "disk_usage", filling)
    with pytest.raises(DiskFullError, match="expected .* free to write ckpt.pt; found no space left on the device"):
        checkpoint.atomic_torch_save(state, tmp_path / "ckpt.pt")
    assert temporaries(tmp_path) == [] and not (tmp_path / "ckpt.pt").exists()


def test_estimates_cover_what_is_written(tmp_path):
    a = np.zeros((8, 1000), np.float32)
    assert atomic.estimate_nbytes({"a": a, "b": [a, "xyz"]}) >= 2 * a.nbytes + 3
    with pytest.raises(DiskFullError):
        atomic.require_space(tmp_path, 1 << 62, "huge.bin")


# ------------------------------------------------------------------------------------------- umask

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_honour_the_umask(mask, mode, world, tmp_path):
    old = os.umask(mask)
    try:
        assert main(QUIET + ["import", str(world["sim"]), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
        assert main(QUIET + ["tokenize", str(tmp_path / "c"), "--json"]) == 0
        atomic.atomic_write_text(tmp_path / "c" / "note.txt", "x")
        if "pretrain" in COMMANDS:
            pytest.importorskip("torch")
            from aemg.train.checkpoint import atomic_torch_save

            atomic_torch_save({"x": 1}, tmp_path / "c" / "x.pt")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert any(p.suffix == ".h5" for p in files) and any(p.suffix == ".npz" for p in files)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(mode) for p in files}


# ------------------------------------------------------------------------------------------- library errors

def test_not_writable_errors_from_the_library(tmp_path):
    with read_only(tmp_path):
        with pytest.raises(NotWritableError, match="expected a writable folder; found a read-only file system"):
            atomic.atomic_write_text(tmp_path / "sub" / "a.txt", "x")
        with pytest.raises(NotWritableError, match=str(tmp_path)):
            atomic.atomic_write_text(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- a real tmpfs

@contextmanager
def tmpfs(folder: Path, size: str, *options: str) -> Iterator[Path]:
    folder.mkdir()
    opts = ",".join([f"size={size}", *options])
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.skipif(not shutil.which("mount") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_real_small_filesystem_full_and_read_only(world, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tmpfs(tmp_path / "small", "1200k") as small:  # a real full disk: no crash, one line, no temporary
        done = subprocess.run([sys.executable, "-m", "aemg", *QUIET, "import", str(world["sim"]), "--out",
                               str(small / "c"), "--no-progress"], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 1, done
        assert len(done.stderr.strip().splitlines()) == 1 and "free to write" in done.stderr, done.stderr
        assert temporaries(small) == []
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:  # EROFS stops root too
        done = subprocess.run([sys.executable, "-m", "aemg", *QUIET, "simulate", "--out", str(ro / "sim"),
                               "--subjects", "1", "--no-progress"], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 1, done
        assert done.stderr.strip() == (f"aemg simulate: error: {ro / 'sim'}: expected a writable folder; "
                                       "found a read-only file system"), done.stderr
