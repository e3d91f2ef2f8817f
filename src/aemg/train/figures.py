"""The figures a pre-training run reports: codebook use of the frozen tokenizer, masked accuracy.

Both read a fixed draw of spans (``eval_spans``: the same on every process and every resume) and
change no model state: the tokenizer is read in eval mode, the MTM model is put in eval mode and
back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from aemg.model import IGNORE, MaskedTokenModel, VQTokenizer, random_token_mask, symmetric_batch
from aemg.train.data import SpanDataset, TokenRecording, collate
from aemg.train.engine import generator

Batch = dict[str, torch.Tensor]


def eval_spans(recordings: Sequence[TokenRecording], max_tokens: int, batch_size: int, n_batches: int, seed: int,
               to_device: Callable[[Batch], Batch]) -> Iterator[Batch]:
    """Up to ``n_batches`` batches of spans starting at their windows' first groups, in an order fixed by ``seed``."""
    if not recordings:
        return
    ds = SpanDataset(recordings, max_tokens, seed=seed, random_start=False)
    idx = np.random.default_rng(seed).permutation(len(ds))[: n_batches * batch_size]
    for i in range(0, len(idx), batch_size):
        yield to_device(collate([ds[int(j)] for j in idx[i:i + batch_size]]))


@torch.no_grad()
def codebook_stats(tok: VQTokenizer, batches: Iterator[Batch]) -> dict[str, Any]:
    """Codebook usage and perplexity (exp of the entropy of code use) over ``batches``, and the counts."""
    K = tok.cfg.quantizer.codebook_size
    counts = torch.zeros(K)
    for batch in batches:
        ids = tok.tokenize(batch)
        counts += torch.bincount(ids[ids != IGNORE].cpu(), minlength=K).float()
    p = counts / counts.sum().clamp(min=1)
    nz = p[p > 0]
    return {"perplexity": float(torch.exp(-(nz * nz.log()).sum())), "codebook_usage": float((counts > 0).float().mean()),
            "codes_used": int((counts > 0).sum()), "code_counts": counts.long().tolist()}


@torch.no_grad()
def masked_accuracy(tok: VQTokenizer, mtm: MaskedTokenModel, batches: Iterator[Batch], seed: int) -> dict[str, Any]:
    """Masked-token accuracy (symmetric masks drawn from ``(seed, "eval", batch)``) against always
    predicting the scored targets' own most common id."""
    was = mtm.training
    mtm.eval()
    correct = total = 0
    targets_all: list[torch.Tensor] = []
    for bi, batch in enumerate(batches):
        codes = tok.tokenize(batch)
        mask = random_token_mask(batch["pad_mask"], mtm.cfg.mask_ratio, generator(seed, "eval", bi))
        big, cmask, targets = symmetric_batch(batch, codes, mask)
        logits, _ = mtm(big, targets, cmask)
        scored = targets != IGNORE
        correct += int((logits.argmax(-1)[scored] == targets[scored]).sum())
        total += int(scored.sum())
        targets_all.append(targets[scored].cpu())
    mtm.train(was)
    t = torch.cat(targets_all) if targets_all else torch.zeros(0, dtype=torch.long)
    maj_id, maj_n = Counter(t.tolist()).most_common(1)[0] if len(t) else (None, 0)
    return {"masked_accuracy": correct / max(total, 1), "majority_accuracy": maj_n / max(total, 1),
            "majority_id": maj_id, "n_scored": total}
