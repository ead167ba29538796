"""One training iteration, in one function: :func:`train_loop`.

Where each concern of a run lives (the arrows are one iteration; read :func:`train_loop`):

===================================  ==========================================================
between updates: evaluate, probe,    :mod:`heldout.trainer.evaluate` (episodes on every level
checkpoint, stop if asked            set), :mod:`heldout.trainer.checkpoint`, :mod:`~heldout.trainer.signals`
-> plan the rollout                  only a sampler that plans whole rollouts (DRED): every env
                                     slot restarts on the plan (:meth:`SamplerGlue.begin_rollout`)
-> collect one rollout               stable-baselines3's ``collect_rollouts``; the env
                                     (:class:`heldout.envs.LevelVecEnv`) plays the levels the
                                     sampler draws and reports each step's level and replay flag
                                     (with ``--bonus``: :mod:`heldout.bonuses` adds the intrinsic
                                     reward above it, and trains its networks at the rollout's end)
-> score its episodes                :class:`~heldout.trainer.sampler_glue.SamplerGlue` ->
                                     :class:`heldout.level_samplers.EpisodeScorer`
-> update the sampler                :mod:`heldout.level_samplers` (and
                                     :mod:`~heldout.trainer.level_stats`: what was played)
-> set the loss mask                 samplers that train only on replays (Robust PLR, ACCEL, DRED)
-> update the agent                  the agent's ``train()`` (:mod:`heldout.agents`)
-> log                               TensorBoard, through the agent's logger
===================================  ==========================================================

Around the loop: :mod:`~heldout.trainer.config` (the settings), :mod:`~heldout.trainer.build`
(every piece of a run from its config: level sets, envs, agent, sampler and glue, and what a
sampler needs such as a fitted generator), :mod:`~heldout.trainer.run` (a run from start or
resume to its report), :mod:`~heldout.trainer.rundir` (the run directory and its checks),
:mod:`~heldout.trainer.command` (``heldout train``). Evaluation itself is :mod:`heldout.evaluation`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from stable_baselines3.common.type_aliases import MaybeCallback

from heldout.trainer.build import Run
from heldout.trainer.checkpoint import save_checkpoint
from heldout.trainer.diverge import update_agent
from heldout.trainer.evaluate import run_periodic
from heldout.trainer.signals import StopSignals


def train_loop(
    run: Run,
    *,
    resume: bool = False,
    stop: StopSignals | None = None,
    progress: bool = False,
    callback: MaybeCallback = None,
) -> None:
    """Train ``run.model`` until ``run.cfg.steps`` env steps, one iteration after another.

    ``resume``: go on from where the model and env are (a restored checkpoint) instead of
    resetting them. ``stop``: a signal request is honoured between two updates, after a
    checkpoint (:class:`~heldout.trainer.signals.Stopped` is raised). ``callback``: the user's
    stable-baselines3 callbacks, called as ``learn`` calls them.
    """
    cfg, model, glue = run.cfg, run.model, run.glue
    total_timesteps, callbacks = model._setup_learn(  # sb3's own set-up of learn(): resets the env on a fresh start
        cfg.steps - model.num_timesteps if resume else cfg.steps,
        [glue.steps, *([run.bonus.callback] if run.bonus is not None else []),
         *(run.partner.callbacks if run.partner is not None else []), *_as_list(callback)],
        reset_num_timesteps=not resume,
    )  # fmt: skip
    if not resume:
        glue.restart()  # the env was reset: episodes carried from an earlier rollout cannot go on
    bar = ProgressBar(total_timesteps, model.num_timesteps) if progress else None
    rollout_size, first = model.n_steps * model.n_envs, model.num_timesteps
    callbacks.on_training_start(locals(), globals())
    iteration = 0
    if run.pending:  # a resume: first the evaluations a stop cut short at this step (a stop here checkpoints below)
        run.pending = run_periodic(run, run.pending, stop)
    while model.num_timesteps < total_timesteps:
        # -- between updates: progress, evaluation, probe, checkpoint, stop request
        steps, saved = model.num_timesteps, False
        if steps > first:
            if bar is not None:
                bar.show(steps, steps // rollout_size)
            due = [task for task, is_due in (
                ("eval", cfg.eval.interval and steps - run.last_eval_step >= cfg.eval.interval),
                ("probe", cfg.probe.interval and steps // cfg.probe.interval > (steps - rollout_size) // cfg.probe.interval),
            ) if is_due]  # fmt: skip
            run.pending = run_periodic(run, due, stop)  # a signal cuts them short; those undone stay pending
            if cfg.checkpoint_interval and (steps // rollout_size) % cfg.checkpoint_interval == 0 and not run.pending:
                save_checkpoint(run)
                saved = True
        if stop is not None and stop.requested is not None:
            if not saved:
                save_checkpoint(run)
            if bar is not None:
                bar.close(steps)
            stop.stop_if_requested(checkpointed=True, steps=steps)

        # -- collect one rollout on the levels the sampler draws
        glue.set_progress(steps / total_timesteps)
        if glue.begin_rollout() is not None:  # DRED: warm-up, replay or proposal; PAIRED: design or replay
            model._last_obs = model.env.reset()  # every slot starts on the plan
            model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
        if not model.collect_rollouts(model.env, callbacks, model.rollout_buffer, n_rollout_steps=model.n_steps):
            break
        iteration += 1

        # -- score its episodes, update the sampler, set the loss mask
        episodes = glue.score(model)
        if run.partner is not None:  # PAIRED: the antagonist's rollout, the regrets, its and the adversary's updates
            run.partner.after_rollout(run)
        glue.update(episodes)
        mask = glue.loss_mask()
        if mask is not None:
            model.set_loss_mask(mask)

        # -- update the agent, log
        model._update_current_progress_remaining(model.num_timesteps, total_timesteps)
        update_agent(run)  # model.train(); a diverged update stops here, before any checkpoint of it
        glue.log(model.logger, episodes)
        if run.partner is not None:
            run.partner.log(model.logger)
        model.dump_logs(iteration)
    if bar is not None:
        bar.close(model.num_timesteps)
    callbacks.on_training_end()


def _as_list(callback: MaybeCallback) -> list[Any]:
    if callback is None:
        return []
    return list(callback) if isinstance(callback, list) else [callback]


class ProgressBar:
    """A tqdm bar of env steps with the steps per second since the start and the update count."""

    def __init__(self, total: int, initial: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
        self.start, self.initial = time.time(), initial

    def show(self, steps: int, updates: int) -> None:
        self.bar.update(steps - self.bar.n)
        sps = (steps - self.initial) / max(time.time() - self.start, 1e-9)
        self.bar.set_postfix(sps=f"{sps:.0f}", updates=updates)

    def close(self, steps: int) -> None:
        self.bar.update(steps - self.bar.n)
        self.bar.close()

