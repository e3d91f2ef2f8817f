"""The shared gesture vocabulary, and the mapping of each dataset's gesture names onto it.

Evaluation on one dataset uses that dataset's own classes; the vocabulary lets datasets be compared
and pooled. A gesture outside it keeps the key ``"dataset:name"``. Unmarked samples (UCI's class 0,
between gestures, never labelled as rest by the dataset) are *not* rest: they get label -1.
"""

from __future__ import annotations

VOCABULARY: tuple[str, ...] = (
    "rest",
    "hand_close",  # fist, power grip
    "hand_open",  # extended palm, open hand
    "wrist_flexion",  # wave in (Myo)
    "wrist_extension",  # wave out (Myo)
    "radial_deviation",
    "ulnar_deviation",
    "pronation",
    "supination",
    "index_point",
    "pinch",  # thumb-index tip pinch
    "tripod",  # chuck grip, three-finger grip
    "key_pinch",  # lateral pinch
    "finger_abduction",
    "finger_adduction",
)


def gesture_key(dataset: str, name: str, mapping: dict[str, str]) -> str:
    """Shared-vocabulary key of a dataset's gesture ``name``, or ``"dataset:name"`` when unmapped."""
    key = mapping.get(name)
    if key is None:
        return f"{dataset}:{name}"
    if key not in VOCABULARY:
        raise ValueError(f"{dataset}: mapping of {name!r} names {key!r}, which is not in the shared vocabulary")
    return key


def gesture_keys(dataset: str, names: tuple[str, ...] | list[str], mapping: dict[str, str]) -> tuple[str, ...]:
    """:func:`gesture_key` for each name, in order."""
    return tuple(gesture_key(dataset, n, mapping) for n in names)
