"""``aemg pretrain --exclude-subject``: pre-training on a target dataset's other subjects (in-domain), with the
provenance that lets evaluation test the left-out ones, and the benchmark's choice of such a run."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from aemg.cli import main
from aemg.errors import DataFormatError, OptionError
from aemg.evaluate.encoder_methods import check_run_subjects
from aemg.train.sources import load_token_sources

LEFT_OUT = "cote-allard/evaluation/Female0"


def test_load_token_sources_leaves_the_subjects_out(corpus_cote_allard):
    c = corpus_cote_allard
    full, = load_token_sources([c.path], progress=False)
    part, = load_token_sources([c.path], progress=False, exclude_subjects=[LEFT_OUT])
    assert LEFT_OUT in full.subjects and LEFT_OUT not in part.subjects
    assert sorted(part.subjects) == sorted(set(full.subjects) - {LEFT_OUT})
    assert len(part.recordings) == sum(r.subject != LEFT_OUT for r in full.recordings) < len(full.recordings)
    d = part.describe()
    assert d["excluded_subjects"] == [LEFT_OUT] and LEFT_OUT not in d["subjects"]
    assert d["token_hash"] != full.describe()["token_hash"]  # (resuming with other exclusions is refused)
    # a typo would otherwise leak the subject: refused before anything is tokenized
    with pytest.raises(OptionError, match="--exclude-subject cote-allard/evaluation/Femal0: expected the id"):
        load_token_sources([c.path], progress=False, exclude_subjects=["cote-allard/evaluation/Femal0"])


def test_pretrain_exclude_subject_then_evaluation_may_test_it(corpus_cote_allard, tmp_path, capsys):
    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--log-level", "ERROR", "pretrain", "--config", "tiny", "--max-steps", "2", "--corpus",
                     str(corpus_cote_allard.path), "--exclude-subject", LEFT_OUT, "--out", str(run),
                     "--no-progress"]) == 0
    corpus, = json.loads((run / "run.json").read_text())["corpora"]
    assert LEFT_OUT not in corpus["subjects"] and corpus["excluded_subjects"] == [LEFT_OUT]
    assert len(corpus["subjects"]) == len(corpus_cote_allard.subjects) - 1
    check_run_subjects(run, [LEFT_OUT])  # the left-out subject may be tested
    with pytest.raises(DataFormatError, match="evaluation/Female1"):
        check_run_subjects(run, ["cote-allard/evaluation/Female1"])  # one it saw may not
    rc = main(["--log-level", "ERROR", "pretrain", "--config", "tiny", "--max-steps", "2", "--corpus",
               str(corpus_cote_allard.path), "--exclude-subject", "evaluation/Female0", "--out",
               str(tmp_path / "typo"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "--exclude-subject evaluation/Female0: expected the id of a subject" in err
    assert not (tmp_path / "typo").exists()


def _bench():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_loso

    return bench_loso


def _fake_run(root: Path, name: str, corpora: dict[str, list[str]]) -> Path:
    run = root / name
    run.mkdir()
    (run / "encoder.pt").write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"corpora": [{"dataset": d, "subjects": s} for d, s in corpora.items()]}))
    return run


def test_bench_picks_the_in_domain_run_that_never_saw_the_tested_subjects(tmp_path):
    bench = _bench()
    _fake_run(tmp_path, "other", {"3dc": ["3dc/all/P1"], "cote-allard": ["cote-allard/a", "cote-allard/b"]})
    _fake_run(tmp_path, "domain", {"3dc": ["3dc/all/P1"], "uci-gestures": ["uci-gestures/all/26"],
                                   "cote-allard": ["cote-allard/a"]})
    _fake_run(tmp_path, "all", {"3dc": ["3dc/all/P1"], "uci-gestures": ["uci-gestures/all/01", "uci-gestures/all/26"]})
    pick = bench.stored_run_for
    assert pick("uci-gestures", tmp_path).name == "other"  # no tested subjects given: never saw the dataset
    assert pick("uci-gestures", tmp_path, {"uci-gestures/all/01"}).name == "domain"  # saw its other subjects
    assert pick("uci-gestures", tmp_path, {"uci-gestures/all/26"}).name == "other"  # the one that saw 26: never
    with pytest.raises(SystemExit, match="without the tested subjects of 3dc"):
        pick("3dc", tmp_path, {"3dc/all/P1"})
