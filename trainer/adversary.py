"""PAIRED's adversary: a recurrent PPO agent that designs one maze per env slot in the level editor.

The network is jaxued's ``AdversaryActorCritic`` (``examples/maze_paired.py`` ~315-350,
DramaCow/jaxued@0f8f128): a 3x3 convolution of 128 channels (no padding) over the grid, ReLU,
flattened; the time step embedded in 10 numbers; z; one LSTM of 256 units shared by policy and
value; heads of 32 ReLU units. Its PPO settings are the ``adv_*`` defaults of the same file
(~725-736): lr 1e-4, 5 epochs, one minibatch, gamma 0.995, GAE lambda 0.98, clip 0.2, entropy
1e-3, value coefficient 0.5, grad norm 0.5.

One call of :meth:`Adversary.design` plays one editor episode in every slot (the rollout is
exactly one episode long) and returns the levels built; :meth:`Adversary.learn` then puts each
slot's regret on its episode's last step (jaxued ~554-556), recomputes the returns and updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from heldout.agents.config import LR_SCHEDULES, LinearDecay
from heldout.agents.lstm_policy import LSTMPolicy
from heldout.agents.ppo_lstm import HeldoutRecurrentPPO
from heldout.envs.maze.editor import MazeEditorVecEnv, observation_layout
from heldout.envs.maze.level import MazeLevel
from heldout.level_samplers.base import check_positive
from heldout.level_samplers.paired import adversary_rewards


class EditorNet(BaseFeaturesExtractor):
    """The adversary's encoder of an editor observation (see the module docstring)."""

    def __init__(self, observation_space: Any, size: int, n_walls: int, z_dim: int, channels: int = 128) -> None:
        conv_out = channels * (size - 2) * (size - 2)
        super().__init__(observation_space, conv_out + 10 + z_dim)
        self.size = size
        self.layout = observation_layout(size, n_walls, z_dim)
        self.conv = nn.Conv2d(3, channels, kernel_size=3)
        self.time_embed = nn.Linear(n_walls + 3, 10, bias=False)  # an embedding table read by a one-hot

    def forward(self, observations: th.Tensor) -> th.Tensor:
        grid = observations[:, self.layout["grid"]].reshape(-1, self.size, self.size, 3).permute(0, 3, 1, 2)
        image = th.relu(self.conv(grid)).flatten(1)
        time = self.time_embed(observations[:, self.layout["time"]])
        return th.cat([image, time, observations[:, self.layout["z"]]], dim=1)


@dataclass(frozen=True)
class AdversaryConfig:
    """The adversary's settings (jaxued ``maze_paired.py`` ``adv_*`` defaults)."""

    lr: float = 1e-4
    n_epochs: int = 5
    gamma: float = 0.995
    gae_lambda: float = 0.98
    clip_range: float = 0.2
    ent_coef: float = 1e-3
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    lstm_hidden_size: int = 256
    conv_channels: int = 128
    lr_schedule: str = "linear"
    """linear: lr * (1 - k / N) at the adversary's update k of the run's N (jaxued ~464-470); or constant."""

    def __post_init__(self) -> None:
        """The settings a user gives (``--sampler.adversary_*``) are checked before torch sees them."""
        check_positive("adversary_lr", self.lr)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"adversary_lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if isinstance(self.n_epochs, bool) or not isinstance(self.n_epochs, int) or self.n_epochs < 1:
            raise ValueError(f"adversary_epochs must be a whole number >= 1, got {self.n_epochs!r}")
        if not 0 <= float(self.ent_coef) < 1:
            raise ValueError(f"adversary_entropy must be in [0, 1), got {self.ent_coef!r}")


class _CatchLevels(BaseCallback):
    """Keeps the level each slot finished during a design rollout."""

    def __init__(self, num_envs: int) -> None:
        super().__init__()
        self.levels: list[MazeLevel | None] = [None] * num_envs

    def _on_rollout_start(self) -> None:
        self.levels = [None] * len(self.levels)

    def _on_step(self) -> bool:
        for slot, info in enumerate(self.locals["infos"]):
            if "level" in info:
                self.levels[slot] = info["level"]
        return True


class Adversary:
    """The level-designing agent over the slots of a level editor (``env``: a family's
    ``level_editor``; its ``n_walls`` and ``z_dim`` are the editor's, not ``cfg``'s)."""

    def __init__(
        self, env: MazeEditorVecEnv, cfg: AdversaryConfig | None = None, *, seed: int = 0,
        device: str | th.device = "cpu", total_updates: int | None = None,
    ) -> None:  # fmt: skip
        self.cfg = cfg = cfg or AdversaryConfig()
        if cfg.lr_schedule == "linear" and not total_updates:
            raise ValueError("the adversary's linear lr schedule needs total_updates (the run's number of updates)")
        self.total_updates = total_updates
        self.env = env
        num_envs, size = env.num_envs, env.size
        steps = self.env.episode_steps
        self.model = HeldoutRecurrentPPO(
            LSTMPolicy, self.env, learning_rate=cfg.lr, n_steps=steps, batch_size=steps * num_envs,
            n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm, seed=seed, device=device,
            policy_kwargs=dict(
                features_extractor_class=EditorNet,
                features_extractor_kwargs=dict(size=size, n_walls=env.n_walls, z_dim=env.z_dim, channels=cfg.conv_channels),
                lstm_hidden_size=cfg.lstm_hidden_size, shared_lstm=True, enable_critic_lstm=False,
                net_arch=dict(pi=[32], vf=[32]), activation_fn=nn.ReLU,
            ),
        )  # fmt: skip
        if cfg.lr_schedule == "linear":
            self.model.lr_schedule = LinearDecay(cfg.lr, 1, int(total_updates))  # read at learn(): see there
        self._catch = _CatchLevels(num_envs)
        self._callback = None

    def set_logger(self, logger: Logger) -> None:
        self.model.set_logger(logger)

    def _start(self) -> None:
        if self._callback is None:
            _, self._callback = self.model._setup_learn(2**62, self._catch, reset_num_timesteps=self.model.num_timesteps == 0)

    def design(self) -> list[MazeLevel]:
        """One editor episode in every slot; the levels built, one per slot."""
        self._start()
        steps = self.env.episode_steps
        self.model.collect_rollouts(self.env, self._callback, self.model.rollout_buffer, n_rollout_steps=steps)
        missing = [slot for slot, level in enumerate(self._catch.levels) if level is None]
        if missing:
            raise RuntimeError(f"editor slots {missing} did not finish a level in one {steps}-step rollout")
        return list(self._catch.levels)  # type: ignore[arg-type]

    def learn(self, regrets: np.ndarray) -> None:
        """Reward the latest design episode of each slot with its regret and update the adversary."""
        buffer = self.model.rollout_buffer
        buffer.rewards[...] = adversary_rewards(regrets, self.env.episode_steps)
        ends = np.ones(self.env.num_envs, dtype=np.float32)  # every slot's episode ended at the last step
        last_values = th.zeros(self.env.num_envs, device=self.model.device)
        buffer.compute_returns_and_advantage(last_values=last_values, dones=ends)
        if self.total_updates:  # its own progress: update k = designs - 1 of N, as sb3 would count it
            designs = self.model.num_timesteps // (self.env.episode_steps * self.env.num_envs)
            self.model._current_progress_remaining = 1.0 - designs / self.total_updates
        self.model.train()

    def entropy(self) -> float:
        """The mean entropy (nats) of the adversary's action distribution over its latest design rollout."""
        probs = self.model.rollout_action_probabilities()
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(probs > 0, -probs * np.log(probs), 0.0)
        return float(terms.sum(axis=-1).mean())

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The network, optimiser, LSTM state, step count and the editors' state (z's RNG included)."""
        return {
            "policy": self.model.policy.state_dict(),
            "optimizer": self.model.policy.optimizer.state_dict(),
            "agent": self.model.agent_state_dict(),
            "num_timesteps": self.model.num_timesteps,
            "last_obs": np.copy(self.model._last_obs) if self.model._last_obs is not None else None,
            "editor": self.env.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.policy.load_state_dict(state["policy"])
        self.model.policy.optimizer.load_state_dict(state["optimizer"])
        self._start()
        self.model.load_agent_state_dict(state["agent"])
        self.model.num_timesteps = int(state["num_timesteps"])
        if state["last_obs"] is not None:
            self.model._last_obs = np.copy(state["last_obs"])
        self.env.set_state(state["editor"])
