"""MiniHack navigation tasks as seeded level families ``minihack/<task>``.

Registered only where ``nle`` and ``minihack`` are importable (``pip install 'heldout[minihack]'``,
see the README); imported on first use. A level is a generation seed: it seeds NetHack's core
and display RNGs (no reseeding) and, for the MiniGrid-built tasks (MultiRoom), the MiniGrid
layout generator, so ``reset(seed=s)`` always builds the same dungeon. The agent sees the
glyphs crop, the 9x9 grid of NetHack glyph ids around it (the exploration-bonus study's agents
read it beside the full map and the status line: docs/fidelity.md), read by the ``glyphs`` network. Held-out levels differ from every training level in
the whole glyph map at the start (layout, doors, objects and the agent's cell). Rewards: 1 on
reaching the goal, 0 otherwise (MiniHack's per-step penalty is set to 0 so that the return is
the solve indicator), so episodes score by solve rate.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.seeded import SeededFamily

FAMILIES: dict[str, str] = {
    "MultiRoom-N4": "MiniHack-MultiRoom-N4-v0",
    "MultiRoom-N6": "MiniHack-MultiRoom-N6-v0",
    "MultiRoom-N6-Lava": "MiniHack-MultiRoom-N6-Lava-v0",
    "KeyRoom-S5": "MiniHack-KeyRoom-S5-v0",
    "KeyRoom-S15": "MiniHack-KeyRoom-S15-v0",
    "Corridor-R3": "MiniHack-Corridor-R3-v0",
    "Corridor-R5": "MiniHack-Corridor-R5-v0",
}
"""Family name (``minihack/<task>``) -> Gymnasium id (registered by ``import minihack``)."""

OBSERVATION = "glyphs_crop"
"""The observation the agent sees: 9x9 glyph ids centred on the agent (int16)."""

MAKE_KWARGS: dict[str, Any] = {"observation_keys": (OBSERVATION, "glyphs"), "penalty_step": 0.0, "savedir": None}
"""``gymnasium.make`` settings of every family: the crop and the full map (for fingerprints), no step penalty,
no ttyrec recordings."""


class MiniHackLevel(gym.Wrapper):
    """Makes ``reset(seed=s)`` build level ``s`` of a MiniHack task and reduces the observation to
    the glyphs crop; ``full_glyphs`` keeps the whole map of the last observation."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space[OBSERVATION]
        self.full_glyphs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seed_level(self.env.unwrapped, int(seed))
        obs, info = self.env.reset(options=options)
        return self._view(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._view(obs), reward, terminated, truncated, info

    def _view(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        # NLE refills the same arrays every step: hand out copies.
        self.full_glyphs = obs["glyphs"].copy()
        return obs[OBSERVATION].copy()


def seed_level(task: Any, seed: int) -> None:
    """Seed everything that generates a MiniHack task's next episode: NetHack's core and display RNGs
    without reseeding and, for tasks built from a MiniGrid layout, that layout's generator."""
    from nle.env.base import NLE

    # MiniGridHack.seed calls the old gym seed() API of its MiniGrid env, which Gymnasium removed.
    NLE.seed(task, core=seed, disp=seed, reseed=False)
    minigrid = getattr(task, "minigrid_env", None)
    if minigrid is not None:
        minigrid.reset(seed=seed)  # the next (unseeded) reset, which draws the layout, continues this stream


def level_content(env: gym.Env, first_obs: Any) -> np.ndarray:
    """What a MiniHack level is: the full glyph map at the start (layout, objects, the agent's cell)."""
    while not isinstance(env, MiniHackLevel):
        env = env.env
    return env.full_glyphs


def families() -> list[SeededFamily]:
    """The ``minihack/<task>`` families, or none where nle or minihack is not installed."""
    if find_spec("minihack") is None or find_spec("nle") is None:
        return []
    return [
        SeededFamily(
            f"minihack/{name}",
            f"minihack:{gym_id}",
            fingerprint=level_content,
            success=0.0,
            wrap=MiniHackLevel,
            description=f"MiniHack {gym_id}: 9x9 glyphs crop, levels are generation seeds, solve rate",
            **MAKE_KWARGS,
        )
        for name, gym_id in FAMILIES.items()
    ]
