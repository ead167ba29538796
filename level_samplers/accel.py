"""ACCEL: Robust PLR whose replayed levels are edited into new ones (Parker-Holder et al. 2022).

The defaults are jaxued's ACCEL (``examples/maze_plr.py --use_accel --score_function pvl``,
DramaCow/jaxued 0f8f128; docs/fidelity.md lists each setting with its line).

Each draw is, in this order:

1. a queued **child**, if any: after every replayed episode is scored, its level is edited
   by the family's mutation operator (``space.mutate(level, rng, num_edits)``) and the child
   queued. A child plays once as a *new* level (no gradient: the agent masks its steps out
   of the loss exactly as for Robust PLR's new levels);
2. otherwise Robust PLR's draw: once ``min_fill_ratio`` of the buffer holds scores, a replay
   from the buffer with probability ``replay_prob`` (trained on), else a new level (no
   gradient) from the start distribution: the family's ``random`` generator (jaxued: DR
   levels), its ``empty`` levels (the ACCEL paper's maze runs, dcd ``base_levels: easy``) or
   the training set (``start="train"``: a uniform draw from a finite set, a fresh draw from an
   unbounded one).

A new level or a child enters the buffer with its first score while the buffer has room;
once it is full, only when its score is strictly above that of the buffer's lowest-weighted
member (the least likely replay), which it replaces (``eviction="weight"``).

Defaults: positive value loss, rank transform with temperature 0.3, staleness 0.3, replay
0.8 once half of the buffer of 4000 holds scores, 5 edit steps (the edit operator is the
family's: the maze's ``edits`` option). Earlier heldout defaults, as options: staleness 0.5,
``min_fill_ratio`` 0, ``start="empty"``; dcd's replay ramp: ``replay_schedule="ramp"``.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import numpy as np

from heldout.level_samplers.base import Level, check_choice, resolve_levels
from heldout.level_samplers.plr import RobustPLRSampler

STARTS: tuple[str, ...] = ("random", "empty", "train")


def _take(counts: dict[Level, int], level: Level) -> bool:
    """Decrement ``counts[level]`` if it is there; whether it was."""
    n = counts.get(level, 0)
    if n > 1:
        counts[level] = n - 1
    elif n == 1:
        del counts[level]
    return n > 0


class ACCELSampler(RobustPLRSampler):
    """ACCEL over a buffer of generated and edited levels.

    Args:
        levels: the training set (finite sequence, or callable ``rng -> level``); new
            levels come from it when ``start="train"``.
        space: the level family's level space: ``mutate`` edits levels, ``generate(start,
            rng)`` makes the start levels. The trainer passes it.
        start: where new levels come from: ``random`` (the family's DR generator, jaxued),
            ``empty`` (the ACCEL paper's empty rooms) or ``train`` (the training set).
        num_edits: edit steps per child.
        replay_schedule: ``fixed`` (jaxued) or ``ramp`` (dcd: min(fill, replay_prob)).
        score, score_transform, temperature, staleness_coef, staleness_transform,
        staleness_temperature, score_ema_alpha, replay_prob, min_fill_ratio, capacity,
        eviction, seed: as for :class:`~heldout.level_samplers.plr.PLRSampler`.
    """

    name = "accel"

    def __init__(
        self,
        levels: Any,
        *,
        space: Any = None,
        start: str = "random",
        num_edits: int = 5,
        score: str = "positive_value_loss",
        score_transform: str = "rank",
        temperature: float = 0.3,
        staleness_coef: float = 0.3,
        staleness_transform: str = "power",
        staleness_temperature: float = 1.0,
        score_ema_alpha: float = 1.0,
        replay_schedule: str = "fixed",
        replay_prob: float = 0.8,
        min_fill_ratio: float = 0.5,
        capacity: int | None = None,
        eviction: str = "weight",
        seed: int = 0,
    ) -> None:
        self.start = check_choice("start", start, STARTS)
        check_choice("replay_schedule", replay_schedule, ("fixed", "ramp"))
        if isinstance(num_edits, bool) or not isinstance(num_edits, int | np.integer) or num_edits < 1:
            raise ValueError(f"num_edits must be an integer >= 1, got {num_edits!r}")
        self.num_edits = int(num_edits)
        if space is None or not callable(getattr(space, "mutate", None)):
            raise ValueError(
                "accel edits levels with the level family's mutation operator and needs its level space: "
                "level_samplers.make('accel', levels, space=family.level_space()) (heldout train passes it)"
            )
        self._space = space
        finite, draw = resolve_levels(levels)
        if start != "train":
            source = self._generated_level
        elif finite is not None:
            source = lambda rng, seq=finite: seq[int(rng.integers(len(seq)))]  # noqa: E731
        else:
            source = draw
        self._check_space(source)
        super().__init__(
            source,
            score=score,
            score_transform=score_transform,
            temperature=temperature,
            staleness_coef=staleness_coef,
            staleness_transform=staleness_transform,
            staleness_temperature=staleness_temperature,
            score_ema_alpha=score_ema_alpha,
            replay_schedule=replay_schedule,
            replay_prob=replay_prob,
            min_fill_ratio=min_fill_ratio,
            capacity=capacity,
            eviction=eviction,
            seed=seed,
        )
        self._children: deque[tuple[Level, int]] = deque()
        self._edits: dict[Level, int] = {}
        self._pending_replays: dict[Level, int] = {}
        self._pending_children: dict[Level, int] = {}
        self._children_played = 0
        self._children_accepted = 0

    def _generated_level(self, rng: np.random.Generator) -> Level:
        return self._space.generate(self.start, rng)

    def _check_space(self, source: Any) -> None:
        """Fail now, not mid-training, when the space cannot make or edit levels."""
        probe = np.random.default_rng(0)
        try:
            self._space.mutate(source(probe), probe, 1)
        except NotImplementedError as err:
            raise ValueError(f"accel cannot run on this level family: {err}") from None

    # -- sampling ------------------------------------------------------------------------------
    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        if self._children:
            child, edits = self._children.popleft()
            self._episode_count += 1
            slot = self._index.get(child)
            if slot is not None:
                self._last_sampled[slot] = self._episode_count
            self._outstanding[child] = self._outstanding.get(child, 0) + 1
            self._pending_children[child] = self._pending_children.get(child, 0) + 1
            self._edits.setdefault(child, edits)
            return child, False
        level, replayed = super().sample_with_replay_flag()
        if replayed:
            self._pending_replays[level] = self._pending_replays.get(level, 0) + 1
        else:
            self._edits.setdefault(level, 0)
        return level, replayed

    # -- learning ------------------------------------------------------------------------------
    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        super().update(level, score, max_return=max_return)  # raises before any change for a stranger
        was_replay = _take(self._pending_replays, level)
        if _take(self._pending_children, level):
            self._children_played += 1
            self._children_accepted += int(level in self._index)
        if was_replay:
            child = self._space.mutate(level, self._rng, self.num_edits)
            self._children.append((child, self._edits.get(level, 0) + self.num_edits))
        self._forget_if_gone(level)

    def _on_evict(self, level: Level) -> None:
        self._forget_if_gone(level)

    def _forget_if_gone(self, level: Level) -> None:
        if level not in self._index and level not in self._outstanding:
            self._edits.pop(level, None)

    # -- what the trainer logs -----------------------------------------------------------------
    def level_features(self, level: Level) -> dict[str, float]:
        edits = self._edits.get(level)
        return {} if edits is None else {"edits": float(edits)}

    def diagnostics(self) -> dict[str, float]:
        buffer = [self._edits.get(lv, 0) for lv in self.level_scores()]
        played = self._children_played
        return {
            "buffer_size": float(self.num_seen),
            "children_played": float(played),
            "children_accepted": float(self._children_accepted),
            "edits_accepted_fraction": self._children_accepted / played if played else 0.0,
            "children_queued": float(len(self._children)),
            "buffer_mean_edits": float(np.mean(buffer)) if buffer else 0.0,
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "children": [list(item) for item in self._children],
            "edits": [[lv, n] for lv, n in self._edits.items()],
            "pending_replays": [[lv, n] for lv, n in self._pending_replays.items()],
            "pending_children": [[lv, n] for lv, n in self._pending_children.items()],
            "children_played": self._children_played,
            "children_accepted": self._children_accepted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        state = copy.deepcopy(state)
        self._children = deque((lv, int(n)) for lv, n in state["children"])
        self._edits = {lv: int(n) for lv, n in state["edits"]}
        self._pending_replays = {lv: int(n) for lv, n in state["pending_replays"]}
        self._pending_children = {lv: int(n) for lv, n in state["pending_children"]}
        self._children_played = int(state["children_played"])
        self._children_accepted = int(state["children_accepted"])
