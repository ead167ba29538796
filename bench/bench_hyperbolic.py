"""Update time of the Euclidean and the hyperbolic (S-RYM) heads on the same rollout, side by side.

One rollout is collected once (Procgen by default: the preset's 64 envs x 256 steps, IMPALA CNN
16/32/32). Each row's agent, built with the same seed, gets its own copy of that rollout buffer
and does one full PPO update on it (3 epochs x 8 minibatches), the minibatch order seeded alike;
the table gives the median wall time over ``--repeats`` updates and the ratio to the Euclidean
row. Rows: euclidean (features 256, the PPO baseline), hyperbolic with the paper's 32 features
(Cetin et al. 2023's published network), and hyperbolic with 256 features (the same width).

    python bench/bench_hyperbolic.py                       # the measurement (a few minutes on 2 CPU cores)
    python bench/bench_hyperbolic.py --env maze --n-envs 32 --n-steps 128 --epochs 4 --minibatches 4
    python bench/bench_hyperbolic.py --quick               # tiny sizes: checks the script runs
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import heldout  # noqa: F401  (first: quiets the legacy gym notice)
import torch as th
from stable_baselines3.common.logger import configure

from bench_augment import time_update  # bench/ is the script's folder: one update on a copy of the rollout
from heldout import agents, config, envs

ROWS = (("euclidean", 256), ("hyperbolic", 32), ("hyperbolic", 256))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="procgen/coinrun", help="env family whose observations fill the rollout")
    p.add_argument("--n-envs", type=int, default=64, help="parallel envs of the rollout (procgen preset: 64)")
    p.add_argument("--n-steps", type=int, default=256, help="steps per env (procgen preset: 256)")
    p.add_argument("--epochs", type=int, default=3, help="PPO epochs per update (procgen preset: 3)")
    p.add_argument("--minibatches", type=int, default=8, help="minibatches per epoch (procgen preset: 8)")
    p.add_argument("--channels", default="16,32,32", help="IMPALA CNN channels (procgen preset: 16,32,32)")
    p.add_argument("--repeats", type=int, default=1, help="updates timed per row (the median is shown)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (8 envs x 16 steps, channels 4,8,8)")
    args = p.parse_args()
    if args.quick:
        args.n_envs, args.n_steps, args.channels, args.epochs, args.minibatches = 8, 16, "4,8,8", 1, 2
    return args


def build(args: argparse.Namespace, venv, geometry: str, features: int) -> agents.HeldoutPPO:
    cfg = config.preset("procgen" if args.env.startswith("procgen") else "maze")
    ppo = cfg.ppo
    ppo.n_steps, ppo.n_epochs, ppo.n_minibatches = args.n_steps, args.epochs, args.minibatches
    network = cfg.network
    network.impala_channels = tuple(int(c) for c in args.channels.split(","))
    network.geometry, network.features_dim = geometry, features
    model = agents.make("ppo", venv, ppo=ppo, network=network, seed=0, device="cpu")
    model.set_logger(configure(None, []))
    return model


def main() -> None:
    args = parse()
    if args.threads:
        th.set_num_threads(args.threads)
    levels = {"num_train_levels": 200} if args.env.startswith("procgen") else {}
    venv = envs.make_vec(args.env, args.n_envs, "train", **levels)
    source = build(args, venv, "euclidean", 256)
    t0 = time.perf_counter()
    _, callback = source._setup_learn(args.n_envs * args.n_steps, None)
    source.collect_rollouts(source.env, callback, source.rollout_buffer, args.n_steps)
    print(f"rollout: {args.n_envs} envs x {args.n_steps} steps of {args.env} in {time.perf_counter() - t0:.1f} s; "
          f"update: {args.epochs} epochs x {args.minibatches} minibatches; {th.get_num_threads()} torch threads")
    buffer = copy.deepcopy(source.rollout_buffer)
    results = []
    for geometry, features in ROWS:
        model = build(args, venv, geometry, features)
        times = [time_update(model, buffer) for _ in range(args.repeats)]
        results.append((f"{geometry}, features {features}", statistics.median(times)))
    base = results[0][1]
    print("\n| head | update (s) | x euclidean |\n|---|---|---|")
    for label, seconds in results:
        print(f"| {label} | {seconds:.2f} | {seconds / base:.2f} |")
    venv.close()


if __name__ == "__main__":
    main()
