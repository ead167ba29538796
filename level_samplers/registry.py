"""Level samplers by name: ``make("plr", levels, temperature=0.3)``.

Samplers that design levels (ACCEL, DRED) also need the level family's :class:`LevelSpace`
(generate, mutate, encode, is_solvable): ``make(name, levels, space=space, ...)`` hands it to
every sampler whose constructor takes a ``space`` keyword, and drops it for the others, so a
trainer can pass it always. ``space`` is not a user parameter (:func:`parameters` omits it).
"""

from __future__ import annotations

import inspect
from typing import Any

from heldout.level_samplers.accel import ACCELSampler
from heldout.level_samplers.base import LevelSampler, resolve_levels
from heldout.level_samplers.dr import DRSampler
from heldout.level_samplers.dred import DREDSampler
from heldout.level_samplers.plr import PLRSampler, RobustPLRSampler
from heldout.level_samplers.uniform import UniformSampler
from heldout.names import check_new_name, unknown_name_error

_SAMPLERS: dict[str, type[LevelSampler]] = {
    "accel": ACCELSampler,
    "dr": DRSampler,
    "dred": DREDSampler,
    "plr": PLRSampler,
    "robust_plr": RobustPLRSampler,
    "uniform": UniformSampler,
}


def register(name: str, cls: type[LevelSampler], *, replace: bool = False) -> type[LevelSampler]:
    """Make ``cls`` (a :class:`LevelSampler` subclass taking ``(levels, **params)``, and
    optionally a ``space`` keyword) available as ``name``."""
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


def _keywords(cls: type[LevelSampler]) -> dict[str, Any]:
    signature = inspect.signature(cls.__init__)
    return {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def parameters(name: str) -> dict[str, Any]:
    """The parameters sampler ``name`` accepts, with their defaults (``space`` aside)."""
    return {k: v for k, v in _keywords(get(name)).items() if k != "space"}


def needs(name: str) -> frozenset[str]:
    """What the trainer provides to sampler ``name``: which of ``space`` and ``generator`` its constructor takes."""
    return frozenset(k for k in ("space", "generator") if k in _keywords(get(name)))


def takes_space(name: str) -> bool:
    """Whether sampler ``name`` uses the level family's :class:`LevelSpace`."""
    return "space" in _keywords(get(name))


def make(name: str, levels: Any, *, space: Any = None, **params: Any) -> LevelSampler:
    """A new sampler ``name`` over ``levels`` (a finite sequence, or a callable ``rng -> level``).

    ``space`` (the family's level space) reaches the samplers that take it. Unknown
    parameters raise ``ValueError`` listing those accepted; so does an unbounded ``levels``
    for a sampler that needs a finite level set.
    """
    cls = get(name)
    accepted = parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"level sampler {name!r} has no parameter {', '.join(repr(u) for u in unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    if cls.needs_finite_levels and resolve_levels(levels)[0] is None:
        finite_ok = [n for n in names() if not get(n).needs_finite_levels]
        raise ValueError(
            f"level sampler {name!r} needs a finite level set, but the levels given are unbounded; "
            f"train on a finite set (e.g. --env.train_set train) or use one of {', '.join(finite_ok)}"
        )
    if takes_space(name):
        params["space"] = space
    return cls(levels, **params)
