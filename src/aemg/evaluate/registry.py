"""Method names -> zero-argument factories, for the baselines and (when present) the encoder methods.

``method_factories(["lda-td", "aemg-finetune"], run_dir=RUN, corpus=C)`` returns ``{name: factory}``
in the order given; ``run_folds`` calls each factory once per fold, so no state survives a fold.
Baselines need nothing; encoder methods come from ``aemg.evaluate.encoder_methods.ENCODER_METHODS``
(``{name: builder}``), each called as ``builder(run_dir=..., corpus=...)`` and returning the
zero-argument factory, so loading a run happens once, not once per fold. The ablations
(``aemg-windows``, ``aemg-nospatial``: ``aemg-finetune`` with runs of their own; the module's
``ABLATION_METHODS``, built the same way) take their run from ``runs[name]`` (``aemg evaluate
--run-windows`` / ``--run-nospatial``, :data:`ABLATION_RUNS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aemg.errors import OptionError
from aemg.evaluate.baselines import BASELINES

if TYPE_CHECKING:
    from aemg.corpus import Corpus
    from aemg.evaluate.method import Method

ENCODER_MODULE = "aemg.evaluate.encoder_methods"
# the reference method of every table (first when present), then the fixed order
ABLATION_RUNS: dict[str, tuple[str, str]] = {
    "aemg-windows": ("--run-windows", "aemg pretrain --window-ms 200"),
    "aemg-nospatial": ("--run-nospatial", "aemg pretrain --set encoder.position=index"),
}
"""Ablation method -> (the option giving its run, how that run is made)."""
PREFERRED_ORDER = ("aemg-finetune", "aemg-probe", "scratch", "aemg-windows", "aemg-nospatial", "lda-td", "svm-tdar")


def encoder_builders(table: str = "ENCODER_METHODS") -> Mapping[str, Callable[..., Callable[[], Method]]]:
    """``ENCODER_METHODS`` (or another ``table``, e.g. ``ABLATION_METHODS``) of the encoder module, or ``{}``
    while that module or table is not there."""
    try:
        module = importlib.import_module(ENCODER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == ENCODER_MODULE:
            return {}
        raise
    return dict(getattr(module, table, {}))


def ablation_builders() -> Mapping[str, Callable[..., Callable[[], Method]]]:
    """The ablations (``aemg-windows``, ``aemg-nospatial``) of the encoder module that :data:`ABLATION_RUNS` names."""
    return {k: v for k, v in encoder_builders("ABLATION_METHODS").items() if k in ABLATION_RUNS}


def known_methods() -> tuple[str, ...]:
    """Every method name this installation can evaluate: encoder methods and ablations (if any), then the baselines."""
    enc = (*encoder_builders(), *ablation_builders())
    return (*enc, *(b for b in BASELINES if b not in enc))


def method_factories(names: Sequence[str], run_dir: str | Path | None = None,
                     corpus: Corpus | None = None,
                     runs: Mapping[str, str | Path | None] | None = None,
                     configs: Mapping[str, Any] | None = None) -> dict[str, Callable[[], Method]]:
    """``{name: zero-argument factory}`` for ``names`` (in that order).

    An unknown name, or an encoder method without ``run_dir`` (an ablation without ``runs[name]``), is
    an :class:`OptionError` naming ``--methods`` / ``--run`` (``--run-windows``, ``--run-nospatial``).
    Baseline factories take no arguments; encoder builders get their run and ``corpus`` once here, and
    ``configs[name]`` (a FinetuneConfig or ProbeConfig) as ``cfg`` where given.
    """
    configs = configs or {}
    encoders = encoder_builders()
    ablations = ablation_builders()
    out: dict[str, Callable[[], Method]] = {}
    for name in names:
        if name in out:
            continue
        if name in ablations:
            option, how = ABLATION_RUNS[name]
            own = (runs or {}).get(name)
            if own is None:
                raise OptionError(option, f"a run directory of {how} for method {name}", "found none given")
            out[name] = ablations[name](run_dir=Path(own), corpus=corpus, **_cfg(configs, name))
        elif name in encoders:
            if run_dir is None:
                raise OptionError("--run", f"a run directory of aemg pretrain for method {name}",
                                  "found none given")
            out[name] = encoders[name](run_dir=Path(run_dir), corpus=corpus, **_cfg(configs, name))
        elif name in BASELINES:
            out[name] = _baseline(name)
        else:
            raise OptionError(f"--methods {name}", f"one of {', '.join(known_methods())}",
                              f"found {name!r}")
    return out


def _cfg(configs: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {"cfg": configs[name]} if name in configs else {}


def _baseline(name: str) -> Callable[[], Method]:
    build: Callable[..., Any] = BASELINES[name]
    return lambda: build()


def parse_methods(text: str) -> list[str]:
    """``"lda-td,svm-tdar"`` -> ``["lda-td", "svm-tdar"]`` (blank items dropped, duplicates kept once)."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise OptionError(f"--methods {text}", "a comma-separated list of method names", "found none")
    return names
