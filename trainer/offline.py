"""The trainer's side of agents that need a dataset (``bc``, ``cql``): from a dataset to the report.

:func:`heldout.trainer.run.train` hands a run here when its agent declares ``needs=("dataset",)``
(:func:`heldout.agents.needs`). The run is built from the same config as an online run: its
training levels, its held-out sets, the agent on the run's network; the dataset must be of the
same env family and hold only the run's training levels. One iteration: between updates
(evaluate, checkpoint, stop if asked) -> draw a minibatch -> update the agent -> log. The untrained
and the trained agent are evaluated and reported exactly as an online run's (train, every held-out
set, gaps, intervals, TensorBoard), and the report names the dataset. Checkpoints hold the agent,
its optimiser (and CQL's target), the minibatch RNG and every RNG state: a resumed run continues
bit-identically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import configure

from heldout import envs
from heldout.cli import UsageError
from heldout.evaluation import report
from heldout.offline import dataset as datasets
from heldout.trainer import config, limits, signals
from heldout.trainer.build import Run, load_level_set, load_test_sets, prepare_process
from heldout.trainer.checkpoint import rng_states, set_rng_states
from heldout.trainer.config import TrainConfig
from heldout.trainer.evaluate import add_scores_layout, evaluate_all, log_evaluation
from heldout.trainer.rundir import CHECKPOINT, EVALUATIONS, RESUMABLE, check_run_dir, config_differences, open_run_dir
from heldout.trainer.tree import load_tree, save_tree

FORMAT = "heldout-offline-checkpoint-v1"


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, progress: bool = True,
          announce: str = "", stop: signals.StopSignals | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``cfg.agent`` on ``cfg.offline.dataset``; returns the report written to ``run_dir``.

    Called by :func:`heldout.trainer.run.train`, which holds the run directory's lock and ``stop``
    (in its immediate mode: a signal stops set-up at once); without ``stop``, signals are
    handled here from the run directory's opening on."""
    from heldout.trainer.run import NOTICE, finish, guard_writes

    if stop is None:
        with signals.StopSignals(NOTICE) as own:
            return train(cfg, run_dir, resume=resume, progress=progress, announce=announce, stop=own)
    run_dir = Path(run_dir)
    check_run_dir(cfg, run_dir, resume)
    data = load_dataset(cfg)
    run = build(cfg, run_dir, data)
    rng = np.random.default_rng(cfg.seed)
    state = load_checkpoint(run, data) if resume else None
    if state is not None:
        untrained = report.read_json(run_dir / "untrained.json")
        restore(run, rng, state)
    if announce:
        print(announce, flush=True)
    agent = run.model
    with stop.held():
        open_run_dir(run_dir, cfg, None if state is None else agent.updates)
    agent.set_logger(guard_writes(configure(str(run_dir / "tb"), ["tensorboard"]), run_dir / "tb"))
    add_scores_layout(agent.logger, list(run.test_sets))
    run.started = time.time()
    if state is None:
        untrained = evaluate_all(run, cfg.eval.episodes)
        report.write_json(run_dir / "untrained.json", untrained)
    stop.immediate = False  # from here a signal waits for the update in progress, then checkpoints
    offline_loop(run, data, rng, stop=stop, progress=progress)
    save_checkpoint(run, rng, data)
    stop.stop_if_requested(checkpointed=True, steps=agent.updates)
    stop.immediate = True
    return finish(run, untrained, stop, offline={"agent": cfg.agent, "updates": agent.updates, "dataset": data.describe()})


def offline_loop(run: Run, data: datasets.OfflineData, rng: np.random.Generator, *,
                 stop: signals.StopSignals | None = None, progress: bool = False) -> None:  # fmt: skip
    """Update ``run.model`` on minibatches of ``data`` until ``offline.updates`` updates."""
    from heldout.trainer.loop import ProgressBar

    cfg, agent = run.cfg, run.model
    off = cfg.offline
    first = agent.updates
    bar = ProgressBar(off.updates, first) if progress else None
    while agent.updates < off.updates:
        # -- between updates: evaluation, checkpoint, stop request
        n, saved = agent.updates, False
        if n > first:
            if off.eval_interval and n % off.eval_interval == 0:
                run.last_eval_step = n
                summary = evaluate_all(run, cfg.eval.episodes)
                log_evaluation(agent.logger, "eval", summary)
                report.append_jsonl(run.run_dir / EVALUATIONS, {"steps": n, "updates": n, **summary})
            if off.checkpoint_interval and n % off.checkpoint_interval == 0:
                save_checkpoint(run, rng, data)
                saved = True
        if stop is not None and stop.requested is not None:
            if not saved:
                save_checkpoint(run, rng, data)
            if bar is not None:
                bar.close(n)
            stop.stop_if_requested(checkpointed=True, steps=n)

        # -- a minibatch -> update the agent -> log
        stats = agent.update(data.sample(rng, off.batch_size))
        if agent.updates % off.log_interval == 0:
            for key, value in stats.items():
                agent.logger.record(f"offline/{key}", value)
            agent.logger.dump(agent.updates)
        if bar is not None and agent.updates % 50 == 0:
            bar.show(agent.updates, agent.updates)
    if bar is not None:
        bar.close(agent.updates)


# -- the dataset and the run -----------------------------------------------------------------------


def load_dataset(cfg: TrainConfig) -> datasets.OfflineData:
    """The run's dataset (``offline.dataset``), read with one-line errors."""
    if not cfg.offline.dataset:
        raise UsageError(f"--agent {cfg.agent} learns from a dataset: give --dataset DIR (written by `heldout collect`)")
    try:
        return datasets.read(cfg.offline.dataset)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None


def trained(cfg: TrainConfig, run_dir: Path) -> tuple[Run, dict[str, Any]]:
    """An offline run's trained agent from its checkpoint, for ``heldout evaluate`` (the dataset is
    not read); the state's ``num_timesteps`` is 0: the agent took no env steps."""
    run = build(cfg, run_dir, None)
    path = run_dir / CHECKPOINT
    try:
        state = load_tree(path, what="checkpoint")
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a checkpoint of an offline run ({FORMAT}); give the run directory it belongs to")
    restore(run, np.random.default_rng(0), state)
    return run, {**state, "num_timesteps": 0}


def build(cfg: TrainConfig, run_dir: Path | None, data: datasets.OfflineData | None) -> Run:
    """The run's level sets and agent (on a one-slot env of the training levels), checked against the
    dataset (when given)."""
    from heldout import agents

    try:
        family = envs.get(cfg.env.name)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    limits.check_bonus(cfg, offline=True)
    prepare_process(cfg)
    train_levels = load_level_set(family, cfg.env.train_set, cfg)
    test_sets = load_test_sets(family, cfg)
    if data is not None:
        check_dataset(data, family, cfg, train_levels, test_sets)
    env = family.make_vec(1, train_levels, seed=cfg.seed, **dict(cfg.env.options))
    settings = {section: getattr(cfg, section) for section in agents.sections(cfg.agent)}
    model = agents.make(cfg.agent, env, ppo=cfg.ppo, network=cfg.network, seed=cfg.seed,
                        device=agents.resolve_device(cfg.device), **settings)  # fmt: skip
    return Run(cfg, model, None, family, train_levels, test_sets, run_dir)  # type: ignore[arg-type]


def check_dataset(data: datasets.OfflineData, family: envs.EnvFamily, cfg: TrainConfig,
                  train: envs.LevelSet, tests: dict[str, envs.LevelSet]) -> None:  # fmt: skip
    """Refuse a dataset of another family or options, or holding levels outside the training set."""
    where = f"dataset {str(data.path)!r}"
    if data.info["family"] != family.name:
        raise UsageError(f"{where} was collected on {data.info['family']}, but the run trains on {family.name}; "
                         f"give --env {data.info['family']}")  # fmt: skip
    if dict(data.info.get("env_options", {})) != dict(cfg.env.options):
        raise UsageError(f"{where} was collected with env options {data.info.get('env_options')}, the run has "
                         f"{dict(cfg.env.options)}; give --env.options as the dataset's")  # fmt: skip
    collected = (data.info.get("config") or {}).get("env", {})
    flags = f"--train-levels {collected.get('num_train_levels')} --env.level_seed {collected.get('level_seed')}"
    if train.finite:
        known = set(train.levels)
        outside = len({lv for lv in data.levels if lv not in known})
        if outside:
            raise UsageError(
                f"{where} holds {outside} levels outside this run's {len(train)} training levels; train with the "
                f"collecting run's level settings ({flags})"
            )
    for name, levels in tests.items():
        if levels.finite:
            shared = len(set(levels.levels) & set(data.levels))
            if shared:
                raise UsageError(f"{where} holds {shared} levels of the held-out set {name}: they would not be held "
                                 "out; collect a dataset on the training levels only")  # fmt: skip


# -- checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(run: Run, rng: np.random.Generator, data: datasets.OfflineData) -> None:
    """The agent, the minibatch RNG, every RNG state and the counters to ``RUN_DIR/checkpoints/latest.pt``."""
    state = {
        "format": FORMAT,
        "agent": run.model.state_dict(),
        "minibatch_rng": rng.bit_generator.state,
        "rng": rng_states(),
        "last_eval_update": run.last_eval_step,
        "wall_time": run.wall_time_before + time.time() - run.started,
        "config": config.to_dict(run.cfg),
        "dataset": {"transitions": len(data), "episodes": len(data.levels)},
    }
    path = run.run_dir / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tree(path, state)


def load_checkpoint(run: Run, data: datasets.OfflineData) -> dict[str, Any]:
    """The run's checkpoint, checked against its config and dataset (writes nothing)."""
    path = run.run_dir / CHECKPOINT
    try:
        state = load_tree(path, what="checkpoint")
    except ValueError as err:
        raise UsageError(f"{err}; restore it from a copy or start the run afresh in a new --run-dir") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a checkpoint of an offline run ({FORMAT}); give the run directory it belongs to")
    differing = config_differences(state.get("config") or {}, run.cfg, ignore=RESUMABLE)
    if differing:
        raise UsageError(f"checkpoint {path} was written with other settings ({'; '.join(differing[:4])}); "
                         "resume with the run's own config.yaml")  # fmt: skip
    if state["dataset"] != {"transitions": len(data), "episodes": len(data.levels)}:
        raise UsageError(f"the dataset {str(data.path)!r} has changed since the run started "
                         f"({state['dataset']['transitions']} transitions then, {len(data)} now); put it back")  # fmt: skip
    return state


def restore(run: Run, rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Put the agent, the minibatch RNG and every RNG back where the checkpoint left them."""
    try:
        run.model.load_state_dict(state["agent"])
    except (KeyError, RuntimeError, ValueError) as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UsageError(f"checkpoint {run.run_dir / CHECKPOINT} does not fit this run ({detail})") from None
    rng.bit_generator.state = state["minibatch_rng"]
    set_rng_states(state["rng"])
    run.last_eval_step = state["last_eval_update"]
    run.wall_time_before = state["wall_time"]
