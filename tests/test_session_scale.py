"""The stored amplitude scale: measured after the decoder's causal filter, label-free, usable live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from aemg.layouts import get_layout
from aemg.recording import Recording
from aemg.signal import apply_causal_filter, apply_scale, divide_by_scale, make_causal_filter, robust_scale
from aemg.signal.scale import session_scale

FS = 200.0


def _rec(x: np.ndarray, fs: float = FS, mains_hz: float | None = 60.0, **kw) -> Recording:
    return Recording(signal=x.astype(np.float32), fs=fs, units="uV", electrodes=get_layout(f"unknown{x.shape[0]}").electrodes,
                     dataset="t", subject="t/a", session="s", mains_hz=mains_hz, **kw)


def _emg(rng: np.random.Generator, seconds: float = 40.0) -> np.ndarray:
    """3 channels of gains 1 : 3 : 0.5, band-limited noise (25-90 Hz) in bursts over a low rest level."""
    n = int(seconds * FS)
    sos = butter(4, [25.0, 90.0], btype="bandpass", fs=FS, output="sos")
    noise = sosfilt(sos, rng.standard_normal((3, n)), axis=1)
    envelope = 0.1 + (np.sin(2 * np.pi * 0.25 * np.arange(n) / FS) > 0.2)
    return np.array([1.0, 3.0, 0.5])[:, None] * envelope * noise


def test_motion_artefact_baseline_wander_and_mains_do_not_enter_the_scale():
    rng = np.random.default_rng(0)
    x = _emg(rng)
    t = np.arange(x.shape[1]) / FS
    clean = session_scale([_rec(x)])
    # channel 1 only: a large 3 Hz motion artefact, 0.2 Hz wander and strong 60 Hz pick-up
    dirty = x.copy()
    dirty[1] += 8.0 * np.sin(2 * np.pi * 3.0 * t) + 20.0 * np.sin(2 * np.pi * 0.2 * t) + 4.0 * np.sin(2 * np.pi * 60 * t)
    filtered = session_scale([_rec(dirty)])
    assert filtered == pytest.approx(clean, rel=0.1)
    unfiltered = robust_scale([_rec(dirty)])
    assert unfiltered[1] > 2.0 * clean[1]  # what the scale was before it was measured after the filter
    assert np.allclose(unfiltered[[0, 2]], robust_scale([_rec(x)])[[0, 2]])


def test_session_scale_is_linear_label_free_and_split_invariant_up_to_filter_start():
    rng = np.random.default_rng(1)
    x = _emg(rng)
    base = session_scale([_rec(x)])
    assert np.allclose(session_scale([_rec(2.5 * x)]), 2.5 * base, rtol=1e-5)
    assert np.allclose(session_scale([_rec(x + 300.0)]), base, rtol=1e-3)  # DC: the high-pass settles on it
    labels = (np.arange(x.shape[1]) // 400 % 2).astype(np.int32)
    labelled = _rec(x, labels=labels, label_names=("a", "b"), gesture_keys=("rest", "hand_close"))
    assert np.array_equal(session_scale([labelled]), base)
    pieces = [_rec(p) for p in np.split(x, [1999, 4500], axis=1)]  # files of one session
    assert np.allclose(session_scale(pieces), base, rtol=0.02)
    assert np.allclose(base / base[0], [1.0, 3.0, 0.5], rtol=0.1)


def test_filtered_scaled_signal_has_unit_scale_and_low_rates_skip_the_high_pass():
    rng = np.random.default_rng(2)
    rec = _rec(_emg(rng, 20.0))
    scale = session_scale([rec])
    unit = robust_scale([apply_causal_filter(apply_scale(rec, scale))])
    assert np.allclose(unit, 1.0, rtol=1e-4)
    slow = _rec(rng.standard_normal((2, 600)), fs=30.0, mains_hz=None)  # Nyquist 15 Hz < 20 Hz
    assert np.allclose(session_scale([slow]), robust_scale([slow]))


def test_a_live_decoder_applies_the_stored_scale_to_its_filtered_stream(tiny_dataset, tmp_path: Path):
    from aemg.corpus import Corpus, import_manifest

    corpus = import_manifest(tiny_dataset(n_subjects=1, sessions=("s1",)), tmp_path / "c", progress=False)
    corpus = Corpus(corpus.path)
    recs = list(corpus.iter_recordings())
    stored = corpus.scale(recs[0].subject, recs[0].session)
    assert np.array_equal(stored, session_scale(recs))  # the stored numbers are exactly session_scale
    # the documented live loop: filter chunks with the harmonization filter, divide by the stored scale
    rec = recs[0]
    live = make_causal_filter(corpus.fs, rec.n_channels, rec.mains_hz)
    chunks = [divide_by_scale(live.process(c), stored) for c in np.array_split(rec.signal, 7, axis=1)]
    offline = apply_causal_filter(corpus.load(rec.recording_id, scaled=True)).signal
    assert np.allclose(np.concatenate(chunks, axis=1), offline, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_real_3dc_artefact_channel_is_not_inflated_by_what_the_filter_removes(corpus_3dc):
    """3DC Participant1's channel 1 carries 60 Hz pick-up and sub-20 Hz bursts; its neighbours do not."""
    c = corpus_3dc
    recs = list(c.iter_recordings(subject="3dc/all/Participant1", session="train"))
    stored = c.scale("3dc/all/Participant1", "train")
    unfiltered = robust_scale(recs)
    ratio = stored / unfiltered
    others = np.delete(ratio, 1)
    assert np.all((others > 0.8) & (others < 1.0))  # clean channels: the filter takes ~10% off
    assert ratio[1] < 0.7  # the artefact channel: its unfiltered scale is more than 1.4x too high
