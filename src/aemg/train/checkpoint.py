"""The checkpoint and RNG files of a run directory: what they hold, how they are written, how read.

``ckpt.pt`` (rank 0) holds ``state`` (stage, step, epoch, batches consumed), ``config`` (the full
run config), ``tokenizer`` and ``mtm`` (state dicts; ``mtm`` is None in stage 1), ``optimizer``,
``scheduler`` ({kind, step, lr}) and ``world_size``. Every process keeps its Python / numpy /
torch RNG states in ``rng_rank{r}_s{stage}_{step}.pt``, named by the checkpoint they belong to.
``tokenizer.pt`` and ``encoder.pt`` are {"config", "state"} of the frozen tokenizer and the
pre-trained encoder. Every file is written atomically (temporary file, fsync, rename).
Model files are read with ``weights_only=True`` (tensors and plain containers only, no code runs on
load), so a run from elsewhere, e.g. one stored under ``<repo>/pretrained/``, is safe to open.
:func:`resolve_run` turns a run name or path into its directory.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aemg.atomic import atomic_path, estimate_nbytes
from aemg.errors import OptionError
from aemg.model.config import TokenizerConfig, config_from_dict
from aemg.model.vq_tokenizer import VQTokenizer

if TYPE_CHECKING:
    from lightning_fabric import Fabric

CKPT = "ckpt.pt"
TOKENIZER = "tokenizer.pt"
ENCODER = "encoder.pt"


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`aemg.atomic.atomic_path` (free space checked, temporary file, fsync, rename)."""
    with atomic_path(path, needed=estimate_nbytes(obj)) as tmp:
        torch.save(obj, tmp)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) global RNG states."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def rng_path(run_dir: Path, rank: int, stage: int, step: int) -> Path:
    return run_dir / f"rng_rank{rank}_s{stage}_{step}.pt"


def write_checkpoint(fabric: Fabric, run_dir: Path, rank: int, state: dict[str, int],
                     payload: dict[str, Any]) -> None:
    """Checkpoint, atomic as a whole: every process writes its RNG file named by (stage, step), then
    rank 0 replaces ``ckpt.pt`` with ``{"state": state, **payload}``, and only then are older RNG
    files removed. A process killed at any point leaves a ``ckpt.pt`` whose RNG files exist."""
    path = rng_path(run_dir, rank, state["stage"], state["step"])
    atomic_torch_save({"stage": state["stage"], "step": state["step"], "rng": rng_state()}, path)
    fabric.barrier()
    if fabric.is_global_zero:
        atomic_torch_save({"state": state, **payload}, run_dir / CKPT)
    fabric.barrier()
    for old in run_dir.glob(f"rng_rank{rank}_s*.pt"):
        if old != path:
            old.unlink(missing_ok=True)


def read_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The run's ``ckpt.pt`` (tensors, numbers, strings: loaded with ``weights_only=True``)."""
    return torch.load(run_dir / CKPT, map_location="cpu", weights_only=True)


def restore_rng(run_dir: Path, rank: int, stage: int, step: int) -> None:
    """Set this process's global RNGs to what they were at the checkpoint (stage, step)."""
    path = rng_path(run_dir, rank, stage, step)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the RNG state of process {rank} at the checkpoint is missing; "
                                "cannot resume bitwise")
    # numpy and Python RNG states are not tensors, so weights_only refuses them; these files are the run's
    # own, written on this machine and never distributed (pretrained/ holds none)
    set_rng_state(torch.load(path, map_location="cpu", weights_only=False)["rng"])


def save_module(path: Path, config: Any, module: torch.nn.Module) -> None:
    """``{"config": asdict(config), "state": state_dict}``: a model rebuilt from the file alone."""
    atomic_torch_save({"config": dataclasses.asdict(config), "state": module.state_dict()}, path)


def load_tokenizer(run_dir: str | Path) -> VQTokenizer:
    """The frozen stage-1 tokenizer of a run (``tokenizer.pt``, else the latest checkpoint's), in eval mode."""
    run_dir = Path(run_dir)
    if (run_dir / TOKENIZER).exists():
        ck = torch.load(run_dir / TOKENIZER, map_location="cpu", weights_only=True)
        cfg, state = ck["config"], ck["state"]
    elif (run_dir / CKPT).exists():
        ck = read_checkpoint(run_dir)
        cfg, state = ck["config"]["tokenizer"], ck["tokenizer"]
    else:
        raise FileNotFoundError(f"{run_dir}: no tokenizer.pt or ckpt.pt (not an aemg pretrain run directory?)")
    tok = VQTokenizer(config_from_dict(TokenizerConfig, cfg))
    tok.load_state_dict(state)
    return tok.eval()


def pretrained_dir() -> Path:
    """``<repo>/pretrained``: the pre-trained runs kept in the repository (see pretrained/README.md)."""
    return Path(__file__).resolve().parents[3] / "pretrained"


def stored_runs() -> list[str]:
    """Names of the runs under :func:`pretrained_dir` (folders holding an ``encoder.pt``), sorted."""
    root = pretrained_dir()
    return sorted(p.name for p in root.iterdir() if (p / ENCODER).is_file()) if root.is_dir() else []


def resolve_run(name_or_path: str | Path, option: str = "--run") -> Path:
    """A run directory: ``name_or_path`` itself when it is an existing directory, else the stored run of
    that name under ``<repo>/pretrained/``; anything else is an :class:`OptionError` (naming ``option``)
    that lists the stored names."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if "/" not in name and "\\" not in name and (pretrained_dir() / name / ENCODER).is_file():
        return pretrained_dir() / name
    names = stored_runs()
    raise OptionError(f"{option} {name}", f"a run directory of aemg pretrain, or the name of a run stored in "
                      f"{pretrained_dir()} (stored runs: {', '.join(names) if names else 'none'})",
                      "found no such folder or stored run")
