"""E3B (Henaff et al. 2022): the elliptical episodic bonus phi(s)^T C^-1 phi(s), C = lambda I +
the sum of the episode's phi phi^T, with phi an embedding trained by inverse dynamics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from heldout.bonuses.base import Bonus
from heldout.bonuses.networks import Trainer, as_input, observation_encoder, seeded


def rank_one_inverse_update(inverse: th.Tensor, phi: th.Tensor) -> th.Tensor:
    """The elliptical bonuses b = phi^T A^-1 phi for a batch (``inverse``: (B, d, d) holding A^-1,
    ``phi``: (B, d)), and A^-1 turned in place into (A + phi phi^T)^-1 by Sherman-Morrison:
    A^-1 - (A^-1 phi)(A^-1 phi)^T / (1 + b) (A symmetric). Returns b, (B,)."""
    u = th.bmm(inverse, phi.unsqueeze(2)).squeeze(2)
    b = (phi * u).sum(1)
    inverse -= u.unsqueeze(2) * u.unsqueeze(1) / (1.0 + b).view(-1, 1, 1)
    return b


class InverseDynamics(nn.Module):
    """phi(s) and the action predicted from (phi(s), phi(s')): e3b's MinigridInverseDynamicsNet head
    (Linear(2d, 256), ReLU, Linear(256, actions)) on our observation MLP."""

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, embedding_dim: int, hidden_dim: int,
                 symbols: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.embed = observation_encoder(obs_shape, hidden_dim, embedding_dim, symbols)
        self.head = nn.Sequential(nn.Linear(2 * embedding_dim, 256), nn.ReLU(), nn.Linear(256, num_actions))

    def forward(self, obs: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return self.head(th.cat([self.embed(obs), self.embed(next_obs)], dim=1))


class E3B(Bonus):
    """Per slot, C^-1 of its running episode starts as I / ridge and takes each observation's phi
    by a rank-one update; the bonus for a reached observation is phi^T C^-1 phi before its update.
    The episode's first observation updates C^-1 but earns nothing (as e3b's actor: b = 0 at step 0)."""

    learns = True

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, num_envs: int, *, ridge: float,
                 embedding_dim: int, hidden_dim: int, lr: float, batch_size: int, epochs: int,
                 max_grad_norm: float, seed: int, device: th.device, symbols: int = 0) -> None:  # fmt: skip
        self.ridge, self.device, self.num_actions = ridge, device, num_actions
        build = lambda: InverseDynamics(obs_shape, num_actions, embedding_dim, hidden_dim, symbols)  # noqa: E731
        self.net = seeded(seed, build).to(device)
        self.trainer = Trainer([self.net.embed, self.net.head], lr=lr, batch_size=batch_size, epochs=epochs,
                               max_grad_norm=max_grad_norm, seed=seed)  # fmt: skip
        eye = th.eye(embedding_dim, device=device) / ridge
        self.inverse = eye.repeat(num_envs, 1, 1)

    def _phi(self, obs: np.ndarray) -> th.Tensor:
        with th.no_grad():
            return self.net.embed(as_input(obs, self.device))

    def begin(self, slots: np.ndarray, obs: np.ndarray) -> None:
        slots = th.as_tensor(np.asarray(slots), dtype=th.long, device=self.device)
        fresh = th.eye(self.inverse.shape[1], device=self.device) / self.ridge
        part = fresh.repeat(len(slots), 1, 1)
        rank_one_inverse_update(part, self._phi(obs))
        self.inverse[slots] = part

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        b = rank_one_inverse_update(self.inverse, self._phi(next_obs))
        return b.cpu().numpy().astype(np.float64)

    def learn(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> dict[str, float]:
        x, y = as_input(obs, self.device), as_input(next_obs, self.device)
        a = th.as_tensor(np.asarray(actions).reshape(-1), dtype=th.long, device=self.device)
        loss = self.trainer.run(len(a), lambda idx: F.cross_entropy(self.net(x[idx], y[idx]), a[idx]))
        return {"inverse_dynamics_loss": loss}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "trainer": self.trainer.state_dict(), "inverse": self.inverse.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["inverse"].shape) != tuple(self.inverse.shape):
            raise ValueError(f"the bonus state holds C^-1 of shape {tuple(state['inverse'].shape)}, "
                             f"the run {tuple(self.inverse.shape)}")  # fmt: skip
        self.net.load_state_dict(state["net"])
        self.trainer.load_state_dict(state["trainer"])
        self.inverse = state["inverse"].to(self.device).clone()
