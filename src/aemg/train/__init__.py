"""Pre-training: the span dataset, the two-stage recipe on Lightning Fabric (torch is imported here)."""

from aemg.train.data import SpanDataset, TokenRecording, collate
from aemg.train.pretrain import InjectedStop, PretrainRecipe, TokenSource, load_stage_models, pretrain

__all__ = ["InjectedStop", "PretrainRecipe", "SpanDataset", "TokenRecording", "TokenSource", "collate",
           "load_stage_models", "pretrain"]
