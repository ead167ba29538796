"""One Procgen game as a Gymnasium environment whose level can be chosen at every reset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.base import LevelSet
from heldout.envs.procgen import backend
from heldout.envs.procgen.levels import ProcgenLevelSpace

OBSERVATION_SPACE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
NUM_ACTIONS = 15


class ProcgenEnv(gym.Env):
    """A Procgen game playing levels of ``level_set`` (or the one given at reset).

    ``reset(options={"level": L})`` starts seed ``L``; ``reset(seed=...)`` without a level
    draws one from the level set with the env's seeded generator. ``info["level"]`` names the
    level of every step. An episode ends where procgen's ``first`` flag says a new one began;
    procgen has auto-reset by then and renders no terminal frame, so the observation returned
    with ``terminated=True`` is already the next start frame of the same level. Procgen does
    not tell time-outs from other ends, so, as in the published baselines, every end is
    reported as ``terminated``. ``render_mode="rgb_array"`` renders 512x512 frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        level_set: LevelSet,
        *,
        distribution_mode: str = "easy",
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}; use None or 'rgb_array'")
        self.level_space = ProcgenLevelSpace(game, distribution_mode)
        self.game = self.level_space.game
        self.distribution_mode = self.level_space.distribution_mode
        self.level_set = level_set
        self.render_mode = render_mode
        self.observation_space = OBSERVATION_SPACE
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.level: int | None = None
        self._env = backend.make_raw_env(
            self.game, 1, self.distribution_mode, num_threads=0, render_mode=render_mode
        )
        self._slots = backend.SlotWriter(self._env, backend.start_states(self.game, self.distribution_mode))
        self._action = np.zeros(1, dtype=np.int32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"level"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'level'")
        if options.get("level") is not None:
            level = self.level_space.coerce(options["level"])
        else:
            level = self.level_space.coerce(self.level_set.sample(self.np_random))
        self._slots.write(0, level)
        self.level = level
        return self._slots.rgb[0].copy(), {"level": level}

    def step(self, action):
        if self.level is None:
            raise RuntimeError("call reset() before step()")
        self._action[0] = action
        self._env.act(self._action)
        reward, ob, first = self._env.observe()
        info = {"level": self.level}
        return ob["rgb"][0], float(reward[0]), bool(first[0]), False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._env.get_info()[0]["rgb"]

    def close(self) -> None:
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()
