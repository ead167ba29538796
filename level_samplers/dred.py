"""DRED: a prioritised buffer of the training levels and of generated levels grounded in them.

Data-Regularised Environment Design (Garcin et al.) keeps the curriculum inside the training
distribution: new levels come from a generative model fitted on the training levels only (a
``generator`` callable handed in by the trainer), and the buffer stays anchored to the
training set.

* The training levels are pinned in the buffer (slots ``0 .. N-1``); generated levels fill
  the other ``capacity - N`` slots.
* Each level keeps its value_l1 score S (as in PLR) and its *grounded value* G: the highest
  true episode return ever recorded on it (:meth:`record_return`). Its grounded score is
  S' = S where G > 0 (the agent once reached the goal there), else 0.
* A generated level enters the buffer only when its grounded score is above zero, taking a
  free slot, or else the slot of the generated level with the lowest grounded score if its
  own is higher; training levels never leave.
* Replay distribution over the held levels that have a score:

      P = (1 - staleness_coef) * (eta * P_S' + (1 - eta) * P_S) + staleness_coef * P_C

  P_S = ``score_transform`` (rank, temperature 0.1) of S over the training levels,
  P_S' = ``grounded_transform`` (rank, temperature 1.0) of S' over the whole buffer,
  P_C = staleness over the training levels (``staleness_support="training"``, as in the
  published configuration) or the whole buffer; eta rises linearly from ``eta_start`` to
  ``eta_end`` as the trainer reports progress (:meth:`set_progress`, fraction of training).
* Each draw replays from P with probability ``replay_prob`` (training levels not scored yet
  come first), otherwise it proposes a new generated level. The published runner alternates
  a training rollout on replayed levels with a rollout on freshly generated levels that takes
  no gradient, so half the episodes are proposals (``replay_prob=0.5``) and
  ``trains_on_new_levels`` is False: the agent learns only from replayed episodes.

Defaults are the published settings (REFERENCE.md section 4). The sampler stays numpy-only:
the generator is any callable ``generator(rng, n) -> list of levels`` (``rng`` is the
sampler's own ``numpy.random.Generator``, so draws are reproducible from its state).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from heldout.level_samplers import transforms
from heldout.level_samplers.base import (
    DEFAULT_CAPACITY,
    Level,
    check_choice,
    check_positive,
    check_unit,
    resolve_levels,
)
from heldout.level_samplers.plr import PLRSampler

LevelGenerator = Callable[[np.random.Generator, int], Sequence[Level]]
STALENESS_SUPPORTS: tuple[str, ...] = ("training", "buffer")


class DREDSampler(PLRSampler):
    """DRED's grounded buffer (see the module docstring).

    Args:
        levels: the training levels (a finite sequence); they stay in the buffer.
        generator: ``generator(rng, n) -> levels``: about ``n`` new levels (required).
        space: the family's level space; when given, generated levels pass through its
            ``coerce`` (so a generator may return any form the space accepts).
        score: the per-episode score (default ``value_l1``).
        score_transform, temperature: P_S over the training levels (rank, 0.1).
        grounded_transform, grounded_temperature: P_S' over the buffer (rank, 1.0).
        staleness_coef: rho, the weight of P_C (0.3).
        staleness_transform, staleness_temperature: P_C's transform (power, 1.0).
        staleness_support: ``training`` (P_C over the training levels) or ``buffer``.
        eta_start, eta_end: eta at the start and at the end of training (0 -> 1).
        replay_prob: probability that a draw replays from P rather than proposes (0.5).
        capacity: buffer size, training levels included (default 4000).
        generation_batch: levels asked of the generator when its queue runs dry (36: the
            published 6 pairs x 6 interpolations).
        score_ema_alpha, eps_greedy_epsilon, seed: as for PLR.
    """

    needs_finite_levels = True  # the training levels are pinned in the buffer

    name = "dred"
    trains_on_new_levels = False

    def __init__(
        self,
        levels: Any,
        *,
        generator: LevelGenerator | None = None,
        space: Any = None,
        score: str = "value_l1",
        score_transform: str = "rank",
        temperature: float = 0.1,
        grounded_transform: str = "rank",
        grounded_temperature: float = 1.0,
        staleness_coef: float = 0.3,
        staleness_transform: str = "power",
        staleness_temperature: float = 1.0,
        staleness_support: str = "training",
        eta_start: float = 0.0,
        eta_end: float = 1.0,
        replay_prob: float = 0.5,
        capacity: int | None = None,
        generation_batch: int = 36,
        score_ema_alpha: float = 1.0,
        eps_greedy_epsilon: float = 0.05,
        seed: int = 0,
    ) -> None:
        train, _ = resolve_levels(levels)
        if train is None:
            raise ValueError("dred takes the finite training set as levels; new levels come from its generator")
        if generator is None or not callable(generator):
            raise ValueError(
                "dred needs a generator: a callable (rng, n) -> levels, e.g. heldout.generators.LevelGenerator "
                "(heldout train --sampler dred builds one from a fitted model)"
            )
        super().__init__(
            train,
            score=score,
            score_transform=score_transform,
            temperature=temperature,
            staleness_coef=staleness_coef,
            staleness_transform=staleness_transform,
            staleness_temperature=staleness_temperature,
            eps_greedy_epsilon=eps_greedy_epsilon,
            score_ema_alpha=score_ema_alpha,
            replay_prob=replay_prob,
            seed=seed,
        )
        self.grounded_transform = check_choice("grounded_transform", grounded_transform, transforms.TRANSFORMS)
        self.grounded_temperature = check_positive("grounded_temperature", grounded_temperature)
        self.staleness_support = check_choice("staleness_support", staleness_support, STALENESS_SUPPORTS)
        self.eta_start = check_unit("eta_start", eta_start)
        self.eta_end = check_unit("eta_end", eta_end)
        if isinstance(generation_batch, bool) or not isinstance(generation_batch, int) or generation_batch < 1:
            raise ValueError(f"generation_batch must be an integer >= 1, got {generation_batch!r}")
        self.generation_batch = generation_batch
        n = len(train)
        cap = DEFAULT_CAPACITY if capacity is None else capacity
        if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap <= n:
            raise ValueError(f"capacity must be an integer above the {n} training levels, got {capacity!r}")
        self.num_train = n
        self.finite = False  # generated levels make the level space unbounded
        self._generator = generator
        self._space = space
        extra = int(cap) - n
        self._capacity = int(cap)
        self._levels = self._levels + [None] * extra
        self._seen = np.concatenate([self._seen, np.zeros(extra, dtype=bool)])
        self._scores = np.concatenate([self._scores, np.zeros(extra)])
        self._last_sampled = np.concatenate([self._last_sampled, np.zeros(extra, dtype=np.int64)])
        self._max_returns = np.concatenate([self._max_returns, np.full(extra, np.nan)])
        self._in_flight = np.concatenate([self._in_flight, np.zeros(extra, dtype=bool)])
        self._grounded = np.full(self._capacity, np.nan)  # highest true episode return per slot
        self._pending_returns: dict[Level, float] = {}  # proposals not (yet) in the buffer
        self._queue: list[Level] = []
        self._progress = 0.0
        self._proposed = 0
        self._accepted = 0

    # -- the schedule ---------------------------------------------------------------------------
    def set_progress(self, fraction: float) -> None:
        """Tell the sampler how far training is (0 at the start, 1 at the end): sets eta."""
        self._progress = float(min(max(float(fraction), 0.0), 1.0))

    @property
    def eta(self) -> float:
        return self.eta_start + (self.eta_end - self.eta_start) * self._progress

    # -- grounding --------------------------------------------------------------------------------
    def record_return(self, level: Level, episode_return: float) -> None:
        """Record a finished episode's true return on ``level`` (its grounded value is the highest)."""
        r = float(episode_return)
        slot = self._index.get(level)
        if slot is not None:
            old = self._grounded[slot]
            self._grounded[slot] = r if np.isnan(old) else max(old, r)
        elif level in self._outstanding:
            self._pending_returns[level] = max(self._pending_returns.get(level, r), r)

    def grounded_scores(self) -> np.ndarray:
        """S' per buffer slot: the score where the grounded value is above 0, else 0."""
        grounded = np.nan_to_num(self._grounded, nan=-np.inf) > 0
        return np.where(self._seen & grounded, self._scores, 0.0)

    # -- the replay distribution ----------------------------------------------------------------
    def _component(self, name: str, values: np.ndarray, slots: np.ndarray, temperature: float) -> np.ndarray:
        """A distribution over all slots, supported on ``slots`` (all zero if there are none)."""
        out = np.zeros(self._capacity)
        if slots.size:
            out[slots] = transforms.apply(name, values[slots], temperature=temperature, epsilon=self.eps_greedy_epsilon)
        return out

    def _replay_weights(self) -> np.ndarray:
        seen = np.flatnonzero(self._seen)
        train_seen = seen[seen < self.num_train]
        p_s = self._component(self.score_transform, self._scores, train_seen, self.temperature)
        p_g = self._component(self.grounded_transform, self.grounded_scores(), seen, self.grounded_temperature)
        if not train_seen.size:
            p_s = p_g  # nothing to prioritise among training levels yet
        eta = self.eta
        weights = eta * p_g + (1.0 - eta) * p_s
        if self.staleness_coef > 0:
            support = train_seen if self.staleness_support == "training" and train_seen.size else seen
            staleness = (self._episode_count - self._last_sampled).astype(np.float64)
            p_c = self._component(self.staleness_transform, staleness, support, self.staleness_temperature)
            weights = (1.0 - self.staleness_coef) * weights + self.staleness_coef * p_c
        total = weights.sum()
        return weights / total if total > 0 else weights

    # -- sampling ---------------------------------------------------------------------------------
    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        if self._rng.random() >= self.replay_prob:
            level = self._propose()
            if level is not None:
                return level, False
        return self._replay(), True

    def _replay(self) -> Level:
        unseen = np.flatnonzero(~self._seen[: self.num_train] & ~self._in_flight[: self.num_train])
        weights = None if unseen.size else self._replay_weights()
        if weights is None or weights.sum() <= 0:
            # Training levels not scored yet come first (or all, while nothing has a score).
            pool = unseen if unseen.size else np.arange(self.num_train)
            slot = int(pool[self._rng.integers(pool.size)])
            self._in_flight[slot] = not self._seen[slot]
        else:
            cumulative = np.cumsum(weights)
            slot = int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right"))
            slot = min(slot, int(np.flatnonzero(weights)[-1]))
        self._mark_sampled(slot)
        level = self._levels[slot]
        self._outstanding[level] = self._outstanding.get(level, 0) + 1
        return level

    def _propose(self) -> Level | None:
        """The next generated level not held or handed out already; None if the generator has none."""
        for attempt in range(2):
            while self._queue:
                level = self._queue.pop(0)
                if level not in self._index and level not in self._outstanding:
                    self._episode_count += 1
                    self._outstanding[level] = 1
                    self._proposed += 1
                    return level
            if attempt == 0:
                self._queue = [self._checked(lv) for lv in self._generator(self._rng, self.generation_batch)]
        return None

    def _checked(self, level: Any) -> Level:
        if self._space is not None:
            level = self._space.coerce(level)
        try:
            hash(level)
        except TypeError:
            raise ValueError(f"the generator returned an unhashable level {level!r}") from None
        return level

    # -- learning ---------------------------------------------------------------------------------
    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        super().update(level, score, max_return=max_return)
        if level not in self._index and level not in self._outstanding:
            self._pending_returns.pop(level, None)  # a proposal that did not make it in

    def _insert(self, level: Level, value: float) -> int | None:
        """A proposal's first score: in only when grounded (score > 0 on a level with a return > 0)."""
        grounded_value = self._pending_returns.pop(level, -np.inf)
        grounded_score = value if grounded_value > 0 else 0.0
        if not grounded_score > 0:
            return None
        free = np.flatnonzero(~self._seen[self.num_train :])
        if free.size:
            slot = self.num_train + int(free[0])
        else:
            held = self.grounded_scores()[self.num_train :]
            slot = self.num_train + int(np.argmin(held))
            if not grounded_score > held[slot - self.num_train]:
                return None
            del self._index[self._levels[slot]]
        self._place(slot, level, value)
        self._grounded[slot] = grounded_value
        self._accepted += 1
        return slot

    # -- reporting ----------------------------------------------------------------------------------
    def generated_levels(self) -> list[Level]:
        """The generated levels now in the buffer."""
        return [lv for lv in self._levels[self.num_train :] if lv is not None]

    def diagnostics(self) -> dict[str, float]:
        """Numbers for TensorBoard: eta, generated levels held, their share of P, proposals,
        acceptances and (when the generator counts them) valid / repaired / dropped levels."""
        weights = self._replay_weights()
        stats = {
            "eta": self.eta,
            "num_generated": float(self._seen[self.num_train :].sum()),
            "generated_mass": float(weights[self.num_train :].sum()),
            "proposed": float(self._proposed),
            "accepted": float(self._accepted),
        }
        counts = getattr(self._generator, "counts", None)
        if isinstance(counts, dict):
            stats.update({f"generator_{k}": float(v) for k, v in counts.items()})
        return stats

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            {
                "num_train": self.num_train,
                "grounded": self._grounded.copy(),
                "pending_returns": [[lv, r] for lv, r in self._pending_returns.items()],
                "queue": copy.deepcopy(self._queue),
                "progress": self._progress,
                "proposed": self._proposed,
                "accepted": self._accepted,
            }
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") == self.name:
            saved_train = list(state["levels"])[: int(state["num_train"])]
            if int(state["num_train"]) != self.num_train or saved_train != self._levels[: self.num_train]:
                raise ValueError("this state was saved for a different training set; build the sampler on the same levels")
        super().load_state_dict(state)
        self._grounded = np.array(state["grounded"], dtype=np.float64, copy=True)
        self._pending_returns = {lv: float(r) for lv, r in copy.deepcopy(list(state["pending_returns"]))}
        self._queue = copy.deepcopy(list(state["queue"]))
        self._progress = float(state["progress"])
        self._proposed = int(state["proposed"])
        self._accepted = int(state["accepted"])
