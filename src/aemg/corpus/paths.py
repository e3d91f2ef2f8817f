"""Names of the files and folders inside a corpus folder, shared by the builder and the reader.

``pipeline`` (which writes a corpus) and ``corpus`` (which reads one) both import these, so neither
imports the other's module for a file name. Layout: docs/corpus.md, "Folder layout".
"""

from __future__ import annotations

import hashlib
import re

MARKER = ".aemg-prepare.json"
"""Written first and removed last by a build: present means running or interrupted."""
PROVENANCE = "provenance.json"
"""What the corpus was built from (:mod:`aemg.corpus.provenance`), written last."""
SUBJECTS_DIR = "subjects"
"""Folder of the session HDF5 files: ``subjects/<safe subject>/<safe session>.h5``."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe form of an id: ``/`` becomes ``__``, other unsafe runs ``_``."""
    return _UNSAFE.sub("_", text.replace("/", "__")).strip(".") or "_"


def session_paths(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Relative h5 path of each (subject, session), made unique (case-insensitively) when two ids
    map to one name, by a tag of 8 hex digits of the ids' sha1."""
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
