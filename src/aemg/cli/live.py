"""``aemg live``: a model directory of ``aemg finetune`` decoding a replayed recording, decisions as JSON lines.

One JSON object per line on stdout per decision (:meth:`aemg.live.Decision.to_json`); a summary
(chunks, late chunks, real-time factor) on stderr at the end. ``--view`` also serves the live view
(:mod:`aemg.live.view`) on 127.0.0.1 while decoding. The LSL inlet is still to come (docs/live.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live", help="decode a replayed recording with a model directory: decisions as JSON lines",
        description="Run the live decoder of MODEL_DIR (event detector, token groups, encoder and head, causal "
                    "and with state) on one recording of a corpus replayed in chunks, and print one JSON object "
                    "per decision on stdout: status (provisional, confirmed, retracted), gesture, probabilities, "
                    "time_s (stream time), onset_s, compute_ms. The noise floor is the model's stored one of the "
                    "recording's subject and session (or of --subject/--session). --view also serves a live web page on "
                    "127.0.0.1 (channels, events, token groups, the decoded gesture and its confidence).",
        epilog="examples:\n  aemg live --model models/me --replay corpora/me:me/all/me/rec0 --speed 0\n"
               "  aemg live --model M --replay C:RECORDING_ID --speed 1 --chunk 20\n"
               "  aemg live --model M --replay C:RECORDING_ID --view   (then open the URL printed on stderr)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, metavar="MODEL_DIR", help="a model directory of aemg finetune")
    p.add_argument("--replay", required=True, metavar="CORPUS:RECORDING_ID",
                   help="replay this recording of a corpus folder (ids: aemg info CORPUS)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="1 = real time (default), 0 = as fast as possible, 2 = twice real time")
    p.add_argument("--chunk", type=int, default=32, metavar="N", help="samples per chunk (default 32)")
    p.add_argument("--subject", default=None, metavar="ID", help="whose stored noise floor (default: the recording's)")
    p.add_argument("--session", default=None, metavar="NAME", help="the session of --subject (default: the recording's)")
    _view_options(p)
    p.set_defaults(func=run_live)


def _view_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live view", "a web page on this machine (127.0.0.1 only) that shows the channels "
                             "scrolling, the events and token groups, and the decoded gesture and its confidence")
    g.add_argument("--view", action="store_true",
                   help="serve the live view at http://127.0.0.1:PORT/ while decoding (the URL is printed on stderr)")
    g.add_argument("--view-port", type=int, default=8765, metavar="N",
                   help="the view's port on 127.0.0.1 (default 8765; 0: any free port)")
    g.add_argument("--view-wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for the page to connect before the stream starts (default 0)")
    g.add_argument("--view-linger", type=float, default=10.0, metavar="S",
                   help="keep serving the view S seconds after the stream ends (default 10; Ctrl-C stops)")


def _start_view(args: argparse.Namespace, dec: Any, title: str) -> Any:
    """The started :class:`aemg.live.view.LiveView` of ``--view`` (its URL on stderr), or None."""
    import sys

    from aemg.errors import OptionError
    from aemg.live.view import LiveView

    if not args.view:
        return None
    if not 0 <= args.view_port <= 65535:
        raise OptionError(f"--view-port {args.view_port}", "a port in 0..65535 (0: any free port)")
    for name in ("view_wait", "view_linger"):
        if not getattr(args, name) >= 0:
            raise OptionError(f"--{name.replace('_', '-')} {getattr(args, name)}", "seconds >= 0")
    view = LiveView.for_decoder(dec, title=title, port=args.view_port)
    try:
        url = view.start()
    except OSError as exc:
        raise OptionError(f"--view-port {args.view_port}", "a free port on 127.0.0.1 (0: any free port)",
                          f"found {exc.strerror or exc}") from None
    print(f"aemg live: live view at {url} (127.0.0.1 only)", file=sys.stderr, flush=True)
    if args.view_wait > 0 and not view.wait_for_client(args.view_wait):
        print(f"aemg live: no page connected within {args.view_wait:g} s; starting the stream", file=sys.stderr,
              flush=True)
    return view


def _end_view(view: Any, args: argparse.Namespace, **extra: Any) -> None:
    """Tell the page the stream ended, keep serving ``--view-linger`` seconds, then stop."""
    import sys
    import time

    if view is None:
        return
    try:
        view.publish_end(**extra)
        if args.view_linger > 0:
            print(f"aemg live: stream ended; the view stays up {args.view_linger:g} s (Ctrl-C stops it)",
                  file=sys.stderr, flush=True)
            time.sleep(args.view_linger)
    except KeyboardInterrupt:
        pass
    finally:
        view.close()


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
        dec = LiveDecoder(saved, subject=subject, session=session, mains_hz=rec.mains_hz)
    except KeyError as exc:
        raise OptionError("--subject/--session", "a session whose noise floor the model stores",
                          str(exc.args[0])) from None
    view = _start_view(args, dec, f"aemg live: {rid}")
    t0 = time.perf_counter()
    n = 0
    for chunk in source:
        if view is not None:  # the view's server threads are daemons: an error or Ctrl-C here ends them too
            view.publish_samples(chunk.data)
        for d in dec.process(chunk.data):
            print(json.dumps(d.to_json()), flush=args.speed > 0)
            n += 1
            if view is not None:
                view.publish_decision(d)
    for d in dec.flush():
        print(json.dumps(d.to_json()))
        n += 1
        if view is not None:
            view.publish_decision(d)
    sys.stdout.flush()
    signal_s = rec.n_samples / float(rec.fs)
    log.info("%s: %d decisions over %.1f s of signal; %d chunks, %d late; compute %.3f s (%.0fx real time), "
             "wall %.1f s", rid, n, signal_s, source.delivered, source.late, dec.compute_s,
             signal_s / max(dec.compute_s, 1e-9), time.perf_counter() - t0)
    _end_view(view, args, late_chunks=source.late)
    return 0
