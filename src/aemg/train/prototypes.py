"""The prototype gallery: decode the most used code vectors back to token content and draw them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from aemg.train.checkpoint import load_tokenizer


def prototype_contents(run_dir: str | Path, top: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (k,), counts (k,), decoded content (k, F)) of the ``top`` most used codes."""
    run_dir = Path(run_dir)
    tok = load_tokenizer(run_dir)
    K = tok.cfg.quantizer.codebook_size
    usage = run_dir / "code_usage.json"
    counts = np.asarray(json.loads(usage.read_text())["code_counts"]) if usage.exists() else np.zeros(K, np.int64)
    ids = np.argsort(-counts, kind="stable")[: min(top, K)]
    with torch.no_grad():
        content = tok.decode(tok.quantizer.codebook[torch.as_tensor(ids)]).numpy()
    return ids, counts[ids], content


def draw_prototypes(run_dir: str | Path, top: int = 24, out: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "prototypes.png"
    ids, counts, content = prototype_contents(run_dir, top)
    names = _content_names(run_dir, content.shape[1])
    shape_cols = [i for i, n in enumerate(names) if n.startswith("shape")]
    amp_col = names.index("log_amp") if "log_amp" in names else None
    total = max(int(counts.sum()), 1)
    ncol = min(6, len(ids))
    nrow = int(np.ceil(len(ids) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.4 * ncol, 2.0 * nrow), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, k, n, c in zip(axes.flat, ids, counts, content):
        ax.set_visible(True)
        title = f"code {k}: {100 * n / total:.1f}%"
        if len(shape_cols) >= 2:  # the envelope's course over the segment, relative to its mean (1 = flat)
            env = np.exp(c[shape_cols])
            edges = np.linspace(0, 1, len(shape_cols) + 1)
            ax.stairs(env, edges, fill=True, alpha=0.3)
            ax.stairs(env, edges)
            ax.axhline(1.0, color="0.6", lw=0.5, ls=":")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, max(2.0, 1.1 * float(env.max())))
            ax.set_xlabel("segment (start to end)", fontsize=6)
            if amp_col is not None:  # log_amp: log of the mean envelope relative to the noise floor
                title += f", {np.exp(c[amp_col]):.0f}x floor"
        else:
            ax.bar(np.arange(len(c)), c)
            ax.set_xticks(range(len(c)))
            ax.set_xticklabels(names, rotation=90, fontsize=5)
        ax.set_title(title, fontsize=7)
        ax.tick_params(labelsize=5)
    fig.suptitle(f"{len(ids)} most used prototypes of {run_dir.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _content_names(run_dir: Path, F: int) -> list[str]:
    run = run_dir / "run.json"
    if run.exists():
        names = json.loads(run.read_text()).get("content_names")
        if names and len(names) == F:
            return list(names)
    return [f"f{i}" for i in range(F)]
