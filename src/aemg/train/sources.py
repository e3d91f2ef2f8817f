"""Pre-training sources: a corpus folder -> its TokenSet -> per-recording token tables.

``load_token_sources(dirs)`` opens each prepared corpus (:class:`aemg.corpus.Corpus`, for its
dataset name, subjects and provenance hash), loads the token set stored beside it
(``CORPUS_DIR/tokens/events.npz``, written by ``aemg tokenize``) or, when there is none or it was
made from another version of the corpus, tokenizes the corpus with the default event tokenizer in
memory. Pre-training writes nothing outside its run directory; ``aemg tokenize CORPUS_DIR`` stores
the token set so later runs load it. With ``window_ms`` (the fixed-window ablation) the same holds
for ``CORPUS_DIR/tokens/windows-<N>ms.npz`` (``aemg tokenize --window-ms N``).

A token *kind* is recorded as ``{"kind": "events"}`` or ``{"kind": "windows", "window_ms": 200.0}``
(:func:`token_kind`); ``run.json`` holds the run's under ``"tokens"`` (:func:`run_token_kind`), so
evaluation loads the target corpus's token set of the same kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.errors import DataFormatError
from aemg.train.data import IGNORE, TokenRecording

if TYPE_CHECKING:
    from aemg.corpus import Corpus
    from aemg.tokens import TokenSet

log = logging.getLogger(__name__)


@dataclass
class TokenSource:
    """The tokens of one corpus, with what evaluation needs to prove it never pre-trained on its target."""

    dataset: str
    path: str
    provenance_hash: str
    recordings: list[TokenRecording] = field(default_factory=list)
    content_names: tuple[str, ...] | None = None  # names of the content vector's entries (for drawings)
    tokens: dict[str, Any] = field(default_factory=lambda: token_kind(None))  # the token kind (token_kind)
    content_amp: str = "floor"  # log_amp relative to the noise "floor" or the session "scale" (scaled_content)
    excluded_subjects: list[str] = field(default_factory=list)  # this corpus's subjects left out (--exclude-subject)

    @property
    def subjects(self) -> list[str]:
        return sorted({r.subject for r in self.recordings})

    def token_hash(self) -> str:
        """SHA-1 of the tokens themselves (recording keys, content, groups): the same corpus tokenized by
        another version of the tokenizer gets another hash."""
        h = hashlib.sha1()
        for r in self.recordings:
            h.update(r.key.encode())
            h.update(np.ascontiguousarray(r.content, np.float32).tobytes())
            h.update(np.ascontiguousarray(r.group, np.int64).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "path": self.path, "provenance_hash": self.provenance_hash,
                "token_hash": self.token_hash(), "subjects": self.subjects, "n_recordings": len(self.recordings),
                "n_tokens": int(sum(len(r) for r in self.recordings)), "excluded_subjects": list(self.excluded_subjects)}


def token_kind(window_ms: float | None) -> dict[str, Any]:
    """The record of a token kind: ``{"kind": "events"}``, or ``{"kind": "windows", "window_ms": N}`` (N in ms)."""
    return {"kind": "events"} if window_ms is None else {"kind": "windows", "window_ms": float(window_ms)}


def token_set_kind(ts: TokenSet) -> dict[str, Any]:
    """The kind of a loaded ``TokenSet``, from its settings (``mode``, ``window_ms``)."""
    st = ts.settings
    return token_kind(float(st.window_ms) if st.mode == "windows" else None)


def describe_kind(kind: dict[str, Any]) -> str:
    """``"events"`` or ``"200 ms windows"``, for messages."""
    return "events" if kind.get("kind") == "events" else f"{float(kind['window_ms']):g} ms windows"


def run_token_kind(run_dir: str | Path) -> dict[str, Any]:
    """The token kind a pre-training run trained on (``run.json`` ``"tokens"``); a run written before the field
    existed trained on events. A value that is not a kind is a :class:`DataFormatError` naming the file."""
    run_dir = Path(run_dir)
    if run_dir.name == "encoder.pt":
        run_dir = run_dir.parent
    for name in ("run.json", "summary.json"):
        p = run_dir / name
        if p.exists():
            kind = json.loads(p.read_text()).get("tokens", {"kind": "events"})
            ok = isinstance(kind, dict) and (kind.get("kind") == "events" or (
                kind.get("kind") == "windows" and isinstance(kind.get("window_ms"), (int, float))
                and float(kind["window_ms"]) > 0))
            if not ok:
                raise DataFormatError(p, 'a token kind under "tokens" ({"kind": "events"} or {"kind": "windows", '
                                         '"window_ms": N})', f"found {kind!r}")
            return token_kind(None if kind["kind"] == "events" else float(kind["window_ms"]))
    return token_kind(None)


def token_recordings(ts: TokenSet, content: np.ndarray | None = None) -> list[TokenRecording]:
    """One :class:`TokenRecording` per recording of a ``TokenSet`` with at least one token group (``content``:
    ``(N, F)`` to use instead of the token set's own, e.g. with ``log_amp`` on the session scale)."""
    content = ts.tokens.content if content is None else content
    out = []
    trial_label = np.asarray(ts.trials.label, np.int64)
    for r, idx in enumerate(ts.sequences("recording")):
        if len(idx) == 0:
            continue
        g = ts.tokens.group[idx]
        tri = ts.groups.trial[g]
        label = np.where(tri >= 0, trial_label[np.clip(tri, 0, None)] if len(trial_label) else IGNORE, IGNORE)
        out.append(TokenRecording(
            key=str(ts.recordings.id[r]), dataset=str(ts.recordings.dataset[r]), subject=str(ts.recordings.subject[r]),
            content=np.ascontiguousarray(content[idx], np.float32),
            coords=np.ascontiguousarray(ts.tokens.coords[idx], np.float32),
            onset_ms=np.asarray(ts.tokens.onset_ms[idx], np.float32),
            group_start_ms=np.asarray(ts.groups.t_ms[g], np.float64),
            duration_ms=np.asarray(ts.tokens.duration_ms[idx], np.float32),
            group=np.asarray(g, np.int64), rank=np.asarray(ts.tokens.rank[idx], np.int64),
            channel=np.asarray(ts.tokens.channel[idx], np.int64),
            rotation_unknown=bool(ts.recordings.rotation_unknown[r]), label=label.astype(np.int64)))
    return out


def load_token_set(corpus: Corpus, *, window_ms: float | None = None, progress: bool = True,
                   save: bool = False) -> TokenSet:
    """The event TokenSet of a corpus (or with ``window_ms``, its fixed-window one): the stored one if it
    matches the corpus's hash and that kind, else made now."""
    import aemg.tokens as tokens

    path = tokens.TokenSet.default_path(corpus.path, window_ms)
    if path.exists():
        ts = tokens.TokenSet.load(path)
        if ts.meta.get("corpus_hash") not in (None, corpus.hash):
            log.warning("%s was made from another version of %s; tokenizing again", path, corpus.path)
        elif token_set_kind(ts) != token_kind(window_ms):
            log.warning("%s holds %s, not %s; tokenizing again", path, describe_kind(token_set_kind(ts)),
                        describe_kind(token_kind(window_ms)))
        else:
            return ts
    flag = "" if window_ms is None else f" --window-ms {window_ms:g}"
    log.info("%s: no stored token set; tokenizing with the default %s tokenizer (aemg tokenize %s%s stores it)",
             corpus.path, "event" if window_ms is None else "fixed-window", corpus.path, flag)
    ts = tokens.tokenize_corpus(corpus, window_ms=window_ms, progress=progress)
    if save:
        try:
            ts.save(path)
        except OSError as exc:  # a read-only corpus still pre-trains
            log.warning("could not store the token set at %s (%s); continuing", path, exc)
    return ts


def scaled_content(corpus: Corpus, ts: TokenSet) -> np.ndarray:
    """``(N, F)`` the token set's content with ``log_amp`` on each session's stored amplitude scale instead of
    relative to the detector's noise floor (:func:`aemg.tokens.amplitude.scale_amplitude`): the content an
    encoder with ``content_amp="scale"`` reads."""
    from aemg.tokens.amplitude import scale_amplitude
    from aemg.tokens.features import FEATURE_NAMES

    content = np.array(ts.tokens.content, np.float32)
    content[:, FEATURE_NAMES.index("log_amp")] = scale_amplitude(corpus, ts)
    return content


def load_token_sources(corpus_dirs: Sequence[str | Path], exclude: Sequence[str] = (), *,
                       window_ms: float | None = None, progress: bool = True,
                       content_amp: str = "floor", exclude_subjects: Sequence[str] = ()) -> list[TokenSource]:
    """One :class:`TokenSource` per corpus folder (datasets in ``exclude`` are not even tokenized), of event
    tokens, or of ``window_ms`` fixed-window tokens (the ablation); ``content_amp="scale"``: ``log_amp`` on the
    session scale (:func:`scaled_content`), for an encoder of that ``EncoderConfig.content_amp``.
    ``exclude_subjects``: subject ids (as the corpus names them, e.g. ``uci-gestures/all/01``) whose recordings
    are left out: the subjects an evaluation will test, so that a run may pre-train on the target dataset's other
    subjects; an id of no given corpus is an OptionError (a typo would otherwise leak the subject)."""
    from aemg.corpus import Corpus
    from aemg.errors import OptionError

    kind = token_kind(window_ms)
    drop = {str(s) for s in exclude_subjects}
    corpora = [Corpus(d) for d in corpus_dirs]
    unknown = sorted(drop - {s for c in corpora for s in c.subjects})
    if unknown:  # checked before any tokenizing
        raise OptionError(f"--exclude-subject {unknown[0]}", "the id of a subject of a given --corpus (aemg info "
                          "CORPUS lists them, e.g. uci-gestures/all/01)", "found no such subject")
    sources = []
    for d, corpus in zip(corpus_dirs, corpora, strict=True):
        if corpus.dataset in set(exclude):
            log.info("leaving out %s (%s): --exclude", d, corpus.dataset)
            sources.append(TokenSource(corpus.dataset, str(Path(d).resolve()), corpus.hash, [], tokens=kind,
                                       content_amp=content_amp))
            continue
        ts = load_token_set(corpus, window_ms=window_ms, progress=progress)
        recs = token_recordings(ts, scaled_content(corpus, ts) if content_amp == "scale" else None)
        left_out = drop & set(corpus.subjects)
        if left_out:
            log.info("leaving out %d subject(s) of %s: --exclude-subject", len(left_out), d)
            recs = [r for r in recs if r.subject not in left_out]
        if not recs:
            raise ValueError(f"{d}: the token set holds no tokens (no contraction events were found"
                             f"{', or every subject was excluded' if left_out else ''})")
        sources.append(TokenSource(corpus.dataset, str(Path(d).resolve()), corpus.hash, recs,
                                   content_names=tuple(ts.meta.get("feature_names") or ()) or None, tokens=kind,
                                   content_amp=content_amp, excluded_subjects=sorted(left_out)))
    return sources
