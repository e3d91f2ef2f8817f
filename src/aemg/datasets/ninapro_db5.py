"""Ninapro DB5: 10 intact subjects, two Thalmic Myo armbands (16 channels, 200 Hz).

Files ``S{n}_E{e}_A1.mat``: E1 = exercise A (12 finger movements), E2 = B (17), E3 = C (23 grasps);
52 movements + rest. EMG values are Myo int8 counts. See :mod:`aemg.datasets.ninapro`.
"""

from __future__ import annotations

from aemg.datasets.ninapro import NinaproReader, NinaproSpec, make_info

EXERCISES = {1: "A", 2: "B", 3: "C"}

INFO = make_info(
    name="ninapro-db5", title="Ninapro DB5", device="2 x Thalmic Myo armband (16 channels)",
    fs=200.0, n_channels=16, n_subjects=10, exercises=EXERCISES, layout="myo2x8",
    citation="Pizzolato S. et al., Comparison of six electromyography acquisition setups on hand movement "
             "classification tasks, PLoS ONE 12(10):e0186132 (2017), doi:10.1371/journal.pone.0186132",
    url="https://ninapro.hevs.ch/instructions/DB5.html",
    notes="labels from restimulus; 16 channels = 2 Myo armbands (unconfirmed from a real file); Myo int8 counts.",
)

READER = NinaproReader(NinaproSpec(info=INFO, exercises=EXERCISES, units="myo"))
