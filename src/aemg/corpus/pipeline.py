"""Build a corpus: read a dataset, harmonize each recording, store it (``aemg prepare`` / ``aemg import``).

Pipeline, per subject and session (:func:`harmonize_session`):

1. sample-and-hold logging (UCI) is detected and rebuilt at the device's true rate;
2. the mains frequency (50/60 Hz) is detected on the native-rate signals of the session and stored
   on each recording (``mains_hz``, with ``attrs["mains_source"]``); a session whose spectrum shows
   no line inherits the subject's, then the dataset's detection, then the reader's documented
   value (:func:`resolve_mains`);
3. channel QC flags each channel ("" ok, "dead", "saturated", "mains");
4. anti-aliased resampling to the corpus rate, then per-channel DC removal;
5. one robust amplitude scale per channel over all the session's recordings, label-free, measured
   after the causal 20 Hz high-pass and mains notch a live decoder runs
   (:func:`aemg.signal.scale.session_scale`). It is stored in the session file and the index;
   signals are stored unscaled and unfiltered.

Before that, every recording's raw signal is hashed and duplicates are resolved over the whole
dataset (:mod:`aemg.corpus.dedupe`), so the first pass reads everything once. The raw recordings
of that pass are kept in memory up to :data:`CACHE_BYTES` and reused; beyond it, the reader runs a
second time (sessions must then come out of the reader contiguously, which every reader does).

Crash safety: a marker file (``.aemg-prepare.json``) is written first and removed last; each
session file is written atomically and records a fingerprint of what it was built from (reader,
parameters, recording ids, raw-signal hashes and source-file checksums). The index tables and
``provenance.json`` are written last. :class:`aemg.corpus.Corpus` refuses a folder whose marker is
present, so an interrupted run is never trusted; running the same command again skips every
session whose file exists with the same fingerprint and finishes the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aemg.atomic import atomic_write_text, fsync_dir
from aemg.corpus import dedupe as dd
from aemg.corpus import index as ix
from aemg.corpus import provenance as pv
from aemg.corpus import store
from aemg.recording import Recording

log = logging.getLogger("aemg.corpus")

MARKER = ".aemg-prepare.json"
PROVENANCE = "provenance.json"
SUBJECTS_DIR = "subjects"
CACHE_BYTES = 1 << 30
"""Raw signal bytes kept in memory between the hashing pass and the harmonizing pass."""
SCALE_METHOD = "session_scale(hp 20 Hz + mains notch, 100 ms windows, p90)"
"""How the stored scale is computed; part of each session's fingerprint, so a resumed build never
mixes session files whose scales were computed differently."""
MAINS_WINDOW_S = 300.0
"""At most this many seconds of a session's native-rate signal go into mains detection."""


def _session_done(n_written: int, h5_file: Path) -> None:
    """Called after each session file is written (a hook tests use to interrupt a run)."""


# ---------------------------------------------------------------------------------------- harmonize

def _detect_session_mains(recs: list[Recording]) -> float | None:
    """Mains detected on the quietest quarter of a session's recordings (label-free).

    The line is a small, constant power: contractions bury it, rest reveals it. Recordings are
    ranked by their median channel standard deviation and the quietest quarter (at least one, at
    most :data:`MAINS_WINDOW_S` seconds) is concatenated, each with its channel medians removed.
    """
    from aemg.signal import detect_mains

    fss = [r.fs for r in recs]
    fs = max(sorted(set(fss)), key=fss.count)
    n_ch = recs[0].n_channels
    usable = [r for r in recs if r.fs == fs and r.n_channels == n_ch and r.n_samples]
    if not usable:
        return None
    loudness = [float(np.median(np.std(r.signal, axis=1))) for r in usable]
    ranked = [usable[i] for i in np.argsort(loudness, kind="stable")]
    parts, total = [], 0
    for r in ranked[:max(1, len(ranked) // 4)]:
        parts.append(r.signal - np.median(r.signal, axis=1, keepdims=True))
        total += r.n_samples
        if total >= MAINS_WINDOW_S * fs:
            break
    found = detect_mains(np.concatenate(parts, axis=1), fs)
    return None if found is None else float(found)


def native_rate(recs: list[Recording]) -> list[Recording]:
    """Recordings with sample-and-hold logging rebuilt at their true rate (others unchanged)."""
    from aemg.signal import detect_sample_and_hold, rebuild_sample_and_hold

    return [rebuild_sample_and_hold(r) if detect_sample_and_hold(r) else r for r in recs]


def resolve_mains(detected: dict[tuple[str, str], float | None],
                  declared: float | None) -> dict[tuple[str, str], tuple[float | None, str]]:
    """Mains frequency and its source for each (subject, session).

    Mains is a property of where a dataset was recorded, but its line is not visible in every
    session (3DC: clear in some participants' rest files, buried under EMG in others). Each session
    takes, in this order: its own detection ("session"); the most common detection among the
    subject's other sessions ("subject"); the most common detection over the dataset ("dataset");
    the reader's documented value ("declared"); else None ("none").
    """
    def common(values: list[float]) -> float | None:
        return max(sorted(set(values)), key=values.count) if values else None

    found = [v for v in detected.values() if v is not None]
    out = {}
    for (subject, session), v in detected.items():
        if v is not None:
            out[(subject, session)] = (v, "session")
            continue
        same = common([m for (s, _), m in detected.items() if s == subject and m is not None])
        if same is not None:
            out[(subject, session)] = (same, "subject")
        elif found:
            out[(subject, session)] = (common(found), "dataset")
        elif declared is not None:
            out[(subject, session)] = (float(declared), "declared")
        else:
            out[(subject, session)] = (None, "none")
    return out


def _log_mains(dataset: str, detected: dict[tuple[str, str], float | None],
               mains: dict[tuple[str, str], tuple[float | None, str]], declared: float | None) -> None:
    """Say how each session's mains frequency was found; warn when the spectra contradict the reader."""
    seen = sorted({v for v in detected.values() if v is not None})
    how: dict[str, int] = {}
    for _, source in mains.values():
        how[source] = how.get(source, 0) + 1
    log.info("%s: mains %s; sessions: %s", dataset,
             " and ".join(f"{v:g} Hz" for v in seen) + " in the spectrum" if seen else "not visible in any spectrum",
             ", ".join(f"{n} {k}" for k, n in sorted(how.items())))
    if declared is not None and seen and float(declared) not in seen:
        log.warning("%s: the spectra show mains at %s but the reader documents %g Hz; the detected value is "
                    "used", dataset, " and ".join(f"{v:g} Hz" for v in seen), declared)


def harmonize_session(recs: list[Recording], fs: float, mains: tuple[float | None, str] | None = None,
                      ) -> tuple[list[Recording], np.ndarray]:
    """Harmonized recordings of one subject-session and its robust scale (see the module docstring).

    ``mains`` is ``(mains_hz, source)`` from :func:`resolve_mains`; by default it is detected on this
    session alone.
    """
    from aemg.signal import channel_qc, remove_dc, resample
    from aemg.signal.scale import session_scale

    native = native_rate(recs)
    if mains is None:
        found = _detect_session_mains(native)
        mains = resolve_mains({("", ""): found}, recs[0].mains_hz)[("", "")]
    mains_hz, source = mains
    out = []
    for r in native:
        r = r.replace(mains_hz=mains_hz, attrs={**r.attrs, "mains_source": source})
        r = r.replace(channel_flags=tuple(channel_qc(r)))
        if r.fs != fs:
            r = resample(r, fs)
        out.append(remove_dc(r))
    scale = np.asarray(session_scale(out), dtype=np.float64)
    return out, scale


# ---------------------------------------------------------------------------------------- helpers

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe form of an id: ``/`` becomes ``__``, other unsafe runs ``_``."""
    s = _UNSAFE.sub("_", text.replace("/", "__")).strip(".") or "_"
    return s


def _unique_paths(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Relative h5 path of each (subject, session), made unique when two ids map to one name."""
    out: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for subject, session in keys:
        rel = f"{SUBJECTS_DIR}/{safe_name(subject)}/{safe_name(session)}.h5"
        if rel.lower() in used:
            tag = hashlib.sha1(f"{subject}\0{session}".encode()).hexdigest()[:8]
            rel = f"{SUBJECTS_DIR}/{safe_name(subject)}/{safe_name(session)}-{tag}.h5"
        used.add(rel.lower())
        out[(subject, session)] = rel
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _check_target(out: Path, dataset: str, reader: str, params: dict[str, Any], overwrite: bool) -> None:
    """Refuse a non-empty ``out`` that is not an aemg corpus of the same dataset and parameters."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    state = _read_json(out / MARKER) or _read_json(out / PROVENANCE)
    if state is None or state.get("format") != pv.FORMAT:
        raise FileExistsError(f"{out}: not empty and not an aemg corpus; choose a new or empty folder "
                              "(aemg never deletes a folder it did not create)")
    same = state.get("dataset") == dataset and state.get("reader") == reader and state.get("params") == params
    if same:
        return
    if overwrite:
        log.warning("removing the existing corpus in %s (dataset %s, params %s)", out, state.get("dataset"),
                    state.get("params"))
        shutil.rmtree(out)
        return
    raise FileExistsError(f"{out}: holds an aemg corpus of dataset {state.get('dataset')!r} with params "
                          f"{state.get('params')}, not {dataset!r} with {params}; use --overwrite to replace it")


def _source_sha(sources: list[dict[str, Any]]) -> Callable[[str], str]:
    by_path = {s["path"]: s["sha256"] for s in sources}

    def lookup(source_file: str) -> str:
        if source_file in by_path:
            return by_path[source_file]
        hits = [sha for p, sha in by_path.items() if p.endswith("/" + source_file)]
        return hits[0] if len(hits) == 1 else ""

    return lookup


def _fingerprint(dataset: str, reader: str, params: dict[str, Any], entries: list[dd.Entry],
                 sha_of: Callable[[str], str]) -> str:
    doc = {"format_version": store.FORMAT_VERSION, "dataset": dataset, "reader": reader, "params": params,
           "recordings": [[e.recording_id, e.raw_hash, e.source_file, sha_of(e.source_file)] for e in entries]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _sessions_in_reader_order(recs: Iterable[Recording]) -> Iterator[list[Recording]]:
    """Consecutive runs of one (subject, session); a session that reappears later is an error."""
    done: set[tuple[str, str]] = set()
    key: tuple[str, str] | None = None
    buf: list[Recording] = []
    for rec in recs:
        k = (rec.subject, rec.session)
        if k != key:
            if buf:
                yield buf
                done.add(key)  # type: ignore[arg-type]
            if k in done:
                raise ValueError(f"{rec.source_file}: the reader yielded session {k[0]} {k[1]} in two separate "
                                 "runs; readers must yield each session's recordings together")
            key, buf = k, []
        buf.append(rec)
    if buf:
        yield buf


# ---------------------------------------------------------------------------------------- the build

def _build(*, reader: Any, reader_name: str, dataset: str, root: Path, out: Path, fs: float, dedupe: bool,
           progress: bool, overwrite: bool) -> Any:
    from tqdm.auto import tqdm

    from aemg.corpus.corpus import Corpus

    root, out = Path(root), Path(out)
    if not root.exists():
        raise FileNotFoundError(f"{root}: raw data folder not found")
    params = {"fs": float(fs), "dedupe": bool(dedupe)}
    if not fs > 0:
        raise ValueError(f"--fs must be > 0 Hz, got {fs}")
    if root.resolve() == out.resolve() or out.resolve() in root.resolve().parents:
        raise FileExistsError(f"{out}: the corpus folder must not contain the raw data folder {root} "
                              "(aemg never writes among, or deletes, the files it reads); choose another --out")
    _check_target(out, dataset, reader_name, params, overwrite)
    files = reader.files(root)  # checks the raw folder's layout before anything is written
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_text(out / MARKER, store.dumps(
        {"format": pv.FORMAT, "dataset": dataset, "reader": reader_name, "params": params, "started": started,
         "root": str(root.resolve())}, indent=2))

    sources = pv.source_entries(files, root, progress=progress)
    sha_of = _source_sha(sources)

    # pass 1: read and hash every recording (kept in memory while under the budget), detect mains
    entries: list[dd.Entry] = []
    cache: list[Recording] | None = []
    cached_bytes = 0
    detected: dict[tuple[str, str], float | None] = {}
    records = tqdm(reader.read(root), desc=f"read {dataset}", unit="rec", disable=not progress, file=sys.stderr)
    for run in _sessions_in_reader_order(records):
        detected[(run[0].subject, run[0].session)] = _detect_session_mains(native_rate(run))
        for rec in run:
            entries.append(dd.Entry.of(rec))
            if cache is not None:
                cached_bytes += rec.signal.nbytes
                if cached_bytes > CACHE_BYTES:
                    log.info("raw data exceeds %d MB: the reader runs a second time", CACHE_BYTES >> 20)
                    cache = None
                else:
                    cache.append(rec)
    declared = getattr(reader.info, "mains_hz", None)
    mains = resolve_mains(detected, declared)
    _log_mains(dataset, detected, mains, declared)
    if not entries:
        raise ValueError(f"{root}: the {reader_name} reader found no recordings")
    seen: dict[str, dd.Entry] = {}
    for e in entries:
        if e.recording_id in seen:
            raise ValueError(f"{e.source_file}: recording id {e.recording_id!r} occurs twice "
                             f"(also {seen[e.recording_id].source_file})")
        seen[e.recording_id] = e

    pairs = dd.find_duplicates(entries)
    for line in dd.describe(pairs, dropped=dedupe):
        log.warning("%s: %s", dataset, line)
    dropped = {d.recording_id for d, _ in pairs} if dedupe else set()
    duplicates = [{**d.place(), "dropped": dedupe, "duplicate_of": o.place()} for d, o in pairs]

    kept = sorted((e for e in entries if e.recording_id not in dropped), key=dd.stable_key)
    by_session: dict[tuple[str, str], list[dd.Entry]] = {}
    for e in kept:
        by_session.setdefault((e.subject, e.session), []).append(e)
    paths = _unique_paths(list(by_session))
    fingerprints = {k: _fingerprint(dataset, reader_name, {**params, "mains": mains[k], "scale": SCALE_METHOD}, v,
                                    sha_of)
                    for k, v in by_session.items()}

    # pass 2: harmonize and write each session not already complete
    rows: dict[tuple[str, str], tuple[dict, list[dict], list[dict]]] = {}
    recs_iter: Iterable[Recording] = cache if cache is not None else reader.read(root)
    if cache is not None:
        grouped: dict[tuple[str, str], list[Recording]] = {}
        for rec in cache:
            grouped.setdefault((rec.subject, rec.session), []).append(rec)
        session_runs: Iterable[list[Recording]] = [grouped[k] for k in by_session]
    else:
        session_runs = _sessions_in_reader_order(recs_iter)
    bar = tqdm(total=len(by_session), desc=f"harmonize {dataset}", unit="session", disable=not progress,
               file=sys.stderr)
    n_written = 0
    for run in session_runs:
        key = (run[0].subject, run[0].session)
        if key not in by_session:
            continue  # every recording of the session was a dropped duplicate
        want = {e.recording_id: e for e in by_session[key]}
        recs = sorted((r for r in run if r.recording_id in want), key=dd.stable_key)
        h5_rel = paths[key]
        h5 = out / h5_rel
        fp = fingerprints[key]
        stored = None
        if h5.is_file():
            try:
                attrs = store.session_attrs(h5)
                if attrs.get("fingerprint") == fp:
                    stored = store.read_session(h5), attrs["scale"]
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable, rewriting it (%s)", h5, exc)
        if stored is None:
            final, scale = harmonize_session(recs, fs, mains[key])
            store.write_session(h5, final, scale=scale, fingerprint=fp)
            n_written += 1
            _session_done(n_written, h5)
        else:
            final, scale = stored
        raw_hash = {rid: e.raw_hash for rid, e in want.items()}
        rec_rows = [ix.recording_row(r, h5_file=h5_rel, h5_group=store.group_name(i), raw_sha256=raw_hash[r.recording_id])
                    for i, r in enumerate(final)]
        trial_rows = [t for r in final for t in ix.trial_rows(r)]
        rows[key] = (ix.session_row(final, h5_file=h5_rel, scale=scale, fingerprint=fp), rec_rows, trial_rows)
        bar.update(1)
    bar.close()
    missing = [k for k in by_session if k not in rows]
    if missing:
        raise ValueError(f"{root}: the reader did not yield session(s) {missing[:3]} on its second pass")

    # clean up: stale session files of an earlier build and temporary files of an interrupted one
    wanted = {out / p for p in paths.values()}
    subjects_dir = out / SUBJECTS_DIR
    if subjects_dir.is_dir():
        for p in sorted(subjects_dir.rglob("*")):
            if p.is_file() and (p.name.endswith(".tmp") or (p.suffix == ".h5" and p not in wanted)):
                p.unlink()
        for d in sorted((d for d in subjects_dir.rglob("*") if d.is_dir()), reverse=True):
            if not any(d.iterdir()):
                d.rmdir()
    for folder in (out, out / ix.INDEX_DIR):  # atomic writes of the index and provenance cut short
        for p in folder.glob(".*.tmp") if folder.is_dir() else ():
            p.unlink()

    # the index, then provenance, last
    session_rows, recording_rows, all_trials = [], [], []
    for key in by_session:
        s, r, t = rows[key]
        session_rows.append(s)
        recording_rows.extend(r)
        all_trials.extend(t)
    for i, t in enumerate(all_trials):
        t["trial"] = i
    ix.write_table(out, "sessions", session_rows)
    ix.write_table(out, "recordings", recording_rows)
    ix.write_table(out, "trials", all_trials)
    prov = {
        "format": pv.FORMAT, "format_version": pv.FORMAT_VERSION, "dataset": dataset, "reader": reader_name,
        **pv.versions(), "created": datetime.now(UTC).isoformat(timespec="seconds"), "started": started,
        "root": str(root.resolve()), "params": params, "hash": pv.corpus_hash(dataset, reader_name, params, sources),
        "n_subjects": len({k[0] for k in by_session}), "n_sessions": len(session_rows),
        "n_recordings": len(recording_rows), "n_trials": len(all_trials),
        "n_sessions_written": n_written, "duplicates": duplicates,
        "dropped_duplicates": [d for d in duplicates if d["dropped"]], "sources": sources,
    }
    atomic_write_text(out / PROVENANCE, store.dumps(prov, indent=2))
    (out / MARKER).unlink(missing_ok=True)
    fsync_dir(out)
    log.info("%s: corpus in %s: %d subjects, %d sessions (%d written), %d recordings, %d trials", dataset, out,
             prov["n_subjects"], prov["n_sessions"], n_written, prov["n_recordings"], prov["n_trials"])
    return Corpus(out)


def prepare(dataset: str, root: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
            progress: bool = True, overwrite: bool = False) -> Any:
    """Read ``dataset`` (a registry name, see ``aemg datasets``) from ``root`` into a corpus at ``out``.

    Returns the :class:`aemg.corpus.Corpus`. ``fs`` is the corpus rate in Hz; ``dedupe=False`` keeps
    duplicate recordings (they are still reported). ``out`` must be new, empty, or a corpus of the
    same dataset and parameters (an interrupted or finished run: finished sessions are reused);
    ``overwrite=True`` replaces an aemg corpus built with other settings. Raises FileExistsError
    otherwise, KeyError for an unknown dataset, DataFormatError for malformed raw files.
    """
    from aemg.datasets import get_reader

    reader = get_reader(dataset)
    return _build(reader=reader, reader_name=type(reader).__module__, dataset=dataset, root=Path(root),
                  out=Path(out), fs=fs, dedupe=dedupe, progress=progress, overwrite=overwrite)


def import_manifest(manifest_dir: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
                    progress: bool = True, overwrite: bool = False) -> Any:
    """Import a folder described by a ``manifest.csv`` (see :mod:`aemg.datasets.generic`) into a corpus.

    The same pipeline and guarantees as :func:`prepare`; the dataset name comes from the folder name.
    """
    from aemg.datasets import generic

    root = Path(manifest_dir)
    if not (root / generic.MANIFEST).is_file():
        raise FileNotFoundError(f"{root / generic.MANIFEST}: manifest not found (aemg import needs a folder "
                                "holding manifest.csv; see aemg import --help)")
    reader = generic.GenericReader()
    return _build(reader=reader, reader_name=generic.__name__, dataset=generic.dataset_name(root), root=root,
                  out=Path(out), fs=fs, dedupe=dedupe, progress=progress, overwrite=overwrite)
