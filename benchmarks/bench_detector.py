"""The event detector per subject, and detector settings chosen by cross-validation across datasets.

The rest false-event rate that matters is a new subject's, and a subject here has well under a minute of
labelled rest, so the pooled figure of ``aemg tokenize`` hides the spread. This benchmark scores every
subject of the five real corpora of ``../shared/data`` alone (``TokenSet.metrics_by_subject``: coverage
of gesture repetitions, rest false events per minute, rest hit) for the defaults and for each setting of
a grid around them (:func:`grid`), then asks whether re-tuning would help subjects it never saw:
leave-one-dataset-out, for each dataset the setting is chosen on the other four datasets' subjects and
scored on that dataset's subjects only.

The choice rule (``--coverage-tolerance``): among the settings whose mean coverage over the tuning
subjects is at most the tolerance below the defaults' mean coverage there, the lowest mean rest rate over
the tuning subjects (ties: the higher coverage, then the defaults). The defaults are always allowed, so where nothing beats
them on the tuning subjects they are the choice. Note that the defaults themselves were chosen on these
corpora (docs/tokens.md), so their row is in-sample; the cross-validated row is an estimate for unseen
subjects of a setting chosen this way, and the comparison says whether re-tuning is worth it.

Each setting tokenizes all five corpora (about 30 s on one core); ``--jobs`` settings run at once, and the
per-subject figures of every setting are cached in ``--work`` (keyed by the setting and the corpora's
provenance), so a second run only redoes the cross-validation. Corpora are prepared once into
``--corpora`` like ``bench_loso.py``. Prints a table, then as its LAST line one JSON object:
``{"defaults": summary, "cv": {dataset: {"chosen": setting, "defaults": summary, "chosen_scores": summary}},
"cv_pooled": {"defaults": ..., "chosen": ...}, "n_settings": ..., "wall_s": ...}`` (a summary is
``aemg.tokens.metrics.subject_summary`` over that dataset's subjects).

    python benchmarks/bench_detector.py [--work /tmp/aemg-bench-detector] [--jobs 2] [--coverage-tolerance 0.01]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loso import corpus_for, log  # noqa: E402

CORPORA = ("uci-gestures", "cote-allard", "ciil", "3dc", "long-term-semg")  # CIIL's two protocols share subjects


def grid() -> list[dict[str, float]]:
    """Settings around the defaults (``DetectorConfig`` overrides; ``{}`` is the defaults)."""
    out: list[dict[str, float]] = [{}]
    for on, off, md in itertools.product((5.0, 6.0, 7.0, 8.0), (2.0, 2.5), (500.0, 700.0)):
        if (on, off, md) != (5.0, 2.0, 500.0):
            out.append({"on": on, "off": off, "min_duration_ms": md})
    out += [{"on": 4.5}, {"min_duration_ms": 300.0}, {"on": 5.0, "min_duration_ms": 1000.0},
            {"on": 6.0, "min_duration_ms": 1000.0}, {"smooth_ms": 150.0}, {"floor_percentile": 12.5},
            {"merge_gap_ms": 100.0}]
    return out


def name(setting: dict[str, float]) -> str:
    return "defaults" if not setting else ",".join(f"{k}={v:g}" for k, v in sorted(setting.items()))


def per_subject(setting: dict[str, float], corpora: list[str]) -> dict[str, dict[str, Any]]:
    """Detection figures of every subject of ``corpora`` (folders) under one detector setting."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from aemg.corpus import Corpus
    from aemg.tokens import DetectorConfig, tokenize_corpus

    cfg = DetectorConfig(**setting)
    out: dict[str, dict[str, Any]] = {}
    for folder in corpora:
        out.update(tokenize_corpus(Corpus(folder), cfg).metrics_by_subject())
    return out


def dataset_of(subject: str) -> str:
    """The corpus a subject id belongs to (its first path part: ``3dc/all/Participant1`` -> ``3dc``)."""
    return subject.split("/", 1)[0]


def summary(figures: dict[str, dict[str, Any]], subjects: set[str], limit: float = 1.5) -> dict[str, Any]:
    """``subject_summary`` of one setting's per-subject ``figures``, restricted to ``subjects``."""
    from aemg.tokens.metrics import subject_summary

    return subject_summary({s: m for s, m in figures.items() if s in subjects}, limit_per_minute=limit)


def choose(figures: dict[str, dict[str, dict[str, Any]]], subjects: set[str], tolerance: float) -> str:
    """The setting chosen on ``subjects`` alone (see the module docstring for the rule)."""
    def score(setting: str) -> tuple[float, float]:
        q = summary(figures[setting], subjects)
        return q["rest_events_per_minute_mean"] or 0.0, q["coverage_mean"] or 0.0

    _, base_cover = score("defaults")
    ok = [(rate, -cover, s != "defaults", s) for s in figures for rate, cover in [score(s)]
          if cover >= base_cover - tolerance]
    return min(ok)[3]


def main(argv: list[str] | None = None) -> int:
    from aemg.tokens.metrics import subject_summary

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--work", type=Path, default=Path("/tmp/aemg-bench-detector"),
                   help="cache of per-setting figures (default /tmp/aemg-bench-detector)")
    p.add_argument("--corpora", type=Path, default=None, help="prepared corpora (default WORK/corpora)")
    p.add_argument("--datasets", nargs="+", default=list(CORPORA), choices=CORPORA, metavar="DATASET",
                   help=f"the corpora to score (default all five: {' '.join(CORPORA)}); two or more for the "
                        "cross-validation")
    p.add_argument("--jobs", type=int, default=2, help="settings tokenized at once, one process each (default 2)")
    p.add_argument("--coverage-tolerance", type=float, default=0.01,
                   help="coverage the chosen setting may lose against the defaults on the tuning subjects "
                        "(a fraction of gesture repetitions; default 0.01)")
    p.add_argument("--limit", type=float, default=1.5, help="rest events per minute counted as too many (default 1.5)")
    args = p.parse_args(argv)
    if args.jobs < 1 or not args.coverage_tolerance >= 0:
        p.error("--jobs must be >= 1 and --coverage-tolerance >= 0")
    if len(set(args.datasets)) < 2:
        p.error("--datasets: give two or more corpora (each is scored with a setting chosen on the others)")
    t0 = time.perf_counter()
    corpora_dir = args.corpora or args.work / "corpora"
    datasets = sorted(set(args.datasets))
    folders = [str(corpus_for(d, corpora_dir).path) for d in datasets]
    key = hashlib.sha256("".join(Path(f, "provenance.json").read_text() for f in folders).encode()).hexdigest()[:12]
    cache = args.work / f"figures-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    settings = {name(s): s for s in grid()}
    todo = [n for n in settings if not (cache / f"{n}.json").is_file()]
    log(f"{len(settings)} settings, {len(todo)} to tokenize ({len(folders)} corpora each)")
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, (n, figs) in enumerate(zip(todo, pool.map(per_subject, [settings[n] for n in todo],
                                                            itertools.repeat(folders)))):
            tmp = cache / f"{n}.json.tmp"
            tmp.write_text(json.dumps(figs))
            tmp.replace(cache / f"{n}.json")
            log(f"{done + 1}/{len(todo)} {n}")
    figures = {n: json.loads((cache / f"{n}.json").read_text()) for n in settings}

    everyone = set(figures["defaults"])
    cv: dict[str, Any] = {}
    pooled_chosen: dict[str, dict[str, Any]] = {}  # every subject under the setting its fold chose
    for d in datasets:
        held = {s for s in everyone if dataset_of(s) == d}
        chosen = choose(figures, everyone - held, args.coverage_tolerance)
        cv[d] = {"chosen": chosen, "defaults": summary(figures["defaults"], held, args.limit),
                 "chosen_scores": summary(figures[chosen], held, args.limit)}
        pooled_chosen.update({s: figures[chosen][s] for s in held})
    defaults = summary(figures["defaults"], everyone, args.limit)  # the folds partition the subjects
    out = {"defaults": defaults,
           "cv": cv,
           "cv_pooled": {"defaults": defaults, "chosen": subject_summary(pooled_chosen, limit_per_minute=args.limit)},
           "n_settings": len(settings), "coverage_tolerance": args.coverage_tolerance,
           "wall_s": round(time.perf_counter() - t0, 1)}

    def row(label: str, q: dict[str, Any]) -> str:
        def f(key: str, fmt: str) -> str:  # None where no subject has rest (or gestures)
            return "-" if q[key] is None else format(q[key], fmt)

        return (f"  {label:<44} rest/min mean {f('rest_events_per_minute_mean', '.2f')} max "
                f"{f('rest_events_per_minute_max', '.2f')}  > {args.limit:g}: {q['n_above_limit']}/{q['n_with_rest']}  "
                f"coverage mean {f('coverage_mean', '.3f')} min {f('coverage_min', '.3f')}")

    print(f"leave-one-dataset-out ({len(settings)} settings; chosen on the other datasets' subjects)")
    for d in datasets:
        print(f"{d} ({cv[d]['defaults']['n_subjects']} subjects)")
        print(row("defaults", cv[d]["defaults"]))
        print(row(f"chosen: {cv[d]['chosen']}", cv[d]["chosen_scores"]))
    print("all held-out subjects")
    print(row("defaults", out["cv_pooled"]["defaults"]))
    print(row("cross-validated choice", out["cv_pooled"]["chosen"]))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
