"""Helpers shared by the dataset readers: strict file parsing, Recording assembly, subject ids
and the one report of what is absent from a download.

Used by every reader (the real-data ones and the fixture-tested Ninapro, EPN-612, Toro-Ossaba,
MCS_EMG and generic readers). Every function here raises :class:`aemg.errors.DataFormatError` naming the offending file and what
was expected, so a reader built from them never misreads a damaged file silently. Nothing here
writes to, moves or deletes the user's files.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from aemg.errors import DataFormatError
from aemg.layouts import Layout
from aemg.recording import Recording

__all__ = [
    "MYO_RANGE",
    "read_myo_counts_csv",
    "SINGLE_PART",
    "BadFiles",
    "RepetitionCounter",
    "WarningCounter",
    "as_column",
    "as_signal",
    "check_finite",
    "check_range",
    "chronological_runs",
    "find_root",
    "is_stray_name",
    "list_files",
    "myo_counts_from_scaled",
    "one_repetition_recording",
    "read_csv",
    "read_int16_interleaved",
    "read_numeric_text",
    "relpath",
    "text_row",
    "subject_id",
    "warn_absent",
]

MYO_RANGE = (-128, 127)
"""Value range of the Myo armband's raw EMG (signed 8-bit counts)."""

T = TypeVar("T")


class RepetitionCounter:
    """Numbers repetitions 0, 1, 2, ... per (subject, gesture) in the order they are met.

    A reader that yields each subject's recordings in time order (sessions in ``session_order``,
    recordings in ``order`` within a session) and asks :meth:`next` once per repetition gets
    repetition ids that are chronological within subject and gesture across the subject's
    sessions, hence also within each session (``Recording.repetition``). The dataset's own number,
    which often restarts in every session folder, is kept in ``attrs["file_repetition"]``.
    """

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], int] = {}

    def next(self, subject: str, label: int) -> int:
        """The next repetition id of ``label`` for ``subject`` (0 for the first one met)."""
        key = (subject, int(label))
        rep = self._next.get(key, 0)
        self._next[key] = rep + 1
        return rep


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (the ``source_file`` of a Recording)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _require_finite(data: np.ndarray, path: Path, expected: str, delimiter: str | None, skiprows: int) -> None:
    """Refuse NaN/inf cells of a parsed text table, naming the first one's 1-based row and column."""
    bad = ~np.isfinite(data)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(path, f"{expected}, all finite",
                              f"found {int(bad.sum())} NaN/inf values, the first ({data[row, col]:g}) in row "
                              f"{text_row(path, delimiter, skiprows, row)}, column {col + 1}")


def read_myo_counts_csv(path: Path, n_channels: int = 8) -> np.ndarray:
    """A headerless CSV of Myo armband counts (integers within :data:`MYO_RANGE`), checked."""
    data = read_numeric_text(path, n_columns=n_channels, delimiter=",", integer=True,
                             what=f"{n_channels} comma-separated integer columns (Myo counts), no header")
    check_range(path, data, *MYO_RANGE, what="Myo counts")
    return data


def read_numeric_text(path: Path, *, n_columns: int, delimiter: str | None = ",", skiprows: int = 0,
                      integer: bool = False, what: str = "") -> np.ndarray:
    """Read a delimited numeric text file into a float64 ``(rows, n_columns)`` array, strictly.

    Raises :class:`DataFormatError` (naming ``path``) when the file is missing or unreadable, holds no
    data rows, has a line with another number of fields (a truncated last line included), holds a
    token that is not a number, holds NaN or infinity, or, with ``integer=True``, a non-integer
    value. CRLF line endings and a missing final newline are accepted. ``what`` describes the
    expected content for the message (default: "``n_columns`` <delimiter>-separated numeric columns").
    Every message names the bad cell as ``row N, column M``: N the 1-based line of the file as a
    text editor shows it (header and blank lines counted), M 1-based (:func:`text_row`).
    """
    path = Path(path)
    sep_name = {",": "comma", "\t": "tab", None: "whitespace", " ": "space", ";": "semicolon"}.get(delimiter, repr(delimiter))
    expected = what or f"{n_columns} {sep_name}-separated numeric columns"
    if not path.is_file():
        raise DataFormatError(path, expected, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on empty input; reported below instead
            data = np.loadtxt(path, delimiter=delimiter, skiprows=skiprows, ndmin=2, dtype=np.float64,
                              comments=None, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, expected, f"found bytes that are not UTF-8 text ({exc.reason} at byte "
                                              f"{exc.start})") from exc
    except ValueError as exc:
        raise DataFormatError(path, expected, first_bad_cell(path, delimiter, skiprows, n_columns)
                              or f"found a malformed line ({exc})") from exc
    except OSError as exc:
        raise DataFormatError(path, expected, f"cannot read: {exc}") from exc
    if data.shape[0] == 0:
        raise DataFormatError(path, expected, "no data rows (empty or truncated file)")
    if data.shape[1] != n_columns:
        raise DataFormatError(path, expected, f"found {data.shape[1]} columns in row "
                                              f"{text_row(path, delimiter, skiprows, 0)}")
    _require_finite(data, path, expected, delimiter, skiprows)
    if integer:
        frac = data != np.round(data)
        if frac.any():
            row, col = (int(i) for i in np.argwhere(frac)[0])
            raise DataFormatError(path, f"{expected}, integer values",
                                  f"found non-integer value {data[row, col]:g} in row "
                                  f"{text_row(path, delimiter, skiprows, row)}, column {col + 1}")
    return data


def _text_lines(path: Path, delimiter: str | None, skiprows: int) -> Iterable[tuple[int, list[str]]]:
    """``(line number, fields)`` of every data line as :func:`numpy.loadtxt` sees them: 1-based file
    line numbers, the first ``skiprows`` lines and empty lines (whitespace-only ones when splitting on
    whitespace) left out. For error messages only (the slow path)."""
    with Path(path).open(encoding="utf-8", errors="replace", newline="") as f:
        for n, line in enumerate(f, start=1):
            if n <= skiprows:
                continue
            text = line.rstrip("\r\n")
            if not (text.strip() if delimiter is None else text):
                continue
            yield n, text.split(delimiter)


def text_row(path: Path, delimiter: str | None, skiprows: int, index: int) -> int:
    """The 1-based file line (as a text editor numbers it) of data row ``index`` (0-based) of ``path``."""
    for i, (n, _) in enumerate(_text_lines(path, delimiter, skiprows)):
        if i == index:
            return n
    return skiprows + index + 1


def first_bad_cell(path: Path, delimiter: str | None, skiprows: int, n_columns: int | None) -> str | None:
    """``found ... in row N, column M`` for the first line with another number of fields (``n_columns``,
    or the first data line's when None) or a cell that is not a number; None when every cell parses."""
    for n, fields in _text_lines(path, delimiter, skiprows):
        if n_columns is None:
            n_columns = len(fields)
        if len(fields) != n_columns:
            return (f"found {len(fields)} columns in row {n} (the number of columns changed: a truncated or "
                    "damaged line?)")
        for c, tok in enumerate(fields, start=1):
            try:
                float(tok)
            except ValueError:
                cell = "an empty cell" if not tok.strip() else f"{tok.strip()[:40]!r}"
                return f"found a malformed line: {cell} in row {n}, column {c}"
    return None


def read_int16_interleaved(path: Path, n_channels: int, *, byteorder: str = "<") -> np.ndarray:
    """Read a raw binary file of int16 samples, channel fastest, as an int16 ``(samples, n_channels)`` array.

    Raises :class:`DataFormatError` when the file is missing, empty, or its size is not a whole
    number of frames (a truncated file).
    """
    path = Path(path)
    frame = 2 * n_channels
    expected = f"{byteorder == '<' and 'little' or 'big'}-endian int16, {n_channels} channels interleaved"
    if not path.is_file():
        raise DataFormatError(path, expected, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise DataFormatError(path, expected, "empty file")
    if size % frame:
        raise DataFormatError(path, f"{expected} (file size a multiple of {frame} bytes)",
                              f"{size} bytes: truncated or not this format")
    return np.fromfile(path, dtype=f"{byteorder}i2").reshape(-1, n_channels)


def check_range(path: Path, data: np.ndarray, lo: float, hi: float, what: str) -> None:
    """Raise :class:`DataFormatError` when any value of ``data`` lies outside ``[lo, hi]``."""
    if data.size and (data.min() < lo or data.max() > hi):
        raise DataFormatError(path, f"{what} in [{lo:g}, {hi:g}]",
                              f"values range over [{data.min():g}, {data.max():g}]")


def myo_counts_from_scaled(path: Path, values: np.ndarray, scale: float, *,
                           cell: Callable[[int, int], str] | None = None) -> np.ndarray:
    """Myo int8 counts from values stored as ``counts * scale`` (UCI stores counts x 1e-5).

    Raises :class:`DataFormatError` when a value is not (within rounding) an integer multiple of
    ``scale`` or lies outside the Myo's [-128, 127]. ``cell(i, j)`` names array cell (i, j) in the
    file's terms (``row N, column M``, see :func:`read_numeric_text`); default ``row i+1, column j+1``.
    """
    counts = values / scale
    rounded = np.round(counts)
    err = np.abs(counts - rounded)
    if err.size and err.max() > 1e-3:
        row, col = (int(i) for i in np.argwhere(err > 1e-3)[0])
        where = cell(row, col) if cell else f"row {row + 1}, column {col + 1}"
        raise DataFormatError(path, f"Myo counts scaled by {scale:g} (integer multiples of {scale:g})",
                              f"found value {values[row, col]:g} in {where}")
    check_range(path, rounded, *MYO_RANGE, what=f"Myo counts (values / {scale:g})")
    return rounded


def find_root(root: Path, candidates: Sequence[str], expected: str) -> Path:
    """The dataset root: ``root`` itself when it holds any of ``candidates`` (names or glob patterns).

    Also accepts ``root`` one level above (a folder that contains the dataset folder): the first
    child directory holding a candidate is used. Raises :class:`DataFormatError` describing the
    ``expected`` layout when neither holds one.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, f"a dataset folder laid out as {expected}", "not a directory")

    def holds(folder: Path) -> bool:
        return any(any(folder.glob(c)) for c in candidates)

    if holds(root):
        return root
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if holds(child):
            return child
    raise DataFormatError(root, f"a dataset folder laid out as {expected}",
                          "found none of " + ", ".join(candidates))


def warn_absent(logger: logging.Logger, dataset: str, where: Path, kind: str, expected: Iterable[str],
                present: Iterable[str]) -> list[str]:
    """Log one warning naming the ``expected`` names that are not ``present`` under ``where``; return them.

    Public datasets are often downloaded in part: absent subjects, parts or files are reported, never
    fatal. Every reader reports through this one helper, from ``read()`` only (``files()`` stays
    silent), so a prepare reports each absence once. Message:
    ``"<dataset>: <n> <kind> absent from <where>: <first 40 names>[ ...]"``.
    """
    have = set(present)
    absent = [e for e in expected if e not in have]
    if absent:
        shown = ", ".join(absent[:40]) + (" ..." if len(absent) > 40 else "")
        logger.warning("%s: %d %s absent from %s: %s", dataset, len(absent), kind, where, shown)
    return absent


def one_repetition_recording(samples: np.ndarray, *, path: Path, root: Path, fs: float, units: str, layout: Layout,
                             dataset: str, subject: str, session: str, session_order: int, order: int,
                             label: int, repetition: int, label_names: tuple[str, ...],
                             gesture_keys: tuple[str, ...], recording_id: str, arm: str = "unknown",
                             attrs: dict[str, Any] | None = None, mains_hz: float | None = None,
                             hardware_band: tuple[float, float] | None = None) -> Recording:
    """A Recording for a file that holds one repetition of one gesture (every sample labelled).

    ``samples`` is ``(samples, channels)`` as stored in the file; the Recording's signal is its
    float32 transpose. ``attrs`` gains ``fs_original = fs`` unless it sets it.
    """
    if samples.shape[1] != layout.n_channels:
        raise DataFormatError(path, f"{layout.n_channels} channels ({layout.name})", f"found {samples.shape[1]}")
    n = samples.shape[0]
    return Recording(
        signal=np.ascontiguousarray(samples.T, dtype=np.float32), fs=float(fs), units=units,
        electrodes=layout.electrodes, dataset=dataset, subject=subject, session=session,
        session_order=session_order, labels=np.full(n, label, np.int32), label_names=label_names,
        gesture_keys=gesture_keys, repetition=np.full(n, repetition, np.int32),
        attrs={"fs_original": float(fs), **(attrs or {})}, layout_rotation_unknown=layout.rotation_unknown,
        arm=arm, source_file=relpath(path, root), recording_id=recording_id, order=order, mains_hz=mains_hz,
        hardware_band=hardware_band)


SINGLE_PART = "all"
"""Part name in subject ids of datasets that have no parts of their own (``ninapro-db2/all/s1``).

The one spelling of "this dataset has no parts": every such reader passes it to :func:`subject_id`."""


def subject_id(dataset: str, part: str, name: str) -> str:
    """Corpus-unique subject id ``dataset/part/name`` (DESIGN.md); ``part`` is :data:`SINGLE_PART`
    (``"all"``) when the dataset has no parts."""
    return f"{dataset}/{part}/{name}"


def check_finite(arr: np.ndarray, path: Path | str, what: str = "signal") -> None:
    """Raise when ``arr`` holds NaN or inf, naming the first bad value by 1-based position (for a
    samples x channels array: ``row`` = sample, ``column`` = channel, as a spreadsheet shows it)."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = [int(i) + 1 for i in np.argwhere(bad)[0]]
        at = (f"row {idx[0]}, column {idx[1]}" if len(idx) == 2 else f"position {idx[0]}" if len(idx) == 1
              else f"position ({', '.join(map(str, idx))}) counting from 1")
        raise DataFormatError(path, f"finite {what} values",
                              f"found {int(bad.sum())} NaN/inf values, the first ({arr[tuple(i - 1 for i in idx)]:g}) "
                              f"in {at}")


def as_signal(samples_by_channels: np.ndarray, path: Path | str, n_channels: int | None,
              what: str = "emg") -> np.ndarray:
    """A ``(samples, channels)`` numeric array as the float32 ``(channels, samples)`` a Recording holds.

    Checks the shape, the channel count (when given) and finiteness.
    """
    arr = np.asarray(samples_by_channels)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(path, f"{what} as a numeric (samples, channels) array",
                              f"found {arr.dtype} array of shape {arr.shape}")
    if n_channels is not None and arr.shape[1] != n_channels:
        raise DataFormatError(path, f"{what} with {n_channels} channels (columns)",
                              f"found {arr.shape[1]} (shape {arr.shape})")
    if arr.shape[0] == 0:
        raise DataFormatError(path, f"{what} with at least one sample", "found 0 samples")
    check_finite(arr, path, what)
    return np.ascontiguousarray(arr.T, dtype=np.float32)


def as_column(arr: Any, path: Path | str, name: str) -> np.ndarray:
    """A MATLAB ``(T, 1)`` / ``(1, T)`` / ``(T,)`` integer variable as an int32 ``(T,)`` vector."""
    a = np.asarray(arr)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.number):
        raise DataFormatError(path, f"{name!r} as one numeric column", f"found {a.dtype} array of shape {a.shape}")
    check_finite(a, path, name)
    if np.any(a != np.round(a)):
        raise DataFormatError(path, f"integer values in {name!r}", "found non-integer values")
    return a.astype(np.int32)


def chronological_runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of constant value: ``(starts, stops, values)`` with exclusive stops."""
    if len(labels) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, labels.dtype)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return starts, stops, labels[starts]


class WarningCounter:
    """Collects repeated, per-file warnings and logs each kind once with a count and examples."""

    def __init__(self, logger: logging.Logger, dataset: str):
        self.logger = logger
        self.dataset = dataset
        self._items: dict[str, list[str]] = {}

    def add(self, kind: str, example: str) -> None:
        self._items.setdefault(kind, []).append(example)

    def flush(self) -> None:
        for kind, examples in self._items.items():
            shown = "; ".join(examples[:3]) + (" ..." if len(examples) > 3 else "")
            self.logger.warning("%s: %s in %d case(s): %s", self.dataset, kind, len(examples), shown)
        self._items.clear()


def read_csv(path: Path, expected: str) -> np.ndarray:
    """A comma-separated numeric file with an optional header line, as a float64 ``(rows, columns)``.

    The first line is a header when it does not parse as numbers. Any read or parse failure, and a
    NaN or infinite value, raises :class:`DataFormatError` naming ``path``, ``expected`` and the bad
    cell as ``row N, column M`` (1-based file lines, header counted, as :func:`read_numeric_text`).
    """
    skip = 0
    try:
        with Path(path).open(encoding="utf-8") as f:
            first = f.readline()
        try:
            [float(x) for x in first.strip().split(",")]
        except ValueError:
            skip = 1
        data = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, expected, f"found bytes that are not UTF-8 text ({exc.reason} at byte "
                                              f"{exc.start})") from exc
    except ValueError as exc:
        raise DataFormatError(path, expected, first_bad_cell(path, ",", skip, None)
                              or f"ValueError: {exc}") from exc
    except OSError as exc:
        raise DataFormatError(path, expected, f"{type(exc).__name__}: {exc}") from exc
    _require_finite(data, path, expected, ",", skip)
    return data


# ------------------------------------------------------------------ stray and damaged files

_JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"})
_JUNK_SUFFIXES = (".bak", ".swp", ".swo", ".tmp", ".orig", ".part", ".crdownload")
_COPY_RE = re.compile(r"(?: \(\d+\)| - copy(?: \(\d+\))?| copy(?: \d+)?)(?:\.[^.]*)?$", re.IGNORECASE)


def is_stray_name(name: str) -> bool:
    """True for a name no dataset file has: hidden files (``.DS_Store``, macOS ``._*``), editor
    backups (``x~``, ``.bak``, ``.swp``), OS leftovers (``Thumbs.db``, ``desktop.ini``) and copies
    made by a browser or file manager (``x (1).txt``, ``x - Copy.txt``)."""
    low = name.lower()
    return (name.startswith(".") or name.endswith("~") or low in _JUNK_NAMES or low.endswith(_JUNK_SUFFIXES)
            or _COPY_RE.search(name) is not None)


def _reason(error: DataFormatError, path: Path, root: Path) -> str:
    """``error``'s message without its leading file name when that is ``path`` (it is stored beside
    it), other paths below ``root`` made relative to it."""
    msg = str(error)
    prefix = f"{error.path}: "
    if error.path == path and msg.startswith(prefix):
        msg = msg[len(prefix):]
    return re.sub(r"(?<![\w./-])" + re.escape(f"{root}/"), "", msg)


class BadFiles:
    """What a reader does with stray and damaged files, and the record of those it met.

    *Stray*: a file in a folder the reader lists that is not named like one of the dataset's files
    (:func:`list_files`); it is never read, and the reader's ``read()`` names it in one warning
    (:meth:`warn_strays`; ``files()`` stays silent). *Damaged*: a file named like a dataset file
    for which the reader raises :class:`DataFormatError` (unreadable, truncated, out of range,
    missing from a complete set); the error stops the read (fail fast, the default) unless
    ``skip_bad``: then the file and the reason are recorded in :attr:`skipped` and the reader goes
    on with its next file. One object can serve ``files()`` and several ``read()`` passes: each
    file is recorded once. Paths are kept relative to ``root``.
    """

    def __init__(self, root: Path | str, *, skip_bad: bool = False):
        self.root = Path(root)
        self.skip_bad = skip_bad
        self._skipped: dict[str, str] = {}  # file -> reason, in the order met
        self._stray: dict[str, None] = {}  # an ordered set of file names
        self._warned: set[str] = set()

    @property
    def skipped(self) -> list[dict[str, str]]:
        """``{"file", "reason"}`` of every damaged file skipped, in the order met (provenance)."""
        return [{"file": f, "reason": r} for f, r in self._skipped.items()]

    @property
    def stray(self) -> list[str]:
        """Stray files met, relative to ``root``, in the order met."""
        return list(self._stray)

    def stray_file(self, path: Path) -> None:
        """Record ``path`` as stray (never read; named by :meth:`warn_strays`)."""
        self._stray.setdefault(relpath(path, self.root), None)

    def reject(self, error: DataFormatError, path: Path | str | None = None) -> None:
        """Raise ``error`` (fail fast), or with ``skip_bad`` record its file (``path``, default the
        error's own) as skipped, so that the caller can go on with the next file."""
        if not self.skip_bad:
            raise error
        file = Path(path) if path is not None else error.path
        self._skipped.setdefault(relpath(file, self.root), _reason(error, file, self.root))

    def attempt(self, path: Path, read: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``read(*args, **kwargs)``, the whole reading of the one file ``path``; None when it raises
        :class:`DataFormatError` and ``skip_bad`` is set (the file is then recorded as skipped)."""
        try:
            return read(*args, **kwargs)
        except DataFormatError as exc:
            self.reject(exc, path)
            return None

    def warn_strays(self, logger: logging.Logger, dataset: str) -> None:
        """Log one warning naming the stray files not yet reported (the first 40)."""
        new = [s for s in self._stray if s not in self._warned]
        if new:
            shown = ", ".join(new[:40]) + (" ..." if len(new) > 40 else "")
            logger.warning("%s: %d stray file(s) skipped (not named like a file of the dataset) in %s: %s",
                           dataset, len(new), self.root, shown)
            self._warned.update(new)


def list_files(folder: Path, pattern: re.Pattern[str], bad: BadFiles, *,
               allowed: Collection[str] = ()) -> list[tuple[Path, re.Match[str]]]:
    """The files of ``folder`` named like dataset files (``pattern.fullmatch``), in name order, with
    their matches: the one rule of every reader's file listing.

    Every other file of ``folder`` (sub-folders are not looked at), and any file with a name of
    :func:`is_stray_name`, is stray: recorded in ``bad``, never read. ``allowed`` names known
    companions that are neither (CIIL's ``metadata.json``).
    """
    out = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        m = None if is_stray_name(path.name) else pattern.fullmatch(path.name)
        if m is not None:
            out.append((path, m))
        elif path.name not in allowed:
            bad.stray_file(path)
    return out
