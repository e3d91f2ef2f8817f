"""The classifier of a model directory, applied to token groups as they close (no token set needed).

:class:`LiveModel` rebuilds the network of ``aemg finetune`` (encoder + linear head,
:func:`aemg.evaluate.encoder_methods._classifier`) from ``weights.pt`` and turns a run of
:class:`~aemg.tokens.groups.GroupBatch` rows into the same per-token arrays as the token set's
``collate`` (:class:`~aemg.tokens.builder.TokenSetBuilder` then :meth:`TokenSet.collate
<aemg.tokens.tokenset.TokenSet.collate>`), padded by the one :func:`~aemg.tokens.batch.pad_batch`.
Spans are tiled as ``FinetuneMethod.trial_log_probs`` tiles a trial (:func:`aemg.evaluate.spans.tile_spans`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aemg.errors import DataFormatError
from aemg.evaluate.model_dir import INFO, SavedModel, finetune_fields, read_model
from aemg.evaluate.spans import tile_spans
from aemg.recording import Electrode
from aemg.tokens.batch import IGNORE, pad_batch
from aemg.tokens.builder import _coords
from aemg.tokens.groups import GroupBatch
from aemg.tokens.tokenset import TokenSettings


class LiveModel:
    """A model directory's classifier on live token groups; one span (a run of groups) per forward pass.

    Every span is its own batch of one, so a span's log-probabilities do not depend on which other
    spans were computed with it (chunk sizes give identical decisions, bit for bit).
    """

    def __init__(self, model: str | Path | SavedModel) -> None:
        import torch

        from aemg.evaluate.encoder_methods import FinetuneConfig, classifier
        from aemg.model import Encoder, EncoderConfig
        from aemg.model.config import config_from_dict

        saved = model if isinstance(model, SavedModel) else read_model(model)
        self.saved, self.info = saved, saved.info
        info = self.info
        self.settings = TokenSettings.from_meta(info.token_settings)
        if self.settings.mode != "events":
            raise DataFormatError(saved.path / INFO, "a model fine-tuned on event tokens (live decoding cuts events)",
                                  f"found token mode {self.settings.mode!r}")
        try:
            self.cfg = FinetuneConfig(**finetune_fields(info.finetune_config))
        except TypeError as exc:
            raise DataFormatError(saved.path / INFO, "finetune_config fields of this aemg's FinetuneConfig",
                                  f"found {exc}") from None
        self.net = classifier(Encoder(config_from_dict(EncoderConfig, info.encoder_config)), info.n_classes,
                              self.cfg.pool, info.n_channels, self.cfg.amp_head, self.cfg.amp_gain)
        try:
            self.net.load_state_dict(saved.state)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise DataFormatError(saved.path / "weights.pt", f"weights of the network described in {INFO}",
                                  f"found {' '.join(str(exc).split())[:200]}") from None
        self.net.eval()
        self._torch = torch
        electrodes = tuple(Electrode(**{k: e[k] for k in ("site", "angle_deg", "z", "layout", "index") if k in e})
                           for e in info.electrodes)
        self.coords = _coords(electrodes).copy()  # (C, 4)
        self.ms = 1000.0 / float(self.settings.fs)
        self.span = int(self.cfg.span_groups)
        self.stride = int(self.cfg.predict_stride or self.cfg.span_groups)

    @property
    def fs(self) -> float:
        """The corpus rate the model's tokens were made at (Hz): the rate a stream must have."""
        return float(self.settings.fs)

    def spans(self, n_groups: int) -> list[tuple[int, int]]:
        """``(first group, end)`` of the spans tiling ``n_groups`` groups, as a trial is tiled offline."""
        if n_groups <= 0:
            return []
        if not self.span:
            return [(0, n_groups)]
        tiles = tile_spans([np.array([k]) for k in range(n_groups)], self.span, self.stride)
        return [(int(t[0]), int(t[-1]) + 1) for t in tiles]

    def item(self, groups: GroupBatch, a: int, b: int) -> dict[str, Any]:
        """The per-token arrays of groups ``a:b`` (one span), as ``TokenSet.collate`` builds them."""
        c = self.info.n_channels
        n = b - a
        content = groups.content[a:b].reshape(n * c, -1)
        t0 = (groups.start[a:b] * self.ms).astype(np.float32)  # the token set's group_t_ms
        item = {"content": content, "coords": np.tile(self.coords, (n, 1)),
                "onset_ms": (groups.onset[a:b] * self.ms).astype(np.float32).reshape(-1),
                "t_ms": np.repeat(t0 - t0[0], c), "duration_ms": (groups.duration[a:b] * self.ms).astype(
                    np.float32).reshape(-1),
                "group_order": np.repeat(np.arange(n, dtype=np.int64), c), "rank": groups.rank[a:b].reshape(-1),
                "channel": np.tile(np.arange(c, dtype=np.int64), n),
                "rotation_unknown": bool(self.info.rotation_unknown), "label": IGNORE}
        m = int(self.cfg.max_tokens or 0)
        if m and n * c > m:  # the token set's collate keeps a span's first max_tokens
            item = {k: (v[:m] if isinstance(v, np.ndarray) else v) for k, v in item.items()}
        return item

    @property
    def uses_amplitude(self) -> bool:
        """Whether the head reads the tokens' amplitude on the session scale (``FinetuneConfig.amp_head``)."""
        return bool(self.cfg.amp_head)

    def span_log_probs(self, groups: GroupBatch, a: int, b: int, amp_offset: np.ndarray | None = None) -> np.ndarray:
        """``(K,)`` float64 class log-probabilities of the span of groups ``a:b``; ``amp_offset`` ``(C,)``:
        ``log(floor) - 2 log(scale)`` of the stream's session, needed when :attr:`uses_amplitude`
        (:mod:`aemg.evaluate.amplitude`)."""
        from aemg.evaluate.encoder_methods import pad_amp

        torch = self._torch
        item = self.item(groups, a, b)
        batch = pad_batch([item], n_features=self.info.n_features)
        if self.cfg.amp_head:
            if amp_offset is None:
                raise ValueError(f"{self.saved.path}: the model's head reads token amplitude on the session scale: "
                                 "give amp_offset (log floor - 2 log scale per channel)")
            c = self.info.n_channels
            amp = item["content"][:, 0] + np.tile(np.asarray(amp_offset, np.float64), len(item["content"]) // c + 1)[
                :len(item["content"])]
            batch["amp"] = pad_amp([amp.astype(np.float32)], batch["pad_mask"].shape[1])
        with torch.no_grad():
            return torch.log_softmax(self.net(batch), dim=1)[0].double().numpy()


__all__ = ["LiveModel"]
