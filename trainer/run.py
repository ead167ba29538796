"""A training run from start (or resume) to report: checks, build, train, evaluate, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure

from heldout.evaluation import report
from heldout.trainer import signals
from heldout.trainer.build import Setup, build
from heldout.trainer.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from heldout.trainer.config import TrainConfig
from heldout.trainer.evaluate import add_scores_layout, evaluate_all, evaluate_and_log, log_evaluation, probe_and_log
from heldout.trainer.rundir import CHECKPOINT, check_run_dir, open_run_dir


class RunCallback(BaseCallback):
    """Between PPO updates: periodic evaluation, checkpoints, and the progress bar."""

    def __init__(
        self,
        setup: Setup,
        run_dir: Path,
        progress: bool,
        last_eval_step: int = 0,
        stop: signals.StopSignals | None = None,
    ) -> None:
        super().__init__()
        self.stop = stop
        self.setup = setup
        self.run_dir = run_dir
        self.progress = progress
        self.bar = None
        self.rollout_size = setup.cfg.env.num_envs * setup.cfg.ppo.n_steps
        self.last_eval_step = last_eval_step
        self._t0 = time.time()
        self._steps0 = setup.model.num_timesteps

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.setup.cfg.steps, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True
            )

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        saved = self._between_updates()
        if self.stop is not None and self.stop.requested is not None:  # a safe point: stop here
            if not saved:
                save_checkpoint(self.setup, self.run_dir, self.last_eval_step)
            self._close_bar()
            self.stop.stop_if_requested(checkpointed=True, steps=self.model.num_timesteps)

    def _between_updates(self) -> bool:
        """Progress, periodic evaluation and checkpoint; returns whether a checkpoint was written."""
        steps = self.model.num_timesteps
        if steps == self._steps0:
            return False  # nothing has changed since the run (re)started
        cfg = self.setup.cfg
        update = steps // self.rollout_size
        if self.bar is not None:
            self.bar.update(steps - self.bar.n)
            sps = (steps - self._steps0) / max(time.time() - self._t0, 1e-9)
            self.bar.set_postfix(sps=f"{sps:.0f}", updates=update)
        if cfg.eval.interval and steps - self.last_eval_step >= cfg.eval.interval:
            self.last_eval_step = steps
            evaluate_and_log(self.setup, self.run_dir, self.logger, cfg.eval.episodes)
        if cfg.probe.interval and steps // cfg.probe.interval > (steps - self.rollout_size) // cfg.probe.interval:
            probe_and_log(self.setup, self.run_dir, self.logger)
        if cfg.checkpoint_interval and update % cfg.checkpoint_interval == 0:
            save_checkpoint(self.setup, self.run_dir, self.last_eval_step)
            return True
        return False

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.update(self.model.num_timesteps - self.bar.n)
            self.bar.close()
            self.bar = None

    def _on_training_end(self) -> None:
        self._close_bar()


def train(
    cfg: TrainConfig, run_dir: Path, *, resume: bool = False, progress: bool = True, announce: str = ""
) -> dict[str, Any]:
    """Run (or continue) training; returns the report that was written to ``run_dir``.

    Everything is checked before anything is written; then ``announce`` is printed. SIGINT and
    SIGTERM stop the run at the next update with a checkpoint (:mod:`heldout.signals`).
    """
    run_dir = Path(run_dir)
    check_run_dir(cfg, run_dir, resume)
    if cfg.sampler.name == "dred":
        from heldout.trainer import dred

        dred.prepare_run(cfg, run_dir, progress=progress)  # fits the model when the run has none
    setup = build(cfg, run_dir)
    state = load_checkpoint(setup, run_dir) if resume else None
    if state is None:
        untrained = None
    else:
        untrained = report.read_json(run_dir / "untrained.json")
        restore_checkpoint(setup, state, run_dir / CHECKPOINT)
    if announce:
        print(announce, flush=True)
    notice = "heldout train: stopping at the next update to write a checkpoint (signal again to stop at once)"
    with signals.StopSignals(notice) as stop:
        open_run_dir(run_dir, cfg, None if state is None else state["num_timesteps"])
        setup.model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
        add_scores_layout(setup.model.logger, list(setup.test_sets))
        setup.started = time.time()
        if state is None:
            untrained = evaluate_all(setup, cfg.eval.episodes)
            report.write_json(run_dir / "untrained.json", untrained)
            last_eval = 0
        else:
            last_eval = state["last_eval_step"]
            setup.wall_time_before = state["wall_time"]
        run_cb = RunCallback(setup, run_dir, progress, last_eval_step=last_eval, stop=stop)
        callbacks = [setup.sampler_callback, run_cb]
        remaining = cfg.steps - setup.model.num_timesteps
        if remaining > 0:
            setup.model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=state is None)
        save_checkpoint(setup, run_dir, run_cb.last_eval_step)
        stop.stop_if_requested(checkpointed=True, steps=setup.model.num_timesteps)
        stop.immediate = True  # the checkpoint is final: from here on a signal stops at once
        return _finish(setup, run_dir, untrained)


def _finish(setup: Setup, run_dir: Path, untrained: dict[str, Any]) -> dict[str, Any]:
    """The final evaluation and the report."""
    cfg = setup.cfg
    final = evaluate_all(setup, cfg.eval.final_episodes, seed_offset=1)
    log_evaluation(setup.model.logger, "final", final)
    final_probe = probe_and_log(setup, run_dir, setup.model.logger) if cfg.probe.interval else None
    setup.model.logger.dump(setup.model.num_timesteps)
    result = report.build(
        cfg,
        family=setup.family,
        final=final,
        untrained=untrained,
        steps=setup.model.num_timesteps,
        wall_time=setup.wall_time_before + time.time() - setup.started,
        level_sets={"train": setup.train_levels, **setup.test_sets},
        probe=final_probe,
    )
    report.write(run_dir, result)
    setup.env.close()
    return result
