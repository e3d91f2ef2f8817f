"""A recording's channels with its contraction events and token groups drawn over them (PNG).

Top: each channel's high-passed signal (stacked, each scaled to its own range), event pieces shaded,
group (segment) boundaries as thin lines, labelled trials named along the top. Bottom: the
channels' floor-normalized envelopes (log scale), their combined level, and the on/off thresholds.
matplotlib runs on the Agg backend (no display needed) and is imported here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aemg.tokens.detector import DetectorConfig, EventDetector
from aemg.tokens.energy import EnergyEnvelope


def plot_recording(corpus: Any, recording_id: str, path: str | Path, *, tokens: Any = None,
                   config: DetectorConfig | None = None) -> Path:
    """Write a PNG of ``recording_id`` of ``corpus`` with its events and groups; returns the path.

    ``tokens`` is the corpus's :class:`~aemg.tokens.tokenset.TokenSet` (tokenized again for this
    recording's session when not given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aemg.tokens.tokenizer import tokenize_session

    rec = corpus.load(recording_id)
    recs = list(corpus.iter_recordings(rec.subject, rec.session))
    pos = [r.recording_id for r in recs].index(recording_id)
    if tokens is not None and tokens.meta.get("config"):
        config = DetectorConfig.from_dict(tokens.meta["config"])
    cfg = config or DetectorConfig()
    out = tokenize_session(recs, cfg)
    fs = rec.fs
    # the envelope as the session's detector saw it (state carried from the earlier recordings)
    stage = EnergyEnvelope(fs, rec.n_channels, highpass_hz=cfg.highpass_hz, order=cfg.highpass_order,
                           smooth_ms=cfg.smooth_ms)
    for r in recs[:pos]:
        stage.process(r.signal)
    xf, env = stage.process(rec.signal)
    det = EventDetector(fs, out.floor, cfg)
    en = det.normalized_envelope(env)
    level = det.level(en)
    t = np.arange(rec.n_samples) / fs

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    span = np.percentile(np.abs(xf), 99.5, axis=1) + 1e-12
    for c in range(rec.n_channels):
        ax1.plot(t, c + 0.45 * xf[c] / span[c], lw=0.5, color="k")
    ax1.set_yticks(range(rec.n_channels))
    ax1.set_yticklabels([f"ch{c}" for c in range(rec.n_channels)])
    for q in out.pieces:
        if q["recording"] == pos:
            a, b = q["onset"] / fs, q["offset"] / fs
            ax1.axvspan(a, b, color="tab:orange", alpha=0.18)
            ax2.axvspan(a, b, color="tab:orange", alpha=0.18)
    sel = out.group_recording == pos
    starts = out.groups.start[sel] - out.offsets[pos]
    ranks = out.groups.rank[sel]
    for a in starts:
        ax1.axvline(a / fs, color="tab:blue", lw=0.4, alpha=0.6)
    if sel.any():  # activation rank of each channel in the event's first group, as a number
        first = np.flatnonzero(out.groups.segment[sel] == 0)
        for g in first:
            for c in range(rec.n_channels):
                ax1.text(starts[g] / fs, c + 0.3, str(int(ranks[g, c])), fontsize=6, color="tab:blue")
    for a, b, lab, _rep in rec.trials():
        ax1.annotate(rec.gesture_keys[lab], ((a + b) / 2 / fs, rec.n_channels - 0.4), ha="center", fontsize=8,
                     color="tab:green")
        ax1.axvspan(a / fs, b / fs, ymin=0.97, ymax=1.0, color="tab:green", alpha=0.5)
    ax1.set_ylim(-0.7, rec.n_channels - 0.2)
    n_groups = int(sel.sum())
    n_events = sum(q["recording"] == pos for q in out.pieces)
    ax1.set_title(f"{rec.dataset} {recording_id}: {n_groups} token group{'s' * (n_groups != 1)}, "
                  f"{n_events} event{'s' * (n_events != 1)} (orange)")
    for c in range(rec.n_channels):
        ax2.semilogy(t, np.maximum(en[c], 1e-2), lw=0.4, alpha=0.5)
    ax2.semilogy(t, np.maximum(level, 1e-2), lw=1.2, color="k", label=f"{cfg.combine} level")
    ax2.axhline(cfg.on, color="tab:red", ls="--", lw=0.8, label=f"on {cfg.on:g}x floor")
    ax2.axhline(cfg.off, color="tab:purple", ls="--", lw=0.8, label=f"off {cfg.off:g}x floor")
    ax2.set_ylabel("envelope / floor")
    ax2.set_xlabel("time in recording (s)")
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
