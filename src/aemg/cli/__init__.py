"""The ``aemg`` command line: one module per command under :mod:`aemg.cli`, each thin.

Each command module defines ``register(subparsers)`` that adds its parser and sets ``func`` (a
callable taking the parsed ``argparse.Namespace`` and returning an exit code). Heavy imports (torch,
h5py, matplotlib) happen inside the command bodies, so ``aemg --help`` stays instant. Library errors
become one-line messages on stderr unless ``--pdb`` or ``AEMG_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from aemg import __version__
from aemg.errors import AemgError

# command modules, in the order ``aemg --help`` lists them
COMMANDS = ("datasets", "simulate", "prepare", "import_", "info", "tokenize", "pretrain", "prototypes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aemg",
        description="Self-supervised neuromuscular tokens for surface EMG: read public gesture datasets "
                    "into one corpus, tokenize contraction events, pre-train and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"aemg {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity on stderr (default: INFO)")
    parser.add_argument("--pdb", action="store_true", help="on an error, show the traceback and start pdb")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"aemg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aemg.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    debug = args.pdb or os.environ.get("AEMG_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"aemg {args.command}: interrupted; nothing half-written is trusted, and running the same "
              "command again finishes the job", file=sys.stderr)
        return 130
    except (AemgError, FileNotFoundError, FileExistsError, KeyError, ValueError) as exc:
        if debug:
            if args.pdb:
                import pdb

                pdb.post_mortem()
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"aemg {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
