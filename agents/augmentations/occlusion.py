"""Augmentations that hide part of an image: cutout, cutout-colour, dropout.

Box sides and the published box's corner offset are fractions of the image side, so the published
setting (sides of 7 to 21 pixels, top-left corner at (12 + h, 24 + w) on 64x64 Procgen frames)
scales to any observation size; on the maze's 5x5 view it gives boxes of 1 to 2 cells.
"""

from __future__ import annotations

import torch as th

from heldout.agents.augmentations.registry import PIXEL_MAX, check_batch, check_number, integers, uniform

MIN_FRAC = 7 / 64
MAX_FRAC = 21 / 64
PIVOT = (12 / 64, 24 / 64)
"""The published box's corner offset (rows, columns) as a fraction of the side: 12 and 24 pixels at 64."""
PLACEMENTS = ("published", "anywhere")


def _box_mask(x: th.Tensor, generator: th.Generator, min_frac: float, max_frac: float, placement: str) -> th.Tensor:
    """(N, H, W, 1) booleans: one box per image, its height and width drawn independently.

    ``published`` (auto-drac ``data_augs.py`` 59-69): a box of side s has its top-left corner at
    pivot + s (12 + h rows, 24 + w columns at 64 px), cut by the image's edge: rows 19-54, columns
    31-63. ``anywhere``: the box lies wholly inside the image at a uniform position.
    """
    min_frac = check_number("min_frac", min_frac, 0.0, 1.0)
    max_frac = check_number("max_frac", max_frac, min_frac, 1.0)
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {' | '.join(PLACEMENTS)}, got {placement!r}")
    n, h, w, _ = x.shape
    masks = []
    for side, pivot in zip((h, w), PIVOT):
        lo, hi = round(min_frac * side), round(max_frac * side)
        size = integers(generator, n, lo, hi, x.device)
        if placement == "published":
            start = round(pivot * side) + size
        else:
            start = (uniform(generator, n, 0.0, 1.0, x.device) * (side - size + 1)).floor().long()
        pos = th.arange(side, device=x.device)
        masks.append((pos >= start[:, None]) & (pos < (start + size)[:, None]))
    return (masks[0][:, :, None] & masks[1][:, None, :])[..., None]


def cutout(
    x: th.Tensor, generator: th.Generator, *, min_frac: float = MIN_FRAC, max_frac: float = MAX_FRAC,
    placement: str = "published",
) -> th.Tensor:  # fmt: skip
    """Set one random box per image to zero in every channel (sides ``min_frac``..``max_frac`` of the
    image's; where: ``placement``, see :func:`_box_mask`)."""
    check_batch(x)
    return x.masked_fill(_box_mask(x, generator, min_frac, max_frac, placement), 0).contiguous()


def cutout_colour(
    x: th.Tensor, generator: th.Generator, *, min_frac: float = MIN_FRAC, max_frac: float = MAX_FRAC,
    placement: str = "published",
) -> th.Tensor:  # fmt: skip
    """Fill one random box per image (as :func:`cutout` places it) with one random colour (each channel
    uniform in 0..255)."""
    check_batch(x)
    mask = _box_mask(x, generator, min_frac, max_frac, placement)
    n, _, _, c = x.shape
    colour = integers(generator, n * c, 0, int(PIXEL_MAX), x.device).view(n, 1, 1, c).to(x.dtype)
    return th.where(mask, colour, x).contiguous()


def dropout(x: th.Tensor, generator: th.Generator, *, p: float = 0.1) -> th.Tensor:
    """Set each cell (pixel) to zero in every channel with probability ``p``, independently.

    On the maze it hides cells as empty floor without mixing channels: the values stay valid codes.
    """
    check_batch(x)
    p = check_number("p", p, 0.0, 1.0)
    n, h, w, _ = x.shape
    u = th.rand((n, h, w, 1), generator=generator, device=generator.device).to(x.device)
    return x.masked_fill(u < p, 0).contiguous()
