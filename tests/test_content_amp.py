"""An encoder that reads ``log_amp`` on the session's amplitude scale (``EncoderConfig.content_amp="scale"``):
the same content in pre-training, fine-tuning, the probe and the live decoder, on real Côté-Allard EMG."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

import aemg.evaluate.encoder_methods as em  # noqa: E402
from aemg.cli import main  # noqa: E402
from aemg.evaluate.data import SignalSource, fold_sets  # noqa: E402
from aemg.evaluate.folds import loso_folds, subset  # noqa: E402
from aemg.live.model import LiveModel  # noqa: E402
from aemg.model import load_encoder  # noqa: E402
from aemg.tokens import estimate_floor  # noqa: E402
from aemg.tokens.features import FEATURE_NAMES  # noqa: E402
from aemg.train.sources import scaled_content  # noqa: E402
from conftest import LIVE_USER, tiny_pretraining  # noqa: E402
from live_helpers import decode, offline_decisions, with_events  # noqa: E402

FAST = em.FinetuneConfig(epochs=1, batch_size=16, max_tokens=64)


@pytest.fixture(scope="module")
def scale_run(corpus_cote_allard, tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_pretraining(corpus_cote_allard, tmp_path_factory.mktemp("scale") / "run", 4, content_amp="scale")
    torch.set_num_threads(before)


def test_scaled_content_is_log_amp_on_the_session_scale(corpus_cote_allard):
    """log_amp + log(floor_c) - 2 log(scale_c), the floor recomputed by hand from the session's unscaled signals."""
    c = corpus_cote_allard
    ts = em.trial_tokens(c).ts
    got = scaled_content(c, ts)
    la = FEATURE_NAMES.index("log_amp")
    assert np.array_equal(np.delete(got, la, 1), np.delete(ts.tokens.content, la, 1))
    subj, sess = str(ts.recordings.subject[0]), str(ts.recordings.session[0])
    recs = list(c.iter_recordings(subject=subj, session=sess, scaled=False))
    cfg = ts.settings.config
    floor = estimate_floor([r.signal for r in recs], float(recs[0].fs), percentile=cfg.floor_percentile,
                           highpass_hz=cfg.highpass_hz, order=cfg.highpass_order, smooth_ms=cfg.smooth_ms,
                           mains_hz=recs[0].mains_hz if ts.settings.notch else None)
    scale = np.asarray(c.scale(subj, sess), np.float64)
    rec_of = np.asarray(ts.groups.recording)[np.asarray(ts.tokens.group)]
    mine = np.flatnonzero((np.asarray(ts.recordings.subject)[rec_of] == subj)
                          & (np.asarray(ts.recordings.session)[rec_of] == sess))
    ch = np.asarray(ts.tokens.channel)[mine]
    want = ts.tokens.content[mine, la] + np.log(floor[ch]) - 2 * np.log(scale[ch])
    assert len(mine) > 100 and np.allclose(got[mine, la], want, atol=1e-4)
    assert not np.allclose(got[mine, la], ts.tokens.content[mine, la], atol=0.1)  # it does move


def test_a_scale_run_feeds_scaled_content_to_finetuning_and_the_probe(scale_run, corpus_cote_allard, monkeypatch):
    c = corpus_cote_allard
    assert load_encoder(scale_run).cfg.content_amp == "scale"
    fold = loso_folds(subset(c.trials, "cote-allard/evaluation/"))[0]
    train, test = fold_sets(SignalSource(c), fold, "session")
    tt = em.trial_tokens(c)
    calls = []
    real = em.scale_content
    monkeypatch.setattr(em, "scale_content", lambda b: calls.append(1) or real(b))
    m = em.FinetuneMethod(scale_run, tt, FAST)
    assert not m.cfg.amp_content
    m.fit(train)
    assert m.cfg.amp_content and calls  # the run decides: its content is fed, not the floor-relative one
    n = len(calls)
    assert len(m.predict(test).y_pred) == len(test.y) and len(calls) > n
    p = em.ProbeMethod(scale_run, tt)
    n = len(calls)
    p.fit(train)
    assert len(calls) > n
    with pytest.raises(ValueError, match="keep amp_head"):
        em.ProbeMethod(scale_run, tt, em.ProbeConfig(amp_head=False)).fit(train)


def test_pretrain_refuses_networks_that_read_different_content(capsys, corpus_cote_allard, tmp_path):
    rc = main(["--log-level", "ERROR", "pretrain", "--config", "tiny", "--corpus", str(corpus_cote_allard.path),
               "--out", str(tmp_path / "run"), "--set", "encoder.content_amp=scale"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err
    assert "--set encoder.content_amp=scale: expected the same tokenizer.encoder.content_amp" in err
    assert not (tmp_path / "run").exists()


def test_live_decoding_of_a_scale_model_equals_offline(scale_run, corpus_cote_allard, tmp_path):
    """aemg finetune on the scale run, then the live decoder's final decisions equal the offline network's."""
    out = tmp_path / "model"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["--log-level", "ERROR", "finetune", "--run", str(scale_run), "--corpus", str(corpus_cote_allard.path),
                   "--subject", LIVE_USER, "--reps", "1", "--out", str(out), "--set", "epochs=1",
                   "--set", "max_tokens=64", "--set", "batch_size=4"])
    assert rc == 0
    model = LiveModel(out)
    assert model.cfg.amp_content and model.uses_amplitude
    recs = with_events(model, list(corpus_cote_allard.iter_recordings(subject=LIVE_USER, scaled=False)), 2)
    for rec in recs:
        floor = np.asarray(model.info.calibration_of(rec.subject, rec.session).noise_floor)
        offline = offline_decisions(model, rec, floor)
        live = decode(model, rec, 7)
        for e, (_, logp) in offline.items():
            last = [d for d in live if d.event == e and d.status == "confirmed"][-1]
            want = np.exp(logp - logp.max())
            np.testing.assert_allclose(last.probabilities, want / want.sum(), rtol=1e-4, atol=1e-5)


def test_pretrain_refuses_sources_whose_content_the_config_does_not_read(corpus_cote_allard, tmp_path):
    from aemg.train import TokenSource, pretrain
    from aemg.train.config import get_config
    from aemg.train.sources import token_recordings

    ts = em.trial_tokens(corpus_cote_allard).ts
    src = TokenSource("cote-allard", str(corpus_cote_allard.path), corpus_cote_allard.hash, token_recordings(ts)[:20])
    cfg = get_config("tiny").override(["encoder.content_amp=scale", "tokenizer.encoder.content_amp=scale"])
    with pytest.raises(ValueError, match="disagree on log_amp's reference: sources \\['floor'\\], encoder.content_amp "
                                         "'scale'"):
        pretrain(cfg, [src], tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_content_amp_option_sets_both_networks(corpus_cote_allard, tmp_path):
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--log-level", "ERROR", "pretrain", "--config", "tiny", "--max-steps", "2", "--content-amp",
                     "scale", "--corpus", str(corpus_cote_allard.path), "--out", str(out), "--no-progress"]) == 0
    from aemg.train.config import PretrainConfig

    cfg = PretrainConfig.load(out / "config.json")
    assert cfg.encoder.content_amp == cfg.tokenizer.encoder.content_amp == "scale"
    assert load_encoder(out).cfg.content_amp == "scale"
