"""``aemg prepare``: read a registered dataset into a harmonized corpus (HDF5 + index + provenance)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aemg.corpus import Corpus

EPILOG = """\
Pipeline, per subject and session: sample-and-hold logging rebuilt at the true rate (UCI), mains
(50/60 Hz) detected on the native-rate signal, channel QC flags, anti-aliased resampling to --fs,
DC removal, and one robust amplitude scale per channel (stored beside the unscaled signals).
Recordings whose raw signal is identical to another's (the same data filed twice) are dropped,
keeping the first in corpus order, and reported; --keep-duplicates keeps them.

Stray files that are not part of the dataset (.DS_Store, macOS ._* files, notes.txt, "x (1).txt"
copies, editor backups) are skipped and named in one warning. A damaged file stops the run with
one line naming it; --skip-bad skips it instead, reads the rest, and names every skipped file and
why at the end and in provenance.json ("skipped").

CORPUS_DIR must be new or empty, or a corpus of the same dataset and settings: then finished
sessions are reused, so an interrupted run is completed by running the same command again.
A finished corpus is replaced (--overwrite, or a rerun) only once the new one is built and checked
in a sibling folder, and only the files aemg wrote are removed; input files inside CORPUS_DIR are
refused.
Layout and provenance: docs/corpus.md.

examples:
  aemg prepare 3dc --root ~/data/3DCDataset --out corpora/3dc
  aemg prepare uci-gestures --root ~/data/uci --out corpora/uci --fs 200
  aemg info corpora/3dc
"""


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``prepare`` and ``import``."""
    p.add_argument("--out", required=True, metavar="CORPUS_DIR", help="corpus folder to write (created)")
    p.add_argument("--fs", type=float, default=200.0, metavar="HZ",
                   help="corpus sampling rate in Hz, 50-10000; every recording is resampled to it (default: 200)")
    p.add_argument("--keep-duplicates", action="store_true",
                   help="keep recordings identical to another one (default: keep only the first, warn)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing aemg corpus built with another dataset or settings")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip damaged raw files and read the rest; each skipped file is named with its reason "
                        "at the end and in provenance.json (default: stop at the first damaged file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument("--json", action="store_true", help="print the corpus summary as one JSON object on stdout")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="read a supported dataset into a harmonized corpus",
                       description="Read a registered dataset's original files (see `aemg datasets`) from "
                                   "--root, harmonize every recording and store the corpus in --out: one HDF5 "
                                   "file per subject and session, index tables and provenance.json.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="registry name, e.g. 3dc, cote-allard, ciil, uci-gestures")
    p.add_argument("--root", required=True, metavar="RAW_DIR",
                   help="folder holding the dataset's original files (read only, never modified)")
    add_common(p)
    p.set_defaults(func=run)


def report(corpus: Corpus, as_json: bool) -> None:
    """Print a finished corpus's summary (one line, or one JSON object)."""
    import json

    s = corpus.summary()
    if as_json:
        print(json.dumps(s))
        return
    print(f"{s['dataset']}: {s['n_subjects']} subjects, {s['n_sessions']} sessions, {s['n_recordings']} recordings, "
          f"{s['n_trials']} trials, {s['hours']:.2f} h at {s['fs']:g} Hz; {s['dropped_duplicates']} duplicate "
          f"recordings dropped -> {corpus.path}")


def run(args: argparse.Namespace) -> int:
    from aemg.corpus import prepare
    from aemg.plausible import check_corpus_fs

    check_corpus_fs(args.fs)  # before anything is read: an implausible rate would run for hours
    corpus = prepare(args.dataset, args.root, args.out, fs=args.fs, dedupe=not args.keep_duplicates,
                     progress=not args.no_progress, overwrite=args.overwrite, skip_bad=args.skip_bad)
    report(corpus, args.json)
    return 0
