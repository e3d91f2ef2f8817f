"""Harmonization: resampling, DC removal, robust amplitude scale, causal filters, mains, channel QC.

Everything here is numpy/scipy only and imports nothing from the corpus store or later stages, so
:func:`harmonize_session` (the per-session pipeline the corpus runs) serves a live decoder too. The
causal filters (:class:`CausalSOS`) are the same objects offline and live: a recording filtered
whole or in chunks gives the same output. See docs/signal.md.
"""

from __future__ import annotations

from aemg.signal.filters import CausalSOS, apply_causal_filter, bandpass_sos, make_causal_filter, notch_sos
from aemg.signal.harmonize import detect_session_mains, harmonize_session, native_rate, resolve_mains
from aemg.signal.holds import detect_sample_and_hold, rebuild_sample_and_hold
from aemg.signal.mains import detect_mains
from aemg.signal.qc import channel_qc
from aemg.signal.resample import DEFAULT_FS, resample, resample_array
from aemg.signal.scale import apply_scale, divide_by_scale, remove_dc, robust_scale, session_scale

__all__ = [
    "DEFAULT_FS",
    "CausalSOS",
    "apply_causal_filter",
    "apply_scale",
    "bandpass_sos",
    "channel_qc",
    "detect_mains",
    "detect_sample_and_hold",
    "detect_session_mains",
    "divide_by_scale",
    "harmonize_session",
    "make_causal_filter",
    "native_rate",
    "notch_sos",
    "rebuild_sample_and_hold",
    "remove_dc",
    "resample",
    "resample_array",
    "resolve_mains",
    "robust_scale",
    "session_scale",
]
