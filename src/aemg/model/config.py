"""Model and pre-training configs as dataclasses, with named sizes ``tiny``, ``small`` and ``base``.

Config is data (torchtune style): every number the model or the loop uses lives in one of these
dataclasses, each field with a short comment. :func:`get_config` returns a named config,
:meth:`PretrainConfig.save` / :meth:`PretrainConfig.load` round-trip it through JSON, and
``overrides`` (``"train.lr=1e-3"``) change single fields from the command line.

The content dimension ``content_dim`` is a property of the token set, not of the size: like
nanoGPT's ``vocab_size`` it is filled in from the data when the model is built.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aemg.atomic import atomic_write_text


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


@dataclass
class MTMConfig:
    """Stage 2: masked token modelling."""

    mask_ratio: float = 0.5  # fraction of a sequence's real tokens masked
    symmetric: bool = True  # also score the complement mask in a second pass (LaBraM)


@dataclass
class StageConfig:
    """Optimisation of one stage."""

    max_steps: int = 5000  # optimizer steps (``--max-steps`` caps this)
    lr: float = 1e-3  # peak learning rate
    min_lr: float = 1e-4  # floor of the cosine decay
    warmup_steps: int = 200  # linear warm-up steps
    weight_decay: float = 0.05  # AdamW weight decay on parameters with dim >= 2 (never biases, norms, codebook)
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas
    grad_clip: float = 1.0  # max global gradient norm (0 = off)


@dataclass
class DataConfig:
    """How token sequences are cut and batched."""

    max_tokens: int = 256  # tokens per sequence: a span of whole consecutive groups up to this many (docs/model.md)
    batch_size: int = 32  # sequences per optimizer step and process
    holdout_fraction: float = 0.1  # recordings held out of training for masked accuracy
    rotate_unknown: bool = True  # random rotation + flip of armbands whose rotation is unknown
    num_workers: int = 0  # DataLoader workers (0 = in the main process)


@dataclass
class PretrainConfig:
    """Everything a pre-training run needs; saved as ``config.json`` in the run directory."""

    name: str = "small"  # the named size it was built from
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    mtm: MTMConfig = field(default_factory=MTMConfig)
    data: DataConfig = field(default_factory=DataConfig)
    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: StageConfig = field(default_factory=StageConfig)
    seed: int = 1337  # base seed (each process adds its rank where it needs independent draws)
    log_every: int = 1  # metrics rows every this many steps (the summary needs every step: keep 1)
    ckpt_every: int = 500  # checkpoint every this many steps (and at each stage's end)
    eval_batches: int = 20  # held-out batches for the masked accuracy at the end of stage 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        return _from_dict(cls, d)

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (temporary file, fsync, rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> PretrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def override(self, items: list[str] | None) -> PretrainConfig:
        """Return a copy with ``section.field=value`` items applied (values parsed as JSON, else str)."""
        d = self.to_dict()
        for item in items or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. stage1.lr=3e-4")
            node = d
            parts = key.strip().split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ValueError(f"override {item!r}: no config section {p!r}")
                node = node[p]
            if parts[-1] not in node:
                raise ValueError(f"override {item!r}: no config field {parts[-1]!r} (fields: {', '.join(node)})")
            try:
                node[parts[-1]] = json.loads(raw)
            except json.JSONDecodeError:
                node[parts[-1]] = raw
        return PretrainConfig.from_dict(d)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config fields {sorted(unknown)}")
    for name, value in d.items():
        ftype = names[name].type
        sub = _DATACLASSES.get(ftype if isinstance(ftype, str) else getattr(ftype, "__name__", ""))
        if sub is not None and isinstance(value, dict):
            value = _from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_DATACLASSES = {c.__name__: c for c in (EncoderConfig, QuantizerConfig, TokenizerConfig, MTMConfig, StageConfig,
                                        DataConfig, PretrainConfig)}


def tiny() -> PretrainConfig:
    """For tests: a few thousand parameters, steps in milliseconds."""
    enc = EncoderConfig(d_model=32, n_layer=2, n_head=2, mlp_ratio=2, n_freq=4, n_z_freq=2, n_angle_harmonics=2,
                        max_groups=64, max_rank=32)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=32, n_layer=1, n_head=2, mlp_ratio=2, n_freq=4, n_z_freq=2,
                                                n_angle_harmonics=2, max_groups=64, max_rank=32),
                          quantizer=QuantizerConfig(dim=16, codebook_size=32, decay=0.9, kmeans_iters=5,
                                                    threshold_ema_dead_code=1.0),
                          decoder_hidden=32)
    stage = StageConfig(max_steps=60, lr=3e-3, min_lr=3e-4, warmup_steps=5, weight_decay=0.01)
    return PretrainConfig(name="tiny", encoder=enc, tokenizer=tok, data=DataConfig(max_tokens=48, batch_size=8),
                          stage1=stage, stage2=dataclasses.replace(stage), ckpt_every=20, eval_batches=4)


def small() -> PretrainConfig:
    """For a laptop CPU: ~0.9M parameters in the encoder."""
    enc = EncoderConfig(d_model=128, n_layer=4, n_head=4)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=64, n_layer=2, n_head=2),
                          quantizer=QuantizerConfig(dim=32, codebook_size=512), decoder_hidden=128)
    return PretrainConfig(name="small", encoder=enc, tokenizer=tok, data=DataConfig(max_tokens=256, batch_size=16),
                          stage1=StageConfig(max_steps=3000, lr=1e-3, warmup_steps=200),
                          stage2=StageConfig(max_steps=6000, lr=5e-4, min_lr=5e-5, warmup_steps=300))


def base() -> PretrainConfig:
    """For GPUs: embed 256, depth 6, 8 heads (the paper's base), ~6M parameters with the MTM head."""
    enc = EncoderConfig(d_model=256, n_layer=6, n_head=8, dropout=0.1)
    tok = TokenizerConfig(encoder=EncoderConfig(d_model=128, n_layer=3, n_head=4),
                          quantizer=QuantizerConfig(dim=32, codebook_size=2048), decoder_hidden=256)
    return PretrainConfig(name="base", encoder=enc, tokenizer=tok, data=DataConfig(max_tokens=256, batch_size=64),
                          stage1=StageConfig(max_steps=20000, lr=5e-4, warmup_steps=1000),
                          stage2=StageConfig(max_steps=50000, lr=3e-4, min_lr=3e-5, warmup_steps=2000))


CONFIGS = {"tiny": tiny, "small": small, "base": base}


def get_config(name: str) -> PretrainConfig:
    """A named config (``tiny``, ``small``, ``base``) or a path to a saved ``config.json``."""
    if name in CONFIGS:
        return CONFIGS[name]()
    if Path(name).is_file():
        return PretrainConfig.load(name)
    raise ValueError(f"unknown config {name!r}: use one of {', '.join(CONFIGS)} or a path to a config.json")
