"""The spatio-temporal encoder, the quantizer and the two pre-training models (synthetic batches)."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vector_quantize_pytorch")

from aemg.model import (  # noqa: E402
    IGNORE,
    MaskedTokenModel,
    Quantizer,
    QuantizerConfig,
    VQTokenizer,
    aemg_base,
    aemg_small,
    aemg_tiny,
    model_size,
    n_params,
    random_token_mask,
    random_unit_mask,
    rotate_flip,
    symmetric_batch,
)
from aemg.train.config import PretrainConfig, get_config  # noqa: E402
from aemg.train.synthetic import synthetic_batch  # noqa: E402

F = 16


@pytest.fixture(scope="module")
def batch():
    return synthetic_batch(batch_size=6, max_tokens=40, content_dim=F, seed=3)


def _tiny_encoder(seed: int = 0):
    torch.manual_seed(seed)
    enc = aemg_tiny(F)
    enc.eval()
    return enc


def _pad_more(batch: dict, extra: int) -> dict:
    out = {}
    for k, v in batch.items():
        if v.dim() >= 2:
            fill = True if k == "pad_mask" else 0
            pad = torch.full((v.shape[0], extra, *v.shape[2:]), fill, dtype=v.dtype)
            if k != "pad_mask":
                pad = torch.randn(pad.shape).to(v.dtype) * 5 if v.is_floating_point() else torch.randint_like(pad, 0, 7)
            out[k] = torch.cat([v, pad], 1)
        else:
            out[k] = v
    return out


def test_ignore_value_is_the_tokens_one():
    tokens = pytest.importorskip("aemg.tokens")
    assert IGNORE == tokens.IGNORE == -100


def test_batch_follows_contract(batch):
    B, N = batch["pad_mask"].shape
    assert batch["content"].shape == (B, N, F) and batch["content"].dtype == torch.float32
    assert batch["coords"].shape == (B, N, 4)
    for k in ("onset_ms", "t_ms", "duration_ms"):
        assert batch[k].shape == (B, N) and batch[k].dtype == torch.float32
    for k in ("group_order", "rank", "channel"):
        assert batch[k].dtype == torch.int64
    assert batch["pad_mask"].dtype == torch.bool and batch["pad_mask"].any()
    assert batch["rotation_unknown"].shape == (B,) and batch["label"].shape == (B,)


def test_quantized_output_is_codebook_entries_in_eval():
    torch.manual_seed(0)
    q = Quantizer(QuantizerConfig(dim=8, codebook_size=16, kmeans_iters=2))
    z = torch.randn(3, 10, 8)
    pad = torch.zeros(3, 10, dtype=torch.bool)
    pad[1, 6:] = True
    q.train()
    q(z, pad)  # k-means init + one EMA update
    q.eval()
    quantized, idx, commit = q(z, pad)
    assert (idx[pad] == IGNORE).all() and (idx[~pad] >= 0).all()
    assert torch.equal(quantized[~pad], q.codebook[idx[~pad]])
    assert torch.allclose(q.codebook.norm(dim=-1), torch.ones(16), atol=1e-5)  # cosine codebook
    assert commit.dim() == 0


def test_extra_padding_leaves_real_token_encodings_unchanged(batch):
    enc = _tiny_encoder()
    with torch.no_grad():
        h1, p1 = enc(batch)
        h2, p2 = enc(_pad_more(batch, 9))
    real = ~batch["pad_mask"]
    N = real.shape[1]
    assert torch.allclose(h1[real], h2[:, :N][real], atol=1e-5)
    assert torch.allclose(p1, p2, atol=1e-5)


def test_permuting_channels_with_coordinates_leaves_pooled_encoding_unchanged(batch):
    enc = _tiny_encoder(1)
    g = torch.Generator().manual_seed(0)
    perm_batch = {k: v.clone() for k, v in batch.items()}
    for b in range(batch["pad_mask"].shape[0]):
        n = int((~batch["pad_mask"][b]).sum())
        perm = torch.randperm(n, generator=g)
        for k, v in batch.items():
            if v.dim() >= 2:
                perm_batch[k][b, :n] = v[b, :n][perm]
    # a relabelled channel index changes nothing either: the encoder does not embed it
    perm_batch["channel"] = (perm_batch["channel"] * 7 + 3) % 11
    with torch.no_grad():
        _, p1 = enc(batch)
        _, p2 = enc(perm_batch)
    assert torch.allclose(p1, p2, atol=1e-5)
    # while moving the coordinates (not the tokens) does change it
    moved = dict(batch)
    moved["coords"] = rotate_flip({**batch, "rotation_unknown": torch.ones_like(batch["rotation_unknown"])},
                                  torch.Generator().manual_seed(1))["coords"]
    with torch.no_grad():
        _, p3 = enc(moved)
    assert not torch.allclose(p1, p3, atol=1e-4)


def test_rotate_flip_touches_only_unknown_on_forearm_real_tokens(batch):
    out = rotate_flip(batch, torch.Generator().manual_seed(0))
    c0, c1 = batch["coords"], out["coords"]
    unknown = batch["rotation_unknown"][:, None] & (c0[..., 3] < 0.5) & ~batch["pad_mask"]
    assert torch.equal(c0[~unknown], c1[~unknown])
    assert torch.equal(c0[..., 2:], c1[..., 2:])
    assert torch.allclose(c1[unknown][:, :2].norm(dim=-1), torch.ones(int(unknown.sum())), atol=1e-5)
    # a rigid motion of the ring: angles between two electrodes of one sequence keep their |difference|
    b = int(torch.nonzero(batch["rotation_unknown"])[0])
    a0 = torch.atan2(c0[b, :2, 1], c0[b, :2, 0])
    a1 = torch.atan2(c1[b, :2, 1], c1[b, :2, 0])
    d0, d1 = (a0[1] - a0[0]) % (2 * math.pi), (a1[1] - a1[0]) % (2 * math.pi)
    assert min(abs(d1 - d0), abs(d1 - (2 * math.pi - d0))) < 1e-4


def test_symmetric_masks_never_touch_padding_and_cover_every_real_token(batch):
    pad = batch["pad_mask"]
    mask = random_token_mask(pad, 0.5, torch.Generator().manual_seed(0))
    assert not (mask & pad).any()
    n_real = (~pad).sum(1)
    assert ((mask.sum(1) - n_real * 0.5).abs() <= 1).all()
    codes = torch.randint(0, 5, pad.shape).masked_fill(pad, IGNORE)
    big, cmask, targets = symmetric_batch(batch, codes, mask)
    B = pad.shape[0]
    assert big["content"].shape[0] == 2 * B
    assert torch.equal(cmask[:B] | cmask[B:], ~pad) and not (cmask[:B] & cmask[B:]).any()
    assert ((targets != IGNORE) == cmask).all()


def test_models_forward_return_out_and_loss(batch):
    cfg = get_config("tiny")
    tcfg = dataclasses.replace(cfg.tokenizer, encoder=dataclasses.replace(cfg.tokenizer.encoder, content_dim=F))
    torch.manual_seed(0)
    tok = VQTokenizer(tcfg)
    out, loss = tok(batch)
    assert loss is None and out["recon"].shape == batch["content"].shape
    out, loss = tok(batch, targets=batch["content"])
    assert loss.dim() == 0 and loss.requires_grad
    m = tok.step_metrics(out, batch["content"])
    assert m["recon_loss"] == pytest.approx(out["recon_loss"].item()) and 0 < m["batch_usage"] <= 1
    mtm = MaskedTokenModel(dataclasses.replace(cfg.encoder, content_dim=F), cfg.mtm, tcfg.quantizer.codebook_size)
    codes = tok.tokenize(batch)
    mask = random_token_mask(batch["pad_mask"], 0.5)
    logits, loss = mtm(batch, torch.where(mask, codes, IGNORE), mask)
    assert logits.shape == (*batch["pad_mask"].shape, tcfg.quantizer.codebook_size) and loss.requires_grad
    x, targets, cmask = mtm.masked_inputs(batch, codes, torch.Generator().manual_seed(0))  # symmetric: 2B
    assert x["content"].shape[0] == targets.shape[0] == 2 * batch["content"].shape[0]
    assert 0 <= mtm.step_metrics(mtm(x, targets, cmask)[0], targets)["masked_accuracy_train"] <= 1
    logits, loss = mtm(batch)
    assert loss is None


def test_random_unit_mask_masks_whole_channels_or_groups():
    """Every unit (tokens sharing an id) is masked whole; round(ratio * n_units) units per sequence, at least one
    and never all; padding never; a sequence with one unit falls back to masking single tokens."""
    pad = torch.zeros(3, 12, dtype=torch.bool)
    pad[1, 9:] = True
    units = torch.tensor([list(range(8)) + [0, 1, 2, 3], [5, 5, 6, 6, 7, 7, 5, 6, 7, 0, 0, 0], [4] * 12])
    for seed in range(5):
        mask = random_unit_mask(units, pad, 0.5, torch.Generator().manual_seed(seed))
        assert not (mask & pad).any()
        for b, n_units in ((0, 8), (1, 3)):
            ids = units[b][~pad[b]]
            m = mask[b][~pad[b]]
            chosen = {int(i) for i in ids[m]}
            assert chosen.isdisjoint({int(i) for i in ids[~m]})  # whole units only
            assert len(chosen) == min(max(round(n_units * 0.5), 1), n_units - 1)
        assert mask[2].sum() == 6  # one unit: half the tokens, one by one
    tiny = get_config("tiny")
    for unit in ("channel", "group"):
        mtm = MaskedTokenModel(dataclasses.replace(tiny.encoder, content_dim=F),
                               dataclasses.replace(tiny.mtm, mask_unit=unit, symmetric=False), 8)
        batch = {"pad_mask": pad, "channel": units, "group_order": units}
        _, targets, cmask = mtm.masked_inputs(batch, torch.zeros_like(units), torch.Generator().manual_seed(0))
        assert torch.equal(cmask, random_unit_mask(units, pad, 0.5, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="mask_unit"):
        dataclasses.replace(tiny.mtm, mask_unit="sample")
    with pytest.raises(ValueError, match="content_weight"):
        dataclasses.replace(tiny.mtm, content_weight=-1.0)


def test_mtm_content_regression_adds_the_masked_tokens_error(batch):
    """content_weight > 0: the loss is the ids' cross-entropy plus the weighted MSE of the content head on the
    masked tokens against per-feature standardised content; a perfect content head adds nothing."""
    cfg = get_config("tiny")
    enc = dataclasses.replace(cfg.encoder, content_dim=F)
    torch.manual_seed(0)
    plain = MaskedTokenModel(enc, cfg.mtm, 8)
    torch.manual_seed(0)
    mtm = MaskedTokenModel(enc, dataclasses.replace(cfg.mtm, content_weight=2.0), 8)
    assert plain.content_head is None and mtm.content_head.out_features == F
    codes = torch.randint(0, 8, batch["pad_mask"].shape)
    mask = random_token_mask(batch["pad_mask"], 0.5, torch.Generator().manual_seed(1))
    targets = torch.where(mask, codes, IGNORE)
    _, ce = plain(batch, targets, mask)
    _, loss = mtm(batch, targets, mask)
    h, _ = mtm.encoder(batch, content_mask=mask)
    c = batch["content"][~batch["pad_mask"]]
    want = (batch["content"] - c.mean(0)) / (c.std(0, correction=0) + 1e-6)
    mse = ((mtm.content_head(h) - want)[mask] ** 2).mean()
    assert loss.item() == pytest.approx(ce.item() + 2.0 * mse.item(), rel=1e-5)
    with torch.no_grad():  # a head that outputs the target exactly: the loss is the cross-entropy alone
        mtm.content_head.weight.zero_()
        mtm.content_head.bias.zero_()
    batch0 = {**batch, "content": torch.zeros_like(batch["content"])}
    assert mtm(batch0, targets, mask)[1].item() == pytest.approx(plain(batch0, targets, mask)[1].item(), rel=1e-6)


def test_config_round_trip_and_overrides(tmp_path):
    for name in ("tiny", "small", "base"):
        cfg = get_config(name)
        cfg.save(tmp_path / f"{name}.json")
        assert PretrainConfig.load(tmp_path / f"{name}.json") == cfg
        assert get_config(str(tmp_path / f"{name}.json")) == cfg
    cfg = get_config("tiny").override(["stage1.lr=0.01", "data.max_tokens=64", "tokenizer.quantizer.codebook_size=8"])
    assert (cfg.stage1.lr, cfg.data.max_tokens, cfg.tokenizer.quantizer.codebook_size) == (0.01, 64, 8)
    with pytest.raises(ValueError, match="no config field"):
        get_config("tiny").override(["stage1.learning_rate=1"])
    with pytest.raises(ValueError, match="unknown config"):
        get_config("huge")
    with pytest.raises(ValueError, match="unknown config fields"):
        PretrainConfig.from_dict({**get_config("tiny").to_dict(), "stage3": {}})
    # the recipes are built on the model package's named sizes (model configs live there, training here)
    for name in ("tiny", "small", "base"):
        assert (get_config(name).encoder, get_config(name).tokenizer) == model_size(name)


def test_named_sizes_and_rebuild_from_saved_config(tmp_path):
    sizes = {name: n_params(build(F)) for name, build in (("tiny", aemg_tiny), ("small", aemg_small), ("base", aemg_base))}
    assert sizes["tiny"] < sizes["small"] < sizes["base"]
    base = get_config("base")
    mtm = MaskedTokenModel(dataclasses.replace(base.encoder, content_dim=F), base.mtm,
                           base.tokenizer.quantizer.codebook_size)
    assert 5e6 <= n_params(mtm) <= 10e6
    # rebuild from the saved config gives the same architecture and accepts the saved weights
    torch.manual_seed(0)
    enc = aemg_tiny(F)
    cfg = get_config("tiny")
    cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, content_dim=F))
    cfg.save(tmp_path / "c.json")
    from aemg.model import Encoder

    enc2 = Encoder(PretrainConfig.load(tmp_path / "c.json").encoder)
    enc2.load_state_dict(enc.state_dict())


def test_all_padding_sequence_gives_no_nan_in_train_or_eval(batch):
    """A trial without events is an all-padding row: finite states, a zero pooled vector, finite gradients."""
    empty = {k: v.clone() for k, v in batch.items()}
    empty["pad_mask"][0] = True
    empty["content"][0] = 1e6  # whatever padding holds must not matter
    enc = _tiny_encoder()
    for train in (False, True):
        enc.train(train)
        enc.zero_grad()
        h, pooled = enc(empty)
        assert torch.isfinite(h).all() and torch.isfinite(pooled).all()
        assert torch.equal(pooled[0], torch.zeros_like(pooled[0]))
        pooled.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    with torch.no_grad():  # the other rows do not notice the empty one
        _, p_ref = enc.eval()(batch)
        _, p_emp = enc(empty)
    assert torch.allclose(p_ref[1:], p_emp[1:], atol=1e-5)


def test_weight_decay_only_on_matrices_never_biases_norms_or_codebook():
    cfg = get_config("tiny")
    tcfg = dataclasses.replace(cfg.tokenizer, encoder=dataclasses.replace(cfg.tokenizer.encoder, content_dim=F))
    tok = VQTokenizer(tcfg)
    mtm = MaskedTokenModel(dataclasses.replace(cfg.encoder, content_dim=F), cfg.mtm, tcfg.quantizer.codebook_size)
    for model in (tok, mtm):
        opt = model.configure_optimizers(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95))
        decay, no_decay = opt.param_groups
        assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
        names = {id(p): n for n, p in model.named_parameters()}
        decayed = {names[id(p)] for p in decay["params"]}
        kept = {names[id(p)] for p in no_decay["params"]}
        assert decayed | kept == set(names.values()) and not decayed & kept
        assert not any(n.endswith("bias") or ".ln_" in n or "mask_token" in n for n in decayed)
        assert any(n.endswith("c_attn.weight") for n in decayed)
        assert any(n.endswith("ln_1.weight") for n in kept) and any(n.endswith("c_attn.bias") for n in kept)
    # the codebook is an EMA buffer: never a parameter, so never decayed or moved by AdamW
    assert not any("codebook" in n for n, _ in tok.named_parameters())
    assert any(n.endswith("_codebook.embed") for n, _ in tok.named_buffers())


def test_content_norm_none_keeps_the_features_units_and_the_state_dict_keys(batch):
    from aemg.model import Encoder

    torch.manual_seed(0)
    layer = Encoder(dataclasses.replace(aemg_tiny(F).cfg)).eval()
    torch.manual_seed(0)
    plain = Encoder(dataclasses.replace(aemg_tiny(F).cfg, content_norm="none")).eval()
    # the same keys but the LayerNorm's: an "none" run loads where a "layer" run's projection lives
    assert set(layer.state_dict()) - set(plain.state_dict()) == {"embed.content.0.weight", "embed.content.0.bias"}
    assert set(plain.state_dict()) <= set(layer.state_dict())
    louder = dict(batch, content=batch["content"] * 3.0 + 0.5)  # every feature scaled and shifted alike
    real = ~batch["pad_mask"]
    with torch.no_grad():
        # a LayerNorm across a token's features removes a common scale and shift: the level is lost
        # (up to the norm's eps)
        assert (layer(louder)[0][real] - layer(batch)[0][real]).abs().max() < 1e-2
        # without it the encoder sees the level (e.g. log_amp's height above the floor)
        assert (plain(louder)[0][real] - plain(batch)[0][real]).abs().max() > 0.1
    with pytest.raises(ValueError, match="content_norm must be one of layer, none; found 'batch'"):
        dataclasses.replace(aemg_tiny(F).cfg, content_norm="batch")
    cfg = get_config("tiny").override(["encoder.content_norm=none"])
    assert cfg.encoder.content_norm == "none" and get_config("tiny").encoder.content_norm == "layer"
