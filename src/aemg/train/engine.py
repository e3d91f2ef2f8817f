"""Pieces of the training loop that are not the loop: LR schedule, seeds, metrics rows, unwrapping.

The loop itself is in :mod:`aemg.train.pretrain`, readable top to bottom (nanoGPT ``train.py``,
torchtune recipes); checkpoint and RNG files are :mod:`aemg.train.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aemg.atomic import atomic_write_text
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
