"""aemg.signal: resampling, DC removal, robust scale, causal filters, mains detection, channel QC.

Synthetic cases check each definition exactly; real 3DC files (read directly with numpy, 1000 Hz,
10 columns) check the mains detector and the QC flags against the dataset's documented quirks.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import sosfilt, sosfilt_zi, sosfreqz

from aemg.layouts import get_layout
from aemg.recording import Recording
from aemg.signal import (
    DEFAULT_FS,
    CausalSOS,
    apply_causal_filter,
    apply_scale,
    bandpass_sos,
    channel_qc,
    detect_mains,
    divide_by_scale,
    harmonize_session,
    make_causal_filter,
    notch_sos,
    remove_dc,
    resample,
    resolve_mains,
    robust_scale,
    session_scale,
)


def _rec(signal: np.ndarray, fs: float, **kw) -> Recording:
    signal = np.ascontiguousarray(np.atleast_2d(signal), dtype=np.float32)
    return Recording(signal=signal, fs=fs, units="adc", electrodes=get_layout(f"unknown{signal.shape[0]}").electrodes,
                     dataset="test", subject="test/a", session="s", **kw)


def _tone(freq: float, fs: float, seconds: float, amp: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    return amp * np.sin(2 * np.pi * freq * t + phase)


@functools.cache
def _read_3dc(root: Path, participant: int, session: str, rep: int, gesture: int) -> np.ndarray:
    """(10, T) float64 raw ADC counts of one 3DC EMG file (comma-separated ints, no header) under
    ``root`` (the real data folder, fixture ``real_root``)."""
    path = root / "3dc" / f"Participant{participant}" / session / "EMG" / f"3dc_EMG_gesture_{rep}_{gesture}.txt"
    values = np.array(path.read_text().replace("\n", ",").split(","), dtype=np.float64)
    return values.reshape(-1, 10).T


# ---------------------------------------------------------------- resampling


def test_default_rate_is_200_hz_and_the_package_exports_the_contract():
    import aemg.signal

    assert DEFAULT_FS == 200.0
    for name in ("resample", "remove_dc", "detect_mains", "CausalSOS", "bandpass_sos", "notch_sos",
                 "make_causal_filter", "channel_qc", "robust_scale"):
        assert name in aemg.signal.__all__ and callable(getattr(aemg.signal, name))
    from aemg.signal import holds

    assert aemg.signal.detect_sample_and_hold is holds.detect_sample_and_hold
    assert aemg.signal.rebuild_sample_and_hold is holds.rebuild_sample_and_hold
    with pytest.raises(AttributeError):
        aemg.signal.no_such_name  # noqa: B018
    from aemg.signal import harmonize

    for name in ("harmonize_session", "native_rate", "resolve_mains", "detect_session_mains"):
        assert name in aemg.signal.__all__ and getattr(aemg.signal, name) is getattr(harmonize, name)


def test_signal_imports_nothing_from_a_later_stage():
    """aemg.signal sits before the corpus store: a live decoder calls it without the store or a model."""
    import aemg.signal

    later = ("aemg.corpus", "aemg.tokens", "aemg.model", "aemg.train", "aemg.cli", "aemg.datasets")
    for path in sorted(Path(aemg.signal.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(later), f"{path.name} imports {name}"


def test_resample_keeps_frequency_and_amplitude_of_a_sine():
    fs_in, f0, amp = 1000.0, 23.0, 3.0
    rec = _rec(_tone(f0, fs_in, 4.0, amp), fs_in)
    out = resample(rec, 200.0)
    assert out.fs == 200.0 and out.n_samples == 800
    y = out.signal[0, 100:-100].astype(np.float64)  # away from the edges
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / out.fs)
    assert abs(freqs[np.argmax(spec)] - f0) <= out.fs / len(y)
    expected = _tone(f0, 200.0, 4.0, amp)[100:-100]
    assert np.sqrt(np.mean(y**2)) == pytest.approx(amp / np.sqrt(2), rel=0.01)
    assert np.max(np.abs(y - expected)) < 0.01 * amp  # same phase: no delay either


def test_resample_attenuates_content_above_the_new_nyquist():
    rec = _rec(_tone(300.0, 1000.0, 4.0), 1000.0)
    out = resample(rec, 200.0)
    y = out.signal[0, 40:-40].astype(np.float64)
    energy_in = np.mean(rec.signal.astype(np.float64) ** 2)
    assert np.mean(y**2) < 0.01 * energy_in


def test_resample_maps_labels_repetition_tracks_by_nearest_sample():
    n = 1000
    labels = np.repeat(np.array([-1, 0, 1, 0, -1], np.int32), 200)
    reps = np.repeat(np.array([-1, 0, 0, 1, -1], np.int32), 200)
    time_ms = np.arange(n, dtype=np.float64)
    rec = _rec(np.zeros((2, n)), 1000.0, labels=labels, repetition=reps, label_names=("rest", "fist"),
               gesture_keys=("rest", "hand_close"), tracks={"time_ms": time_ms, "stimulus": labels.copy()})
    out = resample(rec, 200.0)
    assert out.n_samples == 200
    assert out.labels.dtype == np.int32 and out.repetition.dtype == np.int32
    assert out.tracks["stimulus"].dtype == np.int32 and out.tracks["time_ms"].dtype == np.float64
    assert np.array_equal(out.labels, labels[::5]) and np.array_equal(out.repetition, reps[::5])
    assert np.array_equal(out.tracks["time_ms"], time_ms[::5])
    assert out.attrs["fs_original"] == 1000.0 and rec.attrs == {}
    assert len(out.processing) == 1 and out.processing[0].startswith("resample(1000 Hz -> 200 Hz")
    # trials keep their boundaries (in time) after resampling
    assert [(a * 5, b * 5, lab, rep) for a, b, lab, rep in out.trials()] == rec.trials()


def test_resample_nearest_index_for_a_non_integer_ratio():
    n = 959
    labels = (np.arange(n) % 7).astype(np.int32)
    rec = _rec(np.zeros((1, n)), 959.0, labels=labels, label_names=tuple("abcdefg"), gesture_keys=tuple("abcdefg"))
    out = resample(rec, 200.0)
    t_out = np.arange(out.n_samples) / 200.0
    nearest = np.minimum(np.floor(t_out * 959.0 + 0.5).astype(int), n - 1)
    assert np.array_equal(out.labels, labels[nearest])
    assert out.fs == 200.0 and out.n_samples == int(np.ceil(n * 200 / 959))


def test_resample_keeps_an_existing_fs_original_and_is_a_no_op_at_the_same_rate():
    rec = _rec(np.ones((2, 50)), 200.0, attrs={"fs_original": 1000.0})
    assert resample(rec, 200.0) is rec
    bare = _rec(np.ones((2, 50)), 200.0)
    same = resample(bare, 200.0)
    assert same.attrs["fs_original"] == 200.0 and same.processing == ()
    up = resample(rec.replace(fs=100.0), 200.0)
    assert up.attrs["fs_original"] == 1000.0 and up.fs == 200.0


def test_resample_has_no_edge_transient_from_a_dc_offset():
    rec = _rec(np.full((1, 2000), 500.0) + _tone(40.0, 1000.0, 2.0), 1000.0)
    out = resample(rec, 200.0)
    assert np.all(np.abs(out.signal - 500.0) < 1.5)


# ---------------------------------------------------------------- DC removal and scale


def test_remove_dc_median_and_mean():
    x = np.vstack([_tone(50.0, 1000.0, 1.0) + 7.0, np.r_[np.zeros(999), 1000.0] - 3.0])
    rec = _rec(x, 1000.0)
    med = remove_dc(rec)
    assert np.abs(np.median(med.signal, axis=1)).max() < 1e-4
    assert med.signal[1, 0] == 0.0  # the spike does not move the median
    assert med.processing == ("remove_dc(median)",)
    mean = remove_dc(rec, "mean")
    assert np.abs(mean.signal.astype(np.float64).mean(axis=1)).max() < 1e-3
    with pytest.raises(ValueError):
        remove_dc(rec, "mode")  # type: ignore[arg-type]


def _session(rng: np.random.Generator, fs: float = 200.0, seconds: float = 30.0) -> np.ndarray:
    """Rest with bursts of contraction, 3 channels of different gain."""
    n = int(seconds * fs)
    envelope = 0.05 + (np.sin(2 * np.pi * 0.2 * np.arange(n) / fs) > 0.3)
    gains = np.array([1.0, 4.0, 0.25])[:, None]
    return gains * envelope * rng.standard_normal((3, n))


def test_robust_scale_is_the_same_whatever_the_file_split():
    rng = np.random.default_rng(0)
    x = _session(rng)
    whole = robust_scale([_rec(x, 200.0)])
    for cuts in ([1000, 2500], sorted(rng.choice(x.shape[1], 9, replace=False)), [7, 8, 9, 3001]):
        pieces = [_rec(p, 200.0) for p in np.split(x, cuts, axis=1)]
        assert np.allclose(robust_scale(pieces), whole, rtol=1e-6)
    assert whole.shape == (3,) and whole.dtype == np.float64
    # the channels' gains 1 : 4 : 0.25 come out of the scale
    assert np.allclose(whole / whole[0], [1.0, 4.0, 0.25], rtol=0.15)


def test_robust_scale_scales_with_the_signal_and_ignores_dc_and_labels():
    rng = np.random.default_rng(1)
    x = _session(rng)
    base = robust_scale([_rec(x, 200.0)])
    assert np.allclose(robust_scale([_rec(3.5 * x, 200.0)]), 3.5 * base, rtol=1e-5)
    assert np.allclose(robust_scale([_rec(x + 40.0, 200.0)]), base, rtol=1e-3)
    labelled = _rec(x, 200.0, labels=np.zeros(x.shape[1], np.int32), label_names=("a",), gesture_keys=("rest",))
    assert np.array_equal(robust_scale([labelled]), base)


def test_robust_scale_guards_flat_channels_and_mismatches():
    x = np.vstack([np.random.default_rng(2).standard_normal((2, 400)), np.zeros((1, 400))])
    scale = robust_scale([_rec(x, 200.0)])
    assert np.all(np.isfinite(scale)) and scale[2] == pytest.approx(np.median(scale[:2]))
    assert np.all(np.isfinite(apply_scale(_rec(x, 200.0), scale).signal))
    with pytest.raises(ValueError):
        robust_scale([_rec(x, 200.0), _rec(x, 1000.0)])
    with pytest.raises(ValueError):
        robust_scale([])
    short = robust_scale([_rec(x[:, :5], 200.0)])  # shorter than one 100 ms window
    assert short.shape == (3,) and np.all(short > 0)


def test_apply_scale_divides_each_channel():
    x = np.random.default_rng(3).standard_normal((3, 600))
    rec = _rec(x, 200.0)
    out = apply_scale(rec, np.array([1.0, 2.0, 4.0]))
    assert np.allclose(out.signal, x / np.array([[1.0], [2.0], [4.0]]), atol=1e-6)
    assert out.processing == ("scale(robust)",)
    with pytest.raises(ValueError):
        apply_scale(rec, np.array([1.0, 0.0, 1.0]))


def test_divide_by_scale_is_the_one_rule_and_leaves_bad_channels_as_they_are():
    x = np.random.default_rng(4).standard_normal((4, 300)).astype(np.float32)
    scale = np.array([2.0, 0.0, np.nan, -1.0])
    y = divide_by_scale(x, scale)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert np.array_equal(y[0], (x[0].astype(np.float64) / 2.0).astype(np.float32))
    assert np.array_equal(y[1:], x[1:])  # zero, nan and negative scales: left as they are
    good = np.array([1.0, 2.0, 4.0, 0.5])
    assert np.array_equal(apply_scale(_rec(x, 200.0), good).signal, divide_by_scale(x, good))
    with pytest.raises(ValueError):
        divide_by_scale(x, np.ones(3))


# ---------------------------------------------------------------- causal filters


def _gain_db(sos: np.ndarray, fs: float, f: float) -> float:
    _, h = sosfreqz(sos, worN=[f], fs=fs)
    return float(20 * np.log10(np.abs(h[0]) + 1e-300))


def test_bandpass_defaults_to_a_20_hz_high_pass():
    sos = bandpass_sos(200.0)
    assert sos.shape == (2, 6)
    assert _gain_db(sos, 200.0, 20.0) == pytest.approx(-3.01, abs=0.05)
    assert _gain_db(sos, 200.0, 2.0) < -70 and abs(_gain_db(sos, 200.0, 80.0)) < 0.1
    assert np.array_equal(bandpass_sos(200.0, 20.0, 450.0), sos)  # low-pass above Nyquist: skipped
    band = bandpass_sos(1000.0, 20.0, 450.0)
    assert band.shape == (4, 6) and _gain_db(band, 1000.0, 450.0) == pytest.approx(-3.01, abs=0.05)
    assert np.array_equal(bandpass_sos(200.0, None, None), [[1, 0, 0, 1, 0, 0]])
    for bad in ((200.0, 0.0), (200.0, 100.0), (0.0, 20.0)):
        with pytest.raises(ValueError):
            bandpass_sos(*bad)


def test_make_causal_filter_is_the_band_pass_then_the_notch_designed_once():
    f = make_causal_filter(1000.0, 3, 60.0, low=20.0, order=4)
    assert np.array_equal(f.sos, np.vstack([bandpass_sos(1000.0, 20.0, None, 4), notch_sos(1000.0, 60.0)]))
    assert np.array_equal(make_causal_filter(200.0, 2).sos, bandpass_sos(200.0))
    assert np.array_equal(make_causal_filter(200.0, 2, 50.0, low=None).sos, notch_sos(200.0, 50.0))
    g = make_causal_filter(1000.0, 5, 60.0, low=20.0, order=4)
    assert g.n_channels == 5 and np.array_equal(g.sos, f.sos)  # the cached design, its own state


def test_notch_covers_mains_and_harmonics_below_nyquist():
    assert notch_sos(200.0, 60.0).shape == (1, 6)  # 120 Hz is above Nyquist
    assert notch_sos(200.0, 50.0).shape == (1, 6)  # 100 Hz is Nyquist itself
    sos = notch_sos(1000.0, 60.0)
    assert sos.shape == (8, 6)  # 60 .. 480 Hz
    for k in range(1, 9):
        assert _gain_db(sos, 1000.0, 60.0 * k) < -40
    assert abs(_gain_db(sos, 1000.0, 90.0)) < 0.5 and abs(_gain_db(sos, 1000.0, 30.0)) < 0.5
    assert notch_sos(1000.0, 50.0, harmonics=False).shape == (1, 6)


def test_causal_filter_is_causal_and_removes_mains():
    fs = 1000.0
    f = make_causal_filter(fs, 2, mains_hz=60.0)
    x = np.vstack([_tone(60.0, fs, 3.0, 100.0), _tone(60.0, fs, 3.0, 100.0) + _tone(150.0, fs, 3.0)])
    y = f.process(x)
    assert np.abs(y[0, 2000:]).max() < 1.0  # 60 Hz (100 units) down by > 40 dB
    assert np.sqrt(np.mean(y[1, 2000:] ** 2)) == pytest.approx(1 / np.sqrt(2), rel=0.05)
    impulse = np.zeros((2, 50))
    impulse[:, 20] = 1.0
    f.reset(np.zeros(2))
    assert np.all(f.process(impulse)[:, :20] == 0)  # nothing before the input


def _chunks(x: np.ndarray, sizes) -> list[np.ndarray]:
    cuts = np.cumsum(sizes)
    return np.split(x, cuts[cuts < x.shape[1]], axis=1)


@pytest.mark.parametrize("how", ["1", "7", "64", "random"])
def test_causal_filter_gives_the_same_output_whole_and_in_chunks(how):
    rng = np.random.default_rng(4)
    fs, n = 1000.0, 3000
    x = (rng.standard_normal((4, n)) * 30 + np.array([[500.0], [-20.0], [0.0], [3.0]])).astype(np.float32)
    x += _tone(60.0, fs, n / fs, 50.0).astype(np.float32)
    sizes = rng.integers(0, 300, 100) if how == "random" else np.full(n, int(how))
    whole_f = make_causal_filter(fs, 4, mains_hz=60.0, high=400.0)
    chunk_f = make_causal_filter(fs, 4, mains_hz=60.0, high=400.0)
    whole = whole_f.process(x)
    pieces = [chunk_f.process(c) for c in _chunks(x, sizes)]
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.dtype == np.float32 and whole.dtype == np.float32
    assert np.allclose(streamed, whole, rtol=1e-5, atol=1e-4)
    assert np.allclose(chunk_f.state_dict()["zi"], whole_f.state_dict()["zi"], rtol=1e-9, atol=1e-9)


def test_float64_state_keeps_chunked_output_exact():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5000)) * 1e3 + 1e4
    whole = make_causal_filter(1000.0, 2, mains_hz=50.0).process(x)
    f = make_causal_filter(1000.0, 2, mains_hz=50.0)
    streamed = np.concatenate([f.process(c) for c in _chunks(x, rng.integers(1, 50, 400))], axis=1)
    assert streamed.dtype == np.float64
    assert np.max(np.abs(streamed - whole)) < 1e-9


@pytest.mark.parametrize("n_channels", [1, 2, 3, 8, 10])
def test_causal_sos_is_scipy_float64_bit_for_bit_whole_and_in_chunks(n_channels):
    # channels are filtered in pairs as one complex signal: each must still get exactly the numbers
    # of a real float64 sosfilt, and chunks of any size must not change a bit
    rng = np.random.default_rng(n_channels)
    fs, n = 1000.0, 2000
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal((n_channels, n)) * 30 + rng.uniform(-500, 500, (n_channels, 1))).astype(dtype)
        f = make_causal_filter(fs, n_channels, mains_hz=60.0, high=400.0)
        whole = f.process(x)
        zi0 = sosfilt_zi(f.sos)[:, None, :] * x[:, 0].astype(np.float64)[None, :, None]
        ref, zf = sosfilt(f.sos, x.astype(np.float64), zi=zi0)
        assert whole.dtype == dtype
        np.testing.assert_array_equal(whole, ref.astype(dtype))
        np.testing.assert_array_equal(f.state_dict()["zi"], zf)
        for size in (1, 7, 64):
            g = make_causal_filter(fs, n_channels, mains_hz=60.0, high=400.0)
            streamed = np.concatenate([g.process(c) for c in _chunks(x, np.full(n, size))], axis=1)
            np.testing.assert_array_equal(streamed, whole)
            np.testing.assert_array_equal(g.state_dict()["zi"], f.state_dict()["zi"])


def test_causal_sos_writes_into_out():
    x = np.random.default_rng(2).standard_normal((3, 100)).astype(np.float32)
    buf = np.zeros((3, 102), np.float32)
    y = CausalSOS(bandpass_sos(200.0), 3).process(x, out=buf[:, 2:])
    assert np.shares_memory(y, buf) and not buf[:, :2].any()
    np.testing.assert_array_equal(buf[:, 2:], CausalSOS(bandpass_sos(200.0), 3).process(x))
    with pytest.raises(ValueError):
        CausalSOS(bandpass_sos(200.0), 3).process(x, out=buf)


def test_apply_causal_filter_uses_the_recording_mains_and_matches_streaming():
    fs = 1000.0
    x = 100 * _tone(60.0, fs, 3.0) + np.random.default_rng(10).standard_normal(3000) + 300.0
    rec = _rec(np.vstack([x, -x]), fs, mains_hz=60.0)
    out = apply_causal_filter(rec)
    assert out.processing == ("causal_filter(hp 20 Hz, order 4, notch 60 Hz x8 width 5 Hz)",)
    assert np.abs(out.signal[:, 1500:]).max() < 6.0  # 60 Hz at 100 units and the 300 offset are gone
    live = make_causal_filter(fs, 2, mains_hz=60.0)
    streamed = np.concatenate([live.process(c) for c in _chunks(rec.signal, [1, 7, 64] * 200)], axis=1)
    assert np.allclose(streamed, out.signal, atol=1e-4)
    no_notch = apply_causal_filter(rec, notch=False, high=400.0)
    assert no_notch.processing == ("causal_filter(hp 20 Hz, lp 400 Hz, order 4)",)
    assert apply_causal_filter(rec.replace(mains_hz=None)).processing[0] == "causal_filter(hp 20 Hz, order 4)"


def test_reset_settles_on_the_first_sample_so_dc_does_not_ring():
    fs = 200.0
    x = np.full((2, 400), [[1000.0], [-250.0]])
    settled = CausalSOS(bandpass_sos(fs), 2).process(x)  # settles on x[:, 0] by default
    assert np.abs(settled).max() < 1e-6
    cold = CausalSOS(bandpass_sos(fs), 2)
    cold.reset(np.zeros(2))
    assert np.abs(cold.process(x)).max() > 100  # scipy's zero state rings
    explicit = CausalSOS(bandpass_sos(fs), 2)
    explicit.reset(x[:, 0])
    assert np.array_equal(explicit.process(x), settled)
    # matches scipy's sosfilt with zi = sosfilt_zi * x0
    from scipy.signal import sosfilt_zi
    sos = bandpass_sos(fs)
    ref, _ = sosfilt(sos, x, zi=sosfilt_zi(sos)[:, None, :] * x[None, :, 0, None])
    assert np.allclose(settled, ref, atol=1e-9)


def test_state_dict_round_trip_resumes_exactly():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 500))
    f = make_causal_filter(1000.0, 3, mains_hz=50.0)
    first = f.process(x[:, :200])
    state = f.state_dict()
    rest = f.process(x[:, 200:])
    g = make_causal_filter(1000.0, 3, mains_hz=50.0)
    g.load_state_dict(state)
    assert np.array_equal(g.process(x[:, 200:]), rest)
    state["zi"][:] = 0  # the saved dict is a copy
    assert np.array_equal(CausalSOS(f.sos, 3).process(x), np.concatenate([first, rest], axis=1))
    with pytest.raises(ValueError, match="different filter"):
        make_causal_filter(1000.0, 3, mains_hz=60.0).load_state_dict(f.state_dict())
    with pytest.raises(ValueError):
        CausalSOS(f.sos, 2).load_state_dict(f.state_dict())


def test_causal_sos_checks_shapes_and_handles_empty_chunks():
    f = CausalSOS(bandpass_sos(200.0), 2)
    with pytest.raises(ValueError):
        f.process(np.zeros((3, 10)))
    with pytest.raises(ValueError):
        f.process(np.zeros(10))
    with pytest.raises(ValueError):
        CausalSOS(np.zeros((2, 5)), 2)
    assert f.process(np.zeros((2, 0), np.float32)).shape == (2, 0)
    assert f.process(np.zeros((2, 4))).dtype == np.float64
    assert "n_sections=2" in repr(f)


# ---------------------------------------------------------------- mains detection


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_detect_mains_on_synthetic_emg(mains):
    rng = np.random.default_rng(int(mains))
    fs = 1000.0
    emg = rng.standard_normal((4, 10_000))
    # the line drifts a little (a device clock error) and is weaker than the EMG in total power
    x = emg + 0.3 * _tone(mains * 1.008, fs, 10.0)
    assert detect_mains(x, fs) == mains
    assert detect_mains(x[0], fs) == mains  # a single channel, (T,)
    assert detect_mains(resample(_rec(x, fs), 200.0).signal, 200.0) == mains


def test_detect_mains_says_none_without_a_line_or_data():
    rng = np.random.default_rng(7)
    assert detect_mains(rng.standard_normal((4, 10_000)), 1000.0) is None
    assert detect_mains(np.zeros((2, 5000)), 1000.0) is None
    assert detect_mains(rng.standard_normal((2, 100)), 1000.0) is None  # 0.1 s: too short to tell
    assert detect_mains(rng.standard_normal((2, 1000)), 100.0) is None  # both candidates at/above Nyquist


def test_detect_mains_finds_60_hz_in_real_3dc_data(real_root: Path):
    p1 = [_read_3dc(real_root, 1, "train", rep, g) for rep in range(2) for g in range(11)]
    assert detect_mains(np.concatenate(p1, axis=1), 1000.0) == 60.0
    per_file = [detect_mains(x, 1000.0) for x in p1]
    assert per_file.count(60.0) >= 0.7 * len(per_file) and 50.0 not in per_file
    # participants without a visible line are never called 50 Hz
    others = [detect_mains(_read_3dc(real_root, p, "train", 0, g), 1000.0) for p in (5, 14) for g in range(0, 11, 2)]
    assert 50.0 not in others


# ---------------------------------------------------------------- per-session harmonization


def test_resolve_mains_falls_back_from_session_to_subject_dataset_and_declared():
    detected = {("a", "1"): 60.0, ("a", "2"): None, ("b", "1"): 50.0, ("b", "2"): 50.0, ("c", "1"): None}
    got = resolve_mains(detected, declared=60.0)
    assert got[("a", "1")] == (60.0, "session")
    assert got[("a", "2")] == (60.0, "subject")
    assert got[("c", "1")] == (50.0, "dataset")  # the most common detection over the dataset
    assert resolve_mains({("a", "1"): None}, declared=50) == {("a", "1"): (50.0, "declared")}
    assert resolve_mains({("a", "1"): None}, declared=None) == {("a", "1"): (None, "none")}


def test_harmonize_session_detects_mains_resamples_removes_dc_and_scales():
    rng = np.random.default_rng(11)
    fs = 1000.0
    recs = [_rec(rng.normal(0, 1 + k, (3, 4000)) + 3 * _tone(60.0, fs, 4.0) + 25.0, fs,
                 recording_id=f"r{k}", order=k) for k in range(4)]
    out, scale = harmonize_session(recs, 200.0)
    assert [r.fs for r in out] == [200.0] * 4 and all(r.n_samples == 800 for r in out)
    assert all(r.mains_hz == 60.0 and r.attrs["mains_source"] == "session" for r in out)
    assert all(r.channel_flags == ("", "", "") for r in out)
    assert all(np.all(np.abs(np.median(r.signal, axis=1)) < 1e-3) for r in out)
    assert scale.dtype == np.float64 and np.array_equal(scale, session_scale(out))
    given, _ = harmonize_session(recs, 200.0, (50.0, "declared"))
    assert given[0].mains_hz == 50.0 and given[0].attrs["mains_source"] == "declared"


# ---------------------------------------------------------------- channel QC


def test_channel_qc_flags_dead_saturated_and_mains_channels():
    rng = np.random.default_rng(8)
    fs, n = 1000.0, 4000
    x = 50 * rng.standard_normal((6, n))
    x[1] = 0.0  # disconnected
    x[2] = 3.0
    x[2, ::500] = 900.0  # stuck, apart from a few spikes
    x[3] = np.clip(x[3] * 4, -100, 100)  # clipped at its rails
    x[4] = 40 * rng.standard_normal(n) + 2000 * _tone(60.3, fs, n / fs)  # drowned in mains
    flags = channel_qc(_rec(x, fs))
    assert flags == ("", "dead", "dead", "saturated", "mains", "")
    assert channel_qc(_rec(x, fs, mains_hz=50.0))[4] == ""  # only the mains the recording declares
    rec = _rec(x, fs)
    assert rec.replace(channel_flags=channel_qc(rec)).channel_flags == flags


def test_channel_qc_does_not_flag_clean_or_quiet_coarse_signals():
    rng = np.random.default_rng(9)
    clean = 30 * rng.standard_normal((8, 2000))
    assert channel_qc(_rec(clean, 200.0)) == ("",) * 8
    # a Myo-like channel at rest: int8 counts taking a handful of values, extremes hold several %
    coarse = np.round(1.2 * rng.standard_normal((8, 1000)))
    assert channel_qc(_rec(coarse, 200.0)) == ("",) * 8
    # a rest recording where the common mains line takes half of every channel's power
    rest = 5 * rng.standard_normal((8, 2000)) + 2 * _tone(50.0, 200.0, 10.0)
    assert channel_qc(_rec(rest, 200.0)) == ("",) * 8
    assert channel_qc(_rec(np.zeros((2, 0)), 200.0)) == ("dead", "dead")


def test_channel_qc_on_real_3dc_flags_participant1_channel1_only(real_root: Path):
    p1 = [channel_qc(_rec(_read_3dc(real_root, 1, "train", rep, g), 1000.0)) for rep in range(4) for g in range(11)]
    ch1 = [f[1] for f in p1]
    assert ch1.count("mains") >= 0.6 * len(p1)  # measured: 33 of 44 train files
    others = [flag for f in p1 for c, flag in enumerate(f) if c != 1]
    assert others.count("") == len(others)
    p5 = [channel_qc(_rec(_read_3dc(real_root, 5, "train", rep, g), 1000.0)) for rep in (0, 3) for g in range(11)]
    assert all(flag == "" for f in p5 for flag in f)
