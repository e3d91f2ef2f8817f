"""The live decoder core (:mod:`aemg.live`) on real Côté-Allard recordings replayed through a fine-tuned model.

One ``tiny`` pre-training on Côté-Allard's pre-training subjects, fine-tuned (``aemg finetune --reps 1``) on an
evaluation subject; that subject's recordings are streamed. The offline reference is the tokenizer's own path
(``tokenize_session`` with the model's floor, ``TokenSetBuilder``, ``TokenSet.collate``) and the network.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

from aemg.cli import main  # noqa: E402
from aemg.evaluate.spans import tile_spans  # noqa: E402
from aemg.live import LiveDecoder, ReplaySource  # noqa: E402
from aemg.live.model import LiveModel  # noqa: E402
from aemg.tokens.tokenizer import tokenize_session  # noqa: E402
from live_helpers import decode, offline_decisions, with_events  # noqa: E402

QUIET = ["--log-level", "ERROR"]
USER = "cote-allard/evaluation/Female0"


def _cli(argv: list[str], code: int = 0) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(QUIET + argv)
    assert rc == code, err.getvalue()
    return out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dir(cote_allard_live_model) -> Path:
    """The session's live-test model directory (conftest: the tiny run fine-tuned on USER's first repetitions)."""
    return cote_allard_live_model


@pytest.fixture(scope="module")
def live_model(model_dir) -> LiveModel:
    return LiveModel(model_dir)


@pytest.fixture(scope="module")
def user_recordings(corpus_cote_allard) -> list:
    """USER's recordings (unscaled, as the decoder takes them), in corpus order."""
    return list(corpus_cote_allard.iter_recordings(subject=USER, scaled=False))


def _key(decisions: list) -> list:
    return [(d.status, d.event, d.gesture, d.n_groups, d.time_s, d.onset_s, d.probabilities, d.open_end, d.final)
            for d in decisions]


def test_chunked_equals_whole(live_model, user_recordings):
    recs = with_events(live_model, user_recordings, 2)
    for rec in recs:
        whole = decode(live_model, rec, rec.n_samples)
        statuses = {d.status for d in whole}
        assert {"provisional", "confirmed"} <= statuses, statuses
        for chunk in (1, 7, 64):
            assert _key(decode(live_model, rec, chunk)) == _key(whole), (rec.recording_id, chunk)
        # the first decision of each event comes from its first 100 ms group, before confirmation
        span_s = live_model.settings.config.max_span_ms / 1000.0
        for e in {d.event for d in whole}:
            first = next(d for d in whole if d.event == e)
            assert first.status == "provisional" and first.n_groups == 1
            assert abs(first.delay_s - span_s) < 1.5 / rec.fs, first
        for d in whole:
            assert abs(sum(d.probabilities) - 1.0) < 1e-9 and len(d.probabilities) == len(live_model.info.classes)
            assert d.gesture == live_model.info.classes[int(np.argmax(d.probabilities))]


def test_final_confirmed_decision_equals_offline_classification(live_model, user_recordings):
    recs = with_events(live_model, user_recordings, 3)
    checked = 0
    for rec in recs:
        floor = np.asarray(live_model.info.calibration_of(rec.subject, rec.session).noise_floor)
        offline = offline_decisions(live_model, rec, floor)
        live = decode(live_model, rec, 7)
        confirmed = {d.event for d in live if d.status == "confirmed"}
        assert confirmed == set(offline), (rec.recording_id, confirmed, set(offline))
        for e, (n_groups, logp) in offline.items():
            last = [d for d in live if d.event == e and d.status == "confirmed"][-1]
            assert last.final and last.n_groups == n_groups
            want = np.exp(logp - logp.max())
            want /= want.sum()
            np.testing.assert_allclose(last.probabilities, want, rtol=1e-4, atol=1e-5)
            assert last.gesture == live_model.info.classes[int(np.argmax(logp))]
            checked += 1
    assert checked >= 3


def _burst(rec_rest, rec_active, model) -> tuple[np.ndarray, float]:
    """Real rest, then ``short`` seconds of a real contraction (shorter than the minimum duration), then rest."""
    dec = decode(model, rec_active, rec_active.n_samples)
    onset = next(d.onset_s for d in dec if d.status == "confirmed")
    fs = rec_rest.fs
    a = int(round(onset * fs))
    short = int(round(0.3 * fs))  # 300 ms < min_duration_ms (500)
    rest = rec_rest.signal
    x = np.concatenate([rest[:, : rest.shape[1] // 2], rec_active.signal[:, a:a + short],
                        rest[:, rest.shape[1] // 2:]], axis=1)
    return x, short / fs


def test_a_short_burst_is_provisional_then_retracted(live_model, user_recordings):
    quiet = [r for r in user_recordings if not decode(live_model, r, r.n_samples)]
    assert quiet, "expected a rest recording of USER without events"
    rest = quiet[0]
    active = with_events(live_model, user_recordings, 1)[0]
    x, dur = _burst(rest, active, live_model)
    assert dur * 1000 < live_model.settings.config.min_duration_ms
    results = []
    for chunk in (1, 64, x.shape[1]):
        dec = LiveDecoder(live_model, subject=rest.subject, session=rest.session)
        out = []
        for a in range(0, x.shape[1], chunk):
            out += dec.process(x[:, a:a + chunk])
        out += dec.flush()
        results.append(_key(out))
        statuses = [d.status for d in out]
        assert "provisional" in statuses and "confirmed" not in statuses, statuses
        retracted = [d for d in out if d.status == "retracted"]
        assert len(retracted) == len({d.event for d in out}) >= 1
        r = retracted[-1]
        prov = [d for d in out if d.status == "provisional" and d.event == r.event]
        assert r.final and not r.open_end and r.n_groups == len(prov) == prov[-1].n_groups
        assert r.time_s > prov[-1].time_s  # retracted only once the gap outlasted merge_gap
        assert r.time_s < x.shape[1] / rest.fs  # before the stream ended
    assert results[0] == results[1] == results[2]


def test_state_dict_round_trip_mid_stream(live_model, user_recordings):
    rec = with_events(live_model, user_recordings, 1)[0]
    whole = decode(live_model, rec, 13)
    onset = next(d.onset_s for d in whole if d.status == "confirmed")
    fs = rec.fs
    for cut_s in (onset + 0.25, onset + 1.0):  # while provisional, then while confirmed
        cut = int(round(cut_s * fs))
        first = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
        before = first.process(rec.signal[:, :cut])
        state = pickle.loads(pickle.dumps(first.state_dict()))
        after_first = first.process(rec.signal[:, cut:]) + first.flush()
        second = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
        second.load_state_dict(state)
        after_second = second.process(rec.signal[:, cut:]) + second.flush()
        assert _key(after_second) == _key(after_first)
        assert _key(before + after_second) == _key(whole)
        assert after_second and after_second[-1].final


def test_a_stream_stopped_mid_event_reports_the_open_event(live_model, user_recordings):
    rec = with_events(live_model, user_recordings, 1)[0]
    whole = decode(live_model, rec, rec.n_samples)
    c = next(d for d in whole if d.status == "confirmed")
    cut = int(round((c.time_s + 0.35) * rec.fs))  # mid-event, after confirmation
    assert any(d.event == c.event and d.time_s > c.time_s + 0.35 for d in whole), "event ends too soon"
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    out = dec.process(rec.signal[:, :cut])
    assert not any(d.final for d in out if d.event == c.event)
    tail = dec.flush()
    assert tail and tail[-1].event == c.event and tail[-1].status == "confirmed"
    assert tail[-1].open_end and tail[-1].final and tail[-1].time_s == pytest.approx(cut / rec.fs)
    # stopped before confirmation: the provisional event is retracted, reported open
    p = next(d for d in whole if d.status == "provisional" and d.event == c.event)
    cut = int(round((p.time_s + 0.05) * rec.fs))
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    out = dec.process(rec.signal[:, :cut]) + dec.flush()
    assert out[-1].status == "retracted" and out[-1].open_end and out[-1].event == c.event


def test_decoder_refuses_wrong_channels_and_unknown_sessions(live_model, user_recordings):
    rec = user_recordings[0]
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    with pytest.raises(ValueError, match=r"\(8, n\)"):
        dec.process(rec.signal[:3])
    with pytest.raises(KeyError, match="Nobody"):
        LiveDecoder(live_model, subject="cote-allard/evaluation/Nobody", session="x")
    with pytest.raises(ValueError, match="positive"):
        LiveDecoder(live_model, floor=np.zeros(8))


def test_replay_counts_late_chunks_and_never_skips(corpus_cote_allard, user_recordings):
    rec = user_recordings[0]
    now = [0.0]
    slept = []

    def clock() -> float:
        return now[0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    src = ReplaySource(corpus_cote_allard, rec.recording_id, chunk=50, speed=1.0, clock=clock, sleep=sleep)
    parts = []
    for i, ch in enumerate(src):
        parts.append(ch.data)
        if i == 3:
            now[0] += 1.0  # the consumer stalls 1 s (4 chunk periods at 200 Hz)
    assert np.array_equal(np.concatenate(parts, axis=1), rec.signal)  # every sample, in order
    assert src.delivered == len(parts) == -(-rec.n_samples // 50)
    assert src.late >= 1 and src.max_lag_s > 0.25
    assert slept and all(s > 0 for s in slept)
    fast = ReplaySource(corpus_cote_allard, rec.recording_id, chunk=50, speed=0, clock=clock, sleep=sleep)
    n_slept = len(slept)
    assert sum(ch.data.shape[1] for ch in fast) == rec.n_samples and len(slept) == n_slept and fast.late == 0
    with pytest.raises(KeyError, match="no recording"):
        ReplaySource(corpus_cote_allard, "nope")


def test_cli_prints_one_json_object_per_line(model_dir, live_model, corpus_cote_allard, user_recordings):
    rec = with_events(live_model, user_recordings, 1)[0]
    out, err = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                     "--speed", "0", "--chunk", "16"])
    lines = out.splitlines()
    assert lines
    objs = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objs)
    want = decode(live_model, rec, 16)
    assert [(o["status"], o["event"], o["gesture"], o["n_groups"]) for o in objs] == [
        (d.status, d.event, d.gesture, d.n_groups) for d in want]
    assert {"probabilities", "time_s", "onset_s", "compute_ms", "open_end", "final"} <= set(objs[0])
    _, err = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:nope", "--speed", "0"],
                  code=1)
    assert "nope" in err and "expected a recording id" in err
    _, err = _cli(["live", "--model", str(model_dir), "--replay", "no-colon", "--speed", "0"], code=1)
    assert "CORPUS:RECORDING_ID" in err


def test_fast_forward_equals_the_plain_network(live_model, user_recordings):
    """The live forward pass (no mask, position terms looked up, per-channel pool as a reshape) equals pad_batch +
    the whole network module, the offline way, on real spans of 1 to span_groups groups and tiles of longer events."""
    rec = with_events(live_model, user_recordings, 1)[0]
    s = live_model.settings
    floor = np.asarray(live_model.info.calibration_of(rec.subject, rec.session).noise_floor)
    groups = tokenize_session([rec], s.config, notch=s.notch, floor=floor).groups
    n = len(groups)
    spans = [(0, b) for b in range(1, min(n, live_model.span) + 1)] + live_model.spans(n)
    assert n > live_model.span and len(spans) > live_model.span
    cal = live_model.info.calibration_of(rec.subject, rec.session)
    off = np.log(floor) - 2 * np.log(np.asarray(cal.scale))  # the amplitude path's reference (amp_head)
    for a, b in spans:
        np.testing.assert_allclose(live_model.span_log_probs(groups, a, b, off),
                                   live_model.reference_log_probs(groups, a, b, off), rtol=0, atol=1e-5)
    assert live_model.spans(n) == [(int(t[0]), int(t[-1]) + 1) for t in
                                   tile_spans([np.array([k]) for k in range(n)], live_model.span, live_model.stride)]


def _gesture(rec) -> str:
    """The gesture key of a one-repetition recording (its labelled samples)."""
    lab = rec.labels[rec.labels >= 0]
    return rec.gesture_keys[int(lab[0])] if lab.size else ""


CAL_S = 3.0


def test_calibration_period_floor_and_the_decisions_after_it(live_model, user_recordings):
    """A stream that starts with the user at rest (USER's session: its rest file, then its gestures): the floor
    estimated from the first CAL_S seconds is within a factor 5 of the stored session floor (below it); no decision is made
    during the period; after it the decisions are those of a decoder given that floor from the start, for any
    chunking, and through a state_dict round trip taken while calibrating."""
    recs = [r for r in user_recordings if r.session == user_recordings[0].session][:8]
    assert _gesture(recs[0]) == "rest" and recs[0].n_samples / recs[0].fs > CAL_S
    x = np.concatenate([r.signal for r in recs], axis=1)
    fs = recs[0].fs
    stored = np.asarray(live_model.info.calibration_of(recs[0].subject, recs[0].session).noise_floor)
    runs, scales = [], []
    for chunk in (7, 64, x.shape[1]):
        dec = LiveDecoder(live_model, calibration_s=CAL_S)
        assert dec.calibrating and dec.floor is None
        out = []
        for a in range(0, x.shape[1], chunk):
            out += dec.process(x[:, a:a + chunk])
        out += dec.flush()
        assert not dec.calibrating
        runs.append((dec.floor, _key(out)))
        scales.append(dec.scale)
    floor = runs[0][0]
    # the amplitude path's scale: the corpus's scale function on the same period (no stored session was named)
    from aemg.signal.scale import stream_scale

    np.testing.assert_allclose(scales[0], stream_scale([x[:, :int(round(CAL_S * fs))]], fs))
    assert all(np.array_equal(s, scales[0]) for s in scales)
    # the stored floor is the 10th percentile over the whole session, 6 of whose 7 files are held gestures, so it
    # sits above the rest level: measured 0.22-0.60 x on this session (docs/live.md)
    ratio = floor / stored
    assert (ratio > 0.2).all() and (ratio < 2.0).all(), ratio
    assert all(np.array_equal(f, floor) for f, _ in runs) and runs[0][1] == runs[1][1] == runs[2][1]
    calibrated = runs[0][1]
    assert calibrated and min(k[4] for k in calibrated) >= CAL_S  # k[4]: time_s
    assert {"provisional", "confirmed"} <= {k[0] for k in calibrated}
    given = _key(_decode_signal(live_model, x, floor, 64, scales[0]))
    assert [k for k in given if k[4] >= CAL_S] == calibrated
    # a state_dict taken while calibrating resumes exactly
    cut = int(round(1.0 * fs))
    first = LiveDecoder(live_model, calibration_s=CAL_S)
    assert first.process(x[:, :cut]) == []
    second = LiveDecoder(live_model, calibration_s=CAL_S)
    second.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))
    assert _key(second.process(x[:, cut:]) + second.flush()) == calibrated
    np.testing.assert_array_equal(second.floor, floor)
    # and one taken after it (mid-stream, the floor estimated) into a decoder that has not calibrated yet
    later = int(round((CAL_S + 4.0) * fs))
    first = LiveDecoder(live_model, calibration_s=CAL_S)
    before = first.process(x[:, :later])
    third = LiveDecoder(live_model, calibration_s=CAL_S)
    third.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))
    assert not third.calibrating and _key(before + third.process(x[:, later:]) + third.flush()) == calibrated
    with pytest.raises(ValueError, match="no floor"):
        LiveDecoder(live_model, calibration_s=CAL_S, floor=stored)
    short = LiveDecoder(live_model, calibration_s=CAL_S)  # a stream shorter than the period: nothing, no error
    assert short.process(x[:, :cut]) == [] and short.flush() == [] and short.floor is None


def _decode_signal(model, x: np.ndarray, floor: np.ndarray, chunk: int, scale: np.ndarray | None = None) -> list:
    dec = LiveDecoder(model, floor=floor, scale=scale)
    out = []
    for a in range(0, x.shape[1], chunk):
        out += dec.process(x[:, a:a + chunk])
    return out + dec.flush()


def test_cli_calibrate_s(model_dir, live_model, corpus_cote_allard, user_recordings):
    rec = user_recordings[0]
    out, _ = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                   "--speed", "0", "--chunk", "16", "--calibrate-s", "2"])
    dec = LiveDecoder(live_model, calibration_s=2.0)
    want = [d for a in range(0, rec.n_samples, 16) for d in dec.process(rec.signal[:, a:a + 16])] + dec.flush()
    objs = [json.loads(line) for line in out.splitlines()]
    assert [(o["status"], o["event"], o["n_groups"]) for o in objs] == [(d.status, d.event, d.n_groups) for d in want]
    assert all(o["time_s"] >= 2.0 for o in objs)
    _, err = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                   "--speed", "0", "--calibrate-s", "-1"], code=1)
    assert "--calibrate-s -1" in err and "expected a number of seconds >= 0" in err
