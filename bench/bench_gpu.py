"""Procgen PPO on a GPU: env-steps/s at the preset's shape, and the update time of PPO / DrAC / UCB-DrAC.

For the cost estimate of experiments/procgen_plr (its README). On a machine without CUDA it says
so and exits 0: the CPU figures are bench_train.py's.

* ``env steps/s``: ``model.learn`` over whole rollout + update cycles (after one warm-up cycle),
  the procgen preset's shape (64 envs x 256 steps, 3 epochs, 8 minibatches, IMPALA CNN 16/32/32
  in channels_last, the published PPO) on heldout's Procgen env (uniform levels), per agent.
* ``update s``: one ``model.train()`` on a collected rollout (24 minibatch steps), per agent,
  CUDA synchronised before and after.

    python bench/bench_gpu.py              # the measurement
    python bench/bench_gpu.py --quick      # 8 envs x 32 steps: checks the script runs on a GPU
"""

from __future__ import annotations

import argparse
import time

import heldout  # noqa: F401  (first: quiets the legacy gym notice)
import torch as th

AGENTS = ("ppo", "drac", "ucb_drac")


def build(agent: str, game: str, n_envs: int, n_steps: int):
    from heldout import agents, envs
    from heldout.agents import AugmentConfig, NetworkConfig, PPOConfig

    ppo = PPOConfig(n_steps=n_steps)
    venv = envs.make_vec(f"procgen/{game}", n_envs, "train", distribution_mode="easy")
    settings = {"augment": AugmentConfig("crop")} if agent != "ppo" else {}
    return agents.make(agent, venv, ppo=ppo, network=NetworkConfig(), seed=0, device="cuda", **settings)


def cuda_time(fn) -> float:
    th.cuda.synchronize()
    start = time.perf_counter()
    fn()
    th.cuda.synchronize()
    return time.perf_counter() - start


def measure(agent: str, args: argparse.Namespace) -> tuple[float, float]:
    model = build(agent, args.game, args.n_envs, args.n_steps)
    cycle = args.n_envs * args.n_steps
    model.learn(cycle)  # warm-up: CUDA kernels, procgen assets
    seconds = cuda_time(lambda: model.learn(args.cycles * cycle, reset_num_timesteps=False))
    sps = args.cycles * cycle / seconds
    updates = [cuda_time(model.train) for _ in range(args.updates)]  # on the last rollout, as the next update would
    return sps, min(updates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="coinrun")
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--cycles", type=int, default=3, help="timed rollout + update cycles per agent")
    parser.add_argument("--updates", type=int, default=3, help="timed updates per agent (the fastest is shown)")
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma separated, of " + ", ".join(AGENTS))
    parser.add_argument("--quick", action="store_true", help="8 envs x 32 steps, 1 cycle: checks the script runs")
    args = parser.parse_args(argv)
    if not th.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; nothing measured (CPU figures: bench/bench_train.py)")
        return 0
    if args.quick:
        args.n_envs, args.n_steps, args.cycles, args.updates = 8, 32, 1, 1
    print(f"procgen/{args.game} on {th.cuda.get_device_name()}: {args.n_envs} envs x {args.n_steps} steps, "
          f"3 epochs, 8 minibatches, {args.cycles} timed cycle(s)")  # fmt: skip
    print(f"{'agent':<10}{'env steps/s':>12}{'update s':>10}{'25M steps h':>13}")
    for agent in args.agents.split(","):
        sps, update = measure(agent.strip(), args)
        print(f"{agent:<10}{sps:>12.0f}{update:>10.2f}{25e6 / sps / 3600:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
