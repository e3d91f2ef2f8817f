"""The generic importer's reader: any dataset described by a ``manifest.csv`` (``aemg import``).

A dataset folder holds ``manifest.csv`` and one signal file per row. Columns:

======================  ======================================================================
``file``                signal file, relative to the manifest folder: ``.npy`` (samples x
                        channels) or ``.csv`` (one row per sample, one column per channel,
                        comma-separated, optional header line)
``subject``             subject name within the dataset
``session``             session name (may be empty: ``session1``)
``trial``               trial name (may be empty: the row number); part of ``recording_id``
``gesture``             gesture name; empty = unlabelled recording (labels -1)
``fs``                  sampling rate in Hz, in :data:`aemg.plausible.SOURCE_FS_RANGE` (50-30000)
``layout``              a layout name (``myo8``, ``unknown4`` ...; see :mod:`aemg.layouts`) or a
                        layout JSON path relative to the manifest folder
``repetition``          optional: repetition number (>= 0), chronological within subject,
                        session and gesture; the values given are kept as they are. When the
                        column is absent or a cell is empty, see "Repetitions" below
``units``               optional: ``uV``, ``mV``, ``V``, ``adc`` ... (default ``adc``)
======================  ======================================================================

Paths (``file``, a layout JSON) are relative to the manifest folder and must stay inside it; an
absolute path or one that leaves it (``../x.npy``) is refused unless ``allow_outside=True``
(``aemg import --allow-outside``).

Rows are in time order within each subject and session (``Recording.order`` = rank of the row
there; ``session_order`` = order in which the subject's sessions first appear). Each row is one
Recording whose whole span is labelled with its gesture and repetition.

Repetitions: without a ``repetition`` value, a row's repetition is numbered from the time order of
the subject's rows *across its sessions*: sessions in ``session_order``, rows in row order within
each (the row order itself when a subject's sessions are listed one after the other). Each gesture
of a subject is numbered 0, 1, 2, ... in that order, so the ids are chronological within subject
and gesture across sessions, hence within each session too (``Recording.repetition``). A row with a
value keeps it; an empty cell after it continues from the largest value so far of that subject and
gesture (+1), in the same time order.

Naming: the **dataset name** is the manifest folder's name, lower-cased with runs of characters
other than letters, digits, ``-`` and ``_`` replaced by ``-`` (``ULB MLG/`` -> ``ulb-mlg``), unless
``dataset=`` is given. Subject ids are ``generic/<dataset>/<subject>`` (unique in a corpus as long
as two imported folders do not share a name; the ``generic`` part keeps them apart from the
registered readers' ids). Gesture names that are shared-vocabulary keys keep that key; any other
name ``g`` gets the key ``<dataset>:g``. ``label_names`` are the manifest's gesture names in order
of first appearance, the same tuple for every Recording of the folder.

Every error names the manifest row (1-based, header = row 1) and the file. Three likely slips are
warned about, never refused: repeated repetition numbers within a subject, session and gesture;
units that are not a unit of potential (:data:`POTENTIAL_UNITS`) nor a device unit the readers use
(:data:`DEVICE_UNITS`); and a gesture name that differs from a shared-vocabulary name only by case,
spacing or a small typo (``Hand_Close``, ``hand clsoe``), which would otherwise keep a key of its own.
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aemg.datasets._common import BadFiles, WarningCounter, as_signal, check_finite, read_csv, subject_id
from aemg.datasets.base import DatasetInfo
from aemg.errors import DataFormatError
from aemg.layouts import Layout, get_layout
from aemg.plausible import check_source_fs
from aemg.recording import UNLABELLED, Recording
from aemg.vocabulary import VOCABULARY

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("file", "subject", "session", "trial", "gesture", "fs", "layout")
OPTIONAL_COLUMNS = ("repetition", "units")
PART = "generic"  # subject ids are generic/<dataset>/<subject>: the folder's name takes the part's place
POTENTIAL_UNITS = ("V", "mV", "uV", "µV", "μV")
"""Units of electric potential a ``units`` cell may name (both micro signs)."""
DEVICE_UNITS = ("adc", "myo", "myo/128")
"""Device units the readers use: raw ADC counts, Myo int8 counts, Myo normalised units."""


def dataset_name(folder: Path) -> str:
    """The dataset name of a manifest folder: its name, lower-cased, safe characters only."""
    name = re.sub(r"[^a-z0-9_-]+", "-", Path(folder).resolve().name.lower()).strip("-")
    return name or "generic"


@dataclass(frozen=True)
class ManifestRow:
    line: int  # 1-based line in manifest.csv (header = 1)
    file: str
    subject: str
    session: str
    trial: str
    gesture: str
    fs: float
    layout: str
    repetition: int | None
    units: str


def _outside(rel: str) -> bool:
    """True when the manifest path ``rel`` is absolute or leaves the manifest folder (``../x.npy``)."""
    return Path(rel).is_absolute() or Path(os.path.normpath(rel)).parts[:1] == ("..",)


def _is_layout_name(key: str) -> bool:
    """True for a registered layout name (``myo8``) or ``unknown<N>``, False for a layout JSON path."""
    from aemg.layouts import LAYOUTS

    return key in LAYOUTS or (key.startswith("unknown") and key[7:].isdigit())


def read_rows(manifest_dir: Path, *, allow_outside: bool = False) -> list[ManifestRow]:
    """The manifest's rows, checked for columns and values (no signal file is opened).

    A path outside the manifest folder is refused unless ``allow_outside``."""
    manifest_dir = Path(manifest_dir)
    path = manifest_dir / MANIFEST
    if not path.is_file():
        raise DataFormatError(path, f"a {MANIFEST} with columns {', '.join(REQUIRED_COLUMNS)}", "file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataFormatError(path, f"columns {', '.join(REQUIRED_COLUMNS)}",
                                      f"missing {', '.join(missing)} (header: {', '.join(header)})")
            raw = [(reader.line_num, len(header) + len(row.get(None) or []) - sum(v is None for v in row.values()),
                    {k.strip(): v.strip() for k, v in row.items() if k is not None and isinstance(v, str)})
                   for row in reader]  # line_num: the file line the row ends on (1-based, header and blanks counted)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(path, "a readable CSV manifest", f"{type(exc).__name__}: {exc}") from exc
    rows = []
    for i, n_cells, r in raw:
        where = f"{path} row {i} ({r.get('file') or 'no file'})"
        if n_cells != len(header):
            raise DataFormatError(where, f"{len(header)} comma-separated cells", f"found {n_cells}")
        for c in ("file", "subject", "fs", "layout"):
            if not r[c]:
                raise DataFormatError(where, f"a value in column {c!r}", "found an empty cell")
        for c in ("file", "layout"):
            if not allow_outside and (c == "file" or not _is_layout_name(r[c])) and _outside(r[c]):
                raise DataFormatError(where, f"a {c} path inside the manifest folder (aemg import --allow-outside "
                                             "reads files outside it)", f"found {r[c]!r}")
        fs = check_source_fs(r["fs"], where)
        rep = None
        if r.get("repetition"):
            try:
                rep = int(r["repetition"])
            except ValueError:
                rep = -1
            if rep < 0:
                raise DataFormatError(where, "repetition an integer >= 0 (or empty)", f"found {r['repetition']!r}")
        rows.append(ManifestRow(line=i, file=r["file"], subject=r["subject"], session=r["session"] or "session1",
                                trial=r["trial"], gesture=r["gesture"], fs=fs, layout=r["layout"], repetition=rep,
                                units=r.get("units") or "adc"))
    if not rows:
        raise DataFormatError(path, "at least one row after the header", "found none")
    return rows


NPY_KINDS = "fiu"
"""dtype kinds a ``.npy`` signal may have: float, signed and unsigned integer (not bool, complex,
strings, objects, structured records or dates)."""


def _load_npy(path: Path, where: str) -> np.ndarray:
    """A ``.npy`` file's array, its header checked first: a real numeric dtype, never a pickle.

    An ``.npz`` archive renamed ``.npy`` (which ``np.load`` would silently open as an archive), an
    object array (which only a pickle can hold) or a complex, string, bool, structured or date
    array is refused with the dtype found, before the data is read.
    """
    expected = f"a .npy array of real numbers (float or integer), samples x channels ({where})"
    with path.open("rb") as fh:
        magic = fh.read(6)
        if magic.startswith(b"PK\x03\x04"):
            raise DataFormatError(path, expected, "found a zip archive (an .npz renamed .npy?)")
        if magic != b"\x93NUMPY":
            raise DataFormatError(path, expected, f"found no .npy header (first bytes {magic!r})")
        fh.seek(0)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    if dtype.kind not in NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        kind = "an object array (a pickle)" if dtype.hasobject else f"dtype {dtype.str} ({dtype.name})"
        raise DataFormatError(path, expected, f"found {kind}, shape {shape}")
    return np.load(path, allow_pickle=False)


def load_signal(path: Path, where: str) -> np.ndarray:
    """A ``.npy`` or ``.csv`` signal file as a ``(samples, channels)`` float64 array."""
    if not path.is_file():
        raise DataFormatError(path, f"the signal file named in {where}", "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = _load_npy(path, where)
        elif suffix == ".csv":
            arr = read_csv(path, f"a readable .csv signal file, samples x channels ({where})")
        else:
            raise DataFormatError(path, f"a .npy or .csv signal file ({where})", f"found suffix {suffix!r}")
    except DataFormatError:
        raise
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"a readable {suffix} signal file, samples x channels ({where})",
                              f"{type(exc).__name__}: {exc}") from exc
    if arr.ndim != 2:
        raise DataFormatError(path, f"a 2-D samples x channels array ({where})", f"found shape {arr.shape}")
    return arr


class GenericReader:
    """Reader of a manifest folder; ``read(root)`` is :func:`read_manifest`. Not in the registry.

    ``allow_outside`` lets manifest paths leave the manifest folder (absolute, ``../x.npy``)."""

    info = DatasetInfo(
        name="generic", title="Any dataset described by a manifest.csv", device="any", fs=math.nan,
        n_channels=0, n_subjects=0, gestures=(), layout="per row", citation="(the imported dataset's own)",
        url="(local files)", notes="see aemg.datasets.generic: manifest.csv + one .npy/.csv per row",
    )

    def __init__(self, *, allow_outside: bool = False):
        self.allow_outside = allow_outside

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]:
        """The manifest, every signal file and every layout JSON it names (each once, in row order)."""
        root = Path(root)
        out = [root / MANIFEST]
        for r in read_rows(root, allow_outside=self.allow_outside):
            out.append(root / r.file)
            if not _is_layout_name(r.layout):
                out.append(root / r.layout)
        return list(dict.fromkeys(out))

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]:
        return read_manifest(root, bad=bad, allow_outside=self.allow_outside)

    def describe(self, root: Path, dataset: str | None = None) -> DatasetInfo:
        """Facts of one manifest folder (fs/channels of its first row)."""
        root = Path(root)
        rows = read_rows(root, allow_outside=self.allow_outside)
        name = dataset or dataset_name(root)
        layout = _layout(root, rows[0], None)
        return DatasetInfo(name=name, title=f"imported: {root.name}", device="unknown", fs=rows[0].fs,
                           n_channels=layout.n_channels, n_subjects=len({r.subject for r in rows}),
                           gestures=_label_names(rows), layout=rows[0].layout, citation="", url=str(root))


def _label_names(rows: list[ManifestRow]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.gesture for r in rows if r.gesture))


def _layout(root: Path, row: ManifestRow, n_channels: int | None) -> Layout:
    where = f"{root / MANIFEST} row {row.line}"
    key = row.layout
    if not _is_layout_name(key):
        key = str(root / key)  # a layout JSON, relative to the manifest folder
    try:
        return get_layout(key, n_channels)
    except DataFormatError as exc:
        raise DataFormatError(where, f"layout {row.layout!r} usable for {row.file}", str(exc)) from exc


def _rows_text(lines: list[int]) -> str:
    """``"rows 2, 5, 7"`` (the first 5 numbers, then ``...``)."""
    return ("row " if len(lines) == 1 else "rows ") + ", ".join(map(str, lines[:5])) + (" ..." if len(lines) > 5 else "")


def _close_vocabulary_name(gesture: str) -> str | None:
    """The shared-vocabulary name ``gesture`` differs from only by case, spacing or a small typo, if any."""
    if gesture in VOCABULARY:
        return None
    norm = re.sub(r"[\s-]+", "_", gesture.strip().lower())
    if norm in VOCABULARY:
        return norm
    close = difflib.get_close_matches(norm, VOCABULARY, n=1, cutoff=0.85)
    return close[0] if close else None


def _warn_slips(path: Path, name: str, timed: list[tuple[ManifestRow, int, int]]) -> None:
    """Warn (one line per kind) about likely slips in a manifest's rows: repeated repetition numbers
    within a subject, session and gesture; units not known; gesture names close to a vocabulary name."""
    slips = WarningCounter(log, str(path))
    lines: dict[tuple[str, str, str, int], list[int]] = {}
    for row, _, rep in timed:
        if row.gesture:
            lines.setdefault((row.subject, row.session, row.gesture, rep), []).append(row.line)
    for (subject, session, gesture, rep), where in sorted(lines.items(), key=lambda kv: kv[1][0]):
        if len(where) > 1:
            slips.add("repeated repetition numbers within a subject, session and gesture",
                      f"subject {subject} session {session} gesture {gesture!r} repetition {rep} in {_rows_text(where)}")
    known = POTENTIAL_UNITS + DEVICE_UNITS
    units: dict[str, list[int]] = {}
    for row, _, _ in timed:
        if row.units not in known:
            units.setdefault(row.units, []).append(row.line)
    for unit, where in units.items():
        hint = next((k for k in known if k.lower() == unit.lower().replace("µ", "u").replace("μ", "u")), None)
        slips.add(f"units that are not a unit of potential ({', '.join(POTENTIAL_UNITS)}) nor a device unit "
                  f"({', '.join(DEVICE_UNITS)})",
                  f"{unit!r} in {_rows_text(sorted(where))}" + (f" (did you mean {hint!r}?)" if hint else ""))
    gestures: dict[str, list[int]] = {}
    for row, _, _ in timed:
        if row.gesture:
            gestures.setdefault(row.gesture, []).append(row.line)
    for gesture, where in gestures.items():
        close = _close_vocabulary_name(gesture)
        if close is not None:
            slips.add("gesture names that differ from a shared-vocabulary name only by case or a small typo (each "
                      f"keeps its own key {name}:<gesture>, not pooled with that gesture)",
                      f"{gesture!r} in {_rows_text(sorted(where))}: did you mean {close!r}?")
    slips.flush()


def _row_signal(root: Path, row: ManifestRow, where: str) -> tuple[np.ndarray, Layout]:
    """One row's signal as ``(channels, samples)`` float32 and its layout, checked (the reading of one
    file, for :meth:`BadFiles.attempt`)."""
    path = root / row.file
    arr = load_signal(path, where)
    try:
        check_finite(arr, path)
    except DataFormatError as exc:
        raise DataFormatError(where, "finite signal values", exc.found) from exc
    layout = _layout(root, row, None)
    if layout.n_channels != arr.shape[1]:
        raise DataFormatError(where, f"{layout.n_channels} channels (columns) for layout {row.layout!r}",
                              f"found {arr.shape[1]} (shape {arr.shape})")
    return as_signal(arr, path, layout.n_channels), layout


def read_manifest(manifest_dir: Path | str, dataset: str | None = None, *, bad: BadFiles | None = None,
                  allow_outside: bool = False) -> Iterator[Recording]:
    """Recordings of a manifest folder, one per row, in subject / session / row order.

    ``dataset`` overrides the dataset name taken from the folder name (see the module docstring);
    ``bad`` decides whether a damaged signal file stops the read (default) or is skipped;
    ``allow_outside`` lets paths leave the manifest folder.
    """
    root = Path(manifest_dir)
    bad = bad if bad is not None else BadFiles(root)
    rows = read_rows(root, allow_outside=allow_outside)
    name = dataset or dataset_name(root)
    names = _label_names(rows)
    keys = tuple(g if g in VOCABULARY else f"{name}:{g}" for g in names)
    # orders from row order; sessions in order of first appearance per subject
    order_count: dict[tuple[str, str], int] = {}
    sessions: dict[str, list[str]] = {}
    seen_ids: dict[str, int] = {}
    plan = []
    for row in rows:
        sess = sessions.setdefault(row.subject, [])
        if row.session not in sess:
            sess.append(row.session)
        k = (row.subject, row.session)
        order = order_count.get(k, 0)
        order_count[k] = order + 1
        plan.append((row, order))
    subjects = list(dict.fromkeys(r.subject for r in rows))
    ordered = sorted(plan, key=lambda t: (subjects.index(t[0].subject), sessions[t[0].subject].index(t[0].session),
                                          t[1]))
    # repetitions in that time order, per (subject, gesture) across the subject's sessions
    rep_next: dict[tuple[str, str], int] = {}
    timed = []
    for row, order in ordered:
        rep = UNLABELLED
        if row.gesture:
            gk = (row.subject, row.gesture)
            rep = row.repetition if row.repetition is not None else rep_next.get(gk, 0)
            rep_next[gk] = max(rep_next.get(gk, 0), rep + 1)
        timed.append((row, order, rep))
    _warn_slips(root / MANIFEST, name, timed)
    for row, order, rep in timed:
        where = f"{root / MANIFEST} row {row.line} ({row.file})"
        sid = subject_id(PART, name, row.subject)
        trial = row.trial or f"row{row.line}"
        rid = f"{sid}/{row.session}/{trial}"
        if rid in seen_ids:
            raise DataFormatError(where, "a unique (subject, session, trial) per row",
                                  f"found the same as row {seen_ids[rid]}")
        seen_ids[rid] = row.line
        read = bad.attempt(root / row.file, _row_signal, root, row, where)
        if read is None:
            continue
        signal, layout = read
        n = signal.shape[1]
        labels = np.full(n, names.index(row.gesture) if row.gesture else UNLABELLED, np.int32)
        repetition = np.full(n, rep, np.int32)
        yield Recording(
            signal=signal, fs=row.fs, units=row.units, electrodes=layout.electrodes, dataset=name, subject=sid,
            session=row.session, session_order=sessions[row.subject].index(row.session), labels=labels,
            label_names=names, gesture_keys=keys, repetition=repetition,
            attrs={"fs_original": row.fs, "manifest_row": row.line, "trial": row.trial, "layout": row.layout},
            layout_rotation_unknown=layout.rotation_unknown, source_file=row.file, recording_id=rid, order=order,
        )


READER = GenericReader()
