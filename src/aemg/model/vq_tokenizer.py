"""Stage 1: the VQ tokenizer network that learns the prototype library.

A small encoder of its own reads the token sequence (content and metadata), projects each token to
the code space, and the cosine codebook snaps it to its nearest prototype; a per-token MLP decoder
reconstructs the token's (standardised) content from the code vector alone. Gradients reach the
encoder through the straight-through estimator; the codebook follows by EMA. After stage 1 the
network is frozen and only provides the prototype ids that stage 2 predicts.

``forward(batch, targets=None) -> (out, loss)``: ``out`` holds ``indices`` (B, N) (``IGNORE`` at
padding), ``recon`` (B, N, F) in content units, ``recon_loss`` and ``commit_loss``. The loss (MSE of
the standardised content over real tokens + commitment) is returned when ``targets`` (B, N, F) is
given: in pre-training, the batch's own ``content``. ``step_metrics(out, targets)`` turns one
training forward into the figures of a metrics row.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from aemg.model.config import TokenizerConfig
from aemg.model.encoder import Encoder, n_params
from aemg.model.optim import configure_optimizers
from aemg.model.quantizer import Quantizer
from aemg.tokens.batch import IGNORE

log = logging.getLogger(__name__)


class VQTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig, sync_codebook: bool = False):
        super().__init__()
        self.cfg = cfg
        F_ = cfg.encoder.content_dim
        self.encoder = Encoder(cfg.encoder, mask_token=False)
        self.proj_in = nn.Linear(cfg.encoder.d_model, cfg.quantizer.dim)
        self.quantizer = Quantizer(cfg.quantizer, sync_codebook=sync_codebook)
        self.decoder = nn.Sequential(nn.Linear(cfg.quantizer.dim, cfg.decoder_hidden), nn.GELU(),
                                     nn.Linear(cfg.decoder_hidden, cfg.decoder_hidden), nn.GELU(),
                                     nn.Linear(cfg.decoder_hidden, F_))
        # per-feature standardisation of the content (fitted on training data before stage 1, saved)
        self.register_buffer("content_mean", torch.zeros(F_))
        self.register_buffer("content_std", torch.ones(F_))
        log.info("VQ tokenizer: %.3fM parameters, codebook %d x %d", n_params(self) / 1e6,
                 cfg.quantizer.codebook_size, cfg.quantizer.dim)

    @torch.no_grad()
    def fit_standardization(self, content: torch.Tensor) -> None:
        """Set the content mean and std from (M, F) real training tokens."""
        self.content_mean.copy_(content.mean(0))
        self.content_std.copy_(content.std(0).clamp(min=1e-6))

    def standardize(self, content: torch.Tensor) -> torch.Tensor:
        return (content - self.content_mean) / self.content_std

    def decode(self, code_vectors: torch.Tensor) -> torch.Tensor:
        """(..., dim) code vectors -> (..., F) content in data units (the prototype a code stands for)."""
        return self.decoder(code_vectors) * self.content_std + self.content_mean

    def forward(self, batch: dict[str, torch.Tensor], targets: torch.Tensor | None = None
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        pad = batch["pad_mask"]
        h, _ = self.encoder(batch)
        z = self.proj_in(h)  # (B, N, dim)
        q, indices, commit = self.quantizer(z, pad)
        rec_std = self.decoder(q)  # (B, N, F) standardised
        out = {"indices": indices, "recon": rec_std * self.content_std + self.content_mean, "commit_loss": commit}
        loss = None
        if targets is not None:
            real = ~pad
            recon_loss = F.mse_loss(rec_std[real], self.standardize(targets)[real])
            out["recon_loss"] = recon_loss
            loss = recon_loss + commit
        return out, loss

    @torch.no_grad()
    def step_metrics(self, out: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, float]:
        """Reconstruction and commitment losses of a training forward, and the perplexity (exp of the
        entropy) and fraction of codes used by this batch's real tokens."""
        ids = out["indices"][out["indices"] != IGNORE]
        counts = torch.bincount(ids.cpu(), minlength=self.cfg.quantizer.codebook_size).float()
        p = counts[counts > 0] / counts.sum()
        return {"recon_loss": out["recon_loss"].item(), "commit_loss": out["commit_loss"].item(),
                "batch_perplexity": float(torch.exp(-(p * p.log()).sum())),
                "batch_usage": float((counts > 0).float().mean())}

    @torch.no_grad()
    def tokenize(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Prototype ids (B, N) of every real token, ``IGNORE`` at padding (eval mode, no codebook update)."""
        was = self.training
        self.eval()
        try:
            return self.forward(batch)[0]["indices"]
        finally:
            self.train(was)

    def configure_optimizers(self, weight_decay: float, lr: float, betas: tuple[float, float],
                             device_type: str = "cpu") -> torch.optim.AdamW:
        return configure_optimizers(self, weight_decay, lr, betas, device_type)
