"""Per-session harmonization: native rate, mains resolution, QC, resampling, DC removal and scale.

:func:`harmonize_session` turns one subject-session's raw recordings into the form the corpus
stores (and a live decoder's calibration uses), without importing the corpus store:

1. sample-and-hold logging (UCI) is detected and rebuilt at the device's true rate (:func:`native_rate`);
2. the mains frequency (50/60 Hz) is detected on the native-rate signals of the session
   (:func:`detect_session_mains`) and stored on each recording (``mains_hz``, with
   ``attrs["mains_source"]``); over a dataset, a session whose spectrum shows no line inherits the
   subject's, then the dataset's detection, then the reader's documented value (:func:`resolve_mains`);
3. channel QC flags each channel ("" ok, "dead", "saturated", "mains");
4. anti-aliased resampling to the corpus rate, then per-channel DC removal;
5. one robust amplitude scale per channel over all the session's recordings, label-free, measured
   after the causal 20 Hz high-pass and mains notch a live decoder runs (:func:`session_scale`).
   Signals are returned unscaled and unfiltered.
"""

from __future__ import annotations

import numpy as np

from aemg.recording import Recording
from aemg.signal.holds import detect_sample_and_hold, rebuild_sample_and_hold
from aemg.signal.mains import detect_mains
from aemg.signal.qc import channel_qc
from aemg.signal.resample import resample
from aemg.signal.scale import remove_dc, session_scale

MAINS_WINDOW_S = 300.0
"""At most this many seconds of a session's native-rate signal go into mains detection."""
SCALE_METHOD = "session_scale(hp 20 Hz + mains notch, 100 ms windows, p90)"
"""How :func:`harmonize_session` computes the scale; the corpus puts it in each session's
fingerprint, so a resumed build never mixes session files whose scales were computed differently."""

Mains = tuple[float | None, str]
"""``(mains_hz or None, source)``: source is "session", "subject", "dataset", "declared" or "none"."""
SessionKey = tuple[str, str]
"""``(subject, session)``."""


def native_rate(recs: list[Recording]) -> list[Recording]:
    """Recordings with sample-and-hold logging rebuilt at their true rate (others unchanged)."""
    return [rebuild_sample_and_hold(r) if detect_sample_and_hold(r) else r for r in recs]


def detect_session_mains(recs: list[Recording]) -> float | None:
    """Mains (Hz) detected on the quietest quarter of a session's recordings (label-free), or None.

    The line is a small, constant power: contractions bury it, rest reveals it. Recordings are
    ranked by their median channel standard deviation and the quietest quarter (at least one, at
    most :data:`MAINS_WINDOW_S` seconds) is concatenated, each with its channel medians removed.
    """
    fss = [r.fs for r in recs]
    fs = max(sorted(set(fss)), key=fss.count)
    n_ch = recs[0].n_channels
    usable = [r for r in recs if r.fs == fs and r.n_channels == n_ch and r.n_samples]
    if not usable:
        return None
    loudness = [float(np.median(np.std(r.signal, axis=1))) for r in usable]
    ranked = [usable[i] for i in np.argsort(loudness, kind="stable")]
    parts, total = [], 0
    for r in ranked[:max(1, len(ranked) // 4)]:
        parts.append(r.signal - np.median(r.signal, axis=1, keepdims=True))
        total += r.n_samples
        if total >= MAINS_WINDOW_S * fs:
            break
    found = detect_mains(np.concatenate(parts, axis=1), fs)
    return None if found is None else float(found)


def resolve_mains(detected: dict[SessionKey, float | None], declared: float | None) -> dict[SessionKey, Mains]:
    """Mains frequency and its source for each (subject, session).

    Mains is a property of where a dataset was recorded, but its line is not visible in every
    session (3DC: clear in some participants' rest files, buried under EMG in others). Each session
    takes, in this order: its own detection ("session"); the most common detection among the
    subject's other sessions ("subject"); the most common detection over the dataset ("dataset");
    the reader's documented value ("declared"); else None ("none").
    """
    def common(values: list[float]) -> float | None:
        return max(sorted(set(values)), key=values.count) if values else None

    found = [v for v in detected.values() if v is not None]
    out: dict[SessionKey, Mains] = {}
    for (subject, session), v in detected.items():
        if v is not None:
            out[(subject, session)] = (v, "session")
            continue
        same = common([m for (s, _), m in detected.items() if s == subject and m is not None])
        if same is not None:
            out[(subject, session)] = (same, "subject")
        elif found:
            out[(subject, session)] = (common(found), "dataset")
        elif declared is not None:
            out[(subject, session)] = (float(declared), "declared")
        else:
            out[(subject, session)] = (None, "none")
    return out


def harmonize_session(recs: list[Recording], fs: float, mains: Mains | None = None,
                      ) -> tuple[list[Recording], np.ndarray]:
    """Harmonized recordings of one subject-session at ``fs`` Hz and its robust scale ``(C,)`` float64.

    ``mains`` is ``(mains_hz, source)`` from :func:`resolve_mains`; by default it is detected on this
    session alone (falling back to the first recording's ``mains_hz``). See the module docstring.
    """
    native = native_rate(recs)
    if mains is None:
        found = detect_session_mains(native)
        mains = resolve_mains({("", ""): found}, recs[0].mains_hz)[("", "")]
    mains_hz, source = mains
    out = []
    for r in native:
        r = r.replace(mains_hz=mains_hz, attrs={**r.attrs, "mains_source": source})
        r = r.replace(channel_flags=tuple(channel_qc(r)))
        if r.fs != fs:
            r = resample(r, fs)
        out.append(remove_dc(r))
    scale = np.asarray(session_scale(out), dtype=np.float64)
    return out, scale
