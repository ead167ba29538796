"""``heldout collect RUN_DIR --levels train --episodes N --out DIR``: a dataset from a trained agent.

Plays a run's agent (its latest checkpoint, or each ``--checkpoint`` in turn for a mixed dataset:
an expert beside a shorter run's suboptimal agent) on the run's training levels and writes the
episodes as a Minari dataset (:mod:`heldout.offline.dataset`) with each episode's level, the
policies and the run's config in its metadata. Actions are sampled (``--deterministic``: greedy),
with probability ``--epsilon`` replaced by a uniformly random one. Levels outside the run's
training set are refused unless ``--allow-held-out`` is given, so that a dataset never holds
held-out levels by accident. On mazes ``--policy shortest-path`` plays a perfect scripted policy
instead of the agent.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heldout.cli import UsageError, command_parser
from heldout.envs import EnvFamily, LevelSet, LevelVecEnv
from heldout.evaluation.episodes import plan_levels
from heldout.offline.dataset import Episode, check_new_dir, write

Actor = Callable[[np.ndarray, LevelVecEnv, np.ndarray], np.ndarray]
"""``actor(observations, vec_env, episode_starts) -> actions`` for every slot."""

POLICIES = ("agent", "shortest-path")


def model_actor(model: Any, *, deterministic: bool, epsilon: float, rng: np.random.Generator) -> Actor:
    """The agent's actions (a recurrent agent's memory reset at episode starts); each slot's action
    is replaced by a uniformly random one with probability ``epsilon``."""
    memory: list[Any] = [None]

    def act(obs: np.ndarray, vec: LevelVecEnv, starts: np.ndarray) -> np.ndarray:
        actions, memory[0] = model.predict(obs, state=memory[0], episode_start=starts, deterministic=deterministic)
        return with_epsilon(np.asarray(actions), epsilon, vec.action_space.n, rng)

    return act


def shortest_path_actor(epsilon: float, rng: np.random.Generator) -> Actor:
    """A perfect maze policy: the first action of a fewest-actions path from each slot's state."""
    from heldout.envs.maze.paths import first_optimal_action

    def act(obs: np.ndarray, vec: LevelVecEnv, starts: np.ndarray) -> np.ndarray:
        actions = np.array([
            first_optimal_action(level, position, direction)
            for level, (position, direction, _) in zip(vec.levels, vec.agent_states())
        ])  # fmt: skip
        return with_epsilon(actions, epsilon, vec.action_space.n, rng)

    return act


def with_epsilon(actions: np.ndarray, epsilon: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``actions`` with each replaced, with probability ``epsilon``, by one drawn uniformly from ``n``."""
    if epsilon <= 0:
        return actions
    noisy = rng.random(len(actions)) < epsilon
    return np.where(noisy, rng.integers(0, n, size=len(actions)), actions)


def collect_episodes(
    family: EnvFamily,
    levels: LevelSet,
    episodes: int,
    actor: Actor,
    *,
    num_envs: int = 16,
    seed: int = 0,
    env_options: dict | None = None,
    policy: int = 0,
) -> list[Episode]:
    """Play ``episodes`` planned episodes of ``levels`` (as evaluation plans them) with ``actor``,
    recording every observation, action and reward; under torch RNGs forked and seeded by ``seed``."""
    plan = plan_levels(levels, episodes, seed)
    queue = deque(enumerate(plan))
    num_envs = max(1, min(num_envs, episodes))
    vec = family.make_vec(num_envs, levels, seed=seed, **(env_options or {}))
    current: list[int | None] = [None] * num_envs

    def next_level(slot: int):
        index, level = queue.popleft() if queue else (None, plan[0])  # filler: played, not kept
        current[slot] = index
        return level

    vec.set_level_source(next_level)
    done: list[Episode | None] = [None] * episodes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        obs = vec.reset()
        trace: list[dict[str, list]] = [{"obs": [o], "actions": [], "rewards": []} for o in obs]
        starts = np.ones(num_envs, dtype=bool)
        while any(ep is None for ep in done):
            playing = list(current)
            actions = actor(obs, vec, starts)
            obs, rewards, dones, infos = vec.step(actions)
            starts = dones
            for slot in range(num_envs):
                t = trace[slot]
                t["actions"].append(actions[slot])
                t["rewards"].append(rewards[slot])
                if not dones[slot]:
                    t["obs"].append(obs[slot])
                    continue
                if playing[slot] is not None:
                    info = infos[slot]
                    truncated = bool(info.get("TimeLimit.truncated", False))
                    done[playing[slot]] = Episode(
                        level=info["episode"]["level"], observations=np.stack([*t["obs"], info["terminal_observation"]]),
                        actions=np.asarray(t["actions"]), rewards=np.asarray(t["rewards"], dtype=np.float32),
                        terminated=not truncated, truncated=truncated, policy=policy,
                    )  # fmt: skip
                trace[slot] = {"obs": [obs[slot]], "actions": [], "rewards": []}
    vec.close()
    return [ep for ep in done if ep is not None]


def first_transitions(episodes: list[Episode], n: int) -> list[Episode]:
    """The episodes, in order, up to exactly ``n`` transitions: the last one kept is cut short
    (marked truncated, not terminated) where it runs past ``n``."""
    kept, left = [], n
    for ep in episodes:
        if left <= 0:
            break
        if len(ep.actions) > left:
            ep = dataclasses.replace(
                ep, observations=ep.observations[: left + 1], actions=ep.actions[:left], rewards=ep.rewards[:left],
                terminated=False, truncated=True,
            )  # fmt: skip
        kept.append(ep)
        left -= len(ep.actions)
    return kept


def keep_transitions(played: list[Episode], n: int, episodes: int) -> list[Episode]:
    """:func:`first_transitions`, refusing a share that played fewer than ``n``."""
    total = sum(len(ep.actions) for ep in played)
    if total < n:
        raise UsageError(
            f"--episodes {episodes} gave only {total:,} transitions where {n:,} were asked for (--transitions); "
            "raise --episodes"
        )
    return first_transitions(played, n)


def check_levels(levels: LevelSet, train: LevelSet, allow_held_out: bool) -> None:
    """Refuse levels outside the run's training set (by content) unless ``allow_held_out``."""
    if allow_held_out or levels is train:
        return
    if not train.finite:
        raise UsageError(
            f"the run trains on the unbounded set {train.name!r}, so --levels {levels.name} cannot be checked "
            "against it; collect with --levels train, or pass --allow-held-out"
        )
    known = set(train.levels)
    if not levels.finite:
        raise UsageError(f"--levels {levels.name} is unbounded and not the run's training set; pass --allow-held-out to collect on it")
    outside = sum(level not in known for level in levels.levels)
    if outside:
        raise UsageError(
            f"--levels {levels.name}: {outside} of {len(levels)} levels are not among the run's {len(train)} training "
            "levels, so the dataset would hold held-out levels; collect with --levels train, or pass --allow-held-out"
        )


def add_command(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "collect", "write a dataset of a trained agent's episodes (Minari)", __doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `heldout train`")
    p.add_argument("--out", required=True, metavar="DIR", help="the new dataset directory")
    p.add_argument("--levels", default="train", help="level set name or level file (default: train, the run's own)")
    p.add_argument("--episodes", type=int, required=True, help="episodes to collect (split evenly between checkpoints)")
    p.add_argument("--transitions", type=int, default=0, metavar="N",
                   help="keep exactly N transitions (split evenly between checkpoints): the first episodes of each "
                   "share, the last cut short; --episodes must yield at least that many (default 0: every episode)")
    p.add_argument("--checkpoint", action="append", metavar="PATH", default=None,
                   help="a checkpoint file or run directory of the same env and network (repeat for a mixed "
                        "dataset; default: RUN_DIR's latest checkpoint)")  # fmt: skip
    p.add_argument("--policy", choices=POLICIES, default="agent",
                   help="agent (default) or shortest-path: a perfect scripted maze policy")  # fmt: skip
    p.add_argument("--deterministic", action="store_true", help="greedy actions instead of sampling")
    p.add_argument("--epsilon", type=float, default=0.0, help="probability of a uniformly random action (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the level order and the actions")
    p.add_argument("--allow-held-out", action="store_true", help="collect on levels outside the run's training set")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heldout.trainer.build import build, load_level_set
    from heldout.trainer.rundir import read_run_config

    run_dir = Path(args.run_dir)
    cfg = read_run_config(run_dir, "RUN_DIR")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {args.episodes}")
    if args.transitions < 0:
        raise UsageError(f"--transitions must be 0 (every episode) or a positive count, got {args.transitions}")
    if not 0 <= args.epsilon <= 1:
        raise UsageError(f"--epsilon must be a probability from 0 to 1, got {args.epsilon}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be a whole number from 0 to 2^32 - 1, got {args.seed}")
    try:
        out = check_new_dir(args.out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.policy == "shortest-path" and args.checkpoint:
        raise UsageError("--policy shortest-path plays no checkpoint; drop --checkpoint")
    sources = [] if args.policy == "shortest-path" else [Path(c) for c in args.checkpoint or [run_dir]]
    states = [_checkpoint(source, cfg) for source in sources]  # every one checked before any episode is played
    run = build(cfg, run_dir)
    levels = load_level_set(run.family, args.levels, cfg)
    check_levels(levels, run.train_levels, args.allow_held_out)
    if args.policy == "shortest-path" and not hasattr(run.level_env, "agent_states"):
        raise UsageError(f"--policy shortest-path plays mazes only, and {run.family.name} is not one; use --policy agent")
    rng = np.random.default_rng(args.seed)
    episodes: list[Episode] = []
    policies: list[dict[str, Any]] = []
    shares = np.array_split(np.arange(args.episodes), max(1, len(sources)))
    wanted = [len(part) for part in np.array_split(np.arange(args.transitions), len(shares))]
    for i, share in enumerate(shares):
        if args.policy == "shortest-path":
            actor, described = shortest_path_actor(args.epsilon, rng), {"policy": "shortest-path"}
        else:
            path, state = states[i]
            run.model.policy.load_state_dict(state["policy"])
            actor = model_actor(run.model, deterministic=args.deterministic, epsilon=args.epsilon, rng=rng)
            described = {"policy": cfg.agent, "checkpoint": str(path), "steps": int(state["num_timesteps"])}
        described |= {"deterministic": bool(args.deterministic), "epsilon": float(args.epsilon), "episodes": len(share)}
        policies.append(described)
        if len(share):
            played = collect_episodes(run.family, levels, len(share), actor, num_envs=cfg.eval.num_envs,
                                      seed=args.seed + i, env_options=cfg.env.options, policy=i)  # fmt: skip
            kept = keep_transitions(played, wanted[i], args.episodes) if args.transitions else played
            described["episodes"] = len(kept)  # what the dataset holds of this policy (--transitions keeps fewer)
            episodes += kept
    info = {
        "family": run.family.name,
        "env_options": dict(cfg.env.options),
        "level_set": levels.name,
        "run_dir": str(run_dir),
        "policy": describe_policies(policies),
        "policies": policies,
        "seed": int(args.seed),
        "config": _config(cfg),
    }
    env = run.level_env
    write(out, episodes, level_space=env.level_space, observation_space=env.observation_space,
          action_space=env.action_space, info=info)  # fmt: skip
    run.env.close()
    steps = sum(len(ep.actions) for ep in episodes)
    solved = run.family.solved(np.array([float(ep.rewards.sum()) for ep in episodes]))
    rate = f", solve rate {solved.mean():.3f}" if solved is not None else ""
    print(f"wrote {out}: {len(episodes)} episodes, {steps:,} transitions on {len(set(ep.level for ep in episodes))} "
          f"levels of {levels.name} ({info['policy']}{rate})")  # fmt: skip
    return 0


def describe_policies(policies: list[dict[str, Any]]) -> str:
    """One line: which policies played, how (e.g. ``ppo at 2,000,000 steps, sampled``)."""
    parts = []
    for p in policies:
        who = p["policy"] + (f" at {p['steps']:,} steps" if "steps" in p else "")
        how = "" if "steps" not in p else ", greedy" if p["deterministic"] else ", sampled"
        parts.append(who + how + (f", epsilon {p['epsilon']:g}" if p["epsilon"] else ""))
    return ("mixed: " if len(parts) > 1 else "") + "; ".join(parts)


def _config(cfg) -> dict[str, Any]:
    from heldout.trainer import config

    return config.to_dict(cfg)


def _checkpoint(source: Path, cfg) -> tuple[Path, dict[str, Any]]:
    """A checkpoint file (or a run directory's latest) of ``cfg``'s env and network, read safely."""
    from heldout.envs import get
    from heldout.trainer import checkpoint
    from heldout.trainer.rundir import CHECKPOINT

    path = source / CHECKPOINT if source.is_dir() else source
    if not path.is_file():
        raise UsageError(f"{source} holds no checkpoint ({path} is missing); give a checkpoint file or a trained run's directory")
    space = get(cfg.env.name).level_space(**cfg.env.options)
    try:
        state = checkpoint.load(path, space)
    except ValueError as err:
        raise UsageError(str(err)) from None
    saved = state.get("config") or {}
    mine = _config(cfg)
    same = {"env": ("name", "options", "train_set", "num_train_levels", "level_seed"), "network": None, "agent": None}
    for section, keys in same.items():
        a, b = saved.get(section), mine[section]
        if keys is not None and isinstance(a, dict):
            a, b = {k: a.get(k) for k in keys}, {k: b[k] for k in keys}
        if a != b:
            raise UsageError(
                f"checkpoint {path} was trained with other {section} settings than the run in RUN_DIR; "
                "mix only checkpoints of runs with the same env, levels, agent and network"
            )
    return path, state
