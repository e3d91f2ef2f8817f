"""aemg.tokens on the real datasets in ../shared/data (corpora from the session fixtures in conftest.py).

The issue's figures, with one default setting for all four labelled datasets:
coverage (an event covers >= 25% of the repetition) >= 90% and any overlap >= 97% of the gesture
repetitions; at most 1.5 false events per minute of rest (counted by onset) and at most 10% of rest
repetitions hit for >= 25% of their duration.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from aemg.tokens import TokenSet, tokenize_corpus

CORPORA = ["corpus_uci", "corpus_cote_allard", "corpus_ciil", "corpus_3dc"]


@pytest.fixture(scope="module")
def tokenized(request):
    cache: dict[str, tuple[object, TokenSet]] = {}

    def get(name: str):
        if name not in cache:
            corpus = request.getfixturevalue(name)
            cache[name] = (corpus, tokenize_corpus(corpus))
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPORA)
def test_coverage_and_rest_targets(tokenized, name):
    corpus, ts = tokenized(name)
    m = ts.metrics()
    assert m["n_gesture_trials"] > 0 and m["n_rest_trials"] > 0
    assert m["coverage"] >= 0.90, m
    assert m["coverage_any"] >= 0.97, m
    assert m["rest_events_per_minute"] <= 1.5, m
    assert m["rest_hit_fraction"] <= 0.10, m


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPORA)
def test_every_labelled_trial_is_kept(tokenized, name):
    corpus, ts = tokenized(name)
    assert ts.n_trials == len(corpus.trials)
    assert sorted(ts.trials.id.tolist()) == sorted(corpus.trials["trial"].tolist())
    seqs = ts.sequences()
    assert len(seqs) == ts.n_trials
    # groups never straddle recordings, stay inside them, and span at most 100 ms
    gr = ts.groups
    n = ts.recordings.n_samples[gr.recording]
    assert (gr.start >= 0).all() and (gr.stop <= n).all()
    assert ((gr.stop - gr.start) * 1000.0 / ts.fs <= 100.0 + 1e-9).all()
    assert np.isfinite(ts.tokens.content).all()
    batch = ts.collate(trials=list(range(min(8, ts.n_trials))))
    assert batch["content"].shape[0] == min(8, ts.n_trials)


@pytest.mark.slow
def test_cli_json_and_plot(corpus_cote_allard, tmp_path, capsys):
    from aemg.cli import main

    out = tmp_path / "tokens" / "events.npz"
    assert main(["tokenize", str(corpus_cote_allard.path), "--json", "--plot", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("n_groups", "n_tokens", "coverage", "coverage_any", "rest_events_per_minute", "rest_hit_fraction",
                "onset_delay_ms"):
        assert key in doc
    assert doc["coverage"] >= 0.9
    ts = TokenSet.load(out)
    assert ts.n_groups == doc["n_groups"] and ts.n_tokens == doc["n_tokens"]
    png = doc["plot"]
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert main(["tokenize", str(corpus_cote_allard.path), "--json", "--window-ms", "200",
                 "--out", str(tmp_path / "w.npz")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "windows" and doc["n_groups"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["corpus_ciil", "corpus_3dc"])
def test_per_subject_figures_add_up_to_the_pooled_ones(tokenized, name):
    """Each subject scored alone: the subjects partition the corpus's trials, rest minutes and rest events."""
    from aemg.tokens.metrics import subject_summary

    corpus, ts = tokenized(name)
    pooled, subjects = ts.metrics(), ts.metrics_by_subject()
    assert set(subjects) == set(corpus.subjects) and len(subjects) > 1
    assert sum(m["n_gesture_trials"] for m in subjects.values()) == pooled["n_gesture_trials"]
    assert sum(m["n_rest_trials"] for m in subjects.values()) == pooled["n_rest_trials"]
    assert sum(m["rest_events"] for m in subjects.values()) == pooled["rest_events"]
    assert np.isclose(sum(m["rest_minutes"] for m in subjects.values()), pooled["rest_minutes"])
    covered = sum(m["coverage"] * m["n_gesture_trials"] for m in subjects.values())
    assert np.isclose(covered, pooled["coverage"] * pooled["n_gesture_trials"])
    q = subject_summary(subjects)
    rates = [m["rest_events_per_minute"] for m in subjects.values()]
    assert q["n_subjects"] == len(subjects) and q["rest_events_per_minute_max"] == max(rates)
    assert q["n_above_limit"] == sum(r > 1.5 for r in rates)
    # the pooled rate is the rest-time-weighted mean of the subjects' rates, so it never exceeds the worst one
    assert pooled["rest_events_per_minute"] <= q["rest_events_per_minute_max"] + 1e-12


def test_subject_summary_on_known_figures():
    from aemg.tokens.metrics import subject_summary

    figs = {"a": {"rest_events_per_minute": 0.0, "coverage": 1.0}, "b": {"rest_events_per_minute": 3.0, "coverage": 0.8},
            "c": {"rest_events_per_minute": 1.0, "coverage": None}, "d": {"rest_events_per_minute": None, "coverage": 0.9}}
    q = subject_summary(figs, limit_per_minute=1.5)
    assert (q["n_subjects"], q["n_with_rest"], q["n_with_rest_events"], q["n_above_limit"]) == (4, 3, 2, 1)
    assert q["rest_events_per_minute_mean"] == pytest.approx(4 / 3) and q["rest_events_per_minute_median"] == 1.0
    assert (q["worst_rest_subject"], q["worst_coverage_subject"]) == ("b", "b")
    assert q["coverage_mean"] == pytest.approx(0.9) and q["coverage_min"] == 0.8
    calm = subject_summary({"a": {"rest_events_per_minute": 0.0, "coverage": 1.0}})
    assert calm["worst_rest_subject"] is None and calm["worst_coverage_subject"] is None
    assert subject_summary({})["rest_events_per_minute_mean"] is None


@pytest.mark.slow
def test_cli_by_subject(corpus_3dc, tmp_path, capsys):
    from aemg.cli import main

    out = tmp_path / "events.npz"
    assert main(["tokenize", str(corpus_3dc.path), "--json", "--by-subject", "--limit", "0", "--out", str(out),
                 "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    subjects = doc["subjects"]
    assert len(subjects) == doc["per_subject"]["n_subjects"] > 1
    assert doc["per_subject"]["n_above_limit"] == sum(m["rest_events"] > 0 for m in subjects.values())
    assert main(["tokenize", str(corpus_3dc.path), "--by-subject", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "per subject:" in text and all(s in text for s in subjects)
    assert main(["tokenize", str(corpus_3dc.path), "--by-subject", "--limit", "-1", "--out", str(out)]) != 0
