"""Evaluation: folds (LOSO, low-label, within-subject, dataset splits), classic baselines, scores.

Reads a prepared :class:`aemg.corpus.Corpus` only. ``aemg.evaluate.folds`` and ``.features`` need
numpy and pandas; ``.baselines`` and ``.metrics`` import scikit-learn when a classifier or score
is built. The method interface for encoder methods is :class:`aemg.evaluate.method.Method`.
See docs/evaluate.md.
"""

from aemg.evaluate.folds import Fold, calibration_split, loso_folds, split_folds, within_folds
from aemg.evaluate.method import Method, Prediction

__all__ = ["Fold", "Method", "Prediction", "calibration_split", "loso_folds", "split_folds", "within_folds"]
