"""Breadth-first search on maze levels: distances, solvability, shortest paths.

Moves are the four grid steps between floor cells (the agent's turns are not counted, except
by :func:`min_actions`). Cheap enough to run on every generated level: a 13x13 level takes
well under a millisecond.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from heldout.envs.maze.level import DIRECTION_VECTORS, MazeLevel


def distance_map(walls: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Grid-step distance from ``source`` to every cell of a boolean wall array; -1 where unreachable."""
    h, w = walls.shape
    pw = w + 2  # work on a padded copy so that the border needs no bounds checks
    free = np.zeros((h + 2, pw), dtype=bool)
    free[1:-1, 1:-1] = ~np.asarray(walls, dtype=bool)
    free_flat = free.ravel().tolist()
    dist = [-1] * len(free_flat)
    s = (source[0] + 1) * pw + source[1] + 1
    if not free_flat[s]:
        raise ValueError(f"source {source} is a wall")
    dist[s] = 0
    queue = deque([s])
    steps = (1, pw, -1, -pw)
    while queue:
        cell = queue.popleft()
        nd = dist[cell] + 1
        for step in steps:
            nxt = cell + step
            if free_flat[nxt] and dist[nxt] < 0:
                dist[nxt] = nd
                queue.append(nxt)
    return np.asarray(dist, dtype=np.int32).reshape(h + 2, pw)[1:-1, 1:-1]


def shortest_path_length(level: MazeLevel) -> int | None:
    """Fewest grid steps from the start to the goal, or None if the goal cannot be reached."""
    d = int(distance_map(level.wall_map, level.start)[level.goal])
    return d if d >= 0 else None


def is_solvable(level: MazeLevel) -> bool:
    """Whether the goal can be reached from the start."""
    return shortest_path_length(level) is not None


def min_actions(level: MazeLevel) -> int | None:
    """Fewest actions (turns included) that reach the goal, or None if it cannot be reached.

    An agent that takes exactly this many actions earns the best possible return,
    ``1 - 0.9 * min_actions / max_steps``.
    """
    walls = level.wall_map
    h, w = walls.shape
    start = (level.start[0], level.start[1], level.start_dir)
    seen = {start: 0}
    queue = deque([start])
    while queue:
        r, c, d = queue.popleft()
        n = seen[(r, c, d)] + 1
        dr, dc = DIRECTION_VECTORS[d]
        nr, nc = r + dr, c + dc
        moves = [(r, c, (d - 1) % 4), (r, c, (d + 1) % 4)]
        if 0 <= nr < h and 0 <= nc < w and not walls[nr, nc]:
            if (nr, nc) == level.goal:
                return n
            moves.append((nr, nc, d))
        for state in moves:
            if state not in seen:
                seen[state] = n
                queue.append(state)
    return None


def first_optimal_action(level: MazeLevel, position: tuple[int, int], direction: int) -> int:
    """The first action of a fewest-actions path to the goal from ``position`` facing ``direction``.

    Actions are the maze's: 0 turn left (direction - 1), 1 turn right (direction + 1), 2 forward.
    Ties go to the lowest action. ``ValueError`` when the goal cannot be reached from there.
    """
    walls = level.wall_map
    h, w = walls.shape
    start = (int(position[0]), int(position[1]), int(direction) % 4)
    first: dict[tuple[int, int, int], int] = {start: -1}
    queue = deque([start])
    while queue:
        r, c, d = state = queue.popleft()
        dr, dc = DIRECTION_VECTORS[d]
        nr, nc = r + dr, c + dc
        forward = (nr, nc, d) if 0 <= nr < h and 0 <= nc < w and not walls[nr, nc] else state
        for action, nxt in enumerate(((r, c, (d - 1) % 4), (r, c, (d + 1) % 4), forward)):
            if nxt in first:
                continue
            first[nxt] = action if state == start else first[state]
            if nxt[:2] == level.goal:
                return first[nxt]
            queue.append(nxt)
    raise ValueError(f"the goal {level.goal} cannot be reached from {position}")
