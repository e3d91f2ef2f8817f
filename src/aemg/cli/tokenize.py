"""``aemg tokenize CORPUS_DIR``: contraction events -> token groups, stored beside the corpus."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aemg.tokens import TokenSet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenize", help="tokenize a prepared corpus into neuromuscular tokens",
                       description="Detect contraction events (causal detector, session noise floor), cut them into "
                                   "segments of at most 100 ms and describe each channel's burst as a token. The "
                                   "TokenSet is written beside the corpus (CORPUS_DIR/tokens/events.npz, or "
                                   "windows-<N>ms.npz with --window-ms). Prints counts and, where the corpus has "
                                   "labels, coverage of gestures, false events in rest and onset delays.")
    p.add_argument("corpus", metavar="CORPUS_DIR", type=Path, help="a corpus folder from `aemg prepare`/`aemg import`")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--plot", nargs="?", const="", default=None, metavar="RECORDING_ID",
                   help="also write a PNG of a recording's channels with the stored events and groups (default: "
                        "the first recording with an event)")
    p.add_argument("--window-ms", type=float, default=None, metavar="N",
                   help="fixed windows of N ms instead of events (the ablation)")
    p.add_argument("--out", type=Path, default=None, help="where to write the TokenSet (default: beside the corpus)")
    p.add_argument("--notch", action="store_true", help="add a notch at the corpus's detected mains frequency")
    p.add_argument("--by-subject", action="store_true",
                   help="also the detection figures of every subject alone (coverage, rest false events per minute) "
                        "and their spread: the pooled rest rate hides subjects who never fully relax")
    p.add_argument("--limit", type=float, default=1.5, metavar="PER_MIN",
                   help="with --by-subject: count subjects above this many rest false events per minute (default 1.5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import math

    from aemg.corpus import Corpus
    from aemg.errors import OptionError
    from aemg.tokens import TokenSet, tokenize_corpus

    if not (math.isfinite(args.limit) and args.limit >= 0):
        raise OptionError(f"--limit {args.limit:g}", "a rate in events per minute >= 0", f"found {args.limit:g}")
    if args.window_ms is not None and not (math.isfinite(args.window_ms) and args.window_ms > 0):
        raise OptionError(f"--window-ms {args.window_ms:g}", "a window length in ms > 0", f"found {args.window_ms:g}")
    corpus = Corpus(args.corpus)
    if args.plot and args.plot not in set(corpus.recording_ids):  # fail before tokenizing everything
        example = f" (e.g. {corpus.recording_ids[0]})" if len(corpus.recording_ids) else ""
        raise OptionError(f"--plot {args.plot}", f"a recording id of {corpus.path}{example}",
                          "found no recording of that id")
    # progress bars go to stderr, so --json (stdout) leaves them on, as in every command; --no-progress hides them
    ts = tokenize_corpus(corpus, window_ms=args.window_ms, notch=args.notch, progress=not args.no_progress)
    path = ts.save(args.out or TokenSet.default_path(args.corpus, args.window_ms))
    out = {"path": str(path), **ts.metrics()}
    if args.by_subject:
        from aemg.tokens.metrics import subject_summary

        subjects = ts.metrics_by_subject()
        out["per_subject"] = subject_summary(subjects, limit_per_minute=args.limit) if subjects else None
        out["subjects"] = subjects
    if args.plot is not None:
        from aemg.tokens.plot import plot_recording

        rid = args.plot or first_with_event(ts)
        png = path.with_name(f"{path.stem}-{_safe(rid)}.png")
        plot_recording(corpus, rid, png, tokens=ts)  # the stored events and groups, not detected again
        out["plot"] = str(png)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{ts!r}\nwritten to {path}")
    for key, value in out.items():
        if key not in ("path", "subjects", "per_subject") and value is not None:
            print(f"  {key}: {_fmt(value)}")
    if args.by_subject and out["subjects"]:
        q = out["per_subject"]
        print(f"  per subject: {q['n_with_rest_events']} of {q['n_with_rest']} with a rest event, {q['n_above_limit']} "
              f"above {q['limit_per_minute']:g} per minute (max {_fmt(q['rest_events_per_minute_max'])}); "
              f"coverage lowest {_fmt(q['coverage_min'])}")
        print(subject_table(out["subjects"]))
    elif args.by_subject:
        print("  per subject: no labelled trials")
    sys.stdout.flush()
    return 0


def subject_table(subjects: dict[str, dict]) -> str:
    """A plain-text table, one line per subject: rest minutes, rest events (per minute), rest hit, coverage."""
    def num(v: object, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    width = max(len("subject"), *(len(s) for s in subjects))
    lines = [f"  {'subject':<{width}}  rest min  rest events  per min  rest hit  coverage"]
    for s, m in subjects.items():
        lines.append(f"  {s:<{width}}  {num(m['rest_minutes'], '8.2f')}  {m['rest_events']:11d}  "
                     f"{num(m['rest_events_per_minute'], '7.2f')}  {num(m['rest_hit_fraction'], '8.2f')}  "
                     f"{num(m['coverage'], '8.3f')}")
    return "\n".join(lines)


def first_with_event(ts: TokenSet) -> str:
    """The id of the first recording that has a token group (else the first recording)."""
    if ts.n_groups:
        return str(ts.recordings.id[int(ts.groups.recording[0])])
    if len(ts.recordings):
        return str(ts.recordings.id[0])
    raise ValueError("the corpus has no recordings to plot")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)
