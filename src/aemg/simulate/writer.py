"""Simulate a gesture dataset and write it in the generic import layout (manifest.csv + .npy files).

Protocol per subject (one session): for each repetition, for each gesture other than ``rest``: a
rest period, then the gesture (reaction delay, onset ramp, hold, release). Every period is one row
and one ``.npy`` file; rest periods are rows with gesture ``rest`` when ``rest`` is among the
gestures, else unlabelled rows (empty gesture). The session is simulated as one continuous signal
(mains phase, noise and fatigue run on across rows) and then cut at the row boundaries.

Layout written (read back by :func:`aemg.datasets.generic.read_manifest`)::

    OUT/manifest.csv          file,subject,session,trial,gesture,fs,layout,repetition,units
    OUT/S01/t000_rest.npy     float32 (samples, 8), uV
    OUT/simulation.json       seed, parameters, each subject's true armband rotation, gains ...,
                              and ``files``: every signal file this simulation wrote

``simulation.json`` (``"generator": "aemg simulate"``) is what marks a folder as an aemg
simulation: it is written before each subject's files (listing them) and rewritten in full at
the end, so ``--overwrite`` removes exactly the files a simulation wrote, even an interrupted one,
and refuses any folder without it. Deterministic for a seed: subject k draws from
``SeedSequence(seed).spawn(n)[k]``.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aemg.atomic import atomic_write_text
from aemg.plausible import check_source_fs
from aemg.signal.resample import resample_array
from aemg.simulate._names import DEFAULT_GESTURES
from aemg.simulate.artefacts import artefacts
from aemg.simulate.config import SimConfig
from aemg.simulate.physiology import (
    GESTURE_PATTERNS,
    MUSCLES,
    MotorUnitPools,
    Subject,
    activation_envelope,
    emg_from_activation,
    fatigue_state,
)

log = logging.getLogger(__name__)

SIM_FS = 1000.0  # internal rate: surface EMG has power up to ~450 Hz
MANIFEST_COLUMNS = ("file", "subject", "session", "trial", "gesture", "fs", "layout", "repetition", "units")
META = "simulation.json"
"""The simulation's facts and the list of files it wrote: its presence marks an aemg simulation."""
GENERATOR = "aemg simulate"
"""The ``generator`` value in :data:`META`."""


@dataclass(frozen=True)
class Protocol:
    """Timing of the simulated session (seconds; each drawn uniformly from its range)."""

    rest_s: tuple[float, float] = (1.6, 2.4)
    delay_s: tuple[float, float] = (0.15, 0.35)  # reaction time after the cue
    ramp_s: tuple[float, float] = (0.2, 0.4)
    hold_s: tuple[float, float] = (1.5, 2.5)
    release_s: tuple[float, float] = (0.2, 0.4)
    tail_s: float = 0.25  # after the release, still in the gesture's row
    level_cv: float = 0.2  # repetition-to-repetition variation of the contraction level (log-normal sigma)
    burst_s: tuple[float, float] = (0.3, 0.8)  # a stray contraction in a rest period (SimConfig.rest_burst_prob)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(*r))


def simulate_subject(rng: np.random.Generator, gestures: Sequence[str], reps: int, fs: float = SIM_FS,
                     protocol: Protocol | None = None, n_mu: int = 100,
                     config: SimConfig | None = None) -> tuple[np.ndarray, list[dict], Subject]:
    """One subject's continuous session: ``(E, T)`` uV at ``fs``, its rows, and the subject's facts.

    Each row dict has ``gesture`` (``""`` for an unlabelled rest), ``repetition``, ``start``, ``stop``.
    ``config`` (default :class:`SimConfig`) sets noise, variability between subjects and artefacts.
    """
    protocol = protocol or Protocol()
    config = config or SimConfig()
    subject = Subject.draw(rng, config=config)
    pools = MotorUnitPools.build(len(MUSCLES), n_mu, rng)
    motions = [g for g in gestures if g != "rest"]
    label_rest = "rest" in gestures
    segments: list[tuple[str, int, np.ndarray | None]] = []  # (gesture, n samples, activation (M, n) or None)
    for _ in range(reps):
        for g in motions:
            n_rest = int(round(_u(rng, protocol.rest_s) * fs))
            segments.append(("rest", n_rest, _rest_burst(rng, fs, subject, config, protocol)))
            d, r, h, rl = (_u(rng, protocol.delay_s), _u(rng, protocol.ramp_s), _u(rng, protocol.hold_s),
                           _u(rng, protocol.release_s))
            n = int(round((d + r + h + rl + protocol.tail_s) * fs))
            level = rng.lognormal(0.0, protocol.level_cv) * subject.intensity
            env = activation_envelope(n, fs, 1.0, rng, delay_s=d, ramp_s=r, hold_s=h, release_s=rl)
            own = subject.patterns[g]
            jitter = config.repetition_sd * rng.standard_normal(own.shape) * (own > 0)
            pattern = np.clip((own + jitter) * level, 0.0, 1.0)
            segments.append((g, n, pattern[:, None] * env[None, :]))
    if not segments:  # only "rest" asked for: reps rest periods
        segments = [("rest", int(round(_u(rng, protocol.rest_s) * fs)), None) for _ in range(reps)]
    total = sum(n for _, n, _ in segments)
    activation = np.full((len(MUSCLES), total), subject.rest_tone)
    rows, pos, counts = [], 0, {}
    for g, n, act in segments:
        if act is not None:
            m = min(n, act.shape[1])
            activation[:, pos:pos + m] = np.maximum(activation[:, pos:pos + m], act[:, :m])
        name = g if (g != "rest" or label_rest) else ""
        rep = counts.get(name, 0)
        counts[name] = rep + 1
        rows.append({"gesture": name, "repetition": rep if name else None, "start": pos, "stop": pos + n})
        pos += n
    fatigue = fatigue_state(activation, fs, subject.fatigue_rate)
    emg = emg_from_activation(activation, fs, subject, pools, rng, fatigue=fatigue)
    emg += artefacts(subject.n_electrodes, total, fs, config, rng)
    return emg, rows, subject


def _rest_burst(rng: np.random.Generator, fs: float, subject: Subject, config: SimConfig,
                protocol: Protocol) -> np.ndarray | None:
    """With ``config.rest_burst_prob``: a weak, brief contraction (a random gesture's template) somewhere
    in the rest period about to start, as activation from its first sample; else None."""
    if rng.uniform() >= config.rest_burst_prob:
        return None
    g = str(rng.choice(sorted(k for k in subject.patterns if k != "rest")))
    dur = _u(rng, protocol.burst_s)
    start = _u(rng, (0.0, protocol.rest_s[0] - dur))
    n = int(round((start + dur) * fs))
    env = activation_envelope(n, fs, _u(rng, config.rest_burst_level), rng, delay_s=start, ramp_s=0.1,
                              hold_s=max(dur - 0.2, 0.0), release_s=0.1)
    return subject.patterns[g][:, None] / max(float(subject.patterns[g].max()), 1e-9) * env[None, :]


def simulate_dataset(out: Path | str, n_subjects: int = 4, seed: int = 0, *, fs: float = SIM_FS,
                     gestures: Sequence[str] = DEFAULT_GESTURES, reps: int = 3, overwrite: bool = False,
                     progress: bool = True, config: SimConfig | None = None) -> Path:
    """Write a simulated dataset in the generic import layout under ``out``; returns the manifest path.

    ``progress`` shows a tqdm bar on stderr (when it is a terminal). Refuses a non-empty ``out``
    unless ``overwrite``; then ``out`` must hold a previous aemg simulation (its ``simulation.json``),
    whose own files (listed there) are removed first; nothing else in the folder is touched.
    """
    out = Path(out)
    if n_subjects < 1 or reps < 1:
        raise ValueError(f"need at least 1 subject and 1 repetition, got {n_subjects} and {reps}")
    fs = check_source_fs(fs, "--fs", "the rate of the simulated files")  # refused before any work
    unknown = [g for g in gestures if g not in GESTURE_PATTERNS]
    if unknown or not gestures:
        raise ValueError(f"unknown gestures {unknown}; choose from {', '.join(GESTURE_PATTERNS)}")
    if len(set(gestures)) != len(gestures):
        raise ValueError(f"gestures repeated: {list(gestures)}")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass --overwrite to replace a previous simulation there")
        _remove_previous(out, _previous_files(out))
    out.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    sim_fs = max(fs, SIM_FS)
    children = np.random.SeedSequence(seed).spawn(n_subjects)
    manifest_rows, truth, written = [], [], []
    for k in tqdm(range(n_subjects), desc="simulate", unit="subject", disable=None if progress else True):
        rng = np.random.default_rng(children[k])
        emg, rows, subject = simulate_subject(rng, list(gestures), reps, sim_fs, config=config)
        scale = fs / sim_fs
        if fs != sim_fs:
            emg = resample_array(emg, sim_fs, fs)
        name = f"S{k + 1:02d}"
        rel_files = [f"{name}/t{t:03d}_{row['gesture'] or 'unlabelled'}.npy" for t, row in enumerate(rows)]
        taken = [f for f in rel_files if (out / f).exists() or (out / f).is_symlink()]
        if taken:
            raise FileExistsError(f"{out / taken[0]}: expected no file where the simulation writes; found one "
                                  "that no aemg simulation listed (move it away, or choose an empty folder)")
        written.extend(rel_files)  # recorded before they exist: an interruption leaves them listed
        atomic_write_text(out / META, json.dumps({"generator": GENERATOR, "complete": False, "files": written},
                                                 indent=1))
        (out / name).mkdir(exist_ok=True)
        for t, (rel_file, row) in enumerate(zip(rel_files, rows)):
            a, b = int(round(row["start"] * scale)), int(round(row["stop"] * scale))
            np.save(out / rel_file, np.ascontiguousarray(emg[:, a:b].T, dtype=np.float32))
            manifest_rows.append({"file": rel_file, "subject": name, "session": "session1", "trial": f"t{t:03d}",
                                  "gesture": row["gesture"], "fs": f"{fs:g}", "layout": "myo8",
                                  "repetition": "" if row["repetition"] is None else row["repetition"],
                                  "units": "uV"})
        truth.append({"subject": name, "rotation_deg": subject.rotation_deg, "z_armband": subject.z_armband,
                      "gains": subject.gains.round(6).tolist(), "noise_uv": subject.noise_uv.round(6).tolist(),
                      "mains_hz": subject.mains_hz, "mains_uv": subject.mains_uv.round(6).tolist(),
                      "style": dict(zip((m.name for m in MUSCLES), subject.style.round(6).tolist())),
                      "muap_half_width_ms": subject.muap_ms, "fatigue_rate": subject.fatigue_rate,
                      "intensity": subject.intensity, "rest_tone": subject.rest_tone,
                      "bad_channel": subject.bad_channel})
    meta = {"generator": GENERATOR, "seed": seed, "n_subjects": n_subjects, "fs": fs,
            "simulated_at_fs": sim_fs, "gestures": list(gestures), "repetitions": reps, "layout": "myo8",
            "units": "uV", "config": asdict(config or SimConfig()), "muscles": [vars(m) for m in MUSCLES],
            "patterns": {g: dict(zip((m.name for m in MUSCLES), GESTURE_PATTERNS[g].tolist())) for g in gestures},
            "subjects": truth, "files": written}
    atomic_write_text(out / META, json.dumps(meta, indent=1))
    lines = [",".join(MANIFEST_COLUMNS)]
    for r in manifest_rows:
        lines.append(",".join(str(r[c]) for c in MANIFEST_COLUMNS))
    atomic_write_text(out / "manifest.csv", "\n".join(lines) + "\n")  # last: never points at missing files
    log.info("simulated %d subjects, %d recordings -> %s", n_subjects, len(manifest_rows), out)
    return out / "manifest.csv"


def _previous_files(out: Path) -> list[str]:
    """The files (relative to ``out``) a previous aemg simulation in ``out`` wrote, from its
    ``simulation.json``; FileExistsError when ``out`` holds no aemg simulation."""
    meta_path = out / META
    expected = (f"{meta_path}: expected an aemg simulation to overwrite ({META} written by aemg simulate); found ")
    tail = ("; this is not an aemg simulation, and --overwrite replaces only one: choose an empty folder")
    if not meta_path.is_file():
        what = "manifest.csv but no " + META if (out / "manifest.csv").exists() else "no " + META
        raise FileExistsError(expected + what + tail)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileExistsError(expected + f"an unreadable file ({type(exc).__name__})" + tail) from exc
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR:
        got = meta.get("generator") if isinstance(meta, dict) else type(meta).__name__
        raise FileExistsError(expected + f"generator {got!r}" + tail)
    files = meta.get("files")
    if files is None:  # written before simulations listed their files: the manifest's simulator-named rows
        files = _manifest_files(out)
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise FileExistsError(expected + "a 'files' entry that is not a list of paths" + tail)
    return files


_SIM_FILE = re.compile(r"S\d{2,}/t\d{3,}_[a-z_]+\.npy")


def _manifest_files(out: Path) -> list[str]:
    """Rows of ``out/manifest.csv`` named as the simulator names its files (older simulations)."""
    manifest = out / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as f:
        return [r.get("file") or "" for r in csv.DictReader(f) if _SIM_FILE.fullmatch(r.get("file") or "")]


def _remove_previous(out: Path, files: list[str]) -> None:
    """Remove the files a previous simulation wrote (``files``, its manifest and ``simulation.json``)
    and the subject folders left empty: nothing else."""
    root = out.resolve()
    for rel_file in files:
        p = out / rel_file
        if p.suffix == ".npy" and not p.is_symlink() and p.is_file() and p.resolve().is_relative_to(root):
            p.unlink()
    for d in sorted({(out / f).parent for f in files}, reverse=True):
        if d.is_dir() and d.resolve() != root and d.resolve().is_relative_to(root) and not any(d.iterdir()):
            d.rmdir()
    (out / "manifest.csv").unlink(missing_ok=True)
    (out / META).unlink()
