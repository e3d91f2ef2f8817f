"""The integrity check a corpus passes when it opens: its index tables against the provenance, each
other and the session files.

Cheap by design (no signal is read): the three parsed tables, each session file's root attributes
and dataset shapes (:func:`aemg.corpus.store.session_contents`), and the tables' sha256 compared
with the one recorded in ``provenance.json`` at build time. A corpus written before that hash was
recorded gets every other check. Each failure is one DataFormatError naming the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from aemg.corpus import index as ix
from aemg.corpus import store
from aemg.corpus.paths import PROVENANCE, SUBJECTS_DIR
from aemg.corpus.provenance import INDEX_HASH
from aemg.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

_REBUILD = "run the aemg prepare/import command that built the corpus again to rebuild it"


def check_corpus(path: Path, provenance: dict[str, Any], recordings: pd.DataFrame, trials: pd.DataFrame,
                 sessions: pd.DataFrame) -> None:
    """Refuse a corpus whose index lost or changed rows or disagrees with its session files."""
    check_counts(path, provenance, recordings, trials, sessions)
    check_index_hash(path, provenance)  # before the cross-checks: it names the table that changed
    check_tables(path, recordings, trials, sessions)
    check_session_files(path, recordings, sessions, shapes=INDEX_HASH not in provenance)


def check_counts(path: Path, provenance: dict[str, Any], recordings: pd.DataFrame, trials: pd.DataFrame,
                 sessions: pd.DataFrame) -> None:
    """Each table has as many rows as the provenance counted when the corpus was built."""
    for name, df, key, what in (("sessions", sessions, "n_sessions", "session"),
                                ("recordings", recordings, "n_recordings", "recording"),
                                ("trials", trials, "n_trials", "trial")):
        if len(df) != provenance[key]:
            raise DataFormatError(ix.table_path(path, name),
                                  f"{provenance[key]} rows, one per {what} ({key} in {PROVENANCE})",
                                  f"found {len(df)}; rows were removed or added after the build; {_REBUILD}")
    n_subjects = len(set(recordings["subject"]))
    if n_subjects != provenance["n_subjects"]:
        raise DataFormatError(ix.table_path(path, "recordings"),
                              f"{provenance['n_subjects']} subjects (n_subjects in {PROVENANCE})",
                              f"found {n_subjects}; {_REBUILD}")


def _first_duplicate(keys: list[Any]) -> int | None:
    """Row number (0-based) of the first key seen before, or None."""
    seen: set[Any] = set()
    for i, k in enumerate(keys):
        if k in seen:
            return i
        seen.add(k)
    return None


def check_tables(path: Path, recordings: pd.DataFrame, trials: pd.DataFrame, sessions: pd.DataFrame) -> None:
    """The tables agree with each other: unique ids, every recording's session listed with its file
    and its recording count, every trial's recording listed with its trial count and length."""
    rec_path, tr_path, ses_path = (ix.table_path(path, n) for n in ("recordings", "trials", "sessions"))
    ses_keys = list(zip(sessions["subject"], sessions["session"]))
    for keys, p, what in ((ses_keys, ses_path, "subject and session"), (list(sessions["h5_file"]), ses_path, "h5_file"),
                          (list(recordings["recording_id"]), rec_path, "recording_id")):
        i = _first_duplicate(keys)
        if i is not None:
            raise DataFormatError(p, f"each {what} once", f"found {keys[i]!r} again in line {i + 2}")
    ses_file = dict(zip(ses_keys, sessions["h5_file"]))
    per_session: Counter[tuple[str, str]] = Counter()
    for i, (rid, s, ss, h5) in enumerate(zip(recordings["recording_id"], recordings["subject"],
                                             recordings["session"], recordings["h5_file"])):
        if (s, ss) not in ses_file:
            raise DataFormatError(ses_path, f"a row for session {ss!r} of subject {s!r} (recording {rid!r}, line "
                                  f"{i + 2} of {rec_path.name})", f"found none; {_REBUILD}")
        if h5 != ses_file[(s, ss)]:
            raise DataFormatError(rec_path, f"h5_file {ses_file[(s, ss)]!r} (as in {ses_path.name}) in line {i + 2}",
                                  f"found {h5!r}")
        per_session[(s, ss)] += 1
    for i, (key, n) in enumerate(zip(ses_keys, sessions["n_recordings"])):
        if per_session[key] != n:
            raise DataFormatError(rec_path, f"{n} recordings of session {key[1]!r} of subject {key[0]!r} (n_recordings "
                                  f"in line {i + 2} of {ses_path.name})", f"found {per_session[key]}; {_REBUILD}")
    rec_row = {rid: i for i, rid in enumerate(recordings["recording_id"])}
    n_samples, n_trials = recordings["n_samples"].to_numpy(), recordings["n_trials"].to_numpy()
    per_rec: Counter[int] = Counter()
    for i, (rid, start, stop) in enumerate(zip(trials["recording_id"], trials["start"], trials["stop"])):
        r = rec_row.get(rid)
        if r is None:
            raise DataFormatError(rec_path, f"a row for recording {rid!r} (line {i + 2} of {tr_path.name})",
                                  f"found none; {_REBUILD}")
        if not 0 <= start < stop <= n_samples[r]:
            raise DataFormatError(tr_path, f"0 <= start < stop <= {n_samples[r]} (n_samples of {rid!r}) in line "
                                  f"{i + 2}", f"found start {start}, stop {stop}")
        per_rec[r] += 1
    for r, n in enumerate(n_trials):
        if per_rec[r] != n:
            raise DataFormatError(tr_path, f"{n} trials of recording {recordings['recording_id'].iat[r]!r} (n_trials "
                                  f"in line {r + 2} of {rec_path.name})", f"found {per_rec[r]}; {_REBUILD}")


def _session_file(path: Path, rel: str, ses_path: Path, line: int) -> Path:
    """``path / rel`` when ``rel`` is a relative path inside the corpus, else a DataFormatError."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts:
        raise DataFormatError(ses_path, f"h5_file relative to the corpus folder in line {line}", f"found {rel!r}")
    return path / p


def check_session_files(path: Path, recordings: pd.DataFrame, sessions: pd.DataFrame, shapes: bool = True) -> None:
    """Every session file exists and holds what the index says (its fingerprint, which identifies
    its subject, session and inputs, and the recordings in their groups and, with ``shapes``, each signal's channels and samples), and no other
    session file exists.

    The shapes cost a dataset open per recording (about 0.2 ms); :func:`check_corpus` asks for them
    only when the provenance records no index hash (older corpora), since a hash-checked index and
    an unchanged fingerprint leave nothing for them to find; ``Corpus.load`` compares each signal it
    reads with the index anyway."""
    ses_path, rec_path = ix.table_path(path, "sessions"), ix.table_path(path, "recordings")
    listed: dict[str, list[tuple[str, str, int, int, int]]] = {}
    for i, (h5, group, rid, c, t) in enumerate(zip(recordings["h5_file"], recordings["h5_group"],
                                                   recordings["recording_id"], recordings["n_channels"],
                                                   recordings["n_samples"])):
        listed.setdefault(h5, []).append((group, rid, int(c), int(t), i + 2))
    files = set()
    for i, (s, ss, rel, fp) in enumerate(zip(sessions["subject"], sessions["session"], sessions["h5_file"],
                                             sessions["fingerprint"])):
        h5 = _session_file(path, rel, ses_path, i + 2)
        files.add(h5)
        if not h5.is_file():
            raise DataFormatError(h5, f"the session file of session {ss!r} of subject {s!r} (line {i + 2} of "
                                  f"{ses_path.name})", f"found no such file; {_REBUILD}")
        attrs, found = store.session_contents(h5, shapes=shapes)
        if str(attrs["fingerprint"]) != fp:
            raise DataFormatError(h5, f"fingerprint {fp[:16]}... (as in line {i + 2} of {ses_path.name})",
                                  f"found {str(attrs['fingerprint'])[:16]}...: the file was built from other "
                                  f"inputs than the index; {_REBUILD}")
        _check_groups(h5, attrs["recordings"], found or None, listed.get(rel, []), rec_path)
    subjects = path / SUBJECTS_DIR
    for p in sorted(subjects.rglob("*.h5")) if subjects.is_dir() else ():
        if p not in files and store.is_session_file(p):  # a user's own .h5 is left alone
            raise DataFormatError(p, f"only the aemg session files {ses_path.name} lists",
                                  f"found this one, which it does not list (a session row was removed?); {_REBUILD}")


def _check_groups(h5: Path, ids: list[str], shapes: list[tuple[int, ...] | None] | None,
                  rows: list[tuple[str, str, int, int, int]], rec_path: Path) -> None:
    """The recordings a session file lists match the index rows naming it, group by group (and
    their signals' shapes, when given)."""
    position = {store.group_name(i): i for i in range(len(ids))}
    if len(rows) != len(ids):
        in_file = sorted(set(ids) - {r[1] for r in rows})
        what = f"recording(s) {', '.join(map(repr, in_file[:3]))} missing from the index" if in_file else \
            "recordings the file does not hold"
        raise DataFormatError(h5, f"the {len(rows)} recordings {rec_path.name} lists for it",
                              f"found {len(ids)} ({what}); {_REBUILD}")
    for group, rid, c, t, line in rows:
        i = position.get(group)
        if i is None or ids[i] != rid:
            found = "no such group" if i is None else f"recording {ids[i]!r} there"
            raise DataFormatError(h5, f"recording {rid!r} in group {group!r} (line {line} of {rec_path.name})",
                                  f"found {found}; {_REBUILD}")
        if shapes is not None and shapes[i] != (c, t):
            found = "no signal dataset" if shapes[i] is None else f"shape {shapes[i]}"
            raise DataFormatError(h5, f"a signal of {c} channels x {t} samples in group {group!r} (n_channels, "
                                  f"n_samples in line {line} of {rec_path.name})", f"found {found}")


def check_index_hash(path: Path, provenance: dict[str, Any]) -> None:
    """Each index table's sha256 equals the one recorded at build time (when one was recorded)."""
    recorded = provenance.get(INDEX_HASH)
    if not recorded:
        return
    have = ix.tables_sha256(path)
    for name, want in recorded.items():
        if name in have and have[name] != want:
            raise DataFormatError(ix.table_path(path, name),
                                  f"the table written when the corpus was built (sha256 {want[:16]}... in "
                                  f"{PROVENANCE})", f"found sha256 {have[name][:16]}...: it was changed "
                                  f"afterwards; {_REBUILD}")
