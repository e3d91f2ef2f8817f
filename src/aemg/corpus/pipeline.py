"""Build a corpus: read a dataset, harmonize each session, store it (``aemg prepare`` / ``aemg import``).

:func:`_build` runs named steps, in this order:

1. :func:`_check_inputs` and :func:`_start`: refuse a bad target or an input file inside it,
   write the marker, checksum the source files;
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

Replacing a finished corpus (a rerun, or ``--overwrite`` with other settings): the new corpus is
built in a temporary sibling folder (``.OUT.building-XXXX``; session files whose fingerprint is
unchanged are hard-linked, or copied, from the old corpus), opened and checked there, and only
then moved in (:func:`_swap`): the marker is written into ``OUT``, the old corpus's own files are
removed (the index tables, ``provenance.json``, its session files, aemg's temporary files:
:func:`_own_files`), the new files moved in, the marker removed. A bad input, an error or an
interruption before the swap leaves the old corpus as it was; one during the swap leaves the
marker, and the same command finishes the job. Nothing that aemg did not write is removed, and a
file of the user's where the new corpus would write is refused before anything is moved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
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
from aemg.plausible import check_corpus_fs
from aemg.recording import Recording

if TYPE_CHECKING:
    from aemg.datasets._common import BadFiles
    from aemg.datasets.base import Reader
    from aemg.signal.harmonize import Mains, SessionKey

__all__ = ["CACHE_BYTES", "MARKER", "PROVENANCE", "SUBJECTS_DIR", "BuildSpec", "import_manifest", "prepare",
           "safe_name"]

log = logging.getLogger("aemg.corpus")

CACHE_BYTES = 1 << 30
"""Raw signal bytes kept in memory between the hashing pass and the harmonizing pass."""
BUILDING = ".{name}.building-"
"""Prefix of the temporary sibling folder a replacing build writes in (``OUT.parent``)."""


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
    reuse: Path | None = None
    """An existing corpus folder whose session files with the same fingerprint are reused."""
    skip_bad: bool = False  # skip damaged raw files (recorded in provenance "skipped") instead of failing
    bad: BadFiles | None = None
    """The stray and damaged raw files met: one record for ``files()`` and every ``read()`` pass, shared
    by the copy of the spec that builds beside the old corpus (made in ``__post_init__``)."""

    def __post_init__(self) -> None:
        if self.bad is None:
            from aemg.datasets._common import BadFiles

            object.__setattr__(self, "bad", BadFiles(self.root, skip_bad=self.skip_bad))

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


def _check_target(out: Path, dataset: str, reader: str, params: dict[str, Any], overwrite: bool) -> str:
    """How to build into ``out``: ``"new"`` (missing or empty), ``"resume"`` (an interrupted build
    of the same dataset and parameters: finished in place) or ``"replace"`` (a finished corpus of
    the same settings, or with ``overwrite`` any aemg corpus: built beside it, then swapped in).
    Refuses a non-empty ``out`` that is not an aemg corpus, or one of other settings without
    ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    marker = _read_json(out / MARKER)
    state = marker or _read_json(out / PROVENANCE)
    if not isinstance(state, dict) or state.get("format") != pv.FORMAT:
        raise FileExistsError(f"{out}: not empty and not an aemg corpus; choose a new or empty folder "
                              "(aemg never deletes a folder it did not create)")
    same = state.get("dataset") == dataset and state.get("reader") == reader and state.get("params") == params
    if same:
        return "resume" if marker is not None else "replace"
    if overwrite:
        log.warning("replacing the existing corpus in %s (dataset %s, params %s)", out, state.get("dataset"),
                    state.get("params"))
        return "replace"
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

def _check_inputs(spec: BuildSpec, overwrite: bool) -> tuple[list[Path], str]:
    """Refuse a missing raw folder, a bad rate, an ``out`` holding the raw data or any input file,
    or a foreign ``out``; returns the raw files (the reader checks the folder's layout first) and
    the build mode (:func:`_check_target`). Nothing is written."""
    root, out = spec.root, spec.out
    if not root.exists():
        raise FileNotFoundError(f"{root}: raw data folder not found")
    check_corpus_fs(spec.fs)  # before anything is read: an implausible rate is refused in under a second
    if root.resolve() == out.resolve() or out.resolve() in root.resolve().parents:
        raise FileExistsError(f"{out}: the corpus folder must not contain the raw data folder {root} "
                              "(aemg never writes among, or deletes, the files it reads); choose another --out")
    mode = _check_target(out, spec.dataset, spec.reader_name, spec.params, overwrite)
    files = spec.reader.files(root, bad=spec.bad)  # checks the raw folder's layout before anything is written
    target = out.resolve()
    inside = [f for f in files if Path(f).resolve().is_relative_to(target)]
    if inside:
        raise FileExistsError(f"{inside[0]}: expected input files outside the corpus folder {out}; found this one "
                              f"inside it ({len(inside)} in all; aemg never writes among, or deletes, the files it "
                              "reads): move them, or choose another --out")
    return files, mode


def _start(spec: BuildSpec, files: list[Path]) -> tuple[str, list[dict[str, Any]]]:
    """Write the marker and checksum the source ``files``; returns the start time (ISO 8601, UTC)
    and the source entries."""
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
    records = tqdm(spec.reader.read(spec.root, bad=spec.bad), desc=f"read {spec.dataset}", unit="rec",
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
        return _sessions_in_reader_order(spec.reader.read(spec.root, bad=spec.bad))
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
    if stored is None and spec.reuse is not None and _same_session(spec.reuse / h5_rel, fp):
        _link_or_copy(spec.reuse / h5_rel, h5)
        stored = store.read_session(h5), store.session_attrs(h5)["scale"]
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


def _same_session(h5: Path, fingerprint: str) -> bool:
    """Whether ``h5`` is a readable aemg session file with ``fingerprint``."""
    if not h5.is_file():
        return False
    try:
        return store.session_attrs(h5).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def _is_atomic_leftover(p: Path) -> bool:
    """Whether ``p`` is a temporary file of an atomic write cut short (:func:`aemg.atomic.atomic_path`)."""
    return p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file() and not p.is_symlink()


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (a copy where links are not possible), atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        from aemg.atomic import atomic_path

        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def _listed_session_files(out: Path) -> set[Path]:
    """The session files the index of the corpus in ``out`` lists (empty when it has none)."""
    import csv

    listed: set[Path] = set()
    for name in ("sessions", "recordings"):
        try:
            with (out / ix.INDEX_DIR / f"{name}.csv").open(newline="", encoding="utf-8") as f:
                listed.update(out / r["h5_file"] for r in csv.DictReader(f) if r.get("h5_file"))
        except (OSError, ValueError, KeyError, csv.Error):
            continue
    subjects = (out / SUBJECTS_DIR).resolve()
    return {p for p in listed if p.suffix == ".h5" and p.resolve().is_relative_to(subjects)}


def _own_files(out: Path) -> set[Path]:
    """The files in ``out`` that an aemg build wrote: the marker, provenance, index tables, the
    session files its index lists or that are aemg session files, and atomic-write leftovers."""
    own = {p for p in (out / MARKER, out / PROVENANCE) if p.is_file()}
    own |= {p for name in ix.TABLES if (p := out / ix.INDEX_DIR / f"{name}.csv").is_file()}
    own |= {p for p in _listed_session_files(out) if p.is_file() and not p.is_symlink()}
    for folder in (out, out / ix.INDEX_DIR):
        own |= {p for p in folder.glob(".*.tmp") if _is_atomic_leftover(p)} if folder.is_dir() else set()
    subjects_dir = out / SUBJECTS_DIR
    if subjects_dir.is_dir():
        for p in subjects_dir.rglob("*"):
            if _is_atomic_leftover(p) or (p.suffix == ".h5" and p.is_file() and not p.is_symlink()
                                          and p not in own and store.is_session_file(p)):
                own.add(p)
    return own


def _remove_files(paths: Iterable[Path], top: Path) -> None:
    """Remove ``paths`` and then their folders left empty, up to (not including) ``top``."""
    parents: set[Path] = set()
    for p in paths:
        p.unlink(missing_ok=True)
        parents.update(d for d in p.parents if d.is_relative_to(top) and d != top)
    for d in sorted(parents, key=lambda d: len(d.parts), reverse=True):
        if d.is_dir() and not d.is_symlink() and not any(d.iterdir()):
            d.rmdir()


def _remove_stale_files(out: Path, paths: dict[SessionKey, str]) -> None:
    """Remove session files of an earlier build that are not planned now, temporary files of an
    interrupted one, and the folders left empty: only files aemg wrote (:func:`_own_files`)."""
    wanted = {out / p for p in paths.values()}
    _remove_files(sorted(p for p in _own_files(out) if _is_atomic_leftover(p) or (p.suffix == ".h5" and p not in wanted)),
                  out)


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
        "skipped": spec.bad.skipped,
    }
    prov[pv.INDEX_HASH] = ix.tables_sha256(out)  # checked when the corpus opens (aemg.corpus.integrity)
    atomic_write_text(out / PROVENANCE, store.dumps(prov, indent=2))
    (out / MARKER).unlink(missing_ok=True)
    fsync_dir(out)
    return prov


def _report_skipped(spec: BuildSpec) -> None:
    """One warning line per damaged raw file skipped (``skip_bad``), then a summary line."""
    skipped = spec.bad.skipped
    for s in skipped:
        log.warning("%s: skipped %s: %s", spec.dataset, s["file"], s["reason"])
    if skipped:
        log.warning("%s: %d damaged file(s) skipped (--skip-bad), the rest read; listed in %s under "
                    "\"skipped\"", spec.dataset, len(skipped), spec.out / PROVENANCE)


# ---------------------------------------------------------------------------------------- the build

def _build(spec: BuildSpec, overwrite: bool) -> Corpus:
    """Check the inputs, then build in place (a new folder, or resuming an interrupted build) or
    beside a finished corpus and swap it in (module docstring); returns the finished corpus."""
    files, mode = _check_inputs(spec, overwrite)
    _remove_dead_builds(spec.out)
    if mode != "replace":
        _build_in(spec, files)
        return Corpus(spec.out)
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=BUILDING.format(name=spec.out.name), dir=spec.out.parent))
    try:
        _build_in(dataclasses.replace(spec, out=tmp, reuse=spec.out), files)
        _check_built(tmp)
        _swap(spec, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Corpus(spec.out)


def _build_in(spec: BuildSpec, files: list[Path]) -> None:
    """Run the steps (module docstring) writing into ``spec.out``."""
    started, sources = _start(spec, files)
    scan = _scan_and_hash(spec)
    plan = _dedupe(spec, scan, _source_sha(sources))
    rows, n_written = _write_sessions(spec, scan, plan)
    _remove_stale_files(spec.out, plan.paths)
    prov = _write_index_and_provenance(spec, plan, rows, started=started, sources=sources, n_written=n_written)
    _report_skipped(spec)
    log.info("%s: corpus in %s: %d subjects, %d sessions (%d written), %d recordings, %d trials", spec.dataset,
             spec.reuse or spec.out, prov["n_subjects"], prov["n_sessions"], n_written, prov["n_recordings"],
             prov["n_trials"])


def _remove_dead_builds(out: Path) -> None:
    """Remove the temporary sibling folders of replacing builds that were killed (``kill -9``)."""
    for d in out.parent.glob(BUILDING.format(name=out.name) + "*") if out.parent.is_dir() else ():
        if d.is_dir() and not d.is_symlink() and ((d / MARKER).exists() or (d / PROVENANCE).exists()
                                                  or not any(p.is_file() for p in d.rglob("*"))):
            log.info("removing %s, left by an interrupted build", d)
            shutil.rmtree(d, ignore_errors=True)


def _check_built(folder: Path) -> None:
    """Open the corpus built in ``folder``: the integrity check of :class:`Corpus` compares every
    session file (present, readable, fingerprint, recording ids) with the new index."""
    Corpus(folder)


def _move_file(src: Path, dst: Path) -> None:
    """Move one file of the new corpus into place (a hook tests use to interrupt a swap)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _swap(spec: BuildSpec, tmp: Path) -> None:
    """Replace the corpus in ``spec.out`` by the one built in ``tmp``: refuse a user's file where a
    new file goes, mark ``out`` unfinished, remove the old corpus's own files, move the new ones in
    (provenance last), remove the marker."""
    out = spec.out
    own = _own_files(out)
    new = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
    for rel in new:
        dst = out / rel
        if (dst.exists() or dst.is_symlink()) and dst not in own:
            raise FileExistsError(f"{dst}: expected no file where the new corpus writes; found one not written by "
                                  "aemg (aemg never deletes what it did not write): move it, or choose another --out")
    atomic_write_text(out / MARKER, store.dumps(
        {"format": pv.FORMAT, "dataset": spec.dataset, "reader": spec.reader_name, "params": spec.params,
         "started": datetime.now(UTC).isoformat(timespec="seconds"), "root": str(spec.root.resolve()),
         "replacing": True}, indent=2))
    keep = {out / rel for rel in new} | {out / MARKER}
    _remove_files(sorted(own - keep), out)
    last = Path(PROVENANCE)
    for rel in [r for r in new if r != last] + [last]:
        _move_file(tmp / rel, out / rel)
    (out / MARKER).unlink()
    fsync_dir(out)


def prepare(dataset: str, root: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
            progress: bool = True, overwrite: bool = False, skip_bad: bool = False) -> Corpus:
    """Read ``dataset`` (a registry name, see ``aemg datasets``) from ``root`` into a corpus at ``out``.

    Returns the :class:`aemg.corpus.Corpus`. ``fs`` is the corpus rate in Hz; ``dedupe=False`` keeps
    duplicate recordings (they are still reported). ``out`` must be new, empty, or a corpus of the
    same dataset and parameters (an interrupted or finished run: finished sessions are reused);
    ``overwrite=True`` replaces an aemg corpus built with other settings. A finished corpus is
    replaced only once the new one is built and checked beside it, and only the files aemg wrote
    are removed. Raises FileExistsError otherwise (or when an input file lies inside ``out``),
    KeyError for an unknown dataset, DataFormatError for malformed raw files, unless
    ``skip_bad=True``: then every damaged file is skipped, the rest read, and each skipped file is
    logged and listed with its reason in the provenance's ``skipped``.
    """
    from aemg.datasets import get_reader

    reader = get_reader(dataset)
    return _build(BuildSpec(reader, type(reader).__module__, dataset, Path(root), Path(out), fs, dedupe, progress,
                            skip_bad=skip_bad), overwrite)


def import_manifest(manifest_dir: str | Path, out: str | Path, *, fs: float = 200.0, dedupe: bool = True,
                    progress: bool = True, overwrite: bool = False, skip_bad: bool = False,
                    allow_outside: bool = False) -> Corpus:
    """Import a folder described by a ``manifest.csv`` (see :mod:`aemg.datasets.generic`) into a corpus.

    The same pipeline and guarantees as :func:`prepare` (``skip_bad`` included); the dataset name
    comes from the folder name. ``allow_outside=True`` lets manifest paths leave the manifest folder.
    """
    from aemg.datasets import generic

    root = Path(manifest_dir)
    if not (root / generic.MANIFEST).is_file():
        raise FileNotFoundError(f"{root / generic.MANIFEST}: manifest not found (aemg import needs a folder "
                                "holding manifest.csv; see aemg import --help)")
    spec = BuildSpec(generic.GenericReader(allow_outside=allow_outside), generic.__name__, generic.dataset_name(root),
                     root, Path(out), fs, dedupe, progress, skip_bad=skip_bad)
    return _build(spec, overwrite)
