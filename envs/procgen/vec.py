"""A vectorised Procgen game (stable-baselines3 ``VecEnv``) whose slots play chosen levels.

All slots live in one ``ProcgenGym3Env``. Putting level ``s`` into slot ``i`` writes the
cached start state of ``s`` (taken once from a donor env) into that slot with procgen's
``set_state``; procgen renders the slot's new first frame straight into its observation buffer.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.base import Level, LevelSet, LevelVecEnv
from heldout.envs.procgen import backend
from heldout.envs.procgen.levels import ProcgenLevelSpace
from heldout.envs.procgen.single import NUM_ACTIONS, OBSERVATION_SPACE


class ProcgenVecEnv(LevelVecEnv):
    """``num_envs`` slots of one Procgen game on one ``ProcgenGym3Env``.

    A slot's episode ends where procgen's ``first`` flag says a new one began (procgen
    auto-resets inside the step); the slot is then written with the next level at once. As
    procgen renders no terminal frame, ``info["terminal_observation"]`` is the auto-reset
    frame, and every end is reported as terminated (procgen does not tell time-outs apart),
    as in the published baselines. Rewards are float32.
    """

    render_mode: str | None = None

    def __init__(
        self,
        game: str,
        num_envs: int,
        level_set: LevelSet,
        *,
        distribution_mode: str = "easy",
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        level_space = ProcgenLevelSpace(game, distribution_mode)
        super().__init__(
            num_envs,
            OBSERVATION_SPACE,
            gym.spaces.Discrete(NUM_ACTIONS),
            level_set,
            level_space,
            seed=seed,
        )
        self.game = level_space.game
        self.distribution_mode = level_space.distribution_mode
        self._env = backend.make_raw_env(
            self.game, num_envs, self.distribution_mode, rand_seed=seed, num_threads=num_threads
        )
        self._slots = backend.SlotWriter(self._env, backend.start_states(self.game, self.distribution_mode))
        self._no_truncation = np.zeros(num_envs, dtype=bool)

    # -- LevelVecEnv hooks --------------------------------------------------------------------
    def _load_levels(self, slots: np.ndarray, levels: list[Level]) -> np.ndarray:
        write = self._slots.write
        for slot, level in zip(slots.tolist(), levels):
            write(slot, level)
        return self._slots.rgb[slots]

    def _raw_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._env.act(np.asarray(actions, dtype=np.int32).reshape(self.num_envs))
        reward, ob, first = self._env.observe()
        return ob["rgb"], reward, first.astype(bool, copy=False), self._no_truncation.copy()

    def _get_sim_state(self) -> list[bytes]:
        return self._slots.get_all()

    def _set_sim_state(self, sim: Any) -> None:
        self._slots.set_all(list(sim))

    # -- VecEnv API -----------------------------------------------------------------------------
    def get_images(self) -> list[np.ndarray]:
        """The current observation of every slot."""
        return list(self._slots.rgb.copy())

    def close(self) -> None:
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()
