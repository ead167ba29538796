"""The vectorised maze: N mazes stepping together in numpy array operations.

Every slot lives in one flat ``uint8`` array of cell codes (0 floor, 1 wall, 2 goal) of a
common padded grid: the grid of the largest level the env takes (``grid_size``), plus a
margin of walls wide enough that the agent's view never leaves the array. A step is a
handful of whole-array operations (no per-slot Python loop); the view is one gather of
precomputed flat offsets (one table per direction) and two comparisons into the channels.

Levels smaller than ``grid_size`` are placed in the top-left corner and surrounded by
walls; since cells outside a level read as walls anyway, the agent sees and plays exactly
the same game (the time limit is still the level's own). With ``full_obs`` every level must
have exactly ``grid_size``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.base import LevelSet, LevelVecEnv
from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.render import render_state
from heldout.envs.maze.rules import (
    DEFAULT_VIEW_SIZE,
    FORWARD,
    NUM_ACTIONS,
    check_max_steps,
    check_render_mode,
    check_view_size,
    default_max_steps,
    view_offsets,
)
from heldout.envs.maze.space import MazeLevelSpace

_FLOOR, _WALL, _GOAL = 0, 1, 2
_TEMPLATE_CACHE_SIZE = 20_000


class MazeVecEnv(LevelVecEnv):
    """``num_envs`` mazes of one grid size, an sb3 ``VecEnv`` with the level contract of :class:`LevelVecEnv`."""

    def __init__(
        self,
        num_envs: int,
        level_set: LevelSet,
        level_space: MazeLevelSpace | None = None,
        *,
        grid_size: tuple[int, int] = (13, 13),
        view_size: int = DEFAULT_VIEW_SIZE,
        max_steps: int | None = None,
        full_obs: bool = False,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        v = check_view_size(view_size)
        gh, gw = (int(x) for x in grid_size)
        max_steps = check_max_steps(max_steps)
        self.render_mode = check_render_mode(render_mode, ("rgb_array",))  # read by VecEnv.__init__
        self.view_size, self.grid_size, self.full_obs, self.max_steps = v, (gh, gw), bool(full_obs), max_steps
        shape = (gh, gw, 3) if full_obs else (v, v, 3)
        obs_space = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
        super().__init__(
            num_envs, obs_space, gym.spaces.Discrete(NUM_ACTIONS), level_set, level_space or MazeLevelSpace(gh), seed
        )
        m = self._margin = max(v - 1, 1)
        self._hp, self._wp = gh + 2 * m, gw + 2 * m
        n, cells = num_envs, self._hp * self._wp
        self._cells = np.full((n, cells), _WALL, dtype=np.uint8)
        self._cells_flat = self._cells.reshape(-1)  # a view: writes to _cells show here
        self._base = np.arange(n, dtype=np.int64) * cells
        self._pos = np.zeros(n, dtype=np.int64)  # flat index in the slot's padded grid
        self._dir = np.zeros(n, dtype=np.int64)
        self._goal = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._limit = np.ones(n, dtype=np.int64)
        self._step_of_dir = np.array([1, self._wp, -1, -self._wp], dtype=np.int64)
        self._turn_of_action = np.array([-1, 1, 0], dtype=np.int64)
        offs = np.stack([view_offsets(v, d) for d in range(4)])  # (4, V, V, 2)
        self._view_offsets = (offs[..., 0] * self._wp + offs[..., 1]).reshape(4, v * v)
        self._agent_cell = (v - 1) * v + v // 2
        rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        self._interior = ((rows + m) * self._wp + cols + m).ravel()
        self._templates: dict[MazeLevel, tuple[np.ndarray, int, int, int]] = {}

    # -- levels ---------------------------------------------------------------------------------
    def _template(self, level: MazeLevel) -> tuple[np.ndarray, int, int, int]:
        """(padded cell codes, start index, goal index, time limit) of ``level``, cached."""
        tpl = self._templates.get(level)
        if tpl is not None:
            return tpl
        if not isinstance(level, MazeLevel):
            raise TypeError(f"a maze slot takes a MazeLevel (or its text form), got {type(level).__name__}")
        h, w = level.shape
        gh, gw = self.grid_size
        if self.full_obs and (h, w) != (gh, gw):
            raise ValueError(
                f"this vec env has full_obs=True on a {gh}x{gw} grid and cannot play a {h}x{w} level; "
                "full observations need one grid size: split the level set with "
                "heldout.envs.maze.split_by_size() and make one vec env per size, or use full_obs=False"
            )
        if h > gh or w > gw:
            raise ValueError(
                f"a {h}x{w} level does not fit this vec env's {gh}x{gw} grid; make the vec env with "
                f"size={max(h, w)} (or from a level set that holds its largest levels)"
            )
        m = self._margin
        grid = np.full((self._hp, self._wp), _WALL, dtype=np.uint8)
        grid[m : m + h, m : m + w] = level.wall_map
        grid[m + level.goal[0], m + level.goal[1]] = _GOAL
        start = (m + level.start[0]) * self._wp + m + level.start[1]
        goal = (m + level.goal[0]) * self._wp + m + level.goal[1]
        limit = self.max_steps if self.max_steps is not None else default_max_steps(h, w)
        if len(self._templates) >= _TEMPLATE_CACHE_SIZE:
            self._templates.clear()
        tpl = (grid.ravel(), start, goal, limit)
        self._templates[level] = tpl
        return tpl

    def _load_levels(self, slots: np.ndarray, levels: list[MazeLevel]) -> np.ndarray:
        tpls = [self._template(lv) for lv in levels]
        self._cells[slots] = np.stack([t[0] for t in tpls])
        self._pos[slots] = [t[1] for t in tpls]
        self._goal[slots] = [t[2] for t in tpls]
        self._limit[slots] = [t[3] for t in tpls]
        self._dir[slots] = [lv.start_dir for lv in levels]
        self._t[slots] = 0
        return self._observe(slots)

    # -- dynamics -------------------------------------------------------------------------------
    def _raw_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a = np.asarray(actions).reshape(self.num_envs)
        if a.dtype.kind not in "iu":
            a = a.astype(np.int64)
        if a.max() >= NUM_ACTIONS or a.min() < 0:
            raise ValueError(f"maze actions are 0 (turn left), 1 (turn right), 2 (forward); got {a.tolist()}")
        target = self._pos + self._step_of_dir[self._dir] * (a == FORWARD)
        free = self._cells_flat[self._base + target] != _WALL
        np.copyto(self._pos, target, where=free)
        self._dir += self._turn_of_action[a]
        self._dir &= 3
        self._t += 1
        reached = self._pos == self._goal
        rewards = (1.0 - 0.9 * self._t / self._limit) * reached
        truncated = self._t >= self._limit
        truncated &= ~reached
        return self._observe(None), rewards, reached, truncated

    def _observe(self, slots: np.ndarray | None) -> np.ndarray:
        """Observations of ``slots`` (None: every slot)."""
        pos, d = (self._pos, self._dir) if slots is None else (self._pos[slots], self._dir[slots])
        k = len(pos)
        if self.full_obs:
            cells = self._cells if slots is None else self._cells[slots]
            codes = cells[:, self._interior]
            m, wp = self._margin, self._wp
            at = (pos // wp - m) * self.grid_size[1] + pos % wp - m
        else:
            base = self._base if slots is None else self._base[slots]
            codes = self._cells_flat[(base + pos)[:, None] + self._view_offsets[d]]
            at = self._agent_cell
        # two comparisons into the channels: several times faster than a lookup table gather
        obs = np.empty((*codes.shape, 3), dtype=np.uint8)
        np.equal(codes, _WALL, out=obs[..., 0])
        np.equal(codes, _GOAL, out=obs[..., 1])
        obs[..., 2] = 0
        obs[np.arange(k) if self.full_obs else slice(None), at, 2] = d + 1
        shape = self.grid_size if self.full_obs else (self.view_size, self.view_size)
        return obs.reshape(k, *shape, 3)

    # -- inspection -----------------------------------------------------------------------------
    def agent_states(self) -> list[tuple[tuple[int, int], int, int]]:
        """Per slot: the agent's (row, column) in its level, its direction and the steps taken."""
        m, wp = self._margin, self._wp
        return [
            ((int(p) // wp - m, int(p) % wp - m), int(d), int(t))
            for p, d, t in zip(self._pos, self._dir, self._t)
        ]

    def get_images(self) -> list[np.ndarray]:
        """One RGB picture per slot of its level with the agent where it is now."""
        return [render_state(lv, pos, d) for lv, (pos, d, _) in zip(self.levels, self.agent_states())]

    # -- saving and restoring -------------------------------------------------------------------
    def _get_sim_state(self) -> dict[str, Any]:
        return {
            "grid_size": self.grid_size,
            "view_size": self.view_size,
            "cells": self._cells.copy(),
            "pos": self._pos.copy(),
            "dir": self._dir.copy(),
            "goal": self._goal.copy(),
            "t": self._t.copy(),
            "limit": self._limit.copy(),
        }

    def _set_sim_state(self, sim: dict[str, Any]) -> None:
        if tuple(sim["grid_size"]) != self.grid_size or sim["view_size"] != self.view_size:
            raise ValueError(
                f"saved maze state is for a {sim['grid_size']} grid with view {sim['view_size']}, "
                f"this env has {self.grid_size} and view {self.view_size}"
            )
        if sim["cells"].shape != self._cells.shape:
            raise ValueError(f"saved maze state has {len(sim['cells'])} slots, this env has {self.num_envs}")
        self._cells[:] = sim["cells"]
        for name in ("pos", "dir", "goal", "t", "limit"):
            getattr(self, f"_{name}")[:] = sim[name]
