"""Pre-training configs: the model configs of :mod:`aemg.model.config` plus how each stage trains.

:func:`get_config` returns a named recipe (``tiny``, ``small``, ``base``: a model size with its
optimisation and data settings) or a saved ``config.json``; :meth:`PretrainConfig.save` /
:meth:`PretrainConfig.load` round-trip it through JSON, ``override`` (``"stage1.lr=1e-3"``)
changes single fields from the command line, and :meth:`PretrainConfig.cap_steps` shortens every
stage with its schedule (``--max-steps``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aemg.atomic import atomic_write_text
from aemg.errors import DataFormatError, OptionError
from aemg.model.config import (
    CONTENT_AMPS,
    CONTENT_NORMS,
    POSITIONS,
    EncoderConfig,
    MTMConfig,
    TokenizerConfig,
    config_from_dict,
    model_size,
)


@dataclass
class StageConfig:
    """Optimisation of one stage."""

    max_steps: int = 5000  # optimizer steps (``--max-steps`` caps this, scaling warmup_steps with it)
    lr: float = 1e-3  # peak learning rate
    min_lr: float = 1e-4  # floor of the cosine decay
    warmup_steps: int = 200  # linear warm-up steps
    weight_decay: float = 0.05  # AdamW weight decay on parameters with dim >= 2 (never biases, norms, codebook)
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas
    grad_clip: float = 1.0  # max global gradient norm (0 = off)

    def capped(self, steps: int) -> StageConfig:
        """At most ``steps`` steps; a cap shortens the warm-up by the same factor (at least one step where
        there was one), so a short run still climbs to ``lr`` and decays to ``min_lr``."""
        if steps >= self.max_steps:
            return dataclasses.replace(self)
        warmup = round(self.warmup_steps * steps / self.max_steps)
        if self.warmup_steps > 0:
            warmup = max(warmup, 1)
        return dataclasses.replace(self, max_steps=steps, warmup_steps=min(warmup, steps - 1))


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
        return config_from_dict(cls, d)

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (temporary file, fsync, rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> PretrainConfig:
        """Read a saved ``config.json``; a file that is not one is a :class:`DataFormatError` naming it."""
        try:
            d = json.loads(Path(path).read_text())
            if not isinstance(d, dict):
                raise ValueError(f"a JSON {type(d).__name__}")
            return cls.from_dict(d)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise DataFormatError(path, "a pre-training config.json (as aemg pretrain writes in every run directory)",
                                  f"found {exc}") from None

    def stage(self, n: int) -> StageConfig:
        """The optimisation settings of stage ``n`` (1 or 2)."""
        return {1: self.stage1, 2: self.stage2}[n]

    def override(self, items: list[str] | None) -> PretrainConfig:
        """Return a copy with ``section.field=value`` items applied, each value parsed as its field's type
        (a number, a whole number, true/false, a list of numbers); a bad item is an :class:`OptionError`
        naming it, e.g. ``--set stage1.lr=abc: expected a number; found 'abc'``."""
        d = self.to_dict()
        for item in items or []:
            _apply_override(d, item)
        return PretrainConfig.from_dict(d)

    def cap_steps(self, steps: int) -> PretrainConfig:
        """Every stage at most ``steps`` optimizer steps, its warm-up scaled with it (:meth:`StageConfig.capped`)."""
        if steps < 1:
            raise OptionError(f"--max-steps {steps}", "a number of optimizer steps >= 1", f"found {steps}")
        return dataclasses.replace(self, stage1=self.stage1.capped(steps), stage2=self.stage2.capped(steps))

    def with_content_dim(self, F: int) -> PretrainConfig:
        """A copy whose encoder and tokenizer network read ``F``-long content vectors (from the token set)."""
        return dataclasses.replace(self, encoder=dataclasses.replace(self.encoder, content_dim=F),
                                   tokenizer=dataclasses.replace(self.tokenizer, encoder=dataclasses.replace(
                                       self.tokenizer.encoder, content_dim=F)))


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """``section.field: run A, given B`` for every field where two config dicts differ."""
    out = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += config_diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.append(f"{prefix}{k}: run {a.get(k)!r}, given {b.get(k)!r}")
    return out



# ---------------------------------------------------------------------- --set KEY=VALUE
CHOICES: dict[tuple[type, str], tuple[str, ...]] = {(EncoderConfig, "position"): POSITIONS,
                                                   (EncoderConfig, "content_norm"): CONTENT_NORMS,
                                                   (EncoderConfig, "content_amp"): CONTENT_AMPS}
"""Text fields that take one of a few values: (config class, field) -> the values ``--set`` accepts."""


def _apply_override(d: dict[str, Any], item: str) -> None:
    """Set one ``section.field=value`` in the config dict ``d``, checked against the dataclass fields and types."""
    option = f"--set {item}"
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise OptionError(option, "KEY=VALUE, e.g. stage1.lr=3e-4",
                          "found no '='" if not sep else f"found the key {key.strip()!r}")
    node: dict[str, Any] = d
    cls: type = PretrainConfig
    for i, name in enumerate(parts):
        fields = [f.name for f in dataclasses.fields(cls)]
        where = ".".join(parts[:i])
        if name not in fields:
            raise OptionError(option, f"a field of {where or 'the config'} ({', '.join(fields)})",
                              f"found no config field {name!r}")
        ftype = typing.get_type_hints(cls)[name]
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(ftype):
            if last:
                first = dataclasses.fields(ftype)[0].name
                raise OptionError(option, f"one field of the section {key.strip()}, e.g. {key.strip()}.{first}=...",
                                  "found the whole section")
            node, cls = node[name], ftype
        elif not last:
            raise OptionError(option, f"a field of {where or 'the config'} ({', '.join(fields)})",
                              f"found {'.'.join(parts[:i + 1])} is a value, not a section")
        else:
            value = parse_value(option, raw.strip(), ftype)
            choices = CHOICES.get((cls, name))
            if choices is not None and value not in choices:
                raise OptionError(option, f"one of {', '.join(choices)}", f"found {value!r}")
            node[name] = value


def parse_value(option: str, raw: str, ftype: Any) -> Any:
    """``raw`` as a value of type ``ftype`` (bool, int, float, str, tuple of those), or an :class:`OptionError`."""
    found = f"found {raw!r}"
    if ftype is bool:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise OptionError(option, "true or false", found)
    if ftype is int:
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            x = float(raw)
        except ValueError:
            x = math.nan
        if math.isfinite(x) and x.is_integer():
            return int(x)
        raise OptionError(option, "a whole number", found)
    if ftype is float:
        try:
            x = float(raw)
        except ValueError:
            raise OptionError(option, "a number", found) from None
        if not math.isfinite(x):
            raise OptionError(option, "a finite number", found)
        return x
    if typing.get_origin(ftype) is tuple:
        args = typing.get_args(ftype)
        items = [v.strip() for v in raw.strip("[]()").split(",")] if raw.strip("[]() ") else []
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(items)
        if len(items) != len(args):
            kind = "numbers" if all(a in (int, float) for a in args) else "values"
            raise OptionError(option, f"{len(args)} {kind} separated by commas, e.g. 0.9,0.98", found)
        return [parse_value(option, v, a) for v, a in zip(items, args)]
    if ftype is str:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


# ---------------------------------------------------------------------- named recipes
def tiny() -> PretrainConfig:
    """For tests: a few thousand parameters, steps in milliseconds."""
    enc, tok = model_size("tiny")
    stage = StageConfig(max_steps=60, lr=3e-3, min_lr=3e-4, warmup_steps=5, weight_decay=0.01)
    return PretrainConfig(name="tiny", encoder=enc, tokenizer=tok, data=DataConfig(max_tokens=48, batch_size=8),
                          stage1=stage, stage2=dataclasses.replace(stage), ckpt_every=20, eval_batches=4)


def small() -> PretrainConfig:
    """For a laptop CPU: ~0.9M parameters in the encoder."""
    enc, tok = model_size("small")
    return PretrainConfig(name="small", encoder=enc, tokenizer=tok, data=DataConfig(max_tokens=256, batch_size=16),
                          stage1=StageConfig(max_steps=3000, lr=1e-3, warmup_steps=200),
                          stage2=StageConfig(max_steps=6000, lr=5e-4, min_lr=5e-5, warmup_steps=300))


def base() -> PretrainConfig:
    """For GPUs: embed 256, depth 6, 8 heads (the paper's base), ~6M parameters with the MTM head."""
    enc, tok = model_size("base")
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
    raise OptionError(f"--config {name}", f"one of {', '.join(CONFIGS)} or a path to a config.json",
                      f"found an unknown config {name!r} (no such name or file)")
