"""The level-sampler interface and the checks every sampler shares.

A sampler decides which level an environment slot plays next and learns from per-level
scores. It knows nothing of torch or of environments: a level is any hashable object.

``levels`` is either a finite sequence of levels (a training set) or, for an unbounded
level space, a callable ``rng -> new level`` (``rng`` is a ``numpy.random.Generator``). An
object with ``levels``/``draw`` attributes (``heldout.envs.LevelSet``) is accepted too.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

Level = Hashable
LevelDraw = Callable[[np.random.Generator], Level]


def resolve_levels(levels: Any) -> tuple[tuple[Level, ...] | None, LevelDraw | None]:
    """(finite levels, None) or (None, draw function); ValueError for anything else."""
    if hasattr(levels, "draw") and hasattr(levels, "levels") and not callable(levels):
        levels = levels.levels if levels.levels is not None else levels.draw
    if callable(levels):
        return None, levels
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence | np.ndarray):
        raise ValueError(
            "levels must be a finite, ordered sequence of levels (list, tuple, range) or a callable "
            f"rng -> level, got {type(levels).__name__}"
        )
    items = tuple(levels.tolist() if isinstance(levels, np.ndarray) else levels)
    if not items:
        raise ValueError("levels is empty: give at least one level (or a callable rng -> level)")
    seen: set[Level] = set()
    for lv in items:
        try:
            hash(lv)
        except TypeError:
            raise ValueError(f"levels must be hashable; {lv!r} is a {type(lv).__name__}") from None
        if lv in seen:
            raise ValueError(f"levels contains {lv!r} more than once; give each level once")
        seen.add(lv)
    return items, None


DEFAULT_CAPACITY = 4000
"""How many levels of an unbounded level space a sampler keeps by default."""


def check_capacity(capacity: Any, finite: bool) -> int | None:
    """The buffer size for an unbounded level space (``DEFAULT_CAPACITY`` when ``capacity`` is
    None); None for a finite set, which takes no ``capacity``."""
    if finite:
        if capacity is not None:
            raise ValueError("capacity applies only to an unbounded level space (levels given as a callable)")
        return None
    cap = DEFAULT_CAPACITY if capacity is None else capacity
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1:
        raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
    return int(cap)


def check_choice(param: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{param}={value!r} is not accepted; choose one of {', '.join(choices)}")
    return value


def check_positive(param: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{param} must be a number > 0, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{param} must be a finite number > 0, got {value!r}")
    return x


def check_unit(param: str, value: Any, *, open_low: bool = False) -> float:
    """A number in [0, 1] (or (0, 1] with ``open_low``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{param} must be a number in [0, 1], got {value!r}") from None
    low_ok = x > 0 if open_low else x >= 0
    if not (low_ok and x <= 1):
        span = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{param} must be in {span}, got {value!r}")
    return x


def check_score_value(level: Level, score: Any) -> float:
    try:
        x = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"score for level {level!r} must be a number, got {score!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"score for level {level!r} must be finite, got {score!r}")
    return x


def entropy(probabilities: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy (nats) of a distribution, ignoring zero entries."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) if p.size else 0.0


class LevelSampler(ABC):
    """Chooses levels and learns from their scores.

    Attributes:
        name: the registry name (``"plr"``...).
        score_name: the score the rollout glue must compute for :meth:`update`
            (one of :data:`heldout.level_samplers.scores.SCORE_NAMES`).
        trains_on_new_levels: False when the agent must take no gradient on episodes of
            levels that were not replayed (Robust PLR); the glue then masks them out.
        finite: True for a finite level set, False for an unbounded level space.
    """

    name: str = "?"
    score_name: str = "value_l1"
    trains_on_new_levels: bool = True
    finite: bool = True
    needs_finite_levels: bool = False
    """True for a sampler that only works on a finite level set (the trainer then refuses an
    unbounded ``--env.train_set`` with a message that says so)."""
    family_defaults: dict[str, dict[str, Any]] = {}
    """Constructor defaults that differ by env family, where the published runs of one family
    used other settings: ``{family: {parameter: value}}``; a key ``procgen`` covers every
    ``procgen/<game>``. Read through :func:`heldout.level_samplers.registry.defaults`, which
    takes only the class's own table (a subclass states its own)."""

    def sample(self) -> Level:
        """The level the next episode should play."""
        return self.sample_with_replay_flag()[0]

    @abstractmethod
    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        """The next level and whether it was *replayed*: drawn from the replay distribution
        (:meth:`probabilities`) rather than proposed as a new level. Robust PLR trains only
        on replayed episodes."""

    @abstractmethod
    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        """Record an episode's ``score`` on ``level`` (and its best return, for ``max_mc``).

        Raises ``ValueError`` for a level the sampler does not hold and never handed out.
        """

    @abstractmethod
    def probabilities(self) -> dict[Level, float]:
        """The current replay distribution over the levels held (a new dict; no state changes)."""

    @abstractmethod
    def level_scores(self) -> dict[Level, float]:
        """The stored score of every level that has one (a new dict)."""

    @abstractmethod
    def max_return(self, level: Level) -> float | None:
        """The highest return recorded on ``level`` (None if none was)."""

    @property
    def num_seen(self) -> int:
        """How many levels have a score."""
        return len(self.level_scores())

    # -- optional hooks: the training glue calls them; samplers that need them override them ------
    def record_return(self, level: Level, episode_return: float) -> None:
        """A finished episode's true (undiscounted, unnormalised) return on ``level``."""

    def set_progress(self, fraction: float) -> None:
        """How far training is: 0 at the start, 1 at the end (for scheduled parameters)."""

    def diagnostics(self) -> dict[str, float]:
        """Sampler-specific numbers for TensorBoard (ACCEL: children played and accepted...);
        the training callback logs each under ``level_sampler/``. No state changes."""
        return {}

    def level_features(self, level: Level) -> dict[str, float]:
        """What the sampler knows of a level it handed out, beside the level's own features
        (ACCEL: ``edits``, the number of edits since its seed level). No state changes."""
        return {}

    scores_from_rollout: bool = True
    """False for a sampler whose scores the trainer computes from more than the agent's rollout
    (PAIRED's regret needs the antagonist's): the glue then scores no episodes itself and the
    trainer calls ``update`` (through :meth:`SamplerGlue.record`)."""

    plans_rollouts: bool = False
    """True for a sampler that plans whole rollouts (DRED's alternation): before each rollout the
    glue calls :meth:`begin_rollout` and restarts every env slot, which then draws with
    :meth:`sample_for_slot`."""

    def begin_rollout(self, num_slots: int) -> str | None:
        """Plan the next rollout of ``num_slots`` env slots; returns its kind (None: no plan)."""
        return None

    def sample_for_slot(self, slot: int) -> tuple[Level, bool]:
        """The level env ``slot`` plays next and whether it is a replay (default:
        :meth:`sample_with_replay_flag`, whatever the slot)."""
        return self.sample_with_replay_flag()

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain Python/numpy, picklable, a copy."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; later samples equal those the saved sampler would draw."""

    def __repr__(self) -> str:
        size = "unbounded" if not self.finite else f"{len(self.probabilities())} levels"
        return f"<{type(self).__name__} {self.name!r} score={self.score_name} {size} seen={self.num_seen}>"


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return copy.deepcopy(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = copy.deepcopy(state)
