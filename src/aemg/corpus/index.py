"""The corpus index: flat tables of sessions, recordings and trials (CSV under ``index/``).

One row per item, one column per fact (a closed schema, below), so a split is a ``groupby``:
leave-one-subject-out is ``corpus.recordings.groupby("subject")``. Rows are in corpus order
(subject in natural order, session_order, order). CSV keeps the store free of optional
dependencies; the tables are small (one row per recording or trial, never per sample).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.atomic import atomic_write_text
from aemg.corpus.store import dumps
from aemg.errors import DataFormatError
from aemg.recording import Recording

if TYPE_CHECKING:
    import pandas as pd

INDEX_DIR = "index"

# column -> (kind, meaning). kind: str, int, float, bool, json
RECORDING_COLUMNS: dict[str, tuple[str, str]] = {
    "recording_id": ("str", "unique id within the corpus (reader's subject/session/file)"),
    "subject": ("str", "subject id, unique in the corpus (dataset/part/name)"),
    "session": ("str", "session name within the subject"),
    "session_order": ("int", "chronological rank of the session within the subject"),
    "order": ("int", "chronological rank of the recording within its session"),
    "dataset": ("str", "dataset name"),
    "n_samples": ("int", "samples at the corpus rate"),
    "n_channels": ("int", "channels"),
    "fs": ("float", "sampling rate in Hz (the corpus rate)"),
    "fs_original": ("float", "the device's own rate in Hz"),
    "duration_s": ("float", "n_samples / fs"),
    "units": ("str", "signal units (before scaling)"),
    "layout": ("str", "electrode layout name(s), '+'-joined when mixed"),
    "rotation_unknown": ("bool", "armband whose rotation on the arm is unknown"),
    "arm": ("str", "right, left or unknown"),
    "mains_hz": ("float", "detected mains frequency of the session (NaN when none)"),
    "channel_flags": ("json", "per channel QC flag: '' ok, dead, saturated, mains"),
    "n_trials": ("int", "labelled trials in the recording"),
    "source_file": ("str", "raw file(s), relative to the dataset root"),
    "raw_sha256": ("str", "sha256 of the raw signal as read (deduplication identity)"),
    "h5_file": ("str", "session HDF5 file, relative to the corpus folder"),
    "h5_group": ("str", "group of the recording inside h5_file"),
    "recording_attrs": ("json", "the Recording's attrs (reader facts such as an armband or limb position, "
                                "to split on)"),
}
TRIAL_COLUMNS: dict[str, tuple[str, str]] = {
    "recording_id": ("str", "recording holding the trial"),
    "subject": ("str", "subject id"),
    "session": ("str", "session name"),
    "trial": ("int", "trial id, unique in the corpus (0, 1, ... in corpus order)"),
    "start": ("int", "first sample (corpus rate) within the recording"),
    "stop": ("int", "one past the last sample"),
    "label": ("int", "index into the recording's label_names"),
    "label_name": ("str", "the dataset's own gesture name"),
    "gesture_key": ("str", "shared-vocabulary key (or dataset:name)"),
    "repetition": ("int", "chronological within subject and gesture across the subject's sessions (hence within each session) (-1 none)"),
}
SESSION_COLUMNS: dict[str, tuple[str, str]] = {
    "subject": ("str", "subject id"),
    "session": ("str", "session name"),
    "session_order": ("int", "chronological rank within the subject"),
    "h5_file": ("str", "session HDF5 file, relative to the corpus folder"),
    "n_recordings": ("int", "recordings in the session"),
    "n_channels": ("int", "channels"),
    "mains_hz": ("float", "mains frequency used for the session's notch (NaN when none)"),
    "mains_source": ("str", "where mains_hz came from: session (its own spectrum), subject or dataset (the "
                            "spectra of the subject's or the dataset's other sessions), declared (the reader's "
                            "documented value), none"),
    "scale": ("json", "robust amplitude scale per channel, measured after the causal 20 Hz high-pass and "
                      "mains notch (Corpus.load(scaled=True) divides by it)"),
    "flagged_channels": ("json", "{channel: flag} of channels flagged in any recording of the session"),
    "fingerprint": ("str", "sha256 of what the session file was built from (resume check)"),
}
TABLES = {"recordings": RECORDING_COLUMNS, "trials": TRIAL_COLUMNS, "sessions": SESSION_COLUMNS}
ADDED_COLUMNS = {"mains_source": "", "recording_attrs": "{}"}
"""Columns added after format version 1, with the value a table written before them reads as."""


def recording_row(rec: Recording, *, h5_file: str, h5_group: str, raw_sha256: str) -> dict[str, Any]:
    layouts = "+".join(dict.fromkeys(e.layout for e in rec.electrodes))
    return {
        "recording_id": rec.recording_id, "subject": rec.subject, "session": rec.session,
        "session_order": int(rec.session_order), "order": int(rec.order), "dataset": rec.dataset,
        "n_samples": rec.n_samples, "n_channels": rec.n_channels, "fs": float(rec.fs),
        "fs_original": float(rec.attrs.get("fs_original", rec.fs)), "duration_s": rec.duration_s,
        "units": rec.units, "layout": layouts, "rotation_unknown": bool(rec.layout_rotation_unknown),
        "arm": rec.arm, "mains_hz": np.nan if rec.mains_hz is None else float(rec.mains_hz),
        "channel_flags": list(rec.channel_flags) or [""] * rec.n_channels, "n_trials": len(rec.trials()),
        "source_file": rec.source_file, "raw_sha256": raw_sha256, "h5_file": h5_file, "h5_group": h5_group,
        "recording_attrs": dict(rec.attrs),
    }


def trial_rows(rec: Recording) -> list[dict[str, Any]]:
    """Trials of ``rec`` (``trial`` is numbered later, when the whole corpus is in order)."""
    rows = []
    for start, stop, label, rep in rec.trials():
        rows.append({"recording_id": rec.recording_id, "subject": rec.subject, "session": rec.session,
                     "trial": -1, "start": start, "stop": stop, "label": label,
                     "label_name": rec.label_names[label], "gesture_key": rec.gesture_keys[label],
                     "repetition": rep})
    return rows


def session_row(recs: Sequence[Recording], *, h5_file: str, scale: np.ndarray, fingerprint: str) -> dict[str, Any]:
    first = recs[0]
    flagged: dict[str, str] = {}
    for rec in recs:
        for ch, flag in enumerate(rec.channel_flags):
            if flag and str(ch) not in flagged:
                flagged[str(ch)] = flag
    return {"subject": first.subject, "session": first.session, "session_order": int(first.session_order),
            "h5_file": h5_file, "n_recordings": len(recs), "n_channels": first.n_channels,
            "mains_hz": np.nan if first.mains_hz is None else float(first.mains_hz),
            "mains_source": str(first.attrs.get("mains_source", "")),
            "scale": [float(s) for s in np.asarray(scale, dtype=np.float64)], "flagged_channels": flagged,
            "fingerprint": fingerprint}


def to_csv(rows: list[dict[str, Any]], columns: dict[str, tuple[str, str]]) -> str:
    """CSV text of ``rows`` with exactly ``columns`` (JSON columns as JSON text)."""
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for r in rows:
        out = []
        for c, (kind, _) in columns.items():
            v = r[c]
            if kind == "json":
                out.append(dumps(v))
            elif kind == "float":
                out.append("" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(float(v)))
            elif kind == "bool":
                out.append("true" if v else "false")
            else:
                out.append(str(v))
        w.writerow(out)
    return buf.getvalue()


def table_path(folder: Path, name: str) -> Path:
    """``folder/index/<name>.csv``: where the table ``name`` (recordings, trials, sessions) lives."""
    return Path(folder) / INDEX_DIR / f"{name}.csv"


def write_table(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(table_path(folder, name), to_csv(rows, TABLES[name]))


def tables_sha256(folder: Path) -> dict[str, str]:
    """sha256 of each index table's bytes (``{"recordings": hex, ...}``), recorded in the provenance
    at build time and compared when the corpus opens (a changed or truncated table is refused)."""
    return {name: hashlib.sha256(table_path(folder, name).read_bytes()).hexdigest() for name in TABLES}


_KIND_WORDS = {"int": "integers", "float": "numbers (empty for none)", "bool": "true or false",
               "json": "JSON", "str": "text"}
_JSON_TYPES: dict[str, type] = {"channel_flags": list, "recording_attrs": dict, "scale": list,
                                "flagged_channels": dict}
"""The JSON value each JSON column holds."""


_BAD = object()


def _int(text: str) -> int:
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(text)
    return value


def _bool(text: str) -> bool:
    low = text.lower()
    if low not in ("true", "false"):
        raise ValueError(text)
    return low == "true"


def _float(text: str) -> float:
    return float(text) if text else np.nan


_PARSE: dict[str, Any] = {"int": _int, "float": _float, "bool": _bool, "json": json.loads, "str": str}


def _parse_column(path: Path, column: str, kind: str, cells: list[str], lines: list[int]) -> list[Any]:
    """The cells of one column converted to ``kind``, or a DataFormatError naming the line."""
    parse, want = _PARSE[kind], _JSON_TYPES.get(column)
    try:  # the fast path; the loop below finds the line of a bad cell
        values = [parse(cell) for cell in cells]
        if want is None or all(isinstance(v, want) for v in values):
            return values
    except (ValueError, RecursionError):
        pass
    out = []
    for cell, line in zip(cells, lines):
        try:
            value = parse(cell)
        except (ValueError, RecursionError):
            value = _BAD
        if value is _BAD or (want is not None and not isinstance(value, want)):
            what = f"a JSON {'list' if want is list else 'object'}" if want is not None else _KIND_WORDS[kind]
            raise DataFormatError(path, f"column {column!r} to hold {what}", f"found {cell[:60]!r} in line {line}")
        out.append(value)
    return out


def read_table(folder: Path, name: str) -> pd.DataFrame:
    """An index table as a pandas DataFrame with the schema's column types.

    A missing file, a row with too few or too many fields, or a cell that is not of its column's
    kind is a DataFormatError naming the file and the line (1-based, the header is line 1).
    """
    import csv

    import pandas as pd

    path = table_path(folder, name)
    columns = TABLES[name]
    expected = f"an aemg index table ({', '.join(columns)})"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataFormatError(path, expected, "found an empty file")
            rows, lines = [], []
            for row in reader:
                if len(row) != len(header):
                    raise DataFormatError(path, f"{len(header)} comma-separated fields, as in the header",
                                          f"found {len(row)} in line {reader.line_num}")
                rows.append(row)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataFormatError(path, expected, "found no such file") from None
    except UnicodeDecodeError:
        raise DataFormatError(path, expected, "found bytes that are not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise DataFormatError(path, expected, f"found an unreadable file ({exc})") from exc
    cells = {c: [r[i] for r in rows] for i, c in enumerate(header)}
    for c, default in ADDED_COLUMNS.items():
        if c in columns and c not in cells:
            cells[c] = [default] * len(rows)
    missing = [c for c in columns if c not in cells]
    if missing:
        raise DataFormatError(path, f"columns {', '.join(columns)}", f"found no column(s) {', '.join(missing)}")
    out: dict[str, Any] = {}
    for c, (kind, _) in columns.items():
        values = _parse_column(path, c, kind, cells[c], lines)
        if kind == "int":
            out[c] = np.array(values, dtype=np.int64)
        elif kind == "float":
            out[c] = np.array(values, dtype=np.float64)
        elif kind == "bool":
            out[c] = np.array(values, dtype=bool)
        else:
            out[c] = pd.Series(values, dtype=object)
    return pd.DataFrame(out, columns=list(columns))
