"""Names the command line needs without importing numpy (keeps ``aemg --help`` instant)."""

SIMULATED_GESTURES: tuple[str, ...] = ("rest", "hand_close", "hand_open", "wrist_flexion", "wrist_extension",
                                       "radial_deviation", "ulnar_deviation", "pronation", "supination")
DEFAULT_GESTURES: tuple[str, ...] = SIMULATED_GESTURES[:7]
