"""``ppo_lstm``: sb3-contrib's ``RecurrentPPO`` with heldout's loss mask, update loop and logging.

:class:`HeldoutRecurrentPPO` collects rollouts exactly as sb3-contrib's ``RecurrentPPO`` does
(the LSTM state carried from step to step and zeroed where an episode starts) and updates with
heldout's update loop, loss mask and TensorBoard scalars, inherited from
:class:`~heldout.agents.ppo.HeldoutUpdate` as :class:`~heldout.agents.HeldoutPPO` inherits them.
They call the loss hooks, which this class implements for LSTM sequences:

* the rollout buffer cuts the rollout into sequences as sb3-contrib does; the loss mask of
  :meth:`set_loss_mask` (Robust PLR: no gradient from new levels' episodes) zeroes masked steps
  in the per-step loss mask sb3-contrib already uses for padding, so sequences stay whole (the
  LSTM still reads every step) while masked steps enter no loss term, no advantage
  normalisation and no logged mean; a minibatch without an unmasked step takes no optimiser step;
* :meth:`compute_loss` runs the sequences through the network, keeps the steps in the loss and
  hands them to the one PPO loss function (``HeldoutUpdate.ppo_loss``; sb3-contrib's formulas,
  which are PPO's), so that ``extra_loss`` hooks work as for PPO.

The LSTM state between rollouts is part of the agent's state: :meth:`agent_state_dict` and
:meth:`load_agent_state_dict` carry it through checkpoints, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples, RNNStates
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from heldout.agents.config import NetworkConfig, PPOConfig
from heldout.agents.hyperbolic import HyperbolicLSTMPolicy
from heldout.agents.lstm_policy import LSTMPolicy, MazeDirectionNet
from heldout.agents.networks import MazeNet, use_channels_last
from heldout.agents.ppo import HeldoutUpdate, MaskedRolloutBuffer, PPOLoss
from heldout.agents.registry import env_family, policy_class, policy_kwargs, register


class MaskedRecurrentRolloutBuffer(RecurrentRolloutBuffer, MaskedRolloutBuffer):
    """sb3-contrib's recurrent buffer with :meth:`MaskedRolloutBuffer.set_keep`'s loss mask:
    :meth:`HeldoutRecurrentPPO.minibatches` multiplies ``keep`` into each sequence's per-step
    loss ``mask`` (masked steps stay in the sequence; they enter no loss term)."""


class _RolloutEndLocals:
    """Passes a rollout's callback calls on; before ``on_rollout_end`` it gives the callback the
    bootstrap ``values`` of the observation after the last step, as sb3's PPO does (sb3-contrib
    leaves the last step's values there; per-episode scores need the bootstrap)."""

    def __init__(self, callback: Any, model: "HeldoutRecurrentPPO") -> None:
        self.callback = callback
        self.model = model

    def on_rollout_start(self) -> None:
        self.callback.on_rollout_start()

    def update_locals(self, locals_: dict[str, Any]) -> None:
        self.callback.update_locals(locals_)

    def on_step(self) -> bool:
        return self.callback.on_step()

    def on_rollout_end(self) -> None:
        self.callback.update_locals({"values": self.model.bootstrap_values()})
        self.callback.on_rollout_end()


class HeldoutRecurrentPPO(HeldoutUpdate, RecurrentPPO):
    """sb3-contrib ``RecurrentPPO`` with HeldoutPPO's loss mask, update loop and logging.

    Like :class:`~heldout.agents.HeldoutPPO`, image observations keep their (H, W, C) layout
    and an extractor with ``channels_last = True`` runs in ``torch.channels_last``.
    """

    rollout_buffer: MaskedRecurrentRolloutBuffer

    def __init__(
        self, policy: Any, env: Any, *args: Any, value_loss: str = "published", advantage_scope: str = "rollout",
        **kwargs: Any,
    ) -> None:  # fmt: skip
        self._loss_mask: np.ndarray | None = None
        self._set_loss_form(value_loss, advantage_scope)
        super().__init__(policy, env, *args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        buffer = self.rollout_buffer
        self.rollout_buffer = MaskedRecurrentRolloutBuffer(
            buffer.buffer_size,
            self.observation_space,
            self.action_space,
            buffer.hidden_state_shape,
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )
        if getattr(self.policy.features_extractor, "channels_last", False):
            use_channels_last(self.policy)

        rows, left = divmod(self.batch_size, self.n_steps)
        if left or self.n_envs % max(rows, 1):
            raise ValueError(
                f"ppo_lstm updates on whole environment rows: env.num_envs ({self.n_envs}) must be a multiple "
                f"of ppo.n_minibatches ({self.n_envs * self.n_steps // self.batch_size}); change one of them"
            )

    # -- rollouts -------------------------------------------------------------------------------
    def collect_rollouts(self, env: VecEnv, callback: Any, rollout_buffer: Any, n_rollout_steps: int) -> bool:
        """sb3-contrib's rollout; at its end the callback's ``values`` are the bootstrap values."""
        return super().collect_rollouts(env, _RolloutEndLocals(callback, self), rollout_buffer, n_rollout_steps)

    def bootstrap_values(self) -> th.Tensor:
        """V of the latest observation under the latest LSTM state (what GAE bootstraps from)."""
        with th.no_grad():
            starts = th.tensor(self._last_episode_starts, dtype=th.float32, device=self.device)
            obs = obs_as_tensor(self._last_obs, self.device)
            return self.policy.predict_values(obs, self._last_lstm_states.vf, starts)

    def rollout_action_probabilities(self, batch_size: int = 2048) -> np.ndarray:
        """pi(a | s_t, h_t) for every step of the filled rollout buffer: (n_steps, n_envs, actions).

        Each step is evaluated from the LSTM state the rollout stored for it (zeroed at episode
        starts), in batches of ``batch_size`` steps: the policy the rollout acted with.
        """
        buf = self.rollout_buffer
        if buf.generator_ready:
            raise RuntimeError("the rollout buffer was already reshaped for an update; call this at rollout end")
        T, E = buf.buffer_size, buf.n_envs
        obs = buf.observations.reshape(T * E, *buf.obs_shape)
        # (T, layers, E, H) -> (layers, T * E, H): step-major like the observations
        h = buf.hidden_states_pi.transpose(1, 0, 2, 3).reshape(buf.hidden_states_pi.shape[1], T * E, -1)
        c = buf.cell_states_pi.transpose(1, 0, 2, 3).reshape(h.shape)
        starts = buf.episode_starts.reshape(T * E)
        chunks = []
        with th.no_grad():
            for i in range(0, T * E, batch_size):
                j = i + batch_size
                states = (buf.to_torch(h[:, i:j]).contiguous(), buf.to_torch(c[:, i:j]).contiguous())
                dist, _ = self.policy.get_distribution(
                    obs_as_tensor(obs[i:j], self.device), states, buf.to_torch(starts[i:j])
                )
                chunks.append(dist.distribution.probs.cpu().numpy())
        return np.concatenate(chunks).reshape(T, E, -1)

    # -- the update (HeldoutUpdate.train draws minibatches here and calls compute_loss) ---------
    def minibatches(self) -> Iterator[RecurrentRolloutBufferSamples | None]:
        """One epoch's minibatches: groups of whole environment rows, in a random order.

        Each row of the rollout is one sequence of ``n_steps`` steps that starts from the LSTM
        state stored at its first step and resets wherever an episode starts, so nothing is
        padded (sb3-contrib cuts rows at episode starts and pads every piece to the longest: on
        mazes most of its batch is padding, through the CNN too). A group whose steps are all
        masked is yielded as ``None``. The loss is the same; only the minibatch grouping differs.
        """
        buf = self.rollout_buffer
        T, E = buf.buffer_size, buf.n_envs
        keep = None if buf.keep is None else buf.keep.reshape(E, T)  # set_keep's env-major order
        rows = self.batch_size // T
        order = np.random.permutation(E)
        for start in range(0, E, rows):
            group = order[start:start + rows]
            if keep is not None and not keep[group].any():
                yield None
                continue
            yield self._row_samples(group, None if keep is None else keep[group])

    def _row_samples(self, group: np.ndarray, keep: np.ndarray | None) -> RecurrentRolloutBufferSamples:
        """Rows ``group`` of the (step, env) buffer, row-major (each row one sequence)."""
        buf = self.rollout_buffer
        n, T = len(group), buf.buffer_size

        def rows(arr: np.ndarray) -> th.Tensor:  # (T, E, ...) -> (n * T, ...)
            part = arr[:, group].swapaxes(0, 1)
            return buf.to_torch(part.reshape(n * T, *part.shape[2:]))

        def first_state(arr: np.ndarray) -> th.Tensor:  # (T, layers, E, H) -> (layers, n, H)
            return buf.to_torch(arr[0][:, group]).contiguous()

        mask = np.ones((n, T), np.float32) if keep is None else keep.astype(np.float32)
        return RecurrentRolloutBufferSamples(
            observations=rows(buf.observations),
            actions=rows(buf.actions),
            old_values=rows(buf.values).flatten(),
            old_log_prob=rows(buf.log_probs).flatten(),
            advantages=rows(buf.advantages).flatten(),
            returns=rows(buf.returns).flatten(),
            lstm_states=RNNStates(
                (first_state(buf.hidden_states_pi), first_state(buf.cell_states_pi)),
                (first_state(buf.hidden_states_vf), first_state(buf.cell_states_vf)),
            ),
            episode_starts=rows(buf.episode_starts).flatten(),
            mask=buf.to_torch(mask.reshape(-1)),
        )

    # -- the loss (HeldoutUpdate.train calls it per minibatch; it ends in ppo_loss) -------------
    def compute_loss(
        self, batch: RecurrentRolloutBufferSamples, clip_range: float, clip_range_vf: float | None
    ) -> PPOLoss:
        """sb3-contrib's recurrent PPO loss on one minibatch of sequences, over its unmasked steps.

        The whole padded sequences run through the network; ``values``, ``log_prob`` and
        ``entropy`` of the returned :class:`PPOLoss` hold the steps in the loss, its
        ``distribution`` and ``features`` every (padded) step of the minibatch.
        """
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy, distribution, features = self.policy.evaluate_sequences(
            self.loss_observations(batch), actions, batch.lstm_states, batch.episode_starts
        )
        # Only the steps in the loss enter any operation (a masked step's data cannot reach the
        # gradient, not even as 0 * inf); element-wise, this is sb3-contrib's loss exactly.
        mask = batch.mask > 1e-8
        values, log_prob = values.flatten()[mask], log_prob[mask]
        entropy = None if entropy is None else entropy[mask]
        old_log_prob, old_values, returns = batch.old_log_prob[mask], batch.old_values[mask], batch.returns[mask]

        return self.ppo_loss(
            batch, values, log_prob, entropy, distribution, features, old_log_prob=old_log_prob,
            old_values=old_values, advantages=batch.advantages[mask], returns=returns,
            clip_range=clip_range, clip_range_vf=clip_range_vf,
        )  # fmt: skip

    # -- checkpoints ----------------------------------------------------------------------------
    def agent_state_dict(self) -> dict[str, Any]:
        """The LSTM states carried into the next rollout (plain tensors, on CPU)."""
        return {
            "lstm_states": {
                part: [t.detach().cpu().clone() for t in states]
                for part, states in zip(("pi", "vf"), self._last_lstm_states)
            }
        }

    def load_agent_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`agent_state_dict`; a checkpoint without LSTM states is an error."""
        saved = state.get("lstm_states")
        if saved is None:
            raise ValueError(
                "this checkpoint holds no LSTM states, so a recurrent agent cannot continue from it exactly; "
                "resume it with the agent it was written by"
            )
        current = self._last_lstm_states
        restored = []
        for part in ("pi", "vf"):
            tensors = [th.as_tensor(t) for t in saved[part]]
            shapes = [tuple(t.shape) for t in tensors]
            expected = [tuple(t.shape) for t in getattr(current, part)]
            if shapes != expected:
                raise ValueError(f"saved LSTM states have shapes {shapes}, this agent needs {expected}")
            restored.append(tuple(t.to(self.device) for t in tensors))
        self._last_lstm_states = RNNStates(*restored)


def lstm_policy_kwargs(
    network: NetworkConfig, ppo: PPOConfig, observation_space: gym.spaces.Space, family: str | None = None
) -> dict[str, Any]:
    """``policy_kwargs`` for :class:`LSTMPolicy`: plain PPO's extractor (the maze network with the
    agent's direction appended), one LSTM of ``network.lstm_hidden_size`` units shared by the
    policy and the value and trained by both losses (the UED maze agents' shape), linear heads
    (hyperbolic ones on the LSTM's output with ``network.geometry: hyperbolic``)."""
    kwargs = policy_kwargs(network, ppo, observation_space, family)
    if kwargs["features_extractor_class"] is MazeNet:
        kwargs["features_extractor_class"] = MazeDirectionNet
    kwargs["features_extractor_kwargs"].pop("final_relu", None)  # the LSTM, not the extractor, feeds the heads
    kwargs.update(lstm_hidden_size=network.lstm_hidden_size, shared_lstm=True, enable_critic_lstm=False)
    return kwargs


def _make_ppo_lstm(
    env: VecEnv | gym.Env,
    *,
    ppo: PPOConfig,
    network: NetworkConfig,
    seed: int | None,
    device: th.device,
    tensorboard_log: str | None,
    verbose: int,
) -> HeldoutRecurrentPPO:
    venv = HeldoutRecurrentPPO._wrap_env(env, verbose)
    kwargs = ppo.model_kwargs(venv.num_envs)
    pk = lstm_policy_kwargs(network, ppo, venv.observation_space, env_family(venv))
    venv = ppo.reward_normalizer(venv)
    policy = policy_class(network, LSTMPolicy, HyperbolicLSTMPolicy)
    return HeldoutRecurrentPPO(
        policy, venv, policy_kwargs=pk, seed=seed, device=device, tensorboard_log=tensorboard_log,
        verbose=verbose, **kwargs,
    )  # fmt: skip


register("ppo_lstm", _make_ppo_lstm)
