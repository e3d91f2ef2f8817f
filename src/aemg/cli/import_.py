"""``aemg import``: import any dataset described by a manifest.csv into a harmonized corpus."""

from __future__ import annotations

import argparse

from aemg.cli.prepare import add_common, report

EPILOG = """\
MANIFEST_DIR holds manifest.csv and one signal file (.npy or .csv, samples x channels) per row;
columns: file, subject, session, trial, gesture, fs, layout [, repetition, units]
(see aemg.datasets.generic; `aemg simulate` writes this layout). The dataset is named after the
folder. The same pipeline and guarantees as `aemg prepare` (see `aemg prepare --help`), --skip-bad
included. Paths in the manifest must lie inside MANIFEST_DIR unless --allow-outside is given.
Warnings, not errors: repeated repetition numbers within a subject, session and gesture; units
that are not V, mV, uV/µV or a device unit (adc, myo, myo/128); a gesture name that differs from
a shared-vocabulary name only by case or a small typo ("Hand_Close" for hand_close).

examples:
  aemg simulate --out sim --subjects 4 --seed 0
  aemg import sim --out corpora/sim
  aemg info corpora/sim --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a dataset described by a manifest.csv into a corpus",
                       description="Import a folder of signal files described by manifest.csv (the generic "
                                   "importer), harmonize every recording and store the corpus in --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest_dir", metavar="MANIFEST_DIR", help="folder holding manifest.csv and the signal files")
    add_common(p)
    p.add_argument("--allow-outside", action="store_true",
                   help="let manifest paths point outside MANIFEST_DIR (absolute, or ../x.npy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aemg.corpus import import_manifest
    from aemg.plausible import check_corpus_fs

    check_corpus_fs(args.fs)  # before anything is read: an implausible rate would run for hours
    corpus = import_manifest(args.manifest_dir, args.out, fs=args.fs, dedupe=not args.keep_duplicates,
                             progress=not args.no_progress, overwrite=args.overwrite, skip_bad=args.skip_bad,
                             allow_outside=args.allow_outside)
    report(corpus, args.json)
    return 0
