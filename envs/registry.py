"""One registry of environment families, by name.

Built-in families register on import; third-party packages add theirs through the
``heldout.envs`` entry-point group; ``gym:<gymnasium id>`` names a seeded Gymnasium env
(:mod:`heldout.envs.seeded`), registered on first use. An entry point may name an :class:`EnvFamily`, or a
callable returning one family or an iterable of them. Every family also gets a Gymnasium id:
``procgen/coinrun`` -> ``heldout/procgen-coinrun-v0``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from importlib import import_module, metadata
from typing import Any

import gymnasium as gym

from heldout.envs import seeded
from heldout.envs.base import EnvFamily, LevelSet, LevelVecEnv
from heldout.names import check_new_name, unknown_name_error

ENTRY_POINT_GROUP = "heldout.envs"
_BUILTIN = (
    "heldout.envs.procgen:families",
    "heldout.envs.maze:families",
    "heldout.envs.minigrid_families:families",
    "heldout.envs.minihack_families:families",
)
_FAMILIES: dict[str, EnvFamily] = {}
_loaded = False


def gym_id(name: str) -> str:
    """The Gymnasium id of a family: ``procgen/coinrun`` -> ``heldout/procgen-coinrun-v0``
    (``/`` and ``:``, which Gymnasium reads as a module, become ``-``)."""
    return f"heldout/{name.replace('/', '-').replace(':', '-')}-v0"


def register(family: EnvFamily, *, replace: bool = False) -> EnvFamily:
    """Add a family to the registry (and Gymnasium's) under ``family.name``."""
    name = getattr(family, "name", None)
    if not isinstance(family, EnvFamily) or not isinstance(name, str) or not name:
        raise TypeError(f"register() takes an EnvFamily with a non-empty name, got {family!r}")
    check_new_name("environment family", name, _FAMILIES, family, replace=replace)
    _FAMILIES[name] = family
    gid = gym_id(name)
    if gid not in gym.registry or replace:
        gym.register(id=gid, entry_point="heldout.envs.registry:_gym_entry_point", kwargs={"family": name})
    return family


def _register_all(obj: Any, origin: str) -> None:
    if callable(obj) and not isinstance(obj, EnvFamily):
        obj = obj()
    items: Iterable[Any] = [obj] if isinstance(obj, EnvFamily) else obj
    for family in items:
        register(family)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for target in _BUILTIN:
        module, attr = target.split(":")
        _register_all(getattr(import_module(module), attr), target)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            _register_all(ep.load(), ep.value)
        except Exception as err:  # a broken plug-in must not break the library
            warnings.warn(f"environment plug-in {ep.name!r} ({ep.value}) failed to load: {err}", stacklevel=2)


def names() -> list[str]:
    """Every registered family name, sorted."""
    _load()
    return sorted(_FAMILIES)


def get(name: str) -> EnvFamily:
    """The family registered as ``name``; an unknown name lists close matches and all names."""
    _load()
    if name in _FAMILIES:
        return _FAMILIES[name]
    if name.startswith(seeded.GYM_PREFIX):  # any Gymnasium env with seeded levels, registered on first use
        try:
            return register(seeded.family_for(name))
        except ValueError as err:
            raise KeyError(str(err)) from None
    # Let users write the short game name ("coinrun") or the Gymnasium id too.
    aliases = {f.split("/")[-1]: f for f in _FAMILIES} | {gym_id(f): f for f in _FAMILIES}
    if name in aliases:
        return _FAMILIES[aliases[name]]
    raise unknown_name_error("environment", name, sorted(_FAMILIES), also_close=aliases)


def make(name: str, level_set: str | LevelSet = "train", **options: Any) -> gym.Env:
    """A single Gymnasium environment of family ``name`` playing levels of ``level_set``."""
    return get(name).make(level_set, **options)


def make_vec(name: str, num_envs: int, level_set: str | LevelSet = "train", *, seed: int = 0, **options: Any) -> LevelVecEnv:
    """A vectorised environment (stable-baselines3 ``VecEnv``) whose slots play chosen levels."""
    return get(name).make_vec(num_envs, level_set, seed=seed, **options)


def level_set(name: str, set_name: str = "train", **options: Any) -> LevelSet:
    """The level set ``set_name`` of family ``name`` (options: ``num_train_levels``, ``level_seed``...)."""
    return get(name).level_set(set_name, **options)


def _gym_entry_point(family: str, **kwargs: Any) -> gym.Env:
    return make(family, **kwargs)
