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
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = "aemg-corpus"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


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
