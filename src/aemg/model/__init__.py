"""The spatio-temporal Transformer and its two pre-training models (torch is imported here).

Builders, not subclasses (torchtune style): :func:`encoder` builds an :class:`Encoder` from any
settings, :func:`aemg_tiny` / :func:`aemg_small` / :func:`aemg_base` from the named configs.
"""

from __future__ import annotations

import dataclasses

from aemg.model.augment import rotate_flip
from aemg.model.config import (
    CONFIGS,
    DataConfig,
    EncoderConfig,
    MTMConfig,
    PretrainConfig,
    QuantizerConfig,
    StageConfig,
    TokenizerConfig,
    get_config,
)
from aemg.model.encoder import Encoder, load_encoder, masked_mean, n_params
from aemg.model.mtm import MaskedTokenModel, random_token_mask, symmetric_batch
from aemg.model.quantizer import Quantizer
from aemg.model.vq_tokenizer import VQTokenizer
from aemg.tokens.batch import IGNORE


def encoder(content_dim: int, **settings) -> Encoder:
    """Component builder: an :class:`Encoder` with ``content_dim`` and any :class:`EncoderConfig` fields."""
    return Encoder(EncoderConfig(content_dim=content_dim, **settings))


def _named(name: str, content_dim: int) -> Encoder:
    return Encoder(dataclasses.replace(get_config(name).encoder, content_dim=content_dim))


def aemg_tiny(content_dim: int) -> Encoder:
    return _named("tiny", content_dim)


def aemg_small(content_dim: int) -> Encoder:
    return _named("small", content_dim)


def aemg_base(content_dim: int) -> Encoder:
    return _named("base", content_dim)


__all__ = [
    "CONFIGS", "IGNORE", "DataConfig", "Encoder", "EncoderConfig", "MTMConfig", "MaskedTokenModel", "PretrainConfig",
    "Quantizer", "QuantizerConfig", "StageConfig", "TokenizerConfig", "VQTokenizer", "aemg_base", "aemg_small",
    "aemg_tiny", "encoder", "get_config", "load_encoder", "masked_mean", "n_params", "random_token_mask", "rotate_flip",
    "symmetric_batch",
]
