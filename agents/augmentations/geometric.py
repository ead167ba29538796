"""Augmentations that move pixels: crop, translate, flip, rotate (DrAC paper settings by default).

Shifts default to 3/16 of the image side: the published 12 pixels on 64x64 Procgen frames, one
cell on the maze's 5x5 view.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch as th

from heldout.agents.augmentations.registry import check_batch, check_int, check_number, integers, uniform

SHIFT_FRAC = 12 / 64
"""Default pad / shift as a fraction of the image side (12 pixels at 64)."""


def _default_shift(x: th.Tensor, name: str, value: int | None) -> int:
    if value is None:
        return round(SHIFT_FRAC * min(x.shape[1], x.shape[2]))
    return check_int(name, value)


def _shifted(x: th.Tensor, generator: th.Generator, max_shift: int, *, replicate: bool) -> th.Tensor:
    """Each image shifted by its own (dy, dx) in [-max_shift, max_shift]; edges replicated or zero."""
    n, h, w, _ = x.shape
    dy = integers(generator, n, -max_shift, max_shift, x.device)
    dx = integers(generator, n, -max_shift, max_shift, x.device)
    rows = dy[:, None] + th.arange(h, device=x.device)  # (n, h): source row of each output row
    cols = dx[:, None] + th.arange(w, device=x.device)
    batch = th.arange(n, device=x.device)[:, None, None]
    out = x[batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    if not replicate:
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        out = out.masked_fill_(~inside[..., None], 0)
    return out


def crop(x: th.Tensor, generator: th.Generator, *, pad: int | None = None) -> th.Tensor:
    """Replicate-pad each image by ``pad`` pixels (default 3/16 of its side: 12 at 64), then crop
    it back to H x W at a random offset.

    Done as one gather with clamped indices (no padded copy); ``pad=0`` is the identity.
    """
    check_batch(x)
    return _shifted(x, generator, _default_shift(x, "pad", pad), replicate=True)


def translate(x: th.Tensor, generator: th.Generator, *, max_shift: int | None = None) -> th.Tensor:
    """Shift each image by up to ``max_shift`` pixels (default 3/16 of its side) each way, filling with zeros."""
    check_batch(x)
    return _shifted(x, generator, _default_shift(x, "max_shift", max_shift), replicate=False)


def flip(x: th.Tensor, generator: th.Generator, *, p: float = 0.5, horizontal: bool = False) -> th.Tensor:
    """Flip each image with probability ``p``: upside down (as published), or left-right."""
    check_batch(x)
    p = check_number("p", p, 0.0, 1.0)
    if not isinstance(horizontal, bool):
        raise ValueError(f"horizontal must be true or false, got {horizontal!r}")
    chosen = uniform(generator, x.shape[0], 0.0, 1.0, x.device) < p
    flipped = x.flip(2 if horizontal else 1)
    return th.where(chosen[:, None, None, None], flipped, x).contiguous()


def rotate(x: th.Tensor, generator: th.Generator, *, quarter_turns: Sequence[int] = (0, 1, 2, 3)) -> th.Tensor:
    """Rotate each image by 90 degrees times a count drawn uniformly from ``quarter_turns``.

    ``quarter_turns=(0,)`` is the identity. Odd counts need square images.
    """
    check_batch(x)
    turns = list(quarter_turns) if isinstance(quarter_turns, (list, tuple)) else None
    if not turns or any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 3 for k in turns):
        raise ValueError(f"quarter_turns must be a non-empty list of integers 0..3, got {quarter_turns!r}")
    if any(k % 2 for k in turns) and x.shape[1] != x.shape[2]:
        raise ValueError(f"rotating by 90 or 270 degrees needs square images, got shape {tuple(x.shape)}")
    pick = integers(generator, x.shape[0], 0, len(turns) - 1, x.device)
    k_of = th.tensor(turns, device=x.device)[pick]
    out = x.clone()
    for k in sorted(set(turns) - {0}):
        chosen = k_of == k
        if bool(chosen.any()):
            out[chosen] = th.rot90(x[chosen], k, dims=(1, 2))
    return out
