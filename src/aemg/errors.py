"""Exceptions aemg raises for bad input, each naming the file and what was expected."""

from __future__ import annotations

from pathlib import Path


def dialect(where: str | Path, expected: str, found: str | None = None) -> str:
    """The one error form of aemg: ``<file or option>: expected ...; found ...``."""
    return f"{where}: expected {expected}" + (f"; {found}" if found else "")


class AemgError(Exception):
    """Base class of aemg's own errors (the CLI prints them as one line)."""


class DataFormatError(AemgError, ValueError):
    """A raw or corpus file is missing, truncated or malformed.

    The message always names the file and says what was expected, e.g.
    ``DataFormatError(path, "10 comma-separated columns", "found 9 in line 3")``.
    """

    def __init__(self, path: str | Path, expected: str, found: str | None = None):
        self.path = Path(path)
        self.expected = expected
        self.found = found
        super().__init__(dialect(self.path, expected, found))


class ImplausibleValueError(DataFormatError):
    """A number outside its documented plausible range (a sampling rate, a gap in a time column).

    Raised before any heavy work, e.g. ``manifest.csv row 3 (a.npy): expected fs in [50, 30000] Hz
    ...; found 1e+10``; ``path`` names the file (and row) or the option (``--fs``).
    """


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (``"1.5 MiB"``)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class DiskFullError(AemgError, OSError):
    """A folder has too little free space for a write (checked before writing, or ENOSPC while writing).

    ``DiskFullError(folder, needed_bytes, free_bytes)``: the message names the folder and the space needed.
    """

    def __init__(self, folder: str | Path, needed: int | None, free: int | None, what: str = ""):
        self.folder = Path(folder)
        self.needed = needed
        self.free = free
        need = f"{format_bytes(needed)} free" if needed else "free disk space"
        have = "no space left on the device" if free is None else f"{format_bytes(free)} free"
        target = f" to write {what}" if what else ""
        super().__init__(f"{self.folder}: expected {need}{target}; found {have}")

    def __str__(self) -> str:
        return str(self.args[0])


class NotWritableError(AemgError, OSError):
    """An output or corpus folder cannot be written (read-only file system, no permission)."""

    def __init__(self, folder: str | Path, found: str):
        self.folder = Path(folder)
        super().__init__(f"{self.folder}: expected a writable folder; found {found}")

    def __str__(self) -> str:
        return str(self.args[0])


class OptionError(AemgError, ValueError):
    """A command-line option (or config override) has a value aemg cannot use.

    The message names the option as the user wrote it, then what was expected, in the same
    ``<where>: expected ...; found ...`` form as :class:`DataFormatError`, e.g.
    ``OptionError("--set stage1.lr=abc", "a number", "found 'abc'")``.
    """

    def __init__(self, option: str, expected: str, found: str | None = None):
        self.option = option
        self.expected = expected
        self.found = found
        super().__init__(dialect(option, expected, found))


class TrainingDiverged(AemgError):
    """Pre-training met a non-finite loss, gradient or weight (a learning rate too high, typically).

    The message names the run directory, the stage and step, and what to do; the run directory keeps
    only what was written before (the last checkpoint is intact, no broken weights are saved).
    """

    def __init__(self, run_dir: str | Path, stage: int, step: int, found: str, lr: float, stage_lr: float,
                 last_checkpoint: tuple[int, int] | None):
        self.run_dir = Path(run_dir)
        self.stage, self.step, self.last_checkpoint = stage, step, last_checkpoint
        if last_checkpoint is None:
            kept = "no checkpoint was written, so the same --out can be used again"
        else:
            kept = (f"its last good checkpoint (stage {last_checkpoint[0]} step {last_checkpoint[1]}) is intact, "
                    "and --resume continues from it with the run's own config")
        super().__init__(
            f"{self.run_dir}: expected finite losses, gradients and weights; found {found} at stage {stage} step {step} "
            f"(learning rate {lr:g}): the run diverged. Lower stage{stage}.lr (now {stage_lr:g}; e.g. "
            f"--set stage{stage}.lr={stage_lr / 10:g}) and start again; {kept}")
