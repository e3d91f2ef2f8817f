"""The interface every evaluated method implements, and what it returns.

A method is built fresh for every fold (``METHODS[name]()``), fitted once on the fold's training
:class:`~aemg.evaluate.data.TrialSet` and asked for one class per test trial, so nothing learnt
in one fold reaches the next. Encoder methods (``aemg-probe``, ``aemg-finetune``, ``scratch``) will
implement the same two calls, tokenizing ``TrialSet.trials`` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from aemg.evaluate.data import TrialSet


@dataclass(frozen=True, eq=False)
class Prediction:
    """One class index per test trial (in the TrialSet's order), and, for window methods, per window.

    ``window_true`` / ``window_pred`` are None for methods that classify whole trials.
    """

    y_pred: np.ndarray  # (n_trials,) int64, index into TrialSet.classes
    window_true: np.ndarray | None = None  # (n_windows,) int64
    window_pred: np.ndarray | None = None  # (n_windows,) int64


class Method(Protocol):
    """``fit(train)`` then ``predict(test)``; ``name`` is the fixed method name used in every output."""

    name: str

    def fit(self, train: TrialSet) -> None: ...

    def predict(self, test: TrialSet) -> Prediction: ...
