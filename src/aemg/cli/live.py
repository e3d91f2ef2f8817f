"""``aemg live``: a model directory of ``aemg finetune`` decoding a replayed recording, decisions as JSON lines.

One JSON object per line on stdout per decision (:meth:`aemg.live.Decision.to_json`); a summary
(chunks, late chunks, real-time factor) on stderr at the end. The LSL inlet and the live view are
still to come (docs/live.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live", help="decode a replayed recording with a model directory: decisions as JSON lines",
        description="Run the live decoder of MODEL_DIR (event detector, token groups, encoder and head, causal "
                    "and with state) on one recording of a corpus replayed in chunks, and print one JSON object "
                    "per decision on stdout: status (provisional, confirmed, retracted), gesture, probabilities, "
                    "time_s (stream time), onset_s, compute_ms. The noise floor is the model's stored one of the "
                    "recording's subject and session (or of --subject/--session).",
        epilog="examples:\n  aemg live --model models/me --replay corpora/me:me/all/me/rec0 --speed 0\n"
               "  aemg live --model M --replay C:RECORDING_ID --speed 1 --chunk 20",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, metavar="MODEL_DIR", help="a model directory of aemg finetune")
    p.add_argument("--replay", required=True, metavar="CORPUS:RECORDING_ID",
                   help="replay this recording of a corpus folder (ids: aemg info CORPUS)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="1 = real time (default), 0 = as fast as possible, 2 = twice real time")
    p.add_argument("--chunk", type=int, default=32, metavar="N", help="samples per chunk (default 32)")
    p.add_argument("--subject", default=None, metavar="ID", help="whose stored noise floor (default: the recording's)")
    p.add_argument("--session", default=None, metavar="NAME", help="the session of --subject (default: the recording's)")
    p.add_argument("--calibrate-s", type=float, default=0.0, metavar="S",
                   help="estimate the noise floor from the stream's first S seconds (the user at rest; no decisions "
                        "during them) instead of the stored one (default 0: the stored floor)")
    p.set_defaults(func=run_live)


def run_live(args: argparse.Namespace) -> int:
    import json
    import logging
    import sys
    import time

    from aemg.errors import DataFormatError, OptionError
    from aemg.evaluate.model_dir import read_model
    from aemg.live import LiveDecoder, ReplaySource

    log = logging.getLogger("aemg.live")
    corpus_path, sep, rid = args.replay.partition(":")
    if not sep or not corpus_path or not rid:
        raise OptionError(f"--replay {args.replay}", "CORPUS:RECORDING_ID", f"found {args.replay!r}")
    if args.chunk < 1:
        raise OptionError(f"--chunk {args.chunk}", "a whole number >= 1 (samples)", f"found {args.chunk}")
    if not args.speed >= 0:
        raise OptionError(f"--speed {args.speed}", "a number >= 0 (0: as fast as possible)", f"found {args.speed}")
    if not args.calibrate_s >= 0:
        raise OptionError(f"--calibrate-s {args.calibrate_s}", "a number of seconds >= 0", f"found {args.calibrate_s}")
    saved = read_model(args.model)
    try:
        source = ReplaySource(Path(corpus_path), rid, chunk=args.chunk, speed=args.speed)
    except KeyError as exc:
        raise OptionError(f"--replay {args.replay}", "a recording id of the corpus", str(exc.args[0])) from None
    rec = source.recording
    info = saved.info
    if float(rec.fs) != float(info.token_settings["fs"]) or rec.n_channels != info.n_channels:
        raise DataFormatError(corpus_path, f"recordings at {info.token_settings['fs']} Hz with {info.n_channels} "
                              f"channels, as the model's ({args.model})",
                              f"found {rec.fs} Hz and {rec.n_channels} channels in {rid}")
    subject = args.subject or rec.subject
    session = args.session or (rec.session if args.subject is None else None)
    try:
        dec = LiveDecoder(saved, subject=subject, session=session, mains_hz=rec.mains_hz, calibration_s=args.calibrate_s)
    except KeyError as exc:
        raise OptionError("--subject/--session", "a session whose noise floor the model stores",
                          str(exc.args[0])) from None
    t0 = time.perf_counter()
    n = 0
    for chunk in source:
        for d in dec.process(chunk.data):
            print(json.dumps(d.to_json()), flush=args.speed > 0)
            n += 1
    for d in dec.flush():
        print(json.dumps(d.to_json()))
        n += 1
    sys.stdout.flush()
    signal_s = rec.n_samples / float(rec.fs)
    log.info("%s: %d decisions over %.1f s of signal; %d chunks, %d late; compute %.3f s (%.0fx real time), "
             "wall %.1f s", rid, n, signal_s, source.delivered, source.late, dec.compute_s,
             signal_s / max(dec.compute_s, 1e-9), time.perf_counter() - t0)
    return 0
