"""Augmentations by name: ``names()``, ``get(name)``, ``register(name, fn)``.

An augmentation is a function ``fn(x, generator, **params) -> tensor`` over a batch of
observations in this project's (N, H, W, C) layout, uint8 or float, on any device. It draws
every random number from ``generator`` (never from torch's global RNG), on the generator's
device, and moves the few drawn parameters to the batch's device: the same generator state
gives the same augmentation on CPU and CUDA. It returns a new (N, H, W, C) contiguous tensor of
the input's dtype whose values stay in the input's range: float batches carry the same 0..255
values a uint8 batch would (stable-baselines3's rollout buffer hands the loss float32 pixels). One
built-in exception, as published: ``random_conv`` leaves float outputs unclamped.
Its keyword-only parameters with defaults are its settings (``Augmentation.defaults``).

Symbolic grids (the maze family: wall, goal and direction-code channels of an egocentric view,
actions turn left / turn right / forward) are not pictures: only augmentations registered with
``grids=True`` are valid on them; every other one names why not (``why_not_on_grids``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch as th

from heldout.names import check_new_name, unknown_name_error

AugmentFn = Callable[..., th.Tensor]

PIXEL_MAX = 255.0
"""The top of the value range of pixel batches, uint8 and float alike."""


@dataclass(frozen=True)
class Augmentation:
    """A registered augmentation: the function, whether it is valid on symbolic grids, and why not."""

    name: str
    fn: AugmentFn
    grids: bool
    why_not_on_grids: str

    @property
    def defaults(self) -> dict[str, Any]:
        """The function's settings (keyword-only parameters) and their default values."""
        return {
            p.name: p.default
            for p in inspect.signature(self.fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }

    def __call__(self, x: th.Tensor, generator: th.Generator, **params: Any) -> th.Tensor:
        return self.fn(x, generator, **params)


_AUGMENTATIONS: dict[str, Augmentation] = {}


def register(
    name: str, fn: AugmentFn, *, grids: bool = False, why_not_on_grids: str = "", replace: bool = False
) -> Augmentation:
    """Add ``fn(x, generator, **params)`` under ``name`` (see the module doc for the contract).

    ``grids=True`` marks it valid on symbolic grid observations (the maze family); otherwise
    ``why_not_on_grids`` is the one-line reason shown when a user asks for it there.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"augmentation names are non-empty strings, got {name!r}")
    if not callable(fn):
        raise TypeError(f"an augmentation must be callable as fn(x, generator, **params), got {fn!r}")
    entry = Augmentation(
        name, fn, bool(grids), why_not_on_grids or "it is not registered as valid on symbolic grids (grids=True)"
    )
    check_new_name("augmentation", name, {k: v.fn for k, v in _AUGMENTATIONS.items()}, fn, replace=replace)
    _AUGMENTATIONS[name] = entry
    return entry


def names() -> list[str]:
    """Every registered augmentation name, sorted."""
    return sorted(_AUGMENTATIONS)


def get(name: str) -> Augmentation:
    """The augmentation registered as ``name``; ``KeyError`` listing the registered ones otherwise."""
    if name not in _AUGMENTATIONS:
        raise unknown_name_error("augmentation", name, names())
    return _AUGMENTATIONS[name]


def valid_on_grids() -> list[str]:
    """The augmentations valid on symbolic grids (the maze family), sorted."""
    return [n for n in names() if _AUGMENTATIONS[n].grids]


def check_on_grids(chosen: Iterable[str], what: str = "maze observations (symbolic grids)") -> None:
    """Raise ``ValueError`` (one line: why, and the valid ones) for the first name invalid on grids."""
    for name in chosen:
        entry = get(name)
        if not entry.grids:
            raise ValueError(
                f"augmentation {name!r} is not valid on {what}: {entry.why_not_on_grids}; "
                f"valid there: {', '.join(valid_on_grids()) or 'none registered'}"
            )


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for augmentation ``name``, checked: known names, values the function accepts.

    Values are checked by running the augmentation once on a tiny zero batch, so every check an
    augmentation makes of its own settings runs here too. Raises ``ValueError`` (one line).
    """
    entry = get(name)
    if not isinstance(params, Mapping):
        raise ValueError(f"settings of augmentation {name!r} must be a mapping, got {params!r}")
    known = entry.defaults
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"augmentation {name!r} has no setting {unknown[0]!r}; its settings: {', '.join(known) or 'none'}"
        )
    probe = th.zeros((2, 8, 8, 3), dtype=th.uint8)
    try:
        entry(probe, th.Generator().manual_seed(0), **params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bad settings for augmentation {name!r}: {err}") from None
    return dict(params)


# -- helpers for augmentation functions -------------------------------------------------------------
def check_batch(x: th.Tensor, *, rgb: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` is an (N, H, W, C) uint8 or float tensor (C = 3 if ``rgb``)."""
    if not isinstance(x, th.Tensor) or x.dim() != 4:
        raise ValueError(f"augmentations take (N, H, W, C) tensors, got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype != th.uint8 and not x.dtype.is_floating_point:
        raise ValueError(f"augmentations take uint8 or float batches, got {x.dtype}")
    if rgb and x.shape[-1] != 3:
        raise ValueError(f"this augmentation needs RGB images (3 channels last), got shape {tuple(x.shape)}")


def as_pixels(values: th.Tensor, like: th.Tensor) -> th.Tensor:
    """Float results back in ``like``'s dtype and value range (uint8: rounded, clamped to 0..255)."""
    values = values.clamp(0.0, PIXEL_MAX)
    if like.dtype == th.uint8:
        values = values.round()
    return values.to(like.dtype).contiguous()


def uniform(generator: th.Generator, n: int, low: float, high: float, device: th.device) -> th.Tensor:
    """``n`` floats uniform in [low, high), drawn on the generator's device, moved to ``device``."""
    u = th.rand(n, generator=generator, device=generator.device, dtype=th.float32)
    return (low + (high - low) * u).to(device)


def integers(generator: th.Generator, n: int, low: int, high: int, device: th.device) -> th.Tensor:
    """``n`` integers uniform in [low, high] (both included), drawn on the generator's device."""
    return th.randint(low, high + 1, (n,), generator=generator, device=generator.device).to(device)


def check_number(name: str, value: Any, low: float, high: float = float("inf")) -> float:
    """``value`` as a float in [low, high]; ``ValueError`` naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        bound = f"in [{low:g}, {high:g}]" if high != float("inf") else f">= {low:g}"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
