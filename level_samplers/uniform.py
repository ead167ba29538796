"""Uniform sampling (domain randomisation): the baseline every sampler is compared with.

A finite set is drawn uniformly; an unbounded space draws ``levels(rng)``. Scores do not
change the sampling, but they are kept (the latest per level; for an unbounded space the
``capacity`` most recently scored levels) so the same numbers can be logged as for PLR.
No draw counts as a replay.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import numpy as np

from heldout.level_samplers.base import (
    Level,
    LevelSampler,
    check_capacity,
    check_score_value,
    resolve_levels,
    rng_state,
    set_rng_state,
)
from heldout.level_samplers.scores import check_score_name


class UniformSampler(LevelSampler):
    """Uniform draws.

    Args:
        levels: a finite sequence of levels, or a callable ``rng -> new level``.
        score: the score the glue computes for logging (default ``value_l1``).
        capacity: how many scored levels of an unbounded space to remember (default 4000).
        seed: seeds the sampler's own random generator.
    """

    name = "uniform"
    trains_on_new_levels = True

    def __init__(self, levels: Any, *, score: str = "value_l1", capacity: int | None = None, seed: int = 0) -> None:
        finite_levels, draw = resolve_levels(levels)
        self.finite = finite_levels is not None
        self.score_name = check_score_name(score)
        self._capacity = check_capacity(capacity, self.finite)  # None for a finite set
        self._levels: tuple[Level, ...] = finite_levels or ()
        self._held = frozenset(self._levels)
        self._draw = draw
        self._scores: OrderedDict[Level, float] = OrderedDict()
        self._max_returns: dict[Level, float] = {}
        self._outstanding: dict[Level, int] = {}
        self._rng = np.random.default_rng(seed)

    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        if self.finite:
            return self._levels[int(self._rng.integers(len(self._levels)))], False
        assert self._draw is not None
        level = self._draw(self._rng)
        self._outstanding[level] = self._outstanding.get(level, 0) + 1
        return level, False

    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        value = check_score_value(level, score)
        if self.finite:
            if level not in self._held:
                raise ValueError(f"update: level {level!r} is not held by this sampler (in its level set)")
        else:
            pending = self._outstanding.get(level, 0)
            if pending == 0 and level not in self._scores:
                raise ValueError(f"update: level {level!r} was never handed out by this sampler")
            if pending > 1:
                self._outstanding[level] = pending - 1
            elif pending == 1:
                del self._outstanding[level]
            self._scores.pop(level, None)  # re-insert as the most recent
        self._scores[level] = value
        if max_return is not None:
            self._max_returns[level] = max(self._max_returns.get(level, -np.inf), float(max_return))
        if not self.finite:
            while len(self._scores) > self._capacity:
                old, _ = self._scores.popitem(last=False)
                self._max_returns.pop(old, None)

    def probabilities(self) -> dict[Level, float]:
        """Uniform over a finite set; empty for an unbounded space (nothing is replayed)."""
        if not self.finite:
            return {}
        p = 1.0 / len(self._levels)
        return {lv: p for lv in self._levels}

    def level_scores(self) -> dict[Level, float]:
        return dict(self._scores)

    def max_return(self, level: Level) -> float | None:
        return self._max_returns.get(level)

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "finite": self.finite,
            "levels": list(self._levels),
            "scores": list(self._scores.items()),
            "max_returns": dict(self._max_returns),
            "outstanding": dict(self._outstanding),
            "rng": rng_state(self._rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") != self.name:
            raise ValueError(f"this state is from sampler {state.get('sampler')!r}, not {self.name!r}")
        if bool(state["finite"]) != self.finite or (self.finite and list(state["levels"]) != list(self._levels)):
            raise ValueError("this state was saved for a different level set; build the sampler on the same levels")
        self._scores = OrderedDict(copy.deepcopy(list(state["scores"])))
        self._max_returns = copy.deepcopy(dict(state["max_returns"]))
        self._outstanding = copy.deepcopy(dict(state["outstanding"]))
        set_rng_state(self._rng, state["rng"])
