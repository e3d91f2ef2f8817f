"""Model configs as dataclasses, with the named sizes ``tiny``, ``small`` and ``base``.

Config is data (torchtune style): every number the networks use lives in one of these dataclasses,
each field with a short comment. Training settings (steps, learning rates, batches) are not here:
they are :mod:`aemg.train.config`, which composes these into a pre-training config.

The content dimension ``content_dim`` is a property of the token set, not of the size: like
nanoGPT's ``vocab_size`` it is filled in from the data when the model is built.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


POSITIONS = ("coords", "index")
"""How the encoder locates a token: by its electrode's forearm coordinates, or by its channel's index only."""

CONTENT_AMPS = ("floor", "scale")
"""What a token's ``log_amp`` is relative to when the encoder reads it: the event detector's noise floor (as
tokenized; every run made before the option), or the session's amplitude scale (``aemg.tokens.amplitude``)."""

CONTENT_NORMS = ("layer", "none")
"""What the content vector goes through before its projection: a LayerNorm across the token's own features
(every run made before the option), or nothing (the features keep their units, e.g. ``log_amp``'s level)."""


@dataclass
class EncoderConfig:
    """The spatio-temporal Transformer (also the tokenizer network's encoder, at a smaller size)."""

    content_dim: int = 0  # F, the token content vector's length (set from the data)
    d_model: int = 128  # embedding width
    n_layer: int = 4  # Transformer blocks
    n_head: int = 4  # attention heads (d_model % n_head == 0)
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0  # dropout on attention weights, residual branches and embeddings
    bias: bool = True  # biases in Linear layers and LayerNorms
    n_freq: int = 16  # Fourier frequencies per time quantity (onset, group start, duration)
    min_period_ms: float = 5.0  # shortest Fourier period in ms (one sample at 200 Hz)
    max_period_ms: float = 20000.0  # longest Fourier period in ms
    n_angle_harmonics: int = 4  # angle harmonics cos(k*a), sin(k*a), k = 1..n
    n_z_freq: int = 4  # Fourier frequencies of the position z along the forearm
    max_groups: int = 256  # group-order embedding table size (larger orders are clamped)
    max_rank: int = 64  # rank embedding table size (larger ranks are clamped)
    position: str = "coords"  # "coords": electrode coordinates; "index": the channel index (the nospatial ablation)
    max_channels: int = 64  # channel-index embedding table size with position "index" (larger indices are clamped)
    content_norm: str = "layer"  # "layer": LayerNorm over a token's features before projecting; "none": project as is
    content_amp: str = "floor"  # log_amp relative to the noise "floor" or the session "scale": set by the data path
    # (pre-training, fine-tuning, live), kept here so that whoever loads the weights feeds the same content

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ValueError(f"EncoderConfig.position must be one of {', '.join(POSITIONS)}; found {self.position!r}")
        if self.content_amp not in CONTENT_AMPS:
            raise ValueError(f"EncoderConfig.content_amp must be one of {', '.join(CONTENT_AMPS)}; "
                             f"found {self.content_amp!r}")
        if self.content_norm not in CONTENT_NORMS:
            raise ValueError(f"EncoderConfig.content_norm must be one of {', '.join(CONTENT_NORMS)}; "
                             f"found {self.content_norm!r}")


@dataclass
class QuantizerConfig:
    """Arguments of ``vector_quantize_pytorch.VectorQuantize``, under the library's own names."""

    dim: int = 32  # code vector width (the tokenizer projects its encoder output to this)
    codebook_size: int = 512  # number of prototypes
    decay: float = 0.99  # EMA decay of the codebook
    commitment_weight: float = 1.0  # weight of ||z - sg(q)||^2
    kmeans_init: bool = True  # initialise codes by k-means on the first batch
    kmeans_iters: int = 10  # k-means iterations at initialisation
    use_cosine_sim: bool = True  # l2-normalised codes and inputs, cosine similarity
    threshold_ema_dead_code: float = 2.0  # codes whose EMA cluster size falls below are revived


@dataclass
class TokenizerConfig:
    """Stage 1: the VQ tokenizer network (its own small encoder, a codebook and a decoder)."""

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(d_model=64, n_layer=2, n_head=2))
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    decoder_hidden: int = 128  # decoder MLP width (code vector -> token content)


MASK_UNITS = ("token", "channel", "group")
"""What stage 2 masks as one: single tokens, or every token of a sequence's chosen channels (predict a muscle from the
others) or chosen groups (predict an event segment from the ones around it)."""


@dataclass
class MTMConfig:
    """Stage 2: masked token modelling."""

    mask_ratio: float = 0.5  # fraction of a sequence's real tokens masked
    symmetric: bool = True  # also score the complement mask in a second pass (LaBraM)
    mask_unit: str = "token"  # what is masked together: "token", or all tokens of a "channel" or of a "group"
    content_weight: float = 0.0  # weight of a masked-content regression beside the id cross-entropy (0: ids only)

    def __post_init__(self) -> None:
        if self.mask_unit not in MASK_UNITS:
            raise ValueError(f"MTMConfig.mask_unit must be one of {', '.join(MASK_UNITS)}; found {self.mask_unit!r}")
        if not self.content_weight >= 0:
            raise ValueError(f"MTMConfig.content_weight must be >= 0; found {self.content_weight!r}")


def config_from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Rebuild a config dataclass from ``dataclasses.asdict`` output (JSON lists become tuples).

    Nested dataclass fields are rebuilt from their dicts; an unknown field is an error (a typo in a
    saved config must not be dropped silently)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config fields {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in d.items():
        ftype = hints[name]
        if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
            value = config_from_dict(ftype, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


# ---------------------------------------------------------------------- named sizes
def _tiny() -> tuple[EncoderConfig, TokenizerConfig]:
    """For tests: a few thousand parameters, steps in milliseconds."""
    enc = EncoderConfig(d_model=32, n_layer=2, n_head=2, mlp_ratio=2, n_freq=4, n_z_freq=2, n_angle_harmonics=2,
                        max_groups=64, max_rank=32)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=32, n_layer=1, n_head=2, mlp_ratio=2, n_freq=4, n_z_freq=2,
                                                n_angle_harmonics=2, max_groups=64, max_rank=32),
                          quantizer=QuantizerConfig(dim=16, codebook_size=32, decay=0.9, kmeans_iters=5,
                                                    threshold_ema_dead_code=1.0),
                          decoder_hidden=32)
    return enc, tok


def _small() -> tuple[EncoderConfig, TokenizerConfig]:
    """For a laptop CPU: ~0.9M parameters in the encoder."""
    enc = EncoderConfig(d_model=128, n_layer=4, n_head=4)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=64, n_layer=2, n_head=2),
                          quantizer=QuantizerConfig(dim=32, codebook_size=512), decoder_hidden=128)
    return enc, tok


def _base() -> tuple[EncoderConfig, TokenizerConfig]:
    """For GPUs: embed 256, depth 6, 8 heads (the paper's base), ~6M parameters with the MTM head."""
    enc = EncoderConfig(d_model=256, n_layer=6, n_head=8, dropout=0.1)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=128, n_layer=3, n_head=4),
                          quantizer=QuantizerConfig(dim=32, codebook_size=2048), decoder_hidden=256)
    return enc, tok


SIZES: dict[str, Callable[[], tuple[EncoderConfig, TokenizerConfig]]] = {"tiny": _tiny, "small": _small, "base": _base}


def model_size(name: str) -> tuple[EncoderConfig, TokenizerConfig]:
    """The encoder and tokenizer-network configs of a named size (``content_dim`` still 0)."""
    if name not in SIZES:
        raise ValueError(f"unknown model size {name!r}: use one of {', '.join(SIZES)}")
    return SIZES[name]()
