"""Read access to a prepared corpus: :class:`Corpus`.

Construction reads ``provenance.json``, the index tables and each session file's attributes (the
integrity check, :mod:`aemg.corpus.integrity`); every :meth:`Corpus.load` opens
the session's HDF5 file, reads one group and closes it again. No file handle is held between calls,
so a Corpus can be handed to DataLoader workers (it pickles as its path and tables).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aemg.corpus import index as ix
from aemg.corpus import store
from aemg.corpus.integrity import check_corpus
from aemg.corpus.paths import MARKER, PROVENANCE
from aemg.corpus.provenance import read_provenance
from aemg.errors import DataFormatError
from aemg.naming import natural_key
from aemg.recording import Recording


class Corpus:
    """A prepared corpus folder (``aemg prepare`` / ``aemg import``), read lazily.

    Attributes: ``path``, ``provenance`` (dict), ``fs`` (corpus rate, Hz), ``dataset``,
    ``recordings`` / ``trials`` / ``sessions`` (pandas DataFrames, schema in
    :mod:`aemg.corpus.index`), ``subjects`` (ids in corpus order).

    Opening checks the index against the provenance, itself and the session files
    (:mod:`aemg.corpus.integrity`; no signal is read): a damaged corpus is a DataFormatError naming
    the file. ``check=False`` skips the cross-checks (the files are still parsed).
    """

    def __init__(self, path: str | Path, *, check: bool = True):
        self.path = Path(path)
        prov_path = self.path / PROVENANCE
        if (self.path / MARKER).exists():
            raise DataFormatError(self.path, "a finished aemg corpus",
                                  f"{MARKER} present: a prepare/import is running or was interrupted; "
                                  "run the same command again to finish it")
        if not prov_path.is_file():
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: corpus folder not found")
            raise DataFormatError(self.path, f"an aemg corpus folder ({PROVENANCE} + index/)",
                                  f"found no {PROVENANCE}")
        self.provenance: dict[str, Any] = read_provenance(prov_path)
        if not (self.path / ix.INDEX_DIR).is_dir():
            raise DataFormatError(self.path / ix.INDEX_DIR, "the index tables of the corpus (recordings.csv, "
                                  "sessions.csv, trials.csv)", "found no index folder")
        self.recordings = ix.read_table(self.path, "recordings")
        self.trials = ix.read_table(self.path, "trials")
        self.sessions = ix.read_table(self.path, "sessions")
        if check:
            check_corpus(self.path, self.provenance, self.recordings, self.trials, self.sessions)
        self._where = {rid: (h5, grp) for rid, h5, grp in
                       zip(self.recordings["recording_id"], self.recordings["h5_file"], self.recordings["h5_group"])}
        self._shape = {rid: (int(c), int(t)) for rid, c, t in
                       zip(self.recordings["recording_id"], self.recordings["n_channels"], self.recordings["n_samples"])}
        self._scale = {(s, ss): np.asarray(sc, dtype=np.float64) for s, ss, sc in
                       zip(self.sessions["subject"], self.sessions["session"], self.sessions["scale"])}

    # ------------------------------------------------------------------ facts
    @property
    def fs(self) -> float:
        return float(self.provenance["params"]["fs"])

    @property
    def dataset(self) -> str:
        return str(self.provenance["dataset"])

    @property
    def hash(self) -> str:
        return str(self.provenance["hash"])

    @property
    def subjects(self) -> list[str]:
        """Subject ids in corpus order (natural order: ``Participant5`` before ``Participant13``)."""
        return sorted(dict.fromkeys(self.recordings["subject"]), key=natural_key)

    @property
    def recording_ids(self) -> list[str]:
        return list(self.recordings["recording_id"])

    def __len__(self) -> int:
        return len(self.recordings)

    def __repr__(self) -> str:
        return (f"Corpus({str(self.path)!r}: {self.dataset}, {len(self.subjects)} subjects, "
                f"{len(self.recordings)} recordings, {len(self.trials)} trials, {self.fs:g} Hz)")

    # ------------------------------------------------------------------ reads
    def scale(self, subject: str, session: str) -> np.ndarray:
        """The robust amplitude scale (C,) float64 of a subject's session, for a live decoder too.

        Label-free, measured after the causal 20 Hz high-pass and mains notch
        (:func:`aemg.signal.scale.session_scale`): a decoder runs
        ``make_causal_filter(corpus.fs, C, mains_hz)`` on its stream and divides each filtered chunk
        by it (``y = divide_by_scale(f.process(chunk), scale)``). docs/signal.md, "Live use".
        """
        try:
            return self._scale[(subject, session)].copy()
        except KeyError:
            raise KeyError(f"{self.path}: no session {session!r} of subject {subject!r}") from None

    def load(self, recording_id: str, scaled: bool = False) -> Recording:
        """One recording, read from its session file (opened and closed by this call).

        ``scaled=True`` divides each channel by the session's robust scale
        (:func:`aemg.signal.divide_by_scale`: channels whose scale is not a positive number are left
        as they are) and appends ``"robust_scale"`` to ``processing``.
        """
        try:
            h5, group = self._where[recording_id]
        except KeyError:
            raise KeyError(f"{self.path}: no recording {recording_id!r}") from None
        rec = store.read_one(self.path / h5, group)
        if rec.recording_id != recording_id:
            raise DataFormatError(self.path / h5, f"recording {recording_id!r} in group {group}",
                                  f"found {rec.recording_id!r} (index and files disagree)")
        want = self._shape[recording_id]
        if rec.signal.shape != want:
            raise DataFormatError(self.path / h5, f"a signal of {want[0]} channels x {want[1]} samples in group "
                                  f"{group} (as in {ix.INDEX_DIR}/recordings.csv)",
                                  f"found shape {rec.signal.shape} (index and files disagree)")
        if scaled:
            from aemg.signal.scale import divide_by_scale  # scipy only when needed

            rec = rec.with_step("robust_scale", signal=divide_by_scale(rec.signal, self.scale(rec.subject, rec.session)))
        return rec

    def iter_recordings(self, subject: str | None = None, session: str | None = None,
                        scaled: bool = False) -> Iterator[Recording]:
        """Recordings in corpus order (subject, session_order, order), optionally of one subject/session."""
        df = self.recordings
        if subject is not None:
            if subject not in set(df["subject"]):
                raise KeyError(f"{self.path}: no subject {subject!r}")
            df = df[df["subject"] == subject]
        if session is not None:
            df = df[df["session"] == session]
        rank = {s: i for i, s in enumerate(self.subjects)}
        order = sorted(range(len(df)), key=lambda i: (rank[df["subject"].iat[i]], int(df["session_order"].iat[i]),
                                                      natural_key(df["session"].iat[i]), int(df["order"].iat[i])))
        for i in order:
            yield self.load(df["recording_id"].iat[i], scaled=scaled)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Counts and facts of the corpus as one JSON-serialisable dict (``aemg info --json``)."""
        rec, tr, ses = self.recordings, self.trials, self.sessions
        per_gesture = {str(k): int(v) for k, v in tr["gesture_key"].value_counts().sort_index().items()}
        per_subject = {s: int((rec["subject"] == s).sum()) for s in self.subjects}
        flagged = []
        for s, ss, fl in zip(ses["subject"], ses["session"], ses["flagged_channels"]):
            for ch, flag in sorted(fl.items(), key=lambda kv: int(kv[0])):
                flagged.append({"subject": s, "session": ss, "channel": int(ch), "flag": flag})
        prov = self.provenance
        return {
            "path": str(self.path),
            "dataset": self.dataset,
            "reader": prov.get("reader"),
            "hash": prov.get("hash"),
            "fs": self.fs,
            "subjects": self.subjects,
            "n_subjects": len(self.subjects),
            "n_sessions": len(ses),
            "n_recordings": len(rec),
            "n_trials": len(tr),
            "trials_per_gesture": per_gesture,
            "recordings_per_subject": per_subject,
            "hours": float(rec["duration_s"].sum() / 3600.0),
            "channels": sorted({int(c) for c in rec["n_channels"]}),
            "layouts": sorted(set(rec["layout"])),
            "fs_original": sorted({float(f) for f in rec["fs_original"]}),
            "mains_hz": sorted({float(m) for m in ses["mains_hz"] if np.isfinite(m)}),
            "mains_sources": {str(k): int(v) for k, v in ses["mains_source"].value_counts().sort_index().items()},
            "dropped_duplicates": len(prov.get("dropped_duplicates", [])),
            "dropped_duplicate_recordings": [d["recording_id"] for d in prov.get("dropped_duplicates", [])],
            "flagged_channels": flagged,
            "aemg_version": prov.get("aemg_version"),
        }
