"""Throughput of ``aemg prepare`` on the real UCI and 3DC data: raw MB per second and peak memory.

Each dataset is prepared in a fresh child process (so peak memory is that dataset's alone) into a
temporary folder that is removed afterwards. Figures per dataset: wall seconds of ``prepare`` (best
of ``--repeat``), raw input MB (sum of the source files' sizes, from provenance), MB/s, recordings
and hours prepared, peak resident memory of the child (``ru_maxrss``) and its resident memory just
before ``prepare`` (after importing numpy, scipy, h5py and pandas, whose one-time cost is reported
apart as ``import_seconds``), and with ``--tracemalloc`` the peak of traced allocations (numpy
arrays included; slows the run a little, so it is measured in a separate run).

Prints a human summary, then, as its LAST line, one JSON object with every figure.

    python benchmarks/bench_prepare.py [--datasets uci-gestures 3dc] [--repeat 1] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FOLDERS = {"uci-gestures": "uci-gestures", "3dc": "3dc", "cote-allard": "cote-allard", "ciil": "ciil"}


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024


def one(name: str, root: Path, repeat: int, trace: bool) -> dict:
    """Run in the child: prepare ``name`` ``repeat`` times, return the figures."""
    import logging

    logging.disable(logging.WARNING)  # the datasets' known duplicates and absent subjects are expected
    t0 = time.perf_counter()
    import h5py  # noqa: F401  one-time import costs (scipy.signal alone takes ~1.5 s) are not throughput
    import pandas  # noqa: F401

    import aemg.signal  # noqa: F401
    from aemg.corpus import prepare

    import_s = time.perf_counter() - t0
    base_rss = _rss_mb()
    times = []
    corpus = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="aemg-bench-") as tmp:
            t0 = time.perf_counter()
            corpus = prepare(name, root / FOLDERS[name], Path(tmp) / "corpus", progress=False)
            times.append(time.perf_counter() - t0)
            summary = corpus.summary()
            out_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    peak_rss = _rss_mb()
    raw_mb = sum(s["size"] for s in corpus.provenance["sources"]) / 1e6
    best = min(times)
    fig = {"dataset": name, "seconds": round(best, 3), "seconds_all": [round(t, 3) for t in times],
           "raw_mb": round(raw_mb, 2), "mb_per_s": round(raw_mb / best, 2), "corpus_mb": round(out_mb, 2),
           "recordings": summary["n_recordings"], "trials": summary["n_trials"], "hours": round(summary["hours"], 4),
           "recording_hours_per_s": round(summary["hours"] / best, 4),
           "peak_rss_mb": round(peak_rss, 1), "rss_before_mb": round(base_rss, 1),
           "import_seconds": round(import_s, 3)}
    if trace:
        import tracemalloc

        with tempfile.TemporaryDirectory(prefix="aemg-bench-") as tmp:
            tracemalloc.start()
            prepare(name, root / FOLDERS[name], Path(tmp) / "corpus", progress=False)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        fig["tracemalloc_peak_mb"] = round(peak / 1e6, 1)
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["uci-gestures", "3dc"], choices=sorted(FOLDERS))
    p.add_argument("--root", type=Path, default=REAL_ROOT, help=f"real data folder (default: {REAL_ROOT})")
    p.add_argument("--repeat", type=int, default=1, help="runs per dataset; the best time is reported")
    p.add_argument("--tracemalloc", action="store_true", help="also measure the peak of traced allocations")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child mode
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.root, args.repeat, args.tracemalloc)))
        return 0
    results = []
    for name in args.datasets:
        cmd = [sys.executable, __file__, "--one", name, "--root", str(args.root), "--repeat", str(args.repeat)]
        if args.tracemalloc:
            cmd.append("--tracemalloc")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"bench_prepare: {name} failed (exit {done.returncode})")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"aemg prepare throughput ({platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()})")
    for r in results:
        extra = f", tracemalloc peak {r['tracemalloc_peak_mb']} MB" if "tracemalloc_peak_mb" in r else ""
        print(f"  {r['dataset']:13s} {r['raw_mb']:7.1f} MB raw in {r['seconds']:6.2f} s = {r['mb_per_s']:6.2f} MB/s; "
              f"{r['recordings']} recordings, {r['hours']:.2f} h of EMG ({r['recording_hours_per_s']:.3f} h/s); "
              f"corpus {r['corpus_mb']:.1f} MB; peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(before prepare {r['rss_before_mb']:.0f} MB){extra}")
    total_mb = sum(r["raw_mb"] for r in results)
    total_s = sum(r["seconds"] for r in results)
    print(json.dumps({"benchmark": "prepare", "python": platform.python_version(), "cpus": os.cpu_count(),
                      "total_raw_mb": round(total_mb, 2), "total_seconds": round(total_s, 3),
                      "mb_per_s": round(total_mb / total_s, 2) if total_s else None, "datasets": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
