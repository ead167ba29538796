"""The combinations of a global and an episodic bonus that Henaff et al. (2023) study: sum and product."""

from __future__ import annotations

from typing import Any

import numpy as np

from heldout.bonuses.base import Bonus


class Combined(Bonus):
    """``global_part`` and ``episodic_part`` side by side: their sum, or their product (the
    paper's recommendation; count.py's ``episodic * global``)."""

    def __init__(self, global_part: Bonus, episodic_part: Bonus, how: str) -> None:
        if how not in ("sum", "product"):
            raise ValueError(f"a combination is sum or product, got {how!r}")
        self.parts, self.how = (global_part, episodic_part), how
        self.learns = global_part.learns or episodic_part.learns

    def begin(self, slots: np.ndarray, obs: np.ndarray) -> None:
        for part in self.parts:
            part.begin(slots, obs)

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        g, e = (part.reward(obs, actions, next_obs) for part in self.parts)
        return g + e if self.how == "sum" else g * e

    def learn(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> dict[str, float]:
        return {k: v for part in self.parts for k, v in part.learn(obs, actions, next_obs).items()}

    def distinct_states(self) -> int | None:
        counted = [n for n in (part.distinct_states() for part in self.parts) if n is not None]
        return max(counted) if counted else None

    def state_dict(self) -> dict[str, Any]:
        return {"global": self.parts[0].state_dict(), "episodic": self.parts[1].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.parts[0].load_state_dict(state["global"])
        self.parts[1].load_state_dict(state["episodic"])
