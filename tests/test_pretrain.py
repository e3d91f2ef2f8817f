"""Two-stage pre-training end to end: losses fall, run directory, bitwise resume, --exclude, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")

from aemg.train import InjectedStop, TokenSource, pretrain  # noqa: E402
from aemg.train.config import get_config  # noqa: E402
from aemg.train.engine import read_metrics  # noqa: E402
from aemg.train.synthetic import synthetic_recordings  # noqa: E402


def _sources():
    recs = synthetic_recordings(n_recordings=6, n_groups=30, content_dim=16, seed=0, datasets=("synthA", "synthB"))
    by = {}
    for r in recs:
        by.setdefault(r.dataset, []).append(r)
    return [TokenSource(d, f"/corpora/{d}", f"hash-{d}", rs) for d, rs in by.items()]


def _cfg(steps1: int = 40, steps2: int = 40):
    cfg = get_config("tiny")
    return cfg.override([f"stage1.max_steps={steps1}", f"stage2.max_steps={steps2}", "ckpt_every=15"])


def _final_state(run):
    ck = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    return ck["tokenizer"], ck["mtm"], ck["optimizer"], ck["state"]


@pytest.fixture(scope="module")
def one_thread():
    """Bitwise resume holds on one machine at one thread count: the runs compared share one, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, one_thread):
    run = tmp_path_factory.mktemp("full") / "run"
    summary = pretrain(_cfg(), _sources(), run, progress=False)
    return run, summary


@pytest.mark.slow
def test_tiny_losses_fall_and_run_directory_is_complete(full_run):
    run, s = full_run
    for f in ("config.json", "run.json", "metrics.jsonl", "ckpt.pt", "tokenizer.pt", "encoder.pt", "summary.json"):
        assert (run / f).exists(), f
    assert [p.name for p in run.glob("rng_rank*")] == ["rng_rank0_s2_40.pt"]  # the last checkpoint's only
    assert not list(run.glob("seen_rank*"))  # only rank 0 writes logs
    assert json.loads((run / "summary.json").read_text()) == s
    s1, s2 = s["stage1"], s["stage2"]
    rows = read_metrics(run / "metrics.jsonl")
    recon = [r["recon_loss"] for r in rows if r["stage"] == 1]
    loss2 = [r["loss"] for r in rows if r["stage"] == 2]
    assert s1["recon_loss_first"] == pytest.approx(np.mean(recon[:10])) and s1["recon_loss_last"] == pytest.approx(
        np.mean(recon[-10:]))
    assert s2["loss_first"] == pytest.approx(np.mean(loss2[:10])) and s2["loss_last"] == pytest.approx(np.mean(loss2[-10:]))
    # stage 1's tokenizer and codebook are frozen in stage 2: the final checkpoint holds tokenizer.pt's state
    frozen = torch.load(run / "tokenizer.pt", map_location="cpu", weights_only=False)["state"]
    final_tok = _final_state(run)[0]
    assert frozen.keys() == final_tok.keys() and all(torch.equal(frozen[k], final_tok[k]) for k in frozen)
    assert s1["recon_loss_last"] < 0.8 * s1["recon_loss_first"]
    assert s2["loss_last"] < 0.85 * s2["loss_first"]
    assert 0 < s1["codebook_usage"] <= 1 and 1 <= s1["perplexity"] <= 32
    assert s2["heldout"] and s2["heldout_recordings"]
    assert s2["masked_accuracy"] > s2["majority_accuracy"]
    assert {c["dataset"] for c in s["corpora"]} == {"synthA", "synthB"}
    assert all(c["subjects"] and c["provenance_hash"].startswith("hash-") for c in s["corpora"])
    assert [r["step"] for r in rows if r["stage"] == 1] == list(range(1, 41))
    assert [r["step"] for r in rows if r["stage"] == 2] == list(range(1, 41))
    assert all(r["tokens_per_s"] > 0 for r in rows)
    from aemg.model import load_encoder

    enc = load_encoder(run)  # what evaluation fine-tunes: rebuilt from its saved config
    mtm_state = _final_state(run)[1]
    for k, v in enc.state_dict().items():
        assert torch.equal(v, mtm_state[f"encoder.{k}"])


class _Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the recipe handles it."""


@pytest.mark.slow
def test_resume_equals_uninterrupted_bitwise(full_run, one_thread, tmp_path, monkeypatch):
    import aemg.train.checkpoint as ckpt_mod

    assert torch.get_num_threads() == 1  # the same thread count as the uninterrupted run
    run_full, _ = full_run
    run = tmp_path / "run"
    with pytest.raises(InjectedStop):
        pretrain(_cfg(), _sources(), run, progress=False, stop_at=(1, 23))  # inside stage 1, mid-epoch
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(_cfg(), _sources(), run, progress=False)
    # killed inside the next checkpoint (step 30): its RNG file is written, ckpt.pt is not, a row is torn
    save = ckpt_mod.atomic_torch_save

    def dies_at_ckpt(obj, path):
        if path.name == "ckpt.pt":
            with open(run / "metrics.jsonl", "a") as f:
                f.write('{"stage": 1, "st')
            raise _Killed
        save(obj, path)

    monkeypatch.setattr(ckpt_mod, "atomic_torch_save", dies_at_ckpt)
    with pytest.raises(_Killed):
        pretrain(_cfg(), _sources(), run, progress=False, resume=True)
    monkeypatch.setattr(ckpt_mod, "atomic_torch_save", save)
    assert (run / "rng_rank0_s1_30.pt").exists() and torch.load(run / "ckpt.pt", weights_only=False)["state"]["step"] == 23
    with pytest.raises(InjectedStop):
        pretrain(_cfg(), _sources(), run, progress=False, resume=True, stop_at=(2, 17))  # inside stage 2
    summary = pretrain(_cfg(), _sources(), run, progress=False, resume=True)
    a, b = _final_state(run_full), _final_state(run)
    for sa, sb in zip(a[:2], b[:2]):
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert a[3] == b[3]
    for ka, kb in zip(a[2]["state"].values(), b[2]["state"].values()):
        for k in ka:
            assert torch.equal(ka[k], kb[k])
    rows_full = read_metrics(run_full / "metrics.jsonl")
    rows = read_metrics(run / "metrics.jsonl")
    assert [(r["stage"], r["step"], r["loss"]) for r in rows] == [(r["stage"], r["step"], r["loss"]) for r in rows_full]
    assert summary["stage2"]["masked_accuracy"] == json.loads((run_full / "summary.json").read_text())["stage2"]["masked_accuracy"]


def test_exclude_leaves_a_dataset_out(tmp_path, caplog):
    s = pretrain(_cfg(3, 3), _sources(), tmp_path / "run", progress=False, exclude=("synthB", "synth_b"))
    assert [c["dataset"] for c in s["corpora"]] == ["synthA"] and s["excluded"] == ["synthB", "synth_b"]
    assert "--exclude synth_b: no corpus of that dataset" in caplog.text  # a typo is not silent
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {r.split("/")[0] for r in run_json["heldout_recordings"]} <= {"synthA"}
    with pytest.raises(ValueError, match="excluded"):
        pretrain(_cfg(3, 3), _sources(), tmp_path / "run2", progress=False, exclude=("synthA", "synthB"))
    # resuming with other corpora, or other tokens of the same corpus, than the run started with is refused
    with pytest.raises(ValueError, match="other corpora"):
        pretrain(_cfg(3, 3), _sources(), tmp_path / "run", progress=False, resume=True)
    retokenized = _sources()
    retokenized[0].recordings[0].content[0, 0] += 1.0
    with pytest.raises(ValueError, match="tokens of synthA differ"):
        pretrain(_cfg(3, 3), retokenized, tmp_path / "run", progress=False, resume=True, exclude=("synthB",))


def test_clear_errors_for_out_and_empty_corpora(tmp_path):
    from aemg.train.data import SpanDataset

    other = tmp_path / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a pre-training run"):
        pretrain(_cfg(3, 3), _sources(), other, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        pretrain(_cfg(3, 3), _sources(), tmp_path / "fresh", progress=False, resume=True)
    empty = synthetic_recordings(n_recordings=1, n_groups=0, content_dim=16)
    with pytest.raises(ValueError, match="no tokens"):
        SpanDataset(empty, max_tokens=48)


@pytest.mark.slow
def test_prototypes_gallery(full_run, tmp_path):
    from aemg.cli import main
    from aemg.train.prototypes import prototype_contents

    run, s = full_run
    ids, counts, content = prototype_contents(run, top=6)
    assert len(ids) == 6 and content.shape == (6, 16) and (counts[:-1] >= counts[1:]).all()
    assert counts[0] > 0
    png = tmp_path / "g.png"
    assert main(["prototypes", str(run), "--top", "6", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_run(corpus_cote_allard, tmp_path_factory):
    """A tiny model pre-trained through the command line on the real Côté-Allard corpus."""
    from aemg.cli import main

    pytest.importorskip("aemg.tokens")
    run = tmp_path_factory.mktemp("real") / "run"
    rc = main(["pretrain", "--corpus", str(corpus_cote_allard.path), "--out", str(run), "--config", "tiny",
               "--max-steps", "60", "--no-progress"])
    assert rc == 0
    return run, corpus_cote_allard


@pytest.mark.slow
def test_tiny_losses_fall_on_a_real_corpus(real_run):
    run, corpus = real_run
    s = json.loads((run / "summary.json").read_text())
    assert s["stage1"]["steps"] == s["stage2"]["steps"] == 60
    assert s["stage1"]["recon_loss_last"] < 0.95 * s["stage1"]["recon_loss_first"]
    assert s["stage2"]["loss_last"] < 0.9 * s["stage2"]["loss_first"]
    assert s["stage2"]["masked_accuracy"] > s["stage2"]["majority_accuracy"]
    assert s["stage1"]["codebook_usage"] > 0.25
    (c,) = s["corpora"]
    assert c["dataset"] == corpus.dataset and c["provenance_hash"] == corpus.hash
    assert c["subjects"] == sorted(corpus.subjects)
    run_json = json.loads((run / "run.json").read_text())
    assert "log_amp" in run_json["content_names"]


@pytest.mark.slow
def test_cli_resume_of_a_finished_run_and_errors(real_run, tmp_path, capsys, monkeypatch):
    from aemg.cli import main

    run, corpus = real_run
    before = (run / "summary.json").read_text()
    assert main(["pretrain", "--corpus", str(corpus.path), "--out", str(run), "--config", "tiny", "--max-steps", "60",
                 "--resume", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["stage2"] == json.loads(before)["stage2"]
    # excluding the only corpus leaves nothing: a one-line error, exit code 1
    assert main(["pretrain", "--corpus", str(corpus.path), "--out", str(tmp_path / "x"), "--config", "tiny",
                 "--exclude", corpus.dataset, "--no-progress"]) == 1
    assert "every corpus was excluded" in capsys.readouterr().err
    assert main(["pretrain", "--corpus", str(corpus.path), "--out", str(tmp_path / "x"), "--config", "huge"]) == 1
    assert "unknown config 'huge'" in capsys.readouterr().err
    # Ctrl-C: a one-line hint to --resume, exit code 130
    monkeypatch.setattr("aemg.train.pretrain", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["pretrain", "--corpus", str(corpus.path), "--out", str(tmp_path / "x"), "--config", "tiny"]) == 130
    assert "--resume" in capsys.readouterr().err
    # a corpus whose token set holds no tokens
    monkeypatch.setattr("aemg.train.sources.token_recordings", lambda ts, content=None: [])
    assert main(["pretrain", "--corpus", str(corpus.path), "--out", str(tmp_path / "x"), "--config", "tiny"]) == 1
    assert "holds no tokens" in capsys.readouterr().err


@pytest.mark.slow
def test_stored_token_set_is_loaded_and_a_stale_one_remade(corpus_cote_allard, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import aemg.tokens as tk
    from aemg.tokens import TokenSet
    from aemg.train.sources import load_token_set, token_recordings

    ts = load_token_set(corpus_cote_allard, progress=False)
    ts.save(TokenSet.default_path(tmp_path))
    fake = SimpleNamespace(path=tmp_path, hash=corpus_cote_allard.hash)
    monkeypatch.setattr(tk, "tokenize_corpus", lambda *a, **k: pytest.fail("tokenized although a token set is stored"))
    loaded = load_token_set(fake, progress=False)
    assert loaded.n_tokens == ts.n_tokens and np.array_equal(loaded.tokens.content, ts.tokens.content)
    monkeypatch.setattr(tk, "tokenize_corpus", lambda *a, **k: "remade")
    assert load_token_set(SimpleNamespace(path=tmp_path, hash="another"), progress=False) == "remade"
    recs = token_recordings(ts)
    assert sum(len(r) for r in recs) == ts.n_tokens
    r = recs[0]
    assert (np.diff(r.group) >= 0).all() and r.content.shape[1] == ts.n_features
    assert set(r.label.tolist()) <= set(ts.trials.label.tolist()) | {-100}


def test_spans_are_whole_groups_capped_and_deterministic():
    from aemg.train.data import SpanDataset, collate

    recs = synthetic_recordings(n_recordings=3, n_groups=20, content_dim=8, seed=1)
    ds = SpanDataset(recs, max_tokens=36, seed=5)
    ds.set_epoch(2)
    a = [ds[i] for i in range(len(ds))]
    b = [SpanDataset(recs, max_tokens=36, seed=5) for _ in range(1)][0]
    b.set_epoch(2)
    for i, it in enumerate(a):
        assert 0 < len(it["rank"]) <= 36
        assert np.array_equal(it["content"], b[i]["content"])
        go = it["group_order"]
        assert go[0] == 0 and set(np.diff(go).tolist()) <= {0, 1}
        n_groups = go[-1] + 1
        assert len(go) == sum(int(len(np.flatnonzero(go == g))) for g in range(n_groups))
        assert it["t_ms"][0] == 0 and (np.diff(it["t_ms"]) >= 0).all()
    ds.set_epoch(3)
    assert any(not np.array_equal(a[i]["content"], ds[i]["content"]) for i in range(len(ds)))
    batch = collate(a[:4])
    assert batch["pad_mask"].shape[1] == max(len(it["rank"]) for it in a[:4])


@pytest.mark.slow
def test_encoder_reads_token_set_batches_including_empty_trials(corpus_cote_allard):
    """The batch of aemg.tokens.TokenSet.collate (the contract) goes straight into the encoder;
    a trial without events is an all-padding row and encodes to zeros, never NaN."""
    from aemg.model import aemg_tiny
    from aemg.train.sources import load_token_set

    ts = load_token_set(corpus_cote_allard, progress=False)
    seqs = ts.sequences("trial")
    empty = [i for i, s in enumerate(seqs) if len(s) == 0]
    full = [i for i, s in enumerate(seqs) if len(s) > 0][:3]
    batch = ts.collate(trials=full + empty[:1], max_tokens=128)
    torch.manual_seed(0)
    enc = aemg_tiny(ts.n_features).eval()
    with torch.no_grad():
        h, pooled = enc(batch)
    assert torch.isfinite(h).all() and torch.isfinite(pooled).all()
    assert empty, "the Côté-Allard subset has trials without events: the case this test is about"
    assert torch.equal(pooled[-1], torch.zeros_like(pooled[-1]))


# ---------------------------------------------------------------------- --max-steps and the schedule
def test_max_steps_scales_the_warm_up_so_a_short_run_reaches_peak_lr(monkeypatch):
    """``--max-steps 150`` on ``small`` (warm-up 200 / 300) used to end inside the warm-up."""
    from aemg.cli import main
    from aemg.train.engine import get_lr

    seen = {}

    def no_training(cfg, *args, **kwargs):
        seen["cfg"] = cfg
        return {}

    monkeypatch.setattr("aemg.train.sources.load_token_sources", lambda dirs, exclude=(), **kw: _sources())
    monkeypatch.setattr("aemg.train.pretrain", no_training)
    assert main(["pretrain", "--corpus", "c", "--out", "r", "--config", "small", "--max-steps", "150"]) == 0
    small = get_config("small")
    for n in (1, 2):
        full, s = small.stage(n), seen["cfg"].stage(n)
        assert s.max_steps == 150 and 0 < s.warmup_steps < 150
        assert s.warmup_steps / 150 == pytest.approx(full.warmup_steps / full.max_steps, abs=0.01)
        lrs = [get_lr(i, s) for i in range(s.max_steps)]
        assert max(lrs) == pytest.approx(s.lr) and lrs[-1] == pytest.approx(s.min_lr, rel=0.01)
    assert small.cap_steps(10**6) == small  # a cap above the configured steps changes nothing
    with pytest.raises(ValueError, match="--max-steps 0: expected a number of optimizer steps >= 1"):
        small.cap_steps(0)


@pytest.mark.slow
def test_a_150_step_capped_run_leaves_warm_up_and_trains(tmp_path, monkeypatch):
    """The docs' short example: a recipe sized for thousands of steps, capped at 150 through the CLI."""
    from aemg.cli import main

    monkeypatch.setattr("aemg.train.sources.load_token_sources", lambda dirs, exclude=(), **kw: _sources())
    run = tmp_path / "run"
    sets = [x for n in (1, 2) for x in ("--set", f"stage{n}.max_steps=3000", "--set", f"stage{n}.warmup_steps=250")]
    assert main(["pretrain", "--corpus", "c", "--out", str(run), "--config", "tiny", *sets, "--max-steps", "150",
                 "--no-progress"]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    cfg = json.loads((run / "config.json").read_text())
    for n in (1, 2):
        lrs = [r["lr"] for r in rows if r["stage"] == n]
        assert len(lrs) == 150 and cfg[f"stage{n}"]["warmup_steps"] < 150
        assert max(lrs) == pytest.approx(cfg[f"stage{n}"]["lr"], rel=1e-3)  # the peak is reached
        assert lrs[-1] < 0.2 * max(lrs)  # and the cosine decays
    s = json.loads((run / "summary.json").read_text())
    assert s["stage1"]["recon_loss_last"] < 0.8 * s["stage1"]["recon_loss_first"]
    assert s["stage2"]["loss_last"] < 0.85 * s["stage2"]["loss_first"]
