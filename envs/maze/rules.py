"""The rules of the maze game, shared by the single and the vectorised environment.

* Actions (``Discrete(3)``): 0 turn left, 1 turn right, 2 step forward. A step into a wall
  (or the outer wall) leaves the agent where it is; every action takes one time step.
* Reward: stepping onto the goal ends the episode (``terminated``) with reward
  ``1 - 0.9 * t / T``, where ``t`` counts the steps taken *including* the one that reaches
  the goal (so the first step is t = 1) and ``T`` is the time limit; every other step pays 0.
  Reaching the goal on step T still terminates and pays 0.1.
* Time limit: after ``T`` steps without reaching the goal the episode is ``truncated``.
  ``T`` is 250 on grids of up to 13x13 = 169 cells (the value of the UED literature) and grows
  with the area on larger grids: ``T = ceil(250 * H * W / 169)`` (21x21: 653, 25x25: 925,
  51x51: 3848); the ``max_steps`` option fixes one T for every level instead.
* Egocentric view (``view_size`` V, odd): the V x V cells in front of the agent, rotated so
  the agent always faces *up*; the agent sits in the **bottom row, middle column**
  (view cell ``(V - 1, V // 2)``), like minigrid. Cells outside the grid read as walls.
  There is no occlusion: the agent sees through walls.
"""

from __future__ import annotations

import math

import numpy as np

from heldout.envs.maze.level import DIRECTION_VECTORS

TURN_LEFT, TURN_RIGHT, FORWARD = 0, 1, 2
ACTION_NAMES = ("turn left", "turn right", "forward")
NUM_ACTIONS = 3

BASE_MAX_STEPS = 250
BASE_CELLS = 13 * 13
DEFAULT_VIEW_SIZE = 5

# Observation channels.
WALL_CHANNEL, GOAL_CHANNEL, AGENT_CHANNEL = 0, 1, 2


def default_max_steps(height: int, width: int) -> int:
    """The time limit T of a height x width level: 250, scaled with the area beyond 13x13."""
    return max(BASE_MAX_STEPS, math.ceil(BASE_MAX_STEPS * height * width / BASE_CELLS))


def goal_reward(t: int, max_steps: int) -> float:
    """Reward for reaching the goal on step ``t`` (1-based) of an episode with time limit ``max_steps``."""
    return 1.0 - 0.9 * t / max_steps


def check_max_steps(max_steps: int | None) -> int | None:
    """A time limit T for every level (a positive integer), or None for :func:`default_max_steps`."""
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer or None (each level's default), got {max_steps!r}")
    return int(max_steps)


def check_render_mode(render_mode: str | None, modes: tuple[str, ...]) -> str | None:
    """``render_mode`` if it is None or one of ``modes``, else a ValueError naming them."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None, {' or '.join(map(repr, modes))}, got {render_mode!r}")
    return render_mode


def check_view_size(view_size: int) -> int:
    if isinstance(view_size, bool) or not isinstance(view_size, (int, np.integer)) or view_size < 1 or view_size % 2 == 0:
        raise ValueError(f"view_size must be an odd positive integer (e.g. 5), got {view_size!r}")
    return int(view_size)


def view_offsets(view_size: int, direction: int) -> np.ndarray:
    """(V, V, 2) grid offsets (row, column) from the agent of each cell of its view.

    View cell (i, j) lies ``V - 1 - i`` cells ahead of the agent and ``j - V // 2`` cells to
    its right.
    """
    v = check_view_size(view_size)
    fr, fc = DIRECTION_VECTORS[direction]
    rr, rc = DIRECTION_VECTORS[(direction + 1) % 4]  # the agent's right-hand side
    ahead = (v - 1 - np.arange(v))[:, None]
    right = (np.arange(v) - v // 2)[None, :]
    return np.stack([ahead * fr + right * rr, ahead * fc + right * rc], axis=-1)


def turn(direction: int, action: int) -> int:
    """The direction after ``action`` (forward keeps it)."""
    if action == TURN_LEFT:
        return (direction - 1) % 4
    if action == TURN_RIGHT:
        return (direction + 1) % 4
    return direction
