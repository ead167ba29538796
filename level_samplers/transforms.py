"""Score transforms: turn per-level numbers (scores or staleness) into a distribution.

Every function here is pure: it copies its input, never writes to it, and returns a new
array of non-negative weights that sum to 1. When every weight would be zero (for example
``power`` over all-zero scores) the result is uniform, so a sampler can always draw.

=============  ==========================================================================
``rank``       h_i = (1 / rank_i) ** (1 / temperature); rank 1 = highest value; ties keep
               the order of the input (the earlier entry gets the better rank)
``power``      h_i = max(x_i, 0) ** (1 / temperature)
``softmax``    h_i = exp(x_i / temperature)
``eps_greedy`` epsilon / n everywhere, plus 1 - epsilon on the (first) highest value
``constant``   h_i = 1 (uniform)
=============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

TRANSFORMS: tuple[str, ...] = ("constant", "eps_greedy", "power", "rank", "softmax")


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.array(values, dtype=np.float64, copy=True)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"transforms take a non-empty 1-D array of values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("transforms take finite values; got NaN or infinity")
    return x


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return t


def _normalise(weights: np.ndarray) -> np.ndarray:
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(weights.size, 1.0 / weights.size)
    return weights / total


def rank_weights(values: Sequence[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(1 / rank) ** (1 / temperature), normalised; rank 1 is the highest value."""
    x = _as_values(values)
    t = _check_temperature(temperature)
    order = np.argsort(-x, kind="stable")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(1, x.size + 1, dtype=np.float64)
    return _normalise((1.0 / ranks) ** (1.0 / t))


def power_weights(values: Sequence[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """max(x, 0) ** (1 / temperature), normalised (uniform when every x <= 0)."""
    x = np.clip(_as_values(values), 0.0, None)
    t = _check_temperature(temperature)
    top = x.max()
    if top <= 0:
        return np.full(x.size, 1.0 / x.size)
    # Dividing by the maximum first changes nothing after normalising but avoids overflow.
    return _normalise((x / top) ** (1.0 / t))


def softmax_weights(values: Sequence[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """exp(x / temperature), normalised (computed stably)."""
    x = _as_values(values)
    t = _check_temperature(temperature)
    return _normalise(np.exp((x - x.max()) / t))


def eps_greedy_weights(values: Sequence[float] | np.ndarray, epsilon: float = 0.05) -> np.ndarray:
    """epsilon / n on every entry plus 1 - epsilon on the first highest value."""
    x = _as_values(values)
    eps = float(epsilon)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps_greedy_epsilon must be in [0, 1], got {epsilon!r}")
    w = np.full(x.size, eps / x.size)
    w[int(np.argmax(x))] += 1.0 - eps
    return w


def constant_weights(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Uniform weights, whatever the values."""
    x = _as_values(values)
    return np.full(x.size, 1.0 / x.size)


def apply(
    name: str,
    values: Sequence[float] | np.ndarray,
    *,
    temperature: float = 1.0,
    epsilon: float = 0.05,
) -> np.ndarray:
    """The transform ``name`` of ``values``: a new array of weights summing to 1.

    ``temperature`` is used by ``rank``, ``power`` and ``softmax``; ``epsilon`` by
    ``eps_greedy``.
    """
    table: dict[str, Callable[[], np.ndarray]] = {
        "rank": lambda: rank_weights(values, temperature),
        "power": lambda: power_weights(values, temperature),
        "softmax": lambda: softmax_weights(values, temperature),
        "eps_greedy": lambda: eps_greedy_weights(values, epsilon),
        "constant": lambda: constant_weights(values),
    }
    if name not in table:
        raise ValueError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return table[name]()
