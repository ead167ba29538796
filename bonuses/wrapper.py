"""The VecEnv wrapper that adds a bonus to the rewards the agent learns from."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from heldout.bonuses.base import Bonus, RunningStd


class BonusVecEnv(VecEnvWrapper):
    """``venv`` with ``coef * bonus`` (divided by its running std with ``normalize``) added to
    every step's reward; each step's info carries the amount added as ``"intrinsic"``.

    It sits on top of the reward normaliser, so ``VecNormalize`` scales the extrinsic reward only
    and the level env's ``info["episode"]`` returns stay extrinsic (level samplers, evaluation and
    reports read those). :attr:`callback` (pass it to ``collect_rollouts``) trains the bonus's
    networks on each rollout's transitions and logs ``bonus/*`` at the rollout's end."""

    def __init__(self, venv: VecEnv, bonus: Bonus, *, coef: float = 1.0, normalize: bool = True) -> None:
        super().__init__(venv)
        self.bonus, self.coef, self.normalize = bonus, float(coef), bool(normalize)
        self.scale = RunningStd()
        self.callback = _RolloutEnd(self)
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._episode_bonus = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self._transitions: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._finished: list[tuple[float, float, int]] = []  # (extrinsic return, bonus sum, length)

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self.bonus.begin(np.arange(self.num_envs), obs)
        self._obs = np.array(obs)
        self._episode_bonus[:] = 0.0
        self._episode_length[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        ended = np.flatnonzero(dones)
        reached = np.array(obs)
        for e in ended.tolist():
            reached[e] = infos[e]["terminal_observation"]
        raw = self.bonus.reward(self._obs, self._actions, reached)
        if self.normalize:
            self.scale.update(raw)
            raw = self.scale.scale(raw)
        intrinsic = self.coef * raw
        if self.bonus.learns:
            self._transitions.append((self._obs, self._actions, reached))
        self._episode_bonus += intrinsic
        self._episode_length += 1
        for e, info in enumerate(infos):
            info["intrinsic"] = float(intrinsic[e])
        for e in ended.tolist():
            episode = infos[e].get("episode") or {}
            self._finished.append((float(episode.get("r", np.nan)), float(self._episode_bonus[e]),
                                   int(self._episode_length[e])))  # fmt: skip
            self._episode_bonus[e], self._episode_length[e] = 0.0, 0
        if ended.size:
            self.bonus.begin(ended, obs[ended])
        self._obs = np.array(obs)
        return obs, (rewards + intrinsic).astype(np.float32), dones, infos

    def end_rollout(self, logger: Any = None) -> dict[str, float]:
        """Train the bonus on the rollout's transitions and log what it did (``bonus/*``)."""
        stats: dict[str, float] = {}
        if self._transitions:
            obs, actions, reached = (np.concatenate(part) for part in zip(*self._transitions))
            stats.update(self.bonus.learn(obs, actions, reached))
        self._transitions = []
        if self._finished:
            ext, bonus, length = (np.array(col, dtype=np.float64) for col in zip(*self._finished))
            stats["extrinsic_return"] = float(np.nanmean(ext)) if np.isfinite(ext).any() else float("nan")
            stats["intrinsic_return"] = float(bonus.mean())
            stats["mean_per_episode"] = float((bonus / np.maximum(length, 1)).mean())
        self._finished = []
        distinct = self.bonus.distinct_states()
        if distinct is not None:
            stats["distinct_states"] = float(distinct)
        if logger is not None:
            for key, value in stats.items():
                logger.record(f"bonus/{key}", value)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Everything the bonus carries between rollouts (counts, C^-1, networks, optimisers, RNG, scale)."""
        return {
            "bonus": self.bonus.state_dict(),
            "scale": self.scale.state_dict(),
            "obs": self._obs,
            "episode_bonus": self._episode_bonus.copy(),
            "episode_length": self._episode_length.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bonus.load_state_dict(state["bonus"])
        self.scale.load_state_dict(state["scale"])
        self._obs = None if state["obs"] is None else np.array(state["obs"])
        self._episode_bonus = np.array(state["episode_bonus"], dtype=np.float64)
        self._episode_length = np.array(state["episode_length"], dtype=np.int64)
        self._transitions, self._finished = [], []


class _RolloutEnd(BaseCallback):
    """Calls :meth:`BonusVecEnv.end_rollout` with the model's logger when a rollout ends."""

    def __init__(self, env: BonusVecEnv) -> None:
        super().__init__()
        self.env = env

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.env.end_rollout(self.logger)
