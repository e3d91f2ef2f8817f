"""``aemg info``: summarise a prepared corpus."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
--json prints one JSON object on stdout (nothing else goes to stdout) with: dataset, fs, subjects
(list of ids), n_subjects, n_sessions, n_recordings, n_trials, trials_per_gesture
(shared-vocabulary key -> count), hours, channels, layouts, mains_hz, mains_sources (how many
sessions took their mains frequency from their own spectrum, "session", or inherited it:
"subject", "dataset", "declared", "none"), dropped_duplicates,
flagged_channels ({subject, session, channel, flag}), hash, path.

example:
  aemg info corpora/3dc --json | python -c "import json,sys; print(json.load(sys.stdin)['n_trials'])"
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a prepared corpus",
                       description="Summarise a corpus written by `aemg prepare` or `aemg import`: subjects, "
                                   "sessions, trials per gesture, hours, channels, layouts, sampling rate, "
                                   "dropped duplicates and flagged channels. Reads the index, the provenance "
                                   "and the session files' attributes (no signal).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", metavar="CORPUS_DIR", help="corpus folder")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def _mains_sources(s: dict[str, Any]) -> str:
    """`` (sessions: 2 from their own spectrum, 6 dataset)``: how the mains frequencies were found."""
    src = dict(s.get("mains_sources") or {})
    if not src:
        return ""
    parts = []
    if "session" in src:
        parts.append(f"{src.pop('session')} from their own spectrum")
    parts += [f"{n} {k or 'unknown'}" for k, n in src.items()]
    return f" (sessions: {', '.join(parts)})"


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable summary of :meth:`aemg.corpus.Corpus.summary`."""
    lines = [
        f"corpus    {s['path']}",
        f"dataset   {s['dataset']} (reader {s['reader']}, aemg {s['aemg_version']})",
        f"hash      {s['hash']}",
        f"rate      {s['fs']:g} Hz (device rates: {', '.join(f'{f:g}' for f in s['fs_original'])} Hz)",
        f"subjects  {s['n_subjects']}: {', '.join(s['subjects'][:8])}{' ...' if s['n_subjects'] > 8 else ''}",
        f"sessions  {s['n_sessions']}, recordings {s['n_recordings']}, trials {s['n_trials']}, "
        f"{s['hours']:.2f} hours",
        f"channels  {', '.join(map(str, s['channels']))}; layouts {', '.join(s['layouts'])}",
        f"mains     {', '.join(f'{m:g} Hz' for m in s['mains_hz']) or 'none'}{_mains_sources(s)}",
        f"dropped   {s['dropped_duplicates']} duplicate recordings",
        "trials per gesture:",
    ]
    width = max((len(k) for k in s["trials_per_gesture"]), default=0)
    lines += [f"  {k:{width}s} {v}" for k, v in s["trials_per_gesture"].items()]
    flagged = s["flagged_channels"]
    lines.append(f"flagged channels: {len(flagged) or 'none'}")
    lines += [f"  {f['subject']} {f['session']} channel {f['channel']}: {f['flag']}" for f in flagged[:20]]
    if len(flagged) > 20:
        lines.append(f"  ... {len(flagged) - 20} more (see --json)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from aemg.corpus import Corpus

    summary = Corpus(args.corpus).summary()
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
