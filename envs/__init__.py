"""Environments whose levels can be chosen: Procgen games, a parametric maze family, MiniGrid
(where installed) and any seeded Gymnasium env (``register_seeded`` or ``gym:<id>``).

>>> import heldout.envs as envs
>>> env = envs.make("procgen/coinrun", level_set="train")          # one Gymnasium env
>>> vec = envs.make_vec("procgen/coinrun", 64, level_set="train")  # an sb3 VecEnv
>>> envs.names()                                                   # every registered family

Importing this package also registers Gymnasium ids (``heldout/procgen-coinrun-v0``,
``heldout/maze-v0``) that accept the same keyword arguments.
"""

from heldout.envs.base import EnvFamily, Level, LevelDraw, LevelSet, LevelSource, LevelSpace, LevelVecEnv
from heldout.envs.registry import ENTRY_POINT_GROUP, get, gym_id, level_set, make, make_vec, names, register
from heldout.envs.registry import _load as _load_registry
from heldout.envs.seeded import register_seeded

__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvFamily",
    "Level",
    "LevelDraw",
    "LevelSet",
    "LevelSource",
    "LevelSpace",
    "LevelVecEnv",
    "get",
    "gym_id",
    "level_set",
    "make",
    "make_vec",
    "names",
    "register",
    "register_seeded",
]

_load_registry()
