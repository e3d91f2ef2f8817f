"""Live decoding of held-out 3DC and Côté-Allard (Myo) subjects: speed, latency, accuracy, false activations.

Per dataset (``--datasets``, default ``3dc cote-allard``): the stored run that never saw it
(``pretrained/small-a``, chosen as :mod:`bench_loso` chooses it) is fine-tuned on the trials of every
subject but the first ``--held-out`` (natural order) with the code path of ``aemg finetune``
(:class:`~aemg.evaluate.encoder_methods.FinetuneMethod` on a :class:`~aemg.evaluate.data.TrialSet` of those
trials, then :func:`~aemg.evaluate.model_dir.save_model`), cached under ``--work/models/<dataset>-<key>``
(the key a hash of the run, the corpus, the held-out subjects and the fine-tuning config), so a second run
only decodes. Then every recording of the held-out subjects is **one stream** of its own (a fresh
:class:`~aemg.live.LiveDecoder` per file: one file is one repetition), cut into chunks of ``--chunk-ms``,
decoded as fast as possible (speed 0), with one torch thread. The noise floor is the held-out session's own
(:func:`aemg.tokens.amplitude.noise_floor`, the token set's label-free estimate), or with ``--calibrate-s S``
the one a decoder estimates from the first S seconds of the session's first file, its rest file in both
datasets (``LiveDecoder(calibration_s=S)``).

Definitions (one file = one repetition in both datasets, so a repetition's **labelled onset** is its file's
first labelled sample (both datasets label the whole file): the moment the file's recording started; 3DC
files start near rest, ~300 ms median onset by the dataset's notes, so the delay from it includes the
subject's reaction; Côté-Allard files start mid-contraction):

* an event belongs to the repetition (file) in which the detector put its onset;
* **first decision** of a repetition: the first decision of its first event; **final decision**: the
  ``final`` confirmed decision of its confirmed event with the most groups; accuracy over the non-rest
  repetitions, a repetition without such a decision counts as wrong (coverage printed);
* **decision delay**: from the detector's onset to the moment the decision is available when the stream
  arrives at real-time pace in these chunks: the end of the chunk that held the decision's sample, plus
  that chunk's compute time (``stream`` delay: the decision's own time, without chunking or compute);
* **false activation**: an event whose onset lies in a rest (neutral) file and that got a non-rest
  decision (provisional included: a controller acts on it); per minute of rest files;
* **real-time factor**: signal seconds / seconds spent in ``process``/``flush`` (one core), per dataset and
  overall; **reference**: the offline tokenizer (``tokenize_session``, same floor) timed on the same
  files in the same run, so ``live_vs_tokenizer`` (live compute / tokenizer compute) is less noisy
  than either figure on a shared machine;
* ``forward_path`` (each dataset's first session, unless ``--no-compare``): the live forward pass against
  the plain one (``LiveModel.reference_log_probs``: pad_batch and the whole network, the path before the
  speed work), file by file in turn in the same run (``speedup``, ``same_decisions``), the decoder with a
  model that costs nothing (``no_model_ms_per_signal_s``), forward passes per signal second, the least
  time of one full-span pass, and from these the real-time factor an unloaded core would give.

The model's offline trial accuracy on the same held-out trials (``aemg predict``'s path) is printed beside
the live accuracies.

Prints a table per dataset, then as its LAST line one JSON object: ``real_time_factor``,
``first_decision_delay_ms`` {``p50``, ``p95``}, ``first_decision_accuracy``, ``final_decision_accuracy``,
``false_activations_per_min`` (overall), and ``per_dataset``, ``reference``, ``wall_s``.

    python benchmarks/bench_live.py [--work /tmp/aemg-bench-live] [--corpora DIR] [--held-out 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loso import corpus_for, log, stored_run_for  # noqa: E402

DATASETS = ("3dc", "cote-allard")
REST = "rest"  # the neutral class's gesture key in both datasets


# ------------------------------------------------------------------ the fine-tuned model


def model_key(run_dir: Path, corpus: Any, held: list[str], cfg: Any) -> str:
    """A hash of what the fine-tuned model depends on: the run, the corpus (and its tokens), the held-out
    subjects and the fine-tuning config."""
    from aemg.evaluate.report import file_hash

    d = {"run": file_hash(run_dir / "summary.json"), "corpus": str(corpus.hash),
         "tokens": file_hash(Path(corpus.path) / "tokens" / "events.npz"), "held": sorted(held),
         "cfg": dataclasses.asdict(cfg)}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def finetuned(dataset: str, corpus: Any, held: list[str], args: argparse.Namespace) -> Path:
    """The model fine-tuned on every subject of ``corpus`` but ``held`` (aemg finetune's code path), cached."""
    from aemg.evaluate.data import SignalSource, fold_sets
    from aemg.evaluate.encoder_methods import FinetuneConfig, FinetuneMethod, trial_tokens
    from aemg.evaluate.folds import Fold, classes_of
    from aemg.evaluate.model_dir import INFO, save_model

    run_dir = stored_run_for(dataset)
    cfg = dataclasses.replace(FinetuneConfig(), epochs=args.epochs, max_tokens=args.max_tokens)
    if args.probe_blend is not None:
        cfg = dataclasses.replace(cfg, probe_blend=args.probe_blend)
    out = args.work / "models" / f"{dataset}-{model_key(run_dir, corpus, held, cfg)}"
    if (out / INFO).is_file():
        log(f"{dataset}: cached model {out}")
        return out
    trials = corpus.trials
    own = trials[~trials["subject"].isin(held)]
    subjects = tuple(sorted(set(own["subject"])))
    ids = tuple(int(t) for t in sorted(own["trial"]))
    fold = Fold(name=f"finetune:{','.join(subjects)}", protocol="finetune", train_trials=ids, test_trials=(),
                train_subjects=subjects, test_subjects=(), calibration_trials=ids, k=None)
    train, _ = fold_sets(SignalSource(corpus), fold, "session", classes_of(trials))
    method = FinetuneMethod(run_dir, trial_tokens(corpus), cfg, pretrained=True)
    t0 = time.perf_counter()
    log(f"{dataset}: fine-tuning {run_dir.name} on {len(train)} trials of {len(subjects)} subjects "
        f"({cfg.epochs} epochs, {cfg.max_tokens} tokens)")
    method.fit(train)
    save_model(method, train, out, run_dir=run_dir, run_name=run_dir.name, overwrite=out.exists())
    log(f"{dataset}: fine-tuned in {time.perf_counter() - t0:.0f} s -> {out}")
    return out


# ------------------------------------------------------------------ one stream


@dataclasses.dataclass
class StreamResult:
    """What one session stream gave (decisions with their availability, per-chunk compute, repetitions)."""

    signal_s: float
    compute_s: float
    tokenizer_s: float
    chunk_ms: list[float]  # compute of each process() call (ms)
    decisions: list[tuple[Any, float]]  # (Decision, available at: chunk end + its compute, s of its file)
    files: list[tuple[int, float, float, str]]  # per file: (its first decision, labelled start s, end s, gesture)
    floor_ratio: list[float]  # calibrated / session floor per channel (with --calibrate-s)


def calibrated_floor(model: Any, rec: Any, calibrate_s: float) -> np.ndarray:
    """The floor a decoder estimates from the first ``calibrate_s`` seconds of ``rec`` (``calibration_s``)."""
    from aemg.live import LiveDecoder

    dec = LiveDecoder(model, mains_hz=rec.mains_hz, calibration_s=calibrate_s)
    n = int(round(calibrate_s * float(rec.fs)))
    dec.process(rec.signal[:, :n])
    if dec.floor is None:
        raise SystemExit(f"{rec.recording_id}: shorter than --calibrate-s {calibrate_s}")
    return np.asarray(dec.floor)


def decode_session(model: Any, recs: list, labels: dict[str, tuple[int, str]], floor: np.ndarray, chunk: int,
                   scale: np.ndarray | None = None) -> StreamResult:
    """Decode each recording of one session as a stream of its own (a fresh decoder per file: one file is one
    repetition), timing each chunk; then the offline tokenizer on the same recordings (the reference).
    ``labels``: recording id -> (the labelled trial's first sample in it, gesture key)."""
    from aemg.live import LiveDecoder
    from aemg.tokens.tokenizer import tokenize_session

    fs = float(recs[0].fs)
    chunk_ms, decisions, files = [], [], []
    compute_s = signal_s = 0.0
    for rec in recs:
        start, gesture = labels.get(rec.recording_id, (0, ""))
        files.append((len(decisions), start / fs, rec.n_samples / fs, gesture))
        dec = LiveDecoder(model, floor=floor, scale=scale, mains_hz=rec.mains_hz)
        x = rec.signal
        for a in range(0, x.shape[1], chunk):
            b = min(a + chunk, x.shape[1])
            t0 = time.perf_counter()
            out = dec.process(x[:, a:b])
            dt = time.perf_counter() - t0
            chunk_ms.append(dt * 1000.0)
            decisions += [(d, b / fs + dt) for d in out]
        t0 = time.perf_counter()
        out = dec.flush()
        decisions += [(d, x.shape[1] / fs + time.perf_counter() - t0) for d in out]
        compute_s += dec.compute_s
        signal_s += x.shape[1] / fs
    s = model.settings
    t0 = time.perf_counter()
    for rec in recs:  # the reference: the offline tokenizer on the same files, each on its own
        tokenize_session([rec], s.config, notch=s.notch, floor=floor)
    tok_s = time.perf_counter() - t0
    return StreamResult(signal_s, compute_s, tok_s, chunk_ms, decisions, files, [])


def compare_paths(model: Any, recs: list, floor: np.ndarray, chunk: int,
                  scale: np.ndarray | None = None) -> dict[str, Any]:
    """Where the time goes, in the same run, file by file in turn: the live forward pass against the plain one
    (``LiveModel.reference_log_probs``: pad_batch and the whole network module, the decoder's path before this
    benchmark's speed work), and the decoder with a model that costs nothing (the detector, token groups and
    decision logic alone); whether the two real paths make the same decisions; the forward passes per signal
    second and the least time of one (a full span, best of 200: what an unloaded core gives)."""
    from aemg.live import LiveDecoder
    from aemg.live.model import LiveModel

    ref = LiveModel(model.saved)
    ref.span_log_probs = ref.reference_log_probs  # type: ignore[method-assign]
    free = LiveModel(model.saved)
    k = len(model.info.classes)
    free.span_log_probs = lambda g, a, b, off=None: np.full(k, -np.log(k))  # type: ignore[method-assign]
    counted = LiveModel(model.saved)
    n_fwd = [0]

    def count(g: Any, a: int, b: int, off: Any = None) -> np.ndarray:
        n_fwd[0] += 1
        return LiveModel.span_log_probs(counted, g, a, b, off)

    counted.span_log_probs = count  # type: ignore[method-assign]
    spent = {"reference": 0.0, "live": 0.0, "no_model": 0.0}
    same, max_dp, n, signal_s = True, 0.0, 0, 0.0
    for rec in recs:
        got = {}
        for name, m in (("reference", ref), ("live", counted), ("no_model", free)):
            dec = LiveDecoder(m, floor=floor, scale=scale, mains_hz=rec.mains_hz)
            out = [d for a in range(0, rec.n_samples, chunk) for d in dec.process(rec.signal[:, a:a + chunk])]
            got[name] = out + dec.flush()
            spent[name] += dec.compute_s
        a, b = got["reference"], got["live"]
        key = [(d.status, d.event, d.gesture, d.n_groups, d.time_s, d.onset_s, d.final) for d in a]
        same &= key == [(d.status, d.event, d.gesture, d.n_groups, d.time_s, d.onset_s, d.final) for d in b]
        if len(a) == len(b):
            max_dp = max([max_dp] + [float(np.abs(np.subtract(x.probabilities, y.probabilities)).max())
                                     for x, y in zip(a, b)])
        n += len(a)
        signal_s += rec.n_samples / float(rec.fs)
    out = {"reference_compute_s": spent["reference"], "live_compute_s": spent["live"],
           "speedup": spent["reference"] / max(spent["live"], 1e-12), "same_decisions": bool(same),
           "max_probability_difference": max_dp, "decisions": n,
           "no_model_ms_per_signal_s": 1000.0 * spent["no_model"] / signal_s,
           "forwards_per_signal_s": n_fwd[0] / signal_s}
    from aemg.tokens.tokenizer import tokenize_session

    longest = max((tokenize_session([r], model.settings.config, notch=model.settings.notch, floor=floor).groups
                   for r in recs), key=len)
    span = max(model.span, 1)
    if len(longest) >= span:  # a full span of real groups (timing only)
        off = None if scale is None else np.log(floor) - 2.0 * np.log(scale)
        best = min(_timed(lambda: model.span_log_probs(longest, 0, span, off)) for _ in range(200))
        best_ref = min(_timed(lambda: model.reference_log_probs(longest, 0, span, off)) for _ in range(200))
        out |= {"forward_ms_min": 1000.0 * best, "reference_forward_ms_min": 1000.0 * best_ref,
                "projected_real_time_factor": 1000.0 / (out["forwards_per_signal_s"] * 1000.0 * best
                                                        + out["no_model_ms_per_signal_s"])}
    return out


def _timed(f: Any) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def offline_accuracy(model_dir: Path, corpus: Any, held: list[str]) -> float:
    """Trial accuracy of the same model on the held-out subjects' trials, offline (``aemg predict``'s path)."""
    from aemg.cli.finetune import predict_trials

    return float(predict_trials(model_dir, corpus, held)["accuracy"])


# ------------------------------------------------------------------ figures


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def figures(results: list[StreamResult]) -> dict[str, Any]:
    """The benchmark's figures over some streams (module docstring's definitions)."""
    first_delay, first_stream, onset_delay, first_ok, final_ok = [], [], [], [], []
    n_active = n_first = n_final = 0
    false_any = false_conf = 0
    rest_s = 0.0
    for r in results:
        bounds = [f[0] for f in r.files] + [len(r.decisions)]
        for i, (_, start, stop, gesture) in enumerate(r.files):
            by_event: dict[int, list[tuple[Any, float]]] = {}
            for d, avail in r.decisions[bounds[i]:bounds[i + 1]]:
                by_event.setdefault(d.event, []).append((d, avail))
            evs = sorted(by_event.values(), key=lambda ds: ds[0][0].onset_s)
            for ds in evs:
                d, avail = ds[0]
                first_delay.append((avail - d.onset_s) * 1000.0)
                first_stream.append(d.delay_s * 1000.0)
            if not gesture:  # an unlabelled file: neither rest nor a repetition
                continue
            if gesture == REST:
                rest_s += stop - start
                false_any += sum(any(d.gesture != REST for d, _ in ds) for ds in evs)
                false_conf += sum(any(d.gesture != REST and d.status == "confirmed" for d, _ in ds) for ds in evs)
                continue
            n_active += 1
            if evs:
                d, avail = evs[0][0]
                n_first += 1
                first_ok.append(d.gesture == gesture)
                onset_delay.append((avail - start) * 1000.0)
            finals = [(d.n_groups, d) for ds in evs for d, _ in ds if d.final and d.status == "confirmed"]
            if finals:
                n_final += 1
                final_ok.append(max(finals, key=lambda t: t[0])[1].gesture == gesture)
    signal_s = sum(r.signal_s for r in results)
    compute_s = sum(r.compute_s for r in results)
    tok_s = sum(r.tokenizer_s for r in results)
    chunk_ms = [v for r in results for v in r.chunk_ms]
    ratios = [v for r in results for v in r.floor_ratio]
    out = {
        "real_time_factor": signal_s / max(compute_s, 1e-12),
        "first_decision_delay_ms": {"p50": pct(first_delay, 50), "p95": pct(first_delay, 95)},
        "first_decision_accuracy": sum(first_ok) / max(n_active, 1),
        "final_decision_accuracy": sum(final_ok) / max(n_active, 1),
        "false_activations_per_min": false_any / max(rest_s / 60.0, 1e-12),
        "confirmed_false_activations_per_min": false_conf / max(rest_s / 60.0, 1e-12),
        "first_decision_stream_delay_ms": {"p50": pct(first_stream, 50), "p95": pct(first_stream, 95)},
        "delay_from_labelled_onset_ms": {"p50": pct(onset_delay, 50), "p95": pct(onset_delay, 95)},
        "chunk_compute_ms": {"p50": pct(chunk_ms, 50), "p95": pct(chunk_ms, 95), "max": max(chunk_ms, default=0.0)},
        "repetitions": n_active, "with_first_decision": n_first, "with_final_decision": n_final,
        "events": len(first_delay), "rest_min": rest_s / 60.0,
        "signal_s": signal_s, "compute_s": compute_s,
        "tokenizer_real_time_factor": signal_s / max(tok_s, 1e-12),
        "live_vs_tokenizer": compute_s / max(tok_s, 1e-12),
    }
    if ratios:
        out["calibrated_floor_ratio"] = {"min": min(ratios), "median": pct(ratios, 50), "max": max(ratios)}
    return out


def rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if np.isfinite(v) else None
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    return v


def table(name: str, f: dict[str, Any]) -> str:
    d, s, o, c = (f["first_decision_delay_ms"], f["first_decision_stream_delay_ms"], f["delay_from_labelled_onset_ms"],
                  f["chunk_compute_ms"])
    lines = [
        f"== {name}: {f['signal_s']:.0f} s of signal, {f['events']} events, {f['repetitions']} gesture repetitions, "
        f"{f['rest_min']:.2f} min of rest",
        f"  real-time factor (one core)        {f['real_time_factor']:8.1f}x   (offline tokenizer "
        f"{f['tokenizer_real_time_factor']:.0f}x; live / tokenizer compute {f['live_vs_tokenizer']:.1f})",
        f"  first decision after onset (ms)    p50 {d['p50']:6.1f}  p95 {d['p95']:6.1f}   (stream time only: "
        f"p50 {s['p50']:.1f}, p95 {s['p95']:.1f})",
        f"  first decision after file start    p50 {o['p50']:6.1f}  p95 {o['p95']:6.1f}   (labelled onset = the "
        "file's first sample)",
        f"  compute per chunk (ms)             p50 {c['p50']:6.2f}  p95 {c['p95']:6.2f}  max {c['max']:.1f}",
        f"  accuracy first / final decision    {f['first_decision_accuracy']:.3f} / "
        f"{f['final_decision_accuracy']:.3f}   (repetitions with one: {f['with_first_decision']} / "
        f"{f['with_final_decision']} of {f['repetitions']})",
        f"  false activations per min of rest  {f['false_activations_per_min']:.2f}   (confirmed ones: "
        f"{f['confirmed_false_activations_per_min']:.2f})",
    ]
    if "offline_trial_accuracy" in f:
        lines.append(f"  offline trial accuracy, same model {f['offline_trial_accuracy']:.3f}   (aemg predict's path)")
    if "forward_path" in f:
        fp = f["forward_path"]
        lines.append(f"  forward pass vs plain network      {fp['speedup']:.2f}x faster ({fp['reference_compute_s']:.1f} s -> "
                     f"{fp['live_compute_s']:.1f} s, same run); same decisions: {fp['same_decisions']} "
                     f"(max |dp| {fp['max_probability_difference']:.1e})")
        if "forward_ms_min" in fp:
            lines.append(f"  where the time goes                {fp['forwards_per_signal_s']:.1f} forward passes per signal s, "
                         f"least {fp['forward_ms_min']:.2f} ms each (plain {fp['reference_forward_ms_min']:.2f}); "
                         f"without the model {fp['no_model_ms_per_signal_s']:.1f} ms per signal s; "
                         f"unloaded projection {fp['projected_real_time_factor']:.0f}x")
    if "calibrated_floor_ratio" in f:
        r = f["calibrated_floor_ratio"]
        lines.append(f"  calibrated / session floor         min {r['min']:.2f} median {r['median']:.2f} "
                     f"max {r['max']:.2f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ main


def bench_dataset(dataset: str, args: argparse.Namespace, extra: dict[str, Any]) -> list[StreamResult]:
    from aemg.evaluate.folds import subjects_of
    from aemg.live.model import LiveModel
    from aemg.tokens.amplitude import noise_floor

    corpus = corpus_for(dataset, args.corpora)
    held = subjects_of(corpus.trials)[:args.held_out]
    model_dir = finetuned(dataset, corpus, held, args)
    model = LiveModel(model_dir)
    extra["offline_trial_accuracy"] = offline_accuracy(model_dir, corpus, held)
    chunk = max(1, int(round(args.chunk_ms * model.fs / 1000.0)))
    labels = {str(t.recording_id): (int(t.start), str(t.gesture_key)) for t in corpus.trials.itertuples()}
    results = []
    for subject in held:
        rec = corpus.recordings
        for session in dict.fromkeys(rec.loc[rec["subject"] == subject, "session"].astype(str)):
            recs = list(corpus.iter_recordings(subject=subject, session=session, scaled=False))
            floor = noise_floor(corpus, subject, session, model.info.token_settings)
            scale = np.asarray(corpus.scale(subject, session), np.float64)  # the amplitude path's (stored) scale
            scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
            ratio: list[float] = []
            if args.calibrate_s:  # the session's first file (rest in both datasets) calibrates the floor
                cal = calibrated_floor(model, recs[0], args.calibrate_s)
                ratio, floor = (cal / floor).tolist(), cal
            if args.compare and "forward_path" not in extra:  # the first session: before / after, same run
                extra["forward_path"] = compare_paths(model, recs, floor, chunk, scale)
                log(f"{dataset} forward path: {extra['forward_path']}")
            r = decode_session(model, recs, labels, floor, chunk, scale)
            r.floor_ratio = ratio
            log(f"{dataset} {subject}/{session}: {r.signal_s:.0f} s in {r.compute_s:.1f} s "
                f"({r.signal_s / r.compute_s:.1f}x), {len(r.decisions)} decisions")
            results.append(r)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/aemg-bench-live"),
                   help="folder for the cached fine-tuned models (and the corpora, unless --corpora)")
    p.add_argument("--corpora", type=Path, default=None,
                   help="folder of prepared corpora, one per dataset name (default WORK/corpora; made when missing)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--held-out", type=int, default=2, help="held-out subjects per dataset, the first in natural "
                   "order (default 2); the model is fine-tuned on all the others")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    p.add_argument("--max-tokens", type=int, default=256, help="tokens per span when fine-tuning (default 256)")
    p.add_argument("--probe-blend", type=float, default=None,
                   help="FinetuneConfig.probe_blend of the fine-tuned models (default FinetuneConfig's; 0: the "
                   "fine-tuned network alone, one forward pass per group instead of two)")
    p.add_argument("--chunk-ms", type=float, default=40.0, help="chunk length (ms, default 40: 8 samples at 200 Hz)")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the before/after comparison of the forward pass on each dataset's first session")
    p.add_argument("--calibrate-s", type=float, default=0.0,
                   help="estimate the floor from each stream's first S seconds instead of the session's (default 0)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the datasets' known duplicates and absent subjects are expected
    import torch

    torch.set_num_threads(1)
    args.corpora = args.corpora or args.work / "corpora"
    args.corpora.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extras: dict[str, dict[str, Any]] = {d: {} for d in args.datasets}
    per: dict[str, list[StreamResult]] = {d: bench_dataset(d, args, extras[d]) for d in args.datasets}
    per_fig = {d: {**figures(r), **extras[d]} for d, r in per.items()}
    overall = figures([r for rs in per.values() for r in rs])
    for d, f in per_fig.items():
        print(table(d, f))
    print(table("overall", overall))
    keys = ("real_time_factor", "first_decision_delay_ms", "first_decision_accuracy", "final_decision_accuracy",
            "false_activations_per_min")
    summary = {k: rounded(overall[k]) for k in keys}
    summary["per_dataset"] = {d: rounded(f) for d, f in per_fig.items()}
    summary["reference"] = {"tokenizer_real_time_factor": rounded(overall["tokenizer_real_time_factor"]),
                            "live_vs_tokenizer": rounded(overall["live_vs_tokenizer"])}
    summary["settings"] = {"chunk_ms": args.chunk_ms, "held_out": args.held_out, "epochs": args.epochs,
                           "max_tokens": args.max_tokens, "calibrate_s": args.calibrate_s, "torch_threads": 1,
                           "probe_blend": args.probe_blend}
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
