"""Two-stage self-supervised pre-training: one recipe, one loop, on Lightning Fabric.

Recipe shape (torchtune "recipes, not trainers"): :class:`PretrainRecipe` checks the options in
``__init__``, builds components in dependency order in ``setup``, runs ``train`` (stage 1, the VQ
tokenizer; then stage 2, masked token modelling) and writes ``summary.json`` in ``cleanup``.
:func:`pretrain` calls them in sequence. Fabric replaces device, precision and DDP code; the same
loop runs on one CPU process and on many GPUs across nodes.

Run directory::

    config.json        resolved config (also stored in every checkpoint)
    run.json           corpora, excluded datasets, token kind ("tokens": {"kind": "events"} or
                       {"kind": "windows", "window_ms": 200.0}), held-out recordings, world size
    metrics.jsonl      one row per step and stage (rank 0)
    ckpt.pt            latest checkpoint (atomic): models, optimizer, schedule step, RNG, sampler position
    rng_rank{r}_s{stage}_{step}.pt
                       every process's RNG state at that checkpoint (named by it: a run killed after
                       writing the next one and before ckpt.pt still resumes from the previous pair)
    tokenizer.pt       the frozen stage-1 tokenizer (config + state), written when stage 1 ends
    encoder.pt         the stage-2 encoder (config + state), what evaluation fine-tunes or probes
    summary.json       stage1 / stage2 figures and the corpora it saw
    code_usage.json    how often the frozen tokenizer used each code (aemg prototypes draws the top ones)
    seen_rank{r}.txt   only with ``record_seen=True`` (the DDP test): the span indices each process trained on

Determinism: an item of the span dataset is a pure function of (seed, epoch, index); masks and
augmentations draw from generators seeded by (seed, stage, step, rank); the global RNGs (dropout,
k-means init, dead-code revival) are saved and restored. A run stopped and resumed therefore ends
with bitwise the same weights as one that was not interrupted (same machine, same thread count).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from aemg.atomic import atomic_write_text
from aemg.errors import TrainingDiverged
from aemg.model import MaskedTokenModel, TokenizerConfig, VQTokenizer, n_params, rotate_flip
from aemg.model.config import config_from_dict
from aemg.train.checkpoint import (
    CKPT,
    ENCODER,
    TOKENIZER,
    read_checkpoint,
    restore_rng,
    save_module,
    write_checkpoint,
)
from aemg.train.config import PretrainConfig, StageConfig, config_diff
from aemg.train.data import ResumableSampler, SpanDataset, TokenRecording, collate, split_holdout
from aemg.train.engine import (
    generator,
    get_lr,
    mean_first_last,
    read_metrics,
    seed_all,
    truncate_metrics,
    unwrap,
)
from aemg.train.figures import codebook_stats, eval_spans, masked_accuracy
from aemg.train.sources import TokenSource

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


@dataclass
class Stage:
    """One pre-training stage: the model it trains (its ``forward(x, targets, ...) -> (out, loss)`` and
    ``step_metrics(out, targets)``), its optimisation settings, and how a batch becomes the forward's
    arguments ``(x, targets, *rest)`` given the step's mask generator."""

    number: int
    model: torch.nn.Module
    cfg: StageConfig
    inputs: Callable[[Batch, torch.Generator], tuple[Any, ...]]


class InjectedStop(RuntimeError):
    """Raised after the checkpoint at ``stop_at`` (tests interrupt a run this way)."""


class PretrainRecipe:
    """Both pre-training stages over ``sources`` into the run directory ``out`` (see the module docstring).

    Options are checked here, before any process starts: ``exclude`` (dataset names) leaves corpora
    out, ``resume`` continues the run in ``out`` from its checkpoint (with the run's own config),
    ``stop_at`` = (stage, step) raises :class:`InjectedStop` right after that step's checkpoint,
    ``stop_after_steps`` = N ends each stage after N optimizer steps without changing its schedule (the
    first N steps of a run, e.g. to check a stored run's losses), ``tokenizer_from`` (a finished run
    directory) skips stage 1 and trains stage 2 on that run's frozen ``tokenizer.pt``, and
    ``record_seen`` makes every process log the span indices it trained on (for the DDP test).
    """

    def __init__(self, cfg: PretrainConfig, sources: list[TokenSource], out: str | Path, *,
                 accelerator: str = "cpu", devices: int | str = 1, num_nodes: int = 1, strategy: str = "auto",
                 precision: str = "32-true", resume: bool = False, exclude: tuple[str, ...] = (),
                 progress: bool = True, stop_at: tuple[int, int] | None = None, record_seen: bool = False,
                 stop_after_steps: int | None = None, tokenizer_from: str | Path | None = None):
        self.out = Path(out)
        if stop_after_steps is not None and stop_after_steps < 1:
            raise ValueError(f"stop_after_steps must be >= 1, got {stop_after_steps}")
        self.stop_after_steps = stop_after_steps
        self.tokenizer_from = Path(tokenizer_from) if tokenizer_from is not None else None
        if self.tokenizer_from is not None and resume:
            raise ValueError("tokenizer_from starts a new run; it cannot be combined with resume")
        if self.tokenizer_from is not None and not (self.tokenizer_from / TOKENIZER).is_file():
            raise FileNotFoundError(f"{self.tokenizer_from / TOKENIZER}: no frozen tokenizer (expected the "
                                    "tokenizer.pt of a finished aemg pretrain run)")
        self.resume = resume
        self.exclude = tuple(exclude)
        self.sources = [s for s in sources if s.dataset not in self.exclude]
        given = sorted({s.dataset for s in sources})
        self.unmatched_exclude = [name for name in self.exclude if name not in given]  # a typo? (warned in setup)
        self.given_datasets = given
        if not self.sources:
            raise ValueError(f"nothing to pre-train on: every corpus was excluded ({', '.join(self.exclude)})")
        kinds = {json.dumps(s.tokens, sort_keys=True) for s in self.sources}
        if len(kinds) != 1:
            raise ValueError(f"corpora disagree on the token kind: {sorted(kinds)}; load them with one --window-ms")
        self.tokens = dict(self.sources[0].tokens)  # the token kind, recorded in run.json and summary.json
        amps = {s.content_amp for s in self.sources} | {cfg.encoder.content_amp, cfg.tokenizer.encoder.content_amp}
        if len(amps) != 1:  # the networks must read the content the sources hold (load_token_sources(content_amp=))
            raise ValueError(f"token content and config disagree on log_amp's reference: sources "
                             f"{sorted({s.content_amp for s in self.sources})}, encoder.content_amp "
                             f"{cfg.encoder.content_amp!r}, tokenizer.encoder.content_amp "
                             f"{cfg.tokenizer.encoder.content_amp!r}")
        content_dims = {r.content.shape[1] for s in self.sources for r in s.recordings}
        if len(content_dims) != 1:
            raise ValueError(f"corpora disagree on the token content dim: {sorted(content_dims)}; tokenize them alike")
        cfg = cfg.with_content_dim(content_dims.pop())
        if resume:
            if not (self.out / CKPT).exists():
                raise FileNotFoundError(f"{self.out / 'ckpt.pt'}: no checkpoint to resume from (the run stopped before "
                                        "its first one); start it again without --resume")
            self._check_same_corpora()
            saved = PretrainConfig.load(self.out / "config.json")
            if saved.to_dict() != cfg.to_dict():
                diff = config_diff(saved.to_dict(), cfg.to_dict())
                log.warning("--resume: the given config differs from the run's config.json (%s); using the run's",
                            ", ".join(diff))
            cfg = saved
        elif (self.out / CKPT).exists():
            raise FileExistsError(f"{self.out}: holds a run already; pass --resume to continue it or choose another --out")
        elif self.out.exists() and (not self.out.is_dir() or (any(self.out.iterdir())
                                                              and not (self.out / "config.json").exists())):
            raise FileExistsError(f"{self.out}: exists and is not a pre-training run directory; choose another --out")
        if not 0.0 < cfg.mtm.mask_ratio < 1.0:
            raise ValueError(f"mtm.mask_ratio must be in (0, 1), got {cfg.mtm.mask_ratio}")
        if cfg.log_every != 1:
            raise ValueError("log_every must be 1: summary.json's _first/_last are means over single steps")
        for n in (1, 2):
            scfg = cfg.stage(n)
            if not resume and 0 < scfg.max_steps <= scfg.warmup_steps:
                log.warning("stage%d: warmup_steps %d >= max_steps %d, so the learning rate never reaches stage%d.lr; "
                            "lower stage%d.warmup_steps (--max-steps scales it with the steps)", n, scfg.warmup_steps,
                            scfg.max_steps, n, n)
        self.cfg = cfg
        self.fabric_kwargs = dict(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                                  precision=precision)
        self.progress = progress
        self.stop_at = stop_at
        self.record_seen = record_seen

    def _check_same_corpora(self) -> None:
        """A resumed run must see the corpora and tokens it started with (provenance and token hashes)."""
        run_json = self.out / "run.json"
        if not run_json.exists():
            return
        run = json.loads(run_json.read_text())
        corpora = run["corpora"]
        kind = run.get("tokens", {"kind": "events"})
        if kind != self.tokens:
            raise ValueError(f"{self.out}: --resume with other tokens than the run started with (run: {kind}, "
                             f"given: {self.tokens}); pass the same --window-ms")
        before = sorted((c["dataset"], c["provenance_hash"]) for c in corpora)
        now = sorted((s.dataset, s.provenance_hash) for s in self.sources)
        if before != now:
            raise ValueError(f"{self.out}: --resume with other corpora than the run started with (run: {before}, "
                             f"given: {now}); pass the same --corpus and --exclude")
        changed = sorted(c["dataset"] for c in corpora if c.get("token_hash") not in
                         {s.token_hash() for s in self.sources if s.dataset == c["dataset"]})
        if changed:
            raise ValueError(f"{self.out}: the tokens of {', '.join(changed)} differ from those the run started with "
                             "(tokenized by another version?); store them with aemg tokenize, or start a new run")

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        from lightning_fabric import Fabric

        cfg = self.cfg
        self.fabric = fabric = Fabric(**self.fabric_kwargs)
        fabric.launch()
        self.rank, self.world = fabric.global_rank, fabric.world_size
        if not fabric.is_global_zero:  # rank-0 logging: other processes report warnings and errors only
            logging.getLogger("aemg").setLevel(max(logging.WARNING, logging.getLogger("aemg").getEffectiveLevel()))
        for name in self.unmatched_exclude:
            log.warning("--exclude %s: no corpus of that dataset was given (datasets: %s)", name,
                        ", ".join(self.given_datasets))
        if fabric.is_global_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            if not self.resume:
                cfg.save(self.out / "config.json")
                (self.out / "metrics.jsonl").write_text("")
        fabric.barrier()
        log.info("resolved config: %s", json.dumps(cfg.to_dict()))
        recordings = [r for s in self.sources for r in s.recordings]
        self.train_recs, self.heldout_recs = split_holdout(recordings, cfg.data.holdout_fraction, cfg.seed)
        self.train_ds = SpanDataset(self.train_recs, cfg.data.max_tokens, seed=cfg.seed)
        if len(self.train_ds) < self.world:
            raise ValueError(f"{len(self.train_ds)} training spans for {self.world} processes: add data or use fewer devices")
        self.sampler = ResumableSampler(self.train_ds, self.world, self.rank, cfg.seed)
        # models: the same initial weights on every rank (DDP also broadcasts rank 0's)
        seed_all(cfg.seed)
        sync = self.world > 1
        self.tokenizer = VQTokenizer(cfg.tokenizer, sync_codebook=sync)
        self.mtm = MaskedTokenModel(cfg.encoder, cfg.mtm, cfg.tokenizer.quantizer.codebook_size)
        content = torch.from_numpy(np.concatenate([r.content for r in self.train_recs]))
        self.tokenizer.fit_standardization(content)
        log.info("encoder %.3fM parameters (+ MTM head %.3fM); tokenizer %.3fM", n_params(self.mtm.encoder) / 1e6,
                 n_params(self.mtm.head) / 1e6, n_params(self.tokenizer) / 1e6)
        self.stages = {1: Stage(1, self.tokenizer, cfg.stage1, self._tokenizer_inputs),
                       2: Stage(2, self.mtm, cfg.stage2, self._mtm_inputs)}
        self.state = {"stage": 1, "step": 0, "epoch": 0, "pos": 0}
        self.ckpt: dict[str, Any] | None = None
        self.last_ckpt: tuple[int, int] | None = None  # (stage, step) of the last checkpoint written or resumed
        if self.resume:
            self.ckpt = read_checkpoint(self.out)
            self.state = dict(self.ckpt["state"])
            self.last_ckpt = (self.state["stage"], self.state["step"])
            if self.ckpt["world_size"] != self.world:
                raise ValueError(f"{self.out}: the run used {self.ckpt['world_size']} processes, this resume has "
                                 f"{self.world}; resume with the same --devices and --num-nodes")
            self.tokenizer.load_state_dict(self.ckpt["tokenizer"])
            if self.ckpt.get("mtm") is not None:
                self.mtm.load_state_dict(self.ckpt["mtm"])
            if fabric.is_global_zero:
                truncate_metrics(self.out / "metrics.jsonl", self.state["stage"], self.state["step"])
            restore_rng(self.out, self.rank, self.state["stage"], self.state["step"])
            log.info("resumed at stage %d step %d", self.state["stage"], self.state["step"])
        else:
            seed_all(cfg.seed + 1000 * self.rank)
            if self.tokenizer_from is not None:
                self._load_frozen_tokenizer()
        if fabric.is_global_zero:
            run = {"corpora": [s.describe() for s in self.sources], "excluded": list(self.exclude), "tokens": self.tokens,
                   "heldout_recordings": [r.key for r in self.heldout_recs], "world_size": self.world,
                   "fabric": {k: str(v) for k, v in self.fabric_kwargs.items()},
                   "content_names": list(self.sources[0].content_names or []) or None,
                   "stop_after_steps": self.stop_after_steps,
                   "tokenizer_from": str(self.tokenizer_from) if self.tokenizer_from is not None else None}
            atomic_write_text(self.out / "run.json", json.dumps(run, indent=2))

    def _load_frozen_tokenizer(self) -> None:
        """Stage 1 skipped: the tokenizer is the given run's frozen one, and the run starts at stage 2 step 0."""
        ck = torch.load(self.tokenizer_from / TOKENIZER, map_location="cpu", weights_only=True)
        # read back through the dataclass, so fields added to aemg since that run take their defaults
        saved = dataclasses.asdict(config_from_dict(TokenizerConfig, ck["config"]))
        given, own = json.loads(json.dumps(saved)), json.loads(json.dumps(self.cfg.to_dict()["tokenizer"]))
        if given != own:
            raise ValueError(f"{self.tokenizer_from / TOKENIZER}: its tokenizer config differs from this run's "
                             f"({', '.join(config_diff(given, own))})")
        self.tokenizer.load_state_dict(ck["state"])
        self.state = {"stage": 2, "step": 0, "epoch": 0, "pos": 0}
        tok = self._freeze_tokenizer()
        if self.fabric.is_global_zero:
            save_module(self.out / TOKENIZER, self.cfg.tokenizer, tok)

    # ------------------------------------------------------------------ data
    def _loader(self) -> DataLoader:
        return DataLoader(self.train_ds, batch_size=self.cfg.data.batch_size, sampler=self.sampler, collate_fn=collate,
                          num_workers=self.cfg.data.num_workers, generator=torch.Generator().manual_seed(0),
                          persistent_workers=False)

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches; ``state['epoch']`` and ``state['pos']`` (batches consumed this epoch) track position."""
        bs = self.cfg.data.batch_size
        while True:
            ep = self.state["epoch"] + 100_000 * (self.state["stage"] - 1)  # stage 2 draws other spans and orders
            self.train_ds.set_epoch(ep)
            self.sampler.set_epoch(ep, start=self.state["pos"] * bs)
            for batch in self._loader():
                self.state["pos"] += 1
                yield batch
            self.state["epoch"] += 1
            self.state["pos"] = 0

    # ------------------------------------------------------------------ checkpoints
    def _save(self, optimizer: torch.optim.Optimizer, stage: int) -> None:
        """``ckpt.pt`` and every process's RNG file (:func:`aemg.train.checkpoint.write_checkpoint`)."""
        state = dict(self.state)
        self._check_finite_weights(stage)
        write_checkpoint(self.fabric, self.out, self.rank, state, {
            "config": self.cfg.to_dict(),
            "tokenizer": unwrap(self.tokenizer).state_dict(),
            "mtm": unwrap(self.mtm).state_dict() if stage == 2 else None,  # stage 1 has not trained it yet
            "optimizer": optimizer.state_dict(),
            "scheduler": {"kind": "warmup_cosine", "step": state["step"], "lr": get_lr(state["step"], self.cfg.stage(stage))},
            "world_size": self.world,
        })
        self.last_ckpt = (stage, state["step"])

    # ------------------------------------------------------------------ divergence
    def _diverged(self, stage: int, step: int, found: str) -> TrainingDiverged:
        """The one-line error for a non-finite loss, gradient or weight at ``step`` (1-based) of ``stage``."""
        scfg = self.cfg.stage(stage)
        return TrainingDiverged(self.out, stage, step, found, get_lr(step - 1, scfg), scfg.lr, self.last_ckpt)

    def _check_finite(self, stage: int, step: int, value: torch.Tensor, what: str) -> None:
        """Raise :class:`TrainingDiverged` when ``value`` is not finite on any process (all agree, so none hangs)."""
        bad = (~torch.isfinite(value.detach())).any().float().reshape(1)
        if self.world > 1:
            bad = self.fabric.all_reduce(bad, reduce_op="sum")
        if bool(bad.item()):
            shown = f"{float(value.detach().reshape(-1)[0]):g}" if value.numel() == 1 else "a non-finite value"
            raise self._diverged(stage, step, f"{what} {shown}")

    def _check_finite_weights(self, stage: int) -> None:
        """Never checkpoint broken weights: every floating tensor of the stage's model must be finite."""
        model = unwrap(self.stages[stage].model)
        bad = [k for k, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise self._diverged(stage, self.state["step"], f"non-finite weights ({', '.join(bad[:3])})")

    # ------------------------------------------------------------------ train
    def train(self) -> None:
        if self.state["stage"] == 1:
            self._run_stage(1)
            self.state.update(stage=2, step=0, epoch=0, pos=0)
            self._finish_stage1()
        self._run_stage(2)
        if self.fabric.is_global_zero:
            save_module(self.out / ENCODER, self.cfg.encoder, unwrap(self.mtm).encoder)

    def _finish_stage1(self) -> None:
        tok = self._freeze_tokenizer()
        if self.fabric.is_global_zero:
            save_module(self.out / TOKENIZER, self.cfg.tokenizer, tok)
        self.stage1_stats = self._codebook_stats()

    def _freeze_tokenizer(self) -> VQTokenizer:
        """Stage 2 only reads the tokenizer: eval mode (no EMA, k-means or dead-code updates of the
        codebook) and no gradients."""
        tok = unwrap(self.tokenizer)
        tok.eval()
        for p in tok.parameters():
            p.requires_grad_(False)
        return tok

    def _run_stage(self, stage: int) -> None:
        from tqdm import tqdm

        fabric, cfg = self.fabric, self.cfg
        scfg = self.cfg.stage(stage)
        end = scfg.max_steps if self.stop_after_steps is None else min(scfg.max_steps, self.stop_after_steps)
        fmodel, foptimizer = self.setup_stage(stage)
        bar = tqdm(total=scfg.max_steps, initial=self.state["step"], desc=f"stage {stage}", file=sys.stderr,
                   disable=not (self.progress and fabric.is_global_zero), dynamic_ncols=True)
        metrics_f = open(self.out / "metrics.jsonl", "a") if fabric.is_global_zero else None  # noqa: SIM115
        batches = self._batches()
        try:
            while self.state["step"] < end:
                step = self.state["step"]
                t0 = time.perf_counter()
                batch = fabric.to_device(next(batches))
                lr = get_lr(step, scfg)
                for g in foptimizer.param_groups:
                    g["lr"] = lr
                loss, row = self.train_step(stage, step, fmodel, foptimizer, batch)
                row["lr"] = lr
                self.state["step"] = step + 1
                n_tok = int((~batch["pad_mask"]).sum()) * self.world
                dt = time.perf_counter() - t0
                row.update(loss=loss.item(), tokens=n_tok, tokens_per_s=n_tok / dt, epoch=self.state["epoch"])
                if metrics_f is not None:
                    metrics_f.write(json.dumps(row) + "\n")
                    metrics_f.flush()
                if self.record_seen:
                    self._record_seen(stage, batch["index"])
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}")
                at_stop = self.stop_at == (stage, self.state["step"])
                if at_stop or self.state["step"] % cfg.ckpt_every == 0 or self.state["step"] == end:
                    self._save(foptimizer, stage)
                if at_stop:
                    raise InjectedStop(f"stopped after stage {stage} step {self.state['step']} (injected)")
        finally:
            bar.close()
            if metrics_f is not None:
                metrics_f.close()

    def train_step(self, stage: int, step: int, fmodel: torch.nn.Module, foptimizer: torch.optim.Optimizer,
                   batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        """One optimizer step of ``stage`` on ``batch`` (on the device); returns the loss and a metrics row."""
        cfg, fabric, st = self.cfg, self.fabric, self.stages[stage]
        if cfg.data.rotate_unknown:
            batch = rotate_flip(batch, generator(cfg.seed, stage, step, self.rank, "rotate"))
        x, targets, *rest = st.inputs(batch, generator(cfg.seed, stage, step, self.rank, "mask"))
        out, loss = fmodel(x, targets, *rest)
        self._check_finite(stage, step + 1, loss, "loss")
        row: dict[str, Any] = {"stage": stage, "step": step + 1, **st.model.step_metrics(out, targets)}
        foptimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if st.cfg.grad_clip > 0:
            try:
                fabric.clip_gradients(fmodel, foptimizer, max_norm=st.cfg.grad_clip)
            except RuntimeError as exc:  # torch refuses to clip a non-finite norm (the same on every process)
                if "non-finite" not in str(exc):
                    raise
                raise self._diverged(stage, step + 1, "a non-finite gradient norm") from None
        foptimizer.step()
        return loss, row

    def _tokenizer_inputs(self, batch: Batch, mask_generator: torch.Generator) -> tuple[Batch, torch.Tensor]:
        """Stage 1 reconstructs the batch's own content (no mask)."""
        return batch, batch["content"]

    def _mtm_inputs(self, batch: Batch, mask_generator: torch.Generator) -> tuple[Batch, torch.Tensor, torch.Tensor]:
        """Stage 2 predicts the frozen tokenizer's ids of the masked tokens."""
        codes = unwrap(self.tokenizer).tokenize(batch)
        return unwrap(self.mtm).masked_inputs(batch, codes, mask_generator)

    def setup_stage(self, stage: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """Fabric-wrapped model and optimizer of ``stage`` (restoring the optimizer from a resumed checkpoint)."""
        fabric, st = self.fabric, self.stages[stage]
        st.model.train()
        optimizer = st.model.configure_optimizers(st.cfg.weight_decay, st.cfg.lr, st.cfg.betas, fabric.device.type)
        fmodel, foptimizer = fabric.setup(st.model, optimizer)
        if stage == 2:  # stage 2 reads the tokenizer (on its device, frozen), also when a run resumes inside it
            self.tokenizer = self.tokenizer.to(fabric.device)
            self._freeze_tokenizer()
        if self.ckpt is not None and self.ckpt["state"]["stage"] == stage:
            foptimizer.load_state_dict(self.ckpt["optimizer"])
            self.ckpt = None
        return fmodel, foptimizer

    def _record_seen(self, stage: int, index: torch.Tensor) -> None:
        """Each process appends the span indices it trained on (the DDP test checks they are disjoint)."""
        with open(self.out / f"seen_rank{self.rank}.txt", "a") as f:
            f.write(f"{stage} {self.state['epoch']} " + " ".join(str(int(i)) for i in index) + "\n")

    # ------------------------------------------------------------------ evaluation
    def _eval_batches(self, recordings: list[TokenRecording]) -> Iterator[Batch]:
        d = self.cfg.data
        return eval_spans(recordings, d.max_tokens, d.batch_size, self.cfg.eval_batches, self.cfg.seed,
                          self.fabric.to_device)

    def _codebook_stats(self) -> dict[str, Any]:
        """Codebook usage and perplexity of the frozen tokenizer over training spans (same on every rank)."""
        return codebook_stats(unwrap(self.tokenizer), self._eval_batches(self.train_recs))

    def _masked_accuracy(self) -> dict[str, Any]:
        """Masked-token accuracy on held-out recordings (the training ones if none is held out)."""
        recs, heldout = (self.heldout_recs, True) if self.heldout_recs else (self.train_recs, False)
        acc = masked_accuracy(unwrap(self.tokenizer), unwrap(self.mtm), self._eval_batches(recs), self.cfg.seed)
        return {**acc, "heldout": heldout, "heldout_recordings": [r.key for r in recs] if heldout else []}

    # ------------------------------------------------------------------ cleanup
    def cleanup(self) -> dict[str, Any]:
        if not hasattr(self, "stage1_stats"):
            self.stage1_stats = self._codebook_stats()
        acc = self._masked_accuracy()
        summary: dict[str, Any] = {}
        if self.fabric.is_global_zero:
            rows = read_metrics(self.out / "metrics.jsonl")
            r1 = [r["recon_loss"] for r in rows if r["stage"] == 1]
            l2 = [r["loss"] for r in rows if r["stage"] == 2]
            f1, la1 = mean_first_last(r1)
            f2, la2 = mean_first_last(l2)
            s1 = dict(self.stage1_stats)
            counts = s1.pop("code_counts")
            summary = {
                "config": self.cfg.name, "world_size": self.world,
                "stage1": {"recon_loss_first": f1, "recon_loss_last": la1, "steps": len(r1), **s1},
                "stage2": {"loss_first": f2, "loss_last": la2, "steps": len(l2), **acc},
                "corpora": [s.describe() for s in self.sources], "excluded": list(self.exclude), "tokens": self.tokens,
                "params": {"encoder": n_params(unwrap(self.mtm).encoder), "mtm_head": n_params(unwrap(self.mtm).head),
                           "tokenizer": n_params(unwrap(self.tokenizer))},
            }
            atomic_write_text(self.out / "code_usage.json", json.dumps({"code_counts": counts}))
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2))
        self.fabric.barrier()
        return summary


def pretrain(cfg: PretrainConfig, sources: list[TokenSource], out: str | Path, **kwargs) -> dict[str, Any]:
    """Run both stages (or resume them) and return the summary (rank 0; ``{}`` on other ranks)."""
    recipe = PretrainRecipe(cfg, sources, out, **kwargs)
    recipe.setup()
    recipe.train()
    return recipe.cleanup()

