"""Fitting the level VAE on exactly the training levels.

The training levels arrive as code grids (``LevelSpace.encode``). By default Adam with the
published learning rate (uoe-agents/dred ``minigrid_level_generation/conf/optim/adam.yaml``:
3.976e-4) fits every training level for 1600 epochs, the published number of Adam steps
(``conf/config.yaml`` 200 epochs over its 512-level set in batches of 64, i.e. 8 steps an
epoch, ``conf/dataset/cave_escape_512_4ts_varp.yaml``; a set of up to 64 levels is one batch),
and the weights with the lowest training loss (of the posterior mean) are kept. With ``holdout_fraction`` > 0 that fraction
of them (at least one when there are two or more) is held out, chosen by ``seed``; the model is
fitted on the rest and the weights with the lowest held-out loss are kept (heldout's first
fit: ``{lr: 0.001, max_epochs: 1000, patience: 100, holdout_fraction: 0.1}``). Stopping comes
after ``patience`` epochs without a better loss, or at ``max_epochs``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from heldout.generators.vae import LevelVAE, VAEConfig


@dataclass(frozen=True)
class FitConfig:
    """How the VAE is fitted (saved with the model)."""

    max_epochs: int = 1600
    patience: int = 1600
    batch_size: int = 64
    lr: float = 3.976e-4
    holdout_fraction: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        for name in ("max_epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"fit setting {name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0):
            raise ValueError(f"fit setting lr must be a number > 0, got {self.lr!r}")
        if not (isinstance(self.holdout_fraction, int | float) and 0 <= self.holdout_fraction < 1):
            raise ValueError(f"fit setting holdout_fraction must be in [0, 1), got {self.holdout_fraction!r}")


@dataclass
class FitResult:
    model: LevelVAE
    holdout: list[int]
    """Indices (into the levels given) of the held-out levels."""
    best_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    """One entry per epoch: ``epoch``, ``loss``, ``kl``, ``val_loss``, ``accuracy``, ``val_accuracy``."""

    @property
    def best(self) -> dict[str, float]:
        """The metrics of the epoch whose weights were kept."""
        return self.history[self.best_epoch - 1]


def split_holdout(n: int, fraction: float, seed: int) -> list[int]:
    """Sorted indices of ``round(fraction * n)`` held-out levels (at least 1 if n >= 2 and fraction > 0)."""
    if fraction <= 0 or n < 2:
        return []
    k = min(n - 1, max(1, round(fraction * n)))
    return sorted(np.random.default_rng([seed, 7]).choice(n, size=k, replace=False).tolist())


@torch.no_grad()
def reconstruction_accuracy(model: LevelVAE, codes: torch.Tensor) -> dict[str, float]:
    """How well the most likely decoding of each level's posterior mean reproduces it:
    ``cell`` the fraction of cells with the right code, ``level`` the fraction of levels
    reproduced exactly."""
    if codes.shape[0] == 0:
        return {"cell": math.nan, "level": math.nan}
    model.eval()
    mean, _ = model.encode(codes)
    decoded, _ = model.decode_codes(mean, sample=False)
    same = decoded == codes.long()
    return {"cell": float(same.float().mean()), "level": float(same.flatten(1).all(-1).float().mean())}


def fit(
    codes: np.ndarray,
    config: VAEConfig,
    fit_config: FitConfig = FitConfig(),
    *,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Fit a :class:`LevelVAE` on ``codes`` (N, H, W) cell-code grids; see the module docstring.

    ``on_epoch(metrics)`` is called after every epoch (progress bars, TensorBoard).
    """
    fit_config.validate()
    data = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    if data.ndim != 3 or data.shape[0] == 0:
        raise ValueError(f"fit takes a non-empty (N, H, W) array of code grids, got shape {tuple(data.shape)}")
    if tuple(data.shape[1:]) != (config.height, config.width):
        raise ValueError(
            f"levels are {data.shape[1]}x{data.shape[2]} but the model is for {config.height}x{config.width}; "
            "fit on levels of one size"
        )
    holdout = split_holdout(len(data), fit_config.holdout_fraction, fit_config.seed)
    keep = np.setdiff1d(np.arange(len(data)), holdout)
    train, val = data[keep], data[holdout]
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, the caller's RNG untouched
        torch.manual_seed(fit_config.seed)
        model = LevelVAE(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=fit_config.lr)
    gen = torch.Generator().manual_seed(fit_config.seed)
    order_rng = np.random.default_rng(fit_config.seed)
    best_state, best_score, best_epoch, stale = None, math.inf, 0, 0
    history: list[dict[str, float]] = []
    for epoch in range(1, fit_config.max_epochs + 1):
        model.train()
        order = order_rng.permutation(len(train))
        sums: dict[str, float] = {}
        for i in range(0, len(train), fit_config.batch_size):
            batch = train[order[i : i + fit_config.batch_size]]
            parts = model.loss(batch, generator=gen)
            optimiser.zero_grad()
            parts["loss"].backward()
            optimiser.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(batch)
        metrics = {"epoch": float(epoch), **{k: v / len(train) for k, v in sums.items()}}
        model.eval()
        with torch.no_grad():
            if len(val):
                metrics["val_loss"] = float(model.loss(val, sample=False)["loss"])
            metrics["accuracy"] = reconstruction_accuracy(model, train)["cell"]
            if len(val):
                metrics["val_accuracy"] = reconstruction_accuracy(model, val)["cell"]
            # Without held-out levels the training loss (of the posterior mean) decides.
            score = metrics["val_loss"] if len(val) else float(model.loss(train, sample=False)["loss"])
        history.append(metrics)
        if score < best_score:
            best_state, best_score, best_epoch, stale = copy.deepcopy(model.state_dict()), score, epoch, 0
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(metrics)
        if stale >= fit_config.patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, [int(i) for i in holdout], best_epoch, len(history), history)


def as_plain(result: FitResult) -> dict[str, Any]:
    """The fit's summary as JSON-able data (for the model file and reports)."""
    return {"best_epoch": result.best_epoch, "epochs": result.epochs, "best": dict(result.best)}
