"""``aemg datasets``: list the registered dataset readers and their facts."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list supported datasets with their facts",
                       description="List every registered dataset reader: device, sampling rate, channels, "
                                   "subjects, gestures, citation and where to get the files (aemg never downloads).")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects (one per dataset) on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aemg.datasets import list_datasets

    infos = list_datasets()
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    for i in infos:
        print(f"{i.name:14s} {i.device}, {i.fs:g} Hz, {i.n_channels} ch, {i.n_subjects} subjects, "
              f"{len(i.gestures)} gestures (layout {i.layout})")
        print(f"{'':14s} gestures: {', '.join(i.gestures)}")
        print(f"{'':14s} cite: {i.citation}")
        print(f"{'':14s} get: {i.url}")
        print(f"{'':14s} licence: {i.license}")
    return 0
