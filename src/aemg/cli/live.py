"""``aemg live``: a model directory of ``aemg finetune`` decoding a replayed recording, a raw file or an LSL stream.

One JSON object per line on stdout per decision (:meth:`aemg.live.Decision.to_json`); a summary
(chunks, late chunks, dropped samples, real-time factor) on stderr at the end. Sources: ``--replay
CORPUS:RECORDING_ID`` (a corpus recording), ``--replay FILE.npy|FILE.csv --fs HZ`` (raw samples) and
``--lsl NAME`` (an LSL stream); docs/live.md. ``--view`` also serves the live view
(:mod:`aemg.live.view`) on 127.0.0.1 while decoding.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live", help="decode a replayed recording, a raw file or an LSL stream with a model directory: "
                     "decisions as JSON lines",
        description="Run the live decoder of MODEL_DIR (event detector, token groups, encoder and head, causal "
                    "and with state) on a source: one recording of a corpus replayed in chunks, a raw .npy/.csv "
                    "file of samples (n_samples, n_channels) replayed at --fs, or an LSL stream resolved by name. "
                    "Print one JSON object per decision on stdout: status (provisional, confirmed, retracted), "
                    "gesture, probabilities, time_s (stream time), onset_s, compute_ms. The source's channel "
                    "count must be the model's; a file or stream at another rate than the model's corpus rate is "
                    "resampled causally (the corpus preparation's anti-aliasing FIR, applied causally: it adds its "
                    "delay, reported). Samples must be in the corpus's units (a Myo corpus: int8 counts). The noise "
                    "floor is the model's stored one of the recording's subject and session (or of "
                    "--subject/--session; a file or stream needs them unless the model stores one session). "
                    "LSL: timestamp gaps of more than 1.5 sample periods are counted as dropped samples and "
                    "reported; the stream ends when its outlet goes away, after --duration or --idle-timeout, "
                    "or on Ctrl-C. --view also serves a live web page on 127.0.0.1 (channels, events, token groups, "
                    "the decoded gesture and its confidence).",
        epilog="examples:\n  aemg live --model models/me --replay corpora/me:me/all/me/rec0 --speed 0\n"
               "  aemg live --model M --replay C:RECORDING_ID --speed 1 --chunk 20\n"
               "  aemg live --model M --replay take1.npy --fs 1000 --speed 0 --subject S --session S1\n"
               "  aemg live --model M --lsl 'Myo EMG' --timeout 5 --subject S --session S1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, metavar="MODEL_DIR", help="a model directory of aemg finetune")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--replay", metavar="CORPUS:RECORDING_ID|FILE",
                     help="replay this recording of a corpus folder (ids: aemg info CORPUS), or an existing .npy/.csv "
                          "file of samples, one row per sample (n_samples, n_channels), at --fs")
    src.add_argument("--lsl", metavar="NAME", help="decode the LSL stream of this name (pylsl)")
    p.add_argument("--fs", type=float, default=None, metavar="HZ",
                   help="the rate of a --replay FILE (Hz); resampled causally when not the model's")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="replay: 1 = real time (default), 0 = as fast as possible, 2 = twice real time")
    p.add_argument("--chunk", type=int, default=32, metavar="N",
                   help="replay: samples per chunk (default 32); LSL: the most samples taken per pull")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="LSL: seconds to find the stream (default 10)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="LSL: stop after S seconds of stream (default: until its outlet goes away or Ctrl-C)")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="S",
                   help="LSL: stop when no sample came for S seconds (default: wait)")
    p.add_argument("--mains-hz", type=float, default=None, metavar="HZ",
                   help="file or LSL: the mains frequency (50 or 60), needed when the model's tokens were notched")
    p.add_argument("--subject", default=None, metavar="ID",
                   help="whose stored noise floor (default: the recording's; a file or stream: the model's one session)")
    p.add_argument("--session", default=None, metavar="NAME", help="the session of --subject (default: the recording's)")
    p.add_argument("--calibrate-s", type=float, default=0.0, metavar="S",
                   help="estimate the noise floor from the stream's first S seconds (the user at rest; no decisions "
                        "during them) instead of the stored one (default 0: the stored floor)")
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


def _positive(option: str, value: float | None, what: str) -> None:
    from aemg.errors import OptionError

    if value is not None and not value > 0:
        raise OptionError(f"{option} {value}", what, f"found {value}")


def open_source(args: argparse.Namespace, info) -> tuple[object, str, dict]:
    """The source of ``args`` (corpus replay, raw file or LSL), a label for the summary, and the decoder's
    floor/mains keywords (subject, session, mains_hz); its rate and channels checked against the model's."""
    from aemg.errors import DataFormatError, OptionError

    fs, n_channels = float(info.token_settings["fs"]), int(info.n_channels)
    _positive("--fs", args.fs, "a rate > 0 (Hz)")
    for opt, v in (("--timeout", args.timeout), ("--duration", args.duration), ("--idle-timeout", args.idle_timeout)):
        _positive(opt, v, "a number of seconds > 0")
    floor = {"subject": args.subject, "session": args.session, "mains_hz": args.mains_hz}
    if args.lsl is not None:
        from aemg.live.lsl import LSLSource

        if args.fs is not None:
            raise OptionError(f"--fs {args.fs:g}", "--fs only with a raw --replay FILE (a stream states its rate)",
                              f"found --lsl {args.lsl}")

        source = LSLSource(args.lsl, fs=fs, n_channels=n_channels, timeout=args.timeout, chunk=args.chunk,
                           duration_s=args.duration, idle_timeout_s=args.idle_timeout)
        return source, f"LSL stream {args.lsl!r}", floor
    from aemg.live.rawfile import is_raw_file

    if is_raw_file(args.replay):
        from aemg.live.rawfile import FileSource

        if args.fs is None:
            raise OptionError(f"--replay {args.replay}", "--fs HZ with a raw file (the rate of its samples)",
                              "found no --fs")
        source = FileSource(args.replay, fs=args.fs, model_fs=fs, n_channels=n_channels, chunk=args.chunk,
                            speed=args.speed)
        return source, str(args.replay), floor
    from aemg.live import ReplaySource

    corpus_path, sep, rid = args.replay.partition(":")
    if not sep or not corpus_path or not rid:
        raise OptionError(f"--replay {args.replay}", "CORPUS:RECORDING_ID or an existing .npy/.csv file",
                          f"found {args.replay!r}")
    if args.fs is not None:
        raise OptionError(f"--fs {args.fs:g}", "--fs only with a raw --replay FILE (a corpus states its rate)",
                          f"found --replay {args.replay}")
    try:
        source = ReplaySource(Path(corpus_path), rid, chunk=args.chunk, speed=args.speed)
    except KeyError as exc:
        raise OptionError(f"--replay {args.replay}", "a recording id of the corpus", str(exc.args[0])) from None
    rec = source.recording
    if float(rec.fs) != fs or rec.n_channels != n_channels:
        raise DataFormatError(corpus_path, f"recordings at {fs:g} Hz with {n_channels} channels, as the model's "
                              f"({args.model})", f"found {rec.fs} Hz and {rec.n_channels} channels in {rid}")
    floor["subject"] = args.subject or rec.subject
    floor["session"] = args.session or (rec.session if args.subject is None else None)
    floor["mains_hz"] = args.mains_hz or rec.mains_hz
    return source, rid, floor


def run_live(args: argparse.Namespace) -> int:
    import json
    import logging
    import sys
    import time

    from aemg.errors import OptionError
    from aemg.evaluate.model_dir import read_model
    from aemg.live import LiveDecoder
    from aemg.live.model import LiveModel

    log = logging.getLogger("aemg.live")
    if args.chunk < 1:
        raise OptionError(f"--chunk {args.chunk}", "a whole number >= 1 (samples)", f"found {args.chunk}")
    if not args.speed >= 0:
        raise OptionError(f"--speed {args.speed}", "a number >= 0 (0: as fast as possible)", f"found {args.speed}")
    if not args.calibrate_s >= 0:
        raise OptionError(f"--calibrate-s {args.calibrate_s}", "a number of seconds >= 0", f"found {args.calibrate_s}")
    saved = read_model(args.model)
    model = LiveModel(saved)  # the network first: a stream's samples pile up while it loads
    source, label, floor = open_source(args, saved.info)
    try:
        dec = LiveDecoder(model, **floor, calibration_s=args.calibrate_s)
    except KeyError as exc:
        raise OptionError("--subject/--session", "a session whose noise floor the model stores",
                          str(exc.args[0])) from None
    except ValueError as exc:
        if "mains_hz" not in str(exc):
            raise
        raise OptionError("--mains-hz", "the mains frequency (50 or 60 Hz): the model's tokens were notch-filtered",
                          "found none") from None
    view = _start_view(args, dec, f"aemg live: {label}")
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
    signal_s = dec.clock / dec.fs
    log.info("%s: %d decisions over %.1f s of signal; %d chunks, %d late, %d samples dropped; compute %.3f s "
             "(%.0fx real time), wall %.1f s", label, n, signal_s, source.delivered, source.late,
             getattr(source, "dropped", 0), dec.compute_s, signal_s / max(dec.compute_s, 1e-9),
             time.perf_counter() - t0)
    if hasattr(source, "summary"):
        log.info("%s", source.summary())
    _end_view(view, args, late_chunks=source.late)
    return 0
