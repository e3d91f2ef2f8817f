"""A raw-file source: a ``.npy`` or ``.csv`` array of samples replayed in chunks, resampled causally to the model.

``for chunk in FileSource("s.npy", fs=1000.0, model_fs=200.0, n_channels=8, chunk=64, speed=0): ...``.
The file holds one row per sample and one column per channel, ``(n_samples, n_channels)`` (the LSL and CSV
convention; a ``.npy`` of shape ``(n_channels, n_samples)`` is refused with a hint), in the corpus's units
(a Myo's int8 counts for a Myo corpus: nothing is rescaled), at the rate ``fs`` (Hz) the caller states. A
``.csv`` has no header: comma-separated numbers, one row per sample. A rate other than the model's is
resampled causally, chunk by chunk, by :class:`~aemg.signal.resample.StreamResampler`, exactly as an LSL
stream would be. Pacing is :class:`~aemg.live.replay.ReplaySource`'s: ``speed`` 1 = real time (of the
file's samples), 0 = as fast as possible; a chunk released more than one chunk period late is counted in
:attr:`FileSource.late` and still delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from aemg.errors import DataFormatError
from aemg.live.replay import Chunk, Pacer, ResampledSource
from aemg.signal.resample import StreamResampler

SUFFIXES = (".npy", ".csv")


def is_raw_file(spec: str | Path) -> bool:
    """Whether ``spec`` names an existing ``.npy``/``.csv`` file (else it is read as ``CORPUS:RECORDING_ID``)."""
    p = Path(spec)
    return p.suffix.lower() in SUFFIXES and p.is_file()


def load_samples(path: str | Path, n_channels: int) -> np.ndarray:
    """The ``(n_samples, n_channels)`` array of a ``.npy`` or header-less ``.csv`` file, float64.

    Refused (:class:`~aemg.errors.DataFormatError`, naming the file): another suffix, an unreadable or
    non-numeric file, not 2-D, a column count other than ``n_channels`` (both counts named; a transposed
    ``.npy`` is pointed out), no samples, non-finite values.
    """
    p = Path(path)
    want = f"samples as (n_samples, n_channels) with {n_channels} channels (the model's), one row per sample"
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFormatError(p, "a .npy or .csv file of " + want, f"found suffix {p.suffix!r}")
    try:
        if suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        else:
            x = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        raise DataFormatError(p, want + (" (comma-separated numbers, no header)" if suffix == ".csv" else ""),
                              f"found {' '.join(str(exc).split())[:200]}") from None
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataFormatError(p, want, f"found an array of shape {x.shape} and dtype {x.dtype}")
    if x.shape[1] != n_channels:
        hint = " (transposed? rows must be samples)" if x.shape[0] == n_channels else ""
        raise DataFormatError(p, want, f"found {x.shape[1]} channels (columns), shape {x.shape}{hint}")
    if x.shape[0] == 0:
        raise DataFormatError(p, want, "found no samples")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise DataFormatError(p, want + ", all finite", f"found {int((~np.isfinite(x)).sum())} non-finite values")
    return x


class FileSource(ResampledSource):
    """Chunks of a raw sample file (module docstring), at the model's rate ``model_fs``.

    ``fs``: the file's rate (Hz); ``chunk``: file samples per chunk (>= 1); ``speed``: 1 = real time,
    0 = as fast as possible; ``half_len``: the resampler's taps each side (default resample_poly's).
    ``clock``/``sleep`` may be replaced (tests).
    """

    def __init__(self, path: str | Path, *, fs: float, model_fs: float, n_channels: int, chunk: int = 64,
                 speed: float = 1.0, half_len: int | None = None, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if int(chunk) < 1:
            raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
        if not float(speed) >= 0:
            raise ValueError(f"speed must be >= 0 (0: as fast as possible), got {speed}")
        self.path = Path(path)
        self.samples = load_samples(self.path, int(n_channels)).T  # (C, n) at the file's rate
        self.fs_in = float(fs)
        self.n_channels = int(n_channels)
        self.resampler = StreamResampler(self.fs_in, model_fs, self.n_channels, half_len=half_len)
        self.chunk, self.speed = int(chunk), float(speed)
        self.pacer = Pacer(self.fs_in, self.chunk, self.speed, clock, sleep)  # paced at the file's rate
        self.delivered = 0
        self.dropped = 0  # a file has no gaps (kept for a uniform summary)

    @property
    def late(self) -> int:
        """Chunks released late (:class:`~aemg.live.replay.Pacer`)."""
        return self.pacer.late

    @property
    def max_lag_s(self) -> float:
        return self.pacer.max_lag_s


    @property
    def n_samples(self) -> int:
        """Samples of the file (at its own rate)."""
        return int(self.samples.shape[1])

    def __iter__(self) -> Iterator[Chunk]:
        n = self.n_samples
        self.pacer.start()
        out = 0
        for a in range(0, n, self.chunk):
            b = min(a + self.chunk, n)
            late = self.pacer.wait(b)
            y = self.resampler.process(self.samples[:, a:b])
            if y.shape[1]:
                self.delivered += 1
                yield Chunk(y, out, out / self.fs, late)
                out += y.shape[1]

    def summary(self) -> str:
        rs = (f"resampled {self.fs_in:g} -> {self.fs:g} Hz (causal FIR, {self.resampler.up}/{self.resampler.down}, "
              f"delay {self.delay_s * 1000:.0f} ms)" if self.resampled else f"at {self.fs:g} Hz")
        return (f"{self.path}: {self.n_samples} samples {rs}; {self.delivered} chunks, {self.late} late "
                f"(max lag {self.max_lag_s * 1000:.0f} ms)")


__all__ = ["FileSource", "is_raw_file", "load_samples"]
