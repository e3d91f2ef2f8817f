"""``aemg prototypes``: draw the most used stage-1 prototypes (the burst shapes they stand for)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prototypes", help="draw the most used prototypes of a pre-training run as a PNG gallery",
                       description="Decode each of the most used codebook vectors of RUN_DIR's frozen stage-1 "
                                   "tokenizer back to token content and draw it: the envelope shape over the "
                                   "segment where the content has one, else the content vector.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of aemg pretrain, or a stored run's name (pretrained/)")
    p.add_argument("--top", type=int, default=24, help="how many prototypes (default 24)")
    p.add_argument("--out", default=None, metavar="PNG", help="output file (default RUN_DIR/prototypes.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aemg.errors import OptionError
    from aemg.train.checkpoint import resolve_run
    from aemg.train.prototypes import draw_prototypes

    if args.top < 1:
        raise OptionError(f"--top {args.top}", "a number of prototypes >= 1", f"found {args.top}")
    if args.out is not None and not Path(args.out).resolve().parent.is_dir():
        raise OptionError(f"--out {args.out}", "a PNG path in an existing folder",
                          f"found no folder {Path(args.out).resolve().parent}")
    path = draw_prototypes(resolve_run(args.run_dir, option='RUN_DIR'), top=args.top, out=args.out)
    print(path)
    return 0
