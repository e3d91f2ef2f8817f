"""aemg.train.data: spans are whole token groups, and the span batch is the tokens' batch contract."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from aemg.tokens.batch import IGNORE, pad_batch  # noqa: E402
from aemg.train.data import SpanDataset, TokenRecording, collate, windows  # noqa: E402
from aemg.train.synthetic import synthetic_recordings  # noqa: E402


def uneven_recordings() -> list[TokenRecording]:
    """Recordings whose groups hold 3..11 tokens (so a token cap rarely falls on a group boundary)."""
    rng = np.random.default_rng(7)
    recs = []
    for r in range(3):
        sizes = rng.integers(3, 12, size=25)
        group = np.repeat(np.arange(len(sizes)), sizes)
        n = len(group)
        recs.append(TokenRecording(
            key=f"u/s0/rec{r}", dataset="u", subject="u/s0", content=rng.normal(size=(n, 5)).astype(np.float32),
            coords=np.zeros((n, 4), np.float32), onset_ms=np.zeros(n, np.float32),
            group_start_ms=(group * 250.0).astype(np.float64), duration_ms=np.ones(n, np.float32),
            group=group.astype(np.int64), rank=np.zeros(n, np.int64),
            channel=np.concatenate([np.arange(k) for k in sizes]).astype(np.int64)))
    return recs


def span_bounds(ds: SpanDataset, i: int, span: dict[str, np.ndarray]) -> tuple[int, int]:
    """Where item ``i``'s tokens lie in its recording: ``(first, end)`` token offsets."""
    rec = ds.recordings[ds.items[i][0]]
    n = len(span["rank"])
    hits = [s for s in range(len(rec) - n + 1) if np.array_equal(rec.content[s:s + n], span["content"])]
    assert len(hits) == 1, "a span is one contiguous run of its recording's tokens"
    return hits[0], hits[0] + n


@pytest.mark.parametrize("max_tokens", [17, 24, 40])
def test_spans_are_made_of_whole_groups(max_tokens):
    """Every span starts and ends at group boundaries (a span that ends mid-group fails here),
    holds at most ``max_tokens`` tokens, and its group_order counts its groups from 0."""
    recs = uneven_recordings()
    ds = SpanDataset(recs, max_tokens=max_tokens, seed=3)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            span = ds[i]
            rec = ds.recordings[ds.items[i][0]]
            bounds = set(rec.group_bounds().tolist())
            lo, hi = span_bounds(ds, i, span)
            assert 0 < hi - lo <= max_tokens
            assert lo in bounds, f"item {i} starts mid-group"
            assert hi in bounds, f"item {i} ends mid-group (tokens {lo}..{hi})"
            np.testing.assert_array_equal(span["group_order"], rec.group[lo:hi] - rec.group[lo])
            # whole groups: every group of the span has all of its tokens
            for g in np.unique(rec.group[lo:hi]):
                assert (span["group_order"] == g - rec.group[lo]).sum() == (rec.group == g).sum()


def test_a_group_longer_than_the_cap_is_the_only_cut():
    """The one documented exception: a single group with more tokens than the cap is cut to the cap."""
    rec = uneven_recordings()[0]
    big = TokenRecording(**{**rec.__dict__, "group": np.zeros(len(rec), np.int64), "key": "u/s0/big"})
    ds = SpanDataset([big], max_tokens=10, seed=0)
    span = ds[0]
    assert len(span["rank"]) == 10 and (span["group_order"] == 0).all()


def test_windows_tile_recordings_with_whole_groups():
    rec = uneven_recordings()[1]
    b = rec.group_bounds()
    w = windows(rec, 30)
    assert w[0][0] == 0 and w[-1][1] == len(b) - 1
    assert all(e0 == s1 for (_, e0), (s1, _) in zip(w[:-1], w[1:]))
    assert all(b[e] - b[s] <= 30 or e - s == 1 for s, e in w)


def test_span_batch_is_the_tokens_batch_contract():
    """collate is the one padding function (aemg.tokens.batch.pad_batch) plus each span's index."""
    ds = SpanDataset(synthetic_recordings(n_recordings=2, n_groups=10, content_dim=6, seed=2), max_tokens=30)
    items = [ds[i] for i in range(len(ds))]
    batch = collate(items)
    ref = pad_batch(items)
    assert list(batch) == [*ref, "index"]
    for key, value in ref.items():
        assert value.dtype == batch[key].dtype and (value == batch[key]).all(), key
    assert batch["index"].tolist() == list(range(len(ds)))
    assert (batch["label"] == IGNORE).all()  # synthetic recordings are unlabelled
    n = [len(it["rank"]) for it in items]
    assert batch["pad_mask"].shape == (len(items), max(n))
    assert [int((~row).sum()) for row in batch["pad_mask"]] == n
