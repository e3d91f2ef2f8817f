"""A fine-tuned model directory (``aemg finetune``): what a later decoder needs to classify a new user's trials.

``MODEL_DIR`` holds three files (four with a blended probe), each written into a temporary sibling
folder that is then swapped in (an interrupted save leaves the old model, or none, never half of one):

* ``model.json``: :class:`ModelInfo`, the metadata: class order (gesture keys and the dataset's
  names), the token set's settings (detector config, notch, window, corpus rate, feature names),
  the channel layout and electrode coordinates, per (subject, session) the amplitude scale and the
  detector's noise floor (:class:`SessionCalibration`), the pre-trained run (path, name, hash of its
  ``summary.json``), the corpus, the trials trained on, the fine-tuning and encoder configs.
* ``weights.pt``: the plain ``state_dict`` of the classifier (encoder + head), ``torch.save``-d and read
  back with ``torch.load(..., weights_only=True)`` (no pickled code runs on load).
* ``probe.pt`` (with ``FinetuneConfig.probe_blend`` > 0 only): the plain ``state_dict`` of the frozen probe's
  network (:meth:`ProbeMethod.network <aemg.evaluate.encoder_methods.ProbeMethod.network>`: the pre-trained encoder
  and the LDA folded into a linear head), read like ``weights.pt``.
* ``run.json``: the pre-trained run's provenance (its ``run.json`` copied), which the leakage guard of
  :meth:`FinetuneMethod.predict <aemg.evaluate.encoder_methods.FinetuneMethod.predict>` reads.

:func:`save_model` writes one from a fitted :class:`~aemg.evaluate.encoder_methods.FinetuneMethod`;
:func:`read_model` reads it back; :func:`load_model` rebuilds the method on a corpus (after
:func:`check_compatible`), so ``aemg predict`` runs the low-label protocol's own ``predict``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aemg.atomic import current_umask, fsync_dir, make_folder, not_writable
from aemg.errors import DataFormatError
from aemg.tokens.amplitude import noise_floor

if TYPE_CHECKING:
    from aemg.corpus import Corpus
    from aemg.evaluate.data import TrialSet
    from aemg.evaluate.encoder_methods import FinetuneMethod, TrialTokens

FORMAT = 1
INFO = "model.json"
WEIGHTS = "weights.pt"
RUN = "run.json"
PROBE = "probe.pt"
FILES = (INFO, WEIGHTS, RUN)
BUILDING = ".{name}.building-"
OLD = ".{name}.old-"


@dataclass(frozen=True)
class SessionCalibration:
    """The label-free calibration of one (subject, session), as the token set and the method used it.

    ``scale``: the per-channel amplitude divisor (``Corpus.scale``, non-positive or non-finite
    entries as 1, as ``Corpus.load(scaled=True)`` does). ``noise_floor``: the event detector's
    per-channel floor (:func:`aemg.tokens.estimate_floor` with the token set's detector config), in
    envelope units (|TKEO| of the 20 Hz high-passed signal) of the corpus's unscaled signal, on which
    the tokenizer runs; ``trained``: the session holds trials the model was fine-tuned on.
    """

    subject: str
    session: str
    scale: tuple[float, ...]
    noise_floor: tuple[float, ...]
    trained: bool


@dataclass(frozen=True)
class ModelInfo:
    """``model.json``: everything about a fine-tuned model besides its weights (module docstring)."""

    classes: tuple[str, ...]  # gesture keys, in class order (index i is class i of the head)
    label_names: tuple[str, ...]  # the dataset's own name of each class
    fallback: int  # the class of a trial without any token (encoder_methods' rule)
    token_settings: dict[str, Any]  # TokenSettings.to_meta(): fs, mode, window_ms, notch, config, feature_names
    n_features: int  # token content dimension
    n_channels: int
    layout: str  # electrode layout name (aemg.layouts)
    rotation_unknown: bool  # the layout is known only up to rotation / flip
    electrodes: tuple[dict[str, Any], ...]  # Electrode.to_dict() per channel: site, angle_deg, z, layout, index
    calibration: tuple[SessionCalibration, ...]  # per (subject, session) of the fine-tuned subjects
    scale_mode: str  # the TrialSet's scale rule ("session")
    run: dict[str, Any]  # the pre-trained run: path, name, hash (sha256 of summary.json)
    corpus: dict[str, Any]  # the fine-tuning corpus: path, dataset, hash
    subjects: tuple[str, ...]  # subjects fine-tuned on
    reps: int | None  # --reps: the first N repetitions per class (None: all)
    train_trials: tuple[int, ...]  # corpus trial ids fine-tuned on
    finetune_config: dict[str, Any]  # FinetuneConfig as a dict
    encoder_config: dict[str, Any]  # EncoderConfig as a dict (rebuilds the network)
    losses: tuple[float, ...]  # mean training loss per epoch
    method: str = "aemg-finetune"
    format: int = FORMAT
    aemg_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields, kept on read

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def calibration_of(self, subject: str, session: str) -> SessionCalibration:
        """The stored scale and noise floor of one (subject, session); a KeyError lists the stored ones."""
        for c in self.calibration:
            if (c.subject, c.session) == (subject, session):
                return c
        known = ", ".join(f"{c.subject}/{c.session}" for c in self.calibration)
        raise KeyError(f"{subject}/{session}: expected a (subject, session) stored in the model ({known}); found none")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, path: Path) -> ModelInfo:
        """From ``model.json``'s object; a missing or unknown field is a DataFormatError naming ``path``."""
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if not isinstance(d, dict):
            raise DataFormatError(path, "a JSON object written by aemg finetune", f"found {type(d).__name__}")
        missing = [n for n in required if n not in d]
        if missing:
            raise DataFormatError(path, "a model description written by aemg finetune",
                                  f"found no field(s) {', '.join(missing)}")
        if int(d.get("format", FORMAT)) > FORMAT:
            raise DataFormatError(path, f"model format {FORMAT} or older", f"found format {d['format']}: "
                                  "written by a newer aemg")
        kw = {n: d[n] for n in names if n in d}
        kw["extra"] = {**dict(d.get("extra") or {}), **{k: v for k, v in d.items() if k not in names}}
        for n in ("classes", "label_names", "subjects", "train_trials", "losses"):
            kw[n] = tuple(kw[n])
        kw["electrodes"] = tuple(dict(e) for e in kw["electrodes"])
        try:
            kw["calibration"] = tuple(SessionCalibration(subject=str(c["subject"]), session=str(c["session"]),
                                                         scale=tuple(float(v) for v in c["scale"]),
                                                         noise_floor=tuple(float(v) for v in c["noise_floor"]),
                                                         trained=bool(c.get("trained", False)))
                                      for c in kw["calibration"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(path, "calibration entries with subject, session, scale and noise_floor",
                                  f"found {exc!r}") from None
        return cls(**kw)


@dataclass(frozen=True)
class SavedModel:
    """A model directory read back: its path, :class:`ModelInfo`, the weights and the run's provenance."""

    path: Path
    info: ModelInfo
    state: dict[str, Any]  # str -> torch.Tensor
    run_provenance: dict[str, Any]
    probe_state: dict[str, Any] | None = None  # probe.pt (FinetuneConfig.probe_blend > 0), else None


# ------------------------------------------------------------------ what goes into model.json


def _stored_scale(corpus: Corpus, subject: str, session: str) -> np.ndarray:
    s = np.asarray(corpus.scale(subject, session), np.float64)
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def _layout(corpus: Corpus, subjects: Sequence[str]) -> tuple[int, str, bool, tuple[dict[str, Any], ...]]:
    """(channels, layout, rotation unknown, electrodes) of the subjects' recordings; several is an error."""
    rec = corpus.recordings[corpus.recordings["subject"].isin(list(subjects))]
    kinds = sorted(set(zip(rec["n_channels"].astype(int), rec["layout"].astype(str))))
    if len(kinds) != 1:
        raise DataFormatError(corpus.path, "one channel layout across the fine-tuned trials",
                              f"found {', '.join(f'{n} channels ({lay})' for n, lay in kinds) or 'no recording'}")
    first = corpus.load(str(rec["recording_id"].iloc[0]))
    return (kinds[0][0], kinds[0][1], bool(first.layout_rotation_unknown),
            tuple(e.to_dict() for e in first.electrodes))


def describe(method: FinetuneMethod, train: TrialSet, *, run_dir: Path, run_name: str | None = None,
             reps: int | None = None) -> ModelInfo:
    """The :class:`ModelInfo` of a method fitted on ``train`` (a ``TrialSet`` of one corpus)."""
    from aemg import __version__
    from aemg.evaluate.report import file_hash

    corpus = train.corpus
    tr = train.trials
    subjects = tuple(sorted(set(tr["subject"].astype(str))))
    names = dict(zip(tr["gesture_key"].astype(str), tr["label_name"].astype(str)))
    settings = method.tokens.ts.settings.to_meta()
    n_ch, layout, rot, electrodes = _layout(corpus, subjects)
    trained = set(zip(tr["subject"].astype(str), tr["session"].astype(str)))
    rec = corpus.recordings
    calib = []
    for subject in subjects:
        for session in dict.fromkeys(rec.loc[rec["subject"] == subject, "session"].astype(str)):
            scale = (train.scale_of(subject, session) if (subject, session) in train.scales
                     else _stored_scale(corpus, subject, session))
            calib.append(SessionCalibration(subject, session, tuple(float(v) for v in scale),
                                            tuple(float(v) for v in noise_floor(corpus, subject, session, settings)),
                                            (subject, session) in trained))
    enc = method.model.encoder
    return ModelInfo(
        classes=tuple(train.classes), label_names=tuple(names.get(c, c) for c in train.classes),
        fallback=int(method.fallback), token_settings=settings, n_features=int(method.tokens.ts.n_features),
        n_channels=n_ch, layout=layout, rotation_unknown=rot, electrodes=electrodes, calibration=tuple(calib),
        scale_mode=train.scale_mode,
        run={"path": str(Path(run_dir).resolve()), "name": run_name or Path(run_dir).name,
             "hash": file_hash(Path(run_dir) / "summary.json")},
        corpus={"path": str(Path(corpus.path).resolve()), "dataset": corpus.dataset, "hash": corpus.hash},
        subjects=subjects, reps=reps, train_trials=tuple(int(t) for t in train.trial_ids),
        finetune_config=dataclasses.asdict(method.cfg), encoder_config=dataclasses.asdict(enc.cfg),
        losses=tuple(float(v) for v in method.losses), method=method.name, aemg_version=__version__)


# ------------------------------------------------------------------ saving


def check_target(out: str | Path, overwrite: bool) -> Path:
    """``out`` may be written: it does not exist, or with ``overwrite`` it is a model directory of aemg's
    (a folder holding ``model.json``: aemg never deletes what it did not write)."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{out}: expected a new model directory; found it exists (--overwrite replaces it)")
        if not out.is_dir() or out.is_symlink() or not (out / INFO).is_file():
            raise FileExistsError(f"{out}: expected a model directory written by aemg finetune (with {INFO}) to "
                                  "replace; found something else (aemg never deletes what it did not write)")
    return out


def save_model(method: FinetuneMethod, train: TrialSet, out: str | Path, *, run_dir: str | Path,
               run_name: str | None = None, reps: int | None = None, overwrite: bool = False) -> Path:
    """Write a fitted method as a model directory ``out`` (module docstring): built in a temporary
    sibling folder, then swapped in; an existing ``out`` only with ``overwrite``."""
    import torch

    from aemg.atomic import atomic_write_text
    from aemg.train.checkpoint import atomic_torch_save

    if method.model is None:
        raise ValueError("save_model needs a fitted method (call fit first)")
    out = check_target(out, overwrite)
    run_dir = Path(run_dir)
    info = describe(method, train, run_dir=run_dir, run_name=run_name, reps=reps)
    provenance = run_dir / "run.json" if (run_dir / "run.json").is_file() else run_dir / "summary.json"
    if not provenance.is_file():
        raise DataFormatError(run_dir / "run.json", "the run's provenance (written by aemg pretrain)", "found none")
    parent = make_folder(out.parent)
    remove_leftovers(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=BUILDING.format(name=out.name), dir=parent))
    except OSError as exc:
        err = not_writable(exc, parent)
        if err is None:
            raise
        raise err from exc
    try:
        atomic_write_text(tmp / RUN, provenance.read_text())
        for net, name in ((method.model, WEIGHTS), (method.probe_net, PROBE)):
            if net is not None:
                state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
                atomic_torch_save({k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, tmp / name)
        atomic_write_text(tmp / INFO, json.dumps(info.to_json(), indent=1))  # last: marks a complete model
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the model from the group
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def remove_leftovers(out: Path) -> None:
    """Remove the temporary sibling folders (``.NAME.building-*``, ``.NAME.old-*``) of saves that were killed."""
    if not out.parent.is_dir():
        return
    for pattern in (BUILDING, OLD):
        for d in out.parent.glob(pattern.format(name=out.name) + "*"):
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)


def _swap(tmp: Path, out: Path) -> None:
    """Put the folder ``tmp`` at ``out``: the old model (if any) is renamed aside, the new one renamed in,
    then the old removed; a crash between the renames leaves the old model beside as ``.NAME.old-*``."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=OLD.format(name=out.name), dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
    os.rename(tmp, out)
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ loading


def read_model(path: str | Path) -> SavedModel:
    """A model directory read back; a missing or damaged file is an error naming it."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a model directory written by aemg finetune; found no such folder")
    for name in FILES:
        if not (path / name).is_file():
            raise DataFormatError(path / name, f"the file {name} of a model directory written by aemg finetune",
                                  "found none: write the model again (aemg finetune --overwrite)")
    try:
        raw = json.loads((path / INFO).read_text())
        run = json.loads((path / RUN).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(path / INFO, "JSON written by aemg finetune", f"found {exc}") from None
    info = ModelInfo.from_json(raw, path / INFO)
    blended = float(finetune_fields(info.finetune_config).get("probe_blend", 0.0)) > 0
    if blended and not (path / PROBE).is_file():
        raise DataFormatError(path / PROBE, f"the probe network of a model fine-tuned with probe_blend > 0 ({INFO})",
                              "found none: write the model again (aemg finetune --overwrite)")
    return SavedModel(path, info, _read_state(path / WEIGHTS), run if isinstance(run, dict) else {},
                      _read_state(path / PROBE) if blended else None)


def _read_state(path: Path) -> dict[str, Any]:
    """A ``torch.save``-d state dict of tensors, loaded with ``weights_only=True``; anything else is an error."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a damaged or foreign file
        raise DataFormatError(path, "a state dict of tensors (torch.save)",
                              f"found {' '.join(str(exc).split())[:160]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataFormatError(path, "a state dict of tensors (torch.save)", f"found {type(state).__name__}")
    return state


def check_compatible(info: ModelInfo, corpus: Corpus, tokens: TrialTokens, subjects: Sequence[str],
                     model_path: str | Path) -> None:
    """Refuse (DataFormatError naming the corpus and the model) a corpus whose tokens or channels differ from
    the model's: token settings, features, rate, channel count or layout."""
    from aemg.tokens.tokenset import TokenSettings

    where = f"{corpus.path}/tokens"
    model = Path(model_path) / INFO
    mine = TokenSettings.from_meta(info.token_settings)
    theirs = tokens.ts.settings
    if tuple(mine.feature_names) != tuple(theirs.feature_names) or tokens.ts.n_features != info.n_features:
        raise DataFormatError(where, f"the model's {info.n_features} token features {list(mine.feature_names)} "
                              f"({model})", f"found {tokens.ts.n_features}: {list(theirs.feature_names)}")
    if mine != theirs:
        a, b = mine.to_meta(), theirs.to_meta()
        diff = sorted(k for k in a if a[k] != b.get(k))
        if "config" in diff:
            diff = [d for d in diff if d != "config"] + [f"config.{k}" for k in a["config"]
                                                          if a["config"][k] != b["config"].get(k)]
        raise DataFormatError(where, f"tokens made with the model's settings ({model}: "
                              + ", ".join(f"{d}={_get(a, d)}" for d in diff) + ")",
                              "found " + ", ".join(f"{d}={_get(b, d)}" for d in diff)
                              + ": tokenize the corpus with the model's settings (aemg tokenize)")
    rec = corpus.recordings[corpus.recordings["subject"].isin(list(subjects))]
    kinds = sorted(set(zip(rec["n_channels"].astype(int), rec["layout"].astype(str))))
    bad = [(n, lay) for n, lay in kinds if (n, lay) != (info.n_channels, info.layout)]
    if bad:
        raise DataFormatError(corpus.path, f"recordings of {info.n_channels} channels in layout {info.layout}, "
                              f"as the model's ({model})", f"found {bad[0][0]} channels in layout {bad[0][1]}")


def _get(d: dict[str, Any], key: str) -> Any:
    a, _, b = key.partition(".")
    return d.get(a) if not b else (d.get(a) or {}).get(b)


def finetune_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """``model.json``'s ``finetune_config`` as FinetuneConfig fields: a model written before the head's amplitude
    path (no ``amp_head`` entry) has none (``amp_head=False``), one written before the blended probe (no
    ``probe_blend`` entry) no probe (``probe_blend=0``), whatever today's defaults."""
    return {"amp_head": False, "probe_blend": 0.0, **stored}


def load_model(path: str | Path | SavedModel, corpus: Corpus, subjects: Sequence[str] | None = None) -> FinetuneMethod:
    """The fitted :class:`~aemg.evaluate.encoder_methods.FinetuneMethod` of a model directory (or of one
    already read), on ``corpus``'s token set, after :func:`check_compatible` (``subjects``: those to be
    predicted, default all)."""
    from aemg.evaluate.encoder_methods import FinetuneConfig, FinetuneMethod, trial_tokens

    saved = path if isinstance(path, SavedModel) else read_model(path)
    info = saved.info
    tokens = trial_tokens(corpus)
    check_compatible(info, corpus, tokens, list(subjects) if subjects is not None else corpus.subjects, saved.path)
    try:
        cfg = FinetuneConfig(**finetune_fields(info.finetune_config))
    except TypeError as exc:
        raise DataFormatError(saved.path / INFO, "finetune_config fields of this aemg's FinetuneConfig",
                              f"found {exc}") from None
    method = FinetuneMethod(saved.path, tokens, cfg, pretrained=True)
    try:
        method.restore(info.encoder_config, saved.state, info.n_classes, info.fallback, saved.probe_state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise weights_error(saved, exc) from None
    return method


def weights_error(saved: SavedModel, exc: BaseException) -> DataFormatError:
    """The error of saved weights that do not fit the networks ``model.json`` describes (``load_state_dict``'s
    message, shortened), naming ``weights.pt``, or the folder when the model also holds ``probe.pt``."""
    where = saved.path / WEIGHTS if saved.probe_state is None else saved.path
    files = WEIGHTS if saved.probe_state is None else f"{WEIGHTS}, {PROBE}"
    return DataFormatError(where, f"weights ({files}) of the networks described in {INFO}",
                           f"found {' '.join(str(exc).split())[:200]}")
