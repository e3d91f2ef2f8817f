"""``aemg finetune`` (a pre-trained run fine-tuned on a user's labelled trials -> MODEL_DIR) and ``aemg predict``.

Both are the low-label protocol's own code path: ``finetune`` builds a
:class:`~aemg.evaluate.data.TrialSet` and calls :meth:`FinetuneMethod.fit
<aemg.evaluate.encoder_methods.FinetuneMethod.fit>`, then :func:`aemg.evaluate.model_dir.save_model`;
``predict`` rebuilds the method (:func:`aemg.evaluate.model_dir.load_model`) and calls its ``predict``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pandas as pd

    from aemg.corpus import Corpus
    from aemg.evaluate.encoder_methods import FinetuneConfig

C = TypeVar("C")  # a config dataclass (FinetuneConfig, ProbeConfig)

SCALE = "session"  # encoder methods run on the stored per-session scale (docs/evaluate.md)


def _wrap(text: str) -> str:
    """A description wrapped to 88 columns (the raw formatter keeps the examples' line breaks, not this)."""
    import textwrap

    return textwrap.fill(text, 88)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a pre-trained run on a user's labelled trials -> a model directory",
        description=_wrap("Train the pre-trained encoder and a fresh linear head on CORPUS's labelled trials (one "
                    "subject's with --subject, e.g. a new user's calibration repetitions; only the first N "
                    "repetitions per class with --reps N) and write MODEL_DIR: model.json (class order, token "
                    "settings, electrodes, per-session scale and detector noise floor, run, config), weights.pt "
                    "(a plain state dict) and run.json (the run's provenance). The same code as the low-label "
                    "protocol of aemg evaluate."),
        epilog="examples:\n  aemg finetune --run runs/small --corpus corpora/me --subject me/all/me --reps 2 "
               "--out models/me\n  aemg finetune --run small-b --corpus corpora/ciil --subject ciil/minimal/subject0 "
               "--reps 1 --others --out models/s0\n  aemg finetune --run NAME --corpus C --out M --set epochs=3 --set lr_head=3e-3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, metavar="RUN_DIR",
                   help="a run directory of aemg pretrain, or the name of a pre-trained run in the repository's "
                        "pretrained/ folder")
    p.add_argument("--corpus", required=True, type=Path, metavar="CORPUS", help="a corpus folder with labelled trials")
    p.add_argument("--subject", default=None, metavar="ID", help="fine-tune on this subject only (default: all)")
    p.add_argument("--reps", type=int, default=None, metavar="N",
                   help="only the first N repetitions per class (by repetition index, as the low-label k)")
    p.add_argument("--others", action="store_true",
                   help="with --subject: also every other subject's labelled trials of CORPUS (all repetitions), "
                        "as in the LOSO low-label folds; the subject's own trials then make up calib_share "
                        "(default 0.75) of every epoch")
    p.add_argument("--out", required=True, type=Path, metavar="MODEL_DIR", help="the model directory to write")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a fine-tuning setting, any FinetuneConfig field (e.g. epochs, batch_size, lr_encoder, "
                        "lr_head, weight_decay, max_tokens, span_groups, weight_avg, fits, token_drop, "
                        "layer_decay, l2sp, seed; docs/evaluate.md lists them all); repeatable")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs (the same as --set epochs=N)")
    p.add_argument("--overwrite", action="store_true", help="replace MODEL_DIR if it is a model directory")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run_finetune)

    q = sub.add_parser(
        "predict", help="classify a corpus's labelled trials with a model directory of aemg finetune",
        description=_wrap("Classify every labelled trial of CORPUS (one subject's with --subject) with MODEL_DIR; prints "
                    "the accuracy (all trials, and those the model was not fine-tuned on) and one line per trial, "
                    "or one JSON object with --json. The corpus's tokens must have the model's settings and "
                    "channels; a subject the pre-training saw is refused."),
        epilog="example:\n  aemg predict models/me --corpus corpora/me --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("model", type=Path, metavar="MODEL_DIR", help="a model directory of aemg finetune")
    q.add_argument("--corpus", required=True, type=Path, metavar="CORPUS", help="a corpus folder with labelled trials")
    q.add_argument("--subject", default=None, metavar="ID", help="this subject's trials only (default: all)")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=run_predict)


# ------------------------------------------------------------------ shared pieces


def subjects_of(corpus: Corpus, subject: str | None) -> list[str]:
    """The subjects a command works on: ``[subject]`` (an OptionError listing the known ones if unknown), else all."""
    from aemg.errors import OptionError

    known = corpus.subjects
    if subject is None:
        return known
    if subject not in known:
        raise OptionError(f"--subject {subject}", f"a subject of {corpus.path} ({', '.join(known)})",
                          f"found {subject!r}")
    return [subject]


def labelled(corpus: Corpus, subjects: list[str], option: str) -> pd.DataFrame:
    """The labelled trials of ``subjects``, or an OptionError when there are none."""
    from aemg.errors import OptionError

    tr = corpus.trials
    own = tr[tr["subject"].isin(subjects)]
    if own.empty:
        raise OptionError(option, f"labelled trials of {', '.join(subjects)} in {corpus.path}", "found none")
    return own


def first_reps(trials: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Each subject's first ``reps`` repetitions per class: the low-label protocol's calibration rule
    (:func:`aemg.evaluate.folds.calibration_split`)."""
    import pandas as pd

    from aemg.evaluate import folds

    return pd.concat([folds.calibration_split(trials, s, [reps])[reps][0] for s in folds.subjects_of(trials)])


def finetune_config(overrides: list[str], epochs: int | None) -> FinetuneConfig:
    """:class:`FinetuneConfig` with ``--set key=value`` overrides (typed like the default) and ``--epochs``."""
    from aemg.evaluate.encoder_methods import FinetuneConfig

    return override_config(FinetuneConfig(), overrides + ([f"epochs={epochs}"] if epochs is not None else []))


def override_config(base: C, overrides: list[str], flag: str = "--set") -> C:
    """``base`` (a config dataclass) with ``key=value`` overrides, each typed like its default; a bad key or
    value is an :class:`~aemg.errors.OptionError` naming ``flag`` and the fields."""
    import dataclasses

    from aemg.errors import OptionError
    from aemg.train.config import parse_value

    names = [f.name for f in dataclasses.fields(base)]
    changes: dict[str, Any] = {}
    for text in overrides:
        key, eq, value = text.partition("=")
        key = key.strip()
        if not eq or key not in names:
            raise OptionError(f"{flag} {text}", f"KEY=VALUE with KEY one of {', '.join(names)}", f"found {text!r}")
        kind = type(getattr(base, key))
        try:  # the config parser aemg pretrain/evaluate use ("false" is False, "1e3" a whole number)
            changes[key] = parse_value(f"{flag} {text}", value.strip(), kind)
        except OptionError:
            raise OptionError(f"{flag} {text}", f"{key} a {kind.__name__}", f"found {value!r}") from None
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{flag} {' '.join(overrides)}", f"valid {type(base).__name__} settings", f"found {exc}") from None


# ------------------------------------------------------------------ aemg finetune


def run_finetune(args: argparse.Namespace) -> int:
    import json
    import logging

    import pandas as pd

    from aemg.corpus import Corpus
    from aemg.errors import OptionError
    from aemg.evaluate.data import SignalSource, fold_sets
    from aemg.evaluate.encoder_methods import FinetuneMethod, check_run_subjects, trial_tokens
    from aemg.evaluate.folds import Fold, classes_of
    from aemg.evaluate.model_dir import check_target, save_model
    from aemg.train.checkpoint import resolve_run

    log = logging.getLogger("aemg.finetune")
    if args.others and args.subject is None:
        raise OptionError("--others", "--subject ID as well (the new user the other subjects' trials join)",
                          "found no --subject")
    if args.reps is not None and args.reps < 1:
        raise OptionError(f"--reps {args.reps}", "a whole number >= 1 (repetitions per class)", f"found {args.reps}")
    cfg = finetune_config(args.overrides, args.epochs)
    run_dir = resolve_run(args.run)
    if not (run_dir / "encoder.pt").is_file():
        raise FileNotFoundError(f"{run_dir / 'encoder.pt'}: expected the pre-trained encoder of an aemg pretrain "
                                "run; found none (the run has not finished stage 2?)")
    check_target(args.out, args.overwrite)  # before training: a refused MODEL_DIR costs nothing
    corpus = Corpus(args.corpus)
    subjects = subjects_of(corpus, args.subject)
    own = labelled(corpus, subjects, f"--corpus {args.corpus}")
    chosen = first_reps(own, args.reps) if args.reps is not None else own
    if args.reps is not None:
        short = chosen.groupby(["subject", "gesture_key"]).size()
        if (short < args.reps).any():
            log.warning("fewer than %d repetitions of %s: all of them used", args.reps,
                        ", ".join(f"{s} {g}" for s, g in short[short < args.reps].index))
    try:
        check_run_subjects(run_dir, subjects)
    except (ValueError, OSError) as exc:
        log.warning("%s; aemg predict will refuse these subjects", exc)
    ids = tuple(int(t) for t in sorted(chosen["trial"]))
    rest = corpus.trials[~corpus.trials["subject"].isin(subjects)] if args.others else corpus.trials.iloc[:0]
    if args.others and rest.empty:
        raise OptionError("--others", f"labelled trials of other subjects than {subjects[0]} in {corpus.path}",
                          "found none")
    both = pd.concat([chosen, rest])
    fold = Fold(name=f"finetune:{','.join(subjects)}", protocol="finetune",
                train_trials=tuple(sorted(ids + tuple(int(t) for t in rest["trial"]))), test_trials=(),
                train_subjects=tuple(subjects) + tuple(sorted(set(rest["subject"]))),
                test_subjects=tuple(subjects) if args.others else (),  # the new user, weighted (calib_share)
                calibration_trials=ids, k=args.reps)
    train, _ = fold_sets(SignalSource(corpus), fold, SCALE, classes_of(both))
    method = FinetuneMethod(run_dir, trial_tokens(corpus), cfg, pretrained=True)
    log.info("fine-tuning %s on %d trials of %d classes (%s)", run_dir, len(train), len(train.classes),
             ", ".join(subjects))
    method.fit(train)
    out = save_model(method, train, args.out, run_dir=run_dir, run_name=str(args.run), reps=args.reps,
                     overwrite=args.overwrite)
    summary = {"model": str(out), "run": str(run_dir), "corpus": str(args.corpus), "subjects": subjects,
               "reps": args.reps, "n_trials": len(train), "n_other_trials": len(rest), "classes": list(train.classes),
               "losses": [float(v) for v in method.losses]}
    if args.json:
        print(json.dumps(summary))
        return 0
    loss = f"; loss {method.losses[0]:.3f} -> {method.losses[-1]:.3f}" if method.losses else ""
    print(f"fine-tuned on {len(train)} trials ({len(train.classes)} classes: {', '.join(train.classes)}) of "
          f"{', '.join(subjects)}{f' ({len(ids)}) and the other subjects ({len(rest)})' if args.others else ''}{loss}")
    print(f"written to {out}")
    return 0


# ------------------------------------------------------------------ aemg predict


def predict_trials(model_dir: Path, corpus: Corpus, subjects: list[str]) -> dict[str, Any]:
    """Classify the subjects' labelled trials with a model directory: scores and one row per trial."""
    import numpy as np

    from aemg.errors import DataFormatError
    from aemg.evaluate.data import SignalSource, fold_sets
    from aemg.evaluate.folds import Fold
    from aemg.evaluate.metrics import scores
    from aemg.evaluate.model_dir import INFO, load_model, read_model

    saved = read_model(model_dir)
    info = saved.info
    method = load_model(saved, corpus, subjects)  # refuses other token settings or channels first
    own = labelled(corpus, subjects, f"--corpus {corpus.path}")
    unknown = sorted(set(own["gesture_key"]) - set(info.classes))
    if unknown:
        raise DataFormatError(corpus.path, f"trials of the model's classes {', '.join(info.classes)} "
                              f"({model_dir / INFO})", f"found {', '.join(unknown)}")
    ids = tuple(int(t) for t in sorted(own["trial"]))
    fold = Fold(name=f"predict:{','.join(subjects)}", protocol="predict", train_trials=(), test_trials=ids,
                train_subjects=(), test_subjects=tuple(subjects))
    _, test = fold_sets(SignalSource(corpus), fold, SCALE, info.classes)
    y_pred = method.predict(test).y_pred
    same = info.corpus.get("hash") == corpus.hash
    tuned = np.isin(test.trial_ids, np.asarray(info.train_trials, np.int64)) if same else np.zeros(len(test), bool)
    rows = [{"trial": int(t), "subject": str(r["subject"]), "session": str(r["session"]),
             "repetition": int(r["repetition"]), "true": info.classes[int(y)], "predicted": info.classes[int(p)],
             "fine_tuned_on": bool(f)}
            for t, (_, r), y, p, f in zip(test.trial_ids, test.trials.iterrows(), test.y, y_pred, tuned)]
    unseen = {"n_trials": int((~tuned).sum()), **scores(test.y[~tuned], y_pred[~tuned])}
    return {"model": str(model_dir), "corpus": str(corpus.path), "subjects": subjects, "classes": list(info.classes),
            "n_trials": len(test), **scores(test.y, y_pred), "not_fine_tuned_on": unseen, "trials": rows}


def _clean(v: Any) -> Any:
    import math

    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def run_predict(args: argparse.Namespace) -> int:
    import json

    from aemg.corpus import Corpus

    corpus = Corpus(args.corpus)
    subjects = subjects_of(corpus, args.subject)
    res = predict_trials(args.model, corpus, subjects)
    if args.json:
        print(json.dumps(_clean(res)))
        return 0
    u = res["not_fine_tuned_on"]
    print(f"{args.model} on {args.corpus} ({', '.join(subjects)}): accuracy {res['accuracy']:.3f} over "
          f"{res['n_trials']} trials (balanced {res['balanced_accuracy']:.3f}, macro F1 {res['macro_f1']:.3f})")
    if u["n_trials"] and u["n_trials"] < res["n_trials"]:
        print(f"not fine-tuned on: accuracy {u['accuracy']:.3f} over {u['n_trials']} trials")
    print(f"{'trial':>6}  {'subject':<32} {'session':<12} {'rep':>4}  {'true':<20} {'predicted':<20} tuned")
    for r in res["trials"]:
        print(f"{r['trial']:>6}  {r['subject']:<32} {r['session']:<12} {r['repetition']:>4}  {r['true']:<20} "
              f"{r['predicted']:<20} {'yes' if r['fine_tuned_on'] else ''}")
    return 0
