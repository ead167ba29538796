"""Env-steps/s of one PPO cycle (rollout + update): plain stable-baselines3 vs heldout's PPO.

Both variants use the same env (heldout's ``procgen/coinrun`` vec env with reward
normalisation), the same IMPALA CNN (16/32/32, 256) and the published Procgen PPO
hyperparameters (64 envs x 256 steps, 3 epochs, 8 minibatches):

* ``plain``: ``stable_baselines3.PPO`` as it comes. sb3 wraps the HWC frames in
  ``VecTransposeImage``, stores CHW in its rollout buffer and the IMPALA CNN runs in plain NCHW
  (contiguous) memory format.
* ``heldout``: ``heldout.agents.make("ppo", ...)``: frames stay HWC, the IMPALA CNN runs in
  ``torch.channels_last`` (a permuted HWC batch already is channels_last, so no copy).
* ``heldout-nchw`` (optional): heldout's PPO with ``channels_last=False``, to separate the
  memory-format gain from everything else.

Each variant runs one warm-up cycle, then ``--cycles`` timed cycles; the table shows env
steps/s and the time split between rollout and update. Variants run one after another in
the same process, so run it on a quiet machine.

    python bench/bench_update.py                 # the measurement (64 x 256, 2 threads)
    python bench/bench_update.py --quick         # tiny sizes, to check the script works
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from heldout import agents, envs

VARIANTS = ("plain", "heldout", "heldout-nchw")


class CycleTimer(BaseCallback):
    """Wall time spent collecting rollouts and updating, from the rollout callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.rollout = 0.0
        self.update = 0.0
        self._start = 0.0
        self._last_end: float | None = None

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._last_end is not None:
            self.update += now - self._last_end
            self._last_end = None
        self._start = now

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._last_end = time.perf_counter()
        self.rollout += self._last_end - self._start

    def _on_training_end(self) -> None:
        if self._last_end is not None:
            self.update += time.perf_counter() - self._last_end
            self._last_end = None


@dataclass
class Result:
    variant: str
    steps: int
    seconds: float
    rollout_s: float
    update_s: float

    @property
    def sps(self) -> float:
        return self.steps / self.seconds


def build(variant: str, args: argparse.Namespace, ppo: agents.PPOConfig) -> PPO:
    venv = envs.make_vec(args.env, args.n_envs, seed=0)
    venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=ppo.gamma)
    if variant == "plain":
        network = agents.NetworkConfig(network="impala", channels_last=False)
        policy_kwargs = agents.policy_kwargs(network, ppo, venv.observation_space)
        return PPO(ActorCriticPolicy, venv, policy_kwargs=policy_kwargs, seed=0, device="cpu",
                   **ppo.sb3_kwargs(args.n_envs))
    network = agents.NetworkConfig(network="impala", channels_last=(variant == "heldout"))
    return agents.make("ppo", venv, ppo=ppo, network=network, seed=0, device="cpu")


def run(variant: str, args: argparse.Namespace, ppo: agents.PPOConfig) -> Result:
    model = build(variant, args, ppo)
    cycle = args.n_envs * ppo.n_steps
    model.learn(cycle)  # warm-up: first-call overheads, oneDNN kernel selection
    timer = CycleTimer()
    start = time.perf_counter()
    model.learn(args.cycles * cycle, callback=timer, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    model.env.close()
    return Result(variant, args.cycles * cycle, seconds, timer.rollout, timer.update)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="procgen/coinrun", help="registered env family with 64x64 frames")
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--cycles", type=int, default=2, help="timed rollout+update cycles per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--variants", default="plain,heldout", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="8 envs x 16 steps, 1 cycle: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_envs, args.n_steps, args.cycles = 8, 16, 1
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    th.set_num_threads(args.threads)
    ppo = agents.PPOConfig(n_steps=args.n_steps)

    print(f"{args.env}: {args.n_envs} envs x {args.n_steps} steps, {ppo.n_epochs} epochs x {ppo.n_minibatches} "
          f"minibatches of {ppo.batch_size(args.n_envs)}, {args.cycles} timed cycle(s), {args.threads} torch threads")
    results = [run(v, args, ppo) for v in variants]
    base = results[0].sps
    print(f"{'variant':<14}{'steps/s':>10}{'rollout s':>11}{'update s':>10}{'vs ' + results[0].variant:>14}")
    for r in results:
        print(f"{r.variant:<14}{r.sps:>10.1f}{r.rollout_s:>11.2f}{r.update_s:>10.2f}{r.sps / base:>13.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**r.__dict__, "sps": r.sps} for r in results], fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
