"""95% intervals for one run's scores that respect how evaluation episodes were drawn.

Evaluation episodes are clustered by level: the levels were sampled from a family, then each
played one or more times. Two intervals:

* **exact (Clopper-Pearson)** for a proportion (solve rates: every value 0 or 1) when the
  episodes are independent draws: every level played once, or all episodes on one level.
* **bootstrap over levels, then episodes** otherwise (returns, or levels played several
  times): resample the levels with replacement, then each resampled level's episodes with
  replacement; the percentile interval of the pooled mean. A mean of resampled values never
  leaves the values' range, so a solve rate stays in [0, 1].

The gap (train minus a held-out set) bootstraps both sides independently (they are different
level sets) and takes the percentiles of the difference. Resampling is seeded: a report is
reproducible.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.stats

RESAMPLES = 2000
SEED = 0
EXACT = "exact (Clopper-Pearson)"
BOOTSTRAP = "bootstrap over levels, then episodes"


def cluster_ids(levels: Sequence[Hashable]) -> np.ndarray:
    """An integer per episode naming its level (episodes of equal levels share an id)."""
    ids: dict[Hashable, int] = {}
    return np.array([ids.setdefault(level, len(ids)) for level in levels], dtype=np.int64)


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact interval of a binomial proportion."""
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(scipy.stats.beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(scipy.stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def bootstrap_means(values: np.ndarray, clusters: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Pooled means of ``resamples`` two-stage resamples (levels, then episodes within them)."""
    _, cluster, counts = np.unique(clusters, return_inverse=True, return_counts=True)
    order = np.argsort(cluster, kind="stable")
    grid = np.zeros((len(counts), counts.max()))
    grid[cluster[order], np.arange(len(values)) - np.repeat(np.cumsum(counts) - counts, counts)] = values[order]
    picked = rng.integers(0, len(counts), (resamples, len(counts)))  # levels, with replacement
    sizes = counts[picked]
    within = (rng.random((resamples, len(counts), counts.max())) * sizes[..., None]).astype(np.int64)
    present = np.arange(counts.max()) < sizes[..., None]
    drawn = np.where(present, grid[picked[..., None], within], 0.0)
    return drawn.sum(axis=(1, 2)) / present.sum(axis=(1, 2))


def is_proportion(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def level_interval(
    values: Sequence[float] | np.ndarray, clusters: Sequence[int] | np.ndarray, proportion: bool = False
) -> dict[str, Any]:
    """Mean and 95% interval of episodes clustered by level (see the module docstring);
    ``proportion``: the values are successes (0 or 1), e.g. a solve rate."""
    x = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters)
    levels = len(np.unique(c))
    out: dict[str, Any] = {"mean": float(x.mean()), "episodes": int(len(x)), "levels": levels}
    if proportion and is_proportion(x) and (levels == len(x) or levels == 1):
        low, high = clopper_pearson(int(x.sum()), len(x))
        return {**out, "ci_low": low, "ci_high": high, "interval": EXACT}
    means = bootstrap_means(x, c, RESAMPLES, np.random.default_rng(SEED))
    low, high = np.percentile(means, [2.5, 97.5])
    return {**out, "ci_low": float(low), "ci_high": float(high), "interval": BOOTSTRAP}


def gap_interval(
    a: np.ndarray, a_clusters: np.ndarray, b: np.ndarray, b_clusters: np.ndarray
) -> dict[str, Any]:
    """Mean of ``a`` minus mean of ``b``: both sides bootstrapped independently, percentiles of
    the difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(SEED)
    diffs = bootstrap_means(a, np.asarray(a_clusters), RESAMPLES, rng) - bootstrap_means(
        b, np.asarray(b_clusters), RESAMPLES, rng
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"mean": float(a.mean() - b.mean()), "ci_low": float(low), "ci_high": float(high), "interval": BOOTSTRAP}
