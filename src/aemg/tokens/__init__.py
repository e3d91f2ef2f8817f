"""Neuromuscular tokens: contraction events from energy, per-channel tokens, ordered token groups.

``tokenize_corpus(Corpus(path))`` returns a :class:`TokenSet`; the pieces (:class:`EventDetector`,
:class:`WindowDetector`, :class:`GroupAssembler`, :func:`estimate_floor`, :func:`segment_features`)
serve the live decoder too, and :func:`pad_batch` makes the model's batch for every caller. See
docs/tokens.md.
"""

from aemg.tokens.batch import IGNORE, pad_batch
from aemg.tokens.builder import TokenSetBuilder, electrode_coords
from aemg.tokens.detector import DetectorConfig, Event, EventDetector
from aemg.tokens.energy import EnergyEnvelope, estimate_floor
from aemg.tokens.features import FEATURE_NAMES, N_FEATURES, segment_features
from aemg.tokens.groups import GroupAssembler, GroupBatch
from aemg.tokens.metrics import detection_metrics
from aemg.tokens.tokenizer import tokenize_corpus, tokenize_recordings, tokenize_session
from aemg.tokens.tokenset import TokenSet, TokenSettings
from aemg.tokens.windows import WindowDetector

__all__ = ["FEATURE_NAMES", "IGNORE", "N_FEATURES", "DetectorConfig", "EnergyEnvelope", "Event", "EventDetector",
           "GroupAssembler", "GroupBatch", "TokenSet", "TokenSetBuilder", "TokenSettings", "WindowDetector",
           "detection_metrics", "electrode_coords", "estimate_floor", "pad_batch", "segment_features",
           "tokenize_corpus", "tokenize_recordings", "tokenize_session"]
