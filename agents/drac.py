"""RAD, DrAC and UCB-DrAC: PPO with data augmentation, built on :class:`HeldoutPPO`'s loss hooks.

* ``rad`` (:class:`RADPPO`): the PPO loss on augmented observations (``loss_observations``).
* ``drac`` (:class:`DrACPPO`): the PPO loss on raw observations plus
  ``alpha * (G_pi + value_coef * G_V)`` (``extra_loss``), as rraileanu/auto-drac
  ``ucb_rl2_meta/algo/drac.py`` 86-103 computes it: ``G_pi = -mean log pi(a'|aug x)`` with one
  action ``a'`` drawn from ``pi(.|x)`` per sample (``drac.policy_term: sample``; ``kl`` is the
  paper's exact ``KL(pi(.|x) || pi(.|aug x))``, whose gradient that sample estimates), and
  ``G_V = mean (V(aug x) - V(x))^2`` with ``value_coef`` 0.5 as published. The raw branch is
  detached, so the regulariser's gradient flows only through the augmented branch. The raw branch
  is the PPO loss's own forward pass: only the augmented one is extra. ``drac.fraction`` < 1
  computes the regulariser on that share of each minibatch (a uniformly random subset: the same
  expectation, more variance) to cut the extra pass's cost; 1 (the default) is as published.
* ``ucb_drac`` (:class:`UCBDrACPPO`): DrAC whose augmentation a :class:`UCBBandit` chooses
  before each update. The arm's reward (``ucb.reward``) is, as published
  (``ucb_rl2_meta/algo/ucb_drac.py`` 73-77, ``train.py`` 225-229), the mean return target (GAE
  return) over the whole rollout that follows, on the reward-normalised scale the update sees,
  every update (``returns``); ``episodes`` is the mean raw return of the episodes that end in that
  rollout (no episode ended: no reward).

Each minibatch draws a fresh augmentation from the agent's own ``torch.Generator`` (seeded
from the run's seed); acting and evaluation always see raw observations. The generator's state
and the bandit's are plain data in :meth:`agent_state_dict`, so a resumed run continues
exactly. On symbolic grids (the maze network's observations) only augmentations valid there
are accepted (see :mod:`heldout.agents.augmentations`). Robust PLR's loss mask applies to both
branches: the minibatches the hooks see hold only the unmasked samples.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.type_aliases import RolloutBufferSamples

from heldout.agents import augmentations
from heldout.agents.augment_config import AugmentConfig, DrACConfig, UCBConfig
from heldout.agents.networks import MazeNet, image_is_channels_first
from heldout.agents.ppo import HeldoutPPO, PPOLoss
from heldout.agents.registry import _make_ppo, register
from heldout.agents.ucb import UCBBandit

GENERATOR_SALT = 0xA06
"""Mixed with the run's seed so the augmentation stream differs from torch's global one."""


class AugmentingPPO(HeldoutPPO):
    """HeldoutPPO with an augmentation generator and a current augmentation (base of the three)."""

    def __init__(
        self,
        policy: Any,
        env: Any,
        *args: Any,
        augment: AugmentConfig | None = None,
        drac: DrACConfig | None = None,
        ucb: UCBConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.augment_config = augment or AugmentConfig()
        self.drac_config = drac or DrACConfig()
        self.ucb_config = ucb or UCBConfig()
        super().__init__(policy, env, *args, **kwargs)

    # -- set-up -------------------------------------------------------------------------------------
    def arms(self) -> list[str]:
        """The augmentations this agent may use (RAD and DrAC: the one configured)."""
        return [self.augment_config.name]

    def on_grids(self) -> bool:
        """Whether the observations are symbolic grids (read by the maze network), not pictures."""
        return isinstance(self.policy.features_extractor, MazeNet)

    def _setup_model(self) -> None:
        super()._setup_model()
        self._check_observations()
        seed = self.seed if self.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
        entropy = np.random.SeedSequence([seed, GENERATOR_SALT]).generate_state(2, np.uint32)
        self.augment_generator = th.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
        self.augmentation = self.arms()[0]

    def _check_observations(self) -> None:
        space = self.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3 or image_is_channels_first(space):
            raise ValueError(
                f"augmenting agents need image or grid observations in (H, W, C) layout, got {space}; use agent ppo"
            )
        arms = self.arms()
        if self.on_grids():
            augmentations.check_on_grids(arms)
        probe = th.zeros((2, *space.shape), dtype=th.uint8)
        for name in arms:  # fails now, with the augmentation's own message, not in the first update
            settings = self.augment_config.settings(name)
            try:
                augmentations.get(name)(probe, th.Generator().manual_seed(0), **settings)
            except (TypeError, ValueError) as err:
                raise ValueError(f"augmentation {name!r} cannot run on observations {space.shape}: {err}") from None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "augment_generator"]

    # -- augmenting ---------------------------------------------------------------------------------
    def augment(self, observations: th.Tensor) -> th.Tensor:
        """A fresh draw of the current augmentation over a batch of observations."""
        fn = augmentations.get(self.augmentation)
        return fn(observations, self.augment_generator, **self.augment_config.settings(self.augmentation))

    # -- checkpoints --------------------------------------------------------------------------------
    def agent_state_dict(self) -> dict[str, Any]:
        return {"augment_generator": self.augment_generator.get_state()}

    def load_agent_state_dict(self, state: dict[str, Any]) -> None:
        if "augment_generator" in state:
            self.augment_generator.set_state(th.as_tensor(state["augment_generator"], dtype=th.uint8))


class RADPPO(AugmentingPPO):
    """RAD: the PPO loss on augmented observations."""

    def loss_observations(self, batch: RolloutBufferSamples) -> th.Tensor:
        return self.augment(batch.observations)


def _detached(distribution: Distribution, count: int | None = None) -> th.distributions.Distribution:
    """The torch distribution behind an sb3 one for its first ``count`` samples (all: None), cut from
    the graph (categorical or diagonal normal)."""
    inner = distribution.distribution
    if isinstance(inner, th.distributions.Categorical):
        return th.distributions.Categorical(logits=inner.logits[:count].detach())
    if isinstance(inner, th.distributions.Normal):
        return th.distributions.Normal(inner.loc[:count].detach(), inner.scale[:count].detach())
    raise TypeError(f"DrAC's KL term supports discrete and Box actions, not {type(distribution).__name__}")


def policy_kl(raw: Distribution, augmented: Distribution) -> th.Tensor:
    """Per sample KL(raw || augmented), the raw side detached (its first samples, as many as
    ``augmented`` has); summed over action dimensions."""
    aug = augmented.distribution
    count = (aug.logits if isinstance(aug, th.distributions.Categorical) else aug.loc).shape[0]
    kl = th.distributions.kl_divergence(_detached(raw, count), aug)
    return kl.sum(-1) if kl.dim() > 1 else kl


def sample_actions(distribution: Distribution, count: int, generator: th.Generator) -> th.Tensor:
    """One action per sample from the first ``count`` samples of ``distribution`` (no gradient),
    drawn from ``generator`` on its own device (the same draw on CPU and CUDA): categorical by the
    inverse CDF of one uniform, diagonal normal as ``loc + scale * noise``."""
    inner = _detached(distribution, count)
    if isinstance(inner, th.distributions.Categorical):
        probs = inner.probs
        u = th.rand(count, generator=generator, device=generator.device).to(probs.device)
        below = (probs.cumsum(-1) < u[:, None]).sum(-1)
        return below.clamp(max=probs.shape[-1] - 1)
    noise = th.randn(tuple(inner.loc.shape), generator=generator, device=generator.device).to(inner.loc.device)
    return inner.loc + inner.scale * noise


class DrACPPO(AugmentingPPO):
    """DrAC: PPO on raw observations plus alpha * (G_pi + value_coef * G_V) on one augmented copy
    per minibatch (see the module doc)."""

    def extra_loss(self, batch: RolloutBufferSamples, loss: PPOLoss) -> dict[str, th.Tensor]:
        # The minibatch is a uniformly random slice of the rollout, so its first `count` samples are a
        # uniformly random subset: the regulariser's estimate keeps its expectation (drac.fraction).
        settings = self.drac_config
        count = max(1, round(settings.fraction * len(batch.observations)))
        augmented = self.augment(batch.observations[:count])
        if settings.policy_term == "sample":  # auto-drac drac.py 89-95: a' ~ pi(.|x), then -log pi(a'|aug x)
            actions = sample_actions(loss.distribution, count, self.augment_generator)
        else:
            actions = batch.actions[:count]
            if isinstance(self.action_space, gym.spaces.Discrete):
                actions = actions.long().flatten()
        values_aug, log_prob_aug, _, dist_aug, _ = self.evaluate(augmented, actions)
        if settings.policy_term == "sample":
            g_pi = -log_prob_aug.mean()
        else:
            g_pi = policy_kl(loss.distribution, dist_aug).mean()
        g_v = (values_aug.flatten() - loss.values[:count].detach()).pow(2).mean()
        return {"drac_policy": settings.alpha * g_pi, "drac_value": settings.alpha * settings.value_coef * g_v}


class UCBDrACPPO(DrACPPO):
    """UCB-DrAC: DrAC with the augmentation chosen by a sliding-window UCB bandit before each update.

    TensorBoard: ``ucb/chosen`` (the arm's index in :meth:`arms`), ``ucb/q/<name>`` and
    ``ucb/count/<name>`` (pulls) per arm, ``ucb/reward`` (the reward just given, when one was),
    recorded at each update.
    """

    def arms(self) -> list[str]:
        if self.ucb_config.augmentations:
            return list(self.ucb_config.augmentations)
        if self.on_grids():
            return augmentations.valid_on_grids()
        return list(augmentations.PUBLISHED)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.bandit = UCBBandit(len(self.arms()), self.ucb_config.c, self.ucb_config.window)
        self.pending_arm: int | None = None
        self.rollout_returns: list[float] = []

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        super()._update_info_buffer(infos, dones)
        if self.ucb_config.reward != "episodes":
            return
        for info in infos:
            episode = info.get("episode")
            if episode is not None:
                self.rollout_returns.append(float(episode["r"]))

    def rollout_reward(self) -> float | None:
        """The reward of the arm that chose the last update, from the rollout just collected:
        ``returns``, the mean return target of the rollout buffer (GAE returns of the rewards the
        update sees, normalised when ``ppo.normalize_reward``); ``episodes``, the mean raw return of
        the episodes that ended in it (None: none did)."""
        if self.ucb_config.reward == "returns":
            return float(np.mean(self.rollout_buffer.returns))
        return float(np.mean(self.rollout_returns)) if self.rollout_returns else None

    def train(self) -> None:
        reward = self.rollout_reward()
        if self.pending_arm is not None and reward is not None:
            self.bandit.reward(self.pending_arm, reward)
            self.logger.record("ucb/reward", reward)
        self.rollout_returns = []
        self.pending_arm = self.bandit.choose()
        arms = self.arms()
        self.augmentation = arms[self.pending_arm]
        self.logger.record("ucb/chosen", self.pending_arm)
        for name, q, pulls in zip(arms, self.bandit.q_values(), self.bandit.pulls):
            self.logger.record(f"ucb/q/{name}", q)
            self.logger.record(f"ucb/count/{name}", pulls)
        super().train()

    def agent_state_dict(self) -> dict[str, Any]:
        return {
            **super().agent_state_dict(),
            "bandit": self.bandit.state_dict(),
            "pending_arm": self.pending_arm,
            "rollout_returns": list(self.rollout_returns),
        }

    def load_agent_state_dict(self, state: dict[str, Any]) -> None:
        super().load_agent_state_dict(state)
        if "bandit" in state:
            self.bandit.load_state_dict(state["bandit"])
            self.pending_arm = state["pending_arm"]
            self.rollout_returns = [float(r) for r in state["rollout_returns"]]
            if self.pending_arm is not None:
                self.augmentation = self.arms()[self.pending_arm]


def _builder(cls: type[AugmentingPPO]):
    def build(env: Any, *, augment: AugmentConfig | None = None, drac: DrACConfig | None = None,
              ucb: UCBConfig | None = None, **common: Any) -> HeldoutPPO:
        return _make_ppo(env, cls=cls, augment=augment, drac=drac, ucb=ucb, **common)

    build.__doc__ = f"Build {cls.__name__} (see heldout.agents.drac)."
    return build


register("rad", _builder(RADPPO), sections=("augment",))
register("drac", _builder(DrACPPO), sections=("augment", "drac"))
register("ucb_drac", _builder(UCBDrACPPO), sections=("augment", "drac", "ucb"))
