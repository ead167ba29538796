"""PPOConfig / NetworkConfig: published defaults, help texts, validation errors."""

import dataclasses

import pytest

from heldout.agents import NetworkConfig, PPOConfig


def test_defaults_are_the_published_procgen_baseline():
    cfg = PPOConfig()
    assert (cfg.lr, cfg.adam_eps, cfg.n_steps, cfg.n_epochs, cfg.n_minibatches) == (5e-4, 1e-5, 256, 3, 8)
    assert (cfg.gamma, cfg.gae_lambda, cfg.ent_coef, cfg.clip_range, cfg.clip_range_vf) == (0.999, 0.95, 0.01, 0.2, 0.2)
    assert (cfg.vf_coef, cfg.max_grad_norm, cfg.normalize_advantage, cfg.normalize_reward) == (0.5, 0.5, True, True)
    assert cfg.target_kl is None
    # auto-drac drac.py 46-48, 78-84; train.py 56 (baselines VecNormalize, gamma 0.99 by default)
    assert (cfg.value_loss, cfg.advantage_scope, cfg.reward_norm_gamma) == ("published", "rollout", 0.99)
    assert cfg.batch_size(64) == 2048  # 64 envs x 256 steps / 8 minibatches
    net = NetworkConfig()
    assert (net.network, net.features_dim, net.impala_channels) == ("auto", 256, (16, 32, 32))


@pytest.mark.parametrize("cls", [PPOConfig, NetworkConfig])
def test_every_field_has_help_and_a_real_type(cls):
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
        assert not isinstance(f.type, str), f"{cls.__name__}.{f.name} has a string annotation"


def test_reward_normaliser_discount():
    from stable_baselines3.common.vec_env import DummyVecEnv
    import gymnasium as gym

    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    assert PPOConfig().reward_normalizer(venv).gamma == 0.99  # published, whatever ppo.gamma is
    assert PPOConfig(reward_norm_gamma=None, gamma=0.9).reward_normalizer(venv).gamma == 0.9
    assert PPOConfig(normalize_reward=False).reward_normalizer(venv) is venv


def test_sb3_kwargs():
    kw = PPOConfig(n_steps=16, n_minibatches=4, clip_range_vf=None).sb3_kwargs(n_envs=2)
    assert kw["batch_size"] == 8 and kw["learning_rate"] == 5e-4 and kw["clip_range_vf"] is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", float("nan")),
        ("lr", "5e-4"),
        ("lr", 1e10),  # beyond 1 a learning rate only diverges
        ("adam_eps", 2.0),
        ("ent_coef", 1.5),
        ("vf_coef", 11),
        ("clip_range", 1.5),
        ("adam_eps", 0),
        ("n_steps", 0),
        ("n_steps", 2.5),
        ("n_steps", True),
        ("n_epochs", 0),
        ("n_minibatches", -2),
        ("gamma", 1.01),
        ("gamma", -0.1),
        ("gae_lambda", 2),
        ("ent_coef", -0.01),
        ("vf_coef", -1),
        ("clip_range", 0),
        ("clip_range_vf", 0.0),
        ("max_grad_norm", 0),
        ("normalize_advantage", 1),
        ("normalize_reward", "yes"),
        ("target_kl", -0.1),
        ("value_loss", "mse"),
        ("advantage_scope", "epoch"),
        ("reward_norm_gamma", 1.5),
    ],
)
def test_bad_ppo_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"ppo\.{field} must be"):
        PPOConfig(**{field: value})
    cfg = PPOConfig()
    setattr(cfg, field, value)  # set after construction: validate() still catches it
    with pytest.raises(ValueError, match=rf"ppo\.{field} must be"):
        cfg.validate()


def test_batch_size_errors():
    cfg = PPOConfig(n_steps=10, n_minibatches=4)
    with pytest.raises(ValueError, match=r"n_minibatches=4 does not divide .* 3 \* 10 = 30"):
        cfg.batch_size(3)
    assert cfg.batch_size(2) == 5
    with pytest.raises(ValueError, match="number of environments"):
        cfg.batch_size(0)
    with pytest.raises(ValueError, match="normalise advantages"):
        PPOConfig(n_steps=4, n_minibatches=4).batch_size(1)
    assert PPOConfig(n_steps=4, n_minibatches=4, normalize_advantage=False).batch_size(1) == 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("network", "resnet"),
        ("features_dim", 0),
        ("impala_channels", ()),
        ("impala_channels", (16, 0, 32)),
        ("maze_channels", "16"),
        ("channels_last", None),
    ],
)
def test_bad_network_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"network\.{field} must be"):
        NetworkConfig(**{field: value})


def test_network_lists_become_tuples():
    assert NetworkConfig(impala_channels=[8, 8]).impala_channels == (8, 8)


def test_linear_decay_gives_jaxueds_lr_at_each_update_from_sb3s_progress():
    from heldout.agents.config import LinearDecay

    schedule = LinearDecay(1e-4, rollout=512, total=2048)  # N = 4 updates
    # sb3's progress remaining when update k runs: 1 - (k + 1) * 512 / 2048
    seen = [schedule(1 - (k + 1) * 512 / 2048) for k in range(4)]
    assert seen == pytest.approx([1e-4, 0.75e-4, 0.5e-4, 0.25e-4], rel=1e-12)  # lr * (1 - k / 4)
    assert schedule(-0.5) == 0.0 and schedule(1.0) == 1e-4  # clipped to [0, lr]


def test_an_unknown_lr_schedule_is_refused_by_name():
    with pytest.raises(ValueError, match="lr_schedule"):
        PPOConfig(lr_schedule="cosine")
