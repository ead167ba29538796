"""PAIRED's other two players: the adversary that designs the levels and the antagonist.

The run's agent is the protagonist: it is trained, evaluated and reported as in every run. The
:class:`PairedTeam` is the ``designer`` the PAIRED sampler calls before each rollout
(:meth:`design`: the adversary builds one level per env slot) and the run's partner the loop calls
after the protagonist's rollout (:meth:`after_rollout`): the antagonist, an agent of the run's
type with its own network and optimiser, plays the same levels for a rollout of its own; each
slot's regret (:func:`heldout.level_samplers.paired.regret`) goes to the sampler and rewards the
adversary; the antagonist and the adversary update. Per update, as in jaxued's
``examples/maze_paired.py`` ``train_step`` (~497-590): design, protagonist rollout, antagonist
rollout, regret, three PPO updates.

Steps: ``--steps`` counts the protagonist's env steps; the antagonist takes as many and the
adversary ``n_walls + 2`` per slot and update.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from heldout.envs.base import LevelDraw, LevelVecEnv
from heldout.level_samplers.paired import regret
from heldout.trainer.adversary import Adversary


class EpisodeReturns(BaseCallback):
    """Per env slot, the true returns (``info["episode"]["r"]``) of the episodes that ended in a rollout."""

    def __init__(self, num_envs: int) -> None:
        super().__init__()
        self.returns: list[list[float]] = [[] for _ in range(num_envs)]

    def _on_rollout_start(self) -> None:
        self.returns = [[] for _ in self.returns]

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        for slot in np.flatnonzero(self.locals["dones"]).tolist():
            episode = infos[slot].get("episode")
            if episode is not None:
                self.returns[slot].append(float(episode["r"]))
        return True


class PairedTeam:
    """The adversary and the antagonist of a PAIRED run (see the module docstring)."""

    def __init__(self, adversary: Adversary, antagonist: Any, antagonist_env: LevelVecEnv, *, regret_form: str) -> None:
        self.adversary = adversary
        self.antagonist = antagonist
        self.antagonist_env = antagonist_env
        self.regret_form = regret_form
        self.protagonist_returns = EpisodeReturns(antagonist_env.num_envs)
        self._antagonist_returns = EpisodeReturns(antagonist_env.num_envs)
        self._callbacks: Any = None
        self.levels: list[Any] = []
        self.stats: dict[str, float] = {}
        self.sampler: Any = None
        self._designed = False

    @property
    def callbacks(self) -> list[BaseCallback]:
        """What the protagonist's rollouts must call (its per-slot returns)."""
        return [self.protagonist_returns]

    def attach(self, sampler: Any) -> None:
        """The antagonist's env plays what the sampler hands each slot (the protagonist's levels)."""
        self.sampler = sampler
        self.antagonist_env.set_level_source(lambda slot: LevelDraw(*sampler.sample_for_slot(slot)))

    def design(self, num_slots: int) -> list[Any]:
        """One new level per slot, from the adversary (the PAIRED sampler's designer)."""
        if num_slots != self.adversary.env.num_envs:
            raise ValueError(f"the adversary designs for {self.adversary.env.num_envs} slots, not {num_slots}")
        self._designed = True
        return self.adversary.design()

    def after_rollout(self, run: Any) -> None:
        """The antagonist's rollout on the same levels, the regrets, the antagonist's and the adversary's updates."""
        model = self.antagonist
        if self._callbacks is None:
            _, self._callbacks = model._setup_learn(2**62, self._antagonist_returns, reset_num_timesteps=model.num_timesteps == 0)
        model._last_obs = model.env.reset()  # every slot starts on the new plan
        model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
        model.collect_rollouts(model.env, self._callbacks, model.rollout_buffer, n_rollout_steps=model.n_steps)
        pro, ant = self.protagonist_returns.returns, self._antagonist_returns.returns
        regrets = regret(pro, ant, form=self.regret_form)
        draws = [self.sampler.sample_for_slot(slot) for slot in range(len(regrets))]  # the rollout's plan
        self.levels, replayed = [level for level, _ in draws], [flag for _, flag in draws]
        run.glue.record(self.levels, regrets, replayed)
        designed, self._designed = self._designed, False
        if designed:  # REPAIRED's replay rollouts have no fresh design episodes to learn from
            self.adversary.learn(regrets)
        if not self.sampler.trains_on_new_levels:  # REPAIRED: new levels train nobody until replayed
            model.set_loss_mask(np.tile(np.array(replayed, dtype=np.float32), (model.n_steps, 1)))
        model._update_current_progress_remaining(run.model.num_timesteps, run.cfg.steps)
        model.train()
        self.stats = {
            "regret": float(regrets.mean()),
            "protagonist_mean_return": float(np.mean([np.mean(r) if r else 0.0 for r in pro])),
            "antagonist_max_return": float(np.mean([max([0.0, *r]) for r in ant])),
            "protagonist_episodes": float(sum(map(len, pro))),
            "antagonist_episodes": float(sum(map(len, ant))),
        }
        if designed:
            self.stats["adversary_entropy"] = self.adversary.entropy()

    def log(self, logger: Any) -> None:
        """TensorBoard: ``paired/regret``, the students' returns, the adversary's entropy."""
        for key, value in self.stats.items():
            logger.record(f"paired/{key}", value)

    def final_report(self, run: Any) -> dict[str, Any]:
        """The antagonist's final scores (the same episodes and seeds as the protagonist's), for the report."""
        from heldout.trainer.evaluate import evaluate_all

        final = evaluate_all(run, run.cfg.eval.final_episodes, seed_offset=1, model=self.antagonist)
        return {"antagonist": {key: final[key] for key in ("train", "test", "gap", "test_sets")}}

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        from heldout.trainer.checkpoint import capture

        return {
            "antagonist": capture(self.antagonist, self.antagonist_env, {}),
            "adversary": self.adversary.state_dict(),
            "levels": list(self.levels),
            "designed": self._designed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (before the protagonist's restore, whose RNG states win)."""
        from heldout.trainer.checkpoint import restore

        model = self.antagonist
        _, self._callbacks = model._setup_learn(2**62, self._antagonist_returns, reset_num_timesteps=False)
        restore(model, self.antagonist_env, state["antagonist"])
        self.adversary.load_state_dict(state["adversary"])
        self.levels = list(state["levels"])
        self._designed = bool(state["designed"])
