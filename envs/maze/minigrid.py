"""Conversion of a maze level to a Farama ``minigrid`` environment with the same layout.

minigrid is a test extra, not a dependency: it is imported only when :func:`to_minigrid`
is called (``pip install minigrid`` if it is missing).

The minigrid grid is the level's text form: width and height include the outer wall, so
interior cell (row r, column c) is minigrid position ``(x, y) = (c + 1, r + 1)``; the agent
direction codes agree (0 east, 1 south, 2 west, 3 north), so do actions 0/1/2 (left, right,
forward) and the reward ``1 - 0.9 * step_count / max_steps``. ``see_through_walls=True`` by
default, like this package's view.
"""

from __future__ import annotations

from typing import Any

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.rules import DEFAULT_VIEW_SIZE, default_max_steps


def _import_minigrid():
    try:
        from minigrid.core.grid import Grid
        from minigrid.core.mission import MissionSpace
        from minigrid.core.world_object import Goal, Wall
        from minigrid.minigrid_env import MiniGridEnv
    except ImportError as err:
        raise ImportError(
            "to_minigrid() needs the minigrid package, which heldout does not install by default: "
            "pip install minigrid  (or pip install 'heldout[test]')"
        ) from err
    return Grid, MissionSpace, Goal, Wall, MiniGridEnv


def to_minigrid(
    level: MazeLevel | str,
    *,
    max_steps: int | None = None,
    agent_view_size: int = DEFAULT_VIEW_SIZE,
    see_through_walls: bool = True,
    **kwargs: Any,
):
    """A ``minigrid.MiniGridEnv`` that plays ``level`` (a MazeLevel or its text form) at every reset.

    ``max_steps`` defaults to the level's time limit here; other keyword arguments (e.g.
    ``render_mode="rgb_array"``) go to ``MiniGridEnv``.
    """
    Grid, MissionSpace, Goal, Wall, MiniGridEnv = _import_minigrid()
    if isinstance(level, str):
        from heldout.envs.maze.text import parse_level

        level = parse_level(level)
    if not isinstance(level, MazeLevel):
        raise TypeError(f"to_minigrid() takes a MazeLevel or its text form, got {type(level).__name__}")
    fixed = level

    class HeldoutMazeEnv(MiniGridEnv):
        """A fixed heldout maze level in minigrid."""

        def __init__(self) -> None:
            super().__init__(
                mission_space=MissionSpace(mission_func=lambda: "get to the green goal square"),
                width=fixed.width + 2,
                height=fixed.height + 2,
                max_steps=int(max_steps if max_steps is not None else default_max_steps(*fixed.shape)),
                agent_view_size=agent_view_size,
                see_through_walls=see_through_walls,
                **kwargs,
            )
            self.level = fixed

        def _gen_grid(self, width: int, height: int) -> None:
            self.grid = Grid(width, height)
            self.grid.wall_rect(0, 0, width, height)
            walls = fixed.wall_map
            for r in range(fixed.height):
                for c in range(fixed.width):
                    if walls[r, c]:
                        self.grid.set(c + 1, r + 1, Wall())
            self.put_obj(Goal(), fixed.goal[1] + 1, fixed.goal[0] + 1)
            self.agent_pos = (fixed.start[1] + 1, fixed.start[0] + 1)
            self.agent_dir = fixed.start_dir
            self.mission = "get to the green goal square"

    return HeldoutMazeEnv()
