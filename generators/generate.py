"""New levels from a fitted VAE: spherical interpolation between pairs of training levels.

As in DRED's published generator (uoe-agents/dred ``level_replay/level_generator.py`` ~44-103,
``util/__init__.py`` ~511-545), each batch takes ``pairs`` random pairs of training levels,
the posterior means of each pair's latents are interpolated spherically (slerp, linear where
|cos| > 0.955) and the standard deviations linearly at ``interpolations_per_pair`` points of
[0, 1] (both ends included by default), a latent is drawn from each interpolated Gaussian, and
the decoder turns it into a level (:meth:`LevelVAE.decode_codes`: the most likely layout by
default, goal and start drawn on its floor). Every decoded grid is checked through the
family's ``LevelSpace``: one that does not decode to a level (one goal, one start, on floor)
is ``dropped``. Unsolvable levels are handed out like the others (published:
``reject_unsolvable_seeds: false``; DRED plays them and never grounds them) unless
``reject_unsolvable`` is set. A level whose goal or start head had no floor cell left is
repaired (the chosen cell becomes floor) and counted as ``repaired``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from heldout.generators.vae import DECODES, LevelVAE, slerp


@dataclass
class Decodings:
    """One batch of decoded grids: ``grids`` (B, H, W) uint8 codes, ``repaired`` (B,) bool,
    ``parents`` (B, 2) the training levels interpolated between, ``points`` (B,) the t of each."""

    grids: np.ndarray
    repaired: np.ndarray
    parents: np.ndarray
    points: np.ndarray


class LevelGenerator:
    """``generator(rng, n) -> list of levels``: new valid levels, whole batches until at
    least ``n`` (or ``max_batches`` batches) were made.

    Args:
        model: the fitted :class:`LevelVAE`.
        space: the family's ``LevelSpace`` (``encode``, ``decode``, ``is_solvable``).
        levels: the training levels, as levels or as (N, H, W) code grids.
        pairs: level pairs per batch (published: 6).
        interpolations_per_pair: points per pair (published: 6).
        include_endpoints: interpolate at t = 0 and 1 too (published: yes).
        max_batches: batches tried per call before returning fewer than ``n`` levels.
        decode: the layout rule, ``mode`` (published) or ``sample``; default: the model's
            ``config.decode``.
        reject_unsolvable: drop unsolvable levels instead of handing them out (published: no).

    ``counts`` holds the running totals: ``valid`` every level handed out (repaired ones
    included), ``solvable`` those with a path to the goal, ``repaired``, and ``dropped``
    (invalid, or unsolvable with ``reject_unsolvable``).
    """

    def __init__(
        self,
        model: LevelVAE,
        space: Any,
        levels: Sequence[Any] | np.ndarray,
        *,
        pairs: int = 6,
        interpolations_per_pair: int = 6,
        include_endpoints: bool = True,
        max_batches: int = 8,
        decode: str | None = None,
        reject_unsolvable: bool = False,
    ) -> None:
        for name, value in (("pairs", pairs), ("interpolations_per_pair", interpolations_per_pair), ("max_batches", max_batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        codes = levels if isinstance(levels, np.ndarray) else np.stack([space.encode(lv) for lv in levels])
        if len(codes) < 2:
            raise ValueError("interpolation needs at least 2 training levels")
        self.model = model.eval()
        self.space = space
        self.codes = np.asarray(codes, dtype=np.uint8)
        self.pairs = pairs
        self.interpolations_per_pair = interpolations_per_pair
        self.include_endpoints = bool(include_endpoints)
        self.max_batches = max_batches
        self.decode = model.config.decode if decode is None else decode
        if self.decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, got {decode!r}")
        if not isinstance(reject_unsolvable, bool):
            raise ValueError(f"reject_unsolvable must be true or false, got {reject_unsolvable!r}")
        self.reject_unsolvable = reject_unsolvable
        with torch.no_grad():
            self._mean, self._std = model.encode(torch.as_tensor(self.codes, dtype=torch.long))
        self.counts = {"valid": 0, "solvable": 0, "repaired": 0, "dropped": 0}

    def points(self) -> np.ndarray:
        """The interpolation points t in [0, 1] of one pair."""
        k = self.interpolations_per_pair
        if self.include_endpoints:
            return np.linspace(0.0, 1.0, k) if k > 1 else np.zeros(1)
        return np.linspace(0.0, 1.0, k + 2)[1:-1]

    def latents(self, a: int, b: int, t: float, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The latent between training levels ``a`` (t=0) and ``b`` (t=1): slerp of the means
        plus ``noise`` times the linearly interpolated standard deviation (none: the mean)."""
        mean = slerp(float(t), self._mean[a], self._mean[b])
        if noise is None:
            return mean
        std = (1.0 - t) * self._std[a] + t * self._std[b]
        return mean + std * noise

    def decode_batch(self, rng: np.random.Generator, decode: str | None = None) -> Decodings:
        """One batch of decoded grids with their parents and points (see :class:`Decodings`)."""
        n = len(self.codes)
        chosen = rng.choice(n, size=2 * self.pairs, replace=2 * self.pairs > n)
        ts = self.points()
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        zs, parents, points = [], [], []
        for p in range(self.pairs):
            a, b = int(chosen[2 * p]), int(chosen[2 * p + 1])
            if a == b:
                b = (a + 1 + int(rng.integers(n - 1))) % n
            for t in ts:
                noise = torch.randn(self._mean.shape[1], generator=gen)
                zs.append(self.latents(a, b, t, noise))
                parents.append((a, b))
                points.append(float(t))
        decode = self.decode if decode is None else decode
        codes, repaired = self.model.decode_codes(torch.stack(zs), sample=True, decode=decode, generator=gen)
        return Decodings(codes.numpy().astype(np.uint8), repaired.numpy(), np.array(parents), np.array(points))

    def batch(self, rng: np.random.Generator) -> tuple[list[Any], dict[str, int]]:
        """One batch of decoded, checked levels and its counts."""
        decoded = self.decode_batch(rng)
        levels, counts = [], {"valid": 0, "solvable": 0, "repaired": 0, "dropped": 0}
        for grid, fixed in zip(decoded.grids, decoded.repaired.tolist()):
            level, solvable = self.check(grid)
            if level is None or (self.reject_unsolvable and not solvable):
                counts["dropped"] += 1
                continue
            levels.append(level)
            counts["valid"] += 1
            counts["solvable"] += int(solvable)
            counts["repaired"] += int(fixed)
        return levels, counts

    def check(self, grid: np.ndarray) -> tuple[Any | None, bool]:
        """(the level of a decoded grid or None if it is not a valid level, whether it is solvable)."""
        try:
            level = self.space.decode(grid)
        except ValueError:
            return None, False
        return level, bool(self.space.is_solvable(level))

    def __call__(self, rng: np.random.Generator, n: int) -> list[Any]:
        levels: list[Any] = []
        for _ in range(self.max_batches):
            got, counts = self.batch(rng)
            for k, v in counts.items():
                self.counts[k] += v
            levels.extend(got)
            if len(levels) >= n:
                break
        return levels
