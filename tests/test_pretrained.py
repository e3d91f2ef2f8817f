"""The pre-trained runs kept in ``pretrained/``: complete, safe to load, honest provenance, reproducible.

The reproduction test re-runs the first steps of ``small-b`` (3DC + Côté-Allard, the cheapest corpora
to prepare) from its recorded ``command.sh`` on corpora prepared from ``../shared/data`` and compares
the losses with its stored ``metrics.jsonl``: stage 1 with ``--stop-after-steps``, stage 2 on the
stored frozen tokenizer (``--tokenizer-from``), both with one torch thread (deterministic on CPU).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from aemg.cli import main
from aemg.train.checkpoint import pretrained_dir, resolve_run, stored_runs
from aemg.train.config import PretrainConfig

ROOT = Path(__file__).resolve().parents[1]
STORED = ("small-a", "small-all", "small-b")
ALL = {"3dc", "cote-allard", "uci-gestures", "ciil", "long-term-semg"}
SEEN = {"small-a": {"uci-gestures", "ciil", "long-term-semg"}, "small-b": {"3dc", "cote-allard"}, "small-all": ALL}
TRAVELS = ("config.json", "encoder.pt", "tokenizer.pt", "summary.json", "run.json", "metrics.jsonl", "command.sh")
STEPS = 3  # optimizer steps re-run per stage


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_stored_runs_listed_and_resolved(tmp_path):
    assert pretrained_dir() == ROOT / "pretrained"
    assert stored_runs() == list(STORED)
    for name in STORED:
        assert resolve_run(name) == ROOT / "pretrained" / name
    assert resolve_run(tmp_path) == tmp_path  # an existing directory is itself
    from aemg.errors import OptionError

    with pytest.raises(OptionError, match=r"--run small-z: expected .*stored runs: small-a, small-all, small-b"):
        resolve_run("small-z")
    with pytest.raises(OptionError, match="found no such folder or stored run"):
        resolve_run(tmp_path / "missing")


@pytest.mark.parametrize("name", STORED)
def test_stored_run_complete_safe_and_small(name):
    from aemg.model import load_encoder
    from aemg.train.checkpoint import load_tokenizer

    run = resolve_run(name)
    for f in TRAVELS:
        assert (run / f).is_file(), f"{run / f} missing"
    assert not list(run.glob("ckpt.pt")) and not list(run.glob("rng_*.pt")), "optimizer state must not travel"
    assert sum(p.stat().st_size for p in run.iterdir()) < 8 * 2**20
    for f in ("encoder.pt", "tokenizer.pt"):
        ck = torch.load(run / f, map_location="cpu", weights_only=True)  # plain containers and tensors only
        assert set(ck) == {"config", "state"}
    enc = load_encoder(run)
    assert not enc.training and sum(p.numel() for p in enc.parameters()) == json.loads(
        (run / "summary.json").read_text())["params"]["encoder"]
    load_tokenizer(run)
    summary = json.loads((run / "summary.json").read_text())
    steps = {s: sum(1 for r in rows(run / "metrics.jsonl") if r["stage"] == s) for s in (1, 2)}
    assert steps[1] == summary["stage1"]["steps"] > 0 and steps[2] == summary["stage2"]["steps"] > 0
    assert summary["stage2"]["loss_last"] < summary["stage2"]["loss_first"]
    assert summary["stage1"]["recon_loss_last"] < summary["stage1"]["recon_loss_first"]


@pytest.mark.parametrize("name", STORED)
def test_stored_run_provenance_names_datasets_and_subjects(name):
    run = resolve_run(name)
    corpora = json.loads((run / "run.json").read_text())["corpora"]
    assert {c["dataset"] for c in corpora} == SEEN[name]
    for c in corpora:
        assert c["subjects"] and all(s.startswith(c["dataset"] + "/") for s in c["subjects"])
    command = (run / "command.sh").read_text()
    for d in SEEN[name]:
        assert f"aemg prepare {d} --root $DATA/{d}" in command and f"--corpus $C/{d}" in command
    for d in ALL - SEEN[name]:
        assert f"--corpus $C/{d} " not in command


def test_prototypes_accepts_a_stored_run_name(tmp_path, capsys):
    png = tmp_path / "p.png"
    assert main(["prototypes", "small-b", "--top", "4", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000 and capsys.readouterr().out.strip() == str(png)


def test_leakage_guard_refuses_a_stored_run_that_saw_the_target():
    from aemg.errors import DataFormatError
    from aemg.evaluate.encoder_methods import check_run_subjects

    seen = json.loads((resolve_run("small-b") / "run.json").read_text())["corpora"][0]["subjects"][0]
    with pytest.raises(DataFormatError):
        check_run_subjects(resolve_run("small-b"), [seen])
    check_run_subjects(resolve_run("small-a"), [seen])  # small-a never saw 3DC or Côté-Allard


def recorded_pretrain(run: Path, corpora: dict[str, Path], out: Path) -> list[str]:
    """The ``aemg pretrain`` arguments of ``command.sh``, with ``$C/<dataset>`` -> the given corpora and ``--out``."""
    line = next(x for x in (run / "command.sh").read_text().splitlines() if x.startswith("aemg pretrain "))
    args = shlex.split(line)[1:]
    for i, a in enumerate(args):
        if a.startswith("$C/"):
            args[i] = str(corpora[a[3:]])
        elif args[i - 1] == "--out":
            args[i] = str(out)
    return args


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_small_b_first_steps_reproduce_from_command(corpus_3dc, corpus_cote_allard, tmp_path, one_thread):
    run = resolve_run("small-b")
    corpora = {"3dc": corpus_3dc.path, "cote-allard": corpus_cote_allard.path}
    stored = rows(run / "metrics.jsonl")
    stored_run = json.loads((run / "run.json").read_text())

    s1 = tmp_path / "s1"
    assert main([*recorded_pretrain(run, corpora, s1), "--stop-after-steps", str(STEPS)]) == 0
    again = json.loads((s1 / "run.json").read_text())
    # the recorded prepare + tokenize reproduce the corpora and tokens the run saw
    assert [(c["dataset"], c["provenance_hash"], c["token_hash"], c["subjects"]) for c in again["corpora"]] == \
        [(c["dataset"], c["provenance_hash"], c["token_hash"], c["subjects"]) for c in stored_run["corpora"]]
    # the same config (read back, so fields added to aemg since the run was made take their defaults)
    assert PretrainConfig.load(s1 / "config.json") == PretrainConfig.load(run / "config.json")
    new = rows(s1 / "metrics.jsonl")
    assert [(r["stage"], r["step"]) for r in new] == [(s, i) for s in (1, 2) for i in range(1, STEPS + 1)]
    for a, b in zip([r for r in new if r["stage"] == 1], stored[:STEPS]):
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)  # the schedule is the full run's, not rescaled
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)

    s2 = tmp_path / "s2"
    assert main([*recorded_pretrain(run, corpora, s2), "--stop-after-steps", str(STEPS),
                 "--tokenizer-from", str(run)]) == 0
    new2 = rows(s2 / "metrics.jsonl")
    stored2 = [r for r in stored if r["stage"] == 2][:STEPS]
    assert [r["stage"] for r in new2] == [2] * STEPS
    for a, b in zip(new2, stored2):
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    # and not trivially: stage 2 on the freshly cut stage-1 tokenizer gives other losses
    assert [r["loss"] for r in new if r["stage"] == 2] != pytest.approx([r["loss"] for r in stored2], rel=1e-4)


def test_bench_loso_picks_a_stored_run_that_never_saw_the_target():
    bench = _bench()
    chosen = {d: bench.stored_run_for(d).name for d in sorted(ALL)}
    assert chosen == {"3dc": "small-a", "cote-allard": "small-a", "ciil": "small-b", "long-term-semg": "small-b",
                      "uci-gestures": "small-b"}
    for d, name in chosen.items():
        assert d not in bench.run_datasets(resolve_run(name))
    # by the subjects the benchmark tests (no stored run pre-trained on the targets' other subjects): the same
    tested = {d: {s for s in bench.run_subjects(resolve_run("small-all")) if s.startswith(f"{d}/")} for d in chosen}
    assert {d: bench.stored_run_for(d, None, tested[d]).name for d in chosen} == chosen


@pytest.mark.slow
def test_bench_loso_ablation_runs_are_made_like_their_base_run(tmp_path, monkeypatch):
    """An ablation run gets the base run's whole resolved config (here a non-default codebook) plus its own option,
    on the base run's corpora, and a second request reuses it."""
    bench = _bench()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    corpora = tmp_path / "corpora"
    uci = bench.corpus_for("uci-gestures", corpora)
    base = tmp_path / "base"
    assert main(["--log-level", "ERROR", "pretrain", "--config", "tiny", "--max-steps", "2", "--set",
                 "tokenizer.quantizer.codebook_size=16", "--corpus", str(uci.path), "--out", str(base),
                 "--no-progress"]) == 0
    run = bench.ablation_run("aemg-nospatial", base, corpora, tmp_path / "work")
    want = json.loads((base / "config.json").read_text())
    got = json.loads((run / "config.json").read_text())
    assert got["tokenizer"]["quantizer"]["codebook_size"] == 16
    assert got["encoder"]["position"] == got["tokenizer"]["encoder"]["position"] == "index"
    for part in (got, want):
        part["encoder"].pop("position")
        part["tokenizer"]["encoder"].pop("position")
    assert got == want
    assert bench.run_datasets(run) == ["uci-gestures"]
    made = (run / "encoder.pt").stat().st_mtime_ns
    assert bench.ablation_run("aemg-nospatial", base, corpora, tmp_path / "work") == run
    assert (run / "encoder.pt").stat().st_mtime_ns == made


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_loso", ROOT / "benchmarks" / "bench_loso.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench



ABLATED = {f"{m}-{b}": (m, b) for m in ("aemg-windows", "aemg-nospatial") for b in ("small-a", "small-b")}
"""The ablation runs kept in pretrained/ablations: ``<method>-<stored run>``, made by bench_loso.ablation_run."""


@pytest.mark.parametrize("name", sorted(ABLATED))
def test_stored_ablation_run_is_its_base_run_plus_the_ablation(name):
    from aemg.evaluate.encoder_methods import check_ablation_run
    from aemg.model import load_encoder
    from aemg.train.sources import run_token_kind

    method, base_name = ABLATED[name]
    run, base = pretrained_dir() / "ablations" / name, resolve_run(base_name)
    for f in (*TRAVELS, "bench_key.txt"):
        assert (run / f).is_file(), f"{run / f} missing"
    assert not list(run.glob("ckpt.pt")) and not list(run.glob("rng_*.pt"))
    assert sum(p.stat().st_size for p in run.iterdir()) < 8 * 2**20
    for f in ("encoder.pt", "tokenizer.pt"):
        assert set(torch.load(run / f, map_location="cpu", weights_only=True)) == {"config", "state"}
    load_encoder(run)
    check_ablation_run(run, method)  # windows tokens / channel-index positions, as the method needs
    got, want = json.loads((run / "config.json").read_text()), json.loads((base / "config.json").read_text())
    if method == "aemg-nospatial":
        assert got["encoder"]["position"] == got["tokenizer"]["encoder"]["position"] == "index"
        for part in (got, want):
            part["encoder"].pop("position")
            part["tokenizer"]["encoder"].pop("position")
    else:
        assert run_token_kind(run) == {"kind": "windows", "window_ms": 200.0}
    assert got == want  # everything else (steps, codebook, token content, seed) is the base run's
    subjects = [(c["dataset"], c["subjects"]) for c in json.loads((run / "run.json").read_text())["corpora"]]
    assert subjects == [(c["dataset"], c["subjects"]) for c in json.loads((base / "run.json").read_text())["corpora"]]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stage2"]["loss_last"] < summary["stage2"]["loss_first"]
    command = (run / "command.sh").read_text()
    assert f"--config pretrained/{base_name}/config.json" in command


@pytest.mark.slow
def test_bench_loso_takes_the_stored_ablation_runs(corpus_3dc, corpus_cote_allard, tmp_path, monkeypatch):
    """On corpora prepared from ../shared/data the benchmark's key of small-b's ablations is the stored one, so a
    fresh clone evaluates them without pre-training."""
    import aemg.cli

    bench = _bench()
    corpora = tmp_path / "corpora"
    for c in (corpus_3dc, corpus_cote_allard):
        bench.corpus_for(c.dataset, _linked(c, corpora))  # tokenized now if no test stored its token set yet
    real = aemg.cli.main

    def no_pretraining(argv):
        assert argv[0] != "pretrain", f"the benchmark pre-trained: {argv}"
        return real(argv)

    monkeypatch.setattr(aemg.cli, "main", no_pretraining)
    for method in ("aemg-windows", "aemg-nospatial"):
        assert bench.ablation_run(method, resolve_run("small-b"), corpora, tmp_path / "work") == \
            pretrained_dir() / "ablations" / f"{method}-small-b"


def test_bench_token_set_hash_ignores_where_the_corpus_lies_but_not_the_tokens(corpus_uci, tmp_path):
    """The ablation key's token hash: a token set re-written with another corpus path in its metadata (and other
    zip timestamps) hashes alike; one changed content value does not."""
    import numpy as np

    bench = _bench()
    src = bench.corpus_for("uci-gestures", _linked(corpus_uci, tmp_path / "corpora")).path / "tokens" / "events.npz"
    with np.load(src, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    meta = json.loads(str(arrays["meta"]))
    assert meta["corpus"]
    moved = dict(arrays, meta=np.asarray(json.dumps(dict(meta, corpus="/elsewhere/uci-gestures"))))
    np.savez(tmp_path / "moved.npz", **moved)
    assert (tmp_path / "moved.npz").read_bytes() != src.read_bytes()
    assert bench.token_set_hash(tmp_path / "moved.npz") == bench.token_set_hash(src)
    name = next(n for n, a in arrays.items() if a.dtype == np.float32 and a.size)
    changed = dict(arrays, **{name: arrays[name].copy()})
    changed[name].flat[0] += 1.0
    np.savez(tmp_path / "changed.npz", **changed)
    assert bench.token_set_hash(tmp_path / "changed.npz") != bench.token_set_hash(src)


def _linked(corpus, folder: Path) -> Path:
    """``folder`` holding a link ``<dataset>`` to the session's prepared corpus (as bench_loso's --corpora)."""
    folder.mkdir(exist_ok=True)
    (folder / corpus.dataset).symlink_to(Path(corpus.path).resolve())
    return folder
