"""Tokenizer throughput on real 3DC and UCI data against numpy time-domain features.

Usage: ``python benchmarks/bench_tokenizer.py [--root DIR] [--uci DIR] [--repeat N]``

``--root`` is a 3DC-layout folder (default ``../shared/data/3dc`` beside the repository), ``--uci``
the UCI gestures folder. Both are prepared into a temporary corpus at 200 Hz (readers, harmonization:
the corpus pipeline), and every recording is loaded into memory before timing, so neither reading
nor preparing is timed. Timed, on the same signals:

* tokenizer: :func:`aemg.tokens.tokenize_recordings` (session floor, causal detector over the
  session's recordings, token content, the TokenSet tables);
* reference: per recording and channel, MAV, WL, ZC and SSC on 200 ms windows with a 50 ms hop,
  windows from :func:`numpy.lib.stride_tricks.sliding_window_view` (ZC/SSC threshold: 1% of the
  channel's std).

Throughput is channel-samples per second (best of ``--repeat`` runs). Memory: the peak that
tracemalloc sees while tokenizing, beside the input, the output (TokenSet arrays) and the largest
session (the tokenizer's working set is one session, so the peak should track the output, not the
input). The last line is a JSON
object with both throughputs per dataset and overall, and ``ratio`` = tokenizer / reference over
both datasets (target >= 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def td_features(x: np.ndarray, fs: float, window_ms: float = 200.0, hop_ms: float = 50.0) -> np.ndarray:
    """MAV, WL, ZC, SSC per (channel, window): ``(C, n_windows, 4)``."""
    w = int(round(window_ms * fs / 1000.0))
    h = int(round(hop_ms * fs / 1000.0))
    if x.shape[1] < w:
        return np.zeros((x.shape[0], 0, 4))
    win = sliding_window_view(x, w, axis=1)[:, ::h]  # (C, n, w)
    thr = 0.01 * x.std(axis=1)[:, None, None]
    d = np.diff(win, axis=-1)
    mav = np.abs(win).mean(-1)
    wl = np.abs(d).sum(-1)
    zc = ((win[..., :-1] * win[..., 1:] < 0) & (np.abs(d) >= thr)).sum(-1)
    ssc = ((d[..., :-1] * d[..., 1:] < 0) & ((np.abs(d[..., :-1]) >= thr) | (np.abs(d[..., 1:]) >= thr))).sum(-1)
    return np.stack([mav, wl, zc, ssc], axis=-1)


def load(name: str, root: Path, tmp: Path) -> list:
    from aemg.corpus import Corpus, prepare

    prepare(name, root, tmp / name, progress=False)
    return list(Corpus(tmp / name).iter_recordings())


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def traced(fn):
    """``(result, peak bytes allocated by numpy/Python while running fn)`` via tracemalloc."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sessions(recs) -> dict:
    """Signal bytes per (subject, session): the tokenizer's working set is one session."""
    size: dict = {}
    for r in recs:
        size[(r.subject, r.session)] = size.get((r.subject, r.session), 0) + r.signal.nbytes
    return size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "3dc", help="3DC-layout folder")
    ap.add_argument("--uci", type=Path, default=ROOT / "uci-gestures", help="UCI gestures folder")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from aemg.tokens import tokenize_recordings

    result: dict[str, object] = {}
    tot_tok = tot_ref = tot_cs = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, root in (("3dc", args.root), ("uci-gestures", args.uci)):
            if not root.is_dir():
                print(f"{name}: {root} not found, skipped", file=sys.stderr)
                continue
            recs = load(name, root, Path(tmp))
            cs = float(sum(r.n_channels * r.n_samples for r in recs))
            t_tok = best_of(lambda recs=recs: tokenize_recordings(recs), args.repeat)
            t_ref = best_of(lambda recs=recs: [td_features(r.signal, r.fs) for r in recs], args.repeat)
            ts, peak = traced(lambda recs=recs: tokenize_recordings(recs))
            out_bytes = sum(v.nbytes for v in ts.columns().values())
            biggest = max(sessions(recs).values())  # largest session's float32 signal, bytes
            row = {"recordings": len(recs), "channel_samples": int(cs), "fs": recs[0].fs,
                   "tokenizer_s": t_tok, "reference_s": t_ref, "tokenizer_cs_per_s": cs / t_tok,
                   "reference_cs_per_s": cs / t_ref, "ratio": t_ref / t_tok, "n_groups": ts.n_groups,
                   "n_tokens": ts.n_tokens, "peak_mb": peak / 1e6, "output_mb": out_bytes / 1e6,
                   "input_mb": cs * 4 / 1e6, "largest_session_mb": biggest / 1e6}
            print(f"{name}: {len(recs)} recordings, {cs:.3g} channel-samples at {recs[0].fs:g} Hz: tokenizer "
                  f"{cs / t_tok:.3g} cs/s ({t_tok * 1000:.1f} ms), TD reference {cs / t_ref:.3g} cs/s "
                  f"({t_ref * 1000:.1f} ms), ratio {t_ref / t_tok:.2f}; peak memory {peak / 1e6:.1f} MB for "
                  f"{cs * 4 / 1e6:.1f} MB of input, {out_bytes / 1e6:.1f} MB of output, largest session "
                  f"{biggest / 1e6:.1f} MB")
            result[name] = row
            tot_tok += t_tok
            tot_ref += t_ref
            tot_cs += cs
    if not tot_cs:
        print(json.dumps({"ratio": None, "error": "no data"}))
        return 1
    result.update({"tokenizer_cs_per_s": tot_cs / tot_tok, "reference_cs_per_s": tot_cs / tot_ref,
                   "ratio": tot_ref / tot_tok})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
