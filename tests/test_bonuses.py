"""Exploration bonuses: counts on hand-made observations, E3B's rank-one inverse, RND's learning,
the combinations, and a bonus run that resumes bit-identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heldout import bonuses
from heldout.bonuses import E3B, RND, BonusConfig, Combined, EpisodicCount, GlobalCount, RunningStd
from heldout.cli import main
from heldout.trainer.sampler_glue import gae


def obs(*codes: int) -> np.ndarray:
    """One 2x2 observation per code (the code in every cell)."""
    return np.array([np.full((2, 2), c, dtype=np.uint8) for c in codes])


def test_global_count_is_one_over_root_of_visits_over_training():
    bonus = GlobalCount()
    bonus.begin(np.array([0]), obs(1))  # N(1) = 1
    a = bonus.reward(None, None, obs(1))  # N(1) = 2
    b = bonus.reward(None, None, obs(2))  # N(2) = 1
    bonus.begin(np.array([0]), obs(2))  # a new episode: counts go on, N(2) = 2
    c = bonus.reward(None, None, obs(2))  # N(2) = 3
    assert np.allclose([a[0], b[0], c[0]], [1 / np.sqrt(2), 1.0, 1 / np.sqrt(3)])
    assert bonus.distinct_states() == 2


def test_episodic_count_resets_each_episode_in_its_slot_only():
    bonus = EpisodicCount(2)
    bonus.begin(np.array([0, 1]), obs(1, 1))
    first = bonus.reward(None, None, obs(1, 2))  # slot 0: N=2 ; slot 1: N(2)=1
    bonus.begin(np.array([0]), obs(3))  # slot 0's new episode
    second = bonus.reward(None, None, obs(1, 2))  # slot 0: N(1)=1 again ; slot 1: N(2)=2
    assert np.allclose(first, [1 / np.sqrt(2), 1.0]) and np.allclose(second, [1.0, 1 / np.sqrt(2)])
    visits = EpisodicCount(1, form="first_visit")
    visits.begin(np.array([0]), obs(5))
    assert [visits.reward(None, None, obs(c))[0] for c in (6, 5, 6, 7)] == [1.0, 0.0, 0.0, 1.0]
    assert bonus.distinct_states() == 3


def test_observation_key_tells_shape_and_dtype_apart():
    a = np.zeros((2, 2), dtype=np.uint8)
    keys = {bonuses.observation_key(x) for x in (a, a.reshape(4), a.astype(np.int8), a.copy())}
    assert len(keys) == 3


def test_rank_one_inverse_equals_the_direct_inverse():
    rng = np.random.default_rng(0)
    d, ridge = 5, 0.1
    phis = rng.normal(size=(7, d))
    inverse = (torch.eye(d, dtype=torch.float64) / ridge).unsqueeze(0)
    cov = ridge * np.eye(d)
    for phi in phis:
        b = bonuses.rank_one_inverse_update(inverse, torch.as_tensor(phi).unsqueeze(0))
        assert np.isclose(float(b[0]), phi @ np.linalg.inv(cov) @ phi)  # the bonus uses C before phi joins it
        cov += np.outer(phi, phi)
        assert np.allclose(inverse[0].numpy(), np.linalg.inv(cov), atol=1e-8)


def _e3b(num_envs: int = 1) -> E3B:
    return E3B((2, 2), 3, num_envs, ridge=0.1, embedding_dim=8, hidden_dim=16, lr=1e-3, batch_size=8, epochs=1,
               max_grad_norm=40.0, seed=0, device=torch.device("cpu"))  # fmt: skip


def test_e3b_bonus_shrinks_for_a_repeated_embedding_and_resets_per_episode():
    bonus = _e3b()
    bonus.begin(np.array([0]), obs(9))
    repeated = [bonus.reward(None, None, obs(4))[0] for _ in range(4)]
    assert all(x > y > 0 for x, y in zip(repeated, repeated[1:]))
    phi = bonus._phi(obs(4))[0].double()
    phi0 = bonus._phi(obs(9))[0].double()
    cov = 0.1 * torch.eye(8, dtype=torch.float64) + torch.outer(phi0, phi0)
    assert np.isclose(repeated[0], float(phi @ torch.linalg.inv(cov) @ phi), rtol=1e-4)
    bonus.begin(np.array([0]), obs(9))  # a new episode forgets the old one
    assert np.isclose(bonus.reward(None, None, obs(4))[0], repeated[0], rtol=1e-5)


def test_e3b_embedding_learns_inverse_dynamics():
    bonus = _e3b()
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 3, 64)
    before, after = obs(*rng.integers(0, 20, 64)), None
    after = before.copy()
    after[:, 0, 0] = actions * 50  # the action is readable from the pair
    losses = [bonus.learn(before, actions, after)["inverse_dynamics_loss"] for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0]


def test_rnd_bonus_falls_on_states_it_trains_on():
    bonus = RND((2, 2), out_dim=8, hidden_dim=16, lr=1e-3, batch_size=16, epochs=1, max_grad_norm=40.0, seed=0,
                device=torch.device("cpu"))  # fmt: skip
    trained, other = obs(*range(0, 16)), obs(*range(200, 216))
    start_trained, start_other = bonus.reward(None, None, trained).mean(), bonus.reward(None, None, other).mean()
    for _ in range(150):
        bonus.learn(trained, np.zeros(16), trained)
    assert bonus.reward(None, None, trained).mean() < 0.3 * start_trained
    assert bonus.reward(None, None, other).mean() > bonus.reward(None, None, trained).mean()
    assert start_other > 0


class _Fixed(bonuses.Bonus):
    def __init__(self, values):
        self.values = np.array(values, dtype=np.float64)

    def reward(self, obs, actions, next_obs):
        return self.values


def test_sum_and_product_of_hand_values():
    g, e = _Fixed([0.5, 0.25, 1.0]), _Fixed([1.0, 0.5, 0.0])
    assert np.allclose(Combined(g, e, "product").reward(None, None, None), [0.5, 0.125, 0.0])
    assert np.allclose(Combined(g, e, "sum").reward(None, None, None), [1.5, 0.75, 1.0])


def test_running_std_matches_numpy_and_waits_for_its_count():
    values = np.random.default_rng(2).normal(3.0, 2.0, size=(50, 4))
    scale = RunningStd(min_count=100)
    for row in values[:20]:
        scale.update(row)
    assert np.allclose(scale.scale(np.array([1.0])), [1.0])  # 80 values: not yet
    for row in values[20:]:
        scale.update(row)
    assert np.isclose(scale.std, values.std()) and np.isclose(scale.scale(np.array([2.0]))[0], 2.0 / values.std())


def test_gae_equals_sb3_rollout_buffer():
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    rng = np.random.default_rng(3)
    T, E = 6, 2
    buffer = RolloutBuffer(T, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), n_envs=E, gamma=0.9, gae_lambda=0.8)
    starts = rng.random((T, E)) < 0.3
    for t in range(T):
        buffer.add(np.zeros((E, 1)), np.zeros((E, 1)), rng.normal(size=E), starts[t],
                   torch.as_tensor(rng.normal(size=E)), torch.zeros(E))  # fmt: skip
    last_values, dones = rng.normal(size=E), np.array([True, False])
    buffer.compute_returns_and_advantage(torch.as_tensor(last_values), dones)
    ours = gae(buffer.rewards, buffer.values, buffer.episode_starts, last_values, dones, 0.9, 0.8)
    assert np.allclose(ours, buffer.advantages, atol=1e-5)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="bonus.episodic_form"):
        BonusConfig(name="episodic_count", episodic_form="sometimes").validate()
    with pytest.raises(ValueError, match="bonus.embedding_dim"):
        BonusConfig(name="e3b", embedding_dim=0).validate()


TINY = [
    "--env", "maze", "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1",
    "--train-levels", "5", "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2",
    "--env.test_levels", "test", "--env.options", "{max_steps: 20}", "--torch_threads", "1", "--no-progress",
    "--checkpoint_interval", "1",
    "--bonus.embedding_dim", "8", "--bonus.hidden_dim", "16", "--bonus.batch_size", "32", "--bonus.rnd_dim", "8",
]  # fmt: skip


@pytest.mark.parametrize("args", [
    ["--bonus", "product", "--bonus.global_part", "rnd", "--bonus.episodic_part", "e3b", "--sampler", "plr"],
    ["--bonus", "sum", "--agent", "ppo_lstm", "--network.lstm_hidden_size", "8"],
])  # fmt: skip
def test_a_bonus_run_continued_from_its_checkpoint_equals_the_whole_run(tmp_path, args):
    from tests.test_train import load_checkpoint, tensorboard_tags

    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *TINY, *args, "--steps", "384", "--run-dir", str(whole)]) == 0
    assert main(["train", *TINY, *args, "--steps", "256", "--run-dir", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--steps", "384", "--no-progress"]) == 0
    a, b = (load_checkpoint(run) for run in (whole, part))
    assert a["num_timesteps"] == b["num_timesteps"] == 384
    assert all(torch.equal(a["policy"][k], b["policy"][k]) for k in a["policy"])
    ba, bb = a["bonus"], b["bonus"]
    assert np.array_equal(ba["obs"], bb["obs"]) and ba["scale"] == bb["scale"]
    if "net" in ba["bonus"]["episodic"]:
        ea, eb = ba["bonus"]["episodic"], bb["bonus"]["episodic"]
        assert torch.equal(ea["inverse"], eb["inverse"])
        assert all(torch.equal(ea["net"][k], eb["net"][k]) for k in ea["net"])
    else:
        assert np.array_equal(ba["bonus"]["global"]["counts"], bb["bonus"]["global"]["counts"])
    tags = tensorboard_tags(whole)
    assert {"bonus/extrinsic_return", "bonus/intrinsic_return", "bonus/mean_per_episode"} <= tags
    if "sum" in args:
        assert "bonus/distinct_states" in tags


@pytest.mark.parametrize("score_with", ["extrinsic", "total"])
def test_level_scores_see_the_extrinsic_reward_unless_told_otherwise(score_with):
    from heldout.trainer import config
    from heldout.trainer.build import build
    from heldout.trainer.loop import train_loop

    cfg = config.preset("maze")
    cfg.env.num_envs, cfg.env.num_train_levels, cfg.env.options = 4, 5, {"max_steps": 20}
    cfg.ppo.n_steps, cfg.ppo.n_epochs, cfg.ppo.normalize_reward, cfg.steps = 32, 1, False, 32
    cfg.sampler.name, cfg.bonus.name, cfg.bonus.normalize, cfg.bonus.score_with = "plr", "global_count", False, score_with
    cfg.validate()
    run = build(cfg)
    seen = {}
    process = run.glue.scorer.process
    run.glue.scorer.process = lambda **kw: seen.update(kw) or process(**kw)
    train_loop(run)
    buffer = run.model.rollout_buffer
    added = np.stack(run.glue.steps.intrinsic)
    assert (added > 0).all()  # 1/sqrt(N) on every step
    ends = np.vstack([buffer.episode_starts[1:], run.glue.steps.last_dones[None]]).astype(bool)
    if score_with == "extrinsic":  # the maze pays only at an episode's end (and sb3 bootstraps only there)
        assert np.allclose(seen["rewards"][~ends], 0.0, atol=1e-6)
        assert np.allclose(seen["rewards"], buffer.rewards - added, atol=1e-6)
    else:
        assert np.array_equal(seen["rewards"], buffer.rewards)
