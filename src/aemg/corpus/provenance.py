"""Provenance of a corpus: what it was built from, with which code and parameters.

``provenance.json`` (written last, atomically) holds::

    format, format_version       "aemg-corpus", 1
    dataset, reader              registry name (or imported dataset name) and the reader's module
    aemg_version, python, numpy, scipy, h5py
    created                      UTC time the corpus was completed (ISO 8601)
    root                         the raw folder it was read from (as given; informational)
    params                       {"fs": corpus rate in Hz, "dedupe": drop duplicate recordings}
    sources                      [{"path": relative to root, "sha256", "size"}], sorted by path
    hash                         sha256 over format_version, dataset, reader, params and sources
                                 (not over root, times or versions): equal hashes = same inputs
    duplicates                   [{"recording_id", "subject", "session", "source_file", "dropped",
                                   "duplicate_of": {"recording_id", "subject", "session", "source_file"}}]
    dropped_duplicates           the entries of ``duplicates`` that were dropped
    n_subjects, n_sessions, n_recordings, n_trials
    index_sha256                 {"recordings", "sessions", "trials": sha256 of index/<name>.csv}
                                 (recorded since the integrity check; older corpora lack it)

:func:`read_provenance` reads it back and checks its shape (one DataFormatError naming the file).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aemg.errors import DataFormatError

FORMAT = "aemg-corpus"
FORMAT_VERSION = 1
_CHUNK = 1 << 20
INDEX_HASH = "index_sha256"
"""Provenance key of the index tables' sha256 (``{"recordings": hex, ...}``), checked when a corpus opens."""

_INT, _STR, _DICT, _LIST = "an integer", "a string", "a JSON object", "a list"
REQUIRED: dict[str, str] = {"format": _STR, "format_version": _INT, "dataset": _STR, "reader": _STR,
                            "params": _DICT, "hash": _STR, "n_subjects": _INT, "n_sessions": _INT,
                            "n_recordings": _INT, "n_trials": _INT}
"""Keys every corpus's provenance holds (since format version 1), with the kind of value."""
OPTIONAL: dict[str, str] = {"sources": _LIST, "duplicates": _LIST, "dropped_duplicates": _LIST,
                            INDEX_HASH: _DICT, "aemg_version": _STR}
"""Keys read when present, with the kind of value."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def source_entries(files: Iterable[Path], root: Path, progress: bool = False) -> list[dict[str, Any]]:
    """``{"path", "sha256", "size"}`` for each source file (path relative to ``root``), sorted by path.

    A listed path that is not a file is left out: the reader, which knows what it expected there,
    reports it when it reads (a missing repetition file, a layout name that is neither registered
    nor a JSON file), with an error naming the file and what was expected.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    files = sorted({Path(f) for f in files if Path(f).is_file()})
    out = []
    for f in tqdm(files, desc="checksums", unit="file", disable=not progress, file=sys.stderr, leave=False):
        try:
            rel = f.relative_to(root).as_posix()
        except ValueError:
            rel = f.as_posix()
        out.append({"path": rel, "sha256": sha256_file(f), "size": f.stat().st_size})
    out.sort(key=lambda e: e["path"])
    return out


def corpus_hash(dataset: str, reader: str, params: dict[str, Any], sources: list[dict[str, Any]]) -> str:
    """sha256 identifying a corpus by its inputs: dataset, reader, parameters and source checksums."""
    doc = {"format_version": FORMAT_VERSION, "dataset": dataset, "reader": reader, "params": params,
           "sources": [[s["path"], s["sha256"], s["size"]] for s in sources]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the stored numbers."""
    import h5py
    import numpy
    import scipy

    from aemg import __version__

    return {"aemg_version": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "h5py": h5py.__version__}


def _kind(value: Any) -> str:
    """How a JSON value reads in an error message: ``a list``, ``the string '88'``."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value:g}" if isinstance(value, float) else f"the number {value}"
    return {dict: "a JSON object", list: "a list", type(None): "null"}.get(type(value), type(value).__name__)


def _is(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _DICT: dict, _LIST: list}[kind])


def check_provenance(doc: Any, path: Path) -> dict[str, Any]:
    """``doc`` (parsed ``provenance.json``) if it has the keys and value kinds of an aemg corpus's
    provenance, else a DataFormatError naming ``path``, the key and what was expected."""
    expected = f"a JSON object with {', '.join(REQUIRED)} (an aemg corpus provenance)"
    if not isinstance(doc, dict):
        raise DataFormatError(path, expected, f"found {_kind(doc)}")
    if doc.get("format") != FORMAT:
        raise DataFormatError(path, f"format {FORMAT!r} (an aemg corpus provenance)",
                              f"found {doc.get('format')!r}" if "format" in doc else "found no key 'format'")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise DataFormatError(path, expected, f"found no key(s) {', '.join(missing)}")
    for key, kind in [*REQUIRED.items(), *OPTIONAL.items()]:
        if key in doc and not _is(doc[key], kind):
            raise DataFormatError(path, f"{key!r} to be {kind}", f"found {_kind(doc[key])}")
    fs = doc["params"].get("fs")
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not 0 < fs < float("inf"):
        raise DataFormatError(path, "'params' to hold 'fs', the corpus rate in Hz (a positive number)",
                              f"found {_kind(fs)}" if "fs" in doc["params"] else "found no 'fs'")
    for key in ("duplicates", "dropped_duplicates"):
        for i, d in enumerate(doc.get(key, [])):
            if not isinstance(d, dict) or not isinstance(d.get("recording_id"), str):
                raise DataFormatError(path, f"each entry of {key!r} to be an object with a 'recording_id'",
                                      f"found {_kind(d)} as entry {i + 1}")
    for name, sha in doc.get(INDEX_HASH, {}).items():
        if not isinstance(sha, str):
            raise DataFormatError(path, f"{INDEX_HASH!r} to map table names to sha256 strings",
                                  f"found {_kind(sha)} for {name!r}")
    return doc


def read_provenance(path: Path) -> dict[str, Any]:
    """The checked provenance in ``path`` (:func:`check_provenance`); unreadable or invalid JSON is
    a DataFormatError naming the file."""
    expected = "an aemg corpus provenance (a JSON object)"
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(path, expected, "found bytes that are not UTF-8 text") from None
    except OSError as exc:
        raise DataFormatError(path, expected, f"found an unreadable file ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DataFormatError(path, expected, f"found invalid JSON ({exc})") from None
    except RecursionError:
        raise DataFormatError(path, expected, "found JSON nested too deeply to read") from None
    return check_provenance(doc, Path(path))
