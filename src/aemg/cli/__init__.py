"""The ``aemg`` command line: one module per command under :mod:`aemg.cli`, each thin.

Each command module defines ``register(subparsers)`` that adds its parser and sets ``func`` (a
callable taking the parsed ``argparse.Namespace`` and returning an exit code). Heavy imports (torch,
h5py, matplotlib) happen inside the command bodies, so ``aemg --help`` stays instant. Library errors
become one-line messages on stderr unless ``--pdb`` or ``AEMG_DEBUG=1`` is set: aemg's own errors as they are,
OS errors (a read-only or full place, no permission) as ``<path>: expected ...; found ...``. A stdout closed
early (``aemg info C | head -1``) ends the command quietly with exit status 141.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys

from aemg import __version__
from aemg.errors import AemgError

# command modules, in the order ``aemg --help`` lists them
COMMANDS = ("datasets", "simulate", "prepare", "import_", "info", "tokenize", "pretrain", "prototypes", "evaluate",
            "finetune", "live")  # finetune.py registers finetune and predict


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


# exit status after stdout was closed early (``aemg info C | head -1``): 128 + SIGPIPE, as for cat or grep
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error ends in one line on stderr and exit status 1 (141 on a closed stdout)."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # the reader of stdout has gone (`| head`): stop quietly, and let nothing be flushed to the pipe again
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    debug = args.pdb or os.environ.get("AEMG_DEBUG") == "1"
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"aemg {args.command}: interrupted; nothing half-written is trusted, and running the same "
              "command again finishes the job", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except (AemgError, FileNotFoundError, FileExistsError, KeyError, ValueError, OSError) as exc:
        if debug:
            if args.pdb:
                import pdb

                pdb.post_mortem()
            raise
        print(f"aemg {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 1


def error_line(exc: BaseException) -> str:
    """The one-line message of an error: aemg's own as it is; an OS error naming its file and what was expected."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, AemgError) or not isinstance(exc, OSError) or isinstance(exc, (FileNotFoundError,
                                                                                       FileExistsError)):
        return str(exc)
    from pathlib import Path

    from aemg.atomic import NOT_WRITABLE, free_bytes, is_no_space
    from aemg.errors import DiskFullError

    name = Path(exc.filename) if exc.filename else None
    reason = (exc.strerror or str(exc)).lower()
    if is_no_space(exc):
        folder = name if name is None or name.is_dir() else name.parent
        return str(DiskFullError(folder or Path.cwd(), None, free_bytes(folder or Path.cwd())))
    if exc.errno in NOT_WRITABLE:
        found = NOT_WRITABLE[exc.errno]
        if name is None:
            return f"expected a writable folder; found {found}"
        if name.is_file() and exc.errno != errno.EROFS:  # a file that may be unreadable, not only unwritable
            return f"{name}: expected a file aemg may read and write; found {found}"
        folder = name if name.is_dir() or not name.exists() and not name.suffix else name.parent
        return f"{folder}: expected a writable folder; found {found}"
    return f"{name or 'a file'}: expected a usable file or folder; found {reason}"


def _stdout_to_devnull() -> None:
    """Point the stdout file descriptor at /dev/null, so Python's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (a test's capture)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
