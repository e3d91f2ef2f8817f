"""``aemg evaluate --corpus CORPUS --out EVAL_DIR``: methods on LOSO / within-subject / dataset-split folds."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aemg.corpus import Corpus
    from aemg.evaluate.folds import Fold
    from aemg.evaluate.report import Evaluation
    from aemg.evaluate.run import FoldResult

log = logging.getLogger(__name__)

DEFAULT_KS = (0, 1, 2, 4)
OUTPUTS = ("results.json", "results.md")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate methods on a labelled corpus (LOSO, low-label, splits)",
                       description="Train and test every method on the same folds of CORPUS: leave-one-subject-out "
                                   "with k calibration repetitions per class of the held-out subject (loso), within "
                                   "subject (within) or the dataset's own cross-session split (split). Writes "
                                   "results.json, results.md and PNG plots to EVAL_DIR and prints the table "
                                   "(or one JSON object with --json). The ablations aemg-windows and aemg-nospatial "
                                   "are aemg-finetune with runs of their own (--run-windows from aemg pretrain "
                                   "--window-ms 200, --run-nospatial from aemg pretrain --set encoder.position=index); "
                                   "every encoder method reads the corpus's token set of its run's kind (events or "
                                   "windows). See docs/evaluate.md.")
    p.add_argument("--corpus", required=True, type=Path, metavar="CORPUS", help="a corpus folder from aemg prepare")
    p.add_argument("--out", required=True, type=Path, metavar="EVAL_DIR", help="folder for the results")
    p.add_argument("--run", type=Path, default=None, metavar="RUN_DIR",
                   help="a run directory of aemg pretrain, or the name of a run stored in pretrained/ "
                        "(e.g. small-a; needed by the encoder methods only)")
    p.add_argument("--run-windows", type=Path, default=None, metavar="RUN_DIR",
                   help="the aemg-windows ablation's run: aemg pretrain --window-ms 200 (needed by that method only)")
    p.add_argument("--run-nospatial", type=Path, default=None, metavar="RUN_DIR",
                   help="the aemg-nospatial ablation's run: aemg pretrain --set encoder.position=index (needed by "
                        "that method only)")
    p.add_argument("--protocol", default="loso", choices=["loso", "within", "split"], help="fold rule (default loso)")
    p.add_argument("--k", default=None, metavar="K,K,...",
                   help="LOSO calibration repetitions per class (default 0,1,2,4, those the corpus has)")
    p.add_argument("--methods", default="lda-td,svm-tdar", metavar="NAME,NAME,...",
                   help="methods to evaluate (default lda-td,svm-tdar): lda-td, svm-tdar, aemg-finetune, aemg-probe, "
                        "scratch (these three need --run), aemg-windows (--run-windows), aemg-nospatial "
                        "(--run-nospatial); aemg-finetune, when given, is the reference")
    p.add_argument("--scale", default="calibration", choices=["session", "calibration"],
                   help="amplitude scale (default calibration: a held-out subject's scale from its calibration "
                        "trials only, raw device units at k = 0; session: the stored per-session scale, transductive)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="method_sets",
                   help="override one field of the encoder methods' training configs, repeatable: finetune.FIELD "
                        "(aemg-finetune, scratch: FinetuneConfig, e.g. finetune.epochs=2) or probe.FIELD "
                        "(aemg-probe: ProbeConfig, e.g. probe.classifier=logreg)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in EVAL_DIR")
    p.set_defaults(func=run)


def parse_ks(text: str) -> list[int]:
    """``"0,1,2,4"`` -> ``[0, 1, 2, 4]``; anything else is an OptionError."""
    from aemg.errors import OptionError

    try:
        ks = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise OptionError(f"--k {text}", "comma-separated whole numbers >= 0 (e.g. 0,1,2,4)",
                          f"found {text!r}") from None
    if not ks or ks[0] < 0:
        raise OptionError(f"--k {text}", "comma-separated whole numbers >= 0 (e.g. 0,1,2,4)", f"found {text!r}")
    return ks


def min_repetitions(trials: pd.DataFrame) -> int:
    """The fewest repetitions any subject has of any of its classes."""
    return int(trials.groupby(["subject", "gesture_key"]).size().min())


def choose_ks(args: argparse.Namespace, trials: pd.DataFrame) -> list[int]:
    """The ks of a LOSO run: the given ones (each below every subject's repetitions), else 0,1,2,4 that fit."""
    from aemg.errors import OptionError

    n = min_repetitions(trials)
    if args.k is None:
        return [k for k in DEFAULT_KS if k < n]
    ks = parse_ks(args.k)
    if ks[-1] >= n:
        raise OptionError(f"--k {args.k}", f"k below the fewest repetitions of a class of one subject ({n}), "
                          "so repetitions remain to test", f"found {ks[-1]}")
    return ks


def make_folds(args: argparse.Namespace, corpus: Corpus) -> list[Fold]:
    """The folds of ``--protocol`` on the corpus, or an OptionError saying why there are none."""
    from aemg.errors import OptionError
    from aemg.evaluate.folds import SPLITS, loso_folds, subjects_of, within_folds
    from aemg.evaluate.folds import split_folds as _split

    trials = corpus.trials
    if trials.empty:
        raise OptionError(f"--corpus {args.corpus}", "a corpus with labelled trials", "found none")
    if args.protocol == "loso":
        n = len(subjects_of(trials))
        if n < 2:
            raise OptionError("--protocol loso", "a corpus with at least two subjects", f"found {n}")
        folds = loso_folds(trials, choose_ks(args, trials))
    elif args.protocol == "within":
        folds = within_folds(trials)
    else:
        dataset = corpus.dataset
        if dataset not in SPLITS:
            raise OptionError("--protocol split", f"a dataset with its own cross-session split ({', '.join(SPLITS)})",
                              f"found {dataset}")
        folds = _split(trials, dataset, corpus.recordings)
    folds = [f for f in folds if f.test_trials and f.train_trials]
    if not folds:
        raise OptionError(f"--protocol {args.protocol}", f"folds with trials on both sides in {args.corpus}",
                          "found none")
    return folds


def method_configs(names: list[str], sets: list[str]) -> dict[str, Any]:
    """``{method: config}`` from ``--set finetune.F=V`` / ``probe.F=V``: ``aemg-probe`` gets the probe config,
    every other encoder method (ablations included) the fine-tuning one; ``{}`` without ``--set``."""
    import dataclasses
    import typing

    from aemg.errors import OptionError
    from aemg.evaluate.encoder_methods import FinetuneConfig, ProbeConfig
    from aemg.evaluate.registry import ablation_builders, encoder_builders
    from aemg.train.config import parse_value

    groups: dict[str, Any] = {"finetune": FinetuneConfig(), "probe": ProbeConfig()}
    for item in sets:
        key, sep, raw = item.partition("=")
        group, _, name = key.strip().partition(".")
        if not sep or group not in groups:
            raise OptionError(f"--set {item}", "finetune.FIELD=VALUE or probe.FIELD=VALUE", f"found {key.strip()!r}")
        cfg = groups[group]
        hints = typing.get_type_hints(type(cfg))
        if name not in hints:
            raise OptionError(f"--set {item}", f"a field of {group} ({', '.join(hints)})", f"found {name!r}")
        try:
            groups[group] = dataclasses.replace(cfg, **{name: parse_value(f"--set {item}", raw.strip(), hints[name])})
        except ValueError as e:  # a config's own check (__post_init__)
            raise OptionError(f"--set {item}", "a valid value", str(e)) from None
    if not sets:
        return {}
    encoders = {**encoder_builders(), **ablation_builders()}
    return {n: groups["probe" if n == "aemg-probe" else "finetune"] for n in names if n in encoders}


def check_out(args: argparse.Namespace) -> None:
    """EVAL_DIR must be a folder (or not yet exist) without results, unless --overwrite."""
    from aemg.errors import OptionError

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out}", "a folder for the results", "found a file")
    if not args.overwrite:
        there = [name for name in OUTPUTS if (out / name).exists()]
        if there:
            raise OptionError(f"--out {out}", "a folder without results (or --overwrite to replace them)",
                              f"found {out / there[0]}")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import warnings

    from tqdm import tqdm

    from aemg.corpus import Corpus
    from aemg.evaluate.data import SignalSource
    from aemg.evaluate.folds import classes_of
    from aemg.evaluate.registry import ABLATION_RUNS, method_factories, parse_methods
    from aemg.evaluate.report import Evaluation, file_hash, order_methods
    from aemg.evaluate.run import run_folds
    from aemg.train.checkpoint import resolve_run

    names = order_methods(parse_methods(args.methods))
    args.run = resolve_run(args.run) if args.run is not None else None  # a directory, or a stored run's name
    args.run_windows = resolve_run(args.run_windows, "--run-windows") if args.run_windows is not None else None
    args.run_nospatial = resolve_run(args.run_nospatial, "--run-nospatial") if args.run_nospatial is not None else None
    runs = {"aemg-windows": args.run_windows, "aemg-nospatial": args.run_nospatial}
    for name, path in runs.items():
        if path is not None and name not in names:
            log.warning("%s %s: method %s is not in --methods; the run is not used", ABLATION_RUNS[name][0], path, name)
    check_out(args)
    corpus = Corpus(args.corpus)
    factories = method_factories(names, run_dir=args.run, corpus=corpus, runs=runs,
                                 configs=method_configs(names, args.method_sets))
    folds = make_folds(args, corpus)
    ids = {t for f in folds for t in (*f.train_trials, *f.test_trials)}
    classes = classes_of(corpus.trials[corpus.trials["trial"].isin(ids)])
    source = SignalSource(corpus)
    bar = tqdm(total=len(folds) * len(factories), desc="evaluate", unit="fold", file=sys.stderr,
               disable=args.no_progress)

    def step(r: FoldResult) -> None:
        bar.set_postfix_str(f"{r.method} {r.fold} acc {r.accuracy:.2f}")
        bar.update(1)

    try:
        with warnings.catch_warnings():  # e.g. LDA's "variables are collinear" on a few folds: not the user's to fix
            warnings.simplefilter("ignore", UserWarning)
            results = run_folds(source, folds, factories, args.scale, classes, progress=step)
    finally:
        bar.close()
    run_info = None
    if args.run is not None:
        run_info = {"path": str(args.run), "hash": file_hash(args.run / "summary.json")}
    ablations = {name: {"path": str(path), "hash": file_hash(path / "summary.json")}
                 for name, path in runs.items() if path is not None and name in factories}
    if ablations:  # each ablation's own run, beside the main one
        run_info = {**(run_info or {"path": None, "hash": None}), "ablations": ablations}
    ev = Evaluation(dataset=corpus.dataset, protocol=args.protocol, scale=args.scale, methods=tuple(factories),
                    classes=classes, folds=folds, results=results,
                    corpus={"path": str(args.corpus), "hash": corpus.hash}, run=run_info)
    write_results(ev, args.out)
    if args.json:
        print(json.dumps(ev.summary()))
        return 0
    print(table(ev))
    print(f"written to {args.out}")
    return 0


def write_results(ev: Evaluation, out: Path) -> list[Path]:
    """results.json, results.md and the PNGs, each written atomically."""
    import json

    from aemg.atomic import atomic_write_text
    from aemg.evaluate.plots import write_plots

    atomic_write_text(out / "results.json", json.dumps(ev.to_json(), indent=1))
    atomic_write_text(out / "results.md", ev.markdown())
    return [out / "results.json", out / "results.md", *write_plots(ev, out)]


def table(ev: Evaluation) -> str:
    """The accuracy table printed on stdout: mean ± std over subjects per method and key."""
    import numpy as np

    keys = ev.keys
    head = "k" if ev.protocol == "loso" else "test"
    lines = [f"{ev.dataset} {ev.protocol}, scale {ev.scale}, n = {len(ev.subjects)} subjects; "
             "trial accuracy, mean ± std over subjects",
             f"{'method':<16}" + "".join(f"{head + '=' + k:>16}" for k in keys)]
    for m in ev.methods:
        cells = []
        for k in keys:
            v = np.array(ev.per_subject(m, k))
            cells.append(f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if np.isfinite(v).any() else "n/a")
        lines.append(f"{m:<16}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)
