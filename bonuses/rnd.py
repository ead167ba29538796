"""Random network distillation (Burda et al. 2019): a fixed random target network, a predictor
trained to match it, and the prediction error ||f(s') - f_target(s')||_2 as the global novelty."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th

from heldout.bonuses.base import Bonus
from heldout.bonuses.networks import Trainer, as_input, observation_encoder, seeded


class RND(Bonus):
    """The bonus is the L2 distance of predictor and target outputs (e3b's rnd.py), the predictor's
    loss its mean over a batch (``compute_forward_dynamics_loss``)."""

    learns = True

    def __init__(self, obs_shape: tuple[int, ...], *, out_dim: int, hidden_dim: int, lr: float, batch_size: int,
                 epochs: int, max_grad_norm: float, seed: int, device: th.device, symbols: int = 0) -> None:  # fmt: skip
        self.device = device
        build = lambda: observation_encoder(obs_shape, hidden_dim, out_dim, symbols)  # noqa: E731
        self.target = seeded(seed + 1, build).to(device)
        self.predictor = seeded(seed, build).to(device)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.trainer = Trainer([self.predictor], lr=lr, batch_size=batch_size, epochs=epochs,
                               max_grad_norm=max_grad_norm, seed=seed)  # fmt: skip

    def errors(self, obs: th.Tensor) -> th.Tensor:
        return th.linalg.vector_norm(self.predictor(obs) - self.target(obs), dim=1)

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        with th.no_grad():
            return self.errors(as_input(next_obs, self.device)).cpu().numpy().astype(np.float64)

    def learn(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> dict[str, float]:
        y = as_input(next_obs, self.device)
        return {"rnd_loss": self.trainer.run(len(y), lambda idx: self.errors(y[idx]).mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"target": self.target.state_dict(), "predictor": self.predictor.state_dict(),
                "trainer": self.trainer.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.predictor.load_state_dict(state["predictor"])
        self.trainer.load_state_dict(state["trainer"])
