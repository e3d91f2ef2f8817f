"""Token amplitude on the session's amplitude scale: the head's direct amplitude path (and, for an encoder
that reads it, the token content's ``log_amp``).

A token's ``log_amp`` is the log of its mean TKEO envelope divided by the event detector's noise floor
of that channel (the 10th percentile of the session's envelope): right for detecting contractions,
wrong for telling gestures apart across people, because the floor is set by electrode contact and
amplifier noise, not by the muscle. The classic pipelines divide instead by a per-channel
contraction level (the session scale, :func:`aemg.signal.session_scale`), and that pattern is what
transfers across subjects. Measured (docs/evaluate.md): a logistic regression on spans' per-channel
mean ``log_amp`` scores 0.65 (Côté-Allard) / 0.73 (UCI) LOSO with the floor reference and 0.78 / 0.88
with the scale reference. Inside the encoder the content vector is layer-normalised per token, which
blurs absolute amplitude further; so the encoder keeps the tokens it was pre-trained on and the head
gets, beside the pooled states, each channel's mean token amplitude on the session scale:

    amp = log_amp + log(floor_c) - 2 log(scale_c)

(TKEO ~ A^2, the scale ~ A: the result is the log of the mean envelope in units of the scale squared;
amplitude-invariant like every token feature: multiplying a channel by k moves floor by k^2 and the
scale by k). The scale and floor are those of the fold's scale rule (``TrialSet.scales``; the detector
floor each session was tokenized with), so nothing of a held-out subject is used beyond what the rule
allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from aemg.corpus import Corpus
    from aemg.tokens import TokenSet

_FLOORS: dict[tuple[str, str, str, str, str], np.ndarray] = {}


def noise_floor(corpus: Corpus, subject: str, session: str, settings: dict[str, Any]) -> np.ndarray:
    """The event detector's per-channel noise floor ``(C,)`` of one session, as the tokenizer computes it:
    :func:`aemg.tokens.estimate_floor` over the session's unscaled recordings, joined in corpus order."""
    from aemg.tokens.energy import estimate_floor
    from aemg.tokens.tokenset import TokenSettings

    s = TokenSettings.from_meta(settings)
    recs = list(corpus.iter_recordings(subject=subject, session=session, scaled=False))
    if not recs:
        raise KeyError(f"{subject}/{session}: expected a session of {corpus.path}; found no recordings")
    cfg = s.config
    return estimate_floor([r.signal for r in recs], float(recs[0].fs), percentile=cfg.floor_percentile,
                          highpass_hz=cfg.highpass_hz, order=cfg.highpass_order, smooth_ms=cfg.smooth_ms,
                          mains_hz=recs[0].mains_hz if s.notch else None)


def session_floor(corpus: Corpus, subject: str, session: str, settings: dict[str, Any]) -> np.ndarray:
    """The detector's noise floor ``(C,)`` of one session (:func:`noise_floor`), cached."""
    import json

    key = (str(corpus.path), str(corpus.hash), subject, session, json.dumps(settings, sort_keys=True, default=str))
    if key not in _FLOORS:
        if len(_FLOORS) > 4096:
            _FLOORS.clear()
        _FLOORS[key] = np.asarray(noise_floor(corpus, subject, session, settings), np.float64)
    return _FLOORS[key]


def amplitude_offsets(ts: TokenSet, floor_of: Mapping[tuple[str, str], np.ndarray],
                      scale_of: Mapping[tuple[str, str], np.ndarray]) -> np.ndarray:
    """``(R, C)`` float64 offset per recording row and channel, ``log(floor) - 2 log(scale)`` of its session;
    NaN for sessions missing from either mapping (their tokens must not be used)."""
    rec = ts.recordings
    n_ch = int(ts.tokens.channel.max(initial=-1)) + 1
    out = np.full((len(rec.id), n_ch), np.nan)
    for i, (subj, sess) in enumerate(zip(np.asarray(rec.subject).astype(str), np.asarray(rec.session).astype(str))):
        key = (subj, sess)
        if key in floor_of and key in scale_of:
            f = np.asarray(floor_of[key], np.float64)
            s = np.asarray(scale_of[key], np.float64)
            s = np.where(np.isfinite(s) & (s > 0), s, 1.0)
            out[i, :len(f)] = np.log(f) - 2.0 * np.log(s)
    return out


def token_amplitude(ts: TokenSet, offsets: np.ndarray) -> np.ndarray:
    """``(N,)`` float32 per-token amplitude on the session scale: ``log_amp`` + its recording's channel offset."""
    tk = ts.tokens
    rec = np.asarray(ts.groups.recording)[np.asarray(tk.group)]
    return (np.asarray(tk.content[:, 0], np.float64) + offsets[rec, np.asarray(tk.channel)]).astype(np.float32)


def scale_amplitude(corpus: Corpus, ts: TokenSet) -> np.ndarray:
    """``(N,)`` every token's amplitude on its session's stored scale (``corpus.scale``) with the floor it was
    tokenized with: what ``log_amp`` becomes for an encoder that reads amplitude on the session scale
    (``EncoderConfig.content_amp="scale"``), in pre-training and in fine-tuning alike."""
    rec = ts.recordings
    sessions = sorted(set(zip(np.asarray(rec.subject).astype(str), np.asarray(rec.session).astype(str))))
    settings = ts.settings.to_meta()
    floors = {k: session_floor(corpus, k[0], k[1], settings) for k in sessions}
    scales = {k: np.asarray(corpus.scale(*k), np.float64) for k in sessions}
    return token_amplitude(ts, amplitude_offsets(ts, floors, scales))


__all__ = ["amplitude_offsets", "noise_floor", "scale_amplitude", "session_floor", "token_amplitude"]
