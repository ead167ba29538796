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
* A generated level is decided by its first finished episode: it enters the buffer only when
  its grounded score is above zero, taking a free slot, or else (``eviction="weight"``, as
  published: ``level_replay/level_sampler.py`` ~282-293, ~321-330) the slot of the generated
  level with the lowest replay weight, when its own grounded score is at least that level's;
  training levels never leave. An unsolvable generated level is played like any other and can
  never be grounded, so it never enters.
* Replay distribution over the held levels that have a score:

      P = (1 - staleness_coef) * (eta * P_S' + (1 - eta) * P_S) + staleness_coef * P_C

  P_S = ``score_transform`` (rank, temperature 0.1) of S over the training levels,
  P_S' = ``grounded_transform`` (rank, temperature 1.0) of S' over *every* buffer slot, empty
  ones scored 0 (ties: the later slot ranks first, as the published flip of an ascending sort),
  then restricted to the held levels and renormalised (``level_sampler.py`` ~879-965);
  P_C = staleness over the training levels (``staleness_support="training"``, as in the
  published configuration) or the whole buffer; eta rises linearly from ``eta_start`` to
  ``eta_end`` as the trainer reports progress (:meth:`set_progress`, fraction of training).
* Proposals (``proposals``):

  ``alternate`` (default, as published: ``envs/runners/adversarial_runner.py`` ~767-872): the
      trainer asks for a plan before every rollout (:meth:`begin_rollout`) and restarts every
      env slot on it. A warm-up first plays every training level once without gradient (one
      level per slot, the same level again whenever its episode ends), then the rollouts
      alternate: a *replay* rollout (every episode a draw from P, trained on), then a
      *proposal* rollout (one new generated level per slot, played again and again, no gradient).
  ``coin``: no plan; each draw replays from P with probability ``replay_prob`` (training levels
      not scored yet come first), otherwise proposes a new generated level (heldout's first schedule).

  ``trains_on_new_levels`` is False: the agent learns only from replayed episodes.

Defaults are the published settings (docs/fidelity.md, DRED). The sampler stays numpy-only:
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
PROPOSALS: tuple[str, ...] = ("alternate", "coin")


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
        proposals: ``alternate`` (warm-up, then a replay rollout and a proposal rollout in
            turn) or ``coin`` (a coin flip per draw, ``replay_prob``).
        replay_prob: with ``proposals="coin"``: probability that a draw replays (0.5).
        eviction: which generated level a new one replaces in a full buffer: ``weight``
            (the lowest replay weight, when the new grounded score is >= its own) or
            ``score`` (the lowest grounded score, when the new one is higher).
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
        proposals: str = "alternate",
        replay_prob: float | None = None,
        eviction: str = "weight",
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
            replay_prob=0.5 if replay_prob is None else replay_prob,
            eviction=eviction,
            seed=seed,
        )
        self.proposals = check_choice("proposals", proposals, PROPOSALS)
        if replay_prob is not None and self.proposals != "coin":
            raise ValueError(
                "replay_prob applies only to proposals='coin'; the alternate schedule replays every other rollout "
                "(drop replay_prob or set proposals: coin)"
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
        self._rejected: set[Level] = set()  # proposals decided out, still being played
        self._kind: str | None = None  # the planned rollout: warmup, replay or proposal
        self._slot_levels: list[Level] = []  # warm-up and proposal rollouts: each slot's level
        self._visited = np.zeros(n, dtype=bool)  # training levels the warm-up has handed out

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
            self._pending_returns.setdefault(level, r)  # a proposal: its first finished episode decides

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

    def _over_buffer(self, name: str, values: np.ndarray, temperature: float) -> np.ndarray:
        """``name`` over every slot (empty ones valued 0; ties: the later slot first), kept on the
        held levels and renormalised; all zero when none is held."""
        held = self._seen
        if not held.any():
            return np.zeros(self._capacity)
        full = np.where(held, values, 0.0)[::-1]
        out = np.where(held, transforms.apply(name, full, temperature=temperature, epsilon=self.eps_greedy_epsilon)[::-1], 0.0)
        total = out.sum()
        return out / total if total > 0 else held / held.sum()

    def _replay_weights(self) -> np.ndarray:
        seen = np.flatnonzero(self._seen)
        train_seen = seen[seen < self.num_train]
        p_s = self._component(self.score_transform, self._scores, train_seen, self.temperature)
        p_g = self._over_buffer(self.grounded_transform, self.grounded_scores(), self.grounded_temperature)
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

    # -- the rollout plan (proposals="alternate") ---------------------------------------------------
    @property
    def plans_rollouts(self) -> bool:
        return self.proposals == "alternate"

    @property
    def rollout_kind(self) -> str | None:
        """The planned rollout: ``warmup``, ``replay`` or ``proposal`` (None before the first plan)."""
        return self._kind

    def begin_rollout(self, num_slots: int) -> str | None:
        """Plan the next rollout of ``num_slots`` env slots (every slot restarts on it); returns
        its kind, None with ``proposals="coin"``. Warm-up while a training level has not been
        handed out yet (excess slots: uniform training levels), then replay and proposal rollouts
        in turn (a replay rollout again if the generator has nothing)."""
        if not self.plans_rollouts:
            return None
        n = int(num_slots)
        if not self._visited.all():
            picks = self._rng.permutation(np.flatnonzero(~self._visited))[:n].tolist()
            picks += self._rng.integers(self.num_train, size=n - len(picks)).tolist()
            self._visited[picks] = True
            self._kind, self._slot_levels = "warmup", [self._levels[i] for i in picks]
            return self._kind
        levels = self._new_levels(n, 3 + n // self.generation_batch) if self._kind == "replay" else []
        self._kind, self._slot_levels = ("proposal", levels) if levels else ("replay", [])
        self._proposed += len(levels)
        return self._kind

    def sample_for_slot(self, slot: int) -> tuple[Level, bool]:
        """The level env ``slot`` plays next under the plan, and whether it is a replay."""
        if not self.plans_rollouts:
            return self.sample_with_replay_flag()
        if self._kind is None:
            # Before the first plan (the env's first reset): a placeholder, replaced at once.
            return self._levels[int(slot) % self.num_train], False
        if self._kind == "replay":
            return self._replay(), True
        level = self._slot_levels[int(slot) % len(self._slot_levels)]
        if self._kind == "warmup":
            self._mark_sampled(self._index[level])
        else:
            self._episode_count += 1
            self._outstanding[level] = self._outstanding.get(level, 0) + 1
        return level, False

    def _new_levels(self, n: int, refills: int) -> list[Level]:
        """Up to ``n`` distinct generated levels not held or handed out, asking the generator
        for a new batch at most ``refills`` times when its queue runs dry."""
        out: list[Level] = []
        for attempt in range(refills + 1):
            while self._queue and len(out) < n:
                level = self._queue.pop(0)
                if level not in self._index and level not in self._outstanding and level not in out:
                    out.append(level)
            if len(out) >= n or attempt == refills:
                break
            self._queue = [self._checked(lv) for lv in self._generator(self._rng, self.generation_batch)]
        return out

    # -- sampling (proposals="coin") ----------------------------------------------------------------
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
        levels = self._new_levels(1, 1)
        if not levels:
            return None
        self._episode_count += 1
        self._outstanding[levels[0]] = 1
        self._proposed += 1
        return levels[0]

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
            self._rejected.discard(level)

    def _insert(self, level: Level, value: float) -> int | None:
        """A proposal's first score: in only when grounded (score > 0 on a level with a return > 0);
        its later episodes (still being played) do not try again."""
        if level in self._rejected:
            return None
        grounded_value = self._pending_returns.pop(level, -np.inf)
        grounded_score = value if grounded_value > 0 else 0.0
        slot = self._entry_slot(grounded_score) if grounded_score > 0 else None
        if slot is None:
            self._rejected.add(level)
            return None
        if self._levels[slot] is not None:
            del self._index[self._levels[slot]]
        self._place(slot, level, value)
        self._grounded[slot] = grounded_value
        self._accepted += 1
        return slot

    def _entry_slot(self, grounded_score: float) -> int | None:
        """Where a proposal with this grounded score goes: a free slot, else the evicted one, else None."""
        free = np.flatnonzero(~self._seen[self.num_train :])
        if free.size:
            return self.num_train + int(free[0])
        held = self.grounded_scores()[self.num_train :]
        if self.eviction == "weight":
            k = int(np.argmin(self._replay_weights()[self.num_train :]))
            accept = grounded_score >= held[k]
        else:
            k = int(np.argmin(held))
            accept = grounded_score > held[k]
        return self.num_train + k if accept else None

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
                "rejected": copy.deepcopy(list(self._rejected)),
                "kind": self._kind,
                "slot_levels": copy.deepcopy(self._slot_levels),
                "visited": self._visited.copy(),
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
        self._rejected = set(copy.deepcopy(list(state["rejected"])))
        self._kind = state["kind"]
        self._slot_levels = copy.deepcopy(list(state["slot_levels"]))
        self._visited = np.array(state["visited"], dtype=bool, copy=True)
