"""Training env-steps/s: `heldout train` against plain stable-baselines3, in one run.

* ``plain``: ``stable_baselines3.PPO`` as it comes, with no heldout code in the loop: a thin
  gym3 -> VecEnv adapter written here over a raw ``ProcgenGym3Env`` (procgen picks the levels:
  ``num_levels=200, start_level=0``), ``VecNormalize`` reward scaling, sb3's own
  ``VecTransposeImage`` and an IMPALA CNN (16/32/32, 256) written here in plain NCHW.
* ``heldout``: what `heldout train` runs (``heldout.trainer.build``: Procgen preset, heldout's
  PPO with the IMPALA CNN in channels_last, the level-sampler glue writing sampled levels into
  slots, and the trainer's loop, ``heldout.trainer.loop.train_loop``, with a checkpoint after every
  update). Only the evaluations before and after training are left out. Timed over
  ``model.learn`` (plain) and ``train_loop`` (heldout).

Both use the published PPO hyperparameters (64 envs x 256 steps, 3 epochs, 8 minibatches).
The maze preset's training speed is measured the same way and printed below the table.

    python bench/bench_train.py            # the measurement: one full update cycle per variant
    python bench/bench_train.py --quick    # tiny sizes: checks the script runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import heldout  # noqa: F401  (first: quiets the legacy gym notice)
import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

# -- plain: no heldout code ---------------------------------------------------------------------


class Gym3VecEnv(VecEnv):
    """The least a raw ProcgenGym3Env needs to be an sb3 VecEnv (procgen auto-resets)."""

    def __init__(self, num_envs: int, game: str, num_levels: int) -> None:
        with contextlib.redirect_stderr(io.StringIO()):
            from procgen import ProcgenGym3Env
        self.env = ProcgenGym3Env(
            num=num_envs, env_name=game, distribution_mode="easy", num_levels=num_levels, start_level=0
        )
        obs_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        super().__init__(num_envs, obs_space, gym.spaces.Discrete(15))
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def reset(self):
        return self.env.observe()[1]["rgb"].copy()

    def step_async(self, actions):
        self.env.act(np.asarray(actions, dtype=np.int32))

    def step_wait(self):
        rewards, obs, first = self.env.observe()
        self.returns += rewards
        self.lengths += 1
        infos = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(first):
            infos[i] = {"episode": {"r": self.returns[i], "l": self.lengths[i]}, "terminal_observation": obs["rgb"][i]}
        self.returns[first] = 0
        self.lengths[first] = 0
        return obs["rgb"].copy(), rewards.astype(np.float32), first.copy(), infos

    def close(self):
        self.env.close()

    def get_attr(self, name, indices=None):
        return [getattr(self, name)] * self.num_envs

    def set_attr(self, name, value, indices=None):
        setattr(self, name, value)

    def env_method(self, name, *args, indices=None, **kwargs):
        return [getattr(self, name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv1(th.relu(self.conv0(th.relu(x))))


class PlainImpala(BaseFeaturesExtractor):
    """IMPALA CNN (16/32/32 -> 256) in the default NCHW memory format."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256) -> None:
        super().__init__(observation_space, features_dim)
        layers, channels = [], observation_space.shape[0]
        for out in (16, 32, 32):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.MaxPool2d(3, 2, padding=1), Residual(out), Residual(out)]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * 8 * 8, features_dim)

    def forward(self, x):
        return th.relu(self.linear(th.flatten(th.relu(self.convs(x)), 1)))


def plain_model(args, cfg):
    ppo = cfg.ppo
    env = VecNormalize(Gym3VecEnv(args.n_envs, args.game, 200), norm_obs=False, norm_reward=True, gamma=ppo.gamma)
    policy_kwargs = {
        "features_extractor_class": PlainImpala,
        "features_extractor_kwargs": {"features_dim": 256},
        "net_arch": [],
        "optimizer_kwargs": {"eps": ppo.adam_eps},
    }
    return PPO("CnnPolicy", env, policy_kwargs=policy_kwargs, seed=0, device="cpu", **ppo.sb3_kwargs(args.n_envs))


# -- heldout: what `heldout train` runs -----------------------------------------------------------


def heldout_run(cfg, run_dir: Path):
    from heldout.trainer.build import build
    from heldout.trainer.rundir import open_run_dir

    run = build(cfg, run_dir)
    open_run_dir(run_dir, cfg, None)
    run.model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    return run


def config_for(args, preset: str, game: str | None = None):
    from heldout.trainer import config

    cfg = config.preset(preset)
    if game:
        cfg.env.name = f"procgen/{game}"
    cfg.env.num_envs = args.n_envs if preset == "procgen" else cfg.env.num_envs
    if preset == "procgen":
        cfg.ppo.n_steps = args.n_steps
        cfg.sampler.name = args.sampler
        cfg.checkpoint_interval = 1
    cfg.eval.interval = 0
    cfg.validate()
    return cfg


def timed_plain(model, steps: int) -> float:
    start = time.perf_counter()
    model.learn(steps)
    return model.num_timesteps / (time.perf_counter() - start)


def timed_heldout(run, steps: int) -> float:
    from heldout.trainer.loop import train_loop

    run.cfg.steps = steps
    start = time.perf_counter()
    train_loop(run)
    return run.model.num_timesteps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="coinrun")
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--cycles", type=int, default=1, help="rollout+update cycles per variant")
    parser.add_argument("--sampler", default="plr", help="heldout's level sampler in the loop")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (procgen variants)")
    parser.add_argument("--maze-steps", type=int, default=200_000, help="steps for the maze preset's figure")
    parser.add_argument("--quick", action="store_true", help="8 envs x 32 steps: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_envs, args.n_steps, args.maze_steps = 8, 32, 8192
    th.set_num_threads(args.threads)
    cfg = config_for(args, "procgen", args.game)
    steps = args.cycles * args.n_envs * args.n_steps
    print(
        f"procgen/{args.game}: {args.n_envs} envs x {args.n_steps} steps, {cfg.ppo.n_epochs} epochs, "
        f"{cfg.ppo.n_minibatches} minibatches, {args.cycles} cycle(s), {args.threads} torch threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = {"plain sb3": timed_plain(plain_model(args, cfg), steps)}
        results[f"heldout train ({args.sampler})"] = timed_heldout(heldout_run(cfg, Path(tmp) / "p"), steps)
        maze_cfg = config_for(args, "maze")
        th.set_num_threads(maze_cfg.torch_threads or args.threads)
        maze_sps = timed_heldout(heldout_run(maze_cfg, Path(tmp) / "m"), args.maze_steps)
    base = results["plain sb3"]
    print(f"{'variant':<26}{'env steps/s':>12}{'ratio':>8}")
    for name, sps in results.items():
        print(f"{name:<26}{sps:>12.1f}{sps / base:>7.2f}x")
    print(f"maze preset (heldout train, {maze_cfg.env.num_envs} envs, {args.maze_steps} steps): {maze_sps:.0f} env steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
