"""The spatio-temporal Transformer encoder (nanoGPT-shaped: one config, explicit init).

Pre-norm blocks; attention through ``F.scaled_dot_product_attention`` with a key mask, so a padded
token never influences a real one; masked mean pooling over real tokens. No embedding of a token's
index in the sequence or of its channel index: tokens are located by their coordinates and times
(except in the nospatial ablation, ``cfg.position == "index"``, where the channel index replaces the
coordinates).

Shapes: B sequences, N tokens, D = ``cfg.d_model``, H heads.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from aemg.model.config import EncoderConfig
from aemg.model.embeddings import TokenEmbedding

log = logging.getLogger(__name__)


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model {cfg.d_model} is not a multiple of n_head {cfg.n_head}")
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        q, k, v = (t.view(B, N, self.n_head, D // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, N, hs)
        # attn_mask (B, 1, 1, N) bool, True = may attend (a real key)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, N, D)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


def init_weights(module: nn.Module, n_layer: int) -> None:
    """nanoGPT init: N(0, 0.02) for Linear and Embedding, zero biases, 0.02/sqrt(2 n_layer) on c_proj."""
    module.apply(_init_linear)
    for name, p in module.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)


def padding_attn_mask(pad_mask: torch.Tensor) -> torch.Tensor:
    """(B, N) True = padding -> (B, 1, 1, N) True = attend. A sequence that is all padding (a trial in
    which no event was found) attends everywhere instead of nowhere, which would give NaN; its tokens
    are padding and its pooled encoding is zero either way."""
    empty = pad_mask.all(dim=1, keepdim=True)
    return (~pad_mask | empty)[:, None, None, :]


def masked_mean(x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """(B, N, D), (B, N) True = padding -> (B, D) mean over real tokens."""
    keep = (~pad_mask).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class Encoder(nn.Module):
    """Token embedding + pre-norm Transformer + final LayerNorm.

    ``forward(batch, content_mask=None) -> (h, pooled)``: per-token states ``h`` (B, N, D) and the
    masked mean ``pooled`` (B, D) over real tokens.
    """

    def __init__(self, cfg: EncoderConfig, mask_token: bool = True):
        super().__init__()
        self.cfg = cfg
        self.embed = TokenEmbedding(cfg, mask_token=mask_token)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        init_weights(self, cfg.n_layer)

    def forward(self, batch: dict[str, torch.Tensor], content_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        pad = batch["pad_mask"]
        x = self.embed(batch, content_mask)
        attn_mask = padding_attn_mask(pad)
        for block in self.blocks:
            x = block(x, attn_mask)
        h = self.ln_f(x)
        return h, masked_mean(h, pad)


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def n_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def load_encoder(path: str | Path) -> Encoder:
    """The pre-trained encoder of a run: ``RUN_DIR`` or ``RUN_DIR/encoder.pt`` ({"config", "state"}),
    rebuilt from its saved config (for evaluation to fine-tune or probe; returned in eval mode)."""
    path = Path(path)
    if path.is_dir():
        path = path / "encoder.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    enc = Encoder(EncoderConfig(**ck["config"]))
    enc.load_state_dict(ck["state"])
    return enc.eval()
