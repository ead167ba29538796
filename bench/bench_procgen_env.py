"""Steps/s of raw ``ProcgenGym3Env`` against heldout's level-controlled ``ProcgenVecEnv``.

Both run ``--num-envs`` slots (64) with the same uniformly random actions. The heldout env
writes a level drawn uniformly from the 200 training seeds into every slot that finishes an
episode (procgen's state API), so its cost over raw procgen is the per-episode level write and
the Python bookkeeping (infos, episode statistics). Rounds alternate raw and heldout so both
see the same machine load (which one goes first alternates too); the table shows the median over rounds and the ratio (goal: at
least 0.9).

    python bench/bench_procgen_env.py            # the measurement (run it on a quiet machine)
    python bench/bench_procgen_env.py --quick    # a few steps, to check the script works
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from heldout.envs.procgen import backend, train_set
from heldout.envs.procgen.vec import ProcgenVecEnv

WARM_UP = 50  # vector steps before the clock starts


def time_raw(game: str, actions: np.ndarray) -> float:
    """Env steps/s of a raw ProcgenGym3Env on the 200 training levels."""
    env = backend.make_raw_env(game, actions.shape[1], "easy", start_level=0, num_levels=200, rand_seed=0)
    for a in actions[:WARM_UP]:  # first renders load each slot's assets
        env.act(a)
        env.observe()
    start = time.perf_counter()
    for a in actions:
        env.act(a)
        env.observe()
    elapsed = time.perf_counter() - start
    env.close()
    return actions.size / elapsed


def time_heldout(game: str, actions: np.ndarray, num_train_levels: int) -> tuple[float, float]:
    """Env steps/s of ProcgenVecEnv writing a uniformly drawn training level at every episode
    end, and the episode ends per vector step."""
    env = ProcgenVecEnv(game, actions.shape[1], train_set(num_train_levels), seed=0)
    states = backend.start_states(game, "easy")
    for seed in range(num_train_levels):  # the cache is warm in a training run
        states.get(seed)
    env.reset()
    for a in actions[:WARM_UP]:
        env.step(a)
    ends = 0
    start = time.perf_counter()
    for a in actions:
        _, _, dones, _ = env.step(a)
        ends += int(dones.sum())
    elapsed = time.perf_counter() - start
    env.close()
    return actions.size / elapsed, ends / len(actions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["coinrun", "bigfish"])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3000, help="vector steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/heldout rounds per game")
    parser.add_argument("--num-train-levels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 steps, 1 round: only checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 50, 1

    rows = []
    for game in args.games:
        rng = np.random.default_rng(args.seed)
        raw, ours, ends = [], [], []
        for round_ in range(args.rounds):
            actions = rng.integers(0, 15, size=(args.steps, args.num_envs), dtype=np.int32)
            if round_ % 2:
                sps, per_step = time_heldout(game, actions, args.num_train_levels)
                raw.append(time_raw(game, actions))
            else:
                raw.append(time_raw(game, actions))
                sps, per_step = time_heldout(game, actions, args.num_train_levels)
            ours.append(sps)
            ends.append(per_step)
        r, o = statistics.median(raw), statistics.median(ours)
        rows.append((game, r, o, o / r, statistics.mean(ends)))

    print(f"{args.num_envs} envs, {args.steps} steps x {args.rounds} rounds, random actions (median steps/s)")
    header = ("game", "raw procgen", "heldout vec", "ratio", "ends/step")
    print(f"{header[0]:<10} {header[1]:>12} {header[2]:>12} {header[3]:>6} {header[4]:>9}")
    for game, r, o, ratio, e in rows:
        print(f"{game:<10} {r:>12,.0f} {o:>12,.0f} {ratio:>6.3f} {e:>9.2f}")


if __name__ == "__main__":
    main()
