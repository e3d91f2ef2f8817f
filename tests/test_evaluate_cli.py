"""``aemg evaluate``: the paired tests, the method registry, the dataset splits and the command end to end."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from aemg.cli import main
from aemg.corpus import import_manifest, prepare
from aemg.errors import OptionError
from aemg.evaluate.baselines import WindowBaseline
from aemg.evaluate.folds import split_folds
from aemg.evaluate.registry import ENCODER_MODULE, method_factories, parse_methods
from aemg.evaluate.report import order_methods
from aemg.evaluate.stats import friedman, wilcoxon
from test_evaluate_baselines import synthetic
from test_myodisco import write_myodisco

QUIET = ["--log-level", "ERROR"]
SUMMARY_KEYS = {"dataset", "protocol", "n_subjects", "scale", "methods"}
METRIC_KEYS = {"accuracy", "balanced_accuracy", "macro_f1"}


# ------------------------------------------------------------------------------------------- tests of figures

def test_wilcoxon_on_known_vectors():
    # hand-checked: 5 differences, all positive -> W- = 0; exact two-sided p = 2 / 2**5
    r = wilcoxon([0.9, 0.8, 0.7, 0.6, 0.5], [0.8, 0.6, 0.4, 0.2, 0.0])
    assert r.n == 5 and r.statistic == 0.0 and r.p_value == pytest.approx(0.0625)
    # against scipy directly, on vectors with mixed signs
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.4, 0.9, 8), rng.uniform(0.4, 0.9, 8)
    ref = scipy.stats.wilcoxon(a, b)
    got = wilcoxon(a, b)
    assert got.statistic == pytest.approx(ref.statistic) and got.p_value == pytest.approx(ref.pvalue)
    # edge cases: equal scores give p = 1; NaN pairs are dropped; no pair at all is NaN
    assert wilcoxon([0.5, 0.6], [0.5, 0.6]).p_value == 1.0
    assert wilcoxon([0.9, math.nan, 0.7], [0.1, 0.5, 0.2]).n == 2
    assert math.isnan(wilcoxon([math.nan], [0.1]).p_value)


def test_friedman_on_known_vectors():
    # hand-checked: 3 methods ranked the same on each of n = 4 subjects: R = (4, 8, 12),
    # chi2 = 12 / (n k (k + 1)) * sum R^2 - 3 n (k + 1) = 12 / 48 * 224 - 48 = 8, p = exp(-8 / 2) (df 2)
    r = friedman({"a": [0.9, 0.8, 0.7, 0.95], "b": [0.5, 0.6, 0.4, 0.55], "c": [0.1, 0.2, 0.3, 0.15]})
    assert r.n == 4 and r.statistic == pytest.approx(8.0) and r.p_value == pytest.approx(math.exp(-4.0))
    rng = np.random.default_rng(5)
    v = {m: rng.uniform(0.3, 0.9, 6) for m in "abcd"}
    ref = scipy.stats.friedmanchisquare(*v.values())
    got = friedman(v)
    assert got.statistic == pytest.approx(ref.statistic) and got.p_value == pytest.approx(ref.pvalue)
    assert math.isnan(friedman({"a": [1.0], "b": [2.0]}).p_value)  # fewer than 3 methods


# ------------------------------------------------------------------------------------------- the registry

def test_registry_knows_the_baselines_and_builds_fresh_methods():
    f = method_factories(["lda-td", "svm-tdar"])
    assert list(f) == ["lda-td", "svm-tdar"]
    one, two = f["lda-td"](), f["lda-td"]()
    assert isinstance(one, WindowBaseline) and one is not two and one.name == "lda-td"
    with pytest.raises(OptionError, match="--methods nope: expected one of .*lda-td"):
        method_factories(["nope"])
    assert parse_methods(" lda-td, ,svm-tdar,lda-td") == ["lda-td", "svm-tdar"]
    assert order_methods(["lda-td", "scratch", "aemg-finetune"]) == ("aemg-finetune", "lda-td", "scratch")


def test_registry_plugs_in_encoder_methods(monkeypatch, tmp_path):
    calls = []

    def builder(run_dir, corpus):
        calls.append((run_dir, corpus))
        return lambda: types.SimpleNamespace(name="aemg-probe")

    fake = types.ModuleType(ENCODER_MODULE)
    fake.ENCODER_METHODS = {"aemg-probe": builder}
    monkeypatch.setitem(sys.modules, ENCODER_MODULE, fake)
    f = method_factories(["aemg-probe", "lda-td"], run_dir=tmp_path, corpus="C")
    assert calls == [(tmp_path, "C")] and f["aemg-probe"]().name == "aemg-probe"
    with pytest.raises(OptionError, match="--run: expected a run directory"):
        method_factories(["aemg-probe"])


# ------------------------------------------------------------------------------------------- splits

@pytest.fixture(scope="session")
def corpus_lts(real_root, tmp_path_factory):
    return prepare("long-term-semg", real_root / "long-term-semg", tmp_path_factory.mktemp("lts") / "corpus",
                   progress=False)


@pytest.mark.slow
def test_long_term_semg_split_day1_to_later_days(corpus_lts):
    folds = split_folds(corpus_lts.trials, "long-term-semg", corpus_lts.recordings)
    subjects = sorted(set(corpus_lts.trials["subject"]))
    assert len(folds) == 2 * len(subjects) == 8
    tr = corpus_lts.trials.set_index("trial")
    for f in folds:
        assert set(tr.loc[list(f.train_trials), "session"]) == {"day1"}
        (session,) = f.test_sessions
        assert set(tr.loc[list(f.test_trials), "session"]) == {session}
        assert set(tr.loc[list(f.test_trials), "subject"]) == set(f.test_subjects)
        assert f.condition == {"day2": "armband_position=I", "day3": "armband_position=O"}[session]
    assert sorted({f.test_sessions[0] for f in folds}) == ["day2", "day3"]


@pytest.fixture(scope="module")
def corpus_md(tmp_path_factory):
    d = tmp_path_factory.mktemp("md")
    return prepare("myodisco", write_myodisco(d / "MyoDisCo"), d / "corpus", progress=False)


@pytest.mark.slow
def test_myodisco_split_day1_to_day2_then_day2_to_positions(corpus_md):
    folds = split_folds(corpus_md.trials, "myodisco", corpus_md.recordings)
    got = {(f.test_subjects[0].rsplit("/", 1)[1], f.train_sessions, f.test_sessions[0], f.condition) for f in folds}
    assert got == {("S1", ("day1",), "day2", "limb_position=0"), ("S7", ("day1",), "day2", "limb_position=0"),
                   *{("S1", ("day2",), f"position{p}", f"limb_position={p}") for p in range(1, 5)}}
    assert len({f.name for f in folds}) == len(folds) == 6  # unique names, S10 (no day2) left out
    tr = corpus_md.trials.set_index("trial")
    for f in folds:
        assert not set(f.train_trials) & set(f.test_trials)
        assert set(tr.loc[list(f.train_trials), "session"]) == set(f.train_sessions)


def test_split_on_tables_alone_names_each_later_session_and_its_placement():
    import pandas as pd

    rows = [{"subject": f"long-term-semg/all/sub{s}", "session": f"day{d}", "gesture_key": g, "repetition": 2 * d + r,
             "recording_id": f"{s}/{d}/{g}/{r}"} for s in (1, 2) for d in (1, 2, 3, 10) for g in "ab" for r in (0, 1)]
    trials = pd.DataFrame(rows).assign(trial=lambda t: range(len(t)))
    pos = {1: "N", 2: "I", 3: "O", 10: "N"}
    recs = pd.DataFrame([{"subject": r["subject"], "session": r["session"],
                          "recording_attrs": {"armband_position": pos[int(r["session"][3:])]}} for r in rows])
    folds = split_folds(trials, "long-term-semg", recs)
    assert [f.test_sessions[0] for f in folds[:3]] == ["day2", "day3", "day10"]  # natural order, however many days
    assert [f.condition for f in folds[:3]] == ["armband_position=I", "armband_position=O", "armband_position=N"]
    assert len(folds) == 6 and all(f.train_sessions == ("day1",) for f in folds)
    assert all(f.condition == "" for f in split_folds(trials, "long-term-semg"))  # no recordings: no placement
    with pytest.raises(ValueError, match="no cross-session split defined"):
        split_folds(trials, "uci-gestures")


# ------------------------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def separable_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ev-sep")
    import_manifest(synthetic(d / "raw", shuffle=False, n_subjects=3, reps=3), d / "corpus", progress=False)
    return d / "corpus"


def test_evaluate_json_and_files_on_a_separable_corpus(separable_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = QUIET + ["evaluate", "--corpus", str(separable_dir), "--out", str(out), "--methods", "lda-td",
                    "--k", "0,1", "--json", "--no-progress"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out)  # exactly one object on stdout
    assert cap.out.count("\n") == 1 and set(summary) == SUMMARY_KEYS
    assert summary["protocol"] == "loso" and summary["n_subjects"] == 3 and summary["scale"] == "calibration"
    assert set(summary["methods"]) == {"lda-td"} and set(summary["methods"]["lda-td"]) == {"0", "1"}
    assert all(set(v) == METRIC_KEYS for v in summary["methods"]["lda-td"].values())
    assert summary["methods"]["lda-td"]["0"]["accuracy"] >= 0.95
    for name in ("results.json", "results.md", "accuracy_vs_k.png", "confusion-lda-td.png"):
        assert (out / name).is_file(), name
    assert (out / "accuracy_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    res = json.loads((out / "results.json").read_text())
    assert res["corpus"]["hash"] and res["run"] is None and res["scale"] == "calibration"
    per = res["results"]["lda-td"]
    assert len(per) == 3 and all(set(v) == {"0", "1"} for v in per.values())
    for subject, ks in per.items():
        assert ks["0"]["test_subjects"] == [subject] and subject not in ks["0"]["train_subjects"]
        assert METRIC_KEYS <= set(ks["1"])
    assert "± " in (out / "results.md").read_text()
    # a second run without --overwrite is refused in one line; with it, it replaces the results
    assert main(argv) == 1
    assert "--out" in _one_line(capsys) and "--overwrite" in _one_line.last
    assert main(argv + ["--overwrite"]) == 0


def test_evaluate_three_methods_gives_the_friedman_test(separable_dir, tmp_path, capsys, monkeypatch):
    import aemg.evaluate.baselines as b

    def renamed(name: str):
        def build(**kw):
            m = b.lda_td(**kw)
            m.name = name
            return m
        return build

    monkeypatch.setitem(b.BASELINES, "lda-td-copy", renamed("lda-td-copy"))  # more methods without the SVM's cost
    monkeypatch.setitem(b.BASELINES, "lda-td-copy2", renamed("lda-td-copy2"))
    out = tmp_path / "eval"
    assert main(QUIET + ["evaluate", "--corpus", str(separable_dir), "--out", str(out), "--k", "0", "--methods",
                         "lda-td,lda-td-copy,lda-td-copy2", "--scale", "session", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "lda-td" in text and "k=0" in text
    md = (out / "results.md").read_text()
    assert "Wilcoxon" in md and "Friedman" in md and "n = 3" in md and "weak" in md
    res = json.loads((out / "results.json").read_text())
    assert res["tests"]["0"]["reference"] == "lda-td" and res["tests"]["0"]["friedman"] is not None


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aemg evaluate: error: ") and "Traceback" not in err, err
    _one_line.last = lines[0]
    return lines[0]


@pytest.mark.parametrize("extra, needle", [
    (["--methods", "nope"], "--methods nope: expected one of"),
    (["--k", "a,b"], "--k a,b: expected comma-separated whole numbers"),
    (["--k", "0,3"], "--k 0,3: expected k below the fewest repetitions"),
    (["--protocol", "split"], "--protocol split: expected a dataset with its own cross-session split"),
    (["--run", "/nonexistent/run"], "--run /nonexistent/run: expected a run directory"),
])
def test_errors_are_one_line(separable_dir, tmp_path, capsys, extra, needle):
    argv = QUIET + ["evaluate", "--corpus", str(separable_dir), "--out", str(tmp_path / "e"), "--no-progress", *extra]
    assert main(argv) == 1
    assert needle in _one_line(capsys)
    assert not (tmp_path / "e" / "results.json").exists()


def test_a_missing_corpus_is_one_line(tmp_path, capsys):
    assert main(QUIET + ["evaluate", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "e")]) == 1
    assert "corpus folder not found" in _one_line(capsys)


@pytest.fixture(scope="module")
def cote_allard_eval_dir(real_root, tmp_path_factory) -> Path:
    """Côté-Allard's 3 Evaluation subjects only, prepared from a copy of their real files."""
    d = tmp_path_factory.mktemp("ca-eval")
    shutil.copytree(real_root / "cote-allard" / "EvaluationDataset", d / "raw" / "EvaluationDataset")
    prepare("cote-allard", d / "raw", d / "corpus", progress=False)
    return d / "corpus"


@pytest.mark.slow
def test_evaluate_lda_on_three_real_subjects_beats_chance(cote_allard_eval_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(QUIET + ["evaluate", "--corpus", str(cote_allard_eval_dir), "--out", str(out), "--methods", "lda-td",
                         "--k", "0,1", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == SUMMARY_KEYS and summary["dataset"] == "cote-allard" and summary["n_subjects"] == 3
    chance = 1 / 7
    acc = {k: v["accuracy"] for k, v in summary["methods"]["lda-td"].items()}
    assert acc["0"] > chance + 0.2 and acc["1"] > acc["0"]  # measured: 0.60 at k = 0, 0.82 at k = 1
    for name in ("results.json", "results.md", "accuracy_vs_k.png", "confusion-lda-td.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    assert len(res["folds"]) == 6 and res["classes"][0] == "hand_close"
    # split protocol on the same corpus: training0 -> Test0, Test1 per subject
    assert main(QUIET + ["evaluate", "--corpus", str(cote_allard_eval_dir), "--out", str(tmp_path / "split"),
                         "--methods", "lda-td", "--protocol", "split", "--json", "--no-progress"]) == 0
    split = json.loads(capsys.readouterr().out)
    assert set(split["methods"]["lda-td"]) == {"Test0", "Test1"} and split["methods"]["lda-td"]["Test0"]["accuracy"] > chance


def test_evaluate_within_subject_has_one_key(separable_dir, tmp_path, capsys):
    assert main(QUIET + ["evaluate", "--corpus", str(separable_dir), "--out", str(tmp_path / "w"), "--methods",
                         "lda-td", "--protocol", "within", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["protocol"] == "within" and set(summary["methods"]["lda-td"]) == {"within"}
    assert summary["methods"]["lda-td"]["within"]["accuracy"] >= 0.9
