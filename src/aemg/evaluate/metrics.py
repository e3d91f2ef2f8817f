"""Classification scores from scikit-learn: accuracy, balanced accuracy, macro F1."""

from __future__ import annotations

import warnings

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The three scores of one fold; balanced accuracy and macro F1 over the classes present in ``y_true``.

    (A class that is predicted but never tested does not enter the macro average; with no test
    sample every score is NaN.)
    """
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return {m: float("nan") for m in METRICS}
    labels = np.unique(y_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bal = recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        f1 = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "balanced_accuracy": float(bal), "macro_f1": float(f1)}
