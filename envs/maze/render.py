"""Pictures of maze levels and rollouts (RGB uint8 arrays) and coloured terminal text.

Pictures include the outer wall: a 13x13 level at ``tile=8`` is a 120x120x3 image. Floor is
black, walls grey, the goal green, the agent a red triangle pointing where it faces, and
cells a rollout visited are tinted blue. ``render_rollout`` gives frames (T+1, H, W, 3) for
TensorBoard videos; ``render_trajectory`` one image of the whole path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from heldout.envs.maze.level import AGENT_CHARS, DIRECTION_VECTORS, MazeLevel
from heldout.envs.maze.rules import FORWARD, default_max_steps, turn
from heldout.envs.maze.text import format_level

FLOOR_RGB = (0, 0, 0)
WALL_RGB = (110, 110, 110)
GOAL_RGB = (0, 200, 60)
AGENT_RGB = (230, 40, 40)
VISITED_RGB = (40, 60, 140)
DEFAULT_TILE = 8

State = tuple[tuple[int, int], int]  # ((row, col), direction)


def _agent_mask(tile: int, direction: int) -> np.ndarray:
    """Boolean (tile, tile) triangle pointing in ``direction`` (0 east, clockwise)."""
    u = (np.arange(tile) + 0.5) / tile
    x, y = u[None, :], u[:, None]
    east = (x >= 0.15) & (np.abs(y - 0.5) <= 0.35 * (0.85 - x) / 0.7 + 1e-9)
    return np.rot90(east, k=-direction)


def _check_tile(tile: int) -> int:
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile!r}")
    return int(tile)


def render_state(
    level: MazeLevel,
    position: tuple[int, int] | None = None,
    direction: int | None = None,
    *,
    tile: int = DEFAULT_TILE,
    visited: Iterable[tuple[int, int]] = (),
) -> np.ndarray:
    """An RGB picture of ``level`` with the agent at ``position`` facing ``direction`` (default: its start)."""
    tile = _check_tile(tile)
    position = level.start if position is None else position
    direction = level.start_dir if direction is None else direction
    h, w = level.shape
    cells = np.full((h + 2, w + 2, 3), WALL_RGB, dtype=np.uint8)
    cells[1:-1, 1:-1] = np.where(level.wall_map[..., None], WALL_RGB, FLOOR_RGB)
    for r, c in visited:
        cells[r + 1, c + 1] = VISITED_RGB
    cells[level.goal[0] + 1, level.goal[1] + 1] = GOAL_RGB
    image = np.repeat(np.repeat(cells, tile, axis=0), tile, axis=1)
    r, c = (position[0] + 1) * tile, (position[1] + 1) * tile
    patch = image[r : r + tile, c : c + tile]
    patch[_agent_mask(tile, int(direction))] = AGENT_RGB
    return image


def render_level(level: MazeLevel, *, tile: int = DEFAULT_TILE) -> np.ndarray:
    """An RGB picture of ``level`` at its start."""
    return render_state(level, tile=tile)


def rollout_states(level: MazeLevel, actions: Sequence[int], max_steps: int | None = None) -> list[State]:
    """The agent's (position, direction) before the first action and after each one.

    Stops early when the agent reaches the goal or after ``max_steps`` steps (default: the
    level's time limit), exactly as the environments do.
    """
    limit = default_max_steps(*level.shape) if max_steps is None else max_steps
    walls = level.wall_map
    (r, c), d = level.start, level.start_dir
    states: list[State] = [((r, c), d)]
    for t, action in enumerate(actions, start=1):
        if t > limit:
            break
        a = int(action)
        if a == FORWARD:
            dr, dc = DIRECTION_VECTORS[d]
            if 0 <= r + dr < level.height and 0 <= c + dc < level.width and not walls[r + dr, c + dc]:
                r, c = r + dr, c + dc
        else:
            d = turn(d, a)
        states.append(((r, c), d))
        if (r, c) == level.goal:
            break
    return states


def render_rollout(
    level: MazeLevel, actions: Sequence[int], *, tile: int = DEFAULT_TILE, max_steps: int | None = None
) -> np.ndarray:
    """Frames (T+1, H, W, 3) uint8 of a rollout of ``actions`` from the level's start, path tinted."""
    states = rollout_states(level, actions, max_steps)
    frames = []
    for i, (pos, d) in enumerate(states):
        frames.append(render_state(level, pos, d, tile=tile, visited=[p for p, _ in states[:i]]))
    return np.stack(frames)


def render_trajectory(
    level: MazeLevel, actions: Sequence[int], *, tile: int = DEFAULT_TILE, max_steps: int | None = None
) -> np.ndarray:
    """One picture of a rollout: every visited cell tinted, the agent where it ended."""
    states = rollout_states(level, actions, max_steps)
    pos, d = states[-1]
    return render_state(level, pos, d, tile=tile, visited=[p for p, _ in states])


# -- text -----------------------------------------------------------------------------------------
def format_state(level: MazeLevel, position: tuple[int, int], direction: int) -> str:
    """The level's text form with the agent moved to ``position`` facing ``direction``."""
    rows = [list(line) for line in format_level(level).split("\n")]
    rows[level.start[0] + 1][level.start[1] + 1] = "."
    rows[position[0] + 1][position[1] + 1] = AGENT_CHARS[direction]
    return "\n".join("".join(row) for row in rows)


_ANSI = {
    "#": "\x1b[47m  \x1b[0m",
    ".": "  ",
    "G": "\x1b[42m  \x1b[0m",
}


def colorize(text: str) -> str:
    """A level's text form drawn with ANSI colours (two terminal columns a cell)."""
    out = []
    for line in text.split("\n"):
        cells = []
        for ch in line:
            if ch in AGENT_CHARS:
                cells.append(f"\x1b[1;31m{ch}{ch}\x1b[0m")
            else:
                cells.append(_ANSI.get(ch, ch * 2))
        out.append("".join(cells))
    return "\n".join(out)
