"""Ninapro DB2: 40 intact subjects, Delsys Trigno (12 electrodes, 2 kHz), exercises B, C, D.

Files ``DB2_s{n}/S{n}_E{e}_A1.mat``: E1 = exercise B (17 movements), E2 = C (23 grasps), E3 = D
(9 force patterns); 49 movements + rest. See :mod:`aemg.datasets.ninapro`.
"""

from __future__ import annotations

from aemg.datasets.ninapro import NinaproReader, NinaproSpec, make_info

EXERCISES = {1: "B", 2: "C", 3: "D"}

INFO = make_info(
    name="ninapro-db2", title="Ninapro DB2", device="Delsys Trigno Wireless (12 double-differential electrodes)",
    fs=2000.0, n_channels=12, n_subjects=40, exercises=EXERCISES, layout="ninapro12",
    citation="Atzori M. et al., Electromyography data for non-invasive naturally-controlled robotic hand "
             "prostheses, Scientific Data 1:140053 (2014), doi:10.1038/sdata.2014.53",
    url="https://ninapro.hevs.ch/instructions/DB2.html",
    notes="labels from restimulus (movement-aligned); stimulus/restimulus/repetition/rerepetition kept as tracks; "
          "emg in volts (unconfirmed).",
)

# DB2 files number movements database-wide (E1 1..17, E2 18..40, E3 41..49): LibEMG keeps 50 DB2 classes,
# and a third-party check of real downloads found these ranges. File-local ids are accepted too.
READER = NinaproReader(NinaproSpec(info=INFO, exercises=EXERCISES, units="V", db_folder="DB2_s{n}",
                                   hardware_band=(20.0, 450.0), numbering="database-wide"))
