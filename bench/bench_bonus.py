"""Training env-steps/s with each exploration bonus beside none, in one run on one machine.

Each variant is what ``heldout train --env ENV --bonus NAME`` builds (the ``small`` preset: 32 envs
x 128 steps, 4 epochs, 4 minibatches, one torch thread), timed over the trainer's loop
(``heldout.trainer.loop.train_loop``) for ``--cycles`` rollout+update cycles after one warm-up
cycle. Variants alternate over ``--rounds``; the table shows medians and the ratio to ``none``.

    python bench/bench_bonus.py                                   # MiniGrid MultiRoom-N4-S5
    python bench/bench_bonus.py --env minihack/MultiRoom-N4 --bonuses none,e3b
    python bench/bench_bonus.py --quick                           # tiny sizes: checks the script
"""

from __future__ import annotations

import argparse
import statistics
import time

import heldout  # noqa: F401  (first: quiets the legacy gym notice)


def measure(env: str, bonus: str, cycles: int, quick: bool) -> float:
    from heldout.trainer import config
    from heldout.trainer.build import build
    from heldout.trainer.loop import train_loop

    cfg = config.preset("small")
    cfg.env.name = env
    cfg.bonus.name = bonus
    cfg.eval.interval, cfg.checkpoint_interval, cfg.torch_threads = 0, 0, 1
    if quick:
        cfg.env.num_envs, cfg.ppo.n_steps, cfg.ppo.n_minibatches = 4, 32, 1
        if bonus != "none":
            cfg.bonus.embedding_dim, cfg.bonus.batch_size = 16, 64
    cfg.validate()
    run = build(cfg)
    rollout = cfg.env.num_envs * cfg.ppo.n_steps
    run.cfg.steps = rollout
    train_loop(run, progress=False)  # warm-up
    run.cfg.steps = (cycles + 1) * rollout
    start = time.perf_counter()
    train_loop(run, resume=True, progress=False)
    return cycles * rollout / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="minigrid/MultiRoom-N4-S5")
    parser.add_argument("--bonuses", default="none,global_count,episodic_count,product,e3b,rnd")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4 envs x 32 steps, 1 round, 1 cycle")
    args = parser.parse_args(argv)
    bonuses = [b.strip() for b in args.bonuses.split(",") if b.strip()]
    if "none" not in bonuses:
        bonuses.insert(0, "none")
    if args.quick:
        args.cycles, args.rounds = 1, 1
    results: dict[str, list[float]] = {b: [] for b in bonuses}
    for r in range(args.rounds):
        for bonus in bonuses if r % 2 == 0 else bonuses[::-1]:
            results[bonus].append(measure(args.env, bonus, args.cycles, args.quick))
    base = statistics.median(results["none"])
    print(f"{args.env}: env-steps/s, medians of {args.rounds} round(s) of {args.cycles} cycle(s), one torch thread")
    print(f"{'bonus':<16}{'steps/s':>10}{'vs none':>9}")
    for bonus in bonuses:
        sps = statistics.median(results[bonus])
        print(f"{bonus:<16}{sps:>10.0f}{sps / base:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
