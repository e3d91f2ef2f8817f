"""Natural ordering of names (files, subjects, sessions) shared by every part of aemg."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["natural_key"]


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded integers numerically and ignores case (``gesture_2`` before
    ``gesture_10``, ``user2`` before ``User10``)."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))
