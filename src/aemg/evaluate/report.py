"""The results of one ``aemg evaluate``: ``results.json`` (every fold), ``results.md`` (a paper's table), the summary.

Results are grouped by a *key* per fold: LOSO the calibration repetitions per class k (``"0"``,
``"1"``, ...), within-subject ``"within"``, a dataset split the test session (``"Test0"``,
``"day2"``, ...). Means, standard deviations and tests are over the held-out subjects of one key.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aemg.evaluate.folds import Fold
from aemg.evaluate.metrics import METRICS
from aemg.evaluate.run import FoldResult
from aemg.evaluate.stats import TestResult, friedman, wilcoxon

TEST_METRIC = "accuracy"  # the score the Wilcoxon and Friedman tests compare


def fold_key(fold: Fold) -> str:
    """The result key of a fold: k for LOSO, ``"within"``, or the split's test session."""
    if fold.protocol == "loso":
        return str(fold.k)
    if fold.protocol == "split":
        return "+".join(fold.test_sessions)
    return fold.protocol


def file_hash(path: Path) -> str | None:
    """sha256 of a file's bytes (None when it is not there)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _clean(v: Any) -> Any:
    """NaN -> None, so the JSON is strict."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class Evaluation:
    """Everything one evaluation produced, and the facts that define it."""

    dataset: str
    protocol: str
    scale: str
    methods: tuple[str, ...]
    classes: tuple[str, ...]
    folds: list[Fold]
    results: list[FoldResult]
    corpus: dict[str, Any]  # {"path", "hash"}
    run: dict[str, Any] | None  # {"path", "hash"} or None

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(fold_key(f) for f in self.folds))

    @property
    def subjects(self) -> list[str]:
        return list(dict.fromkeys(s for f in self.folds for s in f.test_subjects))

    def _fold(self) -> dict[str, Fold]:
        return {f.name: f for f in self.folds}

    def per_subject(self, method: str, key: str, metric: str = TEST_METRIC) -> list[float]:
        """One score per held-out subject (in :attr:`subjects` order; NaN where a subject has no fold)."""
        folds = self._fold()
        got: dict[str, float] = {}
        for r in self.results:
            f = folds[r.fold]
            if r.method == method and fold_key(f) == key:
                got["+".join(f.test_subjects)] = float(getattr(r, metric))
        return [got.get(s, math.nan) for s in self.subjects]

    def means(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{method: {key: {metric: mean over subjects}}}`` (NaN-free: None where undefined)."""
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for m in self.methods:
            for key in self.keys:
                row = {}
                for metric in METRICS:
                    v = np.array(self.per_subject(m, key, metric))
                    row[metric] = _clean(float(np.nanmean(v))) if np.isfinite(v).any() else None
                out.setdefault(m, {})[key] = row
        return out

    def stats(self) -> dict[str, dict[str, float | None]]:
        """``{method: {key: std over subjects of accuracy}}``, also n."""
        out: dict[str, dict[str, float | None]] = {}
        for m in self.methods:
            for key in self.keys:
                v = np.array(self.per_subject(m, key))
                out.setdefault(m, {})[key] = _clean(float(np.nanstd(v))) if np.isfinite(v).any() else None
        return out

    def tests(self) -> dict[str, dict[str, Any]]:
        """Per key: Wilcoxon of the reference (the first method) against each other, Friedman across all."""
        ref = self.methods[0]
        out: dict[str, dict[str, Any]] = {}
        for key in self.keys:
            per = {m: self.per_subject(m, key) for m in self.methods}
            w = {m: _test_dict(wilcoxon(per[ref], per[m])) for m in self.methods[1:]}
            f = _test_dict(friedman(per)) if len(self.methods) >= 3 else None
            out[key] = {"metric": TEST_METRIC, "reference": ref, "wilcoxon": w, "friedman": f}
        return out

    def confusion(self, method: str, key: str) -> np.ndarray:
        """Summed confusion matrix (rows true, columns predicted; class order :attr:`classes`) of one key."""
        folds = self._fold()
        n = len(self.classes)
        cm = np.zeros((n, n), dtype=np.int64)
        for r in self.results:
            if r.method == method and fold_key(folds[r.fold]) == key:
                np.add.at(cm, (np.asarray(r.y_true, dtype=np.int64), np.asarray(r.y_pred, dtype=np.int64)), 1)
        return cm

    # ------------------------------------------------------------------ outputs
    def summary(self) -> dict[str, Any]:
        """The one object ``aemg evaluate --json`` prints."""
        return {"dataset": self.dataset, "protocol": self.protocol, "n_subjects": len(self.subjects),
                "scale": self.scale, "methods": self.means()}

    def to_json(self) -> dict[str, Any]:
        """``results.json``: the facts, every fold's scores and predictions, the means and the tests."""
        folds = self._fold()
        nested: dict[str, dict[str, dict[str, Any]]] = {}
        rows = []
        for r in self.results:
            f = folds[r.fold]
            key = fold_key(f)
            row = {"method": r.method, "fold": r.fold, "key": key, "k": r.k,
                   "test_subjects": list(f.test_subjects), "train_subjects": list(f.train_subjects),
                   "train_sessions": list(f.train_sessions), "test_sessions": list(f.test_sessions),
                   "condition": f.condition, "scale": r.scale, "n_train": r.n_train, "n_test": r.n_test,
                   **{m: _clean(getattr(r, m)) for m in METRICS},
                   "window_accuracy": _clean(r.window_accuracy), "wall_s": r.wall_s,
                   "test_trials": list(r.test_trials), "y_true": list(r.y_true), "y_pred": list(r.y_pred)}
            rows.append(row)
            nested.setdefault(r.method, {}).setdefault("+".join(f.test_subjects), {})[key] = {
                **{m: _clean(getattr(r, m)) for m in METRICS}, "window_accuracy": _clean(r.window_accuracy),
                "train_subjects": list(f.train_subjects), "test_subjects": list(f.test_subjects),
                "condition": f.condition}
        return {"dataset": self.dataset, "protocol": self.protocol, "scale": self.scale,
                "corpus": self.corpus, "run": self.run, "methods": list(self.methods), "keys": self.keys,
                "classes": list(self.classes), "subjects": self.subjects, "n_subjects": len(self.subjects),
                "summary": self.means(), "accuracy_std": self.stats(), "tests": self.tests(),
                "results": nested, "folds": rows}

    def markdown(self) -> str:
        """``results.md``: mean ± std over subjects per method and key, then the paired tests."""
        keys, n = self.keys, len(self.subjects)
        head = "k" if self.protocol == "loso" else "test"
        lines = [f"# Evaluation: {self.dataset}, {self.protocol}, scale {self.scale}", "",
                 f"- corpus: `{self.corpus['path']}` (provenance hash `{self.corpus['hash']}`)",
                 f"- run: `{self.run['path']}` (hash `{self.run['hash']}`)" if self.run else "- run: none (baselines only)",
                 f"- n = {n} held-out subjects; scores are per trial, mean ± std over subjects",
                 f"- scale `{self.scale}`: " + SCALE_NOTE.get(self.scale, ""), ""]
        for metric in METRICS:
            lines += [f"## {metric.replace('_', ' ')}", "",
                      "| method | " + " | ".join(f"{head} = {k}" for k in keys) + " |",
                      "|---|" + "---|" * len(keys)]
            for m in self.methods:
                cells = []
                for key in keys:
                    v = np.array(self.per_subject(m, key, metric))
                    cells.append(f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if np.isfinite(v).any() else "n/a")
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        tests = self.tests()
        ref = self.methods[0]
        lines += ["## Paired tests (accuracy, over subjects)", ""]
        if len(self.methods) < 2:
            lines += ["One method only: nothing to compare.", ""]
        else:
            lines += [f"Wilcoxon signed-rank (two-sided) of **{ref}** against each method: p-value (n).", "",
                      "| against | " + " | ".join(f"{head} = {k}" for k in keys) + " |",
                      "|---|" + "---|" * len(keys)]
            for m in self.methods[1:]:
                lines.append(f"| {m} | " + " | ".join(_p_cell(tests[k]["wilcoxon"][m]) for k in keys) + " |")
            lines.append("")
        if len(self.methods) >= 3:
            lines += ["Friedman test across all methods: chi² statistic, p-value (n).", "",
                      "| " + " | ".join(f"{head} = {k}" for k in keys) + " |", "|" + "---|" * len(keys),
                      "| " + " | ".join(_friedman_cell(tests[k]["friedman"]) for k in keys) + " |", ""]
        lines += [f"Note: with n = {n} subjects these p-values are weak: the smallest two-sided Wilcoxon p-value "
                  f"possible is {2 / 2 ** n if n else float('nan'):.3g}, so p >= 0.05 does not show the methods equal.", ""]
        return "\n".join(lines)


SCALE_NOTE = {
    "session": "the corpus's stored per-session amplitude scale for every subject (label-free, but computed over "
               "whole sessions, test trials included: transductive).",
    "calibration": "a held-out subject's scale from its calibration trials only; with none (k = 0) the whole fold "
                   "runs in raw device units. Encoder methods: the held-out subject is tokenized with a noise floor "
                   "from its calibration trials only, at k = 0 the training subjects' median floor.",
}


def _test_dict(t: TestResult) -> dict[str, Any]:
    return {"statistic": _clean(t.statistic), "p_value": _clean(t.p_value), "n": t.n, "note": t.note}


def _p_cell(t: dict[str, Any]) -> str:
    return "n/a" if t["p_value"] is None else f"{t['p_value']:.3g} ({t['n']})"


def _friedman_cell(t: dict[str, Any] | None) -> str:
    if t is None or t["p_value"] is None:
        return "n/a"
    return f"{t['statistic']:.3g}, p = {t['p_value']:.3g} ({t['n']})"


def order_methods(names: Sequence[str]) -> tuple[str, ...]:
    """The methods as given, except that ``aemg-finetune`` (the reference) comes first when present."""
    names = list(dict.fromkeys(names))
    if "aemg-finetune" in names:
        names.remove("aemg-finetune")
        names.insert(0, "aemg-finetune")
    return tuple(names)
