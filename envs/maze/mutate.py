"""Random edits of a maze level (the ACCEL mutation operator).

A child is ``num_edits`` steps; each step is one of four kinds, drawn with the weights of the
edit operator (:data:`EDIT_OPERATORS`, by name):

* ``noop``: nothing changes;
* ``flip``: a uniformly random interior cell other than the start and the goal flips
  between wall and floor;
* ``goal``: the goal moves to a uniformly random floor cell other than the goal's and the
  start's own;
* ``start``: the start moves to a uniformly random floor cell other than the goal's, facing
  a random direction.

=========== ======================== ===========================================================
operator    noop / flip / goal / start
=========== ======================== ===========================================================
``jaxued``  1/3, 1/3, 1/3, 0         (default) jaxued's ``make_level_mutator_minimax``
                                     (``environments/maze/util.py`` 126-200, used by
                                     ``examples/maze_plr.py`` 462): the start never moves, about
                                     5/3 wall flips a child of 5 steps
``toggle``  0, 0.8, 0.1, 0.1         heldout's operator before: every step edits, the start
                                     moves in about 40% of 5-step children
=========== ======================== ===========================================================

With ``keep_solvable`` an edit that would make a solvable level unsolvable is drawn again
(an always-safe edit, removing a wall or moving the goal along the open region, is used if
random draws keep failing). A level that is already unsolvable is edited freely.
"""

from __future__ import annotations

import numpy as np

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.paths import distance_map

EDIT_KINDS: tuple[str, ...] = ("noop", "flip", "goal", "start")
EDIT_OPERATORS: dict[str, tuple[float, float, float, float]] = {
    "jaxued": (1 / 3, 1 / 3, 1 / 3, 0.0),
    "toggle": (0.0, 0.8, 0.1, 0.1),
}
"""The edit operators by name: the weight of each of :data:`EDIT_KINDS`; the first is the default."""
DEFAULT_EDITS = "jaxued"
_TRIES = 20


def check_edits(edits: str) -> str:
    if edits not in EDIT_OPERATORS:
        raise ValueError(f"edits={edits!r} is not an edit operator; choose one of {', '.join(EDIT_OPERATORS)}")
    return edits


def _random_edit(walls: np.ndarray, goal: tuple, start: tuple, d: int, rng: np.random.Generator, p: np.ndarray):
    h, w = walls.shape
    kind = EDIT_KINDS[int(rng.choice(len(EDIT_KINDS), p=p))]
    if kind == "noop":
        return walls, goal, start, d
    walls = walls.copy()
    goal_cell, start_cell = goal[0] * w + goal[1], start[0] * w + start[1]
    if kind == "flip":
        cell = int(rng.integers(h * w - 2))
        # skip the start and goal cells by shifting the draw past them
        for taken in sorted((goal_cell, start_cell)):
            if cell >= taken:
                cell += 1
        walls[cell // w, cell % w] = not walls[cell // w, cell % w]
        return walls, goal, start, d
    free = np.flatnonzero(~walls.ravel())
    if kind == "goal":
        free = free[(free != start_cell) & (free != goal_cell)]
        if free.size == 0:  # no other floor cell: the goal stays
            return walls, goal, start, d
        cell = int(free[rng.integers(free.size)])
        return walls, (cell // w, cell % w), start, d
    free = free[free != goal_cell]  # never empty: the start's own cell is floor
    cell = int(free[rng.integers(free.size)])
    return walls, goal, (cell // w, cell % w), int(rng.integers(4))


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
    edits: str = DEFAULT_EDITS,
) -> MazeLevel:
    """``level`` after ``num_edits`` steps of the edit operator ``edits`` (see the module docstring)."""
    if num_edits < 0:
        raise ValueError(f"num_edits must be 0 or more, got {num_edits}")
    p = np.asarray(EDIT_OPERATORS[check_edits(edits)], dtype=np.float64)
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
