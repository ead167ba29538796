"""Env steps/s of heldout's generic vec env against stable-baselines3's ``DummyVecEnv``.

Both step the same 32 envs: ``minigrid/SimpleCrossingS9N1`` single envs (``family.make``:
MiniGrid's env with its 7x7 image observation and seeded levels), uniformly random actions
drawn beforehand, one Python ``step()`` per vector step, as a trainer steps them:

* ``heldout``: ``family.make_vec(32, "train")``, a :class:`~heldout.envs.gym_vec.GymLevelVecEnv`
  (a new training level in every slot whose episode ends, episode statistics, level infos and
  the action record that makes resume exact);
* ``DummyVecEnv``: ``DummyVecEnv`` over 32 ``family.make("train")`` envs (each draws a training
  level at its reset);
* ``DummyVecEnv+Monitor``: the same with each env in sb3's ``Monitor`` (episode statistics, as
  ``make_vec_env`` sets it up for training).

Rounds alternate the variants so that all see the same machine load; the table shows the
median over rounds and the ratio of heldout to each (goal: >= 0.9x DummyVecEnv).

    python bench/bench_gym_vec.py            # the measurement (run it on a quiet machine)
    python bench/bench_gym_vec.py --quick    # a few steps, to check that the script works
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

GOAL_RATIO = 0.9
FAMILY = "minigrid/SimpleCrossingS9N1"


def stepper(env, actions: np.ndarray) -> Callable[[], float]:
    """A timed run: one Python ``step()`` per row of ``actions``; returns env steps/s."""

    def run() -> float:
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        return actions.size / (time.perf_counter() - start)

    return run


def variants(num_envs: int, steps: int, seed: int) -> dict[str, Callable[[], float]]:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from heldout import envs

    family = envs.get(FAMILY)
    train = family.level_set("train")
    actions = np.random.default_rng(seed).integers(0, 7, size=(steps, num_envs))
    built = {
        "heldout": family.make_vec(num_envs, train, seed=seed),
        "DummyVecEnv": DummyVecEnv([lambda: family.make(train)] * num_envs),
        "DummyVecEnv+Monitor": DummyVecEnv([lambda: Monitor(family.make(train))] * num_envs),
    }
    for vec in built.values():
        vec.seed(seed)
        vec.reset()
        for a in actions[: min(20, steps)]:  # warm-up
            vec.step(a)
    return {name: stepper(vec, actions) for name, vec in built.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps per variant, to check the script works")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per variant (default 7)")
    parser.add_argument("--steps", type=int, default=None, help="vector steps per round (default 300)")
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    steps = args.steps or (10 if args.quick else 300)

    runs = variants(args.num_envs, steps, args.seed)
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    median = {name: statistics.median(values) for name, values in results.items()}

    print(f"{FAMILY}, {args.num_envs} envs, random actions, {steps} vector steps per round, median of {rounds} round(s)")
    print(f"{'variant':<22} {'env steps/s':>12}")
    for name, value in median.items():
        print(f"{name:<22} {value:>12,.0f}")
    for other in ("DummyVecEnv", "DummyVecEnv+Monitor"):
        ratio = median["heldout"] / median[other]
        verdict = f"  (goal >= {GOAL_RATIO}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'})" if other == "DummyVecEnv" else ""
        print(f"heldout / {other + ':':<21} {ratio:5.2f}x{verdict}")
    if args.quick:
        print("(--quick: too few steps for meaningful numbers)")


if __name__ == "__main__":
    main()
