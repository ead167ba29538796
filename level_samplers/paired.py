"""PAIRED's regret estimate (numpy only): what the level-designing adversary is rewarded with.

Per env slot, over the episodes that *ended* in one rollout of that slot's level:

    regret = max(antagonist returns) - mean(protagonist returns)

with the max starting from 0 and the mean 0 when no episode ended (jaxued
``examples/maze_paired.py`` ~551-559 through ``utils.accumulate_rollout_stats``,
DramaCow/jaxued@0f8f128). dcd (``envs/runners/adversarial_runner.py``
``_compute_env_return`` ~637-641, facebookresearch/dcd@72991be) clips the same difference
at 0 (``form="dcd"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from heldout.level_samplers.base import (
    Level,
    LevelSampler,
    check_choice,
    check_positive,
    check_score_value,
    resolve_levels,
    rng_state,
    set_rng_state,
)

REGRET_FORMS = ("jaxued", "dcd")


def regret(
    protagonist_returns: Sequence[Sequence[float]],
    antagonist_returns: Sequence[Sequence[float]],
    *,
    form: str = "jaxued",
) -> np.ndarray:
    """The regret of each slot, from each slot's finished episode returns of both students."""
    if form not in REGRET_FORMS:
        raise ValueError(f"regret form {form!r} is not one of {', '.join(REGRET_FORMS)}")
    if len(protagonist_returns) != len(antagonist_returns):
        raise ValueError(
            f"protagonist returns cover {len(protagonist_returns)} slots, antagonist returns {len(antagonist_returns)}"
        )
    out = np.empty(len(protagonist_returns), dtype=np.float64)
    for slot, (pro, ant) in enumerate(zip(protagonist_returns, antagonist_returns)):
        best = max([0.0, *map(float, ant)])
        mean = float(np.mean(pro)) if len(pro) else 0.0
        out[slot] = best - mean
    return np.maximum(out, 0.0) if form == "dcd" else out


def adversary_rewards(regrets: np.ndarray, episode_steps: int) -> np.ndarray:
    """(episode_steps, slots) rewards of the adversary's one design episode per slot: 0 at every
    step and the slot's regret at the last (jaxued ~555: ``zeros.at[-1].set(est_regret)``)."""
    regrets = np.asarray(regrets, dtype=np.float64).reshape(-1)
    rewards = np.zeros((int(episode_steps), regrets.size), dtype=np.float32)
    rewards[-1] = regrets
    return rewards


class PAIREDSampler(LevelSampler):
    """PAIRED (Dennis et al. 2020): every rollout plays levels an adversary has just designed.

    Before each rollout the trainer's ``designer`` (PAIRED's adversary in the level editor,
    :mod:`heldout.trainer.paired`) builds one level per env slot; the slot plays it for the
    whole rollout, episode after episode (jaxued's ``AutoReplayWrapper``). The trainer then scores
    each slot with its :func:`regret` and hands it to :meth:`update`; nothing is replayed later.
    Unsolvable designs are kept and played (the published setting); :meth:`diagnostics` reports
    their share. ``--env.train_set`` only fills the slots before the first design.

    Args:
        regret: ``jaxued`` (antagonist max - protagonist mean) or ``dcd`` (the same, clipped at 0).
        n_walls: wall placements of an editor episode (dcd's n_clutter: 50, so 52 steps).
        z_dim: size of the adversary's random vector z (dcd: 50; jaxued: 16).
        adversary_lr: the adversary's learning rate (jaxued adv_lr 1e-4).
        adversary_epochs: the adversary's PPO epochs per update (jaxued adv_epoch_ppo 5).
        adversary_entropy: the adversary's entropy coefficient (jaxued adv_entropy_coeff 1e-3).
        adversary_lr_schedule: linear (jaxued: lr * (1 - k / N) at its update k of the run's N) or constant.
    """

    name = "paired"
    plans_rollouts = True
    scores_from_rollout = False
    finite = False

    def __init__(
        self,
        levels: Any,
        *,
        designer: Any,
        space: Any = None,
        seed: int = 0,
        regret: str = "jaxued",
        n_walls: int = 50,
        z_dim: int = 50,
        adversary_lr: float = 1e-4,
        adversary_epochs: int = 5,
        adversary_entropy: float = 1e-3,
        adversary_lr_schedule: str = "linear",
    ) -> None:
        finite, draw = resolve_levels(levels)
        if not callable(getattr(designer, "design", None)):
            raise TypeError("PAIRED needs a designer with design(num_slots) -> levels (the trainer provides it)")
        self.regret_form = check_choice("regret", regret, REGRET_FORMS)
        for param, value in (("n_walls", n_walls), ("z_dim", z_dim), ("adversary_epochs", adversary_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if param == "adversary_epochs" else 0):
                raise ValueError(f"{param} must be a whole number >= {1 if param == 'adversary_epochs' else 0}, got {value!r}")
        check_positive("adversary_lr", adversary_lr)
        if not 0 <= float(adversary_entropy) < 1:
            raise ValueError(f"adversary_entropy must be in [0, 1), got {adversary_entropy!r}")
        check_choice("adversary_lr_schedule", adversary_lr_schedule, ("constant", "linear"))
        self.designer, self.space = designer, space
        self._rng = np.random.default_rng(seed)
        self._first = finite[0] if finite is not None else draw(self._rng)  # type: ignore[misc]
        self._plan: list[Level] = []
        self._last: dict[Level, float] = {}
        self._designed = 0
        self._unsolvable = 0
        self._regrets: list[float] = []

    def begin_rollout(self, num_slots: int) -> str:
        plan = list(self.designer.design(num_slots))
        if len(plan) != num_slots:
            raise RuntimeError(f"the designer built {len(plan)} levels for {num_slots} env slots")
        self._plan = plan
        self._designed += len(plan)
        self._regrets = []
        if self.space is not None:
            self._unsolvable += sum(not self.space.is_solvable(level) for level in plan)
        return "design"

    def sample_for_slot(self, slot: int) -> tuple[Level, bool]:
        return (self._plan[slot] if self._plan else self._first), False

    def sample_with_replay_flag(self) -> tuple[Level, bool]:
        return self.sample_for_slot(0)

    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        """Record a designed level's regret (it is not kept for replay)."""
        if level not in self._plan:
            raise ValueError(f"level {level!r} was not designed for the latest rollout")
        self._last[level] = check_score_value(level, score)
        self._regrets.append(self._last[level])

    def probabilities(self) -> dict[Level, float]:
        return {}

    def level_scores(self) -> dict[Level, float]:
        return dict(self._last)

    def max_return(self, level: Level) -> float | None:
        return None

    @property
    def num_seen(self) -> int:
        return self._designed

    def diagnostics(self) -> dict[str, float]:
        out: dict[str, float] = {"num_designed": float(self._designed)}
        if self.space is not None and self._designed:
            out["unsolvable_fraction"] = self._unsolvable / self._designed
        if self._regrets:
            out["regret_mean"] = float(np.mean(self._regrets))
            out["regret_max"] = float(np.max(self._regrets))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self._rng), "plan": list(self._plan), "last": dict(self._last),
            "designed": self._designed, "unsolvable": self._unsolvable, "regrets": list(self._regrets),
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self._rng, state["rng"])
        self._plan = list(state["plan"])
        self._last = dict(state["last"])
        self._designed, self._unsolvable = int(state["designed"]), int(state["unsolvable"])
        self._regrets = list(state["regrets"])


class REPAIREDSampler(PAIREDSampler):
    """REPAIRED (Jiang et al. 2021): PAIRED's levels enter a Robust PLR buffer scored by regret.

    Before each rollout a coin (dcd ``sample_replay_decision``: ``replay_prob`` once the buffer is
    ``min_fill_ratio`` full) chooses a *replay* rollout, in which every slot plays a buffer level
    drawn from the replay distribution and both students train, or a *design* rollout, in which the
    adversary builds new levels that train nobody (the loss mask: ``trains_on_new_levels`` is False,
    dcd ``no_exploratory_grad_updates``) and enter the buffer with their regret. The adversary learns
    from design rollouts only. Buffer settings are dcd's ``mg_25b_repaired.json``.

    Args:
        regret: as for PAIRED; ``dcd`` (clipped at 0: the buffer keeps positive regrets).
        replay_prob: probability of a replay rollout once the buffer is full enough (dcd 0.95).
        min_fill_ratio: the buffer's fill before any replay (dcd level_replay_rho 0.5).
        capacity: the buffer's size (dcd level_replay_seed_buffer_size 4000).
        temperature: rank temperature of the replay distribution (dcd 0.1).
        staleness_coef: staleness mix (dcd 0.3).
    """

    name = "repaired"
    trains_on_new_levels = False

    def __init__(
        self,
        levels: Any,
        *,
        designer: Any,
        space: Any = None,
        seed: int = 0,
        regret: str = "dcd",
        n_walls: int = 50,
        z_dim: int = 50,
        adversary_lr: float = 1e-4,
        adversary_epochs: int = 5,
        adversary_entropy: float = 1e-3,
        adversary_lr_schedule: str = "linear",
        replay_prob: float = 0.95,
        min_fill_ratio: float = 0.5,
        capacity: int = 4000,
        temperature: float = 0.1,
        staleness_coef: float = 0.3,
    ) -> None:
        super().__init__(
            levels, designer=designer, space=space, seed=seed, regret=regret, n_walls=n_walls, z_dim=z_dim,
            adversary_lr=adversary_lr, adversary_epochs=adversary_epochs, adversary_entropy=adversary_entropy,
            adversary_lr_schedule=adversary_lr_schedule,
        )  # fmt: skip
        from heldout.level_samplers.plr import RobustPLRSampler

        self._incoming: list[Level] = []
        self.buffer = RobustPLRSampler(
            lambda rng: self._incoming.pop(0), replay_prob=replay_prob, min_fill_ratio=min_fill_ratio,
            capacity=capacity, temperature=temperature, staleness_coef=staleness_coef, seed=seed,
        )  # fmt: skip
        self.kind = "design"
        self._replays = 0

    def begin_rollout(self, num_slots: int) -> str:
        if self.buffer._decide_replay():
            self._plan = [self.buffer._sample_replay() for _ in range(num_slots)]
            self._regrets = []
            self.kind = "replay"
            self._replays += 1
            return self.kind
        super().begin_rollout(num_slots)
        self._incoming = list(self._plan)
        for _ in self._plan:
            self.buffer._sample_new()  # registers each design as handed out
        self.kind = "design"
        return self.kind

    def sample_for_slot(self, slot: int) -> tuple[Level, bool]:
        level, _ = super().sample_for_slot(slot)
        return level, bool(self._plan) and self.kind == "replay"

    def update(self, level: Level, score: float, *, max_return: float | None = None) -> None:
        super().update(level, score)
        self.buffer.update(level, score)

    def probabilities(self) -> dict[Level, float]:
        return self.buffer.probabilities()

    def level_scores(self) -> dict[Level, float]:
        return self.buffer.level_scores()

    def diagnostics(self) -> dict[str, float]:
        return {**super().diagnostics(), "replay_rollouts": float(self._replays), "buffer_size": float(self.buffer.num_seen)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict(), "kind": self.kind, "replays": self._replays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.kind, self._replays = state["kind"], int(state["replays"])
