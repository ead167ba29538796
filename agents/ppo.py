"""heldout's PPO: stable-baselines3 PPO with a loss mask, hookable losses and HWC image inputs.

``HeldoutPPO.train`` runs sb3's PPO update (same minibatch order, same TensorBoard scalars) in
overridable pieces, with one of two loss forms (``value_loss`` and ``advantage_scope``, from
``ppo.value_loss`` / ``ppo.advantage_scope``):

* ``published`` / ``rollout`` (the default): the PPO of the PLR and (UCB-)DrAC code
  (rraileanu/auto-drac ``ucb_rl2_meta/algo/drac.py`` 46-48, 78-84, after baselines' ppo2): value
  loss ``0.5 * mean(max((R - V)^2, (R - V_clip)^2))``, ``V_clip = V_old + clip(V - V_old, -eps_vf,
  eps_vf)``; advantages normalised once over the whole rollout (``(A - mean) / (std + 1e-5)``);
* ``sb3`` / ``minibatch``: exactly stable-baselines3's PPO: ``mean((R - V_clip)^2)`` (``V`` itself
  when ``clip_range_vf`` is none), advantages normalised per minibatch (``std + 1e-8``).

Both are multiplied by ``vf_coef``. The pieces:

* :meth:`HeldoutPPO.minibatches` yields the minibatches of one epoch, without masked samples;
* :meth:`HeldoutPPO.loss_observations` gives the observations the loss sees (RAD augments here);
* :meth:`HeldoutPPO.evaluate` runs the policy once: values, log-probs, entropy, distribution, features;
* :meth:`HeldoutPPO.compute_loss` runs that forward pass and hands its outputs to
  :meth:`HeldoutUpdate.ppo_loss`, the one function that computes the PPO loss terms (clipped
  surrogate, value loss, entropy, approx. KL) for every agent (``ppo_lstm`` too) as a :class:`PPOLoss`;
* :meth:`HeldoutPPO.extra_loss` adds named terms to the loss (DrAC's regularisers go here: the
  :class:`PPOLoss` it receives carries the raw-frame distribution and values, so only the
  augmented branch needs a new forward pass);
* :meth:`HeldoutPPO.optimize` takes one gradient step.

The update loop, the loss mask, these hooks and the logging live in :class:`HeldoutUpdate`, a
mixin that ``HeldoutPPO`` and the recurrent agent both inherit.

Loss mask (Robust PLR trains on no experience from newly tried levels): call
:meth:`HeldoutPPO.set_loss_mask` with an (n_steps, n_envs) array of 0/1 between a rollout and
the update. Masked samples are dropped from each minibatch before the forward pass, so every
minibatch mean (policy, value and entropy losses, approx. KL, clip fraction) and the advantage
normalisation run over its unmasked samples only, and masked samples contribute exactly zero
gradient. A minibatch with no unmasked sample takes no optimiser step. The mask is consumed by
the next ``train()`` and then cleared.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import GymEnv, RolloutBufferSamples
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.patch_gym import _patch_env
from stable_baselines3.common.vec_env.util import check_for_nested_spaces
from torch.nn import functional as F

from heldout.agents.config import ADVANTAGE_SCOPES, VALUE_LOSSES
from heldout.agents.networks import use_channels_last

ROLLOUT_ADVANTAGE_EPS = 1e-5
"""The published code's epsilon in the rollout-wide advantage normalisation (drac.py 47-48)."""


class MaskedRolloutBuffer(RolloutBuffer):
    """sb3's ``RolloutBuffer`` whose minibatches can leave out masked samples.

    ``keep`` (set by :meth:`set_keep`, cleared by ``reset``) selects the samples that enter
    the loss. Minibatches are drawn exactly as sb3 draws them (one permutation of the whole
    buffer, cut into ``batch_size`` pieces); masked samples are then dropped from each piece,
    and a piece with none left is yielded as ``None``.
    """

    keep: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self.keep = None

    def set_keep(self, mask: np.ndarray | None) -> None:
        """``mask`` (buffer_size, n_envs) of 0/1, or None to keep every sample."""
        if mask is None:
            self.keep = None
            return
        # The same (step, env) -> flat index order as the buffer's own arrays.
        self.keep = self.swap_and_flatten(np.asarray(mask)).reshape(-1).astype(bool)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> RolloutBufferSamples | None:  # type: ignore[override]
        if self.keep is not None:
            batch_inds = batch_inds[self.keep[batch_inds]]
            if batch_inds.size == 0:
                return None
        return super()._get_samples(batch_inds, env)


@dataclass
class PPOLoss:
    """One minibatch's loss and its parts (tensors keep their graph; floats are for logging)."""

    total: th.Tensor
    policy_loss: th.Tensor
    value_loss: th.Tensor
    entropy_loss: th.Tensor
    values: th.Tensor
    log_prob: th.Tensor
    entropy: th.Tensor | None
    distribution: Distribution
    """The policy on the loss observations (DrAC's KL term needs all action probabilities)."""
    features: Any
    """The feature extractor's output on the loss observations (a pair if not shared)."""
    approx_kl: float
    clip_fraction: float
    extra: dict[str, float] = field(default_factory=dict)


class HeldoutUpdate:
    """The update every heldout agent shares (a mixin before sb3's algorithm class): the loss
    mask, the update loop (:meth:`train`), :meth:`ppo_loss`, the loss hooks, the logged scalars
    and the (H, W, C) env wrapping. An agent adds its forward pass (``compute_loss``, which ends in
    :meth:`ppo_loss`) and its minibatches (``minibatches``)."""

    _loss_mask: np.ndarray | None = None
    value_loss_form: str = "published"
    advantage_scope: str = "rollout"
    _advantage_stats: tuple[float, float] | None = None
    """(mean, scale) of the rollout's advantages for the update in progress (advantage_scope rollout)."""

    def _set_loss_form(self, value_loss: str, advantage_scope: str) -> None:
        """Choose the value loss (published | sb3) and where advantages are normalised (rollout | minibatch)."""
        if value_loss not in VALUE_LOSSES:
            raise ValueError(f"value_loss must be one of {' | '.join(VALUE_LOSSES)}, got {value_loss!r}")
        if advantage_scope not in ADVANTAGE_SCOPES:
            raise ValueError(f"advantage_scope must be one of {' | '.join(ADVANTAGE_SCOPES)}, got {advantage_scope!r}")
        self.value_loss_form = value_loss
        self.advantage_scope = advantage_scope

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """Vectorise as sb3 does, but leave image observations in their (H, W, C) layout."""
        if not isinstance(env, VecEnv):
            env = _patch_env(env)
            if monitor_wrapper and not is_wrapped(env, Monitor):
                env = Monitor(env)
            env = DummyVecEnv([lambda: env])  # type: ignore[list-item, return-value]
        check_for_nested_spaces(env.observation_space)
        return env

    def _excluded_save_params(self) -> list[str]:
        # A pending mask belongs to the rollout buffer, which sb3 does not save either.
        return [*super()._excluded_save_params(), "_loss_mask", "_advantage_stats"]

    def agent_state_dict(self) -> dict[str, Any]:
        """State a subclass keeps beyond the policy and optimiser (plain data, for checkpoints)."""
        return {}

    def load_agent_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`agent_state_dict` returned (called after the policy and optimiser)."""

    def set_loss_mask(self, mask: np.ndarray | None) -> None:
        """Mask samples of the current rollout out of the next update (1 = learn, 0 = no gradient).

        ``mask`` has shape (n_steps, n_envs), the rollout buffer's (step, env) layout, with
        values 0/1 (or booleans). None removes a pending mask. Consumed by the next ``train()``.
        """
        if mask is None:
            self._loss_mask = None
            return
        if not isinstance(self.rollout_buffer, MaskedRolloutBuffer):
            raise TypeError(
                f"set_loss_mask needs a MaskedRolloutBuffer, but this model uses {type(self.rollout_buffer).__name__}; "
                "leave rollout_buffer_class unset"
            )
        arr = np.asarray(mask)
        expected = (self.n_steps, self.n_envs)
        if arr.shape != expected:
            raise ValueError(
                f"loss mask must have shape (n_steps, n_envs) = {expected}, got {arr.shape}"
            )
        if arr.dtype != np.bool_:
            if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
                raise ValueError("loss mask values must be 0 (no gradient) or 1 (learn), or booleans")
        self._loss_mask = arr.astype(bool)

    @property
    def pending_loss_mask(self) -> np.ndarray | None:
        """The mask the next ``train()`` will use (a boolean copy), or None."""
        return None if self._loss_mask is None else self._loss_mask.copy()

    def loss_observations(self, batch: RolloutBufferSamples) -> th.Tensor:
        """The observations the PPO loss is computed on (RAD returns augmented ones)."""
        return batch.observations

    def ppo_loss(
        self,
        batch: Any,
        values: th.Tensor,
        log_prob: th.Tensor,
        entropy: th.Tensor | None,
        distribution: Distribution,
        features: Any,
        *,
        old_log_prob: th.Tensor,
        old_values: th.Tensor,
        advantages: th.Tensor,
        returns: th.Tensor,
        clip_range: float,
        clip_range_vf: float | None,
    ) -> PPOLoss:
        """The PPO loss terms from one forward pass's outputs (the steps in the loss only): the
        clipped surrogate, the (optionally clipped) value loss, the entropy bonus, approx. KL and
        clip fraction, plus the :meth:`extra_loss` terms. Every agent's ``compute_loss`` ends here."""
        if self.normalize_advantage:
            if self.advantage_scope == "rollout":
                if self._advantage_stats is None:  # called outside train(): the whole rollout's statistics
                    self._advantage_stats = self.rollout_advantage_stats(None)
                mean, scale = self._advantage_stats
                advantages = (advantages - mean) / scale
            elif len(advantages) > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        log_ratio = log_prob - old_log_prob
        ratio = th.exp(log_ratio)
        surrogate = th.min(advantages * ratio, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range))
        policy_loss = -surrogate.mean()

        value_loss = self.value_loss(values, old_values, returns, clip_range_vf)

        entropy_loss = th.mean(log_prob) if entropy is None else -th.mean(entropy)
        total = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        with th.no_grad():
            clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
            approx_kl = th.mean((ratio - 1) - log_ratio).item()

        loss = PPOLoss(
            total=total,
            policy_loss=policy_loss,
            value_loss=value_loss,
            entropy_loss=entropy_loss,
            values=values,
            log_prob=log_prob,
            entropy=entropy,
            distribution=distribution,
            features=features,
            approx_kl=approx_kl,
            clip_fraction=clip_fraction,
        )
        for name, term in self.extra_loss(batch, loss).items():
            loss.total = loss.total + term
            loss.extra[name] = term.item()
        return loss

    def value_loss(
        self, values: th.Tensor, old_values: th.Tensor, returns: th.Tensor, clip_range_vf: float | None
    ) -> th.Tensor:
        """The value loss (before ``vf_coef``) in the form ``value_loss_form`` names (see the module doc)."""
        if clip_range_vf is None:
            clipped = values
        else:
            clipped = old_values + th.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        if self.value_loss_form == "sb3":
            return F.mse_loss(returns, clipped)
        return 0.5 * th.max((returns - values).pow(2), (returns - clipped).pow(2)).mean()

    def rollout_advantage_stats(self, mask: np.ndarray | None) -> tuple[float, float]:
        """``(mean, std + 1e-5)`` of the rollout's advantages over the samples in the loss (the
        unbiased std, as torch's), for ``advantage_scope: rollout``; ``(0, 1)`` (no change) when
        fewer than two samples are in it."""
        buf = self.rollout_buffer
        advantages = np.asarray(buf.advantages, dtype=np.float64)
        if mask is not None:
            keep = np.asarray(mask, dtype=bool)
            if getattr(buf, "generator_ready", False):  # minibatches were drawn: the arrays are flattened
                keep = buf.swap_and_flatten(keep)
            advantages = advantages.reshape(keep.shape)[keep]
        if advantages.size < 2:
            return 0.0, 1.0
        return float(advantages.mean()), float(advantages.std(ddof=1)) + ROLLOUT_ADVANTAGE_EPS

    def extra_loss(self, batch: RolloutBufferSamples, loss: PPOLoss) -> dict[str, th.Tensor]:
        """Named terms added to the loss (already weighted); each is logged as ``train/<name>``."""
        return {}

    def optimize(self, loss: th.Tensor) -> None:
        """One gradient step with sb3's global-norm clipping."""
        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()

    def train(self) -> None:
        """Update the policy on the rollout buffer (sb3's PPO update, honouring the loss mask)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = float(self.clip_range_vf(self._current_progress_remaining))  # type: ignore[operator]

        mask, self._loss_mask = self._loss_mask, None
        self._advantage_stats = None
        if self.normalize_advantage and self.advantage_scope == "rollout":
            self._advantage_stats = self.rollout_advantage_stats(mask)
        self.rollout_buffer.set_keep(mask)
        masked_fraction = 0.0 if mask is None else 1.0 - float(mask.mean())

        pg_losses: list[float] = []
        value_losses: list[float] = []
        entropy_losses: list[float] = []
        clip_fractions: list[float] = []
        approx_kls: list[float] = []
        extras: dict[str, list[float]] = {}
        last_loss: float | None = None
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kls = []  # sb3 logs the last epoch's mean
            for batch in self.minibatches():
                if batch is None:  # every sample of this minibatch is masked: no step
                    continue
                loss = self.compute_loss(batch, clip_range, clip_range_vf)
                pg_losses.append(loss.policy_loss.item())
                value_losses.append(loss.value_loss.item())
                entropy_losses.append(loss.entropy_loss.item())
                clip_fractions.append(loss.clip_fraction)
                approx_kls.append(loss.approx_kl)
                for name, value in loss.extra.items():
                    extras.setdefault(name, []).append(value)
                last_loss = loss.total.item()

                if self.target_kl is not None and loss.approx_kl > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {loss.approx_kl:.2f}")
                    break
                self.optimize(loss.total)
            self._n_updates += 1
            if not continue_training:
                break
        self.rollout_buffer.set_keep(None)
        self._advantage_stats = None
        self._log_update(pg_losses, value_losses, entropy_losses, clip_fractions, approx_kls, extras,
                         last_loss, clip_range, clip_range_vf, masked_fraction)

    def _log_update(
        self,
        pg_losses: list[float],
        value_losses: list[float],
        entropy_losses: list[float],
        clip_fractions: list[float],
        approx_kls: list[float],
        extras: dict[str, list[float]],
        last_loss: float | None,
        clip_range: float,
        clip_range_vf: float | None,
        masked_fraction: float,
    ) -> None:
        """Record sb3's ``train/*`` scalars (and ``train/masked_fraction``, ``train/<extra>``)."""
        record = self.logger.record
        if pg_losses:  # nothing to report when every sample was masked
            record("train/entropy_loss", float(np.mean(entropy_losses)))
            record("train/policy_gradient_loss", float(np.mean(pg_losses)))
            record("train/value_loss", float(np.mean(value_losses)))
            record("train/approx_kl", float(np.mean(approx_kls)) if approx_kls else float("nan"))
            record("train/clip_fraction", float(np.mean(clip_fractions)))
            record("train/loss", float(last_loss))
            for name, values in extras.items():
                record(f"train/{name}", float(np.mean(values)))
        buf = self.rollout_buffer
        record("train/explained_variance", float(explained_variance(buf.values.flatten(), buf.returns.flatten())))
        if hasattr(self.policy, "log_std"):
            record("train/std", th.exp(self.policy.log_std).mean().item())
        record("train/n_updates", self._n_updates, exclude="tensorboard")
        record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            record("train/clip_range_vf", clip_range_vf)
        record("train/masked_fraction", masked_fraction)


class HeldoutPPO(HeldoutUpdate, PPO):
    """stable-baselines3 PPO with a loss mask and overridable loss pieces (see the module doc).

    With ``value_loss="sb3", advantage_scope="minibatch"`` it learns exactly as
    ``stable_baselines3.PPO``; the defaults are the published loss form (see the module doc).
    Other differences from ``stable_baselines3.PPO``, all behaviour-preserving for the losses: image observations are not wrapped in ``VecTransposeImage`` (networks read (H, W, C)
    directly), a feature extractor with ``channels_last = True`` runs in
    ``torch.channels_last``, and the default rollout buffer is :class:`MaskedRolloutBuffer`.
    """

    rollout_buffer: MaskedRolloutBuffer

    def __init__(
        self,
        policy: Any,
        env: GymEnv | str | None,
        *args: Any,
        value_loss: str = "published",
        advantage_scope: str = "rollout",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("rollout_buffer_class") is None:
            kwargs["rollout_buffer_class"] = MaskedRolloutBuffer
        self._loss_mask: np.ndarray | None = None
        self._set_loss_form(value_loss, advantage_scope)
        super().__init__(policy, env, *args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if getattr(self.policy.features_extractor, "channels_last", False):
            use_channels_last(self.policy)

    def minibatches(self) -> Iterator[RolloutBufferSamples | None]:
        """One epoch's minibatches (sb3's order), masked samples removed; None for an empty one."""
        yield from self.rollout_buffer.get(self.batch_size)

    def evaluate(
        self, observations: th.Tensor, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None, Distribution, Any]:
        """Values, log-probabilities, entropy, the action distribution and the shared features.

        The same computation as sb3's ``ActorCriticPolicy.evaluate_actions``, keeping the
        distribution and features so that loss hooks need no second forward pass.
        """
        policy = self.policy
        features = policy.extract_features(observations)
        if policy.share_features_extractor:
            latent_pi, latent_vf = policy.mlp_extractor(features)
        else:  # features is a (policy, value) pair
            latent_pi = policy.mlp_extractor.forward_actor(features[0])
            latent_vf = policy.mlp_extractor.forward_critic(features[1])
        # sb3 reuses one Distribution object per policy: copy it, so that a later forward pass (DrAC's
        # augmented branch) does not overwrite the distribution a PPOLoss holds.
        distribution = copy.copy(policy._get_action_dist_from_latent(latent_pi))
        log_prob = distribution.log_prob(actions)
        values = policy.value_net(latent_vf)
        return values, log_prob, distribution.entropy(), distribution, features

    def compute_loss(self, batch: RolloutBufferSamples, clip_range: float, clip_range_vf: float | None) -> PPOLoss:
        """The PPO loss on one minibatch (one forward pass, then :meth:`ppo_loss`)."""
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy, distribution, features = self.evaluate(self.loss_observations(batch), actions)
        values = values.flatten()

        return self.ppo_loss(
            batch, values, log_prob, entropy, distribution, features, old_log_prob=batch.old_log_prob,
            old_values=batch.old_values, advantages=batch.advantages, returns=batch.returns,
            clip_range=clip_range, clip_range_vf=clip_range_vf,
        )  # fmt: skip
