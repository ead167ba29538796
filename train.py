"""Train an agent on training levels, evaluate it on held-out levels, report the gap.

``heldout train`` (or ``python train.py``) reads a config (preset, YAML file, CLI flags),
trains with TensorBoard logging and atomic checkpoints, evaluates the untrained and the
trained agent on the training and the held-out levels, and writes ``report.json`` and
``report.md`` into the run directory. ``heldout train --resume RUN_DIR`` continues a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from heldout import checkpoint, config, envs, evaluation, report
from heldout.cli import UsageError
from heldout.config import TrainConfig

CONFIG_FILE = "config.yaml"
CHECKPOINT = Path("checkpoints") / "latest.pt"
EVALUATIONS = "evaluations.jsonl"


# -- building the pieces ------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything a run is made of, built from its config."""

    cfg: TrainConfig
    family: envs.EnvFamily
    train_levels: envs.LevelSet
    test_levels: envs.LevelSet
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
    if Path(spec).is_file():
        return family.level_space(**options).read_levels(spec)
    raise UsageError(
        f"{family.name} has no level set {spec!r} and no file of that name exists; "
        f"choose one of {', '.join(family.level_set_names)} or a level file"
    )


def build(cfg: TrainConfig) -> Setup:
    """Every piece of a run from its config; checks names and values, writes nothing."""
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
    train_levels = load_level_set(family, "train", cfg)
    test_levels = load_level_set(family, cfg.env.test_levels, cfg)
    level_env = family.make_vec(cfg.env.num_envs, train_levels, seed=cfg.seed, **options)
    env: VecEnv = level_env
    if cfg.ppo.normalize_reward:
        env = VecNormalize(level_env, norm_obs=False, norm_reward=True, gamma=cfg.ppo.gamma)
    settings = {section: getattr(cfg, section) for section in agents.sections(cfg.agent)}
    model = agents.make(
        cfg.agent, env, ppo=cfg.ppo, network=cfg.network, seed=cfg.seed, device=agents.resolve_device(cfg.device),
        **settings,
    )
    sampler = level_samplers.make(cfg.sampler.name, list(train_levels.levels), **{"seed": cfg.seed, **cfg.sampler.params})
    from heldout.sampler_callback import LevelSamplerCallback

    sampler_callback = LevelSamplerCallback(sampler)
    sampler_callback.attach(env)  # the env's first reset already draws from the sampler
    return Setup(cfg, family, train_levels, test_levels, level_env, env, model, sampler_callback)


# -- during training ------------------------------------------------------------------------------


class RunCallback(BaseCallback):
    """Between PPO updates: periodic evaluation, checkpoints, and the progress bar."""

    def __init__(self, setup: Setup, run_dir: Path, progress: bool, last_eval_step: int = 0) -> None:
        super().__init__()
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
        steps = self.model.num_timesteps
        if steps == self._steps0:
            return  # nothing has changed since the run (re)started
        cfg = self.setup.cfg
        update = steps // self.rollout_size
        if self.bar is not None:
            self.bar.update(steps - self.bar.n)
            sps = (steps - self._steps0) / max(time.time() - self._t0, 1e-9)
            self.bar.set_postfix(sps=f"{sps:.0f}", updates=update)
        if cfg.eval.interval and steps - self.last_eval_step >= cfg.eval.interval:
            self.last_eval_step = steps
            evaluate_and_log(self.setup, self.run_dir, self.logger, cfg.eval.episodes)
        if cfg.checkpoint_interval and update % cfg.checkpoint_interval == 0:
            save_checkpoint(self.setup, self.run_dir, self.last_eval_step)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.update(self.model.num_timesteps - self.bar.n)
            self.bar.close()


def evaluate_both(setup: Setup, episodes: int, seed_offset: int = 0) -> dict[str, Any]:
    cfg = setup.cfg
    runs = {}
    for name, levels in (("train", setup.train_levels), ("test", setup.test_levels)):
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
    return evaluation.summarise(setup.family, runs["train"], runs["test"], cfg.env.options)


def evaluate_and_log(setup: Setup, run_dir: Path, logger, episodes: int) -> dict[str, Any]:
    """A periodic evaluation: to TensorBoard (``eval/...``) and to ``evaluations.jsonl``."""
    summary = evaluate_both(setup, episodes)
    steps = setup.model.num_timesteps
    for part in ("train", "test", "gap"):
        logger.record(f"eval/{part}", summary[part]["mean"])
        for unit in ("return", "normalised"):
            if unit in summary[part]:
                logger.record(f"eval/{part}_{unit}", summary[part][unit]["mean"])
    report.append_jsonl(run_dir / EVALUATIONS, {"steps": steps, **summary})
    return summary


def save_checkpoint(setup: Setup, run_dir: Path, last_eval_step: int) -> None:
    extra = {
        "sampler": setup.sampler_callback.state_dict(),
        "last_eval_step": last_eval_step,
        "wall_time": setup.wall_time_before + time.time() - setup.started,
    }
    checkpoint.save(checkpoint.capture(setup.model, setup.level_env, extra), run_dir / CHECKPOINT)


# -- the run -------------------------------------------------------------------------------------


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run that already progressed or to resume one that cannot be.

    A directory holding only this very config (a run stopped before its first checkpoint)
    may be started again. Writes nothing.
    """
    saved = run_dir / CONFIG_FILE
    progressed = (run_dir / CHECKPOINT).exists() or (run_dir / "report.json").exists()
    if resume:
        if not saved.is_file():
            raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the path")
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
    """Create the run directory with its config, or, on resume, drop the evaluation records
    written after the checkpoint (they will be written again)."""
    evaluations = run_dir / EVALUATIONS
    if resume_step is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(cfg, run_dir / CONFIG_FILE)
        evaluations.unlink(missing_ok=True)
    elif evaluations.exists():
        kept = [line for line in evaluations.read_text().splitlines() if json.loads(line)["steps"] <= resume_step]
        report.write_text(evaluations, "".join(line + "\n" for line in kept))


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) training; returns the report that was written to ``run_dir``."""
    run_dir = Path(run_dir)
    check_run_dir(cfg, run_dir, resume)
    state = checkpoint.load(run_dir / CHECKPOINT) if resume else None
    setup = build(cfg)
    open_run_dir(run_dir, cfg, None if state is None else state["num_timesteps"])
    setup.model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    setup.started = time.time()
    if state is None:
        untrained = evaluate_both(setup, cfg.eval.episodes)
        report.write_json(run_dir / "untrained.json", untrained)
        last_eval = 0
    else:
        untrained = report.read_json(run_dir / "untrained.json")
        setup.sampler_callback.load_state_dict(state["sampler"])
        checkpoint.restore(setup.model, setup.level_env, state)
        last_eval = state["last_eval_step"]
        setup.wall_time_before = state["wall_time"]
    run_cb = RunCallback(setup, run_dir, progress, last_eval_step=last_eval)
    callbacks = [setup.sampler_callback, run_cb]
    remaining = cfg.steps - setup.model.num_timesteps
    if remaining > 0:
        setup.model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=state is None)
    save_checkpoint(setup, run_dir, run_cb.last_eval_step)
    final = evaluate_both(setup, cfg.eval.final_episodes, seed_offset=1)
    for part in ("train", "test", "gap"):
        setup.model.logger.record(f"final/{part}", final[part]["mean"])
    setup.model.logger.dump(setup.model.num_timesteps)
    result = report.build(
        cfg,
        family=setup.family,
        final=final,
        untrained=untrained,
        steps=setup.model.num_timesteps,
        wall_time=setup.wall_time_before + time.time() - setup.started,
        level_sets={"train": setup.train_levels, "test": setup.test_levels},
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
    defaults = config.preset("maze")
    short = {v: k for k, v in SHORT_FLAGS.items()}
    group = parser.add_argument_group("settings (defaults of the maze preset shown)")
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
        saved = run_dir / CONFIG_FILE
        if not saved.is_file():
            raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the --resume path")
        cfg = config.from_dict(config.load_yaml(saved))
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
    print(f"heldout train: {cfg.env.name}, {cfg.agent}, sampler {cfg.sampler.name}, {cfg.steps:,} steps -> {run_dir}")
    result = train(cfg, run_dir, resume=resume, progress=progress)
    print(report.summary_lines(result))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an agent and report the generalisation gap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    from heldout.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
