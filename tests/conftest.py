"""Session-wide fixtures: the real data folder and corpora prepared from it once per test session.

Preparing a real dataset takes seconds to tens of seconds on a small machine, so each is prepared
at most once per ``pytest`` run (into ``tmp_path_factory``) and shared by every test that asks for it.
The real data is part of the repository's working set: a missing folder is an error, not a skip.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REAL_FOLDERS = {"uci-gestures": "uci-gestures", "cote-allard": "cote-allard", "ciil": "ciil", "3dc": "3dc"}
REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before collecting (one message, not a red test per fixture use) when the real data is not beside the
    checkout: the suite tests every feature on real EMG, so it cannot run without ``../shared/data``."""
    if not REAL_ROOT.is_dir():
        pytest.exit(f"real data folder not found: {REAL_ROOT} (the tests need the shared recordings beside the "
                    f"repository, as ../shared/data; clone the repository next to them)", returncode=4)


@pytest.fixture(scope="session")
def real_root() -> Path:
    """``/work/shared/data``-style folder beside the repository, holding the four real datasets."""
    assert REAL_ROOT.is_dir(), f"real data folder not found: {REAL_ROOT}"
    return REAL_ROOT


@pytest.fixture(scope="session")
def prepared_corpus(real_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], object]:
    """``prepared_corpus(name)``: the :class:`aemg.corpus.Corpus` of a real dataset, prepared once per session."""
    from aemg.corpus import prepare

    cache: dict[str, object] = {}

    def get(name: str) -> object:
        if name not in cache:
            raw = real_root / REAL_FOLDERS[name]
            out = tmp_path_factory.mktemp(f"corpus-{name}") / "corpus"
            cache[name] = prepare(name, raw, out, progress=False)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def corpus_uci(prepared_corpus):
    return prepared_corpus("uci-gestures")


@pytest.fixture(scope="session")
def corpus_cote_allard(prepared_corpus):
    return prepared_corpus("cote-allard")


def tiny_pretraining(corpus, out: Path, steps: int, content_amp: str = "floor") -> Path:
    """A ``tiny`` pre-training of ``steps`` per stage on Côté-Allard's pre-training subjects only, with one torch
    thread: the run the encoder tests fine-tune or probe on the evaluation subjects, whom it never saw. The
    corpus's token set is the one ``trial_tokens`` caches, so the methods built later in the process share it.
    ``content_amp="scale"``: the encoders read ``log_amp`` on the session scale (as ``aemg pretrain --set``)."""
    import torch

    from aemg.evaluate.encoder_methods import trial_tokens
    from aemg.train import TokenSource, pretrain
    from aemg.train.config import get_config
    from aemg.train.sources import scaled_content, token_recordings

    ts = trial_tokens(corpus).ts
    content = scaled_content(corpus, ts) if content_amp == "scale" else None
    recs = [r for r in token_recordings(ts, content) if r.subject.startswith("cote-allard/pretraining/")]
    pre = TokenSource(corpus.dataset, str(Path(corpus.path).resolve()), corpus.hash, recs,
                      tuple(ts.meta.get("feature_names") or ()), content_amp=content_amp)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        amp = [f"encoder.content_amp={content_amp}", f"tokenizer.encoder.content_amp={content_amp}"]
        pretrain(get_config("tiny").override([f"stage1.max_steps={steps}", f"stage2.max_steps={steps}", *amp]), [pre],
                 out, progress=False)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="session")
def cote_allard_tiny_run(corpus_cote_allard, tmp_path_factory) -> Path:
    """:func:`tiny_pretraining` with 8 steps per stage, made once per session (read-only for its users)."""
    return tiny_pretraining(corpus_cote_allard, tmp_path_factory.mktemp("tiny-ca") / "run", 8)


LIVE_USER = "cote-allard/evaluation/Female0"
"""The held-out Côté-Allard subject the live tests fine-tune on and decode."""


@pytest.fixture(scope="session")
def cote_allard_live_model(cote_allard_tiny_run, corpus_cote_allard, tmp_path_factory) -> Path:
    """The session's tiny run fine-tuned (``aemg finetune``, one epoch, one torch thread) on LIVE_USER's first
    repetition per class: the model directory the live tests decode with, made once per session."""
    import contextlib
    import io

    import torch

    from aemg.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("live") / "model"
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(["--log-level", "ERROR", "finetune", "--run", str(cote_allard_tiny_run), "--corpus",
                       str(corpus_cote_allard.path), "--subject", LIVE_USER, "--reps", "1", "--out", str(out),
                       "--set", "epochs=1", "--set", "max_tokens=64", "--set", "batch_size=4"])
    finally:
        torch.set_num_threads(before)
    assert rc == 0, err.getvalue()
    return out


@pytest.fixture(scope="session")
def corpus_ciil(prepared_corpus):
    return prepared_corpus("ciil")


@pytest.fixture(scope="session")
def corpus_3dc(prepared_corpus):
    return prepared_corpus("3dc")


def write_manifest(folder: Path, rows: list[dict], signals: dict[str, np.ndarray]) -> Path:
    """A generic-importer folder: ``signals`` (file name -> (samples, channels) array) + manifest rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in signals.items():
        np.save(folder / name, arr)
    cols = ["file", "subject", "session", "trial", "gesture", "fs", "layout", "repetition", "units"]
    with open(folder / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return folder


def small_dataset(folder: Path, *, n_subjects: int = 3, sessions: tuple[str, ...] = ("s1", "s2"),
                  gestures: tuple[str, ...] = ("rest", "hand_close", "wave"), fs: float = 1000.0, n: int = 1500,
                  duplicate: bool = False, seed: int = 0) -> Path:
    """A tiny manifest dataset (noise with 60 Hz mains); ``duplicate`` files subject B's first session twice."""
    rng = np.random.default_rng(seed)
    rows, signals = [], {}
    t = np.arange(n) / fs
    for s in range(n_subjects):
        for sess in sessions:
            for rep in range(2):
                for g in gestures:
                    name = f"S{s}_{sess}_{g}_{rep}.npy"
                    amp = 1.0 + s + 3.0 * (g != "rest")
                    sig = rng.normal(0.0, amp, (n, 4)) + 4.0 * np.sin(2 * np.pi * 60.0 * t)[:, None] + 7.0
                    signals[name] = sig.astype(np.float32)
                    rows.append({"file": name, "subject": f"S{s}", "session": sess, "trial": f"{g}_{rep}",
                                 "gesture": g, "fs": fs, "layout": "unknown4", "repetition": rep, "units": "uV"})
    if duplicate:
        for r in [r for r in rows if r["subject"] == "S0" and r["session"] == sessions[0]]:
            rows.append({**r, "subject": f"S{n_subjects}"})
    return write_manifest(folder, rows, signals)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_dataset(**kw)``: a fresh tiny manifest folder (see :func:`small_dataset`)."""
    count = iter(range(1000))

    def make(**kw) -> Path:
        return small_dataset(tmp_path / f"raw{next(count)}" / "tiny", **kw)

    return make
