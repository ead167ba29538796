"""MiniGrid environments used to study generalisation, as seeded level families ``minigrid/<name>``.

Registered only where the ``minigrid`` package is importable (``pip install 'heldout[minigrid]'``);
it is imported on first use, not when ``heldout.envs`` loads. A level is a reset seed; the
agent sees MiniGrid's 7x7 egocentric symbolic image (object, colour, state codes per cell),
which the maze network learns from. Held-out levels differ from every training level in the
whole grid, the agent's start and the mission, not only in the first view. Episodes score by
solve rate: MiniGrid pays ``1 - 0.9 t / T`` on success and 0 otherwise, so solved = return > 0.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import gymnasium as gym

from heldout.envs.seeded import SeededFamily

FAMILIES: dict[str, str] = {
    "SimpleCrossingS9N1": "MiniGrid-SimpleCrossingS9N1-v0",
    "LavaCrossingS9N1": "MiniGrid-LavaCrossingS9N1-v0",
    "MultiRoom-N4-S5": "MiniGrid-MultiRoom-N4-S5-v1",
    "KeyCorridorS3R3": "MiniGrid-KeyCorridorS3R3-v0",
    "ObstructedMaze-1Dlhb": "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "FourRooms": "MiniGrid-FourRooms-v0",
    "DoorKey-8x8": "MiniGrid-DoorKey-8x8-v0",
}
"""Family name (``minigrid/<name>``) -> Gymnasium id."""


def level_content(env: gym.Env, first_obs: Any) -> tuple:
    """What a MiniGrid level is: the encoded grid, the agent's start cell and direction, the mission."""
    grid = env.unwrapped
    return (grid.grid.encode(), tuple(int(v) for v in grid.agent_pos), int(grid.agent_dir), str(grid.mission))


def families() -> list[SeededFamily]:
    """The ``minigrid/<name>`` families, or none where minigrid is not installed."""
    if find_spec("minigrid") is None:
        return []
    return [
        SeededFamily(
            f"minigrid/{name}",
            gym_id,
            fingerprint=level_content,
            success=0.0,
            description=f"MiniGrid {gym_id}: 7x7 symbolic view, levels are seeds, solve rate",
        )
        for name, gym_id in FAMILIES.items()
    ]
