"""Helpers shared by the live tests: stream a recording through a decoder, and the offline reference decisions."""

from __future__ import annotations

import numpy as np
import torch

from aemg.evaluate.encoder_methods import pad_amp, span_log_probs
from aemg.evaluate.spans import tile_spans
from aemg.live import LiveDecoder
from aemg.live.model import LiveModel
from aemg.tokens.amplitude import amplitude_offsets, token_amplitude
from aemg.tokens.builder import TokenSetBuilder
from aemg.tokens.tokenizer import tokenize_session


def decode(model, rec, chunk: int) -> list:
    dec = LiveDecoder(model, subject=rec.subject, session=rec.session, mains_hz=rec.mains_hz)
    out = []
    for a in range(0, rec.n_samples, chunk):
        out += dec.process(rec.signal[:, a:a + chunk])
    return out + dec.flush()


def with_events(model, recs, n: int) -> list:
    """The first ``n`` recordings whose decoding holds a confirmed event."""
    out = []
    for rec in recs:
        if any(d.status == "confirmed" for d in decode(model, rec, 10_000)):
            out.append(rec)
        if len(out) == n:
            return out
    raise AssertionError(f"fewer than {n} of the given recordings hold a confirmed event")


def offline_decisions(model: LiveModel, rec, floor: np.ndarray) -> dict[int, tuple[int, np.ndarray]]:
    """Per event: (groups, class log-probabilities) through the offline tokenizer, token set and collate."""
    s = model.settings
    out = tokenize_session([rec], s.config, notch=s.notch, floor=floor)
    b = TokenSetBuilder(s.config, notch=s.notch)
    b.add_session([rec], out)
    ts = b.build(rec.fs)
    group = ts.tokens.group
    res = {}
    for e in np.unique(ts.groups.event):
        rows = np.flatnonzero(ts.groups.event == e)
        groups = [np.flatnonzero(group == g) for g in rows]
        spans = tile_spans(groups, model.span, model.stride)
        batch = ts.collate(tokens=spans, labels=[-100] * len(spans), max_tokens=model.cfg.max_tokens)
        if model.uses_amplitude:  # the offline amplitude path (aemg.tokens.amplitude) on the same session scale
            key = (rec.subject, rec.session)
            scale = np.asarray(model.info.calibration_of(*key).scale)
            amp = token_amplitude(ts, amplitude_offsets(ts, {key: floor}, {key: scale}))
            m = model.cfg.max_tokens
            batch["amp"] = pad_amp([amp[t[:m]] for t in spans], batch["pad_mask"].shape[1])
        with torch.no_grad():
            logp = span_log_probs(model.net, model.probe, model.cfg.probe_blend, batch).double().numpy()
        res[int(e)] = (len(rows), logp.mean(axis=0))
    return res
