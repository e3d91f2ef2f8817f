"""The live decoder's sources besides the corpus replay: a real LSL outlet on this machine, raw files, resampling.

A real Côté-Allard recording of the evaluation subject (the one the session's tiny run is fine-tuned on, as in
tests/test_live.py) is pushed through a real LSL outlet (pylsl, in a thread) and decoded through
:class:`aemg.live.lsl.LSLSource`; the decisions are compared with the corpus replay of the same recording.
Discovery stays on this machine: ``tests/lsl_api.cfg`` (``ResolveScope = machine``, ``KnownPeers = 127.0.0.1``)
is given to liblsl through ``LSLAPICFG`` before pylsl is first used.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))

torch = pytest.importorskip("torch")
pylsl = pytest.importorskip("pylsl")

from aemg.cli import main  # noqa: E402
from aemg.live import LiveDecoder  # noqa: E402
from aemg.live.lsl import GapCounter, LSLSource, StreamError  # noqa: E402
from aemg.live.model import LiveModel  # noqa: E402
from aemg.live.rawfile import FileSource  # noqa: E402
from aemg.signal.resample import StreamResampler  # noqa: E402

QUIET = ["--log-level", "ERROR"]
USER = "cote-allard/evaluation/Female0"


def _cli(argv: list[str], code: int = 0, quiet: bool = True) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main((QUIET if quiet else []) + argv)
    assert rc == code, err.getvalue()
    return out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dir(cote_allard_live_model) -> Path:
    """The session's live-test model directory (conftest: the tiny run fine-tuned on USER's first repetitions)."""
    return cote_allard_live_model


@pytest.fixture(scope="module")
def live_model(model_dir) -> LiveModel:
    return LiveModel(model_dir)


def _decode(model, rec_or_signal, chunk: int, *, subject: str, session: str) -> list:
    x = rec_or_signal if isinstance(rec_or_signal, np.ndarray) else rec_or_signal.signal
    dec = LiveDecoder(model, subject=subject, session=session)
    out = []
    for a in range(0, x.shape[1], chunk):
        out += dec.process(x[:, a:a + chunk])
    return out + dec.flush()


@pytest.fixture(scope="module")
def recording(live_model, corpus_cote_allard):
    """USER's first recording (unscaled, as the decoder takes it) whose replay holds two confirmed events."""
    for rec in corpus_cote_allard.iter_recordings(subject=USER, scaled=False):
        dec = _decode(live_model, rec, 10_000, subject=rec.subject, session=rec.session)
        if len({d.event for d in dec if d.status == "confirmed"}) >= 2:
            return rec
    raise AssertionError("no recording of USER holds two confirmed events")


def _key(d) -> tuple:
    return (d.status, d.event, d.gesture, d.n_groups, d.time_s, d.onset_s, d.probabilities, d.open_end, d.final)


class Outlet:
    """A real LSL outlet streaming ``x`` ``(n, C)`` from a thread once an inlet has connected.

    ``speed`` 1 pushes at real time, 0 as fast as it can; ``stamps``: the samples' LSL timestamps relative to
    the first push (default ``k / fs``). The outlet lives until :meth:`close`.
    """

    def __init__(self, x: np.ndarray, fs: float, *, chunk: int = 16, speed: float = 0.0,
                 stamps: np.ndarray | None = None, name: str | None = None) -> None:
        self.name = name or f"aemg-test-{uuid.uuid4().hex[:10]}"
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.fs, self.chunk, self.speed = fs, chunk, speed
        self.stamps = np.arange(len(x)) / fs if stamps is None else np.asarray(stamps, np.float64)
        info = pylsl.StreamInfo(self.name, "EMG", self.x.shape[1], fs, pylsl.cf_float32, self.name)
        self.outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
        self.pushed = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if not self.outlet.wait_for_consumers(30.0):
                raise TimeoutError(f"no inlet connected to {self.name}")
            t0 = pylsl.local_clock()
            for a in range(0, len(self.x), self.chunk):
                b = min(a + self.chunk, len(self.x))
                if self.speed:
                    due = t0 + self.stamps[b - 1] / self.speed
                    time.sleep(max(0.0, due - pylsl.local_clock()))
                self.outlet.push_chunk(self.x[a:b], list(t0 + self.stamps[a:b]))
                self.pushed = b
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self) -> None:
        self._thread.join(60.0)
        assert not self._thread.is_alive(), "the outlet thread did not finish"
        del self.outlet
        if self.error is not None:
            raise self.error


# ---------------------------------------------------------------- the streaming resampler (no LSL)
@pytest.mark.parametrize("fs_in,fs_out", [(1000.0, 200.0), (250.0, 200.0), (200.0, 1000.0), (1926.0, 200.0)])
def test_stream_resampler_is_chunk_independent_and_equals_resample_poly_delayed(fs_in, fs_out):
    n = int(4 * fs_in)
    t = np.arange(n) / fs_in
    x = np.stack([30 * np.sin(2 * np.pi * 11.0 * t), 20 * np.sin(2 * np.pi * 37.0 * t + 1.0) + 5.0])
    whole = StreamResampler(fs_in, fs_out, 2).process(x)
    for chunk in (1, 7, 64):
        r = StreamResampler(fs_in, fs_out, 2)
        parts = [r.process(x[:, a:a + chunk]) for a in range(0, n, chunk)]
        assert np.array_equal(np.concatenate(parts, axis=1), whole), chunk
        assert r.n_out == whole.shape[1]
    r = StreamResampler(fs_in, fs_out, 2)
    ref = resample_poly(x, r.up, r.down, axis=1)
    assert whole.shape == ref.shape  # ceil(n * up / down) samples, as resample_poly
    d, edge = r.delay, int(0.5 * fs_out)  # away from the edges (half a second)
    np.testing.assert_allclose(whole[:, d + edge:-edge], ref[:, edge:-edge - d], atol=1e-9)
    assert r.delay_s == pytest.approx(d / fs_out) and 0 < r.delay_s <= 0.07
    # the tone's amplitude survives (both tones lie below the lower Nyquist frequency)
    assert np.abs(whole[0, d + edge:-edge]).max() == pytest.approx(30, rel=0.02)


def test_stream_resampler_state_round_trip_and_identity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 900))
    a = StreamResampler(1000.0, 200.0, 3)
    first = a.process(x[:, :333])
    b = StreamResampler(1000.0, 200.0, 3)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(np.concatenate([first, b.process(x[:, 333:])], axis=1),
                          StreamResampler(1000.0, 200.0, 3).process(x))
    same = StreamResampler(200.0, 200.0, 3)
    assert same.identity and same.delay == 0 and np.array_equal(same.process(x), x)
    with pytest.raises(ValueError, match=r"\(3, n\)"):
        a.process(x[:2])


def test_gap_counter_counts_missing_samples_across_chunks():
    fs = 200.0
    ts = np.arange(400) / fs
    ts = np.concatenate([ts[:150], ts[170:]])  # 20 samples missing before the 151st
    ts = ts + np.random.default_rng(1).uniform(-0.2, 0.2, ts.size) / fs  # jitter within the tolerance
    g = GapCounter(fs)
    for a in range(0, ts.size, 7):
        g.update(ts[a:a + 7])
    assert g.dropped == 20 and len(g.gaps) == 1 and g.gaps[0].index == 150 and g.seen == 380


# ---------------------------------------------------------------- a real LSL outlet
def _summary(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "aemg.live")


def test_lsl_stream_decodes_like_the_replay(model_dir, corpus_cote_allard, recording, caplog):
    """The recording at real-time pace through a real outlet and ``aemg live --lsl``: the same decisions (all
    fields but compute time) as ``aemg live --replay`` of the corpus recording: the samples are the same
    float32 values, and the decoder's decisions do not depend on how the stream was chunked."""
    rec = recording
    who = ["--subject", rec.subject, "--session", rec.session]
    replay, _ = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                      "--speed", "0", *who])
    assert np.array_equal(rec.signal.astype(np.float32), rec.signal)  # Myo counts: exact in float32
    out = Outlet(rec.signal.T, rec.fs, chunk=8, speed=1.0)
    with caplog.at_level(logging.INFO, logger="aemg.live"):
        lsl_out, _ = _cli(["live", "--model", str(model_dir), "--lsl", out.name, "--timeout", "10",
                           "--duration", str(rec.n_samples / rec.fs), "--idle-timeout", "10", *who])
    out.close()

    def strip(text: str) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "compute_ms"} for line in text.splitlines()]

    want = strip(replay)
    assert {"provisional", "confirmed"} <= {d["status"] for d in want}
    assert strip(lsl_out) == want
    summary = _summary(caplog)
    assert f"LSL stream {out.name!r}: {rec.n_samples} samples at 200 Hz" in summary
    assert "0 samples dropped in 0 gaps" in summary and f"{rec.n_samples / rec.fs:g} s of stream received" in summary


def test_lsl_stream_with_another_channel_count_is_refused(model_dir, recording):
    name = f"aemg-test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 3, recording.fs, pylsl.cf_float32, name))
    outlet.push_chunk(np.ascontiguousarray(recording.signal[:3, :50].T, dtype=np.float32))
    _, err = _cli(["live", "--model", str(model_dir), "--lsl", name, "--timeout", "10"], code=1)
    assert name in err and "expected 8 channels" in err and "found 3 channels" in err
    _, err = _cli(["live", "--model", str(model_dir), "--lsl", name, "--fs", "200"], code=1)
    assert "--fs only with a raw" in err
    del outlet
    missing = f"aemg-none-{uuid.uuid4().hex[:8]}"
    _, err = _cli(["live", "--model", str(model_dir), "--lsl", missing, "--timeout", "0.5"], code=1)
    assert missing in err and "found none within 0.5 s" in err


@pytest.mark.parametrize("fs_stream", [1000.0, 250.0])
def test_lsl_stream_at_another_rate_is_resampled_and_decodes(model_dir, recording, fs_stream, tmp_path):
    """The recording resampled offline to 1000 / 250 Hz, streamed as fast as the outlet can: the source resamples
    it back to 200 Hz causally, and it decodes to the replay's events: the same decisions (status, event, groups,
    final) with onsets ``delay_s`` later and probabilities within 0.1. Not bit for bit: the round trip through two
    anti-aliasing filters (to the stream's rate offline, back causally) attenuates the band near 100 Hz, and the
    test's tiny, barely trained model gives near-uniform probabilities (about 0.26 at most over 7 classes) whose
    argmax such a change can flip, so gestures are not compared; the model's blended probe is left out here (an LDA
    fitted on 7 trials gives near one-hot span probabilities, which such a flip moves by the blend's weight, 0.3).
    A raw file of the same samples at the same rate gives exactly the LSL source's decisions."""
    live_model = LiveModel(model_dir)
    live_model.probe = None  # the fine-tuned network alone
    rec = recording
    x = resample_poly(rec.signal, int(fs_stream), int(rec.fs), axis=1).astype(np.float32)  # (C, n) at fs_stream
    out = Outlet(x.T, fs_stream, chunk=50, speed=0.0)
    src = LSLSource(out.name, fs=rec.fs, n_channels=rec.n_channels, timeout=10, chunk=37,
                    duration_s=x.shape[1] / fs_stream, idle_timeout_s=10)
    assert src.resampled and src.fs == rec.fs and src.delay_s == pytest.approx(0.05)
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    lsl = []
    n_out = 0
    for ch in src:
        assert ch.start == n_out and ch.data.shape[0] == rec.n_channels
        n_out += ch.data.shape[1]
        lsl += dec.process(ch.data)
    lsl += dec.flush()
    out.close()
    assert src.received == x.shape[1] and src.dropped == 0 and n_out == rec.n_samples
    replay = _decode(live_model, rec, 64, subject=rec.subject, session=rec.session)
    assert {"confirmed", "retracted"} <= {d.status for d in replay}

    def shape(ds):
        return [(d.status, d.event, d.n_groups, d.final, d.open_end) for d in ds]

    assert shape(lsl) == shape(replay)
    for got, want in zip(lsl, replay):
        if want.onset_s > 0.5:  # an event on from the stream's first sample starts with the filters' warm-up
            assert got.onset_s - want.onset_s == pytest.approx(src.delay_s, abs=1.5 / rec.fs), (got, want)
        assert np.abs(np.subtract(got.probabilities, want.probabilities)).max() < 0.1
    # the same samples from a raw file (float32 values, one row per sample) at the same rate: identical decisions
    path = tmp_path / "take.npy"
    np.save(path, x.T)
    fsrc = FileSource(path, fs=fs_stream, model_fs=rec.fs, n_channels=rec.n_channels, chunk=64, speed=0)
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    from_file = [d for ch in fsrc for d in dec.process(ch.data)] + dec.flush()
    assert [_key(d) for d in from_file] == [_key(d) for d in lsl]


def test_lsl_dropped_samples_are_counted_and_reported(live_model, recording, caplog):
    """20 samples never sent (the outlet's timestamps jump over them): counted, logged with their stream time."""
    rec = recording
    cut, gap = 400, 20
    keep = np.r_[0:cut, cut + gap:rec.n_samples]
    out = Outlet(rec.signal[:, keep].T, rec.fs, chunk=25, stamps=keep / rec.fs)
    src = LSLSource(out.name, fs=rec.fs, n_channels=rec.n_channels, timeout=10, duration_s=len(keep) / rec.fs,
                    idle_timeout_s=10)
    dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session)
    n = 0
    with caplog.at_level(logging.WARNING, logger="aemg.live"):
        for ch in src:
            dec.process(ch.data)
            n += ch.data.shape[1]
    out.close()
    assert n == len(keep) == src.received
    assert src.dropped == gap and len(src.gap_log) == 1 and src.gap_log[0].index == cut
    assert any(f"{gap} samples missing before stream sample {cut}" in r.getMessage() for r in caplog.records)
    assert f"{gap} samples dropped in 1 gaps" in src.summary()


def test_lsl_source_refuses_an_irregular_stream(recording):
    name = f"aemg-test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 8, pylsl.IRREGULAR_RATE, pylsl.cf_float32, name))
    with pytest.raises(StreamError, match="irregular rate"):
        LSLSource(name, fs=200.0, n_channels=8, timeout=10)
    del outlet


# ---------------------------------------------------------------- raw files
def test_raw_file_replay_equals_the_corpus_replay(model_dir, corpus_cote_allard, recording, tmp_path, caplog):
    rec = recording
    who = ["--subject", rec.subject, "--session", rec.session]
    replay, _ = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                      "--speed", "0", *who])
    want = [{k: v for k, v in json.loads(line).items() if k != "compute_ms"} for line in replay.splitlines()]
    npy, csv = tmp_path / "take.npy", tmp_path / "take.csv"
    np.save(npy, rec.signal.T)  # (n_samples, n_channels)
    np.savetxt(csv, rec.signal.T.astype(np.float64), delimiter=",", fmt="%.17g")
    for path in (npy, csv):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="aemg.live"):
            got, _ = _cli(["live", "--model", str(model_dir), "--replay", str(path), "--fs", str(rec.fs), "--speed",
                           "0", "--chunk", "7", *who])
        assert [{k: v for k, v in json.loads(line).items() if k != "compute_ms"} for line in got.splitlines()] == want
        assert f"{path}: {rec.n_samples} samples at 200 Hz" in _summary(caplog)
    # refusals: a transposed array (both counts named), no --fs, --fs with a corpus replay
    bad = tmp_path / "transposed.npy"
    np.save(bad, rec.signal)
    _, err = _cli(["live", "--model", str(model_dir), "--replay", str(bad), "--fs", "200", *who], code=1)
    assert "8 channels" in err and f"found {rec.n_samples} channels" in err and "transposed" in err
    _, err = _cli(["live", "--model", str(model_dir), "--replay", str(npy), *who], code=1)
    assert "--fs HZ" in err
    _, err = _cli(["live", "--model", str(model_dir), "--replay", f"{corpus_cote_allard.path}:{rec.recording_id}",
                   "--fs", "200"], code=1)
    assert "--fs only with a raw" in err
