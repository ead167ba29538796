"""Level scores: small pure functions of one episode segment, and :data:`SCORES`, their table.

A segment is the steps of one episode that lie in one rollout (or the whole episode). All
arrays are indexed by step ``t = 0 .. T-1``; nothing here writes to its inputs.

===================  ======================================================================
name                 score
===================  ======================================================================
value_l1             mean |A_t|
positive_value_loss  mean max(A_t, 0)
gae                  mean A_t (signed)
max_mc               mean (R_max - V(s_t)), R_max the highest return seen on the level
one_step_td          mean |r_t + gamma V(s_{t+1}) - V(s_t)|, V(s_T) = ``next_value``
policy_entropy       mean H(pi(.|s_t)) / log |A|
least_confidence     mean (1 - max_a pi(a|s_t))
min_margin           1 - mean (pi_top1 - pi_top2)
===================  ======================================================================

``A_t`` is the GAE advantage (see :func:`compute_gae`). ``next_value`` is the value of the
state after the segment's last step: 0 when that step ended the episode (a terminal
state has value 0), the bootstrap value when the segment was cut by the end of a rollout.

Every score but ``max_mc`` is per segment: an episode's score is the step-weighted mean of
its segments' scores. ``max_mc`` is an episode score: R_max is known only when the episode
ends, so it is computed once from the sum of the episode's values (:func:`max_mc_of_sum`).
:data:`SCORES` holds each score's function and what it needs from the rollout; the names,
their validation (:func:`check_score_name`) and all dispatch derive from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Score:
    """One row of :data:`SCORES`."""

    name: str
    function: Callable[..., float]
    """The score of one segment, called with the inputs in ``needs`` as keywords."""
    needs: tuple[str, ...]
    """What ``function`` takes from the rollout: keywords of :func:`score`."""
    episode: Callable[[float, int, float], float] | None = None
    """For an episode score (``max_mc``): ``(sum of the episode's values, its steps, R_max) ->
    score``; None for a per-segment score."""

    @property
    def per_segment(self) -> bool:
        return self.episode is None

    def __call__(self, **inputs: object) -> float:
        """``function`` of the inputs it needs (others are ignored); ``ValueError`` naming any missing."""
        missing = [k for k in self.needs if inputs.get(k) is None]
        if missing:
            raise ValueError(f"score {self.name!r} needs {', '.join(missing)}")
        return self.function(**{k: inputs[k] for k in self.needs})


def _steps(x: ArrayLike, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array (one entry per step), got shape {a.shape}")
    return a


def _probs(probs: ArrayLike) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must have shape (steps, actions) with both > 0, got {p.shape}")
    return p


# -- helpers ------------------------------------------------------------------------------------
def compute_gae(
    rewards: ArrayLike, values: ArrayLike, next_value: float, gamma: float, gae_lambda: float
) -> np.ndarray:
    """GAE advantages of one segment with no episode end inside it (a new array).

    delta_t = r_t + gamma V_{t+1} - V_t with V_T = ``next_value``;
    A_t = delta_t + gamma * lambda * A_{t+1}.
    """
    r = _steps(rewards, "rewards")
    v = _steps(values, "values")
    if r.size != v.size:
        raise ValueError(f"rewards and values differ in length ({r.size} vs {v.size})")
    next_v = np.append(v[1:], float(next_value))
    deltas = r + gamma * next_v - v
    adv = np.empty_like(deltas)
    running = 0.0
    for t in range(deltas.size - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * running
        adv[t] = running
    return adv


def softmax(logits: ArrayLike) -> np.ndarray:
    """Action probabilities from logits, row by row (a new array)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# -- advantage scores ---------------------------------------------------------------------------
def value_l1(advantages: ArrayLike) -> float:
    """Mean absolute GAE advantage (PLR's "value loss" score)."""
    return float(np.abs(_steps(advantages, "advantages")).mean())


def positive_value_loss(advantages: ArrayLike) -> float:
    """Mean of the positive part of the GAE advantages."""
    return float(np.clip(_steps(advantages, "advantages"), 0.0, None).mean())


def gae(advantages: ArrayLike) -> float:
    """Mean signed GAE advantage."""
    return float(_steps(advantages, "advantages").mean())


# -- value scores -------------------------------------------------------------------------------
def max_mc(values: ArrayLike, max_return: float) -> float:
    """Mean of (R_max - V(s_t)): how far the values are below the best return seen on the level."""
    v = _steps(values, "values")
    return max_mc_of_sum(v.sum(), v.size, max_return)


def max_mc_of_sum(value_sum: float, steps: int, max_return: float) -> float:
    """:func:`max_mc` from the sum of the values and the number of steps (R_max - mean V)."""
    return float(float(max_return) - value_sum / steps)


def one_step_td(rewards: ArrayLike, values: ArrayLike, next_value: float, gamma: float) -> float:
    """Mean absolute one-step TD error |r_t + gamma V(s_{t+1}) - V(s_t)|, V(s_T) = ``next_value``."""
    r = _steps(rewards, "rewards")
    v = _steps(values, "values")
    if r.size != v.size:
        raise ValueError(f"rewards and values differ in length ({r.size} vs {v.size})")
    next_v = np.append(v[1:], float(next_value))
    return float(np.abs(r + gamma * next_v - v).mean())


# -- distribution scores ------------------------------------------------------------------------
def policy_entropy(probs: ArrayLike) -> float:
    """Mean per-step entropy of the policy, divided by log(number of actions) (0 for one action)."""
    p = _probs(probs)
    n_actions = p.shape[1]
    if n_actions == 1:
        return 0.0
    safe = np.where(p > 0, p, 1.0)
    entropy = -(p * np.log(safe)).sum(axis=1)  # one entropy per step, 0 log 0 = 0
    return float(entropy.mean() / np.log(n_actions))


def least_confidence(probs: ArrayLike) -> float:
    """Mean of 1 - (probability of the most likely action)."""
    p = _probs(probs)
    return float((1.0 - p.max(axis=1)).mean())


def min_margin(probs: ArrayLike) -> float:
    """1 - mean gap between the two most likely actions' probabilities (0 for one action)."""
    p = _probs(probs)
    if p.shape[1] == 1:
        return 0.0
    top2 = np.sort(p, axis=1)[:, -2:]
    return float(1.0 - (top2[:, 1] - top2[:, 0]).mean())


SCORES: dict[str, Score] = {
    s.name: s
    for s in (
        Score("value_l1", value_l1, ("advantages",)),
        Score("positive_value_loss", positive_value_loss, ("advantages",)),
        Score("gae", gae, ("advantages",)),
        Score("max_mc", max_mc, ("values", "max_return"), episode=max_mc_of_sum),
        Score("one_step_td", one_step_td, ("rewards", "values", "next_value", "gamma")),
        Score("policy_entropy", policy_entropy, ("probs",)),
        Score("least_confidence", least_confidence, ("probs",)),
        Score("min_margin", min_margin, ("probs",)),
    )
}
"""Every level score by name."""

SCORE_NAMES: tuple[str, ...] = tuple(sorted(SCORES))
ADVANTAGE_SCORES = frozenset(n for n, s in SCORES.items() if s.needs == ("advantages",))
DISTRIBUTION_SCORES = frozenset(n for n, s in SCORES.items() if s.needs == ("probs",))
"""Scores computed from the policy's action probabilities at each step."""


def check_score_name(name: str) -> str:
    """``name`` if it is a score's; the one place a score name is validated."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORE_NAMES)}")
    return name


def get_score(name: str) -> Score:
    """The row of :data:`SCORES` named ``name`` (validated by :func:`check_score_name`)."""
    return SCORES[check_score_name(name)]


def score(
    name: str,
    *,
    rewards: ArrayLike | None = None,
    values: ArrayLike | None = None,
    advantages: ArrayLike | None = None,
    next_value: float | None = None,
    gamma: float | None = None,
    probs: ArrayLike | None = None,
    max_return: float | None = None,
) -> float:
    """The score ``name`` of one segment; raises ``ValueError`` naming any missing input."""
    return get_score(name)(
        rewards=rewards,
        values=values,
        advantages=advantages,
        next_value=next_value,
        gamma=gamma,
        probs=probs,
        max_return=max_return,
    )
