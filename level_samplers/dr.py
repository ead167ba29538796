"""Domain randomisation (``dr``): a fresh level from the level set's generator for every
episode, no replay (the DR baseline of the UED literature).

DR needs an unbounded level set (a callable ``rng -> level``, e.g. the maze's ``random``
set); for uniform draws from a finite set use ``uniform``. Like ``uniform`` it keeps the
latest score of the ``capacity`` most recently scored levels for logging only.
"""

from __future__ import annotations

from typing import Any

from heldout.level_samplers.base import Level, resolve_levels
from heldout.level_samplers.uniform import UniformSampler


class DRSampler(UniformSampler):
    """A new generated level for every episode.

    Args:
        levels: a callable ``rng -> new level`` (or an unbounded level set).
        score: the score the glue computes for logging (default ``value_l1``).
        capacity: how many scored levels to remember for logging (default 4000).
        seed: seeds the sampler's own random generator.
    """

    name = "dr"

    def __init__(self, levels: Any, *, score: str = "value_l1", capacity: int | None = None, seed: int = 0) -> None:
        if resolve_levels(levels)[0] is not None:
            raise ValueError(
                "dr draws a new level for every episode from a generator, so it needs an unbounded level "
                "set (heldout train --env.train_set random); for uniform draws from a finite set use 'uniform'"
            )
        super().__init__(levels, score=score, capacity=capacity, seed=seed)
        self._generated = 0

    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        self._generated += 1
        return super().sample_with_replay_flag()

    def diagnostics(self) -> dict[str, float]:
        return {"levels_generated": float(self._generated)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generated": self._generated}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._generated = int(state["generated"])
