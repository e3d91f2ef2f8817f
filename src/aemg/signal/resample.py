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
