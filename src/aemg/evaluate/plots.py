"""PNG figures of an evaluation (matplotlib, Agg): accuracy vs k per method, a confusion matrix per method."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aemg.atomic import atomic_path
from aemg.evaluate.report import Evaluation


def _save(fig: object, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)  # type: ignore[attr-defined]
    return path


def accuracy_plot(ev: Evaluation, path: Path) -> Path:
    """Mean trial accuracy (± std over subjects) per method against k (or the test session)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ev.keys
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for m in ev.methods:
            v = np.array([ev.per_subject(m, k) for k in keys])  # (keys, subjects)
            mean = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in v])
            std = np.array([np.nanstd(r) if np.isfinite(r).any() else np.nan for r in v])
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=m)
        chance = 1.0 / max(1, len(ev.classes))
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xticks(x, keys)
        ax.set_xlabel("k (calibration repetitions per class)" if ev.protocol == "loso" else "test")
        ax.set_ylabel("trial accuracy (mean ± std over subjects)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{ev.dataset}: {ev.protocol}, scale {ev.scale}, n = {len(ev.subjects)}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def confusion_plot(ev: Evaluation, method: str, key: str, path: Path) -> Path:
    """Row-normalised confusion matrix of one method at one key, summed over the held-out subjects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = ev.confusion(method, key)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(ev.classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    try:
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(n), ev.classes, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), ev.classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        head = "k" if ev.protocol == "loso" else "test"
        ax.set_title(f"{method}, {head} = {key}", fontsize=9)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def write_plots(ev: Evaluation, out: Path) -> list[Path]:
    """``accuracy_vs_k.png`` and ``confusion-<method>.png`` (at k = 0, else the first key) in ``out``."""
    keys = ev.keys
    key = "0" if "0" in keys else keys[0]
    paths = [accuracy_plot(ev, out / "accuracy_vs_k.png")]
    for m in ev.methods:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in m)
        paths.append(confusion_plot(ev, m, key, out / f"confusion-{safe}.png"))
    return paths
