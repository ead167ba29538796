"""The level editor of PAIRED: an adversary builds a maze one cell at a time.

Follows dcd's ``envs/multigrid/adversarial.py`` (facebookresearch/dcd@72991be,
``AdversarialEnv.step_adversary`` ~452-539, defaults ``n_clutter=50``, ``random_z_dim=50``).
An episode starts from an empty ``size`` x ``size`` interior and lasts ``n_walls + 2`` steps;
action ``a`` names the interior cell ``(a // size, a % size)``:

* step 0 places the goal there;
* step 1 places the agent there, or on a random free cell when the goal is there (dcd's
  ``place_one_agent``); the agent's direction is drawn at the episode's start (dcd draws
  ``agent_start_dir`` in ``reset``, the adversary does not choose it);
* every later step puts a wall there if the cell is empty, and does nothing on a wall, the goal
  or the agent.

The adversary observes the grid being built, the time step and a random vector z drawn anew
each step (uniform in [0, 1), ``z_dim`` numbers), flattened into one float32 vector (see
:func:`observation_layout`): the grid as (size, size, 3) channels (wall, goal, ``1 + direction``
at the agent's cell; the agent appears once placed), then the time step one-hot over
``n_walls + 3`` values, then z. The finished level is an ordinary :class:`MazeLevel`, returned in
the last step's ``info["level"]``; it may be unsolvable (walls can cut the goal off).

jaxued's ``env_editor.py`` (DramaCow/jaxued@0f8f128) is the other published editor: its walls are
toggled (a wall placed twice is removed), it spends a step on the direction and masks actions,
and its z is zero unless asked; docs/fidelity.md lists the differences.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.rules import AGENT_CHANNEL, GOAL_CHANNEL, WALL_CHANNEL

DEFAULT_N_WALLS = 50
"""Wall placements per episode (dcd's ``n_clutter``)."""
DEFAULT_Z_DIM = 50
"""Size of the random vector z (dcd's ``random_z_dim``; jaxued uses 16)."""


def observation_layout(size: int, n_walls: int, z_dim: int) -> dict[str, slice]:
    """Where the grid, the time step (one-hot) and z lie in an editor observation."""
    grid = size * size * 3
    time = n_walls + 3  # time steps 0 .. n_walls + 2
    return {"grid": slice(0, grid), "time": slice(grid, grid + time), "z": slice(grid + time, grid + time + z_dim)}


def check_editor_settings(size: int, n_walls: int, z_dim: int) -> None:
    for name, value, low, high in (("size", size, 3, 255), ("n_walls", n_walls, 0, size * size), ("z_dim", z_dim, 0, 4096)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
            raise ValueError(f"editor {name} must be a whole number from {low} to {high}, got {value!r}")


class MazeEditorVecEnv(VecEnv):
    """``num_envs`` editors side by side, as a stable-baselines3 ``VecEnv`` that resets itself.

    The step that ends an episode returns the next episode's first observation, with the finished
    level in ``info["level"]`` and the last grid in ``info["terminal_observation"]``.
    """

    def __init__(
        self, num_envs: int, *, size: int = 13, n_walls: int = DEFAULT_N_WALLS, z_dim: int = DEFAULT_Z_DIM,
        seed: int = 0,
    ) -> None:  # fmt: skip
        check_editor_settings(size, n_walls, z_dim)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be a whole number >= 1, got {num_envs!r}")
        self.size, self.n_walls, self.z_dim = int(size), int(n_walls), int(z_dim)
        self.episode_steps = self.n_walls + 2
        self.layout = observation_layout(self.size, self.n_walls, self.z_dim)
        length = self.layout["z"].stop
        self.render_mode = None
        observation_space = spaces.Box(0.0, 4.0, shape=(length,), dtype=np.float32)
        super().__init__(int(num_envs), observation_space, spaces.Discrete(self.size * self.size))
        self.rng = np.random.default_rng(seed)
        n = self.num_envs
        self.walls = np.zeros((n, self.size, self.size), dtype=bool)
        self.goal = np.full((n, 2), -1, dtype=np.int64)
        self.start = np.full((n, 2), -1, dtype=np.int64)
        self.direction = np.zeros(n, dtype=np.int64)
        self.time = np.zeros(n, dtype=np.int64)
        self._actions: np.ndarray | None = None
        for slot in range(n):
            self._clear(slot)

    # -- the rules ------------------------------------------------------------------------------
    def _clear(self, slot: int) -> None:
        self.walls[slot] = False
        self.goal[slot] = self.start[slot] = -1
        self.time[slot] = 0
        self.direction[slot] = self.rng.integers(4)

    def _occupied(self, slot: int, cell: tuple[int, int]) -> bool:
        return bool(self.walls[slot][cell]) or tuple(self.goal[slot]) == cell or tuple(self.start[slot]) == cell

    def _edit(self, slot: int, action: int) -> None:
        cell = divmod(int(action), self.size)
        t = int(self.time[slot])
        if t == 0:
            self.walls[slot][cell] = False  # nothing is there yet; dcd removes any wall first
            self.goal[slot] = cell
        elif t == 1:
            self.walls[slot][cell] = False
            if tuple(self.goal[slot]) == cell:  # dcd: the goal is there, so the agent goes to a random free cell
                free = [c for c in range(self.size * self.size) if not self._occupied(slot, divmod(c, self.size))]
                cell = divmod(int(free[self.rng.integers(len(free))]), self.size)
            self.start[slot] = cell
        elif not self._occupied(slot, cell):
            self.walls[slot][cell] = True
        self.time[slot] = t + 1

    def level(self, slot: int) -> MazeLevel:
        """The level slot ``slot`` holds (its goal and agent must be placed)."""
        if self.time[slot] < 2:
            raise ValueError(f"editor slot {slot} has not placed its goal and agent yet (step {self.time[slot]})")
        goal, start = tuple(map(int, self.goal[slot])), tuple(map(int, self.start[slot]))
        return MazeLevel.from_walls(self.walls[slot], goal, start, int(self.direction[slot]))

    def _observe(self, slot: int) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        grid = np.zeros((self.size, self.size, 3), dtype=np.float32)
        grid[..., WALL_CHANNEL] = self.walls[slot]
        if self.goal[slot][0] >= 0:
            grid[self.goal[slot][0], self.goal[slot][1], GOAL_CHANNEL] = 1
        if self.start[slot][0] >= 0:
            grid[self.start[slot][0], self.start[slot][1], AGENT_CHANNEL] = 1 + self.direction[slot]
        obs[self.layout["grid"]] = grid.ravel()
        obs[self.layout["time"].start + int(self.time[slot])] = 1
        obs[self.layout["z"]] = self.rng.random(self.z_dim, dtype=np.float32)
        return obs

    # -- VecEnv ---------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        for slot in range(self.num_envs):
            self._clear(slot)
        return np.stack([self._observe(slot) for slot in range(self.num_envs)])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async first"
        bad = (self._actions < 0) | (self._actions >= self.size * self.size)
        if bad.any():
            raise ValueError(f"editor actions are cells 0..{self.size * self.size - 1}, got {self._actions[bad][0]}")
        obs, dones, infos = [], np.zeros(self.num_envs, dtype=bool), []
        for slot, action in enumerate(self._actions.tolist()):
            self._edit(slot, action)
            info: dict[str, Any] = {}
            if self.time[slot] >= self.episode_steps:
                dones[slot] = True
                info["level"] = self.level(slot)
                info["terminal_observation"] = self._observe(slot)
                self._clear(slot)
            obs.append(self._observe(slot))
            infos.append(info)
        return np.stack(obs), np.zeros(self.num_envs, dtype=np.float32), dones, infos

    def get_state(self) -> dict[str, Any]:
        """Everything the editors hold (grids, step counts, directions, the RNG), for checkpoints."""
        return {
            "walls": self.walls.copy(), "goal": self.goal.copy(), "start": self.start.copy(),
            "direction": self.direction.copy(), "time": self.time.copy(), "rng": self.rng.bit_generator.state,
        }  # fmt: skip

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; a foreign shape is refused."""
        if np.shape(state["walls"]) != self.walls.shape:
            raise ValueError(f"editor state holds grids of shape {np.shape(state['walls'])}, this editor {self.walls.shape}")
        for key in ("walls", "goal", "start", "direction", "time"):
            getattr(self, key)[...] = state[key]
        self.rng.bit_generator.state = state["rng"]

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


class MazeEditorEnv(gym.Env):
    """One editor as a Gymnasium environment (the vectorised editor with one slot)."""

    metadata = {"render_modes": []}

    def __init__(self, size: int = 13, n_walls: int = DEFAULT_N_WALLS, z_dim: int = DEFAULT_Z_DIM) -> None:
        self._vec = MazeEditorVecEnv(1, size=size, n_walls=n_walls, z_dim=z_dim)
        self.observation_space = self._vec.observation_space
        self.action_space = self._vec.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._vec.rng = np.random.default_rng(seed)
        return self._vec.reset()[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, _, dones, infos = self._vec.step(np.array([action]))
        if dones[0]:
            obs = infos[0].pop("terminal_observation")[None]
        return obs[0], 0.0, bool(dones[0]), False, infos[0]

    def level(self) -> MazeLevel:
        """The level built so far (goal and agent placed)."""
        return self._vec.level(0)
