"""Offline agents learning from a dataset: behavioural cloning (``bc``) and discrete CQL (``cql``).

Both use the run's network (:func:`heldout.agents.registry.policy_kwargs`: the maze network, the
IMPALA CNN, an MLP) in a stable-baselines3 ``ActorCriticPolicy``; the action head's outputs are
BC's logits and CQL's Q-values. They declare ``needs=("dataset",)`` and the trainer
(:mod:`heldout.trainer.offline`) hands them minibatches of a dataset; they are evaluated as every
agent is, through ``predict``.

The losses follow "The Generalization Gap in Offline Reinforcement Learning" (Mediratta et al.,
2024; facebookresearch/gen_dgrl, docs/fidelity.md): BC minimises the negative log-likelihood of
the dataset's actions and samples from its policy; CQL adds to a double-DQN Huber TD loss the
conservative term ``alpha * mean(logsumexp_a Q(s, a) - Q(s, a_data))`` and acts greedily.

This module avoids ``from __future__ import annotations`` so that the config's field types are
real types for the trainer's argument parser.
"""

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from torch.nn import functional as F

from heldout.agents.config import NetworkConfig, PPOConfig, _check_int, _check_number, _help


@dataclass
class OfflineConfig:
    """Settings of the offline agents (``bc``, ``cql``); defaults: gen_dgrl's final Procgen configs."""

    dataset: str = field(default="", metadata=_help("dataset directory written by `heldout collect` (offline agents)"))
    updates: int = field(default=20_000, metadata=_help("gradient updates of an offline agent"))
    batch_size: int = field(default=256, metadata=_help("transitions per minibatch"))
    lr: float = field(default=5e-4, metadata=_help("Adam learning rate of an offline agent (constant)"))
    gamma: float = field(default=0.99, metadata=_help("CQL's discount factor"))
    cql_alpha: float = field(default=4.0, metadata=_help("weight of CQL's conservative term"))
    target_update: int = field(default=1000, metadata=_help("CQL copies its Q-network to the target every N updates"))
    log_interval: int = field(default=100, metadata=_help("log the losses every N updates"))
    eval_interval: int = field(default=0, metadata=_help("evaluate every N updates (0: only before and after)"))
    checkpoint_interval: int = field(default=2000, metadata=_help("checkpoint every N updates (0: only at the end)"))

    def validate(self) -> None:
        for name in ("updates", "batch_size", "target_update", "log_interval"):
            _check_int("offline", name, getattr(self, name), low=1)
        for name in ("eval_interval", "checkpoint_interval"):
            _check_int("offline", name, getattr(self, name), low=0)
        _check_number("offline", "lr", self.lr, low=0, low_open=True)
        _check_number("offline", "gamma", self.gamma, low=0, high=1)
        _check_number("offline", "cql_alpha", self.cql_alpha, low=0)


# -- the losses, as the paper's code computes them -------------------------------------------------


def bc_loss(logits: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """Behavioural cloning: the mean negative log-likelihood of the dataset's actions."""
    return F.cross_entropy(logits, actions)


def cql_loss(
    q: th.Tensor,
    actions: th.Tensor,
    rewards: th.Tensor,
    terminals: th.Tensor,
    next_q_online: th.Tensor,
    next_q_target: th.Tensor,
    *,
    gamma: float,
    alpha: float,
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Discrete CQL on double DQN: ``(total, td, conservative)``.

    ``td`` = Huber(Q(s, a), r + gamma (1 - terminal) Q_target(s', argmax_a' Q(s', a'))), the target
    without gradient; ``conservative`` = alpha * mean(logsumexp_a Q(s, a) - Q(s, a)); total = td +
    conservative. ``q``, ``next_q_*``: (B, A); ``actions``: (B,) long; ``rewards``, ``terminals``: (B,).
    """
    chosen = q.gather(1, actions[:, None]).squeeze(1)
    with th.no_grad():
        best = next_q_online.argmax(dim=1, keepdim=True)
        target = rewards + (1.0 - terminals.float()) * gamma * next_q_target.gather(1, best).squeeze(1)
    td = F.smooth_l1_loss(chosen, target)
    conservative = alpha * th.mean(th.logsumexp(q, dim=1) - chosen)
    return td + conservative, td, conservative


# -- the agents -----------------------------------------------------------------------------------


class OfflineAgent:
    """An agent that learns from minibatches of a dataset (``update(batch)``) and acts by ``predict``."""

    needs = frozenset({"dataset"})
    greedy = False
    """Whether it always acts greedily (a Q-learner's policy is argmax Q), whatever ``deterministic`` says."""

    def __init__(
        self,
        env: Any,
        policy_kwargs: dict[str, Any],
        offline: OfflineConfig,
        *,
        seed: Optional[int],
        device: th.device,
    ) -> None:
        offline.validate()
        self.cfg, self.env, self.device = offline, env, device
        self.observation_space: gym.spaces.Space = env.observation_space
        self.action_space: gym.spaces.Space = env.action_space
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"offline agents need discrete actions, got {self.action_space}")
        if seed is not None:
            th.manual_seed(seed)
        self.policy = ActorCriticPolicy(self.observation_space, self.action_space, lambda _: offline.lr, **policy_kwargs)
        self.policy.to(device)
        self.updates = 0
        self.num_timesteps = 0
        """Environment steps taken: none, the agent learns from data."""
        self.logger: Any = None

    # -- the sb3-like surface the trainer and the evaluation use
    def set_logger(self, logger: Any) -> None:
        self.logger = logger

    def get_env(self) -> Any:
        return self.env

    def outputs(self, observations: th.Tensor) -> th.Tensor:
        """The action head's outputs (BC's logits, CQL's Q-values) for a batch of observations."""
        features = self.policy.extract_features(observations)
        if isinstance(features, tuple):
            features = features[0]
        return self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:  # fmt: skip
        if not self.greedy:
            return self.policy.predict(observation, state, episode_start, deterministic)
        self.policy.set_training_mode(False)
        with th.no_grad():
            obs, _ = self.policy.obs_to_tensor(observation)
            return self.outputs(obs).argmax(dim=1).cpu().numpy(), state

    def tensors(self, batch: dict[str, np.ndarray]) -> dict[str, th.Tensor]:
        obs, _ = self.policy.obs_to_tensor(batch["observations"])
        nxt, _ = self.policy.obs_to_tensor(batch["next_observations"])
        as_tensor = lambda x, dtype: th.as_tensor(x, dtype=dtype, device=self.device)  # noqa: E731
        return {
            "observations": obs,
            "next_observations": nxt,
            "actions": as_tensor(batch["actions"], th.long),
            "rewards": as_tensor(batch["rewards"], th.float32),
            "terminals": as_tensor(batch["terminals"], th.float32),
        }

    def loss(self, batch: dict[str, th.Tensor]) -> tuple[th.Tensor, dict[str, float]]:
        raise NotImplementedError

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step on a minibatch; returns the losses."""
        self.policy.set_training_mode(True)
        loss, stats = self.loss(self.tensors(batch))
        self.policy.optimizer.zero_grad()
        loss.backward()
        self.policy.optimizer.step()
        self.updates += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.policy.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.policy.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


class BCAgent(OfflineAgent):
    """Behavioural cloning: cross-entropy on the dataset's actions; acts by sampling (or greedily)."""

    def loss(self, batch: dict[str, th.Tensor]) -> tuple[th.Tensor, dict[str, float]]:
        loss = bc_loss(self.outputs(batch["observations"]), batch["actions"])
        return loss, {"loss": loss.item()}


class CQLAgent(OfflineAgent):
    """Discrete CQL (double DQN with the conservative term); acts greedily on its Q-values."""

    greedy = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = copy.deepcopy(self.policy)
        self.target.set_training_mode(False)

    def target_outputs(self, observations: th.Tensor) -> th.Tensor:
        features = self.target.extract_features(observations)
        if isinstance(features, tuple):
            features = features[0]
        return self.target.action_net(self.target.mlp_extractor.forward_actor(features))

    def loss(self, batch: dict[str, th.Tensor]) -> tuple[th.Tensor, dict[str, float]]:
        q = self.outputs(batch["observations"])
        with th.no_grad():
            next_online = self.outputs(batch["next_observations"])
            next_target = self.target_outputs(batch["next_observations"])
        total, td, conservative = cql_loss(
            q, batch["actions"], batch["rewards"], batch["terminals"], next_online, next_target,
            gamma=self.cfg.gamma, alpha=self.cfg.cql_alpha,
        )  # fmt: skip
        return total, {"loss": total.item(), "td_loss": td.item(), "cql_loss": conservative.item()}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        if self.updates % self.cfg.target_update == 0:  # as gen_dgrl: before the step, from update 0
            self.target.load_state_dict(self.policy.state_dict())
        return super().update(batch)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": self.target.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.target.load_state_dict(state["target"])


def _builder(cls: type) -> Any:
    def build(env: Any, *, ppo: PPOConfig, network: NetworkConfig, seed: Optional[int], device: th.device,
              tensorboard_log: Optional[str], verbose: int, offline: OfflineConfig) -> OfflineAgent:  # fmt: skip
        from heldout.agents.registry import env_family, policy_kwargs

        kwargs = policy_kwargs(network, ppo, env.observation_space, env_family(env))
        kwargs["optimizer_kwargs"] = {}  # torch Adam's own eps (1e-8), as gen_dgrl
        return cls(env, kwargs, offline, seed=seed, device=device)

    return build
