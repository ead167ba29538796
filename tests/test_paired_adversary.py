"""PAIRED's adversary: designs one level per slot, learns from regret on the last step, resumes."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import configure

from heldout.envs.maze import MazeEditorVecEnv, MazeLevel
from heldout.trainer.adversary import Adversary, AdversaryConfig

TINY = AdversaryConfig(lstm_hidden_size=16, conv_channels=4, n_epochs=1)


def make(seed=0, cfg=TINY, envs=3, total_updates=100):
    th.manual_seed(seed)
    editor = MazeEditorVecEnv(envs, size=5, n_walls=3, z_dim=4, seed=seed)
    adv = Adversary(editor, cfg, seed=seed, total_updates=total_updates)
    adv.set_logger(configure(None, []))
    return adv


def test_design_builds_one_level_per_slot_and_is_deterministic():
    a = make()
    levels = a.design()
    assert len(levels) == 3 and all(isinstance(lv, MazeLevel) and lv.shape == (5, 5) for lv in levels)
    assert all(lv.goal != lv.start and lv.num_walls <= 3 for lv in levels)
    assert make().design() == levels  # sb3 seeds torch's generator: the same seed, the same levels
    assert a.model.num_timesteps == 3 * 5  # 5 steps (goal, agent, 3 walls) in 3 slots


def test_regret_is_the_last_step_reward_and_returns_follow_it():
    cfg = AdversaryConfig(**{**TINY.__dict__, "gae_lambda": 1.0, "n_epochs": 1})
    adv = make(cfg=cfg)
    adv.design()
    buffer = adv.model.rollout_buffer
    values = buffer.values.copy()
    before = [p.detach().clone() for p in adv.model.policy.parameters()]
    adv.learn(np.array([0.5, 0.0, -0.25]))
    assert np.all(buffer.rewards[:-1] == 0) and buffer.rewards[-1].tolist() == [0.5, 0.0, -0.25]
    # lambda 1, episode ends at the last step: the return of step t is gamma^(T-1-t) * regret
    t = np.arange(5)[:, None]
    expected = 0.995 ** (4 - t) * np.array([0.5, 0.0, -0.25])[None, :]
    assert buffer.returns == pytest.approx(expected, abs=1e-6)
    assert buffer.advantages == pytest.approx(expected - values, abs=1e-6)
    assert any(not th.equal(p, q) for p, q in zip(before, adv.model.policy.parameters()))


def test_state_round_trip_designs_the_same_next_levels():
    a = make()
    a.design()
    a.learn(np.array([0.1, 0.2, 0.3]))
    state = a.state_dict()
    rng = th.get_rng_state()
    following = a.design()
    b = make(seed=1)
    b.load_state_dict(state)
    th.set_rng_state(rng)
    assert b.design() == following
    assert b.model.num_timesteps == a.model.num_timesteps
    assert 0.0 < a.entropy() <= np.log(25) + 1e-6


def test_the_adversary_lr_decays_linearly_per_update_as_jaxued_and_can_stay_constant():
    """jaxued maze_paired.py ~464-470: lr * (1 - k / N) at the adversary's update k (N = 4 here)."""
    adv = make(total_updates=4)
    seen = []
    for k in range(3):
        adv.design()
        adv.learn(np.zeros(3))
        seen.append(adv.model.policy.optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([1e-4, 0.75e-4, 0.5e-4], rel=1e-12)
    flat = make(cfg=AdversaryConfig(**{**TINY.__dict__, "lr_schedule": "constant"}), total_updates=None)
    flat.design()
    flat.learn(np.zeros(3))
    assert flat.model.policy.optimizer.param_groups[0]["lr"] == 1e-4
    with pytest.raises(ValueError, match="needs total_updates"):
        make(total_updates=None)
    with pytest.raises(ValueError, match="adversary_lr_schedule must be one of constant, linear"):
        AdversaryConfig(lr_schedule="cosine")
