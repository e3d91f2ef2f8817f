"""LOSO and low-label adaptation of every method on every real labelled dataset, from the stored runs.

For each dataset of ``../shared/data`` (3DC, Côté-Allard, UCI, CIIL Minimal, CIIL ElectrodeShift,
long-term-semg) and each method of ``--methods`` (default: ``aemg-finetune aemg-probe scratch
aemg-windows aemg-nospatial lda-td svm-tdar``; a name this checkout does not know is skipped with a
printed note), per scale of ``--scale``:

* ``loso``: leave-one-subject-out at k = 0, every trial of the held-out subject tested;
* ``0``, ``1``, ``2``: low-label, the held-out subject's first k repetitions per class added to
  training (the ks its repetitions allow), every k tested on the same repetitions (those after the
  largest k); k = 0 is the ``loso`` model scored on those repetitions only (no second fit).

Encoder methods start from a pre-trained run stored in ``pretrained/`` (or, with ``--runs DIR``, a run
folder directly under DIR) that never saw the subjects the benchmark tests on the target (of those, the one
pre-trained on the most datasets, then subjects: with the stored runs ``small-a`` for 3DC and Côté-Allard,
``small-b`` for the others; ``small-all`` saw every subject and is never used). A run made with ``aemg
pretrain --exclude-subject`` for the tested subjects (in-domain: the target's other subjects pre-trained on)
therefore wins over one that never saw the dataset. The leakage guard of :mod:`aemg.evaluate.encoder_methods`
refuses a wrong one anyway.
The ablations (``aemg-windows``, ``aemg-nospatial``) need runs of their own, made like that stored run (its
resolved ``config.json``: steps, codebook, token content, seed; the same corpora) plus the ablation's
option, keyed by a hash of those and the corpora's provenance and token hashes: for the stored runs they
are kept in ``pretrained/ablations/<method>-<run>`` (used when their ``bench_key.txt`` matches), otherwise
(``--runs``, other corpora) pre-trained here once and cached under ``--work/runs/<method>-<key>``. Under
``calibration`` the encoder methods read the held-out subject's tokens made with a calibration noise floor
(docs/evaluate.md). Corpora are prepared once into ``--corpora`` (``aemg prepare`` + ``aemg tokenize``;
reused when there).

CPU-sized defaults (``--scale both``, ``--epochs 2`` (``--calib-epochs 3`` in the low-label folds), ``--max-tokens 256``, ``--max-subjects 3``,
``--max-svm-windows 6000``, ``--jobs 2``: the (dataset, scale) parts run in two worker processes of one
torch thread each, the costliest first; the figures are the same with ``--jobs 1``). Fine-tuning
dominates: about 0.01-0.04 s per training trial and epoch on one core with the ``small`` encoder and 256
tokens, the same for ``scratch`` and the two ablations; a probe fold takes 10-25 s, a baseline fold 1-5 s.
The training side holds about 3,050 trials summed over the six datasets (CIIL ElectrodeShift 920,
long-term-semg 790, CIIL Minimal 720, 3DC 250, Côté-Allard 250, UCI 120), and each held-out subject has 3
folds (k = 0, 1, 2) per scale. Measured end to end, see docs/evaluate.md ("The whole benchmark, end to
end"). The held-out subjects are the first ``--max-subjects`` in natural order (every other subject still
trains); ``--max-subjects 0`` holds out every subject.

Choosing settings (``--tune``): the reported held-out subjects (the first ``--max-subjects``) are dropped
entirely and LOSO k = 0 runs among the remaining subjects of each dataset (``--tune-subjects`` caps how
many are held out in turn), so a setting is chosen on folds of the training subjects and then reported,
unchanged, on the held-out ones; datasets with fewer than two remaining subjects are skipped. With
``--tune-curve`` the tuning folds also run the low-label curve (k = 1, 2), the same way as the reported ones.
``--set FIELD=VALUE`` changes a ``FinetuneConfig`` field of the fine-tuned methods, ``--probe-set`` a
``ProbeConfig`` field of ``aemg-probe``, ``--baseline-calib-share`` the baselines' weighting of the new user's
calibration windows (``WindowBaseline.calib_share``, default 0.75 like the encoder methods; 0: each window once).

Prints the table, then, as its LAST line, one JSON object ``{dataset: {method: {k: mean trial
accuracy}}, "wall_s": ...}`` (k as a string; with ``--scale calibration`` or ``both`` the
calibration-scale methods appear as ``<method>@calibration``).

    python benchmarks/bench_loso.py [--work /tmp/aemg-bench-loso] [--datasets cote-allard] [--methods lda-td,aemg-probe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_ROOT = REPO.parent / "shared" / "data"
# benchmark name -> (registry dataset, subject-id prefix inside its corpus)
DATASETS = {
    "3dc": ("3dc", ""),
    "cote-allard": ("cote-allard", ""),
    "uci-gestures": ("uci-gestures", ""),
    "ciil-minimal": ("ciil", "ciil/minimal/"),
    "ciil-electrodeshift": ("ciil", "ciil/electrodeshift/"),
    "long-term-semg": ("long-term-semg", ""),
}
METHODS = ("aemg-finetune", "aemg-probe", "scratch", "aemg-windows", "aemg-nospatial", "lda-td", "svm-tdar")
FINETUNED = ("aemg-finetune", "scratch", "aemg-windows", "aemg-nospatial")  # take a FinetuneConfig
# ablation -> the extra `aemg pretrain` options of its run (same config, steps and corpora as the stored run)
ABLATION_RUNS = {"aemg-windows": ["--window-ms", "200"],
                 "aemg-nospatial": ["--set", "encoder.position=index", "--set", "tokenizer.encoder.position=index"]}
KS = (0, 1, 2)
# training trials per dataset (docstring), the order in which --jobs hands out the parts: costliest first
COST = {"ciil-electrodeshift": 920, "long-term-semg": 790, "ciil-minimal": 720, "3dc": 250, "cote-allard": 250,
        "uci-gestures": 120}


T0 = time.perf_counter()


def log(msg: str) -> None:
    """A progress line on stderr, with the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - T0:6.0f} s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ corpora and runs


def corpus_for(dataset: str, corpora: Path):
    """The prepared and tokenized corpus of ``dataset`` under ``corpora`` (made now when missing)."""
    from aemg.cli import main as aemg
    from aemg.corpus import Corpus

    out = corpora / dataset
    if not (out / "provenance.json").is_file():
        if aemg(["prepare", dataset, "--root", str(REAL_ROOT / dataset), "--out", str(out), "--no-progress"]):
            raise RuntimeError(f"aemg prepare {dataset} failed")
    if not (out / "tokens" / "events.npz").is_file():
        if aemg(["tokenize", str(out), "--no-progress"]) != 0:
            raise RuntimeError(f"aemg tokenize {out} failed")
    return Corpus(out)


def run_corpora(run_dir: Path) -> list[dict[str, Any]]:
    """The corpora a run was pre-trained on (its run.json provenance: dataset, subjects, excluded_subjects ...)."""
    return json.loads((run_dir / "run.json").read_text())["corpora"]


def run_datasets(run_dir: Path) -> list[str]:
    """The datasets a run was pre-trained on."""
    return [c["dataset"] for c in run_corpora(run_dir)]


def run_subjects(run_dir: Path) -> set[str]:
    """The subject ids a run was pre-trained on, over all its corpora."""
    return {str(s) for c in run_corpora(run_dir) for s in c["subjects"]}


def run_excluded_subjects(run_dir: Path) -> list[str]:
    """The subjects a run left out of its corpora (``aemg pretrain --exclude-subject``)."""
    return sorted(str(s) for c in run_corpora(run_dir) for s in c.get("excluded_subjects", []))


def stored_run_for(dataset: str, runs: Path | None = None, tested: set[str] | None = None) -> Path:
    """The run that never saw the ``tested`` subjects (None: never saw ``dataset`` at all) and saw the most
    datasets, then the most subjects, among the stored runs (``pretrained/``) or, with ``runs``, the run folders
    (holding an ``encoder.pt``) directly under it. A run pre-trained on the target dataset's other subjects
    (``--exclude-subject``) thus wins over one that never saw the dataset."""
    from aemg.train.checkpoint import ENCODER, pretrained_dir, resolve_run, stored_runs

    root = runs or pretrained_dir()
    cands = ([resolve_run(n) for n in stored_runs()] if runs is None
             else sorted(d for d in runs.iterdir() if (d / ENCODER).is_file()) if runs.is_dir() else [])
    fits = [d for d in cands if (dataset not in run_datasets(d) if tested is None else not tested & run_subjects(d))]
    if not fits:
        what = f"without {dataset}" if tested is None else f"without the tested subjects of {dataset}"
        raise SystemExit(f"no run in {root} was pre-trained {what} (runs: {[d.name for d in cands]})")
    return max(fits, key=lambda p: (len(run_datasets(p)), len(run_subjects(p)), p.name))


ABLATIONS = "ablations"  # pretrained/ablations/<method>-<stored run>: ablation runs kept in the repository
BENCH_KEY = "bench_key.txt"  # in an ablation run: the key (config, option, corpora) it was made for


def ablation_run(method: str, base: Path, corpora: Path, work: Path) -> Path:
    """The pre-training run of an ablation, made like ``base`` (its resolved ``config.json``: steps, codebook,
    token content, seed; the same corpora) plus the ablation's option, keyed by a hash of those: the one kept in
    ``pretrained/ablations/`` for a stored base run when its key matches, else one cached under ``work/runs``
    (made now when missing)."""
    from aemg.cli import main as aemg
    from aemg.train.checkpoint import pretrained_dir

    cs = [corpus_for(d, corpora) for d in run_datasets(base)]
    dirs = [c.path for c in cs]
    # the base run's own resolved config (steps, codebook, token content, seed ...), plus the ablation's option
    left_out = run_excluded_subjects(base)
    args = ["pretrain", "--config", str(base / "config.json"), *ABLATION_RUNS[method],
            *(a for subj in left_out for a in ("--exclude-subject", subj))]
    key = ablation_key(method, base, cs)
    stored = pretrained_dir() / ABLATIONS / f"{method}-{base.name}"
    if base.parent == pretrained_dir() and _holds_run(stored, key):
        log(f"{method}: stored run {stored}")
        return stored
    out = work / "runs" / f"{method}-{key}"
    if _holds_run(out, key):
        log(f"{method}: cached run {out}")
        return out
    shutil.rmtree(out, ignore_errors=True)
    log(f"{method}: pre-training {out} ({' '.join(args)})")
    full = [*args, *(a for d in dirs for a in ("--corpus", str(d))), "--out", str(out), "--no-progress"]
    if aemg(full) != 0:
        raise RuntimeError(f"aemg {' '.join(full)} failed")
    (out / BENCH_KEY).write_text(key + "\n")
    return out


def ablation_key(method: str, base: Path, corpora: list) -> str:
    """The key of ``method``'s run made like ``base`` on ``corpora`` (``Corpus`` objects, the base run's): a hash
    of the base's resolved config, the ablation's option and each corpus's provenance and token-set hashes."""
    hashes = [[c.dataset, str(c.hash), token_set_hash(c.path / "tokens" / "events.npz")] for c in corpora]
    config = json.loads((base / "config.json").read_text())
    keyed: dict[str, Any] = {"config": config, "options": ABLATION_RUNS[method], "corpora": hashes}
    left_out = run_excluded_subjects(base)
    if left_out:  # (only then: the keys of runs without exclusions stay as they were)
        keyed["excluded_subjects"] = left_out
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def token_set_hash(path: Path) -> str:
    """SHA-256 of a stored token set's arrays and metadata, without the corpus's path (which the metadata
    records) and the zip entries' timestamps: the same tokens of the same corpus prepared elsewhere hash alike."""
    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as z:
        for name in sorted(z.files):
            a = z[name]
            if name == "meta":
                meta = json.loads(str(a))
                meta.pop("corpus", None)
                a = np.asarray(json.dumps(meta, sort_keys=True))
            h.update(name.encode())
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _holds_run(run: Path, key: str) -> bool:
    """Whether ``run`` is a finished ablation run made for ``key`` (its ``bench_key.txt``)."""
    done = (run / "summary.json").is_file() and (run / "encoder.pt").is_file() and (run / BENCH_KEY).is_file()
    return done and (run / BENCH_KEY).read_text().strip() == key


# ------------------------------------------------------------------ evaluation


def restricted(results: list, trials: set[int]) -> float:
    """Mean over folds of the trial accuracy on the given trials only."""
    accs = []
    for r in results:
        keep = [i for i, t in enumerate(r.test_trials) if t in trials]
        if keep:
            accs.append(float(np.mean([r.y_true[i] == r.y_pred[i] for i in keep])))
    return float(np.mean(accs)) if accs else float("nan")


def method_run(method: str, target: str, args: argparse.Namespace, run_cache: dict[str, Path],
               tested: set[str]) -> Path:
    """The run an encoder method starts from on ``target`` (a registry dataset): the stored run that never saw the
    ``tested`` subjects (:func:`stored_run_for`), or for an ablation its run made like that one
    (:func:`ablation_run`); resolved once per ``run_cache``."""
    base = stored_run_for(target, args.runs, tested)
    key = f"{method}:{base}"
    if key not in run_cache:
        run_cache[key] = ablation_run(method, base, args.corpora, args.work) if method in ABLATION_RUNS else base
    return run_cache[key]


def factories(methods: list[str], target: str, corpus: Any, scale: str, args: argparse.Namespace,
              run_cache: dict[str, Path], tested: set[str]) -> dict[str, Any]:
    """``{name: zero-argument factory}`` of the methods this checkout knows that run at ``scale``."""
    from aemg.evaluate.baselines import BASELINES
    from aemg.evaluate.registry import ablation_builders, encoder_builders

    encoders = {**encoder_builders(), **ablation_builders()}
    out: dict[str, Any] = {}
    for m in methods:
        if m in BASELINES:
            extra = {"max_train_windows": args.max_svm_windows} if m == "svm-tdar" else {}
            out[m] = partial(BASELINES[m], calib_share=args.baseline_calib_share, **extra)
        elif m in encoders:
            kw: dict[str, Any] = {"run_dir": method_run(m, target, args, run_cache, tested), "corpus": corpus}
            if m in FINETUNED:
                kw["cfg"] = args.finetune
            elif m == "aemg-probe":
                kw["cfg"] = args.probe
            out[m] = encoders[m](**kw)
    return out


def bench_trials(name: str, corpus: Any, args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """(trials table, held-out subjects or None = all) of one benchmark dataset: the first ``--max-subjects``
    of its subset, or with ``--tune`` the others (the first ``--tune-subjects`` of them held out in turn);
    (None, None) when ``--tune`` leaves fewer than two subjects."""
    from aemg.evaluate.folds import subjects_of, subset

    trials = subset(corpus.trials, DATASETS[name][1])
    held = subjects_of(trials)[:args.max_subjects] if args.max_subjects > 0 else None
    if args.tune:  # the reported subjects are dropped entirely; LOSO among the others only
        trials = trials[~trials["subject"].isin(held or [])]
        held = subjects_of(trials)[:args.tune_subjects] if args.tune_subjects > 0 else None
        if len(subjects_of(trials)) < 2:
            return None, None
    return trials, held


def tested_subjects(trials: Any, held: list[str] | None) -> set[str]:
    """The subjects the benchmark tests (no run may have pre-trained on them), from :func:`bench_trials`."""
    from aemg.evaluate.folds import subjects_of

    return set() if trials is None else set(held) if held is not None else set(subjects_of(trials))


def bench_one(name: str, methods: list[str], scales: list[str], args: argparse.Namespace,
              run_cache: dict[str, Path]) -> dict[str, dict[str, float]]:
    """``{method[@scale]: {"loso": .., "0": .., "1": .., ...}}`` of one benchmark dataset."""
    from aemg.evaluate.data import SignalSource
    from aemg.evaluate.folds import classes_of, loso_folds
    from aemg.evaluate.run import run_folds

    dataset, prefix = DATASETS[name]
    corpus = corpus_for(dataset, args.corpora)
    trials, held = bench_trials(name, corpus, args)
    if trials is None:
        log(f"{name}: --tune needs 2 or more subjects besides the {args.max_subjects} reported ones; skipped")
        return {}
    classes = classes_of(trials)
    min_reps = int(trials.groupby(["subject", "gesture_key"]).size().min())
    ks = tuple(k for k in KS if k < min_reps)
    source = SignalSource(corpus)
    out: dict[str, dict[str, float]] = {}
    for scale in scales:
        made = factories(methods, dataset, corpus, scale, args, run_cache, tested_subjects(trials, held))
        t0 = time.perf_counter()
        loso_f = loso_folds(trials, (0,), subjects=held)
        curve = not args.tune or args.tune_curve  # the low-label folds (k >= 1)
        curve_f = [f for f in loso_folds(trials, ks, subjects=held) if f.k] if curve else []
        tested = {t for f in curve_f for t in f.test_trials}

        def step(r: Any) -> None:
            log(f"{name} {r.scale} {r.method} {r.fold}: {r.accuracy:.3f} ({r.wall_s:.0f} s)")

        loso = run_folds(source, loso_f, made, scale, classes, progress=step)
        low = run_folds(source, curve_f, made, scale, classes, progress=step)
        for m in made:
            key = m if scale == "session" else f"{m}@{scale}"
            accs = [r.accuracy for r in loso if r.method == m]
            row = {"loso": float(np.mean(accs)), "loso_std": float(np.std(accs))}
            if tested:
                row["0"] = restricted([r for r in loso if r.method == m], tested)
            elif args.tune:  # no curve: k = 0 is the LOSO figure itself
                row["0"] = row["loso"]
            for k in ks[1:] if curve else ():
                row[str(k)] = float(np.mean([r.accuracy for r in low if r.method == m and r.k == k]))
            out[key] = row
        log(f"{name} {scale}: {time.perf_counter() - t0:.0f} s, held out {len(loso_f)} subjects, ks {list(ks)}")
    return out


def _worker_start() -> None:
    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)


def _part(name: str, methods: list[str], scale: str, args: argparse.Namespace,
          run_cache: dict[str, Path]) -> dict[str, dict[str, float]]:
    return bench_one(name, methods, [scale], args, run_cache)


def parallel(methods: list[str], scales: list[str], args: argparse.Namespace,
             run_cache: dict[str, Path]) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`bench_one` of every (dataset, scale) part in ``args.jobs`` worker processes, the costliest parts
    first; the corpora and the ablation runs are made (or found) here first and handed to the workers in
    ``run_cache``, so no two workers make the same one and none looks them up again."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    for name in args.datasets:
        tested = tested_subjects(*bench_trials(name, corpus_for(DATASETS[name][0], args.corpora), args))
        for m in methods:
            if m in ABLATION_RUNS:
                method_run(m, DATASETS[name][0], args, run_cache, tested)
    parts = sorted(((n, s) for n in args.datasets for s in scales),
                   key=lambda p: (-COST.get(p[0], 0), scales.index(p[1])))
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=_worker_start) as pool:
        done = {p: pool.submit(_part, p[0], methods, p[1], args, run_cache) for p in parts}
        found = {p: f.result() for p, f in done.items()}
    return {n: {k: v for s in scales for k, v in found[(n, s)].items()} for n in args.datasets}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    keys = ["0", "1", "2"]
    lines = [f"{'dataset':<20} {'method':<26} {'loso':>13} " + " ".join(f"{'k=' + k:>7}" for k in keys)]
    for ds, per_method in results.items():
        for m, row in per_method.items():
            cells = [f"{row[k]:7.3f}" if k in row else f"{'-':>7}" for k in keys]
            loso = f"{row['loso']:.3f}±{row['loso_std']:.3f}".rjust(13)
            lines.append(f"{ds:<20} {m:<26} {loso} " + " ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/aemg-bench-loso"),
                   help="folder for the cached ablation runs (and the corpora, unless --corpora)")
    p.add_argument("--corpora", type=Path, default=None,
                   help="folder of prepared corpora, one per dataset name (default WORK/corpora; made when missing)")
    p.add_argument("--runs", type=Path, default=None,
                   help="folder of pre-trained run folders to take the encoder methods' runs from (per target: the "
                        "one that never saw its tested subjects and saw the most datasets, e.g. one made with aemg "
                        "pretrain --exclude-subject; default: the stored runs in pretrained/)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated methods (default: {','.join(METHODS)}); unknown ones are skipped")
    p.add_argument("--scale", default="both", choices=["session", "calibration", "both"],
                   help="amplitude scale: the stored per-session one (transductive), the calibration one (what a new "
                        "user gives before use), or both (default)")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of aemg-finetune/scratch/ablations (default 2)")
    p.add_argument("--calib-epochs", type=int, default=3,
                   help="their epochs in the low-label folds (k >= 1; FinetuneConfig.calib_epochs; default 3, chosen "
                        "on the tuning folds against 2 and 4; 0 = --epochs)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="one more FinetuneConfig field for the fine-tuned methods (as aemg finetune --set), e.g. "
                        "--set head_init=probe --set probe_C=0.1 (repeatable)")
    p.add_argument("--probe-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="one more ProbeConfig field for aemg-probe, e.g. --probe-set calib_share=0.75 (repeatable)")
    p.add_argument("--baseline-calib-share", type=float, default=0.75, metavar="SHARE",
                   help="lda-td / svm-tdar: the held-out subjects' calibration windows listed to this share of the "
                        "training windows in low-label folds (default 0.75, as the encoder methods; 0: each once)")
    p.add_argument("--max-tokens", type=int, default=256, help="tokens per trial when fine-tuning (default 256)")
    p.add_argument("--max-subjects", type=int, default=3,
                   help="held-out subjects per dataset, the first in natural order (default 3; 0 = all)")
    p.add_argument("--tune", action="store_true",
                   help="tuning folds: drop the reported held-out subjects (the first --max-subjects) entirely and "
                        "run LOSO k=0 among the other subjects, so settings are chosen without the reported ones")
    p.add_argument("--tune-curve", action="store_true",
                   help="with --tune: also the low-label folds (k = 1, 2) among the tuning subjects, as for the "
                        "reported ones (every k tested on the repetitions after the largest)")
    p.add_argument("--tune-subjects", type=int, default=0,
                   help="with --tune, subjects held out in turn, the first in natural order (default 0 = all)")
    p.add_argument("--max-svm-windows", type=int, default=6000, help="SVM training windows per fold (default 6000)")
    p.add_argument("--jobs", type=int, default=2,
                   help="worker processes, one torch thread each, over the (dataset, scale) parts (default 2, the "
                        "cores of the reference machine; 1 = in this process); the figures do not depend on it")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs: expected a number of processes >= 1; found {args.jobs}")
    if not 0.0 <= args.baseline_calib_share < 1.0:
        p.error(f"--baseline-calib-share: expected a fraction in [0, 1); found {args.baseline_calib_share}")
    from aemg.cli.finetune import finetune_config, override_config
    from aemg.errors import OptionError
    from aemg.evaluate.encoder_methods import ProbeConfig

    for field, flag in (("epochs", "--epochs"), ("calib_epochs", "--calib-epochs")):
        if any(x.partition("=")[0].strip() == field for x in args.set):
            p.error(f"--set {field}=N: use {flag} N (the benchmark's own default would override it)")
    try:  # the fine-tuned methods' FinetuneConfig, checked before any work
        args.finetune = finetune_config([f"max_tokens={args.max_tokens}", f"calib_epochs={args.calib_epochs}",
                                         *args.set], args.epochs)
        args.probe = override_config(ProbeConfig(), args.probe_set, "--probe-set")
    except OptionError as e:
        p.error(str(e))
    logging.disable(logging.WARNING)  # the datasets' known duplicates and absent subjects are expected
    import torch

    torch.set_num_threads(1)
    from aemg.evaluate.registry import known_methods

    args.corpora = args.corpora or args.work / "corpora"
    args.corpora.mkdir(parents=True, exist_ok=True)
    known = set(known_methods())  # the ablations too (they were skipped as unknown before)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in known:
            print(f"note: method {m} is not known to this checkout; skipped", file=sys.stderr)
    methods = [m for m in methods if m in known]
    scales = ["session", "calibration"] if args.scale == "both" else [args.scale]
    t0 = time.perf_counter()
    run_cache: dict[str, Path] = {}
    if args.jobs > 1:
        results = parallel(methods, scales, args, run_cache)
    else:
        results = {name: bench_one(name, methods, scales, args, run_cache) for name in args.datasets}
    print(table(results))
    print("keys: loso = LOSO k=0 on all trials of the held-out subjects (mean±std over subjects); k=0/1/2 = "
          "low-label on the same repetitions (after the largest k). Trial accuracy.")
    summary: dict[str, Any] = {ds: {m: {k: round(v, 4) for k, v in row.items() if k not in ("loso", "loso_std")}
                                    for m, row in res.items()} for ds, res in results.items()}
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
