"""Label-based checks of the event detector: coverage of gestures, false events in rest, onset delay.

Definitions (samples are per recording; a trial is one labelled repetition):

* **coverage** (the 25% rule): fraction of non-rest trials with one detected event covering at least
  25% of the trial's duration; **coverage_any**: fraction with any event overlapping them at all.
* **rest_events_per_minute**: events whose **onset** falls inside a rest trial, per minute of rest
  trials. An event that began in the previous gesture and spills over is not a detection in rest
  (DESIGN.md); in a recording that starts mid-contraction (``open_start``) the onset lies before
  the recording, so it is not inside the trial either.
* **rest_hit_fraction**: fraction of rest trials with one event covering at least 25% of them.
* **onset delay**: event onset minus label onset, for non-rest trials that start at rest: no event
  is on at the end of the previous trial of the same recording (at the recording's first sample
  when the trial is the first). The first event overlapping ``[that sample, stop)`` is used; a
  negative delay means the contraction began before its label (UCI marks the hold, not the
  movement).

Rest is the shared-vocabulary key ``"rest"``; trials with any other key are gestures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REST = "rest"


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    return np.maximum(0, np.minimum(a1, b1) - np.maximum(a0, b0))


def detection_metrics(trial_recording: np.ndarray, trial_start: np.ndarray, trial_stop: np.ndarray,
                      trial_key: np.ndarray | list[str], event_recording: np.ndarray, event_onset: np.ndarray,
                      event_offset: np.ndarray, event_open_start: np.ndarray, fs: float, *,
                      min_cover: float = 0.25) -> dict[str, Any]:
    """Coverage, rest and onset-delay figures (see the module docstring) from trial and event tables.

    Recordings are identified by any integer per row. Returns ``n_gesture_trials``, ``coverage``,
    ``coverage_any``, ``n_rest_trials``, ``rest_minutes``, ``rest_events``, ``rest_events_per_minute``,
    ``rest_hit_fraction`` and ``onset_delay_ms`` (n, mean, median, p10, p90 ms, or None when empty);
    figures without trials of their kind are None.
    """
    tr = np.asarray(trial_recording, np.int64)
    t0 = np.asarray(trial_start, np.int64)
    t1 = np.asarray(trial_stop, np.int64)
    keys = np.asarray(trial_key, dtype=object)
    er = np.asarray(event_recording, np.int64)
    e0 = np.asarray(event_onset, np.int64)
    e1 = np.asarray(event_offset, np.int64)
    eos = np.asarray(event_open_start, bool)
    order = np.lexsort((e0, er))
    er, e0, e1, eos = er[order], e0[order], e1[order], eos[order]
    bounds = np.searchsorted(er, np.unique(tr)), np.searchsorted(er, np.unique(tr), side="right")
    span = {int(r): (int(a), int(b)) for r, a, b in zip(np.unique(tr), *bounds)}
    # end of the previous trial in the same recording (0 for a recording's first trial)
    tord = np.lexsort((t0, tr))
    prev_stop = np.zeros_like(t0)
    same = tr[tord][1:] == tr[tord][:-1]
    prev_stop[tord[1:]] = np.where(same, t1[tord][:-1], 0)

    cover, anyov, rest_hit, delays = [], [], [], []
    rest_events, rest_samples = 0, 0
    for r, a, b, k, q in zip(tr, t0, t1, keys, prev_stop):
        i, j = span[int(r)]
        ov = _overlap(e0[i:j], e1[i:j], a, b)
        frac = ov.max(initial=0) / max(b - a, 1)
        if k == REST:
            rest_hit.append(frac >= min_cover)
            rest_events += int(((e0[i:j] >= a) & (e0[i:j] < b) & ~eos[i:j]).sum())
            rest_samples += int(b - a)
            continue
        cover.append(frac >= min_cover)
        anyov.append(ov.max(initial=0) > 0)
        # onset delay, for repetitions that start at rest
        on_before = (e0[i:j] <= q) & (e1[i:j] > q)
        cand = np.flatnonzero(_overlap(e0[i:j], e1[i:j], q, b) > 0)
        if not on_before.any() and cand.size:
            delays.append((e0[i + cand[0]] - a) * 1000.0 / fs)

    def frac(v: list[bool]) -> float | None:
        return float(np.mean(v)) if v else None

    rest_min = rest_samples / fs / 60.0
    d = np.asarray(delays)
    return {
        "n_gesture_trials": len(cover),
        "coverage": frac(cover),
        "coverage_any": frac(anyov),
        "n_rest_trials": len(rest_hit),
        "rest_minutes": rest_min,
        "rest_events": rest_events,
        "rest_events_per_minute": rest_events / rest_min if rest_min > 0 else None,
        "rest_hit_fraction": frac(rest_hit),
        "onset_delay_ms": None if d.size == 0 else {
            "n": int(d.size), "mean": float(d.mean()), "median": float(np.median(d)),
            "p10": float(np.percentile(d, 10)), "p90": float(np.percentile(d, 90))},
    }


SUBJECT_KEYS = ("n_gesture_trials", "coverage", "coverage_any", "n_rest_trials", "rest_minutes", "rest_events",
                "rest_events_per_minute", "rest_hit_fraction")


def subject_summary(by_subject: dict[str, dict[str, Any]], *, limit_per_minute: float = 1.5) -> dict[str, Any]:
    """The spread over subjects of per-subject detection figures (``{subject: detection_metrics(...)}``).

    A subject's rest rate is one draw: with well under a minute of labelled rest, one false event is
    1-3 per minute for that subject, so the pooled rate hides who never relaxes. Returns the number of
    subjects (and of those with labelled rest / gestures), how many have any rest event and how many
    are above ``limit_per_minute``, the mean, median and max rate over subjects with rest, the mean and
    lowest coverage over subjects with gestures, and which subject is the worst for each (None when no
    subject has a rest event, or every subject full coverage). Figures without subjects of their kind
    are None.
    """
    rates = {s: m["rest_events_per_minute"] for s, m in by_subject.items() if m.get("rest_events_per_minute") is not None}
    cover = {s: m["coverage"] for s, m in by_subject.items() if m.get("coverage") is not None}
    r = np.asarray(list(rates.values()), float)
    c = np.asarray(list(cover.values()), float)
    return {
        "n_subjects": len(by_subject),
        "n_with_rest": len(rates),
        "n_with_rest_events": int(np.sum(r > 0)),
        "limit_per_minute": float(limit_per_minute),
        "n_above_limit": int(np.sum(r > limit_per_minute)),
        "rest_events_per_minute_mean": float(r.mean()) if r.size else None,
        "rest_events_per_minute_median": float(np.median(r)) if r.size else None,
        "rest_events_per_minute_max": float(r.max()) if r.size else None,
        "worst_rest_subject": max(rates, key=lambda s: rates[s]) if r.size and r.max() > 0 else None,
        "n_with_gestures": len(cover),
        "coverage_mean": float(c.mean()) if c.size else None,
        "coverage_min": float(c.min()) if c.size else None,
        "worst_coverage_subject": min(cover, key=lambda s: cover[s]) if c.size and c.min() < 1 else None,
    }
