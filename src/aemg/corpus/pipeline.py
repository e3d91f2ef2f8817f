"""Build a corpus: read a dataset, harmonize each session, store it (``aemg prepare`` / ``aemg import``).

:func:`_build` runs named steps, in this order:

1. :func:`_check_inputs` and :func:`_start`: refuse a bad target, write the marker, checksum the
   source files;
2. :func:`_scan_and_hash`: read every recording once, hash its raw signal and detect each
   session's mains (kept in memory up to :data:`CACHE_BYTES`; beyond it, the reader runs a second
   time, and sessions must then come out of the reader contiguously, which every reader does);
3. :func:`_dedupe`: resolve duplicates over the whole dataset (:mod:`aemg.corpus.dedupe`) and plan
   each session's file and fingerprint;
4. :func:`_write_sessions`: harmonize each session (:func:`aemg.signal.harmonize_session`: native
   rate, mains, QC, resampling, DC removal, label-free scale after the causal 20 Hz high-pass and
   notch) and write it, unscaled and unfiltered, with its scale;
5. :func:`_remove_stale_files`, then :func:`_write_index_and_provenance`.

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
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aemg.atomic import atomic_write_text, fsync_dir
from aemg.corpus import dedupe as dd
from aemg.corpus import index as ix
from aemg.corpus import provenance as pv
from aemg.corpus import store
from aemg.corpus.corpus import Corpus
from aemg.corpus.paths import MARKER, PROVENANCE, SUBJECTS_DIR, safe_name, session_paths
from aemg.recording import Recording

if TYPE_CHECKING:
    from aemg.datasets.base import Reader
    from aemg.signal.harmonize import Mains, SessionKey

__all__ = ["CACHE_BYTES", "MARKER", "PROVENANCE", "SUBJECTS_DIR", "BuildSpec", "import_manifest", "prepare",
           "safe_name"]

log = logging.getLogger("aemg.corpus")

CACHE_BYTES = 1 << 30
"""Raw signal bytes kept in memory between the hashing pass and the harmonizing pass."""


def _session_done(n_written: int, h5_file: Path) -> None:
    """Called after each session file is written (a hook tests use to interrupt a run)."""


@dataclass(frozen=True)
class BuildSpec:
    """What one build reads and writes: the reader and its name (its module, kept in provenance),
    the dataset name, the raw folder, the corpus folder, the corpus rate (Hz) and the options."""

    reader: Reader
    reader_name: str
    dataset: str
    root: Path
    out: Path
    fs: float
    dedupe: bool
    progress: bool

    @property
    def params(self) -> dict[str, Any]:
        """The parameters that identify the corpus (provenance, marker, fingerprints)."""
        return {"fs": float(self.fs), "dedupe": bool(self.dedupe)}


@dataclass
class Scan:
    """Result of the first pass: every recording's dedupe entry, the raw recordings (None once
    they exceed :data:`CACHE_BYTES`) and each session's detected and resolved mains."""

    entries: list[dd.Entry]
    cache: list[Recording] | None
    detected: dict[SessionKey, float | None]
    mains: dict[SessionKey, Mains]


@dataclass
class Plan:
    """The kept recordings of each session (corpus order), the duplicates for provenance, and
    each session's relative file path and fingerprint."""

    sessions: dict[SessionKey, list[dd.Entry]]
    duplicates: list[dict[str, Any]]
    paths: dict[SessionKey, str]
    fingerprints: dict[SessionKey, str]


@dataclass
class SessionRows:
    """Index rows of one session: its session row, recording rows and (unnumbered) trial rows."""

    session: dict[str, Any]
    recordings: list[dict[str, Any]]
    trials: list[dict[str, Any]]


def _log_mains(dataset: str, detected: dict[SessionKey, float | None], mains: dict[SessionKey, Mains],
               declared: float | None) -> None:
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


# ---------------------------------------------------------------------------------------- helpers

def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


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
    """``source_file -> sha256`` over the source entries ("" when unknown or ambiguous); a
    recording's source file may be given relative to a subfolder of the root."""
    by_path = {s["path"]: s["sha256"] for s in sources}

    def lookup(source_file: str) -> str:
        if source_file in by_path:
            return by_path[source_file]
        hits = [sha for p, sha in by_path.items() if p.endswith("/" + source_file)]
        return hits[0] if len(hits) == 1 else ""

    return lookup


def _fingerprint(dataset: str, reader: str, params: dict[str, Any], entries: list[dd.Entry],
                 sha_of: Callable[[str], str]) -> str:
    """sha256 of what one session file is built from: format, dataset, reader, params, recordings."""
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


# ---------------------------------------------------------------------------------------- the steps

def _check_inputs(spec: BuildSpec, overwrite: bool) -> None:
    """Refuse a missing raw folder, a bad rate, an ``out`` holding the raw data, or a foreign ``out``."""
    root, out = spec.root, spec.out
    if not root.exists():
        raise FileNotFoundError(f"{root}: raw data folder not found")
    if not spec.fs > 0:
        raise ValueError(f"--fs must be > 0 Hz, got {spec.fs}")
    if root.resolve() == out.resolve() or out.resolve() in root.resolve().parents:
        raise FileExistsError(f"{out}: the corpus folder must not contain the raw data folder {root} "
                              "(aemg never writes among, or deletes, the files it reads); choose another --out")
    _check_target(out, spec.dataset, spec.reader_name, spec.params, overwrite)


def _start(spec: BuildSpec) -> tuple[str, list[dict[str, Any]]]:
    """List the raw files (the reader checks the folder's layout first), write the marker, and
    checksum the sources; returns the start time (ISO 8601, UTC) and the source entries."""
    files = spec.reader.files(spec.root)  # checks the raw folder's layout before anything is written
    spec.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_text(spec.out / MARKER, store.dumps(
        {"format": pv.FORMAT, "dataset": spec.dataset, "reader": spec.reader_name, "params": spec.params,
         "started": started, "root": str(spec.root.resolve())}, indent=2))
    return started, pv.source_entries(files, spec.root, progress=spec.progress)


def _scan_and_hash(spec: BuildSpec) -> Scan:
    """Pass 1: read and hash every recording (kept in memory while under :data:`CACHE_BYTES`) and
    detect each session's mains on its native-rate signals; resolve and log the mains."""
    from tqdm.auto import tqdm

    from aemg.signal.harmonize import detect_session_mains, native_rate, resolve_mains

    entries: list[dd.Entry] = []
    cache: list[Recording] | None = []
    cached_bytes = 0
    detected: dict[SessionKey, float | None] = {}
    records = tqdm(spec.reader.read(spec.root), desc=f"read {spec.dataset}", unit="rec",
                   disable=not spec.progress, file=sys.stderr)
    for run in _sessions_in_reader_order(records):
        detected[(run[0].subject, run[0].session)] = detect_session_mains(native_rate(run))
        for rec in run:
            entries.append(dd.Entry.of(rec))
            if cache is not None:
                cached_bytes += rec.signal.nbytes
                if cached_bytes > CACHE_BYTES:
                    log.info("raw data exceeds %d MB: the reader runs a second time", CACHE_BYTES >> 20)
                    cache = None
                else:
                    cache.append(rec)
    declared = getattr(spec.reader.info, "mains_hz", None)
    mains = resolve_mains(detected, declared)
    _log_mains(spec.dataset, detected, mains, declared)
    return Scan(entries, cache, detected, mains)


def _dedupe(spec: BuildSpec, scan: Scan, sha_of: Callable[[str], str]) -> Plan:
    """Check the ids, resolve duplicates over the whole dataset (warning for each), and plan each
    kept session's file path and fingerprint."""
    from aemg.signal.harmonize import SCALE_METHOD

    entries = scan.entries
    if not entries:
        raise ValueError(f"{spec.root}: the {spec.reader_name} reader found no recordings")
    seen: dict[str, dd.Entry] = {}
    for e in entries:
        if e.recording_id in seen:
            raise ValueError(f"{e.source_file}: recording id {e.recording_id!r} occurs twice "
                             f"(also {seen[e.recording_id].source_file})")
        seen[e.recording_id] = e

    pairs = dd.find_duplicates(entries)
    for line in dd.describe(pairs, dropped=spec.dedupe):
        log.warning("%s: %s", spec.dataset, line)
    dropped = {d.recording_id for d, _ in pairs} if spec.dedupe else set()
    duplicates = [{**d.place(), "dropped": spec.dedupe, "duplicate_of": o.place()} for d, o in pairs]

    kept = sorted((e for e in entries if e.recording_id not in dropped), key=dd.stable_key)
    sessions: dict[SessionKey, list[dd.Entry]] = {}
    for e in kept:
        sessions.setdefault((e.subject, e.session), []).append(e)
    fingerprints = {k: _fingerprint(spec.dataset, spec.reader_name,
                                    {**spec.params, "mains": scan.mains[k], "scale": SCALE_METHOD}, v, sha_of)
                    for k, v in sessions.items()}
    return Plan(sessions, duplicates, session_paths(list(sessions)), fingerprints)


def _session_runs(spec: BuildSpec, scan: Scan, plan: Plan) -> Iterable[list[Recording]]:
    """Each session's raw recordings: from the cache in corpus order, or from a second read."""
    if scan.cache is None:
        return _sessions_in_reader_order(spec.reader.read(spec.root))
    grouped: dict[SessionKey, list[Recording]] = {}
    for rec in scan.cache:
        grouped.setdefault((rec.subject, rec.session), []).append(rec)
    return [grouped[k] for k in plan.sessions]


def _write_session(spec: BuildSpec, scan: Scan, plan: Plan, run: list[Recording]) -> tuple[SessionRows, bool]:
    """Harmonize and write one session unless its file exists with the same fingerprint; returns
    its index rows and whether a file was written."""
    from aemg.signal.harmonize import harmonize_session

    key = (run[0].subject, run[0].session)
    want = {e.recording_id: e for e in plan.sessions[key]}
    recs = sorted((r for r in run if r.recording_id in want), key=dd.stable_key)
    h5_rel = plan.paths[key]
    h5 = spec.out / h5_rel
    fp = plan.fingerprints[key]
    stored = None
    if h5.is_file():
        try:
            attrs = store.session_attrs(h5)
            if attrs.get("fingerprint") == fp:
                stored = store.read_session(h5), attrs["scale"]
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable, rewriting it (%s)", h5, exc)
    if stored is None:
        final, scale = harmonize_session(recs, spec.fs, scan.mains[key])
        store.write_session(h5, final, scale=scale, fingerprint=fp)
    else:
        final, scale = stored
    raw_hash = {rid: e.raw_hash for rid, e in want.items()}
    rec_rows = [ix.recording_row(r, h5_file=h5_rel, h5_group=store.group_name(i), raw_sha256=raw_hash[r.recording_id])
                for i, r in enumerate(final)]
    trial_rows = [t for r in final for t in ix.trial_rows(r)]
    return SessionRows(ix.session_row(final, h5_file=h5_rel, scale=scale, fingerprint=fp), rec_rows,
                       trial_rows), stored is None


def _write_sessions(spec: BuildSpec, scan: Scan, plan: Plan) -> tuple[dict[SessionKey, SessionRows], int]:
    """Pass 2: every planned session written (or reused); returns its rows and the count written."""
    from tqdm.auto import tqdm

    rows: dict[SessionKey, SessionRows] = {}
    bar = tqdm(total=len(plan.sessions), desc=f"harmonize {spec.dataset}", unit="session",
               disable=not spec.progress, file=sys.stderr)
    n_written = 0
    for run in _session_runs(spec, scan, plan):
        key = (run[0].subject, run[0].session)
        if key not in plan.sessions:
            continue  # every recording of the session was a dropped duplicate
        rows[key], written = _write_session(spec, scan, plan, run)
        if written:
            n_written += 1
            _session_done(n_written, spec.out / plan.paths[key])
        bar.update(1)
    bar.close()
    missing = [k for k in plan.sessions if k not in rows]
    if missing:
        raise ValueError(f"{spec.root}: the reader did not yield session(s) {missing[:3]} on its second pass")
    return rows, n_written


def _remove_stale_files(out: Path, paths: dict[SessionKey, str]) -> None:
    """Remove session files of an earlier build that are not planned now, temporary files of an
    interrupted one, and the folders left empty."""
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


def _write_index_and_provenance(spec: BuildSpec, plan: Plan, rows: dict[SessionKey, SessionRows], *,
                                started: str, sources: list[dict[str, Any]], n_written: int) -> dict[str, Any]:
    """The index tables (trials numbered in corpus order), then ``provenance.json``, then the marker
    removed; returns the provenance."""
    out = spec.out
    session_rows, recording_rows, all_trials = [], [], []
    for key in plan.sessions:
        r = rows[key]
        session_rows.append(r.session)
        recording_rows.extend(r.recordings)
        all_trials.extend(r.trials)
    for i, t in enumerate(all_trials):
        t["trial"] = i
    ix.write_table(out, "sessions", session_rows)
    ix.write_table(out, "recordings", recording_rows)
    ix.write_table(out, "trials", all_trials)
    duplicates = plan.duplicates
    prov = {
        "format": pv.FORMAT, "format_version": pv.FORMAT_VERSION, "dataset": spec.dataset,
        "reader": spec.reader_name, **pv.versions(), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "started": started, "root": str(spec.root.resolve()), "params": spec.params,
        "hash": pv.corpus_hash(spec.dataset, spec.reader_name, spec.params, sources),
        "n_subjects": len({k[0] for k in plan.sessions}), "n_sessions": len(session_rows),
        "n_recordings": len(recording_rows), "n_trials": len(all_trials),
        "n_sessions_written": n_written, "duplicates": duplicates,
        "dropped_duplicates": [d for d in duplicates if d["dropped"]], "sources": sources,
    }
    prov[pv.INDEX_HASH] = ix.tables_sha256(out)  # checked when the corpus opens (aemg.corpus.integrity)
    atomic_write_text(out / PROVENANCE, store.dumps(prov, indent=2))
    (out / MARKER).unlink(missing_ok=True)
    fsync_dir(out)
    return prov


# ---------------------------------------------------------------------------------------- the build

def _build(spec: BuildSpec, overwrite: bool) -> Corpus:
    """Run the steps (module docstring) and return the finished corpus."""
    _check_inputs(spec, overwrite)
    started, sources = _start(spec)
    scan = _scan_and_hash(spec)
    plan = _dedupe(spec, scan, _source_sha(sources))
    rows, n_written = _write_sessions(spec, scan, plan)
    _remove_stale_files(spec.out, plan.paths)
    prov = _write_index_and_provenance(spec, plan, rows, started=started, sources=sources, n_written=n_written)
    log.info("%s: corpus in %s: %d subjects, %d sessions (%d written), %d recordings, %d trials", spec.dataset,
             spec.out, prov["n_subjects"], prov["n_sessions"], n_written, prov["n_recordings"], prov["n_trials"])
    return Corpus(spec.out)


def prepare(dataset: str, root: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
            progress: bool = True, overwrite: bool = False) -> Corpus:
    """Read ``dataset`` (a registry name, see ``aemg datasets``) from ``root`` into a corpus at ``out``.

    Returns the :class:`aemg.corpus.Corpus`. ``fs`` is the corpus rate in Hz; ``dedupe=False`` keeps
    duplicate recordings (they are still reported). ``out`` must be new, empty, or a corpus of the
    same dataset and parameters (an interrupted or finished run: finished sessions are reused);
    ``overwrite=True`` replaces an aemg corpus built with other settings. Raises FileExistsError
    otherwise, KeyError for an unknown dataset, DataFormatError for malformed raw files.
    """
    from aemg.datasets import get_reader

    reader = get_reader(dataset)
    return _build(BuildSpec(reader, type(reader).__module__, dataset, Path(root), Path(out), fs, dedupe, progress),
                  overwrite)


def import_manifest(manifest_dir: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
                    progress: bool = True, overwrite: bool = False) -> Corpus:
    """Import a folder described by a ``manifest.csv`` (see :mod:`aemg.datasets.generic`) into a corpus.

    The same pipeline and guarantees as :func:`prepare`; the dataset name comes from the folder name.
    """
    from aemg.datasets import generic

    root = Path(manifest_dir)
    if not (root / generic.MANIFEST).is_file():
        raise FileNotFoundError(f"{root / generic.MANIFEST}: manifest not found (aemg import needs a folder "
                                "holding manifest.csv; see aemg import --help)")
    spec = BuildSpec(generic.GenericReader(), generic.__name__, generic.dataset_name(root), root, Path(out), fs,
                     dedupe, progress)
    return _build(spec, overwrite)
