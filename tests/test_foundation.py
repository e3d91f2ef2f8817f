"""The shared format's foundations: Recording validation, layouts, vocabulary, light import, registry."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from aemg.cli import main
from aemg.datasets import REGISTRY, get_reader
from aemg.layouts import LAYOUTS, get_layout
from aemg.recording import Electrode, Recording
from aemg.vocabulary import VOCABULARY, gesture_key


def _rec(n_ch: int = 3, n: int = 10, **kw) -> Recording:
    layout = get_layout(f"unknown{n_ch}")
    return Recording(signal=np.zeros((n_ch, n), np.float32), fs=200.0, units="adc",
                     electrodes=layout.electrodes, dataset="test", subject="test/a", session="s", **kw)


def test_recording_rejects_bad_shapes():
    with pytest.raises(ValueError, match="float32"):
        Recording(signal=np.zeros((2, 5)), fs=200.0, units="adc", electrodes=get_layout("unknown2").electrodes,
                  dataset="t", subject="t/a", session="s")
    with pytest.raises(ValueError, match="electrodes"):
        _rec(3, 10).replace(electrodes=get_layout("unknown2").electrodes)
    with pytest.raises(ValueError, match="labels"):
        _rec(labels=np.zeros(9, np.int32), label_names=("a",), gesture_keys=("rest",))
    with pytest.raises(ValueError, match="outside"):
        _rec(labels=np.full(10, 2, np.int32), label_names=("a",), gesture_keys=("rest",))
    with pytest.raises(ValueError, match="fs"):
        _rec().replace(fs=0.0)


def test_pick_moves_rows_and_electrodes_together():
    rec = _rec(3, 4).replace(signal=np.arange(12, dtype=np.float32).reshape(3, 4), channel_flags=("", "dead", ""))
    picked = rec.pick([2, 0])
    assert np.array_equal(picked.signal, rec.signal[[2, 0]])
    assert [e.index for e in picked.electrodes] == [2, 0]
    assert picked.channel_flags == ("", "")


def test_trials_are_runs_of_label_and_repetition():
    labels = np.array([-1, 0, 0, 1, 1, -1, 0, 0, 0, -1], np.int32)
    reps = np.array([-1, 0, 0, 0, 0, -1, 1, 1, 1, -1], np.int32)
    rec = _rec(labels=labels, repetition=reps, label_names=("rest", "fist"), gesture_keys=("rest", "hand_close"))
    assert rec.trials() == [(1, 3, 0, 0), (3, 5, 1, 0), (6, 9, 0, 1)]


def test_armband_layouts_are_equally_spaced_and_marked_rotation_unknown():
    for name, n, step in (("myo8", 8, 45.0), ("3dc10", 10, 36.0)):
        layout = LAYOUTS[name]
        assert layout.n_channels == n and layout.rotation_unknown
        angles = [e.angle_deg for e in layout.electrodes]
        assert np.allclose(np.diff(angles), step)
    nina = LAYOUTS["ninapro12"]
    assert nina.n_channels == 12
    assert [e.on_forearm for e in nina.electrodes[-2:]] == [False, False]  # biceps, triceps
    assert all(not e.on_forearm for e in LAYOUTS["toro4"].electrodes)  # positions not published


def test_unknown_layouts_have_n_channels_of_unknown_position():
    layout = get_layout("unknown6", n_channels=6)
    assert [e.index for e in layout.electrodes] == list(range(6)) and layout.rotation_unknown
    assert all(math.isnan(e.angle_deg) and math.isnan(e.z) and not e.on_forearm for e in layout.electrodes)
    with pytest.raises(ValueError, match="unknownN"):
        get_layout("unknownsix")


def test_layout_json_round_trip(tmp_path):
    path = tmp_path / "band.json"
    path.write_text(json.dumps({"name": "band", "rotation_unknown": False,
                                "electrodes": [{"site": "fcr", "angle_deg": 200, "z": 0.3},
                                               {"site": "biceps", "angle_deg": None, "z": None}]}))
    layout = get_layout(str(path), n_channels=2)
    assert layout.electrodes[0] == Electrode("fcr", 200.0, 0.3, "band", 0)
    assert not layout.electrodes[1].on_forearm and not layout.rotation_unknown
    with pytest.raises(ValueError, match="3 channels"):
        get_layout(str(path), n_channels=3)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        get_layout(str(tmp_path / "bad.json"))


def test_vocabulary_mapping():
    assert gesture_key("myo", "fist", {"fist": "hand_close"}) == "hand_close"
    assert gesture_key("myo", "wave", {}) == "myo:wave"
    assert "rest" in VOCABULARY
    with pytest.raises(ValueError, match="not in the shared vocabulary"):
        gesture_key("myo", "fist", {"fist": "grab"})


def test_import_aemg_is_light():
    code = ("import sys, aemg, aemg.cli, aemg.datasets, aemg.recording, aemg.layouts; "
            "print(sorted(m for m in ('torch', 'h5py', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_lists_every_reader_with_its_facts(capsys):
    assert {"uci-gestures", "cote-allard", "ciil", "3dc", "ninapro-db2", "ninapro-db4", "ninapro-db5",
            "emg-epn-612", "toro-ossaba", "long-term-semg", "myodisco"} <= set(REGISTRY)
    for name in REGISTRY:
        info = get_reader(name).info
        assert info.name == name and info.fs > 0 and info.n_channels > 0 and info.gestures
        assert get_layout(info.layout).n_channels == info.n_channels
    assert main(["datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in listed] == list(REGISTRY)
    assert all({"device", "fs", "n_channels", "n_subjects", "gestures", "citation", "url"} <= set(d) for d in listed)
