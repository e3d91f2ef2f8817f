"""Ninapro DB4: 10 intact subjects, Cometa electrodes (12 channels, 2 kHz; device unconfirmed).

Files ``S{n}_E{e}_A1.mat``: E1 = exercise A (12 finger movements), E2 = B (17), E3 = C (23 grasps);
52 movements + rest. Same placement as DB2 (assumed). See :mod:`aemg.datasets.ninapro`.
"""

from __future__ import annotations

from aemg.datasets.ninapro import NinaproReader, NinaproSpec, make_info

EXERCISES = {1: "A", 2: "B", 3: "C"}

INFO = make_info(
    name="ninapro-db4", title="Ninapro DB4", device="Cometa Wave Plus (12 electrodes; unconfirmed)",
    fs=2000.0, n_channels=12, n_subjects=10, exercises=EXERCISES, layout="ninapro12",
    citation="Pizzolato S. et al., Comparison of six electromyography acquisition setups on hand movement "
             "classification tasks, PLoS ONE 12(10):e0186132 (2017), doi:10.1371/journal.pone.0186132",
    url="https://ninapro.hevs.ch/instructions/DB4.html",
    notes="labels from restimulus; E3 file and units (volts) unconfirmed; electrode placement assumed as DB2.",
)

READER = NinaproReader(NinaproSpec(info=INFO, exercises=EXERCISES, units="V"))
