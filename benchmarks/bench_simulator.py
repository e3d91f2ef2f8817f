"""How hard the simulated EMG is, beside real corpora: the figures the simulator is calibrated on.

Usage: ``python benchmarks/bench_simulator.py [--real CORPUS ...] [--subjects N] [--seed S] [--no-lda]``

``--real`` are prepared corpora (``aemg prepare``; default: none, only the simulation is measured).
The simulation (``--subjects``, default 4, ``--seed``) is written to a temporary folder and imported
at 200 Hz (``aemg import``), as the demo does. Per corpus, with aemg's own tools:

* per subject-session, the token detector's combined level (upper median over channels of the
  TKEO envelope / the session's noise floor, :mod:`aemg.tokens.energy`): its median over each trial,
  then the median over the session's gesture trials (``contraction``) and its rest trials (``rest``),
  and their ratio (``ratio``; median and 10-90 % range over sessions);
* the detector's events whose onset falls in rest, per minute of rest (``rest_ev/min``) and the
  fraction of gesture trials covered (``coverage``), from :func:`aemg.tokens.metrics.detection_metrics`;
* LDA-TD trial accuracy (``--scale session``): LOSO at k = 0 and within subject (first half of each
  class's repetitions -> the rest), and their gap.

Prints a table; the last line is one JSON object ``{corpus: {figure: value}}`` plus ``wall_s``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def session_levels(recs: list, rest_key: str = "rest") -> dict[str, Any]:
    """The session's trial levels (median combined level / floor) and detector events, from its recordings."""
    from aemg.tokens import DetectorConfig
    from aemg.tokens.energy import EnergyEnvelope, floor_from_samples, floor_samples
    from aemg.tokens.tokenizer import tokenize_session

    cfg = DetectorConfig()
    fs = float(recs[0].fs)
    stage = EnergyEnvelope(fs, recs[0].n_channels, highpass_hz=cfg.highpass_hz, order=cfg.highpass_order,
                           smooth_ms=cfg.smooth_ms)
    envs, samples, pos = [], [], 0
    for r in recs:
        env = stage.process(r.signal)[1]
        samples.append(floor_samples(env, pos, fs, stage.warmup))
        envs.append(env)
        pos += env.shape[1]
    floor = floor_from_samples(np.concatenate(samples, axis=1), cfg.floor_percentile)
    gest, rest = [], []
    for r, env in zip(recs, envs):
        level = np.sort(env / np.maximum(floor, 1e-30)[:, None], axis=0)[env.shape[0] // 2]
        for a, b, lab, _ in r.trials():
            key = r.gesture_keys[lab] if lab >= 0 else ""
            v = float(np.median(level[a:b])) if b > a else np.nan
            (rest if key == rest_key else gest).append(v)
    st = tokenize_session(recs, cfg)
    return {"gesture": gest, "rest": rest, "pieces": st.pieces}


def detection(recs: list, pieces: list[dict]) -> dict[str, Any]:
    """Coverage and rest false events of one session (:func:`aemg.tokens.metrics.detection_metrics`)."""
    from aemg.tokens.metrics import detection_metrics

    tr = [(i, a, b, (r.gesture_keys[lab] if lab >= 0 else "")) for i, r in enumerate(recs) for a, b, lab, _ in r.trials()]
    ev = [(p["recording"], p["onset"], p["offset"], p["open_start"] or p["event_onset"] < p["onset"]) for p in pieces]
    tr_a = list(zip(*tr)) if tr else [[], [], [], []]
    ev_a = list(zip(*ev)) if ev else [[], [], [], []]
    return detection_metrics(np.array(tr_a[0]), np.array(tr_a[1]), np.array(tr_a[2]), list(tr_a[3]),
                             np.array(ev_a[0], np.int64), np.array(ev_a[1], np.int64), np.array(ev_a[2], np.int64),
                             np.array(ev_a[3], bool), float(recs[0].fs))


def energy_figures(corpus: Any) -> dict[str, Any]:
    """Per-session contraction and rest levels, their ratio, rest events per minute and coverage."""
    from aemg.tokens.tokenizer import iter_sessions

    ratio, con, rst, rest_ev, rest_min, cov = [], [], [], 0, 0.0, []
    for recs in iter_sessions(corpus.iter_recordings()):
        lv = session_levels(recs)
        g, r = np.array(lv["gesture"]), np.array(lv["rest"])
        m = detection(recs, lv["pieces"])
        if m["coverage"] is not None:
            cov.append(m["coverage"])
        if not (g.size and r.size):
            continue
        c, q = float(np.nanmedian(g)), float(np.nanmedian(r))
        con.append(c)
        rst.append(q)
        ratio.append(c / max(q, 1e-9))
        rest_ev += m["rest_events"]
        rest_min += m["rest_minutes"] or 0.0

    def stat(v: list[float]) -> dict[str, float] | None:
        if not v:
            return None
        return {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90))}

    return {"n_sessions": len(ratio), "contraction": stat(con), "rest": stat(rst), "ratio": stat(ratio),
            "rest_events_per_minute": rest_ev / rest_min if rest_min else None,
            "coverage": float(np.mean(cov)) if cov else None}


def lda_figures(corpus: Any) -> dict[str, float]:
    """LDA-TD trial accuracy, session scale: LOSO (k = 0) and within subject, means over subjects."""
    from aemg.evaluate.baselines import lda_td
    from aemg.evaluate.data import SignalSource
    from aemg.evaluate.folds import loso_folds, within_folds
    from aemg.evaluate.run import run_folds

    src = SignalSource(corpus)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, folds in (("loso", loso_folds(corpus.trials)), ("within", within_folds(corpus.trials))):
            res = run_folds(src, [f for f in folds if f.test_trials and f.train_trials], {"lda-td": lda_td}, "session")
            out[name] = float(np.mean([r.accuracy for r in res]))
    out["gap"] = out["within"] - out["loso"]
    return out


def simulated_corpus(tmp: Path, subjects: int, seed: int) -> Path:
    """The demo's simulation, imported at 200 Hz: its corpus folder."""
    from aemg.corpus import import_manifest
    from aemg.simulate import simulate_dataset

    simulate_dataset(tmp / "sim", n_subjects=subjects, seed=seed, progress=False)
    import_manifest(tmp / "sim", tmp / "corpus", progress=False)
    return tmp / "corpus"


def measure(path: Path, lda: bool) -> dict[str, Any]:
    from aemg.corpus import Corpus

    c = Corpus(path)
    out = {"dataset": c.dataset, **energy_figures(c)}
    if lda:
        out["lda_td"] = lda_figures(c)
    return out


def _fmt(s: dict | None, digits: int = 1) -> str:
    if s is None:
        return "n/a"
    return f"{s['median']:.{digits}f} ({s['p10']:.{digits}f}-{s['p90']:.{digits}f})"


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (f"{'corpus':<22}{'sessions':>9}{'contraction/floor':>22}{'rest/floor':>18}{'ratio':>22}"
            f"{'rest ev/min':>12}{'coverage':>10}{'LDA LOSO':>10}{'within':>8}{'gap':>7}")
    lines = [head]
    for name, r in results.items():
        lda = r.get("lda_td") or {}
        rev, cov = r["rest_events_per_minute"], r["coverage"]
        lines.append(f"{name:<22}{r['n_sessions']:>9}{_fmt(r['contraction']):>22}{_fmt(r['rest'], 2):>18}"
                     f"{_fmt(r['ratio']):>22}{'n/a' if rev is None else f'{rev:.2f}':>12}"
                     f"{'n/a' if cov is None else f'{cov:.2f}':>10}"
                     f"{lda.get('loso', float('nan')):>10.3f}{lda.get('within', float('nan')):>8.3f}"
                     f"{lda.get('gap', float('nan')):>7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", nargs="*", default=[], type=Path, metavar="CORPUS", help="prepared real corpora")
    ap.add_argument("--subjects", type=int, default=4, help="simulated subjects (default 4, as the demo)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed (default 0, as the demo)")
    ap.add_argument("--no-lda", action="store_true", help="skip the LDA-TD LOSO/within figures")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    results: dict[str, dict[str, Any]] = {}
    for path in args.real:
        r = measure(path, not args.no_lda)
        results[r["dataset"]] = r
        print(f"measured {path}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="aemg-bench-sim-") as tmp:
        r = measure(simulated_corpus(Path(tmp), args.subjects, args.seed), not args.no_lda)
    results[f"simulated (seed {args.seed})"] = r
    print(table(results))
    print(json.dumps({**results, "wall_s": round(time.time() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
