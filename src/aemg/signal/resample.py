"""Anti-aliased polyphase resampling of a :class:`~aemg.recording.Recording` to the corpus rate.

Why 200 Hz by default: it is the lowest common rate of the Myo-based datasets (Myo armbands stream
at 200 Hz). Resampling every device *down* to it gives all recordings the same 0-100 Hz band. A
corpus rate above a device's own rate would leave an empty band above that device's Nyquist
frequency, and a model can use that empty band to recognise the device instead of the gesture.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from aemg.plausible import check_source_fs
from aemg.recording import Recording

DEFAULT_FS = 200.0
"""Default corpus rate in Hz: the lowest common rate of the Myo-based datasets."""


def rational_ratio(fs_from: float, fs_to: float, max_denominator: int = 1000) -> tuple[int, int]:
    """``(up, down)`` with ``fs_to / fs_from ~= up / down``, from ``Fraction.limit_denominator``.

    ``max_denominator`` bounds ``down``; resample_poly's FIR filter has about ``20 * max(up, down)``
    taps, so a small bound keeps it cheap. Common rates (200, 1000, 1926, 2000, 2048 Hz) give
    exact ratios. Both rates must lie in :data:`aemg.plausible.SOURCE_FS_RANGE` (50-30000 Hz),
    checked before any work (an :class:`~aemg.errors.ImplausibleValueError` otherwise).
    """
    check_source_fs(fs_from, "resample", "the input rate")
    check_source_fs(fs_to, "resample", "the output rate")
    frac = Fraction(fs_to / fs_from).limit_denominator(max_denominator)
    if frac.numerator == 0:
        raise ValueError(f"cannot express {fs_to} / {fs_from} Hz with a denominator <= {max_denominator}")
    return frac.numerator, frac.denominator


def nearest_index(n_in: int, n_out: int, up: int, down: int) -> np.ndarray:
    """For each output sample ``j`` (time ``j * down / up`` input samples), the nearest input index.

    Rounds half up with integer arithmetic (exact for any length), clipped to ``[0, n_in - 1]``.
    """
    j = np.arange(n_out, dtype=np.int64)
    idx = (2 * j * down + up) // (2 * up)
    return np.minimum(idx, max(n_in - 1, 0))


def resample_array(x: np.ndarray, fs_from: float, fs_to: float, *, max_denominator: int = 1000) -> np.ndarray:
    """Resample ``x (channels, samples)`` from ``fs_from`` to ``fs_to`` Hz, anti-aliased (float64 out).

    :func:`scipy.signal.resample_poly` with the factor of :func:`rational_ratio`, each channel
    padded with its own mean (``padtype="mean"``) so a DC offset makes no edge transient.
    """
    up, down = rational_ratio(fs_from, fs_to, max_denominator)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0))
    return resample_poly(x, up, down, axis=1, padtype="mean")


def resample(rec: Recording, fs: float = DEFAULT_FS, *, max_denominator: int = 1000) -> Recording:
    """Resample ``rec`` to ``fs`` Hz with :func:`scipy.signal.resample_poly` (anti-aliased).

    The rational factor ``up / down`` comes from :func:`rational_ratio`. The polyphase FIR filter
    (Kaiser window, cut-off at the lower of the two Nyquist frequencies) attenuates content above
    the new Nyquist frequency instead of folding it back. Each channel is padded with its own mean
    beyond the edges (``padtype="mean"``), so a DC offset does not make an edge transient.
    This is an offline, zero-phase operation (the FIR is centred): it is meant for corpus
    preparation, not for a live stream.

    Per-sample arrays (``labels``, ``repetition``, every ``tracks`` entry) take the value of the
    nearest original sample and keep their dtype (ints stay ints). ``attrs["fs_original"]`` keeps
    the device's own rate (set from ``rec.fs`` when missing, never overwritten). The new ``fs`` is
    the achieved rate ``rec.fs * up / down`` (equal to ``fs`` whenever the ratio is exact). A step
    ``"resample(<old> Hz -> <new> Hz, up=U, down=D)"`` is appended to ``processing``. When the
    rate already matches, the recording is returned with only ``fs_original`` filled in. Both rates
    must lie in :data:`aemg.plausible.SOURCE_FS_RANGE` (refused before any work, naming the file).
    """
    where = rec.source_file or rec.recording_id
    check_source_fs(rec.fs, where, "the recording's rate")
    check_source_fs(fs, where, "the rate to resample to")
    attrs = dict(rec.attrs)
    attrs.setdefault("fs_original", float(rec.fs))
    up, down = rational_ratio(rec.fs, fs, max_denominator)
    if up == down:
        return rec if attrs == rec.attrs else rec.replace(attrs=attrs)
    n_in = rec.n_samples
    y = resample_array(rec.signal, rec.fs, fs, max_denominator=max_denominator)
    n_out = y.shape[1]
    idx = nearest_index(n_in, n_out, up, down)

    def _map(arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None:
            return None
        return np.ascontiguousarray(arr[idx]) if n_in else arr[:0].copy()

    new_fs = rec.fs * up / down
    if abs(new_fs - fs) <= 1e-9 * fs:
        new_fs = float(fs)
    step = f"resample({rec.fs:g} Hz -> {new_fs:g} Hz, up={up}, down={down})"
    return rec.with_step(step, signal=np.ascontiguousarray(y, dtype=np.float32), fs=float(new_fs),
                         labels=_map(rec.labels), repetition=_map(rec.repetition),
                         tracks={k: _map(v) for k, v in rec.tracks.items()}, attrs=attrs)


class StreamResampler:
    """Causal polyphase resampling of a stream, with state: ``process(chunk)`` -> the output samples it completes.

    The FIR filter is :func:`scipy.signal.resample_poly`'s own (``firwin(2 * half_len + 1, 1 / max(up, down),
    window=("kaiser", 5.0))`` times ``up``, ``half_len = 10 * max(up, down)``), the one the corpora were prepared
    with, but applied causally: output sample ``j`` (time ``j / fs_out``) uses input samples up to time
    ``j / fs_out`` only, so the output is the offline resampling delayed by :attr:`delay` output samples
    (``delay_s`` seconds; the filter is front-padded with zeros so that this delay is a whole number of output
    samples). ``up / down`` is :func:`rational_ratio` of the two rates (the same ``max_denominator``).

    **Chunk-size independent**: after ``n`` input samples in total, exactly ``ceil(n * up / down)`` output
    samples have been returned, each computed by the same sequence of float64 operations whatever the
    chunking (chunks of 1, 7, 64 samples give the same samples as the whole array, bit for bit). The filter's
    history starts filled with the first sample (as if the stream had held that value forever), so a DC
    offset makes no start-up transient. When the two rates are equal the chunks pass through unchanged
    (float64), with no delay.
    """

    BLOCK = 2048  # output samples computed at once (memory bound only; results do not depend on it)

    def __init__(self, fs_in: float, fs_out: float, n_channels: int, *, half_len: int | None = None,
                 max_denominator: int = 1000) -> None:
        from scipy.signal import firwin

        up, down = rational_ratio(fs_in, fs_out, max_denominator)
        if int(n_channels) < 1:
            raise ValueError(f"n_channels must be at least 1, got {n_channels}")
        self.fs_in, self.up, self.down = float(fs_in), int(up), int(down)
        self.fs_out = self.fs_in * up / down
        if abs(self.fs_out - fs_out) <= 1e-9 * fs_out:
            self.fs_out = float(fs_out)
        self.n_channels = int(n_channels)
        self.identity = up == down
        max_rate = max(up, down)
        self.half_len = int(half_len) if half_len is not None else 10 * max_rate
        if self.half_len < 1:
            raise ValueError(f"half_len must be at least 1 (taps each side), got {half_len}")
        if self.identity:
            self.taps, self.delay, self._phases = np.ones(1), 0, np.ones((1, 1))
        else:
            h = firwin(2 * self.half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
            pre = (-self.half_len) % down  # the group delay (half_len + pre up-samples) is a whole output sample
            self.taps = np.concatenate([np.zeros(pre), h])
            self.delay = (self.half_len + pre) // down
            k = -(-len(self.taps) // up)
            g = np.concatenate([self.taps, np.zeros(k * up - len(self.taps))])
            self._phases = g.reshape(k, up).T.copy()  # (up, k): phase p, tap i -> taps[p + up * i]
        self.n_in = 0  # input samples consumed
        self.n_out = 0  # output samples returned
        self._hist: np.ndarray | None = None  # (C, k - 1) last input samples

    @property
    def delay_s(self) -> float:
        """The filter's delay (s): an input event at time t appears in the output at t + delay_s."""
        return self.delay / self.fs_out

    def process(self, x: np.ndarray) -> np.ndarray:
        """The next ``(C, n)`` input chunk (time order); returns ``(C, m)`` float64 output samples (``m`` >= 0)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(f"chunk must have shape ({self.n_channels}, n), got {x.shape}")
        n = x.shape[1]
        if self.identity or n == 0:
            self.n_in += n
            self.n_out += n if self.identity else 0
            return x.copy() if self.identity else np.zeros((self.n_channels, 0))
        up, down = self.up, self.down
        k = self._phases.shape[1]
        if self._hist is None:
            self._hist = np.repeat(x[:, :1], k - 1, axis=1)
        xx = np.concatenate([self._hist, x], axis=1)  # xx[:, q] is input sample n_in - (k - 1) + q
        total = self.n_in + n
        j_end = -(-total * up // down)
        j = np.arange(self.n_out, j_end, dtype=np.int64)
        m = j * down
        newest = m // up  # the newest input sample output j uses
        phase = m - newest * up
        base = newest - (self.n_in - (k - 1))
        out = np.empty((self.n_channels, len(j)))
        back = np.arange(k)[None, :]
        for a in range(0, len(j), self.BLOCK):  # bounded memory: (C, BLOCK, k) products at a time
            taps = base[a:a + self.BLOCK, None] - back  # input samples of each output, newest first
            # each output's products are summed along a contiguous row of k values: the same operations
            # whatever the chunking, so the same float64 result
            out[:, a:a + self.BLOCK] = np.add.reduce(xx[:, taps] * self._phases[phase[a:a + self.BLOCK]], axis=-1)
        self._hist = xx[:, xx.shape[1] - (k - 1):]
        self.n_in, self.n_out = total, int(j_end)
        return out

    def state_dict(self) -> dict:
        """The resampler's state (counters and filter history), for :meth:`load_state_dict`."""
        return {"n_in": self.n_in, "n_out": self.n_out, "hist": None if self._hist is None else self._hist.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.n_in, self.n_out = int(state["n_in"]), int(state["n_out"])
        self._hist = None if state["hist"] is None else np.asarray(state["hist"], np.float64).copy()
