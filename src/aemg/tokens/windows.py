"""The fixed-window tokenizer of the ablation: the event detector's interface, windows for events.

Every complete ``window_ms`` window is one group (and one "event"); the grid restarts at each
recording (:meth:`WindowDetector.boundary`, :meth:`WindowDetector.reset`) and a recording's last,
shorter window is kept. The token content, onsets and ranks come from the same
:class:`~aemg.tokens.groups.GroupAssembler` the event detector uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from aemg.tokens.detector import DetectorConfig, Event
from aemg.tokens.energy import EnergyEnvelope, ms_to_samples
from aemg.tokens.groups import GroupAssembler, GroupBatch


class WindowDetector:
    """Fixed-window tokenizer with :class:`~aemg.tokens.detector.EventDetector`'s interface
    (``process``, ``process_energy``, ``boundary``, ``flush``, ``pop_events``, ``pending_groups``,
    ``reset``, ``state_dict``). ``floor`` ``(C,)`` normalizes the envelope as for events."""

    def __init__(self, fs: float, floor: np.ndarray, window_ms: float = 200.0,
                 config: DetectorConfig | None = None, *, mains_hz: float | None = None,
                 energy: EnergyEnvelope | None = None) -> None:
        self.config = config or DetectorConfig()
        self.fs = float(fs)
        self.window_ms = float(window_ms)
        self.span = ms_to_samples(window_ms, self.fs)  # samples per window
        cfg = self.config
        self._groups = GroupAssembler(floor, cfg.channel_on)
        self.n_channels = self._groups.n_channels
        self.mains_hz = mains_hz
        self.energy = energy or EnergyEnvelope(self.fs, self.n_channels, highpass_hz=cfg.highpass_hz,
                                               order=cfg.highpass_order, smooth_ms=cfg.smooth_ms,
                                               mains_hz=mains_hz)
        if energy is None:
            self.reset()
        else:
            self._reset_windows()

    @property
    def floor(self) -> np.ndarray:
        """``(C,)`` the per-channel noise floor."""
        return self._groups.floor

    def reset(self, x0: np.ndarray | None = None) -> None:
        """Start a new recording: filters settle on ``x0``; the window grid and counters restart at 0."""
        self.energy.reset(x0)
        self._reset_windows()

    def _reset_windows(self) -> None:
        self._groups.reset()
        self._clock = 0  # absolute index of the next sample
        self._next = 0  # id of the next window
        self._wstart = 0  # first sample of the window in progress
        self._events: list[Event] = []

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: floor, config, filter state, history, window grid."""
        return {"fs": self.fs, "floor": self.floor.copy(), "config": self.config.to_dict(),
                "window_ms": self.window_ms, "mains_hz": self.mains_hz, "energy": self.energy.state_dict(),
                "clock": self._clock, "next": self._next, "wstart": self._wstart, **self._groups.state_dict(),
                "events": [asdict(e) for e in self._events]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (DetectorConfig.from_dict(state["config"]) != self.config or float(state["fs"]) != self.fs
                or float(state["window_ms"]) != self.window_ms):
            raise ValueError("state was saved from a window tokenizer with another config, rate or window")
        self._groups.set_floor(state["floor"])
        self.energy.load_state_dict(state["energy"])
        self._groups.load_state_dict(state)
        self._clock, self._next, self._wstart = int(state["clock"]), int(state["next"]), int(state["wstart"])
        self._events = [Event(**e) for e in state["events"]]

    def pop_events(self) -> list[Event]:
        """The windows completed since the last call, as events (in time order)."""
        out, self._events = self._events, []
        return out

    def process(self, chunk: np.ndarray) -> GroupBatch:
        """Consume the next ``(C, n)`` chunk; return the windows completed in it."""
        xf, env = self.energy.process(chunk)
        return self.process_energy(xf, env)

    def process_energy(self, xf: np.ndarray, env: np.ndarray, cuts: Sequence[int] = ()) -> GroupBatch:
        """:meth:`process` after the energy stage; ``cuts``: positions where a new recording starts."""
        n = xf.shape[1]
        if n == 0:
            return GroupBatch.empty(self.n_channels)
        n0 = self._clock
        self._groups.append(xf, env)
        for cut in sorted(n0 + int(c) for c in cuts if 0 <= c < n):
            while self._wstart + self.span <= cut:
                self._window(self._wstart + self.span)
            if self._wstart < cut:  # a recording ends: its last, shorter window
                self._window(cut)
        while self._wstart + self.span <= n0 + n:
            self._window(self._wstart + self.span)
        self._clock = n0 + n
        out = self._groups.take()
        self._groups.trim(self._wstart)
        return out

    def pending_groups(self) -> GroupBatch:
        """Windows need no confirmation: nothing is ever pending."""
        return GroupBatch.empty(self.n_channels)

    def boundary(self) -> None:
        """The next sample starts a new recording: the window in progress ends here."""
        if self._wstart < self._clock:
            self._window(self._clock)

    def flush(self) -> GroupBatch:
        """End of the stream: the last, shorter window and every window not yet returned."""
        self.boundary()
        return self._groups.take()

    def _window(self, end: int) -> None:
        k = self._next
        self._next += 1
        self._groups.queue(k, 0, [self._wstart], end, self._wstart)
        self._events.append(Event(k, self._wstart, end, end - 1, False, False, 1))
        self._wstart = end


__all__ = ["WindowDetector"]
