"""The spatio-temporal Transformer and its two pre-training models (torch is imported here).

Builders, not subclasses (torchtune style): :func:`encoder` builds an :class:`Encoder` from any
settings, :func:`aemg_tiny` / :func:`aemg_small` / :func:`aemg_base` from the named sizes. Model
configs only: how the models are trained is :mod:`aemg.train.config`.
"""

from __future__ import annotations

import dataclasses

from aemg.model.augment import rotate_flip
from aemg.model.config import EncoderConfig, MTMConfig, QuantizerConfig, TokenizerConfig, model_size
from aemg.model.encoder import Encoder, load_encoder, masked_mean, n_params
from aemg.model.mtm import MaskedTokenModel, random_token_mask, random_unit_mask, symmetric_batch
from aemg.model.quantizer import Quantizer
from aemg.model.vq_tokenizer import VQTokenizer
from aemg.tokens.batch import IGNORE


def encoder(content_dim: int, **settings) -> Encoder:
    """Component builder: an :class:`Encoder` with ``content_dim`` and any :class:`EncoderConfig` fields."""
    return Encoder(EncoderConfig(content_dim=content_dim, **settings))


def _named(name: str, content_dim: int) -> Encoder:
    return Encoder(dataclasses.replace(model_size(name)[0], content_dim=content_dim))


def aemg_tiny(content_dim: int) -> Encoder:
    return _named("tiny", content_dim)


def aemg_small(content_dim: int) -> Encoder:
    return _named("small", content_dim)


def aemg_base(content_dim: int) -> Encoder:
    return _named("base", content_dim)


__all__ = [
    "IGNORE", "Encoder", "EncoderConfig", "MTMConfig", "MaskedTokenModel", "Quantizer", "QuantizerConfig",
    "TokenizerConfig", "VQTokenizer", "aemg_base", "aemg_small", "aemg_tiny", "encoder", "load_encoder", "masked_mean",
    "model_size", "n_params", "random_token_mask", "random_unit_mask", "rotate_flip", "symmetric_batch",
]
