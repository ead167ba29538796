"""Training env-steps/s of the recurrent agent (``ppo_lstm``) beside plain ``ppo`` on the maze.

The shape of the reference JAX implementation of the UED maze agent: 32 envs x 256 steps per
rollout, 5 epochs, one minibatch, an LSTM of 256 units (about 3.1k env-steps/s on a 2-core CPU
after a ~55 s compile). Both variants are what ``heldout train`` builds (``heldout.trainer.build``:
the maze family's training levels, the level-sampler glue, reward normalisation), timed over
the trainer's loop (``heldout.trainer.loop.train_loop``) from the first step (no warm-up:
nothing here compiles).

    python bench/bench_lstm.py             # the measurement: 3 rollout+update cycles per variant
    python bench/bench_lstm.py --quick     # tiny sizes: checks the script runs
"""

from __future__ import annotations

import argparse
import time

import heldout  # noqa: F401  (first: quiets the legacy gym notice)


def config_for(agent: str, args: argparse.Namespace):
    from heldout.trainer import config

    cfg = config.preset("maze")
    cfg.agent = agent
    cfg.env.num_envs = args.n_envs
    cfg.ppo.n_steps = args.n_steps
    cfg.ppo.n_epochs = args.epochs
    cfg.ppo.n_minibatches = args.minibatches
    cfg.network.lstm_hidden_size = args.lstm
    cfg.torch_threads = args.threads
    cfg.validate()
    return cfg


def steps_per_second(agent: str, args: argparse.Namespace) -> tuple[float, float]:
    """(env-steps/s over every cycle, seconds of the first cycle)."""
    from heldout.trainer.build import build
    from heldout.trainer.loop import train_loop

    run = build(config_for(agent, args))
    rollout = args.n_envs * args.n_steps
    run.cfg.steps = rollout
    start = time.perf_counter()
    train_loop(run)
    first = time.perf_counter() - start
    if args.cycles > 1:
        run.cfg.steps = args.cycles * rollout
        train_loop(run, resume=True)
    total = time.perf_counter() - start
    run.env.close()
    return args.cycles * rollout / total, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--minibatches", type=int, default=1)
    parser.add_argument("--lstm", type=int, default=256, help="LSTM units of ppo_lstm")
    parser.add_argument("--cycles", type=int, default=3, help="rollout+update cycles per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="8 envs x 32 steps, LSTM 32: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_envs, args.n_steps, args.lstm, args.cycles = 8, 32, 32, 2
    print(
        f"maze: {args.n_envs} envs x {args.n_steps} steps, {args.epochs} epochs, {args.minibatches} minibatch(es), "
        f"LSTM {args.lstm}, {args.cycles} cycle(s), {args.threads} torch threads"
    )
    results = {agent: steps_per_second(agent, args) for agent in ("ppo", "ppo_lstm")}
    base = results["ppo"][0]
    print(f"{'agent':<10}{'env steps/s':>12}{'ratio':>8}{'first cycle (s)':>17}")
    for agent, (sps, first) in results.items():
        print(f"{agent:<10}{sps:>12.1f}{sps / base:>7.2f}x{first:>17.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
