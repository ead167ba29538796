"""Train an agent on training levels, evaluate it on held-out levels, report the gap.

``heldout train`` (or ``python train.py``) reads a config (preset, YAML file, CLI flags),
trains with TensorBoard logging and atomic checkpoints, evaluates the untrained and the
trained agent on the training and the held-out levels, and writes ``report.json`` and
``report.md`` into the run directory. ``heldout train --resume RUN_DIR`` continues a run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from heldout import checkpoint, config, envs, evaluation, probe, report, signals, userfiles
from heldout.cli import UsageError, command_parser
from heldout.config import TrainConfig

CONFIG_FILE = "config.yaml"
CHECKPOINT = Path("checkpoints") / "latest.pt"
EVALUATIONS = "evaluations.jsonl"
PROBES = "probe.jsonl"


# -- building the pieces ------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything a run is made of, built from its config."""

    cfg: TrainConfig
    family: envs.EnvFamily
    train_levels: envs.LevelSet
    test_sets: dict[str, envs.LevelSet]
    """The held-out sets by name, in the order of ``env.test_levels`` (the first is ``test``)."""
    level_env: envs.LevelVecEnv
    env: VecEnv
    model: Any
    sampler_callback: Any
    started: float = 0.0
    wall_time_before: float = 0.0


def load_level_set(family: envs.EnvFamily, spec: str, cfg: TrainConfig) -> envs.LevelSet:
    """A named level set of the family or, for any other name, a level file."""
    options = dict(cfg.env.options)
    if spec in family.level_set_names:
        return family.level_set(
            spec, num_train_levels=cfg.env.num_train_levels, level_seed=cfg.env.level_seed, **options
        )
    if Path(spec).exists():
        space = family.level_space(**options)
        levels = space.read_levels(spec)
        check_solvable(space, levels, spec)
        return levels
    raise UsageError(
        f"{family.name} has no level set {spec!r} and no file of that name exists; "
        f"choose one of {', '.join(family.level_set_names)} or a level file"
    )


def sampler_params(cfg: TrainConfig, run_dir: Path | None) -> dict[str, Any]:
    """The level sampler's parameters: the config's, and for ``dred`` the generator of the
    run's fitted model (see :mod:`heldout.dred`)."""
    if cfg.sampler.name == "dred":
        from heldout import dred

        return dred.sampler_params(cfg, run_dir)
    return {"seed": cfg.seed, **cfg.sampler.params}


def check_solvable(space: envs.LevelSpace, levels: envs.LevelSet, source: str) -> None:
    """Refuse a level file holding levels nobody can solve (they would score 0 in silence)."""
    try:
        bad = [i + 1 for i, level in enumerate(levels.levels or ()) if not space.is_solvable(level)]
    except NotImplementedError:
        return  # the family cannot tell (Procgen levels are solvable by construction)
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
        raise UsageError(
            f"{source}: {len(bad)} of {len(levels)} levels cannot be solved (no path from start to goal: level "
            f"{shown}); they would score 0 whatever the agent does, so remove them from the file"
        )


def read_run_config(run_dir: Path, flag: str) -> TrainConfig:
    """The validated config saved in a run directory (``flag`` names the path's origin in messages)."""
    saved = run_dir / CONFIG_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{flag} {run_dir} is a file; give the run directory that holds {CONFIG_FILE}")
    if not saved.is_file():
        raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the {flag} path")
    data = config.load_yaml(saved)
    if not data:
        raise UsageError(f"{saved} is empty, but it must hold the run's whole config; restore it from a copy")
    try:
        cfg = config.from_dict(data)
        cfg.validate()
    except ValueError as err:
        raise UsageError(f"{saved} is not a valid run config: {err}; restore it from a copy") from None
    return cfg


def build(cfg: TrainConfig, run_dir: Path | None = None) -> Setup:
    """Every piece of a run from its config; checks names and values, writes nothing.

    ``run_dir``: the run's directory, where a ``dred`` run keeps its generative model."""
    from heldout import agents, level_samplers

    try:
        family = envs.get(cfg.env.name)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    if cfg.agent not in agents.names():
        raise UsageError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(agents.names())}")
    if cfg.sampler.name not in level_samplers.names():
        raise UsageError(
            f"unknown level sampler {cfg.sampler.name!r}; choose one of {', '.join(level_samplers.names())}"
        )
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    options = dict(cfg.env.options)
    train_levels = load_level_set(family, cfg.env.train_set, cfg)
    if cfg.probe.interval and not train_levels.finite:
        raise UsageError(
            f"--probe.interval needs a finite training set to tell its levels apart, but --env.train_set "
            f"{cfg.env.train_set} is unbounded; train on a level set of N levels, or leave the probe off"
        )
    test_sets = load_test_sets(family, cfg)
    level_env = family.make_vec(cfg.env.num_envs, train_levels, seed=cfg.seed, **options)
    env: VecEnv = level_env
    if cfg.ppo.normalize_reward:
        env = VecNormalize(level_env, norm_obs=False, norm_reward=True, gamma=cfg.ppo.gamma)
    settings = {section: getattr(cfg, section) for section in agents.sections(cfg.agent)}
    model = agents.make(
        cfg.agent, env, ppo=cfg.ppo, network=cfg.network, seed=cfg.seed, device=agents.resolve_device(cfg.device),
        **settings,
    )
    space = family.level_space(**options)
    try:
        sampler = level_samplers.make(cfg.sampler.name, train_levels, space=space, **sampler_params(cfg, run_dir))
    except ValueError as err:
        raise UsageError(f"--sampler {cfg.sampler.name} with --env.train_set {cfg.env.train_set}: {err}") from None
    from heldout.level_stats import PlayedLevelStats, reference_levels
    from heldout.sampler_callback import LevelSamplerCallback

    # Drift is measured against the family's `train` set (whose distribution `test` shares), also
    # when the run trains on another set: DR and ACCEL on `random` should show their distance.
    reference = train_levels if cfg.env.train_set == "train" else load_level_set(family, "train", cfg)
    stats = PlayedLevelStats(space, reference_levels(reference, seed=cfg.env.level_seed), sampler)
    sampler_callback = LevelSamplerCallback(sampler, level_stats=stats if stats.enabled else None)
    sampler_callback.attach(env)  # the env's first reset already draws from the sampler
    return Setup(cfg, family, train_levels, test_sets, level_env, env, model, sampler_callback)


def load_test_sets(family: envs.EnvFamily, cfg: TrainConfig) -> dict[str, envs.LevelSet]:
    """The held-out sets of ``env.test_levels`` by name; two sets of one name are an error."""
    sets: dict[str, envs.LevelSet] = {}
    for spec in cfg.env.test_levels:
        level_set = load_level_set(family, spec, cfg)
        if level_set.name in sets:
            raise UsageError(f"--env.test_levels names the level set {level_set.name!r} twice; give each set once")
        sets[level_set.name] = level_set
    return sets


# -- during training ------------------------------------------------------------------------------


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


def evaluate_all(setup: Setup, episodes: int, seed_offset: int = 0) -> dict[str, Any]:
    """The agent on the training set and on every held-out set (see :func:`evaluation.summarise_sets`)."""
    cfg = setup.cfg
    runs = {}
    for name, levels in (("train", setup.train_levels), *setup.test_sets.items()):
        runs[name] = evaluation.run_episodes(
            setup.model,
            setup.family,
            levels,
            episodes,
            num_envs=cfg.eval.num_envs,
            deterministic=cfg.eval.deterministic,
            seed=cfg.seed + 1_000_003 + seed_offset,
            env_options=cfg.env.options,
        )
    train = runs.pop("train")
    return evaluation.summarise_sets(setup.family, train, runs, setup.test_sets, cfg.env.options)


def log_evaluation(logger, prefix: str, summary: dict[str, Any]) -> None:
    """``{prefix}/train``, ``/test``, ``/gap`` (the first held-out set), then per held-out set
    ``{prefix}/sets/NAME``, ``{prefix}/gaps/NAME`` and, for named levels, ``{prefix}/levels/NAME/LEVEL``."""
    for part in ("train", "test", "gap"):
        logger.record(f"{prefix}/{part}", summary[part]["mean"])
        for unit in ("return", "normalised"):
            if unit in summary[part]:
                logger.record(f"{prefix}/{part}_{unit}", summary[part][unit]["mean"])
    for name, entry in summary["test_sets"].items():
        logger.record(f"{prefix}/sets/{name}", entry["score"]["mean"])
        logger.record(f"{prefix}/gaps/{name}", entry["gap"]["mean"])
        for level, stats in entry.get("per_level", {}).items():
            logger.record(f"{prefix}/levels/{name}/{level}", stats["mean"])


def scores_layout(test_sets: list[str]) -> dict[str, dict[str, list]]:
    """TensorBoard's custom-scalars layout: train, every held-out set and every gap in one chart
    (the tags :func:`log_evaluation` writes), periodic and final."""
    def tags(prefix: str) -> list[str]:
        return [f"{prefix}/train", *(f"{prefix}/sets/{s}" for s in test_sets), *(f"{prefix}/gaps/{s}" for s in test_sets)]

    return {"heldout": {"train, held-out sets and gaps": ["Multiline", tags("eval")],
                        "final evaluation": ["Multiline", tags("final")]}}


def add_scores_layout(logger, test_sets: list[str]) -> None:
    """Write :func:`scores_layout` to the run's TensorBoard files (once per start or resume)."""
    for output in logger.output_formats:
        writer = getattr(output, "writer", None)
        if writer is not None:
            writer.add_custom_scalars(scores_layout(test_sets))
            writer.flush()


def evaluate_and_log(setup: Setup, run_dir: Path, logger, episodes: int) -> dict[str, Any]:
    """A periodic evaluation: to TensorBoard (``eval/...``) and to ``evaluations.jsonl``."""
    summary = evaluate_all(setup, episodes)
    log_evaluation(logger, "eval", summary)
    report.append_jsonl(run_dir / EVALUATIONS, {"steps": setup.model.num_timesteps, **summary})
    return summary


def probe_and_log(setup: Setup, run_dir: Path, logger) -> dict[str, Any]:
    """The level-identity probe (:mod:`heldout.probe`): to TensorBoard (``probe/...``) and ``probe.jsonl``."""
    cfg = setup.cfg
    result = probe.run(setup.model, setup.family, setup.train_levels, cfg.probe.steps, cfg.seed + 2_000_003,
                       cfg.env.options)  # fmt: skip
    probe.log(logger, result)
    report.append_jsonl(run_dir / PROBES, {"steps": setup.model.num_timesteps, **result})
    return result


def save_checkpoint(setup: Setup, run_dir: Path, last_eval_step: int) -> None:
    extra = {
        "sampler": setup.sampler_callback.state_dict(),
        "last_eval_step": last_eval_step,
        "wall_time": setup.wall_time_before + time.time() - setup.started,
        "config": config.to_dict(setup.cfg),
    }
    state = checkpoint.capture(setup.model, setup.level_env, extra)
    checkpoint.save(state, run_dir / CHECKPOINT, setup.level_env.level_space)


def config_differences(saved: dict[str, Any], cfg: TrainConfig, ignore: set[str] = frozenset()) -> list[str]:
    """``name: saved -> current`` for every setting (not in ``ignore``) that differs."""

    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(tree, dict) or (prefix and prefix[:-1] in leaves):
            return {prefix[:-1]: tree}
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out

    leaves = {name for name, _, _ in config.leaf_fields(TrainConfig)}
    a, b = flat(saved), flat(config.to_dict(cfg))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if k not in ignore and a.get(k) != b.get(k)]


def load_checkpoint(setup: Setup, run_dir: Path) -> dict[str, Any]:
    """The run's checkpoint, read safely and checked against the run's config (writes nothing)."""
    path = run_dir / CHECKPOINT
    state = checkpoint.load(path, setup.level_env.level_space)
    differing = config_differences(state.get("config") or {}, setup.cfg, ignore=RESUMABLE)
    if differing:
        raise UsageError(
            f"checkpoint {path} was written with other settings than {run_dir / CONFIG_FILE} "
            f"({'; '.join(differing[:4])}{'; ...' if len(differing) > 4 else ''}); "
            "put back the run's own config.yaml or the checkpoint that belongs to it"
        )
    return state


def restore_checkpoint(setup: Setup, state: dict[str, Any], path: Path) -> None:
    """Put the run back where ``state`` left it; a state that does not fit is a UsageError."""
    try:
        setup.sampler_callback.load_state_dict(state["sampler"])
        checkpoint.restore(setup.model, setup.level_env, state)
    except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UsageError(f"checkpoint {path} does not fit this run ({detail}); start the run afresh in a new --run-dir") from None


# -- the run -------------------------------------------------------------------------------------


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run that already progressed or to resume one that cannot be.

    A directory holding only this very config (a run stopped before its first checkpoint)
    may be started again. Writes nothing.
    """
    saved = run_dir / CONFIG_FILE
    try:
        userfiles.check_dir_path(run_dir, "run directory")
    except ValueError as err:
        raise UsageError(str(err)) from None
    progressed = (run_dir / CHECKPOINT).exists() or (run_dir / "report.json").exists()
    if resume:
        if not saved.is_file():
            raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the path")
        if (run_dir / CHECKPOINT).is_dir():
            raise UsageError(
                f"{run_dir / CHECKPOINT} is a directory, not a checkpoint file; put the run's checkpoint file "
                f"back there, or start the run afresh in a new --run-dir"
            )
        if not (run_dir / CHECKPOINT).exists():
            raise UsageError(
                f"{run_dir} has no checkpoint (the run stopped before writing one); start it again with "
                f"heldout train --config {saved} --run-dir {run_dir}"
            )
        return
    if saved.exists() and (progressed or config.load_yaml(saved) != config.to_dict(cfg)):
        raise UsageError(
            f"run directory {run_dir} already holds a run; continue it with --resume {run_dir} "
            "or choose another --run-dir"
        )


def open_run_dir(run_dir: Path, cfg: TrainConfig, resume_step: int | None) -> None:
    """Create the run directory with its config, or, on resume, drop the evaluation and probe
    records written after the checkpoint (they will be written again)."""
    if resume_step is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(cfg, run_dir / CONFIG_FILE)
    for records in (run_dir / EVALUATIONS, run_dir / PROBES):
        if resume_step is None:
            records.unlink(missing_ok=True)
        elif records.exists():
            kept = [line for line in records.read_text().splitlines() if json.loads(line)["steps"] <= resume_step]
            report.write_text(records, "".join(line + "\n" for line in kept))


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
        from heldout import dred

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


# -- command line -------------------------------------------------------------------------------

RESUMABLE = {"steps", "device", "eval.final_episodes", "torch_threads"}
"""Settings that ``--resume`` may change: none of them changes what the run learns so far."""

SHORT_FLAGS = {
    "--env": "env.name",
    "--train-levels": "env.num_train_levels",
    "--sampler": "sampler.name",
    "--agent": "agent",
    "--augment": "augment.name",
    "--steps": "steps",
    "--seed": "seed",
    "--device": "device",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(config.PRESETS), help="starting config (default: from --env)")
    parser.add_argument("--config", metavar="YAML", help="a YAML file holding any part of the config")
    parser.add_argument("--run-dir", metavar="DIR", help="where logs, checkpoints and the report go")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_settings(parser, "settings (defaults of the maze preset shown)")


def add_settings(parser: argparse.ArgumentParser, title: str) -> None:
    """A flag for every setting (``--ppo.lr``, and the short ones such as ``--sampler``); unset
    flags leave no attribute, so only the settings given on the command line are overrides."""
    defaults = config.preset("maze")
    short = {v: k for k, v in SHORT_FLAGS.items()}
    group = parser.add_argument_group(title)
    for name, kind, f in config.leaf_fields(TrainConfig):
        flags = list(dict.fromkeys([short.get(name, f"--{name}"), f"--{name}"]))
        help_text = f.metadata.get("help", "")
        group.add_argument(
            *flags,
            dest=name,
            default=argparse.SUPPRESS,
            metavar=config.type_name(kind).upper(),
            help=f"{help_text} (default: {config.get_field(defaults, name)!r})",
        )


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """The config, run directory and resume flag that the parsed arguments ask for."""
    overrides = {name: getattr(args, name) for name, _, _ in config.leaf_fields(TrainConfig) if hasattr(args, name)}
    kinds = {name: kind for name, kind, _ in config.leaf_fields(TrainConfig)}
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise UsageError("give either --resume RUN_DIR or --run-dir, not two different directories")
        cfg = read_run_config(run_dir, "--resume")
        changing = set(overrides) - RESUMABLE
        if changing or args.config:
            raise UsageError(
                f"--resume keeps the run's config; only {', '.join(sorted(RESUMABLE))} may change "
                f"(got {', '.join(sorted(changing)) or '--config'})"
            )
    else:
        env_name = overrides.get("env.name")
        yaml_data = config.load_yaml(args.config) if args.config else {}
        if env_name is None:
            env_name = (yaml_data.get("env") or {}).get("name", "maze") if isinstance(yaml_data.get("env"), dict) else "maze"
        cfg = config.preset(args.preset or config.preset_for_env(env_name))
        if yaml_data:
            config.apply_mapping(cfg, yaml_data, args.config)
        run_dir = None
    for name, value in overrides.items():
        config.set_field(cfg, name, config.parse_value(value, kinds[name], name))
    cfg.validate()
    if run_dir is None:
        if args.run_dir:
            run_dir = Path(args.run_dir)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path("runs") / f"{cfg.env.name.replace('/', '-')}-{cfg.sampler.name}-s{cfg.seed}-{stamp}"
    return cfg, run_dir, bool(args.resume)


def run(args: argparse.Namespace) -> int:
    try:
        cfg, run_dir, resume = config_from_args(args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    progress = not args.no_progress
    announce = f"heldout train: {cfg.env.name}, {cfg.agent}, sampler {cfg.sampler.name}, {cfg.steps:,} steps -> {run_dir}"
    try:
        result = train(cfg, run_dir, resume=resume, progress=progress, announce=announce)
    except signals.Stopped as stopped:
        print(stopped_line(stopped, run_dir), file=sys.stderr, flush=True)
        return stopped.exit_code
    print(report.summary_lines(result))
    return 0


def stopped_line(stopped: signals.Stopped, run_dir: Path) -> str:
    """One line: why the run stopped, where its checkpoint is, and the command that continues it."""
    how = f"stopped by {signal_name(stopped.signum)}" + ("" if stopped.checkpointed else " at once")
    if stopped.checkpointed:
        return (
            f"heldout train: {how} at {stopped.steps:,} steps; checkpoint written in {run_dir}; "
            f"continue with: heldout train --resume {shlex.quote(str(run_dir))}"
        )
    if (run_dir / CHECKPOINT).is_file():
        return (
            f"heldout train: {how}; the last checkpoint in {run_dir} is kept; "
            f"continue with: heldout train --resume {shlex.quote(str(run_dir))}"
        )
    return (
        f"heldout train: {how} before the first checkpoint; start again with: heldout train "
        f"--config {shlex.quote(str(run_dir / CONFIG_FILE))} --run-dir {shlex.quote(str(run_dir))}"
    )


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def add_command(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "train", "train an agent and report the generalisation gap", __doc__)
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    from heldout.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
