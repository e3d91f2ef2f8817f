"""The paper's two ablations: ``aemg-nospatial`` (channel index instead of electrode coordinates) and
``aemg-windows`` (fixed 200 ms window tokens instead of contraction events), each pre-trained like aemg.

Three ``tiny`` runs of a few steps on the real UCI corpus (events, windows, nospatial); LOSO on Côté-Allard's
three Evaluation subjects (people the runs never saw), fine-tuning cut to one epoch of 64-token trials.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

import aemg.evaluate.encoder_methods as em  # noqa: E402
from aemg.cli import main  # noqa: E402
from aemg.corpus import Corpus, prepare  # noqa: E402
from aemg.errors import DataFormatError, OptionError  # noqa: E402
from aemg.evaluate.baselines import BASELINES, svm_tdar  # noqa: E402
from aemg.evaluate.data import SignalSource, fold_sets  # noqa: E402
from aemg.evaluate.folds import loso_folds  # noqa: E402
from aemg.evaluate.registry import known_methods, method_factories  # noqa: E402
from aemg.model import Encoder, EncoderConfig, load_encoder  # noqa: E402
from aemg.tokens.batch import pad_batch  # noqa: E402
from aemg.train.config import get_config  # noqa: E402
from aemg.train.sources import load_token_set, run_token_kind  # noqa: E402

QUIET = ["--log-level", "ERROR"]
BEFORE = Path(__file__).parent / "data" / "encoder_before_position.pt"  # made by the code of d2845bc
FAST = em.FinetuneConfig(epochs=1, batch_size=16, max_tokens=64)
ALL = ("aemg-finetune", "aemg-probe", "scratch", "aemg-windows", "aemg-nospatial", "lda-td", "svm-tdar")
WINDOWS = {"kind": "windows", "window_ms": 200.0}


def _cfg(**kw) -> EncoderConfig:
    return EncoderConfig(content_dim=4, d_model=16, n_layer=1, n_head=2, mlp_ratio=2, n_freq=2, n_z_freq=2,
                         n_angle_harmonics=2, max_groups=8, max_rank=8, **kw)


def _batch(seed: int = 0) -> dict:
    """Two sequences (5 and 3 tokens) with distinct channel ids and coordinates."""
    rng = np.random.default_rng(seed)
    items = []
    for n in (5, 3):
        a = rng.uniform(0, 2 * np.pi, n)
        items.append({"content": rng.normal(size=(n, 4)).astype(np.float32),
                      "coords": np.stack([np.cos(a), np.sin(a), rng.uniform(0, 1, n), np.zeros(n)], 1).astype(np.float32),
                      "onset_ms": rng.uniform(0, 50, n), "t_ms": rng.uniform(0, 500, n),
                      "duration_ms": rng.uniform(10, 200, n), "group_order": rng.integers(0, 3, n), "rank": np.arange(n),
                      "channel": rng.permutation(8)[:n], "rotation_unknown": False, "label": -100})
    return pad_batch(items)


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


# ------------------------------------------------------------------ the position option


def test_index_embedding_ignores_coordinates_and_reads_channel_ids():
    torch.manual_seed(0)
    enc = Encoder(_cfg(position="index", max_channels=6)).eval()
    keys = set(enc.state_dict())
    assert "embed.channel.table.weight" in keys and not any(k.startswith("embed.spatial") for k in keys)
    b = _batch()
    with torch.no_grad():
        h, pooled = enc(b)
        moved = dict(b, coords=b["coords"].flip(1) * 0.5 + 0.3)  # other coordinates, same channel ids
        h2, pooled2 = enc(moved)
        perm = dict(b, channel=b["channel"].roll(1, dims=1))  # same coordinates, channel ids permuted
        h3, _ = enc(perm)
        clamped = dict(b, channel=torch.where(b["channel"] >= 5, torch.full_like(b["channel"], 1000), b["channel"]))
        h4, _ = enc(clamped)  # indices beyond the table share its last row
    assert torch.equal(h, h2) and torch.equal(pooled, pooled2)
    real = ~b["pad_mask"]
    assert not torch.allclose(h3[real], h[real], atol=1e-4)
    assert torch.equal(h4, h)
    # the default (coords) encoder reads the coordinates and ignores channel ids
    torch.manual_seed(0)
    coords = Encoder(_cfg()).eval()
    with torch.no_grad():
        assert not torch.allclose(coords(moved)[0][real], coords(b)[0][real], atol=1e-4)
        assert torch.equal(coords(perm)[0], coords(b)[0])


def test_default_position_is_bit_identical_to_an_encoder_saved_before_the_option():
    ref = torch.load(BEFORE, map_location="cpu", weights_only=False)
    assert "position" not in ref["config"]  # saved before the field existed
    enc = load_encoder(BEFORE)  # strict load: the same state-dict keys
    assert enc.cfg.position == "coords" and sorted(enc.state_dict()) == sorted(ref["state"])
    with torch.no_grad():
        h, pooled = enc(ref["batch"])
    # the same function: equal up to float32 rounding (the thread count and CPU kernels change the last bits)
    assert torch.allclose(h, ref["h"], rtol=0, atol=1e-5) and torch.allclose(pooled, ref["pooled"], rtol=0, atol=1e-5)
    # the same seed still draws the same initial weights (a new option must not shift the RNG)
    torch.manual_seed(0)
    fresh = Encoder(EncoderConfig(**ref["config"])).state_dict()
    assert fresh.keys() == ref["state"].keys() and all(torch.equal(fresh[k], ref["state"][k]) for k in fresh)
    with pytest.raises(ValueError, match="position must be one of coords, index"):
        EncoderConfig(position="xyz")


def test_set_encoder_position(capsys):
    cfg = get_config("tiny").override(["encoder.position=index", "encoder.max_channels=16",
                                       "tokenizer.encoder.position=index"])
    assert (cfg.encoder.position, cfg.encoder.max_channels, cfg.tokenizer.encoder.position) == ("index", 16, "index")
    assert get_config("tiny").encoder.position == "coords"
    with pytest.raises(OptionError, match=r"--set encoder.position=xyz: expected one of coords, index; found 'xyz'"):
        get_config("tiny").override(["encoder.position=xyz"])
    assert main(QUIET + ["pretrain", "--corpus", "/nonexistent", "--out", "/nonexistent/run", "--config", "tiny",
                         "--set", "encoder.position=xyz"]) == 1
    assert "--set encoder.position=xyz: expected one of coords, index" in _err(capsys)
    assert main(QUIET + ["pretrain", "--corpus", "/nonexistent", "--out", "/nonexistent/run", "--window-ms", "0"]) == 1
    assert "--window-ms 0: expected a window length in ms > 0" in _err(capsys)


def test_a_run_without_a_token_kind_trained_on_events(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"corpora": []}))
    assert run_token_kind(tmp_path) == {"kind": "events"} and run_token_kind(tmp_path / "encoder.pt") == {"kind": "events"}
    (tmp_path / "run.json").write_text(json.dumps({"corpora": [], "tokens": WINDOWS}))
    assert run_token_kind(tmp_path) == WINDOWS
    (tmp_path / "run.json").write_text(json.dumps({"corpora": [], "tokens": {"kind": "windows"}}))
    with pytest.raises(DataFormatError, match="run.json: expected a token kind"):
        run_token_kind(tmp_path)


def test_ablations_need_their_own_run():
    assert {"aemg-windows", "aemg-nospatial"} <= set(known_methods())
    assert set(em.ABLATION_METHODS) == {"aemg-windows", "aemg-nospatial"} and not set(em.ENCODER_METHODS) & set(
        em.ABLATION_METHODS)  # ENCODER_METHODS take the main --run; the ablations only their own
    with pytest.raises(OptionError, match="--run-windows: expected a run directory of aemg pretrain --window-ms 200 "
                                          "for method aemg-windows; found none given"):
        method_factories(["lda-td", "aemg-windows"], run_dir="/some/run")
    with pytest.raises(OptionError, match="--run-nospatial: expected .*encoder.position=index"):
        method_factories(["aemg-nospatial"], runs={"aemg-windows": "/some/run"})


# ------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def runs(corpus_uci, tmp_path_factory) -> dict[str, Path]:
    """Three tiny pre-trainings on the real UCI corpus through the command: events, windows, nospatial."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("abl")
    extra = {"events": [], "windows": ["--window-ms", "200"],
             "nospatial": ["--set", "encoder.position=index", "--set", "tokenizer.encoder.position=index"]}
    out = {}
    for name, args in extra.items():
        out[name] = d / name
        assert main(QUIET + ["pretrain", "--corpus", str(corpus_uci.path), "--out", str(out[name]), "--config", "tiny",
                             "--max-steps", "4", "--no-progress", *args]) == 0
    yield out
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ca_eval(real_root, tmp_path_factory) -> Path:
    """Côté-Allard's 3 Evaluation subjects only, prepared from a copy of their real files."""
    d = tmp_path_factory.mktemp("abl-ca")
    shutil.copytree(real_root / "cote-allard" / "EvaluationDataset", d / "raw" / "EvaluationDataset")
    prepare("cote-allard", d / "raw", d / "corpus", progress=False)
    return d / "corpus"


@pytest.mark.slow
def test_window_pretraining_records_the_token_kind(runs, corpus_uci, capsys):
    kinds = {n: json.loads((r / "run.json").read_text())["tokens"] for n, r in runs.items()}
    assert kinds == {"events": {"kind": "events"}, "windows": WINDOWS, "nospatial": {"kind": "events"}}
    assert json.loads((runs["windows"] / "summary.json").read_text())["tokens"] == WINDOWS
    assert run_token_kind(runs["windows"]) == WINDOWS
    # the windows run pre-trained on the corpus's window tokens, not its events
    n_win = load_token_set(corpus_uci, window_ms=200, progress=False).n_tokens
    n_ev = load_token_set(corpus_uci, progress=False).n_tokens
    seen = {n: json.loads((r / "run.json").read_text())["corpora"][0]["n_tokens"] for n, r in runs.items()}
    assert n_win != n_ev and seen["windows"] == n_win and seen["events"] == seen["nospatial"] == n_ev
    assert not (Path(corpus_uci.path) / "tokens" / "windows-200ms.npz").exists()  # pre-training writes nothing there
    # the nospatial run's encoder embeds channel ids; the others electrode coordinates
    assert json.loads((runs["nospatial"] / "config.json").read_text())["encoder"]["position"] == "index"
    assert "embed.channel.table.weight" in load_encoder(runs["nospatial"]).state_dict()
    assert "embed.spatial.proj.weight" in load_encoder(runs["windows"]).state_dict()
    # resuming with other tokens than the run started with is refused
    assert main(QUIET + ["pretrain", "--corpus", str(corpus_uci.path), "--out", str(runs["windows"]), "--config",
                         "tiny", "--resume", "--no-progress"]) == 1
    err = _err(capsys)
    assert "--resume with other tokens" in err and str(runs["windows"]) in err


@pytest.mark.slow
def test_evaluate_with_both_ablations_on_a_real_three_subject_loso(runs, ca_eval, tmp_path, capsys, monkeypatch):
    for table, name in ((em.ENCODER_METHODS, "aemg-finetune"), (em.ENCODER_METHODS, "scratch"),
                        (em.ABLATION_METHODS, "aemg-windows"), (em.ABLATION_METHODS, "aemg-nospatial")):
        monkeypatch.setitem(table, name, functools.partial(table[name], cfg=FAST))  # one epoch of 64-token trials
    monkeypatch.setitem(BASELINES, "svm-tdar", functools.partial(svm_tdar, max_train_windows=1500))  # the RBF fit
    out = tmp_path / "eval"
    assert main(QUIET + ["evaluate", "--corpus", str(ca_eval), "--out", str(out), "--run", str(runs["events"]),
                         "--run-windows", str(runs["windows"]), "--run-nospatial", str(runs["nospatial"]),
                         "--methods", ",".join(ALL), "--k", "0", "--scale", "session", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["methods"]) == list(ALL) and summary["n_subjects"] == 3
    for m in ALL:
        assert 0.0 <= summary["methods"][m]["0"]["accuracy"] <= 1.0, m
    res = json.loads((out / "results.json").read_text())
    assert res["methods"] == list(ALL) and all(len(res["results"][m]) == 3 for m in ALL)
    assert len(res["folds"]) == 3 * len(ALL) and {r["n_test"] for r in res["folds"]} == {84}
    assert set(res["tests"]["0"]["wilcoxon"]) == set(ALL[1:]) and res["tests"]["0"]["friedman"]["n"] == 3
    abl = res["run"]["ablations"]
    assert abl["aemg-windows"]["path"] == str(runs["windows"]) and abl["aemg-nospatial"]["path"] == str(runs["nospatial"])
    assert abl["aemg-windows"]["hash"] and res["run"]["path"] == str(runs["events"])
    for m in ("aemg-windows", "aemg-nospatial"):
        assert (out / f"confusion-{m}.png").is_file() and f"| {m} |" in (out / "results.md").read_text()
    # aemg-windows read the corpus's 200 ms window tokens, the others its events
    c = Corpus(ca_eval)
    kinds = {k[2] for k in em._TOKENS if k[0] == str(Path(c.path).resolve())}
    assert kinds == {None, 200.0}


@pytest.mark.slow
def test_ablation_runs_are_checked(runs, ca_eval, tmp_path, capsys):
    base = QUIET + ["evaluate", "--corpus", str(ca_eval), "--out", str(tmp_path / "e"), "--k", "0", "--scale",
                    "session", "--no-progress"]
    assert main(base + ["--methods", "aemg-windows"]) == 1
    assert "--run-windows: expected a run directory of aemg pretrain --window-ms 200" in _err(capsys)
    assert main(base + ["--methods", "aemg-windows", "--run-windows", str(runs["events"])]) == 1
    err = _err(capsys)
    assert err.startswith(f"aemg evaluate: error: {runs['events']}: expected a run pre-trained on fixed-window tokens")
    assert main(base + ["--methods", "aemg-nospatial", "--run-nospatial", str(runs["events"])]) == 1
    err = _err(capsys)
    assert str(runs["events"]) in err and "encoder.position=index" in err and "found encoder.position 'coords'" in err
    assert main(base + ["--methods", "aemg-nospatial", "--run-nospatial", str(runs["windows"])]) == 1
    assert f"{runs['windows']}: expected a run pre-trained on events" in _err(capsys)
    assert main(base + ["--methods", "aemg-windows", "--run-windows", str(tmp_path / "none")]) == 1
    assert "--run-windows" in _err(capsys)
    # an events run on a windows token set (and the reverse) is refused before any training
    c = Corpus(ca_eval)
    windows = em.TrialTokens(c, window_ms=200)
    events = em.trial_tokens(c)
    assert windows.kind == WINDOWS and windows.ts.settings.mode == "windows"
    with pytest.raises(DataFormatError, match="a token set of the kind the run pre-trained on \\(events\\)"):
        em.check_run_tokens(runs["events"], windows)
    with pytest.raises(DataFormatError, match="200 ms windows"):
        em.check_run_tokens(runs["windows"], events)
    with pytest.raises(DataFormatError, match="expected a token set of 200 ms windows; found events"):
        em.TrialTokens(c, events.ts, window_ms=200)
    fold = loso_folds(c.trials)[0]
    train, _ = fold_sets(SignalSource(c), fold, "session")
    with pytest.raises(DataFormatError, match=str(runs["events"])):
        em.FinetuneMethod(runs["events"], windows, dataclasses.replace(FAST, epochs=0)).fit(train)
