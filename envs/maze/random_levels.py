"""Unbounded level generators for environment design: domain randomisation and empty rooms.

* :func:`random_level` is domain randomisation (DR) on a ``size`` x ``size`` interior, by one
  of two wall laws (:data:`WALL_LAWS`):

  ``jaxued``   (default) ``max_walls`` (25) cells drawn uniformly *with replacement*, so about
               23.3 distinct walls on 13x13 (169 (1 - (168/169)^25)): jaxued's
               ``make_level_generator`` (``environments/maze/util.py`` 18-28, n_walls 25 in
               ``examples/maze_plr.py`` 891). ``min_walls`` must stay 0.
  ``uniform``  a uniformly random number of walls from ``min_walls`` to ``max_walls`` on
               distinct cells (heldout's law before; mean 12.5 for 0..25).

  Then the start (random direction) and the goal on distinct uniformly random floor cells
  (jaxued draws the start, then the goal on the remaining floor: the same law). Unsolvable
  draws are kept (as jaxued does) unless ``reject_unsolvable`` draws again.
* :func:`empty_level` is a level without walls, start and goal uniform: ACCEL's seed levels.
"""

from __future__ import annotations

import numpy as np

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.paths import is_solvable

DEFAULT_MAX_WALLS = 25
WALL_LAWS: tuple[str, ...] = ("jaxued", "uniform")
"""How :func:`random_level` places walls (see the module docstring); the first is the default."""
_MAX_REJECTIONS = 10_000


def check_wall_range(size: int, min_walls: int, max_walls: int, walls: str = "jaxued") -> tuple[int, int]:
    """``(min_walls, max_walls)`` validated for a ``size`` x ``size`` interior (two cells stay
    free) and the wall law ``walls``."""
    if walls not in WALL_LAWS:
        raise ValueError(f"walls={walls!r} is not a wall law; choose one of {', '.join(WALL_LAWS)}")
    room = size * size - 2
    for name, value in (("min_walls", min_walls), ("max_walls", max_walls)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= room:
            raise ValueError(f"{name} must be an integer from 0 to {room} on a {size}x{size} maze, got {value!r}")
    if min_walls > max_walls:
        raise ValueError(f"min_walls ({min_walls}) is above max_walls ({max_walls}); make min_walls <= max_walls")
    if walls == "jaxued" and min_walls:
        raise ValueError(
            f"min_walls={min_walls} needs walls: uniform; the jaxued law always draws max_walls cells "
            "(with replacement), so leave min_walls at 0 or set walls: uniform"
        )
    return int(min_walls), int(max_walls)


def _wall_map(rng: np.random.Generator, size: int, min_walls: int, max_walls: int, walls: str) -> np.ndarray:
    cells = np.zeros(size * size, dtype=bool)
    if walls == "jaxued":
        cells[rng.integers(size * size, size=max_walls)] = True  # with replacement: repeats overlap
    else:
        k = int(rng.integers(min_walls, max_walls + 1))
        cells[rng.choice(size * size, size=k, replace=False)] = True
    return cells.reshape(size, size)


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
    walls: str = WALL_LAWS[0],
    reject_unsolvable: bool = False,
) -> MazeLevel:
    """One domain-randomisation draw (see the module docstring)."""
    min_walls, max_walls = check_wall_range(size, min_walls, max_walls, walls)
    for _ in range(_MAX_REJECTIONS):
        level = _place(_wall_map(rng, size, min_walls, max_walls, walls), rng)
        if not reject_unsolvable or is_solvable(level):
            return level
    raise RuntimeError(
        f"no solvable {size}x{size} level with {min_walls}..{max_walls} walls in {_MAX_REJECTIONS} draws; "
        "lower min_walls or max_walls"
    )


def empty_level(rng: np.random.Generator, size: int = 13) -> MazeLevel:
    """A ``size`` x ``size`` level without walls, uniform start (random direction) and goal."""
    return _place(np.zeros((size, size), dtype=bool), rng)
