"""Agents: PPO on stable-baselines3 with IMPALA CNN and maze networks.

>>> from heldout import agents
>>> model = agents.make("ppo", vec_env, ppo=agents.PPOConfig(), network=agents.NetworkConfig(), seed=0)
>>> model.learn(100_000)
>>> agents.names()
['bc', 'cql', 'drac', 'ppo', 'ppo_lstm', 'rad', 'ucb_drac']

:class:`HeldoutPPO` is sb3's PPO with a loss mask (``set_loss_mask``, for Robust PLR) and the
loss split into overridable pieces. ``rad``, ``drac`` and ``ucb_drac`` (:mod:`heldout.agents.drac`)
use them for data augmentation; the augmentations themselves are in
:mod:`heldout.agents.augmentations`. ``network="auto"`` picks the maze network for the maze family
and small grids, the IMPALA CNN for images of at least 32x32 pixels.
:class:`HeldoutRecurrentPPO` (``ppo_lstm``) is sb3-contrib's ``RecurrentPPO`` with the same
loss mask, update loop and logging, an LSTM after the extractor (``network.lstm_hidden_size``).
"""

from heldout.agents.config import NETWORKS, NetworkConfig, PPOConfig
from heldout.agents.networks import ImpalaCNN, MazeNet, select_network
from heldout.agents.ppo import HeldoutPPO, MaskedRolloutBuffer, PPOLoss
from heldout.agents.registry import make, names, needs, policy_kwargs, register, resolve_device, sections
from heldout.agents.offline import BCAgent, CQLAgent, OfflineConfig
from heldout.agents.augment_config import AugmentConfig, DrACConfig, UCBConfig
from heldout.agents.drac import DrACPPO, RADPPO, UCBDrACPPO
from heldout.agents.ppo_lstm import HeldoutRecurrentPPO, MaskedRecurrentRolloutBuffer  # registers ppo_lstm

__all__ = [
    "NETWORKS",
    "AugmentConfig",
    "DrACConfig",
    "DrACPPO",
    "RADPPO",
    "UCBConfig",
    "UCBDrACPPO",
    "HeldoutPPO",
    "HeldoutRecurrentPPO",
    "ImpalaCNN",
    "MaskedRecurrentRolloutBuffer",
    "MaskedRolloutBuffer",
    "MazeNet",
    "NetworkConfig",
    "PPOConfig",
    "PPOLoss",
    "BCAgent",
    "CQLAgent",
    "OfflineConfig",
    "make",
    "needs",
    "names",
    "policy_kwargs",
    "register",
    "resolve_device",
    "sections",
    "select_network",
]
