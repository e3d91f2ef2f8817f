"""HDF5 storage of Recordings: one file per subject and session, one group per recording.

File layout (``subjects/<safe subject>/<safe session>.h5``)::

    /                       attrs: format="aemg-session", format_version, subject, session,
                                   session_order, dataset, scale (float64 (C,) robust scale of the
                                   session), mains_hz, fingerprint (what it was built from),
                                   recordings (JSON list of recording ids, in order)
    /r00000/                one group per recording, in chronological order; attrs:
                              meta      JSON of every scalar field of the Recording (fs, units,
                                        dataset, subject, session, session_order, label_names,
                                        gesture_keys, attrs, layout_rotation_unknown, arm,
                                        source_file, recording_id, order, mains_hz,
                                        hardware_band, channel_flags, processing)
        signal              float32 (C, T), gzip + shuffle (lossless: the round trip is bit-exact)
        labels, repetition  (T,) integer arrays, absent when the Recording has None
        tracks/<name>       (T,) named extra arrays, dtype kept
        electrodes/         site, layout (UTF-8 strings), angle_deg, z (float64, nan kept), index

Writes are atomic: the whole file is written under a temporary name in the same folder, flushed and
fsync'd, then renamed over the final name (``os.replace``), so a reader never sees half a file. The
free space is checked first (HDF5 can crash on a full disk): too little is one ``DiskFullError`` line.
``h5py`` is imported inside the functions (``import aemg.corpus`` stays light).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aemg.atomic import atomic_path, estimate_nbytes
from aemg.errors import DataFormatError
from aemg.recording import Electrode, Recording

FORMAT = "aemg-session"
FORMAT_VERSION = 1
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}

# Recording fields kept in the JSON ``meta`` attribute (everything that is not an array)
_META_FIELDS = ("fs", "units", "dataset", "subject", "session", "session_order", "label_names",
                "gesture_keys", "attrs", "layout_rotation_unknown", "arm", "source_file", "recording_id",
                "order", "mains_hz", "hardware_band", "channel_flags", "processing")
_TUPLE_FIELDS = ("label_names", "gesture_keys", "channel_flags", "processing")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return obj.as_posix()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any, **kw: Any) -> str:
    """JSON text (numpy scalars and arrays become numbers and lists; NaN kept as ``NaN``)."""
    return json.dumps(obj, default=_json_default, **kw)


def group_name(i: int) -> str:
    """Name of the ``i``-th recording's group inside a session file."""
    return f"r{i:05d}"


def _meta(rec: Recording) -> dict[str, Any]:
    meta = {f: getattr(rec, f) for f in _META_FIELDS}
    meta["fs"] = float(rec.fs)
    meta["mains_hz"] = None if rec.mains_hz is None else float(rec.mains_hz)
    meta["hardware_band"] = None if rec.hardware_band is None else [float(x) for x in rec.hardware_band]
    for f in _TUPLE_FIELDS:
        meta[f] = list(meta[f])
    return meta


def write_recording(group: Any, rec: Recording) -> None:
    """Write ``rec`` into an (empty) h5py group."""
    group.attrs["meta"] = dumps(_meta(rec))
    sig = np.ascontiguousarray(rec.signal)
    chunks = (sig.shape[0], max(1, min(sig.shape[1], 65536))) if sig.size else None
    group.create_dataset("signal", data=sig, chunks=chunks, **(COMPRESSION if sig.size else {}))
    for name in ("labels", "repetition"):
        arr = getattr(rec, name)
        if arr is not None:
            group.create_dataset(name, data=np.asarray(arr), **(COMPRESSION if arr.size else {}))
    tracks = group.create_group("tracks")
    names = list(rec.tracks)
    tracks.attrs["order"] = dumps(names)
    for i, name in enumerate(names):
        arr = np.asarray(rec.tracks[name])
        ds = tracks.create_dataset(f"t{i}", data=arr, **(COMPRESSION if arr.size and arr.dtype != object else {}))
        ds.attrs["name"] = name
    el = group.create_group("electrodes")
    es = rec.electrodes
    str_dt = _str_dtype()
    el.create_dataset("site", data=np.array([e.site for e in es], dtype=object), dtype=str_dt)
    el.create_dataset("layout", data=np.array([e.layout for e in es], dtype=object), dtype=str_dt)
    el.create_dataset("angle_deg", data=np.array([e.angle_deg for e in es], dtype=np.float64))
    el.create_dataset("z", data=np.array([e.z for e in es], dtype=np.float64))
    el.create_dataset("index", data=np.array([e.index for e in es], dtype=np.int64))


def _str_dtype() -> Any:
    import h5py

    return h5py.string_dtype("utf-8")


def _strings(ds: Any) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in ds[()]]


_READ_ERRORS = (KeyError, OSError, ValueError, TypeError, AttributeError, IndexError, RuntimeError)
"""What h5py, json and Recording raise on a damaged or foreign file (translated to DataFormatError)."""


def _why(exc: BaseException) -> str:
    """An exception as one line: its type and message, whitespace collapsed."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def read_recording(group: Any, path: str | Path = "") -> Recording:
    """The Recording stored in an h5py group by :func:`write_recording`."""
    try:
        meta = json.loads(group.attrs["meta"])
        signal = group["signal"][()]
        labels = group["labels"][()] if "labels" in group else None
        repetition = group["repetition"][()] if "repetition" in group else None
        tracks: dict[str, np.ndarray] = {}
        tg = group["tracks"]
        for i, name in enumerate(json.loads(tg.attrs["order"])):
            tracks[name] = tg[f"t{i}"][()]
        el = group["electrodes"]
        sites, layouts = _strings(el["site"]), _strings(el["layout"])
        angles, zs, idx = el["angle_deg"][()], el["z"][()], el["index"][()]
        electrodes = tuple(Electrode(s, float(a), float(z), lay, int(i))
                           for s, a, z, lay, i in zip(sites, angles, zs, layouts, idx))
        for f in _TUPLE_FIELDS:
            meta[f] = tuple(meta[f])
        if meta["hardware_band"] is not None:
            meta["hardware_band"] = tuple(meta["hardware_band"])
        return Recording(signal=signal, electrodes=electrodes, labels=labels, repetition=repetition,
                         tracks=tracks, **meta)
    except _READ_ERRORS as exc:
        name = getattr(group, "name", "?")
        raise DataFormatError(path, f"an aemg recording group {name}", f"found {_why(exc)}") from exc


def write_session(path: Path, recordings: Sequence[Recording], *, scale: np.ndarray,
                  fingerprint: str = "", extra: dict[str, Any] | None = None) -> None:
    """Write one subject-session file (atomically) holding ``recordings`` in order."""
    import h5py

    if not recordings:
        raise ValueError(f"{path}: no recordings to write")
    first = recordings[0]
    # uncompressed bytes: an upper bound of what gzip writes, checked against the free space first
    needed = sum(estimate_nbytes([r.signal, r.labels, r.repetition, r.tracks]) + 4096 for r in recordings)
    with atomic_path(path, needed=needed) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["dataset"] = first.dataset
            f.attrs["subject"] = first.subject
            f.attrs["session"] = first.session
            f.attrs["session_order"] = int(first.session_order)
            f.attrs["scale"] = np.asarray(scale, dtype=np.float64)
            f.attrs["mains_hz"] = dumps(first.mains_hz)
            f.attrs["fingerprint"] = fingerprint
            f.attrs["recordings"] = dumps([r.recording_id for r in recordings])
            f.attrs["extra"] = dumps(extra or {})
            for i, rec in enumerate(recordings):
                write_recording(f.create_group(group_name(i)), rec)
            f.flush()


def _parse_attrs(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Root attributes of a session file with the JSON ones decoded, or a DataFormatError."""
    if raw.get("format") != FORMAT:
        raise DataFormatError(path, "an aemg session HDF5 file", f"found format attribute {raw.get('format')!r}")
    attrs = dict(raw)
    try:
        attrs["recordings"] = json.loads(raw["recordings"])
        attrs["mains_hz"] = json.loads(raw["mains_hz"])
        attrs["extra"] = json.loads(raw.get("extra", "{}"))
        attrs["scale"] = np.asarray(raw["scale"], dtype=np.float64)
    except _READ_ERRORS as exc:
        raise DataFormatError(path, "an aemg session HDF5 file (root attributes recordings, mains_hz, scale)",
                              f"found {_why(exc)}") from exc
    if not isinstance(attrs["recordings"], list) or not all(isinstance(r, str) for r in attrs["recordings"]):
        raise DataFormatError(path, "root attribute 'recordings' to be a JSON list of recording ids",
                              f"found {str(raw['recordings'])[:60]!r}")
    return attrs


def session_attrs(path: Path) -> dict[str, Any]:
    """The root attributes of a session file (raises DataFormatError when it is not one)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = {k: f.attrs[k] for k in f.attrs}
    except _READ_ERRORS as exc:
        raise DataFormatError(path, "an aemg session HDF5 file", f"found {_why(exc)}") from exc
    return _parse_attrs(path, raw)


def is_session_file(path: Path) -> bool:
    """Whether ``path`` is a session file aemg wrote (its root attributes say so); a user's own
    ``.h5`` is not, and aemg neither reads nor removes it."""
    try:
        session_attrs(path)
    except (OSError, ValueError, KeyError):
        return False
    return True


def _attr(fid: Any, name: str) -> Any:
    """A root attribute of an open low-level file id (None when absent); str for strings."""
    import h5py

    key = name.encode()
    if not h5py.h5a.exists(fid, key):
        return None
    aid = h5py.h5a.open(fid, key)
    arr = np.empty(aid.shape, dtype=aid.dtype)
    aid.read(arr)
    value = arr[()]
    return value.decode("utf-8") if isinstance(value, bytes) else value


def session_contents(path: Path, shapes: bool = True) -> tuple[dict[str, Any], list[tuple[int, ...] | None]]:
    """What the integrity check compares with the index, reading no signal: the root attributes
    fingerprint and recordings (the ids, decoded), and with ``shapes`` the shape of each recording's
    ``signal`` dataset (None when absent), in the order of ``recordings``.

    It uses h5py's low-level calls, about twice as fast as ``h5py.File`` and ``f.attrs`` (the check
    opens every session file each time a corpus opens).
    """
    import os

    import h5py

    expected = "an aemg session HDF5 file"
    try:
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)
        try:
            raw = {k: _attr(fid, k) for k in ("fingerprint", "recordings")}
            if raw["fingerprint"] is None or raw["recordings"] is None:  # ours always has both
                fmt = _attr(fid, "format")
                raise DataFormatError(path, expected, f"found format attribute {fmt!r}" if fmt != FORMAT else
                                      "found no 'fingerprint' or 'recordings' attribute")
            ids = json.loads(raw["recordings"])
            if not isinstance(ids, list) or not all(isinstance(r, str) for r in ids):
                raise DataFormatError(path, "root attribute 'recordings' to be a JSON list of recording ids",
                                      f"found {str(raw['recordings'])[:60]!r}")
            raw["recordings"] = ids
            found: list[tuple[int, ...] | None] = []
            for i in range(len(ids) if shapes else 0):
                try:
                    ds = h5py.h5d.open(fid, f"{group_name(i)}/signal".encode())
                except KeyError:  # no such group or dataset
                    found.append(None)
                    continue
                found.append(tuple(ds.shape))
                ds.close()
        finally:
            fid.close()
    except DataFormatError:
        raise
    except _READ_ERRORS as exc:
        raise DataFormatError(path, expected, f"found {_why(exc)}") from exc
    return raw, found


def read_session(path: Path) -> list[Recording]:
    """Every Recording of a session file, in order."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            n = len(_parse_attrs(path, {k: f.attrs[k] for k in f.attrs})["recordings"])
            return [read_recording(_group(f, path, group_name(i)), path) for i in range(n)]
    except DataFormatError:
        raise
    except _READ_ERRORS as exc:
        raise DataFormatError(path, "an aemg session HDF5 file", f"found {_why(exc)}") from exc


def _group(f: Any, path: Path, group: str) -> Any:
    """The group ``group`` of an open session file, or a DataFormatError."""
    import h5py

    g = f.get(group)
    if not isinstance(g, h5py.Group):
        raise DataFormatError(path, f"recording group {group!r}", "found none" if g is None else "found a dataset")
    return g


def read_one(path: Path, group: str) -> Recording:
    """One Recording (group ``group``) of a session file; the file is opened and closed here."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return read_recording(_group(f, path, group), path)
    except DataFormatError:
        raise
    except _READ_ERRORS as exc:
        raise DataFormatError(path, "an aemg session HDF5 file", f"found {_why(exc)}") from exc
