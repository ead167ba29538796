"""Unbounded level generators for environment design: domain randomisation and empty rooms.

* :func:`random_level` is domain randomisation (DR) as the UED literature uses it: a
  ``size`` x ``size`` interior with a uniformly random number of walls, from ``min_walls`` to
  ``max_walls`` (default 0..25 on 13x13, the count of jaxued's maze configs), on distinct
  uniformly random cells; the start (random direction) and the goal on distinct uniformly
  random floor cells. Unsolvable draws are kept (as the published baselines do) unless
  ``reject_unsolvable`` draws again.
* :func:`empty_level` is a level without walls, start and goal uniform: ACCEL's seed levels.
"""

from __future__ import annotations

import numpy as np

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.paths import is_solvable

DEFAULT_MAX_WALLS = 25
_MAX_REJECTIONS = 10_000


def check_wall_range(size: int, min_walls: int, max_walls: int) -> tuple[int, int]:
    """``(min_walls, max_walls)`` validated for a ``size`` x ``size`` interior (two cells stay free)."""
    room = size * size - 2
    for name, value in (("min_walls", min_walls), ("max_walls", max_walls)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= room:
            raise ValueError(f"{name} must be an integer from 0 to {room} on a {size}x{size} maze, got {value!r}")
    if min_walls > max_walls:
        raise ValueError(f"min_walls ({min_walls}) is above max_walls ({max_walls}); make min_walls <= max_walls")
    return int(min_walls), int(max_walls)


def _place(walls: np.ndarray, rng: np.random.Generator) -> MazeLevel:
    """Start (random direction) and goal on two distinct uniform floor cells of ``walls``."""
    w = walls.shape[1]
    free = np.flatnonzero(~walls.ravel())
    start, goal = (int(c) for c in rng.choice(free, size=2, replace=False))
    return MazeLevel.from_walls(walls, (goal // w, goal % w), (start // w, start % w), int(rng.integers(4)))


def random_level(
    rng: np.random.Generator,
    size: int = 13,
    *,
    min_walls: int = 0,
    max_walls: int = DEFAULT_MAX_WALLS,
    reject_unsolvable: bool = False,
) -> MazeLevel:
    """One domain-randomisation draw (see the module docstring)."""
    min_walls, max_walls = check_wall_range(size, min_walls, max_walls)
    for _ in range(_MAX_REJECTIONS):
        k = int(rng.integers(min_walls, max_walls + 1))
        walls = np.zeros(size * size, dtype=bool)
        walls[rng.choice(size * size, size=k, replace=False)] = True
        level = _place(walls.reshape(size, size), rng)
        if not reject_unsolvable or is_solvable(level):
            return level
    raise RuntimeError(
        f"no solvable {size}x{size} level with {min_walls}..{max_walls} walls in {_MAX_REJECTIONS} draws; "
        "lower min_walls or max_walls"
    )


def empty_level(rng: np.random.Generator, size: int = 13) -> MazeLevel:
    """A ``size`` x ``size`` level without walls, uniform start (random direction) and goal."""
    return _place(np.zeros((size, size), dtype=bool), rng)
