"""A variational autoencoder over grid levels in the maze cell encoding.

A level reaches this module only as the array of its family's ``LevelSpace.encode``: an
(H, W) grid of cell codes, 0 floor, 1 wall, 2 goal, 3..6 the agent facing east, south, west,
north (the maze family's encoding; goal and agent stand on floor cells).

* Encoder: the one-hot grid (7 channels) through two 3x3 convolutions and an MLP to the
  mean and log standard deviation of a diagonal Gaussian posterior q(z | level).
* Decoder: an MLP from z to four heads: a wall/floor logit per cell (the layout; the
  published decoder's layout head is a categorical over cell types, two of them in a maze),
  a categorical over cells for the goal, a categorical over cells for the start (both as
  published), and a categorical over the four start directions (heldout's: the published
  decoder has none, its direction is random at reset). The goal head is masked
  to the layout's floor cells, the start head to floor cells other than the goal, so a
  decoded level always has its goal and start on floor.
* Loss: the weighted negative ELBO per level,
  ``w_layout * BCE(layout) + w_goal * CE(goal) + w_start * CE(start) + w_direction * CE(direction)
  + beta * KL(q(z | level) || N(0, I))``, the goal and start heads masked by the true layout
  (teacher forcing), averaged over the batch. With ``reduction="mean"`` (the default, as
  published: uoe-agents/dred ``conf/model/res_graphVAE_ce.yaml`` elbo_coeffs, ``models/dred_minigrid.py``
  ``graphVAE_elbo_pathwise`` and ``log_prob``) the layout term is the mean over cells and the KL
  the mean over latent dimensions, with weights 0.04 (layout), 0.013 (goal, start) and beta 0.0448:
  one goal or start term weighs about 55 cells' worth of layout. ``reduction="sum"`` sums both
  (heldout's first loss: ``{reduction: sum, w_layout: 1, w_goal: 1, w_start: 1, w_direction: 1, beta: 0.3}``).
* Decoding a new level (:meth:`LevelVAE.decode_codes`): ``decode="mode"`` (default, as published:
  ``models/dred_minigrid.py`` ~640-651) makes a cell floor exactly where p(floor) > 0.5 and draws
  the goal and the start from their categoricals masked to that floor; ``decode="sample"`` draws
  every cell's wall from its own Bernoulli (heldout's first decoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

FLOOR, WALL, GOAL, AGENT = 0, 1, 2, 3
NUM_CODES = 7
NUM_DIRECTIONS = 4
DECODES: tuple[str, ...] = ("mode", "sample")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")


@dataclass(frozen=True)
class VAEConfig:
    """The model's shape and loss weights (saved with the model)."""

    height: int = 13
    width: int = 13
    latent_dim: int = 64
    hidden_dim: int = 256
    channels: int = 32
    beta: float = 0.0448
    w_layout: float = 0.04
    w_goal: float = 0.013
    w_start: float = 0.013
    w_direction: float = 0.013
    reduction: str = "mean"
    decode: str = "mode"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VAEConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VAE setting(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("height", "width", "latent_dim", "hidden_dim", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VAE setting {name} must be a positive integer, got {value!r}")
        for name in ("beta", "w_layout", "w_goal", "w_start", "w_direction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"VAE setting {name} must be a number >= 0, got {value!r}")
        for name, choices in (("reduction", REDUCTIONS), ("decode", DECODES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"VAE setting {name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")


@dataclass
class Decoded:
    """Decoder outputs for a batch: logits of the four heads."""

    layout: torch.Tensor  # (B, H*W) wall logits
    goal: torch.Tensor  # (B, H*W)
    start: torch.Tensor  # (B, H*W)
    direction: torch.Tensor  # (B, 4)


class LevelVAE(nn.Module):
    """The VAE; see the module docstring."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        h, w, c = config.height, config.width, config.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(NUM_CODES, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * c * ((h + 1) // 2) * ((w + 1) // 2), config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, 2 * config.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.hidden_dim),
            nn.ReLU(),
        )
        cells = h * w
        self.layout_head = nn.Linear(config.hidden_dim, cells)
        self.goal_head = nn.Linear(config.hidden_dim, cells)
        self.start_head = nn.Linear(config.hidden_dim, cells)
        self.direction_head = nn.Linear(config.hidden_dim, NUM_DIRECTIONS)

    # -- the two halves -------------------------------------------------------------------------
    def encode(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of q(z | level) for a batch of code grids (B, H, W)."""
        x = F.one_hot(codes.long(), NUM_CODES).permute(0, 3, 1, 2).float()
        mean, log_std = self.encoder(x).chunk(2, dim=-1)
        return mean, log_std.clamp(-10.0, 5.0).exp()

    def decode(self, z: torch.Tensor) -> Decoded:
        h = self.decoder(z)
        return Decoded(self.layout_head(h), self.goal_head(h), self.start_head(h), self.direction_head(h))

    # -- the loss -----------------------------------------------------------------------------
    def loss(self, codes: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The batch-mean loss and its parts (``loss``, ``layout``, ``goal``, ``start``,
        ``direction``, ``kl``). ``sample=False`` decodes the posterior mean (deterministic)."""
        cfg = self.config
        codes = codes.long()
        b = codes.shape[0]
        flat = codes.reshape(b, -1)
        mean, std = self.encode(codes)
        if sample:
            eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            z = mean + std * eps
        else:
            z = mean
        out = self.decode(z)
        walls = (flat == WALL).float()
        per_cell = F.binary_cross_entropy_with_logits(out.layout, walls, reduction="none")
        floor = flat != WALL
        goal_cell = (flat == GOAL).float().argmax(-1)
        start_cell = (flat >= AGENT).float().argmax(-1)
        goal = F.cross_entropy(masked(out.goal, floor), goal_cell, reduction="none")
        start_ok = floor.clone()
        start_ok[torch.arange(b), goal_cell] = False
        start = F.cross_entropy(masked(out.start, start_ok), start_cell, reduction="none")
        direction_target = flat.gather(1, start_cell[:, None]).squeeze(1) - AGENT
        direction = F.cross_entropy(out.direction, direction_target, reduction="none")
        per_dim = 0.5 * (mean.pow(2) + std.pow(2) - 1.0 - 2.0 * std.log())
        if cfg.reduction == "mean":
            layout, kl = per_cell.mean(-1), per_dim.mean(-1)
        else:
            layout, kl = per_cell.sum(-1), per_dim.sum(-1)
        total = (
            cfg.w_layout * layout + cfg.w_goal * goal + cfg.w_start * start + cfg.w_direction * direction + cfg.beta * kl
        )
        parts = {"loss": total, "layout": layout, "goal": goal, "start": start, "direction": direction, "kl": kl}
        return {k: v.mean() for k, v in parts.items()}

    # -- turning latents into code grids --------------------------------------------------------
    @torch.no_grad()
    def decode_codes(
        self,
        z: torch.Tensor,
        *,
        sample: bool,
        decode: str | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Code grids (B, H, W) int64 from latents, and a (B,) bool tensor: True where a head
        had no floor cell to choose from and the level was repaired.

        ``sample=True`` generates: the goal, start and direction are drawn from their (masked)
        categoricals and the layout follows ``decode`` (default: the model's ``config.decode``):
        ``mode``, floor exactly where p(floor) > 0.5, i.e. wall where the wall logit is >= 0 (as
        published), or ``sample``, one Bernoulli draw per cell. ``sample=False`` takes the most
        likely value of every head (reconstruction). The goal is chosen among the layout's floor
        cells, the start among the floor cells other than the goal. Where none is left, the head
        chooses among all cells (other than the goal) and that cell's wall is cleared (heldout's
        repair; the published decoder draws a random cell and leaves the level invalid).
        """
        cfg = self.config
        decode = cfg.decode if decode is None else decode
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, got {decode!r}")
        out = self.decode(z)
        b = z.shape[0]
        rows = torch.arange(b)
        if sample and decode == "sample":
            walls = torch.bernoulli(torch.sigmoid(out.layout), generator=generator).bool()
        else:
            walls = out.layout >= 0  # floor exactly where p(floor) = sigmoid(-logit) > 0.5
        repaired = torch.zeros(b, dtype=torch.bool)

        def choose(logits: torch.Tensor, allowed: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
            nonlocal repaired
            empty = ~allowed.any(-1)
            repaired = repaired | empty
            return pick(masked(logits, torch.where(empty[:, None], fallback, allowed)), sample, generator)

        everywhere = torch.ones_like(walls)
        goal = choose(out.goal, ~walls, everywhere)
        not_goal = everywhere.clone()
        not_goal[rows, goal] = False
        start = choose(out.start, ~walls & not_goal, not_goal)
        direction = pick(out.direction, sample, generator)
        codes = walls.long()
        codes[rows, goal] = GOAL
        codes[rows, start] = AGENT + direction
        return codes.reshape(b, cfg.height, cfg.width), repaired


def masked(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Logits with the entries where ``allowed`` is False set to -inf."""
    return logits.masked_fill(~allowed, float("-inf"))


def pick(logits: torch.Tensor, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row: drawn from softmax(logits), or the argmax."""
    if not sample:
        return logits.argmax(-1)
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def slerp(t: float, a: torch.Tensor, b: torch.Tensor, *, lerp_above: float = 0.955) -> torch.Tensor:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the last axis.

    Falls back to linear interpolation where the two directions are close to parallel,
    |cos| > ``lerp_above`` (0.955 as published: uoe-agents/dred ``util/__init__.py`` ~537-545).
    """
    a_n = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (a_n * b_n).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    near = cos.abs() > lerp_above
    safe = torch.where(near, torch.ones_like(so), so)
    spherical = torch.sin((1.0 - t) * omega) / safe * a + torch.sin(t * omega) / safe * b
    linear = (1.0 - t) * a + t * b
    return torch.where(near, linear, spherical)
