"""A sliding-window UCB bandit over a fixed list of arms, as UCB-DrAC uses it.

Choose ``argmax_a Q_a + c * sqrt(ln N / N_a)`` (ties: the lowest index), where, as in the
published code, every arm starts with one pull (``N_a = 1 + pulls of a``, ``N = 1 + all
pulls``) and ``Q_a`` is the mean of arm a's last ``window`` rewards (0 before its first). The
first choice is therefore arm 0. Its state is plain data for checkpoints.
"""

from __future__ import annotations

import math
from typing import Any


class UCBBandit:
    """``choose()`` an arm, later ``reward(arm, value)`` it; ``state_dict`` / ``load_state_dict``."""

    def __init__(self, num_arms: int, c: float, window: int) -> None:
        if isinstance(num_arms, bool) or not isinstance(num_arms, int) or num_arms < 1:
            raise ValueError(f"a bandit needs at least one arm, got {num_arms!r}")
        if not c >= 0:
            raise ValueError(f"the exploration coefficient c must be >= 0, got {c!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"the window must be an integer >= 1, got {window!r}")
        self.c = float(c)
        self.window = window
        self.pulls = [0] * num_arms
        self.rewards: list[list[float]] = [[] for _ in range(num_arms)]

    @property
    def num_arms(self) -> int:
        return len(self.pulls)

    def q_values(self) -> list[float]:
        """Mean of each arm's last ``window`` rewards (0.0 before its first)."""
        return [sum(r) / len(r) if r else 0.0 for r in self.rewards]

    def scores(self) -> list[float]:
        """The UCB score of every arm: Q + c sqrt(ln N / N_a)."""
        total = 1 + sum(self.pulls)
        return [q + self.c * math.sqrt(math.log(total) / (1 + n)) for q, n in zip(self.q_values(), self.pulls)]

    def choose(self) -> int:
        """The arm with the highest UCB score (the lowest index among equals)."""
        scores = self.scores()
        return scores.index(max(scores))

    def reward(self, arm: int, value: float) -> None:
        """Count one pull of ``arm`` with reward ``value`` (kept in its window)."""
        if not 0 <= arm < self.num_arms:
            raise ValueError(f"arm {arm!r} is not one of 0..{self.num_arms - 1}")
        if not math.isfinite(value):
            raise ValueError(f"a bandit reward must be a finite number, got {value!r}")
        self.pulls[arm] += 1
        self.rewards[arm] = (self.rewards[arm] + [float(value)])[-self.window :]

    def state_dict(self) -> dict[str, Any]:
        """Plain data: pulls and the windows of rewards per arm (and the settings, for checking)."""
        return {"c": self.c, "window": self.window, "pulls": list(self.pulls), "rewards": [list(r) for r in self.rewards]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["pulls"]) != self.num_arms or state["window"] != self.window or state["c"] != self.c:
            raise ValueError(
                f"bandit state for {len(state['pulls'])} arms (c={state['c']}, window={state['window']}) does not fit "
                f"this bandit of {self.num_arms} arms (c={self.c}, window={self.window}); resume with the run's config"
            )
        self.pulls = [int(n) for n in state["pulls"]]
        self.rewards = [[float(v) for v in r] for r in state["rewards"]]
