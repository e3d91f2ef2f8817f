"""The head's amplitude path (aemg.tokens.amplitude): token amplitude on the session scale, on real EMG."""

from __future__ import annotations

import numpy as np

from aemg.signal import session_scale
from aemg.tokens import estimate_floor
from aemg.tokens.amplitude import amplitude_offsets, token_amplitude
from aemg.tokens.builder import TokenSetBuilder
from aemg.tokens.tokenizer import tokenize_session


def _session(corpus, n: int = 6):
    subj, sess = corpus.subjects[0], None
    recs = list(corpus.iter_recordings(subject=subj, scaled=False))
    sess = recs[0].session
    return [r for r in recs if r.session == sess][:n]


def _amp(recs, config):
    """Per-token amplitude of one session tokenized with its own floor, on its own session scale."""
    fs = float(recs[0].fs)
    floor = estimate_floor([r.signal for r in recs], fs, percentile=config.floor_percentile,
                           highpass_hz=config.highpass_hz, order=config.highpass_order, smooth_ms=config.smooth_ms)
    b = TokenSetBuilder(config)
    b.add_session(recs, tokenize_session(recs, config, floor=floor))
    ts = b.build(fs)
    key = (recs[0].subject, recs[0].session)
    return ts, token_amplitude(ts, amplitude_offsets(ts, {key: floor}, {key: session_scale(recs)}))


def test_token_amplitude_ignores_channel_gain_but_not_the_pattern_across_channels(corpus_cote_allard):
    """Multiplying one channel by k moves its floor by k^2 and its scale by k: the amplitude stays; the floor-
    referenced log_amp stays too, but (the point of the path) the amplitude is not the floor-referenced value."""
    from aemg.tokens.detector import DetectorConfig

    cfg = DetectorConfig()
    recs = _session(corpus_cote_allard)
    ts, amp = _amp(recs, cfg)
    assert len(amp) > 1000 and np.isfinite(amp).all()
    gained = [r.replace(signal=(r.signal * np.array([[7.0]] + [[1.0]] * (r.n_channels - 1))).astype(np.float32))
              for r in recs]
    ts2, amp2 = _amp(gained, cfg)
    assert len(amp2) == len(amp)  # the same events and tokens: the detector is gain-invariant
    np.testing.assert_allclose(amp2, amp, atol=2e-3)
    # it is not the floor-referenced log_amp: the offsets differ across channels of one session
    off = amp - ts.tokens.content[:, 0]
    per_channel = [float(np.median(off[ts.tokens.channel == c])) for c in range(8)]
    assert np.ptp(per_channel) > 0.5


def test_missing_sessions_are_nan(corpus_cote_allard):
    from aemg.tokens.detector import DetectorConfig

    ts, _ = _amp(_session(corpus_cote_allard, 2), DetectorConfig())
    assert np.isnan(amplitude_offsets(ts, {}, {})).all()  # never a silent 0 offset for an unknown session


def test_channel_amplitude_is_the_standardised_per_channel_mean_of_real_tokens():
    import torch

    from aemg.evaluate.encoder_methods import channel_amplitude

    batch = {"amp": torch.tensor([[1.0, 3.0, 5.0, -2.0, 99.0]]), "channel": torch.tensor([[0, 0, 2, 2, 1]]),
             "pad_mask": torch.tensor([[False, False, False, False, True]])}  # the padded token must not count
    np.testing.assert_allclose(channel_amplitude(batch, 4).numpy(), [[2.0, 0.0, 1.5, 0.0]])
    np.testing.assert_allclose(channel_amplitude(batch, 4, 1.0, 2.0).numpy(), [[0.5, 0.0, 0.25, 0.0]])
