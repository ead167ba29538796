"""DRED's published schedule through the trainer's loop, on tiny PPO runs over a toy LevelVecEnv:
a warm-up that plays every training level once without gradient, then a replay rollout (with
gradient) and a proposal rollout (one generated level per slot, no gradient) in turn."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from heldout.envs.base import LevelSet, LevelSpace, LevelVecEnv
from heldout.level_samplers import DREDSampler
from heldout.trainer.build import Run
from heldout.trainer.config import TrainConfig
from heldout.trainer.loop import train_loop
from heldout.trainer.sampler_glue import SamplerGlue

TRAIN = tuple(range(5))
N_ENVS, N_STEPS, OBS = 3, 6, 8


class ToyVecEnv(LevelVecEnv):
    """Level k lasts k % 3 + 2 steps and pays 1 at its end, except odd generated levels
    (k >= 100): those pay nothing, like an unsolvable maze."""

    render_mode = None

    def __init__(self):
        space = LevelSpace()
        super().__init__(N_ENVS, gym.spaces.Box(0, 1, (OBS,), np.float32), gym.spaces.Discrete(2), LevelSet("train", levels=TRAIN), space)
        self._t = np.zeros(N_ENVS, np.int64)
        self.steps = 0
        self.loads: list[tuple[int, int]] = []  # (slot, level) in load order
        self.resets: list[int] = []  # len(self.loads) at every reset of all slots

    def _obs(self, levels):
        obs = np.zeros((len(levels), OBS), np.float32)
        obs[np.arange(len(levels)), np.asarray(levels) % OBS] = 1
        return obs

    def reset(self):
        self.resets.append(len(self.loads))
        return super().reset()

    def _load_levels(self, slots, levels):
        self.loads.extend(zip(slots.tolist(), levels))
        self._t[slots] = 0
        return self._obs(levels)

    def _raw_step(self, actions):
        self.steps += 1
        self._t += 1
        lv = np.array(self.levels)
        ended = self._t >= lv % 3 + 2
        pays = (lv < 100) | (lv % 2 == 0)
        return self._obs(lv), np.where(ended & pays, 1.0, 0.0), ended, np.zeros(N_ENVS, bool)


class MaskRecordingPPO(PPO):
    def set_loss_mask(self, mask):
        self.__dict__.setdefault("masks", []).append(np.array(mask, copy=True))


def generated(rng, n):
    return [int(x) for x in 100 + rng.integers(10**6, size=n)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(rollouts, **params):
    env = ToyVecEnv()
    sampler = DREDSampler(TRAIN, generator=generated, generation_batch=4, seed=0, **params)
    model = MaskRecordingPPO("MlpPolicy", env, n_steps=N_STEPS, batch_size=N_STEPS * N_ENVS, n_epochs=1, seed=0,
                             policy_kwargs={"net_arch": [8]})  # fmt: skip
    glue = SamplerGlue(sampler, model)
    cfg = TrainConfig()
    cfg.steps, cfg.checkpoint_interval = rollouts * N_STEPS * N_ENVS, 0
    train_loop(Run(cfg, model, glue))
    return env, sampler, model


def test_warm_up_then_replay_rollouts_with_gradient_and_proposal_rollouts_without():
    env, sampler, model = run(6)
    masks = [m.astype(bool) for m in model.masks]
    # Rollouts: warm-up (3 of the 5 training levels), warm-up (the other 2 and one again), then
    # replay, proposal, replay, proposal: gradient on replay rollouts only, on every step of them.
    assert [bool(m.all()) for m in masks] == [False, False, True, False, True, False]
    assert [bool(m.any()) for m in masks] == [False, False, True, False, True, False]
    # The first reset (sb3's, before any plan) loads placeholders; then one reset per rollout.
    assert len(env.resets) == 1 + 6
    cuts = [*env.resets[1:], len(env.loads)]
    per_rollout = [env.loads[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    for r, loads in enumerate(per_rollout):
        assert [s for s, _ in loads[:N_ENVS]] == list(range(N_ENVS))  # every slot restarts on the plan
        first = dict(loads[:N_ENVS])
        if r in (0, 1, 3, 5):  # warm-up and proposal rollouts: a slot plays its level again and again
            assert all(lv == first[s] for s, lv in loads)
            assert len(set(first.values())) == N_ENVS or r == 1
        if r in (0, 1):
            assert set(first.values()) <= set(TRAIN)
        if r in (3, 5):
            assert all(lv >= 100 for lv in first.values())
    warm = {lv for s, lv in per_rollout[0][:N_ENVS]} | {lv for s, lv in per_rollout[1][:N_ENVS]}
    assert warm == set(TRAIN)  # the warm-up played every training level
    assert all(lv < 100 for _, lv in per_rollout[2])  # nothing generated is held yet
    # Generated levels that pay enter the buffer; those that never pay (odd) never do.
    proposals = {lv for r in (3,) for lv in dict(per_rollout[r][:N_ENVS]).values()}
    held = set(sampler.generated_levels())
    assert held and all(lv % 2 == 0 for lv in held) and held <= proposals | {
        lv for lv in dict(per_rollout[5][:N_ENVS]).values()
    }
    assert not {lv for lv in proposals if lv % 2} & held


def test_the_coin_schedule_draws_per_episode_and_never_restarts_the_slots():
    env, sampler, model = run(3, proposals="coin")
    assert env.resets == [0]  # only sb3's first reset
    masks = np.concatenate(model.masks).astype(bool)
    assert masks.any() and not masks.all()  # replays and proposals mixed within rollouts
