"""Rotation and flip of armbands whose orientation on the arm is unknown (pre-training augmentation).

For a sequence whose recording has ``rotation_unknown``, every on-forearm electrode's angle a
becomes s * a + delta, with one delta ~ U[0, 2 pi) and one s in {+1, -1} (worn reversed) per
sequence; z, off-forearm electrodes, padding and known layouts are untouched.
"""

from __future__ import annotations

import math

import torch


def rotate_flip(batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
    """Return a new batch with ``coords`` rotated/flipped where ``rotation_unknown``."""
    coords = batch["coords"]
    B = coords.shape[0]
    delta = (torch.rand(B, generator=generator) * 2 * math.pi).to(coords.device)
    sign = torch.where(torch.rand(B, generator=generator) < 0.5, -1.0, 1.0).to(coords.device)
    c, s, z, off = coords.unbind(-1)
    ang = sign[:, None] * torch.atan2(s, c) + delta[:, None]
    apply = batch["rotation_unknown"][:, None] & (off < 0.5) & ~batch["pad_mask"]
    new = torch.stack([torch.where(apply, torch.cos(ang), c), torch.where(apply, torch.sin(ang), s), z, off], -1)
    out = dict(batch)
    out["coords"] = new
    return out
