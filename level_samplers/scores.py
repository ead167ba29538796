"""Level scores: small pure functions of one episode segment.

A segment is the steps of one episode that lie in one rollout (or the whole episode). All
arrays are indexed by step ``t = 0 .. T-1``; nothing here writes to its inputs.

================  ==================================================================  ============
name              score                                                                 needs
================  ==================================================================  ============
value_l1          mean |A_t|                                                            advantages
positive_value_loss  mean max(A_t, 0)                                                   advantages
gae               mean A_t (signed)                                                     advantages
max_mc            mean (R_max - V(s_t)), R_max the highest return seen on the level     values
one_step_td       mean |r_t + gamma V(s_{t+1}) - V(s_t)|, V(s_T) = ``next_value``        rewards, values
policy_entropy    mean H(pi(.|s_t)) / log |A|                                           probs
least_confidence  mean (1 - max_a pi(a|s_t))                                            probs
min_margin        1 - mean (pi_top1 - pi_top2)                                          probs
================  ==================================================================  ============

``A_t`` is the GAE advantage (see :func:`compute_gae`). ``next_value`` is the value of the
state after the segment's last step: 0 when that step ended the episode (a terminal
state has value 0), the bootstrap value when the segment was cut by the end of a rollout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCORE_NAMES: tuple[str, ...] = (
    "gae",
    "least_confidence",
    "max_mc",
    "min_margin",
    "one_step_td",
    "policy_entropy",
    "positive_value_loss",
    "value_l1",
)
ADVANTAGE_SCORES = frozenset({"value_l1", "positive_value_loss", "gae"})
DISTRIBUTION_SCORES = frozenset({"policy_entropy", "least_confidence", "min_margin"})
"""Scores computed from the policy's action probabilities at each step."""

ArrayLike = Sequence[float] | np.ndarray


def check_score_name(name: str) -> str:
    if name not in SCORE_NAMES:
        raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORE_NAMES)}")
    return name


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
    return float(float(max_return) - v.mean())


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
    check_score_name(name)

    def need(**inputs: object) -> None:
        missing = [k for k, v in inputs.items() if v is None]
        if missing:
            raise ValueError(f"score {name!r} needs {', '.join(missing)}")

    if name in ADVANTAGE_SCORES:
        need(advantages=advantages)
        return _BY_ADVANTAGE[name](advantages)  # type: ignore[arg-type]
    if name == "max_mc":
        need(values=values, max_return=max_return)
        return max_mc(values, max_return)  # type: ignore[arg-type]
    if name == "one_step_td":
        need(rewards=rewards, values=values, next_value=next_value, gamma=gamma)
        return one_step_td(rewards, values, next_value, gamma)  # type: ignore[arg-type]
    need(probs=probs)
    return _BY_PROBS[name](probs)  # type: ignore[arg-type]


_BY_ADVANTAGE = {"value_l1": value_l1, "positive_value_loss": positive_value_loss, "gae": gae}
_BY_PROBS = {"policy_entropy": policy_entropy, "least_confidence": least_confidence, "min_margin": min_margin}
