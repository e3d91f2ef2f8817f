"""Weighting a new user's calibration repetitions against the other subjects' data in a low-label fold.

At k >= 1 the held-out subject's first k repetitions per class join the training subjects' trials, where
they are a few percent of the data (Cote-Allard k = 1: 7 of ~250 trials). Both rules give them a fixed
``share`` instead: :func:`epoch_trials` by listing, without changing the cost of a fit (fine-tuning's epochs,
the baselines' windows), :func:`calibration_weights` by sample weight (the probe's logistic regression), and
:func:`weighted_listing` by repetition, every other sample kept (the probe's shrinkage LDA, which takes no weights).
"""

from __future__ import annotations

import numpy as np


def check_share(share: float) -> None:
    """A ValueError unless ``share`` (``calib_share``) is a fraction in [0, 1): at 1 no other trial would remain."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"calib_share: expected a fraction in [0, 1); found {share!r}")


def calibration_weights(calib: np.ndarray, share: float) -> np.ndarray:
    """Sample weights (mean 1) that give the calibration samples (``calib``, a bool mask) ``share`` of the total
    weight, split evenly among them, the others the rest; all ones when ``share`` is 0 or either side is empty."""
    n_cal, n = int(calib.sum()), len(calib)
    if share <= 0 or not n_cal or n_cal == n:
        return np.ones(n)
    return np.where(calib, share * n / n_cal, (1.0 - share) * n / (n - n_cal))


def epoch_trials(calib: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """One epoch's training trials (indices, in no order) when the calibration trials (``calib``, a bool mask)
    are to make up ``share`` of them: as many trials as there are, ``max(n_calib, round(share n))`` of them the
    calibration trials, each repeated evenly, the rest drawn without replacement from the other trials, so an
    epoch costs what it did without (``share`` 0, or either side empty: every trial once)."""
    n = len(calib)
    cal, other = np.flatnonzero(calib), np.flatnonzero(~calib)
    if share <= 0 or not len(cal) or not len(other):
        return np.arange(n)
    n_cal = min(max(len(cal), int(round(share * n))), n - 1)
    reps = np.resize(rng.permutation(cal), n_cal)  # every calibration trial floor or ceil(n_cal / n_calib) times
    return np.concatenate([reps, rng.choice(other, n - n_cal, replace=False)])


def weighted_listing(calib: np.ndarray, share: float) -> np.ndarray:
    """Sample indices for a fit without sample weights (shrinkage LDA) in which the calibration samples (``calib``,
    a bool mask) make up ``share`` of the list: every other sample once, the calibration samples repeated evenly
    (in order) to ``round(share / (1 - share) * n_other)`` entries, at least once each; the weights of
    :func:`calibration_weights` as repetitions. ``share`` 0 or either side empty: every sample once."""
    cal, other = np.flatnonzero(calib), np.flatnonzero(~calib)
    if share <= 0 or not len(cal) or not len(other):
        return np.arange(len(calib))
    n_cal = max(len(cal), int(round(share / (1.0 - share) * len(other))))
    return np.concatenate([other, np.resize(cal, n_cal)])
