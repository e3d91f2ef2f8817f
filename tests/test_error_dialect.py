"""Issue 9 (F): every error path ends in one line, ``aemg <command>: error: <where>: expected ...; found ...``.

Covers bad ``--set`` items, hardware options this machine lacks, divergence at a huge learning rate
(the run folder stays resumable), 1-based file rows for every kind of bad cell in the text readers,
numbers printed as numbers (never ``np.float64(...)``), and ``--no-progress`` accepted by every
command that shows progress.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aemg.cli import build_parser, main
from aemg.datasets._common import check_finite, myo_counts_from_scaled, read_csv, read_numeric_text
from aemg.datasets.generic import read_manifest
from aemg.errors import DataFormatError, OptionError


def _one_line_error(capsys, command: str, *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f"aemg {command}: error: ") and "expected" in line and "Traceback" not in line, line
    for f in fragments:
        assert f in line, line
    return line


# ---------------------------------------------------------------------- --set KEY=VALUE
@pytest.mark.parametrize("item, fragments", [
    ("stage1.lr=abc", ("--set stage1.lr=abc: expected a number; found 'abc'",)),
    ("stage1.lr=nan", ("a finite number", "'nan'")),
    ("stage1.max_steps=1.5", ("a whole number", "'1.5'")),
    ("data.rotate_unknown=3", ("true or false", "'3'")),
    ("stage1.betas=0.9", ("2 numbers", "'0.9'")),
    ("stage1.learning_rate=1", ("a field of stage1", "lr", "no config field 'learning_rate'")),
    ("stage3.lr=1", ("a field of the config", "no config field 'stage3'")),
    ("stage1=3", ("one field of the section stage1",)),
    ("stage1.lr.x=1", ("stage1.lr is a value",)),
    ("stage1.lr", ("KEY=VALUE", "no '='")),
    ("=1", ("KEY=VALUE",)),
])
def test_every_bad_set_item_is_one_line(item, fragments, tmp_path, capsys):
    rc = main(["pretrain", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "run"), "--config", "tiny",
               "--set", item])
    assert rc == 1
    _one_line_error(capsys, "pretrain", *fragments)
    assert not (tmp_path / "run").exists()


def test_good_set_items_are_parsed_as_their_field_types():
    from aemg.train.config import get_config

    cfg = get_config("tiny").override(["stage1.lr=1e-2", "stage1.max_steps=1e2", "data.rotate_unknown=False",
                                       "stage1.betas=0.8,0.9", "stage2.betas=[0.7, 0.8]", "name=mine"])
    assert cfg.stage1.lr == 0.01 and cfg.stage1.max_steps == 100 and isinstance(cfg.stage1.max_steps, int)
    assert cfg.data.rotate_unknown is False and cfg.stage1.betas == (0.8, 0.9) and cfg.stage2.betas == (0.7, 0.8)
    assert cfg.name == "mine"
    with pytest.raises(OptionError):
        get_config("tiny").override(["stage1.lr=abc"])
    with pytest.raises(ValueError):  # OptionError is a ValueError too (library callers catching that keep working)
        get_config("tiny").override(["stage1.lr=abc"])


def test_a_damaged_config_json_is_one_line(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text("[1, 2")
    assert main(["pretrain", "--corpus", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(bad)]) == 1
    _one_line_error(capsys, "pretrain", str(bad), "a pre-training config.json")
    bad.write_text(json.dumps({"stage9": {}}))
    assert main(["pretrain", "--corpus", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(bad)]) == 1
    _one_line_error(capsys, "pretrain", str(bad), "stage9")


# ---------------------------------------------------------------------- hardware options
def _cuda() -> bool:
    torch = pytest.importorskip("torch")
    return torch.cuda.is_available()


@pytest.mark.parametrize("options, fragments", [
    (["--accelerator", "bogus"], ("--accelerator bogus", "one of cpu, cuda", "available here: cpu")),
    (["--devices", "x"], ("--devices x", "a whole number >= 1, or auto", "'x'")),
    (["--devices", "0"], ("--devices 0",)),
    (["--devices", "10000"], ("--devices 10000", "at most", "available here")),
    (["--num-nodes", "0"], ("--num-nodes 0",)),
    (["--strategy", "nonsense"], ("--strategy nonsense", "ddp")),
    (["--precision", "bf17"], ("--precision bf17", "32-true")),
])
def test_hardware_options_are_checked_before_anything_starts(options, fragments, tmp_path, capsys):
    pytest.importorskip("lightning_fabric")
    assert main(["pretrain", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "run"), "--config", "tiny",
                 *options]) == 1
    _one_line_error(capsys, "pretrain", *fragments)
    assert not (tmp_path / "run").exists()


def test_an_accelerator_this_machine_lacks_is_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("lightning_fabric")
    missing = [a for a, ok in (("cuda", torch.cuda.is_available()), ("gpu", torch.cuda.is_available()),
                               ("mps", torch.backends.mps.is_available())) if not ok]
    if not missing:
        pytest.skip("this machine has both CUDA and MPS")
    for acc in missing:
        assert main(["pretrain", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "run"),
                     "--accelerator", acc]) == 1
        _one_line_error(capsys, "pretrain", f"--accelerator {acc}", "found none", "available here: cpu")


# ---------------------------------------------------------------------- divergence
def _sources():
    from aemg.train import TokenSource
    from aemg.train.synthetic import synthetic_recordings

    recs = synthetic_recordings(n_recordings=4, n_groups=20, content_dim=16, seed=0, datasets=("synthA",))
    return [TokenSource("synthA", "/corpora/synthA", "hash-synthA", recs)]


@pytest.mark.parametrize("grad_clip", [1.0, 0.0])
def test_divergence_in_stage2_is_one_line_and_the_run_resumes(grad_clip, tmp_path):
    pytest.importorskip("lightning_fabric")
    pytest.importorskip("vector_quantize_pytorch")
    from aemg.errors import TrainingDiverged
    from aemg.train import pretrain
    from aemg.train.config import get_config
    from aemg.train.engine import read_metrics

    cfg = get_config("tiny").override(["stage1.max_steps=6", "stage2.max_steps=30", "ckpt_every=3",
                                       "stage2.lr=1e6", f"stage2.grad_clip={grad_clip}"])
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        pretrain(cfg, _sources(), run, progress=False)
    err = info.value
    msg = str(err)
    assert "\n" not in msg and msg.startswith(f"{run}: expected finite") and "stage 2 step" in msg
    assert "lower stage2.lr" in msg.lower() and "--set stage2.lr=" in msg and "np." not in msg
    assert err.stage == 2 and err.step >= 1 and err.last_checkpoint is not None
    # nothing broken was checkpointed: ckpt.pt holds finite weights at the checkpoint the message names
    torch = pytest.importorskip("torch")
    ck = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    assert (ck["state"]["stage"], ck["state"]["step"]) == err.last_checkpoint
    for part in ("tokenizer", "mtm"):
        for t in (ck[part] or {}).values():
            assert not t.is_floating_point() or bool(torch.isfinite(t).all())
    assert all(np.isfinite(r["loss"]) for r in read_metrics(run / "metrics.jsonl"))
    # the run folder is consistent: --resume reads the last good checkpoint and goes on (to the same divergence)
    with pytest.raises(TrainingDiverged) as again:
        pretrain(cfg, _sources(), run, progress=False, resume=True)
    assert (again.value.stage, again.value.step) == (err.stage, err.step)


@pytest.fixture(scope="module")
def simulated_corpus(tmp_path_factory) -> Path:
    """A tiny simulated corpus (1 subject, 1 repetition) with contraction events to tokenize."""
    folder = tmp_path_factory.mktemp("sim")
    assert main(["--log-level", "ERROR", "simulate", "--out", str(folder / "sim"), "--subjects", "1", "--reps", "1",
                 "--no-progress"]) == 0
    assert main(["--log-level", "ERROR", "import", str(folder / "sim"), "--out", str(folder / "corpus"),
                 "--no-progress"]) == 0
    return folder / "corpus"


def test_divergence_through_the_cli_is_one_line(simulated_corpus, tmp_path, capsys):
    pytest.importorskip("lightning_fabric")
    pytest.importorskip("vector_quantize_pytorch")
    corpus = simulated_corpus
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["--log-level", "ERROR", "pretrain", "--corpus", str(corpus), "--out", str(run), "--config", "tiny",
                 "--max-steps", "8", "--set", "stage1.lr=1e6", "--no-progress"]) == 1
    line = _one_line_error(capsys, "pretrain", str(run), "stage 1 step", "stage1.lr")
    assert "no checkpoint was written" in line or "last good checkpoint" in line
    # with no checkpoint the same --out is usable again at a sane learning rate
    if not (run / "ckpt.pt").exists():
        assert main(["--log-level", "ERROR", "pretrain", "--corpus", str(corpus), "--out", str(run), "--config",
                     "tiny", "--max-steps", "3", "--no-progress"]) == 0


# ---------------------------------------------------------------------- rows: 1-based file lines
BAD_CELLS = {"non-numeric": "abc", "empty": "", "nan": "nan", "inf": "inf", "-inf": "-inf"}


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("kind", [*BAD_CELLS, "extra column", "missing column"])
def test_every_kind_of_bad_cell_names_the_same_row(kind, header, tmp_path):
    """Line 5 of the file (as an editor numbers it; a blank line and the header counted) is the bad one."""
    lines = ["a,b,c"] if header else []
    lines += ["1,2,3", "", "4,5,6"]
    while len(lines) < 4:
        lines.insert(0, "7,8,9")
    bad = {"extra column": "1,2,3,4", "missing column": "1,2"}.get(kind, f"1,{BAD_CELLS.get(kind)},3")
    lines += [bad, "7,8,9"]
    assert lines[4] == bad
    path = tmp_path / "x.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    with pytest.raises(DataFormatError) as a:
        read_numeric_text(path, n_columns=3, skiprows=1 if header else 0)
    with pytest.raises(DataFormatError) as b:
        read_csv(path, "3 numbers a row")
    for err in (a.value, b.value):
        msg = str(err)
        assert str(path) in msg and "row 5" in msg and "np." not in msg, msg
        if kind in BAD_CELLS:
            assert "column 2" in msg, msg


def test_bad_tab_and_whitespace_files_name_the_file_row(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("time\tch1\tclass\n1\t2\t3\n\n4\tx\t6\n")
    with pytest.raises(DataFormatError, match=r"found a malformed line: 'x' in row 4, column 2"):
        read_numeric_text(path, n_columns=3, delimiter="\t", skiprows=1)
    path.write_text("1 2\n  \n3 4\n5 inf\n")
    with pytest.raises(DataFormatError, match=r"the first \(inf\) in row 4, column 2"):
        read_numeric_text(path, n_columns=2, delimiter=None)
    path.write_text("1,2\n3,2.5\n")
    with pytest.raises(DataFormatError, match=r"non-integer value 2\.5 in row 2, column 2"):
        read_numeric_text(path, n_columns=2, integer=True)


def test_toro_ossaba_tables_name_file_rows(tmp_path):
    from aemg.datasets.toro_ossaba import read_table

    path = tmp_path / "t.txt"
    for cell, found in (("x", "malformed line: 'x' in row 4, column 2"), ("", "an empty cell in row 4, column 2"),
                        ("nan", "(nan) in row 4, column 2")):
        path.write_text(f"a\tb\tc\n1\t2\t3\n\n3\t{cell}\t5\n")
        with pytest.raises(DataFormatError) as err:
            read_table(path, 3)
        assert found in str(err.value), str(err.value)
    path.write_text("a\tb\n1\t2\n\n3\n")
    with pytest.raises(DataFormatError, match="found 1 in row 4"):
        read_table(path, 2)


def test_manifest_rows_are_file_lines(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    np.save(root / "ok.npy", np.zeros((20, 8), np.float32))
    (root / "manifest.csv").write_text("file,subject,session,trial,gesture,fs,layout\n"
                                       "ok.npy,S,,t0,rest,200,myo8\n\nok.npy,S,,t1,rest,fast,myo8\n")
    with pytest.raises(DataFormatError, match=r"manifest.csv row 4 \(ok.npy\): expected fs"):
        list(read_manifest(root))
    (root / "manifest.csv").write_text("file,subject,session,trial,gesture,fs,layout\n"
                                       "ok.npy,S,,t0,rest,200,myo8\n\nok.npy,S,,t1,rest,200\n")
    with pytest.raises(DataFormatError, match=r"row 4 .*expected 7 comma-separated cells; found 6"):
        list(read_manifest(root))
    np.save(root / "bad.npy", np.where(np.arange(160).reshape(20, 8) == 26, np.nan, 0.0).astype(np.float32))
    (root / "manifest.csv").write_text("file,subject,session,trial,gesture,fs,layout\nbad.npy,S,,t0,rest,200,myo8\n")
    with pytest.raises(DataFormatError, match=r"row 2 \(bad.npy\).*the first \(nan\) in row 4, column 3"):
        list(read_manifest(root))


# ---------------------------------------------------------------------- numbers as numbers
def test_values_print_as_numbers_not_numpy_reprs(tmp_path):
    with pytest.raises(DataFormatError) as a:
        myo_counts_from_scaled(tmp_path / "f.txt", np.array([[1e-5, 2.5e-5]]), 1e-5)
    with pytest.raises(DataFormatError) as b:
        check_finite(np.array([1.0, np.float64("inf")]), tmp_path / "f.npy")
    path = tmp_path / "i.csv"
    path.write_text("1,2\n3,0.25\n")
    with pytest.raises(DataFormatError) as c:
        read_numeric_text(path, n_columns=2, integer=True)
    for err, shown in ((a, "found value 2.5e-05 in row 1, column 2"), (b, "the first (inf) in position 2"),
                       (c, "non-integer value 0.25")):
        msg = str(err.value)
        assert shown in msg and "np." not in msg and "float64" not in msg, msg


def test_uci_messages_count_the_header_line(tmp_path):
    from aemg.datasets.uci import _line

    path = tmp_path / "1_raw_data_13-12_22.03.16.txt"
    path.write_text("time\tch1\n1\t2\n\n3\t4\n")
    assert [_line(path, 0), _line(path, 1)] == [2, 4]


# ---------------------------------------------------------------------- common options
def _subparsers() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


SHOWS_PROGRESS = ("simulate", "prepare", "import", "tokenize", "pretrain")


def test_every_command_that_shows_progress_accepts_no_progress():
    subs = _subparsers()
    for name in SHOWS_PROGRESS:
        (action,) = [a for a in subs[name]._actions if "--no-progress" in a.option_strings]
        assert action.dest == "no_progress" and action.const is True and action.default is False, name


def test_common_options_mean_the_same_everywhere():
    """``--json`` is a flag printing JSON on stdout, ``--overwrite`` a flag, ``--no-progress`` a flag."""
    for name, sub in _subparsers().items():
        for a in sub._actions:
            if set(a.option_strings) & {"--json", "--overwrite", "--no-progress"}:
                assert a.nargs == 0 and a.default is False, (name, a.option_strings)
                assert a.help and "progress" in a.help if "--no-progress" in a.option_strings else True


def test_tokenize_no_progress_hides_the_bar(simulated_corpus, tmp_path, capsys):
    pytest.importorskip("aemg.tokens")
    corpus = simulated_corpus
    capsys.readouterr()
    assert main(["--log-level", "ERROR", "tokenize", str(corpus), "--json", "--no-progress", "--out",
                 str(tmp_path / "t.npz")]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["path"] and "tokenize" not in out.err
    assert main(["tokenize", str(corpus), "--window-ms", "-5", "--no-progress"]) == 1
    _one_line_error(capsys, "tokenize", "--window-ms -5", "found -5")
    assert main(["tokenize", str(corpus), "--plot", "nope", "--no-progress"]) == 1
    _one_line_error(capsys, "tokenize", "--plot nope", "a recording id of")


def test_prototypes_top_and_out_are_checked(tmp_path, capsys):
    assert main(["prototypes", str(tmp_path), "--top", "0"]) == 1
    _one_line_error(capsys, "prototypes", "--top 0", "found 0")
    assert main(["prototypes", str(tmp_path), "--out", str(tmp_path / "no" / "where.png")]) == 1
    _one_line_error(capsys, "prototypes", "--out", "an existing folder")


def test_option_error_reads_like_data_format_error():
    assert str(OptionError("--x 3", "a thing", "found 3")) == "--x 3: expected a thing; found 3"
    assert str(DataFormatError(Path("f.csv"), "a thing", "found 3")) == "f.csv: expected a thing; found 3"
