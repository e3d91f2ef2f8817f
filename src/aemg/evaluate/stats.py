"""Paired significance tests over subjects (scipy): Wilcoxon signed-rank and Friedman.

Each takes one score per subject and method, matched by subject. With few subjects (LOSO on 3-10)
the p-values are weak: the smallest two-sided exact Wilcoxon p-value with n subjects is 2 / 2**n
(0.25 at n = 3), so a large effect may still be "not significant".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TestResult:
    """A test's statistic and p-value over ``n`` subjects (NaN where undefined, with ``note`` saying why)."""

    statistic: float
    p_value: float
    n: int
    note: str = ""


def wilcoxon(reference: Sequence[float], other: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of paired scores (``scipy.stats.wilcoxon`` defaults).

    Pairs with a NaN on either side are dropped; all differences zero gives p = 1 (no evidence of a
    difference), fewer than one pair NaN.
    """
    from scipy.stats import wilcoxon as _wilcoxon

    a, b = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(len(a))
    if n < 1:
        return TestResult(math.nan, math.nan, n, "no paired subjects")
    if np.all(a == b):
        return TestResult(0.0, 1.0, n, "all differences zero")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _wilcoxon(a, b)
    return TestResult(float(r.statistic), float(r.pvalue), n)


def friedman(scores: Mapping[str, Sequence[float]]) -> TestResult:
    """Friedman test across >= 3 methods (``scipy.stats.friedmanchisquare``), subjects as blocks.

    Subjects with a NaN for any method are dropped; fewer than 3 methods or 2 subjects gives NaN.
    """
    from scipy.stats import friedmanchisquare

    if len(scores) < 3:
        return TestResult(math.nan, math.nan, 0, "needs at least 3 methods")
    m = np.array([np.asarray(v, dtype=np.float64) for v in scores.values()])  # (methods, subjects)
    m = m[:, np.all(np.isfinite(m), axis=0)]
    n = int(m.shape[1])
    if n < 2:
        return TestResult(math.nan, math.nan, n, "needs at least 2 subjects")
    if np.all(m == m[:1]):
        return TestResult(0.0, 1.0, n, "all methods equal on every subject")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = friedmanchisquare(*m)
    return TestResult(float(r.statistic), float(r.pvalue), n)
