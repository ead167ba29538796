"""HeldoutPPO: sb3's losses, the loss mask, hooks, determinism, TensorBoard, the agent registry."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize, VecTransposeImage, is_vecenv_wrapped

from heldout import agents
from heldout.agents import HeldoutPPO, ImpalaCNN, MazeNet, NetworkConfig, PPOConfig, policy_kwargs

N_ENVS, N_STEPS = 2, 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL_IMPALA = dict(network="impala", impala_channels=(4, 8, 8), features_dim=32)


class ColourEnv(gym.Env):
    """16x16 RGB frames of one colour out of three; reward 1 for naming the colour; 4-9 steps."""

    def __init__(self, side: int = 16) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (side, side, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(4, 10))
        self.colour = int(self.np_random.integers(3))
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        frame = self.np_random.integers(0, 40, self.observation_space.shape, dtype=np.uint8)
        frame[..., self.colour] += 200
        return frame

    def step(self, action):
        self.t += 1
        reward = float(int(action) == self.colour)
        self.colour = int(self.np_random.integers(3))
        return self._obs(), reward, self.t >= self.length and reward > 0, self.t >= self.length, {}


class GridEnv(gym.Env):
    """The maze observation format: (5, 5, 3) uint8 of wall, goal and direction code 0..4."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (5, 5, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.direction = 0, int(self.np_random.integers(4))
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        obs = np.zeros((5, 5, 3), np.uint8)
        obs[..., 0] = self.np_random.integers(0, 2, (5, 5))
        obs[0, 2, 1] = 1
        obs[4, 2, 0], obs[4, 2, 2] = 0, 1 + self.direction
        return obs

    def step(self, action):
        self.t += 1
        reward = float(int(action) == 2 and self.direction == 0)
        self.direction = (self.direction + (1 if int(action) == 1 else -1 if int(action) == 0 else 0)) % 4
        return self._obs(), reward, reward > 0, self.t >= 12, {}


def vec(env_cls=ColourEnv, n=N_ENVS) -> DummyVecEnv:
    return DummyVecEnv([env_cls] * n)


def ppo_cfg(**kw) -> PPOConfig:
    base = dict(n_steps=N_STEPS, n_minibatches=4, n_epochs=2, normalize_reward=False)
    return PPOConfig(**{**base, **kw})


SB3_LOSS = {"value_loss": "sb3", "advantage_scope": "minibatch"}
"""HeldoutPPO's loss form that equals plain stable-baselines3 PPO."""


def build(cls=HeldoutPPO, seed=0, ppo: PPOConfig | None = None, env_cls=ColourEnv, loss=None, **net) -> PPO:
    ppo = ppo or ppo_cfg()
    venv = vec(env_cls)
    network = NetworkConfig(**{**SMALL_IMPALA, **net})
    pk = policy_kwargs(network, ppo, venv.observation_space)
    return cls(ActorCriticPolicy, venv, policy_kwargs=pk, seed=seed, device="cpu", **ppo.sb3_kwargs(N_ENVS),
               **(loss or {}))


def params(model) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def same(a: list[th.Tensor], b: list[th.Tensor]) -> bool:
    return all(th.equal(x, y) for x, y in zip(a, b))


def collect(model) -> None:
    """Fill the rollout buffer once, as learn() would."""
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)


class MaskAtRolloutEnd(BaseCallback):
    def __init__(self, make_mask) -> None:
        super().__init__()
        self.make_mask = make_mask

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.model.set_loss_mask(self.make_mask(self.model))


# -- sb3 equivalence ------------------------------------------------------------------------------
def test_ones_mask_and_no_mask_equal_plain_sb3_ppo():  # with the sb3 loss form
    plain = build(PPO, seed=3, channels_last=False)
    assert is_vecenv_wrapped(plain.env, VecTransposeImage)  # sb3 stores CHW; we keep HWC
    plain.learn(3 * N_STEPS * N_ENVS, log_interval=10**6)

    ours = build(HeldoutPPO, seed=3, channels_last=False, loss=SB3_LOSS)
    assert not is_vecenv_wrapped(ours.env, VecTransposeImage)
    ones = MaskAtRolloutEnd(lambda m: np.ones((m.n_steps, m.n_envs)))
    ours.learn(3 * N_STEPS * N_ENVS, callback=ones, log_interval=10**6)

    unmasked = build(HeldoutPPO, seed=3, channels_last=False, loss=SB3_LOSS)
    unmasked.learn(3 * N_STEPS * N_ENVS, log_interval=10**6)

    assert same(params(plain), params(ours))
    assert same(params(plain), params(unmasked))
    assert not same(params(plain), params(build(PPO, seed=3, channels_last=False)))  # it did learn
    logged_plain, logged_ours = plain.logger.name_to_value, ours.logger.name_to_value
    for key in ("policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction", "loss",
                "explained_variance", "clip_range", "clip_range_vf", "n_updates"):
        assert logged_ours[f"train/{key}"] == pytest.approx(logged_plain[f"train/{key}"], rel=1e-6, abs=1e-9), key
    assert logged_ours["train/masked_fraction"] == 0.0


# -- the loss form: published (auto-drac / baselines ppo2) or sb3 -----------------------------------
V = th.tensor([1.0, 0.0, 2.0, -1.0])
V_OLD = th.tensor([0.5, 0.5, 2.0, 0.0])
R = th.tensor([2.0, 0.0, 1.0, 1.0])
# clip 0.2: V_clip = V_old + clip(V - V_old, -0.2, 0.2) = [0.7, 0.3, 2.0, -0.2]
# (R - V)^2 = [1, 0, 1, 4]; (R - V_clip)^2 = [1.69, 0.09, 1, 1.44]
PUBLISHED_VALUE_LOSS = 0.5 * (1.69 + 0.09 + 1 + 4) / 4  # 0.5 * mean(max(...)) = 0.8475
SB3_VALUE_LOSS = (1.69 + 0.09 + 1 + 1.44) / 4  # mean((R - V_clip)^2) = 1.055


def test_value_loss_forms_on_a_hand_made_batch():
    published, sb3 = build(), build(loss=SB3_LOSS)
    assert published.value_loss(V, V_OLD, R, 0.2).item() == pytest.approx(PUBLISHED_VALUE_LOSS)
    assert sb3.value_loss(V, V_OLD, R, 0.2).item() == pytest.approx(SB3_VALUE_LOSS)
    # no value clipping: 0.5 * mean((R - V)^2) and mean((R - V)^2)
    assert published.value_loss(V, V_OLD, R, None).item() == pytest.approx(0.5 * 6 / 4)
    assert sb3.value_loss(V, V_OLD, R, None).item() == pytest.approx(6 / 4)
    # the total: policy (ratio 1: -mean A) + ent_coef * -mean(entropy) + vf_coef * value loss
    published.normalize_advantage = False
    adv, log_prob, entropy = th.tensor([1.0, -2.0, 0.5, 0.5]), th.zeros(4), th.full((4,), 1.5)
    loss = published.ppo_loss(None, V, log_prob, entropy, None, None, old_log_prob=log_prob, old_values=V_OLD,
                              advantages=adv, returns=R, clip_range=0.2, clip_range_vf=0.2)  # fmt: skip
    assert loss.total.item() == pytest.approx(0.0 + 0.01 * -1.5 + 0.5 * PUBLISHED_VALUE_LOSS)


def test_rollout_advantage_normalisation_uses_the_unmasked_rollout():
    model = build()
    collect(model)
    adv = np.arange(N_STEPS * N_ENVS, dtype=np.float32).reshape(N_STEPS, N_ENVS) ** 1.5
    model.rollout_buffer.advantages = adv.copy()
    mask = np.ones((N_STEPS, N_ENVS), bool)
    mask[:4] = False
    kept = adv[4:].astype(np.float64).reshape(-1)
    mean = kept.sum() / kept.size
    std = np.sqrt(((kept - mean) ** 2).sum() / (kept.size - 1))  # torch's (unbiased) std, as published
    assert model.rollout_advantage_stats(mask) == pytest.approx((mean, std + 1e-5))
    # in the loss: (A - mean) / (std + 1e-5), with the statistics train() took before any minibatch
    batch = next(iter(model.minibatches()))
    model._advantage_stats = model.rollout_advantage_stats(mask)
    a = batch.advantages
    ours = model.ppo_loss(batch, V[:1], th.zeros(1), None, None, None, old_log_prob=th.zeros(1), old_values=V[:1],
                          advantages=a[:1], returns=R[:1], clip_range=0.2, clip_range_vf=0.2)  # fmt: skip
    assert ours.policy_loss.item() == pytest.approx(-(a[0].item() - mean) / (std + 1e-5), rel=1e-5)
    model.set_loss_mask(mask)
    model.train()
    assert model._advantage_stats is None  # cleared after the update


def test_loss_form_settings_are_checked():
    with pytest.raises(ValueError, match="ppo.value_loss must be one of published | sb3, got 'huber'"):
        PPOConfig(value_loss="huber")
    with pytest.raises(ValueError, match="ppo.advantage_scope must be one of rollout | minibatch"):
        PPOConfig(advantage_scope="batch")
    with pytest.raises(ValueError, match="value_loss must be one of"):
        build(loss={"value_loss": "mse"})
    assert PPOConfig().model_kwargs(N_ENVS)["value_loss"] == "published"


# -- the loss mask --------------------------------------------------------------------------------
def grads_of(model, loss) -> list[th.Tensor]:
    model.policy.optimizer.zero_grad()
    loss.backward()
    return [p.grad.detach().clone() for p in model.policy.parameters()]


def snapshot(buffer) -> dict[str, np.ndarray]:
    names = ("observations", "actions", "values", "log_probs", "advantages", "returns")
    return {name: getattr(buffer, name).copy() for name in names}


def restore(buffer, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        setattr(buffer, name, arr.copy())
    buffer.generator_ready = False


def corrupt(arrays: dict[str, np.ndarray], mask: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Replace every masked sample's data with garbage (in the buffer's (step, env) layout)."""
    out = {k: v.copy() for k, v in arrays.items()}
    off = ~mask.astype(bool)
    out["observations"][off] = rng.integers(0, 256, out["observations"][off].shape, dtype=np.uint8)
    out["actions"][off] = rng.integers(0, 3, out["actions"][off].shape)
    for name in ("values", "log_probs", "advantages", "returns"):
        out[name][off] = rng.normal(0, 1000, out[name][off].shape)
    return out


def test_masked_samples_contribute_exactly_zero_gradient():
    # per-minibatch advantages: every statistic of the loss comes from the minibatch (the rollout-wide
    # statistics of the default form are computed by train(), tested below)
    model = build(ppo=ppo_cfg(n_minibatches=2), loss={"advantage_scope": "minibatch"})
    collect(model)
    mask = np.ones((N_STEPS, N_ENVS))
    mask[3:9, 0] = 0
    mask[::4, 1] = 0
    rng = np.random.default_rng(0)
    clean = snapshot(model.rollout_buffer)

    def minibatch_grads(arrays, mask):
        restore(model.rollout_buffer, arrays)
        model.rollout_buffer.set_keep(mask)
        np.random.seed(7)
        batches = [b for b in model.minibatches()]
        assert all(b is not None for b in batches) and len(batches) == 2
        return [grads_of(model, model.compute_loss(b, 0.2, 0.2).total) for b in batches], batches

    with_mask, batches = minibatch_grads(clean, mask)
    assert sum(len(b.advantages) for b in batches) == mask.sum()
    with_garbage, _ = minibatch_grads(corrupt(clean, mask, rng), mask)
    for a, b in zip(with_mask, with_garbage):
        assert same(a, b)  # bitwise: masked samples never reach the gradient
    without_mask, _ = minibatch_grads(clean, None)
    assert not same(with_mask[0], without_mask[0])

    # The same batch built by hand from only the unmasked samples gives the same gradient.
    restore(model.rollout_buffer, clean)
    model.rollout_buffer.set_keep(None)
    keep = mask.astype(bool)
    t = model.rollout_buffer.to_torch
    whole = RolloutBufferSamples(
        observations=t(clean["observations"][keep]),
        actions=t(clean["actions"][keep].astype(np.float32)),
        old_values=t(clean["values"][keep]),
        old_log_prob=t(clean["log_probs"][keep]),
        advantages=t(clean["advantages"][keep]),
        returns=t(clean["returns"][keep]),
    )
    restore(model.rollout_buffer, clean)
    model.rollout_buffer.set_keep(mask)
    model.batch_size = N_STEPS * N_ENVS  # one minibatch of everything, masked samples dropped
    np.random.seed(7)
    (full_batch,) = list(model.minibatches())
    by_mask = grads_of(model, model.compute_loss(full_batch, 0.2, 0.2).total)
    by_hand = grads_of(model, model.compute_loss(whole, 0.2, 0.2).total)
    for a, b in zip(by_mask, by_hand):
        assert th.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_masked_update_ignores_masked_experience_entirely():
    mask = np.zeros((N_STEPS, N_ENVS))
    mask[:, 1] = 1
    mask[5:, 0] = 1
    models = [build(seed=5) for _ in range(3)]
    for m in models:
        collect(m)
    clean = snapshot(models[0].rollout_buffer)
    restore(models[1].rollout_buffer, corrupt(clean, mask, np.random.default_rng(1)))
    models[0].set_loss_mask(mask)
    models[1].set_loss_mask(mask.astype(bool))
    for m in models:
        np.random.seed(11)
        m.train()
    assert same(params(models[0]), params(models[1]))
    assert not same(params(models[0]), params(models[2]))  # the mask changed the update
    assert models[0].logger.name_to_value["train/masked_fraction"] == pytest.approx(5 / 32)
    assert models[0].pending_loss_mask is None  # consumed
    assert models[0].rollout_buffer.keep is None


def test_fully_masked_update_changes_nothing():
    model = build()
    collect(model)
    before = params(model)
    model.set_loss_mask(np.zeros((N_STEPS, N_ENVS)))
    model.train()
    assert same(before, params(model))
    assert model.logger.name_to_value["train/masked_fraction"] == 1.0
    assert all(not model.policy.optimizer.state[p] for p in model.policy.parameters())  # no Adam step
    # the next update (no mask) learns again
    model.train()
    assert not same(before, params(model))


def test_mask_validation():
    model = build()
    with pytest.raises(ValueError, match=r"shape \(n_steps, n_envs\) = \(16, 2\), got \(2, 16\)"):
        model.set_loss_mask(np.ones((N_ENVS, N_STEPS)))
    with pytest.raises(ValueError, match="0 \\(no gradient\\) or 1"):
        model.set_loss_mask(np.full((N_STEPS, N_ENVS), 0.5))
    with pytest.raises(ValueError, match="0 \\(no gradient\\) or 1"):
        model.set_loss_mask(np.full((N_STEPS, N_ENVS), "1"))
    model.set_loss_mask(np.ones((N_STEPS, N_ENVS), dtype=np.int64))
    assert model.pending_loss_mask is not None and model.pending_loss_mask.dtype == bool
    model.set_loss_mask(None)
    assert model.pending_loss_mask is None


# -- hooks ------------------------------------------------------------------------------------------
class WeightDecayPPO(HeldoutPPO):
    seen: list = []

    def extra_loss(self, batch, loss):
        probs = loss.distribution.distribution.probs  # what a DrAC KL term would use
        self.seen.append((len(batch.advantages), tuple(probs.shape), tuple(loss.features.shape),
                          float(probs.detach().sum(1).mean())))
        return {"l2": 0.1 * sum(p.square().sum() for p in self.policy.features_extractor.parameters())}


def test_extra_loss_hook_is_added_and_logged():
    base, decayed = build(seed=2), build(WeightDecayPPO, seed=2)
    base.learn(N_STEPS * N_ENVS, log_interval=10**6)
    decayed.learn(N_STEPS * N_ENVS, log_interval=10**6)
    logged = decayed.logger.name_to_value
    batch = N_STEPS * N_ENVS // 4
    assert decayed.seen[0] == (batch, (batch, 3), (batch, 32), pytest.approx(1.0))
    assert len(decayed.seen) == 2 * 4  # 2 epochs x 4 minibatches
    assert logged["train/l2"] > 0
    assert logged["train/loss"] > base.logger.name_to_value["train/loss"]
    assert not same(params(base), params(decayed))


# -- determinism, TensorBoard, save/load -----------------------------------------------------------
def make_agent(seed=0, env_cls=ColourEnv, **net):
    return agents.make("ppo", vec(env_cls), ppo=PPOConfig(n_steps=32, n_minibatches=4, n_epochs=2),
                       network=NetworkConfig(**{**SMALL_IMPALA, **net}), seed=seed, device="cpu")


def test_learn_is_deterministic_under_a_fixed_seed():
    runs = []
    for seed in (0, 0, 1):
        model = make_agent(seed)
        assert model.policy.features_extractor.stacks[0].conv.weight.is_contiguous(memory_format=th.channels_last)
        model.learn(4 * 32 * N_ENVS)  # 256 env steps, 4 updates
        assert model.num_timesteps == 256
        runs.append((params(model), model.get_vec_normalize_env().ret_rms.var.copy()))
    assert same(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not same(runs[0][0], runs[2][0])


def test_tensorboard_gets_sb3_train_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = agents.make("ppo", vec(), ppo=ppo_cfg(), network=NetworkConfig(**SMALL_IMPALA), seed=0,
                        device="cpu", tensorboard_log=str(tmp_path))
    model.learn(3 * N_STEPS * N_ENVS)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for key in ("policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction", "loss",
                "explained_variance", "learning_rate", "clip_range", "masked_fraction"):
        assert f"train/{key}" in tags, key
    # as in sb3, an update's scalars are written with the next iteration's rollout scalars
    assert [e.step for e in acc.Scalars("train/loss")] == [2 * N_STEPS * N_ENVS, 3 * N_STEPS * N_ENVS]


def test_save_and_load_round_trip(tmp_path):
    model = make_agent(seed=4)
    model.learn(32 * N_ENVS)
    model.set_loss_mask(np.ones((32, N_ENVS)))  # a pending mask is not part of a saved model
    model.save(tmp_path / "agent.zip")
    loaded = HeldoutPPO.load(tmp_path / "agent.zip", env=vec(), device="cpu")
    assert same(params(model), params(loaded))
    assert loaded.pending_loss_mask is None and isinstance(loaded.rollout_buffer, agents.MaskedRolloutBuffer)
    assert loaded.policy.features_extractor.stacks[1].conv.weight.is_contiguous(memory_format=th.channels_last)
    obs = np.stack([ColourEnv().reset(seed=i)[0] for i in range(3)])
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


# -- maze observations ----------------------------------------------------------------------------
def test_maze_observations_stay_hwc_and_unscaled():
    model = agents.make("ppo", vec(GridEnv), ppo=ppo_cfg(), network=NetworkConfig(), seed=0, device="cpu")
    assert isinstance(model.policy.features_extractor, MazeNet)
    assert model.policy.features_extractor is model.policy.pi_features_extractor is model.policy.vf_features_extractor
    assert model.observation_space.shape == (5, 5, 3)
    assert not is_vecenv_wrapped(model.env, VecTransposeImage)
    obs = GridEnv().reset(seed=0)[0]
    tensor, _ = model.policy.obs_to_tensor(obs)
    seen = preprocess_obs(tensor, model.observation_space, model.policy.normalize_images)
    assert th.equal(seen, tensor.float())  # direction codes reach the network as 1..4, not /255
    model.learn(2 * N_STEPS * N_ENVS)
    assert isinstance(model.policy.action_net, th.nn.Linear) and model.policy.action_net.in_features == 256


def test_auto_picks_impala_for_pixels():
    model = agents.make("ppo", vec(lambda: ColourEnv(side=64), n=1), ppo=PPOConfig(n_steps=8, n_minibatches=2),
                        network=NetworkConfig(), seed=0, device="cpu")
    extractor = model.policy.features_extractor
    assert isinstance(extractor, ImpalaCNN) and extractor.flat_dim == 2048 and extractor.hwc
    assert model.policy.normalize_images
    assert isinstance(model.get_vec_normalize_env(), VecNormalize)
    assert model.get_vec_normalize_env().norm_obs is False
    assert model.policy.optimizer.defaults["eps"] == 1e-5 and model.policy.optimizer.defaults["lr"] == 5e-4


# -- the registry -----------------------------------------------------------------------------------
def test_names_and_unknown_agent():
    assert agents.names() == ["bc", "cql", "drac", "ppo", "ppo_lstm", "rad", "ucb_drac"]
    with pytest.raises(KeyError, match=r"unknown agent 'ppo2'\. Did you mean 'ppo'\? Available: bc, cql, drac, ppo, ppo_lstm, rad, ucb_drac"):
        agents.make("ppo2", vec(), ppo=ppo_cfg(), network=NetworkConfig(), seed=0)
    with pytest.raises(ValueError, match="already registered"):
        agents.register("ppo", lambda *a, **k: None)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(seed=-1), ValueError, "seed must be an integer"),
        (dict(seed="0"), ValueError, "seed must be an integer"),
        (dict(device="tpu"), ValueError, "unknown device 'tpu'"),
        (dict(ppo=dict(lr=1e-3)), TypeError, "ppo must be a PPOConfig"),
        (dict(network="impala"), TypeError, "network must be a NetworkConfig"),
        (dict(ppo=PPOConfig(n_steps=15, n_minibatches=4)), ValueError, r"does not divide .* 2 \* 15 = 30"),
    ],
)
def test_make_rejects_bad_arguments(kwargs, error, match):
    args = {**dict(ppo=ppo_cfg(), network=NetworkConfig(**SMALL_IMPALA), seed=0, device="cpu"), **kwargs}
    with pytest.raises(error, match=match):
        agents.make("ppo", vec(), **args)


def test_make_rejects_observations_it_cannot_handle():
    class VectorEnv(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
        action_space = gym.spaces.Discrete(2)

    class MatrixEnv(VectorEnv):
        observation_space = gym.spaces.Box(-1, 1, (4, 4), np.float32)

    with pytest.raises(ValueError, match="set network to impala or maze"):
        agents.make("ppo", DummyVecEnv([MatrixEnv]), ppo=ppo_cfg(), network=NetworkConfig(), seed=0)
    with pytest.raises(ValueError, match="network 'mlp' needs a 1-D Box"):
        agents.make("ppo", DummyVecEnv([MatrixEnv]), ppo=ppo_cfg(), network=NetworkConfig(network="mlp"), seed=0)
    with pytest.raises(ValueError, match="needs a 3-D Box"):
        agents.make("ppo", DummyVecEnv([VectorEnv]), ppo=ppo_cfg(), network=NetworkConfig(network="maze"), seed=0)


@pytest.mark.skipif(th.cuda.is_available(), reason="CUDA is available here")
def test_devices_without_cuda():
    assert agents.resolve_device("auto") == th.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        agents.resolve_device("cuda")


# -- the project's own env families (skipped where a family is not registered) ---------------------
@pytest.mark.parametrize(
    "family, options, extractor",
    [("maze", {}, MazeNet), ("maze", {"full_obs": True}, MazeNet), ("procgen/coinrun", {}, ImpalaCNN)],
)
def test_auto_network_on_registered_families(family, options, extractor):
    from heldout import envs

    if family not in envs.names():
        pytest.skip(f"env family {family!r} is not registered")
    venv = envs.make_vec(family, 2, seed=0, **options)
    model = agents.make("ppo", venv, ppo=PPOConfig(n_steps=8, n_minibatches=2), network=NetworkConfig(),
                        seed=0, device="cpu")
    assert isinstance(model.policy.features_extractor, extractor)
    assert model.observation_space.shape == venv.observation_space.shape  # no VecTransposeImage
    model.learn(2 * 8 * 2)
    assert model.num_timesteps == 32
