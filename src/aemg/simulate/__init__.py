"""Synthetic forearm EMG from a physiological model, written as a generic-import dataset.

``simulate_dataset(out, n_subjects, seed)`` writes ``manifest.csv`` + ``.npy`` files that
:func:`aemg.datasets.generic.read_manifest` reads back; :mod:`aemg.simulate.physiology` holds the
model (muscles, motor-unit pools, volume conduction, fatigue, noise) and :class:`SimConfig` its
calibrated knobs (noise, variability between subjects, artefacts). See docs/simulator.md.
Names are imported lazily so that ``import aemg.simulate`` stays light.
"""

from __future__ import annotations

from typing import Any

from aemg.simulate._names import DEFAULT_GESTURES, SIMULATED_GESTURES
from aemg.simulate.config import SimConfig

__all__ = ["DEFAULT_GESTURES", "SIMULATED_GESTURES", "SimConfig", "simulate_dataset", "simulate_subject"]


def __getattr__(name: str) -> Any:
    if name in ("simulate_dataset", "simulate_subject"):
        from aemg.simulate import writer

        return getattr(writer, name)
    raise AttributeError(f"module 'aemg.simulate' has no attribute {name!r}")
