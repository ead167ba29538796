"""Level samplers by name: ``make("plr", levels, temperature=0.3)``.

Some keywords come from the trainer, not the user (:data:`PROVIDED`): the level family's
:class:`LevelSpace` (``space``: generate, mutate, encode, is_solvable; ACCEL and DRED use it) and
DRED's level ``generator``. ``make(name, levels, space=space, generator=g, ...)`` hands each to
the samplers whose constructor takes it (:func:`needs`) and drops it for the others, so a
trainer can pass them always. Every other keyword-only constructor parameter is a user
parameter: :func:`specs` describes each (type, default, help from the ``Args:`` docstring).
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from heldout.level_samplers.accel import ACCELSampler
from heldout.level_samplers.base import LevelSampler, resolve_levels
from heldout.level_samplers.dr import DRSampler
from heldout.level_samplers.dred import DREDSampler
from heldout.level_samplers.paired import PAIREDSampler, REPAIREDSampler
from heldout.level_samplers.plr import PLRSampler, RobustPLRSampler
from heldout.level_samplers.uniform import UniformSampler
from heldout.names import check_new_name, unknown_name_error

_SAMPLERS: dict[str, type[LevelSampler]] = {
    "accel": ACCELSampler,
    "dr": DRSampler,
    "dred": DREDSampler,
    "paired": PAIREDSampler,
    "plr": PLRSampler,
    "repaired": REPAIREDSampler,
    "robust_plr": RobustPLRSampler,
    "uniform": UniformSampler,
}


def register(name: str, cls: type[LevelSampler], *, replace: bool = False) -> type[LevelSampler]:
    """Make ``cls`` (a :class:`LevelSampler` subclass taking ``(levels, **params)``, and
    optionally the :data:`PROVIDED` keywords) available as ``name``."""
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


PROVIDED: tuple[str, ...] = ("space", "generator", "designer")
"""Constructor keywords the trainer provides (the family's level space, DRED's generator,
PAIRED's level-designing adversary)."""


@dataclass(frozen=True)
class Parameter:
    """One user parameter of a sampler: its name, type (the resolved annotation), default and
    help; ``by_family``: the defaults that differ by env family (``{family: value}``)."""

    name: str
    kind: Any
    default: Any
    help: str
    by_family: dict[str, Any] = field(default_factory=dict)


def _keywords(cls: type[LevelSampler]) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(cls.__init__)
    return {p.name: p for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _hints(cls: type[LevelSampler]) -> dict[str, Any]:
    """The constructor's annotations, resolved (they are strings under postponed evaluation)."""
    try:
        return typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # an annotation that cannot be resolved: leave the values untyped
        return {}


def _args_section(doc: str | None) -> dict[str, str]:
    """``{parameter: one-line help}`` from a docstring's ``Args:`` section; an entry may name
    several parameters (``a, b: ...``), its names and its text may span lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == "Args:"), len(lines))
    entries: list[str] = []
    indent = None
    for line in lines[start:]:
        if not line.strip():
            break
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        if depth == indent and (not entries or ":" in entries[-1]):
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    out: dict[str, str] = {}
    for entry in entries:
        names, _, text = entry.partition(":")
        text = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"\1", text.strip())  # :class:`~a.b.C` -> C
        for name in names.split(","):
            out[name.strip()] = text.replace("``", "")
    return out


_STATED_DEFAULT = re.compile(r"\s*\(default [^)]*\)")


def _help(cls: type[LevelSampler], name: str, default: Any) -> str:
    """The help of parameter ``name``: the first entry along the class's bases that is not a
    mere reference ("as for PLR"). Its "(default X)" stays only where ``default`` is None (it
    says what None means); else the signature's default is the one (a base's may differ)."""
    found = [h for c in cls.__mro__ if (h := _args_section(c.__doc__).get(name))]
    text = next((h for h in found if not h.lower().startswith("as for")), found[0] if found else "")
    return text if default is None else _STATED_DEFAULT.sub("", text)


def specs(name: str) -> dict[str, Parameter]:
    """The user parameters of sampler ``name`` (every keyword but :data:`PROVIDED`), in order."""
    cls = get(name)
    hints = _hints(cls)
    tables = _family_tables(cls)
    return {
        k: Parameter(
            k, hints.get(k, Any), p.default, _help(cls, k, p.default),
            {family: table[k] for family, table in tables.items() if k in table},
        )
        for k, p in _keywords(cls).items()
        if k not in PROVIDED
    }


def _family_tables(cls: type[LevelSampler]) -> dict[str, dict[str, Any]]:
    """The class's own ``family_defaults`` (not a base's), checked against its parameters."""
    tables = dict(cls.__dict__.get("family_defaults") or {})
    accepted = set(_keywords(cls)) - set(PROVIDED)
    for family, table in tables.items():
        unknown = sorted(set(table) - accepted)
        if unknown:
            raise TypeError(f"{cls.__name__}.family_defaults[{family!r}] names no parameter {', '.join(unknown)}")
    return tables


def family_key(family: str, keys: Any) -> str | None:
    """Which of ``keys`` covers env family ``family``: the name itself, or its part before the
    ``/`` (``procgen`` covers ``procgen/coinrun``); None if none does."""
    for key in (family, family.split("/", 1)[0]):
        if key in keys:
            return key
    return None


def family_defaults(name: str, family: str) -> dict[str, Any]:
    """The parameters of sampler ``name`` whose default differs on env family ``family`` (its
    ``family_defaults`` for that family), with those values, in parameter order."""
    out = {}
    for k, p in specs(name).items():
        key = family_key(family, p.by_family)
        if key is not None:
            out[k] = p.by_family[key]
    return out


def parameters(name: str) -> dict[str, Any]:
    """The parameters sampler ``name`` accepts, with their defaults (:data:`PROVIDED` aside)."""
    return {k: p.default for k, p in specs(name).items()}


def needs(name: str) -> frozenset[str]:
    """Which of the :data:`PROVIDED` keywords sampler ``name``'s constructor takes."""
    return frozenset(PROVIDED) & set(_keywords(get(name)))


def takes_space(name: str) -> bool:
    """Whether sampler ``name`` uses the level family's :class:`LevelSpace`."""
    return "space" in needs(name)


def make(
    name: str, levels: Any, *, space: Any = None, generator: Any = None, designer: Any = None, **params: Any
) -> LevelSampler:
    """A new sampler ``name`` over ``levels`` (a finite sequence, or a callable ``rng -> level``).

    ``space`` (the family's level space) and ``generator`` (DRED's) reach the samplers that
    take them. Unknown parameters raise ``ValueError`` listing those accepted; so does an
    unbounded ``levels`` for a sampler that needs a finite level set.
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
    provided = {"space": space, "generator": generator, "designer": designer}
    return cls(levels, **params, **{k: provided[k] for k in needs(name)})
