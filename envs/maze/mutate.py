"""Random edits of a maze level (the ACCEL mutation operator).

One edit is, with probabilities ``weights`` (default 0.8 / 0.1 / 0.1):

* toggle a wall: a random interior cell other than the start and the goal flips between
  wall and floor;
* move the goal to a random floor cell (not the start);
* move the start to a random floor cell (not the goal), facing a random direction.

With ``keep_solvable`` an edit that would make a solvable level unsolvable is drawn again
(an always-safe edit, removing a wall or moving the goal along the open region, is used if
random draws keep failing). A level that is already unsolvable is edited freely.
"""

from __future__ import annotations

import numpy as np

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.paths import distance_map

DEFAULT_WEIGHTS = (0.8, 0.1, 0.1)
_TRIES = 20


def _random_edit(walls: np.ndarray, goal: tuple, start: tuple, d: int, rng: np.random.Generator, p: np.ndarray):
    h, w = walls.shape
    kind = int(rng.choice(3, p=p))
    walls = walls.copy()
    if kind == 0:
        cell = int(rng.integers(h * w - 2))
        # skip the start and goal cells by shifting the draw past them
        for taken in sorted((goal[0] * w + goal[1], start[0] * w + start[1])):
            if cell >= taken:
                cell += 1
        walls[cell // w, cell % w] = not walls[cell // w, cell % w]
        return walls, goal, start, d
    free = np.flatnonzero(~walls.ravel())
    other = start if kind == 1 else goal
    free = free[free != other[0] * w + other[1]]
    cell = int(free[rng.integers(free.size)])  # never empty: the moved cell itself is free
    new = (cell // w, cell % w)
    if kind == 1:
        return walls, new, start, d
    return walls, goal, new, int(rng.integers(4))


def _safe_edit(walls: np.ndarray, goal: tuple, start: tuple, d: int, rng: np.random.Generator):
    """An edit that keeps a solvable level solvable: remove a wall, else move the goal."""
    wall_cells = np.argwhere(walls)
    walls = walls.copy()
    if len(wall_cells):
        r, c = wall_cells[int(rng.integers(len(wall_cells)))]
        walls[r, c] = False
        return walls, goal, start, d
    reach = np.argwhere(distance_map(walls, start) > 0)
    r, c = reach[int(rng.integers(len(reach)))]
    return walls, (int(r), int(c)), start, d


def _solvable(walls: np.ndarray, goal: tuple, start: tuple) -> bool:
    return bool(distance_map(walls, start)[goal] >= 0)


def mutate_level(
    level: MazeLevel,
    rng: np.random.Generator,
    num_edits: int = 1,
    *,
    keep_solvable: bool = False,
    weights: tuple[float, float, float] = DEFAULT_WEIGHTS,
) -> MazeLevel:
    """``level`` after ``num_edits`` random edits (see the module docstring)."""
    if num_edits < 0:
        raise ValueError(f"num_edits must be 0 or more, got {num_edits}")
    p = np.asarray(weights, dtype=np.float64)
    if p.shape != (3,) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"weights are three non-negative numbers (toggle wall, move goal, move start), got {weights!r}")
    p = p / p.sum()
    walls, goal, start, d = np.array(level.wall_map), level.goal, level.start, level.start_dir
    guard = keep_solvable and _solvable(walls, goal, start)
    for _ in range(num_edits):
        for _try in range(_TRIES):
            edited = _random_edit(walls, goal, start, d, rng, p)
            if not guard or _solvable(edited[0], edited[1], edited[2]):
                break
        else:
            edited = _safe_edit(walls, goal, start, d, rng)
        walls, goal, start, d = edited
    return MazeLevel.from_walls(walls, goal, start, d)
