"""An LSL inlet source: a Lab Streaming Layer stream, checked against the model, resampled causally to its rate.

``for chunk in LSLSource("Myo EMG", fs=200.0, n_channels=8): decoder.process(chunk.data)``. The stream is
resolved by name (``resolve_byprop("name", NAME)``, within ``timeout`` seconds; none found is a
:class:`StreamError` naming the stream and the streams seen). Its channel count must equal the model's (a
:class:`StreamError` naming both counts otherwise) and its nominal rate must be regular; a rate other than the
model's corpus rate is resampled causally and with state by :class:`~aemg.signal.resample.StreamResampler`
(the corpus preparation's anti-aliasing FIR, applied causally: it delays the stream by
:attr:`LSLSource.delay_s`). The samples must already be in the corpus's units (a Myo's int8 counts for a Myo
corpus): nothing is rescaled.

**Dropped samples**: LSL stamps every sample; a step between consecutive timestamps (within a chunk or
across chunks) larger than ``gap_tolerance`` (1.5) sample periods of the nominal rate is a gap of
``round(step * fs) - 1`` missing samples, counted in :attr:`LSLSource.dropped` (gaps in
:attr:`LSLSource.gaps`, each logged as a warning with its stream time and recorded in
:attr:`LSLSource.gap_log`). The samples on either side are delivered as they are (nothing is invented), so
after a gap the stream time runs behind the device's clock by the missing samples. **Late chunks**: a chunk
whose newest sample was pulled more than ``late_s`` seconds after its timestamp (the inlet's clock-synced
LSL time) is counted in :attr:`LSLSource.late` (``max_lag_s``: the largest such lag); it is still delivered.

The stream ends when the outlet goes away (LSL's ``LostError``: the inlet does not try to recover), after
``duration_s`` seconds of received stream samples, after ``idle_timeout_s`` seconds without a sample, or
on Ctrl-C while the source waits for samples; the consumer then flushes its decoder as for any source.
pylsl (which bundles liblsl) is imported when a source is made, not with :mod:`aemg`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from aemg.errors import AemgError, dialect
from aemg.live.replay import Chunk, ResampledSource
from aemg.signal.resample import StreamResampler

log = logging.getLogger("aemg.live")


class StreamError(AemgError, ValueError):
    """An LSL stream that cannot be decoded: not found, or a layout other than the model's.

    ``StreamError(name, expected, found)``: ``LSL stream 'NAME': expected ...; found ...``.
    """

    def __init__(self, name: str, expected: str, found: str | None = None) -> None:
        self.name, self.expected, self.found = name, expected, found
        super().__init__(dialect(f"LSL stream {name!r}", expected, found))


def import_pylsl() -> Any:
    """The pylsl module, or an :class:`~aemg.errors.AemgError` saying how to get it."""
    try:
        import pylsl
    except (ImportError, RuntimeError, OSError) as exc:  # pragma: no cover - pylsl (and its liblsl) is a dependency
        raise AemgError(dialect("pylsl", "the pylsl package for LSL streams (pip install pylsl; its wheel "
                                         "bundles liblsl)", f"found {exc}")) from None
    return pylsl


@dataclass(frozen=True)
class Gap:
    """Samples missing before sample ``index`` (of the stream, at its own rate): ``missing`` of them."""

    index: int  # the stream sample (input rate, from 0) after the gap
    missing: int  # samples missing before it
    step_s: float  # the timestamp step that showed the gap (s)


class GapCounter:
    """Missing samples from a stream's timestamps (module docstring): ``update(timestamps)`` per chunk.

    ``fs``: the nominal rate (Hz); a step larger than ``tolerance`` periods is a gap of
    ``round(step * fs) - 1`` samples (at least 1). Steps within the tolerance (jitter) and backward steps
    count nothing.
    """

    def __init__(self, fs: float, tolerance: float = 1.5) -> None:
        if not fs > 0:
            raise ValueError(f"fs must be > 0 Hz, got {fs}")
        if not tolerance > 1:
            raise ValueError(f"tolerance must be > 1 sample period, got {tolerance}")
        self.fs, self.tolerance = float(fs), float(tolerance)
        self.seen = 0  # samples seen
        self.dropped = 0  # samples missing
        self.gaps: list[Gap] = []
        self._last: float | None = None

    def update(self, timestamps: np.ndarray) -> list[Gap]:
        """The gaps before and within this chunk (its timestamps, s, in order)."""
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if ts.size == 0:
            return []
        prev = np.concatenate([[ts[0] if self._last is None else self._last], ts[:-1]])
        step = ts - prev
        new = []
        for k in np.flatnonzero(step * self.fs > self.tolerance):
            missing = max(1, int(round(step[k] * self.fs)) - 1)
            new.append(Gap(self.seen + int(k), missing, float(step[k])))
        self.gaps += new
        self.dropped += sum(g.missing for g in new)
        self.seen += ts.size
        self._last = float(ts[-1])
        return new


def resolve_stream(name: str, *, timeout: float = 10.0) -> Any:
    """The ``pylsl.StreamInfo`` of the stream named ``name``, found within ``timeout`` seconds.

    None found: a :class:`StreamError` naming the stream and the streams that are visible (a short resolve
    of all streams). Several with that name: the first one found (a warning names their source ids).
    """
    pylsl = import_pylsl()
    found = pylsl.resolve_byprop("name", name, 1, float(timeout))
    if not found:
        seen = pylsl.resolve_streams(1.0)
        names = ", ".join(f"{s.name()!r} ({s.channel_count()} channels, {s.nominal_srate():g} Hz)"
                          for s in seen) or "no stream at all"
        raise StreamError(name, "a stream of that name on the network (LSL resolve by name)",
                          f"found none within {timeout:g} s; visible: {names}")
    if len(found) > 1:
        log.warning("LSL stream %r: %d streams of that name (source ids %s); using the first", name, len(found),
                    ", ".join(repr(s.source_id()) for s in found))
    return found[0]


def check_layout(name: str, channels: int, srate: float, *, n_channels: int, fs: float, where: str = "the model's") \
        -> None:
    """Refuse a stream whose channel count differs from ``n_channels`` or whose rate is irregular."""
    if int(channels) != int(n_channels):
        raise StreamError(name, f"{n_channels} channels ({where} layout)", f"found {channels} channels in the stream")
    if not srate > 0:
        raise StreamError(name, f"a regular nominal rate (resampled causally to {where} {fs:g} Hz)",
                          "found an irregular rate (nominal_srate 0)")


class LSLSource(ResampledSource):
    """Chunks of an LSL stream at the model's rate and channel count (module docstring).

    ``name``: the stream's name; ``fs``/``n_channels``: the model's corpus rate (Hz) and channels;
    ``timeout``: seconds to resolve the stream; ``chunk``: the most samples taken per pull;
    ``duration_s``/``idle_timeout_s``: stop after that much stream time / that long without a sample
    (None: never); ``late_s``: the lag (s) past which a chunk is late; ``gap_tolerance``: sample periods
    (of the stream's rate) past which a timestamp step is a gap; ``half_len``: the resampler's taps each side
    (:class:`~aemg.signal.resample.StreamResampler`; default resample_poly's); ``info``: a resolved
    ``pylsl.StreamInfo`` to use instead of resolving ``name``. The inlet is opened (and the stream's data
    subscribed) when the source is made, so samples pushed after that are not missed.
    """

    def __init__(self, name: str, *, fs: float, n_channels: int, timeout: float = 10.0, chunk: int = 256,
                 duration_s: float | None = None, idle_timeout_s: float | None = None, late_s: float = 0.25,
                 gap_tolerance: float = 1.5, half_len: int | None = None, info: Any = None) -> None:
        pylsl = import_pylsl()
        if int(chunk) < 1:
            raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
        self._pylsl = pylsl
        self.name = name
        info = info if info is not None else resolve_stream(name, timeout=timeout)
        self.fs_in = float(info.nominal_srate())
        check_layout(name, info.channel_count(), self.fs_in, n_channels=n_channels, fs=fs)
        if info.channel_format() == pylsl.cf_string:
            raise StreamError(name, "numeric samples", "found a string stream")
        self.n_channels = int(n_channels)
        self.source_id = info.source_id()
        self.resampler = StreamResampler(self.fs_in, fs, self.n_channels, half_len=half_len)
        self.chunk = int(chunk)
        self.duration_s, self.idle_timeout_s, self.late_s = duration_s, idle_timeout_s, float(late_s)
        self.gaps = GapCounter(self.fs_in, gap_tolerance)
        flags = pylsl.proc_clocksync | pylsl.proc_monotonize
        self.inlet = pylsl.StreamInlet(info, max_buflen=360, recover=False, processing_flags=flags)
        # the first clock offset takes a few probes (~0.5 s): get it before subscribing to the data, or the
        # first pull waits for it while samples pile up (late chunks at the start)
        try:
            self.inlet.time_correction(float(timeout))
        except pylsl.util.TimeoutError:
            log.warning("LSL stream %r: no clock offset within %g s; timestamps used as sent", name, timeout)
        self.inlet.open_stream(float(timeout))
        self.late = 0  # chunks pulled more than late_s after their newest timestamp
        self.delivered = 0  # chunks yielded
        self.received = 0  # stream samples pulled (input rate)
        self.max_lag_s = 0.0
        self.ended = ""  # why the stream ended
        self._out = 0  # output samples yielded

    @property
    def dropped(self) -> int:
        """Stream samples missing (timestamp gaps), at the stream's rate."""
        return self.gaps.dropped

    @property
    def gap_log(self) -> list[Gap]:
        return self.gaps.gaps

    def _pull(self, wait: float) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``chunk`` samples ``(n, C)``: wait up to ``wait`` s for the first, then take what is there."""
        first, t = self.inlet.pull_sample(timeout=wait)
        if first is None:
            return np.zeros((0, self.n_channels)), np.zeros(0)
        rest, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=self.chunk - 1) if self.chunk > 1 else ([], [])
        data = np.asarray([first, *rest], dtype=np.float64).reshape(-1, self.n_channels)
        return data, np.asarray([t, *ts], dtype=np.float64)

    def __iter__(self) -> Iterator[Chunk]:
        pylsl = self._pylsl
        limit = None if self.duration_s is None else int(round(self.duration_s * self.fs_in))
        idle_since = time.monotonic()
        try:
            while limit is None or self.received < limit:
                wait = 0.2 if self.idle_timeout_s is None else min(0.2, max(self.idle_timeout_s, 1e-3))
                try:
                    data, ts = self._pull(wait)
                except pylsl.util.LostError:
                    self.ended = "the stream was lost (its outlet went away)"
                    break
                if not len(ts):
                    if self.idle_timeout_s is not None and time.monotonic() - idle_since >= self.idle_timeout_s:
                        self.ended = f"no sample for {self.idle_timeout_s:g} s"
                        break
                    continue
                idle_since = time.monotonic()
                if limit is not None and self.received + len(ts) > limit:
                    data, ts = data[: limit - self.received], ts[: limit - self.received]
                lag = pylsl.local_clock() - float(ts[-1])
                late = lag > self.late_s
                self.late += int(late)
                self.max_lag_s = max(self.max_lag_s, lag)
                for g in self.gaps.update(ts):
                    log.warning("LSL stream %r: %d samples missing before stream sample %d (%.3f s; a %.1f ms "
                                "timestamp step at %g Hz)", self.name, g.missing, g.index, g.index / self.fs_in,
                                g.step_s * 1000, self.fs_in)
                self.received += len(ts)
                out = self.resampler.process(data.T)
                if out.shape[1]:
                    self.delivered += 1
                    yield Chunk(out, self._out, self._out / self.fs, late)
                    self._out += out.shape[1]
            else:
                self.ended = f"{self.duration_s:g} s of stream received"
        except KeyboardInterrupt:
            self.ended = "interrupted (Ctrl-C)"
        finally:
            self.inlet.close_stream()

    def summary(self) -> str:
        """One line for the end of a run: samples, chunks, late chunks, dropped samples, resampling."""
        rs = (f"resampled {self.fs_in:g} -> {self.fs:g} Hz (causal FIR, {self.resampler.up}/{self.resampler.down}, "
              f"delay {self.delay_s * 1000:.0f} ms)" if self.resampled else f"at {self.fs:g} Hz")
        return (f"LSL stream {self.name!r}: {self.received} samples {rs}; {self.delivered} chunks, {self.late} late "
                f"(max lag {self.max_lag_s * 1000:.0f} ms); {self.dropped} samples dropped in {len(self.gap_log)} "
                f"gaps; ended: {self.ended or 'by the consumer'}")


__all__ = ["Gap", "GapCounter", "LSLSource", "StreamError", "check_layout", "resolve_stream"]
