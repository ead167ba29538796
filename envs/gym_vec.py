"""A :class:`LevelVecEnv` over N single Gymnasium environments: any family's default ``make_vec``.

Each slot is one env that accepts ``reset(options={"level": L})``. The slots are stepped one
after another (as stable-baselines3's ``DummyVecEnv`` does); a slot whose episode ends is reset
at once to the level its level source chooses.

Saving and restoring (exact resume). A checkpoint holds plain data only, never a pickled env,
so a slot's state is saved as the way to rebuild it: its level, the state of the env's
``np_random`` when the episode began, the actions taken since, and a digest of its current
observation. Restoring resets the slot to that level with that RNG state and replays the
actions. This is exact for every env whose randomness comes from its ``np_random`` (the
Gymnasium convention, and every seeded family: their levels reseed it). Where the replay does
not reproduce the saved observation, the slot restarts its level from the start and a warning
names how many slots did so: resume is then not exact for those slots.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs.base import Level, LevelSet, LevelSpace, LevelVecEnv

_ARRAY_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


class GymLevelVecEnv(LevelVecEnv):
    """``len(envs)`` single Gymnasium envs as one stable-baselines3 ``VecEnv`` with level control.

    Observations must be arrays (Box, Discrete, MultiDiscrete or MultiBinary spaces); wrap a
    dict-observation env in an observation wrapper first. Each step's info holds the env's own
    info, ``"level"``, and at an episode end ``"episode"``, ``"terminal_observation"`` (the real
    last observation) and ``"TimeLimit.truncated"``.
    """

    def __init__(
        self,
        envs: Sequence[gym.Env],
        level_set: LevelSet,
        level_space: LevelSpace,
        *,
        seed: int = 0,
    ) -> None:
        envs = list(envs)
        if not envs:
            raise ValueError("GymLevelVecEnv needs at least one env")
        obs_space, act_space = envs[0].observation_space, envs[0].action_space
        if not isinstance(obs_space, _ARRAY_SPACES):
            raise TypeError(
                f"GymLevelVecEnv needs array observations, got {obs_space}; wrap the env in an observation "
                "wrapper such as gymnasium.wrappers.FlattenObservation (register_seeded(..., wrap=...) does it)"
            )
        for i, env in enumerate(envs[1:], 1):
            if env.observation_space != obs_space or env.action_space != act_space:
                raise ValueError(f"env {i} has other spaces than env 0; every slot must play the same game")
        self.render_mode = envs[0].render_mode
        super().__init__(len(envs), obs_space, act_space, level_set, level_space, seed=seed)
        self.envs = envs
        n = len(envs)
        self._obs = np.zeros((n, *obs_space.shape), dtype=obs_space.dtype)
        self._env_infos: list[dict[str, Any]] = [{} for _ in range(n)]
        self._episode_rng: list[dict[str, Any] | None] = [None] * n
        self._episode_actions: list[list[Any]] = [[] for _ in range(n)]
        for env, s in zip(envs, np.random.default_rng([seed, 0x5EED]).integers(0, 2**31 - 1, size=n).tolist()):
            env.unwrapped.np_random = np.random.default_rng(s)  # reproducible envs that do not reseed at reset

    # -- LevelVecEnv hooks --------------------------------------------------------------------
    def _load_levels(self, slots: np.ndarray, levels: list[Level]) -> np.ndarray:
        for slot, level in zip(slots.tolist(), levels):
            env = self.envs[slot]
            self._episode_rng[slot] = env.unwrapped.np_random.bit_generator.state
            self._episode_actions[slot] = []
            self._obs[slot], _ = env.reset(options={"level": level})
        return self._obs[slots].copy()

    def _raw_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        obs, infos, history = self._obs, self._env_infos, self._episode_actions
        for i, env in enumerate(self.envs):
            action = actions[i]
            history[i].append(action.copy() if isinstance(action, np.ndarray) else action)
            obs[i], rewards[i], terminated[i], truncated[i], infos[i] = env.step(action)
        return obs.copy(), rewards, terminated, truncated

    def _step_infos(self) -> list[dict[str, Any]]:
        return [{**info, **own} for info, own in zip(self._env_infos, self._level_infos())]

    def _get_sim_state(self) -> dict[str, Any]:
        return {
            "episode_rng": list(self._episode_rng),
            "episode_actions": [np.asarray(a) for a in self._episode_actions],
            "obs_digest": [_digest(self._obs[i]) for i in range(self.num_envs)],
        }

    def _set_sim_state(self, sim: Any) -> None:
        restarted = [i for i in range(self.num_envs) if not self._replay(i, sim)]
        for i in restarted:
            self._restart(i)
        if restarted:
            warnings.warn(
                f"{self.level_space.family}: resume is not exact for {len(restarted)} of {self.num_envs} env slots "
                f"({restarted}): replaying their episode from its level, RNG state and actions did not reproduce "
                "the saved observation (the env has randomness outside its np_random); they restart their level "
                "from its start",
                stacklevel=3,
            )

    def _replay(self, slot: int, sim: dict[str, Any]) -> bool:
        """Rebuild ``slot`` from its level, RNG state and actions; whether it matches the save."""
        env, rng_state = self.envs[slot], sim["episode_rng"][slot]
        if rng_state is None:
            return False
        env.unwrapped.np_random = _generator(rng_state)
        self._episode_rng[slot] = rng_state
        self._obs[slot], _ = env.reset(options={"level": self.levels[slot]})
        actions = list(sim["episode_actions"][slot])
        self._episode_actions[slot] = actions
        for action in actions:
            self._obs[slot], _, terminated, truncated, self._env_infos[slot] = env.step(action)
            if terminated or truncated:  # the saved episode was still running
                return False
        return _digest(self._obs[slot]) == sim["obs_digest"][slot]

    def _restart(self, slot: int) -> None:
        self.set_levels(np.array([slot]), [self.levels[slot]], [self.replayed[slot]])
        self._env_infos[slot] = {}

    # -- VecEnv API -----------------------------------------------------------------------------
    def get_images(self) -> list[np.ndarray]:
        return [env.render() for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _digest(obs: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(obs).tobytes(), digest_size=16).digest()


def _generator(state: dict[str, Any]) -> np.random.Generator:
    """A numpy Generator in the saved ``bit_generator.state`` (PCG64, Philox, SFC64, MT19937...)."""
    kind = getattr(np.random, str(state.get("bit_generator")), None)
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise ValueError(f"unknown bit generator in a saved env state: {state.get('bit_generator')!r}")
    bit_generator = kind()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
