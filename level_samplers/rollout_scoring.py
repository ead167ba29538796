"""Per-episode scores from a rollout laid out as (steps, envs) arrays.

A rollout of ``T`` steps in ``E`` environment slots is cut, per slot, into episode
segments at the steps that start a new episode. A segment whose episode ends inside the
rollout is finished there; one cut by the end of the rollout is carried to the next
rollout and merged with the rest of its episode, so an episode that crosses a rollout
boundary gets **one** score: for a per-segment score the step-weighted mean of its
segments' scores, for an episode score (``max_mc``) the score of its totals, R_max minus the
mean value over all its steps (see :data:`heldout.level_samplers.scores.SCORES`). A score of
exactly 0 is a score like any other.

``max_mc``'s R_max is the best **achieved** return on the level: the undiscounted sum of an
episode's rewards, recorded only for episodes that ended (the published definition: dcd's
grounded value, minimax's ``max_returns``), never a bootstrapped estimate such as a GAE
lambda-return, which an over-estimating critic pushes above anything the level allows. It
must be in the units of the values it is compared with: by default the sum of the rollout's
``rewards`` (already in the agent's units); a caller whose buffer rewards are not the achieved
rewards (sb3 adds a time-limit bootstrap to a truncated episode's last reward) passes
``episode_returns`` instead (see :meth:`EpisodeScorer.process`).

This module is numpy only; :mod:`heldout.trainer.sampler_glue` feeds it stable-baselines3's
rollout buffer (whose layout, ``episode_starts`` and bootstrap conventions it follows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from heldout.level_samplers import scores
from heldout.level_samplers.base import Level


@dataclass(frozen=True)
class EpisodeScore:
    """One episode's score, ready for ``sampler.update(level, score, max_return=max_return)``."""

    level: Level
    score: float
    steps: int
    max_return: float | None
    """The episode's achieved undiscounted return (in the units of the values), or None when it
    did not end (an achieved return exists only for a complete episode)."""
    replayed: bool
    complete: bool = True
    """False when the episode had not ended (flushed at the end of training, or cut by a reset)."""


@dataclass
class _Partial:
    level: Level
    replayed: bool
    steps: int = 0
    score_sum: float = 0.0
    value_sum: float = 0.0
    reward_sum: float = 0.0


class EpisodeScorer:
    """Turns rollouts into per-episode scores, carrying unfinished episodes between rollouts.

    Args:
        score_name: one of :data:`heldout.level_samplers.scores.SCORE_NAMES`.
        num_envs: the number of environment slots (columns of every array).
        gamma: the discount, for ``one_step_td``.
    """

    def __init__(self, score_name: str, num_envs: int, gamma: float) -> None:
        self._score = scores.get_score(score_name)
        self.score_name = self._score.name
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.gamma = float(gamma)
        self._partials: dict[int, _Partial] = {}

    @property
    def needs_probs(self) -> bool:
        """Whether :meth:`process` needs the policy's action probabilities."""
        return "probs" in self._score.needs

    def pending(self) -> dict[int, tuple[Level, int]]:
        """Unfinished episodes carried to the next rollout: slot -> (level, steps so far)."""
        return {e: (p.level, p.steps) for e, p in self._partials.items()}

    def process(
        self,
        *,
        levels: Sequence[Sequence[Level]],
        replayed: np.ndarray,
        rewards: np.ndarray,
        values: np.ndarray,
        advantages: np.ndarray,
        returns: np.ndarray,
        episode_starts: np.ndarray,
        last_values: np.ndarray,
        last_dones: np.ndarray,
        probs: np.ndarray | None = None,
        max_return_of: Callable[[Level], float | None] | None = None,
        episode_returns: np.ndarray | None = None,
    ) -> list[EpisodeScore]:
        """Score one rollout; returns the episodes that ended in it, in the order they ended.

        Arrays are (T, E): ``levels[t][e]`` the level of step t in slot e, ``replayed[t, e]``
        whether that episode was a replay, ``episode_starts[t, e]`` 1 where step t is an
        episode's first, ``rewards`` (already including any time-limit bootstrap),
        ``values``, and GAE ``advantages`` and ``returns`` (the latter kept for callers; no score needs it). ``last_values[e]`` is the value
        of the observation after the last step and ``last_dones[e]`` whether that step ended
        the episode. ``probs`` (T, E, actions) is needed by the distribution scores.
        ``max_return_of(level)`` gives the best achieved return already recorded for ``max_mc``.
        ``episode_returns[t, e]``, where given, is the achieved return of the episode that ended
        at step t in slot e (read only there; NaN elsewhere), in the values' units; without it an
        episode's achieved return is the sum of its ``rewards``.
        """
        rewards = np.asarray(rewards, dtype=np.float64)
        T, E = rewards.shape
        if E != self.num_envs:
            raise ValueError(f"rollout has {E} env slots, the scorer was built for {self.num_envs}")
        values = np.asarray(values, dtype=np.float64).reshape(T, E)
        advantages = np.asarray(advantages, dtype=np.float64).reshape(T, E)
        starts = np.asarray(episode_starts).reshape(T, E).astype(bool)
        replayed = np.asarray(replayed).reshape(T, E).astype(bool)
        last_values = np.asarray(last_values, dtype=np.float64).reshape(E)
        last_dones = np.asarray(last_dones).reshape(E).astype(bool)
        if episode_returns is not None:
            episode_returns = np.asarray(episode_returns, dtype=np.float64).reshape(T, E)
        if len(levels) != T or any(len(row) != E for row in levels):
            raise ValueError(f"levels must be {T} rows of {E} levels, one per step and slot")
        if self.needs_probs:
            if probs is None:
                raise ValueError(f"score {self.score_name!r} needs the policy's action probabilities (probs)")
            probs = np.asarray(probs, dtype=np.float64)
            if probs.shape[:2] != (T, E):
                raise ValueError(f"probs must have shape ({T}, {E}, actions), got {probs.shape}")

        segments: list[tuple[int, int, int]] = []  # (end, slot, start), sorted to finish in time order
        for e in range(E):
            cuts = [0, *(np.flatnonzero(starts[1:, e]) + 1).tolist(), T]
            segments.extend((b, e, a) for a, b in zip(cuts[:-1], cuts[1:]))
        segments.sort()

        finished: list[EpisodeScore] = []
        recent_max: dict[Level, float] = {}
        for b, e, a in segments:
            level = levels[a][e]
            if levels[b - 1][e] != level:
                raise ValueError(
                    f"slot {e}: steps {a}..{b - 1} form one episode but report levels {level!r} and "
                    f"{levels[b - 1][e]!r}; the env must report each step's own level"
                )
            ended = b < T or bool(last_dones[e])
            acc = self._partials.pop(e, None) if a == 0 else None
            if acc is not None and (starts[0, e] or acc.level != level):
                # The carried episode cannot continue here: score what it had rather than drop it.
                finished.append(self._finish(acc, False, max_return_of, recent_max))
                acc = None
            if acc is None:
                acc = _Partial(level=level, replayed=bool(replayed[a, e]))
            next_value = 0.0 if ended else float(last_values[e])
            n = b - a
            if self._score.per_segment:
                seg = self._score(
                    rewards=rewards[a:b, e],
                    values=values[a:b, e],
                    advantages=advantages[a:b, e],
                    next_value=next_value,
                    gamma=self.gamma,
                    probs=None if probs is None else probs[a:b, e],
                )
                acc.score_sum += seg * n
            acc.steps += n
            acc.value_sum += float(values[a:b, e].sum())
            acc.reward_sum += float(rewards[a:b, e].sum())
            if ended:
                if episode_returns is not None and math.isfinite(episode_returns[b - 1, e]):
                    acc.reward_sum = float(episode_returns[b - 1, e])
                finished.append(self._finish(acc, True, max_return_of, recent_max))
            else:
                self._partials[e] = acc
        return finished

    def flush(
        self,
        max_return_of: Callable[[Level], float | None] | None = None,
        slots: Sequence[int] | None = None,
    ) -> list[EpisodeScore]:
        """Score and forget the carried, unfinished episodes (of ``slots``, default all) as
        they are (``complete=False``): for episodes that will not continue, e.g. after a reset."""
        chosen = sorted(self._partials) if slots is None else sorted(e for e in set(slots) if e in self._partials)
        recent: dict[Level, float] = {}
        return [self._finish(self._partials.pop(e), False, max_return_of, recent) for e in chosen]

    def _finish(
        self,
        acc: _Partial,
        complete: bool,
        max_return_of: Callable[[Level], float | None] | None,
        recent_max: dict[Level, float],
    ) -> EpisodeScore:
        achieved = acc.reward_sum if complete else None
        if self._score.episode is not None:
            known = max_return_of(acc.level) if max_return_of is not None else None
            candidates = [r for r in (known, recent_max.get(acc.level), achieved) if r is not None]
            # No complete episode on this level yet and this one was cut: the return it collected
            # so far is the only achieved evidence; it scores, but is not recorded as R_max.
            best = max(candidates) if candidates else acc.reward_sum
            score = self._score.episode(acc.value_sum, acc.steps, best)
        else:
            score = acc.score_sum / acc.steps
        if achieved is not None:
            recent_max[acc.level] = max(recent_max.get(acc.level, -math.inf), achieved)
        return EpisodeScore(acc.level, float(score), acc.steps, achieved, acc.replayed, complete)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it would turn levels that are dataclasses into dicts.
        partials = {
            e: {f.name: copy.deepcopy(getattr(p, f.name)) for f in fields(p)} for e, p in self._partials.items()
        }
        return {"num_envs": self.num_envs, "partials": partials}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["num_envs"]) != self.num_envs:
            raise ValueError(f"this state is for {state['num_envs']} env slots, the scorer has {self.num_envs}")
        self._partials = {int(e): _Partial(**copy.deepcopy(p)) for e, p in state["partials"].items()}
