"""``aemg pretrain``: two-stage self-supervised pre-training on one or more corpora."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="pre-train the encoder (stage 1 VQ prototypes, stage 2 masked token modelling)",
        description="Pre-train without labels on the token sets of one or more corpora: stage 1 learns a codebook of "
                    "contraction prototypes, stage 2 predicts masked tokens' prototype ids. Writes RUN_DIR with "
                    "config.json, metrics.jsonl, atomic checkpoints and summary.json. CPU by default; "
                    "--devices/--num-nodes/--strategy ddp for GPUs and clusters (see docs/model.md).")
    p.add_argument("--corpus", action="append", required=True, metavar="DIR",
                   help="a prepared corpus folder (repeatable); its token set is loaded, or made with the default "
                        "tokenizer if the corpus has none")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (or continue with --resume)")
    p.add_argument("--config", default="small", help="tiny (tests), small (a CPU), base (GPUs, ~5M parameters), or a config.json path (default: small)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one config field, e.g. --set stage1.lr=3e-4 (repeatable)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="cap each stage at N optimizer steps, its warm-up scaled with it (the config's defaults are sized for real use)")
    p.add_argument("--stop-after-steps", type=int, default=None, metavar="N",
                   help="end each stage after N optimizer steps without changing its schedule (unlike --max-steps, "
                        "which rescales the warm-up): the first N steps of the full run, e.g. to check a stored run")
    p.add_argument("--tokenizer-from", default=None, metavar="RUN_DIR",
                   help="skip stage 1: train stage 2 on the frozen tokenizer.pt of this finished run (same config)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR from its last checkpoint, with its own config.json "
                        "(bitwise as if uninterrupted on the same machine)")
    p.add_argument("--exclude", action="append", default=[], metavar="DATASET",
                   help="leave out every corpus of this dataset name (repeatable), e.g. the evaluation target; "
                        "summary.json lists the corpora that were used")
    p.add_argument("--exclude-subject", action="append", default=[], metavar="SUBJECT",
                   help="leave out one subject's recordings (repeatable; its id as aemg info lists it, e.g. "
                        "uci-gestures/all/01): pre-train on a "
                        "target dataset's other subjects and still evaluate on this one (aemg evaluate refuses a run "
                        "that saw a subject it tests); run.json lists each corpus's subjects and excluded_subjects")
    p.add_argument("--window-ms", type=float, default=None, metavar="N",
                   help="pre-train on fixed N ms window tokens instead of contraction events (the aemg-windows "
                        "ablation: each corpus's tokens/windows-<N>ms.npz from aemg tokenize --window-ms N, else made "
                        "now); run.json records the token kind")
    p.add_argument("--content-amp", choices=["floor", "scale"], default=None,
                   help="what the networks read a token's log_amp relative to: the detector's noise floor, or the "
                        "session's amplitude scale (the stored runs in pretrained/); sets encoder.content_amp and "
                        "tokenizer.encoder.content_amp (default: the config's, floor)")
    p.add_argument("--accelerator", default="cpu", help="cpu (default), cuda, gpu, mps, auto (checked against this machine before anything starts)")
    p.add_argument("--devices", default="1", help="devices per node (an int, or 'auto'; default 1)")
    p.add_argument("--num-nodes", type=int, default=1, help="machines (default 1)")
    p.add_argument("--strategy", default="auto", help="auto (default) or ddp")
    p.add_argument("--precision", default="32-true", help="32-true (default), bf16-mixed, 16-mixed")
    p.add_argument("--seed", type=int, default=None, help="base seed (default: the config's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import math

    from aemg.errors import OptionError
    from aemg.train import pretrain
    from aemg.train.config import get_config
    from aemg.train.engine import check_hardware
    from aemg.train.sources import load_token_sources

    if args.window_ms is not None and not (math.isfinite(args.window_ms) and args.window_ms > 0):
        raise OptionError(f"--window-ms {args.window_ms:g}", "a window length in ms > 0", f"found {args.window_ms:g}")
    devices = check_hardware(args.accelerator, args.devices, args.num_nodes, args.strategy, args.precision)
    cfg = get_config(args.config).override(args.overrides)
    if args.content_amp is not None:
        cfg = cfg.override([f"encoder.content_amp={args.content_amp}",
                            f"tokenizer.encoder.content_amp={args.content_amp}"])
    if args.max_steps is not None:
        cfg = cfg.cap_steps(args.max_steps)
    if args.seed is not None:
        cfg = cfg.override([f"seed={args.seed}"])
    amp = cfg.encoder.content_amp  # (--resume checks that the run's own config.json is this one)
    if cfg.tokenizer.encoder.content_amp != amp:
        raise OptionError(f"--set encoder.content_amp={amp}", "the same tokenizer.encoder.content_amp (both networks "
                          "read one token content)", f"found {cfg.tokenizer.encoder.content_amp!r}")
    sources = load_token_sources(args.corpus, exclude=args.exclude, window_ms=args.window_ms,
                                 progress=not args.no_progress, content_amp=amp, exclude_subjects=args.exclude_subject)
    try:
        summary = pretrain(cfg, sources, args.out, accelerator=args.accelerator, devices=devices,
                           num_nodes=args.num_nodes, strategy=args.strategy, precision=args.precision,
                           resume=args.resume, exclude=tuple(args.exclude), progress=not args.no_progress,
                           stop_after_steps=args.stop_after_steps, tokenizer_from=args.tokenizer_from)
    except KeyboardInterrupt:  # Ctrl-C: the last checkpoint is intact (written atomically)
        print(f"aemg pretrain: interrupted; continue from the last checkpoint with the same command and --resume "
              f"(--out {args.out})", file=sys.stderr)
        return 130
    if summary:
        brief = {k: {f: v for f, v in summary[k].items() if f != "heldout_recordings"} for k in ("stage1", "stage2")}
        print(json.dumps(brief, indent=2))
        print(f"run directory: {args.out} (summary.json, metrics.jsonl, ckpt.pt, encoder.pt)")
    return 0
