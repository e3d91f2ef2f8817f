"""A replay source: one corpus recording delivered in chunks, at real-time pace or as fast as possible.

``for chunk in ReplaySource(corpus, recording_id, chunk=64, speed=1): decoder.process(chunk.data)``.
The samples are the corpus's stored (unscaled) signal at the corpus rate, the units
:class:`~aemg.live.decoder.LiveDecoder` takes. With ``speed > 0`` chunk ``i`` is released when the
stream clock (``speed`` x wall time since the first chunk) reaches its last sample; a chunk asked
for more than one chunk period after that is **late**: it is still delivered (never skipped) and
counted in :attr:`ReplaySource.late`. ``speed=0`` delivers as fast as the consumer takes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aemg.signal.resample import StreamResampler


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source: ``data`` ``(C, n)``, its first sample's index and stream time (s)."""

    data: np.ndarray
    start: int
    t_s: float
    late: bool  # released more than one chunk period after its due time


class Pacer:
    """Releases chunks at ``speed`` x real time (0: as fast as possible): :meth:`wait` sleeps until the stream
    clock (``speed`` x wall time since :meth:`start`) reaches a chunk's last sample; a chunk asked for more than
    one chunk period after that is **late**: counted in :attr:`late` (and :attr:`max_lag_s`), never skipped."""

    def __init__(self, fs: float, chunk: int, speed: float, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.fs, self.speed = float(fs), float(speed)
        self.period = int(chunk) / self.fs / self.speed if self.speed else 0.0  # one chunk, wall seconds
        self._clock, self._sleep = clock, sleep
        self.t0 = 0.0
        self.late = 0  # chunks released late
        self.max_lag_s = 0.0  # the most a chunk was released after its due time (wall seconds)

    def start(self) -> None:
        self.t0 = self._clock()

    def wait(self, end: int) -> bool:
        """Wait until sample ``end`` (exclusive, from the stream's start) is due; whether that chunk is late."""
        if not self.speed:
            return False
        due = self.t0 + end / self.fs / self.speed
        now = self._clock()
        if now < due:
            self._sleep(due - now)
            return False
        lag = now - due
        self.max_lag_s = max(self.max_lag_s, lag)
        late = lag > self.period
        self.late += int(late)
        return late


class ResampledSource:
    """What a source that resamples its input to the model's rate (``self.resampler``, a
    :class:`~aemg.signal.resample.StreamResampler`) reports about it: the LSL and raw-file sources."""

    resampler: StreamResampler

    @property
    def fs(self) -> float:
        """The rate of the chunks (Hz): the model's."""
        return self.resampler.fs_out

    @property
    def resampled(self) -> bool:
        return not self.resampler.identity

    @property
    def delay_s(self) -> float:
        """The resampler's delay (s; 0 when the input is at the model's rate)."""
        return self.resampler.delay_s


class ReplaySource:
    """Chunks of one recording of a corpus (folder or :class:`~aemg.corpus.Corpus`), module docstring.

    ``chunk``: samples per chunk (>= 1); ``speed``: 1 = real time, 2 = twice as fast, 0 = as fast as
    possible. ``clock``/``sleep`` may be replaced (tests).
    """

    def __init__(self, corpus: str | Path | object, recording_id: str, *, chunk: int = 64, speed: float = 1.0,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> None:
        from aemg.corpus import Corpus

        if int(chunk) < 1:
            raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
        if not float(speed) >= 0:
            raise ValueError(f"speed must be >= 0 (0: as fast as possible), got {speed}")
        c = corpus if isinstance(corpus, Corpus) else Corpus(Path(corpus))
        known = set(c.recordings["recording_id"].astype(str))
        if recording_id not in known:
            raise KeyError(f"{c.path}: expected a recording id of the corpus (aemg info {c.path}); "
                           f"found no recording {recording_id!r}")
        self.corpus = c
        self.recording = c.load(recording_id, scaled=False)
        self.chunk, self.speed = int(chunk), float(speed)
        self.pacer = Pacer(self.fs, self.chunk, self.speed, clock, sleep)
        self.delivered = 0  # chunks released

    @property
    def late(self) -> int:
        """Chunks released late (:class:`Pacer`)."""
        return self.pacer.late

    @property
    def max_lag_s(self) -> float:
        """The most a chunk was released after its due time (wall seconds)."""
        return self.pacer.max_lag_s

    @property
    def fs(self) -> float:
        return float(self.recording.fs)

    @property
    def n_channels(self) -> int:
        return int(self.recording.n_channels)

    def __iter__(self) -> Iterator[Chunk]:
        sig = self.recording.signal
        fs, n = self.fs, sig.shape[1]
        self.pacer.start()
        for a in range(0, n, self.chunk):
            b = min(a + self.chunk, n)
            late = self.pacer.wait(b)
            self.delivered += 1
            yield Chunk(sig[:, a:b], a, a / fs, late)


__all__ = ["Chunk", "Pacer", "ReplaySource", "ResampledSource"]
