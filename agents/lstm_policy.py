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
  (which it falls back to for any other layout), without a Python loop over time. Training
  sequences with episode starts inside (``ppo_lstm`` updates on whole rollout rows) are cut into
  their episodes and run in a few whole-sequence calls (:func:`episode_outputs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
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

    def sequence_outputs(
        self, features: th.Tensor, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor, lstm: nn.LSTM
    ) -> th.Tensor:
        """The LSTM outputs of training sequences (the final states are not needed there)."""
        n_seq = lstm_states[0].shape[1]
        starts = episode_starts.reshape(n_seq, -1)
        if th.any(starts[:, 1:] != 0.0):
            return episode_outputs(features, lstm_states, starts, lstm)
        return self._process_sequence(features, lstm_states, episode_starts, lstm)[0]

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
        latent_pi = self.sequence_outputs(pi_features, lstm_states.pi, episode_starts, self.lstm_actor)
        if self.lstm_critic is not None:
            latent_vf = self.sequence_outputs(vf_features, lstm_states.vf, episode_starts, self.lstm_critic)
        elif self.shared_lstm:
            latent_vf = latent_pi  # one LSTM trained by the policy and the value loss (not detached)
        else:
            latent_vf = self.critic(vf_features)
        distribution = self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent_pi))
        values = self.value_net(self.mlp_extractor.forward_critic(latent_vf))
        return values, distribution.log_prob(actions), distribution.entropy(), distribution, features


def episode_outputs(
    features: th.Tensor, lstm_states: tuple[th.Tensor, th.Tensor], starts: th.Tensor, lstm: nn.LSTM
) -> th.Tensor:
    """The LSTM's outputs over sequences that reset where an episode starts, in the input's
    (sequence, step) order: sb3-contrib's step-by-step loop computed in a few whole-sequence calls.

    ``starts`` is (n_seq, length). Each sequence is cut into its episodes; the first piece of a
    sequence starts from the sequence's state (zeroed if it starts an episode too), every other
    piece from zeros. Pieces are sorted by length and run in buckets whose lengths are within a
    factor of two, each bucket padded to its longest piece (padding at the end cannot reach a
    real step's output): at most twice the real steps are computed, in ~log2(length) calls.
    """
    n_seq, length = starts.shape
    flags = starts.detach().cpu().numpy() != 0.0
    flags[:, 0] = True  # every sequence starts a piece
    rows, begins = np.nonzero(flags)  # pieces in (sequence, step) order
    ends = np.append(begins[1:], length)
    ends[np.append(rows[1:] != rows[:-1], True)] = length  # a sequence's last piece runs to its end
    lengths = ends - begins
    keep = (1.0 - starts[:, 0]).view(1, n_seq, 1)
    first_h, first_c = keep * lstm_states[0], keep * lstm_states[1]
    order = np.argsort(-lengths, kind="stable")
    outputs, positions = [], []
    i = 0
    while i < len(order):
        j = i + int(np.sum(lengths[order[i:]] * 2 >= lengths[order[i]]))  # lengths sorted: a prefix
        bucket = order[i:j]
        step = np.concatenate([np.arange(n) for n in lengths[bucket]])
        column = np.repeat(np.arange(len(bucket)), lengths[bucket])
        flat = np.repeat(rows[bucket] * length + begins[bucket], lengths[bucket]) + step
        index = (th.as_tensor(step), th.as_tensor(column))
        padded = features.new_zeros(int(lengths[bucket[0]]), len(bucket), features.shape[1]).index_put(
            index, features[th.as_tensor(flat)]
        )
        starts_row = th.as_tensor(np.where(begins[bucket] == 0, rows[bucket], -1))
        first = starts_row >= 0
        h0 = first_h.new_zeros(first_h.shape[0], len(bucket), first_h.shape[2])
        c0 = th.zeros_like(h0)
        if first.any():
            columns = th.nonzero(first).flatten()
            h0 = h0.index_copy(1, columns, first_h[:, starts_row[first]])
            c0 = c0.index_copy(1, columns, first_c[:, starts_row[first]])
        out, _ = lstm(padded, (h0, c0))
        outputs.append(out[index])
        positions.append(flat)
        i = j
    inverse = np.empty(n_seq * length, dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(n_seq * length)
    return th.cat(outputs)[th.as_tensor(inverse)]
