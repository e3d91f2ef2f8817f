"""The batch contract between tokens and the model: :data:`IGNORE` and :func:`pad_batch`.

Every path that feeds the model (``TokenSet.collate``, pre-training's span loader, later evaluation
and live decoding) builds one dict of numpy arrays per sequence and pads them here, so the batch of
docs/dev/contracts.md is produced in one place. torch is imported inside :func:`pad_batch` only, so
``import aemg.tokens`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

IGNORE = -100
"""Target value of padding and unscored positions, everywhere in aemg (torch's cross-entropy default)."""

FLOAT_KEYS = ("content", "coords", "onset_ms", "t_ms", "duration_ms")
"""Per-token float32 entries of a sequence: content (n, F), coords (n, 4), the rest (n,)."""
INT_KEYS = ("group_order", "rank", "channel")
"""Per-token int64 entries of a sequence, each (n,)."""


def pad_batch(items: Sequence[Mapping[str, Any]], *, n_features: int | None = None,
              with_index: bool = False) -> dict[str, torch.Tensor]:
    """Pad sequences into the batch dict of docs/dev/contracts.md (B sequences, N tokens, F content).

    Each item holds one sequence's per-token arrays (:data:`FLOAT_KEYS`, :data:`INT_KEYS`, ``n``
    tokens, possibly 0) and its ``rotation_unknown`` (bool) and ``label`` (int, :data:`IGNORE` when
    unlabelled); with ``with_index`` also its ``index`` (int, -1 when absent). ``N`` is the longest
    sequence (at least 1: an empty sequence is one all-padding row); ``n_features`` gives ``F`` when
    there is no item to read it from. Returns::

        content (B, N, F) float32   coords (B, N, 4) float32   onset_ms, t_ms, duration_ms (B, N) float32
        group_order, rank, channel (B, N) int64   pad_mask (B, N) bool (True = padding)
        rotation_unknown (B,) bool   label (B,) int64   [index (B,) int64]
    """
    import torch

    b = len(items)
    n = max([len(it["rank"]) for it in items] + [1])
    f = int(items[0]["content"].shape[1]) if items else int(n_features or 0)
    content = np.zeros((b, n, f), np.float32)  # (B, N, F)
    coords = np.zeros((b, n, 4), np.float32)  # (B, N, 4) cos a, sin a, z, off_forearm
    per_token = {k: np.zeros((b, n), np.float32) for k in FLOAT_KEYS[2:]}  # (B, N) each
    per_token |= {k: np.zeros((b, n), np.int64) for k in INT_KEYS}  # (B, N) each
    pad = np.ones((b, n), bool)  # (B, N) True = padding
    for i, it in enumerate(items):
        k = len(it["rank"])
        if k == 0:
            continue
        content[i, :k] = it["content"]
        coords[i, :k] = it["coords"]
        for key, arr in per_token.items():
            arr[i, :k] = it[key]
        pad[i, :k] = False
    out = {"content": torch.from_numpy(content), "coords": torch.from_numpy(coords),
           **{k: torch.from_numpy(v) for k, v in per_token.items()}, "pad_mask": torch.from_numpy(pad),
           "rotation_unknown": torch.from_numpy(np.array([bool(it["rotation_unknown"]) for it in items], bool)),
           "label": torch.from_numpy(np.array([int(it["label"]) for it in items], np.int64))}
    if with_index:
        out["index"] = torch.from_numpy(np.array([int(it.get("index", -1)) for it in items], np.int64))
    return out


__all__ = ["FLOAT_KEYS", "IGNORE", "INT_KEYS", "pad_batch"]
