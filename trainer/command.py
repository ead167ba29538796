"""Train an agent on training levels, evaluate it on held-out levels, report the gap.

``heldout train`` (or ``python train.py``) reads a config (preset, YAML file, CLI flags),
trains with TensorBoard logging and atomic checkpoints, evaluates the untrained and the
trained agent on the training and the held-out levels, and writes ``report.json`` and
``report.md`` into the run directory. ``heldout train --resume RUN_DIR`` continues a run.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from heldout import level_samplers
from heldout.cli import UsageError, command_parser
from heldout.evaluation import report
from heldout.trainer import config, signals
from heldout.trainer.config import TrainConfig
from heldout.trainer.rundir import CHECKPOINT, CONFIG_FILE, RESUMABLE, read_run_config
from heldout.trainer.run import train

SHORT_FLAGS = {
    "--env": "env.name",
    "--train-levels": "env.num_train_levels",
    "--sampler": "sampler.name",
    "--agent": "agent",
    "--augment": "augment.name",
    "--bonus": "bonus.name",
    "--steps": "steps",
    "--seed": "seed",
    "--device": "device",
    "--dataset": "offline.dataset",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(config.PRESETS), help="starting config (default: from --env)")
    parser.add_argument("--config", metavar="YAML", help="a YAML file holding any part of the config")
    parser.add_argument("--run-dir", metavar="DIR", help="where logs, checkpoints and the report go")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_settings(parser, "settings (defaults of the maze preset shown)")


def add_settings(parser: argparse.ArgumentParser, title: str) -> None:
    """A flag for every setting (``--ppo.lr``, and the short ones such as ``--sampler``) and for
    every sampler parameter (``--sampler.temperature``, listed per sampler in the help's epilog);
    unset flags leave no attribute, so only the settings given on the command line are overrides."""
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
    for name in sampler_settings():
        parser.add_argument(f"--{name}", dest=name, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.epilog = sampler_help()


def sampler_settings() -> list[str]:
    """``sampler.KEY`` for each parameter of the registered samplers, once per KEY (samplers share
    ``temperature``, ``replay_prob``...; a value is typed for the chosen sampler when validated)."""
    keys = (key for name in level_samplers.names() for key in level_samplers.specs(name))
    return [config.SAMPLER_PARAM + key for key in dict.fromkeys(keys)]


HELP_WIDTH = 100
NBSP = "\u00a0"
"""Joins "(default: X)" while the help is wrapped, so that it stays on one line."""
SAMPLER_HELP = """\
level sampler parameters: --sampler.KEY VALUE sets KEY of the chosen sampler (as KEY in
--sampler.params would, and wins over it); seed defaults to the run's --seed. "maze: X" after a
default: the default on that env family (the published runs there used X); the run's config.yaml
holds the value used."""


def sampler_help() -> str:
    """The help's list of every sampler's parameters: flag, type, default and what it does. A
    sampler with the same parameters as one listed before it is listed as that one."""
    rows: list[tuple[str, str | None]] = []  # (flag, help), or (heading, None)
    listed: dict[str, dict[str, level_samplers.Parameter]] = {}
    for name in level_samplers.names():
        specs = level_samplers.specs(name)
        same = next((other for other, seen in listed.items() if seen == specs), None)
        rows.append((f"\n  {name}:" + (f" as {same}" if same else ""), None))
        if same:
            continue
        listed[name] = specs
        if trainer := config.trainer_keys(name):
            rows.append((f"    {', '.join(sorted(trainer))}", "the trainer's (DRED's model): `heldout dred --help`"))
        for p in specs.values():
            default = "--seed" if p.name == "seed" else repr(p.default)
            family = "; ".join(f"{name}:{NBSP}{value!r}" for name, value in p.by_family.items())
            if "default" in p.help:  # the help states the default itself
                stated = f" ({family})" if family else ""
            else:
                stated = f" (default:{NBSP}{default}" + (f"; {family})" if family else ")")
            rows.append((f"    --{config.SAMPLER_PARAM}{p.name} {config.type_name(p.kind).upper()}", p.help + stated))
    width = max(len(flag) for flag, text in rows if text is not None) + 2
    wrap = textwrap.TextWrapper(HELP_WIDTH, subsequent_indent=" " * width)
    body = [flag if text is None else wrap.fill(flag.ljust(width) + text).replace(NBSP, " ") for flag, text in rows]
    return "\n".join([SAMPLER_HELP, *body])


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by dotted name (sampler parameters as ``sampler.KEY``)."""
    names = [name for name, _, _ in config.leaf_fields(TrainConfig)] + sampler_settings()
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """The config, run directory and resume flag that the parsed arguments ask for."""
    given = overrides(args)
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise UsageError("give either --resume RUN_DIR or --run-dir, not two different directories")
        cfg = read_run_config(run_dir, "--resume")
        changing = set(given) - RESUMABLE
        if changing or args.config:
            raise UsageError(
                f"--resume keeps the run's config; only {', '.join(sorted(RESUMABLE))} may change "
                f"(got {', '.join(sorted(changing)) or '--config'})"
            )
    else:
        env_name = given.get("env.name")
        yaml_data = config.load_yaml(args.config) if args.config else {}
        if env_name is None:
            env_name = (yaml_data.get("env") or {}).get("name", "maze") if isinstance(yaml_data.get("env"), dict) else "maze"
        cfg = config.preset(args.preset or config.preset_for_env(env_name))
        if yaml_data:
            config.apply_mapping(cfg, yaml_data, args.config)
        run_dir = None
    config.apply_mapping(cfg, given, "command line")
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
    from heldout.trainer.run import agent_needs

    if "dataset" in agent_needs(cfg):
        learns = f"{cfg.offline.updates:,} updates on dataset {cfg.offline.dataset}"
    else:
        learns = f"sampler {cfg.sampler.name}, {cfg.steps:,} steps"
    announce = f"heldout train: {cfg.env.name}, {cfg.agent}, {learns} -> {run_dir}"
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
