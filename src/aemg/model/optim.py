"""AdamW with nanoGPT's two parameter groups, shared by the stage-1 and stage-2 models."""

from __future__ import annotations

import inspect
import logging

import torch
import torch.nn as nn

log = logging.getLogger(__name__)


def configure_optimizers(module: nn.Module, weight_decay: float, lr: float, betas: tuple[float, float],
                         device_type: str = "cpu") -> torch.optim.AdamW:
    """Parameters with dim >= 2 decay; biases, norms and 1-d vectors do not (the VQ codebook is a buffer,
    updated by EMA, and never reaches the optimizer). Fused AdamW where available (CUDA)."""
    params = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    log.info("optimizer groups: %d tensors (%d params) with decay, %d tensors (%d params) without",
             len(decay), sum(p.numel() for p in decay), len(no_decay), sum(p.numel() for p in no_decay))
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), **({"fused": True} if fused else {}))
