"""The bonus networks' shared parts: an MLP on flattened observations (symbol ids embedded first),
seeded set-up and training."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch as th
from torch import nn

from heldout.agents.networks import EmbedIds


SYMBOL_EMBEDDING_DIM = 16
"""Size of each symbol id's embedding in the bonus networks (grids of ids: MiniHack glyphs)."""


def observation_encoder(obs_shape: tuple[int, ...], hidden: int, out: int, symbols: int = 0) -> nn.Sequential:
    """Flattened observation -> ``hidden`` (ReLU) -> ``hidden`` (ReLU) -> ``out``: one network for any
    array observation (maze grids, MiniGrid views, Procgen pixels); with ``symbols`` > 0 the observation
    holds ids ``0 .. symbols - 1``, each embedded (:data:`SYMBOL_EMBEDDING_DIM`) before flattening."""
    size = int(np.prod(obs_shape))
    first: list[nn.Module] = [EmbedIds(symbols, SYMBOL_EMBEDDING_DIM)] if symbols else []
    size *= SYMBOL_EMBEDDING_DIM if symbols else 1
    return nn.Sequential(
        *first, nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, out),
    )  # fmt: skip


def as_input(obs: np.ndarray, device: th.device) -> th.Tensor:
    """Observations as float32 on ``device``; uint8 pixels scaled to [0, 1]."""
    tensor = th.as_tensor(np.asarray(obs), device=device)
    return tensor.float() / 255.0 if tensor.dtype == th.uint8 else tensor.float()


def seeded(seed: int, build: Callable[[], Any]) -> Any:
    """``build()`` with torch's global generator seeded to ``seed``, then put back: the bonus's
    initial weights depend on its seed only, and the agent's random stream is left as it was."""
    with th.random.fork_rng(devices=[]):
        th.manual_seed(seed)
        return build()


class Trainer:
    """Minibatch passes over a rollout's transitions with Adam and a gradient-norm clip per network;
    its own numpy generator shuffles (its state goes in the checkpoint)."""

    def __init__(self, modules: list[nn.Module], *, lr: float, batch_size: int, epochs: int, max_grad_norm: float,
                 seed: int) -> None:  # fmt: skip
        self.modules = modules
        self.optimizer = th.optim.Adam([p for m in modules for p in m.parameters()], lr=lr)
        self.batch_size, self.epochs, self.max_grad_norm = batch_size, epochs, max_grad_norm
        self.rng = np.random.default_rng(seed)

    def run(self, n: int, loss_of: Callable[[np.ndarray], th.Tensor]) -> float:
        """Minimise ``loss_of(indices)`` over ``n`` transitions; the mean loss of the batches."""
        losses = []
        for _ in range(self.epochs):
            order = self.rng.permutation(n)
            for start in range(0, n, self.batch_size):
                loss = loss_of(order[start : start + self.batch_size])
                self.optimizer.zero_grad()
                loss.backward()
                for module in self.modules:
                    nn.utils.clip_grad_norm_(module.parameters(), self.max_grad_norm)
                self.optimizer.step()
                losses.append(float(loss.detach()))
        return float(np.mean(losses)) if losses else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
