"""Pre-training data: recordings' token tables, random spans of whole groups, the contract's batch.

One model input is a span of consecutive token groups from one recording, capped at
``max_tokens`` tokens (docs/model.md says why 256 for ``small``). The span dataset tiles each
recording into windows of whole groups that fit; item i of epoch e starts at a group drawn with
``numpy.random.default_rng((seed, e, i))`` inside window i (moved back where a span starting
there would run out of tokens before the recording ends), so an item is a pure function of
(seed, epoch, index): any process, any worker, a resumed run all load the same tokens.

:func:`collate` pads a list of spans into the batch contract of docs/dev/contracts.md with
:func:`aemg.tokens.batch.pad_batch`, the function ``aemg.tokens.TokenSet.collate`` calls too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from aemg.tokens.batch import IGNORE, pad_batch


@dataclass
class TokenRecording:
    """One recording's tokens, sorted by group then rank (n tokens, F content dim)."""

    key: str  # unique recording id (dataset/subject/session/recording)
    dataset: str
    subject: str
    content: np.ndarray  # (n, F) float32
    coords: np.ndarray  # (n, 4) float32: cos a, sin a, z, off_forearm
    onset_ms: np.ndarray  # (n,) float32: channel onset relative to its group's start
    group_start_ms: np.ndarray  # (n,) float64: the token's group start relative to the recording
    duration_ms: np.ndarray  # (n,) float32
    group: np.ndarray  # (n,) int64: group index within the recording, non-decreasing
    rank: np.ndarray  # (n,) int64
    channel: np.ndarray  # (n,) int64
    rotation_unknown: bool = False
    label: np.ndarray | None = None  # (n,) int64 per token (the group's trial label), IGNORE if none

    def __len__(self) -> int:
        return len(self.group)

    def group_bounds(self) -> np.ndarray:
        """(G + 1,) token offsets where each group starts (and the end); ``[0]`` for no tokens."""
        if len(self.group) == 0:
            return np.zeros(1, np.int64)
        starts = np.flatnonzero(np.r_[True, self.group[1:] != self.group[:-1]])
        return np.r_[starts, len(self.group)]


def windows(rec: TokenRecording, max_tokens: int) -> list[tuple[int, int]]:
    """Tile a recording into (first group, end group) windows of whole groups with <= max_tokens tokens."""
    b = rec.group_bounds()
    out, g, G = [], 0, len(b) - 1
    while g < G:
        e = g + 1
        while e < G and b[e + 1] - b[g] <= max_tokens:
            e += 1
        out.append((g, e))
        g = e
    return out


class SpanDataset(Dataset):
    """Random spans of whole groups; ``set_epoch`` changes the draw (like ``DistributedSampler``)."""

    def __init__(self, recordings: Sequence[TokenRecording], max_tokens: int, seed: int = 0, random_start: bool = True):
        self.recordings = list(recordings)
        self.max_tokens = max_tokens
        self.seed = seed
        self.random_start = random_start
        self.epoch = 0
        self.bounds = [r.group_bounds() for r in self.recordings]
        # the latest start group from which a span still holds max_tokens tokens (spans near a recording's
        # end are moved back rather than left short: less padding, the same tokens per step)
        self.latest = [int(np.flatnonzero(b[-1] - b[:-1] >= max_tokens).max(initial=0)) for b in self.bounds]
        self.items = [(ri, g, e) for ri, r in enumerate(self.recordings) for g, e in windows(r, max_tokens)]
        if not self.items:
            raise ValueError("no tokens to pre-train on: every recording is empty")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def span(self, i: int, start_group: int | None = None) -> dict[str, np.ndarray]:
        ri, g0, g1 = self.items[i]
        rec, b = self.recordings[ri], self.bounds[ri]
        if start_group is None:
            lo_g = min(g0, self.latest[ri])
            hi_g = max(lo_g, min(g1 - 1, self.latest[ri]))
            start_group = lo_g
            if self.random_start and hi_g > lo_g:
                start_group = int(np.random.default_rng((self.seed, self.epoch, i)).integers(lo_g, hi_g + 1))
        lo = b[start_group]
        hi = lo + self.max_tokens
        hi_whole = b[np.searchsorted(b, hi, side="right") - 1]  # whole groups only
        hi = hi_whole if hi_whole > lo else min(hi, b[start_group + 1])  # a group longer than the cap is cut
        sl = slice(lo, hi)
        gs = rec.group_start_ms[sl]
        return {
            "content": rec.content[sl], "coords": rec.coords[sl], "onset_ms": rec.onset_ms[sl],
            "t_ms": (gs - gs[0]).astype(np.float32), "duration_ms": rec.duration_ms[sl],
            "group_order": rec.group[sl] - rec.group[lo], "rank": rec.rank[sl], "channel": rec.channel[sl],
            "rotation_unknown": np.bool_(rec.rotation_unknown),
            "label": np.int64(rec.label[lo] if rec.label is not None else IGNORE),
            "index": np.int64(i),
        }

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.span(int(i))


def collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Pad spans into the batch contract (B sequences, N = longest span, F content dim), with each
    span's ``index``: :func:`aemg.tokens.batch.pad_batch`, the one padding function."""
    return pad_batch(items, with_index=True)


class ResumableSampler(Sampler[int]):
    """A ``DistributedSampler`` (shuffled, ``drop_last``: every rank gets as many items, disjoint) that
    can start an epoch at a given position, so a resumed run sees exactly the remaining items."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        self.inner = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                                        drop_last=num_replicas > 1)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.start:])

    def __len__(self) -> int:
        return len(self.inner) - self.start


def split_holdout(recordings: Sequence[TokenRecording], fraction: float, seed: int
                  ) -> tuple[list[TokenRecording], list[TokenRecording]]:
    """Hold out whole recordings (at least one if there are two or more), chosen by a stable hash of
    their key and the seed: the same recordings for every process and every resume."""
    recs = list(recordings)
    if len(recs) < 2 or fraction <= 0:
        return recs, []
    def h(r: TokenRecording) -> str:
        return hashlib.sha1(f"{seed}:{r.key}".encode()).hexdigest()
    order = sorted(range(len(recs)), key=lambda i: h(recs[i]))
    n_out = max(1, int(round(fraction * len(recs))))
    out = set(order[:n_out])
    return [r for i, r in enumerate(recs) if i not in out], [r for i, r in enumerate(recs) if i in out]
