"""Classic baselines (``lda-td``, ``svm-tdar``) on the real corpora: LOSO, low-label k, within-subject, splits.

Prepares each real dataset of ``../shared/data`` once into ``--work`` (reused when already there),
then per dataset and scale (``session``, ``calibration``):

* ``loso``: leave-one-subject-out at k = 0, every trial of the held-out subject tested (the
  figure to compare with the README's reference table: ``calibration`` at k = 0 is raw device units);
* ``"0"``, ``"1"``, ``"2"``: the low-label curve, each k tested on the same repetitions (those after
  k = 2); k = 0 of the curve is the ``loso`` model scored on those repetitions only (same training
  side, so no second fit);
* ``within``: within-subject, first half of the repetitions -> the rest;
* ``split``: the dataset's own cross-session split, where it has one.

The SVM is fitted on at most ``--max-svm-windows`` training windows (a stratified random subset):
its fit grows about quadratically with the window count. Prints a table, then, as its LAST line,
one JSON object ``{dataset: {method: {scale: {key: mean trial accuracy}}}, "wall_s": ...}``.

    python benchmarks/bench_baselines.py [--work /tmp/aemg-bench-baselines] [--datasets 3dc uci-gestures]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# benchmark name -> (registry dataset, subject-id prefix inside its corpus, split name or None)
DATASETS = {
    "3dc": ("3dc", "", "3dc"),
    "cote-allard": ("cote-allard", "", "cote-allard"),
    "ciil-minimal": ("ciil", "ciil/minimal/", None),
    "ciil-electrodeshift": ("ciil", "ciil/electrodeshift/", "ciil"),
    "uci-gestures": ("uci-gestures", "", None),
}
REFERENCE = {  # shared/data/README.md: LOSO trial accuracy in raw device units, LDA-TD / SVM-TDAR
    "3dc": (0.266, 0.212), "cote-allard": (0.619, 0.743), "ciil-minimal": (0.755, 0.766),
    "ciil-electrodeshift": (0.701, 0.766), "uci-gestures": (0.660, 0.771),
}
KS = (0, 1, 2)


def corpus_for(name: str, work: Path):
    from aemg.corpus import Corpus, prepare

    out = work / name
    if (out / "provenance.json").is_file():
        try:
            return Corpus(out)
        except Exception:  # noqa: BLE001 - an interrupted or stale folder: prepare again
            pass
    return prepare(name, REAL_ROOT / name, out, progress=False)


def restricted(results, trials: set[int]) -> float:
    """Mean over folds of the trial accuracy on the given trials only."""
    accs = []
    for r in results:
        keep = [i for i, t in enumerate(r.test_trials) if t in trials]
        if keep:
            accs.append(float(np.mean([r.y_true[i] == r.y_pred[i] for i in keep])))
    return float(np.mean(accs))


def bench_one(bench_name: str, work: Path, max_svm: int, log) -> dict:
    from aemg.evaluate.baselines import lda_td, svm_tdar
    from aemg.evaluate.data import SCALES, SignalSource
    from aemg.evaluate.folds import classes_of, loso_folds, split_folds, subset, within_folds
    from aemg.evaluate.run import run_folds

    dataset, prefix, split = DATASETS[bench_name]
    corpus = corpus_for(dataset, work)
    trials = subset(corpus.trials, prefix)
    classes = classes_of(trials)
    source = SignalSource(corpus)
    methods = {"lda-td": lda_td, "svm-tdar": partial(svm_tdar, max_train_windows=max_svm)}
    min_reps = int(trials.groupby(["subject", "gesture_key"]).size().min())
    ks = tuple(k for k in KS if k < min_reps)
    out: dict = {m: {s: {} for s in SCALES} for m in methods}
    for scale in SCALES:
        t0 = time.perf_counter()
        loso = run_folds(source, loso_folds(trials, (0,)), methods, scale, classes)
        curve_folds = [f for f in loso_folds(trials, ks) if f.k]
        curve = run_folds(source, curve_folds, methods, scale, classes)
        tested = {t for f in curve_folds for t in f.test_trials}
        within = run_folds(source, within_folds(trials), methods, scale, classes)
        splits = run_folds(source, split_folds(trials, split), methods, scale, classes) if split else []
        for m in methods:
            row = out[m][scale]
            row["loso"] = float(np.mean([r.accuracy for r in loso if r.method == m]))
            row["loso_std"] = float(np.std([r.accuracy for r in loso if r.method == m]))
            if tested:
                row["0"] = restricted([r for r in loso if r.method == m], tested)
            for k in ks[1:]:
                row[str(k)] = float(np.mean([r.accuracy for r in curve if r.method == m and r.k == k]))
            row["within"] = float(np.mean([r.accuracy for r in within if r.method == m]))
            if splits:
                row["split"] = float(np.mean([r.accuracy for r in splits if r.method == m]))
        log(f"{bench_name} {scale}: {time.perf_counter() - t0:.0f} s")
    return out


def table(results: dict) -> str:
    keys = ["loso", "0", "1", "2", "within", "split"]
    head = [f"{'loso':>13}"] + [f"{k:>7}" for k in keys[1:]]
    lines = [f"{'dataset':<20} {'method':<9} {'scale':<12} " + " ".join(head) + "   reference LOSO"]
    for ds, per_method in results.items():
        for i, (m, per_scale) in enumerate(per_method.items()):
            for scale, row in per_scale.items():
                cells = []
                for k in keys:
                    v = row.get(k)
                    cells.append(f"{v:7.3f}" if v is not None else f"{'-':>7}")
                cells[0] = f"{row['loso']:.3f}±{row.get('loso_std', float('nan')):.3f}".rjust(13)
                ref = f"{REFERENCE[ds][i]:.3f}" if scale == "calibration" and ds in REFERENCE else ""
                lines.append(f"{ds:<20} {m:<9} {scale:<12} " + " ".join(cells) + f"   {ref}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/aemg-bench-baselines"),
                   help="folder for the prepared corpora (reused between runs)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--max-svm-windows", type=int, default=6000, help="SVM training windows per fold (default 6000)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the datasets' known duplicates and absent subjects are expected
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    results = {name: bench_one(name, args.work, args.max_svm_windows, log) for name in args.datasets}
    print(table(results))
    print("keys: loso = LOSO k=0 on all trials (mean±std over subjects); 0/1/2 = low-label k on the same "
          "repetitions (after k=2); within = first half of repetitions -> rest; split = the dataset's own "
          "cross-session split. Trial accuracy by majority vote. Reference: shared/data/README.md (raw units).")
    summary = {ds: {m: {s: {k: round(v, 4) for k, v in row.items() if k != "loso_std"} for s, row in per.items()}
                    for m, per in res.items()} for ds, res in results.items()}
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
