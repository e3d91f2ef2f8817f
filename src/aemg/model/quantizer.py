"""The prototype codebook: one small wrapper around ``vector_quantize_pytorch.VectorQuantize``.

Cosine-similarity codebook (inputs and codes l2-normalised), EMA updates, k-means initialisation on
the first training batch, dead-code revival (``threshold_ema_dead_code``) and the plain
straight-through estimator (no rotation trick). The wrapper never patches the library; it only
selects the real tokens, so padding neither trains the codebook nor counts as usage.

``forward(z, pad_mask) -> (quantized, indices, commit_loss)`` with ``z`` (B, N, dim): ``quantized``
(B, N, dim) equals ``codebook[indices]`` in eval mode (straight-through in training), ``indices``
(B, N) int64 with ``IGNORE`` at padding, ``commit_loss`` a scalar.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from aemg.model.config import QuantizerConfig
from aemg.tokens.batch import IGNORE  # the one definition (docs/dev/contracts.md)


class Quantizer(nn.Module):
    def __init__(self, cfg: QuantizerConfig, sync_codebook: bool = False):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.cfg = cfg
        # sync_codebook: all-reduce the EMA statistics and k-means across DDP ranks (the library decides this
        # once, at construction, so the training engine passes it explicitly after the process group is up)
        self.vq = VectorQuantize(dim=cfg.dim, codebook_size=cfg.codebook_size, decay=cfg.decay,
                                 commitment_weight=cfg.commitment_weight, kmeans_init=cfg.kmeans_init,
                                 kmeans_iters=cfg.kmeans_iters, use_cosine_sim=cfg.use_cosine_sim,
                                 threshold_ema_dead_code=cfg.threshold_ema_dead_code, rotation_trick=False,
                                 sync_codebook=sync_codebook, sync_kmeans=True)

    @property
    def codebook(self) -> torch.Tensor:
        """(codebook_size, dim) code vectors (unit length for a cosine codebook)."""
        return self.vq.codebook

    def forward(self, z: torch.Tensor, pad_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, N, D = z.shape
        if pad_mask is None:
            pad_mask = torch.zeros(B, N, dtype=torch.bool, device=z.device)
        real = ~pad_mask
        zr = z[real].unsqueeze(0)  # (1, M, dim): only real tokens reach the codebook
        q, idx, commit = self.vq(zr)
        quantized = z.new_zeros(B, N, D)
        quantized[real] = q[0].to(z.dtype)
        indices = torch.full((B, N), IGNORE, dtype=torch.long, device=z.device)
        indices[real] = idx[0]
        return quantized, indices, commit.reshape(())

    @torch.no_grad()
    def codes(self, z: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Nearest-code ids (B, N), ``IGNORE`` at padding; never updates the codebook."""
        was = self.training
        self.eval()
        try:
            return self.forward(z, pad_mask)[1]
        finally:
            self.train(was)
