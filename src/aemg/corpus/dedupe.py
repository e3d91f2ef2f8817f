"""Duplicate recordings: the same raw signal filed under two places (subjects, sessions, files).

Public datasets sometimes file one recording twice (Côté-Allard's PreTraining Female7/8/9 are
Evaluation Female0's three sessions; 3DC Participant13/test and Participant14/test share 13 files).
Left in, one person would sit on both sides of a leave-one-subject-out split.

A recording's identity is the sha256 of its raw signal as the reader returns it (shape, dtype and
bytes), before any processing. Among recordings with equal hashes the first in the corpus's stable
order (:func:`stable_key`: subject in natural order, session order, session, order, recording id)
is kept. With that order, Côté-Allard keeps Evaluation Female0 (all three sessions of that person
together) and 3DC keeps Participant13's copies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from aemg.naming import natural_key
from aemg.recording import Recording


def signal_hash(signal: np.ndarray) -> str:
    """sha256 of a raw signal: shape, dtype and bytes (C order)."""
    arr = np.ascontiguousarray(signal)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.view(np.uint8).reshape(-1).data if arr.size else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """What deduplication needs to know of one recording (its signal is not kept)."""

    recording_id: str
    subject: str
    session: str
    session_order: int
    order: int
    source_file: str
    raw_hash: str

    @classmethod
    def of(cls, rec: Recording, raw_hash: str | None = None) -> Entry:
        return cls(rec.recording_id, rec.subject, rec.session, int(rec.session_order), int(rec.order),
                   rec.source_file, raw_hash or signal_hash(rec.signal))

    def place(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "subject": self.subject, "session": self.session,
                "source_file": self.source_file}


def stable_key(e: Entry | Recording) -> tuple[Any, ...]:
    """Sort key of the corpus order: subject (natural order), session_order, session, order, id."""
    return (natural_key(e.subject), int(e.session_order), natural_key(e.session), int(e.order),
            natural_key(e.recording_id))


def find_duplicates(entries: list[Entry]) -> list[tuple[Entry, Entry]]:
    """``(duplicate, original)`` pairs: each later copy (stable order) with the first one of its hash."""
    first: dict[str, Entry] = {}
    pairs = []
    for e in sorted(entries, key=stable_key):
        if e.raw_hash in first:
            pairs.append((e, first[e.raw_hash]))
        else:
            first[e.raw_hash] = e
    return pairs


def describe(pairs: list[tuple[Entry, Entry]], dropped: bool, max_files: int = 3) -> list[str]:
    """One warning line per (duplicate session, original session), naming both places and files."""
    groups: dict[tuple[str, str, str, str], list[tuple[Entry, Entry]]] = {}
    for dup, orig in pairs:
        groups.setdefault((dup.subject, dup.session, orig.subject, orig.session), []).append((dup, orig))
    lines = []
    action = "dropped the copies" if dropped else "kept both (keep duplicates)"
    for (ds, dss, os_, oss), items in groups.items():
        shown = "; ".join(f"{d.source_file or d.recording_id} = {o.source_file or o.recording_id}"
                          for d, o in items[:max_files])
        more = f"; ... {len(items) - max_files} more" if len(items) > max_files else ""
        lines.append(f"{len(items)} recording(s) of {ds} session {dss} are identical to {os_} session {oss} "
                     f"({shown}{more}): {action}")
    return lines
