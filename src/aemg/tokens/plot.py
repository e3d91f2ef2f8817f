"""A recording's channels with its stored contraction events and token groups drawn over them (PNG).

Top: each channel's high-passed signal (stacked, each scaled to its own range), the token set's
event pieces shaded, its group boundaries as thin lines (with each event's first-group activation
ranks), labelled trials named along the top. Bottom: the channels' floor-normalized envelopes (log
scale), their combined level, and the on/off thresholds. Events and groups are read from the token
set, never detected again, so the plot shows exactly what was stored, whatever options made it
(``window_ms``, ``notch``, the detector config); the envelope is recomputed with those stored
settings. matplotlib runs on the Agg backend (no display needed) and is imported here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aemg.tokens.detector import EventDetector
from aemg.tokens.energy import EnergyEnvelope, floor_from_samples, floor_samples
from aemg.tokens.tokenset import TokenSet, TokenSettings

if TYPE_CHECKING:
    from aemg.corpus import Corpus
    from aemg.recording import Recording


@dataclass(frozen=True)
class RecordingMarks:
    """What the plot draws for one recording, read from a token set (samples in the recording)."""

    recording_id: str
    mode: str  # "events" or "windows"
    event_onset: np.ndarray  # (E,) the stored event pieces' first samples
    event_offset: np.ndarray  # (E,) their ends (exclusive)
    group_start: np.ndarray  # (G,) the stored groups' first samples
    group_stop: np.ndarray  # (G,)
    first_groups: np.ndarray  # (k,) positions in group_start of each event's first group (none for windows)
    ranks: np.ndarray  # (G, C) activation rank per group and channel


def recording_marks(ts: TokenSet, recording_id: str) -> RecordingMarks:
    """The stored event pieces and groups of ``recording_id`` (KeyError when it is not in ``ts``)."""
    ids = [str(r) for r in ts.recordings.id]
    if recording_id not in ids:
        raise KeyError(f"the token set has no recording {recording_id!r}")
    r = ids.index(recording_id)
    ev, gr, tk = ts.events, ts.groups, ts.tokens
    e = np.flatnonzero(ev.recording == r)
    g = np.flatnonzero(gr.recording == r)
    n_channels = int(tk.channel[tk.group == g[0]].size) if g.size else 0
    ranks = np.zeros((g.size, n_channels), np.int64)
    # ranks are drawn on each event's first group; every window is a "first group", so none there
    first = np.flatnonzero(gr.segment[g] == 0) if ts.meta.get("mode") == "events" else np.zeros(0, np.int64)
    if g.size:
        rows = np.flatnonzero(np.isin(tk.group, g))
        ranks[np.searchsorted(g, tk.group[rows]), tk.channel[rows]] = tk.rank[rows]
    return RecordingMarks(recording_id, str(ts.meta.get("mode")), ev.onset[e], ev.offset[e], gr.start[g],
                          gr.stop[g], first, ranks)


def session_envelope(recs: list[Recording], pos: int, settings: TokenSettings
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xf, env, floor)`` of recording ``pos`` of a session as its tokenizer saw them: one energy
    stage run over the session's recordings in time order (state carried), with the stored config
    and notch, and the session's floor from the same pass."""
    cfg = settings.config
    fs = float(recs[0].fs)
    mains = recs[0].mains_hz if settings.notch else None
    stage = EnergyEnvelope(fs, recs[0].n_channels, highpass_hz=cfg.highpass_hz, order=cfg.highpass_order,
                           smooth_ms=cfg.smooth_ms, mains_hz=mains)
    samples, envs, start, mine = [], [], 0, None
    for i, r in enumerate(recs):
        xf, env = stage.process(r.signal)
        samples.append(floor_samples(env, start, fs, stage.warmup))
        envs.append(env)
        start += r.n_samples
        if i == pos:
            mine = (xf, env)
    sam = np.concatenate(samples, axis=1)
    if sam.shape[1] == 0:  # shorter than the warm-up: use what there is
        sam = np.concatenate(envs, axis=1)
    if mine is None:
        raise IndexError(f"recording {pos} of a session of {len(recs)}")
    return mine[0], mine[1], floor_from_samples(sam, cfg.floor_percentile)


def plot_recording(corpus: Corpus, recording_id: str, path: str | Path, *, tokens: TokenSet) -> Path:
    """Write a PNG of ``recording_id`` of ``corpus`` with the events and groups stored in ``tokens``
    (the corpus's :class:`~aemg.tokens.tokenset.TokenSet`); returns the path."""
    marks = recording_marks(tokens, recording_id)
    rec = corpus.load(recording_id)
    recs = list(corpus.iter_recordings(rec.subject, rec.session))
    pos = [r.recording_id for r in recs].index(recording_id)
    settings = tokens.settings
    xf, env, floor = session_envelope(recs, pos, settings)
    return draw(rec, marks, settings, xf, env, floor, Path(path))


def draw(rec: Recording, marks: RecordingMarks, settings: TokenSettings, xf: np.ndarray, env: np.ndarray,
         floor: np.ndarray, path: Path) -> Path:
    """Draw ``marks`` over the recording's high-passed signal ``xf`` and envelope ``env`` ``(C, n)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = settings.config
    fs = rec.fs
    det = EventDetector(fs, floor, cfg)
    en = det.normalized_envelope(env)
    level = det.level(en)
    t = np.arange(rec.n_samples) / fs

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    span = np.percentile(np.abs(xf), 99.5, axis=1) + 1e-12
    for c in range(rec.n_channels):
        ax1.plot(t, c + 0.45 * xf[c] / span[c], lw=0.5, color="k")
    ax1.set_yticks(range(rec.n_channels))
    ax1.set_yticklabels([f"ch{c}" for c in range(rec.n_channels)])
    for a, b in zip(marks.event_onset / fs, marks.event_offset / fs):
        ax1.axvspan(a, b, color="tab:orange", alpha=0.18)
        ax2.axvspan(a, b, color="tab:orange", alpha=0.18)
    for a in marks.group_start:
        ax1.axvline(a / fs, color="tab:blue", lw=0.4, alpha=0.6)
    for g in marks.first_groups:  # activation rank of each channel in the event's first group, as a number
        for c in range(marks.ranks.shape[1]):
            ax1.text(marks.group_start[g] / fs, c + 0.3, str(int(marks.ranks[g, c])), fontsize=6, color="tab:blue")
    for a, b, lab, _rep in rec.trials():
        ax1.annotate(rec.gesture_keys[lab], ((a + b) / 2 / fs, rec.n_channels - 0.4), ha="center", fontsize=8,
                     color="tab:green")
        ax1.axvspan(a / fs, b / fs, ymin=0.97, ymax=1.0, color="tab:green", alpha=0.5)
    ax1.set_ylim(-0.7, rec.n_channels - 0.2)
    n_groups, n_events = len(marks.group_start), len(marks.event_onset)
    what = (f"{n_events} event{'s' * (n_events != 1)} (orange)" if marks.mode == "events"
            else f"windows of {settings.window_ms:g} ms")
    ax1.set_title(f"{rec.dataset} {marks.recording_id}: {n_groups} token group{'s' * (n_groups != 1)}, {what}")
    for c in range(rec.n_channels):
        ax2.semilogy(t, np.maximum(en[c], 1e-2), lw=0.4, alpha=0.5)
    ax2.semilogy(t, np.maximum(level, 1e-2), lw=1.2, color="k", label=f"{cfg.combine} level")
    ax2.axhline(cfg.on, color="tab:red", ls="--", lw=0.8, label=f"on {cfg.on:g}x floor")
    ax2.axhline(cfg.off, color="tab:purple", ls="--", lw=0.8, label=f"off {cfg.off:g}x floor")
    ax2.set_ylabel("envelope / floor")
    ax2.set_xlabel("time in recording (s)")
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["RecordingMarks", "draw", "plot_recording", "recording_marks", "session_envelope"]
