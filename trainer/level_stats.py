"""What a curriculum trains on: statistics of the levels actually played, against the training set.

Every level is described by its family's :meth:`LevelSpace.features` (the maze:
``wall_density`` and ``shortest_path``) and by what the sampler knows of it
(:meth:`LevelSampler.level_features`; ACCEL: ``edits`` since its seed level).
:class:`PlayedLevelStats` collects the features of every episode played between two logs and
writes, under ``levels/`` (all episodes played) and, for samplers that train only on replays
(Robust PLR, ACCEL), under ``levels_trained/`` (the episodes that took gradient):

=================================  ============================================================
``{feature}_mean``                 mean over episodes (NaN values, e.g. unsolvable, left out)
``{feature}``                      histogram
``{feature}_w1``                   1-D Wasserstein distance to the training set's distribution
``{feature}_undefined_fraction``   share of episodes whose level feature is NaN (unsolvable mazes)
``episodes``                       episodes counted
=================================  ============================================================

and once, under ``levels/train_set/``, the histograms of the training set's features. The
trainer's reference is the family's ``train`` set (the distribution ``test`` shares), also when
the run trains on another set (``--env.train_set random``): that distance is the drift. An
unbounded reference is represented by ``size`` draws (:func:`reference_levels`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

Record = Callable[..., None]
_CACHE_LIMIT = 200_000
_NOT_TEXT = ("stdout", "log", "json", "csv")


def wasserstein_1d(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """The 1-D Wasserstein (earth mover's) distance between two samples: the area between
    their empirical distribution functions. NaN when either sample is empty."""
    x, y = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if x.size == 0 or y.size == 0:
        return float("nan")
    points = np.concatenate([x, y])
    points.sort(kind="mergesort")
    widths = np.diff(points)
    cdf_x = np.searchsorted(x, points[:-1], side="right") / x.size
    cdf_y = np.searchsorted(y, points[:-1], side="right") / y.size
    return float(np.sum(np.abs(cdf_x - cdf_y) * widths))


def reference_levels(level_set: Any, size: int = 1000, seed: int = 0) -> list[Any]:
    """The levels that stand for a training set: all of a finite set, else ``size`` draws."""
    if level_set.finite:
        return list(level_set.levels)
    rng = np.random.default_rng(seed)
    return [level_set.sample(rng) for _ in range(size)]


def feature_table(rows: Iterable[dict[str, float]]) -> dict[str, np.ndarray]:
    """Per-level feature dicts as one float array per feature (NaN where a level lacks it)."""
    rows = list(rows)
    names = sorted({k for row in rows for k in row})
    return {k: np.array([row.get(k, np.nan) for row in rows], dtype=np.float64) for k in names}


class PlayedLevelStats:
    """Features of the levels played, collected between logs (see the module docstring).

    Args:
        space: the level family's level space (its ``features(level)``).
        reference: the training set's levels (:func:`reference_levels`).
        sampler: asked for ``level_features(level)`` when a level is added.
    """

    def __init__(self, space: Any, reference: Sequence[Any], sampler: Any = None) -> None:
        self.space = space
        self.sampler = sampler
        self._cache: dict[Any, dict[str, float]] = {}
        self.reference = feature_table(self._features(lv) for lv in reference)
        self._played: list[dict[str, float]] = []
        self._trained: list[dict[str, float]] = []
        self._reference_logged = False

    @property
    def enabled(self) -> bool:
        """False when the family defines no level features (nothing is logged then)."""
        return bool(self.reference)

    def _features(self, level: Any) -> dict[str, float]:
        feats = self._cache.get(level)
        if feats is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            feats = self._cache[level] = dict(self.space.features(level))
        return feats

    def add(self, levels: Sequence[Any], trained: Sequence[bool] | None = None) -> None:
        """Count one played episode per level; ``trained[i]``: whether episode i took gradient."""
        if not self.enabled:
            return
        for i, level in enumerate(levels):
            row = dict(self._features(level))
            if self.sampler is not None:
                row.update(self.sampler.level_features(level))
            self._played.append(row)
            if trained is not None and trained[i]:
                self._trained.append(row)

    def summary(self, rows: Sequence[dict[str, float]] | None = None) -> dict[str, float]:
        """Means, undefined fractions and distances to the training set of ``rows`` (default: all played)."""
        table = feature_table(self._played if rows is None else rows)
        out: dict[str, float] = {"episodes": float(len(self._played if rows is None else rows))}
        for name, values in table.items():
            defined = values[np.isfinite(values)]
            if defined.size:
                out[f"{name}_mean"] = float(defined.mean())
            if name in self.reference:
                out[f"{name}_undefined_fraction"] = 1.0 - defined.size / values.size
                ref = self.reference[name]
                distance = wasserstein_1d(defined, ref[np.isfinite(ref)])
                if np.isfinite(distance):
                    out[f"{name}_w1"] = distance
        return out

    def log(self, record: Record, *, with_trained: bool = False) -> dict[str, float]:
        """Write the statistics since the last log through ``record(tag, value, exclude=...)``
        (stable-baselines3's ``logger.record``) and start counting afresh; returns ``levels/``'s."""
        if not self.enabled:
            return {}
        import torch

        if not self._reference_logged:
            for name, values in self.reference.items():
                defined = values[np.isfinite(values)]
                if defined.size:
                    record(f"levels/train_set/{name}", torch.as_tensor(defined), exclude=_NOT_TEXT)
            self._reference_logged = True
        groups = [("levels", self._played)] + ([("levels_trained", self._trained)] if with_trained else [])
        played = {}
        for prefix, rows in groups:
            if not rows:
                continue
            stats = self.summary(rows)
            played = played or stats
            for key, value in stats.items():
                record(f"{prefix}/{key}", value)
            for name, values in feature_table(rows).items():
                defined = values[np.isfinite(values)]
                if defined.size:
                    record(f"{prefix}/{name}", torch.as_tensor(defined), exclude=_NOT_TEXT)
        self._played, self._trained = [], []
        return played
