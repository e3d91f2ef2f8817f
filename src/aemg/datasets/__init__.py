"""Dataset readers, through one registry: ``get_reader(name)`` and ``list_datasets()``.

Reader modules are imported lazily, so listing the registry stays cheap.
"""

from __future__ import annotations

import importlib

from aemg.datasets.base import DatasetInfo, Reader

# registry name -> module under aemg.datasets that defines ``READER`` (a Reader instance)
REGISTRY: dict[str, str] = {
    "uci-gestures": "uci",
    "cote-allard": "cote_allard",
    "ciil": "ciil",
    "3dc": "threedc",
    "ninapro-db2": "ninapro_db2",
    "ninapro-db4": "ninapro_db4",
    "ninapro-db5": "ninapro_db5",
    "emg-epn-612": "epn612",
    "toro-ossaba": "toro_ossaba",
    "mcs-emg": "mcs_emg",
    "long-term-semg": "long_term_semg",
    "myodisco": "myodisco",
}


def get_reader(name: str) -> Reader:
    """The reader registered as ``name`` (see :data:`REGISTRY`)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module = importlib.import_module(f"aemg.datasets.{REGISTRY[name]}")
    return module.READER


def list_datasets() -> list[DatasetInfo]:
    """Facts of every registered dataset, in registry order."""
    return [get_reader(name).info for name in REGISTRY]


__all__ = ["REGISTRY", "DatasetInfo", "Reader", "get_reader", "list_datasets"]
