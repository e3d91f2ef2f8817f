"""Synthetic token recordings that follow the batch contract, for tests and benchmarks.

Each recording is an 8-electrode armband (or a 10-electrode one with known rotation); each group is
one "contraction": a latent burst shape k out of ``n_shapes`` and a spatial activation pattern;
every channel's token is that shape scaled by its channel's activation, plus noise. Tokens of one
group share their shape, so a masked token's prototype is predictable from its neighbours.
"""

from __future__ import annotations

import numpy as np

from aemg.train.data import TokenRecording


def synthetic_recordings(n_recordings: int = 6, n_groups: int = 40, content_dim: int = 16, n_shapes: int = 6,
                         seed: int = 0, datasets: tuple[str, ...] = ("synth",)) -> list[TokenRecording]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, content_dim)
    shapes = np.stack([np.exp(-((t - c) ** 2) / (2 * w**2)) for c, w in
                       zip(rng.uniform(0.15, 0.85, n_shapes), rng.uniform(0.05, 0.3, n_shapes))]).astype(np.float32)
    recs = []
    for r in range(n_recordings):
        C = 8 if r % 2 == 0 else 10
        ang = np.deg2rad(np.arange(C) * 360.0 / C + rng.uniform(0, 360))
        coords = np.stack([np.cos(ang), np.sin(ang), np.full(C, 0.3), np.zeros(C)], 1).astype(np.float32)
        if C == 10:  # two electrodes off the forearm (biceps / triceps)
            coords[-2:] = [0, 0, 0, 1]
        rows = {k: [] for k in ("content", "coords", "onset", "gstart", "dur", "group", "rank", "channel")}
        t0 = 0.0
        for g in range(n_groups):
            k = rng.integers(n_shapes)
            center = rng.uniform(0, 2 * np.pi)
            act = 0.2 + np.exp(np.cos(ang - center) * 2) / np.e**2  # (C,)
            onset = (1 - act / act.max()) * 80 + rng.uniform(0, 5, C)
            order = np.argsort(onset, kind="stable")
            rank = np.empty(C, np.int64)
            rank[order] = np.arange(C)
            dur = rng.uniform(200, 1200)
            for c in order:
                rows["content"].append(act[c] * shapes[k] + rng.normal(0, 0.03, content_dim))
                rows["coords"].append(coords[c])
                rows["onset"].append(onset[c])
                rows["gstart"].append(t0)
                rows["dur"].append(dur * rng.uniform(0.8, 1.0))
                rows["group"].append(g)
                rows["rank"].append(rank[c])
                rows["channel"].append(c)
            t0 += dur + rng.uniform(300, 2000)
        ds = datasets[r % len(datasets)]
        recs.append(TokenRecording(
            key=f"{ds}/s{r % 3}/rec{r}", dataset=ds, subject=f"{ds}/s{r % 3}",
            content=np.asarray(rows["content"], np.float32), coords=np.asarray(rows["coords"], np.float32),
            onset_ms=np.asarray(rows["onset"], np.float32), group_start_ms=np.asarray(rows["gstart"], np.float64),
            duration_ms=np.asarray(rows["dur"], np.float32), group=np.asarray(rows["group"], np.int64),
            rank=np.asarray(rows["rank"], np.int64), channel=np.asarray(rows["channel"], np.int64),
            rotation_unknown=C == 8))
    return recs


def synthetic_batch(batch_size: int = 4, max_tokens: int = 48, content_dim: int = 16, seed: int = 0):
    """One padded batch (the contract's dict) from synthetic recordings; sequence i starts 2 i groups
    before its recording's end where that is shorter than a full span, so lengths (and padding) vary."""
    from aemg.train.data import SpanDataset, collate

    n_groups = 12
    ds = SpanDataset(synthetic_recordings(n_recordings=batch_size, n_groups=n_groups, content_dim=content_dim,
                                          seed=seed), max_tokens=max_tokens, seed=seed)
    items = []
    for b in range(batch_size):
        ri = b % len(ds.recordings)
        first = next(i for i, it in enumerate(ds.items) if it[0] == ri)
        items.append(ds.span(first, start_group=max(0, n_groups - 2 - 2 * b)))
    return collate(items)
