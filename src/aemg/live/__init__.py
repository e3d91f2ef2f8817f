"""Live decoding: a fine-tuned model directory (``aemg finetune``) applied causally to a stream of EMG chunks.

:class:`~aemg.live.decoder.LiveDecoder` (the decoder core: detector, token groups, encoder + head,
provisional / confirmed / retracted :class:`~aemg.live.decoder.Decision`),
:class:`~aemg.live.replay.ReplaySource` (a corpus recording at real-time pace or as fast as possible).
Downstream of :mod:`aemg.evaluate`; nothing upstream imports it. torch is imported when a model is loaded.
"""

from __future__ import annotations

from aemg.live.decoder import Decision, LiveDecoder
from aemg.live.replay import Chunk, ReplaySource

__all__ = ["Chunk", "Decision", "LiveDecoder", "ReplaySource"]
