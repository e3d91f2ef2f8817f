"""Token embeddings: content, electrode position, time, group order and rank.

Every embedding is computed per token from that token's own fields of the batch contract
(docs/dev/contracts.md), and none uses the token's index in the sequence or (by default) its channel
index. The encoder therefore treats a sequence as a set of tokens located in space (electrode
coordinates) and time (ms): permuting a recording's channels together with their coordinates changes
nothing. The nospatial ablation (``EncoderConfig.position = "index"``) replaces the coordinates by a
learned embedding of the channel index (:class:`ChannelEmbedding`), which ignores coordinates.

Shapes: B sequences, N tokens, F content dim, D = ``cfg.d_model``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from aemg.model.config import EncoderConfig


def fourier_features(x: torch.Tensor, periods: torch.Tensor) -> torch.Tensor:
    """(..., ) values -> (..., 2 * len(periods)) [sin(2 pi x / p), cos(2 pi x / p)]."""
    ang = x.unsqueeze(-1) * (2 * math.pi / periods)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class SpatialEmbedding(nn.Module):
    """Electrode position from continuous forearm coordinates (cos a, sin a, z, off_forearm).

    The angle enters through its harmonics cos(k a), sin(k a) (k = 1..K, computed from the
    (cos, sin) pair, never from a raw angle), z through Fourier features; a layout never seen in
    training still lands between known positions. Electrodes off the forearm (or of unknown place)
    get a learned vector of their own instead.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.k = cfg.n_angle_harmonics
        self.register_buffer("z_freq", torch.arange(1, cfg.n_z_freq + 1, dtype=torch.float32) * math.pi,
                             persistent=False)
        n_in = 2 * self.k + 1 + 2 * cfg.n_z_freq
        self.proj = nn.Linear(n_in, cfg.d_model, bias=cfg.bias)
        self.off = nn.Parameter(torch.zeros(cfg.d_model))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:  # (B, N, 4) -> (B, N, D)
        c, s, z, off = coords.unbind(-1)
        ang = torch.atan2(s, c).unsqueeze(-1) * torch.arange(1, self.k + 1, device=coords.device)
        zf = z.unsqueeze(-1) * self.z_freq
        feats = torch.cat([torch.cos(ang), torch.sin(ang), z.unsqueeze(-1), torch.cos(zf), torch.sin(zf)], dim=-1)
        on = (1.0 - off).unsqueeze(-1)
        return on * self.proj(feats) + off.unsqueeze(-1) * self.off


class ChannelEmbedding(nn.Module):
    """The nospatial ablation: a learned vector per channel index (``max_channels`` rows, larger indices
    clamped to the last), used instead of :class:`SpatialEmbedding`; coordinates are never read."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.max_channels = cfg.max_channels
        self.table = nn.Embedding(cfg.max_channels, cfg.d_model)

    def forward(self, channel: torch.Tensor) -> torch.Tensor:  # (B, N) int64 -> (B, N, D)
        return self.table(channel.clamp(0, self.max_channels - 1))


class TemporalEmbedding(nn.Module):
    """Onset within the group, group start within the sequence and duration, each in ms.

    Fourier features at log-spaced periods from ``min_period_ms`` to ``max_period_ms`` (the way
    Transformers embed positions, but of continuous time), one linear projection for all three.
    Duration is embedded on a log scale as well (bursts last from tens of ms to seconds).
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        periods = torch.logspace(math.log10(cfg.min_period_ms), math.log10(cfg.max_period_ms), cfg.n_freq)
        self.register_buffer("periods", periods, persistent=False)
        self.proj = nn.Linear(3 * 2 * cfg.n_freq + 1, cfg.d_model, bias=cfg.bias)

    def forward(self, onset_ms: torch.Tensor, t_ms: torch.Tensor, duration_ms: torch.Tensor) -> torch.Tensor:
        logd = torch.log1p(duration_ms.clamp(min=0) / 100.0).unsqueeze(-1)
        feats = torch.cat([fourier_features(onset_ms, self.periods), fourier_features(t_ms, self.periods),
                           fourier_features(duration_ms, self.periods), logd], dim=-1)
        return self.proj(feats)


class TokenEmbedding(nn.Module):
    """Sum of content, spatial (or channel-index), temporal, group-order and rank embeddings, then dropout.

    ``forward(batch, content_mask=None)``: where ``content_mask`` (B, N) is True the content is
    replaced by a learned ``[MASK]`` vector (masked token modelling); position and time stay.
    """

    def __init__(self, cfg: EncoderConfig, mask_token: bool = True):
        super().__init__()
        if cfg.content_dim <= 0:
            raise ValueError("EncoderConfig.content_dim is 0: set it from the token set (TokenSet content dim)")
        self.cfg = cfg
        # content_norm "none" keeps the state-dict keys (content.1 is the projection) with an Identity
        norm = nn.LayerNorm(cfg.content_dim, bias=cfg.bias) if cfg.content_norm == "layer" else nn.Identity()
        self.content = nn.Sequential(norm, nn.Linear(cfg.content_dim, cfg.d_model, bias=cfg.bias))
        # only a model that masks has a [MASK] vector (DDP requires every parameter to get a gradient)
        self.mask_token = nn.Parameter(torch.zeros(cfg.d_model)) if mask_token else None
        # position "coords" keeps the module (and state-dict keys) of every run made before the option existed
        if cfg.position == "index":
            self.channel = ChannelEmbedding(cfg)
        else:
            self.spatial = SpatialEmbedding(cfg)
        self.temporal = TemporalEmbedding(cfg)
        self.group = nn.Embedding(cfg.max_groups, cfg.d_model)
        self.rank = nn.Embedding(cfg.max_rank, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor], content_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.content(batch["content"])  # (B, N, D)
        if content_mask is not None:
            if self.mask_token is None:
                raise ValueError("this encoder was built with mask_token=False and cannot mask content")
            x = torch.where(content_mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        if self.cfg.position == "index":
            x = x + self.channel(batch["channel"])
        else:
            x = x + self.spatial(batch["coords"])
        x = x + self.temporal(batch["onset_ms"], batch["t_ms"], batch["duration_ms"])
        x = x + self.group(batch["group_order"].clamp(0, self.cfg.max_groups - 1))
        x = x + self.rank(batch["rank"].clamp(0, self.cfg.max_rank - 1))
        return self.drop(x)
