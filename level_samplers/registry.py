"""Level samplers by name: ``make("plr", levels, temperature=0.3)``."""

from __future__ import annotations

import inspect
from typing import Any

from heldout.level_samplers.base import LevelSampler
from heldout.level_samplers.dred import DREDSampler
from heldout.level_samplers.plr import PLRSampler, RobustPLRSampler
from heldout.level_samplers.uniform import UniformSampler
from heldout.names import check_new_name, unknown_name_error

_SAMPLERS: dict[str, type[LevelSampler]] = {
    "dred": DREDSampler,
    "plr": PLRSampler,
    "robust_plr": RobustPLRSampler,
    "uniform": UniformSampler,
}


def register(name: str, cls: type[LevelSampler], *, replace: bool = False) -> type[LevelSampler]:
    """Make ``cls`` (a :class:`LevelSampler` subclass taking ``(levels, **params)``) available as ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, LevelSampler)):
        raise TypeError(f"register() takes a LevelSampler subclass, got {cls!r}")
    check_new_name("level sampler", name, _SAMPLERS, cls, replace=replace)
    _SAMPLERS[name] = cls
    return cls


def names() -> list[str]:
    """Every registered sampler name, sorted."""
    return sorted(_SAMPLERS)


def get(name: str) -> type[LevelSampler]:
    """The sampler class registered as ``name``; KeyError listing the names otherwise."""
    if name not in _SAMPLERS:
        raise unknown_name_error("level sampler", name, names(), num_close=2)
    return _SAMPLERS[name]


def parameters(name: str) -> dict[str, Any]:
    """The parameters sampler ``name`` accepts, with their defaults."""
    signature = inspect.signature(get(name).__init__)
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def make(name: str, levels: Any, **params: Any) -> LevelSampler:
    """A new sampler ``name`` over ``levels`` (a finite sequence, or a callable ``rng -> level``).

    Unknown parameters raise ``ValueError`` listing those accepted.
    """
    cls = get(name)
    accepted = parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"level sampler {name!r} has no parameter {', '.join(repr(u) for u in unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    return cls(levels, **params)
