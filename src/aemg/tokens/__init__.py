"""Neuromuscular tokens: contraction events from energy, per-channel tokens, ordered token groups.

``tokenize_corpus(Corpus(path))`` returns a :class:`TokenSet`; the pieces (:class:`EventDetector`,
:class:`WindowDetector`, :func:`estimate_floor`, :func:`segment_features`) serve the live decoder
too. See docs/tokens.md.
"""

from aemg.tokens.detector import DetectorConfig, Event, EventDetector, GroupBatch
from aemg.tokens.energy import EnergyEnvelope, estimate_floor
from aemg.tokens.features import FEATURE_NAMES, N_FEATURES, segment_features
from aemg.tokens.metrics import detection_metrics
from aemg.tokens.tokenizer import WindowDetector, tokenize_corpus, tokenize_recordings, tokenize_session
from aemg.tokens.tokenset import IGNORE, TokenSet, electrode_coords

__all__ = ["FEATURE_NAMES", "IGNORE", "N_FEATURES", "DetectorConfig", "EnergyEnvelope", "Event", "EventDetector",
           "GroupBatch", "TokenSet", "WindowDetector", "detection_metrics", "electrode_coords", "estimate_floor",
           "segment_features", "tokenize_corpus", "tokenize_recordings", "tokenize_session"]
