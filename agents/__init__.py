"""Agents: PPO on stable-baselines3 with IMPALA CNN and maze networks.

>>> from heldout import agents
>>> model = agents.make("ppo", vec_env, ppo=agents.PPOConfig(), network=agents.NetworkConfig(), seed=0)
>>> model.learn(100_000)
>>> agents.names()
['ppo', 'ppo_lstm']

:class:`HeldoutPPO` is sb3's PPO with a loss mask (``set_loss_mask``, for Robust PLR) and the
loss split into overridable pieces (for RAD / DrAC). ``network="auto"`` picks the maze network
for the maze family and small grids, the IMPALA CNN for images of at least 32x32 pixels.
:class:`HeldoutRecurrentPPO` (``ppo_lstm``) is sb3-contrib's ``RecurrentPPO`` with the same
loss mask, update loop and logging, an LSTM after the extractor (``network.lstm_hidden_size``).
"""

from heldout.agents.config import NETWORKS, NetworkConfig, PPOConfig
from heldout.agents.networks import ImpalaCNN, MazeNet, select_network
from heldout.agents.ppo import HeldoutPPO, MaskedRolloutBuffer, PPOLoss
from heldout.agents.ppo_lstm import HeldoutRecurrentPPO, MaskedRecurrentRolloutBuffer  # registers ppo_lstm
from heldout.agents.registry import make, names, policy_kwargs, register, resolve_device

__all__ = [
    "NETWORKS",
    "HeldoutPPO",
    "HeldoutRecurrentPPO",
    "ImpalaCNN",
    "MaskedRecurrentRolloutBuffer",
    "MaskedRolloutBuffer",
    "MazeNet",
    "NetworkConfig",
    "PPOConfig",
    "PPOLoss",
    "make",
    "names",
    "policy_kwargs",
    "register",
    "resolve_device",
    "select_network",
]
