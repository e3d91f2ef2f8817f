"""The pre-trained encoder as evaluated methods: ``aemg-probe``, ``aemg-finetune``, ``scratch`` and the
ablations ``aemg-windows`` / ``aemg-nospatial`` (``aemg-finetune`` with a run pre-trained on 200 ms window
tokens / with the channel index instead of electrode coordinates).

A trial is classified from the token groups that belong to it (the corpus's
:class:`~aemg.tokens.TokenSet` of the same kind as the run's pre-training, events or fixed windows,
stored or made now, loaded once per corpus and kind and shared read-only by every fold).
``ENCODER_METHODS[name](run_dir=..., corpus=...)`` (and ``ABLATION_METHODS[name]``) returns a zero-argument factory, so
:func:`aemg.evaluate.run.run_folds` builds a fresh method (fresh pre-trained weights, fresh head and
optimizer) for every fold. ``predict`` (the first call that sees the fold's test subjects) refuses,
before any prediction, a run whose pre-training saw one of them (:func:`check_run_subjects`). torch is imported only when a method is fitted.

Rules: methods train and predict on spans of ``span_groups`` consecutive token groups of a trial
(:mod:`aemg.evaluate.spans`; a trial's class is the argmax of its spans' mean log-probability, and a
span's states are pooled per channel by default); a trial without any token is predicted
as the class most frequent among the event-less training trials, else the most frequent training
class (ties: lowest class index); a rest trial with events is classified like any other. Scale:
``session`` uses the stored token set (each session's own noise floor); ``calibration`` a per-fold view
in which the held-out subjects are tokenized with a floor from their calibration trials only, or at
k = 0 the training subjects' pooled floor (:mod:`aemg.evaluate.fold_tokens`); the same fallback applies
to a test trial that has no event under that floor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.errors import DataFormatError
from aemg.evaluate.method import Method, Prediction
from aemg.evaluate.spans import epoch_spans
from aemg.evaluate.weighting import calibration_weights, check_share, epoch_trials, weighted_listing

if TYPE_CHECKING:
    import torch

    from aemg.corpus import Corpus
    from aemg.evaluate.data import TrialSet
    from aemg.model import Encoder
    from aemg.tokens import TokenSet


@dataclass(frozen=True)
class FinetuneConfig:
    """Training of ``aemg-finetune`` and ``scratch`` on spans of ``span_groups`` consecutive token groups of a
    trial (a fresh random partition of every training trial per epoch); a trial is predicted by the mean of
    its spans' class log-probabilities. ``span_groups=0``: the whole trial (its first ``max_tokens``) is one span.
    Defaults chosen by UCI LOSO from ``small-b`` (docs/evaluate.md), within ~30 s per fit on ~250 trials, one core."""

    epochs: int = 5
    batch_size: int = 16  # spans per optimizer step
    lr_encoder: float = 3e-4  # AdamW learning rate of the encoder (pre-trained or random)
    lr_head: float = 3e-3  # AdamW learning rate of the linear head
    weight_decay: float = 0.01
    max_tokens: int = 256  # cap on a span's tokens (whole-trial spans: the first tokens; Côté-Allard ~400 per trial)
    span_groups: int = 4  # groups per span (a group: <= 100 ms, one token per channel); 0 = whole trial
    spans_per_trial: int = 3  # training spans drawn per trial and epoch (0 = all of its partition)
    predict_stride: int = 0  # groups between predicted spans' starts; 0 = span_groups (no overlap)
    pool: str = "channel"  # head input: "mean" of the span's token states, "meanmax", or "channel" (mean per channel)
    amp_head: bool = True  # the head also sees each channel's mean token amplitude on the session scale (amplitude.py)
    amp_gain: float = 0.0  # weight of the standardised amplitudes in the head input; 0 = sqrt(d_model)
    label_smoothing: float = 0.0
    head_init: str = "random"  # torch's init; "probe": a pre-trained encoder's head starts as a logistic regression
    # on its frozen head input (linear probe, then fine-tune: LP-FT, Kumar et al. 2022; scratch always random).
    # Not the default: +5.5 on UCI (the tuning data), -5 to -9 on Cote-Allard and CIIL (docs/evaluate.md)
    probe_C: float = 1.0  # LogisticRegression inverse regularisation of the probe head init
    amp_content: bool = False  # the encoder reads log_amp on the session scale (the amplitude path's amp) instead of
    # relative to the noise floor; needs amp_head. Set by the fit for a run pre-trained so (content_amp="scale")
    gain_jitter: float = 0.0  # std of a random log-gain per training span and channel (natural log of amplitude):
    # a person's other muscle-to-electrode coupling, added to log_amp and the amplitude path (TKEO ~ A^2: twice it)
    lr_schedule: str = "constant"  # "constant" learning rates, or a "linear" / "cosine" decay to 0 over the fit
    # (after warmup_frac of its steps at a linear ramp): the last steps are small, so the fitted weights depend less
    # on the order of the last batches (fine-tuning's fit-to-fit spread was +-10 points on CIIL ElectrodeShift)
    warmup_frac: float = 0.0  # fraction of the fit's steps with a linear warm-up (with a decaying schedule)
    weight_avg: float = 0.5  # fraction of the fit's last optimizer steps whose weights are averaged uniformly into the
    # final network (stochastic weight averaging, torch.optim.swa_utils.AveragedModel; 0 = the last step's weights;
    # one network, as cheap as the last weights, less dependent on the last batches; 0.5 chosen on the tuning folds)
    fits: int = 1  # members trained from the same start (seeds seed, seed+1, ...) whose weights are averaged into
    # one network (a uniform "model soup", Wortsman et al. 2022; with weight_avg, of each member's averaged steps)
    token_drop: float = 0.0  # fraction of a training span's tokens dropped at random (each span keeps at least one):
    # another person's contraction lights up other channels and groups; 0 = off
    layer_decay: float = 1.0  # encoder learning rate of block i of L (0 = first) times layer_decay ** (L - i); the
    # embedding gets layer_decay ** (L + 1), the final norm the encoder rate (layer-wise decay, BEiT); 1 = one rate
    l2sp: float = 0.0  # weight of the squared distance of the encoder's parameters from their values at the start
    # of the fit, added to the loss (L2-SP, Li et al. 2018: stay near the pre-trained weights on few labels); 0 = off
    head_dropout: float = 0.0  # dropout on the head input during training (pooled states and amplitude columns): a
    # few hundred spans fit a head over n_channels x d_model inputs; 0 = off
    calib_share: float = 0.75  # share of an epoch's training trials that are the held-out subjects' calibration
    # trials (TrialSet.test_subjects; low-label k >= 1), repeated, the others subsampled so an epoch costs the same
    # (epoch_trials): a new user's k repetitions per class are otherwise ~3% (Cote-Allard k = 1: 7 of ~250); 0 = off,
    # the former fit; 0.75 chosen on the tuning folds (docs/evaluate.md, session 11); no effect at k = 0
    calib_epochs: int = 0  # epochs of a fit with calibration trials (low-label k >= 1); 0 = ``epochs``: the
    # weighted listing repeats the user's few trials, which more passes fit better (at k >= 1 only: more epochs
    # cost LOSO k = 0, docs/evaluate.md); wall time grows with it
    probe_blend: float = 0.5  # weight of a frozen-encoder probe (shrinkage LDA on the pre-trained states,
    # :func:`probe_config`) in each span's mixture of its and the fine-tuned network's probabilities
    # (:func:`blend_log_probs`; pre-trained methods only; saved with the model as a second network, probe.pt); 0 = off;
    # 0.5 chosen on the tuning folds (docs/evaluate.md, session 16)
    seed: int = 0  # torch.manual_seed at the start of every fold's fit

    def __post_init__(self) -> None:
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ValueError(f"lr_schedule: expected 'constant', 'linear' or 'cosine'; found {self.lr_schedule!r}")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ValueError(f"warmup_frac: expected a fraction in [0, 1); found {self.warmup_frac!r}")
        if self.head_init not in ("probe", "random"):
            raise ValueError(f"head_init: expected 'probe' or 'random'; found {self.head_init!r}")
        if self.amp_content and not self.amp_head:
            raise ValueError("amp_content: the session-scale amplitude comes from the amplitude path; set amp_head too")
        if not 0.0 <= self.weight_avg < 1.0:
            raise ValueError(f"weight_avg: expected a fraction of the steps in [0, 1); found {self.weight_avg!r}")
        if self.fits < 1:
            raise ValueError(f"fits: expected at least 1 member; found {self.fits!r}")
        if not self.gain_jitter >= 0:
            raise ValueError(f"gain_jitter: expected a std >= 0; found {self.gain_jitter!r}")
        if not 0.0 <= self.token_drop < 1.0:
            raise ValueError(f"token_drop: expected a fraction in [0, 1); found {self.token_drop!r}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout: expected a fraction in [0, 1); found {self.head_dropout!r}")
        if not self.l2sp >= 0:
            raise ValueError(f"l2sp: expected a weight >= 0; found {self.l2sp!r}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay: expected a factor in (0, 1]; found {self.layer_decay!r}")
        check_share(self.calib_share)
        if not 0.0 <= self.probe_blend <= 1.0:
            raise ValueError(f"probe_blend: expected a weight in [0, 1]; found {self.probe_blend!r}")
        if self.calib_epochs < 0:
            raise ValueError(f"calib_epochs: expected epochs >= 0 (0 = epochs); found {self.calib_epochs!r}")


@dataclass(frozen=True)
class ProbeConfig:
    """The frozen-encoder probe: StandardScaler + a linear classifier (shrinkage LDA by default) on pooled span
    states (spans of ``span_groups`` groups tiling a trial; 0 = the whole trial); a trial is the mean of its spans'
    log-probs."""

    max_tokens: int = 512
    batch_size: int = 32
    classifier: str = "lda"  # "lda": LinearDiscriminantAnalysis with Ledoit-Wolf shrinkage (lsqr); "logreg":
    # LogisticRegression (before session 13). LDA chosen on the tuning folds: LOSO +2.0 (docs/evaluate.md)
    C: float = 1.0  # LogisticRegression inverse regularisation ("logreg")
    max_iter: int = 2000  # LogisticRegression iterations ("logreg")
    span_groups: int = 4
    predict_stride: int = 0  # 0 = span_groups
    pool: str = "channel"  # "mean", "meanmax" or "channel"
    amp_head: bool = True  # also each channel's mean token amplitude on the session scale (amplitude.py)
    amp_gain: float = 0.0  # weight of the standardised amplitude columns; 0 = sqrt(d_model)
    calib_share: float = 0.75  # share of the classifier's training spans (LDA: by repetition, weighted_listing;
    # logreg: of its sample weight, calibration_weights) that are the held-out subjects' calibration spans (low-label
    # k >= 1), as FinetuneConfig.calib_share; 0 = every span alike,
    # the former fit; 0.75 chosen on the tuning folds (docs/evaluate.md, session 11); no effect at k = 0

    def __post_init__(self) -> None:
        check_share(self.calib_share)
        if self.classifier not in ("logreg", "lda"):
            raise ValueError(f"classifier: expected 'logreg' or 'lda'; found {self.classifier!r}")


# ------------------------------------------------------------------ provenance


def _run_corpora(run_dir: Path) -> list[dict[str, Any]]:
    for name in ("run.json", "summary.json"):
        p = run_dir / name
        if p.exists():
            corpora = json.loads(p.read_text()).get("corpora")
            if isinstance(corpora, list) and all(isinstance(c, dict) and "subjects" in c for c in corpora):
                return corpora
            raise DataFormatError(p, "a 'corpora' list whose entries name their 'subjects'",
                                  "found none: cannot prove pre-training never saw a test subject")
    raise DataFormatError(run_dir / "run.json", "the run's provenance (written by aemg pretrain)", "found no run.json "
                          "or summary.json: cannot prove pre-training never saw a test subject")


def check_run_subjects(run_dir: str | Path, test_subjects: Sequence[str]) -> None:
    """Refuse (one-line ``DataFormatError``) a run whose pre-training saw a subject about to be tested."""
    run_dir = Path(run_dir)
    if run_dir.name == "encoder.pt":
        run_dir = run_dir.parent
    test = set(test_subjects)
    for c in _run_corpora(run_dir):
        seen = sorted(test & {str(s) for s in c["subjects"]})
        if seen:
            raise DataFormatError(run_dir, f"a pre-training that never saw the test subject {seen[0]}",
                                  f"found it among the subjects of corpus {c.get('dataset', '?')} "
                                  f"({c.get('path', '?')}) in the run's provenance; pre-train with --exclude")


# ------------------------------------------------------------------ tokens of trials


class TrialTokens:
    """A corpus's event TokenSet (or with ``window_ms``, its fixed-window one) with its trials indexed by corpus
    trial number (shared read-only by folds); a ``token_set`` of another kind is a DataFormatError."""

    def __init__(self, corpus: Corpus, token_set: TokenSet | None = None, *, window_ms: float | None = None,
                 test_subjects: tuple[str, ...] = (), base: TrialTokens | None = None) -> None:
        from aemg.train.sources import describe_kind, load_token_set, token_kind, token_set_kind

        self.corpus_path = str(corpus.path)
        self.window_ms = window_ms
        self.kind = token_kind(window_ms)  # {"kind": "events"} or {"kind": "windows", "window_ms": N}
        self.test_subjects = test_subjects  # a calibration view: the held-out subjects it re-tokenized (else ())
        self.base = base  # a calibration view: the shared TrialTokens it was made from (else None)
        self.floors: dict[str, np.ndarray] = {}  # a calibration view: the floor each held-out subject was tokenized with
        self.corpus = corpus
        self.ts = token_set if token_set is not None else load_token_set(corpus, window_ms=window_ms, progress=False)
        if token_set_kind(self.ts) != self.kind:
            raise DataFormatError(f"{self.corpus_path}/tokens", f"a token set of {describe_kind(self.kind)}",
                                  f"found {describe_kind(token_set_kind(self.ts))}")
        tr = self.ts.trials
        rec_ids = np.asarray(self.ts.recordings.id).astype(str)
        self.row = {int(t): i for i, t in enumerate(np.asarray(tr.id, np.int64))}
        self.recording = {int(t): rec_ids[int(r)] for t, r in zip(np.asarray(tr.id), np.asarray(tr.recording))}
        self.n_tokens = np.array([len(s) for s in self.ts.sequences("trial")], np.int64)

    def rows(self, trials: Any) -> np.ndarray:
        """TokenSet trial rows of ``Corpus.trials`` rows (a DataFrame); a mismatch is a DataFormatError."""
        out = []
        for rid, t in zip(trials["recording_id"].astype(str), trials["trial"].astype(int)):
            if int(t) not in self.row or self.recording[int(t)] != rid:
                raise DataFormatError(f"{self.corpus_path}/tokens", f"trial {t} of recording {rid} in the token set",
                                      "found another or none: tokenize the corpus again (aemg tokenize)")
            out.append(self.row[int(t)])
        return np.asarray(out, np.int64)

    def batches(self, rows: np.ndarray, batch_size: int, max_tokens: int,
                labels: np.ndarray | None = None, amp: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Collated batches (docs/dev/contracts.md) of the given trial rows, in order (``amp``: as
        :meth:`span_batches`)."""
        out = []
        seqs = self.ts.sequences("trial") if amp is not None else []
        for a in range(0, len(rows), batch_size):
            r = [int(v) for v in rows[a:a + batch_size]]
            lab = None if labels is None else [int(v) for v in labels[a:a + batch_size]]
            batch = self.ts.collate(trials=r, labels=lab, max_tokens=max_tokens)
            if amp is not None:
                batch["amp"] = pad_amp([amp[seqs[i][:max_tokens] if max_tokens else seqs[i]] for i in r],
                                       batch["pad_mask"].shape[1])
            out.append(batch)
        return out

    def amplitude(self, scales: Mapping[tuple[str, str], np.ndarray]) -> np.ndarray:
        """``(N,)`` per-token amplitude on the scale rule's per-session scales (:mod:`aemg.tokens.amplitude`);
        the floor of each session is the one its tokens were made with. NaN outside ``scales``' sessions."""
        from aemg.tokens.amplitude import amplitude_offsets, session_floor, token_amplitude

        settings = self.ts.settings.to_meta()
        floors = {(subj, sess): (self.floors[subj] if subj in self.floors
                                 else session_floor(self.corpus, subj, sess, settings)) for subj, sess in scales}
        return token_amplitude(self.ts, amplitude_offsets(self.ts, floors, scales))

    @property
    def n_channels(self) -> int:
        """Channels of the token set (the largest channel index + 1): the width of ``channel`` pooling."""
        return int(self.ts.tokens.channel.max(initial=-1)) + 1

    def groups(self, rows: np.ndarray) -> list[list[np.ndarray]]:
        """Per trial row, its token indices split by group (time order), cached for all trials on first use."""
        from aemg.evaluate.spans import trial_groups

        if getattr(self, "_groups", None) is None:
            self._groups = trial_groups(self.ts, self.ts.sequences("trial"))
        return [self._groups[int(r)] for r in rows]

    def span_batches(self, spans: list[np.ndarray], batch_size: int, max_tokens: int,
                     labels: np.ndarray | None = None, amp: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Collated batches of token-index arrays (spans), in order; with ``amp`` (per-token amplitude,
        :meth:`amplitude`) each batch also holds ``amp`` (B, N) float32, padded like the other entries."""
        out = []
        for a in range(0, len(spans), batch_size):
            lab = None if labels is None else [int(v) for v in labels[a:a + batch_size]]
            if lab is None:
                lab = [-100] * len(spans[a:a + batch_size])
            batch = self.ts.collate(tokens=spans[a:a + batch_size], labels=lab, max_tokens=max_tokens)
            if amp is not None:
                batch["amp"] = pad_amp([amp[t[:max_tokens] if max_tokens else t] for t in spans[a:a + batch_size]],
                                       batch["pad_mask"].shape[1])
            out.append(batch)
        return out

    def tiles(self, rows: np.ndarray, span: int, stride: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The fixed tiling of each trial row into spans (``span`` 0: the whole trial); (spans, row index per span)."""
        from aemg.evaluate.spans import tile_spans

        spans: list[np.ndarray] = []
        owner: list[int] = []
        for i, g in enumerate(self.groups(rows)):
            s = [np.concatenate(g)] if g and not span else tile_spans(g, span, stride or span)
            spans += s
            owner += [i] * len(s)
        return spans, np.asarray(owner, np.int64)


_TOKENS: dict[tuple[str, str, float | None], TrialTokens] = {}


def trial_tokens(corpus: Corpus, window_ms: float | None = None) -> TrialTokens:
    """The corpus's :class:`TrialTokens` (events, or ``window_ms`` windows), made once per (path, hash, kind)."""
    key = (str(Path(corpus.path).resolve()), str(corpus.hash), window_ms)
    if key not in _TOKENS:
        _TOKENS[key] = TrialTokens(corpus, window_ms=window_ms)
    return _TOKENS[key]


def check_run_tokens(run_dir: str | Path, tokens: TrialTokens) -> None:
    """Refuse (one-line ``DataFormatError``) token sets of another kind than the run pre-trained on."""
    from aemg.train.sources import describe_kind, run_token_kind

    kind = run_token_kind(run_dir)
    if kind != tokens.kind:
        raise DataFormatError(run_dir, f"a token set of the kind the run pre-trained on ({describe_kind(kind)})",
                              f"found {describe_kind(tokens.kind)} of {tokens.corpus_path}")


def run_trial_tokens(run_dir: str | Path, corpus: Corpus) -> TrialTokens:
    """The corpus's :class:`TrialTokens` of the kind the run pre-trained on (``run.json`` ``"tokens"``)."""
    from aemg.train.sources import run_token_kind

    kind = run_token_kind(run_dir)
    return trial_tokens(corpus, kind.get("window_ms"))


def fallback_class(y: np.ndarray, has_tokens: np.ndarray, n_classes: int) -> int:
    """The prediction for a trial without tokens: the most frequent class of the event-less training
    trials, else of all training trials (ties: lowest index)."""
    pool = y[~has_tokens] if (~has_tokens).any() else y
    return int(np.bincount(pool, minlength=n_classes).argmax())


def _check_scale(train: TrialSet) -> None:
    if train.scale_mode not in ("session", "calibration"):
        raise ValueError(f"scale {train.scale_mode!r} is not supported for encoder methods (aemg-probe, "
                         "aemg-finetune, scratch): use --scale session or calibration")


def _calibration_view(tokens: TrialTokens, train: TrialSet) -> TrialTokens:
    """The fold's view of the token set under the calibration scale (:mod:`aemg.evaluate.fold_tokens`)."""
    from aemg.evaluate.fold_tokens import fold_token_set

    view = fold_token_set(tokens.ts, train)
    out = TrialTokens(train.corpus, view.token_set, window_ms=tokens.window_ms, test_subjects=view.test_subjects,
                      base=tokens)
    out.floors = dict(view.floors)
    return out


def _subjects(ts: TrialSet) -> list[str]:
    return sorted(set(ts.trials["subject"].astype(str)))


def _content_dim_check(enc: Encoder, tokens: TrialTokens, run_dir: Path) -> None:
    check_run_tokens(run_dir, tokens)
    if int(enc.cfg.content_dim) != int(tokens.ts.n_features):
        raise DataFormatError(run_dir / "encoder.pt", f"an encoder for {tokens.ts.n_features} token features "
                              f"(the token set of {tokens.corpus_path})", f"found content_dim {enc.cfg.content_dim}")


# ------------------------------------------------------------------ methods


class _EncoderMethod:
    """What the three methods share: the run, the token set, the leakage and scale checks, the fallback."""

    name: str = ""

    def __init__(self, run_dir: str | Path, tokens: TrialTokens) -> None:
        self.run_dir = Path(run_dir)
        self.tokens = tokens
        self.fallback = 0
        self.n_classes = 0
        self.amp: np.ndarray | None = None  # per-token amplitude on the current TrialSet's scales (amp_head)

    def _start(self, train: TrialSet) -> tuple[np.ndarray, np.ndarray]:
        """Scale check (calibration: this fold's token view replaces the shared one), then (token-set rows,
        has-tokens mask) of the training trials; sets the fallback class."""
        _check_scale(train)
        base = self.tokens.base or self.tokens  # fitted again: from the shared set, not from the last view
        self.tokens = _calibration_view(base, train) if train.scale_mode == "calibration" else base
        rows = self.tokens.rows(train.trials)
        has = self.tokens.n_tokens[rows] > 0
        self.n_classes = len(train.classes)
        self.fallback = fallback_class(train.y, has, self.n_classes)
        return rows, has

    def predict(self, test: TrialSet) -> Prediction:
        """One class per test trial; first refuses a run whose pre-training saw one of the test subjects."""
        _check_scale(test)
        check_run_subjects(self.run_dir, _subjects(test))
        if test.scale_mode == "calibration" and set(self.tokens.test_subjects) != set(_subjects(test)):
            raise ValueError(f"{self.name}: the calibration token view was made for held-out subjects "
                             f"{list(self.tokens.test_subjects)}, not for {_subjects(test)}: fit on this fold first")
        rows = self.tokens.rows(test.trials)
        has = self.tokens.n_tokens[rows] > 0
        if getattr(getattr(self, "cfg", None), "amp_head", False):
            self.amp = self.tokens.amplitude(test.scales)
        y = np.full(len(rows), self.fallback, np.int64)
        if has.any():
            y[has] = self._predict_rows(rows[has])
        return Prediction(y_pred=y)

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def pool_states(h: torch.Tensor, batch: dict[str, Any], how: str, n_channels: int = 0) -> torch.Tensor:
    """(B, N, D) states -> (B, D) mean over real tokens; ``meanmax``: (B, 2D) mean and max; ``channel``:
    (B, n_channels * D) the mean per channel index (0 where a channel has no token), so that a linear head
    sees which channel a state came from, as LDA's per-channel features do."""
    import torch

    from aemg.model.encoder import masked_mean

    pad = batch["pad_mask"]
    if how == "mean":
        return masked_mean(h, pad)
    if how == "meanmax":
        mx = h.masked_fill(pad.unsqueeze(-1), float("-inf")).amax(1)
        return torch.cat([masked_mean(h, pad), torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))], dim=1)
    if how == "channel":
        return _channel_mean(h, batch, n_channels).reshape(h.shape[0], -1)
    raise ValueError(f"pool must be 'mean', 'meanmax' or 'channel', got {how!r}")


def _channel_mean(x: torch.Tensor, batch: dict[str, Any], n_channels: int) -> torch.Tensor:
    """(B, N, D) per-token values -> (B, n_channels, D) their mean per channel index over the real tokens
    (0 where a span has no token of a channel)."""
    import torch

    onehot = torch.nn.functional.one_hot(batch["channel"].clamp(0, n_channels - 1), n_channels).to(x.dtype)
    onehot = onehot * (~batch["pad_mask"]).unsqueeze(-1).to(x.dtype)  # (B, N, C)
    return torch.einsum("bnc,bnd->bcd", onehot, x) / onehot.sum(1).clamp(min=1.0).unsqueeze(-1)


def _pool_width(d_model: int, how: str, n_channels: int) -> int:
    return d_model * {"mean": 1, "meanmax": 2, "channel": n_channels}.get(how, 1)


def pad_amp(amps: Sequence[np.ndarray], n: int) -> torch.Tensor:
    """(B, n) float32 tensor of per-span token amplitudes, zero-padded (the batch's ``pad_mask`` marks padding)."""
    import torch

    out = np.zeros((len(amps), n), np.float32)
    for i, a in enumerate(amps):
        out[i, :len(a)] = a
    return torch.from_numpy(out)


def channel_amplitude(batch: dict[str, Any], n_channels: int, mu: Any = 0.0, sd: Any = 1.0) -> torch.Tensor:
    """(B, n_channels) mean of the standardised token amplitudes ``(amp - mu) / sd`` per channel index of each
    span (0, the training mean, where a channel has no token): the head's direct amplitude path."""
    a = ((batch["amp"] - mu) / sd).masked_fill(batch["pad_mask"], 0.0)  # (B, N)
    return _channel_mean(a.unsqueeze(-1), batch, n_channels)[..., 0]


def jitter_gain(batch: dict[str, Any], std: float, n_channels: int) -> dict[str, Any]:
    """A new batch as if each span's channels were ``exp(g)`` times louder, ``g ~ N(0, std)`` per span and channel
    (drawn from torch's global generator): ``log_amp`` (token content, relative to the noise floor, which the
    muscle does not move) and ``amp`` (when present) rise by ``2 g`` (TKEO ~ A^2). Fine-tuning augmentation."""
    import torch

    from aemg.tokens.features import FEATURE_NAMES

    ch = batch["channel"].clamp(0, n_channels - 1)
    g = torch.randn(ch.shape[0], n_channels) * std
    off = 2.0 * torch.gather(g, 1, ch).masked_fill(batch["pad_mask"], 0.0)  # (B, N)
    out = dict(batch)
    content = batch["content"].clone()
    content[..., FEATURE_NAMES.index("log_amp")] += off.to(content.dtype)
    out["content"] = content
    if "amp" in batch:
        out["amp"] = batch["amp"] + off.to(batch["amp"].dtype)
    return out


def _pooled(enc: Encoder, batches: list[dict[str, Any]], how: str = "mean", n_channels: int = 0,
            amp: bool = False) -> np.ndarray:
    """Pooled encoder states (n, width) over real tokens (:func:`pool_states`), no gradients; with ``amp``, the
    spans' per-channel mean amplitude (:func:`channel_amplitude`, unstandardised) appended. An encoder of
    ``content_amp="scale"`` reads the batches' ``amp`` as ``log_amp`` (:func:`scale_content`)."""
    import torch

    enc.eval()
    width = _pool_width(enc.cfg.d_model, how, n_channels) + (n_channels if amp else 0)
    with torch.no_grad():
        parts = []
        for b in batches:
            x = pool_states(enc(scale_content(b) if enc.cfg.content_amp == "scale" else b)[0], b, how, n_channels)
            parts.append(torch.cat([x, channel_amplitude(b, n_channels)], 1) if amp else x)
        return np.concatenate([p.numpy() for p in parts]) if parts else np.zeros((0, width), np.float32)


def trial_mean(span_logp: np.ndarray, owner: np.ndarray, n_trials: int) -> np.ndarray:
    """(S, C) span log-probabilities, span -> trial index -> (n_trials, C) mean log-probability per trial."""
    out = np.zeros((n_trials, span_logp.shape[1]))
    np.add.at(out, owner, span_logp)
    return out / np.maximum(np.bincount(owner, minlength=n_trials), 1)[:, None]


class ProbeMethod(_EncoderMethod):
    """``aemg-probe``: frozen pre-trained encoder, pooled span states -> StandardScaler + shrinkage LDA (or
    LogisticRegression); a trial is the mean of its spans' log-probabilities."""

    name = "aemg-probe"

    def __init__(self, run_dir: str | Path, tokens: TrialTokens, cfg: ProbeConfig | None = None) -> None:
        super().__init__(run_dir, tokens)
        self.cfg = cfg or ProbeConfig()
        self.clf: Any = None
        self.on_fit_start: Callable[[Any], None] | None = None  # tests: sees the encoder before use

    def _features(self, rows: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        spans, owner = self.tokens.tiles(rows, cfg.span_groups, stride)
        amp = self.amp if cfg.amp_head else None
        return _pooled(self.encoder, self.tokens.span_batches(spans, cfg.batch_size, cfg.max_tokens, amp=amp),
                       cfg.pool, self.tokens.n_channels, amp=cfg.amp_head), owner

    def fit(self, train: TrialSet) -> None:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from aemg.model import load_encoder

        rows, has = self._start(train)
        self.encoder = load_encoder(self.run_dir)
        _content_dim_check(self.encoder, self.tokens, self.run_dir)
        if self.encoder.cfg.content_amp == "scale" and not self.cfg.amp_head:
            raise ValueError(f"{self.run_dir}: its encoder reads log_amp on the session scale (content_amp='scale'), "
                             "which the amplitude path computes: keep amp_head")
        if self.on_fit_start is not None:
            self.on_fit_start(self.encoder)
        y = train.y[has]
        self.single = int(y[0]) if len(y) and len(np.unique(y)) == 1 else None
        if not len(y) or self.single is not None:
            return
        if self.cfg.amp_head:
            self.amp = self.tokens.amplitude(train.scales)
        x, owner = self._features(rows[has], self.cfg.span_groups)
        steps: list[Any] = [StandardScaler()]
        if self.cfg.amp_head:  # the amplitude columns (the last n_channels) weighted as in the fine-tuned head
            from sklearn.preprocessing import FunctionTransformer

            w = np.ones(x.shape[1])
            w[-self.tokens.n_channels:] = amp_weight(self.cfg.amp_gain, self.encoder.cfg.d_model)
            steps.append(FunctionTransformer(_weigh, kw_args={"w": w}))
        calib = train.of_test_subjects[has][owner]
        if self.cfg.classifier == "lda":  # no sample weights: the calibration spans' share by repetition
            head: Any = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
            pick: Any = weighted_listing(calib, self.cfg.calib_share)
            weight = {}
        else:
            head, pick = LogisticRegression(C=self.cfg.C, max_iter=self.cfg.max_iter), slice(None)
            weight = ({"logisticregression__sample_weight": calibration_weights(calib, self.cfg.calib_share)}
                      if self.cfg.calib_share > 0 and calib.any() else {})  # off or k = 0: the former fit exactly
        self.clf = make_pipeline(*steps, head)
        self.clf.fit(x[pick], y[owner][pick], **weight)

    def trial_log_probs(self, rows: np.ndarray) -> np.ndarray:
        """(n, n_classes) mean class log-probability over each trial row's spans; classes the classifier never saw
        get -30; without a classifier (one training class or none) that class gets 0 and the others -30."""
        out = np.full((len(rows), self.n_classes), -30.0)
        if self.clf is None:
            out[:, self.fallback if self.single is None else self.single] = 0.0
            return out
        x, owner = self._features(rows, self.cfg.predict_stride)
        out[:, self.clf.classes_] = trial_mean(self.clf.predict_log_proba(x), owner, len(rows))
        return out

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.trial_log_probs(rows).argmax(1).astype(np.int64)

    def network(self) -> torch.nn.Module:
        """The fitted probe as one torch module (:func:`probe_classifier`: the frozen encoder, its pooled states and
        raw amplitude columns, then a linear head into which the scaler and the amplitude weighting are folded), in
        eval mode without gradients: its log-softmax on a span is ``clf.predict_log_proba`` of the span's features
        (float32), so the probe travels as a state dict and runs on live spans like the fine-tuned network."""
        import torch

        net = probe_classifier(self.encoder, self.n_classes, self.cfg, self.tokens.n_channels)
        weight = np.zeros(tuple(net.head.weight.shape))
        bias = np.full(self.n_classes, -30.0)
        if self.clf is None:  # one training class (or none): that class, as trial_log_probs
            bias[self.fallback if self.single is None else self.single] = 0.0
        else:
            scaler, head = self.clf[0], self.clf[-1]
            w = self.clf[1].kw_args["w"] if len(self.clf) == 3 else 1.0  # the amplitude columns' weight
            weight, bias = linear_head(head, self.n_classes, scaler.mean_, scaler.scale_ / w)
        with torch.no_grad():
            net.head.weight.copy_(torch.as_tensor(weight, dtype=net.head.weight.dtype))
            net.head.bias.copy_(torch.as_tensor(bias, dtype=net.head.bias.dtype))
        net.requires_grad_(False)
        return net.eval()


def linear_head(model: Any, n_classes: int, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (n_classes, D), bias (n_classes,))`` of a linear layer on raw inputs ``x`` whose softmax is the
    ``predict_proba`` of a fitted scikit-learn linear classifier (``coef_``, ``intercept_``, ``classes_``: LDA,
    LogisticRegression) on ``(x - mean) / scale``; a binary one's decision ``d`` becomes the logits ``(-d/2, d/2)``;
    classes it never saw get weight 0 and bias -30."""
    coef, icpt = np.asarray(model.coef_, np.float64), np.asarray(model.intercept_, np.float64).reshape(-1)
    if len(model.classes_) == 2 and coef.shape[0] == 1:
        coef, icpt = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    k = coef / scale
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, -30.0)
    weight[model.classes_] = k
    bias[model.classes_] = icpt - k @ mean
    return weight, bias


def probe_config(cfg: FinetuneConfig) -> ProbeConfig:
    """The probe that ``probe_blend`` blends in: shrinkage LDA (ProbeConfig's defaults) on the fine-tuning's spans,
    pooling, amplitude path and calibration share, so that both networks read the same span batches."""
    return ProbeConfig(max_tokens=cfg.max_tokens, span_groups=cfg.span_groups, predict_stride=cfg.predict_stride,
                       pool=cfg.pool, amp_head=cfg.amp_head, amp_gain=cfg.amp_gain, calib_share=cfg.calib_share)


def probe_classifier(enc: Encoder, n_classes: int, cfg: FinetuneConfig | ProbeConfig,
                     n_channels: int) -> torch.nn.Module:
    """The network of a probe (:meth:`ProbeMethod.network`): :func:`classifier` over ``enc`` with ``cfg``'s pooling
    and amplitude path, the amplitude columns unstandardised and unweighted (the head holds both), the content as
    the encoder was pre-trained to read it."""
    return classifier(enc, n_classes, cfg.pool, n_channels, cfg.amp_head, amp_gain=1.0,
                      amp_content=enc.cfg.content_amp == "scale")


def blend_log_probs(net: torch.Tensor, probe: torch.Tensor, w: float) -> torch.Tensor:
    """(S, C) span log-probabilities of the fine-tuned network and of the probe -> the log of their mixture
    ``(1 - w) p_net + w p_probe`` (a linear opinion pool: a probe that is sure, as a shrinkage LDA fitted on few
    spans often is, moves a span's probabilities by at most ``w`` instead of vetoing the network's classes)."""
    import torch

    if w <= 0:
        return net
    if w >= 1:
        return probe
    return torch.logaddexp(net + float(np.log1p(-w)), probe + float(np.log(w)))


def _weigh(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Columns of ``x`` times ``w`` (a picklable FunctionTransformer step)."""
    return x * w


def amp_weight(gain: float, d_model: int) -> float:
    """The amplitude columns' weight in the head input: ``gain``, or for 0 ``sqrt(d_model)``, the norm of one
    channel's pooled state (unit-variance entries), so one channel's amplitude counts like its state."""
    return float(gain) if gain > 0 else float(d_model) ** 0.5


def scale_content(batch: dict[str, Any]) -> dict[str, Any]:
    """A new batch whose tokens' ``log_amp`` is their amplitude on the session scale (``batch["amp"]``,
    :mod:`aemg.tokens.amplitude`) instead of relative to the detector's noise floor."""
    from aemg.tokens.features import FEATURE_NAMES

    content = batch["content"].clone()
    content[..., FEATURE_NAMES.index("log_amp")] = batch["amp"].to(content.dtype)
    return dict(batch, content=content)


def classifier(enc: Encoder, n_classes: int, pool: str = "mean", n_channels: int = 0,
               amp_head: bool = False, amp_gain: float = 0.0, amp_content: bool = False,
               head_dropout: float = 0.0) -> torch.nn.Module:
    """Encoder + linear head on the pooled token states (:func:`pool_states`); with ``amp_head`` the head also sees
    the span's per-channel amplitude (:func:`channel_amplitude`, standardised by the buffers ``amp_mu`` /
    ``amp_sd``, the training tokens' mean and std, set by the fit and saved with the weights, times
    :func:`amp_weight`); ``head_dropout``: dropout on the head input in training mode."""
    import torch

    weight = amp_weight(amp_gain, enc.cfg.d_model)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = enc
            width = _pool_width(enc.cfg.d_model, pool, n_channels) + (n_channels if amp_head else 0)
            self.head = torch.nn.Linear(width, n_classes)
            self.drop = torch.nn.Dropout(head_dropout) if head_dropout else torch.nn.Identity()
            if amp_head:
                self.register_buffer("amp_mu", torch.zeros(()))
                self.register_buffer("amp_sd", torch.ones(()))

        def features(self, batch: dict[str, Any]) -> torch.Tensor:
            """(B, width) head input: pooled token states, then the weighted amplitude columns."""
            x = pool_states(self.encoder(scale_content(batch) if amp_content else batch)[0], batch, pool, n_channels)
            if amp_head:
                a = channel_amplitude(batch, n_channels, self.amp_mu, self.amp_sd) * weight
                x = torch.cat([x, a], dim=1)
            return x

        def forward(self, batch: dict[str, Any]) -> torch.Tensor:
            return self.head(self.drop(self.features(batch)))

    return Classifier()


_classifier = classifier  # the former private name (aemg.live.model)


def lr_factor(step: int, *, n_steps: int, warmup: float, how: str) -> float:
    """Learning-rate multiplier at optimizer step ``step`` of ``n_steps``: a linear ramp over the first
    ``warmup`` fraction, then a ``linear`` or ``cosine`` decay to 0 at ``n_steps`` (0 after it)."""
    n_warm = int(round(warmup * n_steps))
    if step < n_warm:
        return (step + 1) / n_warm
    t = min(1.0, (step - n_warm) / max(n_steps - n_warm, 1))
    return 1.0 - t if how == "linear" else 0.5 * (1.0 + float(np.cos(np.pi * t)))


def encoder_groups(enc: Encoder, lr: float, decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW parameter groups of ``enc``: one at ``lr`` when ``decay`` is 1, else block i of L at
    ``lr * decay ** (L - i)``, the embedding at ``lr * decay ** (L + 1)`` and the rest (final norm) at ``lr``."""
    if decay == 1.0:
        return [{"params": list(enc.parameters()), "lr": lr}]
    n = len(enc.blocks)
    groups = [{"params": list(enc.embed.parameters()), "lr": lr * decay ** (n + 1)}]
    groups += [{"params": list(b.parameters()), "lr": lr * decay ** (n - i)} for i, b in enumerate(enc.blocks)]
    seen = {id(p) for g in groups for p in g["params"]}
    groups.append({"params": [p for p in enc.parameters() if id(p) not in seen], "lr": lr})
    return groups


def drop_tokens(spans: list[np.ndarray], p: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Each span (token indices) without a random ``p`` of its tokens, in order; a span keeps at least one."""
    out = []
    for s in spans:
        keep = rng.random(len(s)) >= p
        if not keep.any():
            keep[rng.integers(len(s))] = True
        out.append(s[keep])
    return out


class FinetuneMethod(_EncoderMethod):
    """``aemg-finetune`` (pre-trained weights, loaded fresh per fold) or ``scratch`` (``pretrained=False``:
    the run's encoder config, random init): encoder + linear head trained with AdamW and cross-entropy."""

    def __init__(self, run_dir: str | Path, tokens: TrialTokens, cfg: FinetuneConfig | None = None, *,
                 pretrained: bool = True) -> None:
        super().__init__(run_dir, tokens)
        self.cfg = cfg or FinetuneConfig()
        self.pretrained = pretrained
        self.name = "aemg-finetune" if pretrained else "scratch"
        self.model: Any = None
        self.losses: list[float] = []  # mean training loss per epoch
        self.probe_net: torch.nn.Module | None = None  # with cfg.probe_blend: the frozen probe's network
        # (ProbeMethod.network), blended in at prediction
        self.on_fit_start: Callable[[Any], None] | None = None  # tests: sees the encoder before training

    def _encoder(self) -> Encoder:
        from aemg.model import Encoder, load_encoder

        enc = load_encoder(self.run_dir)
        if not self.pretrained:  # the same architecture, random init (seeded by the caller)
            enc = Encoder(enc.cfg)
        return enc

    def fit(self, train: TrialSet) -> None:
        import torch

        rows, has = self._start(train)
        cfg = self.cfg
        self.probe_net = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            enc = self._encoder()
            _content_dim_check(enc, self.tokens, self.run_dir)
            if enc.cfg.content_amp == "scale" and not cfg.amp_content:  # feed what the run was pre-trained on
                self.cfg = cfg = replace(cfg, amp_content=True)
            if self.pretrained and cfg.probe_blend > 0 and cfg.amp_content != (enc.cfg.content_amp == "scale"):
                raise ValueError(f"probe_blend: the probe reads log_amp as the run was pre-trained (content_amp="
                                 f"{enc.cfg.content_amp!r}), the network with amp_content={cfg.amp_content}: "
                                 "both must read one content (set probe_blend=0 or keep amp_content's default)")
            if self.on_fit_start is not None:
                self.on_fit_start(enc)
            rows, y = rows[has], train.y[has]
            self.model = classifier(enc, self.n_classes, cfg.pool, self.tokens.n_channels, cfg.amp_head, cfg.amp_gain,
                                    cfg.amp_content, cfg.head_dropout)
            if not len(rows):
                return
            groups = self.tokens.groups(rows)
            if cfg.amp_head:
                self.amp = self.tokens.amplitude(train.scales)
                used = self.amp[np.concatenate([np.concatenate(g) for g in groups if g])]
                self.model.amp_mu.fill_(float(used.mean()))
                self.model.amp_sd.fill_(max(float(used.std()), 1e-3))
            if cfg.head_init == "probe" and self.pretrained:  # scratch: a probe of random states is a poor start
                self._probe_head(rows, y)
            self.calib = train.of_test_subjects[has]  # a new user's k reps
            start = {k: v.detach().clone() for k, v in self.model.state_dict().items()} if cfg.fits > 1 else None
            averaged = (torch.optim.swa_utils.AveragedModel(self.model)  # weight_avg = 0: each member's last step
                        if cfg.weight_avg or cfg.fits > 1 else None)
            for member in range(cfg.fits):
                if member:  # the next member: the same start (weights, head), its own batches and dropout
                    self.model.load_state_dict(start)
                    torch.manual_seed(cfg.seed + member)
                self._train(groups, y, cfg.seed + member, averaged)
            if averaged is not None and averaged.n_averaged.item() > 0:  # the average replaces the last weights
                with torch.no_grad():
                    for p, q in zip(self.model.parameters(), averaged.module.parameters(), strict=True):
                        p.copy_(q)
        self.model.eval()
        if cfg.probe_blend > 0 and self.pretrained:
            probe = ProbeMethod(self.run_dir, self.tokens.base or self.tokens, probe_config(cfg))
            probe.fit(train)
            self.probe_net = probe.network()

    def _train(self, groups: list[list[np.ndarray]], y: np.ndarray, seed: int, averaged: Any) -> None:
        """One member's optimizer run over ``cfg.epochs`` epochs from the current weights, a fresh AdamW; the
        weights after each of its last ``weight_avg`` fraction of steps go into ``averaged`` (when given)."""
        import torch

        cfg = self.cfg
        opt = torch.optim.AdamW(encoder_groups(self.model.encoder, cfg.lr_encoder, cfg.layer_decay) + [
            {"params": list(self.model.head.parameters()), "lr": cfg.lr_head},
        ], weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(seed)
        start = [p.detach().clone() for p in self.model.encoder.parameters()] if cfg.l2sp > 0 else []
        schedule = None
        avg_from, step, n_steps = 0, 0, 0
        self.model.train()
        epochs = cfg.calib_epochs if cfg.calib_epochs and self.calib.any() else cfg.epochs
        for _ in range(epochs):
            listed = (epoch_trials(self.calib, cfg.calib_share, rng) if cfg.calib_share > 0
                      else np.arange(len(groups)))  # the new user's calibration trials weighted up
            if cfg.span_groups:
                spans, owner = epoch_spans([groups[i] for i in listed], cfg.span_groups, rng, cfg.spans_per_trial)
            else:
                spans, owner = [np.concatenate(groups[i]) for i in listed], np.arange(len(listed))
            owner = listed[owner]
            if not n_steps:  # the run's steps, from the first epoch's (later partitions differ a little)
                n_steps = epochs * -(-len(spans) // cfg.batch_size)
                avg_from = n_steps - max(1, int(round(cfg.weight_avg * n_steps)))
                if cfg.lr_schedule != "constant":
                    schedule = torch.optim.lr_scheduler.LambdaLR(
                        opt, partial(lr_factor, n_steps=n_steps, warmup=cfg.warmup_frac, how=cfg.lr_schedule))
            if cfg.token_drop > 0:
                spans = drop_tokens(spans, cfg.token_drop, rng)
            order = rng.permutation(len(spans))
            total = 0.0
            for batch in self.tokens.span_batches([spans[i] for i in order], cfg.batch_size, cfg.max_tokens,
                                                  labels=y[owner[order]], amp=self.amp):
                if cfg.gain_jitter > 0:
                    batch = jitter_gain(batch, cfg.gain_jitter, self.tokens.n_channels)
                ce = torch.nn.functional.cross_entropy(self.model(batch), batch["label"],
                                                       label_smoothing=cfg.label_smoothing)
                loss = ce + cfg.l2sp * sum(((p - p0) ** 2).sum() for p, p0 in
                                           zip(self.model.encoder.parameters(), start, strict=True)) if start else ce
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if schedule is not None:
                    schedule.step()
                if averaged is not None and step >= avg_from:
                    averaged.update_parameters(self.model)
                step += 1
                total += ce.item() * len(batch["label"])  # the epoch's mean cross-entropy (no penalty)
            self.losses.append(total / len(spans))

    def _probe_head(self, rows: np.ndarray, y: np.ndarray) -> None:
        """Set the head to a StandardScaler + LogisticRegression fitted on the frozen encoder's head input over
        the training trials' tiled spans, the scaler folded into the weights (head(x) = coef . (x - mu) / sd + b).
        Fine-tuning then starts from a head that already fits the pre-trained states, so the first steps do not
        push random-head gradients into the encoder. Classes missing from ``y`` keep a very low bias."""
        import torch
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        cfg = self.cfg
        spans, owner = self.tokens.tiles(rows, cfg.span_groups, 0)
        self.model.eval()
        with torch.no_grad():
            x = torch.cat([self.model.features(b) for b in self.tokens.span_batches(
                spans, max(cfg.batch_size, 64), cfg.max_tokens, amp=self.amp if cfg.amp_head else None)])
        x = x.double().numpy()
        labels = y[owner]
        if len(np.unique(labels)) < 2:
            return
        scaler = StandardScaler().fit(x)
        lr = LogisticRegression(C=cfg.probe_C, max_iter=2000).fit(scaler.transform(x), labels)
        coef, bias = linear_head(lr, self.n_classes, scaler.mean_, scaler.scale_)
        with torch.no_grad():
            self.model.head.weight.copy_(torch.as_tensor(coef, dtype=self.model.head.weight.dtype))
            self.model.head.bias.copy_(torch.as_tensor(bias, dtype=self.model.head.bias.dtype))
        self.model.train()

    def restore(self, encoder_config: dict[str, Any], state: dict[str, Any], n_classes: int, fallback: int,
                probe_state: dict[str, Any] | None = None) -> None:
        """A fitted method back from saved weights (``aemg predict``): the network ``fit`` builds, then ``state``;
        with ``cfg.probe_blend``, the probe's network (:func:`probe_classifier`) from ``probe_state``."""
        self.n_classes, self.fallback = int(n_classes), int(fallback)
        self.model, self.probe_net = restore_networks(encoder_config, state, probe_state, self.cfg, self.n_classes,
                                                      self.tokens.n_channels)

    def trial_log_probs(self, rows: np.ndarray) -> np.ndarray:
        """(n, C) mean class log-probability over each trial row's spans (rows with tokens only): the fine-tuned
        network's, blended with the probe's span by span (:func:`blend_log_probs`) when there is one."""
        import torch

        cfg = self.cfg
        spans, owner = self.tokens.tiles(rows, cfg.span_groups, cfg.predict_stride)
        with torch.no_grad():
            logp = [span_log_probs(self.model, self.probe_net, cfg.probe_blend, b)
                    for b in self.tokens.span_batches(spans, max(cfg.batch_size, 64), cfg.max_tokens,
                                                      amp=self.amp if cfg.amp_head else None)]
        return trial_mean(torch.cat(logp).double().numpy(), owner, len(rows))

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.trial_log_probs(rows).argmax(axis=1).astype(np.int64)


def span_log_probs(model: torch.nn.Module, probe: torch.nn.Module | None, w: float,
                   batch: dict[str, Any]) -> torch.Tensor:
    """(B, C) class log-probabilities of a batch of spans: the fine-tuned network's, blended with the probe's
    (:func:`blend_log_probs`, weight ``w``) when there is one."""
    import torch

    logp = torch.log_softmax(model(batch), dim=1)
    return logp if probe is None else blend_log_probs(logp, torch.log_softmax(probe(batch), dim=1), w)


def restore_networks(encoder_config: dict[str, Any], state: dict[str, Any], probe_state: dict[str, Any] | None,
                     cfg: FinetuneConfig, n_classes: int, n_channels: int) -> tuple[Any, Any]:
    """(network, probe network or None) of a saved fine-tuned model, weights loaded, eval mode (``aemg predict``,
    the live decoder); a ``cfg.probe_blend`` without ``probe_state`` (or the reverse) is a ValueError."""
    from aemg.model import Encoder, EncoderConfig
    from aemg.model.config import config_from_dict

    enc_cfg = config_from_dict(EncoderConfig, encoder_config)
    net = classifier(Encoder(enc_cfg), n_classes, cfg.pool, n_channels, cfg.amp_head, cfg.amp_gain, cfg.amp_content)
    net.load_state_dict(state)
    if (cfg.probe_blend > 0) != (probe_state is not None):
        raise ValueError(f"probe_blend={cfg.probe_blend:g} needs {'a' if cfg.probe_blend > 0 else 'no'} probe network")
    probe = None
    if probe_state is not None:
        probe = probe_classifier(Encoder(enc_cfg), n_classes, cfg, n_channels)
        probe.load_state_dict(probe_state)
        probe.requires_grad_(False)
        probe.eval()
    return net.eval(), probe


# ------------------------------------------------------------------ registry


def aemg_probe(*, run_dir: str | Path, corpus: Corpus, cfg: ProbeConfig | None = None) -> Callable[[], Method]:
    """Factory of ``aemg-probe`` methods for one (run, corpus); the token set (of the run's kind) is loaded once, here."""
    tokens = run_trial_tokens(run_dir, corpus)
    return lambda: ProbeMethod(run_dir, tokens, cfg)


def aemg_finetune(*, run_dir: str | Path, corpus: Corpus, cfg: FinetuneConfig | None = None) -> Callable[[], Method]:
    """Factory of ``aemg-finetune`` methods (pre-trained weights loaded fresh at every fit)."""
    tokens = run_trial_tokens(run_dir, corpus)
    return lambda: FinetuneMethod(run_dir, tokens, cfg, pretrained=True)


def scratch(*, run_dir: str | Path, corpus: Corpus, cfg: FinetuneConfig | None = None) -> Callable[[], Method]:
    """Factory of ``scratch`` methods: the run's encoder architecture from random init, labels only."""
    tokens = run_trial_tokens(run_dir, corpus)
    return lambda: FinetuneMethod(run_dir, tokens, cfg, pretrained=False)


def _encoder_position(run_dir: Path) -> str:
    """``EncoderConfig.position`` of the run's ``encoder.pt`` (``"coords"`` for runs made before the option)."""
    import torch

    path = run_dir / "encoder.pt"
    if not path.is_file():
        raise DataFormatError(run_dir, "a run directory of aemg pretrain holding encoder.pt", "found no encoder.pt")
    return str(torch.load(path, map_location="cpu", weights_only=False)["config"].get("position", "coords"))


def check_ablation_run(run_dir: str | Path, name: str) -> None:
    """Refuse (one-line ``DataFormatError`` naming the run) a run that is not the ablation ``name``: aemg-windows
    needs fixed-window tokens with electrode coordinates, aemg-nospatial events with ``encoder.position=index``."""
    from aemg.train.sources import describe_kind, run_token_kind

    run_dir = Path(run_dir)
    kind, position = run_token_kind(run_dir), _encoder_position(run_dir)
    want_windows = name == "aemg-windows"
    if (kind["kind"] == "windows") != want_windows:
        how = "aemg pretrain --window-ms 200" if want_windows else "aemg pretrain without --window-ms"
        raise DataFormatError(run_dir, f"a run pre-trained on {'fixed-window tokens' if want_windows else 'events'} "
                              f"for {name} ({how})", f"found a run pre-trained on {describe_kind(kind)}")
    if position != ("coords" if want_windows else "index"):
        how = "without --set encoder.position=index" if want_windows else "with --set encoder.position=index"
        raise DataFormatError(run_dir, f"a run pre-trained {how} for {name}", f"found encoder.position {position!r}")


def _renamed(method: FinetuneMethod, name: str) -> FinetuneMethod:
    """The same method filed under the ablation's name (results are keyed by ``method.name``)."""
    method.name = name
    return method


def aemg_windows(*, run_dir: str | Path, corpus: Corpus, cfg: FinetuneConfig | None = None) -> Callable[[], Method]:
    """Factory of ``aemg-windows``: ``aemg-finetune`` with a run pre-trained on fixed-window tokens, on the corpus's
    window token set of the same length (checked: :func:`check_ablation_run`)."""
    check_ablation_run(run_dir, "aemg-windows")
    tokens = run_trial_tokens(run_dir, corpus)
    return lambda: _renamed(FinetuneMethod(run_dir, tokens, cfg, pretrained=True), "aemg-windows")


def aemg_nospatial(*, run_dir: str | Path, corpus: Corpus, cfg: FinetuneConfig | None = None) -> Callable[[], Method]:
    """Factory of ``aemg-nospatial``: ``aemg-finetune`` with a run pre-trained with the channel index instead of
    electrode coordinates (``encoder.position=index``, checked: :func:`check_ablation_run`)."""
    check_ablation_run(run_dir, "aemg-nospatial")
    tokens = run_trial_tokens(run_dir, corpus)
    return lambda: _renamed(FinetuneMethod(run_dir, tokens, cfg, pretrained=True), "aemg-nospatial")


ENCODER_METHODS: dict[str, Callable[..., Callable[[], Method]]] = {
    "aemg-probe": aemg_probe, "aemg-finetune": aemg_finetune, "scratch": scratch,
}
ABLATION_METHODS: dict[str, Callable[..., Callable[[], Method]]] = {
    "aemg-windows": aemg_windows, "aemg-nospatial": aemg_nospatial,
}
"""The ablations, built like ``ENCODER_METHODS`` but each from a run of its own kind (the registry's ``runs``)."""
