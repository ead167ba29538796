"""Prioritized Level Replay (PLR) and Robust PLR.

Each level held keeps a score S_i and the episode count C_i at which it was last sampled;
with c the number of levels sampled so far, its staleness is c - C_i. Among the levels that
have a score ("seen"), the replay distribution is

    P = (1 - staleness_coef) * P_S + staleness_coef * P_C
    P_S = score_transform(S; temperature)
    P_C = staleness_transform(c - C; staleness_temperature)

(see :mod:`heldout.level_samplers.transforms`; ``rank`` gives h_i = (1/rank_i)**(1/temperature)).

Every draw first decides between *replay* (a draw from P) and a *new* level:

``proportionate``  replay with probability (number seen) / (number of levels)
``sequential``     new (unseen) levels until every level is seen, then always replay
``fixed``          replay with probability ``replay_prob``; otherwise a new level: an unseen
                   one while any remain, then a uniform draw from the whole set (finite
                   sets), or a fresh ``levels(rng)`` (unbounded spaces)
``ramp``           replay with probability min(fill, ``replay_prob``), fill = the fraction
                   of the buffer holding scores (dcd's ``proportionate`` schedule on a
                   buffer, ``level_replay/level_sampler.py`` 614-619); new levels as ``fixed``

A new level of a finite set is an unseen level that no other slot is already playing
unscored, when there is one (so the first draws of many parallel slots cover distinct
levels). No replay happens before ``min_fill_ratio`` of the buffer holds scores (and at least one
level does). For an unbounded level space the buffer holds at most ``capacity`` levels: a new
level's first score inserts it; when the buffer is full it replaces the member chosen by
``eviction`` (``score``: the lowest-scored; ``weight``: the lowest replay weight, jaxued's
and dcd's rule) if its score is strictly higher than that member's.

Defaults are the PLR paper's Procgen settings (facebookresearch/level-replay, see
docs/fidelity.md): value_l1, rank, temperature 0.1, staleness mix 0.1 (power transform,
temperature 1), scores replaced by the latest (alpha 1), proportionate replay. Robust PLR
(``robust_plr``) defaults to ``fixed`` replay with ``replay_prob`` 0.5 and sets
``trains_on_new_levels = False``: the agent must take no gradient on episodes of levels that
were not replayed. Where the published runs of a family used other settings, the sampler's
:attr:`~heldout.level_samplers.base.LevelSampler.family_defaults` holds them (Robust PLR on
the maze: jaxued's); the trainer applies them when it resolves a run's config.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from heldout.level_samplers import transforms
from heldout.level_samplers.base import (
    Level,
    LevelSampler,
    check_capacity,
    check_choice,
    check_positive,
    check_score_value,
    check_unit,
    resolve_levels,
    rng_state,
    set_rng_state,
)
from heldout.level_samplers.scores import check_score_name

REPLAY_SCHEDULES: tuple[str, ...] = ("fixed", "proportionate", "sequential", "ramp")
EVICTIONS: tuple[str, ...] = ("score", "weight")


class PLRSampler(LevelSampler):
    """Prioritized Level Replay over a finite level set or a buffer of an unbounded space.

    Args:
        levels: a finite sequence of levels, or a callable ``rng -> new level``.
        score: the per-episode score the glue computes (``value_l1``, ``max_mc``...).
        score_transform: ``rank``, ``power``, ``softmax``, ``eps_greedy`` or ``constant``.
        temperature: the score transform's temperature (beta), > 0.
        staleness_coef: weight of the staleness distribution in the mix, in [0, 1].
        staleness_transform: the transform applied to staleness (default ``power``).
        staleness_temperature: its temperature, > 0.
        eps_greedy_epsilon: epsilon of the ``eps_greedy`` transform, in [0, 1].
        score_ema_alpha: S <- (1 - alpha) S + alpha * new score, in (0, 1]; 1 replaces.
            A level's first score is always stored as is.
        replay_schedule: ``proportionate``, ``sequential``, ``fixed`` or ``ramp``; default
            ``proportionate`` for a finite set without ``replay_prob``, else ``fixed``.
        replay_prob: the replay probability of the ``fixed`` schedule, the cap of ``ramp``
            (default 0.5).
        min_fill_ratio: fraction of the buffer (level set) that must hold scores before
            any replay, in [0, 1].
        capacity: buffer size for an unbounded level space (default 4000).
        eviction: which member of a full buffer a better new level replaces: ``score``
            (the lowest-scored) or ``weight`` (the lowest replay weight).
        seed: seeds the sampler's own random generator.
    """

    name = "plr"
    trains_on_new_levels = True
    _default_schedule_fixed = False

    def __init__(
        self,
        levels: Any,
        *,
        score: str = "value_l1",
        score_transform: str = "rank",
        temperature: float = 0.1,
        staleness_coef: float = 0.1,
        staleness_transform: str = "power",
        staleness_temperature: float = 1.0,
        eps_greedy_epsilon: float = 0.05,
        score_ema_alpha: float = 1.0,
        replay_schedule: str | None = None,
        replay_prob: float | None = None,
        min_fill_ratio: float = 0.0,
        capacity: int | None = None,
        eviction: str = "score",
        seed: int = 0,
    ) -> None:
        finite_levels, draw = resolve_levels(levels)
        self.finite = finite_levels is not None
        self.score_name = check_score_name(score)
        self.score_transform = check_choice("score_transform", score_transform, transforms.TRANSFORMS)
        self.temperature = check_positive("temperature", temperature)
        self.staleness_coef = check_unit("staleness_coef", staleness_coef)
        self.staleness_transform = check_choice("staleness_transform", staleness_transform, transforms.TRANSFORMS)
        self.staleness_temperature = check_positive("staleness_temperature", staleness_temperature)
        self.eps_greedy_epsilon = check_unit("eps_greedy_epsilon", eps_greedy_epsilon)
        self.score_ema_alpha = check_unit("score_ema_alpha", score_ema_alpha, open_low=True)
        self.min_fill_ratio = check_unit("min_fill_ratio", min_fill_ratio)
        self.eviction = check_choice("eviction", eviction, EVICTIONS)
        self.replay_schedule, self.replay_prob = self._resolve_schedule(replay_schedule, replay_prob)

        cap = check_capacity(capacity, self.finite)
        if cap is None:
            assert finite_levels is not None
            self._capacity = len(finite_levels)
            self._levels: list[Level | None] = list(finite_levels)
        else:
            self._capacity = cap
            self._levels = [None] * cap
        self._draw = draw
        self._index: dict[Level, int] = {lv: i for i, lv in enumerate(self._levels) if lv is not None}
        self._seen = np.zeros(self._capacity, dtype=bool)
        self._scores = np.zeros(self._capacity, dtype=np.float64)
        self._last_sampled = np.zeros(self._capacity, dtype=np.int64)
        self._max_returns = np.full(self._capacity, np.nan, dtype=np.float64)
        self._in_flight = np.zeros(self._capacity, dtype=bool)  # finite: drawn as new, no score yet
        self._episode_count = 0
        self._outstanding: dict[Level, int] = {}  # unbounded: draws not yet answered by update()
        self._rng = np.random.default_rng(seed)

    def _resolve_schedule(self, schedule: str | None, replay_prob: float | None) -> tuple[str, float | None]:
        if schedule is None:
            fixed = self._default_schedule_fixed or replay_prob is not None or not self.finite
            schedule = "fixed" if fixed else "proportionate"
        check_choice("replay_schedule", schedule, REPLAY_SCHEDULES)
        if schedule not in ("fixed", "ramp"):
            if replay_prob is not None:
                raise ValueError(
                    f"replay_prob applies only to replay_schedule='fixed' (got replay_schedule={schedule!r}); "
                    "drop replay_prob or use the fixed or ramp schedule"
                )
            if not self.finite:
                raise ValueError(
                    f"replay_schedule={schedule!r} needs a finite level set; for an unbounded level space "
                    "use replay_schedule='fixed' with replay_prob"
                )
            return schedule, None
        return schedule, check_unit("replay_prob", 0.5 if replay_prob is None else replay_prob)

    # -- the replay distribution ----------------------------------------------------------------
    def _replay_weights(self) -> np.ndarray:
        """P over buffer slots (zero where no score yet); all zero when nothing is seen."""
        weights = np.zeros(self._capacity, dtype=np.float64)
        seen = np.flatnonzero(self._seen)
        if seen.size == 0:
            return weights
        p = transforms.apply(
            self.score_transform, self._scores[seen], temperature=self.temperature, epsilon=self.eps_greedy_epsilon
        )
        if self.staleness_coef > 0:
            staleness = (self._episode_count - self._last_sampled[seen]).astype(np.float64)
            p_c = transforms.apply(
                self.staleness_transform,
                staleness,
                temperature=self.staleness_temperature,
                epsilon=self.eps_greedy_epsilon,
            )
            p = (1.0 - self.staleness_coef) * p + self.staleness_coef * p_c
        weights[seen] = p
        return weights

    def probabilities(self) -> dict[Level, float]:
        weights = self._replay_weights()
        return {lv: float(weights[i]) for i, lv in enumerate(self._levels) if lv is not None}

    def level_scores(self) -> dict[Level, float]:
        return {self._levels[i]: float(self._scores[i]) for i in np.flatnonzero(self._seen).tolist()}

    def staleness(self) -> dict[Level, int]:
        """Episodes sampled since each seen level was last sampled."""
        return {
            self._levels[i]: int(self._episode_count - self._last_sampled[i]) for i in np.flatnonzero(self._seen).tolist()
        }

    def max_return(self, level: Level) -> float | None:
        i = self._index.get(level)
        if i is None or np.isnan(self._max_returns[i]):
            return None
        return float(self._max_returns[i])

    @property
    def num_seen(self) -> int:
        return int(self._seen.sum())

    @property
    def capacity(self) -> int:
        """How many levels the sampler can hold (the level set's size when finite)."""
        return self._capacity

    # -- sampling -----------------------------------------------------------------------------
    def _decide_replay(self) -> bool:
        n_seen = int(self._seen.sum())
        if n_seen == 0 or n_seen < self.min_fill_ratio * self._capacity:
            return False
        if self.replay_schedule == "fixed":
            return bool(self._rng.random() < self.replay_prob)
        if self.replay_schedule == "ramp":
            return bool(self._rng.random() < min(n_seen / self._capacity, self.replay_prob))
        if n_seen == self._capacity:
            return True
        if self.replay_schedule == "sequential":
            return False
        return bool(self._rng.random() < n_seen / self._capacity)

    def _mark_sampled(self, slot: int) -> None:
        self._episode_count += 1
        self._last_sampled[slot] = self._episode_count

    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        if self._decide_replay():
            return self._sample_replay(), True
        return self._sample_new(), False

    def _sample_replay(self) -> Level:
        """A level of the buffer, drawn from the replay distribution (some level must be scored)."""
        weights = self._replay_weights()
        cumulative = np.cumsum(weights)
        slot = int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right"))
        slot = min(slot, int(np.flatnonzero(weights)[-1]))
        self._mark_sampled(slot)
        level = self._levels[slot]
        if not self.finite:
            self._outstanding[level] = self._outstanding.get(level, 0) + 1
        return level

    def _sample_new(self) -> Level:
        if self.finite:
            # Unseen levels not already being played first (other slots may hold unscored
            # draws), then any unseen level, then (all seen) any level.
            pool = np.flatnonzero(~self._seen & ~self._in_flight)
            if pool.size == 0:
                pool = np.flatnonzero(~self._seen)
            if pool.size == 0:
                pool = np.arange(self._capacity)
            slot = int(pool[self._rng.integers(pool.size)])
            self._mark_sampled(slot)
            self._in_flight[slot] = True
            return self._levels[slot]
        assert self._draw is not None
        level = self._draw(self._rng)
        try:
            hash(level)
        except TypeError:
            raise ValueError(f"the level generator returned an unhashable level {level!r}") from None
        self._episode_count += 1
        slot = self._index.get(level)
        if slot is not None:
            self._last_sampled[slot] = self._episode_count
        self._outstanding[level] = self._outstanding.get(level, 0) + 1
        return level

    # -- learning -------------------------------------------------------------------------------
    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        value = check_score_value(level, score)
        slot = self._index.get(level)
        pending = self._outstanding.get(level, 0)
        if slot is None and pending == 0:
            where = "in its level set" if self.finite else "in its buffer and never handed it out"
            raise ValueError(f"update: level {level!r} is not held by this sampler ({where})")
        if pending:
            if pending == 1:
                del self._outstanding[level]
            else:
                self._outstanding[level] = pending - 1
        if slot is None:
            slot = self._insert(level, value)
            if slot is None:
                return
        elif self._seen[slot]:
            alpha = self.score_ema_alpha
            self._scores[slot] = (1.0 - alpha) * self._scores[slot] + alpha * value
        else:
            self._scores[slot] = value
            self._seen[slot] = True
        self._in_flight[slot] = False
        if max_return is not None:
            r = float(max_return)
            old = self._max_returns[slot]
            self._max_returns[slot] = r if np.isnan(old) else max(old, r)

    def _insert(self, level: Level, value: float) -> int | None:
        """Put a new level with its first score into the buffer; None if it did not make it in."""
        free = np.flatnonzero(~self._seen)
        if free.size:
            slot = int(free[0])
        else:
            slot = self._eviction_slot()
            if not value > self._scores[slot]:
                return None
            evicted = self._levels[slot]
            del self._index[evicted]
            self._on_evict(evicted)
        self._place(slot, level, value)
        return slot

    def _place(self, slot: int, level: Level, value: float) -> None:
        """Put ``level`` with score ``value`` into buffer ``slot``, fresh (just sampled, no return yet)."""
        self._levels[slot] = level
        self._index[level] = slot
        self._scores[slot] = value
        self._seen[slot] = True
        self._last_sampled[slot] = self._episode_count
        self._max_returns[slot] = np.nan
        self._in_flight[slot] = False

    def _eviction_slot(self) -> int:
        """The member of a full buffer that a better new level replaces (``eviction``)."""
        if self.eviction == "weight":
            return int(np.argmin(self._replay_weights()))
        return int(np.argmin(self._scores))

    def _on_evict(self, level: Level) -> None:
        """Called when ``level`` leaves the buffer (for subclasses keeping per-level data)."""

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "finite": self.finite,
            "capacity": self._capacity,
            "levels": copy.deepcopy(self._levels),
            "seen": self._seen.copy(),
            "scores": self._scores.copy(),
            "last_sampled": self._last_sampled.copy(),
            "max_returns": self._max_returns.copy(),
            "in_flight": self._in_flight.copy(),
            "episode_count": self._episode_count,
            "outstanding": copy.deepcopy(self._outstanding),
            "rng": rng_state(self._rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") != self.name:
            raise ValueError(f"this state is from sampler {state.get('sampler')!r}, not {self.name!r}")
        if bool(state["finite"]) != self.finite or int(state["capacity"]) != self._capacity:
            raise ValueError(
                f"this state holds {'a finite set' if state['finite'] else 'an unbounded buffer'} of "
                f"{state['capacity']} levels; this sampler has {self._capacity} ({'finite' if self.finite else 'unbounded'})"
            )
        if self.finite and list(state["levels"]) != self._levels:
            raise ValueError("this state was saved for a different level set; build the sampler on the same levels")
        self._levels = copy.deepcopy(list(state["levels"]))
        self._index = {lv: i for i, lv in enumerate(self._levels) if lv is not None}
        self._seen = np.array(state["seen"], dtype=bool, copy=True)
        self._scores = np.array(state["scores"], dtype=np.float64, copy=True)
        self._last_sampled = np.array(state["last_sampled"], dtype=np.int64, copy=True)
        self._max_returns = np.array(state["max_returns"], dtype=np.float64, copy=True)
        self._in_flight = np.array(state["in_flight"], dtype=bool, copy=True)
        self._episode_count = int(state["episode_count"])
        self._outstanding = copy.deepcopy(dict(state["outstanding"]))
        set_rng_state(self._rng, state["rng"])


MAZE_ROBUST_PLR: dict[str, Any] = {
    "score": "positive_value_loss",
    "temperature": 0.3,
    "staleness_coef": 0.3,
    "replay_prob": 0.8,
    "min_fill_ratio": 0.5,
    "eviction": "weight",
}
"""Robust PLR on the maze as jaxued's ``examples/maze_plr.py`` runs it (``--score_function pvl``;
argparse defaults 877-884; buffer rules ``level_sampler.py`` 96-108, 375-404)."""


class RobustPLRSampler(PLRSampler):
    """Robust PLR (PLR-perp): replay with probability ``replay_prob`` (0.5), otherwise a new
    level, and **no gradient on the new levels' experience** (``trains_on_new_levels`` is False).
    Takes the same parameters as :class:`PLRSampler`; on the maze its defaults are jaxued's
    (:data:`MAZE_ROBUST_PLR`)."""

    name = "robust_plr"
    trains_on_new_levels = False
    _default_schedule_fixed = True
    family_defaults = {"maze": MAZE_ROBUST_PLR}
