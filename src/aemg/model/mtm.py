"""Stage 2: masked token modelling on the spatio-temporal encoder.

A fraction ``mask_ratio`` of each sequence's real tokens (never padding) has its content replaced
by the ``[MASK]`` vector; the encoder sees every token's position, time, group order and rank, and a
linear head predicts the stage-1 prototype id of each masked token. Symmetric masking (LaBraM):
the complement of the mask is scored in a second pass, so every real token is a target once per
step; both passes run as one batch of 2B sequences.

``forward(batch, targets=None, mask=None) -> (logits, loss)``: ``logits`` (B, N, K); ``targets``
(B, N) prototype ids with ``IGNORE`` where not scored; cross-entropy with ``ignore_index=IGNORE``.
With ``content_weight > 0`` a second linear head also regresses each masked token's content vector,
standardised per feature over the batch's real tokens (the MAE target beside BEiT's ids), and the
loss adds ``content_weight`` times its mean squared error over the masked tokens.
``masked_inputs(batch, codes, generator)`` draws the mask of ``MTMConfig`` and gives ``forward``'s
arguments; ``step_metrics(logits, targets)`` the figures of a metrics row.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from aemg.model.config import EncoderConfig, MTMConfig
from aemg.model.encoder import Encoder, n_params
from aemg.model.optim import configure_optimizers
from aemg.tokens.batch import IGNORE

log = logging.getLogger(__name__)


def _choose(present: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, U) True = chosen, uniformly at random: round(ratio * n) of each row's n present entries, at least 1
    and, where a row has two or more, at most n - 1 (so the complement is never empty)."""
    B, U = present.shape
    n = present.sum(1)
    n_mask = torch.round(n.float() * ratio).long()
    n_mask = torch.minimum(torch.clamp(n_mask, min=1), torch.clamp(n - 1, min=1))
    scores = torch.rand(B, U, generator=generator, device="cpu").to(present.device)
    ranks = scores.masked_fill(~present, 2.0).argsort(dim=1).argsort(dim=1)  # absent entries sort last
    return (ranks < n_mask.unsqueeze(1)) & present


def random_token_mask(pad_mask: torch.Tensor, ratio: float, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    """(B, N) True = masked: round(ratio * n_real) real tokens per sequence, at least 1 and, where a
    sequence has two or more real tokens, at most n_real - 1 (so the complement is never empty)."""
    return _choose(~pad_mask, ratio, generator)


def random_unit_mask(units: torch.Tensor, pad_mask: torch.Tensor, ratio: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, N) True = masked: whole units, the tokens sharing an id of ``units`` (B, N) int (a channel, a group):
    round(ratio * n_units) of each sequence's units, at least 1 and at most n_units - 1. A sequence with a
    single unit has its tokens masked one by one instead (:func:`random_token_mask`)."""
    real = ~pad_mask
    u = units.masked_fill(pad_mask, 0)
    n_ids = int(u.max()) + 1 if u.numel() else 1
    present = torch.zeros(u.shape[0], n_ids, device=u.device).scatter_add_(1, u, real.float()) > 0  # (B, U)
    mask = _choose(present, ratio, generator).gather(1, u) & real
    single = present.sum(1) < 2
    if single.any():
        mask = torch.where(single.unsqueeze(1), random_token_mask(pad_mask, ratio, generator), mask)
    return mask


def symmetric_batch(batch: dict[str, torch.Tensor], codes: torch.Tensor, mask: torch.Tensor
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Stack a batch with itself: the first copy masked by ``mask``, the second by its complement among
    real tokens. Returns (batch 2B, content mask 2B, targets 2B with IGNORE where not masked)."""
    comp = ~mask & ~batch["pad_mask"]
    both = torch.cat([mask, comp], 0)
    big = {k: torch.cat([v, v], 0) for k, v in batch.items()}
    codes2 = torch.cat([codes, codes], 0)
    targets = torch.where(both, codes2, torch.full_like(codes2, IGNORE))
    return big, both, targets


class MaskedTokenModel(nn.Module):
    def __init__(self, enc_cfg: EncoderConfig, mtm_cfg: MTMConfig, codebook_size: int):
        super().__init__()
        self.cfg = mtm_cfg
        self.encoder = Encoder(enc_cfg)
        self.head = nn.Linear(enc_cfg.d_model, codebook_size)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self.content_head = None
        if mtm_cfg.content_weight > 0:
            self.content_head = nn.Linear(enc_cfg.d_model, enc_cfg.content_dim)
            nn.init.normal_(self.content_head.weight, std=0.02)
            nn.init.zeros_(self.content_head.bias)
        log.info("MTM: encoder %.3fM parameters, head %.3fM", n_params(self.encoder) / 1e6,
                 n_params(self.head) / 1e6)

    def forward(self, batch: dict[str, torch.Tensor], targets: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, _ = self.encoder(batch, content_mask=mask)
        logits = self.head(h)  # (B, N, K)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
            if self.content_head is not None:
                loss = loss + self.cfg.content_weight * self.content_loss(h, batch, targets != IGNORE)
        return logits, loss

    def content_loss(self, h: torch.Tensor, batch: dict[str, torch.Tensor], scored: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the content head on the ``scored`` (B, N) tokens, against each feature
        standardised by its mean and std over the batch's real tokens (so every feature counts alike)."""
        content = batch["content"].float()
        real = content[~batch["pad_mask"]]
        target = (content - real.mean(0)) / (real.std(0, correction=0) + 1e-6)  # one real token: std 0, not NaN
        pred = self.content_head(h).float()
        return F.mse_loss(pred[scored], target[scored])

    def masked_inputs(self, batch: dict[str, torch.Tensor], codes: torch.Tensor,
                      generator: torch.Generator | None = None
                      ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(batch, targets, content mask) for one training forward: ``mask_ratio`` of each sequence's real
        tokens (or channels, or groups: ``mask_unit``) masked, scored against ``codes`` (B, N), and with
        ``symmetric`` the complement too (2B)."""
        unit = self.cfg.mask_unit
        if unit == "token":
            mask = random_token_mask(batch["pad_mask"], self.cfg.mask_ratio, generator)
        else:
            ids = batch["channel" if unit == "channel" else "group_order"]
            mask = random_unit_mask(ids, batch["pad_mask"], self.cfg.mask_ratio, generator)
        if self.cfg.symmetric:
            big, cmask, targets = symmetric_batch(batch, codes, mask)
            return big, targets, cmask
        return batch, torch.where(mask, codes, torch.full_like(codes, IGNORE)), mask

    @torch.no_grad()
    def step_metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Accuracy of the predicted prototype ids over the scored (masked) tokens of a training forward."""
        scored = targets != IGNORE
        return {"masked_accuracy_train": float((logits.argmax(-1)[scored] == targets[scored]).float().mean())}

    def configure_optimizers(self, weight_decay: float, lr: float, betas: tuple[float, float],
                             device_type: str = "cpu") -> torch.optim.AdamW:
        return configure_optimizers(self, weight_decay, lr, betas, device_type)
