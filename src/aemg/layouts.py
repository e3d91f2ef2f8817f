"""Named electrode layouts of the devices in the supported datasets, in the forearm frame.

Frame (see :mod:`aemg.recording`): ``angle_deg`` 0 on the dorsal midline over extensor digitorum,
growing toward the radial (thumb) side; ``z`` 0 at the elbow crease, 1 at the wrist crease.

Armbands (Myo, 3DC) are known only up to a rotation and a direction (some people wear them flipped):
their layouts say ``rotation_unknown=True`` and place channel 0 at angle 0 by convention; pre-training
augments with random rotations and flips. Positions that no publication gives are ``nan`` rather
than invented.

A layout JSON file (for :mod:`aemg.datasets.generic`) holds::

    {"name": "my-band", "rotation_unknown": true,
     "electrodes": [{"site": "ring", "angle_deg": 0.0, "z": 0.3}, ...]}

with one entry per channel in channel order; ``angle_deg``/``z`` may be ``null`` (unknown or off the
forearm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aemg.errors import DataFormatError
from aemg.recording import Electrode

NAN = float("nan")


@dataclass(frozen=True)
class Layout:
    """A device's electrodes in channel order, and whether its rotation on the arm is known."""

    name: str
    electrodes: tuple[Electrode, ...]
    rotation_unknown: bool
    description: str = ""
    source: str = ""

    @property
    def n_channels(self) -> int:
        return len(self.electrodes)


def ring(name: str, n: int, z: float, *, start_deg: float = 0.0, first_index: int = 0) -> tuple[Electrode, ...]:
    """``n`` electrodes equally spaced around the forearm at position ``z``, channel 0 at ``start_deg``."""
    return tuple(Electrode("ring", (start_deg + 360.0 * i / n) % 360.0, z, name, first_index + i)
                 for i in range(n))


def _unknown(name: str, n: int) -> tuple[Electrode, ...]:
    return tuple(Electrode("unknown", NAN, NAN, name, i) for i in range(n))


def _ninapro12() -> tuple[Electrode, ...]:
    name = "ninapro12"
    # 8 equally spaced at the radio-humeral joint (z ~ 0.1), 2 on the main activity spots of flexor
    # (ventral, 180 deg) and extensor (dorsal, 0 deg) digitorum superficialis (~ mid forearm),
    # 2 on biceps and triceps (off the forearm). Atzori et al. 2014, Sci. Data 1:140053.
    return (*ring(name, 8, 0.1),
            Electrode("flexor_digitorum_superficialis", 180.0, 0.35, name, 8),
            Electrode("extensor_digitorum", 0.0, 0.35, name, 9),
            Electrode("biceps_brachii", NAN, NAN, name, 10),
            Electrode("triceps_brachii", NAN, NAN, name, 11))


def _myo2() -> tuple[Electrode, ...]:
    # Ninapro DB5: two Myo armbands, one near the elbow and one closer to the hand, the second tilted
    # by 22.5 deg (Pizzolato et al. 2017). Positions along the arm approximate.
    return (*ring("myo2x8", 8, 0.15), *ring("myo2x8", 8, 0.35, start_deg=22.5, first_index=8))


LAYOUTS: dict[str, Layout] = {
    "myo8": Layout("myo8", ring("myo8", 8, 0.33), True,
                   "Thalmic Myo armband: 8 pods 45 deg apart at the thickest part of the forearm",
                   "geometric; Myo documentation"),
    "3dc10": Layout("3dc10", ring("3dc10", 10, 0.33), True,
                    "3DC armband: 10 channels 36 deg apart around the proximal forearm",
                    "Cote-Allard et al. 2019, Front. Bioeng. Biotechnol. 8:158 (geometric)"),
    "ninapro12": Layout("ninapro12", _ninapro12(), True,
                        "Ninapro DB2/DB4: 8 ring electrodes at the radio-humeral joint + FDS, EDC, biceps, triceps",
                        "Atzori et al. 2014; Pizzolato et al. 2017"),
    "myo2x8": Layout("myo2x8", _myo2(), True, "Ninapro DB5: two Myo armbands (16 channels)",
                     "Pizzolato et al. 2017"),
    "toro4": Layout("toro4", _unknown("toro4", 4), True,
                    "Toro-Ossaba custom 4-channel armband; electrode positions not published",
                    "Toro-Ossaba et al. 2022, Appl. Sci. 12(19):9700"),
    "mcs4": Layout("mcs4", _unknown("mcs4", 4), False,
                   "MCS_EMG 4 channels (BIOPAC, unconfirmed); positions not published", "Ozdemir et al. 2022"),
}


def get_layout(name_or_path: str | Path, n_channels: int | None = None) -> Layout:
    """A layout by registry name, or read from a layout JSON file (format in the module docstring).

    ``unknownN`` (e.g. ``unknown6``) gives N channels of unknown position.
    """
    key = str(name_or_path)
    if key in LAYOUTS:
        layout = LAYOUTS[key]
    elif key.startswith("unknown") and key[7:].isdigit():
        layout = Layout(key, _unknown(key, int(key[7:])), True, "channels of unknown position")
    else:
        path = Path(key)
        if not path.is_file():
            raise DataFormatError(path, f"a layout name ({', '.join(sorted(LAYOUTS))}, unknownN) or a layout JSON file")
        layout = load_layout_json(path)
    if n_channels is not None and layout.n_channels != n_channels:
        raise DataFormatError(str(name_or_path), f"layout with {n_channels} channels",
                              f"layout {layout.name!r} has {layout.n_channels}")
    return layout


def load_layout_json(path: Path) -> Layout:
    """Read a layout JSON file (see the module docstring for its format)."""
    try:
        doc = json.loads(Path(path).read_text())
        name = str(doc["name"])
        electrodes = []
        for i, e in enumerate(doc["electrodes"]):
            a = e.get("angle_deg")
            z = e.get("z")
            electrodes.append(Electrode(str(e.get("site", "ring")), NAN if a is None else float(a) % 360.0,
                                        NAN if z is None else float(z), name, i))
        return Layout(name, tuple(electrodes), bool(doc.get("rotation_unknown", True)),
                      str(doc.get("description", "")), str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(path, 'a layout JSON {"name": ..., "electrodes": [{"site", "angle_deg", "z"}, ...]}',
                              f"{type(exc).__name__}: {exc}") from exc

