"""The recurrent policy of ``ppo_lstm``: a feature extractor, an LSTM, linear policy and value heads.

* :class:`MazeDirectionNet` is the maze network with the agent's absolute direction as an
  extra input: the maze observation carries it as the code ``1 + direction`` in channel 2 at
  the agent's cell (the 5x5 view is egocentric, so the walls alone do not tell which way the
  agent faces); the extractor reads it out and appends it as a one-hot vector (east, south,
  west, north) to the maze network's features, the input of the LSTM.
* :class:`LSTMPolicy` is sb3-contrib's ``RecurrentActorCriticPolicy`` that runs each training
  sequence through the LSTM in one call. sb3-contrib cuts the rollout into sequences at episode
  starts, so within a sequence only its first step can start an episode; zeroing that
  sequence's initial state is then the same computation as sb3-contrib's step-by-step loop
  (which it falls back to for any other layout), without a Python loop over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch as th
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

from heldout.agents.networks import MAZE_DIRECTION_CODES, MazeNet, grid_is_channels_first

DIRECTIONS = MAZE_DIRECTION_CODES - 1
"""Absolute directions of the maze agent (0 east, 1 south, 2 west, 3 north)."""


class MazeDirectionNet(BaseFeaturesExtractor):
    """:class:`MazeNet` features followed by the agent's absolute direction, one-hot.

    Output size ``features_dim + 4``. The direction is the largest direction code in the
    observation (only the agent's cell has one), so it works for the egocentric view and the
    full grid alike; an observation without an agent gives four zeros.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        channels: Sequence[int] = (16, 32),
    ) -> None:
        super().__init__(observation_space, features_dim + DIRECTIONS)
        self.maze = MazeNet(observation_space, features_dim, channels)
        self.chw = grid_is_channels_first(observation_space)

    def direction(self, observations: th.Tensor) -> th.Tensor:
        """(N, 4) one-hot absolute direction read from the direction channel."""
        codes = observations[:, 2] if self.chw else observations[..., 2]
        code = codes.flatten(1).amax(dim=1).round().long().clamp(0, MAZE_DIRECTION_CODES - 1)
        return F.one_hot(code, MAZE_DIRECTION_CODES)[:, 1:].float()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.cat([self.maze(observations), self.direction(observations)], dim=1)


class LSTMPolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's recurrent actor-critic with whole-sequence LSTM calls (see the module doc)."""

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.LSTM,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        n_seq = lstm_states[0].shape[1]
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)  # (length, n_seq)
        if th.any(starts[1:] != 0.0):  # an episode starts inside a sequence: step by step
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        keep = (1.0 - starts[0]).view(1, n_seq, 1)
        first = (keep * lstm_states[0], keep * lstm_states[1])
        return RecurrentActorCriticPolicy._process_sequence(features, first, th.zeros_like(episode_starts), lstm)

    def evaluate_sequences(
        self, obs: th.Tensor, actions: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None, Distribution, th.Tensor]:
        """Values, log-probabilities, entropy, the action distribution and the extractor's features.

        sb3-contrib's ``evaluate_actions`` (the same operations), keeping the distribution and
        the features for loss hooks, with one difference: a shared LSTM (``shared_lstm=True``)
        also gets the value loss's gradient, as in the UED maze agents (sb3-contrib detaches it
        there, training the shared LSTM by the policy loss alone).
        """
        features = self.extract_features(obs)
        pi_features, vf_features = (features, features) if self.share_features_extractor else features
        latent_pi, _ = self._process_sequence(pi_features, lstm_states.pi, episode_starts, self.lstm_actor)
        if self.lstm_critic is not None:
            latent_vf, _ = self._process_sequence(vf_features, lstm_states.vf, episode_starts, self.lstm_critic)
        elif self.shared_lstm:
            latent_vf = latent_pi  # one LSTM trained by the policy and the value loss (not detached)
        else:
            latent_vf = self.critic(vf_features)
        distribution = self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent_pi))
        values = self.value_net(self.mlp_extractor.forward_critic(latent_vf))
        return values, distribution.log_prob(actions), distribution.entropy(), distribution, features
