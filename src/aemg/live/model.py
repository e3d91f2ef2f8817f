"""The classifier of a model directory, applied to token groups as they close (no token set needed).

:class:`LiveModel` rebuilds the network of ``aemg finetune`` (encoder + linear head,
:func:`aemg.evaluate.encoder_methods.classifier`) from ``weights.pt`` (and, for a model fine-tuned with
``probe_blend``, the frozen probe's network from ``probe.pt``, blended span by span as offline) and turns a run of
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
from aemg.evaluate.encoder_methods import (
    amp_weight,
    blend_log_probs,
    channel_amplitude,
    pad_amp,
    pool_states,
    restore_networks,
    span_log_probs,
)
from aemg.evaluate.model_dir import INFO, SavedModel, finetune_fields, read_model, weights_error
from aemg.recording import Electrode
from aemg.tokens.batch import FLOAT_KEYS, IGNORE, INT_KEYS, pad_batch
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

        from aemg.evaluate.encoder_methods import FinetuneConfig

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
        try:
            self.net, self.probe = restore_networks(info.encoder_config, saved.state, saved.probe_state, self.cfg,
                                                    info.n_classes, info.n_channels)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise weights_error(saved, exc) from None
        self._torch = torch
        electrodes = tuple(Electrode(**{k: e[k] for k in ("site", "angle_deg", "z", "layout", "index") if k in e})
                           for e in info.electrodes)
        self.coords = _coords(electrodes).copy()  # (C, 4)
        self.ms = 1000.0 / float(self.settings.fs)
        self.span = int(self.cfg.span_groups)
        self.stride = int(self.cfg.predict_stride or self.cfg.span_groups)
        self._terms: dict[int, tuple[Any, Any]] = {}  # per network: its position-only embedding terms
        self._amp_weight = amp_weight(self.cfg.amp_gain, int(self.net.encoder.cfg.d_model))

    @property
    def uses_amplitude(self) -> bool:
        """Whether the head reads the tokens' amplitude on the session scale (``FinetuneConfig.amp_head``)."""
        return bool(self.cfg.amp_head)

    @property
    def fs(self) -> float:
        """The corpus rate the model's tokens were made at (Hz): the rate a stream must have."""
        return float(self.settings.fs)

    def spans(self, n_groups: int) -> list[tuple[int, int]]:
        """``(first group, end)`` of the spans tiling ``n_groups`` groups, as a trial is tiled offline
        (:func:`aemg.evaluate.spans.tile_spans`, computed here from the counts alone)."""
        if n_groups <= 0:
            return []
        span = self.span
        if not span or n_groups <= span:
            return [(0, n_groups)]
        starts = list(range(0, n_groups - span + 1, self.stride))
        if starts[-1] != n_groups - span:
            starts.append(n_groups - span)
        return [(a, a + span) for a in starts]

    def item(self, groups: GroupBatch, a: int, b: int, amp_offset: np.ndarray | None = None) -> dict[str, Any]:
        """The per-token arrays of groups ``a:b`` (one span), as ``TokenSet.collate`` builds them: **the
        encoder-input path** (any change of what the network is fed belongs here, and both
        :meth:`span_log_probs` and :meth:`reference_log_probs` see it). With :attr:`uses_amplitude`, also
        ``amp``: ``log_amp`` plus ``amp_offset`` ``(C,)`` (``log(floor) - 2 log(scale)`` of the stream's
        session, :mod:`aemg.tokens.amplitude`), which is then required; with ``amp_content`` that amplitude is
        also the content's ``log_amp``."""
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
        if self.uses_amplitude:
            if amp_offset is None:
                raise ValueError(f"{self.saved.path}: the model's head reads token amplitude on the session scale: "
                                 "give amp_offset (log floor - 2 log scale per channel)")
            item["amp"] = (content[:, 0] + np.tile(np.asarray(amp_offset, np.float64), n)).astype(np.float32)
            if self.cfg.amp_content:  # the encoder reads log_amp on the session scale (encoder_methods.scale_content)
                item["content"] = content = content.copy()
                content[:, 0] = item["amp"]
        m = int(self.cfg.max_tokens or 0)
        if m and n * c > m:  # the token set's collate keeps a span's first max_tokens
            item = {k: (v[:m] if isinstance(v, np.ndarray) else v) for k, v in item.items()}
        return item

    def encoder_input(self, groups: GroupBatch, a: int, b: int, amp_offset: np.ndarray | None = None) -> dict[str, Any]:
        """The batch of one span (groups ``a:b``) as :func:`~aemg.tokens.batch.pad_batch` would make it from
        :meth:`item` (a batch of one has no padding): ``(1, N, ...)`` tensors that share the arrays' memory."""
        torch = self._torch
        it = self.item(groups, a, b, amp_offset)
        keys = (*FLOAT_KEYS, *INT_KEYS, *(("amp",) if "amp" in it else ()))
        out = {k: torch.from_numpy(np.ascontiguousarray(it[k], np.int64 if k in INT_KEYS else np.float32))[None]
               for k in keys}
        n = out["rank"].shape[1]
        out["pad_mask"] = torch.zeros((1, n), dtype=torch.bool)
        out["rotation_unknown"] = torch.tensor([bool(it["rotation_unknown"])])
        out["label"] = torch.tensor([IGNORE])
        return out

    def span_log_probs(self, groups: GroupBatch, a: int, b: int, amp_offset: np.ndarray | None = None) -> np.ndarray:
        """``(K,)`` float64 class log-probabilities of the span of groups ``a:b``: the network of
        ``aemg finetune`` on :meth:`encoder_input` (blended with the probe's, :func:`blend_log_probs`, for a
        model with one), with what a batch of one without padding allows (no attention mask, the token
        embedding's per-position terms computed once, the per-channel pool as a reshape); equal to
        :meth:`reference_log_probs` within float32 rounding (tests/test_live.py). ``amp_offset``: as :meth:`item`."""
        torch = self._torch
        with torch.inference_mode():
            batch = self.encoder_input(groups, a, b, amp_offset)
            logp = self._log_probs(self.net, batch, self._amp_weight)
            if self.probe is not None:
                logp = blend_log_probs(logp, self._log_probs(self.probe, batch, 1.0), self.cfg.probe_blend)
            return logp[0].double().numpy()

    def _log_probs(self, net: Any, batch: dict[str, Any], amp_weight: float) -> Any:
        """(1, K) log-softmax of one network (:func:`~aemg.evaluate.encoder_methods.classifier`) on a batch of
        one, the fast way (:meth:`span_log_probs`); ``amp_weight``: the weight of its amplitude columns."""
        torch = self._torch
        x = self._embed(net, batch)
        enc = net.encoder
        for block in enc.blocks:
            x = block(x, None)  # no padding: every token may attend to every other
        h = enc.ln_f(x)
        n = h.shape[1]
        c = self.info.n_channels
        if self.cfg.pool == "channel" and n % c == 0:  # whole groups, channel-minor: the mean per channel
            pooled = h.view(n // c, c, h.shape[2]).mean(0).reshape(1, -1)
        else:
            pooled = pool_states(h, batch, self.cfg.pool, c)
        if self.uses_amplitude:
            amp = channel_amplitude(batch, c, net.amp_mu, net.amp_sd) * amp_weight
            pooled = torch.cat([pooled, amp], dim=1)
        return torch.log_softmax(net.head(pooled), dim=1)

    def reference_log_probs(self, groups: GroupBatch, a: int, b: int,
                            amp_offset: np.ndarray | None = None) -> np.ndarray:
        """:meth:`span_log_probs` the plain way: :func:`~aemg.tokens.batch.pad_batch` of :meth:`item` through
        the whole network module, as offline prediction runs it (the tests' and the benchmark's reference)."""
        torch = self._torch
        item = self.item(groups, a, b, amp_offset)
        batch = pad_batch([item], n_features=self.info.n_features)
        if "amp" in item:
            batch["amp"] = pad_amp([item["amp"]], batch["pad_mask"].shape[1])
        with torch.no_grad():
            return span_log_probs(self.net, self.probe, self.cfg.probe_blend, batch)[0].double().numpy()

    def _embed(self, net: Any, batch: dict[str, Any]) -> Any:
        """:class:`~aemg.model.embeddings.TokenEmbedding` of a batch of one (eval mode, no content mask), in its
        order of terms, with the terms that depend only on a token's position in the span (electrode
        coordinates or channel index, group order) looked up from :meth:`_position_terms`."""
        e = net.encoder.embed
        n = batch["rank"].shape[1]
        spatial, group = self._position_terms(net, n)
        x = e.content(batch["content"])
        x = x + spatial[:, :n]
        x = x + e.temporal(batch["onset_ms"], batch["t_ms"], batch["duration_ms"])
        x = x + group[:, :n]
        return x + e.rank(batch["rank"].clamp(0, e.cfg.max_rank - 1))

    def _position_terms(self, net: Any, n: int) -> tuple[Any, Any]:
        """The spatial (or channel) and group-order embedding terms of ``net``'s encoder for a span's first ``n``
        tokens ``(1, n, D)`` (tokens are group-major, channel-minor: token ``i`` is channel ``i % C`` of group
        ``i // C``), cached per network."""
        terms = self._terms.get(id(net))
        if terms is None or terms[0].shape[1] < n:
            torch = self._torch
            e = net.encoder.embed
            c = self.info.n_channels
            m = max(n, (self.span or 1) * c)
            idx = np.arange(m)
            coords = torch.from_numpy(self.coords[idx % c].astype(np.float32))[None]
            channel = torch.from_numpy((idx % c).astype(np.int64))[None]
            order = torch.from_numpy((idx // c).astype(np.int64))[None]
            with torch.inference_mode():
                spatial = e.channel(channel) if e.cfg.position == "index" else e.spatial(coords)
                group = e.group(order.clamp(0, e.cfg.max_groups - 1))
            self._terms[id(net)] = terms = (spatial, group)
        return terms


__all__ = ["LiveModel"]
