"""``heldout evaluate RUN_DIR --levels test``: evaluate a saved agent on any level set."""

from __future__ import annotations

import argparse
from pathlib import Path

from heldout import userfiles
from heldout.evaluation import episodes as evaluation, report
from heldout.cli import UsageError


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained agent on a level set", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `heldout train`")
    p.add_argument(
        "--levels", default="test", help="a level set name (train, test, ...) or a level file (default: test)"
    )
    p.add_argument("--episodes", type=int, default=None, help="episodes (default: the run's eval.final_episodes)")
    p.add_argument("--deterministic", action="store_true", help="greedy actions instead of sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation (level order, actions)")
    p.add_argument("--output", default=None, help="JSON file to write (default: RUN_DIR/eval-LEVELS.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heldout.trainer.build import build, load_level_set
    from heldout.trainer.checkpoint import load_checkpoint
    from heldout.trainer.rundir import CHECKPOINT, read_run_config

    run_dir = Path(args.run_dir)
    cfg = read_run_config(run_dir, "RUN_DIR")
    episodes = args.episodes if args.episodes is not None else cfg.eval.final_episodes
    if episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {episodes}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be a whole number from 0 to 2^32 - 1, got {args.seed}")
    safe = Path(args.levels).stem if Path(args.levels).exists() else args.levels
    output = Path(args.output) if args.output else run_dir / f"eval-{safe}.json"
    try:
        userfiles.check_file_path(output, "--output")
    except ValueError as err:
        raise UsageError(str(err)) from None
    _check_not_the_runs_own(output, run_dir)
    if (run_dir / CHECKPOINT).is_dir():
        raise UsageError(f"{run_dir / CHECKPOINT} is a directory, not a checkpoint file; put the run's checkpoint back")
    if not (run_dir / CHECKPOINT).exists():
        raise UsageError(
            f"{run_dir} has no checkpoint: the run stopped before writing one, so there is no trained agent to evaluate"
        )
    from heldout.trainer.run import agent_needs

    if "dataset" in agent_needs(cfg):  # an offline agent: its own run and checkpoint
        from heldout.trainer import offline

        run, state = offline.trained(cfg, run_dir)
    else:
        run = build(cfg, run_dir)
        state = load_checkpoint(run)
        try:
            run.model.policy.load_state_dict(state["policy"])
        except (KeyError, RuntimeError) as err:
            detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise UsageError(f"the checkpoint's network does not fit the run's config ({detail})") from None
    levels = load_level_set(run.family, args.levels, cfg)
    episodes_run = evaluation.run_episodes(
        run.model,
        run.family,
        levels,
        episodes,
        num_envs=cfg.eval.num_envs,
        deterministic=args.deterministic or cfg.eval.deterministic,
        seed=args.seed,
        env_options=cfg.env.options,
    )
    scores = evaluation.scores(run.family, episodes_run, cfg.env.options)
    result = {
        "run_dir": str(run_dir),
        "levels": report.describe_level_set(levels),
        "steps": state["num_timesteps"],
        "episodes": episodes,
        "deterministic": bool(args.deterministic or cfg.eval.deterministic),
        "score_unit": run.family.score_unit,
        **{
            unit: evaluation.interval(values, episodes_run.levels, evaluation.is_proportion(run.family, unit))
            for unit, values in scores.items()
        },
    }
    rows = [("score (" + run.family.score_unit + ")", result["score"])]
    rows += [(unit, result[unit]) for unit in scores if unit != "score"]
    print(f"{run_dir} on {levels.name} ({episodes} episodes, {result['steps']:,} training steps)")
    print(f"{'':22s} {'mean':>9s} {'95% CI':>21s}")
    for name, stats in rows:
        print(f"{name:22s} {stats['mean']:9.3f} [{stats['ci_low']:8.3f}, {stats['ci_high']:8.3f}]")
    report.write_json(output, result)
    print(f"wrote {output}")
    run.env.close()
    return 0


RUN_FILES = ("config.yaml", "report.json", "report.md", "evaluations.jsonl", "probe.jsonl", "untrained.json", ".heldout.lock")
RUN_FOLDERS = ("checkpoints", "tb", "dred")


def _check_not_the_runs_own(output: Path, run_dir: Path) -> None:
    """Refuse an ``--output`` that would replace a file the run itself wrote (its report, config,
    records) or land in one of its folders: ``compare`` and ``--resume`` read those."""
    try:
        inside = output.resolve().relative_to(run_dir.resolve())
    except ValueError:
        return
    if str(inside) in RUN_FILES or (inside.parts and inside.parts[0] in RUN_FOLDERS):
        raise UsageError(
            f"--output {output} would replace the run's own {inside}; write elsewhere, e.g. {run_dir / 'eval-NAME.json'}"
        )
