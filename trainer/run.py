"""A training run from start (or resume) to its report: checks, build, train, evaluate, report."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.type_aliases import MaybeCallback

from heldout.cli import UsageError
from heldout import safe_write
from heldout.evaluation import report
from heldout.trainer import signals
from heldout.trainer.build import Run, build, sampler_needs
from heldout.trainer.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from heldout.trainer.config import TrainConfig
from heldout.trainer.evaluate import add_scores_layout, evaluate_all, log_evaluation, probe_and_log
from heldout.trainer.lock import DirectoryLock
from heldout.trainer.loop import train_loop
from heldout.trainer.rundir import check_run_dir, open_run_dir


NOTICE = "heldout train: stopping at the next update to write a checkpoint (signal again to stop at once)"


def train(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    announce: str = "",
    callback: MaybeCallback = None,
) -> dict[str, Any]:
    """Run (or continue) training; returns the report that was written to ``run_dir``.

    The run directory is locked first (:mod:`heldout.trainer.lock`: one writer at a time, offline
    agents' runs too); then
    everything is checked before anything is written; then ``announce`` is printed. SIGINT and
    SIGTERM stop the run at once in the phases with nothing to save (set-up, DRED's fit, the
    untrained and the final evaluations), and during training at the next update with a
    checkpoint (:mod:`heldout.trainer.signals`); the run directory is left as it was before the
    phase. ``callback``: your own stable-baselines3 callback(s), called as ``model.learn`` calls them.
    """
    run_dir = Path(run_dir)
    offline_agent = "dataset" in agent_needs(cfg)
    with DirectoryLock(run_dir, "run directory"), signals.StopSignals(NOTICE, immediate=True) as stop:
        if offline_agent:  # an offline agent: the trainer provides its dataset
            from heldout.trainer import offline

            return offline.train(cfg, run_dir, resume=resume, progress=progress, announce=announce, stop=stop)
        check_run_dir(cfg, run_dir, resume)
        if "generator" in sampler_needs(cfg):
            from heldout.trainer import dred

            dred.prepare_run(cfg, run_dir, progress=progress)  # fits the generator's model when the run has none
        run = build(cfg, run_dir)
        state = load_checkpoint(run) if resume else None
        if state is not None:
            untrained = report.read_json(run_dir / "untrained.json")
            restore_checkpoint(run, state)
        if announce:
            print(announce, flush=True)
        with stop.held():
            open_run_dir(run_dir, cfg, None if state is None else state["num_timesteps"])
        run.model.set_logger(guard_writes(configure(str(run_dir / "tb"), ["tensorboard"]), run_dir / "tb"))
        add_scores_layout(run.model.logger, list(run.test_sets))
        run.started = time.time()
        if state is None:
            untrained = evaluate_all(run, cfg.eval.episodes)
            report.write_json(run_dir / "untrained.json", untrained)
        stop.immediate = False  # from here a signal waits for the update in progress, then checkpoints
        train_loop(run, resume=state is not None, stop=stop, progress=progress, callback=callback)
        save_checkpoint(run)
        stop.stop_if_requested(checkpointed=True, steps=run.model.num_timesteps)
        stop.immediate = True  # the checkpoint is final: from here on a signal stops at once
        return finish(run, untrained, stop)


def agent_needs(cfg: TrainConfig) -> frozenset[str]:
    """What the run's agent needs the trainer to provide (:func:`heldout.agents.needs`); a dataset
    given to an agent that learns online is a UsageError."""
    from heldout import agents

    if cfg.agent not in agents.names():
        raise UsageError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(agents.names())}")
    needs = agents.needs(cfg.agent)
    if cfg.offline.dataset and "dataset" not in needs:
        offline = [name for name in agents.names() if "dataset" in agents.needs(name)]
        raise UsageError(f"--agent {cfg.agent} learns online and reads no --dataset; drop it, or choose an offline "
                         f"agent ({', '.join(offline)})")  # fmt: skip
    return needs


def guard_writes(logger: Logger, tb_dir: Path) -> Logger:
    """``logger`` whose outputs raise :class:`~heldout.safe_write.WriteError` naming the event file
    (else ``tb_dir``) when a write fails. TensorBoard writes from a thread of its own: a full disk's
    OSError ends that thread and is raised again in the trainer at the next write, flush or close,
    which stops the run (exit 74); :func:`quiet_writer_threads` keeps the thread's traceback off
    stderr meanwhile."""
    quiet_writer_threads()

    def guarded(method: Callable[..., Any], output: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except OSError as err:
                events = getattr(getattr(getattr(output, "writer", None), "file_writer", None), "event_writer", None)
                raise safe_write.WriteError(getattr(events, "_file_name", None) or tb_dir, err) from None

        return call

    for output in logger.output_formats:
        output.write, output.close = guarded(output.write, output), guarded(output.close, output)
    return logger


def quiet_writer_threads() -> None:
    """Install (once) a ``threading.excepthook`` that drops an OSError ending TensorBoard's writer
    thread (the trainer reports it as one line when it comes back, :func:`guard_writes`) and hands
    every other thread exception to the hook that was there."""
    import threading

    previous = threading.excepthook
    if getattr(previous, "heldout_quiet", False):
        return

    def hook(args: Any) -> None:
        if issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread":
            return
        previous(args)

    hook.heldout_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def finish(
    run: Run, untrained: dict[str, Any], stop: signals.StopSignals | None = None, offline: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The final evaluation and the report (its two files written together even if a signal comes;
    ``offline``: what an offline agent learned from)."""
    cfg, model = run.cfg, run.model
    final = evaluate_all(run, cfg.eval.final_episodes, seed_offset=1)
    log_evaluation(model.logger, "final", final)
    final_probe = probe_and_log(run) if cfg.probe.interval else None
    partner = run.partner.final_report(run) if run.partner is not None else None
    model.logger.dump(model.num_timesteps)
    result = report.build(
        cfg,
        family=run.family,
        final=final,
        untrained=untrained,
        steps=model.num_timesteps,
        wall_time=run.wall_time_before + time.time() - run.started,
        level_sets={"train": run.train_levels, **run.test_sets},
        probe=final_probe,
        offline=offline,
        partner=partner,
    )
    with stop.held(stop_after=False) if stop is not None else nullcontext():  # the run ends here anyway
        report.write(run.run_dir, result)
    run.env.close()
    return result
