"""One maze as a Gymnasium environment, written plainly (it is also the reference the
vectorised env is tested against).

``reset(options={"level": L})`` plays level ``L`` (a :class:`MazeLevel`, its text form or
its bytes); without it, a level is drawn from the env's level set with ``self.np_random``.
Partial views work on levels of any size; with ``full_obs`` every level must have the
env's ``grid_size``. See :mod:`heldout.envs.maze.rules` for actions, rewards and the view.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.base import LevelSet
from heldout.envs.maze.level import DIRECTION_VECTORS, MazeLevel
from heldout.envs.maze.render import format_state, render_state
from heldout.envs.maze.rules import (
    AGENT_CHANNEL,
    DEFAULT_VIEW_SIZE,
    FORWARD,
    GOAL_CHANNEL,
    NUM_ACTIONS,
    WALL_CHANNEL,
    check_max_steps,
    check_render_mode,
    check_view_size,
    default_max_steps,
    goal_reward,
    turn,
)
from heldout.envs.maze.space import MazeLevelSpace


class MazeEnv(gym.Env):
    """A single maze whose level can be chosen at every reset."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(
        self,
        level_set: LevelSet,
        level_space: MazeLevelSpace | None = None,
        *,
        grid_size: tuple[int, int] = (13, 13),
        view_size: int = DEFAULT_VIEW_SIZE,
        max_steps: int | None = None,
        full_obs: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.level_set = level_set
        self.level_space = level_space or MazeLevelSpace(grid_size[0])
        self.view_size = check_view_size(view_size)
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.full_obs = bool(full_obs)
        self.max_steps = check_max_steps(max_steps)
        self.render_mode = check_render_mode(render_mode, tuple(self.metadata["render_modes"]))
        shape = (*self.grid_size, 3) if full_obs else (self.view_size, self.view_size, 3)
        self.observation_space = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.level: MazeLevel | None = None
        self._done = True

    # -- episode ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        level = options.pop("level", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; the maze takes options={{'level': L}}")
        level = self.level_set.sample(self.np_random) if level is None else self.level_space.coerce(level)
        if self.full_obs and level.shape != self.grid_size:
            raise ValueError(
                f"this env has full_obs=True on a {self.grid_size[0]}x{self.grid_size[1]} grid and cannot play a "
                f"{level.height}x{level.width} level; make an env for that size (size={level.height}) or use full_obs=False"
            )
        self.level = level
        self.position, self.direction, self.t = level.start, level.start_dir, 0
        self.time_limit = self.max_steps if self.max_steps is not None else default_max_steps(*level.shape)
        margin = max(self.view_size - 1, 1)
        self._margin = margin
        self._codes = np.ones((level.height + 2 * margin, level.width + 2 * margin), dtype=np.uint8)  # 1 wall
        self._codes[margin:-margin, margin:-margin] = level.wall_map
        self._codes[level.goal[0] + margin, level.goal[1] + margin] = 2
        self._done = False
        return self._observation(), {"level": level}

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode has ended (or never began): call reset() before step()")
        a = int(action)
        if not 0 <= a < NUM_ACTIONS:
            raise ValueError(f"maze actions are 0 (turn left), 1 (turn right), 2 (forward); got {action!r}")
        assert self.level is not None
        self.t += 1
        if a == FORWARD:
            dr, dc = DIRECTION_VECTORS[self.direction]
            r, c = self.position[0] + dr, self.position[1] + dc
            if 0 <= r < self.level.height and 0 <= c < self.level.width and not self.level.wall_map[r, c]:
                self.position = (r, c)
        else:
            self.direction = turn(self.direction, a)
        terminated = self.position == self.level.goal
        truncated = not terminated and self.t >= self.time_limit
        reward = goal_reward(self.t, self.time_limit) if terminated else 0.0
        self._done = terminated or truncated
        return self._observation(), reward, terminated, truncated, {"level": self.level}

    # -- observation ------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        assert self.level is not None
        m = self._margin
        if self.full_obs:
            codes = self._codes[m:-m, m:-m]
            r, c = self.position
        else:
            v = self.view_size
            pr, pc = self.position[0] + m, self.position[1] + m
            square = self._codes[pr - (v - 1) : pr + v, pc - (v - 1) : pc + v]  # (2V-1)^2 around the agent
            square = np.rot90(square, k=(self.direction + 1) % 4)  # the agent now faces up
            codes = square[:v, v - 1 - v // 2 : v + v // 2]
            r, c = v - 1, v // 2
        obs = np.zeros((*codes.shape, 3), dtype=np.uint8)
        obs[..., WALL_CHANNEL] = codes == 1
        obs[..., GOAL_CHANNEL] = codes == 2
        obs[r, c, AGENT_CHANNEL] = self.direction + 1
        return obs

    # -- pictures ---------------------------------------------------------------------------------
    def render(self):
        if self.level is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return format_state(self.level, self.position, self.direction)
        return render_state(self.level, self.position, self.direction)
