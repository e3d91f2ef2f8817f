"""The corpus store: harmonized recordings in HDF5 (one file per subject and session) plus an index.

``prepare(dataset, root, out)`` and ``import_manifest(folder, out)`` build a corpus;
``Corpus(path)`` reads one lazily. Layout, provenance and guarantees: ``docs/corpus.md``.
"""

from aemg.corpus.corpus import Corpus
from aemg.corpus.pipeline import import_manifest, prepare

__all__ = ["Corpus", "import_manifest", "prepare"]
