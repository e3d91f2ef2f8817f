"""aemg.tokens on synthetic signals: detection accuracy, causality and chunking, invariances, TokenSet.

Synthetic EMG: Gaussian noise (the rest floor) with bursts of 8x amplitude (a contraction), 8
channels at the corpus rate of 200 Hz. Stated tolerances: a burst's onset is found within 50 ms and
its end within -50..+250 ms (the 100 ms moving average and the off threshold lag the true end).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from aemg.layouts import get_layout
from aemg.recording import Recording
from aemg.tokens import (
    FEATURE_NAMES,
    IGNORE,
    N_FEATURES,
    DetectorConfig,
    EventDetector,
    GroupBatch,
    TokenSet,
    WindowDetector,
    estimate_floor,
    tokenize_recordings,
    tokenize_session,
)
from aemg.tokens.detector import dense_rank
from aemg.tokens.energy import floor_from_samples
from aemg.tokens.features import segment_features, segment_features_rows

FS = 200.0
ONSET_TOL_MS = 50.0
END_TOL_MS = (-50.0, 250.0)


def noise_with_bursts(bursts: list[tuple[float, float]], seconds: float = 20.0, n_channels: int = 8,
                      amp: float = 8.0, seed: int = 0) -> np.ndarray:
    """(C, T) float32: unit noise with bursts ``(start_s, duration_s)`` of ``amp`` x amplitude."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_channels, int(seconds * FS)))
    for start, dur in bursts:
        a, b = int(start * FS), int((start + dur) * FS)
        x[:, a:b] *= amp
    return x.astype(np.float32)


def make_rec(signal: np.ndarray, rid: str = "r0", labels: np.ndarray | None = None, order: int = 0,
             electrodes=None) -> Recording:
    n = signal.shape[1]
    if labels is None:
        labels = np.full(n, -1, np.int32)
    return Recording(signal=np.ascontiguousarray(signal, dtype=np.float32), fs=FS, units="adc",
                     electrodes=electrodes or get_layout("myo8").electrodes, dataset="synthetic",
                     subject="synthetic/s0", session="a", labels=labels.astype(np.int32),
                     label_names=("rest", "fist"), gesture_keys=("rest", "hand_close"),
                     repetition=np.where(labels >= 0, 0, -1).astype(np.int32), recording_id=rid, order=order,
                     layout_rotation_unknown=True)


def run_detector(sig: np.ndarray, chunk: int | None = None, floor: np.ndarray | None = None,
                 config: DetectorConfig | None = None, boundaries: tuple[int, ...] = ()):
    """Events and groups of one detector fed ``sig`` in chunks (``None``: whole)."""
    floor = estimate_floor([sig], FS) if floor is None else floor
    det = EventDetector(FS, floor, config)
    parts = []
    edges = sorted({0, sig.shape[1], *boundaries})
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        if k:
            det.boundary()
        step = chunk or (b - a)
        for i in range(a, b, step):
            parts.append(det.process(sig[:, i:min(i + step, b)]))
    parts.append(det.flush())
    return det.pop_events(), GroupBatch.concat(parts, sig.shape[0])


def assert_same_groups(g1: GroupBatch, g2: GroupBatch) -> None:
    for f in fields(GroupBatch):
        np.testing.assert_array_equal(getattr(g1, f.name), getattr(g2, f.name), err_msg=f.name)


# ---------------------------------------------------------------------------------------- detection

def test_burst_found_within_tolerance():
    sig = noise_with_bursts([(5.0, 3.0), (12.0, 1.5)])
    events, groups = run_detector(sig)
    assert len(events) == 2
    for e, (start, dur) in zip(events, [(5.0, 3.0), (12.0, 1.5)]):
        assert abs(e.onset / FS - start) * 1000 <= ONSET_TOL_MS
        end_err = (e.offset / FS - (start + dur)) * 1000
        assert END_TOL_MS[0] <= end_err <= END_TOL_MS[1]
        assert not e.open_start and not e.open_end
        # detection delay: at least the minimum duration, bounded by it plus the backtrack
        assert 0.5 * FS - 1 <= e.delay <= 0.6 * FS + 1
    # segments: at most max_span (100 ms), contiguous, covering each event exactly
    span = groups.stop - groups.start
    assert span.max() <= 20 and span.min() >= 1
    for e in events:
        sel = groups.event == e.event
        assert groups.start[sel][0] == e.onset and groups.stop[sel][-1] == e.offset
        np.testing.assert_array_equal(groups.start[sel][1:], groups.stop[sel][:-1])
        assert sel.sum() == e.n_segments
    # the first group of an event closes within ~100 ms of its onset
    first = groups.stop[groups.segment == 0] - groups.start[groups.segment == 0]
    assert (first <= 0.1 * FS).all()
    assert groups.content.shape == (len(groups), 8, N_FEATURES)
    assert np.isfinite(groups.content).all()


def test_noise_at_floor_gives_no_events():
    for seed in range(3):
        sig = noise_with_bursts([], seconds=60.0, seed=seed)
        events, groups = run_detector(sig)
        assert len(events) == 0 and len(groups) == 0


def test_short_blip_is_dropped_and_gaps_merge():
    # 200 ms blip: below the 500 ms minimum; two bursts 100 ms apart: one event
    sig = noise_with_bursts([(3.0, 0.2), (8.0, 1.0), (9.1, 1.0)])
    events, _ = run_detector(sig)
    assert len(events) == 1
    assert abs(events[0].onset / FS - 8.0) * 1000 <= ONSET_TOL_MS
    assert events[0].offset / FS > 10.0


def test_open_at_start_and_end():
    sig = noise_with_bursts([(0.0, 2.0), (18.5, 5.0)], seconds=20.0)
    sig = np.concatenate([sig, noise_with_bursts([], seconds=20.0, seed=5)], axis=1)  # rest for the floor
    sig = sig[:, : int(20.0 * FS)]
    floor = estimate_floor([noise_with_bursts([], seconds=20.0, seed=6)], FS)
    events, _ = run_detector(sig, floor=floor)
    assert events[0].open_start and events[0].onset == 0
    assert events[-1].open_end and events[-1].offset == sig.shape[1]


def test_amplitude_scaling_keeps_events_and_tokens():
    sig = noise_with_bursts([(4.0, 2.0), (10.0, 3.0)])
    ev1, g1 = run_detector(sig)
    for scale in (3.7, 1e-3, 250.0):
        ev2, g2 = run_detector((sig * scale).astype(np.float32))
        assert ev1 == ev2
        np.testing.assert_array_equal(g1.start, g2.start)
        np.testing.assert_array_equal(g1.rank, g2.rank)
        np.testing.assert_allclose(g1.content, g2.content, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_equals_whole(chunk):
    sig = noise_with_bursts([(2.0, 2.5), (6.0, 0.7), (6.9, 1.0), (11.0, 3.0)], seconds=15.0)
    cuts = (1100, 2000)  # recording boundaries, one inside an event
    ev1, g1 = run_detector(sig, boundaries=cuts)
    ev2, g2 = run_detector(sig, chunk=chunk, boundaries=cuts)
    assert ev1 == ev2 and len(ev1) >= 3
    assert_same_groups(g1, g2)
    # no group straddles a boundary
    for c in cuts:
        assert not ((g1.start < c) & (g1.stop > c)).any()


def test_offline_tokenizer_is_the_streaming_detector():
    sig = noise_with_bursts([(2.0, 2.5), (6.0, 1.0), (11.0, 3.0)], seconds=15.0)
    recs = [make_rec(sig[:, :1100], "r0", order=0), make_rec(sig[:, 1100:], "r1", order=1)]
    out = tokenize_session(recs)
    floor = estimate_floor([r.signal for r in recs], FS)
    np.testing.assert_array_equal(out.floor, floor)
    events, groups = run_detector(sig, chunk=64, floor=floor, boundaries=(1100,))
    assert out.events == events
    assert_same_groups(out.groups, groups)


def test_state_dict_roundtrip_continues_exactly():
    sig = noise_with_bursts([(2.0, 3.0), (8.0, 2.0)], seconds=12.0)
    floor = estimate_floor([sig], FS)
    ev_whole, g_whole = run_detector(sig, floor=floor)
    det = EventDetector(FS, floor)
    half = 2 * 200 + 37  # inside the first event
    parts = [det.process(sig[:, :half])]
    state = det.state_dict()
    det2 = EventDetector(FS, floor)
    det2.load_state_dict(state)
    parts += [det2.process(sig[:, half:]), det2.flush()]
    assert det.pop_events() + det2.pop_events() == ev_whole
    assert_same_groups(GroupBatch.concat(parts, 8), g_whole)


def test_channel_permutation_permutes_tokens():
    sig = noise_with_bursts([(3.0, 2.0), (8.0, 3.0)], seconds=14.0)
    # make the channels differ: burst amplitude and timing per channel
    rng = np.random.default_rng(1)
    sig = sig * rng.uniform(0.5, 2.0, size=(8, 1)).astype(np.float32)
    sig[:3, int(3.0 * FS):int(3.15 * FS)] /= 8.0  # three channels activate 150 ms late
    labels = np.full(sig.shape[1], -1, np.int32)
    labels[int(3 * FS):int(5 * FS)] = 1
    rec = make_rec(sig, labels=labels)
    perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
    ts1 = tokenize_recordings([rec])
    ts2 = tokenize_recordings([rec.pick(perm)])
    assert ts1.n_groups == ts2.n_groups > 0
    c = 8
    for name in ("content", "coords", "onset_ms", "event_onset_ms", "time_ms", "duration_ms", "rank", "active"):
        a = getattr(ts1.tokens, name).reshape(ts1.n_groups, c, -1)
        b = getattr(ts2.tokens, name).reshape(ts2.n_groups, c, -1)
        np.testing.assert_array_equal(a[:, perm], b, err_msg=name)
    # ranks: the late channels activate after the others in the first group of the event
    first = ts1.tokens.rank.reshape(-1, c)[ts1.groups.segment == 0][0]
    assert (first[:3] > first[3:].max()).all()


def _features_by_definition(x, env, a, b, channel_on):
    """segment_features one segment at a time, in float64, straight from the docstring's definitions."""
    c = x.shape[0]
    content = np.zeros((len(a), c, N_FEATURES))
    first = np.full((len(a), c), -1)
    for g, (s, e) in enumerate(zip(a, b)):
        xs, es = x[:, s:e].astype(np.float64), env[:, s:e].astype(np.float64)
        n = e - s
        edges = [-(-(n * j) // 4) for j in range(5)]
        mean = es.mean(axis=1)
        content[g, :, 0] = np.log(mean + 1e-3)
        for j in range(4):
            if edges[j + 1] > edges[j]:
                content[g, :, 1 + j] = np.log((es[:, edges[j]:edges[j + 1]].mean(axis=1) + 1e-3) / (mean + 1e-3))
        m0 = (xs ** 2).mean(axis=1)
        lag1, lag2 = xs[:, 1:] * xs[:, :-1], xs[:, 2:] * xs[:, :-2]
        if n > 1:
            content[g, :, 5] = (lag1 < 0).sum(axis=1) / (n - 1)
            content[g, :, 6] = np.where(m0 > 0, lag1.sum(axis=1) / (n - 1) / np.where(m0 > 0, m0, 1), 0)
        if n > 2:
            content[g, :, 7] = np.where(m0 > 0, lag2.sum(axis=1) / (n - 2) / np.where(m0 > 0, m0, 1), 0)
        act = es >= channel_on
        content[g, :, 8] = act.mean(axis=1)
        first[g] = np.where(act.any(axis=1), act.argmax(axis=1), -1)
    return content, first


def test_segment_features_match_their_definition_and_do_not_depend_on_the_batch():
    rng = np.random.default_rng(5)
    c, n = 6, 400
    x = (rng.standard_normal((c, n)) * rng.uniform(0.1, 10.0, (c, 1))).astype(np.float32)
    x[2, 100:140] = 0.0  # a silent stretch: autocorrelations without signal are 0
    env = rng.exponential(3.0, (c, n)).astype(np.float32)
    # segments of every length from 1 to 20 (some shorter than 4: empty shape parts), gaps between some
    lengths = np.concatenate([np.arange(1, 21), np.full(5, 20), [3, 20, 1, 7]])
    a = np.cumsum(np.concatenate([[0], lengths[:-1] + rng.integers(0, 3, len(lengths) - 1)]))
    b = a + lengths
    assert b[-1] <= n
    content, first, n_active = segment_features(x, env, a, b, 4.0)
    ref, ref_first = _features_by_definition(x, env, a, b, 4.0)
    assert content.dtype == np.float32 and content.shape == (len(a), c, N_FEATURES)
    np.testing.assert_allclose(content, ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(first, ref_first)
    np.testing.assert_array_equal(n_active, np.round(ref[..., 8] * lengths[:, None]).astype(int))
    # a segment's content is the same bits alone, in any batch and in the time-major form
    for g in range(len(a)):
        alone = segment_features(x, env, a[g:g + 1], b[g:g + 1], 4.0)
        for got, want in zip(alone, (content, first, n_active)):
            np.testing.assert_array_equal(got[0], want[g])
    half = segment_features_rows(np.ascontiguousarray(x.T), np.ascontiguousarray(env.T), a[::2], b[::2], 4.0)
    for got, want in zip(half, (content, first, n_active)):
        np.testing.assert_array_equal(got, want[::2])


def test_floor_is_the_linear_percentile():
    rng = np.random.default_rng(7)
    for m in (1, 2, 9, 10, 11, 997):
        samples = rng.exponential(size=(5, m)).astype(np.float32)
        np.testing.assert_allclose(floor_from_samples(samples, 10.0), np.percentile(samples, 10.0, axis=1),
                                   rtol=1e-6)


def test_dense_rank_ties_and_inactive():
    never = np.iinfo(np.int64).max
    r = dense_rank(np.array([[5, 3, 5, never, 3, never]]))
    np.testing.assert_array_equal(r, [[1, 0, 1, 2, 0, 2]])


def test_window_tokenizer_same_interface():
    sig = noise_with_bursts([(2.0, 2.0)], seconds=5.0)
    floor = estimate_floor([sig], FS)
    whole = WindowDetector(FS, floor, 200.0)
    g1 = GroupBatch.concat([whole.process(sig[:, :333]), whole.boundary() or GroupBatch.empty(8),
                            whole.process(sig[:, 333:]), whole.flush()], 8)
    chunked = WindowDetector(FS, floor, 200.0)
    parts = [chunked.process(sig[:, i:min(i + 7, 333)]) for i in range(0, 333, 7)]
    chunked.boundary()
    parts += [chunked.process(sig[:, i:min(i + 7, sig.shape[1])]) for i in range(333, sig.shape[1], 7)]
    parts.append(chunked.flush())
    g2 = GroupBatch.concat(parts, 8)
    assert_same_groups(g1, g2)
    # windows of 40 samples, restarting at the boundary, the last shorter one kept
    assert g1.stop[-1] == sig.shape[1] and 333 in g1.stop and (g1.stop - g1.start).max() == 40
    assert len(whole.pop_events()) == len(g1)


def test_window_tokenizer_state_dict_continues_exactly():
    sig = noise_with_bursts([(1.0, 1.5)], seconds=4.0)
    floor = estimate_floor([sig], FS)
    ref = WindowDetector(FS, floor, 150.0)
    g_ref = GroupBatch.concat([ref.process(sig), ref.flush()], 8)
    det = WindowDetector(FS, floor, 150.0)
    first = det.process(sig[:, :301])
    det2 = WindowDetector(FS, floor, 150.0)
    det2.load_state_dict(det.state_dict())
    assert_same_groups(GroupBatch.concat([first, det2.process(sig[:, 301:]), det2.flush()], 8), g_ref)
    with pytest.raises(ValueError):
        WindowDetector(FS, floor, 200.0).load_state_dict(det.state_dict())


def test_config_in_ms_and_floor_multiples():
    with pytest.raises(ValueError):
        DetectorConfig(on=2.0, off=3.0)
    cfg = DetectorConfig()
    assert cfg.min_duration_ms == 500.0 and cfg.max_span_ms == 100.0 and cfg.on > cfg.off
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------- TokenSet

def two_trial_recordings() -> list[Recording]:
    sig = noise_with_bursts([(4.0, 3.0)], seconds=10.0)
    labels = np.full(sig.shape[1], -1, np.int32)
    labels[int(0.5 * FS):int(2.5 * FS)] = 0  # a rest trial: no event in it
    labels[int(4.2 * FS):int(7.0 * FS)] = 1  # a gesture trial
    rest = noise_with_bursts([], seconds=3.0, seed=3)
    rest_labels = np.zeros(rest.shape[1], np.int32)
    return [make_rec(sig, "r0", labels, order=0), make_rec(rest, "r1", rest_labels, order=1)]


def test_tokenset_keeps_every_trial_and_collates(tmp_path):
    ts = tokenize_recordings(two_trial_recordings())
    assert ts.n_trials == 3
    seqs = ts.sequences()
    assert [len(s) > 0 for s in seqs] == [False, True, False]  # rest trials kept, without tokens
    assert list(ts.trials.gesture_key) == ["rest", "hand_close", "rest"]
    m = ts.metrics()
    assert m["coverage"] == 1.0 and m["coverage_any"] == 1.0
    assert m["rest_events_per_minute"] == 0.0 and m["rest_hit_fraction"] == 0.0
    assert m["n_groups"] == ts.n_groups and m["n_tokens"] == ts.n_tokens == 8 * ts.n_groups

    batch = ts.collate(trials=[0, 1, 2])
    b, n = 3, len(seqs[1])
    assert batch["content"].shape == (b, n, N_FEATURES)
    assert batch["coords"].shape == (b, n, 4)
    for key in ("onset_ms", "t_ms", "duration_ms"):
        assert batch[key].shape == (b, n) and str(batch[key].dtype) == "torch.float32"
    for key in ("group_order", "rank", "channel"):
        assert batch[key].shape == (b, n) and str(batch[key].dtype) == "torch.int64"
    assert batch["pad_mask"].shape == (b, n) and batch["pad_mask"][0].all() and not batch["pad_mask"][1].any()
    assert batch["rotation_unknown"].tolist() == [True, True, True]
    assert batch["label"].tolist() == [0, 1, 0]
    assert batch["t_ms"][1, 0] == 0 and batch["group_order"][1, -1] == n // 8 - 1
    assert (batch["channel"][1, :8] == np.arange(8)).all()
    # unlabelled sequences (events outside trials) get IGNORE
    ev = ts.collate(tokens=ts.sequences("event"), labels=None)
    assert ev["label"].tolist() == [1]
    assert IGNORE == -100

    gt = ts.group_table()
    assert len(gt) == ts.n_groups and set(gt["gesture_key"]) <= {"hand_close", ""}
    assert (gt["label"][gt["trial"] < 0] == IGNORE).all()
    tk = ts.tokens
    np.testing.assert_allclose(tk.time_ms, ts.groups.t_ms[tk.group] + tk.onset_ms, atol=1e-3)

    path = ts.save(tmp_path / "tokens" / "events.npz")
    back = TokenSet.load(path)
    assert back.meta == ts.meta
    cols = ts.columns()
    for key, col in back.columns().items():
        np.testing.assert_array_equal(col, cols[key], err_msg=key)
        assert col.dtype == cols[key].dtype, key
    with np.load(path) as z:  # the stored format: one key per column, as before the tables
        assert list(z.keys()) == STORED_KEYS


STORED_KEYS = ["content", "channel", "coords", "onset_ms", "event_onset_ms", "time_ms", "duration_ms", "rank",
               "active", "group", "group_recording", "group_trial", "group_event", "group_segment", "group_start",
               "group_stop", "group_t_ms", "event_recording", "event_id", "event_onset", "event_offset",
               "event_confirmed_at", "event_true_onset", "event_open_start", "event_open_end", "event_delay_ms",
               "trial_recording", "trial_id", "trial_start", "trial_stop", "trial_label", "trial_label_name",
               "trial_gesture_key", "trial_repetition", "recording_id", "recording_subject", "recording_session",
               "recording_dataset", "recording_n_samples", "recording_rotation_unknown", "meta"]


def test_collate_says_what_it_takes_and_refuses_the_other():
    """One trial's token indices (``sequences()[0]``) were once read as trial numbers: a batch with a
    row per token index. collate now takes keywords and refuses what does not fit."""
    ts = tokenize_recordings(two_trial_recordings())
    seq = ts.sequences()[1]
    assert len(seq) > ts.n_trials  # as trial numbers, these would index past the trial table
    with pytest.raises(TypeError, match="keyword"):
        ts.collate(seq)
    with pytest.raises(TypeError, match="keyword"):
        ts.collate([0, 1])
    with pytest.raises(TypeError, match=r"tokens=\[seq\]"):
        ts.collate(tokens=seq)  # a flat token array is not a list of sequences
    with pytest.raises(TypeError, match="tokens="):
        ts.collate(trials=ts.sequences()[:2])  # token arrays are not trial numbers
    with pytest.raises(IndexError):
        ts.collate(trials=[ts.n_trials])
    with pytest.raises(IndexError):
        ts.collate(tokens=[np.array([ts.n_tokens])])
    with pytest.raises(TypeError):
        ts.collate(trials=[0], tokens=[seq])  # exactly one
    one = ts.collate(tokens=[seq])
    by_number = ts.collate(trials=[1])
    assert one["content"].shape == (1, len(seq), N_FEATURES)
    for key, value in one.items():
        assert (value == by_number[key]).all(), key
    ev = ts.collate(events=[0])
    assert ev["label"].tolist() == [1] and ev["pad_mask"].shape[1] == len(ts.sequences("event")[0])
    rec = ts.collate(recordings=[0, 1], max_tokens=16)
    assert rec["pad_mask"].shape == (2, 16) and rec["pad_mask"][1].all()


def test_settings_are_stored_and_old_column_names_still_read(tmp_path, monkeypatch):
    ts = tokenize_recordings(two_trial_recordings(), window_ms=150.0, notch=True)
    st = TokenSet.load(ts.save(tmp_path / "w.npz")).settings
    assert (st.mode, st.window_ms, st.notch, st.fs) == ("windows", 150.0, True, FS)
    assert st.config == DetectorConfig() and st.feature_names == tuple(FEATURE_NAMES)
    old = dict(ts.meta)
    del old["notch"]  # a token set written before the setting was stored
    assert TokenSet.from_columns(ts.columns(), old).settings.notch is None
    monkeypatch.setattr("aemg.tokens.tokenset._WARNED", set())
    with pytest.warns(DeprecationWarning, match="groups.start"):
        np.testing.assert_array_equal(ts.group_start, ts.groups.start)
    with pytest.raises(AttributeError):
        ts.no_such_column  # noqa: B018


def test_fixed_window_tokenset():
    recs = two_trial_recordings()
    ts = tokenize_recordings(recs, window_ms=200.0)
    assert ts.meta["mode"] == "windows"
    assert ts.n_groups == sum(-(-r.n_samples // 40) for r in recs)
    assert all(len(s) for s in ts.sequences())  # every trial has windows


def test_token_does_not_peek_past_its_segment_end():
    """A group's token (content and metadata) depends only on samples before its segment's end."""
    sig = noise_with_bursts([(2.0, 2.5)], seconds=8.0)
    floor = estimate_floor([sig], FS)
    _, g = run_detector(sig, floor=floor)
    assert len(g) >= 5
    k = 2  # a segment in the middle of the sustained burst
    cut = int(g.stop[k])
    pert = sig.copy()
    pert[:, cut:] *= 1.7  # change every later sample (the burst stays on, so segment edges stay put)
    pert[:3, cut:] = pert[:3, cut:][:, ::-1]
    _, g2 = run_detector(pert, floor=floor)
    assert g2.start[k] == g.start[k] and g2.stop[k] == cut
    for f in fields(GroupBatch):
        np.testing.assert_array_equal(getattr(g, f.name)[: k + 1], getattr(g2, f.name)[: k + 1],
                                      err_msg=f.name)


def test_group_ranks_follow_activation_onsets():
    """End to end: ranks order channels by activation onset; ties share, never-active share the last."""
    sig = noise_with_bursts([(2.0, 2.0)], seconds=6.0)
    a = int(2.0 * FS)
    floor = estimate_floor([noise_with_bursts([], seconds=6.0)], FS)
    sig[6:, :] = 0.3 * noise_with_bursts([], seconds=6.0, seed=1)[6:]  # channels 6, 7 never activate
    sig[4:6, a:a + 40] /= 8.0  # channels 4, 5 start 200 ms late, together (identical: a tie)
    sig[5], floor[5] = sig[4], floor[4]
    _, g = run_detector(sig, floor=floor)
    last = g.rank[-1]
    assert not g.active[-1, 6:].any() and g.active[-1, :6].all()
    assert last[6] == last[7] == last.max()
    assert last[4] == last[5] and last[4] > last[:4].max()
    for row_rank, row_first in zip(g.rank, g.event_onset):
        act = row_first >= 0
        for i in np.flatnonzero(act):
            for j in np.flatnonzero(act):
                assert (row_rank[i] < row_rank[j]) == (row_first[i] < row_first[j])


def test_pending_groups_are_the_first_groups_before_confirmation():
    """Unconfirmed event: pending_groups() gives its closed segments early, equal to what is released
    at confirmation, and calling it changes nothing."""
    sig = noise_with_bursts([(2.0, 1.5), (5.0, 0.25)], seconds=8.0)  # the second is too short
    floor = estimate_floor([sig], FS)
    ev_ref, g_ref = run_detector(sig, chunk=7, floor=floor)
    det = EventDetector(FS, floor)
    parts, early, dropped = [], None, 0
    for i in range(0, sig.shape[1], 7):
        parts.append(det.process(sig[:, i:i + 7]))
        p = det.pending_groups()
        if len(p) and early is None and p.event[0] == 0:
            early = (i + 7, p)
        if len(p) and p.event[0] != 0:
            dropped = max(dropped, len(p))
    parts.append(det.flush())
    assert det.pop_events() == ev_ref
    assert_same_groups(GroupBatch.concat(parts, sig.shape[0]), g_ref)
    seen_at, p = early
    assert seen_at - int(g_ref.start[0]) <= det.span + 7  # first tokens within ~100 ms of the onset
    for f in fields(GroupBatch):
        np.testing.assert_array_equal(getattr(p, f.name), getattr(g_ref, f.name)[: len(p)], err_msg=f.name)
    assert dropped >= 1 and len(ev_ref) == 1  # the short burst had provisional groups, then was dropped


# ---------------------------------------------------------------------------------------- plot

@pytest.mark.slow
@pytest.mark.parametrize("options", [["--window-ms", "150"], ["--notch"]])
def test_cli_plot_draws_the_stored_events_and_groups(tiny_dataset, tmp_path, monkeypatch, capsys, options):
    """``aemg tokenize --plot`` draws the token set's own events and groups (read from it, never
    detected again with other options): for --window-ms, the stored windows and no events."""
    import json

    import aemg.tokens.plot as plot
    from aemg.cli import main
    from aemg.corpus import import_manifest

    corpus = import_manifest(tiny_dataset(n_subjects=1, sessions=("s1",), n=4000), tmp_path / "corpus",
                             progress=False)
    drawn = []
    real_draw = plot.draw

    def spy(rec, marks, settings, *args):
        drawn.append((rec.recording_id, marks, settings))
        return real_draw(rec, marks, settings, *args)

    monkeypatch.setattr(plot, "draw", spy)
    rid = corpus.recording_ids[1]
    out = tmp_path / "tokens.npz"
    assert main(["tokenize", str(corpus.path), "--json", "--plot", rid, "--out", str(out), *options]) == 0
    doc = json.loads(capsys.readouterr().out)
    with open(doc["plot"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    ts = TokenSet.load(out)
    assert len(drawn) == 1 and drawn[0][0] == rid
    _, marks, settings = drawn[0]
    assert settings == ts.settings and settings.notch == ("--notch" in options)
    r = list(ts.recordings.id).index(rid)
    g, e = ts.groups.recording == r, ts.events.recording == r
    assert g.any()
    np.testing.assert_array_equal(marks.group_start, ts.groups.start[g])
    np.testing.assert_array_equal(marks.group_stop, ts.groups.stop[g])
    np.testing.assert_array_equal(marks.event_onset, ts.events.onset[e])
    np.testing.assert_array_equal(marks.event_offset, ts.events.offset[e])
    if "--window-ms" in options:
        assert settings.mode == "windows" and settings.window_ms == 150.0
        assert len(marks.event_onset) == 0 and (np.diff(marks.group_start) == 30).all()  # 150 ms at 200 Hz
