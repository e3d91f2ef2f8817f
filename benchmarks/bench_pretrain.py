"""Pre-training throughput, peak memory and model FLOP utilisation (MFU).

    python benchmarks/bench_pretrain.py [--config small] [--steps 20] [--threads N]

For ``small`` on this machine's CPU (and ``base`` on a GPU when one is visible; otherwise the output
says so): tokens per second of both stages through the real training step
(:meth:`PretrainRecipe.train_step`: rotation augmentation, forward, backward, clipping, AdamW; stage
2 includes the frozen tokenizer's forward and both symmetric passes), on full spans of synthetic
tokens shaped like the real ones (``aemg.tokens.N_FEATURES`` content features, 8- and 10-electrode groups).

MFU = the step's FLOPs (counted by ``torch.utils.flop_counter.FlopCounterMode`` on one step,
forward + backward, including the padding the batch really carries) over the median step's time,
divided by the FLOP/s of a large float32 matrix product (2048^3, best of several) timed in the same
process with the same threads (``mfu_mean`` uses the mean step instead; on a machine shared with
other jobs the two differ). ``tokens_per_s`` is over all timed steps. The last line of output is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import torch
import torch.utils.flop_counter as _fc

from aemg.train import PretrainRecipe, TokenSource
from aemg.train.config import get_config
from aemg.train.synthetic import synthetic_recordings


def matmul_flops_per_s(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _cpu_sdpa_fwd(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return _fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return _fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# torch's FLOP registry knows the CUDA attention kernels but not the CPU one that SDPA runs here
_ATTN = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_fwd,
         torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_bwd}


def FlopCounterMode(**kw):  # noqa: N802 (a drop-in for torch's class)
    return _fc.FlopCounterMode(custom_mapping=_ATTN, **kw)


class _FixedCodes(torch.nn.Module):
    """Stands in for the frozen tokenizer while FLOPs are counted (its FLOPs are counted apart: the
    module tracker of FlopCounterMode trips over a grad-requiring constant the VQ library returns
    under no_grad)."""

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.codes = codes

    def tokenize(self, batch):
        return self.codes


def count_step_flops(recipe, stage: int, fmodel, fopt, batch) -> int:
    if stage == 1:
        with FlopCounterMode(display=False) as fc:
            recipe.train_step(stage, 0, fmodel, fopt, batch)
        return fc.get_total_flops()
    tok = recipe.tokenizer
    codes = tok.tokenize(batch)
    with torch.no_grad(), FlopCounterMode(display=False) as fc_tok:  # the tokenizer's forward, piece by piece
        h, _ = tok.encoder(batch)
        z = tok.proj_in(h)
        z @ tok.quantizer.codebook.T
        tok.decoder(z)
    recipe.tokenizer = _FixedCodes(codes)
    try:
        with FlopCounterMode(display=False) as fc:
            recipe.train_step(stage, 0, fmodel, fopt, batch)
    finally:
        recipe.tokenizer = tok
    return fc.get_total_flops() + fc_tok.get_total_flops()


def bench_config(name: str, accelerator: str, steps: int, warmup: int = 3) -> dict:
    cfg = get_config(name)
    cfg = cfg.override([f"stage1.max_steps={steps + warmup}", f"stage2.max_steps={steps + warmup}",
                        "data.holdout_fraction=0"])
    from aemg.tokens import N_FEATURES

    recs = synthetic_recordings(n_recordings=8, n_groups=200, content_dim=N_FEATURES, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        recipe = PretrainRecipe(cfg, [TokenSource("synth", "-", "-", recs)], tmp, accelerator=accelerator,
                                devices=1, progress=False)
        recipe.setup()
        device = recipe.fabric.device
        out = {"config": name, "device": str(device),
               "batch_size": cfg.data.batch_size, "max_tokens": cfg.data.max_tokens,
               "params": {"encoder": sum(p.numel() for p in recipe.mtm.encoder.parameters()),
                          "mtm_head": sum(p.numel() for p in recipe.mtm.head.parameters()),
                          "tokenizer": sum(p.numel() for p in recipe.tokenizer.parameters())}}
        batches = recipe._batches()
        for stage in (1, 2):
            fmodel, fopt = recipe.setup_stage(stage)
            batch = recipe.fabric.to_device(next(batches))
            flops_step = count_step_flops(recipe, stage, fmodel, fopt, batch)
            pre = [recipe.fabric.to_device(next(batches)) for _ in range(steps + warmup)]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            for i in range(warmup):
                recipe.train_step(stage, i, fmodel, fopt, pre[i])
            peak_before = matmul_flops_per_s(device)
            n_tok = n_slots = 0
            step_s = []
            for i in range(warmup, warmup + steps):
                _sync(device)
                t = time.perf_counter()
                recipe.train_step(stage, i, fmodel, fopt, pre[i])
                _sync(device)
                step_s.append(time.perf_counter() - t)
                n_tok += int((~pre[i]["pad_mask"]).sum())
                n_slots += pre[i]["pad_mask"].numel()
            dt = sum(step_s)
            median_s = statistics.median(step_s)
            # the machine may be shared: the reference is the mean of the matmul rate just before and just after
            peak_matmul = (peak_before + matmul_flops_per_s(device)) / 2
            tok_per_step = n_tok / steps
            out[f"stage{stage}"] = {
                "tokens_per_s": n_tok / dt, "step_ms": 1000 * dt / steps, "tokens_per_step": tok_per_step,
                "gflops_per_step": flops_step / 1e9, "achieved_gflops": flops_step * steps / dt / 1e9,
                "matmul_gflops": peak_matmul / 1e9,
                # MFU of the median step (the matmul reference is a best-of too: both robust to other jobs'
                # bursts on a shared machine) and of the mean step
                "mfu": flops_step / median_s / peak_matmul, "mfu_mean": flops_step * steps / dt / peak_matmul,
                "pad_fraction": 1 - n_tok / n_slots,  # FLOPs above include the padding's share
            }
            if device.type == "cuda":
                out[f"stage{stage}"]["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            if stage == 1:
                recipe._finish_stage1()
            print(f"{name} stage {stage}: {out[f'stage{stage}']['tokens_per_s']:.0f} tokens/s, "
                  f"MFU {100 * out[f'stage{stage}']['mfu']:.1f}% (mean step {100 * out[f'stage{stage}']['mfu_mean']:.1f}%) "
                  f"({flops_step / median_s / 1e9:.1f} of {peak_matmul / 1e9:.1f} GFLOP/s)", file=sys.stderr)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="small", help="config on the CPU (default small)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per stage (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"cpu": bench_config(args.config, "cpu", args.steps), "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__}
    if torch.cuda.is_available():
        result["gpu"] = bench_config("base", "cuda", args.steps)
        result["gpu"]["name"] = torch.cuda.get_device_name()
    else:
        result["gpu"] = None
        result["gpu_note"] = "no GPU visible: base on GPU not measured"
        print("no GPU visible: base on GPU not measured", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
