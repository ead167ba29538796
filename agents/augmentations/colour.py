"""Augmentations that change colours: grayscale, random convolution, colour jitter (RGB only).

They compute in float32 on a 0..1 scale and return the input's dtype and 0..255 range (random conv
on float batches excepted: unclamped, as published).
"""

from __future__ import annotations

import math

import torch as th
from torch.nn import functional as F

from heldout.agents.augmentations.registry import PIXEL_MAX, as_pixels, check_batch, check_number, uniform

LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G, B (as kornia's and torchvision's grayscale)."""


def _luma(rgb: th.Tensor) -> th.Tensor:
    """(..., 3) -> (..., 1) luma."""
    weights = th.tensor(LUMA, device=rgb.device, dtype=rgb.dtype)
    return (rgb * weights).sum(-1, keepdim=True)


def grayscale(x: th.Tensor, generator: th.Generator, *, p: float = 1.0) -> th.Tensor:
    """Replace each image, with probability ``p`` (1 as published), by its luma in all three channels."""
    check_batch(x, rgb=True)
    p = check_number("p", p, 0.0, 1.0)
    chosen = uniform(generator, x.shape[0], 0.0, 1.0, x.device) < p
    xf = x.float()
    gray = _luma(xf).expand_as(xf)
    return as_pixels(th.where(chosen[:, None, None, None], gray, xf), x)


def random_conv(x: th.Tensor, generator: th.Generator, *, clamp: bool = False) -> th.Tensor:
    """Pass each image through its own fresh 3x3 convolution, 3 -> 3 channels, no bias, zero padding 1.

    Weights are Xavier-normal as published (std sqrt(2 / (fan_in + fan_out)) = sqrt(1/27)). A float
    batch gets the unclamped result, as published (auto-drac ``data_augs.py`` 248-270): values may go
    below 0 or above 255. ``clamp=True`` clamps it to the pixel range; a uint8 batch is always clamped
    (it cannot hold more). One grouped convolution does the whole batch.
    """
    if not isinstance(clamp, bool):
        raise ValueError(f"clamp must be true or false, got {clamp!r}")
    check_batch(x, rgb=True)
    n, h, w, c = x.shape
    std = math.sqrt(2.0 / (2 * c * 9))
    weight = th.randn((n * c, c, 3, 3), generator=generator, device=generator.device) * std
    images = x.float().permute(0, 3, 1, 2).reshape(1, n * c, h, w)
    out = F.conv2d(images, weight.to(x.device), padding=1, groups=n).view(n, c, h, w).permute(0, 2, 3, 1)
    if clamp or x.dtype == th.uint8:
        return as_pixels(out, x)
    return out.to(x.dtype).contiguous()


def _factor_range(name: str, value: float) -> tuple[float, float]:
    value = check_number(name, value, 0.0)
    return max(0.0, 1.0 - value), 1.0 + value


def rgb_to_hsv(rgb: th.Tensor) -> th.Tensor:
    """(3, ...) RGB planes in [0, 1] -> (3, ...) planes of hue in [0, 1), saturation, value."""
    r, g, b = rgb
    maxc = th.maximum(th.maximum(r, g), b)
    delta = maxc - th.minimum(th.minimum(r, g), b)
    safe = th.where(delta > 0, delta, th.ones_like(delta))
    hue = th.where(maxc == r, ((g - b) / safe) % 6, th.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = th.where(delta > 0, hue / 6, th.zeros_like(hue))
    sat = th.where(maxc > 0, delta / th.where(maxc > 0, maxc, th.ones_like(maxc)), th.zeros_like(maxc))
    return th.stack([hue, sat, maxc])


def hsv_to_rgb(hsv: th.Tensor) -> th.Tensor:
    """Inverse of :func:`rgb_to_hsv`: plane k = V - V S clamp(min(m, 4 - m), 0, 1), m = (n_k + 6H) mod 6."""
    hue, sat, val = hsv
    chroma = val * sat
    planes = []
    for offset in (5.0, 3.0, 1.0):
        m = (offset + 6 * hue) % 6
        planes.append(val - chroma * th.minimum(m, 4 - m).clamp(0, 1))
    return th.stack(planes)


JITTER_RECIPES = ("published", "torchvision")
HUE_SCALE = {"published": 255 / 360, "torchvision": 1.0}
"""The published hue shift is the drawn factor times 255/360 of a turn (data_augs.py 356)."""


def colour_jitter(
    x: th.Tensor,
    generator: th.Generator,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.5,
    recipe: str = "published",
) -> th.Tensor:
    """Per image: brightness, contrast and saturation factors uniform in [1 - v, 1 + v] (0.6..1.4 by
    default) and a hue factor uniform in [-hue, hue].

    ``published`` (auto-drac ``data_augs.py`` 341-404): the hue turns by the factor times 255/360
    of a turn; brightness and saturation scale HSV's V and S (clamped to 0..1); contrast blends
    each channel with its own mean; one coin per batch puts contrast first or last around the HSV
    steps (brightness, hue, saturation). ``torchvision`` (heldout's earlier form): in this fixed
    order, brightness scales the image, contrast blends it with its mean luma, saturation with each
    pixel's luma, and the hue turns by the factor itself (a full +-0.5 turn). All zero: the identity.
    """
    check_batch(x, rgb=True)
    if recipe not in JITTER_RECIPES:
        raise ValueError(f"recipe must be one of {' | '.join(JITTER_RECIPES)}, got {recipe!r}")
    n = x.shape[0]
    ranges = [_factor_range(k, v) for k, v in (("brightness", brightness), ("contrast", contrast),
                                                 ("saturation", saturation))]
    shift = check_number("hue", hue, 0.0, 0.5)
    b, c, s = (uniform(generator, n, lo, hi, x.device)[:, None, None] for lo, hi in ranges)
    turn = uniform(generator, n, -shift, shift, x.device)[:, None, None] * HUE_SCALE[recipe]
    planes = x.permute(3, 0, 1, 2).float() / PIXEL_MAX  # (3, N, H, W): each channel one contiguous plane
    active = [r != (1.0, 1.0) for r in ranges]
    if recipe == "published":
        contrast_first = bool(uniform(generator, 1, 0.0, 1.0, generator.device)[0] >= 0.5)

        def adjust_contrast(p: th.Tensor) -> th.Tensor:
            return ((p - p.mean(dim=(2, 3), keepdim=True)) * c + p.mean(dim=(2, 3), keepdim=True)).clamp(0, 1)

        if contrast_first and active[1]:
            planes = adjust_contrast(planes)
        if active[0] or active[2] or shift > 0:
            hue_, sat, val = rgb_to_hsv(planes)
            val = (val * b).clamp(0, 1) if active[0] else val
            hue_ = (hue_ + turn) % 1.0 if shift > 0 else hue_
            sat = (sat * s).clamp(0, 1) if active[2] else sat
            planes = hsv_to_rgb(th.stack([hue_, sat, val])).clamp(0, 1)
        if not contrast_first and active[1]:
            planes = adjust_contrast(planes)
        return as_pixels(planes.permute(1, 2, 3, 0) * PIXEL_MAX, x)
    luma = th.tensor(LUMA, device=x.device)[:, None, None, None]
    if active[0]:
        planes = (planes * b).clamp(0, 1)
    if active[1]:
        mean = (planes * luma).sum(0).mean(dim=(1, 2), keepdim=True)
        planes = ((planes - mean) * c + mean).clamp(0, 1)
    if active[2]:
        gray = (planes * luma).sum(0)
        planes = ((planes - gray) * s + gray).clamp(0, 1)
    if shift > 0:
        hue_, sat, val = rgb_to_hsv(planes)
        planes = hsv_to_rgb(th.stack([(hue_ + turn) % 1.0, sat, val]))
    return as_pixels(planes.permute(1, 2, 3, 0) * PIXEL_MAX, x)
