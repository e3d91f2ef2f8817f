"""Spans of a trial: runs of consecutive token groups, the unit the encoder methods train and predict on.

A trial (a labelled repetition, e.g. 5 s of Côté-Allard: ~50 groups of <= 100 ms, ~400 tokens) is cut
into spans of ``span`` consecutive groups (all their tokens). Training uses a fresh random partition of
every trial at every epoch (each group in exactly one span, spans never cross trials); a trial is
predicted from a fixed tiling of its spans (:func:`tile_spans`). Pure numpy, no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aemg.tokens import TokenSet


def trial_groups(ts: TokenSet, seqs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Per trial token sequence (time order, as ``TokenSet.sequences("trial")``), its tokens split by group."""
    group = ts.tokens.group
    out = []
    for s in seqs:
        if not len(s):
            out.append([])
            continue
        cut = np.flatnonzero(np.diff(group[s])) + 1
        out.append(np.split(s, cut))
    return out


def _join(groups: list[np.ndarray], bounds: np.ndarray) -> list[np.ndarray]:
    return [np.concatenate(groups[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def partition_spans(groups: list[np.ndarray], span: int, offset: int) -> list[np.ndarray]:
    """The trial's groups cut into spans of ``span`` groups, the first cut after ``offset`` groups (0 <= offset
    < span): every group in exactly one span, in order; the first and last spans may be shorter."""
    n = len(groups)
    if not n:
        return []
    cuts = np.arange(offset if offset > 0 else span, n, span)
    return _join(groups, np.concatenate([[0], cuts, [n]]))


def tile_spans(groups: list[np.ndarray], span: int, stride: int) -> list[np.ndarray]:
    """Spans of ``span`` groups starting every ``stride`` groups, the last one ending at the trial's end (so
    every group is covered); a trial of at most ``span`` groups is one span."""
    n = len(groups)
    if not n:
        return []
    if n <= span:
        return [np.concatenate(groups)]
    starts = np.arange(0, n - span + 1, stride)
    if starts[-1] != n - span:
        starts = np.append(starts, n - span)
    return [np.concatenate(groups[a:a + span]) for a in starts]


def epoch_spans(trials: list[list[np.ndarray]], span: int, rng: np.random.Generator, per_trial: int = 0
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """One epoch's training spans: every trial partitioned at a random offset, then (``per_trial`` > 0) at
    most ``per_trial`` of its spans drawn at random (in time order), to bound an epoch's cost on long trials;
    returns (spans, trial index per span)."""
    spans: list[np.ndarray] = []
    owner: list[int] = []
    for i, g in enumerate(trials):
        s = partition_spans(g, span, int(rng.integers(span)))
        if per_trial and len(s) > per_trial:
            s = [s[j] for j in np.sort(rng.choice(len(s), per_trial, replace=False))]
        spans += s
        owner += [i] * len(s)
    return spans, np.asarray(owner, np.int64)
