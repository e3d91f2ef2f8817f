"""Pieces of the training loop that are not the loop: LR schedule, seeds, metrics rows, unwrapping, hardware check.

The loop itself is in :mod:`aemg.train.pretrain`, readable top to bottom (nanoGPT ``train.py``,
torchtune recipes); checkpoint and RNG files are :mod:`aemg.train.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aemg.atomic import atomic_write_text
from aemg.errors import OptionError
from aemg.train.config import StageConfig


def get_lr(step: int, cfg: StageConfig) -> float:
    """Pure function of the step (nanoGPT): linear warm-up, cosine decay to ``min_lr`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    if step >= cfg.max_steps:
        return cfg.min_lr
    ratio = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def step_seed(*parts: int | str) -> int:
    """A 63-bit seed from any parts (seed, stage, step, rank, purpose): independent streams, no state."""
    h = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def generator(*parts: int | str) -> torch.Generator:
    return torch.Generator().manual_seed(step_seed(*parts))


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a torn last line (a process killed while appending) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise
    return rows


def truncate_metrics(path: str | Path, stage: int, step: int) -> None:
    """Keep only rows up to (stage, step), the point a checkpoint was taken (a resume rewrites the rest)."""
    rows = [r for r in read_metrics(path) if (r["stage"], r["step"]) <= (stage, step)]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def mean_first_last(values: list[float], n: int = 10) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values[:n])), float(np.mean(values[-n:]))


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module under Fabric / DDP / compile wrappers (its state dict has no prefixes)."""
    while True:
        for attr in ("_forward_module", "module", "_orig_mod"):
            inner = getattr(module, attr, None)
            if isinstance(inner, torch.nn.Module):
                module = inner
                break
        else:
            return module


ACCELERATORS = ("cpu", "cuda", "gpu", "mps", "auto")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def available_accelerators() -> list[str]:
    """What this machine can run on, e.g. ``['cpu (2 cores)', 'cuda (1 GPU)']`` (for messages)."""
    out = [f"cpu ({os.cpu_count() or 1} cores)"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        out.append(f"cuda ({n} GPU{'s' if n != 1 else ''})")
    if torch.backends.mps.is_available():
        out.append("mps (1 device)")
    return out


def check_hardware(accelerator: str, devices: str | int, num_nodes: int = 1, strategy: str = "auto",
                   precision: str = "32-true") -> int | str:
    """Check the Fabric options against this machine before anything starts; return ``devices`` as an int or
    ``"auto"``. A bad value is an :class:`OptionError` naming the option and what is available here."""
    here = "available here: " + ", ".join(available_accelerators())
    if accelerator not in ACCELERATORS:
        raise OptionError(f"--accelerator {accelerator}", f"one of {', '.join(ACCELERATORS)}",
                          f"found {accelerator!r} ({here})")
    kind = accelerator
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if kind in ("cuda", "gpu") and not torch.cuda.is_available():
        if accelerator == "gpu" and torch.backends.mps.is_available():
            kind = "mps"
        else:
            raise OptionError(f"--accelerator {accelerator}", "a machine with a CUDA GPU", f"found none ({here})")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"--accelerator {accelerator}", "a Mac with an Apple-silicon GPU (MPS)", f"found none ({here})")
    if str(devices) == "auto":
        n_dev: int | str = "auto"
    else:
        try:
            n_dev = int(devices)
        except ValueError:
            n_dev = 0
        if n_dev < 1:
            raise OptionError(f"--devices {devices}", "a whole number >= 1, or auto", f"found {str(devices)!r}")
        limit = {"cuda": torch.cuda.device_count, "gpu": torch.cuda.device_count, "mps": lambda: 1}.get(
            kind, lambda: os.cpu_count() or 1)()
        if n_dev > limit:
            what = "processes on this machine's CPU cores" if kind == "cpu" else f"{kind} devices on this machine"
            raise OptionError(f"--devices {devices}", f"at most {limit} {what}", f"found {n_dev} ({here})")
    if num_nodes < 1:
        raise OptionError(f"--num-nodes {num_nodes}", "a whole number >= 1", f"found {num_nodes}")
    from lightning_fabric.strategies import STRATEGY_REGISTRY

    strategies = ["auto", *STRATEGY_REGISTRY]
    if strategy not in strategies:
        raise OptionError(f"--strategy {strategy}", "auto, ddp or another Lightning Fabric strategy "
                          f"({', '.join(strategies[:6])}, ...)", f"found {strategy!r}")
    if precision not in PRECISIONS:
        raise OptionError(f"--precision {precision}", f"one of {', '.join(PRECISIONS)}", f"found {precision!r}")
    return n_dev
