"""Env steps/s of heldout's vectorised maze against Farama minigrid.

All variants take uniformly random actions (drawn beforehand) and are stepped from Python
once per step, as a trainer steps them:

* ``heldout N=32`` and ``heldout N=1024``: ``heldout.envs.make_vec("maze", N, "train")``,
  13x13 levels of the training set, 5x5 egocentric views, time limit 250, a new training
  level in every slot whose episode ends.
* ``minigrid N=32``: ``gymnasium.vector.SyncVectorEnv`` of 32 minigrid envs built by
  ``heldout.envs.maze.to_minigrid`` from the first 32 training levels: the same 15x15 grids
  (13x13 interior plus the outer wall), ``agent_view_size=5``, ``max_steps=250``, image
  observations (``ImgObsWrapper``). ``see_through_walls=True`` (minigrid's faster setting,
  matching heldout's view); ``--occlusion`` uses minigrid's default visibility instead.

Rounds alternate the variants so that all see the same machine load; the table shows the
median over rounds and the ratios against minigrid and the goals (>= 30x minigrid at N=32,
>= 500k steps/s at N=1024).

    python bench/bench_maze.py            # the measurement (run it on a quiet machine)
    python bench/bench_maze.py --quick    # a few steps, to check that the script works
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

GOAL_RATIO_32 = 30.0
GOAL_STEPS_1024 = 500_000.0


def heldout_variant(num_envs: int, steps: int, seed: int) -> Callable[[], float]:
    from heldout import envs

    env = envs.make_vec("maze", num_envs, "train", seed=seed)
    actions = np.random.default_rng(seed).integers(0, 3, size=(steps, num_envs))
    env.reset()
    for a in actions[: min(20, steps)]:  # warm-up: fills the level cache, as in a training run
        env.step(a)

    return stepper(env, actions)


def stepper(env, actions: np.ndarray) -> Callable[[], float]:
    """A timed run: one Python ``step()`` per row of ``actions``; returns env steps/s."""

    def run() -> float:
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        return actions.size / (time.perf_counter() - start)

    return run


def minigrid_variant(num_envs: int, steps: int, seed: int, occlusion: bool) -> Callable[[], float]:
    import gymnasium as gym
    from minigrid.wrappers import ImgObsWrapper

    from heldout import envs
    from heldout.envs.maze import to_minigrid

    levels = envs.get("maze").level_set("train").levels
    makers = [
        (lambda lv=levels[i % len(levels)]: ImgObsWrapper(to_minigrid(lv, see_through_walls=not occlusion)))
        for i in range(num_envs)
    ]
    env = gym.vector.SyncVectorEnv(makers)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 3, size=(steps, num_envs))
    for a in actions[: min(20, steps)]:
        env.step(a)

    return stepper(env, actions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps per variant, to check the script works")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="vector steps per round (default: 2000; minigrid 200)")
    parser.add_argument("--occlusion", action="store_true", help="minigrid with its default see_through_walls=False")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    steps = args.steps or (20 if args.quick else 2000)
    mg_steps = max(5, steps // 10)  # minigrid is ~100x slower: keep its rounds about as long

    variants = {
        "heldout N=32": heldout_variant(32, steps, args.seed),
        "heldout N=1024": heldout_variant(1024, max(5, steps // 4), args.seed),
        "minigrid N=32": minigrid_variant(32, mg_steps, args.seed, args.occlusion),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            results[name].append(run())
    median = {name: statistics.median(values) for name, values in results.items()}

    print(f"random actions, one Python step() per vector step, median of {rounds} round(s)")
    print(f"minigrid: 15x15 grids, 5x5 view, see_through_walls={not args.occlusion}")
    print(f"{'variant':<16} {'env steps/s':>12}")
    for name, value in median.items():
        print(f"{name:<16} {value:>12,.0f}")
    mg = median["minigrid N=32"]
    r32 = median["heldout N=32"] / mg
    r1024 = median["heldout N=1024"] / mg
    print(f"heldout N=32 / minigrid:   {r32:6.1f}x  (goal >= {GOAL_RATIO_32:.0f}x: {'met' if r32 >= GOAL_RATIO_32 else 'NOT met'})")
    print(f"heldout N=1024 / minigrid: {r1024:6.1f}x")
    met = median["heldout N=1024"] >= GOAL_STEPS_1024
    print(f"heldout N=1024: {median['heldout N=1024']:,.0f} steps/s  (goal >= 500,000: {'met' if met else 'NOT met'})")
    if args.quick:
        print("(--quick: too few steps for meaningful numbers)")


if __name__ == "__main__":
    main()
