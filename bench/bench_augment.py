"""Update time of PPO, RAD and DrAC on the same Procgen rollout, side by side in one run.

One rollout of real Procgen frames is collected once (the Procgen preset: 64 envs x 256 steps,
IMPALA CNN 16/32/32 -> 256). Each agent, built with the same seed (so the same initial
weights), gets its own copy of that rollout buffer and does one full PPO update on it (3 epochs
x 8 minibatches of 2048 frames), the minibatch order seeded alike; the table gives the median
wall time of the update over ``--repeats`` runs and its ratio to PPO's. The goal of issue 8:
DrAC at most 1.6x PPO's update time on CPU. DrAC adds a forward and a backward pass over an
augmented copy of each minibatch (the published code adds even one more forward pass), so
with the regulariser on the whole minibatch expect about 2x; the ``drac.fraction 0.5`` row
computes it on half of each minibatch. The last column is the augmentation's own cost:
one draw over one minibatch (uint8 frames, as the rollout buffer holds them).

    python bench/bench_augment.py                     # the measurement (about 15-25 minutes on 2 CPU cores)
    python bench/bench_augment.py --augment crop,random_conv --repeats 3
    python bench/bench_augment.py --quick             # tiny sizes: checks the script runs
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import heldout  # noqa: F401  (first: quiets the legacy gym notice)
import numpy as np
import torch as th
from stable_baselines3.common.logger import configure

from heldout import agents, config, envs
from heldout.agents import augmentations


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="coinrun", help="Procgen game whose frames fill the rollout")
    p.add_argument("--n-envs", type=int, default=64, help="parallel envs of the rollout (preset: 64)")
    p.add_argument("--n-steps", type=int, default=256, help="steps per env (preset: 256)")
    p.add_argument("--epochs", type=int, default=3, help="PPO epochs per update (preset: 3)")
    p.add_argument("--minibatches", type=int, default=8, help="minibatches per epoch (preset: 8)")
    p.add_argument("--channels", default="16,32,32", help="IMPALA CNN channels (preset: 16,32,32)")
    p.add_argument("--augment", default="crop", help="comma-separated augmentations for the RAD and DrAC rows")
    p.add_argument("--fractions", default="1,0.5", help="drac.fraction of the DrAC rows (1: as published)")
    p.add_argument("--repeats", type=int, default=1, help="updates timed per agent (the median is shown)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (8 envs x 16 steps, channels 4,8,8)")
    args = p.parse_args()
    if args.quick:
        args.n_envs, args.n_steps, args.channels, args.epochs, args.minibatches = 8, 16, "4,8,8", 1, 2
    for name in args.augment.split(","):
        augmentations.get(name)
    return args


def build(args: argparse.Namespace, agent: str, augment: str, venv, fraction: float = 1.0) -> agents.HeldoutPPO:
    cfg = config.preset("procgen")
    ppo = cfg.ppo
    ppo.n_steps, ppo.n_epochs, ppo.n_minibatches = args.n_steps, args.epochs, args.minibatches
    network = cfg.network
    network.impala_channels = tuple(int(c) for c in args.channels.split(","))
    settings = {"augment": agents.AugmentConfig(augment), "drac": agents.DrACConfig(fraction=fraction), "ucb": agents.UCBConfig()}
    wanted = {k: v for k, v in settings.items() if k in agents.sections(agent)}
    model = agents.make(agent, venv, ppo=ppo, network=network, seed=0, device="cpu", **wanted)
    model.set_logger(configure(None, []))
    return model


def time_update(model: agents.HeldoutPPO, buffer) -> float:
    model.rollout_buffer = copy.deepcopy(buffer)
    np.random.seed(0)  # the same minibatch order for every agent
    start = time.perf_counter()
    model.train()
    return time.perf_counter() - start


def time_augment(name: str, batch: th.Tensor, repeats: int = 3) -> float:
    fn, g = augmentations.get(name), th.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch, g)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = parse()
    if args.threads:
        th.set_num_threads(args.threads)
    names = args.augment.split(",")
    venv = envs.make_vec(f"procgen/{args.game}", args.n_envs, "train", num_train_levels=200)
    source = build(args, "ppo", names[0], venv)
    t0 = time.perf_counter()
    _, callback = source._setup_learn(args.n_envs * args.n_steps, None)
    source.collect_rollouts(source.env, callback, source.rollout_buffer, args.n_steps)
    print(f"rollout: {args.n_envs} envs x {args.n_steps} steps of procgen/{args.game} in {time.perf_counter() - t0:.1f} s; "
          f"update: {args.epochs} epochs x {args.minibatches} minibatches of {args.n_envs * args.n_steps // args.minibatches} "
          f"frames; IMPALA {args.channels}; {th.get_num_threads()} torch threads")
    buffer = copy.deepcopy(source.rollout_buffer)
    frames = th.as_tensor(buffer.observations.reshape(-1, *buffer.obs_shape)[: args.n_envs * args.n_steps // args.minibatches])

    fractions = [float(f) for f in args.fractions.split(",")]
    rows = [("ppo", names[0], 1.0)]
    for name in names:
        rows += [("rad", name, 1.0)] + [("drac", name, f) for f in fractions]
    results: list[tuple[str, float, str]] = []
    for agent, name, fraction in rows:
        model = build(args, agent, name, venv, fraction)
        times = [time_update(model, buffer) for _ in range(args.repeats)]
        label = "ppo" if agent == "ppo" else f"{agent} {name}" + (f" (fraction {fraction:g})" if fraction != 1 else "")
        aug = "-" if agent == "ppo" else f"{time_augment(name, frames) * 1000:.1f}"
        results.append((label, statistics.median(times), aug))
    base = results[0][1]
    print(f"\n| agent | update (s) | x PPO | augment one minibatch (ms) |\n|---|---|---|---|")
    for label, seconds, aug in results:
        print(f"| {label} | {seconds:.2f} | {seconds / base:.2f} | {aug} |")
    venv.close()


if __name__ == "__main__":
    main()
