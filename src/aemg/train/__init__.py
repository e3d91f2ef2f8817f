"""Pre-training: configs, the span dataset, the two-stage recipe on Lightning Fabric (torch is imported here)."""

from aemg.train.config import CONFIGS, DataConfig, PretrainConfig, StageConfig, get_config
from aemg.train.data import SpanDataset, TokenRecording, collate
from aemg.train.pretrain import InjectedStop, PretrainRecipe, pretrain
from aemg.train.sources import TokenSource

__all__ = ["CONFIGS", "DataConfig", "InjectedStop", "PretrainConfig", "PretrainRecipe", "SpanDataset", "StageConfig",
           "TokenRecording", "TokenSource", "collate", "get_config", "pretrain"]
